//! End-to-end tests of `healthcheck serve`: the real binary against loopback upstream stubs.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

/// `NAME=URL` for a stub's root path.
fn named(name: &str, stub: &Stub) -> String {
    format!("{name}={}", stub.url("/"))
}

fn status_stub(code: u16) -> Stub {
    Stub::start(Behaviour::Status(code, "status body\n"))
}

/// Lines of a response body.
fn lines(resp: &Response) -> Vec<String> {
    resp.text().lines().map(str::to_string).collect()
}

/// Assert `/all?verbose` lists `line` (exact line match).
fn assert_has_line(resp: &Response, line: &str) {
    assert!(lines(resp).iter().any(|l| l == line), "expected the line {line:?} in:\n{}", resp.text());
}

// ---------------------------------------------------------------------------
// /self and /all
// ---------------------------------------------------------------------------

#[test]
fn self_answers_ok() {
    let d = Daemon::serve(&[&refused_url("/")]);
    let resp = d.get("/self");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "ok\n");
    assert_eq!(resp.header("Content-Length"), Some("3"));
    assert_common_headers(&resp);
}

/// `--listen :PORT` listens on every address (IPv4 and, where the host has it, IPv6 on one
/// dual-stack socket), `--listen localhost:PORT` on 127.0.0.1, as Go's `net.Listen` reads them.
#[test]
fn listen_every_address_and_localhost() {
    let port = free_port(LOCALHOST_V4);
    let listen = format!(":{port}");
    let d = Daemon::serve_listen(&listen, SocketAddr::new(LOCALHOST_V4, port), &[&refused_url("/")]);
    if ipv6_available() {
        let resp = try_request(SocketAddr::new(LOCALHOST_V6, port), "GET", "/self", IO_TIMEOUT);
        assert_eq!(resp.map(|r| r.status).ok(), Some(200), "[::1]:{port}; stderr:\n{}", d.log());
        d.wait_for_log_line(&["event=listening", &format!("addr=[::]:{port}")], PATIENCE);
    }
    drop(d);
    let port = free_port(LOCALHOST_V4);
    let d =
        Daemon::serve_listen(&format!("localhost:{port}"), SocketAddr::new(LOCALHOST_V4, port), &[&refused_url("/")]);
    d.wait_for_log_line(&["event=listening", &format!("addr=127.0.0.1:{port}")], PATIENCE);
}

#[test]
fn all_is_ok_when_every_check_passes() {
    let (a, b) = (Stub::ok(), Stub::ok());
    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a), &named("b", &b)]);
    let resp = d.get("/all");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "ok\n");
    assert_common_headers(&resp);
}

#[test]
fn all_lists_only_the_failing_checks() {
    let (a, b, c) = (Stub::ok(), status_stub(500), status_stub(503));
    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a), &named("b", &b), &named("c", &c)]);
    let resp = d.get("/all");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "[-]b failed: status 500\n[-]c failed: status 503\nsome checks failed\n");
    assert_common_headers(&resp);
}

#[test]
fn verbose_lists_every_check() {
    let (a, b) = (Stub::ok(), status_stub(500));
    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a), &named("b", &b)]);
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "[+]a ok\n[-]b failed: status 500\nsome checks failed\n");

    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a)]);
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "[+]a ok\nall checks passed\n");
}

#[test]
fn status_classes_follow_kubelet() {
    let passing = [200u16, 204, 299, 301, 302, 304, 399];
    let failing = [400u16, 404, 418, 500, 503, 599];
    let stubs: Vec<(u16, Stub)> = passing.iter().chain(failing.iter()).map(|&code| (code, status_stub(code))).collect();
    let mut args = vec!["--timeout".to_string(), "2s".to_string()];
    args.extend(stubs.iter().map(|(code, s)| named(&format!("s{code}"), s)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::serve(&args);

    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 503);
    for code in passing {
        // 3xx here carry no Location: they pass without being followed.
        assert_has_line(&resp, &format!("[+]s{code} ok"));
    }
    for code in failing {
        assert_has_line(&resp, &format!("[-]s{code} failed: status {code}"));
    }
    assert_eq!(lines(&resp).last().map(String::as_str), Some("some checks failed"));
}

#[test]
fn a_check_by_name() {
    let (a, b) = (Stub::ok(), status_stub(500));
    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a), &named("b", &b)]);

    let resp = d.get("/all/a");
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));
    let resp = d.get("/all/b");
    assert_eq!((resp.status, resp.text().as_str()), (503, "[-]b failed: status 500\n"));
    let resp = d.get("/all/nope");
    assert_eq!((resp.status, resp.text().as_str()), (404, "not found\n"));
    assert_common_headers(&resp);

    let resp = d.request("HEAD", "/all/b");
    assert_eq!(resp.status, 503);
    assert!(resp.body.is_empty());
}

