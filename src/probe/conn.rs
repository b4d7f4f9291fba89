//! The connection layer under every probe kind: the addresses tried in
//! order until one connects, the first failure kept for the verdict, and
//! the port a redirect moves to. TCP today; TLS and unix sockets go here.

use std::io;
use std::net::SocketAddr;

use super::action::Action;
use crate::verdict::{Reason, Verdict};

#[derive(Debug, Default)]
pub(crate) struct Conn {
    /// Where to connect, tried in order: given by the engine each round
    /// (the check's own addresses, or what its name resolved to).
    addrs: Vec<SocketAddr>,
    /// Index of the next address to try.
    next_addr: usize,
    /// The first connect error: for `localhost` the IPv4 refusal says more
    /// than the IPv6 "address not available" that may follow it.
    first_error: Option<Reason>,
    /// The port of a redirect's hop, replacing the addresses' own.
    port: Option<u16>,
    link: Link,
}

/// Where the connection stands: the kind's machine has it once open.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Link {
    #[default]
    Connecting,
    Open,
}

impl Conn {
    /// A new round on `addrs`, keeping the buffer.
    pub(crate) fn start(&mut self, addrs: &[SocketAddr]) {
        self.addrs.clear();
        self.addrs.extend_from_slice(addrs);
        self.next_addr = 0;
        self.first_error = None;
        self.port = None;
        self.link = Link::Connecting;
    }

    /// Connects again from the first address, on `port` (a redirect).
    pub(crate) fn reconnect(&mut self, port: u16) -> Action {
        self.next_addr = 0;
        self.first_error = None;
        self.port = Some(port);
        self.next_connect()
    }

    /// The next address to try, or the verdict when none is left.
    pub(crate) fn next_connect(&mut self) -> Action {
        let Some(addr) = self.addrs.get(self.next_addr) else {
            let reason = self.first_error.take().unwrap_or(Reason::Refused);
            return Action::Done(Verdict::Fail(reason));
        };
        self.next_addr += 1;
        self.link = Link::Connecting;
        let mut addr = *addr;
        if let Some(port) = self.port {
            addr.set_port(port);
        }
        Action::Connect(addr)
    }

    /// Whether a connect is under way (the kind's machine waits).
    pub fn is_connecting(&self) -> bool {
        self.link == Link::Connecting
    }

    /// The connect completed.
    pub fn opened(&mut self) {
        self.link = Link::Open;
    }

    /// The connect failed, at once or as an event: try the next address.
    pub(crate) fn connect_failed(&mut self, err: &io::Error) -> Action {
        self.first_error.get_or_insert_with(|| Reason::from_io(err, true));
        self.next_connect()
    }
}
