//! The connection layer under every probe kind: the addresses tried in
//! order until one connects (or the check's unix socket instead), the
//! first failure kept for the verdict, the port (and scheme) a redirect
//! moves to, and for `https://` and `grpcs://` the TLS layer the kind's
//! bytes pass through. The TLS layer is about bytes only: whatever socket
//! carries the connection, TCP or unix, it sits on top.

use std::io;
use std::net::SocketAddr;

use super::action::Action;
use crate::check::Check;
#[cfg(feature = "tls")]
use crate::check::Kind;
#[cfg(feature = "tls")]
use crate::tls::{self, Alpn, Failure, TlsError};
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
    /// Whether a redirect's hop speaks TLS, replacing the check's scheme.
    hop_tls: Option<bool>,
    link: Link,
    /// The TLS layer of the open connection, when it speaks TLS.
    #[cfg(feature = "tls")]
    tls: Option<Box<Tls>>,
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
        self.hop_tls = None;
        self.link = Link::Connecting;
        self.end_tls();
    }

    /// Connects again from the first address, on `port`, with or without
    /// TLS (a redirect, which may change the scheme; the same socket over a
    /// unix one).
    pub(crate) fn reconnect(&mut self, port: u16, tls: bool) -> Action {
        self.next_addr = 0;
        self.first_error = None;
        self.port = Some(port);
        self.hop_tls = Some(tls);
        self.next_connect()
    }

    /// The next address to try, or the verdict when none is left.
    pub(crate) fn next_connect(&mut self) -> Action {
        self.end_tls();
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

    /// The connect completed: for a TLS check (or hop) the TLS client
    /// starts, its ClientHello queued.
    pub fn opened(&mut self, check: &Check) -> Result<(), Reason> {
        self.link = Link::Open;
        let tls = self.hop_tls.unwrap_or(check.tls);
        #[cfg(feature = "tls")]
        if tls {
            self.tls = Some(Box::new(Tls::new(check)?));
        }
        // Check::parse refuses https:// and grpcs:// without the feature,
        // and http.rs follows no redirect to https then.
        #[cfg(not(feature = "tls"))]
        debug_assert!(!tls, "TLS asked of a build without it");
        Ok(())
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

    /// The connection ends: a TLS client is dropped (its memory with it).
    pub(crate) fn end_tls(&mut self) {
        #[cfg(feature = "tls")]
        {
            self.tls = None;
        }
    }

    /// The TLS layer of the open connection, if it speaks TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&mut self) -> Option<&mut Tls> {
        self.tls.as_deref_mut()
    }

    /// With TLS, the records to write (the kind's plaintext never goes to
    /// the socket then); None without.
    pub(crate) fn records(&self) -> Option<&[u8]> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return Some(tls.records());
        }
        None
    }
}

/// The TLS layer of one connection: the client machine and the records
/// it produced, waiting for the socket.
#[cfg(feature = "tls")]
pub(crate) struct Tls {
    client: tls::Client,
    alpn: Alpn,
    /// Records to write, from `sent` on: at most what rustls holds
    /// (tls::SEND_LIMIT) plus what it produced since the last write.
    out: Vec<u8>,
    sent: usize,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("alpn", &self.alpn).field("out", &self.out.len()).finish()
    }
}

#[cfg(feature = "tls")]
impl Tls {
    /// A client for the check's host (SNI when a name), offering
    /// `http/1.1`, or `h2` for gRPC.
    pub(crate) fn new(check: &Check) -> Result<Tls, Reason> {
        let alpn = if check.kind == Kind::Grpc { Alpn::H2 } else { Alpn::Http1 };
        // The URL's host passed Check::parse: ASCII letters, digits and
        // `-._`, or an IP literal.
        let host = std::str::from_utf8(check.target.hostname()).unwrap_or_default();
        let client = tls::Client::new(host, alpn).map_err(Reason::Tls)?;
        let mut tls = Tls { client, alpn, out: Vec::new(), sent: 0 };
        tls.fill();
        Ok(tls)
    }

    /// The records still to write.
    pub(crate) fn records(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// `n` bytes of the records went out; true while some are left.
    pub(crate) fn wrote(&mut self, n: usize) -> bool {
        self.sent = (self.sent + n).min(self.out.len());
        if self.sent < self.out.len() {
            return true;
        }
        self.out.clear();
        self.sent = 0;
        false
    }

    /// Moves what rustls has to send into the records to write.
    pub(crate) fn fill(&mut self) {
        if self.client.wants_write() {
            // Writing into a Vec never fails nor blocks.
            let _ = self.client.transmit(&mut self.out);
        }
    }

    /// Queues plaintext; how much was taken (0 at rustls's limit).
    pub(crate) fn send(&mut self, plaintext: &[u8]) -> usize {
        self.client.send(plaintext)
    }

    /// Feeds records read from the socket; how many bytes were taken
    /// (it stops while plaintext waits to be read). A handshake that
    /// just ended is checked: a `grpcs://` server must choose `h2`.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Result<usize, Reason> {
        let was_handshaking = self.client.is_handshaking();
        let taken = self.client.receive(data).map_err(Reason::Tls)?;
        let handshake_done = was_handshaking && !self.client.is_handshaking();
        if handshake_done && self.alpn == Alpn::H2 && self.client.alpn_protocol() != Some(b"h2") {
            return Err(Reason::Tls(TlsError::Handshake(Failure::NoH2)));
        }
        Ok(taken)
    }

    /// The socket read its end.
    pub(crate) fn receive_eof(&mut self) -> Result<(), Reason> {
        self.client.receive_eof().map_err(Reason::Tls)
    }

    /// Copies received plaintext into `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<tls::Read, Reason> {
        self.client.read(buf).map_err(Reason::Tls)
    }
}
