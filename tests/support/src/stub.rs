//! Upstream stubs: a loopback HTTP/TCP server, one thread per connection, that behaves as a test asks (answers, hangs, resets, drips...).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::find;
use crate::{free_port, host_port, IO_TIMEOUT, LOCALHOST_V4};

/// How long a stub keeps a "hanging" connection open at most.
const STUB_HANG_LIMIT: Duration = Duration::from_secs(30);

/// What a stub does with each connection it accepts.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Read the request, answer `code` with `body` (Content-Length framed), close.
    Status(u16, &'static str),
    /// Read the request, wait, then answer like `Status(code, "")`.
    Delay(Duration, u16),
    /// Answer `code` to the first N requests, then `200 ok`.
    StatusFirst(u16, usize),
    /// Read the request and never answer (until the stub is dropped or 30 s pass).
    Hang,
    /// Answer `code` with this `Location`; `{self}` is replaced by the stub's own `host:port`.
    Redirect(u16, String),
    /// Close right after accept, without reading the request.
    CloseOnAccept,
    /// Read the request, then close without answering (a clean FIN).
    CloseAfterRequest,
    /// Read the request, then reset the connection (SO_LINGER 0, close).
    Reset,
    /// Read the request, answer bytes that are not HTTP, close.
    Garbage,
    /// Read the request, send a status line then header lines forever.
    EndlessHeaders,
    /// Read the request, send the start of a header one byte per interval, forever.
    Drip(Duration),
    /// Read the request, send a complete `code` response one byte per interval.
    DripResponse(Duration, u16),
    /// Read the request, answer `code` with a chunked body split over several writes.
    Chunked(u16),
    /// Read the request, announce a chunked body, send half a chunk, close.
    ChunkedCutShort(u16),
    /// Read the request, announce `Content-Length: 100`, send 3 bytes, close.
    ShortBody(u16),
    /// Read the request, answer `code` with a body of this many bytes.
    BigBody(u16, usize),
    /// Read the request, answer `code` with a complete Content-Length body, then keep the
    /// connection open (a server that ignores `Connection: close`).
    StatusKeepOpen(u16),
    /// Pick the behaviour by request path (without the query); 404 for other paths.
    ByPath(Vec<(&'static str, Behaviour)>),
}

struct StubState {
    behaviour: Mutex<Behaviour>,
    connections: AtomicUsize,
    requests: Mutex<Vec<String>>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    listening: Mutex<Listening>,
}

/// Whether a stub's listener is bound: at once, or (see [`Stub::late`]) after a delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listening {
    NotYet,
    Bound,
    /// The late bind failed: someone took the port meanwhile.
    Failed,
}

/// One complete request as a stub saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The declared `Content-Length` (0 when absent); that many bytes were read.
    pub body_len: usize,
}

/// An upstream HTTP/TCP server on a loopback port, one thread per connection. It records
/// every request (and reads its body), so it also serves as a callback recorder.
pub struct Stub {
    pub addr: SocketAddr,
    state: Arc<StubState>,
}

impl Stub {
    /// A stub on 127.0.0.1.
    pub fn start(behaviour: Behaviour) -> Stub {
        Stub::start_on(LOCALHOST_V4, behaviour)
    }

    /// A stub on 127.0.0.1 answering `200 ok`.
    pub fn ok() -> Stub {
        Stub::start(Behaviour::Status(200, "ok\n"))
    }

    pub fn start_on(ip: IpAddr, behaviour: Behaviour) -> Stub {
        Stub::bind(SocketAddr::new(ip, 0), behaviour).expect("bind a stub")
    }

