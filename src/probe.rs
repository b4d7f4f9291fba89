//! The outbound state machine of one probe: connect (trying each address),
//! send the request, read the status and a bounded body, reach a verdict.
//! It does no I/O and reads no clock: the engine feeds it events and bytes,
//! so its transitions are unit-tested without sockets.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use url::Url;

use crate::check::{request_bytes, Check, Kind, Reason, Verdict};
use crate::grpc;

/// Response head bound. Probe targets are health endpoints; a head larger
/// than this is a misbehaving upstream, not a healthy one.
pub const MAX_HEAD: usize = 16 * 1024;
/// Body bytes read at most, as kubelet does, then the socket is closed.
pub const MAX_BODY: usize = 10 * 1024;
/// Redirects followed at most, as kubelet (Go's client) does.
pub const MAX_REDIRECTS: u8 = 10;
/// Header slots for httparse; more headers than this count as too large.
const MAX_HEADERS: usize = 64;

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
    Body(Body),
    /// A `grpc://` check's call, which owns the connection from here on.
    Grpc,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilEof,
}

/// Position in a chunked body, byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size { size: u64, digits: bool, ext: bool },
    Data(u64),
    DataEnd,
    Trailer { line_start: bool },
}

/// One probe of one check, for one round.
#[derive(Debug, Default)]
pub struct Probe {
    state: State,
    /// Index of the next address to try.
    next_addr: usize,
    /// The first connect error: for `localhost` the IPv4 refusal says more
    /// than the IPv6 "address not available" that may follow it.
    first_error: Option<Reason>,
    /// Set once a redirect was followed: the new URL and its request.
    redirect: Option<(Url, Vec<u8>)>,
    hops: u8,
    sent: usize,
    /// Response head bytes while the head is incomplete.
    head: Vec<u8>,
    status: u16,
    body_read: usize,
    grpc: grpc::Call,
}

impl Probe {
    /// The first step: connect to the check's first address. The probe
    /// must reach its verdict by `deadline`.
    pub fn start(&mut self, check: &Check, deadline: Instant) -> Action {
        *self =
            Probe { head: std::mem::take(&mut self.head), grpc: std::mem::take(&mut self.grpc), ..Probe::default() };
        self.head.clear();
        if check.kind == Kind::Grpc {
            self.grpc.start(deadline);
        }
        self.next_connect(check)
    }

    /// The step to retry when the connection reports readiness.
    pub fn resume(&self) -> Option<Action> {
        match self.state {
            State::Connecting => None,
            State::Sending => Some(Action::Send),
            State::Head | State::Body(_) => Some(Action::Receive),
            State::Grpc if self.grpc.sending() => Some(Action::Send),
            State::Grpc => Some(Action::Receive),
            State::Done => None,
        }
    }

