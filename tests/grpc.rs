//! `grpc://` checks against two independent gRPC implementations started
//! on loopback: Python grpcio (gRPC C-core) and grpc-go (Debian's
//! golang-google-grpc-dev, built in GOPATH mode). A missing one is skipped
//! with `SKIP: ...` (a failure on CI, where `.ci/run` installs both).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::{free_port, grpc_go, run_cli, Behaviour, Daemon, Stub, LOCALHOST_V4};

/// Debian's Go toolchain, which builds against /usr/share/gocode.

#[derive(Clone, Copy, Debug)]
enum Implementation {
    Python,
    Go,
}

const BOTH: [Implementation; 2] = [Implementation::Python, Implementation::Go];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc")
}

fn python_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let ok = Command::new("python3")
            .args(["-c", "import grpc, grpc_health.v1.health"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            support::skip_missing_tool(
                "python3 with grpcio and grpcio-health-checking not installed (pip install grpcio grpcio-health-checking)",
            );
        }
        ok
    })
}

/// Builds tests/grpc/health_server.go once per run; None (said loudly) when
/// Go or grpc-go is missing.
fn go_server() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(why) = grpc_go::missing() {
                support::skip_missing_tool(why);
                return None;
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpc-go-health-server");
            grpc_go::build(&out).unwrap_or_else(|e| panic!("{e}"));
            Some(out)
        })
        .as_deref()
}

