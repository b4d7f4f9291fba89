//! The end-to-end load bench: builds the release and static binaries, runs
//! them against in-process upstream stubs (and nginx, wrk, valgrind when
//! installed) and prints every footprint and speed figure beside its target.
//!
//! `cargo bench --bench load` (about 2 minutes once built: the idle window
//! is 60 s and 100,000 rounds take about 30 s), or `-- --quick` (about 1
//! minute: shorter idle window, fewer rounds and wrk runs, said in the table).

mod binaries;
mod callgrind;
mod client;
mod daemon;
mod grpc;
mod https;
mod names;
mod reference;
mod stubs;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use client::Client;
use daemon::Process;
use reference::Mode;
use stubs::Stubs;
use support::binary::{self, MUSL};

/// Delay of the slow upstream endpoints.
const SLOW_DELAY: Duration = Duration::from_millis(100);
/// Inbound connections opened at once by the flood.
const FLOOD: usize = 10_000;
const KIB: f64 = 1024.0;

struct Options {
    quick: bool,
    idle: Duration,
    rounds: u64,
    wrk_seconds: u32,
    wrk_repeats: usize,
    /// Only the named-checks section (`-- --names`).
    names_only: bool,
    /// Only the instruction counts (`-- --instructions`).
    instructions_only: bool,
    /// Only the HTTPS round against Go's (`-- --https`).
    https_only: bool,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let (mut quick, mut names_only, mut instructions_only, mut https_only) = (false, false, false, false);
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => quick = true,
                "--names" => names_only = true,
                "--instructions" => instructions_only = true,
                "--https" => https_only = true,
                // cargo bench passes --bench to every bench binary.
                "--bench" => {}
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: cargo bench --bench load [-- --quick] [--names] [--instructions] [--https]"
                    ))
                }
            }
        }
        Ok(if quick {
            Options {
                quick,
                idle: Duration::from_secs(10),
                rounds: 20_000,
                wrk_seconds: 2,
                wrk_repeats: 2,
                names_only,
                instructions_only,
                https_only,
            }
        } else {
            Options {
                quick,
                idle: Duration::from_secs(60),
                rounds: 100_000,
                wrk_seconds: 5,
                wrk_repeats: 3,
                names_only,
                instructions_only,
                https_only,
            }
        })
    }
}

/// One line of the result table. `ok` is None for a figure that is only
/// reported, or skipped.
struct Row {
    figure: String,
    measured: String,
    target: String,
    ok: Option<bool>,
}

#[derive(Default)]
struct Table(Vec<Row>);

impl Table {
    fn add(&mut self, figure: &str, measured: String, target: &str, ok: Option<bool>) {
        eprintln!("  {figure}: {measured}");
        self.0.push(Row { figure: figure.into(), measured, target: target.into(), ok });
    }

    /// A figure that could not be measured, and what to do about it.
    fn skip(&mut self, figure: &str, target: &str, why: String) {
        self.add(figure, format!("skipped: {why}"), target, None);
    }

    fn result(&mut self, figure: &str, target: &str, measured: io::Result<(String, Option<bool>)>) {
        match measured {
            Ok((text, ok)) => self.add(figure, text, target, ok),
            Err(e) => self.add(figure, format!("failed: {e}"), target, Some(false)),
        }
    }

