//! `/metrics` and the JSON verdicts, end to end: promtool and a real
//! Prometheus server read the scrape, serde_json reads the verdicts.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn named(name: &str, stub: &Stub) -> String {
    format!("{name}={}", stub.url("/"))
}

/// The value of the sample written exactly as `series`.
fn value(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')).map(str::to_string)
}

fn scrape(d: &Daemon) -> String {
    let resp = d.get("/metrics");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some(METRICS_TYPE));
    resp.text()
}

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        support::skip_missing_tool(&format!("{tool} not installed (Debian: apt-get install prometheus)"));
    }
    found
}

/// A daemon with a passing, a failing, a refused and an oddly named check
/// (a default name, taken from its URL).
fn mixed() -> (Daemon, Vec<Stub>, String) {
    let (good, bad, odd) = (
        Stub::start(Behaviour::Status(200, "")),
        Stub::start(Behaviour::Status(503, "")),
        Stub::start(Behaviour::Status(200, "")),
    );
    let odd_url = odd.url("/x{y}=1,2/%22q%22?a=b&c=\\'|^`");
    let d = Daemon::serve(&[
        "--timeout",
        "2s",
        &named("good", &good),
        &named("bad", &bad),
        &format!("refused={}", refused_url("/")),
        &odd_url,
    ]);
    // As the URL parser normalises it: `{`, `}`, `'` encoded, `\\` kept.
    let odd_name = format!("127.0.0.1:{}/x%7By%7D=1,2/%22q%22?a=b&c=\\%27|^`", odd.port());
    (d, vec![good, bad, odd], odd_name)
}