#[test]
fn default_names_are_the_url_without_scheme() {
    let (web, tcp) = (Stub::ok(), Stub::ok());
    let web_url = web.url("/health");
    let d = Daemon::serve(&["--timeout", "2s", &web_url, &tcp.tcp_url()]);
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_has_line(&resp, &format!("[+]127.0.0.1:{}/health ok", web.port()));
    assert_has_line(&resp, &format!("[+]127.0.0.1:{} ok", tcp.port()));
}

/// Excluded checks are not probed for the request; the verbose report lists them as
/// kube-apiserver's `/readyz?verbose&exclude=` does (`[+]NAME excluded: ok`, in place), the
/// plain one only the failures (or `ok`).
#[test]
fn exclude_drops_checks_and_warns_about_unknown_names() {
    let (a, b, c) = (Stub::ok(), status_stub(500), status_stub(500));
    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a), &named("b", &b), &named("c", &c)]);

    let resp = d.get("/all?exclude=b");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "[-]c failed: status 500\nsome checks failed\n");

    let resp = d.get("/all?exclude=b&exclude=c");
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));

    let resp = d.get("/all?exclude=b&exclude=c&verbose");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "[+]a ok\n[+]b excluded: ok\n[+]c excluded: ok\nall checks passed\n");

    let resp = d.get("/all?exclude=a&exclude=b&verbose");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "[+]a excluded: ok\n[+]b excluded: ok\n[-]c failed: status 500\nsome checks failed\n");

    let warn = "warn: some health checks cannot be excluded: no matches for \"nope\"";
    let resp = d.get("/all?verbose&exclude=nope&exclude=b&exclude=c");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), format!("{warn}\n[+]a ok\n[+]b excluded: ok\n[+]c excluded: ok\nall checks passed\n"));

    let resp = d.get("/all?exclude=nope&exclude=b&exclude=c");
    assert_eq!(resp.status, 200, "an unknown name is a warning, not an error");
    assert_eq!(lines(&resp).first().map(String::as_str), Some(warn));

    // Request text is never echoed back unescaped.
    let resp = d.get("/all?exclude=%3Cscript%3E&exclude=b&exclude=c&verbose");
    assert_eq!(resp.status, 200);
    assert!(
        lines(&resp)[0].starts_with("warn: some health checks cannot be excluded: no matches for \""),
        "{}",
        resp.text()
    );
    assert!(!resp.text().contains("<script>"), "{}", resp.text());
}

// ---------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------

#[test]
fn probe_request_is_a_plain_get() {
    let app = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &format!("app={}", app.url("/health?x=1"))]);
    assert_eq!(d.get("/all").status, 200);

    // The round the daemon runs at start, and the one asked for: the same request.
    let requests = app.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], requests[1]);
    let mut head = requests[0].split("\r\n");
    assert_eq!(head.next(), Some("GET /health?x=1 HTTP/1.1"));
    let headers: Vec<(String, String)> = head
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(get("host"), Some(format!("127.0.0.1:{}", app.port()).as_str()));
    assert_eq!(get("user-agent"), Some("healthcheck/0.1.0"));
    assert_eq!(get("accept"), Some("*/*"));
    assert_eq!(get("connection"), Some("close"));
}

