//! The gRPC health probe, kubelet's `grpc:` probe: one unary call of
//! grpc.health.v1.Health/Check over HTTP/2 with prior knowledge (h2c),
//! as a pure state machine (bytes and `now` in, actions out).

use std::io;
use std::time::{Duration, Instant};

use super::action::Action;
use crate::verdict::{GrpcReason, HttpReason, Reason, Verdict};
pub use crate::wire::grpc::Request;
use crate::wire::grpc::{is_grpc_content, parse_number, push_timeout, shown, MAX_SHOWN};
use crate::wire::{h2, hpack, proto};

/// The one stream a probe opens.
const STREAM: u32 = 1;
/// Largest response message accepted: a HealthCheckResponse is 2 octets;
/// room is left for fields a newer server may add.
pub const MAX_MESSAGE: usize = 4096;
/// Largest response header block (HEADERS and its CONTINUATIONs), which
/// SETTINGS_MAX_HEADER_LIST_SIZE announces to the server.
pub const MAX_BLOCK: usize = 16 * 1024;

/// The call, h2's stream states narrowed to one client stream:
///
/// ```text
///  Idle --connected--> Open { Preface, Headers } --SETTINGS--> Open { Ready, .. }
///  Open { .., Headers } --response headers--> Open { .., Message }
///  Open { .., Message } --trailers--> Done;  any failure --> Done
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    /// The request is out (or going out); the answer is being read.
    Open(Open),
    Done,
}

/// What an open call has read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    peer: Peer,
    phase: Phase,
    /// A HEADERS frame came without END_HEADERS, so CONTINUATION must
    /// follow: Some(whether that HEADERS frame ended the stream).
    continuation: Option<bool>,
}

/// The server's side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Its preface (a SETTINGS frame) has not arrived yet.
    Preface,
    Ready,
    /// A graceful GOAWAY that still lets our stream finish.
    GoingAway,
}

/// Where our stream's answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the response headers.
    Headers,
    /// The response headers are read: the message, then the trailers.
    Message,
}

/// One call on one connection, for one round.
#[derive(Debug, Default)]
pub struct Call {
    state: State,
    deadline: Option<Instant>,
    /// Frames to write, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// A frame that arrived in pieces, at most one frame long.
    partial: Vec<u8>,
    hpack: hpack::Decoder,
    /// The header block being read, at most [`MAX_BLOCK`].
    block: Vec<u8>,
    http_status: u16,
    grpc_content: bool,
    grpc_status: Option<u32>,
    grpc_message: Vec<u8>,
    /// The response message with its 5-octet prefix.
    message: Vec<u8>,
}

impl Call {
    /// Resets for a new round whose probe must end by `deadline`; keeps
    /// the buffers' allocations.
    pub fn start(&mut self, deadline: Instant) {
        // Field by field (every field named), keeping the buffers.
        let Call {
            state,
            deadline: until,
            out,
            sent,
            partial,
            hpack,
            block,
            http_status,
            grpc_content,
            grpc_status,
            grpc_message,
            message,
        } = self;
        *state = State::default();
        *until = Some(deadline);
        *sent = 0;
        hpack.reset();
        for buf in [out, partial, block, grpc_message, message] {
            buf.clear();
        }
        *grpc_content = false;
        *http_status = 0;
        *grpc_status = None;
    }

    /// The connection is open: the preface, our SETTINGS and the whole
    /// request go out at once, as gRPC clients do.
    pub fn connected(&mut self, request: &Request, now: Instant) -> Action {
        self.state = State::Open(Open { peer: Peer::Preface, phase: Phase::Headers, continuation: None });
        let out = &mut self.out;
        out.extend_from_slice(h2::PREFACE);
        let mut settings = [0u8; 12];
        settings[..6].copy_from_slice(&setting(h2::SETTINGS_ENABLE_PUSH, 0));
        settings[6..].copy_from_slice(&setting(h2::SETTINGS_MAX_HEADER_LIST_SIZE, MAX_BLOCK as u32));
        h2::write_frame(out, h2::SETTINGS, 0, 0, &settings);
        let remaining = self.deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
        let mut value = Vec::new();
        push_timeout(&mut value, remaining);
        let mut timeout = Vec::new();
        hpack::encode(&mut timeout, b"grpc-timeout", &value);
        h2::write_header(out, request.block.len() + timeout.len(), h2::HEADERS, h2::END_HEADERS, STREAM);
        out.extend_from_slice(&request.block);
        out.extend_from_slice(&timeout);
        h2::write_frame(out, h2::DATA, h2::END_STREAM, STREAM, &request.message);
        Action::Send
    }