    fn print(&self) {
        let width =
            |f: fn(&Row) -> &str, title: &str| self.0.iter().map(|r| f(r).len()).max().unwrap_or(0).max(title.len());
        let (w1, w2, w3) =
            (width(|r| &r.figure, "figure"), width(|r| &r.measured, "measured"), width(|r| &r.target, "target"));
        println!("| {:w1$} | {:w2$} | {:w3$} | ok? |", "figure", "measured", "target");
        println!("|{}|{}|{}|-----|", "-".repeat(w1 + 2), "-".repeat(w2 + 2), "-".repeat(w3 + 2));
        for r in &self.0 {
            let ok = match r.ok {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            println!("| {:w1$} | {:w2$} | {:w3$} | {ok:3} |", r.figure, r.measured, r.target);
        }
    }
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(64);
        }
    };
    match run(&options) {
        Ok(table) => {
            machine();
            table.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every section; an error here (build, stubs) stops the bench, an
/// error inside a section fails its row only.
fn run(options: &Options) -> io::Result<Table> {
    let mut table = Table::default();
    let nofile = raise_nofile()?;
    let dir = std::env::temp_dir().join(format!("healthcheck-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    eprintln!("building the release binaries");
    let release = binaries::build(None)?;
    // The binary the image ships when given (`HEALTHCHECK_STATIC_BIN=$(scripts/build-static)`),
    // else the plain static build of the current toolchain.
    let shipped = std::env::var_os("HEALTHCHECK_STATIC_BIN").map(PathBuf::from);
    let musl = match &shipped {
        Some(path) => Some(path.clone()),
        None if binary::target_installed(MUSL) => Some(binaries::build(Some(MUSL))?),
        None => None,
    };
    binary_size(&mut table, musl.as_deref(), shipped.is_some());
    // The static build is the one shipped; measure it when there is one.
    let daemon_bin = musl.clone().unwrap_or_else(|| release.clone());
    eprintln!("daemon under test: {} (RLIMIT_NOFILE {nofile})", daemon_bin.display());

    let stubs = Stubs::start(1000, 8, SLOW_DELAY)?;
    let fast8 = &stubs.fast[..8];
    if options.instructions_only {
        instructions(&mut table, &release, fast8, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(table);
    }
    if options.https_only {
        https_rounds(&mut table, &daemon_bin, &release, &dir, options);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(table);
    }
    if options.names_only {
        names(&mut table, &daemon_bin, &release, &stubs, &dir, options);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(table);
    }

    // One daemon stays idle while the other sections run on their own
    // daemons, then takes the load whose memory peak is measured.
    let port = support::free_port(support::LOCALHOST_V4);
    let mut main = Process::start(
        &daemon_bin,
        &daemon::serve_args(port, "1s", fast8),
        port,
        &dir.join("main.log"),
        Duration::from_secs(5),
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let idle_since = Instant::now();
    let idle_cpu = main.cpu_seconds()?;
    let rss = main.status_kib("VmRSS").map(|kib| kib as f64);
    let static_note = if musl.is_some() { "" } else { " (glibc build: musl target missing)" };
    table.result(
        "VmRSS idle, static build",
        "<= 1 MiB",
        rss.map(|kib| (format!("{:.0} KiB{static_note}", kib), Some(kib <= KIB))),
    );

    throughput(&mut table, &daemon_bin, fast8, &dir, options);
    latency(&mut table, &daemon_bin, &stubs, &dir);
    scrapes(&mut table, &daemon_bin, &stubs, &dir);
    instructions(&mut table, &release, fast8, &dir);
    names(&mut table, &daemon_bin, &release, &stubs, &dir, options);

    let idle_left = options.idle.saturating_sub(idle_since.elapsed());
    eprintln!("waiting {}s for the idle window to end", idle_left.as_secs());
    std::thread::sleep(idle_left);
    let idle_label = if options.quick { "CPU while idle for 10 s (--quick)" } else { "CPU while idle for 60 s" };
    table.result(
        idle_label,
        "utime+stime unchanged",
        main.cpu_seconds().map(|cpu| {
            let ms = (cpu - idle_cpu) * 1000.0;
            // The window is at least the figure's, longer when the other
            // sections took longer.
            (format!("+{ms:.0} ms over {:.0} s", idle_since.elapsed().as_secs_f64()), Some(ms == 0.0))
        }),
    );

    let http_round = rounds(&mut table, &main, options);
    grpc_rounds(&mut table, &daemon_bin, &release, &dir, options, http_round);
    https_rounds(&mut table, &daemon_bin, &release, &dir, options);
    eprintln!("opening {FLOOD} inbound connections");
    let held = client::flood(main.port, FLOOD, Duration::from_secs(60));
    let opened = held.len();
    // The last connections are the ones the daemon kept: let it answer them.
    std::thread::sleep(Duration::from_millis(500));
    let rounds_label = if options.quick {
        "VmHWM after 20,000 /all rounds (--quick) + 10,000 connections"
    } else {
        "VmHWM after 100,000 /all rounds + 10,000 connections"
    };
    table.result(
        rounds_label,
        "<= 4 MiB",
        main.status_kib("VmHWM").map(|kib| {
            (format!("{kib} KiB ({opened} connections opened)"), Some(kib as f64 <= 4.0 * KIB && opened == FLOOD))
        }),
    );
    drop(held);
    if !main.stop() {
        table.add("clean exit on SIGTERM after the load", "NO".into(), "exit 0", Some(false));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(table)
}

/// Size of the stripped static binary: the shipped one (with TLS) is held to 768 KiB (its
/// `--minimal` build's 300 KiB is .ci/run's to check), the plain stable
/// build (std's panic printer included, with TLS: 1,144.5 KiB on 2026-12-05) to 1,200 KiB.
fn binary_size(table: &mut Table, musl: Option<&Path>, shipped: bool) {
    let (figure, limit) = if shipped {
        ("binary size, static (musl), stripped, as shipped (scripts/build-static, TLS)", 768.0)
    } else {
        ("binary size, static (musl), stripped, plain stable build", 1200.0)
    };
    let target = format!("<= {limit:.0} KiB");
    let Some(path) = musl else {
        return table.skip(figure, &target, format!("install the target (rustup target add {})", MUSL));
    };
    let measured = binary::is_static(path).and_then(|is_static| {
        let kib = std::fs::metadata(path)?.len() as f64 / KIB;
        let note = if is_static { "" } else { " (NOT static)" };
        Ok((format!("{kib:.1} KiB{note}"), Some(kib <= limit && is_static)))
    });
    table.result(figure, &target, measured);
}

/// Throughput and server CPU per request of repeated wrk runs.
#[derive(Default)]
struct Runs {
    rates: Vec<f64>,
    cpu_us: Vec<f64>,
}

impl Runs {
    fn run(&mut self, server: &Process, mode: Mode, seconds: u32) -> io::Result<()> {
        let before = server.tree_cpu_seconds()?;
        let run = reference::wrk(&format!("http://127.0.0.1:{}/self", server.port), mode, seconds)?;
        self.cpu_us.push((server.tree_cpu_seconds()? - before) * 1e6 / run.requests as f64);
        self.rates.push(run.rate);
        Ok(())
    }
}

/// `/self` requests per second against the daemon and nginx, alternated;
/// the CPU per request of each server says who works less when wrk (one
/// thread) is the bottleneck.
fn throughput(table: &mut Table, daemon_bin: &Path, checks: &[u16], dir: &Path, options: &Options) {
    let figures = [
        (Mode::KeepAlive, "/self req/s, keep-alive, 50 connections"),
        (Mode::Close, "/self req/s, new connection per request"),
    ];
    let target = ">= 1.0 x nginx (1 worker)";
    if reference::which("wrk").is_none() {
        for (_, figure) in figures {
            table.skip(figure, target, "install wrk (apt-get install wrk)".into());
        }
        return;
    }
    let nginx_missing = !Path::new(reference::NGINX).exists();
    let measure = || -> io::Result<Vec<(Runs, Runs)>> {
        let port = support::free_port(support::LOCALHOST_V4);
        let ours = Process::start(
            daemon_bin,
            &daemon::serve_args(port, "1s", checks),
            port,
            &dir.join("self.log"),
            Duration::from_secs(5),
        )?;
        let nginx = if nginx_missing { None } else { Some(reference::start_nginx(dir)?) };
        let mut results = Vec::new();
        for (mode, figure) in figures {
            eprintln!("wrk: {figure}");
            let (mut a, mut b) = (Runs::default(), Runs::default());
            for _ in 0..options.wrk_repeats {
                a.run(&ours, mode, options.wrk_seconds)?;
                if let Some(nginx) = &nginx {
                    b.run(nginx, mode, options.wrk_seconds)?;
                }
            }
            results.push((a, b));
        }
        Ok(results)
    };
    match measure() {
        Ok(results) => {
            for ((_, figure), (ours, nginx)) in figures.into_iter().zip(results) {
                let (rate, cpu) = (median(ours.rates), median(ours.cpu_us));
                if nginx.rates.is_empty() {
                    let text = format!(
                        "{rate:.0} ({cpu:.1} us CPU/req); nginx skipped: install nginx (apt-get install nginx-light)"
                    );
                    table.add(figure, text, target, None);
                } else {
                    let (nginx_rate, nginx_cpu) = (median(nginx.rates), median(nginx.cpu_us));
                    let ratio = rate / nginx_rate;
                    let text = format!(
                        "{rate:.0} vs nginx {nginx_rate:.0} = {ratio:.2} x; CPU/req {cpu:.1} vs {nginx_cpu:.1} us"
                    );
                    table.add(figure, text, target, Some(ratio >= 1.0));
                }
            }
        }
        Err(e) => {
            for (_, figure) in figures {
                table.add(figure, format!("failed: {e}"), target, Some(false));
            }
        }
    }
}

/// `/all` latency: 8 slow endpoints, then 1,000 fast ones.
fn latency(table: &mut Table, daemon_bin: &Path, stubs: &Stubs, dir: &Path) {
    let cases: [(&str, &str, &[u16], usize, f64); 2] = [
        ("/all latency, 8 endpoints answering after 100 ms", "<= 110 ms (1.1 x 100 ms)", &stubs.slow, 20, 110.0),
        ("/all latency, 1,000 fast endpoints", "<= 50 ms", &stubs.fast, 40, 50.0),
    ];
    for (figure, target, checks, count, limit_ms) in cases {
        eprintln!("latency: {figure}");
        let measured = (|| {
            let port = support::free_port(support::LOCALHOST_V4);
            let _daemon = Process::start(
                daemon_bin,
                &daemon::serve_args(port, "2s", checks),
                port,
                &dir.join("latency.log"),
                Duration::from_secs(5),
            )?;
            let (median, p99) = all_latency(port, count)?;
            Ok((format!("median {median:.1} ms, p99 {p99:.1} ms ({count} rounds)"), Some(median <= limit_ms)))
        })();
        table.result(figure, target, measured);
    }
}

/// Median and p99 `/all` latency in ms over `count` sequential rounds.
fn all_latency(port: u16, count: usize) -> io::Result<(f64, f64)> {
    let mut client = Client::connect(port)?;
    client.latencies("/all", 2)?; // warm-up: first-round page faults
    let mut samples: Vec<f64> = client.latencies("/all", count)?.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    samples.sort_by(f64::total_cmp);
    let p99 = samples[(samples.len() * 99).div_ceil(100) - 1];
    Ok((median(samples), p99))
}

/// CPU per `/metrics` scrape (user+sys, so writing the answer counts),
/// with 8 and 1,000 checks that have all run once.
fn scrapes(table: &mut Table, daemon_bin: &Path, stubs: &Stubs, dir: &Path) {
    let cases: [(&str, &[u16], u32); 2] = [
        ("CPU per /metrics scrape, 8 checks (user+sys)", &stubs.fast[..8], 20_000),
        ("CPU per /metrics scrape, 1,000 checks (user+sys)", &stubs.fast, 500),
    ];
    for (figure, checks, count) in cases {
        eprintln!("scrapes: {figure}");
        let measured = (|| {
            let daemon = Process::serve(daemon_bin, checks, &dir.join("scrape.log"))?;
            let mut client = Client::connect(daemon.port)?;
            client.get("/all")?; // every check gets its series
            client.latencies("/metrics", 10)?; // warm-up: the buffer grows once
            let size = client.last_len();
            let before = daemon.cpu_seconds()?;
            client.latencies("/metrics", count as usize)?;
            let us = (daemon.cpu_seconds()? - before) * 1e6 / f64::from(count);
            Ok((format!("{us:.0} us ({count} scrapes of {:.0} KiB)", size as f64 / KIB), Some(us < 1000.0)))
        })();
        table.result(figure, "< 1 ms", measured);
    }
}

/// Instructions per round under callgrind (glibc build: valgrind knows its
/// allocator).
fn instructions(table: &mut Table, release: &Path, checks: &[u16], dir: &Path) {
    let figure = "instructions per /all round, 8 fast endpoints (callgrind)";
    let target = "reported";
    if reference::which("valgrind").is_none() {
        return table.skip(figure, target, "install valgrind (apt-get install valgrind)".into());
    }
    eprintln!("callgrind: {figure}");
    let measured = callgrind::instructions_per_round(release, checks, dir, 100, 1100)
        .map(|n| (format!("{:.0} k instructions", n / 1000.0), None));
    table.result(figure, target, measured);
    let figure = "instructions per keep-alive /self (callgrind)";
    eprintln!("callgrind: {figure}");
    let measured = callgrind::instructions_per_request(release, checks, "/self", dir, 1000, 11_000)
        .map(|n| (format!("{n:.0} instructions"), None));
    table.result(figure, target, measured);
}

/// CPU per round over many sequential `/all` rounds (one client, so one
/// round per request); the microseconds when measured.
fn rounds(table: &mut Table, main: &Process, options: &Options) -> Option<f64> {
    let figure = "CPU per /all round, 8 fast endpoints (user+sys)";
    eprintln!("{} /all rounds", options.rounds);
    let measured = cpu_per_round(main, options.rounds);
    let us = measured.as_ref().ok().map(|(us, _, _)| *us);
    let measured =
        measured.map(|(us, done, rate)| (format!("{us:.0} us ({done} rounds, {rate:.0} rounds/s)"), Some(us <= 300.0)));
    table.result(figure, "<= 300 us", measured);
    us
}

/// The same round with 8 gRPC checks against one grpc-go server on
/// loopback (a new HTTP/2 connection per check per round, as kubelet's
/// probe makes): CPU next to the HTTP round's, and instructions.
fn grpc_rounds(table: &mut Table, daemon_bin: &Path, release: &Path, dir: &Path, options: &Options, http: Option<f64>) {
    let cpu_figure = "CPU per /all round, 8 gRPC checks (user+sys)";
    let instructions_figure = "instructions per /all round, 8 gRPC checks (callgrind)";
    let target = "reported";
    let server = match grpc::start(dir) {
        Ok(server) => server,
        Err(e) => {
            table.skip(cpu_figure, target, e.to_string());
            return table.skip(instructions_figure, target, e.to_string());
        }
    };
    let serve = |port| {
        let mut args = daemon::serve_args(port, "1s", &[]);
        args.extend((0..8).map(|i| format!("c{i}=grpc://127.0.0.1:{}", server.port)));
        args
    };
    let rounds = options.rounds / 5;
    eprintln!("{rounds} /all rounds of gRPC checks");
    let measured = (|| {
        let port = support::free_port(support::LOCALHOST_V4);
        let daemon = Process::start(daemon_bin, &serve(port), port, &dir.join("grpc.log"), Duration::from_secs(5))?;
        let (us, done, rate) = cpu_per_round(&daemon, rounds)?;
        let versus = http.map_or(String::new(), |http| format!(" vs {http:.0} us HTTP = {:.2} x", us / http));
        Ok((format!("{us:.0} us{versus} ({done} rounds, {rate:.0} rounds/s)"), None))
    })();
    table.result(cpu_figure, target, measured);
    if reference::which("valgrind").is_none() {
        return table.skip(instructions_figure, target, "install valgrind (apt-get install valgrind)".into());
    }
    eprintln!("callgrind: {instructions_figure}");
    let measured = callgrind::instructions_per_round_with(&[], release, &serve, dir, 100, 1100)
        .map(|n| (format!("{:.0} k instructions", n / 1000.0), None));
    table.result(instructions_figure, target, measured);
}

/// The same round with 8 `https://` checks against one TLS server on
/// loopback, next to a Go program set up as kubelet's HTTPS prober doing the
/// same 8 concurrent GETs per round, in this run: CPU and instructions.
fn https_rounds(table: &mut Table, daemon_bin: &Path, release: &Path, dir: &Path, options: &Options) {
    let cpu_figure = "CPU per /all round, 8 HTTPS checks (user+sys)";
    let instructions_figure = "instructions per /all round, 8 HTTPS checks (callgrind)";
    let target = "<= 1/2 of Go's";
    let started = https::start(dir).and_then(|server| Ok((https::build_go(dir)?, server)));
    let (go, server) = match started {
        Ok(started) => started,
        Err(e) => {
            table.skip(cpu_figure, target, e.to_string());
            return table.skip(instructions_figure, "reported", e.to_string());
        }
    };
    let urls: Vec<String> = (0..8).map(|_| format!("https://127.0.0.1:{}/", server.port)).collect();
    let serve = |port| {
        let mut args = daemon::serve_args(port, "5s", &[]);
        args.extend(urls.iter().enumerate().map(|(i, url)| format!("c{i}={url}")));
        args
    };
    let rounds = if options.quick { 300 } else { 1000 };
    eprintln!("{rounds} /all rounds of HTTPS checks, and as many of Go's");
    let measured = (|| {
        let port = support::free_port(support::LOCALHOST_V4);
        let daemon = Process::start(daemon_bin, &serve(port), port, &dir.join("https.log"), Duration::from_secs(5))?;
        let (us, done, rate) = cpu_per_round(&daemon, rounds)?;
        drop(daemon);
        let go_us = https::go_cpu_per_round(&go, done, &urls)?;
        let ratio = us / go_us;
        Ok((
            format!("{us:.0} us vs Go {go_us:.0} us = {ratio:.2} x ({done} rounds, {rate:.0} rounds/s)"),
            Some(ratio <= 0.5),
        ))
    })();
    table.result(cpu_figure, target, measured);
    if reference::which("valgrind").is_none() {
        return table.skip(instructions_figure, "reported", "install valgrind (apt-get install valgrind)".into());
    }
    eprintln!("callgrind: {instructions_figure}");
    let ours = callgrind::instructions_per_round_with(&[], release, &serve, dir, 20, 120);
    let go = https::go_instructions_per_round(&go, &urls, dir, 20, 60);
    let measured = match (ours, go) {
        (Ok(ours), Ok(go)) => Ok((format!("{:.2} M vs Go {:.2} M = {:.2} x", ours / 1e6, go / 1e6, ours / go), None)),
        (Ok(ours), Err(e)) => Ok((format!("{:.2} M (Go: {e})", ours / 1e6), None)),
        (Err(e), _) => Err(e),
    };
    table.result(instructions_figure, "reported", measured);
}

/// The daemon's CPU (user+sys) per `/all` round over up to `rounds`
/// sequential rounds: (microseconds, rounds done, rounds per second).
fn cpu_per_round(daemon: &Process, rounds: u64) -> io::Result<(f64, u64, f64)> {
    let mut client = Client::connect(daemon.port)?;
    let before = daemon.cpu_seconds()?;
    let start = Instant::now();
    let mut done = 0;
    // Bounded in time too: a slow machine reports fewer rounds.
    while done < rounds && start.elapsed() < Duration::from_secs(180) {
        if client.get("/all")? != 200 {
            return Err(io::Error::other("/all failed during the rounds"));
        }
        done += 1;
    }
    let us = (daemon.cpu_seconds()? - before) * 1e6 / done as f64;
    Ok((us, done, done as f64 / start.elapsed().as_secs_f64()))
}

/// Named checks beside IP literals, on the same stubs: CPU and instructions
/// per `/all` round for 8 endpoints and `/all` latency for 1,000, with a
/// lookup for every name each round (TTL 0) and with answers reused (TTL 30).
fn names(table: &mut Table, daemon_bin: &Path, release: &Path, stubs: &Stubs, dir: &Path, options: &Options) {
    let rounds = options.rounds / 5;
    let cases: [(&str, Option<u32>); 3] = [
        ("IP literals", None),
        ("names, TTL 0 (lookups every round)", Some(0)),
        ("names, TTL 30 (answers reused)", Some(30)),
    ];
    // Why the named cases cannot run here, if they cannot.
    let why = names::unavailable();
    let skipped = |ttl: Option<u32>| ttl.and(why.clone());
    let start = |checks: &[u16], ttl: Option<u32>, timeout: &str| -> io::Result<(Process, Option<names::Responder>)> {
        let port = support::free_port(support::LOCALHOST_V4);
        match ttl {
            None => {
                let args = daemon::serve_args(port, timeout, checks);
                Ok((Process::start(daemon_bin, &args, port, &dir.join("names.log"), Duration::from_secs(5))?, None))
            }
            Some(ttl) => {
                let responder = names::Responder::start(ttl)?;
                let args = names::serve_args(port, timeout, checks);
                Ok((names::start_daemon(daemon_bin, &args, port, &responder, dir)?, Some(responder)))
            }
        }
    };
    for (label, ttl) in cases {
        let figure = format!("CPU per /all round, 8 fast endpoints, {label}");
        if let Some(why) = skipped(ttl) {
            table.skip(&figure, "reported", why);
            continue;
        }
        eprintln!("{figure}");
        let measured = start(&stubs.fast[..8], ttl, "1s").and_then(|(daemon, responder)| {
            let (us, done, rate) = cpu_per_round(&daemon, rounds)?;
            let asked = responder.map_or(String::new(), |r| {
                format!(", {:.1} DNS questions/round", r.asked.load(Ordering::Relaxed) as f64 / done as f64)
            });
            Ok((format!("{us:.0} us ({done} rounds, {rate:.0} rounds/s{asked})"), None))
        });
        table.result(&figure, "reported", measured);
    }
    for (label, ttl) in cases {
        let figure = format!("instructions per /all round, 8 fast endpoints, {label} (callgrind)");
        if reference::which("valgrind").is_none() {
            table.skip(&figure, "reported", "install valgrind (apt-get install valgrind)".into());
            continue;
        }
        if let Some(why) = skipped(ttl) {
            table.skip(&figure, "reported", why);
            continue;
        }
        eprintln!("callgrind: {figure}");
        let fast8 = &stubs.fast[..8];
        let measured = match ttl {
            None => callgrind::instructions_per_round(release, fast8, dir, 100, 1100),
            Some(ttl) => names::Responder::start(ttl).and_then(|responder| {
                let wrapper = names::wrapper(&responder, dir)?;
                let serve = |port| names::serve_args(port, "10s", fast8);
                callgrind::instructions_per_round_with(&wrapper, release, &serve, dir, 100, 1100)
            }),
        };
        table.result(&figure, "reported", measured.map(|n| (format!("{:.0} k instructions", n / 1000.0), None)));
    }
    for (label, ttl) in cases {
        let figure = format!("/all latency, 1,000 fast endpoints, {label}");
        if let Some(why) = skipped(ttl) {
            table.skip(&figure, "reported", why);
            continue;
        }
        eprintln!("latency: {figure}");
        let measured = start(&stubs.fast, ttl, "2s").and_then(|(daemon, _responder)| {
            let (median, p99) = all_latency(daemon.port, 40)?;
            Ok((format!("median {median:.1} ms, p99 {p99:.1} ms (40 rounds)"), None))
        });
        table.result(&figure, "reported", measured);
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Raises this process's descriptor limit to the hard limit (the stubs,
/// the flood, and the daemons, which inherit it, need thousands).
fn raise_nofile() -> io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let needed = (FLOOD + 2 * 1008 + 100) as u64;
    if limit.rlim_cur < needed {
        return Err(io::Error::other(format!(
            "RLIMIT_NOFILE hard limit {} is below the {needed} the bench needs",
            limit.rlim_cur
        )));
    }
    Ok(limit.rlim_cur)
}

/// The machine line printed above the table.
fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| Some(l.strip_prefix("model name")?.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("\nmachine: {cores} cores, {cpu}, Linux {}", kernel.trim());
}
