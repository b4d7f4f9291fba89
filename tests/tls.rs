//! The TLS client machine against `openssl s_server` on loopback, driven by a small blocking loop, and the heap one connection holds.
#![cfg(feature = "tls")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use healthcheck::tls::{self, Alpn, Client, Read, TlsError};
use support::{free_port, skip_missing_tool, IO_TIMEOUT, LOCALHOST_V4};

// ---------------------------------------------------------------------------
// Heap accounting: only what this thread allocates inside `counted` is counted
// ---------------------------------------------------------------------------

struct Counting;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = ACTIVE.try_with(|active| {
        if active.get() {
            LIVE.with(|live| {
                live.set(live.get() + delta);
                PEAK.with(|peak| peak.set(peak.get().max(live.get())));
            });
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; only sizes are noted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` with this thread's allocations counted.
fn counted<T>(f: impl FnOnce() -> T) -> T {
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    out
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn reset_peak() {
    PEAK.with(|peak| peak.set(LIVE.with(Cell::get)));
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

// ---------------------------------------------------------------------------
// A blocking driver over the machine
// ---------------------------------------------------------------------------

/// Heap the client held, in bytes.
#[derive(Debug, Default)]
struct Memory {
    /// After `Client::new` (the ClientHello queued).
    created: isize,
    /// The most at any moment of the handshake.
    handshake_peak: isize,
    /// Once the handshake is done.
    established: isize,
    /// The most at any moment after the handshake (reading the response).
    reading_peak: isize,
}

/// One `GET /` over TLS to 127.0.0.1:`port`, the server named `host`; returns the response and the
/// heap the client held.
fn get(port: u16, host: &str) -> Result<(Vec<u8>, Memory), TlsError> {
    tls::config(Alpn::Http1); // shared by every connection: built before counting
    let mut sock = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    sock.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let base = live();
    reset_peak();
    let mut client = counted(|| Client::new(host, Alpn::Http1))?;
    let mut memory = Memory { created: live() - base, ..Memory::default() };
    let request = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    assert_eq!(counted(|| client.send(request)), request.len());
    let mut response = Vec::new();
    let mut net = [0; 4096];
    let mut plain = [0; 4096];
    let mut handshaking = true;
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < IO_TIMEOUT, "no answer within {IO_TIMEOUT:?}");
        counted(|| client.transmit(&mut sock)).expect("send");
        let n = sock.read(&mut net).expect("read");
        if n == 0 {
            counted(|| client.receive_eof())?;
        }
        let mut fed = 0;
        loop {
            fed += counted(|| client.receive(&net[fed..n]))?;
            loop {
                match counted(|| client.read(&mut plain))? {
                    Read::Data(k) => response.extend_from_slice(&plain[..k]),
                    Read::Pending => break,
                    Read::Closed => return Ok((response, finish(memory, base, handshaking))),
                }
            }
            if fed == n {
                break;
            }
        }
        if handshaking && !client.is_handshaking() {
            handshaking = false;
            memory.handshake_peak = peak() - base;
            memory.established = live() - base;
            reset_peak();
        }
        if n == 0 {
            return Ok((response, finish(memory, base, handshaking)));
        }
    }
}

fn finish(mut memory: Memory, base: isize, handshaking: bool) -> Memory {
    assert!(!handshaking, "closed during the handshake without an error");
    memory.reading_peak = peak() - base;
    memory
}

// ---------------------------------------------------------------------------
// openssl s_server
// ---------------------------------------------------------------------------

/// `openssl` on PATH, or the reason the test skips (fails on CI).
fn openssl() -> bool {
    let found = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !found {
        skip_missing_tool("openssl not installed (Debian: apt-get install openssl)");
    }
    found
}

/// A directory of its own for one test's keys and certificates, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("healthcheck-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A key and a self-signed certificate for `elsewhere.test` (never the name asked for), made by
/// `openssl req`: `rsa:2048`, `ec:P-256` or `ec:P-384`. Returns (cert, key) paths, PEM.
fn openssl_certificate(dir: &Path, kind: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{kind}.crt")), dir.join(format!("{kind}.key")));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=elsewhere.test", "-newkey"]);
    match kind.split_once(':') {
        Some(("ec", curve)) => cmd.args(["ec", "-pkeyopt", &format!("ec_paramgen_curve:{curve}")]),
        _ => cmd.arg(kind),
    };
    let out = cmd.arg("-keyout").arg(&key).arg("-out").arg(&cert).stderr(Stdio::piped()).output().expect("openssl req");
    assert!(out.status.success(), "openssl req {kind}: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// An ECDSA P-256 certificate that expired in 2020, written as DER files (rcgen makes it: openssl
/// 3.0's `req` refuses dates in the past).
fn expired_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["elsewhere.test".into()]).expect("params");
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let cert = params.self_signed(&key).expect("cert");
    let (cert_path, key_path) = (dir.join("expired.der"), dir.join("expired.key.der"));
    std::fs::write(&cert_path, cert.der()).expect("write cert");
    std::fs::write(&key_path, key.serialize_der()).expect("write key");
    (cert_path, key_path)
}

/// `openssl s_server -www` on 127.0.0.1, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(cert: &Path, key: &Path, args: &[&str]) -> Server {
        let port = free_port(LOCALHOST_V4);
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}")]);
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
        if cert.extension().is_some_and(|e| e == "der") {
            cmd.args(["-certform", "DER", "-keyform", "DER"]);
        }
        let child = cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let server = Server { child: child.expect("spawn openssl s_server"), port };
        let deadline = Instant::now() + IO_TIMEOUT;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not listen on {port}");
            thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn any_certificate_passes_over_tls12_and_tls13() {
    if !openssl() {
        return;
    }
    let dir = TempDir::new("any");
    let mut certs: Vec<(&str, (PathBuf, PathBuf))> =
        ["rsa:2048", "ec:P-256", "ec:P-384"].into_iter().map(|k| (k, openssl_certificate(&dir.0, k))).collect();
    certs.push(("expired", expired_certificate(&dir.0)));
    for (kind, (cert, key)) in &certs {
        for version in ["-tls1_2", "-tls1_3"] {
            let server = Server::start(cert, key, &[version]);
            // A name (SNI sent, not the certificate's) and an IP literal (no SNI).
            for host in ["localhost", "127.0.0.1"] {
                let (response, memory) =
                    get(server.port, host).unwrap_or_else(|e| panic!("{kind} {version} {host}: {e}"));
                assert!(response.starts_with(b"HTTP/1.0 200 ok"), "{kind} {version} {host}");
                eprintln!("memory {kind} {version} {host}: {memory:?}");
            }
        }
    }
}

#[test]
fn a_client_certificate_demand_fails_with_the_alert() {
    if !openssl() {
        return;
    }
    let dir = TempDir::new("clientcert");
    let (cert, key) = openssl_certificate(&dir.0, "ec:P-256");
    for (version, reason) in
        [("-tls1_3", "tls: alert certificate required"), ("-tls1_2", "tls: alert handshake failure")]
    {
        let server = Server::start(&cert, &key, &[version, "-Verify", "1"]);
        let err = get(server.port, "localhost").map(|_| ()).expect_err(version);
        assert_eq!(err.to_string(), reason, "{version}");
    }
}

#[test]
fn a_plain_http_server_fails_at_once() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0; 1024];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    let err = get(port, "localhost").map(|_| ()).expect_err("not TLS");
    assert_eq!(err.to_string(), "tls: handshake failed: not a TLS server");
    server.join().expect("server thread");
}

/// What one TLS connection holds, published in README "Memory" and the module's doc.
#[test]
fn heap_per_connection_is_bounded() {
    if !openssl() {
        return;
    }
    let dir = TempDir::new("memory");
    for kind in ["rsa:2048", "ec:P-256"] {
        let (cert, key) = openssl_certificate(&dir.0, kind);
        for version in ["-tls1_2", "-tls1_3"] {
            let server = Server::start(&cert, &key, &[version]);
            let (_, memory) = get(server.port, "localhost").expect("get");
            eprintln!("memory {kind} {version}: {memory:?}");
            // The record reader grows 4 KiB per read up to one record (18 KiB); handshake state
            // comes and goes; nothing near the 64 KiB rustls allows a single handshake message.
            assert!(memory.created < 8 * 1024, "{kind} {version}: {memory:?}");
            assert!(memory.handshake_peak < 40 * 1024, "{kind} {version}: {memory:?}");
            assert!(memory.established < 32 * 1024, "{kind} {version}: {memory:?}");
            assert!(memory.reading_peak < 40 * 1024, "{kind} {version}: {memory:?}");
        }
    }
}

/// A certificate chain over the 64 KiB rustls allows one handshake message: refused as soon as
/// the message's header says so, holding no more than that 64 KiB of record reader.
#[test]
fn an_oversized_certificate_chain_fails_with_bounded_memory() {
    if !openssl() {
        return;
    }
    let dir = TempDir::new("chain");
    let (cert, key) = openssl_certificate(&dir.0, "ec:P-256");
    let (extra, _) = openssl_certificate(&dir.0, "rsa:2048");
    // 100 copies of an RSA certificate: about 80 KiB of chain.
    let pem = std::fs::read(&extra).expect("read cert");
    let chain = dir.0.join("chain.pem");
    std::fs::write(&chain, pem.repeat(100)).expect("write chain");
    let server = Server::start(&cert, &key, &["-cert_chain", chain.to_str().expect("utf-8 path")]);
    let base = live();
    reset_peak();
    let err = get(server.port, "localhost").map(|_| ()).expect_err("chain too large");
    let held = peak() - base;
    assert_eq!(err.to_string(), "tls: handshake failed: message too large");
    eprintln!("memory with an 80 KiB chain: peak {held} bytes");
    assert!(held < 90 * 1024, "peak {held} bytes");
}
