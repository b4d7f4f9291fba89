//! Helpers for the `run` tests: the wrapper under test as a guarded process, a callback recorder, a late upstream, temp dirs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single wait in these tests may take before it counts as a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Poll `cond` every 20 ms until it holds; false when `timeout` ran out first.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Send `sig` to `pid`; panics when the process does not exist.
pub fn send_signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) only sends a signal.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("healthcheck-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    /// The path of `name` inside the directory, as a string for shell scripts.
    pub fn file(&self, name: &str) -> String {
        self.path.join(name).to_str().expect("UTF-8 temp path").to_string()
    }

    /// The contents of `name`, empty when it does not exist (yet).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path.join(name)).unwrap_or_default()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path.join(name).exists()
    }

    /// Wait (bounded) until `name` holds a line equal to `line`.
    pub fn wait_for_line(&self, name: &str, line: &str) {
        let found = eventually(PATIENCE, || self.read(name).lines().any(|l| l == line));
        assert!(found, "no line {line:?} in {name} within {PATIENCE:?}; it holds {:?}", self.read(name));
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The wrapper under test
// ---------------------------------------------------------------------------

/// A running `healthcheck` (usually `run ...`) in its own process group: dropping it kills the
/// whole group, so the wrapper's children die with it. Output is collected in the background.
pub struct Wrapper {
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

/// How a wrapper ended.
#[derive(Debug)]
pub struct Finished {
    /// The wrapper's process id.
    pub pid: u32,
    pub status: ExitStatus,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The exit code; panics (with the log) when the process died of a signal.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| panic!("no exit code: {:?}; stderr:\n{}", self.status, self.stderr))
    }

    /// The stderr lines of one logfmt event.
    pub fn events(&self, event: &str) -> Vec<&str> {
        events(&self.stderr, event)
    }
}

/// The lines of `log` whose `event=` field is exactly `event`.
pub fn events<'a>(log: &'a str, event: &str) -> Vec<&'a str> {
    let field = format!(" event={event}");
    log.lines().filter(|l| l.contains(&format!("{field} ")) || l.ends_with(&field)).collect()
}

/// The value of `key=` in a logfmt line (unquoted values only).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split(' ').find_map(|kv| kv.strip_prefix(prefix.as_str()))
}

impl Wrapper {
    /// `healthcheck ARGS...` with stdin from /dev/null.
    pub fn start(args: &[&str]) -> Wrapper {
        Wrapper::start_with(args, &[], None)
    }

    /// `healthcheck ARGS...` with extra environment variables and optional stdin bytes.
    pub fn start_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Wrapper {
        let mut command = Command::new(crate::common::bin());
        command.args(args).envs(env.iter().copied());
        Wrapper::spawn(command, stdin)
    }

