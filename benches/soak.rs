//! Soak and fault scenarios against the release binary on loopback, one figure each with its
//! target: `cargo bench --bench soak [-- --quick] [SCENARIO...]` (see README "Reliability").
//!
//! Scenarios: `slowloris`, `chaos`, `fdlimit`, `restart`, `pid1`, `stale`, `slots`, `pipeline`. Every loop is bounded in
//! count and time, and every socket is on 127.0.0.1. Exits 1 when a target is missed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use healthcheck_fuzz::mutate::Rng;
use support::{sockets, try_request, wait_child, Conn, Daemon};

/// A probe that takes longer than this missed (kubelet's default probe timeout).
const PROBE_DEADLINE: Duration = Duration::from_secs(1);
/// The interval of the well-behaved client.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// The probe timeout the chaos daemon runs with: long enough for a loaded loopback, short
/// enough that hanging upstreams do not dominate the run.
const CHAOS_TIMEOUT: &str = "200ms";

struct Settings {
    quick: bool,
}

impl Settings {
    fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

type Scenario = fn(&Settings) -> Figure;

/// One scenario's headline: what was measured, against which target.
struct Figure {
    name: &'static str,
    text: String,
    met: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let settings = Settings { quick: args.iter().any(|a| a == "--quick") };
    let wanted: Vec<&str> = args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    raise_fd_limit(16_384);
    let scenarios: [(&str, Scenario); 5] =
        [("slowloris", slowloris), ("chaos", chaos), ("fdlimit", fd_limit), ("restart", restart), ("pid1", pid1)];
    let scenarios =
        scenarios.into_iter().chain([("stale", stale as Scenario), ("slots", slots), ("pipeline", pipeline)]);
    let mut figures = Vec::new();
    for (name, run) in scenarios {
        if wanted.is_empty() || wanted.contains(&name) {
            let start = Instant::now();
            let figure = run(&settings);
            println!(
                "{:<9} {} [{}, {:.0}s]",
                figure.name,
                figure.text,
                verdict(figure.met),
                start.elapsed().as_secs_f64()
            );
            figures.push(figure);
        }
    }
    let missed: Vec<&str> = figures.iter().filter(|f| !f.met).map(|f| f.name).collect();
    if missed.is_empty() {
        println!("soak: every target met");
    } else {
        println!("soak: targets missed: {}", missed.join(", "));
        std::process::exit(1);
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "target met"
    } else {
        "TARGET MISSED"
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// A client asks for an answer that is ready at once and resets before it is written; another
/// then asks `/self`. Any byte of the first answer reaching the second client is a wrong answer
/// (a stale 200 from `/all` would pass a failing pod).
fn stale(s: &Settings) -> Figure {
    let tries = s.pick(2000, 300);
    let app = support::Stub::ok();
    let slow = support::Stub::start(support::Behaviour::Hang);
    let daemon =
        Daemon::serve(&["--timeout", "30s", &format!("app={}", app.url("/")), &format!("slow={}", slow.url("/"))]);
    let mut wrong = 0;
    for i in 0..tries {
        let mut first = Conn::open(daemon.addr);
        // Ready at once: a 200 (app passes, slow excluded) or a 404.
        first.send_request("GET", if i % 2 == 0 { "/all?exclude=slow&verbose" } else { "/all/nosuch" });
        sockets::reset(first.stream);
        let mut second = Conn::open(daemon.addr);
        second.send_request("GET", "/self");
        let right = second.try_read_response(false).is_ok_and(|r| r.status == 200 && r.text() == "ok\n");
        if !right || second.is_closed_by_peer(Duration::from_millis(1)) {
            wrong += 1;
        }
    }
    Figure {
        name: "stale",
        text: format!(
            "{tries} answers abandoned by a reset, each followed by a /self: {wrong} wrong answers (target 0)"
        ),
        met: wrong == 0,
    }
}

/// `--max-connections 64`, all 64 held by connections pipelining 100 `/all` behind a check that
/// hangs, reconnecting whenever dropped, while a client probes `/self` every 100 ms.
fn slots(s: &Settings) -> Figure {
    let run_for = s.pick(Duration::from_secs(20), Duration::from_secs(5));
    let hang = support::Stub::start(support::Behaviour::Hang);
    let daemon = Daemon::serve(&["--max-connections", "64", "--timeout", "10s", &format!("hang={}", hang.url("/"))]);
    let stop = Arc::new(AtomicBool::new(false));
    let holders = spawn_bounded(&stop, run_for, {
        let addr = daemon.addr;
        move |stop| {
            let pipelined: Vec<u8> = (0..100).flat_map(|_| b"GET /all HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()).collect();
            let mut held: Vec<TcpStream> = Vec::new();
            let mut opened = 0;
            while !stop.load(Ordering::SeqCst) {
                // Keep 64 open: replace the ones the daemon dropped.
                held.retain(|c| {
                    let mut b = [0u8; 1];
                    c.set_nonblocking(true).is_ok()
                        && matches!((&*c).read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock)
                });
                while held.len() < 64 {
                    let Ok(mut c) = TcpStream::connect(addr) else { break };
                    let _ = c.write_all(&pipelined);
                    held.push(c);
                    opened += 1;
                }
                thread::sleep(Duration::from_millis(20));
            }
            opened
        }
    });
    thread::sleep(Duration::from_millis(500)); // every slot taken
    let mut probes = Probes { total: 0, missed: 0, slowest: Duration::ZERO };
    let start = Instant::now();
    while start.elapsed() < run_for - Duration::from_millis(500) {
        let sent = Instant::now();
        let ok = try_request(daemon.addr, "GET", "/self", PROBE_DEADLINE).is_ok_and(|r| r.status == 200);
        let took = sent.elapsed();
        probes.total += 1;
        probes.slowest = probes.slowest.max(took);
        if !ok || took > PROBE_DEADLINE {
            probes.missed += 1;
        }
        thread::sleep(PROBE_EVERY.saturating_sub(took));
    }
    stop.store(true, Ordering::SeqCst);
    let opened = holders.join().unwrap();
    Figure {
        name: "slots",
        text: format!(
            "64 of 64 slots held by connections pipelining /all behind a hanging check ({opened} opened): {} probes of \
             /self, {} refused, late (> 1s) or failed (target 0), slowest {} ms",
            probes.total,
            probes.missed,
            probes.slowest.as_millis()
        ),
        met: probes.missed == 0,
    }
}

/// 100 clients each pipelining 2,000 `/metrics` and never reading, while a client probes
/// `/self`: its worst latency, the unread answers queued in the kernel, the daemon's VmHWM.
fn pipeline(s: &Settings) -> Figure {
    const CLIENTS: usize = 100;
    const REQUESTS: usize = 2000;
    let run_for = s.pick(Duration::from_secs(10), Duration::from_secs(4));
    let daemon = Daemon::serve(&["self=tcp://127.0.0.1:1"]);
    let pipelined: Arc<Vec<u8>> =
        Arc::new((0..REQUESTS).flat_map(|_| b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()).collect());
    let clients: Vec<TcpStream> = (0..CLIENTS).filter_map(|_| TcpStream::connect(daemon.addr).ok()).collect();
    let writers: Vec<_> = clients
        .iter()
        .filter_map(|c| c.try_clone().ok())
        .map(|mut c| {
            let pipelined = Arc::clone(&pipelined);
            let _ = c.set_write_timeout(Some(run_for));
            // The daemon stops reading what it cannot answer: the rest may never be taken.
            thread::spawn(move || drop(c.write_all(&pipelined)))
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    let mut worst = Duration::ZERO;
    let mut failed = 0;
    let start = Instant::now();
    while start.elapsed() < run_for {
        let sent = Instant::now();
        if !try_request(daemon.addr, "GET", "/self", PROBE_DEADLINE).is_ok_and(|r| r.status == 200) {
            failed += 1;
        }
        worst = worst.max(sent.elapsed());
        thread::sleep(PROBE_EVERY.saturating_sub(sent.elapsed()));
    }
    let queued = sockets::send_queued(daemon.addr.port()) + clients.iter().map(sockets::unread).sum::<usize>();
    let hwm = sockets::status_kib(daemon.pid(), "VmHWM");
    drop(clients);
    for w in writers {
        let _ = w.join();
    }
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    let met = failed == 0 && worst <= Duration::from_millis(250) && queued < 32 << 20 && hwm < 16 * 1024;
    Figure {
        name: "pipeline",
        text: format!(
            "{CLIENTS} clients pipelining {REQUESTS} /metrics each, never reading: /self worst {} ms, {failed} \
             failed (target <= 250 ms, 0); unread answers queued in the kernel {:.1} MiB (target < 32 MiB); daemon \
             VmHWM {hwm} KiB (target < 16 MiB)",
            worst.as_millis(),
            mib(queued)
        ),
        met,
    }
}

/// 5,000 connections trickling a header byte by byte, plus garbage senders, while a client
/// probes /self and /all every 100 ms: how many probes missed their 1 s.
fn slowloris(s: &Settings) -> Figure {
    let run_for = s.pick(Duration::from_secs(30), Duration::from_secs(8));
    let app = support::Stub::ok();
    let daemon = Daemon::serve(&[&format!("app={}", app.url("/ready"))]);
    let stop = Arc::new(AtomicBool::new(false));
    let slow = spawn_bounded(&stop, run_for, {
        let addr = daemon.addr;
        move |stop| trickle(addr, 5000, stop)
    });
    let garbage: Vec<_> = (0..4u64)
        .map(|seed| {
            let addr = daemon.addr;
            spawn_bounded(&stop, run_for, move |stop| send_garbage(addr, seed, stop))
        })
        .collect();
    thread::sleep(Duration::from_secs(1)); // let the attack build up
    let mut fds_max = 0;
    let probes = probe_while(daemon.addr, run_for - Duration::from_secs(1), || {
        fds_max = fds_max.max(fd_count(daemon.pid()));
    });
    stop.store(true, Ordering::SeqCst);
    let (held, reconnects) = slow.join().unwrap();
    let garbage_answers: usize = garbage.into_iter().map(|g| g.join().unwrap()).sum();
    Figure {
        name: "slowloris",
        text: format!(
            "{} slow connections held by the attacker ({reconnects} reconnects after the daemon dropped them, \
             daemon fds <= {fds_max}) + 4 garbage senders ({garbage_answers} answered 400/431): {} probes of /self \
             and /all, {} late (> 1s) or failed (target 0), slowest {} ms",
            held,
            probes.total,
            probes.missed,
            probes.slowest.as_millis()
        ),
        met: probes.missed == 0,
    }
}

/// 100,000 /all rounds against upstreams that misbehave at random: wrong verdicts, and the
/// daemon's descriptors and memory before and after.
fn chaos(s: &Settings) -> Figure {
    let rounds = s.pick(100_000, 5_000);
    let upstream = Upstream::start(None, vec![Chaos::Ok; CHAOS_CHECKS]);
    let port = upstream.addr.port();
    let mut args: Vec<String> = vec!["--timeout".into(), CHAOS_TIMEOUT.into()];
    args.extend((0..CHAOS_CHECKS).map(|i| format!("c{i}=http://127.0.0.1:{port}/c{i}")));
    args.push(format!("db=tcp://127.0.0.1:{port}"));
    let daemon = Daemon::serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut conn = daemon.conn();
    all_verbose(&mut conn); // the first round allocates what every round reuses
    let before = Usage::of(daemon.pid());
    let mut rng = Rng::new(0x5eed_cafe);
    let (mut wrong_verdicts, mut wrong_reasons) = (0, 0);
    let mut counts = [0usize; Chaos::COUNT];
    let start = Instant::now();
    for round in 0..rounds {
        let plan = Chaos::plan(&mut rng);
        for c in &plan {
            counts[c.index()] += 1;
        }
        upstream.set_plan(plan.clone());
        let got = all_verbose(&mut conn);
        for (i, chaos) in plan.iter().enumerate() {
            let name = format!("c{i}");
            let Some((passed, reason)) = got.iter().find(|(n, ..)| *n == name).map(|(_, p, r)| (*p, r.as_str())) else {
                panic!("round {round}: no line for {name}: {got:?}");
            };
            let (want_pass, reasons) = chaos.expect();
            if passed != want_pass {
                wrong_verdicts += 1;
                eprintln!("round {round}: {name} {chaos:?}: passed={passed} reason={reason:?}");
            } else if !want_pass && !reasons.contains(&reason) {
                wrong_reasons += 1;
                eprintln!("round {round}: {name} {chaos:?}: reason {reason:?}, want one of {reasons:?}");
            }
        }
        if !got.iter().any(|(n, p, _)| n == "db" && *p) {
            wrong_verdicts += 1;
        }
    }
    let elapsed = start.elapsed();
    drop(conn);
    thread::sleep(Duration::from_millis(300)); // let the last sockets close
    let after = Usage::of(daemon.pid());
    let hwm_target = 4 * 1024;
    let fds_back = after.fds <= before.fds;
    let rss_back = after.rss_kib <= before.rss_kib + 256;
    let mix: Vec<String> = Chaos::all().zip(counts).map(|(c, n)| format!("{c:?} {n}")).collect();
    Figure {
        name: "chaos",
        text: format!(
            "{rounds} /all rounds x {} checks in {:.0}s ({:.2} ms/round): {wrong_verdicts} wrong verdicts \
             (target 0), {wrong_reasons} wrong reasons; fds {} -> {} (target back to baseline), VmRSS {} -> {} KiB \
             (target back to baseline), VmHWM {} KiB (target <= {hwm_target}); upstream behaviours: {}",
            CHAOS_CHECKS + 1,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / rounds as f64,
            before.fds,
            after.fds,
            before.rss_kib,
            after.rss_kib,
            after.hwm_kib,
            mix.join(", ")
        ),
        met: wrong_verdicts == 0 && wrong_reasons == 0 && fds_back && rss_back && after.hwm_kib <= hwm_target,
    }
}

/// RLIMIT_NOFILE 64 and a connection flood: the daemon must not spin, must keep answering right
/// (probes need descriptors too), and must answer as soon as the flood stops.
fn fd_limit(s: &Settings) -> Figure {
    let flood_for = s.pick(Duration::from_secs(10), Duration::from_secs(4));
    let app = support::Stub::ok();
    let port = support::free_port(support::LOCALHOST_V4);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Several checks: each round needs a descriptor per probe while the flood wants them all.
    let checks: Vec<String> = (0..4).map(|i| format!("app{i}={}", app.url("/ready"))).collect();
    let listen = addr.to_string();
    let mut args = vec!["serve", "--listen", &listen];
    args.extend(checks.iter().map(String::as_str));
    let mut child = spawn_daemon(&args, Limits::Fds(64));
    wait_ready(addr);
    let baseline = fd_count(child.id() as i32);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = spawn_bounded(&stop, flood_for, move |stop| trickle(addr, 500, stop));
    thread::sleep(Duration::from_millis(500));
    let cpu_before = cpu_ticks(child.id() as i32);
    let pid = child.id() as i32;
    let mut fds_max = 0;
    let during = probe_while(addr, flood_for - Duration::from_secs(1), || fds_max = fds_max.max(fd_count(pid)));
    let cpu = cpu_ticks(child.id() as i32) - cpu_before;
    let flood_secs = (flood_for - Duration::from_secs(1)).as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let (held, _) = flood.join().unwrap();
    let stopped = Instant::now();
    let mut recovered = None;
    while stopped.elapsed() < Duration::from_secs(5) {
        let ok = |path| try_request(addr, "GET", path, PROBE_DEADLINE).is_ok_and(|r| r.status == 200);
        if ok("/self") && ok("/all") {
            recovered = Some(stopped.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    let fds_after = fd_count(child.id() as i32);
    stop_child(&mut child);
    let cpu_pct = cpu as f64 / clock_ticks() as f64 / flood_secs * 100.0;
    Figure {
        name: "fdlimit",
        text: format!(
            "ulimit -n 64, {held} flooding connections for {:.0}s (daemon fds <= {fds_max}): daemon CPU {cpu_pct:.0}% (no spin), {}/{} \
             probes of /self and /all (4 checks) answered 200 within 1s during the flood (target all); after it: /self and /all 200 in {} (target: answers), \
             fds {baseline} -> {fds_after}",
            flood_for.as_secs_f64(),
            during.total - during.missed,
            during.total,
            recovered.map_or("never (5s)".to_string(), |d| format!("{} ms", d.as_millis())),
        ),
        met: during.missed == 0 && recovered.is_some() && fds_after <= baseline && cpu_pct < 90.0,
    }
}

/// The upstream killed mid-round and restarted on the same port, again and again: the
/// interrupted round fails, the next one passes.
fn restart(s: &Settings) -> Figure {
    let cycles = s.pick(50, 10);
    let mut upstream = Upstream::start(None, vec![Chaos::Slow(Duration::from_millis(100))]);
    let url = format!("app=http://127.0.0.1:{}/c0", upstream.addr.port());
    let daemon = Daemon::serve(&["--timeout", "1s", &url]);
    let mut wrong = 0;
    let mut slowest_recovery = Duration::ZERO;
    for cycle in 0..cycles {
        let mut conn = daemon.conn();
        conn.send_request("GET", "/all?verbose");
        thread::sleep(Duration::from_millis(30)); // the probe is waiting for its answer
        upstream.kill();
        let killed = all_lines(&conn.read_response(false).text());
        let mid_round_ok = killed.first().is_some_and(|(_, passed, reason)| {
            !passed && ["closed before response", "connection reset"].contains(&reason.as_str())
        });
        // While it is down: refused.
        let down = all_lines(&daemon.get("/all?verbose").text());
        let down_ok = down.first().is_some_and(|(_, passed, reason)| !passed && reason == "connection refused");
        upstream.restart();
        let back = Instant::now();
        let up_ok = daemon.get("/all").status == 200;
        slowest_recovery = slowest_recovery.max(back.elapsed());
        if !(mid_round_ok && down_ok && up_ok) {
            wrong += 1;
            eprintln!("restart cycle {cycle}: mid-round {killed:?}, down {down:?}, up {up_ok}");
        }
    }
    Figure {
        name: "restart",
        text: format!(
            "{cycles} kill/restart cycles of the upstream (killed mid-round, probed while down, restarted): \
             {wrong} wrong verdicts (target 0); first round after a restart passed in <= {} ms",
            slowest_recovery.as_millis()
        ),
        met: wrong == 0,
    }
}

/// SIGTERM to the daemon running as PID 1 of its own PID namespace, under load.
fn pid1(s: &Settings) -> Figure {
    let runs = s.pick(10, 3);
    let upstream = Upstream::start(None, vec![Chaos::Ok]);
    let check = format!("http://127.0.0.1:{}/c0", upstream.addr.port());
    let mut slowest = Duration::ZERO;
    let mut failures = Vec::new();
    for run in 0..runs {
        let addr = SocketAddr::from(([127, 0, 0, 1], support::free_port(support::LOCALHOST_V4)));
        let mut unshare = spawn_daemon(&["serve", "--listen", &addr.to_string(), &check], Limits::Pid1);
        wait_ready(addr);
        let pid = namespace_init(unshare.id()).expect("the daemon under unshare");
        let stop = Arc::new(AtomicBool::new(false));
        let load: Vec<_> = (0..4)
            .map(|i| {
                spawn_bounded(&stop, Duration::from_secs(10), move |stop| {
                    let path = if i % 2 == 0 { "/all" } else { "/self" };
                    while !stop.load(Ordering::SeqCst) {
                        let _ = try_request(addr, "GET", path, PROBE_DEADLINE);
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        // SAFETY: kill(2) on the namespace's init, a descendant of this process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = wait_child(&mut unshare, Duration::from_secs(5));
        let took = sent.elapsed();
        stop.store(true, Ordering::SeqCst);
        load.into_iter().for_each(|l| l.join().unwrap());
        slowest = slowest.max(took);
        match status {
            Some(status) if status.success() && took <= Duration::from_millis(100) => {}
            other => {
                failures.push(format!("run {run}: {other:?} after {} ms", took.as_millis()));
                stop_child(&mut unshare);
            }
        }
    }
    Figure {
        name: "pid1",
        text: format!(
            "SIGTERM to PID 1 (unshare --pid --fork) under 4 busy clients, {runs} runs: exit 0 in <= {} ms \
             (target exit 0 within 100 ms){}",
            slowest.as_millis(),
            if failures.is_empty() { String::new() } else { format!("; failed: {}", failures.join("; ")) }
        ),
        met: failures.is_empty(),
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Runs `work` on a thread that also stops by itself once `limit` has passed.
fn spawn_bounded<T: Send + 'static>(
    stop: &Arc<AtomicBool>,
    limit: Duration,
    work: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        let guard = Arc::clone(&stop);
        let deadline = Instant::now() + limit + Duration::from_secs(5);
        thread::spawn(move || {
            while Instant::now() < deadline && !guard.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(50));
            }
            guard.store(true, Ordering::SeqCst);
        });
        work(&stop)
    })
}

/// Slowloris: keeps `count` connections open, each sending one more byte of a header that never
/// ends about once a second; a connection the daemon drops is opened again. Returns the most
/// connections held at once and the reconnects.
fn trickle(addr: SocketAddr, count: usize, stop: &AtomicBool) -> (usize, usize) {
    const TICK: Duration = Duration::from_millis(10);
    const HEAD: &[u8] = b"GET /self HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut slots: Vec<Option<(TcpStream, usize)>> = (0..count).map(|_| None).collect();
    let per_tick = count.div_ceil(100);
    let (mut next, mut held, mut reconnects, mut opened) = (0, 0, 0, 0);
    while !stop.load(Ordering::SeqCst) {
        let tick = Instant::now();
        let mut connects = 0;
        for _ in 0..per_tick {
            let slot = &mut slots[next];
            next = (next + 1) % count;
            if let Some((stream, sent)) = slot {
                let byte = HEAD.get(*sent).copied().unwrap_or(b'a');
                match stream.write(&[byte]) {
                    Ok(_) => *sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => *slot = None,
                }
            }
        }
        // Open (again) what is missing, a bounded number per tick.
        for slot in slots.iter_mut().filter(|s| s.is_none()) {
            if connects == 2 * per_tick {
                break;
            }
            connects += 1;
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                let _ = stream.set_nonblocking(true);
                *slot = Some((stream, 0));
                opened += 1;
                if opened > count {
                    reconnects += 1;
                }
            }
        }
        held = held.max(slots.iter().filter(|s| s.is_some()).count());
        thread::sleep(TICK.saturating_sub(tick.elapsed()));
    }
    (held, reconnects)
}

/// Sends random bytes (with line breaks) on fresh connections; counts the 400/431 answers.
fn send_garbage(addr: SocketAddr, seed: u64, stop: &AtomicBool) -> usize {
    let mut rng = Rng::new(seed);
    let mut answered = 0;
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut conn) = Conn::try_open(addr, PROBE_DEADLINE) else { continue };
        let mut junk: Vec<u8> = (0..rng.below(4096) + 1).map(|_| rng.next_u64() as u8).collect();
        junk.extend_from_slice(b"\r\n\r\n");
        if conn.stream.write_all(&junk).is_ok() {
            if let Ok(resp) = conn.try_read_response(false) {
                answered += usize::from(matches!(resp.status, 400 | 431));
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    answered
}

struct Probes {
    total: usize,
    missed: usize,
    slowest: Duration,
}

/// The well-behaved client: GET /self and GET /all, each on a fresh connection, every 100 ms
/// for `run_for`; calls `each` once per interval.
fn probe_while(addr: SocketAddr, run_for: Duration, mut each: impl FnMut()) -> Probes {
    let mut probes = Probes { total: 0, missed: 0, slowest: Duration::ZERO };
    let start = Instant::now();
    while start.elapsed() < run_for {
        let tick = Instant::now();
        for path in ["/self", "/all"] {
            let sent = Instant::now();
            let ok = try_request(addr, "GET", path, PROBE_DEADLINE).is_ok_and(|r| r.status == 200);
            let took = sent.elapsed();
            probes.total += 1;
            probes.slowest = probes.slowest.max(took);
            if !ok || took > PROBE_DEADLINE {
                probes.missed += 1;
            }
        }
        each();
        thread::sleep(PROBE_EVERY.saturating_sub(tick.elapsed()));
    }
    probes
}

/// `/all?verbose` on a kept-alive connection: (name, passed, reason) per line.
/// The daemon ends a keep-alive connection after 1,000 requests (its last
/// answer says `Connection: close`): then a new one is opened, as an HTTP
/// client does.
fn all_verbose(conn: &mut Conn) -> Vec<(String, bool, String)> {
    conn.send_request("GET", "/all?verbose");
    let resp = conn.read_response(false);
    if resp.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
        let addr = conn.stream.peer_addr().expect("the daemon's address");
        *conn = Conn::open(addr);
    }
    all_lines(&resp.text())
}

fn all_lines(body: &str) -> Vec<(String, bool, String)> {
    body.lines()
        .filter_map(|line| {
            if let Some(name) = line.strip_prefix("[+]").and_then(|l| l.strip_suffix(" ok")) {
                return Some((name.to_string(), true, String::new()));
            }
            let (name, reason) = line.strip_prefix("[-]")?.split_once(" failed: ")?;
            Some((name.to_string(), false, reason.to_string()))
        })
        .collect()
}

fn wait_ready(addr: SocketAddr) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if try_request(addr, "GET", "/self", Duration::from_millis(500)).is_ok_and(|r| r.status == 200) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon on {addr} did not answer /self within 5s");
}

// ---------------------------------------------------------------------------
// The chaos upstream
// ---------------------------------------------------------------------------

/// Checks the chaos daemon probes, each with its own behaviour per round.
const CHAOS_CHECKS: usize = 6;

/// How the upstream answers one check's probe.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chaos {
    Ok,
    Status503,
    Chunked,
    BigBody,
    Reset,
    CloseEarly,
    Garbage,
    EndlessHeaders,
    RedirectOk,
    RedirectLoop,
    /// A whole 200 response in pieces, 2 ms apart.
    SlowDrip,
    /// Half a head, then nothing.
    Stall,
    Hang,
    /// Answer 200 after this long (the restart scenario).
    Slow(Duration),
}

impl Chaos {
    const FAST: [Chaos; 10] = [
        Chaos::Ok,
        Chaos::Status503,
        Chaos::Chunked,
        Chaos::BigBody,
        Chaos::Reset,
        Chaos::CloseEarly,
        Chaos::Garbage,
        Chaos::EndlessHeaders,
        Chaos::RedirectOk,
        Chaos::RedirectLoop,
    ];
    const SLOW: [Chaos; 3] = [Chaos::SlowDrip, Chaos::Stall, Chaos::Hang];
    /// How many behaviours there are: the fast ones, then the slow ones.
    const COUNT: usize = Chaos::FAST.len() + Chaos::SLOW.len();

    fn all() -> impl Iterator<Item = Chaos> {
        Chaos::FAST.into_iter().chain(Chaos::SLOW)
    }

    /// One round's behaviours: fast ones at random; one round in 200 also gets a slow one
    /// (which costs up to the probe timeout).
    fn plan(rng: &mut Rng) -> Vec<Chaos> {
        let mut plan: Vec<Chaos> = (0..CHAOS_CHECKS).map(|_| Chaos::FAST[rng.below(Chaos::FAST.len())]).collect();
        if rng.below(200) == 0 {
            plan[rng.below(CHAOS_CHECKS)] = Chaos::SLOW[rng.below(Chaos::SLOW.len())];
        }
        plan
    }

    fn index(self) -> usize {
        Chaos::all().position(|c| c == self).unwrap_or(0)
    }

    /// Whether kubelet would pass it, and the reasons that describe a failure.
    fn expect(self) -> (bool, &'static [&'static str]) {
        match self {
            Chaos::Ok | Chaos::Chunked | Chaos::BigBody | Chaos::RedirectOk | Chaos::SlowDrip | Chaos::Slow(_) => {
                (true, &[])
            }
            Chaos::Status503 => (false, &["status 503"]),
            Chaos::Reset => (false, &["connection reset"]),
            Chaos::CloseEarly => (false, &["closed before response"]),
            Chaos::Garbage => (false, &["invalid response"]),
            // 70 KB of header lines, then the close: as Go's client, heads up to
            // 10 MiB are read (without being kept), so the close ends it.
            Chaos::EndlessHeaders => (false, &["closed before response"]),
            Chaos::RedirectLoop => (false, &["stopped after 10 redirects"]),
            Chaos::Stall | Chaos::Hang => (false, &["timeout after 200ms"]),
        }
    }
}

struct UpstreamState {
    plan: Mutex<Vec<Chaos>>,
    killed: AtomicBool,
    active: AtomicUsize,
}

/// An HTTP server on one loopback port: `/cN` answers as `plan[N]` says, `/ok` answers 200. It
/// can be killed (listener and connections closed) and restarted on the same port.
struct Upstream {
    addr: SocketAddr,
    state: Arc<UpstreamState>,
}

impl Upstream {
    fn start(port: Option<u16>, plan: Vec<Chaos>) -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).expect("bind the upstream");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(UpstreamState {
            plan: Mutex::new(plan),
            killed: AtomicBool::new(false),
            active: AtomicUsize::new(0),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.killed.load(Ordering::SeqCst) {
                    return; // drops the listener: refused from now on
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&accept_state);
                state.active.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    serve_chaos(stream, addr, &state);
                    state.active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Upstream { addr, state }
    }

    fn set_plan(&self, plan: Vec<Chaos>) {
        *self.state.plan.lock().unwrap() = plan;
    }

    /// Closes the listener and every connection, like a process that died.
    fn kill(&mut self) {
        self.state.killed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)); // wake accept
        let start = Instant::now();
        while self.state.active.load(Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(1));
        }
        // The accept thread drops the listener once it sees the flag.
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok()
            && start.elapsed() < Duration::from_secs(2)
        {
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn restart(&mut self) {
        let plan = self.state.plan.lock().unwrap().clone();
        *self = Upstream::start(Some(self.addr.port()), plan);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.state.killed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve_chaos(mut stream: TcpStream, me: SocketAddr, state: &UpstreamState) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_nodelay(true);
    if state.killed.load(Ordering::SeqCst) {
        return;
    }
    let plan = state.plan.lock().unwrap().clone();
    let peek_path = |stream: &mut TcpStream| -> Option<String> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head);
        Some(text.split(' ').nth(1)?.to_string())
    };
    let Some(path) = peek_path(&mut stream) else { return };
    let chaos = match path.strip_prefix("/c").and_then(|i| i.parse::<usize>().ok()) {
        Some(i) => plan.get(i).copied().unwrap_or(Chaos::Ok),
        None => Chaos::Ok,
    };
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    let w = |stream: &mut TcpStream, bytes: &[u8]| stream.write_all(bytes).is_ok();
    match chaos {
        Chaos::Ok => {
            let _ = w(&mut stream, ok);
        }
        Chaos::Status503 => {
            let _ = w(&mut stream, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        }
        Chaos::Chunked => {
            let _ = w(&mut stream, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n")
                && w(&mut stream, b"0\r\n\r\n");
        }
        Chaos::BigBody => {
            if w(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n") {
                let chunk = [b'x'; 8192];
                for _ in 0..128 {
                    if !w(&mut stream, &chunk) {
                        break;
                    }
                }
            }
        }
        Chaos::Reset => {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: setsockopt on a socket this thread owns, with a correctly sized struct.
            unsafe {
                libc::setsockopt(
                    std::os::unix::io::AsRawFd::as_raw_fd(&stream),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
            return; // the drop sends RST
        }
        Chaos::CloseEarly => {}
        Chaos::Garbage => {
            let _ = w(&mut stream, b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\xff garbage\r\n\r\n");
        }
        Chaos::EndlessHeaders => {
            let line = [b"X-Filler: ".as_slice(), &[b'a'; 100], b"\r\n"].concat();
            let _ = w(&mut stream, b"HTTP/1.1 200 OK\r\n") && (0..640).all(|_| w(&mut stream, &line));
        }
        Chaos::RedirectOk => {
            let _ = w(&mut stream, b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
        }
        Chaos::RedirectLoop => {
            let location = format!("http://127.0.0.1:{}{path}", me.port());
            let head = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
            let _ = w(&mut stream, head.as_bytes());
        }
        Chaos::SlowDrip => {
            for piece in ok.chunks(16) {
                if !w(&mut stream, piece) {
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
        }
        Chaos::Stall => {
            if w(&mut stream, b"HTTP/1.1 200 OK\r\nX-Stall: ") {
                wait_for_close(&mut stream, state);
            }
        }
        Chaos::Hang => wait_for_close(&mut stream, state),
        Chaos::Slow(delay) => {
            let start = Instant::now();
            while start.elapsed() < delay {
                if state.killed.load(Ordering::SeqCst) {
                    return; // died mid-answer: the close is a FIN
                }
                thread::sleep(Duration::from_millis(1));
            }
            let _ = w(&mut stream, ok);
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Holds the connection until the peer closes it, the upstream dies or 5 s pass.
fn wait_for_close(stream: &mut TcpStream, state: &UpstreamState) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
    let start = Instant::now();
    let mut buf = [0u8; 512];
    while start.elapsed() < Duration::from_secs(5) && !state.killed.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Processes and /proc
// ---------------------------------------------------------------------------

enum Limits {
    /// RLIMIT_NOFILE for the daemon.
    Fds(u64),
    /// PID 1 of a new PID namespace (`unshare --pid --fork --kill-child`).
    Pid1,
}

/// Starts the release binary with `args` under `limits`; stderr is discarded.
fn spawn_daemon(args: &[&str], limits: Limits) -> Child {
    let mut command = match limits {
        Limits::Pid1 => {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--kill-child", support::bin()]);
            c
        }
        Limits::Fds(_) => Command::new(support::bin()),
    };
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    if let Limits::Fds(n) = limits {
        // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    command.spawn().expect("spawn the daemon")
}

fn stop_child(child: &mut Child) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if wait_child(child, Duration::from_secs(2)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The host PID of the namespace's PID 1: the child of `unshare --fork`.
fn namespace_init(unshare: u32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
    let pid: i32 = children.split_whitespace().next()?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let nspid = status.lines().find(|l| l.starts_with("NSpid:"))?;
    (nspid.split_whitespace().last() == Some("1")).then_some(pid)
}

struct Usage {
    fds: usize,
    rss_kib: u64,
    hwm_kib: u64,
}

impl Usage {
    fn of(pid: i32) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Usage { fds: fd_count(pid), rss_kib: kib("VmRSS:"), hwm_kib: kib("VmHWM:") }
    }
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

fn clock_ticks() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}

/// This process holds thousands of client sockets.
fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