    /// The bytes still to write.
    pub fn output(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    pub fn wrote(&mut self, n: usize) -> Action {
        self.sent = (self.sent + n).min(self.out.len());
        if self.sent < self.out.len() {
            return Action::Send;
        }
        self.out.clear();
        self.sent = 0;
        Action::Receive
    }

    /// Octets held from what the server sent (for the bounds' tests).
    pub fn buffered(&self) -> usize {
        self.partial.len() + self.block.len() + self.message.len() + self.grpc_message.len()
    }

    /// The step to retry when the connection reports readiness.
    pub(crate) fn resume(&self) -> Option<Action> {
        match self.state {
            State::Done => None,
            _ if self.sending() => Some(Action::Send),
            _ => Some(Action::Receive),
        }
    }

    /// Whether a write is pending (after readiness, write before reading).
    pub(crate) fn sending(&self) -> bool {
        self.sent < self.out.len()
    }

    /// Bytes arrived (never empty: end of stream is [`Call::eof`]).
    pub fn received(&mut self, mut data: &[u8]) -> Action {
        while matches!(self.state, State::Open(_)) && !data.is_empty() {
            let step = if self.partial.is_empty() {
                match h2::parse(data) {
                    Ok(h2::Status::Complete(frame, used)) => {
                        data = &data[used..];
                        self.on_frame(frame)
                    }
                    Ok(h2::Status::Partial) => {
                        // Under one frame header, or one bounded frame.
                        self.partial.extend_from_slice(data);
                        data = &[];
                        Ok(None)
                    }
                    Err(_) => Err(Reason::Grpc(GrpcReason::Invalid)),
                }
            } else {
                self.continue_partial(&mut data)
            };
            match step {
                Ok(None) => {}
                Ok(Some(verdict)) => return self.finish(verdict),
                Err(reason) => return self.finish(Verdict::Fail(reason)),
            }
        }
        if self.state == State::Done {
            Action::Receive // a late read after the verdict: nothing to do
        } else if self.sending() {
            Action::Send
        } else {
            Action::Receive
        }
    }

    /// Adds to the frame that arrived in pieces, and handles it once whole.
    fn continue_partial(&mut self, data: &mut &[u8]) -> Result<Option<Verdict>, Reason> {
        let want = match self.partial.first_chunk::<{ h2::HEADER_LEN }>() {
            Some(header) => h2::HEADER_LEN + h2::payload_len(header).map_err(|_| Reason::Grpc(GrpcReason::Invalid))?,
            None => h2::HEADER_LEN,
        };
        let take = (want - self.partial.len()).min(data.len());
        self.partial.extend_from_slice(&data[..take]);
        *data = &data[take..];
        let partial = std::mem::take(&mut self.partial);
        let step = match h2::parse(&partial) {
            Ok(h2::Status::Complete(frame, _)) => self.on_frame(frame).map(|v| (v, true)),
            Ok(h2::Status::Partial) => Ok((None, false)),
            Err(_) => Err(Reason::Grpc(GrpcReason::Invalid)),
        };
        self.partial = partial;
        if let Ok((_, true)) = step {
            self.partial.clear();
        }
        step.map(|(verdict, _)| verdict)
    }

    fn on_frame(&mut self, frame: h2::Frame<'_>) -> Result<Option<Verdict>, Reason> {
        let State::Open(mut open) = self.state else { return Ok(None) };
        let step = self.frame_in(&mut open, frame);
        if let State::Open(now) = &mut self.state {
            *now = open;
        }
        step
    }

    fn frame_in(&mut self, open: &mut Open, frame: h2::Frame<'_>) -> Result<Option<Verdict>, Reason> {
        frame.validate().map_err(|_| Reason::Grpc(GrpcReason::Invalid))?;
        // The server's preface is a SETTINGS frame (RFC 9113 3.4); anything
        // else (an HTTP/1.1 answer, say) is not an HTTP/2 server.
        if open.peer == Peer::Preface && (frame.kind != h2::SETTINGS || frame.flags & h2::ACK != 0) {
            return Err(Reason::Grpc(GrpcReason::Invalid));
        }
        if open.continuation.is_some() && frame.kind != h2::CONTINUATION {
            return Err(Reason::Grpc(GrpcReason::Invalid));
        }
        match frame.kind {
            h2::SETTINGS if frame.flags & h2::ACK == 0 => {
                for setting in frame.settings() {
                    setting.map_err(|_| Reason::Grpc(GrpcReason::Invalid))?;
                }
                if open.peer == Peer::Preface {
                    open.peer = Peer::Ready;
                }
                h2::write_frame(&mut self.out, h2::SETTINGS, h2::ACK, 0, &[]);
            }
            h2::PING if frame.flags & h2::ACK == 0 => {
                h2::write_frame(&mut self.out, h2::PING, h2::ACK, 0, frame.payload);
            }
            h2::GOAWAY => {
                let last = u32::from_be_bytes([frame.payload[0], frame.payload[1], frame.payload[2], frame.payload[3]]);
                let code = u32::from_be_bytes([frame.payload[4], frame.payload[5], frame.payload[6], frame.payload[7]]);
                // Our stream may still finish when it is not past the last
                // one the server processes and the server is not failing.
                if last & 0x7fff_ffff < STREAM || code != 0 {
                    return Err(Reason::Grpc(GrpcReason::GoAway));
                }
                open.peer = Peer::GoingAway;
            }
            h2::RST_STREAM if frame.stream == STREAM => return Err(Reason::Grpc(GrpcReason::StreamReset)),
            h2::PUSH_PROMISE => return Err(Reason::Grpc(GrpcReason::Invalid)), // push is disabled
            h2::HEADERS | h2::DATA | h2::CONTINUATION if frame.stream != STREAM => {
                return Err(Reason::Grpc(GrpcReason::Invalid))
            }
            h2::HEADERS => {
                let content = frame.content().map_err(|_| Reason::Grpc(GrpcReason::Invalid))?;
                self.block.clear();
                self.block.extend_from_slice(content);
                let ends_stream = frame.flags & h2::END_STREAM != 0;
                if frame.flags & h2::END_HEADERS != 0 {
                    return self.end_block(open, ends_stream);
                }
                open.continuation = Some(ends_stream);
            }
            h2::CONTINUATION => {
                let Some(ends_stream) = open.continuation else { return Err(Reason::Grpc(GrpcReason::Invalid)) };
                if self.block.len() + frame.payload.len() > MAX_BLOCK {
                    return Err(Reason::Grpc(GrpcReason::Invalid));
                }
                self.block.extend_from_slice(frame.payload);
                if frame.flags & h2::END_HEADERS != 0 {
                    open.continuation = None;
                    return self.end_block(open, ends_stream);
                }
            }
            h2::DATA => {
                let content = frame.content().map_err(|_| Reason::Grpc(GrpcReason::Invalid))?;
                // Data before the response headers, after the trailers, past
                // the bound, or ending the stream without trailers.
                if open.phase != Phase::Message
                    || self.message.len() + content.len() > 5 + MAX_MESSAGE
                    || frame.flags & h2::END_STREAM != 0
                {
                    return Err(Reason::Grpc(GrpcReason::Invalid));
                }
                self.message.extend_from_slice(content);
            }
            // SETTINGS and PING acknowledgements, WINDOW_UPDATE (our
            // request is far below any window), PRIORITY, RST_STREAM for
            // other streams, and unknown types, which RFC 9113 says to ignore.
            _ => {}
        }
        Ok(None)
    }

    /// A header block is complete: the response headers, or the trailers.
    /// The trailers always end the call: a block after them cannot come.
    fn end_block(&mut self, open: &mut Open, ends_stream: bool) -> Result<Option<Verdict>, Reason> {
        let first = open.phase == Phase::Headers;
        if !first && !ends_stream {
            return Err(Reason::Grpc(GrpcReason::Invalid));
        }
        open.phase = Phase::Message;
        let mut valid = true;
        let (mut status, mut content, mut grpc_status) = (self.http_status, self.grpc_content, self.grpc_status);
        let message = &mut self.grpc_message;
        let block = std::mem::take(&mut self.block);
        let decoded = self.hpack.decode(&block, |name, value| match name {
            b":status" if first => status = parse_number(value).and_then(|s| u16::try_from(s).ok()).unwrap_or(0),
            b"content-type" => content = is_grpc_content(value),
            b"grpc-status" => match parse_number(value) {
                Some(code) => grpc_status = Some(code),
                None => valid = false,
            },
            b"grpc-message" => {
                message.clear();
                message.extend_from_slice(&value[..value.len().min(MAX_SHOWN * 3)]);
            }
            _ => {}
        });
        self.block = block;
        (self.http_status, self.grpc_content, self.grpc_status) = (status, content, grpc_status);
        if decoded.is_err() || !valid || !(100..=999).contains(&self.http_status) {
            return Err(Reason::Grpc(GrpcReason::Invalid));
        }
        // Response headers that cannot begin a gRPC answer end the call
        // now, as gRPC clients do; otherwise the trailers decide.
        if ends_stream || self.http_status != 200 || !self.grpc_content {
            return Ok(Some(self.verdict()));
        }
        Ok(None)
    }

    /// The verdict once the stream has ended (or cannot go on).
    fn verdict(&self) -> Verdict {
        let http_failure = match self.http_status {
            200 => Reason::Grpc(GrpcReason::Invalid),
            status => Reason::Http(HttpReason::Status(status)),
        };
        if !self.grpc_content {
            return Verdict::Fail(http_failure);
        }
        match self.grpc_status {
            None => Verdict::Fail(http_failure),
            Some(0) => self.health(),
            Some(code) => Verdict::Fail(Reason::Grpc(GrpcReason::Status(code, shown(&self.grpc_message)))),
        }
    }

    /// Reads the one uncompressed HealthCheckResponse of an OK call.
    fn health(&self) -> Verdict {
        let Some((prefix, body)) = self.message.split_first_chunk::<5>() else {
            return Verdict::Fail(Reason::Grpc(GrpcReason::Invalid));
        };
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
        // A compressed message (flag 1) is refused: we offer no encoding.
        if prefix[0] != 0 || len as usize != body.len() {
            return Verdict::Fail(Reason::Grpc(GrpcReason::Invalid));
        }
        match proto::read_status(body) {
            Some(proto::SERVING) => Verdict::Pass,
            Some(status) => Verdict::Fail(Reason::Grpc(GrpcReason::Health(status))),
            None => Verdict::Fail(Reason::Grpc(GrpcReason::Invalid)),
        }
    }

    /// The peer closed its side.
    pub fn eof(&mut self) -> Action {
        match self.state {
            State::Done => Action::Receive,
            State::Open(Open { peer: Peer::GoingAway, .. }) => {
                self.finish(Verdict::Fail(Reason::Grpc(GrpcReason::GoAway)))
            }
            _ => self.finish(Verdict::Fail(Reason::Closed)),
        }
    }

    /// A read or write failed.
    pub(crate) fn io_failed(&mut self, err: &io::Error) -> Action {
        self.finish(Verdict::Fail(Reason::from_io(err, false)))
    }

    /// The deadline passed before a verdict.
    pub(crate) fn timed_out(&mut self, after: Duration) -> Verdict {
        self.state = State::Done;
        Verdict::Fail(Reason::Timeout(after))
    }

    fn finish(&mut self, verdict: Verdict) -> Action {
        self.state = State::Done;
        Action::Done(verdict)
    }
}

fn setting(id: u16, value: u32) -> [u8; 6] {
    let [a, b] = id.to_be_bytes();
    let [c, d, e, f] = value.to_be_bytes();
    [a, b, c, d, e, f]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::grpc::*;
    use crate::wire::VERSION;

    /// A server's side of the conversation, frame by frame.
    #[derive(Default)]
    struct Server(Vec<u8>);

    impl Server {
        fn frame(mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Server {
            h2::write_frame(&mut self.0, kind, flags, stream, payload);
            self
        }

        fn preface(self) -> Server {
            self.frame(h2::SETTINGS, 0, 0, &setting(h2::SETTINGS_MAX_FRAME_SIZE, 16_384))
        }

        fn headers(self, flags: u8, fields: &[(&str, &str)]) -> Server {
            let mut block = Vec::new();
            for (n, v) in fields {
                hpack::encode(&mut block, n.as_bytes(), v.as_bytes());
            }
            self.frame(h2::HEADERS, flags | h2::END_HEADERS, STREAM, &block)
        }

        fn response_headers(self) -> Server {
            self.headers(0, &[(":status", "200"), ("content-type", "application/grpc")])
        }

        fn message(self, body: &[u8]) -> Server {
            let mut m = vec![0];
            m.extend_from_slice(&(body.len() as u32).to_be_bytes());
            m.extend_from_slice(body);
            self.frame(h2::DATA, 0, STREAM, &m)
        }

        fn trailers(self, fields: &[(&str, &str)]) -> Server {
            self.headers(h2::END_STREAM, fields)
        }

        fn ok(self, body: &[u8]) -> Server {
            self.preface().response_headers().message(body).trailers(&[("grpc-status", "0")])
        }
    }

    fn request() -> Request {
        Request::new(b"127.0.0.1:9090", b"", &[]).unwrap()
    }

    fn open_call() -> Call {
        let now = Instant::now();
        let mut call = Call::default();
        call.start(now + Duration::from_secs(1));
        assert_eq!(call.connected(&request(), now), Action::Send);
        let n = call.output().len();
        assert_eq!(call.wrote(n), Action::Receive);
        call
    }

    /// Feeds `bytes` in pieces of `step`; the verdict, or what the call asks next.
    fn feed(call: &mut Call, bytes: &[u8], step: usize) -> Action {
        let mut action = Action::Receive;
        for piece in bytes.chunks(step.max(1)) {
            action = call.received(piece);
            if matches!(action, Action::Done(_)) {
                return action;
            }
        }
        action
    }

    fn verdict_of(server: Server) -> Action {
        let mut whole = open_call();
        let verdict = feed(&mut whole, &server.0, usize::MAX);
        for step in [1, 7, 100] {
            assert_eq!(feed(&mut open_call(), &server.0, step), verdict, "in pieces of {step}");
        }
        verdict
    }

    fn fail(reason: Reason) -> Action {
        Action::Done(Verdict::Fail(reason))
    }

    #[test]
    fn sends_preface_settings_headers_and_message() {
        let now = Instant::now();
        let mut call = Call::default();
        call.start(now + Duration::from_millis(1500));
        let headers = [("X-Id".into(), "7".into()), ("Grpc-Timeout".into(), "1S".into()), ("TE".into(), "x".into())];
        let request = Request::new(b"localhost:50051", b"orders.v1.Orders", &headers).unwrap();
        call.connected(&request, now + Duration::from_millis(500));
        let out = call.output().to_vec();
        let rest = out.strip_prefix(h2::PREFACE).unwrap();
        let Ok(h2::Status::Complete(settings, used)) = h2::parse(rest) else { panic!() };
        assert_eq!((settings.kind, settings.payload), (h2::SETTINGS, &b"\0\x02\0\0\0\0\0\x06\0\0\x40\0"[..]));
        let rest = &rest[used..];
        let Ok(h2::Status::Complete(headers, used)) = h2::parse(rest) else { panic!() };
        assert_eq!((headers.kind, headers.flags, headers.stream), (h2::HEADERS, h2::END_HEADERS, 1));
        let mut fields = Vec::new();
        hpack::Decoder::new()
            .decode(headers.payload, |n, v| {
                fields.push(format!("{}: {}", String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
            })
            .unwrap();
        assert_eq!(
            fields,
            [
                ":method: POST".to_string(),
                ":scheme: http".into(),
                ":path: /grpc.health.v1.Health/Check".into(),
                ":authority: localhost:50051".into(),
                "content-type: application/grpc".into(),
                "te: trailers".into(),
                format!("user-agent: healthcheck/{VERSION}"),
                "x-id: 7".into(),
                "grpc-timeout: 1000000u".into(),
            ]
        );
        let Ok(h2::Status::Complete(data, used)) = h2::parse(&rest[used..]) else { panic!() };
        assert_eq!((data.kind, data.flags, data.stream), (h2::DATA, h2::END_STREAM, 1));
        assert_eq!(data.payload, b"\0\0\0\0\x12\x0a\x10orders.v1.Orders");
        assert_eq!(rest.len(), headers.payload.len() + 9 + used);
        // A partial write resumes where it stopped.
        assert_eq!(call.wrote(10), Action::Send);
        assert_eq!(call.output(), &out[10..]);
    }

    #[test]
    fn headers_become_metadata() {
        let fields = |headers: &[(String, String)]| {
            let request = Request::new(b"h:1", b"", headers).unwrap();
            let mut fields = Vec::new();
            hpack::Decoder::new()
                .decode(&request.block, |n, v| {
                    fields.push(format!("{}: {}", String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
                })
                .unwrap();
            fields[3..].join("\n")
        };
        let ua = format!("user-agent: healthcheck/{VERSION}");
        assert_eq!(fields(&[]), format!(":authority: h:1\ncontent-type: application/grpc\nte: trailers\n{ua}"));
        let given = [("Host".into(), "vhost:9".into()), ("User-Agent".into(), "kube-probe/1.31".into())];
        assert_eq!(
            fields(&given),
            ":authority: vhost:9\ncontent-type: application/grpc\nte: trailers\nuser-agent: kube-probe/1.31"
        );
        let empty = [("User-Agent".into(), String::new()), ("Authorization".into(), "Bearer t".into())];
        assert_eq!(
            fields(&empty),
            ":authority: h:1\ncontent-type: application/grpc\nte: trailers\nauthorization: Bearer t"
        );
        assert!(
            reserved("GRPC-Encoding")
                && reserved("te")
                && reserved("Connection")
                && !reserved("grpc")
                && !reserved("x")
        );
        let huge = [("x-big".to_string(), "v".repeat(h2::MAX_FRAME))];
        assert!(Request::new(b"h:1", b"", &huge).is_err());
        assert!(Request::new(b"h:1", &[b's'; h2::MAX_FRAME], &[]).is_err());
    }

    #[test]
    fn timeouts_use_the_finest_unit_that_fits() {
        let cases = [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            (Duration::from_millis(100), "100000u"),
            (Duration::from_secs(1), "1000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(10_000_000_000), "2777777H"),
            (Duration::MAX, "5124095H"),
        ];
        for (d, want) in cases {
            let mut out = Vec::new();
            push_timeout(&mut out, d);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn serving_passes() {
        assert_eq!(verdict_of(Server::default().ok(b"\x08\x01")), Action::Done(Verdict::Pass));
        // Unknown fields around the status, padding, priority, CONTINUATION,
        // pings, window updates, unknown frame types: all taken in stride.
        let server = Server::default()
            .preface()
            .frame(h2::WINDOW_UPDATE, 0, 0, &[0, 1, 0, 0])
            .frame(h2::PING, 0, 0, b"pingpong")
            .frame(0xbb, 0xff, 5, b"ignored")
            .frame(h2::PRIORITY, 0, 1, &[0, 0, 0, 0, 9])
            .frame(h2::HEADERS, h2::PADDED | h2::PRIORITY_FLAG, 1, b"\x02\0\0\0\0\x10\x88\0\0")
            .frame(h2::CONTINUATION, h2::END_HEADERS, 1, b"\x0f\x10\x10application/grpc")
            .frame(h2::DATA, h2::PADDED, 1, b"\x03\0\0\0\0\x04\x10\x01\x08\x01\0\0\0")
            .frame(h2::SETTINGS, h2::ACK, 0, b"")
            .trailers(&[("grpc-status", "0"), ("grpc-message", "")]);
        assert_eq!(verdict_of(server), Action::Done(Verdict::Pass));
    }

    #[test]
    fn answers_settings_and_pings() {
        let mut call = open_call();
        assert_eq!(call.received(&Server::default().preface().0), Action::Send);
        assert_eq!(call.output(), b"\0\0\0\x04\x01\0\0\0\0");
        call.wrote(9);
        let ping = Server::default().frame(h2::PING, 0, 0, b"12345678");
        assert_eq!(call.received(&ping.0), Action::Send);
        assert_eq!(call.output(), b"\0\0\x08\x06\x01\0\0\0\x0012345678");
        // Acknowledgements are not answered.
        call.wrote(17);
        let ack = Server::default().frame(h2::PING, h2::ACK, 0, b"12345678");
        assert_eq!(call.received(&ack.0), Action::Receive);
    }

    #[test]
    fn every_reason() {
        let s = Server::default;
        let trailers_only = |fields: &[(&str, &str)]| {
            let mut all = vec![(":status", "200"), ("content-type", "application/grpc")];
            all.extend_from_slice(fields);
            s().preface().headers(h2::END_STREAM, &all)
        };
        let cases = [
            (s().ok(b"\x08\x02"), fail(Reason::Grpc(GrpcReason::Health(proto::NOT_SERVING)))),
            (s().ok(b""), fail(Reason::Grpc(GrpcReason::Health(proto::UNKNOWN)))),
            (s().ok(b"\x08\x03"), fail(Reason::Grpc(GrpcReason::Health(proto::SERVICE_UNKNOWN)))),
            (s().ok(b"\x08\x09"), fail(Reason::Grpc(GrpcReason::Health(9)))),
            (trailers_only(&[("grpc-status", "12")]), fail(Reason::Grpc(GrpcReason::Status(12, String::new())))),
            (
                trailers_only(&[("grpc-status", "5"), ("grpc-message", "unknown service")]),
                fail(Reason::Grpc(GrpcReason::Status(5, "unknown service".into()))),
            ),
            (
                trailers_only(&[("grpc-status", "14"), ("grpc-message", "a%0Aforged=line %22<b>%E2%82%AC")]),
                fail(Reason::Grpc(GrpcReason::Status(14, "a\\x0aforged=line \\\"\\x3cb\\x3e\\xe2\\x82\\xac".into()))),
            ),
            (trailers_only(&[("grpc-status", "99")]), fail(Reason::Grpc(GrpcReason::Status(99, String::new())))),
            (trailers_only(&[("grpc-status", "x")]), fail(Reason::Grpc(GrpcReason::Invalid))),
            (trailers_only(&[]), fail(Reason::Grpc(GrpcReason::Invalid))),
            (s().preface().headers(h2::END_STREAM, &[(":status", "404")]), fail(Reason::Http(HttpReason::Status(404)))),
            (s().preface().headers(0, &[(":status", "503")]), fail(Reason::Http(HttpReason::Status(503)))),
            (
                s().preface().headers(0, &[(":status", "200"), ("content-type", "text/html")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().headers(0, &[("content-type", "application/grpc")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().headers(0, &[(":status", "200"), ("content-type", "application/grpcx")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (s().preface().frame(h2::RST_STREAM, 0, 1, &[0, 0, 0, 8]), fail(Reason::Grpc(GrpcReason::StreamReset))),
            (s().preface().frame(h2::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]), fail(Reason::Grpc(GrpcReason::GoAway))),
            (s().preface().frame(h2::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 2]), fail(Reason::Grpc(GrpcReason::GoAway))),
            // Compressed, two messages, a length that lies, no message.
            (
                s().preface()
                    .response_headers()
                    .message(b"\x08\x01")
                    .message(b"\x08\x01")
                    .trailers(&[("grpc-status", "0")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface()
                    .response_headers()
                    .frame(h2::DATA, 0, 1, b"\0\0\0\0\x09\x08\x01")
                    .trailers(&[("grpc-status", "0")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().response_headers().trailers(&[("grpc-status", "0")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface()
                    .response_headers()
                    .frame(h2::DATA, 0, 1, b"\x01\0\0\0\x02\x08\x01")
                    .trailers(&[("grpc-status", "0")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            // Protocol errors.
            (s().response_headers(), fail(Reason::Grpc(GrpcReason::Invalid))), // no SETTINGS first
            (s().frame(h2::SETTINGS, h2::ACK, 0, b""), fail(Reason::Grpc(GrpcReason::Invalid))),
            (
                s().preface().frame(h2::PUSH_PROMISE, h2::END_HEADERS, 1, &[0, 0, 0, 2]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (s().preface().frame(h2::DATA, 0, 1, b"\0\0\0\0\0"), fail(Reason::Grpc(GrpcReason::Invalid))), // before headers
            (
                s().preface().headers(0, &[(":status", "200")]).frame(h2::PING, 0, 0, b"12345678"),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().frame(h2::HEADERS, 0, 1, b"\x88").frame(h2::PING, 0, 0, b"12345678"),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (s().preface().frame(h2::HEADERS, h2::END_HEADERS, 3, b"\x88"), fail(Reason::Grpc(GrpcReason::Invalid))),
            (
                s().preface().frame(h2::CONTINUATION, h2::END_HEADERS, 1, b"\x88"),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().frame(h2::HEADERS, h2::END_HEADERS, 1, b"\xff\xff"),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().response_headers().message(b"\x08\x01").headers(0, &[("grpc-status", "0")]),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().preface().response_headers().frame(h2::DATA, h2::END_STREAM, 1, b"\0\0\0\0\x02\x08\x01"),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                s().frame(h2::SETTINGS, 0, 0, &setting(h2::SETTINGS_MAX_FRAME_SIZE, 100)),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
            (
                Server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec()),
                fail(Reason::Grpc(GrpcReason::Invalid)),
            ),
        ];
        for (i, (server, want)) in cases.into_iter().enumerate() {
            assert_eq!(verdict_of(server), want, "case {i}");
        }
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(Reason::Grpc(GrpcReason::Health(proto::NOT_SERVING)).to_string(), "NOT_SERVING");
        assert_eq!(Reason::Grpc(GrpcReason::Health(7)).to_string(), "health status 7");
        assert_eq!(Reason::Grpc(GrpcReason::Status(12, String::new())).to_string(), "grpc status UNIMPLEMENTED");
        assert_eq!(
            Reason::Grpc(GrpcReason::Status(5, "no such service".into())).to_string(),
            "grpc status NOT_FOUND: no such service"
        );
        assert_eq!(Reason::Grpc(GrpcReason::Status(40, String::new())).to_string(), "grpc status 40");
        assert_eq!(Reason::Grpc(GrpcReason::GoAway).to_string(), "goaway");
        assert_eq!(Reason::Grpc(GrpcReason::StreamReset).to_string(), "stream reset");
        assert_eq!(shown(&[b'x'; 200]), format!("{}...", "x".repeat(MAX_SHOWN)));
        assert_eq!(shown(b"50%+done%2"), "50%+done%2");
    }

    #[test]
    fn bounds_blocks_and_messages() {
        // A header block growing past the bound through CONTINUATION frames.
        let mut server = Server::default().preface().frame(h2::HEADERS, 0, 1, &[0; 100]);
        for _ in 0..2 {
            server = server.frame(h2::CONTINUATION, 0, 1, &[0x82; h2::MAX_FRAME]);
        }
        assert_eq!(verdict_of(server), fail(Reason::Grpc(GrpcReason::Invalid)));
        // A message past the bound.
        let server = Server::default().preface().response_headers().message(&[0; MAX_MESSAGE + 1]);
        assert_eq!(verdict_of(server), fail(Reason::Grpc(GrpcReason::Invalid)));
        // A frame header announcing more than the maximum fails at once.
        let mut call = open_call();
        call.received(&Server::default().preface().0);
        assert_eq!(call.received(&[0, 0x40]), Action::Send);
        assert_eq!(call.received(&[1, 0, 0, 0, 0, 0, 1]), fail(Reason::Grpc(GrpcReason::Invalid)));
    }

    #[test]
    fn ends_of_connection() {
        let mut call = open_call();
        assert_eq!(call.eof(), fail(Reason::Closed));
        let mut call = open_call();
        let goaway = Server::default().preface().frame(h2::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(call.received(&goaway.0), Action::Send);
        assert_eq!(call.eof(), fail(Reason::Grpc(GrpcReason::GoAway)));
        let mut call = open_call();
        assert_eq!(call.io_failed(&io::Error::from(io::ErrorKind::ConnectionReset)), fail(Reason::Reset));
        let mut call = open_call();
        let after = Duration::from_secs(1);
        assert_eq!(call.timed_out(after), Verdict::Fail(Reason::Timeout(after)));
        // A graceful GOAWAY still lets the call finish.
        let server = Server::default()
            .preface()
            .frame(h2::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0])
            .response_headers()
            .message(b"\x08\x01")
            .trailers(&[("grpc-status", "0")]);
        assert_eq!(verdict_of(server), Action::Done(Verdict::Pass));
    }

    /// Answers captured from grpc-go and Python grpcio (tests/grpc): Huffman
    /// strings, the dynamic table, trailers-only errors, window updates.
    #[test]
    fn real_servers_answers() {
        let cases: [(&[u8], Action); 5] = [
            (include_bytes!("../../tests/grpc/responses/go-serving.h2"), Action::Done(Verdict::Pass)),
            (include_bytes!("../../tests/grpc/responses/py-serving.h2"), Action::Done(Verdict::Pass)),
            (
                include_bytes!("../../tests/grpc/responses/go-notfound.h2"),
                fail(Reason::Grpc(GrpcReason::Status(5, "unknown service".into()))),
            ),
            (
                include_bytes!("../../tests/grpc/responses/py-notfound.h2"),
                fail(Reason::Grpc(GrpcReason::Status(5, String::new()))),
            ),
            (
                include_bytes!("../../tests/grpc/responses/go-unimplemented.h2"),
                fail(Reason::Grpc(GrpcReason::Status(12, "unknown service grpc.health.v1.Health".into()))),
            ),
        ];
        for (i, (bytes, want)) in cases.into_iter().enumerate() {
            assert_eq!(verdict_of(Server(bytes.to_vec())), want, "case {i}");
        }
    }

    #[test]
    fn a_call_is_reusable() {
        let mut call = open_call();
        assert_eq!(feed(&mut call, &Server::default().ok(b"\x08\x02").0, 3), fail(Reason::Grpc(GrpcReason::Health(2))));
        let now = Instant::now();
        call.start(now + Duration::from_secs(1));
        call.connected(&request(), now);
        let n = call.output().len();
        call.wrote(n);
        assert_eq!(feed(&mut call, &Server::default().ok(b"\x08\x01").0, 5), Action::Done(Verdict::Pass));
    }
}
