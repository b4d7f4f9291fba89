//! Name resolution in the loop: the real binary in its own mount namespace (a test
//! `/etc/resolv.conf` and `/etc/hosts` bind-mounted over the real ones) asking a DNS server
//! this test runs on a loopback address of its own, port 53.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Whether the binary can be run in a mount namespace of its own here; says why not when it
/// cannot (then the test is skipped, loudly).
fn namespaces(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let why = if unsafe { libc::geteuid() } != 0 {
        Some("not root: mount namespaces and port 53 need root".to_string())
    } else if let Some(tool) = ["unshare", "mount"].into_iter().find(|t| find_program(t).is_none()) {
        support::skip_missing_tool(&format!("{test}: {tool} not installed (util-linux, mount)"));
        return false;
    } else {
        let probe = Command::new("unshare").args(["-m", "true"]).stderr(Stdio::null()).status();
        (!probe.is_ok_and(|s| s.success())).then(|| "unshare -m fails here (no mount namespaces)".to_string())
    };
    if let Some(why) = &why {
        skip(&format!("{test}: {why}"));
    }
    why.is_none()
}

// ---------------------------------------------------------------------------
// A DNS server for the tests
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Answer {
    /// These IPv4 addresses, with this TTL (no AAAA: NODATA for it).
    A(Vec<Ipv4Addr>, u32),
    /// A CNAME to another name of the zone.
    Cname(&'static str),
    /// The name exists but has no address (NODATA for A and AAAA).
    NoData,
    /// SERVFAIL.
    ServFail,
    /// Never answer.
    Silent,
    /// Over UDP a truncated answer (TC) without records; over TCP, these addresses.
    Truncated(Vec<Ipv4Addr>),
    /// These addresses (TTL 0), each real UDP answer to A preceded by forged ones pointing
    /// at [`SPOOFED`]: a wrong ID, a wrong question, and a garbled one with the right ID.
    Spoofed(Vec<Ipv4Addr>),
    /// The A question answered as the first, the AAAA question as the second.
    PerFamily(Family, Family),
}

/// What one address family's question gets in [`Answer::PerFamily`].
#[derive(Clone, Debug)]
enum Family {
    /// These addresses (TTL 0); none is NODATA.
    Addrs(Vec<IpAddr>),
    /// This error code: 2 SERVFAIL, 5 REFUSED.
    Rcode(u16),
    /// These addresses, this long after the question (UDP).
    Late(Duration, Vec<IpAddr>),
    /// Never answer.
    Silent,
}

impl Family {
    /// The part of `answer` for the question of type `qtype`, when it is a [`Answer::PerFamily`].
    fn of(answer: Option<&Answer>, qtype: u16) -> Option<&Family> {
        match (answer, qtype) {
            (Some(Answer::PerFamily(a, _)), 1) => Some(a),
            (Some(Answer::PerFamily(_, aaaa)), 28) => Some(aaaa),
            _ => None,
        }
    }
}

/// Where forged answers point: nothing listens there, so a check that believed one fails.
const SPOOFED: [u8; 4] = [127, 0, 0, 9];

#[derive(Default)]
struct Zone {
    names: HashMap<String, Answer>,
    /// Every question asked: (name, type, over TCP).
    asked: Vec<(String, u16, bool)>,
}

/// A DNS server on `ADDR:53` (UDP and TCP), answering from a zone the test changes as it goes.
/// Names not in the zone are NXDOMAIN.
struct DnsServer {
    ip: Ipv4Addr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
}

/// Loopback addresses for the servers: distinct per process and per test, so parallel tests
/// and parallel runs do not collide on port 53.
fn next_server_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    Ipv4Addr::new(127, 53, (std::process::id() % 250) as u8 + 1, (n % 250) as u8 + 1)
}

