//! The outbound probe of one check, as a sans-IO machine: the connection
//! layer (addresses tried in order) under one machine per probe kind (tcp,
//! http, grpc), all answering with one [`Action`]. It does no I/O and reads
//! no clock: the engine feeds it events and bytes, so its transitions are
//! unit-tested without sockets. A new kind is a file here and an arm in
//! [`Machine`]'s matches.

pub(crate) mod action;
pub(crate) mod conn;
pub mod grpc;
pub(crate) mod http;
pub(crate) mod tcp;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use action::Action;
pub use http::{passes, MAX_BODY, MAX_HEAD, MAX_REDIRECTS};

use crate::check::{Check, Kind};
use crate::verdict::{Reason, Verdict};
use conn::Conn;

/// The machine of the check's kind, kept across rounds (with its buffers).
#[derive(Debug)]
enum Machine {
    Tcp(tcp::Tcp),
    Http(Box<http::Exchange>),
    Grpc(Box<grpc::Call>),
}

impl Default for Machine {
    fn default() -> Self {
        Machine::Tcp(tcp::Tcp)
    }
}

impl Machine {
    fn of(kind: Kind) -> Machine {
        match kind {
            Kind::Tcp => Machine::Tcp(tcp::Tcp),
            Kind::Http | Kind::Post => Machine::Http(Box::default()),
            Kind::Grpc => Machine::Grpc(Box::default()),
        }
    }

    fn is(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Machine::Tcp(_), Kind::Tcp) | (Machine::Http(_), Kind::Http | Kind::Post) | (Machine::Grpc(_), Kind::Grpc)
        )
    }

    /// Resets for a round whose probe must end by `deadline`.
    fn start(&mut self, deadline: Instant) {
        match self {
            Machine::Tcp(_) => {}
            Machine::Http(exchange) => exchange.reset(),
            Machine::Grpc(call) => call.start(deadline),
        }
    }
}

/// One probe of one check, for one round.
#[derive(Debug, Default)]
pub struct Probe {
    conn: Conn,
    machine: Machine,
    deadline: Option<Instant>,
}

/// Plaintext read out of the TLS layer at a time, handed to the kind's
/// machine: on the stack, so nothing more is held between reads.
#[cfg(feature = "tls")]
const PLAINTEXT_CHUNK: usize = 4096;

impl Probe {
    /// The first step: connect to the first of `addrs` (or the check's
    /// unix socket). The probe must reach its verdict by `deadline`.
    pub fn start(&mut self, check: &Check, addrs: &[SocketAddr], deadline: Instant) -> Action {
        self.deadline = Some(deadline);
        self.conn.start(addrs, check.unix_socket.is_some());
        self.machine.start(deadline);
        self.conn.next_connect()
    }

    /// The step to retry when the connection reports readiness.
    pub(crate) fn resume(&self) -> Option<Action> {
        if self.conn.is_connecting() {
            return None;
        }
        if self.conn.records().is_some_and(|r| !r.is_empty()) {
            return Some(Action::Send);
        }
        self.machine_resume()
    }

    fn machine_resume(&self) -> Option<Action> {
        match &self.machine {
            Machine::Tcp(_) => None,
            Machine::Http(exchange) => exchange.resume(),
            Machine::Grpc(call) => call.resume(),
        }
    }

    pub(crate) fn is_connecting(&self) -> bool {
        self.conn.is_connecting()
    }

    /// The connect failed, at once or as an event: try the next address.
    pub(crate) fn connect_failed(&mut self, err: &io::Error) -> Action {
        self.conn.connect_failed(err)
    }

    /// The connection is established at `now`: the check's kind takes it
    /// (over TLS, its request waits in the TLS layer for the handshake).
    pub fn connected(&mut self, check: &Check, now: Instant) -> Action {
        if !self.machine.is(check.kind) {
            self.machine = Machine::of(check.kind);
            self.machine.start(self.deadline.unwrap_or(now));
        }
        if let Err(reason) = self.conn.opened(check) {
            return Action::Done(Verdict::Fail(reason));
        }
        let action = match &mut self.machine {
            Machine::Tcp(tcp) => tcp.connected(),
            Machine::Http(exchange) => exchange.connected(),
            Machine::Grpc(call) => call.connected(&check.grpc, now),
        };
        self.through_conn(check, action)
    }