#[test]
fn checks_of_a_round_run_concurrently() {
    let stubs: Vec<Stub> = (0..8).map(|_| Stub::start(Behaviour::Delay(Duration::from_millis(300), 200))).collect();
    let mut args = vec!["--timeout".to_string(), "5s".to_string()];
    args.extend(stubs.iter().enumerate().map(|(i, s)| named(&format!("c{i}"), s)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::serve(&args);
    let before: Vec<usize> = stubs.iter().map(Stub::connections).collect();

    let start = Instant::now();
    let resp = d.get("/all");
    let elapsed = start.elapsed();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Sequential probing would take 8 x 300 ms = 2.4 s.
    assert!(elapsed < Duration::from_secs(2), "/all took {elapsed:?}");
    for (s, before) in stubs.iter().zip(before) {
        assert_eq!(s.connections() - before, 1);
    }
}

#[test]
fn hanging_and_dripping_upstreams_time_out() {
    let hang = Stub::start(Behaviour::Hang);
    let drip = Stub::start(Behaviour::Drip(Duration::from_millis(20)));
    let ok = Stub::ok();
    // The `--flag=value` form, on a running daemon.
    let d = Daemon::serve(&["--timeout=1s", &named("hang", &hang), &named("drip", &drip), &named("ok", &ok)]);

    let start = Instant::now();
    let resp = d.get("/all?verbose");
    let elapsed = start.elapsed();
    assert_eq!(resp.status, 503);
    assert!(elapsed < Duration::from_millis(2500), "/all took {elapsed:?} with --timeout 1s");
    assert_has_line(&resp, "[-]hang failed: timeout after 1s");
    assert_has_line(&resp, "[-]drip failed: timeout after 1s");
    assert_has_line(&resp, "[+]ok ok");
}

#[test]
fn timeouts_in_milliseconds() {
    let hang = Stub::start(Behaviour::Hang);
    let d = Daemon::serve(&["--timeout", "300ms", &named("hang", &hang)]);
    let resp = d.get("/all");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "[-]hang failed: timeout after 300ms\nsome checks failed\n");
}

#[test]
fn redirects() {
    let final_ok = Stub::ok();
    let final_500 = status_stub(500);
    let same_ok = Stub::start(Behaviour::Redirect(302, final_ok.url("/final")));
    let same_500 = Stub::start(Behaviour::Redirect(307, final_500.url("/")));
    let relative = Stub::start(Behaviour::ByPath(vec![
        ("/start", Behaviour::Redirect(301, "/end".to_string())),
        ("/end", Behaviour::Status(200, "ok\n")),
    ]));
    let other_host = Stub::start(Behaviour::Redirect(302, "http://other-host.invalid/".to_string()));
    let looping = Stub::start(Behaviour::Redirect(302, "http://{self}/loop".to_string()));
    // Same host, another port (closed): followed over https, as kubelet does.
    let closed = free_port(LOCALHOST_V4);
    let https = Stub::start(Behaviour::Redirect(308, format!("https://127.0.0.1:{closed}/")));
    let d = Daemon::serve(&[
        "--timeout",
        "3s",
        &named("same-ok", &same_ok),
        &named("same-500", &same_500),
        &format!("relative={}", relative.url("/start")),
        &named("other-host", &other_host),
        &named("loop", &looping),
        &named("https", &https),
    ]);
    // What the round at start asked.
    let before = [&final_ok, &final_500, &relative, &looping].map(Stub::connections);

    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 503);
    assert_has_line(&resp, "[+]same-ok ok");
    assert_has_line(&resp, "[-]same-500 failed: status 500");
    assert_has_line(&resp, "[+]relative ok");
    assert_has_line(&resp, "[+]other-host ok");
    assert_has_line(&resp, "[-]loop failed: stopped after 10 redirects");
    assert_has_line(&resp, "[-]https failed: connection refused");

    // The same-host redirects were really followed, once each.
    assert_eq!(final_ok.connections() - before[0], 1);
    assert!(final_ok.requests()[0].starts_with("GET /final HTTP/1.1\r\n"));
    assert_eq!(final_500.connections() - before[1], 1);
    assert_eq!(relative.connections() - before[2], 2);
    // Ten requests in all, as kubelet: the first and 9 redirects.
    let hops = looping.connections() - before[3];
    assert_eq!(hops, 10, "loop stub saw {hops} requests");
}