impl DnsServer {
    fn start() -> DnsServer {
        for _ in 0..10 {
            let ip = next_server_ip();
            let addr = SocketAddr::new(IpAddr::V4(ip), 53);
            let (Ok(udp), Ok(tcp)) = (UdpSocket::bind(addr), TcpListener::bind(addr)) else { continue };
            let server = DnsServer { ip, zone: Arc::default(), stop: Arc::default() };
            udp.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            tcp.set_nonblocking(true).unwrap();
            let (zone, stop) = (Arc::clone(&server.zone), Arc::clone(&server.stop));
            thread::spawn(move || serve_udp(udp, &zone, &stop));
            let (zone, stop) = (Arc::clone(&server.zone), Arc::clone(&server.stop));
            thread::spawn(move || serve_tcp(tcp, &zone, &stop));
            return server;
        }
        panic!("no free loopback address for the DNS server");
    }

    fn set(&self, name: &str, answer: Answer) {
        self.zone.lock().unwrap().names.insert(name.to_string(), answer);
    }

    /// The questions asked so far for `name`: (type, over TCP).
    fn asked(&self, name: &str) -> Vec<(u16, bool)> {
        self.zone.lock().unwrap().asked.iter().filter(|(n, ..)| n == name).map(|(_, t, tcp)| (*t, *tcp)).collect()
    }

    fn all_asked(&self) -> Vec<String> {
        self.zone.lock().unwrap().asked.iter().map(|(n, ..)| n.clone()).collect()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_udp(socket: UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
        let Some(reply) = answer(&buf[..n], zone, false) else { continue };
        let spoofed = question(&buf[..n]).is_some_and(|(name, qtype, _)| {
            qtype == 1 && matches!(zone.lock().unwrap().names.get(&name), Some(Answer::Spoofed(_)))
        });
        if spoofed {
            for forged in forgeries(&reply) {
                let _ = socket.send_to(&forged, from);
            }
        }
        let late = question(&buf[..n]).and_then(|(name, qtype, _)| {
            match Family::of(zone.lock().unwrap().names.get(&name), qtype) {
                Some(Family::Late(delay, _)) => Some(*delay),
                _ => None,
            }
        });
        if let (Some(delay), Ok(socket)) = (late, socket.try_clone()) {
            // Answered from its own thread, so the other question is answered meanwhile.
            thread::spawn(move || {
                thread::sleep(delay);
                let _ = socket.send_to(&reply, from);
            });
            continue;
        }
        let _ = socket.send_to(&reply, from);
    }
}

fn serve_tcp(listener: TcpListener, zone: &Mutex<Zone>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = serve_tcp_conn(stream, zone);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Answers length-prefixed queries until the client closes.
fn serve_tcp_conn(mut stream: TcpStream, zone: &Mutex<Zone>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut query)?;
        if let Some(reply) = answer(&query, zone, true) {
            stream.write_all(&(reply.len() as u16).to_be_bytes())?;
            stream.write_all(&reply)?;
        }
    }
}

/// Answers an off-path attacker might send instead of `reply` (an A answer whose last
/// record is an address): each must be ignored.
fn forgeries(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut forged = reply.to_vec();
    let at = forged.len() - 4;
    forged[at..].copy_from_slice(&SPOOFED);
    let mut wrong_id = forged.clone();
    wrong_id[0] ^= 0x5a;
    let mut wrong_question = forged.clone();
    wrong_question[13] ^= 0x01; // the first letter of the question's name
    let mut garbled = forged[..14].to_vec(); // the right ID, cut inside the question
    garbled[7] = 1;
    vec![wrong_id, wrong_question, garbled]
}

/// The question of a query: its name (dotted, lower case), type, and where it ends.
fn question(query: &[u8]) -> Option<(String, u16, usize)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos + 1)?, *query.get(pos + 2)?]);
    Some((labels.join("."), qtype, pos + 5))
}

