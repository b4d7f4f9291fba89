//! Inbound HTTP/1 on the wire: request heads parsed (httparse) and
//! responses written; escaping of what they show.

use std::io::Write as _;

use crate::wire::digits::decimal;

/// Request head bound: a larger head is answered 431 and the connection
/// closed. Health probes send a few hundred bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Header slots; more headers than this also get 431.
const MAX_REQUEST_HEADERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A parsed request head. The target borrows the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    /// Origin-form `path[?query]` (absolute-form is reduced to it).
    pub target: &'a str,
    /// Whether the connection may stay open after the answer.
    pub keep_alive: bool,
    /// HTTP/1.0 keep-alive must be confirmed in the answer.
    pub(crate) http10: bool,
    /// The request announced a body, which is never read.
    pub has_body: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// Read more (within [`MAX_REQUEST_HEAD`] and the connection's deadline).
    Partial,
    /// A request and the number of bytes its head used.
    Complete(Request<'a>, usize),
    /// Answer this status and close: 400 or 431.
    Reject(u16),
}

pub fn parse(buf: &[u8]) -> Parse<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(used)) if used > MAX_REQUEST_HEAD => return Parse::Reject(431),
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_HEAD => return Parse::Reject(431),
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parse::Reject(431),
        Err(_) => return Parse::Reject(400),
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    let http10 = req.version == Some(0);
    let Some(target) = req.path.and_then(origin_form) else {
        return Parse::Reject(400);
    };
    let mut keep_alive = !http10;
    let mut hosts = 0;
    let mut length = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // No endpoint takes a body; a chunked one cannot be skipped
            // safely, and TE with Content-Length is a smuggling attempt.
            return Parse::Reject(400);
        } else if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(h.value) else {
                return Parse::Reject(400);
            };
            if length.is_some_and(|l| l != n) {
                return Parse::Reject(400);
            }
            length = Some(n);
        }
    }
    // RFC 9112 section 3.2: exactly one Host in HTTP/1.1.
    if hosts > 1 || (hosts == 0 && !http10) {
        return Parse::Reject(400);
    }
    // A body is never read: answer, then close rather than parse it as the
    // next request.
    let has_body = length.is_some_and(|n| n > 0);
    if has_body {
        keep_alive = false;
    }
    Parse::Complete(Request { method, target, keep_alive, http10, has_body }, used)
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Reduces `http://host/path` to `/path`; None for targets that are
/// neither origin-form nor absolute-form (`*`, `host:port`, empty).
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let rest = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://"))?;
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => Some(&rest[i..]),
        Some(_) => None,
        None => Some("/"),
    }
}

/// Appends `text` with everything but printable ASCII (and `"`, `\`) escaped,
/// so request data can be shown without forging lines or markup.
pub fn push_escaped(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            b' '..=b'~' if b != b'<' && b != b'>' && b != b'&' => out.push(b),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// Appends `text` escaped as [`push_escaped`] does, cut at `max` bytes
/// with `...` marking a cut: a piece of untrusted text to show.
pub(crate) fn push_shown(out: &mut Vec<u8>, text: &[u8], max: usize) {
    push_escaped(out, &text[..text.len().min(max)]);
    if text.len() > max {
        out.extend_from_slice(b"...");
    }
}

/// The value of the `--header` field `name` (case-insensitive), the first
/// when given twice.
pub(crate) fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// How a response ends its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    KeepAlive,
    /// HTTP/1.0 keep-alive, confirmed with a header.
    KeepAlive10,
    Close,
}

/// The `Content-Type` of every answer but JSON verdicts and metrics.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Appends a whole plain-text response. HEAD gets the same head without the body.
pub fn write_response(out: &mut Vec<u8>, status: u16, body: &[u8], head_only: bool, conn: Connection) {
    write_typed(out, status, TEXT, body, head_only, conn);
}

/// Appends a whole response of `content_type`.
pub(crate) fn write_typed(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    conn: Connection,
) {
    // The head is put together on the stack and appended with one copy:
    // the pieces are short constants, each a few stores once inlined,
    // whatever the optimiser makes of `extend_from_slice` in a crate that
    // also holds the TLS code (which cost a keep-alive /self 320
    // instructions in calls).
    let mut head = Head::new();
    head.push(b"HTTP/1.1 ");
    head.decimal(status.into());
    head.push(b" ");
    head.push(reason_phrase(status).as_bytes());
    head.push(b"\r\nContent-Type: ");
    head.push(content_type.as_bytes());
    head.push(b"\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n");
    if status == 405 {
        head.push(b"Allow: GET, HEAD\r\n");
    }
    match conn {
        Connection::KeepAlive => {}
        Connection::KeepAlive10 => head.push(b"Connection: keep-alive\r\n"),
        Connection::Close => head.push(b"Connection: close\r\n"),
    }
    head.push(b"Content-Length: ");
    head.decimal(body.len() as u64);
    head.push(b"\r\n\r\n");
    let body = if head_only { &[][..] } else { body };
    out.reserve(head.len + body.len());
    out.extend_from_slice(&head.buf[..head.len]);
    out.extend_from_slice(body);
}