    pub fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting)
    }

    fn next_connect(&mut self, check: &Check) -> Action {
        let Some(addr) = check.addrs.get(self.next_addr) else {
            let reason = self.first_error.take().unwrap_or(Reason::Refused);
            return self.finish(Verdict::Fail(reason));
        };
        self.next_addr += 1;
        self.state = State::Connecting;
        let mut addr = *addr;
        if let Some((url, _)) = &self.redirect {
            addr.set_port(url.port_or_known_default().unwrap_or(80));
        }
        Action::Connect(addr)
    }

    /// The connect failed, at once or as an event: try the next address.
    pub fn connect_failed(&mut self, check: &Check, err: &io::Error) -> Action {
        self.first_error.get_or_insert_with(|| Reason::from_io(err, true));
        self.next_connect(check)
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
        Action::Send
    }

    /// The request bytes still to write.
    pub fn output<'a>(&'a self, check: &'a Check) -> &'a [u8] {
        if matches!(self.state, State::Grpc) {
            return self.grpc.output();
        }
        let request = match &self.redirect {
            Some((_, request)) => request,
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
            Action::Receive
        } else {
            Action::Send
        }
    }

    /// Bytes arrived (never empty: end of stream is [`Probe::eof`]).
    pub fn received(&mut self, check: &Check, data: &[u8]) -> Action {
        match self.state {
            State::Head => {
                let mut head = std::mem::take(&mut self.head);
                let fresh = head.is_empty();
                if !fresh {
                    head.extend_from_slice(data);
                }
                let result = self.on_head(check, if fresh { data } else { &head });
                match result {
                    Ok(action) => {
                        head.clear();
                        self.head = head; // keeps the allocation for the next round
                        action
                    }
                    Err(partial_from) => {
                        if fresh {
                            head.extend_from_slice(&data[partial_from..]);
                        } else {
                            head.drain(..partial_from);
                        }
                        self.head = head;
                        Action::Receive
                    }
                }
            }
            State::Body(body) => self.on_body(body, data),
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
        match self.state {
            State::Body(Body::UntilEof) => self.body_done(),
            State::Body(_) => self.fail_after_status(Reason::BodyCut),
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
            return self.finish(Verdict::Fail(Reason::Status(self.status)));
        }
        self.finish(Verdict::Fail(reason))
    }

    fn finish(&mut self, verdict: Verdict) -> Action {
        self.state = State::Done;
        Action::Done(verdict)
    }

    /// Parses a response head; Err(offset) when it is incomplete from there.
    fn on_head(&mut self, check: &Check, buf: &[u8]) -> Result<Action, usize> {
        let mut from = 0;
        loop {
            let buf = &buf[from..];
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let used = match response.parse(buf) {
                Ok(httparse::Status::Complete(used)) => used,
                Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                    return Ok(self.finish(Verdict::Fail(Reason::HeadersTooLarge)))
                }
                Ok(httparse::Status::Partial) => return Err(from),
                Err(httparse::Error::TooManyHeaders) => return Ok(self.finish(Verdict::Fail(Reason::HeadersTooLarge))),
                Err(_) => return Ok(self.finish(Verdict::Fail(Reason::Invalid))),
            };
            let status = response.code.unwrap_or(0);
            // Interim responses (100 Continue, 103 Early Hints) precede the
            // real one, as Go's client treats them; 101 is final.
            if (100..200).contains(&status) && status != 101 {
                from += used;
                continue;
            }
            self.status = status;
            if check.kind == Kind::Http && is_redirect(status) {
                if let Some(location) = header(response.headers, "location") {
                    if let Some(action) = self.redirect(check, location) {
                        return Ok(action);
                    }
                }
            }
            let body = match framing(status, response.headers) {
                Ok(Some(body)) => body,
                Ok(None) => return Ok(self.body_done()),
                Err(()) => return Ok(self.finish(Verdict::Fail(Reason::Invalid))),
            };
            self.state = State::Body(body);
            let rest = &buf[used..];
            return Ok(if rest.is_empty() { Action::Receive } else { self.on_body(body, rest) });
        }
    }

    /// Follows a same-host redirect; None when the 3xx itself is the answer.
    fn redirect(&mut self, check: &Check, location: &[u8]) -> Option<Action> {
        let Ok(location) = std::str::from_utf8(location) else {
            return Some(self.finish(Verdict::Fail(Reason::Invalid)));
        };
        let base = self.redirect.as_ref().map_or(&check.url, |(url, _)| url);
        let Ok(url) = base.join(location.trim()) else {
            return Some(self.finish(Verdict::Fail(Reason::Invalid)));
        };
        // kubelet follows only redirects to the same host name (any port);
        // a redirect elsewhere ends the probe with the 3xx, a pass.
        if url.host_str() != check.url.host_str() {
            return None;
        }
        match url.scheme() {
            "http" => {}
            "https" => return Some(self.finish(Verdict::Fail(Reason::HttpsRedirect))),
            _ => return Some(self.finish(Verdict::Fail(Reason::Invalid))),
        }
        if self.hops >= MAX_REDIRECTS {
            return Some(self.finish(Verdict::Fail(Reason::TooManyRedirects)));
        }
        self.hops += 1;
        let request = request_bytes("GET", &url);
        self.redirect = Some((url, request));
        self.next_addr = 0;
        self.first_error = None;
        self.status = 0;
        self.head.clear();
        Some(self.next_connect(check))
    }

    fn on_body(&mut self, mut body: Body, data: &[u8]) -> Action {
        let room = MAX_BODY - self.body_read;
        let data = &data[..data.len().min(room)];
        self.body_read += data.len();
        let complete = match &mut body {
            Body::UntilEof => false,
            Body::Length(left) => {
                *left = left.saturating_sub(data.len() as u64);
                *left == 0
            }
            Body::Chunked(chunk) => match feed_chunked(chunk, data) {
                Ok(done) => done,
                Err(()) => return self.fail_after_status(Reason::Invalid),
            },
        };
        if complete || self.body_read >= MAX_BODY {
            return self.body_done();
        }
        self.state = State::Body(body);
        Action::Receive
    }

    fn body_done(&mut self) -> Action {
        let verdict = if passes(self.status) { Verdict::Pass } else { Verdict::Fail(Reason::Status(self.status)) };
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

fn header<'a>(headers: &[httparse::Header<'a>], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
}

