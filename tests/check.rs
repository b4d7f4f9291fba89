//! `healthcheck check`: the real binary probing loopback stubs once; its verdict lines, exit codes and timing.

use std::time::{Duration, Instant};

use support::{free_port, run_cli, Behaviour, CliOutput, Stub, LOCALHOST_V4};

/// `healthcheck check ARGS...`, with how long it took.
fn check(args: &[&str]) -> (CliOutput, Duration) {
    let start = Instant::now();
    let out = run_cli(&[&["check"], args].concat());
    (out, start.elapsed())
}

#[track_caller]
fn assert_outcome(out: &CliOutput, code: i32, stdout: &str) {
    assert_eq!(out.code(), Some(code), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, stdout, "stderr:\n{}", out.stderr);
}

#[test]
fn all_passing_prints_every_verdict_and_exits_0() {
    let app = Stub::ok();
    let db = Stub::start(Behaviour::Status(200, ""));
    let (app_url, db_url) = (format!("app={}", app.url("/healthz?full=1")), format!("db={}", db.tcp_url()));
    let (out, _) = check(&[&app_url, &db_url]);
    assert_outcome(&out, 0, "[+]app ok\n[+]db ok\nall checks passed\n");
    assert_eq!(out.stderr, "", "verdicts go to stdout only");
    let requests = app.requests();
    assert_eq!(requests.len(), 1, "probed once: {requests:?}");
    assert!(requests[0].starts_with("GET /healthz?full=1 HTTP/1.1\r\n"), "{requests:?}");
}

#[test]
fn a_failing_check_is_named_with_its_reason_and_exits_1() {
    let ok = Stub::start(Behaviour::Status(200, ""));
    let down = Stub::start(Behaviour::Status(503, "not ready\n"));
    let refused = format!("tcp://127.0.0.1:{}", free_port(LOCALHOST_V4));
    let (ok_url, down_url) = (ok.url("/"), format!("app={}", down.url("/ready")));
    let (out, _) = check(&[&ok_url, &down_url, &format!("db={refused}")]);
    let name = format!("127.0.0.1:{}/", ok.port());
    let want =
        format!("[+]{name} ok\n[-]app failed: status 503\n[-]db failed: connection refused\nsome checks failed\n");
    assert_outcome(&out, 1, &want);
}

#[test]
fn quiet_prints_nothing() {
    let ok = Stub::start(Behaviour::Status(200, ""));
    let down = Stub::start(Behaviour::Status(500, ""));
    for (url, code) in [(ok.url("/"), 0), (down.url("/"), 1)] {
        for flag in ["--quiet", "-q"] {
            let (out, _) = check(&[flag, &url]);
            assert_outcome(&out, code, "");
            assert_eq!(out.stderr, "", "{flag}");
        }
    }
}

#[test]
fn checks_are_probed_concurrently_each_within_its_timeout() {
    let slow = [
        Stub::start(Behaviour::Delay(Duration::from_secs(2), 200)),
        Stub::start(Behaviour::Delay(Duration::from_secs(2), 200)),
    ];
    let (a, b) = (format!("a={}", slow[0].url("/")), format!("b={}", slow[1].url("/")));
    let (out, took) = check(&["--timeout", "5s", &a, &b]);
    assert_outcome(&out, 0, "[+]a ok\n[+]b ok\nall checks passed\n");
    // In turn they would take 4 s.
    assert!(took < Duration::from_millis(3500), "not concurrent: {took:?}");

    let hanging = Stub::start(Behaviour::Hang);
    let slow_url = format!("slow={}", hanging.url("/"));
    let (out, took) = check(&["--timeout", "500ms", &slow_url]);
    assert_outcome(&out, 1, "[-]slow failed: timeout after 500ms\nsome checks failed\n");
    assert!(took < Duration::from_secs(4), "the timeout did not bound the probe: {took:?}");
}

#[test]
fn a_bad_command_line_exits_64_without_probing() {
    let stub = Stub::start(Behaviour::Status(200, ""));
    let url = stub.url("/");
    let cases: [&[&str]; 6] = [
        &[],
        &["--timeout", "0", &url],
        &["--timeout"],
        &["--bogus", &url],
        &["ftp://127.0.0.1/"],
        &["a=http://127.0.0.1:1/", "a=http://127.0.0.1:2/"],
    ];
    for args in cases {
        let (out, _) = check(args);
        assert_outcome(&out, 64, "");
        assert!(out.stderr.starts_with("healthcheck: error: "), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("Try 'healthcheck --help' for usage."), "{args:?}: {}", out.stderr);
    }
    assert_eq!(stub.connections(), 0, "nothing was probed");
}
