//! Layer 4, the runtime: the only users of mio. The engine runs rounds of
//! probes on a poll, the waiter is the poll loop of the one-shot modes,
//! signals arrive as a poll source.

pub mod driver;
pub mod engine;
pub mod signals;
pub mod sockopt;
pub mod waiter;

use std::fmt;
use std::io;

/// A setup error of the runtime: the program cannot go on.
#[derive(Debug)]
pub enum Error {
    Poll(io::Error),
    Signals(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Poll(e) => write!(f, "event loop: {e}"),
            Error::Signals(e) => write!(f, "signal handling: {e}"),
        }
    }
}
