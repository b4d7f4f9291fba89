//! The daemon driven by the clients people and kubelet really use: curl,
//! wget, Python's http.client and Go's net/http. A client that is not
//! installed is skipped with a message (.ci/run installs them all).

use std::path::Path;
use std::process::{Command, Output};

use support::{Behaviour, Daemon, Stub};

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
        || Command::new(tool).arg("version").output().is_ok_and(|o| o.status.success());
    if !found {
        support::skip_missing_tool(&format!("{tool} not installed"));
    }
    found
}

fn output(cmd: &mut Command) -> (i32, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("client runs");
    let text = String::from_utf8_lossy(&stdout).into_owned();
    assert!(status.code().is_some(), "client killed: {}", String::from_utf8_lossy(&stderr));
    (status.code().unwrap_or(-1), text + &String::from_utf8_lossy(&stderr))
}

/// A daemon with one passing and one failing check.
fn daemon() -> (Daemon, Stub, Stub) {
    let good = Stub::start(Behaviour::Status(200, "fine\n"));
    let bad = Stub::start(Behaviour::Status(503, "down\n"));
    let d = Daemon::serve(&["--timeout", "2s", &format!("good={}", good.url("/")), &format!("bad={}", bad.url("/"))]);
    (d, good, bad)
}

#[test]
fn curl() {
    if !have("curl") {
        return;
    }
    let (d, _good, _bad) = daemon();
    let base = format!("http://{}", d.host_port());
    let curl = |args: &[&str]| output(Command::new("curl").args(["-sS", "--max-time", "5"]).args(args));

    let (code, out) = curl(&["-w", "%{http_code}", &format!("{base}/self")]);
    assert_eq!((code, out.as_str()), (0, "ok\n200"));
    let (_, out) = curl(&["-w", "%{http_code}", &format!("{base}/all?verbose")]);
    assert_eq!(out, "[+]good ok\n[-]bad failed: status 503\nsome checks failed\n503");
    let (_, out) = curl(&["-w", "%{http_code}", &format!("{base}/all?exclude=bad")]);
    assert_eq!(out, "ok\n200");
    // --fail is how scripts use it: exit 22 on 503.
    let (code, _) = curl(&["--fail", "-o", "/dev/null", &format!("{base}/all")]);
    assert_eq!(code, 22);
    // HEAD, and two requests on one keep-alive connection.
    let (_, out) = curl(&["-I", &format!("{base}/self")]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("Content-Length: 3\r\n"), "{out}");
    let (_, out) = curl(&["-v", &format!("{base}/self"), &format!("{base}/all/good")]);
    assert!(out.contains("Re-using existing connection") || out.contains("Reusing existing"), "{out}");
    // HTTP/1.0.
    let (_, out) = curl(&["-0", "-i", &format!("{base}/self")]);
    assert!(out.contains("Connection: close\r\n"), "{out}");
}

#[test]
fn wget() {
    if !have("wget") {
        return;
    }
    let (d, _good, _bad) = daemon();
    let base = format!("http://{}", d.host_port());
    let wget = |url: &str| output(Command::new("wget").args(["-q", "-O", "-", "-T", "5", "-t", "1", url]));
    assert_eq!(wget(&format!("{base}/self")), (0, "ok\n".into()));
    assert_eq!(wget(&format!("{base}/all/good")), (0, "ok\n".into()));
    // wget exits 8 on an HTTP error status.
    assert_eq!(wget(&format!("{base}/all")).0, 8);
    assert_eq!(wget(&format!("{base}/nope")).0, 8);
}

#[test]
fn python_http_client() {
    if !have("python3") {
        return;
    }
    let (d, _good, _bad) = daemon();
    let script = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], timeout=5)
for method, path in [("GET", "/self"), ("GET", "/all"), ("HEAD", "/all"), ("GET", "/all/good"), ("POST", "/all"), ("GET", "/x")]:
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    print(method, path, r.status, len(body), r.getheader("Content-Type"), r.getheader("Allow"))
"#;
    let (code, out) = output(Command::new("python3").args(["-c", script, &d.host_port()]));
    assert_eq!(code, 0, "{out}");
    let want = [
        "GET /self 200 3 text/plain; charset=utf-8 None",
        "GET /all 503 45 text/plain; charset=utf-8 None",
        "HEAD /all 503 0 text/plain; charset=utf-8 None",
        "GET /all/good 200 3 text/plain; charset=utf-8 None",
        "POST /all 405 19 text/plain; charset=utf-8 GET, HEAD",
        "GET /x 404 10 text/plain; charset=utf-8 None",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
}

#[test]
fn go_net_http_as_kubelet() {
    if !have("go") {
        return;
    }
    let (d, _good, _bad) = daemon();
    let base = format!("http://{}", d.host_port());
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/kubelet_like.go");
    let cache = std::env::temp_dir().join("healthcheck-go-cache");
    let (code, out) = output(
        Command::new("go")
            .arg("run")
            .arg(&program)
            .args([format!("{base}/self"), format!("{base}/all"), format!("{base}/all/good")])
            .env("GOCACHE", &cache)
            .env("GO111MODULE", "off"),
    );
    assert_eq!(code, 0, "{out}");
    // The same answers without keep-alive (kubelet's way) and with it.
    let once = ["200 ok", "503 [-]bad failed: status 503", "200 ok"];
    let want: Vec<&str> = once.iter().chain(&once).copied().collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
}

/// kubelet asks with `Connection: close` (and old clients with HTTP/1.0):
/// the answer to `/all` comes after its round, and only then the close.
#[test]
fn all_answers_before_closing() {
    let (d, _good, _bad) = daemon();
    let addr = d.host_port().parse().unwrap();
    for request in [
        "GET /all HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /all HTTP/1.0\r\n\r\n",
        "HEAD /all/good HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let mut conn = support::Conn::open(addr);
        conn.send(request.as_bytes());
        let resp = conn.read_response(request.starts_with("HEAD"));
        let want = if request.contains("/all/good") { 200 } else { 503 };
        assert_eq!(resp.status, want, "{request:?}");
        assert_eq!(resp.header("Connection"), Some("close"), "{request:?}");
        assert!(conn.is_closed_by_peer(std::time::Duration::from_secs(2)), "{request:?}");
    }
}