#[test]
fn broken_upstreams_fail_with_a_reason() {
    let closed = Stub::start(Behaviour::CloseAfterRequest);
    let reset = Stub::start(Behaviour::Reset);
    let garbage = Stub::start(Behaviour::Garbage);
    let endless = Stub::start(Behaviour::EndlessHeaders);
    let on_accept = Stub::start(Behaviour::CloseOnAccept);
    let short = Stub::start(Behaviour::ShortBody(200));
    let chunked_short = Stub::start(Behaviour::ChunkedCutShort(200));
    let d = Daemon::serve(&[
        "--timeout",
        "2s",
        &named("closed", &closed),
        &named("reset", &reset),
        &named("garbage", &garbage),
        &named("endless", &endless),
        &named("on-accept", &on_accept),
        &named("short", &short),
        &named("chunked-short", &chunked_short),
        &format!("refused={}", refused_url("/")),
    ]);

    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 503);
    assert_has_line(&resp, "[-]closed failed: closed before response");
    assert_has_line(&resp, "[-]reset failed: connection reset");
    assert_has_line(&resp, "[-]garbage failed: invalid response");
    assert_has_line(&resp, "[-]endless failed: response headers too large");
    assert_has_line(&resp, "[-]refused failed: connection refused");
    // Reasons the contract does not pin down: only that they fail.
    for name in ["on-accept", "short", "chunked-short"] {
        let prefix = format!("[-]{name} failed: ");
        assert!(lines(&resp).iter().any(|l| l.starts_with(&prefix)), "{name} should fail:\n{}", resp.text());
    }
}

#[test]
fn response_bodies_are_framed_and_bounded() {
    let chunked = Stub::start(Behaviour::Chunked(200));
    let chunked_500 = Stub::start(Behaviour::Chunked(500));
    let big = Stub::start(Behaviour::BigBody(200, 1024 * 1024));
    let keep_open = Stub::start(Behaviour::StatusKeepOpen(200));
    let slow = Stub::start(Behaviour::DripResponse(Duration::from_millis(5), 200));
    let d = Daemon::serve(&[
        "--timeout",
        "5s",
        &named("chunked", &chunked),
        &named("chunked-500", &chunked_500),
        &named("big", &big),
        &named("keep-open", &keep_open),
        &named("slow", &slow),
    ]);

    let start = Instant::now();
    let resp = d.get("/all?verbose");
    assert_has_line(&resp, "[+]chunked ok");
    assert_has_line(&resp, "[-]chunked-500 failed: status 500");
    assert_has_line(&resp, "[+]big ok");
    assert_has_line(&resp, "[+]keep-open ok");
    assert_has_line(&resp, "[+]slow ok");
    // A Content-Length body is complete without waiting for EOF (keep-open never closes).
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
}

#[test]
fn tcp_checks() {
    let listening = Stub::ok();
    let closed_port = free_port(LOCALHOST_V4);
    let d = Daemon::serve(&[
        "--timeout",
        "2s",
        &format!("up={}", listening.tcp_url()),
        &format!("down=tcp://127.0.0.1:{closed_port}"),
    ]);
    let before = listening.connections();
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 503);
    assert_has_line(&resp, "[+]up ok");
    assert_has_line(&resp, "[-]down failed: connection refused");
    assert_eq!(listening.wait_connections(before + 1, Duration::from_secs(2)), before + 1);

    let resp = d.get("/all/up");
    assert_eq!(resp.status, 200);
}

#[test]
fn ipv6_upstreams() {
    if !ipv6_available() {
        support::skip("no IPv6 loopback");
        return;
    }
    let v6 = Stub::start_on(LOCALHOST_V6, Behaviour::Status(200, "ok\n"));
    let d = Daemon::serve(&["--timeout", "2s", &format!("web={}", v6.url("/")), &format!("tcp={}", v6.tcp_url())]);
    assert!(v6.url("/").starts_with("http://[::1]:"));
    let before = v6.connections();
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(v6.wait_connections(before + 2, Duration::from_secs(2)), before + 2);
}

#[test]
fn localhost_tries_ipv4_then_ipv6() {
    if !ipv6_available() {
        support::skip("no IPv6 loopback");
        return;
    }
    // Only [::1]:PORT listens: 127.0.0.1:PORT is refused, then ::1 must be tried. The IPv4
    // port is held (bound, not listening), so no other test's stub can take it meanwhile.
    let (v6, _held) = (0..20)
        .find_map(|_| {
            let v6 = Stub::start_on(LOCALHOST_V6, Behaviour::Status(200, "ok\n"));
            let v4 = std::net::SocketAddr::new(LOCALHOST_V4, v6.port());
            support::sockets::hold_refused(v4).ok().map(|held| (v6, held))
        })
        .expect("an IPv6 port whose IPv4 twin is free");
    let url = format!("app=http://localhost:{}/", v6.port());
    let d = Daemon::serve(&["--timeout", "2s", &url]);
    let before = v6.connections();
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(v6.connections() - before, 1);
}

