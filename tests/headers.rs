//! `--header NAME=FIELD: VALUE` in every mode: what the upstream receives,
//! what `--dry-run` shows, and the usage errors.

use support::{run_cli, Behaviour, Daemon, Stub};

/// The request head the stub received last.
fn last_request(stub: &Stub) -> String {
    stub.requests().pop().expect("a request")
}

#[track_caller]
fn assert_sent(request: &str, fields: &[&str], absent: &[&str]) {
    for f in fields {
        assert!(request.contains(&format!("\r\n{f}\r\n")), "{f:?} missing in {request:?}");
    }
    for f in absent {
        assert!(!request.contains(f), "{f:?} sent in {request:?}");
    }
}

#[test]
fn check_sends_the_given_headers() {
    let app = Stub::ok();
    let url = format!("app={}", app.url("/ready"));
    let out = run_cli(&[
        "check",
        "--header",
        "app=Host: example.com",
        "--header=app=X-Token: a",
        "--header",
        "app=X-Token:b",
        "--header",
        "app=User-Agent: kube-probe/1.31",
        &url,
    ]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    let request = last_request(&app);
    assert_sent(
        &request,
        &["Host: example.com", "X-Token: a", "X-Token: b", "User-Agent: kube-probe/1.31", "Accept: */*"],
        &["Host: 127.0.0.1", "healthcheck/"],
    );
}

#[test]
fn serve_and_run_send_them_too() {
    let app = Stub::start(Behaviour::Status(200, ""));
    let url = format!("app={}", app.url("/"));
    let d = Daemon::serve(&["--header", "app=Host: vhost.local", &url]);
    assert_eq!(d.get("/all").status, 200);
    assert_sent(&last_request(&app), &["Host: vhost.local"], &[]);
    drop(d);

    let wait = app.url("/w");
    let name = wait.trim_start_matches("http://").to_string();
    let header = format!("{name}=Authorization: Bearer t");
    let out = run_cli(&["run", "--wait", &wait, "--header", &header, "--timeout", "1s", "--", "true"]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert_sent(&last_request(&app), &["Authorization: Bearer t"], &[]);
}

#[test]
fn a_given_host_survives_a_relative_redirect() {
    let app = Stub::start(Behaviour::ByPath(vec![
        ("/a", Behaviour::Redirect(302, "/b".to_string())),
        ("/b", Behaviour::Status(200, "")),
    ]));
    let url = format!("app={}", app.url("/a"));
    let out = run_cli(&["check", "--header", "app=Host: vhost.local", "--timeout", "2s", &url]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    let requests = app.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].starts_with("GET /b HTTP/1.1\r\n"), "{requests:?}");
    let referer = format!("Referer: {}", app.url("/a"));
    assert_sent(&requests[1], &["Host: vhost.local", &referer], &[]);
}

#[test]
fn dry_run_shows_them() {
    let out = run_cli(&["check", "--dry-run", "--header", "a=Host: h.example", "a=http://127.0.0.1:1/x"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("\ncheck-header a Host: h.example\n"), "{}", out.stdout);
}

#[test]
fn bad_headers_are_usage_errors_naming_the_argument() {
    let cases = [
        ("b=X: y", "no check has that NAME"),
        ("X: y", "use NAME=FIELD: VALUE"),
        ("a=X y", "missing ':'"),
        ("a=X y: z", "invalid field name"),
        ("a=: z", "invalid field name"),
        ("a=X: \u{1}", "control characters"),
        ("a=X: y\r\nZ: w", "CR, LF and NUL"),
        ("a=X: y\n", "CR, LF and NUL"),
        ("a=Content-Length: 1", "no body"),
        ("db=X: y", "tcp check"),
    ];
    for (header, want) in cases {
        let out = run_cli(&["check", "--header", header, "a=http://127.0.0.1:1/", "db=tcp://127.0.0.1:1"]);
        assert_eq!(out.code(), Some(64), "{header:?}: {}", out.stderr);
        // Escaped as Go's %q escapes a control character, not as Rust's `\u{1}`.
        let shown = header.escape_debug().to_string().replace("\\u{1}", "\\x01");
        assert!(out.stderr.contains(&format!("invalid --header '{shown}'")), "{header:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{header:?}: {}", out.stderr);
    }
}