#[test]
fn scrapes_report_past_rounds_and_never_start_one() {
    let (d, stubs, _) = mixed();
    // The round the daemon runs at start is in the first scrape, before anything asked /all.
    let before = scrape(&d);
    assert_eq!(value(&before, "healthcheck_rounds_total").as_deref(), Some("1"));
    assert_eq!(value(&before, "healthcheck_check_up{check=\"good\"}").as_deref(), Some("1"));
    assert_eq!(value(&before, "healthcheck_check_up{check=\"bad\"}").as_deref(), Some("0"));
    let probed = stubs[0].requests().len();
    assert_eq!(probed, 1, "the round at start");
    thread::sleep(Duration::from_millis(200));
    let again = scrape(&d);
    assert_eq!(value(&again, "healthcheck_rounds_total").as_deref(), Some("1"));
    assert_eq!(stubs[0].requests().len(), probed, "a scrape never probes");

    assert_eq!(d.get("/all").status, 503);
    let text = scrape(&d);
    assert_eq!(value(&text, "healthcheck_check_up{check=\"good\"}").as_deref(), Some("1"));
    assert_eq!(value(&text, "healthcheck_check_up{check=\"bad\"}").as_deref(), Some("0"));
    assert_eq!(value(&text, "healthcheck_check_up{check=\"refused\"}").as_deref(), Some("0"));
    let failures = |check: &str, reason: &str| {
        value(&text, &format!("healthcheck_check_failures_total{{check=\"{check}\",reason=\"{reason}\"}}"))
    };
    assert_eq!(failures("bad", "status").as_deref(), Some("2"));
    assert_eq!(failures("refused", "refused").as_deref(), Some("2"));
    assert_eq!(failures("good", "status"), None);
    assert_eq!(value(&text, "healthcheck_rounds_total").as_deref(), Some("2"));
    assert_eq!(value(&text, "healthcheck_check_duration_seconds_count{check=\"good\"}").as_deref(), Some("2"));
    let inf = value(&text, "healthcheck_check_duration_seconds_bucket{check=\"good\",le=\"+Inf\"}");
    assert_eq!(inf.as_deref(), Some("2"));
    let changed: f64 =
        value(&text, "healthcheck_check_last_change_timestamp_seconds{check=\"bad\"}").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - changed).abs() < 60.0, "{changed} vs {now}");
    assert_eq!(value(&text, "healthcheck_http_requests_total{handler=\"all\",code=\"503\"}").as_deref(), Some("1"));
    assert_eq!(value(&text, "healthcheck_http_requests_total{handler=\"metrics\",code=\"200\"}").as_deref(), Some("3"));
    let rss: u64 = value(&text, "process_resident_memory_bytes").unwrap().parse().unwrap();
    assert!(rss > 0 && rss < 64 << 20, "{rss}");
    assert!(value(&text, &format!("healthcheck_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))).is_some());
}

#[test]
fn head_and_connections() {
    let d = Daemon::serve(&[&refused_url("/")]);
    let head = d.request("HEAD", "/metrics");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Type"), Some(METRICS_TYPE));
    assert!(head.body.is_empty());
    assert!(head.header("Content-Length").unwrap().parse::<usize>().unwrap() > 100);
    // Half a request each: the kernel hands a connection over once it sent
    // something (TCP_DEFER_ACCEPT).
    let mut idle = [d.conn(), d.conn()];
    for c in &mut idle {
        c.send(b"GET /se");
    }
    thread::sleep(Duration::from_millis(200));
    let text = scrape(&d);
    let open: u64 = value(&text, "healthcheck_connections").unwrap().parse().unwrap();
    assert!(open >= 3, "two idle and the scrape's own: {open}");
    assert_eq!(d.request("POST", "/metrics").status, 405);
    assert_eq!(d.get("/nope").status, 404);
    let text = scrape(&d);
    assert_eq!(value(&text, "healthcheck_http_requests_total{handler=\"other\",code=\"405\"}").as_deref(), Some("1"));
    assert_eq!(value(&text, "healthcheck_http_requests_total{handler=\"other\",code=\"404\"}").as_deref(), Some("1"));
}

#[test]
fn names_from_urls_are_escaped_labels() {
    let (d, _stubs, odd) = mixed();
    d.get("/all");
    let text = scrape(&d);
    let escaped = odd.replace('\\', "\\\\").replace('"', "\\\"");
    assert_eq!(value(&text, &format!("healthcheck_check_up{{check=\"{escaped}\"}}")).as_deref(), Some("1"), "{text}");
}

/// promtool finds no error and no lint problem, before any round and after
/// rounds with passing, failing and oddly named checks.
#[test]
fn promtool_accepts_the_exposition() {
    if !have("promtool") {
        return;
    }
    let (d, _stubs, _) = mixed();
    let never = scrape(&d);
    d.get("/all");
    d.get("/self");
    let after = scrape(&d);
    for text in [never, after] {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\non:\n{text}");
    }
}

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Prometheus server scrapes the daemon on loopback every 250 ms; its
/// query API then answers `healthcheck_check_up` for each check.
#[test]
fn prometheus_scrapes_the_daemon() {
    if !have("prometheus") {
        return;
    }
    let (good, bad) = (Stub::start(Behaviour::Status(200, "")), Stub::start(Behaviour::Status(503, "")));
    let d = Daemon::serve(&["--timeout", "2s", &named("good", &good), &named("bad", &bad)]);
    assert_eq!(d.get("/all").status, 503);
    let dir = TempDir::new();
    let config = dir.path.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: healthcheck\n    static_configs:\n      - targets: ['{}']\n",
            d.host_port()
        ),
    )
    .unwrap();
    let port = free_port(LOCALHOST_V4);
    let server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _server = Killed(server);
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(250));
        let Ok(resp) = try_request(api, "GET", "/api/v1/query?query=healthcheck_check_up", Duration::from_secs(2))
        else {
            continue;
        };
        last = resp.text();
        let Ok(answer) = serde_json::from_slice::<Value>(&resp.body) else { continue };
        let Some(results) = answer["data"]["result"].as_array() else { continue };
        let mut got: Vec<(String, String)> = results
            .iter()
            .map(|r| {
                (
                    r["metric"]["check"].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        got.sort();
        if got == [("bad".to_string(), "0".to_string()), ("good".to_string(), "1".to_string())] {
            // The scrape itself was healthy too.
            let up = try_request(api, "GET", "/api/v1/query?query=up", Duration::from_secs(2)).unwrap();
            let up: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
            return;
        }
    }
    panic!("Prometheus did not report the checks within 30 s; last answer: {last}");
}

fn json(resp: &Response) -> Value {
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.text()))
}

