//! Test helpers shared by the integration tests: the daemon guard, a raw HTTP client, upstream stubs and a bounded CLI runner.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Read/write timeout of every socket the tests own.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the daemon gets to answer `/self` after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stub keeps a "hanging" connection open at most.
const STUB_HANG_LIMIT: Duration = Duration::from_secs(30);

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_healthcheck")
}

/// A port that was free a moment ago on `ip` (bind `ip:0`, read the port, drop the listener).
pub fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(ip, 0)).and_then(|l| l.local_addr()).expect("bind a loopback port").port()
}

/// `ip:port` as written on a command line or in a URL authority (`[::1]:80` for IPv6).
pub fn host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

/// Says that a test is skipped and why, as `SKIP: WHY`. Written to the process's stderr
/// directly: the harness captures a passing test's own `eprintln!`, which would hide it.
pub fn skip(why: &str) {
    let _ = writeln!(io::stderr(), "SKIP: {why}");
}

/// Skips a test whose tool is missing; on CI (`CI` set, as `.ci/run` runs) it fails instead,
/// since `.ci/run` installs every such tool and a skip there would hide a broken install step.
pub fn skip_missing_tool(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}, but .ci/run should have installed it (CI is set)");
    }
    skip(why);
}

/// Whether this machine can bind IPv6 loopback (tests needing it skip otherwise).
pub fn ipv6_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

// ---------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------

/// A running `healthcheck serve`, killed when dropped. Its stderr is collected in the background.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// `healthcheck serve --listen 127.0.0.1:PORT ARGS...`, ready when `/self` answers 200.
    pub fn serve(args: &[&str]) -> Daemon {
        Daemon::serve_on(LOCALHOST_V4, args)
    }

    /// Same as [`Daemon::serve`] on a free port of `ip`. Retries with another port when the
    /// chosen one was taken in between (exit 71).
    pub fn serve_on(ip: IpAddr, args: &[&str]) -> Daemon {
        Daemon::serve_under(&[], ip, args)
    }

    /// Same as [`Daemon::serve_on`], the binary started by `wrapper` (a program and its
    /// arguments, followed by the binary's path and arguments), e.g. `unshare -m ...`.
    pub fn serve_under(wrapper: &[&str], ip: IpAddr, args: &[&str]) -> Daemon {
        for _attempt in 0..5 {
            let addr = SocketAddr::new(ip, free_port(ip));
            let listen = host_port(addr);
            let mut full = vec!["serve", "--listen", listen.as_str()];
            full.extend_from_slice(args);
            let mut daemon = Daemon::spawn(wrapper, &full, addr);
            match daemon.wait_ready() {
                Ok(()) => return daemon,
                Err(Some(status)) if status.code() == Some(71) => continue,
                Err(status) => {
                    panic!("daemon {full:?} did not become ready (exit: {status:?}); stderr:\n{}", daemon.log())
                }
            }
        }
        panic!("could not start the daemon on a free port after 5 attempts");
    }

    fn spawn(wrapper: &[&str], args: &[&str], addr: SocketAddr) -> Daemon {
        let mut child = command_under(wrapper)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn healthcheck");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        collect_into(stderr, Arc::clone(&log));
        Daemon { child, addr, log }
    }

    /// Ok once `/self` answers 200; Err(exit status) when the process ended or time ran out.
    fn wait_ready(&mut self) -> Result<(), Option<ExitStatus>> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the stderr collector catch the last words.
                thread::sleep(Duration::from_millis(50));
                return Err(Some(status));
            }
            if let Ok(resp) = try_request(self.addr, "GET", "/self", Duration::from_millis(500)) {
                if resp.status == 200 {
                    return Ok(());
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(None)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `http://ADDR/path` is not needed by the tests; the authority alone is.
    pub fn host_port(&self) -> String {
        host_port(self.addr)
    }

    /// A fresh keep-alive connection to the daemon.
    pub fn conn(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One `GET path` on its own connection.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path)
    }

    /// One request on its own connection (HEAD responses are read without a body).
    pub fn request(&self, method: &str, path: &str) -> Response {
        let mut conn = self.conn();
        conn.send_request(method, path);
        conn.read_response(method == "HEAD")
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait (bounded) until stderr contains every one of `needles` on a single line; returns that line.
    pub fn wait_for_log_line(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| needles.iter().all(|n| line.contains(n))) {
                return line.to_string();
            }
            if Instant::now() >= deadline {
                panic!("no stderr line containing all of {needles:?} within {timeout:?}; stderr:\n{log}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal to the daemon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_into<R: Read + Send + 'static>(mut from: R, into: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// The command line, one-shot
// ---------------------------------------------------------------------------

/// What a finished (or killed after 10 s) command printed.
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// The binary, started by `wrapper` (a program and its arguments) unless it is empty.
fn command_under(wrapper: &[&str]) -> Command {
    match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(bin());
            command
        }
        None => Command::new(bin()),
    }
}

/// Run `healthcheck ARGS...` to completion, bounded to 10 s (killed after that).
pub fn run_cli(args: &[&str]) -> CliOutput {
    run_cli_under(&[], args)
}

/// [`run_cli`] with the binary started by `wrapper` (see [`Daemon::serve_under`]).
pub fn run_cli_under(wrapper: &[&str], args: &[&str]) -> CliOutput {
    let mut child = command_under(wrapper)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn healthcheck");
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let out_reader = collect_into(child.stdout.take().unwrap(), Arc::clone(&stdout));
    let err_reader = collect_into(child.stderr.take().unwrap(), Arc::clone(&stderr));
    let status = match wait_child(&mut child, Duration::from_secs(10)) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            assert!(status.signal().is_some());
            status
        }
    };
    let _ = out_reader.join();
    let _ = err_reader.join();
    let stdout = stdout.lock().unwrap().clone();
    let stderr = stderr.lock().unwrap().clone();
    CliOutput { status, stdout, stderr }
}

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------

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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
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

