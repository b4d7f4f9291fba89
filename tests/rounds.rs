//! Rounds against the real daemon: each check's own deadline (`--timeout NAME=DUR`), and
//! verdicts never older than the request they answer.

use std::thread;
use std::time::{Duration, Instant};

use support::*;

fn named(name: &str, stub: &Stub) -> String {
    format!("{name}={}", stub.url("/"))
}

/// A check with its own timeout fails at its deadline, not at the mode's, in every mode.
#[test]
fn a_check_has_its_own_timeout() {
    let hang = Stub::start(Behaviour::Hang);
    let slow = Stub::start(Behaviour::Delay(Duration::from_millis(800), 200));
    let d =
        Daemon::serve(&["--timeout", "5s", "--timeout", "hang=300ms", &named("hang", &hang), &named("slow", &slow)]);
    // Once the round at start is over (at hang's 300 ms and slow's 800 ms).
    d.wait_for_log_line(&["event=round"], Duration::from_secs(3));
    let started = Instant::now();
    let resp = d.get("/all?verbose");
    let took = started.elapsed();
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(resp.text().contains("[-]hang failed: timeout after 300ms\n"), "{}", resp.text());
    assert!(resp.text().contains("[+]slow ok\n"), "slow had the mode's 5 s: {}", resp.text());
    assert!(took < Duration::from_secs(3), "{took:?}");
    // /all/hang answers at hang's own deadline, whatever the others do.
    let started = Instant::now();
    assert_eq!(d.get("/all/hang").status, 503);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    let hang_url = named("hang", &hang);
    let started = Instant::now();
    let out = run_cli(&["check", "--timeout", "5s", "--timeout", "hang=300ms", &hang_url]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.contains("timeout after 300ms"), "{}", out.stdout);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    let out = run_cli(&[
        "run",
        "--wait",
        &hang_url,
        "--timeout",
        "hang=200ms",
        "--interval",
        "100ms",
        "--wait-timeout",
        "1s",
        "--",
        "true",
    ]);
    assert_eq!(out.code(), Some(69), "{}", out.stderr);
    assert!(out.stderr.contains("hang: timeout after 200ms"), "{}", out.stderr);
}

#[test]
fn check_timeouts_are_checked() {
    for (args, needle) in [
        (&["check", "--timeout", "nope=1s", "app=http://127.0.0.1:1/"][..], "no check has that NAME"),
        (&["check", "--timeout", "app=0s", "app=http://127.0.0.1:1/"][..], "more than zero"),
        (&["check", "--timeout", "app=soon", "app=http://127.0.0.1:1/"][..], "app=soon"),
        (&["check", "--timeout", "app=1s", "--timeout", "app=2s", "app=http://127.0.0.1:1/"][..], "twice"),
        (&["serve", "--timeout", "x=1s", "app=http://127.0.0.1:1/"][..], "x=1s"),
        (&["run", "--wait", "app=http://127.0.0.1:1/", "--timeout", "db=1s", "--", "true"][..], "db=1s"),
    ] {
        let out = run_cli(args);
        assert_eq!(out.code(), Some(64), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("--timeout") && out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    let out = run_cli(&["serve", "--dry-run", "--timeout", "app=2500ms", "app=http://127.0.0.1:1/"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("check-timeout app 2.5s\n"), "{}", out.stdout);
}

/// A request that comes while a hanging check holds the round is answered from a probe of its
/// check that started after it came, not from the verdict that landed before it.
#[test]
fn a_verdict_is_never_older_than_the_request() {
    let app = Stub::ok();
    let hang = Stub::start(Behaviour::Hang);
    let d = Daemon::serve(&["--timeout", "10s", &named("app", &app), &named("hang", &hang)]);
    // The round at start: app's verdict lands, hang holds the round.
    assert!(eventually(Duration::from_secs(2), || app.connections() == 1));
    thread::sleep(Duration::from_millis(100));
    let before = app.connections();
    let started = Instant::now();
    assert_eq!(d.get("/all/app").status, 200);
    assert_eq!(app.connections(), before + 1, "answered from the verdict before the request");
    // What changed is seen at once.
    app.set(Behaviour::Status(503, "down\n"));
    assert_eq!(d.get("/all/app").status, 503);
    // Recorded as it landed, while the round still runs for the hanging check.
    d.wait_for_log_line(&["event=check_failing", "check=app", "status 503"], Duration::from_secs(2));
    let metrics = d.get("/metrics").text();
    assert!(metrics.contains("healthcheck_check_up{check=\"app\"} 0\n"), "{metrics}");
    assert_eq!(d.get("/all?exclude=hang").status, 503);
    app.set(Behaviour::Status(200, "ok\n"));
    assert_eq!(d.get("/all?exclude=hang").status, 200);
    assert!(started.elapsed() < Duration::from_secs(3), "waited for the hanging check: {:?}", started.elapsed());
}

/// Concurrent requests still share one probe per check at a time.
#[test]
fn concurrent_requests_share_one_probe_per_check() {
    let app = Stub::start(Behaviour::Delay(Duration::from_millis(300), 200));
    let hang = Stub::start(Behaviour::Hang);
    let d = Daemon::serve(&["--timeout", "10s", &named("app", &app), &named("hang", &hang)]);
    assert!(eventually(Duration::from_secs(2), || app.connections() == 1));
    thread::sleep(Duration::from_millis(500)); // its 300 ms answer
    let before = app.connections();
    let addr = d.addr;
    let clients: Vec<_> = (0..10)
        .map(|_| thread::spawn(move || try_request(addr, "GET", "/all/app", Duration::from_secs(5)).unwrap().status))
        .collect();
    let codes: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(codes.iter().all(|&c| c == 200), "{codes:?}");
    let probes = app.connections() - before;
    // Those that came while a probe was in flight joined it: at most one probe at a time.
    assert!((1..=3).contains(&probes), "{probes} probes for 10 concurrent requests");
}

/// A check probed again that fails as it starts (a name that cannot resolve) is answered at once, not at the deadline
/// of another check still in flight.
#[test]
fn a_check_probed_again_that_fails_at_once_is_answered_at_once() {
    let hang = Stub::start(Behaviour::Hang);
    // `.invalid` is never asked of a DNS server: its probe fails as it starts.
    let d = Daemon::serve(&["--timeout", "10s", "down=http://nowhere.invalid/", &named("hang", &hang)]);
    thread::sleep(Duration::from_millis(200)); // down's verdict landed; hang holds the round
    for _ in 0..3 {
        let started = Instant::now();
        let resp = d.get("/all/down?verbose");
        assert_eq!(resp.status, 503, "{}", resp.text());
        assert!(resp.text().contains("dns: no such host"), "{}", resp.text());
        assert!(started.elapsed() < Duration::from_secs(3), "waited {:?}", started.elapsed());
    }
}
