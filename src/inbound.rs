//! One inbound HTTP/1.1 connection as a sans-IO machine: request bytes in,
//! answer bytes and the next step out. No socket and no clock here: the
//! daemon (serve.rs) does the reads and writes and passes `now` in.
//!
//! ```text
//!            request parsed, answered now
//!          +-------------------------------+
//!          v                               |
//!  new --> Open --(request needs verdicts)--> Waiting --(answered)--+
//!          |  ^                                                      |
//!          |  +------------------------(keep-alive)------------------+
//!          | (close: HTTP/1.0, Connection: close, 400/431, limits)
//!          v
//!        Closing --(unread bytes may remain)--> Lingering --> closed
//! ```
//!
//! The answers a connection owes are in its own buffer, `out`, from the
//! moment they are written until the socket takes them: no buffer is shared
//! between connections, so no byte staged for one can ever reach another,
//! on any path (a write error, a reset, an eviction, a deadline all drop the
//! connection with its buffer). Backpressure follows from the same rule: the
//! next pipelined request is parsed only once every byte of the previous
//! answers is written, so a client that does not read holds one answer here
//! and what the kernel's fixed send buffer takes, whatever it pipelines.

use std::time::{Duration, Instant};

use crate::wire::http::{self, Connection, Method, Parse, Request};

/// A request must arrive whole this soon after the connection opens (or
/// after the previous answer, for a partial pipelined one), and a client
/// that reads nothing of its answer for this long is dropped. Slow clients
/// are dropped; kubelet sends its probe at once.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After answering 400/431 (or closing with unread bytes) the rest is read
/// and dropped for this long before closing, so the client sees the answer,
/// not a reset.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Requests answered on one keep-alive connection before it is closed (as
/// nginx's `keepalive_requests`): a client cannot hold one connection, and
/// the slot it takes, forever.
pub(crate) const MAX_REQUESTS: u32 = 1000;
/// An answer buffer bigger than this is given back once written; a smaller
/// one is kept for the connection's next answer.
const KEPT_CAPACITY: usize = 4096;

/// What the handler made of one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handled<W> {
    /// The answer is written into `out`.
    Answered,
    /// The answer needs verdicts: the connection waits, keeping this.
    Wait(W),
}

/// How an answer must be written: the request's method and what the
/// connection does after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) head_only: bool,
    pub(crate) conn: Connection,
}

/// The side of the daemon a connection asks: routing, answers, metrics.
pub(crate) trait Handler {
    /// What a waiting request keeps until its verdicts arrive.
    type Want;
    /// Answers `request` into `out` now, or says what it waits for.
    fn request(&mut self, request: &Request<'_>, answer: Answer, out: &mut Vec<u8>) -> Handled<Self::Want>;
    /// A request that could not be parsed; the connection answers `status`
    /// itself and closes.
    fn rejected(&mut self, status: u16);
}

/// What the I/O side does next for this connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write [`Conn::unsent`] and report what the socket took with
    /// [`Conn::written`].
    Write,
    /// Read and pass the bytes to [`Conn::received`]; a read of 0 bytes
    /// (the peer closed) ends the connection.
    Read,
    /// Nothing until the verdicts arrive ([`Conn::answer`]).
    Wait,
    /// Half-close the socket (shut down writing), then read as asked.
    Shutdown,
    /// Close the connection.
    Close,
}

#[derive(Debug)]
enum State<W> {
    /// Reading requests; `inbuf` may hold part of the next one.
    Open,
    /// A request waits for verdicts; pipelined bytes behind it stay unread.
    Waiting { want: W, answer: Answer, linger: bool },
    /// The last answer is staged: close once it is written. `linger`:
    /// unread bytes may remain, whose arrival would make the kernel answer
    /// a reset and lose the answer, so half-close and drain them first.
    Closing { linger: bool },
    /// Half-closed: what the peer still sends is read and dropped until it
    /// closes or [`LINGER`] runs out.
    Lingering,
}

/// One inbound connection's protocol state and buffers.
#[derive(Debug)]
pub(crate) struct Conn<W> {
    state: State<W>,
    /// Request bytes received: `inbuf[parsed..]` is not parsed yet. An
    /// offset rather than draining, so that many pipelined requests in one
    /// read are not moved once each.
    inbuf: Vec<u8>,
    parsed: usize,
    /// Answer bytes the socket has not taken yet: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    /// Requests answered or waiting on this connection.
    served: u32,
    deadline: Instant,
    /// Start of the current request cycle: at the connection limit the
    /// oldest goes first.
    since: Instant,
    /// How long a request may wait for its verdicts.
    wait_timeout: Duration,
}