#[test]
fn daemon_listens_on_ipv6() {
    if !ipv6_available() {
        support::skip("no IPv6 loopback");
        return;
    }
    let app = Stub::ok();
    let d = Daemon::serve_on(LOCALHOST_V6, &["--timeout", "2s", &named("app", &app)]);
    assert!(d.addr.is_ipv6());
    assert_eq!(d.get("/self").text(), "ok\n");
    assert_eq!(d.get("/all").status, 200);
}

// ---------------------------------------------------------------------------
// Rounds
// ---------------------------------------------------------------------------

/// The daemon probes every check once when it starts, so the logs and /metrics say where the pod
/// stands before anything asks; then it is idle until asked.
#[test]
fn one_round_runs_at_start_then_idle_is_idle() {
    let app = Stub::ok();
    let bad = status_stub(503);
    let d = Daemon::serve(&["--timeout", "2s", &named("app", &app), &named("bad", &bad)]);
    d.wait_for_log_line(&["event=check_passing", "check=app"], Duration::from_secs(2));
    d.wait_for_log_line(&["event=check_failing", "check=bad", "reason=\"status 503\""], Duration::from_secs(2));
    d.wait_for_log_line(&["event=round", "passed=1", "failed=1"], Duration::from_secs(2));
    assert_eq!(app.connections(), 1);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(app.connections(), 1, "probed again while nothing asked");
}

/// `--interval` runs rounds in the background: state changes are logged with nothing asking.
#[test]
fn interval_runs_rounds_in_the_background() {
    let app = Stub::ok();
    let d = Daemon::serve(&["--interval", "200ms", &named("app", &app)]);
    d.wait_for_log_line(&["event=check_passing", "check=app"], Duration::from_secs(2));
    assert!(eventually(Duration::from_secs(3), || app.connections() >= 4), "{} probes", app.connections());
    app.set(Behaviour::Status(503, "down\n"));
    d.wait_for_log_line(&["event=check_failing", "check=app"], Duration::from_secs(3));
    // Requests still join or start rounds as before.
    assert_eq!(d.get("/all").status, 503);
}

#[test]
fn interval_is_checked() {
    let out = run_cli(&["serve", "--interval", "often", "self=http://127.0.0.1:1/"]);
    assert_eq!(out.code(), Some(64), "{}", out.stderr);
    assert!(out.stderr.contains("--interval"), "{}", out.stderr);
    let out =
        run_cli(&["serve", "--dry-run", "--interval", "1m30s", "--min-interval", "2s", "self=http://127.0.0.1:1/"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("\ninterval 1m30s\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\nmin-interval 2s\n"), "{}", out.stdout);
}

#[test]
fn each_request_after_a_round_probes_again() {
    let app = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &named("app", &app)]);
    let before = app.connections();
    assert_eq!(d.get("/all").status, 200);
    assert_eq!(d.get("/all").status, 200);
    assert_eq!(app.connections() - before, 2);
}

