//! A minimal blocking HTTP/1.1 client for `/all` rounds and latency, and the
//! inbound connection flood.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// No answer of the daemon takes longer than this in any scenario here.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the first SYN retransmission (1 s), for a full backlog.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One keep-alive connection, requests one at a time; connected again when
/// the daemon ends it (it closes a connection after 1,000 requests).
pub struct Client {
    stream: TcpStream,
    port: u16,
    closed: bool,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Client { stream, port, closed: false, buf: Vec::with_capacity(4096) })
    }

    /// Sends `GET path` and reads the whole answer; returns its status.
    pub fn get(&mut self, path: &str) -> io::Result<u16> {
        if self.closed {
            *self = Client::connect(self.port)?;
        }
        write!(self.stream, "GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n")?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((status, head, length)) = parse_head(&self.buf) {
                if self.buf.len() >= head + length {
                    let head = &self.buf[..head];
                    self.closed = head.windows(19).any(|w| w.eq_ignore_ascii_case(b"\r\nconnection: close"));
                    return Ok(status);
                }
            }
            match self.stream.read(&mut chunk)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Bytes of the last answer, head included.
    pub fn last_len(&self) -> usize {
        self.buf.len()
    }

    /// Times `count` sequential requests; every answer must be 200.
    pub fn latencies(&mut self, path: &str, count: usize) -> io::Result<Vec<Duration>> {
        (0..count)
            .map(|_| {
                let start = Instant::now();
                match self.get(path)? {
                    200 => Ok(start.elapsed()),
                    status => Err(io::Error::other(format!("{path} answered {status}: {}", self.first_line()))),
                }
            })
            .collect()
    }
}

impl Client {
    /// The first body line of the last answer (`[-]NAME failed: REASON`).
    fn first_line(&self) -> String {
        let body = parse_head(&self.buf).map_or(&self.buf[..0], |(_, head, _)| &self.buf[head..]);
        String::from_utf8_lossy(body).lines().next().unwrap_or_default().to_string()
    }
}

/// Status, head length and Content-Length of a complete response head.
fn parse_head(buf: &[u8]) -> Option<(u16, usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.get(9..12)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    Some((status, end, length))
}

/// Opens `count` connections, each sending one keep-alive `/self` request
/// it never reads the answer of, and holds them all open. Returns how many
/// connected; the daemon drops the oldest beyond its limit.
pub fn flood(port: u16, count: usize, within: Duration) -> Vec<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + within;
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        if Instant::now() > deadline {
            break;
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            let _ = stream.write_all(b"GET /self HTTP/1.1\r\nHost: bench\r\n\r\n");
            held.push(stream);
        }
    }
    held
}