fn encode(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// The reply to `query`, or None to stay silent.
fn answer(query: &[u8], zone: &Mutex<Zone>, tcp: bool) -> Option<Vec<u8>> {
    let (name, qtype, end) = question(query)?;
    let mut zone = zone.lock().unwrap();
    zone.asked.push((name.clone(), qtype, tcp));
    let (mut rcode, mut truncated) = (0u16, false);
    // (owner, type, ttl, rdata)
    let mut records: Vec<(Vec<u8>, u16, u32, Vec<u8>)> = Vec::new();
    let mut owner = name;
    for _link in 0..4 {
        let addrs = |ips: &[Ipv4Addr], ttl: u32| {
            ips.iter().map(|ip| (encode(&owner), 1, ttl, ip.octets().to_vec())).collect::<Vec<_>>()
        };
        match zone.names.get(&owner) {
            None => rcode = 3,
            Some(Answer::Silent) => return None,
            Some(Answer::ServFail) => rcode = 2,
            Some(Answer::Cname(target)) => {
                records.push((encode(&owner), 5, 30, encode(target)));
                owner = target.to_string();
                continue;
            }
            Some(Answer::Truncated(_)) if !tcp => truncated = true,
            Some(Answer::A(ips, ttl)) if qtype == 1 => records.extend(addrs(ips, *ttl)),
            Some(Answer::Truncated(ips)) if qtype == 1 => records.extend(addrs(ips, 30)),
            Some(Answer::Spoofed(ips)) if qtype == 1 => records.extend(addrs(ips, 0)),
            answer @ Some(Answer::PerFamily(..)) => match Family::of(answer, qtype) {
                Some(Family::Silent) => return None,
                Some(Family::Rcode(code)) => rcode = *code,
                Some(Family::Addrs(ips) | Family::Late(_, ips)) => {
                    for ip in ips {
                        let (rtype, rdata) = match ip {
                            IpAddr::V4(v4) => (1, v4.octets().to_vec()),
                            IpAddr::V6(v6) => (28, v6.octets().to_vec()),
                        };
                        records.push((encode(&owner), rtype, 0, rdata));
                    }
                }
                None => {} // another type: NODATA
            },
            Some(_) => {} // NODATA: no record of this type
        }
        break;
    }
    if truncated {
        records.clear();
    }
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]);
    let flags: u16 = 0x8180 | if truncated { 0x0200 } else { 0 } | rcode;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    for (owner, rtype, ttl, rdata) in records {
        out.extend_from_slice(&owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// The binary in a mount namespace with its own resolv.conf and hosts
// ---------------------------------------------------------------------------

/// A test's `/etc/resolv.conf` and `/etc/hosts`, and the wrapper that mounts them.
struct Etc {
    dir: PathBuf,
}

impl Etc {
    fn new(server: &DnsServer, resolv_extra: &str, hosts: &str) -> Etc {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "healthcheck-dns-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("resolv.conf"), format!("# test\nnameserver {}\n{resolv_extra}", server.ip)).unwrap();
        fs::write(dir.join("hosts"), format!("127.0.0.1\tlocalhost\n{hosts}")).unwrap();
        Etc { dir }
    }

    /// `unshare -m sh -c 'mount --bind ...; exec "$@"' sh`: the binary and its arguments follow.
    fn wrapper(&self) -> Vec<String> {
        let script = r#"mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@""#;
        let mut w: Vec<String> = ["unshare", "-m", "sh", "-c", script, "sh"].iter().map(|s| s.to_string()).collect();
        w.push(self.dir.join("resolv.conf").display().to_string());
        w.push(self.dir.join("hosts").display().to_string());
        w
    }

    fn serve(&self, args: &[&str]) -> Daemon {
        let wrapper = self.wrapper();
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        Daemon::serve_under(&wrapper, LOCALHOST_V4, args)
    }

    /// Runs `healthcheck ARGS` to completion (bounded to 10 s): exit code, stdout, stderr,
    /// and how long it took.
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String, Duration) {
        let wrapper = self.wrapper();
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let start = Instant::now();
        let out = run_cli_under(&wrapper, args);
        (out.code(), out.stdout, out.stderr, start.elapsed())
    }
}

impl Drop for Etc {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// An HTTP stub answering `code` on `ip` at `port` (0: any free port).
fn stub_at(ip: &str, port: u16, code: u16) -> Option<Stub> {
    Stub::bind(SocketAddr::new(ip.parse().unwrap(), port), Behaviour::Status(code, "")).ok()
}

/// Two stubs on the same port of two loopback addresses.
fn stub_pair(a: &str, code_a: u16, b: &str, code_b: u16) -> (Stub, Stub) {
    for _ in 0..20 {
        let first = stub_at(a, 0, code_a).expect("bind a stub");
        if let Some(second) = stub_at(b, first.port(), code_b) {
            return (first, second);
        }
    }
    panic!("no port free on both {a} and {b}");
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

#[test]
fn run_waits_for_a_name_that_appears_later() {
    if !namespaces("run_waits_for_a_name_that_appears_later") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "options timeout:1 attempts:1\n", "");
    let app = Stub::start(Behaviour::Status(200, "ok"));
    let url = format!("tcp://db-0.db.test:{}", app.port());
    let zone = Arc::clone(&dns.zone);
    let appear = thread::spawn(move || {
        thread::sleep(Duration::from_secs(2));
        zone.lock().unwrap().names.insert("db-0.db.test".into(), Answer::A(vec![v4("127.0.0.1")], 0));
    });
    let (code, _, stderr, took) = etc.run(&["run", "--wait", &url, "--interval", "200ms", "--", "true"]);
    appear.join().unwrap();
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert!(took >= Duration::from_secs(2), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(dns.asked("db-0.db.test").len() >= 4, "asked again each attempt: {:?}", dns.all_asked());
}

#[test]
fn the_daemon_follows_a_changed_address() {
    if !namespaces("the_daemon_follows_a_changed_address") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    let (old, new) = stub_pair("127.0.0.2", 200, "127.0.0.3", 503);
    dns.set("web.test", Answer::A(vec![v4("127.0.0.2")], 1));
    let url = format!("web=http://web.test:{}/", old.port());
    let daemon = etc.serve(&[&url]);
    // The round the daemon runs at start, then one asked for.
    daemon.wait_for_log_line(&["check_passing", "check=web"], Duration::from_secs(2));
    assert_eq!(old.connections(), 1);
    assert_eq!(daemon.get("/all").status, 200);
    assert!(old.connections() <= 2);
    // Reused within its TTL of 1 s: no new lookup.
    let asked = dns.asked("web.test").len();
    assert_eq!(daemon.get("/all").status, 200);
    assert_eq!(dns.asked("web.test").len(), asked, "asked again within the TTL");
    dns.set("web.test", Answer::A(vec![v4("127.0.0.3")], 0));
    thread::sleep(Duration::from_millis(1100));
    let resp = daemon.get("/all?verbose");
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(resp.text().contains("[-]web failed: status 503"), "{}", resp.text());
    assert_eq!(new.connections(), 1);
    // TTL 0: asked again every round.
    let asked = dns.asked("web.test").len();
    daemon.get("/all");
    assert!(dns.asked("web.test").len() > asked, "a TTL of 0 was reused");
}

#[test]
fn a_silent_server_fails_the_check_at_the_deadline_and_self_stays_quick() {
    if !namespaces("a_silent_server_fails_the_check_at_the_deadline_and_self_stays_quick") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    dns.set("slow.test", Answer::Silent);
    let daemon = etc.serve(&["--timeout", "1500ms", "slow=http://slow.test:9/", "local=http://127.0.0.1:9/"]);
    // The round at start ends at its deadline; the timed round is the next one.
    daemon.wait_for_log_line(&["event=round"], Duration::from_secs(3));
    let addr = daemon.addr;
    let start = Instant::now();
    let all = thread::spawn(move || try_request(addr, "GET", "/all?verbose", Duration::from_secs(5)).unwrap());
    thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(daemon.get("/self").status, 200);
        assert!(t.elapsed() < Duration::from_millis(300), "/self waited {:?}", t.elapsed());
    }
    let resp = all.join().unwrap();
    let took = start.elapsed();
    assert_eq!(resp.status, 503);
    assert!(resp.text().contains("[-]slow failed: dns: timeout\n"), "{}", resp.text());
    assert!(resp.text().contains("[-]local failed: connection refused\n"), "{}", resp.text());
    assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(3), "{took:?}");
    assert!(!dns.asked("slow.test").is_empty());
}

#[test]
fn search_domains_and_ndots() {
    if !namespaces("search_domains_and_ndots") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "search shop.svc.cluster.local svc.cluster.local\noptions ndots:5\n", "");
    let app = Stub::start(Behaviour::Status(200, "ok"));
    dns.set("app.shop.svc.cluster.local", Answer::A(vec![v4("127.0.0.1")], 30));
    dns.set("db.other.svc.cluster.local", Answer::A(vec![v4("127.0.0.1")], 30));
    let port = app.port();
    let (code, stdout, stderr, _) = etc.run(&[
        "check",
        &format!("app=http://app:{port}/"),
        &format!("db=tcp://db.other:{port}"),
        &format!("abs=tcp://app.:{port}"),
    ]);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("[+]app ok"), "{stdout}");
    assert!(stdout.contains("[+]db ok"), "{stdout}");
    // A trailing dot: never searched.
    assert!(stdout.contains("[-]abs failed: dns: no such host"), "{stdout}");
    assert_eq!(
        dns.asked("app.shop.svc.cluster.local").iter().filter(|(t, _)| *t == 1).count(),
        1,
        "{:?}",
        dns.all_asked()
    );
    assert!(dns.asked("app.svc.cluster.local").is_empty(), "searched past the first match");
    assert!(dns.asked("db.other.shop.svc.cluster.local").len() == 2, "{:?}", dns.all_asked());
    assert!(dns.asked("app").len() == 2, "the absolute name was asked as is: {:?}", dns.all_asked());
}

