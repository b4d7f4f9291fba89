//! The outbound state machine of one probe: connect (trying each address),
//! send the request, read the status and a bounded body, reach a verdict.
//! It does no I/O and reads no clock: the engine feeds it events and bytes,
//! so its transitions are unit-tested without sockets.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::check::{Check, Kind};
use crate::verdict::{HttpReason, Reason, Verdict};
pub mod grpc;
use crate::wire::response::{BodyReader, Framing, Head, HeadReader, Progress};
use crate::wire::url;

/// Longest response head line kept (see [`crate::wire::response::MAX_LINE`]).
pub const MAX_HEAD: usize = crate::wire::response::MAX_LINE;
/// Body bytes read at most, as kubelet does, then the socket is closed.
pub const MAX_BODY: usize = 10 * 1024;
/// Requests made at most, as kubelet's redirect checker allows: the first
/// and 9 redirects; a tenth redirect fails.
pub const MAX_REDIRECTS: u8 = 10;
/// Before following a redirect Go reads this much of its body, when the
/// body's length is unknown or no larger.
const REDIRECT_DRAIN: usize = 2 << 10;

/// What the engine must do next for this probe.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a new connection to this address (closing any current one).
    Connect(SocketAddr),
    /// Write [`Probe::output`] to the connection.
    Send,
    /// Read from the connection and pass the bytes to [`Probe::received`].
    Receive,
    /// Close the connection: the probe has its verdict.
    Done(Verdict),
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Connecting,
    Sending,
    Head,
    /// Reading a body: for the verdict, or (`follow`) before a redirect.
    Body {
        reader: BodyReader,
        follow: bool,
    },
    /// A `grpc://` check's call, which owns the connection from here on.
    Grpc,
    Done,
}

/// The request of a redirect hop.
#[derive(Debug)]
struct Hop {
    url: url::Url,
    port: u16,
    request: Vec<u8>,
    /// The `Host` sent, when the user's one was kept.
    host: Option<Vec<u8>>,
}

/// One probe of one check, for one round.
#[derive(Debug, Default)]
pub struct Probe {
    state: State,
    /// Where to connect, tried in order: given by the engine each round
    /// (the check's own addresses, or what its name resolved to).
    addrs: Vec<SocketAddr>,
    /// Index of the next address to try.
    next_addr: usize,
    /// The first connect error: for `localhost` the IPv4 refusal says more
    /// than the IPv6 "address not available" that may follow it.
    first_error: Option<Reason>,
    /// The current hop once a redirect was followed.
    redirect: Option<Hop>,
    /// What follows once the redirect's body is drained: the next hop, or
    /// the failure Go reports only after draining.
    next: Option<Result<Hop, Reason>>,
    /// Requests made so far in this probe.
    requests: u8,
    /// Cleared by a 301/302/303: the user's body fields are then dropped.
    body_fields: bool,
    sent: usize,
    head: HeadReader,
    status: u16,
    grpc: grpc::Call,
}

impl Probe {
    /// The first step: connect to the first of `addrs`. The probe must
    /// reach its verdict by `deadline`.
    pub fn start(&mut self, addrs: &[SocketAddr], deadline: Instant) -> Action {
        // Reset field by field, keeping the buffers: building a whole new
        // probe (over a kilobyte with the gRPC call and the redirect hops)
        // and dropping the old one cost every check more than its parsing.
        // The pattern names every field, so a new one cannot be missed.
        let Probe {
            state,
            addrs: kept,
            next_addr,
            first_error,
            redirect,
            next,
            requests,
            body_fields,
            sent,
            head,
            status,
            grpc,
        } = self;
        *state = State::default();
        kept.clear();
        kept.extend_from_slice(addrs);
        *next_addr = 0;
        *first_error = None;
        *redirect = None;
        *next = None;
        *requests = 0;
        *body_fields = true;
        *sent = 0;
        head.reset();
        *status = 0;
        grpc.start(deadline);
        self.next_connect()
    }

    /// The step to retry when the connection reports readiness.
    pub fn resume(&self) -> Option<Action> {
        match self.state {
            State::Connecting => None,
            State::Sending => Some(Action::Send),
            State::Head | State::Body { .. } => Some(Action::Receive),
            State::Grpc if self.grpc.sending() => Some(Action::Send),
            State::Grpc => Some(Action::Receive),
            State::Done => None,
        }
    }

