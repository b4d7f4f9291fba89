//! Test support shared by the integration tests and the benches: the binary as a guarded process, a raw HTTP client, upstream stubs, skips and temp dirs.
//!
//! One crate, as h2's `tests/h2-support`, so that tests/ and benches/ use the same helpers
//! without `#[path]` includes. Everything is re-exported at the root: `use support::*`.
#![deny(rust_2018_idioms)]

pub mod binary;
pub mod client;
pub mod dockerfile;
pub mod grpc_go;
pub mod process;
pub mod sockets;
pub mod stub;
pub mod wrapper;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

pub use client::{assert_common_headers, parse_response, try_request, Conn, Response};
pub use process::{collect_into, run_cli, run_cli_under, wait_child, CliOutput, Collected, Daemon};
pub use stub::{Behaviour, Seen, Stub};
pub use wrapper::{events, field, Finished, Wrapper};

pub const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Read/write timeout of every socket the tests own.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any single wait in the `run` tests may take before it counts as a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Path of the binary under test. Cargo sets `CARGO_BIN_EXE_healthcheck` for the tests and
/// benches of the package that has the binary, at compile time (which only that crate can
/// read) and, since 1.94 or so, in the environment they run in. Older cargo: the binary sits
/// beside the `deps/` folder the test or bench executable runs from.
pub fn bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = std::env::var_os("CARGO_BIN_EXE_healthcheck").map(PathBuf::from).unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("the test's own path");
            exe.parent().and_then(Path::parent).expect("target/PROFILE/deps/TEST").join("healthcheck")
        });
        assert!(path.is_file(), "no healthcheck binary at {path:?}");
        path.into_os_string().into_string().expect("a UTF-8 path to the binary")
    })
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

/// `http://127.0.0.1:PORT{path}` on a loopback port nobody listens on (connection refused).
pub fn refused_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", free_port(LOCALHOST_V4))
}

/// Whether this machine can bind IPv6 loopback (tests needing it skip otherwise).
pub fn ipv6_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Says that a test is skipped and why, as `SKIP: WHY`. Written to the process's stderr
/// directly: the harness captures a passing test's own `eprintln!`, which would hide it.
pub fn skip(why: &str) {
    note(&format!("SKIP: {why}"));
}

/// Skips a test whose tool is missing; on CI (`CI` set, as `.ci/run` runs) it fails instead,
/// since `.ci/run` installs every such tool and a skip there would hide a broken install step.
pub fn skip_missing_tool(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}, but .ci/run should have installed it (CI is set)");
    }
    skip(why);
}

/// Prints past libtest's output capture, so a skip or a measurement is seen in a normal run.
pub fn note(message: &str) {
    let _ = writeln!(io::stderr(), "{message}");
}

/// A system program by name, looked for where Debian installs them (not on `PATH`, which a
/// developer's toolchain managers may shadow).
pub fn find_program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].iter().map(|dir| Path::new(dir).join(name)).find(|path| path.is_file())
}

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
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

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

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