    /// Any command (e.g. `unshare ... healthcheck run ...`), in a new process group.
    pub fn spawn(mut command: Command, stdin: Option<&[u8]>) -> Wrapper {
        command
            .process_group(0)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(bytes).expect("write stdin");
        }
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().expect("piped stdout"), Arc::clone(&stdout));
        collect(child.stderr.take().expect("piped stderr"), Arc::clone(&stderr));
        Wrapper { child, started: Instant::now(), stdout, stderr, status: None }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: libc::c_int) {
        assert!(self.status.is_none(), "signal {sig} after the wrapper exited");
        send_signal(self.pid(), sig);
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait (bounded) until the log has a line for `event`; returns that line.
    pub fn wait_for_event(&self, event: &str) -> String {
        let mut line = None;
        let found = eventually(PATIENCE, || {
            line = events(&self.stderr(), event).first().map(|l| l.to_string());
            line.is_some()
        });
        assert!(found, "no event={event} within {PATIENCE:?}; stderr:\n{}", self.stderr());
        line.unwrap()
    }

    /// True when the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Wait (bounded by [`PATIENCE`]) for the exit; panics with the log when it does not come.
    pub fn finish(self) -> Finished {
        self.finish_within(PATIENCE)
    }

    pub fn finish_within(mut self, timeout: Duration) -> Finished {
        let mut status = None;
        let exited = eventually(timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(exited, "the wrapper did not exit within {timeout:?}; stderr:\n{}", self.stderr());
        self.status = status;
        let status = status.unwrap();
        let elapsed = self.started.elapsed();
        // The collectors end at EOF, which a grandchild may delay: give them a moment, not forever.
        let complete = || Arc::strong_count(&self.stdout) == 1 && Arc::strong_count(&self.stderr) == 1;
        eventually(Duration::from_secs(2), complete);
        Finished {
            pid: self.child.id(),
            status,
            elapsed,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Wrapper {
    fn drop(&mut self) {
        // SAFETY: kill(2) only sends a signal; the group is the one spawn() created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read `from` to EOF into `into`; the thread holds a clone of `into` until then.
fn collect<R: Read + Send + 'static>(mut from: R, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

// ---------------------------------------------------------------------------
// The callback recorder (and late upstream)
// ---------------------------------------------------------------------------

/// What the recorder answers.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// `200 OK` at once.
    Ok,
    /// This status at once.
    Status(u16),
    /// `200 OK` after this delay.
    Delay(Duration),
    /// Nothing, until the client gives up or the recorder is dropped.
    Hang,
    /// This status to the first N requests, then `200 OK`.
    StatusFirst(u16, usize),
}

/// One request as the recorder saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The declared `Content-Length` (0 when absent); that many bytes were read.
    pub body_len: usize,
}

const PENDING: u8 = 0;
const BOUND: u8 = 1;
const BIND_FAILED: u8 = 2;

struct RecorderState {
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    bind: AtomicU8,
}

/// A loopback HTTP server, one thread per connection, that answers every request the same way
/// and records (method, path, body length).
pub struct Recorder {
    pub addr: SocketAddr,
    state: Arc<RecorderState>,
}

impl Recorder {
    /// On a free 127.0.0.1 port, answering 200.
    pub fn start() -> Recorder {
        Recorder::with(Reply::Ok)
    }

    pub fn with(reply: Reply) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let addr = listener.local_addr().unwrap();
        Recorder::serve(addr, reply, Some(listener), Duration::ZERO)
    }

    /// On exactly `addr` (e.g. a preset's fixed port); Err when it is taken.
    pub fn bind(addr: &str, reply: Reply) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Recorder::serve(addr, reply, Some(listener), Duration::ZERO))
    }

    /// A port that refuses connections for `delay`, then answers 200: an upstream that becomes
    /// ready late. Check [`Recorder::bind_failed`] afterwards (someone may have taken the port).
    pub fn late(delay: Duration) -> Recorder {
        let port = crate::common::free_port(crate::common::LOCALHOST_V4);
        Recorder::serve(SocketAddr::from(([127, 0, 0, 1], port)), Reply::Ok, None, delay)
    }

    fn serve(addr: SocketAddr, reply: Reply, listener: Option<TcpListener>, delay: Duration) -> Recorder {
        let state = Arc::new(RecorderState {
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            bind: AtomicU8::new(if listener.is_some() { BOUND } else { PENDING }),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
            let listener = match listener {
                Some(listener) => listener,
                None => {
                    thread::sleep(delay);
                    match TcpListener::bind(addr) {
                        Ok(listener) => {
                            accept_state.bind.store(BOUND, Ordering::SeqCst);
                            listener
                        }
                        Err(_) => {
                            accept_state.bind.store(BIND_FAILED, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            };
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn_state = Arc::clone(&accept_state);
                thread::spawn(move || answer(stream, reply, &conn_state));
            }
        });
        Recorder { addr, state }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far.
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

    /// Whether the late bind failed (the port was taken meanwhile): the test should retry.
    pub fn bind_failed(&self) -> bool {
        self.state.bind.load(Ordering::SeqCst) == BIND_FAILED
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn answer(mut stream: TcpStream, reply: Reply, state: &RecorderState) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return, // not a request (e.g. the Drop wake-up)
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let body_len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0usize);
    let mut body = buf.len() - (head_end + 4);
    while body < body_len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body += n,
        }
    }
    let nth = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen { method, path, body_len: body });
        seen.len()
    };
    let status = match reply {
        Reply::Ok => 200,
        Reply::StatusFirst(code, n) if nth <= n => code,
        Reply::StatusFirst(..) => 200,
        Reply::Status(code) => code,
        Reply::Delay(delay) => {
            thread::sleep(delay);
            200
        }
        Reply::Hang => {
            let start = Instant::now();
            while !state.stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(30) {
                thread::sleep(Duration::from_millis(20));
            }
            return;
        }
    };
    let response = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
    let _ = stream.write_all(response.as_bytes());
}
