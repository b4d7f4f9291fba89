//! Command-line tests: usage errors (exit 64), --help, --version, bind failures (exit 71) and --dry-run.

use std::net::TcpListener;
use support::*;

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
    for url in ["gopher://127.0.0.1:9/health", "ftp://127.0.0.1:9/", "http://:8080/health", "tcp://127.0.0.1"] {
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

/// Port 0 in a check URL, of any scheme, can never be probed: a usage error naming the URL.
#[test]
fn port_zero_is_a_usage_error() {
    // --dry-run: a command line that is wrongly accepted prints its configuration and ends.
    for url in ["http://127.0.0.1:0/health", "http://localhost:0", "tcp://127.0.0.1:0", "grpc://[::1]:00"] {
        assert_usage_error(&["serve", "--dry-run", url], &format!("invalid URL '{url}': port 0"));
        assert_usage_error(&["check", "--dry-run", &format!("app={url}")], &format!("invalid URL '{url}': port 0"));
    }
    let on_exit = ["run", "--dry-run", "--on-exit", "http://127.0.0.1:0/quit", "--", "true"];
    assert_usage_error(&on_exit, "invalid URL 'http://127.0.0.1:0/quit': port 0");
}

/// A single-valued option given twice is a usage error naming it, never "the last one wins".
#[test]
fn single_valued_options_given_twice() {
    let cases: &[&[&str]] = &[
        &["serve", "--timeout", "1s", "--timeout", "2s", OK_URL],
        &["serve", "--listen", "127.0.0.1:1", "--listen=127.0.0.1:2", OK_URL],
        &["serve", "--port", "1", "--port", "1", OK_URL],
        &["serve", "--max-connections", "1", "--max-connections", "2", OK_URL],
        &["serve", "--interval", "1s", "--interval", "2s", OK_URL],
        &["serve", "--min-interval", "1s", "--min-interval", "2s", OK_URL],
        &["check", "--timeout", "1s", OK_URL, "--timeout", "2s"],
        &["check", "--output", "json", "--output", "text", OK_URL],
        &["run", "--timeout", "1s", "--timeout", "2s", "--", "true"],
        &["run", "--interval", "1s", "--interval", "2s", "--", "true"],
        &["run", "--wait-timeout", "1s", "--wait-timeout", "2s", "--", "true"],
        &["run", "--on-exit-timeout", "1s", "--on-exit-timeout", "2s", "--", "true"],
        &["run", "--on-exit-when", "always", "--on-exit-when", "failure", "--", "true"],
    ];
    for args in cases {
        let flag = args.iter().find(|a| a.starts_with("--")).unwrap().split('=').next().unwrap();
        // --dry-run: a command line that is wrongly accepted prints its configuration and ends.
        let mut args = args.to_vec();
        args.insert(1, "--dry-run");
        assert_usage_error(&args, &format!("{flag} given twice"));
    }
}

/// A usage error shows the argument as the user typed it: UTF-8 as is, never `\u{e9}`; only
/// control characters and the invisible ones that could hide or reorder text are escaped.
#[test]
fn errors_show_arguments_as_typed() {
    assert_usage_error(&["serve", "--listen", "caf\u{e9}:80", OK_URL], "invalid --listen 'caf\u{e9}:80'");
    assert_usage_error(&["serve", "--r\u{e9}sum\u{e9}", OK_URL], "unknown option '--r\u{e9}sum\u{e9}'");
    assert_usage_error(&["check", "--timeout", "3\u{5e74}", OK_URL], "invalid --timeout '3\u{5e74}'");
    assert_usage_error(&["serve", "--x\u{1}\u{202e}y", OK_URL], "unknown option '--x\\x01\\u202ey'");
    for args in [&["serve", "--r\u{e9}sum\u{e9}", OK_URL][..], &["serve", "--x\u{1}", OK_URL]] {
        let out = run_cli(args);
        assert!(!out.stderr.contains("\\u{"), "{args:?}: no Rust escapes: {:?}", out.stderr);
    }
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
fn a_startup_error_is_printed_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = run_cli(&["serve", "--listen", &listen, OK_URL]);
    assert_eq!(out.code(), Some(71), "stderr {:?}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, not a plain line and a log line: {:?}", out.stderr);
    assert!(lines[0].starts_with(&format!("healthcheck: error: cannot listen on {listen}: ")), "{:?}", out.stderr);
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
fn durations_take_go_syntax_and_print_back_canonical() {
    let cases = [
        ("500ms", "500ms"),
        ("3s", "3s"),
        ("2m", "2m"),
        ("1h", "1h"),
        ("1m30s", "1m30s"),
        ("90s", "1m30s"),
        ("1.5s", "1.5s"),
        ("0.5s", "500ms"),
        ("2h45m", "2h45m"),
        ("3", "3s"),
    ];
    for (given, shown) in cases {
        let out = run_cli(&["serve", "--dry-run", "--timeout", given, "http://127.0.0.1:9000/"]);
        assert_eq!(out.code(), Some(0), "{given}: stderr {:?}", out.stderr);
        assert!(out.stdout.contains(&format!("\ntimeout {shown}\n")), "{given}:\n{}", out.stdout);
    }
    assert_usage_error(&["serve", "--timeout", "1d", "http://127.0.0.1:9000/"], "1d");
    assert_usage_error(&["serve", "--timeout", "18446744073709551615h", "http://127.0.0.1:9000/"], "too large");
}

/// `--dry-run` shows every setting, `--verbose` and `--quiet` included.
#[test]
fn dry_run_shows_verbose_and_quiet() {
    let out = run_cli(&["serve", "--dry-run", "--verbose", "http://127.0.0.1:9000/"]);
    assert!(out.stdout.contains("\nverbose true\n"), "{}", out.stdout);
    let out = run_cli(&["serve", "--dry-run", "http://127.0.0.1:9000/"]);
    assert!(out.stdout.contains("\nverbose false\n"), "{}", out.stdout);
    let out = run_cli(&["check", "--dry-run", "-q", "http://127.0.0.1:9000/"]);
    assert!(out.stdout.contains("\nquiet true\n"), "{}", out.stdout);
}

/// Unnamed checks never make a usage error: a URL given twice, or in another spelling of the
/// same URL (case of the scheme, a fragment), is one check. A host written differently is
/// another probe to kubelet (the Host sent, the redirects followed): another check, renamed.
#[test]
fn repeated_unnamed_urls_are_one_check() {
    let same = ["http://127.0.0.1:9/health", "http://127.0.0.1:9/health", "HTTP://127.0.0.1:9/health#top"];
    let out = run_cli(&["8081", "1", same[0], same[1], "--dry-run"]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    let out = run_cli(&[&["check", "--dry-run"][..], &same].concat());
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    assert_eq!(out.stdout.matches("\ncheck ").count(), 1, "one check:\n{}", out.stdout);
    let out = run_cli(&["serve", "--dry-run", "http://LOCALHOST:80/", "http://localhost/"]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    assert_eq!(out.stdout.matches("\ncheck ").count(), 2, "two checks:\n{}", out.stdout);
    assert!(out.stdout.contains("\ncheck localhost/~2 "), "{}", out.stdout);
    // Two explicit identical names stay an error, whatever the URLs.
    assert_usage_error(&["serve", "app=http://127.0.0.1:9/", "app=http://127.0.0.1:9/"], "duplicate check name 'app'");
}

/// One mesh per Job: `--istio --linkerd` names both instead of silently keeping Istio.
#[test]
fn istio_and_linkerd_together_are_a_usage_error() {
    let out = run_cli(&["run", "--istio", "--linkerd", "--", "true"]);
    assert_eq!(out.code(), Some(64), "stdout {:?} stderr {:?}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--istio") && out.stderr.contains("--linkerd"), "{:?}", out.stderr);
    assert_usage_error(&["run", "--dry-run", "--linkerd", "--istio", "--", "true"], "--linkerd");
}

/// Every mode takes `--help` and `--dry-run`; `--` ends the options of `serve` and `check` alike.
#[test]
fn every_mode_takes_help_and_dry_run() {
    for args in
        [&["serve", "--help"][..], &["check", "--help"], &["run", "--help"], &["check", "-h"], &["8081", "1", "--help"]]
    {
        let out = run_cli(args);
        assert_eq!(out.code(), Some(0), "{args:?}: stderr {:?}", out.stderr);
        assert!(out.stdout.contains("Usage:"), "{args:?}:\n{}", out.stdout);
    }
    let out = run_cli(&["8081", "2", "--dry-run", "http://127.0.0.1:9/"]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    assert!(out.stdout.contains("mode serve") && out.stdout.contains("listen 0.0.0.0:8081"), "{}", out.stdout);
    for mode in ["serve", "check"] {
        let out = run_cli(&[mode, "--dry-run", "--", "http://127.0.0.1:9/"]);
        assert_eq!(out.code(), Some(0), "{mode} --: stderr {:?}", out.stderr);
        assert!(out.stdout.contains("check 127.0.0.1:9/ "), "{mode}:\n{}", out.stdout);
    }
}

/// The README's tips: IPv6 with `--listen [::]:PORT` (the positional form is IPv4 only), an
/// app bound to the pod IP checked by IP literal (`$(POD_IP)` as Kubernetes expands it), and
/// `--` ending the options of the positional form too.
#[test]
fn readme_tips_hold() {
    let out = run_cli(&["serve", "--dry-run", "--listen", "[::]:8081", "app=http://10.244.1.7:8080/healthz"]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    assert!(out.stdout.contains("listen [::]:8081\n"), "{}", out.stdout);
    assert!(out.stdout.contains("check app http://10.244.1.7:8080/healthz (10.244.1.7:8080)"), "{}", out.stdout);
    let out = run_cli(&["8081", "2", "--dry-run", "--", "http://127.0.0.1:9/"]);
    assert_eq!(out.code(), Some(0), "stderr {:?}", out.stderr);
    assert!(out.stdout.contains("listen 0.0.0.0:8081\n"), "IPv4 only: {}", out.stdout);
}