impl<W> Conn<W> {
    /// A connection accepted at `now`; a request waiting for verdicts
    /// longer than `wait_timeout` (the longest a round can take it to be
    /// answered) is dropped.
    pub(crate) fn new(now: Instant, wait_timeout: Duration) -> Self {
        Conn {
            state: State::Open,
            inbuf: Vec::new(),
            parsed: 0,
            out: Vec::new(),
            sent: 0,
            served: 0,
            deadline: now + REQUEST_TIMEOUT,
            since: now,
            wait_timeout,
        }
    }

    /// When this connection is closed unless something happens first.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn since(&self) -> Instant {
        self.since
    }

    pub(crate) fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting { .. })
    }

    /// What a waiting connection waits for.
    pub(crate) fn want(&self) -> Option<&W> {
        match &self.state {
            State::Waiting { want, .. } => Some(want),
            _ => None,
        }
    }

    /// Answer bytes the socket has yet to take.
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// Bytes held: answers not yet written and requests not yet parsed.
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.out.len() - self.sent + self.inbuf.len() - self.parsed
    }

    /// The socket took `n` bytes of [`Conn::unsent`]. A client that reads
    /// slowly keeps the connection while it takes something within
    /// [`REQUEST_TIMEOUT`].
    pub(crate) fn written(&mut self, n: usize, now: Instant) {
        self.sent += n;
        debug_assert!(self.sent <= self.out.len());
        if self.sent == self.out.len() {
            if self.out.capacity() > KEPT_CAPACITY {
                self.out = Vec::new(); // give back a scrape's memory
            } else {
                self.out.clear();
            }
            self.sent = 0;
        } else if n > 0 {
            self.deadline = now + REQUEST_TIMEOUT;
        }
    }

    /// Bytes read from the socket.
    pub(crate) fn received(&mut self, data: &[u8], now: Instant) {
        if matches!(self.state, State::Lingering) {
            return; // read only to be dropped
        }
        if self.parsed == self.inbuf.len() {
            self.inbuf.clear();
            self.parsed = 0;
        } else if self.parsed > 0 {
            self.inbuf.drain(..self.parsed);
            self.parsed = 0;
        }
        self.inbuf.extend_from_slice(data);
        // A partial request has REQUEST_TIMEOUT from its first bytes to
        // arrive whole: the deadline only moves earlier while it trickles.
        if matches!(self.state, State::Open) {
            self.deadline = self.deadline.min(now + REQUEST_TIMEOUT);
        }
    }

    /// The next step. Handles at most one buffered request per call, and
    /// only once every earlier answer is written.
    pub(crate) fn poll<H: Handler<Want = W>>(&mut self, now: Instant, handler: &mut H) -> Next {
        if self.sent < self.out.len() {
            return Next::Write;
        }
        match self.state {
            State::Open => self.next_request(now, handler),
            State::Waiting { .. } => Next::Wait,
            State::Closing { linger: false } => Next::Close,
            State::Closing { linger: true } => {
                self.state = State::Lingering;
                self.inbuf = Vec::new();
                self.parsed = 0;
                self.deadline = now + LINGER;
                Next::Shutdown
            }
            State::Lingering => Next::Read,
        }
    }

    fn next_request<H: Handler<Want = W>>(&mut self, now: Instant, handler: &mut H) -> Next {
        let data = &self.inbuf[self.parsed..];
        if data.is_empty() {
            return Next::Read;
        }
        let (request, used) = match http::parse(data) {
            Parse::Partial => return Next::Read,
            Parse::Reject(status) => {
                handler.rejected(status);
                http::write_response(&mut self.out, status, http::status_body(status), false, Connection::Close);
                self.state = State::Closing { linger: true };
                self.inbuf = Vec::new();
                self.parsed = 0;
                return Next::Write;
            }
            Parse::Complete(request, used) => (request, used),
        };
        self.served += 1;
        let last = !request.keep_alive || self.served >= MAX_REQUESTS;
        let conn = if last {
            Connection::Close
        } else if request.http10 {
            Connection::KeepAlive10
        } else {
            Connection::KeepAlive
        };
        // Bytes after the last request (or its unread body) would make
        // the kernel reset the connection on close.
        let linger = last && (request.has_body || used < data.len());
        let answer = Answer { head_only: request.method == Method::Head, conn };
        let handled = handler.request(&request, answer, &mut self.out);
        self.parsed += used;
        self.since = now;
        match handled {
            Handled::Answered => {
                self.after_answer(answer, linger, now);
                Next::Write
            }
            Handled::Wait(want) => {
                self.state = State::Waiting { want, answer, linger };
                self.deadline = now + self.wait_timeout;
                Next::Wait
            }
        }
    }

    /// Answers the waiting request: `write` puts the answer into the
    /// connection's buffer. False when it was not waiting.
    pub(crate) fn answer(&mut self, now: Instant, write: impl FnOnce(&W, Answer, &mut Vec<u8>)) -> bool {
        let State::Waiting { want, answer, linger } = std::mem::replace(&mut self.state, State::Open) else {
            return false;
        };
        write(&want, answer, &mut self.out);
        self.after_answer(answer, linger, now);
        true
    }

    fn after_answer(&mut self, answer: Answer, linger: bool, now: Instant) {
        if answer.conn == Connection::Close {
            self.state = State::Closing { linger };
        } else {
            self.state = State::Open;
            self.deadline = now + IDLE_TIMEOUT;
            if self.parsed < self.inbuf.len() {
                self.deadline = self.deadline.min(now + REQUEST_TIMEOUT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Routes `/wait` to a wait, anything else to a short answer naming
    /// the target; records what it saw.
    #[derive(Default)]
    struct Fake {
        seen: Vec<String>,
        rejected: Vec<u16>,
    }

    impl Handler for Fake {
        type Want = String;

        fn request(&mut self, request: &Request<'_>, answer: Answer, out: &mut Vec<u8>) -> Handled<String> {
            self.seen.push(request.target.to_string());
            if request.target == "/wait" {
                return Handled::Wait(request.target.to_string());
            }
            let body = format!("answer {}\n", request.target);
            http::write_response(out, 200, body.as_bytes(), answer.head_only, answer.conn);
            Handled::Answered
        }

        fn rejected(&mut self, status: u16) {
            self.rejected.push(status);
        }
    }

    fn start() -> (Conn<String>, Fake, Instant) {
        let now = Instant::now();
        (Conn::new(now, Duration::from_secs(30)), Fake::default(), now)
    }

    /// Writes everything staged, as a socket that takes it all would.
    fn take_all(conn: &mut Conn<String>, now: Instant) -> String {
        let text = String::from_utf8(conn.unsent().to_vec()).unwrap();
        let n = conn.unsent().len();
        conn.written(n, now);
        text
    }

    const GET_A: &[u8] = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    const GET_B: &[u8] = b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n";

    #[test]
    fn a_fresh_connection_reads() {
        let (mut conn, mut h, now) = start();
        assert_eq!(conn.poll(now, &mut h), Next::Read);
        assert_eq!(conn.deadline(), now + REQUEST_TIMEOUT);
    }

    #[test]
    fn a_request_in_pieces_is_answered_once_whole() {
        let (mut conn, mut h, now) = start();
        let (head, tail) = GET_A.split_at(10);
        conn.received(head, now);
        assert_eq!(conn.poll(now, &mut h), Next::Read);
        assert!(h.seen.is_empty());
        conn.received(tail, now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert!(take_all(&mut conn, now).ends_with("answer /a\n"));
        assert_eq!(conn.poll(now, &mut h), Next::Read);
        assert_eq!(conn.deadline(), now + IDLE_TIMEOUT);
    }

    #[test]
    fn a_trickling_request_keeps_its_first_deadline() {
        let (mut conn, mut h, t0) = start();
        conn.received(b"GET /a HTTP/1.1\r\n", t0);
        let later = t0 + Duration::from_secs(3);
        conn.received(b"Host: h\r\n", later);
        assert_eq!(conn.poll(later, &mut h), Next::Read);
        assert_eq!(conn.deadline(), t0 + REQUEST_TIMEOUT);
    }

    #[test]
    fn pipelined_requests_wait_until_the_previous_answer_is_written() {
        let (mut conn, mut h, now) = start();
        conn.received(&[GET_A, GET_B].concat(), now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        // The socket took only part of the first answer: /b is not parsed.
        conn.written(5, now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert_eq!(h.seen, ["/a"]);
        take_all(&mut conn, now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert_eq!(h.seen, ["/a", "/b"]);
        assert!(take_all(&mut conn, now).ends_with("answer /b\n"));
        assert_eq!(conn.poll(now, &mut h), Next::Read);
        assert_eq!(conn.buffered(), 0);
    }

    #[test]
    fn a_waiting_request_holds_the_ones_behind_it() {
        let (mut conn, mut h, now) = start();
        conn.received(&[b"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n" as &[u8], GET_B].concat(), now);
        assert_eq!(conn.poll(now, &mut h), Next::Wait);
        assert!(conn.is_waiting());
        assert_eq!(conn.want().map(String::as_str), Some("/wait"));
        assert_eq!(conn.deadline(), now + Duration::from_secs(30));
        assert_eq!(conn.poll(now, &mut h), Next::Wait);
        assert_eq!(h.seen, ["/wait"]);
        assert!(conn.answer(now, |want, answer, out| {
            http::write_response(out, 503, want.as_bytes(), answer.head_only, answer.conn)
        }));
        assert!(!conn.answer(now, |_, _, _| unreachable!()));
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert!(take_all(&mut conn, now).starts_with("HTTP/1.1 503"));
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert_eq!(h.seen, ["/wait", "/b"]);
    }

    #[test]
    fn connection_close_closes_after_the_answer() {
        let (mut conn, mut h, now) = start();
        conn.received(b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert!(take_all(&mut conn, now).contains("Connection: close\r\n"));
        assert_eq!(conn.poll(now, &mut h), Next::Close);
    }

    #[test]
    fn bytes_after_the_last_request_are_drained_before_closing() {
        let (mut conn, mut h, now) = start();
        let close = b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        conn.received(&[close as &[u8], GET_B].concat(), now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        take_all(&mut conn, now);
        assert_eq!(conn.poll(now, &mut h), Next::Shutdown);
        assert_eq!(conn.deadline(), now + LINGER);
        assert_eq!(conn.poll(now, &mut h), Next::Read);
        conn.received(b"more", now);
        assert_eq!(conn.buffered(), 0);
        assert_eq!(h.seen, ["/a"]);
    }

    #[test]
    fn a_bad_request_is_answered_400_and_drained() {
        let (mut conn, mut h, now) = start();
        conn.received(b"NOT HTTP\r\n\r\n", now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert!(take_all(&mut conn, now).starts_with("HTTP/1.1 400 "));
        assert_eq!(h.rejected, [400]);
        assert_eq!(conn.poll(now, &mut h), Next::Shutdown);
    }

    #[test]
    fn an_oversized_head_is_answered_431() {
        let (mut conn, mut h, now) = start();
        let mut head = b"GET /a HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        head.resize(http::MAX_REQUEST_HEAD + 1, b'a');
        conn.received(&head, now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert!(take_all(&mut conn, now).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn http10_closes_unless_it_asks_for_keep_alive() {
        let (mut conn, mut h, now) = start();
        conn.received(b"GET /a HTTP/1.0\r\n\r\n", now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        take_all(&mut conn, now);
        assert_eq!(conn.poll(now, &mut h), Next::Close);

        let (mut conn, mut h, now) = start();
        conn.received(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", now);
        assert_eq!(conn.poll(now, &mut h), Next::Write);
        assert!(take_all(&mut conn, now).contains("Connection: keep-alive\r\n"));
        assert_eq!(conn.poll(now, &mut h), Next::Read);
    }

    #[test]
    fn a_keep_alive_connection_ends_after_max_requests() {
        let (mut conn, mut h, now) = start();
        for i in 1..=MAX_REQUESTS {
            conn.received(GET_A, now);
            assert_eq!(conn.poll(now, &mut h), Next::Write);
            let answer = take_all(&mut conn, now);
            assert_eq!(answer.contains("Connection: close"), i == MAX_REQUESTS, "request {i}");
        }
        assert_eq!(conn.poll(now, &mut h), Next::Close);
    }

    #[test]
    fn a_slow_reader_keeps_the_connection_while_it_takes_bytes() {
        let (mut conn, mut h, t0) = start();
        conn.received(GET_A, t0);
        conn.poll(t0, &mut h);
        let t1 = t0 + Duration::from_secs(4);
        conn.written(1, t1);
        assert_eq!(conn.deadline(), t1 + REQUEST_TIMEOUT);
        // Taking nothing does not move it.
        conn.written(0, t1 + Duration::from_secs(1));
        assert_eq!(conn.deadline(), t1 + REQUEST_TIMEOUT);
    }

    /// Whatever ends a connection, what it staged goes with it: nothing is
    /// left in any buffer that outlives it (there is none but its own).
    #[test]
    fn an_answer_stays_with_its_connection() {
        let (mut first, mut h, now) = start();
        first.received(GET_A, now);
        assert_eq!(first.poll(now, &mut h), Next::Write);
        assert!(!first.unsent().is_empty());
        drop(first); // a write error, reset, eviction or deadline
        let mut second: Conn<String> = Conn::new(now, Duration::from_secs(30));
        assert!(second.unsent().is_empty());
        second.received(GET_B, now);
        assert_eq!(second.poll(now, &mut h), Next::Write);
        let text = String::from_utf8(second.unsent().to_vec()).unwrap();
        assert!(text.ends_with("answer /b\n") && !text.contains("/a"), "{text}");
    }

    #[test]
    fn a_large_answer_buffer_is_given_back_once_written() {
        let (mut conn, mut h, now) = start();
        conn.received(GET_A, now);
        conn.poll(now, &mut h);
        conn.out.extend_from_slice(&[b'x'; 2 * KEPT_CAPACITY]);
        take_all(&mut conn, now);
        assert_eq!(conn.out.capacity(), 0);
    }
}