/// A health server, killed when dropped.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Server {
    /// None when the implementation is not installed (already said).
    fn start(implementation: Implementation, args: &[&str]) -> Option<Server> {
        let mut cmd = match implementation {
            Implementation::Python if python_ready() => {
                let mut cmd = Command::new("python3");
                cmd.arg(dir().join("health_server.py"));
                cmd
            }
            Implementation::Go => Command::new(go_server()?),
            Implementation::Python => return None,
        };
        let mut child =
            cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start the health server");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server says its port");
        let port = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok()).expect("port N");
        Some(Server { child, stdin, stdout, port })
    }

    /// Sets a service's status ("-" is the server as a whole).
    fn set(&mut self, service: &str, status: &str) {
        writeln!(self.stdin, "set {service} {status}").expect("command the server");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("the server answers");
        assert_eq!(line.trim(), "ok");
    }

    /// The last call's metadata `key`, "-" when absent (Python only).
    fn meta(&mut self, key: &str) -> String {
        writeln!(self.stdin, "meta {key}").expect("command the server");
        let mut value = String::new();
        self.stdout.read_line(&mut value).expect("the server answers");
        let mut ok = String::new();
        self.stdout.read_line(&mut ok).expect("the server answers");
        assert_eq!(ok.trim(), "ok");
        value.trim().to_string()
    }

    fn url(&self, query: &str) -> String {
        format!("grpc://127.0.0.1:{}{query}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `check --timeout 2s URL`: its exit code and output.
fn check(url: &str) -> (Option<i32>, String) {
    let out = run_cli(&["check", "--timeout", "2s", &format!("c={url}")]);
    (out.code(), out.stdout + &out.stderr)
}

#[test]
fn serving_not_serving_and_unknown_services() {
    for implementation in BOTH {
        let Some(mut server) = Server::start(implementation, &[]) else { continue };
        let what = format!("{implementation:?}");
        assert_eq!(check(&server.url("")), (Some(0), "[+]c ok\nall checks passed\n".into()), "{what}");
        server.set("orders.v1.Orders", "SERVING");
        assert_eq!(check(&server.url("?service=orders.v1.Orders")).0, Some(0), "{what}");
        // Percent-decoded: %2E is '.'.
        assert_eq!(check(&server.url("?service=orders%2Ev1.Orders")).0, Some(0), "{what}");
        server.set("-", "NOT_SERVING");
        let (code, out) = check(&server.url(""));
        assert_eq!((code, out.as_str()), (Some(1), "[-]c failed: NOT_SERVING\nsome checks failed\n"), "{what}");
        server.set("-", "SERVICE_UNKNOWN");
        assert!(check(&server.url("")).1.contains("[-]c failed: SERVICE_UNKNOWN\n"), "{what}");
        server.set("-", "UNKNOWN");
        assert!(check(&server.url("")).1.contains("[-]c failed: UNKNOWN\n"), "{what}");
        // Both servers answer an unknown service with NOT_FOUND.
        let (code, out) = check(&server.url("?service=nope"));
        assert_eq!(code, Some(1), "{what}");
        assert!(out.contains("[-]c failed: grpc status NOT_FOUND"), "{what}: {out}");
    }
}

#[test]
fn a_server_without_the_health_service() {
    for implementation in BOTH {
        let Some(server) = Server::start(implementation, &["--no-health"]) else { continue };
        let (code, out) = check(&server.url(""));
        assert_eq!(code, Some(1));
        assert!(out.contains("[-]c failed: grpc status UNIMPLEMENTED"), "{implementation:?}: {out}");
    }
}

#[test]
fn a_slow_server_times_out() {
    let Some(server) = Server::start(Implementation::Python, &["--slow", "5"]) else { return };
    let started = Instant::now();
    let out = run_cli(&["check", "--timeout", "500ms", &format!("c={}", server.url(""))]);
    assert_eq!(out.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    // The call carries the deadline as grpc-timeout, so the server may give
    // up at the same moment: either side's word is a timeout.
    assert!(
        out.stdout == "[-]c failed: timeout after 500ms\nsome checks failed\n"
            || out.stdout == "[-]c failed: grpc status DEADLINE_EXCEEDED: Deadline Exceeded\nsome checks failed\n",
        "{}",
        out.stdout
    );
}

#[test]
fn not_a_grpc_server() {
    // A plain HTTP/1.1 server answers the HTTP/2 preface with a 4xx or a 2xx.
    for behaviour in [Behaviour::Status(400, "bad\n"), Behaviour::Status(200, "fine\n")] {
        let stub = Stub::start(behaviour);
        let (code, out) = check(&format!("grpc://127.0.0.1:{}", stub.port()));
        assert_eq!((code, out.as_str()), (Some(1), "[-]c failed: invalid response\nsome checks failed\n"));
    }
    // Closing without a word, and a closed port.
    let stub = Stub::start(Behaviour::CloseAfterRequest);
    assert!(check(&format!("grpc://127.0.0.1:{}", stub.port())).1.contains("[-]c failed: closed before response"));
    let port = free_port(LOCALHOST_V4);
    assert!(check(&format!("grpc://127.0.0.1:{port}")).1.contains("[-]c failed: connection refused"));
}

#[test]
fn serve_follows_a_status_that_flips_between_rounds() {
    for implementation in BOTH {
        let Some(mut server) = Server::start(implementation, &[]) else { continue };
        server.set("orders", "SERVING");
        let web = Stub::start(Behaviour::Status(200, "fine\n"));
        // localhost is 127.0.0.1 first, where the servers listen.
        let d = Daemon::serve(&[
            "--timeout",
            "2s",
            &format!("app=grpc://localhost:{}", server.port),
            &format!("orders={}", server.url("?service=orders")),
            &format!("web={}", web.url("/")),
        ]);
        assert_eq!(d.get("/all").status, 200);
        server.set("orders", "NOT_SERVING");
        let all = d.get("/all?verbose");
        assert_eq!(
            (all.status, all.text()),
            (503, "[+]app ok\n[-]orders failed: NOT_SERVING\n[+]web ok\nsome checks failed\n".into())
        );
        d.wait_for_log_line(&["event=check_failing", "check=orders", "NOT_SERVING"], Duration::from_secs(2));
        assert_eq!(d.get("/all/app").status, 200);
        assert_eq!(d.get("/all/orders").status, 503);
        assert_eq!(d.get("/all?exclude=orders").status, 200);
        let metrics = d.get("/metrics").text();
        assert!(metrics.contains("healthcheck_check_failures_total{check=\"orders\",reason=\"grpc\"}"), "{metrics}");
        server.set("orders", "SERVING");
        assert_eq!(d.get("/all").status, 200);
        drop(server);
        let all = d.get("/all");
        assert_eq!(all.status, 503, "{implementation:?}");
        assert!(all.text().contains("[-]app failed: connection refused\n"), "{}", all.text());
    }
}

#[test]
fn run_waits_for_serving() {
    let Some(mut server) =
        Server::start(Implementation::Go, &[]).or_else(|| Server::start(Implementation::Python, &[]))
    else {
        return;
    };
    server.set("job", "NOT_SERVING");
    let url = server.url("?service=job");
    let mut run = Command::new(support::bin())
        .args(["run", "--wait", &url, "--interval", "100ms", "--wait-timeout", "10s", "--", "sh", "-c", "exit 7"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    std::thread::sleep(Duration::from_millis(500));
    assert!(run.try_wait().unwrap().is_none(), "run must still wait");
    server.set("job", "SERVING");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "run did not start the job");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(7));
}

#[test]
fn headers_are_sent_as_metadata() {
    let Some(mut server) = Server::start(Implementation::Python, &[]) else { return };
    let url = format!("c={}", server.url(""));
    let out = run_cli(&["check", "--header", "c=X-Token: abc 1", "--header", "c=User-Agent: kube-probe/1.31", &url]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(server.meta("x-token"), "abc 1");
    assert!(server.meta("user-agent").starts_with("kube-probe/1.31"), "the server may add its own words");
    let out = run_cli(&["check", &url]);
    assert_eq!(out.code(), Some(0));
    assert_eq!(server.meta("x-token"), "-");
    assert!(server.meta("user-agent").starts_with("healthcheck/"));
    // The call's own fields cannot be given.
    for field in ["grpc-encoding: gzip", "Content-Type: text/plain", "TE: gzip", "Connection: x"] {
        let out = run_cli(&["check", "--header", &format!("c={field}"), &url]);
        assert_eq!(out.code(), Some(64), "{field}");
        assert!(out.stderr.contains("sets this field itself"), "{field}: {}", out.stderr);
    }
}

/// A frame: length, type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A hostile HTTP/2 server on loopback: on each connection it reads the
/// call's first bytes, then writes `chunks`, one every `gap`, then holds the
/// connection until the client closes it. The port; the thread ends with
/// the test process.
fn raw_server(chunks: Vec<Vec<u8>>, gap: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let chunks = chunks.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0; 4096];
                let _ = conn.read(&mut buf);
                for chunk in &chunks {
                    std::thread::sleep(gap);
                    if conn.write_all(chunk).is_err() {
                        return;
                    }
                }
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    port
}

#[test]
fn hostile_servers_fail_cleanly() {
    const SETTINGS: u8 = 4;
    let settings = frame(SETTINGS, 0, 0, &[]);
    // :status 200 and content-type application/grpc (static names, literal values).
    let head = frame(1, 4, 1, b"\x88\x0f\x10\x10application/grpc");
    let serving: &[u8] = include_bytes!("grpc/responses/go-serving.h2");
    let trailers_only = |message: &str| {
        let mut block = b"\x88\x0f\x10\x10application/grpc\x00\x0bgrpc-status\x0213\x00\x0cgrpc-message".to_vec();
        block.push(message.len() as u8);
        block.extend_from_slice(message.as_bytes());
        frame(1, 5, 1, &block)
    };
    let flood: Vec<Vec<u8>> =
        std::iter::once(settings.clone()).chain(std::iter::repeat_n(frame(6, 0, 0, b"pingpong"), 2000)).collect();
    let continuations: Vec<Vec<u8>> = [settings.clone(), frame(1, 0, 1, &[0x82; 100])]
        .into_iter()
        .chain(std::iter::repeat_n(frame(9, 0, 1, &[0x82; 16 * 1024]), 8))
        .collect();
    let cases: Vec<(&str, Vec<Vec<u8>>, Duration, &str)> = vec![
        // A real answer dripped byte by byte still passes.
        ("drip", serving.iter().map(|&b| vec![b]).collect(), Duration::from_millis(1), "[+]c ok"),
        (
            "goaway",
            vec![settings.clone(), frame(7, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0])],
            Duration::ZERO,
            "[-]c failed: goaway",
        ),
        (
            "reset",
            vec![settings.clone(), head.clone(), frame(3, 0, 1, &[0, 0, 0, 8])],
            Duration::ZERO,
            "[-]c failed: stream reset",
        ),
        ("pings", flood, Duration::from_micros(200), "[-]c failed: timeout after 500ms"),
        ("continuations", continuations, Duration::ZERO, "[-]c failed: invalid response"),
        (
            "forged line",
            vec![settings.clone(), trailers_only("x%0Alevel=error event=forged")],
            Duration::ZERO,
            "[-]c failed: grpc status INTERNAL: x\\x0alevel=error event=forged\n",
        ),
    ];
    for (what, chunks, gap, want) in cases {
        let port = raw_server(chunks, gap);
        let started = Instant::now();
        let out = run_cli(&["check", "--timeout", "500ms", &format!("c=grpc://127.0.0.1:{port}")]);
        assert!(out.stdout.contains(want), "{what}: {}{}", out.stdout, out.stderr);
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: took {:?}", started.elapsed());
    }
}

#[test]
fn grpc_urls_are_checked_at_startup() {
    for url in [
        "grpc://127.0.0.1",
        "grpc://127.0.0.1:1/grpc.health.v1.Health/Check",
        "grpc://127.0.0.1:1?service=a&other=b",
        "grpc://127.0.0.1:1?svc=a",
        "grpc://127.0.0.1:1#frag",
        "grpc://user@127.0.0.1:1",
        "grpc://127.0.0.1:1?service=%zz",
    ] {
        let out = run_cli(&["check", url]);
        assert_eq!(out.code(), Some(64), "{url}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 2, "{url}: {}", out.stderr);
    }
}

/// `--dry-run` shows the service a gRPC check asks about as it is sent, percent-decoded
/// (`a/b`, not `a%2Fb`); the URL and the default name keep it as written.
#[test]
fn dry_run_shows_the_service_decoded() {
    let out = run_cli(&["check", "--dry-run", "grpc://127.0.0.1:9?service=orders.v1%2FOrders", "all=grpc://[::1]:9"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("\ncheck-service 127.0.0.1:9?service=orders.v1%2FOrders \"orders.v1/Orders\"\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\ncheck-service all \"\"\n"), "the server as a whole:\n{}", out.stdout);
    let out = run_cli(&["run", "--dry-run", "--wait", "db=grpc://127.0.0.1:9?service=a%2Fb", "--", "true"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("\nwait-service db \"a/b\"\n"), "{}", out.stdout);
}

/// A self-signed ECDSA P-256 key and certificate for `elsewhere.test` (not
/// the name probed), PEM, by `openssl req`; None (said loudly) without it.
fn tls_certificate(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("grpcs.crt"), dir.join("grpcs.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=elsewhere.test", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !out.is_ok_and(|o| o.status.success()) {
        support::skip_missing_tool("grpcs: openssl not installed (Debian: apt-get install openssl)");
        return None;
    }
    Some((cert, key))
}

/// `grpcs://` against grpcio and grpc-go over TLS (a certificate for another
/// name, not checked, as `grpc-health-probe -tls -tls-no-verify`); a TLS
/// server that does not choose h2 and a plain gRPC server fail with a clear
/// reason.
#[test]
#[cfg(feature = "tls")]
fn grpcs_over_tls() {
    let tmp = support::TempDir::new();
    let Some((cert, key)) = tls_certificate(Path::new(&tmp.file(""))) else { return };
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for implementation in BOTH {
        let Some(mut server) = Server::start(implementation, &["--tls", cert_s, key_s]) else { continue };
        let what = format!("{implementation:?}");
        let url = format!("grpcs://localhost:{}", server.port);
        assert_eq!(check(&url), (Some(0), "[+]c ok\nall checks passed\n".into()), "{what}");
        server.set("-", "NOT_SERVING");
        assert_eq!(check(&url), (Some(1), "[-]c failed: NOT_SERVING\nsome checks failed\n".into()), "{what}");
        server.set("orders", "SERVING");
        assert_eq!(check(&format!("{url}?service=orders")).0, Some(0), "{what}");
        // The TLS server is no h2c server: grpc:// on it fails.
        assert_eq!(check(&format!("grpc://127.0.0.1:{}", server.port)).0, Some(1), "{what}");
    }
    if let Some(plain) = Server::start(Implementation::Python, &[]) {
        let (code, out) = check(&format!("grpcs://127.0.0.1:{}", plain.port));
        assert_eq!(
            (code, out.as_str()),
            (Some(1), "[-]c failed: tls: handshake failed: not a TLS server\nsome checks failed\n")
        );
    }
    // openssl s_server offers no ALPN: gRPC needs h2.
    let port = free_port(LOCALHOST_V4);
    let mut s_server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}"), "-cert", cert_s, "-key", key_s])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let listening =
        support::eventually(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(listening, "openssl s_server did not listen");
    let (code, out) = check(&format!("grpcs://127.0.0.1:{port}"));
    let _ = s_server.kill();
    let _ = s_server.wait();
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "[-]c failed: tls: handshake failed: server did not choose h2 by ALPN\nsome checks failed\n")
    );
}