#[test]
fn hosts_file_localhost_and_literals_never_ask_dns() {
    if !namespaces("hosts_file_localhost_and_literals_never_ask_dns") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "127.0.0.1 hosty hosty.shop\n");
    let app = Stub::start(Behaviour::Status(200, "ok"));
    let port = app.port();
    let (code, stdout, stderr, _) = etc.run(&[
        "check",
        &format!("a=http://hosty:{port}/"),
        &format!("b=tcp://HOSTY.shop.:{port}"),
        &format!("c=tcp://localhost:{port}"),
        &format!("d=tcp://127.0.0.1:{port}"),
    ]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(dns.all_asked().is_empty(), "asked {:?}", dns.all_asked());
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    if !namespaces("a_truncated_answer_is_asked_again_over_tcp") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    let app = Stub::start(Behaviour::Status(200, "ok"));
    dns.set("big.test", Answer::Truncated(vec![v4("127.0.0.9"), v4("127.0.0.1")]));
    let (code, stdout, stderr, _) = etc.run(&["check", &format!("big=tcp://big.test:{}", app.port())]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let asked = dns.asked("big.test");
    assert!(asked.contains(&(1, false)) && asked.contains(&(1, true)), "{asked:?}");
}

#[test]
fn dns_failures_have_reasons() {
    if !namespaces("dns_failures_have_reasons") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "options attempts:1\n", "");
    dns.set("broken.test", Answer::ServFail);
    dns.set("empty.test", Answer::NoData);
    dns.set("alias.test", Answer::Cname("empty.test"));
    let (code, stdout, stderr, _) = etc.run(&[
        "check",
        "a=tcp://broken.test:1",
        "b=tcp://empty.test:1",
        "c=tcp://alias.test:1",
        "d=tcp://gone.test:1",
    ]);
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    for line in [
        "[-]a failed: dns: server failure",
        "[-]b failed: dns: no address",
        "[-]c failed: dns: no address",
        "[-]d failed: dns: no such host",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}

#[test]
fn serve_starts_with_a_name_that_does_not_resolve_and_asks_once_per_round() {
    if !namespaces("serve_starts_with_a_name_that_does_not_resolve_and_asks_once_per_round") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    let app = Stub::start(Behaviour::Delay(Duration::from_millis(300), 200));
    let port = app.port();
    let daemon = etc.serve(&[
        &format!("a=http://shared.test:{port}/a"),
        &format!("b=http://shared.test:{port}/b"),
        "c=tcp://missing.test:1",
    ]);
    // The round at start: A and AAAA once for two checks.
    daemon.wait_for_log_line(&["check_failing", "reason=\"dns: no such host\""], Duration::from_secs(2));
    assert_eq!(dns.asked("shared.test").len(), 2, "A and AAAA once for two checks");
    let resp = daemon.get("/all?verbose");
    assert_eq!(resp.status, 503);
    assert!(resp.text().contains("[-]a failed: dns: no such host"), "{}", resp.text());
    assert!(resp.text().contains("[-]c failed: dns: no such host"), "{}", resp.text());
    assert_eq!(dns.asked("shared.test").len(), 4, "A and AAAA once for two checks, in the next round too");

    dns.set("shared.test", Answer::A(vec![v4("127.0.0.1")], 0));
    dns.set("missing.test", Answer::A(vec![v4("127.0.0.1")], 0));
    let before = dns.asked("shared.test").len();
    // Concurrent requests join one round: one lookup per name.
    let addr = daemon.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || try_request(addr, "GET", "/all/a", Duration::from_secs(5)).unwrap().status))
        .collect();
    let codes: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(codes.iter().all(|&c| c == 200), "{codes:?}");
    let rounds = app.connections() / 2;
    assert!(rounds >= 1);
    assert_eq!(dns.asked("shared.test").len() - before, 2 * rounds, "one lookup per name per round");
}