#[test]
fn all_answers_json_verdicts() {
    let (d, _stubs, odd) = mixed();
    let resp = d.get("/all?format=json");
    assert_eq!(resp.status, 503);
    let v = json(&resp);
    assert_eq!(v["status"], "fail");
    let checks = v["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["good", "bad", "refused", odd.as_str()]);
    assert_eq!(checks[0]["status"], "pass");
    assert!(checks[0].get("reason").is_none());
    assert_eq!(checks[1]["status"], "fail");
    assert_eq!(checks[1]["reason"], "status 503");
    assert_eq!(checks[2]["reason"], "connection refused");
    for c in checks {
        let d = c["duration_seconds"].as_f64().unwrap();
        assert!((0.0..2.0).contains(&d), "{c}");
    }
    assert!(v.get("warnings").is_none());

    let resp = d.get("/all?format=json&exclude=bad&exclude=refused&exclude=%22nope%0a");
    assert_eq!(resp.status, 200);
    let v = json(&resp);
    assert_eq!(v["status"], "pass");
    // Excluded checks are listed, in place, as excluded (the text report's `[+]NAME excluded: ok`).
    let checks = v["checks"].as_array().unwrap();
    let statuses: Vec<(&str, &str)> =
        checks.iter().map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [("good", "pass"), ("bad", "excluded"), ("refused", "excluded"), (odd.as_str(), "pass")]);
    assert!(checks[1].get("reason").is_none() && checks[1].get("duration_seconds").is_none(), "{}", checks[1]);
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().unwrap().ends_with("no matches for \"\\\"nope\\x0a\""), "{warnings:?}");

    let resp = d.get("/all/bad?format=json");
    assert_eq!(resp.status, 503);
    let v = json(&resp);
    assert_eq!(v["checks"][0]["name"], "bad");
    assert_eq!(v["checks"].as_array().unwrap().len(), 1);
    let head = d.request("HEAD", "/all/good?format=json");
    assert_eq!((head.status, head.header("Content-Type")), (200, Some("application/json")));
    assert!(head.body.is_empty());
    // Without the parameter, the text answer is unchanged.
    let resp = d.get("/all/good");
    assert_common_headers(&resp);
    assert_eq!(resp.text(), "ok\n");
}

/// An unknown `format` (of `/all` or `/all/NAME`) is a 400 naming the value, escaped and cut
/// short, and the accepted ones, never a silent text answer; it probes nothing.
#[test]
fn unknown_format_is_a_bad_request() {
    let good = Stub::start(Behaviour::Status(200, ""));
    let d = Daemon::serve(&[&named("good", &good)]);
    let probes = good.connections();
    for (target, shown) in [
        ("/all?format=xml", "xml"),
        ("/all?verbose&format=yaml&exclude=good", "yaml"),
        ("/all?format=", ""),
        ("/all/good?format=xml", "xml"),
        ("/all/good?format=%3Cb%3E%0A", "\\x3cb\\x3e\\x0a"),
    ] {
        let resp = d.get(target);
        assert_eq!(resp.status, 400, "{target}: {}", resp.text());
        assert_eq!(resp.text(), format!("unknown format \"{shown}\": use text or json\n"), "{target}");
        assert_common_headers(&resp);
    }
    let long = d.get(&format!("/all?format={}", "x".repeat(300)));
    assert_eq!(long.status, 400);
    assert!(long.text().len() < 120, "cut short: {}", long.text());
    assert_eq!(d.get("/all?format=text").status, 200);
    assert_eq!(good.connections(), probes + 1, "only the last request probed");
}

