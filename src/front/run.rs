//! `healthcheck run`: the job wrapper. Wait until the checks pass, run the
//! command, forward signals to it, then call the completion callbacks and
//! exit with its code.

use std::ffi::{CString, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt as _;
use std::ptr;
use std::time::{Duration, Instant};

use crate::check::Check;
use crate::front::cli::{RunConfig, When};
use crate::front::error::Error;
use crate::front::log;
use crate::runtime::signals;
use crate::runtime::waiter::Waiter;
use crate::verdict::Verdict;
use crate::wire::text::DisplayDuration;

/// sysexits.h EX_UNAVAILABLE: the checks never passed.
pub(crate) const EX_UNAVAILABLE: u8 = 69;
/// POSIX shell conventions for a command that cannot be run.
pub(crate) const EXIT_CANNOT_EXECUTE: u8 = 126;
pub(crate) const EXIT_NOT_FOUND: u8 = 127;

/// Signals passed on to the command. Nothing else is: SIGCHLD is ours, and
/// runtime-internal signals (SIGURG, SIGPIPE, ...) are not for forwarding.
const FORWARDED: [libc::c_int; 6] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];
/// While waiting, at most one progress line per this interval.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// A failed `--on-exit` try is tried again after this pause, doubled after
/// each try up to [`ON_EXIT_BACKOFF_MAX`]: a proxy's admin port that blinks
/// is back within a few hundred milliseconds, and a few tries a second
/// cannot load it.
const ON_EXIT_BACKOFF: Duration = Duration::from_millis(100);
const ON_EXIT_BACKOFF_MAX: Duration = Duration::from_secs(1);

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
    let mut driver = Waiter::new(&signals)?;
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
    // Ours blocks what we forward: the command starts with the mask we
    // were started with.
    let mask = driver.original_mask();
    // Nothing to do after the command: become it, so its signals and exit
    // code are the kernel's business. Not as PID 1: the command would be
    // PID 1 itself, the kernel would drop every signal it has no handler
    // for (SIGTERM included) and nobody would reap orphans.
    let become_it = config.on_exit.is_empty() && std::process::id() != 1;
    let started =
        Argv::new(&config.command).and_then(
            |command| {
                if become_it {
                    Err(command.exec(&mask))
                } else {
                    command.spawn(&mask)
                }
            },
        );
    let pid = match started {
        Ok(pid) => pid,
        Err(err) => {
            let code = spawn_failed(program, &err);
            return finish(&mut driver, config, code);
        }
    };
    log::info("child_started").kv("pid", pid).kv("command", program.to_string_lossy());
    let code = supervise(&mut driver, pid)?;
    finish(&mut driver, config, code)
}

fn spawn_failed(program: &OsString, err: &io::Error) -> u8 {
    let code = if err.kind() == io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_EXECUTE };
    log::error("exec_failed").kv("command", program.to_string_lossy()).kv("error", err).kv("exit_code", code);
    code
}

extern "C" {
    /// The process's environment (POSIX), which the command inherits.
    static environ: *const *mut libc::c_char;
}

/// COMMAND as the exec family takes it: C strings and the null-ended
/// array of pointers into them. The first is looked up in `PATH`.
struct Argv {
    _strings: Vec<CString>,
    pointers: Vec<*mut libc::c_char>,
}

