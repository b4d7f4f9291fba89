//! Beyond kubelet: `--expect-status`, `--expect-body` and `--unix-socket`
//! with the real binary, in every mode, and their usage errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use support::*;

/// An upstream that answers every connection with `pieces`, written one by
/// one with a pause between them (so the probe reads them apart), then
/// closes. It serves until the test ends.
fn raw_server(pieces: Vec<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let pieces = pieces.clone();
            thread::spawn(move || answer(stream, &pieces));
        }
    });
    format!("http://{addr}")
}

/// Reads a request head, then writes `pieces` apart and closes.
fn answer(mut stream: impl Read + Write, pieces: &[Vec<u8>]) {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    for piece in pieces {
        if stream.write_all(piece).and_then(|()| stream.flush()).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(30));
    }
}

fn response(status: u16, body: &str) -> Vec<Vec<u8>> {
    vec![format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()]
}

/// `check` of one check `app` with `options`; its exit code and output.
fn check(url: &str, options: &[&str]) -> CliOutput {
    let app = format!("app={url}");
    let mut args = vec!["check", "--timeout", "5s"];
    args.extend_from_slice(options);
    args.push(&app);
    run_cli(&args)
}

#[track_caller]
fn assert_passes(out: &CliOutput) {
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
}

#[track_caller]
fn assert_fails(out: &CliOutput, reason: &str) {
    assert_eq!(out.code(), Some(1), "{}{}", out.stdout, out.stderr);
    let line = format!("[-]app failed: {reason}\n");
    assert!(out.stdout.contains(&line), "want {line:?} in {}", out.stdout);
}

#[test]
fn expected_statuses_replace_200_to_399() {
    let unauthorized = raw_server(response(401, ""));
    assert_fails(&check(&unauthorized, &[]), "status 401");
    assert_passes(&check(&unauthorized, &["--expect-status", "app=200-299,401"]));
    assert_passes(&check(&unauthorized, &["--expect-status=app=401"]));
    // Repeated, the lists add up.
    assert_passes(&check(&unauthorized, &["--expect-status", "app=200", "--expect-status", "app=400-499"]));

    let ok = raw_server(response(200, "ok"));
    assert_fails(&check(&ok, &["--expect-status", "app=204"]), "status 200 (expected 204)");
    let unavailable = raw_server(response(503, ""));
    assert_fails(&check(&unavailable, &["--expect-status", "app=200-299,401"]), "status 503 (expected 200-299,401)");
    let moved = raw_server(response(304, ""));
    assert_fails(&check(&moved, &["--expect-status", "app=200"]), "status 304 (expected 200)");
}

#[test]
fn redirects_are_followed_and_the_final_status_judged() {
    let app = Stub::start(Behaviour::ByPath(vec![
        ("/a", Behaviour::Redirect(302, "/b".to_string())),
        ("/b", Behaviour::Status(202, "")),
    ]));
    let out = check(&app.url("/a"), &["--expect-status", "app=202"]);
    assert_passes(&out);
    assert_eq!(app.requests().len(), 2);
    // The 302 itself is not judged: listing it does not stop the follow.
    let out = check(&app.url("/a"), &["--expect-status", "app=302"]);
    assert_fails(&out, "status 202 (expected 302)");
}

/// A response with a close-delimited body sent in `pieces`.
fn until_close(pieces: &[&str]) -> Vec<Vec<u8>> {
    let mut out = vec![b"HTTP/1.1 200 OK\r\n\r\n".to_vec()];
    out.extend(pieces.iter().map(|p| p.as_bytes().to_vec()));
    out
}

#[test]
fn expected_body_text_found_or_missing() {
    let app = raw_server(response(200, "{\"status\": \"ready\"}"));
    assert_passes(&check(&app, &["--expect-body", "app=\"ready\""]));
    assert_passes(&check(&app, &["--expect-body=app={\"status\": \"ready\"}"]));
    assert_fails(&check(&app, &["--expect-body", "app=\"down\""]), "body: \"\\\"down\\\"\" not found");
    // Both rules hold: the status is judged first.
    let down = raw_server(response(503, "ready"));
    assert_fails(&check(&down, &["--expect-body", "app=ready"]), "status 503");
    let unauthorized = raw_server(response(401, "ready"));
    assert_passes(&check(&unauthorized, &["--expect-body", "app=ready", "--expect-status", "app=401"]));
    // No body at all.
    let empty = raw_server(response(204, ""));
    assert_fails(&check(&empty, &["--expect-body", "app=ready"]), "body: \"ready\" not found");
    // A long text is shown cut short.
    let long = "x".repeat(100);
    let out = check(&app, &["--expect-body", &format!("app={long}")]);
    assert_fails(&out, &format!("body: \"{}...\" not found", "x".repeat(40)));
}

