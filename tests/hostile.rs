//! Hostile and broken input: request smuggling and injection against the real daemon, log
//! injection, hostile upstream responses, and the fuzz oracles run on random inputs (stable).

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use healthcheck::check::Check;
use healthcheck::probe::{Action, Probe};
use healthcheck::verdict::Verdict;
use healthcheck::wire::http;
use healthcheck::wire::text::{parse_duration, DisplayDuration};
use healthcheck_fuzz::mutate::{mutate, Rng};
use healthcheck_fuzz::{oracles, TARGETS};
use support::{assert_common_headers, Behaviour, Daemon, Stub};

/// How long a connection the daemon should close gets to show it.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What the daemon must do with one raw request.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    /// Closed after the answer; otherwise a follow-up request on the same connection works.
    closes: bool,
}

fn case(name: &'static str, request: impl AsRef<[u8]>, status: u16, closes: bool) -> Case {
    Case { name, request: request.as_ref().to_vec(), status, closes }
}

/// `GET target HTTP/1.1` with a Host header and `extra` header lines.
fn get(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

/// The smuggling and injection table: each hostile request, its answer, and whether the
/// connection is closed after it. "INJECT" marks request bytes that must never come back.
fn cases() -> Vec<Case> {
    let big_query = format!("/self?{}", "q".repeat(7 * 1024));
    let huge_query = format!("/self?{}", "q".repeat(9 * 1024));
    let many_headers: String = (0..40).map(|i| format!("X-INJECT-{i}: y\r\n")).collect();
    let smuggled = "GET /all/INJECT HTTP/1.1\r\nHost: x\r\n\r\n";
    vec![
        // Framing: no endpoint takes a body, so anything that could desynchronise is refused,
        // and a body that is announced is never parsed as the next request.
        case("CL + TE", get("/self", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400, true),
        case("TE chunked", get("/self", "Transfer-Encoding: chunked\r\n"), 400, true),
        case("TE identity", get("/self", "Transfer-Encoding: identity\r\n"), 400, true),
        case("CL twice, differing", get("/self", "Content-Length: 1\r\nContent-Length: 2\r\n"), 400, true),
        case("CL as a list", get("/self", "Content-Length: 3, 3\r\n"), 400, true),
        case("CL with a sign", get("/self", "Content-Length: +3\r\n"), 400, true),
        case("CL overflowing u64", get("/self", "Content-Length: 99999999999999999999\r\n"), 400, true),
        case(
            "CL twice, equal",
            [get("/self", "Content-Length: 3\r\nContent-Length: 3\r\n"), b"abc".to_vec()].concat(),
            200,
            true,
        ),
        case(
            "body on GET smuggling a request",
            [get("/self", &format!("Content-Length: {}\r\n", smuggled.len())), smuggled.as_bytes().to_vec()].concat(),
            200,
            true,
        ),
        case("CL 0 keeps the connection", get("/self", "Content-Length: 0\r\n"), 200, false),
        // Line syntax.
        case("obs-fold", get("/self", "X-A: a\r\n folded: INJECT\r\n"), 400, true),
        case("bare LF (RFC 9112 2.2 allows it)", "GET /self HTTP/1.1\nHost: x\n\n", 200, false),
        case("bare CR", "GET /self HTTP/1.1\rHost: x\r\n\r\n", 400, true),
        case("NUL in the path", "GET /se\0lf HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        case("NUL in a header value", get("/self", "X-A: a\0INJECT\r\n"), 400, true),
        case("space before the colon", get("/self", "X-INJECT : y\r\n"), 400, true),
        case("non-token header name", get("/self", "X(INJECT): y\r\n"), 400, true),
        case("leading empty line", [b"\r\n".to_vec(), get("/self", "")].concat(), 200, false),
        case("non-UTF-8 path", b"GET /\xff\xfeINJECT HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        case("non-UTF-8 header value", b"GET /self HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\r\n\r\n", 200, false),
        case("UTF-8 path", get("/s\u{e9}lf", ""), 404, false),
        // Versions and request-line forms.
        case("no Host in HTTP/1.1", "GET /self HTTP/1.1\r\n\r\n", 400, true),
        case("two Hosts", get("/self", "Host: INJECT\r\n"), 400, true),
        case("HTTP/1.0 without Host", "GET /self HTTP/1.0\r\n\r\n", 200, true),
        case("HTTP/0.9", "GET /self\r\n\r\n", 400, true),
        case("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, true),
        case("TLS ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03INJECT", 400, true),
        case("absolute-form", get("http://INJECT.example:1/self", ""), 200, false),
        case("absolute-form https", get("https://INJECT.example/all/../self", ""), 404, false),
        case("authority-form", "CONNECT INJECT:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        case("asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        case("other method", "DELETE /all HTTP/1.1\r\nHost: x\r\n\r\n", 405, false),
        case("lower-case method", "get /self HTTP/1.1\r\nHost: x\r\n\r\n", 405, false),
        // Paths are matched exactly: nothing is decoded or normalised but the NAME of /all/NAME.
        case("dot-dot", get("/all/../self", ""), 404, false),
        case("dot-dot after", get("/self/..", ""), 404, false),
        case("dot segment", get("/./self", ""), 404, false),
        case("double slash", get("//self", ""), 404, false),
        case("encoded path", get("/%73elf", ""), 404, false),
        case("encoded name", get("/all/%61pp", ""), 200, false),
        case("badly encoded name", get("/all/%6", ""), 404, false),
        case("encoded name, not UTF-8", get("/all/%ff", ""), 404, false),
        case("encoded slash", get("/all%2Fapp", ""), 404, false),
        case("unknown name", get("/all/INJECT", ""), 404, false),
        case("fragment", get("/self#INJECT", ""), 404, false),
        // Bounds.
        case("7 KiB query", get(&big_query, ""), 200, false),
        case("9 KiB query", get(&huge_query, ""), 431, true),
        case("40 headers", get("/self", &many_headers), 431, true),
        case(
            "Connection: close, then a pipelined request",
            [get("/self", "Connection: close\r\n"), get("/all/INJECT", "")].concat(),
            200,
            true,
        ),
    ]
}

#[test]
fn smuggling_and_malformed_requests_get_deliberate_answers() {
    let app = Stub::ok();
    let daemon = Daemon::serve(&[&format!("app={}", app.url("/health"))]);
    let mut failures = Vec::new();
    for case in cases() {
        let mut conn = daemon.conn();
        conn.send(&case.request);
        let resp = match conn.try_read_response(false) {
            Ok(resp) => resp,
            Err(e) => {
                failures.push(format!("{}: no answer: {e}", case.name));
                continue;
            }
        };
        assert_common_headers(&resp);
        let raw = format!("{:?}{}", resp.headers, resp.text());
        assert!(!raw.contains("INJECT"), "{}: request data echoed: {raw}", case.name);
        if resp.status != case.status {
            failures.push(format!("{}: status {} (want {}): {}", case.name, resp.status, case.status, resp.text()));
        }
        assert_eq!(resp.header("Connection") == Some("close"), case.closes, "{}: Connection header", case.name);
        if case.closes {
            // Panics on a second response: a smuggled request must not be answered.
            if !conn.is_closed_by_peer(CLOSE_WAIT) {
                failures.push(format!("{}: connection left open", case.name));
            }
        } else {
            conn.send_request("GET", "/self");
            let again = conn.read_response(false);
            assert_eq!(again.status, 200, "{}: follow-up on the same connection", case.name);
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn requests_trickled_byte_by_byte_get_the_same_answers() {
    let app = Stub::ok();
    let daemon = Daemon::serve(&[&format!("app={}", app.url("/health"))]);
    for case in cases().into_iter().filter(|c| c.request.len() < 512) {
        let mut conn = daemon.conn();
        for byte in &case.request {
            // A peer that closes early (400) may reset a later write: only the answer counts.
            if conn.stream.write_all(std::slice::from_ref(byte)).is_err() {
                break;
            }
        }
        let resp = conn.read_response(false);
        assert_eq!(resp.status, case.status, "{} trickled", case.name);
    }
}

#[test]
fn exclude_names_are_echoed_escaped() {
    let app = Stub::ok();
    let daemon = Daemon::serve(&[&format!("app={}", app.url("/"))]);
    let target = "/all?exclude=%3Cscript%3E%0D%0AX-Injected:%20yes&exclude=a%22b%5C&exclude=%ff%0a&exclude=app";
    let resp = daemon.get(target);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("X-Injected"), None);
    let lines: Vec<String> = resp.text().lines().map(str::to_string).collect();
    let warn = "warn: some health checks cannot be excluded: no matches for";
    assert_eq!(
        lines,
        [
            format!(r#"{warn} "\x3cscript\x3e\x0d\x0aX-Injected: yes""#),
            format!(r#"{warn} "a\"b\\""#),
            // Not UTF-8 once decoded: shown as sent, which is printable.
            format!(r#"{warn} "%ff%0a""#),
            "ok".to_string(),
        ]
    );
}

#[test]
fn exclude_echoes_are_bounded() {
    let daemon = Daemon::serve(&["tcp://127.0.0.1:9"]);
    let many: String = (0..20).map(|i| format!("exclude=n{i}&")).collect();
    let resp = daemon.get(&format!("/all?{many}exclude={}", "%01".repeat(2000)));
    let warnings: Vec<String> = resp.text().lines().filter(|l| l.starts_with("warn:")).map(str::to_string).collect();
    assert_eq!(warnings.len(), 4, "{}", resp.text());
    let resp = daemon.get(&format!("/all?exclude={}", "%01".repeat(2000)));
    let first = resp.text().lines().next().unwrap().to_string();
    assert!(first.ends_with(&format!("\"{}...\"", r"\x01".repeat(64))), "{first}");
}

/// One logfmt line as the daemon writes it: `ts=.. level=.. event=..` then `key=value` pairs,
/// values bare (printable, no `"`, `=` or `\`) or quoted with escapes.
fn is_logfmt_line(line: &str) -> bool {
    let mut rest = line;
    let mut keys = Vec::new();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { return false };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return false;
        }
        keys.push(key);
        let end = if let Some(quoted) = after.strip_prefix('"') {
            let mut escaped = false;
            let Some(close) = quoted.char_indices().find_map(|(i, c)| {
                let end = !escaped && c == '"';
                escaped = !escaped && c == '\\';
                end.then_some(i)
            }) else {
                return false;
            };
            if !quoted[..close].chars().all(|c| (' '..='~').contains(&c)) {
                return false;
            }
            close + 2
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            if end == 0 || !after[..end].bytes().all(|b| b.is_ascii_graphic() && !b"\"=\\".contains(&b)) {
                return false;
            }
            end
        };
        rest = &after[end..];
        if !rest.is_empty() {
            let Some(next) = rest.strip_prefix(' ') else { return false };
            rest = next;
        }
    }
    keys.starts_with(&["ts", "level", "event"])
}

#[test]
fn neither_requests_nor_checks_can_forge_log_lines() {
    let app = Stub::start(Behaviour::Status(503, "level=error event=forged\n"));
    let garbage = Stub::start(Behaviour::Garbage);
    // A default name is the URL: it may hold `=`, `"` and percent-encoded line breaks.
    let hostile_name = format!("http://{}/x%0Alevel=error%20event=forged\"", support::host_port(app.addr));
    let mut daemon = Daemon::serve(&["--verbose", &hostile_name, &garbage.url("/")]);
    for case in cases() {
        let mut conn = daemon.conn();
        conn.send(&case.request);
        let _ = conn.try_read_response(false);
    }
    for target in ["/all?verbose&exclude=%0Ats=0%20level=error%20event=forged", "/all/x%0Aevent=forged"] {
        let _ = daemon.get(target);
    }
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
    daemon.wait_for_log_line(&["event=shutdown"], Duration::from_secs(2));
    let log = daemon.log();
    for line in log.lines() {
        assert!(is_logfmt_line(line), "not one logfmt line: {line:?}\nlog:\n{log}");
        assert!(!line.contains(" event=forged"), "forged: {line:?}");
    }
    // The failing checks were logged, with their names quoted and escaped.
    let failing = daemon.wait_for_log_line(&["event=check_failing", "reason=\"status 503\""], Duration::from_secs(1));
    assert!(
        failing.contains(r#"check="127.0.0.1:"#) && failing.contains("%0Alevel=error%20event=forged%22\" "),
        "{failing}"
    );
    daemon.wait_for_log_line(&["event=check_failing", "reason=\"invalid response\""], Duration::from_secs(1));
}

#[test]
fn logfmt_validator_rejects_forgeries() {
    assert!(is_logfmt_line(
        r#"ts=2026-01-01T00:00:00.000Z level=warn event=check_failing check=a reason="status 503""#
    ));
    assert!(is_logfmt_line(r#"ts=1 level=info event=x v="a \"q\" b\\""#));
    for bad in [
        "event=x",
        "ts=1 level=info event=x v=a b",
        r#"ts=1 level=info event=x v="open"#,
        "ts=1 level=info event=x v=\"\x1b\"",
    ] {
        assert!(!is_logfmt_line(bad), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------
// Hostile upstream responses, through the probe state machine
// ---------------------------------------------------------------------------

/// Probes `url` once, every hop answering `response`: the verdict, or where it redirects.
fn probe_once(url: &str, response: &[u8]) -> String {
    let check = Check::parse(url).unwrap();
    let mut probe = Probe::default();
    assert!(matches!(probe.start(&check, &check.addrs, Instant::now()), Action::Connect(_)));
    assert_eq!(probe.connected(&check, Instant::now()), Action::Send);
    let n = probe.output(&check).len();
    assert_eq!(probe.wrote(&check, n), Action::Receive);
    let action = match probe.received(&check, response) {
        Action::Receive => probe.eof(),
        other => other,
    };
    match action {
        Action::Done(Verdict::Pass) => "pass".to_string(),
        Action::Done(Verdict::Fail(reason)) => reason.to_string(),
        Action::Connect(addr) => {
            assert_eq!(probe.connected(&check, Instant::now()), Action::Send);
            match String::from_utf8(probe.output(&check).to_vec()) {
                Ok(request) => format!("follow {addr} {}", request.lines().next().unwrap()),
                // A ClientHello: the hop is https.
                Err(_) => format!("follow {addr} over TLS"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_responses_get_kubelets_verdicts() {
    let url = "http://localhost:8080/health";
    let cases: &[(&[u8], &str)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "pass"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "invalid response"),
        (b"HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n", "pass"),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "pass"),
        (b"HTTP/1.1 200 OK\r\nX-A: \0\r\n\r\n", "invalid response"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "invalid response"),
        (b"HTTP/1.1 099 X\r\n\r\n", "status 99"),
        (b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", "status 600"),
        (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "pass"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", "body cut short"),
        (b"HTTP/1.1 503 No\r\nContent-Length: 5\r\n\r\nok", "status 503"),
        (b"ICY 200 OK\r\n\r\n", "invalid response"),
        (b"HTTP/1.1 302 Found\r\n\r\n", "pass"),
        (b"HTTP/1.1 302 Found\r\nLocation: http://evil.example/\r\n\r\n", "pass"),
        (b"HTTP/1.1 302 Found\r\nLocation: http://localhost@evil.example/\r\n\r\n", "pass"),
        (b"HTTP/1.1 302 Found\r\nLocation: http://[::1]:8080/\r\n\r\n", "pass"),
        (
            b"HTTP/1.1 302 Found\r\nLocation: https://localhost/\r\n\r\n",
            if cfg!(feature = "tls") { "follow 127.0.0.1:443 over TLS" } else { "redirect to an unsupported scheme" },
        ),
        (b"HTTP/1.1 302 Found\r\nLocation: ftp://localhost/\r\n\r\n", "redirect to an unsupported scheme"),
        (b"HTTP/1.1 302 Found\r\nLocation: http://localhost:99999/\r\n\r\n", "invalid Location header"),
        (b"HTTP/1.1 302 Found\r\nLocation: \xff\r\n\r\n", "follow 127.0.0.1:8080 GET /%FF HTTP/1.1"),
        (b"HTTP/1.1 302 Found\r\nLocation: /a/../b?c#d\r\n\r\n", "follow 127.0.0.1:8080 GET /b?c HTTP/1.1"),
        (b"HTTP/1.1 302 Found\r\nLocation: //LOCALHOST:9/x\r\n\r\n", "pass"),
        (b"HTTP/1.1 302 Found\r\nLocation: http://evil@localhost/x\r\n\r\n", "follow 127.0.0.1:80 GET /x HTTP/1.1"),
        (
            b"HTTP/1.1 301 M\r\nLocation: /a%0d%0aX-Injected:%20y\r\n\r\n",
            "follow 127.0.0.1:8080 GET /a%0d%0aX-Injected:%20y HTTP/1.1",
        ),
        (b"HTTP/1.1 301 M\r\nLocation: /a b\"<>\r\n\r\n", "follow 127.0.0.1:8080 GET /a%20b%22%3C%3E HTTP/1.1"),
    ];
    for (response, want) in cases {
        assert_eq!(probe_once(url, response), *want, "{:?}", String::from_utf8_lossy(response));
    }
}

// ---------------------------------------------------------------------------
// The fuzz oracles on stable: seeds, kept crashers, random inputs
// ---------------------------------------------------------------------------

/// Mutated inputs per target in the normal test run (a few seconds in a debug build).
fn iterations(target: &str) -> usize {
    match target {
        "request" => 20_000,
        "response" => 2_000,
        _ => 3_000,
    }
}

#[test]
fn fuzz_seeds_and_kept_crashers_pass_the_oracles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut kept = 0;
    for target in &TARGETS {
        for seed in target.seeds {
            (target.run)(seed);
        }
        let Ok(entries) = std::fs::read_dir(dir.join(target.name)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| (target.run)(&input)).is_err() {
                panic!("{} fails its oracle again", path.display());
            }
            kept += 1;
        }
    }
    assert!(kept > 0, "no kept crashers found under {}", dir.display());
}

#[test]
fn random_inputs_pass_the_oracles() {
    for target in &TARGETS {
        let seeds = target.seeds;
        let mut rng = Rng::new(0x5eed);
        for i in 0..iterations(target.name) {
            let input = if i % 8 == 0 {
                // Plain random bytes too, not only mutated seeds.
                (0..rng.below(256)).map(|_| rng.next_u64() as u8).collect()
            } else {
                let (a, b) = (seeds[rng.below(seeds.len())], seeds[rng.below(seeds.len())]);
                mutate(&mut rng, a, b, 4096)
            };
            if std::panic::catch_unwind(|| (target.run)(&input)).is_err() {
                panic!("{} oracle fails on {:?}", target.name, String::from_utf8_lossy(&input));
            }
        }
    }
}

#[test]
fn durations_round_trip() {
    let mut rng = Rng::new(7);
    let edges = [0, 1, 999, 1000, 59_999, 60_000, 3_600_000, u64::MAX / 1000 * 1000, u64::MAX];
    let random = (0..2000).map(|i| rng.next_u64() >> (i % 64));
    for ms in edges.into_iter().chain(random) {
        let d = Duration::from_millis(ms);
        let shown = DisplayDuration(d).to_string();
        assert_eq!(parse_duration(&shown), Ok(d), "{shown}");
    }
}

#[test]
fn escaping_round_trips_on_random_bytes() {
    let mut rng = Rng::new(11);
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
        let mut shown = Vec::new();
        http::push_escaped(&mut shown, &bytes);
        oracles::assert_escaped(&shown, &bytes);
    }
}

/// Up to 64 random bytes as text (invalid UTF-8 replaced).
fn random_text(rng: &mut Rng) -> String {
    let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn json_strings_round_trip_on_random_text() {
    let mut rng = Rng::new(12);
    for _ in 0..2000 {
        let text = random_text(&mut rng);
        let mut out = Vec::new();
        healthcheck::front::json::push_str(&mut out, &text);
        let back: String = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(back, text);
    }
}

#[test]
fn label_values_round_trip_on_random_text() {
    let mut rng = Rng::new(13);
    for _ in 0..2000 {
        let text = random_text(&mut rng);
        let mut out = Vec::new();
        healthcheck::front::metrics::push_label(&mut out, "check", text.as_bytes());
        let line = String::from_utf8(out).expect("UTF-8 in, UTF-8 out");
        assert!(!line.contains('\n'), "a label value never breaks the line: {line:?}");
        assert_eq!(oracles::label_values(&line), [("check".to_string(), text)]);
    }
}
