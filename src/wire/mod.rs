//! Layer 1, the wire: pure parsers and writers of bytes. Nothing here does
//! I/O, reads a clock or knows what a check or a verdict is.

pub mod digits;
pub mod dns;
pub mod grpc;
pub mod h2;
pub mod hpack;
pub mod http;
pub mod proto;
pub mod response;
pub mod text;
pub mod url;
