//! `healthcheck run`: the real binary waiting on loopback upstreams, running `sh -c` children, forwarding signals and calling back.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::thread;
use std::time::Duration;

use support::{eventually, field, refused_url, send_signal, Behaviour, Finished, Stub, TempDir, Wrapper, PATIENCE};

/// `healthcheck run OPTIONS... -- sh -c SCRIPT`.
fn run_sh(options: &[&str], script: &str) -> Wrapper {
    Wrapper::start(&run_args(options, script))
}

fn run_args<'a>(options: &[&'a str], script: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    args
}

/// One of the two ways `run` starts COMMAND: without a callback it execs it; with one (a recorder
/// taking `POST /done`) it spawns and supervises it.
struct Mode {
    callback: Option<Stub>,
}

/// Both modes, each with a fresh recorder: a test that loops over them covers both code paths.
fn modes() -> [Mode; 2] {
    [Mode { callback: None }, Mode { callback: Some(Stub::ok()) }]
}

impl Mode {
    /// `healthcheck run [--on-exit URL] -- COMMAND...`, stdin from `stdin` (or /dev/null).
    fn start_with(&self, command: &[&str], stdin: Option<&[u8]>) -> Wrapper {
        let done_url = self.callback.as_ref().map(|r| r.url("/done"));
        let mut args = vec!["run"];
        if let Some(url) = &done_url {
            args.extend(["--on-exit", url]);
        }
        args.push("--");
        args.extend_from_slice(command);
        Wrapper::start_with(&args, &[], stdin)
    }

    fn start(&self, command: &[&str]) -> Wrapper {
        self.start_with(command, None)
    }

    /// `healthcheck run [--on-exit URL] -- sh -c SCRIPT`.
    fn start_sh(&self, script: &str) -> Wrapper {
        self.start(&["sh", "-c", script])
    }

    fn execs(&self) -> bool {
        self.callback.is_none()
    }

    /// After a run: exactly one `POST /done` when there is a callback.
    #[track_caller]
    fn assert_called_back(&self) {
        if let Some(r) = &self.callback {
            r.assert_one_post("/done");
        }
    }
}

/// A child that appends `got-SIG` to `file` for each of `signals`, and `got-LAST` then exits 7
/// on `last`; it writes `ready` once its traps are set.
fn trapping_child(file: &str, signals: &[&str], last: &str) -> String {
    let mut script = String::new();
    for sig in signals {
        script.push_str(&format!("trap 'echo got-{sig} >> {file}' {sig}\n"));
    }
    script.push_str(&format!("trap 'echo got-{last} >> {file}; exit 7' {last}\n"));
    script.push_str(&format!("echo ready >> {file}\nwhile :; do sleep 0.1; done\n"));
    script
}

fn elapsed_ms(line: &str) -> u64 {
    field(line, "elapsed_ms").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no elapsed_ms in {line}"))
}

// ---------------------------------------------------------------------------
// --wait
// ---------------------------------------------------------------------------

#[test]
fn wait_succeeds_once_the_upstream_is_ready_late() {
    for _attempt in 0..3 {
        let upstream = Stub::late(Duration::from_millis(1500), Behaviour::Status(200, "ok\n"));
        let wait = format!("app={}", upstream.url("/ready"));
        let done = run_sh(&["--wait", &wait, "--interval", "100ms"], "echo child-ran >&2").finish();
        if upstream.bind_failed() {
            continue; // the port was taken meanwhile: try another one
        }
        assert_eq!(done.code(), 0, "{}", done.stderr);
        let log = &done.stderr;
        let start = log.find("event=waiting ").unwrap_or_else(|| panic!("no waiting line:\n{log}"));
        let end = log.find("event=wait_done ").unwrap_or_else(|| panic!("no wait_done line:\n{log}"));
        let child = log.find("child-ran").unwrap_or_else(|| panic!("the child did not run:\n{log}"));
        assert!(start < end && end < child, "waiting, then wait_done, then the child:\n{log}");
        assert!(done.events("waiting")[0].contains("checks=app"), "{log}");
        let took = elapsed_ms(done.events("wait_done")[0]);
        assert!((1000..9000).contains(&took), "the wait took {took} ms for a 1.5 s delay:\n{log}");
        assert!(done.events("still_waiting").is_empty(), "no progress line before 10 s:\n{log}");
        assert!(upstream.seen().iter().any(|s| s.method == "GET" && s.path == "/ready"), "{:?}", upstream.seen());
        return;
    }
    panic!("the late upstream could not bind its port in 3 attempts");
}

