//! healthcheck: aggregated readiness for Kubernetes pods, on one mio loop.
//! The parsers are public so the benches, fuzz targets and property tests
//! reach them; the binary is `src/main.rs`.

#![deny(rust_2018_idioms)]

pub mod check;
pub mod cli;
pub mod digits;
pub mod dns;
pub mod engine;
pub mod grpc;
pub mod http;
pub mod inbound;
pub mod json;
pub mod location;
pub mod log;
pub mod metrics;
pub mod oneshot;
pub mod probe;
pub mod response;
pub mod run;
pub mod serve;
pub mod signals;
pub mod sockopt;
#[cfg(feature = "tls")]
pub mod tls;

/// The version in `--version`, logs and the probes' `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A setup error: it ends the program (per-connection errors never do).
#[derive(Debug)]
pub enum Error {
    Usage(cli::UsageError),
    Listen(SocketAddr, io::Error),
    Poll(io::Error),
    Signals(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(e) => write!(f, "{e}"),
            Error::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            Error::Poll(e) => write!(f, "event loop: {e}"),
            Error::Signals(e) => write!(f, "signal handling: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Usage(_) => None,
            Error::Listen(_, e) | Error::Poll(e) | Error::Signals(e) => Some(e),
        }
    }
}

impl From<cli::UsageError> for Error {
    fn from(e: cli::UsageError) -> Self {
        Error::Usage(e)
    }
}