#[test]
fn more_names_than_lookups_at_once_all_resolve_in_one_round() {
    if !namespaces("more_names_than_lookups_at_once_all_resolve_in_one_round") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    let app = Stub::start(Behaviour::Status(200, "ok"));
    let checks: Vec<String> = (0..150)
        .map(|i| {
            dns.set(&format!("n{i}.test"), Answer::A(vec![v4("127.0.0.1")], 0));
            format!("c{i}=tcp://n{i}.test:{}", app.port())
        })
        .collect();
    let mut args = vec!["check", "--timeout", "3s"];
    args.extend(checks.iter().map(String::as_str));
    let (code, stdout, stderr, _) = etc.run(&args);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(dns.all_asked().len(), 300, "A and AAAA once per name");
}

#[test]
fn forged_answers_are_ignored() {
    if !namespaces("forged_answers_are_ignored") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    let app = Stub::start(Behaviour::Status(200, "ok"));
    dns.set("db.test", Answer::Spoofed(vec![v4("127.0.0.1")]));
    let (code, stdout, stderr, _) = etc.run(&["check", &format!("db=tcp://db.test:{}", app.port())]);
    assert_eq!(code, Some(0), "a forged answer was believed:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(app.wait_connections(1, Duration::from_secs(1)), 1);
}

#[test]
fn run_gives_up_naming_the_dns_reason() {
    if !namespaces("run_gives_up_naming_the_dns_reason") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    let (code, _, stderr, _) = etc.run(&[
        "run",
        "--wait",
        "db=tcp://db.test:1",
        "--wait-timeout",
        "1500ms",
        "--interval",
        "200ms",
        "--",
        "true",
    ]);
    assert_eq!(code, Some(69), "stderr:\n{stderr}");
    assert!(stderr.contains("db: dns: no such host"), "the log says why:\n{stderr}");
}

#[test]
fn an_unreachable_server_is_a_server_failure() {
    if !namespaces("an_unreachable_server_is_a_server_failure") {
        return;
    }
    // A loopback address where nothing listens on port 53: the kernel refuses at once.
    let nobody = DnsServer::start();
    let etc = Etc::new(&nobody, "options attempts:1\n", "");
    drop(nobody);
    thread::sleep(Duration::from_millis(100)); // the server's threads see the stop flag
    let (code, stdout, stderr, took) = etc.run(&["check", "--timeout", "3s", "db=tcp://db.test:1"]);
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stdout.contains("[-]db failed: dns: server failure"), "{stdout}");
    assert!(took < Duration::from_secs(2), "waited for a refusal: {took:?}");
}

