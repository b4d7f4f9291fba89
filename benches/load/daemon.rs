//! A process under test (the daemon, nginx, valgrind): start it, wait for
//! its port, read its CPU time and memory from /proc, stop it.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

pub struct Process {
    child: Child,
    pub port: u16,
}

/// `serve` arguments for `checks` http checks on loopback ports.
pub fn serve_args(port: u16, timeout: &str, checks: &[u16]) -> Vec<String> {
    let mut args =
        vec!["serve".into(), "--listen".into(), format!("127.0.0.1:{port}"), "--timeout".into(), timeout.into()];
    args.extend(checks.iter().enumerate().map(|(i, p)| format!("c{i}=http://127.0.0.1:{p}/health")));
    args
}

impl Process {
    /// `daemon serve` on a free port with `checks` and a 2 s timeout, its
    /// stderr in `log`.
    pub fn serve(daemon: &Path, checks: &[u16], log: &Path) -> io::Result<Process> {
        let port = support::free_port(support::LOCALHOST_V4);
        Process::start(daemon, &serve_args(port, "2s", checks), port, log, Duration::from_secs(5))
    }

    /// Starts `program args`, its stderr in `log`, and waits until `port`
    /// accepts connections (at most `ready_within`).
    pub fn start(
        program: &Path,
        args: &[String],
        port: u16,
        log: &Path,
        ready_within: Duration,
    ) -> io::Result<Process> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log)?)
            .spawn()?;
        let mut process = Process { child, port };
        let deadline = Instant::now() + ready_within;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(io::Error::other(format!(
                    "{} exited at startup ({status}); see {}",
                    program.display(),
                    log.display()
                )));
            }
            if Instant::now() > deadline {
                process.stop();
                return Err(io::Error::other(format!(
                    "{} did not listen on {port}; see {}",
                    program.display(),
                    log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time so far, in seconds (10 ms resolution).
    pub fn cpu_seconds(&self) -> io::Result<f64> {
        cpu_seconds(self.pid())
    }

    /// The same, with the live children's (nginx's worker).
    pub fn tree_cpu_seconds(&self) -> io::Result<f64> {
        let pid = self.pid();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
        children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .try_fold(cpu_seconds(pid)?, |sum, child| Ok(sum + cpu_seconds(child)?))
    }

    /// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{}/status", self.pid())))
    }

    /// SIGTERM, then waits (at most 5 s, then SIGKILL). True on a clean exit.
    pub fn stop(&mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// utime + stime of any process, in seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name, which may hold spaces:
    // state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(u), Some(s)) => Ok((u + s) as f64 / TICKS_PER_SEC),
        _ => Err(io::Error::other(format!("unexpected /proc/{pid}/stat"))),
    }
}