    /// The bytes still to write: the TLS records over TLS, else the kind's
    /// request.
    pub fn output<'a>(&'a self, check: &'a Check) -> &'a [u8] {
        match self.conn.records() {
            Some(records) => records,
            None => plain_output(&self.machine, check),
        }
    }

    pub fn wrote(&mut self, check: &Check, n: usize) -> Action {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.conn.tls() {
            if tls.wrote(n) {
                return Action::Send;
            }
            let next = self.machine_resume().unwrap_or(Action::Receive);
            return self.through_conn(check, next);
        }
        plain_wrote(&mut self.machine, check, n)
    }

    /// Bytes arrived (never empty: end of stream is [`Probe::eof`]).
    pub fn received(&mut self, check: &Check, data: &[u8]) -> Action {
        if self.conn.is_connecting() {
            return Action::Receive;
        }
        #[cfg(feature = "tls")]
        if self.conn.tls().is_some() {
            return self.received_tls(check, data);
        }
        self.plain_received(check, data)
    }

    fn plain_received(&mut self, check: &Check, data: &[u8]) -> Action {
        match &mut self.machine {
            Machine::Tcp(_) => Action::Receive,
            Machine::Http(exchange) => exchange.received(check, &mut self.conn, data),
            Machine::Grpc(call) => call.received(data),
        }
    }

    /// Records arrived: each is decrypted and its plaintext handed to the
    /// kind's machine, whatever the split; the machine's writes go into the
    /// TLS layer, so every byte read is taken before the next step.
    /// Never inlined: its plaintext buffer would give the plain path's
    /// frame a page of stack to probe on every read.
    #[cfg(feature = "tls")]
    #[inline(never)]
    fn received_tls(&mut self, check: &Check, mut data: &[u8]) -> Action {
        let mut plain = [0u8; PLAINTEXT_CHUNK];
        loop {
            let Some(tls) = self.conn.tls() else { return Action::Receive };
            let taken = match tls.receive(data) {
                Ok(n) => n,
                Err(reason) => return self.fail(reason),
            };
            data = &data[taken..];
            loop {
                let Some(tls) = self.conn.tls() else { return Action::Receive };
                let action = match tls.read(&mut plain) {
                    Ok(crate::tls::Read::Data(n)) => self.plain_received(check, &plain[..n]),
                    Ok(crate::tls::Read::Pending) => break,
                    Ok(crate::tls::Read::Closed) => {
                        // close_notify: nothing more is read.
                        let action = self.plain_eof();
                        return self.through_conn(check, action);
                    }
                    Err(reason) => return self.fail(reason),
                };
                match action {
                    Action::Receive => {}
                    Action::Send => {
                        // Into the TLS layer now; the records go out below.
                        self.through_conn(check, Action::Send);
                    }
                    action @ (Action::Connect(_) | Action::ConnectUnix | Action::Done(_)) => {
                        return self.through_conn(check, action)
                    }
                }
            }
            if data.is_empty() {
                break;
            }
        }
        let next = self.machine_resume().unwrap_or(Action::Receive);
        self.through_conn(check, next)
    }

    /// Fails the probe at once, the connection with it.
    #[cfg(feature = "tls")]
    fn fail(&mut self, reason: Reason) -> Action {
        self.conn.end_tls();
        Action::Done(Verdict::Fail(reason))
    }

    /// The kind's action, carried through the connection layer: over TLS,
    /// the kind's plaintext goes into the TLS layer and the step is to send
    /// its records (or to read, once none is left); the TLS client ends
    /// with the connection.
    #[inline]
    fn through_conn(&mut self, check: &Check, action: Action) -> Action {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.conn.tls() {
            let mut action = action;
            while action == Action::Send {
                let n = tls.send(plain_output(&self.machine, check));
                if n == 0 {
                    // The layer is full: its records go first; the kind
                    // resumes sending once they are out (Probe::wrote).
                    break;
                }
                action = plain_wrote(&mut self.machine, check, n);
            }
            match action {
                Action::Send | Action::Receive => {
                    tls.fill();
                    return if tls.records().is_empty() { Action::Receive } else { Action::Send };
                }
                Action::Connect(_) | Action::ConnectUnix | Action::Done(_) => self.conn.end_tls(),
            }
            return action;
        }
        let _ = check;
        action
    }