#[test]
fn only_the_first_10_kib_of_body_count() {
    let within = format!("{}ready", "x".repeat(10 * 1024 - 5));
    let past = format!("{}ready", "x".repeat(10 * 1024 - 4));
    assert_passes(&check(&raw_server(response(200, &within)), &["--expect-body", "app=ready"]));
    let out = check(&raw_server(response(200, &past)), &["--expect-body", "app=ready"]);
    assert_fails(&out, "body: \"ready\" not found");
    assert_passes(&check(&raw_server(until_close(&[&within, "more"])), &["--expect-body", "app=ready"]));
    let out = check(&raw_server(until_close(&[&past])), &["--expect-body", "app=ready"]);
    assert_fails(&out, "body: \"ready\" not found");
}

#[test]
fn text_split_across_reads_and_chunks_is_found() {
    let split = |pieces: &[&str]| {
        let app = raw_server(until_close(pieces));
        check(&app, &["--expect-body", "app=all ready"])
    };
    assert_passes(&split(&["{all re", "ady}"]));
    assert_passes(&split(&["a", "l", "l", " ", "r", "e", "a", "d", "y"]));
    assert_fails(&split(&["all re", "ad", "x"]), "body: \"all ready\" not found");

    let chunked = |pieces: &[&str]| {
        let mut out = vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()];
        out.extend(pieces.iter().map(|p| p.as_bytes().to_vec()));
        check(&raw_server(out), &["--expect-body", "app=all ready"])
    };
    assert_passes(&chunked(&["4\r\n{all\r\n", "3\r\n re\r\n4\r\nady}\r\n", "0\r\n\r\n"]));
    // A chunk boundary inside the text, in one read and split mid-chunk.
    assert_passes(&chunked(&["6\r\nall re\r\n3\r\nady\r\n0\r\n\r\n"]));
    assert_passes(&chunked(&["6\r\nall", " re\r\n3\r", "\nady\r\n0\r\n\r\n"]));
    let out = chunked(&["6\r\nall re\r\n", "1\r\nx\r\n3\r\nady\r\n0\r\n\r\n"]);
    assert_fails(&out, "body: \"all ready\" not found");
}

#[test]
fn reading_stops_once_the_text_is_found() {
    // The rest of this body never comes: the check passes at once anyway.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nready";
                answer(&stream, &[head.as_bytes().to_vec(), vec![b'x'; 10]]);
                thread::sleep(Duration::from_secs(30));
            });
        }
    });
    let started = std::time::Instant::now();
    let out = check(&url, &["--expect-body", "app=ready"]);
    assert_passes(&out);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let out = check(&url, &["--timeout", "app=300ms", "--expect-body", "app=absent"]);
    assert_fails(&out, "timeout after 300ms");
}