/// An answer head being put together. Its size bounds what `write_typed`
/// writes: fixed pieces, a reason phrase, a content type of ours and two
/// numbers, under 300 bytes.
struct Head {
    buf: [u8; 384],
    len: usize,
}

impl Head {
    fn new() -> Head {
        Head { buf: [0; 384], len: 0 }
    }

    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn decimal(&mut self, n: u64) {
        let (digits, start) = decimal(n);
        self.push(&digits[start..]);
    }
}

/// The body of a bodiless error status.
pub fn status_body(status: u16) -> &'static [u8] {
    match status {
        200 => b"ok\n",
        400 => b"bad request\n",
        404 => b"not found\n",
        405 => b"method not allowed\n",
        431 => b"request header fields too large\n",
        _ => b"\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, keep_alive: bool) -> Request<'_> {
        Request { method: Method::Get, target, keep_alive, http10: false, has_body: false }
    }

    const FULL: usize = usize::MAX;

    #[test]
    fn parses_requests() {
        let cases: &[(&[u8], Parse<'_>)] = &[
            (b"GET /self HTTP/1.1\r\nHost: x\r\n\r\n", Parse::Complete(req("/self", true), FULL)),
            (b"GET /self HTTP/1.1\nHost: x\n\n", Parse::Complete(req("/self", true), FULL)),
            (
                b"GET /all?verbose HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                Parse::Complete(req("/all?verbose", false), FULL),
            ),
            (b"GET http://x:1/all HTTP/1.1\r\nHost: x\r\n\r\n", Parse::Complete(req("/all", true), FULL)),
            (b"GET http://x:1 HTTP/1.1\r\nHost: x\r\n\r\n", Parse::Complete(req("/", true), FULL)),
            (
                b"GET /self HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
                Parse::Complete(Request { has_body: true, ..req("/self", false) }, FULL),
            ),
            (b"GET /self HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", Parse::Complete(req("/self", true), FULL)),
            (b"GET /self HTTP/1.1\r\nHost: x\r\n", Parse::Partial),
            (b"GET /self HTTP/1.1\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", Parse::Reject(400)),
            (b"GET /se\0lf HTTP/1.1\r\nHost: x\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/1.1\r\nHost: \0x\r\n\r\n", Parse::Reject(400)),
            (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", Parse::Reject(400)),
            (b"GET /self HTTP/2.0\r\nHost: x\r\n\r\n", Parse::Reject(400)),
            (b"\x16\x03\x01\x02\x00\x01", Parse::Reject(400)),
        ];
        for (i, (input, want)) in cases.iter().enumerate() {
            let got = match parse(input) {
                // Every complete case is one whole request.
                Parse::Complete(r, used) if used == input.len() => Parse::Complete(r, FULL),
                other => other,
            };
            assert_eq!(&got, want, "case {i}: {:?}", String::from_utf8_lossy(input));
        }
        let Parse::Complete(r, _) = parse(b"GET /self HTTP/1.0\r\n\r\n") else { panic!() };
        assert!(!r.keep_alive && r.http10);
        let Parse::Complete(r, _) = parse(b"HEAD /self HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") else { panic!() };
        assert!(r.keep_alive && r.method == Method::Head);
    }

    #[test]
    fn bounds_the_head() {
        let mut big = b"GET /self HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        big.resize(MAX_REQUEST_HEAD + 10, b'a');
        assert_eq!(parse(&big), Parse::Reject(431));
        let mut many = b"GET /self HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Parse::Reject(431));
    }

    #[test]
    fn escapes_what_it_shows() {
        let mut out = Vec::new();
        push_escaped(&mut out, b"a\"<b>\r\n\xff");
        assert_eq!(out, b"a\\\"\\x3cb\\x3e\\x0d\\x0a\\xff");
        let mut out = Vec::new();
        push_shown(&mut out, b"abc<", 3);
        assert_eq!(out, b"abc...");
    }

    #[test]
    fn writes_responses() {
        let mut out = Vec::new();
        write_response(&mut out, 405, b"method not allowed\n", false, Connection::Close);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("Content-Length: 19\r\n\r\nmethod not allowed\n"));
        let mut out = Vec::new();
        write_response(&mut out, 200, b"ok\n", true, Connection::KeepAlive);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(out.ends_with(b"Content-Length: 3\r\n\r\n"));
    }
}
