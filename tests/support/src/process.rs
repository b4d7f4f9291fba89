//! The binary under test as a process: `serve` as a guarded daemon, one-shot commands bounded in time, and the one output collector.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{bin, free_port, host_port, try_request, Conn, Response, LOCALHOST_V4};

/// How long the daemon gets to answer `/self` after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new daemon is given to finish the round it runs at start (fast checks take a
/// few milliseconds).
const FIRST_ROUND_WAIT: Duration = Duration::from_millis(500);

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
                Ok(()) => {
                    daemon.wait_first_round();
                    return daemon;
                }
                Err(Some(status)) if status.code() == Some(71) => continue,
                Err(status) => {
                    panic!("daemon {full:?} did not become ready (exit: {status:?}); stderr:\n{}", daemon.log())
                }
            }
        }
        panic!("could not start the daemon on a free port after 5 attempts");
    }

    /// `healthcheck serve --listen LISTEN ARGS...` (LISTEN as the user writes it, e.g.
    /// `:8081`), ready when `/self` answers 200 at `addr`.
    pub fn serve_listen(listen: &str, addr: SocketAddr, args: &[&str]) -> Daemon {
        let mut full = vec!["serve", "--listen", listen];
        full.extend_from_slice(args);
        let mut daemon = Daemon::spawn(&[], &full, addr);
        if let Err(status) = daemon.wait_ready() {
            panic!("daemon {full:?} did not answer at {addr} (exit: {status:?}); stderr:\n{}", daemon.log());
        }
        daemon.wait_first_round();
        daemon
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

    /// Waits a little for the round the daemon runs at start to end (its `event=round` line),
    /// so that a test counting probes or rounds starts from a quiet daemon. A round that
    /// takes longer (a hanging check) is left running: requests join it.
    fn wait_first_round(&self) {
        let deadline = Instant::now() + FIRST_ROUND_WAIT;
        while Instant::now() < deadline && !self.log().lines().any(|l| l.contains("event=round")) {
            thread::sleep(Duration::from_millis(5));
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

/// Reads `from` to EOF into `into` on a thread of its own, which holds a clone of `into` until then.
pub fn collect_into<R: Read + Send + 'static>(mut from: R, into: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
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

/// A pipe read to EOF on a thread of its own, for a caller that wants the text at the end.
pub struct Collected {
    reader: thread::JoinHandle<()>,
    text: Arc<Mutex<String>>,
}

impl Collected {
    pub fn start<R: Read + Send + 'static>(from: R) -> Collected {
        let text = Arc::new(Mutex::new(String::new()));
        Collected { reader: collect_into(from, Arc::clone(&text)), text }
    }

    /// Everything, once the writer has closed the pipe.
    pub fn join(self) -> String {
        let _ = self.reader.join();
        let text = self.text.lock().unwrap().clone();
        text
    }
}

/// Waits (bounded) for `child` to exit; `None` when it is still running after `timeout`.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // Fine-grained: the soak bench times shutdowns against 100 ms with this.
        thread::sleep(Duration::from_millis(1));
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
    let stdout = Collected::start(child.stdout.take().unwrap());
    let stderr = Collected::start(child.stderr.take().unwrap());
    let status = match wait_child(&mut child, Duration::from_secs(10)) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            assert!(status.signal().is_some());
            status
        }
    };
    CliOutput { status, stdout: stdout.join(), stderr: stderr.join() }
}