// ---------------------------------------------------------------------------
// Upstream stubs
// ---------------------------------------------------------------------------

/// What a stub does with each connection it accepts.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Read the request, answer `code` with `body` (Content-Length framed), close.
    Status(u16, &'static str),
    /// Read the request, wait, then answer like `Status(code, "")`.
    Delay(Duration, u16),
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
    stop: AtomicBool,
}

/// An upstream HTTP/TCP server on a loopback port, one thread per connection.
pub struct Stub {
    pub addr: SocketAddr,
    state: Arc<StubState>,
}

impl Stub {
    /// A stub on 127.0.0.1.
    pub fn start(behaviour: Behaviour) -> Stub {
        Stub::start_on(LOCALHOST_V4, behaviour)
    }

    pub fn start_on(ip: IpAddr, behaviour: Behaviour) -> Stub {
        Stub::bind(SocketAddr::new(ip, 0), behaviour).expect("bind a stub")
    }

    /// A stub on exactly `addr` (e.g. `[::1]:PORT`).
    pub fn bind(addr: SocketAddr, behaviour: Behaviour) -> io::Result<Stub> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(StubState {
            behaviour: Mutex::new(behaviour),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
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
        Ok(Stub { addr, state })
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
    let head = read_request_head(&mut stream);
    let path = head.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    state.requests.lock().unwrap().push(head);
    let mut behaviour = behaviour;
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
        Behaviour::CloseOnAccept | Behaviour::CloseAfterRequest => {}
        Behaviour::Reset => {
            // No shutdown: that would send FIN before the RST.
            reset(stream);
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

/// SO_LINGER {on, 0} then close: the kernel sends RST instead of FIN.
fn reset(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on an open socket we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // The caller drops (closes) the stream right after this.
}

/// Read until the end of the request head (or EOF/timeout/64 KiB).
fn read_request_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&buf, b"\r\n\r\n").is_none() && buf.len() < 64 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
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