#[test]
fn verbose_rounds_count_the_lookups() {
    if !namespaces("verbose_rounds_count_the_lookups") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "10.0.0.1 fromhosts\n");
    dns.set("a.test", Answer::A(vec![v4("127.0.0.1")], 0));
    dns.set("b.test", Answer::A(vec![v4("127.0.0.1")], 60));
    let daemon =
        etc.serve(&["--verbose", "a=tcp://a.test:1", "b=tcp://b.test:1", "c=tcp://fromhosts:1", "d=tcp://127.0.0.1:1"]);
    daemon.get("/all");
    daemon.wait_for_log_line(&["event=round", "lookups=2"], Duration::from_secs(2));
    daemon.get("/all");
    // b's answer is reused for 60 s; a's TTL of 0 is asked again.
    daemon.wait_for_log_line(&["event=round", "lookups=1"], Duration::from_secs(2));
}

#[test]
fn one_family_failing_does_not_throw_away_the_others_addresses() {
    if !namespaces("one_family_failing_does_not_throw_away_the_others_addresses") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "", "");
    // Nothing listens on 127.0.0.1 at the IPv6 stub's port: only ::1 can pass.
    let Some(v6) = stub_at("::1", 0, 200) else {
        note("SKIP: one_family_failing_does_not_throw_away_the_others_addresses: no IPv6 loopback");
        return;
    };
    let v4 = stub_at("127.0.0.1", 0, 200).expect("bind a stub");
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    use Family::{Addrs, Late, Rcode, Silent};
    dns.set("servfail-a.test", Answer::PerFamily(Rcode(2), Addrs(vec![ip("::1")])));
    dns.set("refused-a.test", Answer::PerFamily(Rcode(5), Addrs(vec![ip("::1")])));
    dns.set("late-a.test", Answer::PerFamily(Late(Duration::from_millis(80), vec![ip("127.0.0.1")]), Rcode(2)));
    // Held until AAAA's try times out (5 s), this one would fail at the check's 1 s timeout.
    dns.set("silent-aaaa.test", Answer::PerFamily(Addrs(vec![ip("127.0.0.1")]), Silent));
    let (code, stdout, stderr, _) = etc.run(&[
        "check",
        &format!("servfail=http://servfail-a.test:{}/", v6.port()),
        &format!("refused=http://refused-a.test:{}/", v6.port()),
        &format!("late=http://late-a.test:{}/", v4.port()),
        &format!("silent=http://silent-aaaa.test:{}/", v4.port()),
    ]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(v6.wait_connections(2, Duration::from_secs(1)), 2);
}

#[test]
fn with_no_address_from_either_family_the_most_telling_reason() {
    if !namespaces("with_no_address_from_either_family_the_most_telling_reason") {
        return;
    }
    let dns = DnsServer::start();
    let etc = Etc::new(&dns, "options attempts:1\n", "");
    use Family::{Addrs, Rcode};
    dns.set("both.test", Answer::PerFamily(Rcode(2), Rcode(5)));
    dns.set("nodata-a.test", Answer::PerFamily(Addrs(vec![]), Rcode(2)));
    dns.set("nodata.test", Answer::PerFamily(Addrs(vec![]), Addrs(vec![])));
    let (code, stdout, stderr, _) =
        etc.run(&["check", "both=tcp://both.test:1", "nodata-a=tcp://nodata-a.test:1", "nodata=tcp://nodata.test:1"]);
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    for line in [
        "[-]both failed: dns: server failure",
        // The AAAA error says more than A's NODATA: its addresses may exist.
        "[-]nodata-a failed: dns: server failure",
        "[-]nodata failed: dns: no address",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}
