//! `healthcheck run`: the job wrapper. Wait until the checks pass, run the
//! command, forward signals to it, then call the completion callbacks and
//! exit with its code.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::check::{Check, DisplayDuration, Verdict};
use crate::cli::{RunConfig, When};
use crate::log;
use crate::oneshot::Driver;
use crate::signals;
use crate::Error;

/// sysexits.h EX_UNAVAILABLE: the checks never passed.
pub const EX_UNAVAILABLE: u8 = 69;
/// POSIX shell conventions for a command that cannot be run.
pub const EXIT_CANNOT_EXECUTE: u8 = 126;
pub const EXIT_NOT_FOUND: u8 = 127;

/// Signals passed on to the command. Nothing else is: SIGCHLD is ours, and
/// runtime-internal signals (SIGURG, SIGPIPE, ...) are not for forwarding.
const FORWARDED: [libc::c_int; 6] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];
/// While waiting, at most one progress line per this interval.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

enum Waited {
    Ready,
    /// The failing checks of the last attempt, with their reasons.
    TimedOut(String),
    Signal(libc::c_int),
}

/// Runs the wrapper; returns the exit code.
pub fn run(config: &RunConfig) -> Result<u8, Error> {
    let mut signals = FORWARDED.to_vec();
    signals.push(libc::SIGCHLD);
    let mut driver = Driver::new(&signals)?;
    let start = Instant::now();
    let waited = wait(&mut driver, config)?;
    // Every end of the wait says how long it took (wait_done does in wait).
    let elapsed_ms = start.elapsed().as_millis();
    match waited {
        Waited::Ready => {}
        Waited::Signal(sig) => {
            log::warn("wait_interrupted").kv("signal", signals::name(sig)).kv("elapsed_ms", elapsed_ms);
            return finish(&mut driver, config, 128 + sig as u8);
        }
        Waited::TimedOut(failing) if config.wait_timeout_continue => {
            log::warn("wait_timeout").kv("elapsed_ms", elapsed_ms).kv("then", "continue").kv("failing", failing);
        }
        Waited::TimedOut(failing) => {
            log::error("wait_timeout")
                .kv("elapsed_ms", elapsed_ms)
                .kv("then", "give up")
                .kv("exit_code", EX_UNAVAILABLE)
                .kv("failing", failing);
            return finish(&mut driver, config, EX_UNAVAILABLE);
        }
    }
    let program = &config.command[0];
    let mut command = Command::new(program);
    command.args(&config.command[1..]);
    // std keeps the caller's signal mask, and ours blocks what we forward:
    // the command starts with the mask we were started with.
    let mask = driver.original_mask();
    // SAFETY: the closure runs between fork and exec and only calls
    // sigprocmask, which is async-signal-safe, on a copied mask.
    unsafe {
        command.pre_exec(move || match libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        });
    }
    if config.on_exit.is_empty() && std::process::id() != 1 {
        // Nothing to do after the command: become it, so its signals and
        // exit code are the kernel's business. Not as PID 1: the command
        // would be PID 1 itself, the kernel would drop every signal it has
        // no handler for (SIGTERM included) and nobody would reap orphans.
        let err = command.exec();
        return Ok(spawn_failed(program, &err));
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let code = spawn_failed(program, &err);
            return finish(&mut driver, config, code);
        }
    };
    let pid = child.id() as libc::pid_t;
    log::info("child_started").kv("pid", pid).kv("command", program.to_string_lossy());
    let code = supervise(&mut driver, pid)?;
    finish(&mut driver, config, code)
}

fn spawn_failed(program: &OsString, err: &io::Error) -> u8 {
    let code = if err.kind() == io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_EXECUTE };
    log::error("exec_failed").kv("command", program.to_string_lossy()).kv("error", err).kv("exit_code", code);
    code
}

/// Probes the wait checks every interval until they all pass, the wait
/// times out, or a signal arrives.
fn wait(driver: &mut Driver, config: &RunConfig) -> Result<Waited, Error> {
    if config.wait.is_empty() {
        return Ok(Waited::Ready);
    }
    let start = Instant::now();
    let give_up_at = config.wait_timeout.map(|d| start + d);
    let names: Vec<&str> = config.wait.iter().map(|c| c.name.as_str()).collect();
    let mut line = log::info("waiting").kv("checks", names.join(",")).kv("interval", DisplayDuration(config.interval));
    if let Some(d) = config.wait_timeout {
        line = line.kv("wait_timeout", DisplayDuration(d));
    }
    drop(line);
    let mut last_progress = start;
    let mut attempts = 0u64;
    loop {
        let round_start = Instant::now();
        // The last attempt is cut short so the wait ends on time.
        let timeout = match give_up_at {
            Some(t) => config.timeout.min(t.saturating_duration_since(round_start)).max(Duration::from_millis(1)),
            None => config.timeout,
        };
        attempts += 1;
        // SIGCHLD means a stray child ended: it does not cut the attempt
        // short, and the strays are reaped after it.
        let round = driver.round(&config.wait, timeout, |sig| sig != libc::SIGCHLD)?;
        reap_strays();
        let verdicts = match round {
            Ok(verdicts) => verdicts,
            Err(sig) => return Ok(Waited::Signal(sig)),
        };
        let now = Instant::now();
        if verdicts.iter().all(Verdict::passed) {
            log::info("wait_done").kv("elapsed_ms", now.duration_since(start).as_millis()).kv("attempts", attempts);
            return Ok(Waited::Ready);
        }
        let failing = failing_reasons(&config.wait, &verdicts);
        if now.duration_since(last_progress) >= PROGRESS_EVERY {
            last_progress = now;
            log::info("still_waiting")
                .kv("elapsed_s", now.duration_since(start).as_secs())
                .kv("attempts", attempts)
                .kv("failing", &failing);
        }
        if give_up_at.is_some_and(|t| now >= t) {
            return Ok(Waited::TimedOut(failing));
        }
        let next = round_start + config.interval;
        let until = give_up_at.map_or(next, |t| next.min(t));
        loop {
            match driver.pause(Some(until))? {
                Some(libc::SIGCHLD) => reap_strays(),
                Some(sig) => return Ok(Waited::Signal(sig)),
                None => break,
            }
        }
        if give_up_at.is_some_and(|t| Instant::now() >= t) {
            return Ok(Waited::TimedOut(failing));
        }
    }
}

