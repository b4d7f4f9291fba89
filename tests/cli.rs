//! Command-line tests: usage errors (exit 64), --help, --version, bind failures (exit 71) and --dry-run.

mod common;

use common::*;
use std::net::TcpListener;

const HINT: &str = "Try 'healthcheck --help' for usage.";

/// Exit 64, nothing on stdout, and exactly one `healthcheck: error:` line on stderr that names
/// `culprit`, followed by the usage hint.
fn assert_usage_error(args: &[&str], culprit: &str) {
    let out = run_cli(args);
    assert_eq!(out.code(), Some(64), "{args:?}: stdout {:?} stderr {:?}", out.stdout, out.stderr);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("healthcheck: error: ")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: stderr {:?}", out.stderr);
    assert!(errors[0].contains(culprit), "{args:?}: the error line should name {culprit:?}: {:?}", errors[0]);
    assert!(out.stderr.contains(HINT), "{args:?}: stderr {:?}", out.stderr);
    assert_eq!(out.stdout, "", "{args:?}");
}

const OK_URL: &str = "http://127.0.0.1:9/health";

#[test]
fn missing_arguments() {
    let out = run_cli(&[]);
    assert_eq!(out.code(), Some(64), "stderr {:?}", out.stderr);
    assert!(out.stderr.starts_with("healthcheck: error: "), "{:?}", out.stderr);
    assert!(out.stderr.contains(HINT));

    for args in [&["serve"][..], &["check"], &["8081"], &["8081", "3"], &["serve", "--port", "8081"]] {
        let out = run_cli(args);
        assert_eq!(out.code(), Some(64), "{args:?}: stderr {:?}", out.stderr);
        let errors = out.stderr.lines().filter(|l| l.starts_with("healthcheck: error: ")).count();
        assert_eq!(errors, 1, "{args:?}: stderr {:?}", out.stderr);
        assert!(out.stderr.contains(HINT), "{args:?}");
    }
}

#[test]
fn bad_ports() {
    for port in ["0", "70000", "abc"] {
        assert_usage_error(&[port, "3", OK_URL], port);
        assert_usage_error(&["serve", "--port", port, OK_URL], port);
        assert_usage_error(&["serve", &format!("--port={port}"), OK_URL], port);
    }
}

#[test]
fn bad_timeouts() {
    for timeout in ["abc", "0", "-1"] {
        assert_usage_error(&["8081", timeout, OK_URL], timeout);
        assert_usage_error(&["serve", "--timeout", timeout, OK_URL], timeout);
        assert_usage_error(&["check", &format!("--timeout={timeout}"), OK_URL], timeout);
    }
}

#[test]
fn bad_urls() {
    for url in ["https://127.0.0.1:9/health", "ftp://127.0.0.1:9/", "http://:8080/health", "tcp://127.0.0.1"] {
        assert_usage_error(&["serve", url], url);
        assert_usage_error(&["8081", "3", url], url);
        assert_usage_error(&["check", &format!("app={url}")], url);
    }
}

/// A name that does not resolve is a failing check, never a usage error. `.invalid` names
/// fail without a query (RFC 6761), so this needs no DNS server; tests/dns.rs has the rest.
#[test]
fn unresolvable_name_fails_the_check() {
    let out = run_cli(&["check", "db=tcp://nonexistent.invalid:80", "app=http://localhost:1/"]);
    assert_eq!(out.code(), Some(1), "stderr {:?}", out.stderr);
    assert!(out.stdout.contains("[-]db failed: dns: no such host\n"), "{}", out.stdout);
    assert!(out.stdout.contains("[-]app failed: connection refused\n"), "{}", out.stdout);
}

#[test]
fn bad_and_duplicate_names() {
    assert_usage_error(&["serve", "app=http://127.0.0.1:9/", "app=tcp://127.0.0.1:10"], "app");
    assert_usage_error(&["serve", "-bad=http://127.0.0.1:9/"], "-bad");
    let long = "a".repeat(64);
    assert_usage_error(&["serve", &format!("{long}=http://127.0.0.1:9/")], &long);
}

#[test]
fn unknown_flags_and_missing_values() {
    assert_usage_error(&["serve", "--bogus", OK_URL], "--bogus");
    assert_usage_error(&["check", "--bogus=1", OK_URL], "--bogus");
    assert_usage_error(&["--bogus"], "--bogus");
    assert_usage_error(&["serve", OK_URL, "--timeout"], "--timeout");
    assert_usage_error(&["serve", OK_URL, "--port"], "--port");
    assert_usage_error(&["serve", OK_URL, "--listen"], "--listen");
}

#[test]
fn help() {
    for flag in ["--help", "-h"] {
        let out = run_cli(&[flag]);
        assert_eq!(out.code(), Some(0), "{flag}: stderr {:?}", out.stderr);
        for word in ["serve", "check", "run"] {
            assert!(out.stdout.contains(word), "{flag}: usage lacks {word:?}:\n{}", out.stdout);
        }
    }
}

#[test]
fn version() {
    for flag in ["--version", "-V"] {
        let out = run_cli(&[flag]);
        assert_eq!(out.code(), Some(0), "{flag}: stderr {:?}", out.stderr);
        assert_eq!(out.stdout.trim_end(), "healthcheck 0.1.0", "{flag}");
    }
}

#[test]
fn port_in_use_exits_71() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let listen = addr.to_string();
    let out = run_cli(&["serve", "--listen", &listen, OK_URL]);
    assert_eq!(out.code(), Some(71), "stderr {:?}", out.stderr);
    assert!(out.stderr.contains(&format!("healthcheck: error: cannot listen on {listen}: ")), "{:?}", out.stderr);

    // The positional form listens on 0.0.0.0:PORT, which the listener above blocks as well.
    let out = run_cli(&[&addr.port().to_string(), "3", OK_URL]);
    assert_eq!(out.code(), Some(71), "stderr {:?}", out.stderr);
    assert!(
        out.stderr.contains(&format!("healthcheck: error: cannot listen on 0.0.0.0:{}: ", addr.port())),
        "{:?}",
        out.stderr
    );
}

#[test]
fn dry_run_prints_the_configuration() {
    let out = run_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:9999",
        "--timeout",
        "3s",
        "--dry-run",
        "app=http://localhost:8080/health",
        "tcp://127.0.0.1:9000",
        "far=http://nonexistent.invalid/",
    ]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    for needle in [
        "serve",
        "127.0.0.1:9999",
        "3s",
        "app http://localhost:8080/health",
        "127.0.0.1:9000 tcp://127.0.0.1:9000",
        // Names other than localhost are not resolved in a dry run.
        "far http://nonexistent.invalid/",
    ] {
        assert!(out.stdout.contains(needle), "no {needle:?} in:\n{}", out.stdout);
    }

    let out = run_cli(&["serve", "--dry-run", "http://127.0.0.1:9000/"]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    assert!(out.stdout.contains("0.0.0.0:8081"), "default listen:\n{}", out.stdout);
    assert!(out.stdout.contains("1s"), "default timeout:\n{}", out.stdout);
}

#[test]
fn durations_accept_ms_s_m() {
    for timeout in ["500ms", "3s", "2m"] {
        let out = run_cli(&["serve", "--dry-run", "--timeout", timeout, "http://127.0.0.1:9000/"]);
        assert_eq!(out.code(), Some(0), "{timeout}: stderr {:?}", out.stderr);
        assert!(out.stdout.contains(timeout), "{timeout}:\n{}", out.stdout);
    }
}