#[test]
fn check_prints_json() {
    let (good, bad) = (Stub::start(Behaviour::Status(200, "")), Stub::start(Behaviour::Status(500, "")));
    let out = run_cli(&["check", "--output", "json", &named("good", &good), &named("bad", &bad)]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(v["status"], "fail");
    assert_eq!(v["checks"][0]["name"], "good");
    assert_eq!(v["checks"][1]["reason"], "status 500");
    assert!(v["checks"][1]["duration_seconds"].as_f64().unwrap() < 2.0);
    let out = run_cli(&["check", "--output=json", &named("good", &good)]);
    assert_eq!(out.code(), Some(0));
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap()["status"], "pass");
}

fn vm_hwm_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Pipelined scrapes wait for the socket: the daemon's memory does not
/// grow with the number of scrapes sent unread.
#[test]
fn pipelined_scrapes_stay_bounded() {
    let checks: Vec<String> = (0..200).map(|i| format!("c{i}=tcp://127.0.0.1:{}", free_port(LOCALHOST_V4))).collect();
    let mut args: Vec<&str> = vec!["--timeout", "2s"];
    args.extend(checks.iter().map(String::as_str));
    let d = Daemon::serve(&args);
    d.get("/all");
    let size = scrape(&d).len();
    assert!(size > 150_000, "each scrape is large: {size}");
    let before = vm_hwm_kib(d.pid());
    let mut conn = d.conn();
    let burst = 100;
    conn.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(burst).as_bytes());
    thread::sleep(Duration::from_millis(300));
    let grown = vm_hwm_kib(d.pid()).saturating_sub(before);
    for _ in 0..burst {
        assert_eq!(conn.read_response(false).status, 200);
    }
    // Unbounded, the answers would take `burst` scrapes: 20 MB.
    assert!(grown * 1024 < 4 * size as u64, "grew {grown} KiB for scrapes of {size} bytes");
}

/// A check's JSON answer comes with its own verdict while another check
/// still hangs; the hanging one then fails by timeout, its duration the
/// timeout, and the scrape counts it as such.
#[test]
fn json_answers_each_check_as_it_settles() {
    let (good, hang) = (Stub::start(Behaviour::Status(200, "")), Stub::start(Behaviour::Hang));
    let d = Daemon::serve(&["--timeout", "1s", &named("good", &good), &named("hang", &hang)]);
    let started = Instant::now();
    let v = json(&d.get("/all/good?format=json"));
    assert!(started.elapsed() < Duration::from_millis(800), "not held by the hanging check");
    assert_eq!(v["checks"][0]["status"], "pass");
    let resp = d.get("/all?format=json");
    assert_eq!(resp.status, 503);
    let v = json(&resp);
    assert_eq!(v["checks"][1]["reason"], "timeout after 1s");
    let took = v["checks"][1]["duration_seconds"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&took), "{took}");
    let text = scrape(&d);
    let timeouts = "healthcheck_check_failures_total{check=\"hang\",reason=\"timeout\"}";
    assert_eq!(value(&text, timeouts).as_deref(), Some("1"), "{text}");
    assert_eq!(
        value(&text, "healthcheck_check_duration_seconds_bucket{check=\"hang\",le=\"1\"}").as_deref(),
        Some("0")
    );
}

/// Connections refused or evicted at `--max-connections` are counted.
#[test]
fn dropped_connections_are_counted() {
    let d = Daemon::serve(&["--max-connections", "2", &refused_url("/")]);
    // Half requests: accepted (TCP_DEFER_ACCEPT waits for data) and idle.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut c = d.conn();
        c.send(b"GET /se");
        held.push(c);
        thread::sleep(Duration::from_millis(50));
    }
    let text = scrape(&d);
    let dropped: u64 = value(&text, "healthcheck_connections_dropped_total").unwrap().parse().unwrap();
    assert!(dropped >= 3, "{dropped}\n{text}");
    let open: u64 = value(&text, "healthcheck_connections").unwrap().parse().unwrap();
    assert!(open <= 2, "{open}");
}
