//! Layer 1, the wire: pure parsers and writers of bytes. Nothing here does
//! I/O, reads a clock or knows what a check or a verdict is.

/// The version in `--version`, logs and the probes' `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The `User-Agent` of HTTP and gRPC probes, unless a check gives its own.
pub(crate) const USER_AGENT: &str = concat!("healthcheck/", env!("CARGO_PKG_VERSION"));

pub(crate) mod digits;
pub mod dns;
pub(crate) mod grpc;
pub mod h2;
pub mod hpack;
pub mod http;
pub mod proto;
pub(crate) mod response;
pub mod text;
pub mod url;