impl Argv {
    fn new(command: &[OsString]) -> io::Result<Argv> {
        // Arguments from the command line never hold a NUL byte.
        let strings = command
            .iter()
            .map(|arg| CString::new(arg.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput)))
            .collect::<io::Result<Vec<CString>>>()?;
        let mut pointers: Vec<_> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
        pointers.push(ptr::null_mut());
        Ok(Argv { _strings: strings, pointers })
    }

    /// Starts the command as a child with the signal mask `mask` and
    /// SIGPIPE at its default action (std ignores SIGPIPE in us, and an
    /// ignored signal stays ignored across exec), as std's spawn does.
    /// musl and glibc report a failed exec (not found, not executable) as
    /// the error.
    fn spawn(&self, mask: &libc::sigset_t) -> io::Result<libc::pid_t> {
        let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        let mut default = MaybeUninit::<libc::sigset_t>::uninit();
        let mut pid = 0;
        // SAFETY: attr is initialised by posix_spawnattr_init before use
        // and destroyed once; the sets are initialised by sigemptyset; the
        // argv and environ arrays are null-ended and outlive the call.
        unsafe {
            os_result(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
            libc::sigemptyset(default.as_mut_ptr());
            libc::sigaddset(default.as_mut_ptr(), libc::SIGPIPE);
            let flags = (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
            let spawned = os_result(libc::posix_spawnattr_setflags(attr.as_mut_ptr(), flags))
                .and_then(|()| os_result(libc::posix_spawnattr_setsigmask(attr.as_mut_ptr(), mask)))
                .and_then(|()| os_result(libc::posix_spawnattr_setsigdefault(attr.as_mut_ptr(), default.as_ptr())))
                .and_then(|()| {
                    let (program, argv) = (self.pointers[0], self.pointers.as_ptr());
                    os_result(libc::posix_spawnp(&mut pid, program, ptr::null(), attr.as_ptr(), argv, environ))
                });
            libc::posix_spawnattr_destroy(attr.as_mut_ptr());
            spawned.map(|()| pid)
        }
    }

    /// Replaces this process with the command, in the state [`Argv::spawn`]
    /// gives a child. Returns only when that failed, the wrapper's own
    /// mask and SIGPIPE disposition back in place.
    fn exec(&self, mask: &libc::sigset_t) -> io::Error {
        let mut ours = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigprocmask writes the old mask into `ours` (read only
        // after it succeeded); the argv array is null-ended.
        unsafe {
            if libc::sigprocmask(libc::SIG_SETMASK, mask, ours.as_mut_ptr()) != 0 {
                return io::Error::last_os_error();
            }
            let pipe = libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::execvp(self.pointers[0], self.pointers.as_ptr().cast());
            let err = io::Error::last_os_error();
            libc::signal(libc::SIGPIPE, pipe);
            libc::sigprocmask(libc::SIG_SETMASK, ours.as_ptr(), ptr::null_mut());
            err
        }
    }
}

/// The posix_spawn family's result: 0 or an error number.
fn os_result(code: libc::c_int) -> io::Result<()> {
    match code {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Probes the wait checks every interval until they all pass, the wait
/// times out, or a signal arrives.
fn wait(driver: &mut Waiter, config: &RunConfig) -> Result<Waited, Error> {
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
fn supervise(driver: &mut Waiter, pid: libc::pid_t) -> Result<u8, Error> {
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
fn finish(driver: &mut Waiter, config: &RunConfig, code: u8) -> Result<u8, Error> {
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
    call_back(driver, config)?;
    Ok(code)
}

/// Calls every callback, concurrently, until each has succeeded or
/// `--on-exit-timeout` has run out: a failed try (refused, reset, timed
/// out, not 2xx) is tried again after a backoff. Each try is bounded by
/// `--timeout`, as a wait attempt is, and by what is left. Signals are not
/// handled: they would only cut the callbacks short, which are bounded
/// anyway.
fn call_back(driver: &mut Waiter, config: &RunConfig) -> Result<(), Error> {
    let start = Instant::now();
    let give_up_at = start + config.on_exit_timeout;
    let mut pending: Vec<Check> = config.on_exit.clone();
    let mut backoff = ON_EXIT_BACKOFF;
    let mut attempt = 1u32;
    loop {
        let left = give_up_at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let timeout = left.min(config.timeout);
        let Ok(verdicts) = driver.round(&pending, timeout, |_| false)? else {
            unreachable!("an uninterruptible round always ends with verdicts");
        };
        let now = Instant::now();
        // The last try starts early enough to have a moment of its own.
        let retry_at = (now + backoff).min(give_up_at.checked_sub(ON_EXIT_BACKOFF).unwrap_or(give_up_at));
        let last = retry_at <= now;
        let mut failed = Vec::new();
        for (check, verdict) in pending.into_iter().zip(verdicts) {
            let url = String::from_utf8_lossy(&check.target.to_text()).into_owned();
            match verdict {
                Verdict::Pass => drop(log::info("on_exit").kv("url", &url).kv("attempts", attempt).kv("result", "ok")),
                Verdict::Fail(reason) if last => drop(
                    log::warn("on_exit")
                        .kv("url", &url)
                        .kv("attempts", attempt)
                        .kv("elapsed_ms", now.duration_since(start).as_millis())
                        .kv("then", "give up")
                        .kv("result", reason),
                ),
                Verdict::Fail(reason) => {
                    log::warn("on_exit_retry")
                        .kv("url", &url)
                        .kv("attempt", attempt)
                        .kv("retry_in_ms", retry_at.duration_since(now).as_millis())
                        .kv("result", reason);
                    failed.push(check);
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        pending = failed;
        // A signal ends the pause early: pause again until the retry is due.
        while driver.pause(Some(retry_at))?.is_some() {
            reap_strays();
        }
        backoff = (backoff * 2).min(ON_EXIT_BACKOFF_MAX);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Reason;

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