/// Checks listed in a log value at most; a thousand failing checks must not
/// make one giant line.
const LOGGED_FAILING: usize = 16;

/// `NAME: REASON; NAME: REASON` for the failing checks of an attempt.
fn failing_reasons(checks: &[Check], verdicts: &[Verdict]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let failed = checks.iter().zip(verdicts).filter_map(|(c, v)| match v {
        Verdict::Fail(reason) => Some((c, reason)),
        Verdict::Pass => None,
    });
    for (n, (check, reason)) in failed.enumerate() {
        if n == LOGGED_FAILING {
            out.push_str("; ...");
            break;
        }
        let sep = if n == 0 { "" } else { "; " };
        let _ = write!(out, "{sep}{}: {reason}", check.name);
    }
    out
}

/// Before COMMAND exists, SIGCHLD only means that a child we inherited
/// (or, as PID 1, an orphan) ended: reap it and keep waiting.
fn reap_strays() {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local; we have no child of
    // our own yet, so nothing reaped here is waited for elsewhere.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

/// Forwards signals to the child until it exits; reaps every child (as
/// PID 1, orphans are re-parented to us). Returns the child's exit code,
/// 128+N when signal N killed it.
fn supervise(driver: &mut Driver, pid: libc::pid_t) -> Result<u8, Error> {
    loop {
        let Some(sig) = driver.pause(None)? else { continue };
        if sig != libc::SIGCHLD {
            // SAFETY: kill only sends a signal; the child is not reaped
            // before we see its exit below, so the pid is still ours.
            unsafe { libc::kill(pid, sig) };
            log::info("signal_forwarded").kv("signal", signals::name(sig)).kv("pid", pid);
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a local.
            let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if reaped <= 0 {
                break; // 0: children remain; -1 (ECHILD): none left
            }
            if reaped != pid {
                continue; // an orphan we inherited as PID 1
            }
            let code = if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                log::info("child_exited").kv("signal", signals::name(sig)).kv("exit_code", 128 + sig);
                128 + sig as u8
            } else {
                let code = libc::WEXITSTATUS(status) as u8;
                log::info("child_exited").kv("exit_code", code);
                code
            };
            return Ok(code);
        }
    }
}

/// Calls the completion callbacks (if `--on-exit-when` says so for this
/// code) and returns the code: their outcome never changes it.
fn finish(driver: &mut Driver, config: &RunConfig, code: u8) -> Result<u8, Error> {
    let wanted = match config.on_exit_when {
        When::Always => true,
        When::Success => code == 0,
        When::Failure => code != 0,
    };
    if config.on_exit.is_empty() {
        return Ok(code);
    }
    if !wanted {
        log::info("on_exit_skipped").kv("exit_code", code).kv("when", config.on_exit_when.as_str());
        return Ok(code);
    }
    // Signals now would only cut the callbacks short; they are bounded by
    // --on-exit-timeout anyway.
    let Ok(verdicts) = driver.round(&config.on_exit, config.on_exit_timeout, |_| false)? else {
        unreachable!("an uninterruptible round always ends with verdicts");
    };
    for (check, verdict) in config.on_exit.iter().zip(&verdicts) {
        log_callback(check, verdict);
    }
    Ok(code)
}

fn log_callback(check: &Check, verdict: &Verdict) {
    match verdict {
        Verdict::Pass => drop(log::info("on_exit").kv("url", &check.url).kv("result", "ok")),
        Verdict::Fail(reason) => drop(log::warn("on_exit").kv("url", &check.url).kv("result", reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Reason;

    #[test]
    fn failing_reasons_name_at_most_16_checks() {
        let checks: Vec<Check> =
            (0..20).map(|i| Check::parse(&format!("c{i}=http://127.0.0.1:{}/", 1000 + i)).unwrap()).collect();
        let mut verdicts = vec![Verdict::Fail(Reason::Refused); 20];
        verdicts[1] = Verdict::Pass;
        let text = failing_reasons(&checks[..3], &verdicts[..3]);
        assert_eq!(text, "c0: connection refused; c2: connection refused");
        let text = failing_reasons(&checks, &verdicts);
        assert_eq!(text.matches(": connection refused").count(), LOGGED_FAILING, "{text}");
        assert!(text.ends_with("c16: connection refused; ..."), "{text}");
    }
}
