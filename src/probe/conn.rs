//! The connection layer under every probe kind: the addresses tried in
//! order until one connects, the first failure kept for the verdict, and
//! the port a redirect moves to; or the check's unix socket instead.

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
    /// Connect to the check's unix socket (one try), not to `addrs`.
    unix: bool,
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
    /// A new round on `addrs` (or the unix socket), keeping the buffer.
    pub(crate) fn start(&mut self, addrs: &[SocketAddr], unix: bool) {
        self.unix = unix;
        self.addrs.clear();
        self.addrs.extend_from_slice(addrs);
        self.next_addr = 0;
        self.first_error = None;
        self.port = None;
        self.link = Link::Connecting;
    }

    /// Connects again from the first address, on `port` (a redirect; the
    /// same socket over a unix one).
    pub(crate) fn reconnect(&mut self, port: u16) -> Action {
        self.next_addr = 0;
        self.first_error = None;
        self.port = Some(port);
        self.next_connect()
    }

    /// The next address to try, or the verdict when none is left.
    pub(crate) fn next_connect(&mut self) -> Action {
        let tries = if self.unix { 1 } else { self.addrs.len() };
        if self.next_addr >= tries {
            let reason = self.first_error.take().unwrap_or(Reason::Refused);
            return Action::Done(Verdict::Fail(reason));
        }
        self.next_addr += 1;
        self.link = Link::Connecting;
        if self.unix {
            return Action::ConnectUnix;
        }
        let mut addr = self.addrs[self.next_addr - 1];
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
        let unix = self.unix;
        self.first_error.get_or_insert_with(|| {
            if unix {
                Reason::from_unix_connect(err)
            } else {
                Reason::from_io(err, true)
            }
        });
        self.next_connect()
    }
}