    /// A stub on exactly `addr` (e.g. `[::1]:PORT`).
    pub fn bind(addr: SocketAddr, behaviour: Behaviour) -> io::Result<Stub> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Stub::serve(addr, behaviour, Ok(listener)))
    }

    /// A 127.0.0.1 port that refuses connections for `delay`, then behaves as told: an
    /// upstream that becomes ready late. Check [`Stub::bind_failed`] afterwards (someone may
    /// have taken the port meanwhile).
    pub fn late(delay: Duration, behaviour: Behaviour) -> Stub {
        let addr = SocketAddr::new(LOCALHOST_V4, free_port(LOCALHOST_V4));
        Stub::serve(addr, behaviour, Err(delay))
    }

    /// Serves on `listener`, or on `addr` bound after the delay.
    fn serve(addr: SocketAddr, behaviour: Behaviour, listener: Result<TcpListener, Duration>) -> Stub {
        let state = Arc::new(StubState {
            behaviour: Mutex::new(behaviour),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            listening: Mutex::new(if listener.is_ok() { Listening::Bound } else { Listening::NotYet }),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
            let listener = match listener {
                Ok(listener) => listener,
                Err(delay) => {
                    thread::sleep(delay);
                    let bound = TcpListener::bind(addr);
                    *accept_state.listening.lock().unwrap() =
                        if bound.is_ok() { Listening::Bound } else { Listening::Failed };
                    let Ok(listener) = bound else { return };
                    listener
                }
            };
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept_state.connections.fetch_add(1, Ordering::SeqCst);
                let behaviour = accept_state.behaviour.lock().unwrap().clone();
                let conn_state = Arc::clone(&accept_state);
                thread::spawn(move || serve_stub_conn(stream, addr, behaviour, &conn_state));
            }
        });
        Stub { addr, state }
    }

    /// Whether the late bind failed (the port was taken meanwhile): the test should retry.
    pub fn bind_failed(&self) -> bool {
        *self.state.listening.lock().unwrap() == Listening::Failed
    }

    /// Every complete request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The POSTs so far.
    pub fn posts(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == "POST").collect()
    }

    /// Asserts that the only POST so far is one to `path` with an empty body.
    #[track_caller]
    pub fn assert_one_post(&self, path: &str) {
        let want = Seen { method: "POST".into(), path: path.into(), body_len: 0 };
        assert_eq!(self.posts(), [want], "exactly one POST {path} with an empty body");
    }

    #[track_caller]
    pub fn assert_no_post(&self) {
        assert_eq!(self.posts(), [], "no POST expected");
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://HOST:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", host_port(self.addr))
    }

    /// `tcp://HOST:PORT`.
    pub fn tcp_url(&self) -> String {
        format!("tcp://{}", host_port(self.addr))
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Wait (bounded) until at least `n` connections were accepted; returns the count. A TCP
    /// check passes when the kernel completes the handshake, which can be before the accept
    /// thread has counted the connection.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.connections() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.connections()
    }

    /// The request heads received so far (lossy UTF-8, as sent).
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Change the behaviour for connections accepted from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve_stub_conn(mut stream: TcpStream, me: SocketAddr, behaviour: Behaviour, state: &StubState) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    if state.stop.load(Ordering::SeqCst) {
        return;
    }
    if let Behaviour::CloseOnAccept = behaviour {
        return;
    }
    let (head, seen) = read_request(&mut stream);
    let path = head.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let nth = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(head);
        requests.len()
    };
    state.seen.lock().unwrap().extend(seen);
    let mut behaviour = behaviour;
    if let Behaviour::StatusFirst(code, n) = behaviour {
        behaviour = Behaviour::Status(if nth <= n { code } else { 200 }, "ok\n");
    }
    if let Behaviour::ByPath(routes) = &behaviour {
        behaviour = routes
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, b)| b.clone())
            .unwrap_or(Behaviour::Status(404, "no such path\n"));
    }
    act(&mut stream, me, &behaviour, state);
}

