//! What a probe machine asks of the runtime next: the one `Action` every
//! probe kind and the connection layer under them answer with.

use std::net::SocketAddr;

use crate::verdict::Verdict;

/// What the engine must do next for this probe.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a new connection to this address (closing any current one).
    Connect(SocketAddr),
    /// Open a new connection to the check's unix socket (closing any
    /// current one).
    ConnectUnix,
    /// Write the probe's output to the connection.
    Send,
    /// Read from the connection and pass the bytes to the probe.
    Receive,
    /// Close the connection: the probe has its verdict.
    Done(Verdict),
}
