//! A raw HTTP/1.1 client: keep-alive and pipelined connections, responses parsed by hand so that malformed ones can be seen as they are.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::IO_TIMEOUT;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection with its own read buffer, so pipelined responses can be read one by one.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    pub fn try_open(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// `METHOD path HTTP/1.1` with a Host header.
    pub fn send_request(&mut self, method: &str, path: &str) {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: healthcheck\r\n\r\n");
        self.send(req.as_bytes());
    }

    /// Read one response; panics when the connection ends or times out first.
    pub fn read_response(&mut self, head: bool) -> Response {
        match self.try_read_response(head) {
            Ok(resp) => resp,
            Err(e) => panic!("reading a response: {e}; bytes so far: {:?}", String::from_utf8_lossy(&self.buf)),
        }
    }

    pub fn try_read_response(&mut self, head: bool) -> io::Result<Response> {
        loop {
            if let Some((resp, used)) = parse_response(&self.buf, head, false)? {
                self.buf.drain(..used);
                return Ok(resp);
            }
            match self.fill() {
                Ok(0) => {
                    // EOF: a response delimited by the end of the connection is complete now.
                    return match parse_response(&self.buf, head, true)? {
                        Some((resp, used)) => {
                            self.buf.drain(..used);
                            Ok(resp)
                        }
                        None => Err(io::Error::new(ErrorKind::UnexpectedEof, "connection closed")),
                    };
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// True when the peer closes the connection (EOF or reset) within `timeout` without sending
    /// anything more; false when it stays open (the read times out).
    pub fn is_closed_by_peer(&mut self, timeout: Duration) -> bool {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let closed = match self.fill() {
            Ok(0) => true,
            Ok(_) => panic!("unexpected bytes after the response: {:?}", String::from_utf8_lossy(&self.buf)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(_) => true,
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        closed
    }
}

/// Parse one response from the front of `buf`. `Ok(None)`: incomplete. `eof`: the connection has
/// ended, so a body without framing ends here.
pub fn parse_response(buf: &[u8], head: bool, eof: bool) -> io::Result<Option<(Response, usize)>> {
    let bad = |msg: &str| io::Error::new(ErrorKind::InvalidData, msg.to_string());
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(&format!("bad status line {status_line:?}")));
    }
    let status: u16 =
        parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad(&format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let body_start = head_end + 4;
    let mut resp = Response { status, version, headers, body: Vec::new() };
    if head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some((resp, body_start)));
    }
    match resp.header("Content-Length") {
        Some(len) => {
            let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
            if buf.len() < body_start + len {
                return Ok(None);
            }
            resp.body = buf[body_start..body_start + len].to_vec();
            Ok(Some((resp, body_start + len)))
        }
        None if eof => {
            resp.body = buf[body_start..].to_vec();
            Ok(Some((resp, buf.len())))
        }
        None => Ok(None),
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection with the given timeouts (for polling).
pub fn try_request(addr: SocketAddr, method: &str, path: &str, timeout: Duration) -> io::Result<Response> {
    let mut conn = Conn::try_open(addr, timeout)?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: healthcheck\r\n\r\n");
    conn.stream.write_all(req.as_bytes())?;
    conn.try_read_response(method == "HEAD")
}

/// Headers every daemon response carries (contract: "All responses").
pub fn assert_common_headers(resp: &Response) {
    assert_eq!(resp.version, "HTTP/1.1", "{resp:?}");
    assert_eq!(resp.header("Content-Type"), Some("text/plain; charset=utf-8"), "{resp:?}");
    assert!(resp.header("Content-Length").is_some(), "{resp:?}");
    assert_eq!(resp.header("Cache-Control"), Some("no-store"), "{resp:?}");
    assert_eq!(resp.header("X-Content-Type-Options"), Some("nosniff"), "{resp:?}");
}