#[test]
fn wait_timeout_gives_up_with_69_and_calls_back() {
    let dir = TempDir::new();
    let hanging = Stub::start(Behaviour::Hang);
    let callback = Stub::ok();
    let (wait, done_url) = (hanging.url("/ready"), callback.url("/done"));
    let script = format!("touch {}", dir.file("ran"));
    // An attempt may hang for 5 s; the wait timeout must still end the wait after 1 s.
    let opts = ["--wait", &wait, "--timeout", "5s", "--wait-timeout", "1s", "--on-exit", &done_url];
    let done = run_sh(&opts, &script).finish();
    assert_eq!(done.code(), 69, "{}", done.stderr);
    assert!(!dir.exists("ran"), "the command must not run");
    callback.assert_one_post("/done");
    let timeout = done.events("wait_timeout");
    assert_eq!(timeout.len(), 1, "{}", done.stderr);
    assert!(timeout[0].contains("level=error") && timeout[0].contains("give up"), "{}", timeout[0]);
    assert!((900..4000).contains(&elapsed_ms(timeout[0])), "how long the wait took: {}", timeout[0]);
    // Each failing check's last reason: here the attempt cut short at the wait timeout.
    assert!(timeout[0].contains("failing=\"127.0.0.1:"), "{}", timeout[0]);
    assert!(timeout[0].contains("/ready: timeout after "), "{}", timeout[0]);
    assert!(done.elapsed >= Duration::from_millis(900), "gave up too early: {:?}", done.elapsed);
    assert!(done.elapsed < Duration::from_secs(4), "a hanging attempt outlived the wait timeout: {:?}", done.elapsed);
}

#[test]
fn wait_timeout_continue_starts_the_command_anyway() {
    let dir = TempDir::new();
    let callback = Stub::ok();
    let (wait, done_url) = (refused_url("/ready"), callback.url("/done"));
    let script = format!("touch {}; exit 3", dir.file("ran"));
    let opts = ["--wait", &wait, "--interval", "100ms", "--wait-timeout", "700ms", "--wait-timeout-continue"];
    let done = run_sh(&[&opts[..], &["--on-exit", &done_url]].concat(), &script).finish();
    assert_eq!(done.code(), 3, "the command's code:\n{}", done.stderr);
    assert!(dir.exists("ran"), "the command ran");
    callback.assert_one_post("/done");
    let timeout = done.events("wait_timeout");
    assert!(timeout.len() == 1 && timeout[0].contains("then=continue"), "{}", done.stderr);
    assert!(timeout[0].contains("/ready: connection refused\""), "the failing check and its reason: {}", timeout[0]);
    assert!(elapsed_ms(timeout[0]) >= 600, "how long the wait took: {}", timeout[0]);
}

#[test]
fn wait_logs_at_most_one_progress_line_per_10_seconds() {
    let wait = format!("app={}", refused_url("/ready"));
    let opts = ["--wait", &wait, "--interval", "100ms", "--wait-timeout", "11s"];
    let done = Wrapper::start(&run_args(&opts, "true")).finish_within(Duration::from_secs(20));
    assert_eq!(done.code(), 69, "{}", done.stderr);
    let progress = done.events("still_waiting");
    assert_eq!(progress.len(), 1, "one progress line in 11 s of attempts every 100 ms:\n{}", done.stderr);
    assert!(progress[0].contains("failing=\"app: connection refused\""), "{}", progress[0]);
    let attempts: u64 = field(progress[0], "attempts").and_then(|a| a.parse().ok()).expect("attempts");
    assert!(attempts > 10, "attempts every 100 ms, yet only {attempts} in 10 s");
    assert_eq!(done.events("waiting").len(), 1, "{}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 3, "waiting, still_waiting, wait_timeout only:\n{}", done.stderr);
}

#[test]
fn a_signal_during_the_wait_ends_it_and_calls_back() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130), (libc::SIGUSR2, 140)] {
        let dir = TempDir::new();
        let callback = Stub::ok();
        let (wait, done_url) = (refused_url("/ready"), callback.url("/done"));
        let script = format!("touch {}", dir.file("ran"));
        let wrapper = run_sh(&["--wait", &wait, "--interval", "100ms", "--on-exit", &done_url], &script);
        wrapper.wait_for_event("waiting");
        wrapper.signal(sig);
        let done = wrapper.finish();
        assert_eq!(done.code(), code, "signal {sig}:\n{}", done.stderr);
        assert!(!dir.exists("ran"), "the command must not run");
        callback.assert_one_post("/done");
        let interrupted = done.events("wait_interrupted");
        assert_eq!(interrupted.len(), 1, "{}", done.stderr);
        elapsed_ms(interrupted[0]);
    }
}