    /// The peer closed its side.
    pub fn eof(&mut self) -> Action {
        if self.conn.is_connecting() {
            return Action::Done(Verdict::Fail(Reason::Closed));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self.conn.tls() {
            if let Err(reason) = tls.receive_eof() {
                return self.fail(reason);
            }
            let action = self.plain_eof();
            if matches!(action, Action::Connect(_) | Action::ConnectUnix | Action::Done(_)) {
                self.conn.end_tls();
            }
            return action;
        }
        self.plain_eof()
    }

    fn plain_eof(&mut self) -> Action {
        match &mut self.machine {
            // Its verdict came with the connect: nothing is read after it.
            Machine::Tcp(_) => Action::Receive,
            Machine::Http(exchange) => exchange.eof(&mut self.conn),
            Machine::Grpc(call) => call.eof(),
        }
    }

    /// A read or write failed.
    pub(crate) fn io_failed(&mut self, err: &io::Error) -> Action {
        let action = match &mut self.machine {
            Machine::Http(exchange) if !self.conn.is_connecting() => exchange.io_failed(&mut self.conn, err),
            Machine::Grpc(call) if !self.conn.is_connecting() => call.io_failed(err),
            _ => Action::Done(Verdict::Fail(Reason::from_io(err, false))),
        };
        if matches!(action, Action::Connect(_) | Action::Done(_)) {
            self.conn.end_tls();
        }
        action
    }

    /// The round's deadline passed before a verdict.
    pub(crate) fn timed_out(&mut self, after: Duration) -> Verdict {
        self.conn.end_tls();
        match &mut self.machine {
            Machine::Http(exchange) if !self.conn.is_connecting() => exchange.timed_out(after),
            Machine::Grpc(call) if !self.conn.is_connecting() => call.timed_out(after),
            _ => Verdict::Fail(Reason::Timeout(after)),
        }
    }
}

/// The kind's own bytes to write (plaintext under TLS).
#[inline]
fn plain_output<'a>(machine: &'a Machine, check: &'a Check) -> &'a [u8] {
    match machine {
        Machine::Tcp(_) => &[],
        Machine::Http(exchange) => exchange.output(check),
        Machine::Grpc(call) => call.output(),
    }
}

#[inline]
fn plain_wrote(machine: &mut Machine, check: &Check, n: usize) -> Action {
    match machine {
        Machine::Tcp(_) => Action::Receive,
        Machine::Http(exchange) => exchange.wrote(check, n),
        Machine::Grpc(call) => call.wrote(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::http::REDIRECT_DRAIN;
    use crate::verdict::HttpReason;
    use crate::wire::response;

    fn check(url: &str) -> Check {
        Check::parse(url).unwrap()
    }

    /// Drives a probe to the point of reading, as the engine would.
    fn reading(c: &Check) -> Probe {
        let mut p = Probe::default();
        assert!(matches!(p.start(c, &c.addrs, Instant::now()), Action::Connect(_)));
        assert_eq!(p.connected(c, Instant::now()), Action::Send);
        let n = p.output(c).len();
        assert_eq!(p.wrote(c, n), Action::Receive);
        p
    }

    fn verdict_of(responses: &[&[u8]], eof: bool) -> Action {
        let c = check("http://127.0.0.1:8080/health");
        let mut p = reading(&c);
        let mut last = Action::Receive;
        for r in responses {
            last = p.received(&c, r);
            if matches!(last, Action::Done(_)) {
                return last;
            }
        }
        if eof {
            last = p.eof();
        }
        last
    }

    fn fail(reason: Reason) -> Action {
        Action::Done(Verdict::Fail(reason))
    }

    #[test]
    fn verdicts_follow_kubelet() {
        let pass = Action::Done(Verdict::Pass);
        let cases: &[(&[&[u8]], bool, Action)] = &[
            (&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], false, Action::Done(Verdict::Pass)),
            (&[b"HTTP/1.1 204 No Content\r\n\r\n"], false, Action::Done(Verdict::Pass)),
            (&[b"HTTP/1.1 399 X\r\nContent-Length: 0\r\n\r\n"], false, Action::Done(Verdict::Pass)),
            (&[b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"], false, Action::Done(Verdict::Pass)),
            (
                &[b"HTTP/1.1 199 X\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"],
                false,
                fail(Reason::Http(HttpReason::Status(404))),
            ),
            (&[b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"], true, Action::Done(Verdict::Pass)),
            (&[b"HTTP/1.1 101 Switching\r\n\r\n"], true, fail(Reason::Http(HttpReason::Status(101)))),
            (&[b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"], false, fail(Reason::Http(HttpReason::Status(400)))),
            (
                &[b"HTTP/1.1 503 Unavailable\r\nContent-Length: 5\r\n\r\nno"],
                true,
                fail(Reason::Http(HttpReason::Status(503))),
            ),
            (&[b"HTTP/1.0 200 OK\r\n\r\nbody until close"], true, Action::Done(Verdict::Pass)),
            (
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
                true,
                fail(Reason::from(response::Error::BodyCut)),
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
                false,
                fail(Reason::from(response::Error::Invalid)),
            ),
            (&[b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"], false, fail(Reason::from(response::Error::Invalid))),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
                false,
                Action::Done(Verdict::Pass),
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n", b"0\r\nT: v\r\n\r\n"],
                false,
                Action::Done(Verdict::Pass),
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
                false,
                fail(Reason::from(response::Error::Invalid)),
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"],
                true,
                fail(Reason::from(response::Error::BodyCut)),
            ),
            (&[b"garbage\r\n\r\n"], false, fail(Reason::from(response::Error::Invalid))),
            (&[b"HTTP/1.1 2"], true, fail(Reason::Closed)),
            (&[], true, fail(Reason::Closed)),
            // Transfer-Encoding: one `chunked` on HTTP/1.1, ignored on 1.0.
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok"],
                true,
                fail(Reason::from(response::Error::UnsupportedTransferEncoding)),
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
                false,
                fail(Reason::from(response::Error::TooManyTransferEncodings)),
            ),
            (&[b"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok"], true, Action::Done(Verdict::Pass)),
            // Chunked strictness: a bare LF, 17 digits.
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n"],
                false,
                fail(Reason::from(response::Error::Invalid)),
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000002\r\nok\r\n0\r\n\r\n"],
                false,
                fail(Reason::from(response::Error::Invalid)),
            ),
            // Head leniency: obs-fold, a space in a name, HTTP/1.2, spaces
            // before the code, many fields; but no leading empty line.
            (
                &[b"HTTP/1.2   200 OK\r\nA: b\r\n c\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n"],
                false,
                Action::Done(Verdict::Pass),
            ),
            (
                &[&b"HTTP/1.1 200 OK\r\n"[..], &b"X: y\r\n".repeat(200), b"Content-Length: 0\r\n\r\n"],
                false,
                Action::Done(Verdict::Pass),
            ),
            (&[b"\r\nHTTP/1.1 200 OK\r\n\r\n"], false, fail(Reason::from(response::Error::Invalid))),
            // Byte by byte still works.
            (&[b"H", b"TTP/1.1 20", b"0 OK\r\n", b"Content-Length: 1\r\n\r", b"\n", b"x"], false, pass),
        ];
        for (i, (responses, eof, want)) in cases.iter().enumerate() {
            assert_eq!(&verdict_of(responses, *eof), want, "case {i}");
        }
    }

    #[test]
    fn bounds_head_and_body() {
        let c = check("http://127.0.0.1:8080/");
        let mut p = reading(&c);
        let mut action = p.received(&c, b"HTTP/1.1 200 OK\r\n");
        let line = b"X-Filler: 0123456789012345678901234567890123456789\r\n";
        while action == Action::Receive {
            action = p.received(&c, line);
        }
        assert_eq!(action, fail(Reason::from(response::Error::HeadersTooLarge)));

        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 200 OK\r\n\r\n"), Action::Receive);
        let chunk = [b'x'; 4096];
        assert_eq!(p.received(&c, &chunk), Action::Receive);
        assert_eq!(p.received(&c, &chunk), Action::Receive);
        // 10 KiB read: the verdict comes without waiting for the end.
        assert_eq!(p.received(&c, &chunk), Action::Done(Verdict::Pass));
    }

    /// Completes the connect and the write of a followed redirect.
    fn resend(p: &mut Probe, c: &Check) -> String {
        assert_eq!(p.connected(c, Instant::now()), Action::Send);
        let request = String::from_utf8(p.output(c).to_vec()).unwrap();
        let n = p.output(c).len();
        assert_eq!(p.wrote(c, n), Action::Receive);
        request
    }

    #[test]
    fn follows_same_host_redirects_only() {
        let c = check("http://localhost:8080/a");
        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(a, Action::Connect("127.0.0.1:8080".parse().unwrap()));
        let request = resend(&mut p, &c);
        assert!(request.starts_with("GET /b HTTP/1.1\r\nHost: localhost:8080\r\n"), "{request}");
        assert!(request.contains("\r\nReferer: http://localhost:8080/a\r\n"), "{request}");
        // Another port on the same host is followed too.
        let a = p.received(&c, b"HTTP/1.1 301 Moved\r\nLocation: http://localhost:9/c?x\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(a, Action::Connect("127.0.0.1:9".parse().unwrap()));
        // Refused on IPv4, then ::1 on the redirected port.
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(p.connect_failed(&refused), Action::Connect("[::1]:9".parse().unwrap()));
        assert_eq!(p.connect_failed(&refused), fail(Reason::Refused));

        let pass = || Action::Done(Verdict::Pass);
        let cases: &[(&[u8], Action)] = &[
            // Another host, or the same one written differently: the 3xx passes.
            (b"HTTP/1.1 307 T\r\nLocation: http://example.com/\r\nContent-Length: 0\r\n\r\n", pass()),
            (b"HTTP/1.1 307 T\r\nLocation: http://LOCALHOST:8080/\r\nContent-Length: 0\r\n\r\n", pass()),
            (b"HTTP/1.1 307 T\r\nLocation: http://127.0.0.1:8080/\r\nContent-Length: 0\r\n\r\n", pass()),
            // `http:x` has no host; `//h/` is another host.
            (b"HTTP/1.1 302 F\r\nLocation: http:x\r\nContent-Length: 0\r\n\r\n", pass()),
            (b"HTTP/1.1 302 F\r\nLocation: //other/x\r\nContent-Length: 0\r\n\r\n", pass()),
            // Empty Location: not followed.
            (b"HTTP/1.1 302 F\r\nLocation:   \r\nContent-Length: 0\r\n\r\n", pass()),
            // The same host over https is followed, on 443 (kubelet follows
            // whatever the scheme); a build without TLS cannot.
            (
                b"HTTP/1.1 308 P\r\nLocation: https://localhost/\r\n\r\n",
                if cfg!(feature = "tls") {
                    Action::Connect("127.0.0.1:443".parse().unwrap())
                } else {
                    fail(Reason::Http(HttpReason::UnsupportedScheme))
                },
            ),
            (
                b"HTTP/1.1 308 P\r\nLocation: ftp://localhost/\r\n\r\n",
                fail(Reason::Http(HttpReason::UnsupportedScheme)),
            ),
            (b"HTTP/1.1 302 F\r\nLocation: /a\tb\r\n\r\n", fail(Reason::Http(HttpReason::InvalidLocation))),
            (b"HTTP/1.1 302 F\r\nLocation: /%zz\r\n\r\n", fail(Reason::Http(HttpReason::InvalidLocation))),
            // The head is checked before the redirect is followed.
            (
                b"HTTP/1.1 302 F\r\nLocation: /b\r\nContent-Length: x\r\n\r\n",
                fail(Reason::from(response::Error::Invalid)),
            ),
            (
                b"HTTP/1.1 302 F\r\nLocation: /b\r\nTransfer-Encoding: gzip\r\n\r\n",
                fail(Reason::from(response::Error::UnsupportedTransferEncoding)),
            ),
            // A body cut short on a redirect to another host fails, as the
            // 3xx's body is read like any other.
            (
                b"HTTP/1.1 302 F\r\nLocation: http://x/\r\nContent-Length: 5\r\n\r\nab",
                fail(Reason::from(response::Error::BodyCut)),
            ),
        ];
        for (i, (response, want)) in cases.iter().enumerate() {
            let mut p = reading(&c);
            let mut a = p.received(&c, response);
            if a == Action::Receive {
                a = p.eof();
            }
            assert_eq!(&a, want, "case {i}");
        }
    }

    #[test]
    fn a_backslash_is_not_a_slash() {
        let c = check("http://localhost:8080/a/b");
        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 302 F\r\nLocation: \\\\evil\\x\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(a, Action::Connect(_)));
        assert!(resend(&mut p, &c).starts_with("GET /a/%5C%5Cevil%5Cx HTTP/1.1\r\n"));
    }

    #[test]
    fn redirect_bodies_are_drained_first() {
        let c = check("http://localhost:8080/a");
        // Unknown length: up to 2 KiB or the close, then the redirect.
        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 302 F\r\nLocation: /b\r\n\r\nsome"), Action::Receive);
        assert!(matches!(p.eof(), Action::Connect(_)));
        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 302 F\r\nLocation: /b\r\n\r\n"), Action::Receive);
        assert!(matches!(p.received(&c, &[b'x'; REDIRECT_DRAIN]), Action::Connect(_)));
        // A bad chunk while draining is ignored.
        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 302 F\r\nLocation: /b\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert!(matches!(a, Action::Connect(_)));
        // A known length over 2 KiB is not read at all.
        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 302 F\r\nLocation: /b\r\nContent-Length: 5000\r\n\r\n");
        assert!(matches!(a, Action::Connect(_)));
        // A redirect that fails (a scheme, the limit) fails once drained.
        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 302 F\r\nLocation: ftp://localhost/\r\n\r\nab"), Action::Receive);
        assert_eq!(p.eof(), fail(Reason::Http(HttpReason::UnsupportedScheme)));
        // A timeout while draining is a timeout.
        let mut p = reading(&c);
        p.received(&c, b"HTTP/1.1 302 F\r\nLocation: /b\r\nContent-Length: 10\r\n\r\nab");
        let after = Duration::from_secs(1);
        assert_eq!(p.timed_out(after), Verdict::Fail(Reason::Timeout(after)));
    }

    #[test]
    fn headers_follow_redirects_as_go_sends_them() {
        let mut c = check("http://localhost:8080/a");
        c.add_header("Host", "vhost.example");
        c.add_header("Content-Type", "text/plain");
        c.add_header("X-Token", "t");
        let mut p = Probe::default();
        p.start(&c, &c.addrs, Instant::now());
        let first = resend(&mut p, &c);
        assert!(first.contains("Host: vhost.example\r\n") && first.contains("X-Token: t\r\n"), "{first}");
        // 307, relative: the given Host and the body fields stay.
        p.received(&c, b"HTTP/1.1 307 T\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
        let second = resend(&mut p, &c);
        assert!(second.contains("Host: vhost.example\r\n"), "{second}");
        assert!(second.contains("Content-Type: text/plain\r\n"), "{second}");
        // 302, absolute: the URL's host, and no body fields from now on.
        p.received(&c, b"HTTP/1.1 302 F\r\nLocation: http://localhost:8080/c\r\nContent-Length: 0\r\n\r\n");
        let third = resend(&mut p, &c);
        assert!(third.contains("Host: localhost:8080\r\n"), "{third}");
        assert!(!third.contains("Content-Type"), "{third}");
        assert!(third.contains("X-Token: t\r\n") && third.contains("Referer: http://localhost:8080/b\r\n"), "{third}");
    }

    #[test]
    fn a_given_referer_is_kept_unless_empty() {
        for (given, want) in [("r.example", "r.example"), ("", "http://localhost:8080/a")] {
            let mut c = check("http://localhost:8080/a");
            c.add_header("Referer", given);
            let mut p = reading(&c);
            p.received(&c, b"HTTP/1.1 302 F\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
            let request = resend(&mut p, &c);
            assert_eq!(request.matches("Referer:").count(), 1, "{request}");
            assert!(request.contains(&format!("\r\nReferer: {want}\r\n")), "{request}");
        }
    }

    #[test]
    fn redirect_loops_stop() {
        let c = check("http://127.0.0.1:8080/loop");
        let mut p = reading(&c);
        // Nine redirects are followed; the tenth request's redirect fails.
        for hop in 1..=MAX_REDIRECTS {
            let a = p.received(&c, b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
            if hop == MAX_REDIRECTS {
                assert_eq!(a, fail(Reason::Http(HttpReason::RedirectLimit)));
                return;
            }
            assert!(matches!(a, Action::Connect(_)), "hop {hop}: {a:?}");
            resend(&mut p, &c);
        }
        panic!("no limit");
    }

    #[test]
    fn tcp_passes_on_connect_and_timeouts_keep_the_status() {
        let c = check("tcp://127.0.0.1:5432");
        let mut p = Probe::default();
        p.start(&c, &c.addrs, Instant::now());
        assert_eq!(p.connected(&c, Instant::now()), Action::Done(Verdict::Pass));

        let c = check("http://127.0.0.1:8080/");
        let mut p = reading(&c);
        assert_eq!(p.timed_out(Duration::from_secs(1)), Verdict::Fail(Reason::Timeout(Duration::from_secs(1))));
        let mut p = reading(&c);
        p.received(&c, b"HTTP/1.1 500 E\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(p.timed_out(Duration::from_secs(1)), Verdict::Fail(Reason::Http(HttpReason::Status(500))));
    }

    #[test]
    fn partial_writes_resume() {
        let c = check("http://127.0.0.1:8080/");
        let mut p = Probe::default();
        p.start(&c, &c.addrs, Instant::now());
        p.connected(&c, Instant::now());
        let total = p.output(&c).len();
        assert_eq!(p.wrote(&c, 3), Action::Send);
        assert_eq!(p.output(&c).len(), total - 3);
        assert_eq!(p.wrote(&c, total - 3), Action::Receive);
    }

    #[test]
    fn a_unix_socket_is_one_try_and_redirects_stay_on_it() {
        let mut c = check("http://app.internal/a");
        c.unix_socket = Some("/run/app.sock".into());
        let mut p = Probe::default();
        assert_eq!(p.start(&c, &c.addrs, Instant::now()), Action::ConnectUnix);
        let missing = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(p.connect_failed(&missing), Action::Done(Verdict::Fail(Reason::NoSocket)));
        assert_eq!(p.start(&c, &c.addrs, Instant::now()), Action::ConnectUnix);
        assert_eq!(p.connected(&c, Instant::now()), Action::Send);
        let n = p.output(&c).len();
        assert_eq!(p.wrote(&c, n), Action::Receive);
        let redirect = b"HTTP/1.1 302 F\r\nLocation: http://app.internal:9/b\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(p.received(&c, redirect), Action::ConnectUnix);
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(p.connect_failed(&denied), Action::Done(Verdict::Fail(Reason::PermissionDenied)));
    }

    #[test]
    fn only_the_final_response_meets_the_expected_statuses() {
        let mut c = check("http://127.0.0.1/a");
        c.expect_status = Some(crate::check::StatusSet::parse("200").unwrap());
        // A redirect being drained is not judged: a timeout there says so.
        let mut p = reading(&c);
        let redirect = b"HTTP/1.1 302 F\r\nLocation: /b\r\nContent-Length: 10\r\n\r\nab";
        assert_eq!(p.received(&c, redirect), Action::Receive);
        assert_eq!(p.timed_out(Duration::from_secs(1)), Verdict::Fail(Reason::Timeout(Duration::from_secs(1))));
        // The final one is, even while its body is read.
        let mut p = reading(&c);
        assert_eq!(
            p.received(&c, b"HTTP/1.1 204 N\r\nContent-Length: 10\r\n\r\nab"),
            Action::Done(Verdict::Fail(Reason::Http(HttpReason::Unexpected(204, "200".into()))))
        );
        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 203 N\r\nContent-Length: 10\r\n\r\nab"), Action::Receive);
        let unexpected = Verdict::Fail(Reason::Http(HttpReason::Unexpected(203, "200".into())));
        assert_eq!(p.timed_out(Duration::from_secs(1)), unexpected);
    }
}

/// The TLS layer under the kinds, against a rustls server in memory (ring,
/// test-only), its bytes handed over in every split.
#[cfg(all(test, feature = "tls"))]
mod tls_tests {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ServerConfig, ServerConnection};

    use super::*;
    use crate::verdict::{TlsFailure, TlsReason};

    fn server(alpn: &[&[u8]]) -> ServerConnection {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["elsewhere.test".into()]).unwrap().self_signed(&key).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        ServerConnection::new(Arc::new(config)).unwrap()
    }

    /// Runs a probe of `url` against `server`, which answers `response` to
    /// the first request; the server's bytes reach the probe `split` at a
    /// time. The verdict and the plaintext the server read.
    fn exchange(url: &str, server: ServerConnection, response: &[u8], split: usize) -> (Action, Vec<u8>) {
        let (action, request, _) = exchange_on(url, server, response, split);
        (action, request)
    }

    /// [`exchange`], with the probe (to follow a redirect further).
    fn exchange_on(url: &str, mut server: ServerConnection, response: &[u8], split: usize) -> (Action, Vec<u8>, Probe) {
        let c = Check::parse(url).unwrap();
        let mut p = Probe::default();
        assert!(matches!(p.start(&c, &c.addrs, Instant::now()), Action::Connect(_)));
        let mut action = p.connected(&c, Instant::now());
        let (mut to_client, mut request, mut answered) = (Vec::new(), Vec::new(), false);
        for _ in 0..100_000 {
            action = match action {
                Action::Send => {
                    let out = p.output(&c).to_vec();
                    assert!(!out.is_empty(), "Send with nothing to send");
                    let mut rest = &out[..];
                    while !rest.is_empty() {
                        server.read_tls(&mut rest).unwrap();
                        if let Err(e) = server.process_new_packets() {
                            panic!("server: {e}");
                        }
                    }
                    let _ = server.reader().read_to_end(&mut request);
                    p.wrote(&c, out.len())
                }
                Action::Receive => {
                    if !answered && request.windows(4).any(|w| w == b"\r\n\r\n") {
                        server.writer().write_all(response).unwrap();
                        server.send_close_notify();
                        answered = true;
                    }
                    while server.wants_write() {
                        server.write_tls(&mut to_client).unwrap();
                    }
                    if to_client.is_empty() {
                        p.eof()
                    } else {
                        let n = split.min(to_client.len());
                        let chunk: Vec<u8> = to_client.drain(..n).collect();
                        p.received(&c, &chunk)
                    }
                }
                done => return (done, request, p),
            };
        }
        panic!("no verdict");
    }

    #[test]
    fn https_passes_in_any_split() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for split in [1, 2, 7, 100, 1 << 20] {
            let (action, request) = exchange("https://localhost:8443/health", server(&[b"http/1.1"]), ok, split);
            assert_eq!(action, Action::Done(Verdict::Pass), "split {split}");
            let request = String::from_utf8(request).unwrap();
            assert!(request.starts_with("GET /health HTTP/1.1\r\nHost: localhost:8443\r\n"), "{request}");
        }
        let big = [&b"HTTP/1.1 503 No\r\nContent-Length: 40000\r\n\r\n"[..], &[b'x'; 40000]].concat();
        let (action, _) = exchange("https://127.0.0.1:8443/", server(&[]), &big, 5000);
        assert_eq!(action, Action::Done(Verdict::Fail(Reason::Http(crate::verdict::HttpReason::Status(503)))));
    }

    /// https to http on the same host is followed, in plain text and with no
    /// Referer (Go sends none from https to http).
    #[test]
    fn a_redirect_to_http_is_followed_in_plain_text() {
        let url = "https://localhost:8443/a";
        let moved = b"HTTP/1.1 302 F\r\nLocation: http://localhost:8080/b\r\nContent-Length: 0\r\n\r\n";
        let (action, _, mut p) = exchange_on(url, server(&[b"http/1.1"]), moved, 100);
        assert_eq!(action, Action::Connect("127.0.0.1:8080".parse().unwrap()));
        let c = Check::parse(url).unwrap();
        assert_eq!(p.connected(&c, Instant::now()), Action::Send);
        let request = String::from_utf8(p.output(&c).to_vec()).unwrap();
        assert!(request.starts_with("GET /b HTTP/1.1\r\nHost: localhost:8080\r\n"), "{request}");
        assert!(!request.contains("Referer"), "{request}");
    }

    #[test]
    fn grpcs_needs_h2_by_alpn() {
        // A server that chooses no protocol (as openssl s_server -www).
        let (action, _) = exchange("grpcs://localhost:8443", server(&[]), b"", 1 << 20);
        assert_eq!(action, Action::Done(Verdict::Fail(Reason::Tls(TlsReason::Handshake(TlsFailure::NoH2)))));
    }
}
