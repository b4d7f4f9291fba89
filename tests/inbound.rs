//! Inbound hardening, against the real daemon: an answer never reaches the
//! wrong client, `/self` always gets a slot, pipelining is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::sockets::{reset, send_queued, set_receive_buffer, status_kib, unread};
use support::*;

fn named(name: &str, stub: &Stub) -> String {
    format!("{name}={}", stub.url("/"))
}

/// A client asks `/all?exclude=slow&verbose`, whose answer is ready at once,
/// and resets before it can be written; a second client then asks `/self`.
/// The second must read its own answer and nothing else, every time.
#[test]
fn an_answer_never_reaches_another_client() {
    let app = Stub::start(Behaviour::Status(200, "ok\n"));
    let slow = Stub::start(Behaviour::Hang);
    let d = Daemon::serve(&["--timeout", "10s", &named("app", &app), &named("slow", &slow)]);
    for attempt in 0..20 {
        let mut first = d.conn();
        first.send_request("GET", "/all?exclude=slow&verbose");
        reset(first.stream);
        thread::sleep(Duration::from_millis(20));

        let mut second = d.conn();
        second.send_request("GET", "/self");
        let resp = second.read_response(false);
        assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"), "attempt {attempt}");
        assert!(!second.is_closed_by_peer(Duration::from_millis(50)), "attempt {attempt}: closed");
    }
    // And the other way round: a stale 503 must not reach a /self probe.
    for attempt in 0..10 {
        let mut first = d.conn();
        first.send_request("GET", "/all/nosuch"); // answered 404 at once
        reset(first.stream);
        let mut second = d.conn();
        second.send_request("GET", "/self");
        let resp = second.read_response(false);
        assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"), "attempt {attempt}");
    }
}

/// Every slot held by connections pipelining `/all` behind a check that
/// hangs: new connections still get answered.
#[test]
fn self_gets_a_slot_when_every_connection_waits() {
    let hang = Stub::start(Behaviour::Hang);
    let d = Daemon::serve(&["--max-connections", "8", "--timeout", "10s", &named("hang", &hang)]);
    let pipelined: Vec<u8> = (0..100).flat_map(|_| b"GET /all HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()).collect();
    let mut holders: Vec<Conn> = (0..8)
        .map(|_| {
            let mut conn = d.conn();
            conn.send(&pipelined);
            conn
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    for attempt in 0..10 {
        let started = Instant::now();
        let resp = try_request(d.addr, "GET", "/self", Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("attempt {attempt}: /self failed: {e}"));
        assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));
        assert!(started.elapsed() < Duration::from_secs(2));
        // The evicted ones come back, as a flooding client would.
        holders.push({
            let mut conn = d.conn();
            conn.send(&pipelined);
            conn
        });
    }
    // A fresh /all gets a slot too (and waits for its round, like any other).
    let mut conn = d.conn();
    conn.send_request("GET", "/all/hang");
    thread::sleep(Duration::from_millis(100));
    assert!(!conn.is_closed_by_peer(Duration::from_millis(100)), "a new /all was refused");
}

/// Clients pipeline thousands of `/metrics` and never read: what the
/// daemon holds and leaves queued in the kernel stays bounded, and `/self`
/// answers meanwhile.
#[test]
fn unread_pipelined_answers_are_bounded() {
    const CLIENTS: usize = 20;
    const REQUESTS: usize = 2000;
    let d = Daemon::serve(&["self=tcp://127.0.0.1:1"]);
    let request = b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
    let pipelined: Vec<u8> = (0..REQUESTS).flat_map(|_| request.to_vec()).collect();
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let stream = TcpStream::connect(d.addr).expect("connect");
            // Fixed, so the bound does not depend on the machine's autotuning.
            set_receive_buffer(&stream, 64 * 1024);
            stream
        })
        .collect();
    let writers: Vec<_> = clients
        .iter()
        .map(|s| {
            let mut s = s.try_clone().unwrap();
            let pipelined = pipelined.clone();
            s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
            // The daemon stops reading once its answers are not read: the
            // rest of the requests may never be taken.
            thread::spawn(move || drop(s.write_all(&pipelined)))
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let resp = try_request(d.addr, "GET", "/self", Duration::from_secs(2)).expect("/self under the flood");
        assert_eq!(resp.status, 200);
        worst = worst.max(started.elapsed());
    }
    assert!(worst < Duration::from_secs(2), "/self took {worst:?}");
    for w in writers {
        w.join().unwrap();
    }
    let queued = send_queued(d.addr.port()) + clients.iter().map(unread).sum::<usize>();
    // Per client: the daemon's fixed send buffer and the client's receive
    // buffer, each doubled by the kernel's accounting, and an answer in flight.
    let bound = CLIENTS * 512 * 1024;
    assert!(queued < bound, "{queued} bytes of answers queued in the kernel for {CLIENTS} clients");
    let hwm = status_kib(d.pid(), "VmHWM");
    assert!(hwm < 16 * 1024, "daemon VmHWM {hwm} KiB");
    // Reading drains them: the daemon answers every request eventually.
    let mut first = clients.into_iter().next().unwrap();
    first.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = first.read(&mut buf).expect("read the answers");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
}

/// A keep-alive connection is closed after 1,000 requests, as nginx's
/// `keepalive_requests`, so it cannot hold a slot forever.
#[test]
fn a_keep_alive_connection_ends_after_1000_requests() {
    let d = Daemon::serve(&["self=tcp://127.0.0.1:1"]);
    let mut conn = d.conn();
    let batch: Vec<u8> = (0..100).flat_map(|_| b"GET /self HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()).collect();
    for i in 0..10 {
        conn.send(&batch);
        for j in 0..100 {
            let resp = conn.read_response(false);
            assert_eq!(resp.status, 200);
            let last = i == 9 && j == 99;
            assert_eq!(resp.header("Connection") == Some("close"), last, "request {}", i * 100 + j + 1);
        }
    }
    assert!(conn.is_closed_by_peer(Duration::from_secs(2)));
}

/// `--min-interval` spaces rounds out under a flood of `/all`; every
/// request is still answered from a probe started after it arrived.
#[test]
fn min_interval_spaces_rounds_under_a_flood() {
    let app = Stub::start(Behaviour::Status(200, "ok\n"));
    let d = Daemon::serve(&["--min-interval", "400ms", &named("app", &app)]);
    let before = app.connections();
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        let resp = d.get("/all");
        assert_eq!(resp.status, 200);
        answered += 1;
    }
    let probes = app.connections() - before;
    assert!(answered >= 2, "{answered} answers");
    // 1 s at one round per 400 ms: at most 4 rounds (one may have been due at once).
    assert!(probes <= 4, "{probes} probes in 1 s with --min-interval 400ms");
}

#[test]
fn min_interval_is_checked() {
    let out = run_cli(&["serve", "--min-interval", "soon", "self=http://127.0.0.1:1/"]);
    assert_eq!(out.code(), Some(64), "{}", out.stderr);
    assert!(out.stderr.contains("--min-interval"), "{}", out.stderr);
}