#[test]
fn concurrent_requests_join_one_round() {
    const CLIENTS: usize = 200;
    // The round lasts 1 s: every client below has sent its request long before it ends, so all
    // join the first round. A second round is tolerated for a client the machine delayed > 1 s.
    let app = Stub::start(Behaviour::Delay(Duration::from_secs(1), 200));
    let d = Daemon::serve(&["--timeout", "5s", &named("app", &app)]);

    let mut conns: Vec<Conn> = (0..CLIENTS).map(|_| d.conn()).collect();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = conns
        .drain(..)
        .map(|mut conn| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                conn.send_request("GET", "/all");
                conn.read_response(false).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let rounds = app.connections();
    assert!((1..=2).contains(&rounds), "{CLIENTS} concurrent /all made {rounds} upstream connections");
}

// ---------------------------------------------------------------------------
// Inbound HTTP
// ---------------------------------------------------------------------------

#[test]
fn unknown_paths_are_404() {
    let d = Daemon::serve(&[&refused_url("/")]);
    for path in ["/", "/nope", "/selfie", "/self/x", "/allx"] {
        let resp = d.get(path);
        assert_eq!(resp.status, 404, "{path}");
        assert_eq!(resp.text(), "not found\n", "{path}");
        assert_common_headers(&resp);
    }
}

#[test]
fn other_methods_are_405() {
    let app = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &named("app", &app)]);
    for (method, path) in [("POST", "/self"), ("POST", "/all"), ("DELETE", "/all/app")] {
        let mut conn = d.conn();
        conn.send(format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 405, "{method} {path}");
        assert_eq!(resp.header("Allow"), Some("GET, HEAD"), "{method} {path}");
        assert_eq!(resp.text(), "method not allowed\n");
        assert_common_headers(&resp);
    }
}

#[test]
fn head_has_headers_but_no_body() {
    let bad = status_stub(500);
    let d = Daemon::serve(&["--timeout", "2s", &named("bad", &bad)]);
    let mut conn = d.conn();
    conn.send_request("HEAD", "/self");
    let head = conn.read_response(true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("3"));
    assert_common_headers(&head);
    // Had a body been sent, it would be read here as the next response's status line.
    conn.send_request("GET", "/self");
    let get = conn.read_response(false);
    assert_eq!((get.status, get.text().as_str()), (200, "ok\n"));

    conn.send_request("HEAD", "/all");
    let head = conn.read_response(true);
    conn.send_request("GET", "/all");
    let get = conn.read_response(false);
    assert_eq!((head.status, get.status), (503, 503));
    assert_eq!(head.header("Content-Length"), Some(get.body.len().to_string().as_str()));
}

#[test]
fn malformed_request_is_400_and_closes() {
    let d = Daemon::serve(&[&refused_url("/")]);
    for bad in
        [&b"GARBAGE\r\n\r\n"[..], b"\x01\x02\x03 / HTTP/1.1\r\n\r\n", b"GET /self HTTP/1.1\r\nno colon here\r\n\r\n"]
    {
        let mut conn = d.conn();
        conn.send(bad);
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(bad));
        assert_eq!(resp.text(), "bad request\n");
        assert_eq!(resp.header("Connection"), Some("close"));
        assert_common_headers(&resp);
        assert!(conn.is_closed_by_peer(Duration::from_secs(2)));
    }
}

#[test]
fn oversized_headers_are_431_and_close() {
    let d = Daemon::serve(&[&refused_url("/")]);
    let mut conn = d.conn();
    let req = format!("GET /self HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(9 * 1024));
    conn.send(req.as_bytes());
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 431);
    assert_eq!(resp.text(), "request header fields too large\n");
    assert_eq!(resp.header("Connection"), Some("close"));
    assert!(conn.is_closed_by_peer(Duration::from_secs(2)));
}

#[test]
fn keep_alive_serves_several_requests() {
    let app = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &named("app", &app)]);
    let mut conn = d.conn();
    for path in ["/self", "/all", "/self", "/all/app"] {
        conn.send_request("GET", path);
        let resp = conn.read_response(false);
        assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"), "{path}");
        assert_ne!(resp.header("Connection"), Some("close"));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let slow_fail = Stub::start(Behaviour::Delay(Duration::from_millis(300), 500));
    let d = Daemon::serve(&["--timeout", "3s", &named("app", &slow_fail)]);
    let mut conn = d.conn();
    conn.send(
        b"GET /self HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /all HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let statuses: Vec<u16> = (0..3).map(|_| conn.read_response(false).status).collect();
    assert_eq!(statuses, [200, 503, 404]);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let d = Daemon::serve(&[&refused_url("/")]);
    let mut conn = d.conn();
    conn.send(b"GET /self HTTP/1.0\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));
    assert_eq!(resp.header("Connection"), Some("close"));
    assert!(conn.is_closed_by_peer(Duration::from_secs(2)));

    let mut conn = d.conn();
    for _ in 0..2 {
        conn.send(b"GET /self HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 200);
    }
}

#[test]
fn http11_closes_when_asked() {
    let app = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &named("app", &app)]);
    for path in ["/self", "/all"] {
        let mut conn = d.conn();
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"), "{path}");
        assert_eq!(resp.header("Connection"), Some("close"), "{path}");
        assert!(conn.is_closed_by_peer(Duration::from_secs(2)), "{path}");
    }
}

#[test]
fn oldest_idle_connections_are_dropped_at_the_limit() {
    let d = Daemon::serve(&["--max-connections", "8", &refused_url("/")]);
    // 20 keep-alive connections, each idle after one answered request.
    let mut idle: Vec<Conn> = (0..20)
        .map(|_| {
            let mut conn = d.conn();
            conn.send_request("GET", "/self");
            conn
        })
        .collect();
    for conn in idle.iter_mut() {
        // Connections over the limit may have been dropped before answering; that is fine.
        let _ = conn.try_read_response(false);
    }
    let resp = d.get("/self");
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));
}