#[test]
fn serve_and_run_expect_them_too() {
    let unauthorized = raw_server(response(401, ""));
    let url = format!("app={unauthorized}/");
    let d = Daemon::serve(&["--timeout", "5s", "--expect-status", "app=401", &url]);
    assert_eq!(d.get("/all").status, 200);
    drop(d);
    let d = Daemon::serve(&["--timeout", "5s", "--expect-status", "app=200", &url]);
    let all = d.get("/all?verbose");
    assert_eq!(all.status, 503);
    assert!(all.text().contains("[-]app failed: status 401 (expected 200)\n"), "{}", all.text());
    let json = d.get("/all?format=json").text();
    assert!(json.contains("status 401 (expected 200)"), "{json}");
    let metrics = d.get("/metrics").text();
    assert!(metrics.contains("{check=\"app\",reason=\"status\"} "), "{metrics}");
    drop(d);
    let d = Daemon::serve(&["--timeout", "5s", "--expect-status", "app=401", "--expect-body", "app=ready", &url]);
    let all = d.get("/all/app");
    assert_eq!(all.status, 503);
    assert!(all.text().contains("body: \"ready\" not found"), "{}", all.text());
    let metrics = d.get("/metrics").text();
    assert!(metrics.contains("{check=\"app\",reason=\"body\"} "), "{metrics}");
    drop(d);

    let wait = format!("{unauthorized}/w");
    let name = wait.trim_start_matches("http://").to_string();
    let expect = format!("{name}=401");
    let out = run_cli(&["run", "--wait", &wait, "--expect-status", &expect, "--timeout", "5s", "--", "true"]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
}

#[test]
fn dry_run_lists_them() {
    let out = run_cli(&[
        "check",
        "--dry-run",
        "--expect-status",
        "a=200-299,401",
        "--expect-body",
        "a=it's \"ready\"",
        "a=http://127.0.0.1:1/x",
    ]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("\ncheck-expect-status a 200-299,401\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\ncheck-expect-body a 'it\\'s \"ready\"'\n"), "{}", out.stdout);
}

#[test]
fn bad_options_are_usage_errors_naming_the_argument() {
    let cases = [
        ("--expect-status", "b=200", "no check has that NAME"),
        ("--expect-status", "200", "use NAME=VALUE"),
        ("--expect-status", "a=", "empty"),
        ("--expect-status", "a=2xx", "use codes from 100 to 599"),
        ("--expect-status", "a=600", "use codes from 100 to 599"),
        ("--expect-status", "a=200,", "use codes from 100 to 599"),
        ("--expect-status", "a=299-200", "lower code"),
        ("--expect-status", "db=200", "only an http check"),
        ("--expect-status", "g=200", "only an http check"),
        ("--expect-body", "a=", "empty"),
        ("--expect-body", "b=x", "no check has that NAME"),
        ("--expect-body", "db=x", "only an http check"),
        ("--expect-body", "g=x", "only an http check"),
    ];
    for (flag, value, want) in cases {
        let out =
            run_cli(&["check", flag, value, "a=http://127.0.0.1:1/", "db=tcp://127.0.0.1:1", "g=grpc://127.0.0.1:1"]);
        assert_eq!(out.code(), Some(64), "{flag} {value:?}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("invalid {flag} '{value}'")), "{flag} {value:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{flag} {value:?}: {}", out.stderr);
    }
}

/// An HTTP upstream on a unix socket: answers each request by its path
/// (`/a` redirects to `location`, anything else 200 `ready`) and keeps
/// the request heads it read.
fn unix_server(path: &Path, location: &'static str) -> Arc<Mutex<Vec<String>>> {
    let listener = UnixListener::bind(path).expect("bind a unix socket");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let answer = if head.starts_with("GET /a ") {
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready".to_string()
            };
            seen.lock().unwrap().push(head);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    heads
}

#[test]
fn http_over_a_unix_socket() {
    let dir = TempDir::new();
    let socket = dir.file("app.sock");
    let heads = unix_server(Path::new(&socket), "http://app.internal/b");
    let via = format!("app={socket}");
    // A name that resolves nowhere: no DNS is asked, its host is sent.
    let url = "http://app.internal:8080/ready";
    let out = check(url, &["--unix-socket", &via, "--expect-body", "app=ready", "--expect-status", "app=200"]);
    assert_passes(&out);
    let head = heads.lock().unwrap().pop().expect("a request");
    assert!(head.starts_with("GET /ready HTTP/1.1\r\nHost: app.internal:8080\r\n"), "{head:?}");

    // A redirect to the same host name goes to the same socket.
    assert_passes(&check("http://app.internal/a", &["--unix-socket", &via]));
    let paths: Vec<String> = heads.lock().unwrap().drain(..).map(|h| h.lines().next().unwrap().to_string()).collect();
    assert_eq!(paths, ["GET /a HTTP/1.1", "GET /b HTTP/1.1"]);

    // One to another host passes unfollowed, as kubelet judges it.
    let dir2 = TempDir::new();
    let socket2 = dir2.file("app.sock");
    let heads2 = unix_server(Path::new(&socket2), "http://elsewhere.internal/b");
    assert_passes(&check("http://app.internal/a", &["--unix-socket", &format!("app={socket2}")]));
    assert_eq!(heads2.lock().unwrap().len(), 1);

    // serve and run --wait too.
    let named = format!("app={url}");
    let d = Daemon::serve(&["--timeout", "5s", "--unix-socket", &via, &named]);
    assert_eq!(d.get("/all").status, 200);
    drop(d);
    let out =
        run_cli(&["run", "--wait", url, "--unix-socket", &format!("app.internal:8080/ready={socket}"), "--", "true"]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
}

#[test]
fn unix_socket_failures_say_why() {
    let dir = TempDir::new();
    let missing = dir.file("missing.sock");
    let url = "http://app.internal/";
    let out = check(url, &["--unix-socket", &format!("app={missing}")]);
    assert_fails(&out, "no such socket");
    // A socket file nobody listens on any more.
    let stale = dir.file("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert_fails(&check(url, &["--unix-socket", &format!("app={stale}")]), "connection refused");
    let out = check("grpc://app.internal:50051", &["--unix-socket", &format!("app={stale}")]);
    assert_fails(&out, "connection refused");

    // JSON and /metrics count them as refusals.
    let named = format!("app={url}");
    let d = Daemon::serve(&["--unix-socket", &format!("app={missing}"), &named]);
    let json = d.get("/all?format=json").text();
    assert!(json.contains("no such socket"), "{json}");
    let metrics = d.get("/metrics").text();
    assert!(metrics.contains("{check=\"app\",reason=\"refused\"} "), "{metrics}");
}

#[test]
fn a_socket_without_permission_is_denied() {
    let dir = TempDir::new();
    let socket = dir.file("locked.sock");
    let _heads = unix_server(Path::new(&socket), "/");
    // root connects whatever the mode: run as nobody (the binary and the
    // temp dir are readable and searchable by anyone; std drops the
    // supplementary groups too).
    let run = |mode: u32| {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut command = Command::new(bin());
        command.args([
            "check",
            "--timeout",
            "5s",
            "--unix-socket",
            &format!("app={socket}"),
            "app=http://app.internal/",
        ]);
        if unsafe { libc::geteuid() } == 0 {
            command.uid(65534).gid(65534);
        }
        let out = command.stdin(Stdio::null()).output().expect("run the binary");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = run(0o000);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("[-]app failed: permission denied\n"), "{stdout}");
    // The same user may connect once the mode allows it.
    assert_eq!(run(0o777), (Some(0), "[+]app ok\nall checks passed\n".to_string()));
}

#[test]
fn grpc_over_a_unix_socket() {
    let ready = Command::new("python3")
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        skip_missing_tool("python3 with grpcio and grpcio-health-checking not installed");
        return;
    }
    let dir = TempDir::new();
    let socket = dir.file("grpc.sock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/health_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--unix", &socket])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the health server");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the server says it listens");
    let via = format!("app={socket}");
    let url = "grpc://health.internal:50051";
    assert_passes(&check(url, &["--unix-socket", &via]));
    writeln!(stdin, "set - NOT_SERVING").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_fails(&check(url, &["--unix-socket", &via]), "NOT_SERVING");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn unix_socket_usage() {
    let out = run_cli(&["check", "--dry-run", "--unix-socket", "a=/run/app.sock", "a=http://app.internal/"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("check a http://app.internal/ (unix socket)\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\ncheck-unix-socket a /run/app.sock\n"), "{}", out.stdout);
    let long = format!("a=/{}", "s".repeat(107));
    for (value, want) in [
        ("db=/run/x.sock", "a tcp check"),
        ("a=", "empty"),
        ("z=/x", "no check has that NAME"),
        (long.as_str(), "at most 107 bytes"),
    ] {
        let out = run_cli(&["check", "--unix-socket", value, "a=http://127.0.0.1:1/", "db=tcp://127.0.0.1:1"]);
        assert_eq!(out.code(), Some(64), "{value:?}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("invalid --unix-socket '{value}'")), "{value:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{value:?}: {}", out.stderr);
    }
    let out = run_cli(&["check", "--unix-socket", "a=/x", "--unix-socket", "a=/y", "a=http://127.0.0.1:1/"]);
    assert_eq!(out.code(), Some(64), "{}", out.stderr);
    assert!(out.stderr.contains("given twice"), "{}", out.stderr);
}