#[test]
fn noise_does_not_end_the_wait() {
    let callback = Stub::ok();
    let (wait, done_url) = (refused_url("/ready"), callback.url("/done"));
    let mut wrapper = run_sh(&["--wait", &wait, "--interval", "100ms", "--on-exit", &done_url], "true");
    wrapper.wait_for_event("waiting");
    for sig in [libc::SIGCHLD, libc::SIGURG, libc::SIGWINCH] {
        wrapper.signal(sig);
    }
    thread::sleep(Duration::from_secs(1)); // long enough for a wrong reaction to show
    assert!(wrapper.running(), "SIGCHLD/SIGURG/SIGWINCH ended the wait:\n{}", wrapper.stderr());
    wrapper.signal(libc::SIGTERM);
    let done = wrapper.finish();
    assert_eq!(done.code(), 143, "{}", done.stderr);
    callback.assert_one_post("/done");
}

// ---------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------

#[test]
fn exit_code_is_the_childs() {
    for code in [0, 3, 42] {
        for mode in modes() {
            let done = mode.start_sh(&format!("exit {code}")).finish();
            assert_eq!(done.code(), code, "{}", done.stderr);
            mode.assert_called_back();
        }
    }
}

/// The child died of `sig`: exec'd, the wrapper's process is the child, so the kernel reports the
/// signal itself; spawned, the wrapper exits 128+N.
#[track_caller]
fn assert_died_of(mode: &Mode, done: &Finished, sig: libc::c_int) {
    if mode.execs() {
        assert_eq!(done.status.signal(), Some(sig), "{done:?}");
    } else {
        assert_eq!(done.code(), 128 + sig, "{}", done.stderr);
    }
}

#[test]
fn child_killed_by_a_signal_is_128_plus_n() {
    for mode in modes() {
        let done = mode.start_sh("kill -s TERM $$").finish();
        assert_died_of(&mode, &done, libc::SIGTERM);
        mode.assert_called_back();
    }
}

#[test]
fn a_forwarded_sigterm_kills_a_child_without_a_handler() {
    // `sleep` has no handler: it dies only if SIGTERM is not left blocked in it.
    for mode in modes() {
        let wrapper = mode.start(&["sleep", "30"]);
        if mode.execs() {
            let comm = || std::fs::read_to_string(format!("/proc/{}/comm", wrapper.pid())).unwrap_or_default();
            assert!(eventually(PATIENCE, || comm() == "sleep\n"), "sleep was not exec'd");
        } else {
            wrapper.wait_for_event("child_started");
        }
        wrapper.signal(libc::SIGTERM);
        let done = wrapper.finish();
        assert_died_of(&mode, &done, libc::SIGTERM);
        mode.assert_called_back();
    }
}

#[test]
fn child_killed_from_outside_is_128_plus_n() {
    let dir = TempDir::new();
    let callback = Stub::ok();
    let done_url = callback.url("/done");
    let script = format!("echo $$ > {}.tmp; mv {0}.tmp {0}; while :; do sleep 0.1; done", dir.file("pid"));
    let wrapper = run_sh(&["--on-exit", &done_url], &script);
    assert!(eventually(PATIENCE, || dir.exists("pid")), "the child did not start");
    let pid: i32 = dir.read("pid").trim().parse().expect("a pid");
    assert_ne!(pid, wrapper.pid(), "spawned, not exec'd");
    send_signal(pid, libc::SIGKILL);
    let done = wrapper.finish();
    assert_eq!(done.code(), 128 + 9, "{}", done.stderr);
    callback.assert_one_post("/done");
}

