//! The probe engine: runs a round of probes, one non-blocking socket per
//! check, on the caller's `mio::Poll`, under one deadline per round, and
//! tells which checks have their verdict (and since when) as they land.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::check::{Check, Verdict};
use crate::probe::{Action, Probe};

/// Hands out tokens from a counter that only goes up, so an event that
/// arrives late for a closed socket can never reach a newer one.
#[derive(Debug)]
pub struct Tokens {
    next: usize,
}

impl Tokens {
    /// Tokens below `first` are reserved for fixed sources.
    pub fn new(first: usize) -> Tokens {
        Tokens { next: first }
    }

    pub fn next_token(&mut self) -> Token {
        self.block(1)
    }

    /// `n` consecutive tokens; the first is returned.
    pub fn block(&mut self, n: usize) -> Token {
        let first = self.next;
        self.next += n;
        Token(first)
    }
}

#[derive(Debug, Default)]
struct Slot {
    probe: Probe,
    stream: Option<TcpStream>,
    verdict: Option<Verdict>,
    /// When `verdict` landed.
    settled: Option<Instant>,
}

/// Runs rounds: every check probed once, concurrently.
#[derive(Debug)]
pub struct Engine {
    /// One slot per check; kept across rounds to reuse their buffers.
    slots: Vec<Slot>,
    /// Token of slot 0 in the running round.
    base: usize,
    started: Instant,
    deadline: Option<Instant>,
    timeout: Duration,
    pending: usize,
    scratch: Box<[u8]>,
}

/// Read buffer: a probe response head fits at once most of the time.
const SCRATCH: usize = 16 * 1024;

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        Engine {
            slots: Vec::new(),
            base: 0,
            started: Instant::now(),
            deadline: None,
            timeout: Duration::ZERO,
            pending: 0,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.deadline.is_some()
    }

    /// The running round's deadline, for the poll timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Starts a round: one probe per check, all at once. Connections that
    /// fail at once settle their verdict here.
    pub fn start(
        &mut self,
        checks: &[Check],
        timeout: Duration,
        now: Instant,
        registry: &Registry,
        tokens: &mut Tokens,
    ) {
        debug_assert!(!self.is_running(), "one round at a time");
        self.base = tokens.block(checks.len()).0;
        self.started = now;
        self.timeout = timeout;
        self.deadline = Some(now + timeout);
        self.pending = checks.len();
        self.slots.resize_with(checks.len(), Slot::default);
        for (i, (slot, check)) in self.slots.iter_mut().zip(checks).enumerate() {
            slot.verdict = None;
            slot.settled = None;
            let action = slot.probe.start(check, now + timeout);
            if drive(slot, check, action, registry, Token(self.base + i), &mut self.scratch, now) {
                self.pending -= 1;
            }
        }
    }

    /// Handles readiness of `token` at `now`; false when the token is not a
    /// probe's (the caller then looks elsewhere).
    pub fn ready(&mut self, token: Token, checks: &[Check], registry: &Registry, now: Instant) -> bool {
        let Some(i) = token.0.checked_sub(self.base).filter(|&i| i < self.slots.len()) else {
            return false;
        };
        if !self.is_running() {
            return true; // a late event for a finished round: nothing to do
        }
        let slot = &mut self.slots[i];
        let check = &checks[i];
        let Some(stream) = &slot.stream else {
            return true;
        };
        let action = if slot.probe.is_connecting() {
            match connect_result(stream) {
                None => return true, // spurious: still connecting
                Some(Ok(())) => slot.probe.connected(check, now),
                Some(Err(e)) => slot.probe.connect_failed(check, &e),
            }
        } else {
            match slot.probe.resume() {
                Some(action) => action,
                None => return true,
            }
        };
        if drive(slot, check, action, registry, token, &mut self.scratch, now) {
            self.pending -= 1;
        }
        true
    }

    /// Fails every probe still running once the deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        for slot in self.slots.iter_mut().filter(|s| s.verdict.is_none()) {
            let verdict = slot.probe.timed_out(self.timeout);
            close(slot);
            slot.verdict = Some(verdict);
            slot.settled = Some(now);
        }
        self.pending = 0;
    }

    /// Check `i`'s verdict in the running round (None while its probe
    /// runs), or in the last round until the next one starts.
    pub fn verdict(&self, i: usize) -> Option<&Verdict> {
        self.slots.get(i)?.verdict.as_ref()
    }

    /// When check `i`'s verdict landed (see [`Engine::verdict`]).
    pub fn settled_at(&self, i: usize) -> Option<Instant> {
        self.slots.get(i)?.settled
    }

    /// When the running (or last) round started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How many checks of the running round still wait for their verdict.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Drops the running round (its sockets close); its verdicts are lost.
    pub fn abort(&mut self) {
        for slot in &mut self.slots {
            close(slot);
        }
        self.deadline = None;
        self.pending = 0;
    }

    /// The verdicts, once per round, when every probe has one.
    pub fn finished(&mut self) -> Option<Finished<'_>> {
        if !self.is_running() || self.pending > 0 {
            return None;
        }
        self.deadline = None;
        Some(Finished { slots: &self.slots, started: self.started })
    }
}

/// A finished round: its verdicts in check order.
pub struct Finished<'a> {
    slots: &'a [Slot],
    pub started: Instant,
}

impl<'a> Finished<'a> {
    pub fn verdicts(&self) -> impl ExactSizeIterator<Item = &'a Verdict> + 'a {
        let slots: &'a [Slot] = self.slots;
        slots.iter().map(|s| s.verdict.as_ref().expect("a finished round has every verdict"))
    }
}

/// Whether a non-blocking connect has completed: None while in progress.
fn connect_result(stream: &TcpStream) -> Option<io::Result<()>> {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Some(Err(e)),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
        Err(e) => Some(Err(e)),
    }
}

/// Closes the probe's socket. Closing removes it from the poll too: an
/// explicit deregister would cost one more syscall per probe for nothing.
fn close(slot: &mut Slot) {
    slot.stream = None;
}

/// Carries out actions until one has to wait for readiness. Returns true
/// when the probe reached its verdict.
fn drive(
    slot: &mut Slot,
    check: &Check,
    mut action: Action,
    registry: &Registry,
    token: Token,
    scratch: &mut [u8],
    now: Instant,
) -> bool {
    loop {
        action = match action {
            Action::Connect(addr) => {
                close(slot);
                match TcpStream::connect(addr) {
                    Ok(mut stream) => {
                        match registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE) {
                            Ok(()) => {
                                slot.stream = Some(stream);
                                return false;
                            }
                            Err(e) => slot.probe.connect_failed(check, &e),
                        }
                    }
                    Err(e) => slot.probe.connect_failed(check, &e),
                }
            }
            Action::Send => {
                let Some(stream) = slot.stream.as_mut() else { unreachable!("sending needs a connection") };
                match stream.write(slot.probe.output(check)) {
                    Ok(n) => slot.probe.wrote(check, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Action::Send,
                    Err(e) => slot.probe.io_failed(check, &e),
                }
            }
            Action::Receive => {
                let Some(stream) = slot.stream.as_mut() else { unreachable!("receiving needs a connection") };
                match stream.read(scratch) {
                    Ok(0) => slot.probe.eof(check),
                    Ok(n) => slot.probe.received(check, &scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Action::Receive,
                    Err(e) => slot.probe.io_failed(check, &e),
                }
            }
            Action::Done(verdict) => {
                close(slot);
                slot.verdict = Some(verdict);
                slot.settled = Some(now);
                return true;
            }
        };
    }
}
