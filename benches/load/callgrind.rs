//! Instructions per `/all` round, counted by callgrind: two runs of the
//! daemon under valgrind that differ only in their number of rounds, so
//! startup and shutdown cancel out.

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::client::Client;
use crate::daemon::{self, Process};

/// Under valgrind the daemon runs some 50 times slower.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Instructions per round with `checks`, from runs of `few` and `many`
/// rounds.
pub fn instructions_per_round(binary: &Path, checks: &[u16], dir: &Path, few: u64, many: u64) -> io::Result<f64> {
    let serve = |port| daemon::serve_args(port, "10s", checks);
    instructions_per_round_with(&[], binary, &serve, dir, few, many)
}

/// Instructions per keep-alive `GET path` answered at once (`/self`), from
/// runs of `few` and `many` requests.
pub fn instructions_per_request(
    binary: &Path,
    checks: &[u16],
    path: &str,
    dir: &Path,
    few: u64,
    many: u64,
) -> io::Result<f64> {
    let serve = |port| daemon::serve_args(port, "10s", checks);
    let a = run(&[], binary, &serve, dir, path, few)?;
    let b = run(&[], binary, &serve, dir, path, many)?;
    Ok(b.saturating_sub(a) as f64 / (many - few) as f64)
}

/// The same, valgrind started by `wrapper` (a program and its arguments;
/// empty: none) and the daemon given `serve(port)`.
pub fn instructions_per_round_with(
    wrapper: &[String],
    binary: &Path,
    serve: &dyn Fn(u16) -> Vec<String>,
    dir: &Path,
    few: u64,
    many: u64,
) -> io::Result<f64> {
    let a = run(wrapper, binary, serve, dir, "/all", few)?;
    let b = run(wrapper, binary, serve, dir, "/all", many)?;
    Ok(b.saturating_sub(a) as f64 / (many - few) as f64)
}

/// Total instructions of one daemon run that answered `rounds` `GET path`
/// on one keep-alive connection.
fn run(
    wrapper: &[String],
    binary: &Path,
    serve: &dyn Fn(u16) -> Vec<String>,
    dir: &Path,
    path: &str,
    rounds: u64,
) -> io::Result<u64> {
    let port = support::free_port(support::LOCALHOST_V4);
    let out = dir.join(format!("callgrind.{rounds}.out"));
    let mut args: Vec<String> = wrapper.iter().skip(1).cloned().collect();
    if !wrapper.is_empty() {
        args.push("valgrind".into());
    }
    args.extend(["--tool=callgrind".to_string(), format!("--callgrind-out-file={}", out.display())]);
    args.push(binary.display().to_string());
    // A generous probe timeout: valgrind slows the daemon, not the stubs.
    args.extend(serve(port));
    let program = wrapper.first().map_or("valgrind", String::as_str);
    let mut valgrind = Process::start(Path::new(program), &args, port, &dir.join("valgrind.log"), READY_WITHIN)?;
    let mut client = Client::connect(port)?;
    for _ in 0..rounds {
        client.get(path)?;
    }
    drop(client);
    if !valgrind.stop() {
        return Err(io::Error::other("the daemon under valgrind did not exit cleanly"));
    }
    let text = std::fs::read_to_string(&out)?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:"))?.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no totals in {}", out.display())))
}