#[test]
fn command_not_found_is_127() {
    for mode in modes() {
        let done = mode.start(&["healthcheck-test-no-such-command", "arg"]).finish();
        assert_eq!(done.code(), 127, "{}", done.stderr);
        assert_eq!(done.events("exec_failed").len(), 1, "{}", done.stderr);
        mode.assert_called_back();
    }
}

#[test]
fn command_not_executable_is_126() {
    let dir = TempDir::new();
    let plain = dir.file("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    for command in [plain.as_str(), dir.path.to_str().unwrap()] {
        for mode in modes() {
            let done = mode.start(&[command]).finish();
            assert_eq!(done.code(), 126, "{command}:\n{}", done.stderr);
            mode.assert_called_back();
        }
    }
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

const FORWARDED: [(libc::c_int, &str); 5] = [
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
];

#[test]
fn forwarded_signals_reach_the_child() {
    for mode in modes() {
        let dir = TempDir::new();
        let file = dir.file("signals");
        let names: Vec<&str> = FORWARDED.iter().map(|(_, name)| *name).collect();
        let wrapper = mode.start_sh(&trapping_child(&file, &names, "TERM"));
        dir.wait_for_line("signals", "ready");
        for (sig, name) in FORWARDED {
            wrapper.signal(sig);
            dir.wait_for_line("signals", &format!("got-{name}"));
        }
        wrapper.signal(libc::SIGTERM);
        let done = wrapper.finish();
        assert_eq!(done.code(), 7, "{}", done.stderr);
        let want = ["ready", "got-USR1", "got-USR2", "got-HUP", "got-INT", "got-QUIT", "got-TERM"];
        assert_eq!(dir.read("signals").lines().collect::<Vec<_>>(), want);
        if !mode.execs() {
            assert_eq!(done.events("signal_forwarded").len(), 6, "{}", done.stderr);
        }
        mode.assert_called_back();
    }
}

#[test]
fn other_signals_are_not_forwarded() {
    // Spawned only: exec'd, the child is the wrapper's process and sees whatever it is sent.
    let [_, mode] = modes();
    let dir = TempDir::new();
    let mut wrapper = mode.start_sh(&trapping_child(&dir.file("signals"), &["URG", "WINCH"], "USR1"));
    dir.wait_for_line("signals", "ready");
    for sig in [libc::SIGURG, libc::SIGWINCH, libc::SIGCHLD] {
        wrapper.signal(sig);
    }
    thread::sleep(Duration::from_millis(500)); // long enough for a wrongly forwarded signal to land
    assert!(wrapper.running(), "noise ended the run:\n{}", wrapper.stderr());
    wrapper.signal(libc::SIGUSR1);
    let done = wrapper.finish();
    assert_eq!(done.code(), 7, "{}", done.stderr);
    assert_eq!(dir.read("signals"), "ready\ngot-USR1\n", "only SIGUSR1 was forwarded");
    let forwarded = done.events("signal_forwarded");
    assert!(forwarded.len() == 1 && forwarded[0].contains("signal=SIGUSR1"), "{}", done.stderr);
    mode.assert_called_back();
}

#[test]
fn without_a_callback_the_command_is_execed() {
    for mode in modes() {
        let done = mode.start_sh("echo $$").finish();
        let child_pid = done.stdout.trim();
        if mode.execs() {
            assert_eq!(child_pid, done.pid.to_string(), "exec'd: the same process");
        } else {
            assert_ne!(child_pid, done.pid.to_string(), "spawned: another process");
            let started = done.events("child_started");
            assert_eq!(started.len(), 1, "{}", done.stderr);
            assert_eq!(field(started[0], "pid"), Some(child_pid), "the logged pid is the child's");
        }
        mode.assert_called_back();
    }
}

// ---------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------

#[test]
fn on_exit_when_picks_the_outcomes_that_call_back() {
    let refused = refused_url("/ready");
    let gave_up = ["--wait", refused.as_str(), "--interval", "100ms", "--wait-timeout", "300ms"];
    let cases: [(&str, &[&str], &str, i32, bool); 8] = [
        ("always", &[], "exit 0", 0, true),
        ("always", &[], "exit 3", 3, true),
        ("success", &[], "exit 0", 0, true),
        ("success", &[], "exit 3", 3, false),
        ("success", &gave_up, "exit 0", 69, false),
        ("failure", &[], "exit 0", 0, false),
        ("failure", &[], "exit 3", 3, true),
        ("failure", &gave_up, "exit 0", 69, true),
    ];
    for (when, extra, script, code, called) in cases {
        let callback = Stub::ok();
        let done_url = callback.url("/done");
        let opts = [&["--on-exit", &done_url, "--on-exit-when", when], extra].concat();
        let done = run_sh(&opts, script).finish();
        let case = format!("--on-exit-when {when} {extra:?} {script}");
        assert_eq!(done.code(), code, "{case}:\n{}", done.stderr);
        if called {
            callback.assert_one_post("/done");
        } else {
            assert_eq!(callback.seen(), [], "{case}");
            assert_eq!(done.events("on_exit_skipped").len(), 1, "{case}:\n{}", done.stderr);
        }
    }
}

#[test]
fn callbacks_run_concurrently_bounded_and_never_change_the_code() {
    let slow = [
        Stub::start(Behaviour::Delay(Duration::from_secs(2), 200)),
        Stub::start(Behaviour::Delay(Duration::from_secs(2), 200)),
    ];
    let hanging = Stub::start(Behaviour::Hang);
    let failing = Stub::start(Behaviour::Status(500, ""));
    let urls = [slow[0].url("/a"), slow[1].url("/b"), hanging.url("/c"), failing.url("/d"), refused_url("/ready")];
    // Each try within 2.5 s (the slow ones pass at the first), all of them within 3 s.
    let mut opts = vec!["--timeout", "2500ms", "--on-exit-timeout", "3s"];
    for url in &urls {
        opts.extend(["--on-exit", url]);
    }
    let done = run_sh(&opts, "exit 3").finish();
    assert_eq!(done.code(), 3, "{}", done.stderr);
    slow[0].assert_one_post("/a");
    slow[1].assert_one_post("/b");
    assert!(!hanging.posts().is_empty() && !failing.posts().is_empty());
    // In turn they would take 2 + 2 + 3 s; together, the longest: the 3 s timeout.
    assert!(done.elapsed >= Duration::from_millis(2900), "the hanging callback was not waited for: {:?}", done.elapsed);
    assert!(done.elapsed < Duration::from_secs(6), "callbacks in turn, or unbounded: {:?}", done.elapsed);
    let results: Vec<&str> = done.events("on_exit").iter().map(|l| l.split(" result=").nth(1).unwrap_or("")).collect();
    assert_eq!(results.len(), 5, "one final line per callback:\n{}", done.stderr);
    assert_eq!(results[..2], ["ok", "ok"], "{}", done.stderr);
    assert!(results[2].starts_with("\"timeout after "), "{}", done.stderr);
    assert_eq!(results[3..], ["\"status 500\"", "\"connection refused\""], "in order:\n{}", done.stderr);
}

#[test]
fn on_exit_retries_a_callback_that_refuses_until_it_listens() {
    for _attempt in 0..3 {
        let callback = Stub::late(Duration::from_millis(700), Behaviour::Status(200, "ok\n"));
        let done_url = callback.url("/done");
        let done = run_sh(&["--on-exit", &done_url, "--on-exit-timeout", "8s"], "exit 3").finish();
        if callback.bind_failed() {
            continue; // the port was taken meanwhile: try another one
        }
        assert_eq!(done.code(), 3, "the command's code, whatever the callback did:\n{}", done.stderr);
        callback.assert_one_post("/done");
        let retries = done.events("on_exit_retry");
        assert!(!retries.is_empty(), "no try logged:\n{}", done.stderr);
        assert!(retries.iter().all(|l| l.contains("result=\"connection refused\"")), "{}", done.stderr);
        let last = done.events("on_exit");
        assert_eq!(last.len(), 1, "{}", done.stderr);
        assert!(last[0].ends_with(" result=ok"), "{}", done.stderr);
        assert_eq!(field(last[0], "attempts"), Some((retries.len() + 1).to_string().as_str()), "{}", done.stderr);
        assert!(done.elapsed < Duration::from_secs(6), "{:?}", done.elapsed);
        return;
    }
    panic!("the late callback could not bind its port in 3 attempts");
}

#[test]
fn on_exit_retries_a_callback_that_answers_503() {
    let callback = Stub::start(Behaviour::StatusFirst(503, 2));
    let done = run_sh(&["--on-exit", &callback.url("/done")], "exit 0").finish();
    assert_eq!(done.code(), 0, "{}", done.stderr);
    assert_eq!(callback.posts().len(), 3, "two 503s, then the 200:\n{}", done.stderr);
    let retries = done.events("on_exit_retry");
    assert_eq!(retries.len(), 2, "{}", done.stderr);
    assert!(retries.iter().all(|l| l.contains(" level=warn ") && l.ends_with(" result=\"status 503\"")), "{retries:?}");
    assert_eq!([field(retries[0], "attempt"), field(retries[1], "attempt")], [Some("1"), Some("2")]);
    // 100 ms, then twice as long.
    assert_eq!([field(retries[0], "retry_in_ms"), field(retries[1], "retry_in_ms")], [Some("100"), Some("200")]);
    let last = done.events("on_exit");
    assert_eq!(last.len(), 1, "{}", done.stderr);
    assert_eq!((field(last[0], "attempts"), field(last[0], "result")), (Some("3"), Some("ok")), "{}", done.stderr);
}

#[test]
fn on_exit_gives_up_at_the_on_exit_timeout_with_the_commands_code() {
    let failing = Stub::start(Behaviour::Status(500, ""));
    let hanging = Stub::start(Behaviour::Hang);
    let (failing_url, hanging_url) = (failing.url("/done"), hanging.url("/done"));
    let opts = ["--timeout", "300ms", "--on-exit-timeout", "2s", "--on-exit", &failing_url, "--on-exit", &hanging_url];
    let done = run_sh(&opts, "exit 7").finish();
    assert_eq!(done.code(), 7, "{}", done.stderr);
    assert!(done.elapsed >= Duration::from_millis(1800), "gave up early: {:?}\n{}", done.elapsed, done.stderr);
    assert!(done.elapsed < Duration::from_secs(5), "{:?}\n{}", done.elapsed, done.stderr);
    // Tried again, a timeout too, each try logged.
    assert!(failing.posts().len() >= 3, "{:?}\n{}", failing.posts(), done.stderr);
    assert!(hanging.posts().len() >= 3, "{:?}\n{}", hanging.posts(), done.stderr);
    let retries = done.events("on_exit_retry");
    assert_eq!(retries.len(), failing.posts().len() - 1 + hanging.posts().len() - 1, "{}", done.stderr);
    let gave_up = done.events("on_exit");
    assert_eq!(gave_up.len(), 2, "one line per callback:\n{}", done.stderr);
    for (line, reason) in gave_up.iter().zip(["status 500", "timeout after"]) {
        assert!(line.contains(" level=warn ") && line.contains(" then=\"give up\" "), "{line}");
        assert!(line.split(" result=\"").nth(1).is_some_and(|r| r.starts_with(reason)), "{line}");
    }
}

#[test]
fn environment_reaches_the_child_and_can_add_a_callback() {
    let callback = Stub::ok();
    let endpoint = callback.url("/quitquitquit");
    let script = "printf '%s|%s\\n' \"$HC_TEST_VAR\" $$";
    let env = [
        ("HC_TEST_VAR", "hello world"),
        ("ENABLE_COMPLETION_CALLBACK", "1"),
        ("COMPLETION_CALLBACK_ENDPOINT", endpoint.as_str()),
    ];
    let done = Wrapper::start_with(&run_args(&[], script), &env, None).finish();
    assert_eq!(done.code(), 0, "{}", done.stderr);
    assert!(done.stdout.starts_with("hello world|"), "{}", done.stdout);
    callback.assert_one_post("/quitquitquit");

    // The same URL given on the command line too: still one call.
    let callback = Stub::ok();
    let endpoint = callback.url("/quitquitquit");
    let env = [("ENABLE_COMPLETION_CALLBACK", "1"), ("COMPLETION_CALLBACK_ENDPOINT", endpoint.as_str())];
    let done = Wrapper::start_with(&run_args(&["--on-exit", &endpoint], "exit 4"), &env, None).finish();
    assert_eq!(done.code(), 4, "{}", done.stderr);
    callback.assert_one_post("/quitquitquit");

    // Not enabled: no callback, so the command is exec'd, with the environment.
    let env =
        [("HC_TEST_VAR", "x y"), ("ENABLE_COMPLETION_CALLBACK", "0"), ("COMPLETION_CALLBACK_ENDPOINT", &endpoint)];
    let done = Wrapper::start_with(&run_args(&[], script), &env, None).finish();
    assert_eq!(done.stdout, format!("x y|{}\n", done.pid), "{}", done.stderr);
    callback.assert_one_post("/quitquitquit"); // still only the earlier one

    // Enabled without an endpoint: a usage error.
    let done = Wrapper::start_with(&run_args(&[], "exit 0"), &[("ENABLE_COMPLETION_CALLBACK", "1")], None).finish();
    assert_eq!(done.code(), 64, "{}", done.stderr);
    assert!(done.stderr.contains("COMPLETION_CALLBACK_ENDPOINT"), "{}", done.stderr);

    // A value that is neither on nor off is not silently ignored.
    let env = [("ENABLE_COMPLETION_CALLBACK", "yes"), ("COMPLETION_CALLBACK_ENDPOINT", endpoint.as_str())];
    let done = Wrapper::start_with(&run_args(&[], "exit 0"), &env, None).finish();
    assert_eq!(done.code(), 64, "{}", done.stderr);
    assert!(done.stderr.contains("invalid ENABLE_COMPLETION_CALLBACK 'yes'"), "{}", done.stderr);
}

/// The wrapper blocks the signals it forwards and ignores SIGPIPE (Rust's runtime does); the
/// command starts with neither: nothing blocked, SIGPIPE at its default action.
#[test]
fn the_child_starts_with_no_signal_blocked_and_sigpipe_default() {
    for mode in modes() {
        // Not through sh, which clears its own mask.
        let done = mode.start(&["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]).finish();
        assert_eq!(done.code(), 0, "{}", done.stderr);
        let mask = |name: &str| {
            let line = done.stdout.lines().find(|l| l.starts_with(name)).expect(name);
            u64::from_str_radix(line[name.len()..].trim(), 16).expect("a hex mask")
        };
        assert_eq!(mask("SigBlk:"), 0, "{}", done.stdout);
        assert_eq!(mask("SigIgn:") & 1 << (libc::SIGPIPE - 1), 0, "SIGPIPE ignored: {}", done.stdout);
        mode.assert_called_back();
    }
}

#[test]
fn the_child_shares_stdin_stdout_and_stderr() {
    let script = "read line; echo \"out $line\"; echo \"err $line\" >&2";
    for mode in modes() {
        let done = mode.start_with(&["sh", "-c", script], Some(b"hello\n")).finish();
        assert_eq!(done.code(), 0, "{}", done.stderr);
        assert_eq!(done.stdout, "out hello\n");
        assert!(done.stderr.lines().any(|l| l == "err hello"), "{}", done.stderr);
        mode.assert_called_back();
    }
}

// ---------------------------------------------------------------------------
// Presets (fixed ports: skipped when one is taken)
// ---------------------------------------------------------------------------

/// Stubs on fixed 127.0.0.1 ports, or None (after saying why) when one is taken.
fn fixed_recorders<const N: usize>(ports: [u16; N]) -> Option<[Stub; N]> {
    let mut recorders = Vec::new();
    for port in ports {
        match Stub::bind(SocketAddr::from(([127, 0, 0, 1], port)), Behaviour::Status(200, "ok\n")) {
            Ok(r) => recorders.push(r),
            Err(e) => {
                support::skip(&format!("cannot bind 127.0.0.1:{port} for the preset: {e}"));
                return None;
            }
        }
    }
    recorders.try_into().ok()
}

fn get(path: &str) -> support::Seen {
    support::Seen { method: "GET".into(), path: path.into(), body_len: 0 }
}

#[test]
fn istio_preset_waits_on_15021_and_quits_15020() {
    let Some([quit, ready]) = fixed_recorders([15020, 15021]) else { return };
    let done = run_sh(&["--istio"], "exit 5").finish();
    assert_eq!(done.code(), 5, "{}", done.stderr);
    assert_eq!(ready.seen(), [get("/healthz/ready")]);
    quit.assert_one_post("/quitquitquit");

    // Explicit flags replace the preset's parts.
    let mine = Stub::ok();
    let (wait, done_url) = (mine.url("/mine"), mine.url("/done"));
    let done = run_sh(&["--istio", "--wait", &wait, "--on-exit", &done_url], "exit 0").finish();
    assert_eq!(done.code(), 0, "{}", done.stderr);
    assert_eq!(mine.seen().first(), Some(&get("/mine")));
    mine.assert_one_post("/done");
    assert_eq!((ready.seen().len(), quit.seen().len()), (1, 1), "the preset's URLs were not used again");
}

#[test]
fn linkerd_preset_waits_on_and_shuts_down_4191() {
    let Some([admin]) = fixed_recorders([4191]) else { return };
    let done = run_sh(&["--linkerd"], "exit 0").finish();
    assert_eq!(done.code(), 0, "{}", done.stderr);
    assert_eq!(admin.seen().first(), Some(&get("/ready")));
    admin.assert_one_post("/shutdown");
}

// ---------------------------------------------------------------------------
// PID 1
// ---------------------------------------------------------------------------

/// `unshare OPTIONS...` as a command to complete, or None (said loudly) when unshare is missing
/// or cannot make a PID namespace here.
fn unshare(options: &[&str]) -> Option<Command> {
    let unshare = "/usr/bin/unshare";
    if !std::path::Path::new(unshare).exists() {
        support::skip_missing_tool(&format!("{unshare} not installed"));
        return None;
    }
    let probe = Command::new(unshare).args(options).arg("true").output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        support::skip(&format!("unshare {} does not work here: {probe:?}", options.join(" ")));
        return None;
    }
    let mut command = Command::new(unshare);
    command.args(options);
    Some(command)
}

#[test]
fn as_pid_1_it_reaps_orphans() {
    let Some(mut command) = unshare(&["--pid", "--fork", "--mount-proc"]) else { return };
    let callback = Stub::ok();
    // Two orphans re-parented to PID 1 (the wrapper) die while the child still runs; the child
    // then counts zombies in its PID namespace.
    let script = "(sleep 0.2 &); (sleep 0.3 &); sleep 2; \
                  z=$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z '); echo zombies=$z; exit $((10 + z))";
    command.args([support::bin(), "run", "--on-exit", &callback.url("/done")]);
    command.args(["--", "sh", "-c", script]);
    let done = Wrapper::spawn(command, None).finish();
    assert_eq!(done.stdout, "zombies=0\n", "{}", done.stderr);
    assert_eq!(done.code(), 10, "{}", done.stderr);
    callback.assert_one_post("/done");
}

/// As PID 1 (no init in the container) `run` must supervise even without a callback: an exec'd
/// command would be PID 1 itself, and the kernel drops a SIGTERM that PID 1 has no handler for.
#[test]
fn as_pid_1_it_supervises_without_a_callback() {
    let Some(mut command) = unshare(&["--pid", "--fork", "--kill-child"]) else { return };
    command.args([support::bin(), "run", "--", "sleep", "30"]);
    let wrapper = Wrapper::spawn(command, None);
    // unshare forks the namespace's PID 1, which runs the wrapper: find it as unshare's child.
    let children = format!("/proc/{0}/task/{0}/children", wrapper.pid());
    let mut pid1 = None;
    eventually(PATIENCE, || {
        pid1 = std::fs::read_to_string(&children).ok().and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok());
        // Wait until the wrapper has started its command (spawned or exec'd, `sleep` is running).
        pid1.is_some_and(|p| {
            let own = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            !own.trim().is_empty() || comm.trim() == "sleep"
        })
    });
    let pid1 = pid1.expect("the namespace's PID 1");
    send_signal(pid1, libc::SIGTERM);
    let done = wrapper.finish_within(Duration::from_secs(3));
    assert_eq!(done.status.code(), Some(128 + libc::SIGTERM), "{:?}\n{}", done.status, done.stderr);
    assert!(done.stderr.contains("event=signal_forwarded signal=SIGTERM"), "{}", done.stderr);
    assert!(done.stderr.contains("event=child_exited signal=SIGTERM"), "{}", done.stderr);
}

/// A death by signal is logged by the signal's name, SIGSEGV included.
#[test]
fn a_child_killed_by_sigsegv_is_logged_by_name() {
    let callback = Stub::ok();
    let done = run_sh(&["--on-exit", &callback.url("/done")], "kill -SEGV $$").finish();
    assert_eq!(done.code(), 128 + libc::SIGSEGV, "{}", done.stderr);
    let exited = done.events("child_exited");
    assert!(exited.len() == 1 && exited[0].contains("signal=SIGSEGV"), "{}", done.stderr);
}
