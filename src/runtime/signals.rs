//! Signals as a mio source: a non-blocking signalfd for a blocked set.
//!
//! Blocked signals are queued even for PID 1 (the kernel drops only the
//! unblocked signals PID 1 has no handler for), so this works in a
//! container without an init.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

pub(crate) struct Signals {
    fd: OwnedFd,
    /// The mask before [`Signals::new`] blocked ours: what a child should
    /// start with (spawn and exec keep the caller's mask).
    original: libc::sigset_t,
}

impl Signals {
    /// Blocks `signals` for this (single-threaded) process and opens a
    /// signalfd for them. Children inherit the blocked mask: give them
    /// [`Signals::original_mask`] before they exec.
    pub(crate) fn new(signals: &[libc::c_int]) -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; the
        // calls only read and write it and the process's mask.
        unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            for &sig in signals {
                libc::sigaddset(set.as_mut_ptr(), sig);
            }
            let set = set.assume_init();
            let mut original = MaybeUninit::<libc::sigset_t>::uninit();
            if libc::sigprocmask(libc::SIG_BLOCK, &set, original.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let original = original.assume_init();
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals { fd: OwnedFd::from_raw_fd(fd), original })
        }
    }

    /// The signal mask this process had before [`Signals::new`].
    pub(crate) fn original_mask(&self) -> libc::sigset_t {
        self.original
    }

    /// The next pending signal, or None when there is none.
    pub(crate) fn pending(&mut self) -> io::Result<Option<libc::c_int>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: reads at most `size` bytes into `info`.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if n == size as isize {
                // SAFETY: the kernel filled the whole struct.
                return Ok(Some(unsafe { info.assume_init() }.ssi_signo as libc::c_int));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ if n >= 0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short signalfd read")),
                _ => return Err(err),
            }
        }
    }
}

impl Source for Signals {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

/// The conventional name of a signal, for logs: every standard Linux
/// signal by name, others (real-time ones) by number.
pub(crate) fn name(sig: libc::c_int) -> String {
    const NAMES: [(libc::c_int, &str); 30] = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGSTKFLT, "SIGSTKFLT"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    match NAMES.iter().find(|(n, _)| *n == sig) {
        Some((_, name)) => (*name).to_string(),
        None => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signals_have_their_names() {
        assert_eq!(super::name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(super::name(libc::SIGTERM), "SIGTERM");
        assert_eq!(super::name(libc::SIGABRT), "SIGABRT");
        assert_eq!(super::name(libc::SIGRTMIN() + 1), format!("signal {}", libc::SIGRTMIN() + 1));
    }
}