// ---------------------------------------------------------------------------
// Signals and logs
// ---------------------------------------------------------------------------

fn assert_clean_exit_on(signal: i32, name: &str) {
    let hang = Stub::start(Behaviour::Hang);
    let mut d = Daemon::serve(&["--timeout", "10s", &named("hang", &hang)]);
    // A round is in flight when the signal arrives.
    let mut conn = d.conn();
    conn.send_request("GET", "/all");
    thread::sleep(Duration::from_millis(100));

    d.signal(signal);
    let status = d.wait_exit(Duration::from_secs(2));
    let status = status.unwrap_or_else(|| panic!("still running 2 s after {name}"));
    assert_eq!(status.code(), Some(0), "{name}: {status:?}");
    d.wait_for_log_line(&["event=shutdown", &format!("signal={name}")], Duration::from_secs(1));
}

#[test]
fn sigterm_exits_cleanly() {
    assert_clean_exit_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_exits_cleanly() {
    assert_clean_exit_on(libc::SIGINT, "SIGINT");
}

#[test]
fn sighup_sigusr1_and_sigusr2_are_logged_and_ignored() {
    let app = Stub::ok();
    let mut d = Daemon::serve(&[&named("app", &app)]);
    for (signal, name) in [(libc::SIGHUP, "SIGHUP"), (libc::SIGUSR1, "SIGUSR1"), (libc::SIGUSR2, "SIGUSR2")] {
        d.signal(signal);
        d.wait_for_log_line(&["level=info", "event=signal_ignored", &format!("signal={name}")], Duration::from_secs(2));
        assert_eq!(d.get("/self").status, 200, "after {name}");
        assert_eq!(d.get("/all").status, 200, "after {name}");
    }
    // An ignored signal queued with a SIGTERM does not hide it.
    d.signal(libc::SIGUSR1);
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(2)).expect("still running 2 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!d.log().contains("event=shutdown signal=SIGUSR1"), "{}", d.log());
}

#[test]
fn startup_is_logged() {
    let (a, b) = (Stub::ok(), Stub::ok());
    let d = Daemon::serve(&["--timeout", "2s", &named("a", &a), &named("b", &b)]);
    let line = d.wait_for_log_line(
        &["level=info", "event=listening", &format!("addr={}", d.host_port()), "timeout=2s", "checks=2"],
        Duration::from_secs(2),
    );
    assert!(line.starts_with("ts="), "{line}");
}

#[test]
fn verdict_changes_are_logged() {
    let app = Stub::start(Behaviour::Status(503, "down\n"));
    let good = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &named("app", &app), &named("good", &good)]);
    let wait = Duration::from_secs(2);

    assert_eq!(d.get("/all").status, 503);
    d.wait_for_log_line(&["level=warn", "event=check_failing", "check=app", "reason=\"status 503\""], wait);
    // The first verdict is logged even when it is a pass.
    d.wait_for_log_line(&["level=info", "event=check_passing", "check=good"], wait);

    assert_eq!(d.get("/all").status, 503);
    app.set(Behaviour::Status(200, "ok\n"));
    assert_eq!(d.get("/all").status, 200);
    d.wait_for_log_line(&["level=info", "event=check_passing", "check=app"], wait);

    // Only changes are logged: one failing line for app, one passing line for good.
    let log = d.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("event=check_failing"), 1, "{log}");
    assert_eq!(count("check=good"), 1, "{log}");
}

