//! The setup error: it ends the program (per-connection errors never do).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::cli;
use crate::runtime;

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

impl From<runtime::Error> for Error {
    fn from(e: runtime::Error) -> Self {
        match e {
            runtime::Error::Poll(e) => Error::Poll(e),
            runtime::Error::Signals(e) => Error::Signals(e),
        }
    }
}

impl From<cli::UsageError> for Error {
    fn from(e: cli::UsageError) -> Self {
        Error::Usage(e)
    }
}
