//! Layer 4, the runtime: the only users of mio. The engine runs rounds of
//! probes on a poll, the waiter is the poll loop of the one-shot modes,
//! signals arrive as a poll source.

pub(crate) mod driver;
pub(crate) mod engine;
pub(crate) mod signals;
pub(crate) mod sockopt;
pub(crate) mod waiter;

use std::io;

/// A setup error of the runtime: the program cannot go on. The front-ends
/// turn it into their `Error`, which says it.
#[derive(Debug)]
pub(crate) enum Error {
    Poll(io::Error),
    Signals(io::Error),
}