fn act(stream: &mut TcpStream, me: SocketAddr, behaviour: &Behaviour, state: &StubState) {
    let w = |stream: &mut TcpStream, bytes: &[u8]| stream.write_all(bytes).is_ok();
    match behaviour {
        Behaviour::Status(code, body) => {
            w(stream, &response_bytes(*code, &[], body.as_bytes()));
        }
        Behaviour::Delay(delay, code) => {
            thread::sleep(*delay);
            w(stream, &response_bytes(*code, &[], b""));
        }
        Behaviour::Hang => hang(state),
        Behaviour::Redirect(code, location) => {
            let location = location.replace("{self}", &host_port(me));
            w(stream, &response_bytes(*code, &[("Location", &location)], b""));
        }
        Behaviour::CloseOnAccept | Behaviour::CloseAfterRequest | Behaviour::StatusFirst(..) => {}
        Behaviour::Reset => {
            // No shutdown: that would send FIN before the RST. The caller
            // drops (closes) the stream right after this.
            crate::sockets::reset_on_close(stream);
            return;
        }
        Behaviour::Garbage => {
            w(stream, b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02\xff\xfe garbage \r\n\r\n");
        }
        Behaviour::EndlessHeaders => {
            if w(stream, b"HTTP/1.1 200 OK\r\n") {
                let line = format!("X-Filler: {}\r\n", "a".repeat(100));
                let start = Instant::now();
                // Ends when the daemon closes (write error), the stub stops, or time runs out.
                let mut ok = true;
                while ok && !state.stop.load(Ordering::SeqCst) && start.elapsed() < STUB_HANG_LIMIT {
                    ok = w(stream, line.as_bytes());
                }
            }
        }
        Behaviour::Drip(interval) => {
            let start = Instant::now();
            let mut ok = w(stream, b"HTTP/1.1 200 OK\r\nX-Drip: ");
            while ok && !state.stop.load(Ordering::SeqCst) && start.elapsed() < STUB_HANG_LIMIT {
                thread::sleep(*interval);
                ok = w(stream, b"a");
            }
        }
        Behaviour::DripResponse(interval, code) => {
            for byte in response_bytes(*code, &[], b"ok\n") {
                if !w(stream, &[byte]) {
                    break;
                }
                thread::sleep(*interval);
            }
        }
        Behaviour::Chunked(code) => {
            let head = status_head(*code, &[("Transfer-Encoding", "chunked")]);
            let parts: [&[u8]; 4] = [head.as_bytes(), b"3\r\nok\n\r\n", b"5\r\nmore\n\r\n", b"0\r\n\r\n"];
            for part in parts {
                if !w(stream, part) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Behaviour::ChunkedCutShort(code) => {
            let head = status_head(*code, &[("Transfer-Encoding", "chunked")]);
            w(stream, head.as_bytes());
            w(stream, b"a\r\nabc");
        }
        Behaviour::ShortBody(code) => {
            let head = status_head(*code, &[("Content-Length", "100")]);
            w(stream, head.as_bytes());
            w(stream, b"abc");
        }
        Behaviour::BigBody(code, size) => {
            let len = size.to_string();
            let head = status_head(*code, &[("Content-Length", &len)]);
            if w(stream, head.as_bytes()) {
                let chunk = vec![b'x'; 8192];
                let mut left = *size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if !w(stream, &chunk[..n]) {
                        break;
                    }
                    left -= n;
                }
            }
        }
        Behaviour::StatusKeepOpen(code) => {
            if w(stream, &response_bytes(*code, &[], b"ok\n")) {
                hang(state);
            }
        }
        Behaviour::ByPath(_) => unreachable!("resolved by the caller"),
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Keep the connection (and thread) alive until the stub is dropped or the hang limit passes.
fn hang(state: &StubState) {
    let start = Instant::now();
    while !state.stop.load(Ordering::SeqCst) && start.elapsed() < STUB_HANG_LIMIT {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the end of the request head (or EOF/timeout/64 KiB), then the body its
/// `Content-Length` declares. The head as read (lossy UTF-8), and the request when the head
/// was complete (a connection that sends nothing, like a TCP check's, is not a request).
fn read_request(stream: &mut TcpStream) -> (String, Option<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&buf, b"\r\n\r\n").is_none() && buf.len() < 64 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let Some(head_end) = find(&buf, b"\r\n\r\n") else { return (head, None) };
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let declared = String::from_utf8_lossy(&buf[..head_end])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0usize);
    let mut body_len = buf.len() - (head_end + 4);
    while body_len < declared {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body_len += n,
        }
    }
    (head, Some(Seen { method, path, body_len }))
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn status_head(code: u16, headers: &[(&str, &str)]) -> String {
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason_phrase(code));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// A complete response; no body (nor Content-Length) for 204 and 304.
fn response_bytes(code: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    if code == 204 || code == 304 {
        return status_head(code, headers).into_bytes();
    }
    let len = body.len().to_string();
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("Content-Length", &len));
    let mut bytes = status_head(code, &all).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