    pub fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting)
    }

    fn next_connect(&mut self) -> Action {
        let Some(addr) = self.addrs.get(self.next_addr) else {
            let reason = self.first_error.take().unwrap_or(Reason::Refused);
            return self.finish(Verdict::Fail(reason));
        };
        self.next_addr += 1;
        self.state = State::Connecting;
        let mut addr = *addr;
        if let Some(hop) = &self.redirect {
            addr.set_port(hop.port);
        }
        Action::Connect(addr)
    }

    /// The connect failed, at once or as an event: try the next address.
    pub fn connect_failed(&mut self, err: &io::Error) -> Action {
        self.first_error.get_or_insert_with(|| Reason::from_io(err, true));
        self.next_connect()
    }

    /// The connection is established at `now`.
    pub fn connected(&mut self, check: &Check, now: Instant) -> Action {
        match check.kind {
            Kind::Tcp => return self.finish(Verdict::Pass),
            Kind::Grpc => {
                self.state = State::Grpc;
                return self.grpc.connected(&check.grpc, now);
            }
            Kind::Http | Kind::Post => {}
        }
        self.state = State::Sending;
        self.sent = 0;
        self.requests = self.requests.saturating_add(1);
        Action::Send
    }

    /// The request bytes still to write.
    pub fn output<'a>(&'a self, check: &'a Check) -> &'a [u8] {
        if matches!(self.state, State::Grpc) {
            return self.grpc.output();
        }
        let request = match &self.redirect {
            Some(hop) => &hop.request,
            None => &check.request,
        };
        &request[self.sent.min(request.len())..]
    }

    pub fn wrote(&mut self, check: &Check, n: usize) -> Action {
        if matches!(self.state, State::Grpc) {
            let action = self.grpc.wrote(n);
            return self.grpc_step(action);
        }
        self.sent += n;
        if self.output(check).is_empty() {
            self.state = State::Head;
            self.head.reset();
            Action::Receive
        } else {
            Action::Send
        }
    }

    /// Bytes arrived (never empty: end of stream is [`Probe::eof`]).
    pub fn received(&mut self, check: &Check, data: &[u8]) -> Action {
        match self.state {
            State::Head => match self.head.feed(data) {
                Ok(None) => Action::Receive,
                Ok(Some((head, used))) => self.on_head(check, head, &data[used..]),
                Err(e) => self.finish(Verdict::Fail(e.into())),
            },
            State::Body { .. } => self.on_body(data),
            State::Grpc => {
                let action = self.grpc.received(data);
                self.grpc_step(action)
            }
            _ => Action::Receive,
        }
    }

    /// Notes the end of a gRPC call.
    fn grpc_step(&mut self, action: Action) -> Action {
        if matches!(action, Action::Done(_)) {
            self.state = State::Done;
        }
        action
    }

    /// The peer closed its side.
    pub fn eof(&mut self) -> Action {
        match &self.state {
            State::Body { follow: true, .. } => self.follow(),
            State::Body { reader, .. } => match reader.eof() {
                Ok(()) => self.body_done(),
                Err(e) => self.fail_after_status(e.into()),
            },
            State::Done => Action::Receive,
            State::Grpc => {
                let action = self.grpc.eof();
                self.grpc_step(action)
            }
            _ => self.finish(Verdict::Fail(Reason::Closed)),
        }
    }

    /// A read or write failed.
    pub fn io_failed(&mut self, err: &io::Error) -> Action {
        if matches!(self.state, State::Grpc) {
            let action = self.grpc.io_failed(err);
            return self.grpc_step(action);
        }
        // Go ignores errors while draining a redirect's body.
        if matches!(self.state, State::Body { follow: true, .. }) {
            return self.follow();
        }
        self.fail_after_status(Reason::from_io(err, false))
    }

    /// The round's deadline passed before a verdict.
    pub fn timed_out(&mut self, after: Duration) -> Verdict {
        if matches!(self.state, State::Grpc) {
            self.state = State::Done;
            return self.grpc.timed_out(after);
        }
        match self.fail_after_status(Reason::Timeout(after)) {
            Action::Done(verdict) => verdict,
            _ => unreachable!("fail_after_status always finishes"),
        }
    }

    /// Fails, but a failing status already read is the better reason.
    fn fail_after_status(&mut self, reason: Reason) -> Action {
        if self.status != 0 && !passes(self.status) {
            return self.finish(Verdict::Fail(Reason::Http(HttpReason::Status(self.status))));
        }
        self.finish(Verdict::Fail(reason))
    }

    fn finish(&mut self, verdict: Verdict) -> Action {
        self.state = State::Done;
        Action::Done(verdict)
    }

    /// A final head arrived; `rest` is what followed it in the same read.
    fn on_head(&mut self, check: &Check, head: Head, rest: &[u8]) -> Action {
        self.status = head.status;
        // Go follows a 3xx only with a non-empty Location.
        if check.kind == Kind::Http && is_redirect(head.status) && !head.location.is_empty() {
            match self.plan_redirect(check, &head) {
                Ok(None) => {}
                Ok(Some(next)) => {
                    self.next = Some(next);
                    let drain = match head.framing {
                        Some(Framing::Length(n)) if n > REDIRECT_DRAIN as u64 => None,
                        framing => framing,
                    };
                    let Some(framing) = drain else { return self.follow() };
                    self.state = State::Body { reader: BodyReader::new(framing, REDIRECT_DRAIN), follow: true };
                    return if rest.is_empty() { Action::Receive } else { self.on_body(rest) };
                }
                Err(reason) => return self.finish(Verdict::Fail(reason)),
            }
        }
        let Some(framing) = head.framing else { return self.body_done() };
        self.state = State::Body { reader: BodyReader::new(framing, MAX_BODY), follow: false };
        if rest.is_empty() {
            Action::Receive
        } else {
            self.on_body(rest)
        }
    }

    /// The next hop of a redirect, as kubelet's client decides it: None
    /// when the 3xx itself is the answer (another host); Err to fail at
    /// once (a Location that does not parse); Some(Err) to fail after
    /// draining the body, as Go does for the limit and a scheme or port it
    /// cannot connect to.
    fn plan_redirect(&mut self, check: &Check, head: &Head) -> Result<Option<Result<Hop, Reason>>, Reason> {
        let reference = url::Url::parse(&head.location).map_err(|_| Reason::Http(HttpReason::InvalidLocation))?;
        Ok(self.next_hop(check, head, &reference))
    }

    fn next_hop(&mut self, check: &Check, head: &Head, reference: &url::Url) -> Option<Result<Hop, Reason>> {
        let base = self.redirect.as_ref().map_or(&check.target, |hop| &hop.url);
        let url = base.join(reference);
        // kubelet follows only the same host name as written, any port.
        if url.hostname() != check.target.hostname() {
            return None;
        }
        if self.requests >= MAX_REDIRECTS {
            return Some(Err(Reason::Http(HttpReason::RedirectLimit)));
        }
        match &url.scheme[..] {
            b"http" => {}
            b"https" => return Some(Err(Reason::Http(HttpReason::HttpsRedirect))),
            _ => return Some(Err(Reason::Http(HttpReason::UnsupportedScheme))),
        }
        let port = match url.port() {
            b"" => 80,
            digits => match std::str::from_utf8(digits).ok().and_then(|p| p.parse().ok()) {
                Some(port) => port,
                None => return Some(Err(Reason::Http(HttpReason::InvalidLocation))),
            },
        };
        if matches!(head.status, 301..=303) {
            self.body_fields = false;
        }
        // A given Host is kept through relative redirects only, as Go does.
        let current_host = match &self.redirect {
            Some(hop) => hop.host.clone(),
            None => check.host_override().filter(|h| *h != &check.target.host[..]).map(<[u8]>::to_vec),
        };
        let host = current_host.filter(|_| !reference.is_absolute());
        let referer = base.to_text();
        let request = check.request_to(&url, host.as_deref(), Some(&referer), self.body_fields);
        Some(Ok(Hop { url, port, request, host }))
    }

    /// Follows the planned redirect on a new connection.
    fn follow(&mut self) -> Action {
        let hop = match self.next.take() {
            None => return self.body_done(),
            Some(Err(reason)) => return self.finish(Verdict::Fail(reason)),
            Some(Ok(hop)) => hop,
        };
        self.redirect = Some(hop);
        self.next_addr = 0;
        self.first_error = None;
        self.status = 0;
        self.next_connect()
    }

    fn on_body(&mut self, data: &[u8]) -> Action {
        let State::Body { reader, follow } = &mut self.state else { return Action::Receive };
        let follow = *follow;
        match reader.feed(data) {
            Ok(Progress::More) => Action::Receive,
            Ok(Progress::Done) if follow => self.follow(),
            Ok(Progress::Done) => self.body_done(),
            Err(_) if follow => self.follow(),
            Err(e) => self.fail_after_status(e.into()),
        }
    }

    fn body_done(&mut self) -> Action {
        let verdict = if passes(self.status) {
            Verdict::Pass
        } else {
            Verdict::Fail(Reason::Http(HttpReason::Status(self.status)))
        };
        self.finish(verdict)
    }
}