/// How the body is delimited (RFC 9112 section 6.3); None when there is none.
fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Result<Option<Body>, ()> {
    if status == 204 || status == 304 {
        return Ok(None);
    }
    if let Some(te) = header(headers, "transfer-encoding") {
        let last = te.rsplit(|&b| b == b',').next().unwrap_or_default();
        return Ok(Some(if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Body::Chunked(Chunk::Size { size: 0, digits: false, ext: false })
        } else {
            Body::UntilEof
        }));
    }
    let mut length = None;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")) {
        let value = std::str::from_utf8(h.value).map_err(|_| ())?.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let n: u64 = value.parse().map_err(|_| ())?;
        if length.is_some_and(|l| l != n) {
            return Err(());
        }
        length = Some(n);
    }
    Ok(match length {
        Some(0) => None,
        Some(n) => Some(Body::Length(n)),
        None => Some(Body::UntilEof),
    })
}

/// Advances a chunked body; Ok(true) once the last chunk and trailers ended.
fn feed_chunked(chunk: &mut Chunk, mut data: &[u8]) -> Result<bool, ()> {
    while let Some((&b, rest)) = data.split_first() {
        match chunk {
            Chunk::Data(left) => {
                let take = data.len().min(*left as usize);
                *left -= take as u64;
                data = &data[take..];
                if *left == 0 {
                    *chunk = Chunk::DataEnd;
                }
                continue;
            }
            Chunk::Size { size, digits, ext } => match b {
                b'\n' if !*digits => return Err(()),
                b'\n' if *size == 0 => *chunk = Chunk::Trailer { line_start: true },
                b'\n' => *chunk = Chunk::Data(*size),
                b'\r' => {}
                _ if *ext => {}
                b';' | b' ' | b'\t' => *ext = true,
                _ => {
                    let d = (b as char).to_digit(16).ok_or(())?;
                    *size = size.checked_mul(16).and_then(|s| s.checked_add(d.into())).ok_or(())?;
                    *digits = true;
                }
            },
            Chunk::DataEnd => match b {
                b'\r' => {}
                b'\n' => *chunk = Chunk::Size { size: 0, digits: false, ext: false },
                _ => return Err(()),
            },
            Chunk::Trailer { line_start } => match b {
                b'\r' => {}
                b'\n' if *line_start => return Ok(true),
                b'\n' => *line_start = true,
                _ => *line_start = false,
            },
        }
        data = rest;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Check {
        let mut c = Check::parse(url).unwrap();
        c.resolve().unwrap();
        c
    }

    /// Drives a probe to the point of reading, as the engine would.
    fn reading(c: &Check) -> Probe {
        let mut p = Probe::default();
        assert!(matches!(p.start(c, Instant::now()), Action::Connect(_)));
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
                fail(Reason::Status(404)),
            ),
            (&[b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"], true, Action::Done(Verdict::Pass)),
            (&[b"HTTP/1.1 101 Switching\r\n\r\n"], true, fail(Reason::Status(101))),
            (&[b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"], false, fail(Reason::Status(400))),
            (&[b"HTTP/1.1 503 Unavailable\r\nContent-Length: 5\r\n\r\nno"], true, fail(Reason::Status(503))),
            (&[b"HTTP/1.0 200 OK\r\n\r\nbody until close"], true, Action::Done(Verdict::Pass)),
            (&[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], true, fail(Reason::BodyCut)),
            (&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"], false, fail(Reason::Invalid)),
            (&[b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"], false, fail(Reason::Invalid)),
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
            (&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], false, fail(Reason::Invalid)),
            (&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"], true, fail(Reason::BodyCut)),
            (&[b"garbage\r\n\r\n"], false, fail(Reason::Invalid)),
            (&[b"HTTP/1.1 2"], true, fail(Reason::Closed)),
            (&[], true, fail(Reason::Closed)),
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
        assert_eq!(action, fail(Reason::HeadersTooLarge));

        let mut p = reading(&c);
        assert_eq!(p.received(&c, b"HTTP/1.1 200 OK\r\n\r\n"), Action::Receive);
        let chunk = [b'x'; 4096];
        assert_eq!(p.received(&c, &chunk), Action::Receive);
        assert_eq!(p.received(&c, &chunk), Action::Receive);
        // 10 KiB read: the verdict comes without waiting for the end.
        assert_eq!(p.received(&c, &chunk), Action::Done(Verdict::Pass));
    }

    #[test]
    fn follows_same_host_redirects_only() {
        let c = check("http://localhost:8080/a");
        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n");
        assert_eq!(a, Action::Connect("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(p.connected(&c, Instant::now()), Action::Send);
        assert!(p.output(&c).starts_with(b"GET /b HTTP/1.1\r\nHost: localhost:8080\r\n"));
        // Another port on the same host is followed too.
        let n = p.output(&c).len();
        p.wrote(&c, n);
        let a = p.received(&c, b"HTTP/1.1 301 Moved\r\nLocation: http://localhost:9/c?x\r\n\r\n");
        assert_eq!(a, Action::Connect("127.0.0.1:9".parse().unwrap()));
        // Refused on IPv4, then ::1 on the redirected port.
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(p.connect_failed(&c, &refused), Action::Connect("[::1]:9".parse().unwrap()));
        assert_eq!(p.connect_failed(&c, &refused), fail(Reason::Refused));

        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 307 T\r\nLocation: http://example.com/\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(a, Action::Done(Verdict::Pass));
        let mut p = reading(&c);
        let a = p.received(&c, b"HTTP/1.1 308 P\r\nLocation: https://localhost/\r\n\r\n");
        assert_eq!(a, fail(Reason::HttpsRedirect));
    }

    #[test]
    fn redirect_loops_stop() {
        let c = check("http://127.0.0.1:8080/loop");
        let mut p = reading(&c);
        for hop in 0..=MAX_REDIRECTS {
            let a = p.received(&c, b"HTTP/1.1 302 Found\r\nLocation: /loop\r\n\r\n");
            if hop == MAX_REDIRECTS {
                assert_eq!(a, fail(Reason::TooManyRedirects));
                return;
            }
            assert!(matches!(a, Action::Connect(_)), "hop {hop}: {a:?}");
            p.connected(&c, Instant::now());
            let n = p.output(&c).len();
            p.wrote(&c, n);
        }
    }

    #[test]
    fn tcp_passes_on_connect_and_timeouts_keep_the_status() {
        let c = check("tcp://127.0.0.1:5432");
        let mut p = Probe::default();
        p.start(&c, Instant::now());
        assert_eq!(p.connected(&c, Instant::now()), Action::Done(Verdict::Pass));

        let c = check("http://127.0.0.1:8080/");
        let mut p = reading(&c);
        assert_eq!(p.timed_out(Duration::from_secs(1)), Verdict::Fail(Reason::Timeout(Duration::from_secs(1))));
        let mut p = reading(&c);
        p.received(&c, b"HTTP/1.1 500 E\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(p.timed_out(Duration::from_secs(1)), Verdict::Fail(Reason::Status(500)));
    }

    #[test]
    fn partial_writes_resume() {
        let c = check("http://127.0.0.1:8080/");
        let mut p = Probe::default();
        p.start(&c, Instant::now());
        p.connected(&c, Instant::now());
        let total = p.output(&c).len();
        assert_eq!(p.wrote(&c, 3), Action::Send);
        assert_eq!(p.output(&c).len(), total - 3);
        assert_eq!(p.wrote(&c, total - 3), Action::Receive);
    }
}
