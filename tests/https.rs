//! `https://` checks through the real binary against hostile TLS servers on loopback: garbage
//! after the ServerHello, a handshake message claiming 16 MiB, a certificate chain of several
//! MiB, a handshake one byte at a time. Each fails within the deadline, the daemon's memory stays
//! bounded, and `/self` keeps answering while they run. (tests/kubelet.rs compares the ordinary
//! HTTPS verdicts with kubelet's; tests/tls.rs tests the TLS machine alone.)
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{run_cli, skip_missing_tool, Daemon, TempDir};

/// Reads the client's first flight (the ClientHello) so that what follows is an answer to it.
fn read_hello(conn: &mut TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
}

/// A server on 127.0.0.1 that runs `act` on each connection in a thread of its own, until the
/// test ends.
fn server(act: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || act(conn));
        }
    });
    port
}

/// A handshake record (type 22, TLS 1.2 on the wire) holding `payload`.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![22, 3, 3];
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A handshake message header: `kind` and a 24-bit length.
fn message_header(kind: u8, len: u32) -> Vec<u8> {
    let l = len.to_be_bytes();
    vec![kind, l[1], l[2], l[3]]
}

/// A ServerHello claiming 16 MiB, then bytes as long as the client reads.
fn huge_message(mut conn: TcpStream) {
    read_hello(&mut conn);
    let mut first = message_header(2, 0xff_ffff);
    first.extend_from_slice(&[0x42; 16_000]);
    let _ = conn.write_all(&record(&first));
    let filler = record(&[0x42; 16_000]);
    for _ in 0..1100 {
        if conn.write_all(&filler).is_err() {
            return;
        }
    }
}

/// A Certificate message of 4 MiB in records of 16 KB, after the ClientHello (no ServerHello:
/// the client must refuse it either way, without holding it).
fn huge_chain(mut conn: TcpStream) {
    read_hello(&mut conn);
    let mut first = message_header(11, 4 << 20);
    first.extend_from_slice(&[0x30; 16_000]);
    let _ = conn.write_all(&record(&first));
    let filler = record(&[0x30; 16_000]);
    for _ in 0..(4 << 20) / 16_000 {
        if conn.write_all(&filler).is_err() {
            return;
        }
    }
}

/// A valid-looking record header, then one byte every 200 ms for ever.
fn byte_by_byte(mut conn: TcpStream) {
    read_hello(&mut conn);
    for b in record(&[2; 200]).iter().cycle() {
        if conn.write_all(&[*b]).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// An HTTPS server on 127.0.0.1 (tests/kubelet/tls_server.py: Python's `ssl`, a thread per
/// connection, its port chosen by itself), killed when dropped; None (said) without openssl.
struct TlsServer(Child, u16);

impl TlsServer {
    fn start(dir: &TempDir) -> Option<TlsServer> {
        let (cert, key) = (dir.file("c.pem"), dir.file("k.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=elsewhere.test", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", &key, "-out", &cert])
            .output()
            .is_ok_and(|o| o.status.success());
        if !made {
            skip_missing_tool("openssl not installed (Debian: apt-get install openssl)");
            return None;
        }
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubelet/tls_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([&cert, &key, "any", "no", "ok"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 tests/kubelet/tls_server.py");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut out, &mut line).expect("the server says its port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("tls_server.py printed {line:?}"));
        Some(TlsServer(child, port))
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A proxy to `upstream` that passes the server's first record (its ServerHello) and then
/// sends garbage instead of the rest.
fn garbage_after_server_hello(upstream: u16) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for mut client in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let Ok(mut server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)) else { return };
                let mut buf = [0u8; 4096];
                read_hello_into(&mut client, &mut server, &mut buf);
                let mut header = [0u8; 5];
                if server.read_exact(&mut header).is_err() {
                    return;
                }
                let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
                if server.read_exact(&mut body).is_err() {
                    return;
                }
                let _ = client.write_all(&header);
                let _ = client.write_all(&body);
                let _ = client.write_all(&[0x17, 3, 3, 0, 40]);
                let _ = client.write_all(&[0xa5; 40]);
                let _ = client.read(&mut buf);
            });
        }
    });
    port
}

fn read_hello_into(client: &mut TcpStream, server: &mut TcpStream, buf: &mut [u8]) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    if let Ok(n) = client.read(buf) {
        let _ = server.write_all(&buf[..n]);
    }
}

/// The daemon's resident set now and at its peak, in KiB.
fn memory(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn hostile_tls_servers_fail_within_the_deadline_with_bounded_memory() {
    let dir = TempDir::new();
    let Some(tls_server) = TlsServer::start(&dir) else { return };
    let garbage = garbage_after_server_hello(tls_server.1);
    let huge = server(huge_message);
    let chain = server(huge_chain);
    let slow = server(byte_by_byte);
    let d = Daemon::serve(&[
        "--timeout",
        "2s",
        &format!("good=https://localhost:{}/", tls_server.1),
        &format!("garbage=https://localhost:{garbage}/"),
        &format!("huge=https://localhost:{huge}/"),
        &format!("chain=https://localhost:{chain}/"),
        &format!("slow=https://localhost:{slow}/"),
    ]);
    let (_, peak_before) = memory(d.pid());

    // /self answers quickly all through a round.
    let done = Arc::new(AtomicBool::new(false));
    let addr = d.addr;
    let watcher = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut worst = Duration::ZERO;
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                let mut conn = TcpStream::connect(addr).expect("connect to the daemon");
                conn.write_all(b"GET /self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                let mut answer = String::new();
                let _ = conn.read_to_string(&mut answer);
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                worst = worst.max(started.elapsed());
                thread::sleep(Duration::from_millis(20));
            }
            worst
        })
    };
    let started = Instant::now();
    let resp = d.get("/all?verbose");
    let took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let worst = watcher.join().expect("the /self watcher");
    let text = resp.text();
    let (rss, peak) = memory(d.pid());
    eprintln!("{text}took {took:?}; /self at worst {worst:?}; VmRSS {rss} KiB, VmHWM {peak_before} -> {peak} KiB");

    assert!(text.contains("[+]good ok"), "{text}");
    assert!(text.contains("[-]garbage failed: tls: "), "{text}");
    assert!(text.contains("[-]huge failed: tls: handshake failed: message too large"), "{text}");
    assert!(text.contains("[-]chain failed: tls: handshake failed: "), "{text}");
    assert!(text.contains("[-]slow failed: timeout after 2s"), "{text}");
    assert!(took < Duration::from_secs(4), "the deadline did not hold: {took:?}");
    assert!(worst < Duration::from_millis(500), "/self stalled for {worst:?}");
    // A whole round of hostile handshakes adds well under 1 MiB at its peak (the test build's
    // baseline is a debug binary on glibc; the shipped one idles under 1 MiB in all).
    assert!(peak <= peak_before + 1024, "VmHWM {peak_before} -> {peak} KiB");
}

#[test]
fn on_exit_and_wait_take_https() {
    let dir = TempDir::new();
    let Some(tls_server) = TlsServer::start(&dir) else { return };
    let url = format!("https://localhost:{}/", tls_server.1);
    // The server answers any method with 200: the callback passes.
    let out = run_cli(&["run", "--wait", &url, "--on-exit", &url, "--", "true"]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("failed"), "{}", out.stderr);
    let out = run_cli(&["check", "--dry-run", &format!("tls={url}")]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains(&format!("check tls {url} (127.0.0.1:{0},[::1]:{0})", tls_server.1)), "{}", out.stdout);
}
