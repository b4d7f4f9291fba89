//! The `run` wrapper under test as a guarded process group, and its logfmt events.

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{bin, collect_into, eventually, send_signal, PATIENCE};

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
        let mut command = Command::new(bin());
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
        collect_into(child.stdout.take().expect("piped stdout"), Arc::clone(&stdout));
        collect_into(child.stderr.take().expect("piped stderr"), Arc::clone(&stderr));
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