/// kubelet's rule: 200 <= status < 400 passes.
pub fn passes(status: u16) -> bool {
    (200..400).contains(&status)
}

/// The status codes Go's client follows.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::response;

    fn check(url: &str) -> Check {
        Check::parse(url).unwrap()
    }

    /// Drives a probe to the point of reading, as the engine would.
    fn reading(c: &Check) -> Probe {
        let mut p = Probe::default();
        assert!(matches!(p.start(&c.addrs, Instant::now()), Action::Connect(_)));
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
            (b"HTTP/1.1 308 P\r\nLocation: https://localhost/\r\n\r\n", fail(Reason::Http(HttpReason::HttpsRedirect))),
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
        // A redirect that fails (https, the limit) fails once drained.
        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 302 F\r\nLocation: https://localhost/\r\n\r\nab"), Action::Receive);
        assert_eq!(p.eof(), fail(Reason::Http(HttpReason::HttpsRedirect)));
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
        p.start(&c.addrs, Instant::now());
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
        p.start(&c.addrs, Instant::now());
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
        p.start(&c.addrs, Instant::now());
        p.connected(&c, Instant::now());
        let total = p.output(&c).len();
        assert_eq!(p.wrote(&c, 3), Action::Send);
        assert_eq!(p.output(&c).len(), total - 3);
        assert_eq!(p.wrote(&c, total - 3), Action::Receive);
    }
}