#[test]
fn verbose_logs_each_round() {
    let (a, b) = (Stub::ok(), status_stub(500));
    let d = Daemon::serve(&["--verbose", "--timeout", "2s", &named("a", &a), &named("b", &b)]);
    assert_eq!(d.get("/all").status, 503);
    d.wait_for_log_line(&["event=round", "passed=1", "failed=1", "elapsed_ms="], Duration::from_secs(2));
}

/// An answer waits only for the checks it reports on: with one check hanging for the whole
/// `--timeout`, `/all/app` and `/all?exclude=slow` still answer within kubelet's 1 s default.
#[test]
fn an_answer_waits_only_for_its_own_checks() {
    let (app, slow) = (Stub::ok(), Stub::start(Behaviour::Hang));
    let d = Daemon::serve(&["--timeout", "3s", &named("app", &app), &named("slow", &slow)]);
    for path in ["/all/app", "/all?exclude=slow", "/all/app?verbose", "/all?exclude=slow&exclude=slow&verbose"] {
        let started = Instant::now();
        let resp = try_request(d.addr, "GET", path, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{path}: no answer within 1 s: {e}"));
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert!(started.elapsed() < Duration::from_secs(1), "{path}: {:?}", started.elapsed());
    }
    // The round goes on for the others: still one probe of each check per round.
    let resp = d.get("/all?verbose");
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_has_line(&resp, "[-]slow failed: timeout after 3s");
    assert!(slow.connections() <= 2, "one probe of slow per round: {}", slow.connections());
}

/// `/all/NAME` is percent-decoded like `exclude=`: an unnamed check whose name holds a `?`
/// (its URL's query) is addressed with `%3F`; `+` in a path stays a plus.
#[test]
fn check_names_in_the_path_are_percent_decoded() {
    let (web, other) = (Stub::ok(), status_stub(503));
    let url = web.url("/ready?full=1&x=a+b");
    let d = Daemon::serve(&["--timeout", "2s", &url, &named("my.app", &other)]);
    let name = format!("127.0.0.1:{}/ready%3Ffull=1&x=a+b", web.port());
    let resp = d.get(&format!("/all/{name}?verbose"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), format!("[+]127.0.0.1:{}/ready?full=1&x=a+b ok\n", web.port()));
    let resp = d.get("/all/my%2Eapp");
    assert_eq!(resp.status, 503, "{}", resp.text());
    let resp = d.get(&format!("/all?exclude=my%2Eapp&exclude={}", name.replace('+', "%2B").replace('&', "%26")));
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));

    // A name holding an escape (`a%20b` from an escaped URL path) is addressed with `%25`.
    let d = Daemon::serve(&["--timeout", "2s", &web.url("/a%20b")]);
    let resp = d.get(&format!("/all/127.0.0.1:{}/a%2520b", web.port()));
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));
    assert_eq!(d.get(&format!("/all/127.0.0.1:{}/a%20b", web.port())).status, 404);
}

/// An unnamed check is named after its URL as written, less the scheme: `/./x/../x` is sent
/// as written (as kubelet sends it), so its name shows those segments too, never a path that
/// was not probed. It is addressed with the dots encoded (`%2E`), which no client folds away.
#[test]
fn default_names_show_the_path_sent() {
    let web = Stub::ok();
    let d = Daemon::serve(&["--timeout", "2s", &web.url("/./x/../x")]);
    let name = format!("127.0.0.1:{}/./x/../x", web.port());
    let resp = d.get("/all?verbose");
    assert_eq!(resp.text(), format!("[+]{name} ok\nall checks passed\n"));
    assert!(web.requests().iter().all(|r| r.starts_with("GET /./x/../x HTTP/1.1\r\n")), "{:?}", web.requests());
    let resp = d.get(&format!("/all/127.0.0.1:{}/%2E/x/%2E%2E/x?verbose", web.port()));
    assert_eq!((resp.status, resp.text()), (200, format!("[+]{name} ok\n")));
    let out = run_cli(&["check", "--dry-run", &web.url("/a/./b/../c")]);
    assert!(out.stdout.contains(&format!("check 127.0.0.1:{}/a/./b/../c ", web.port())), "{}", out.stdout);
}
