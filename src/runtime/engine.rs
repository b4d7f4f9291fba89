//! The probe engine: runs a round of probes, one non-blocking socket per
//! check, on the caller's `mio::Poll`, under one deadline per round (the
//! names the checks use are looked up first, within it), and tells which
//! checks have their verdict (and since when) as they land.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::driver::{self, Endpoint, Socket, Step};
use super::sockopt;

use crate::check::Check;
use crate::probe::{Action, Probe};
use crate::resolver::schedule::Schedule;
use crate::resolver::{self, Found, Lookup, Resolver};
use crate::verdict::{DnsReason, Reason, Verdict};
use crate::wire::dns::EDNS_UDP_SIZE;

/// Hands out tokens from a counter that only goes up, so an event that
/// arrives late for a closed socket can never reach a newer one.
#[derive(Debug)]
pub(crate) struct Tokens {
    next: usize,
}

impl Tokens {
    /// Tokens below `first` are reserved for fixed sources.
    pub(crate) fn new(first: usize) -> Tokens {
        Tokens { next: first }
    }

    pub(crate) fn next_token(&mut self) -> Token {
        self.block(1)
    }

    /// `n` consecutive tokens; the first is returned.
    pub(crate) fn block(&mut self, n: usize) -> Token {
        let first = self.next;
        self.next += n;
        Token(first)
    }
}

/// Where one check stands in the round.
#[derive(Debug, Default)]
enum Stage {
    /// Not probed yet (before the first round).
    #[default]
    Idle,
    /// Waiting for its name: the probe starts when the lookup ends.
    Resolving,
    /// The probe runs, on this socket once it has one.
    Probing(Option<Socket>),
    /// The verdict, and when it landed.
    Settled(Verdict, Instant),
}

/// One check's probe, kept across rounds to reuse its buffers.
#[derive(Debug, Default)]
struct Slot {
    probe: Probe,
    stage: Stage,
}

/// Whose socket a token is in the running round. Each round takes a block
/// of tokens: one per check for its probe, then one per check for at most a
/// lookup each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Probe(usize),
    Lookup(usize),
}

/// Runs rounds: every check probed once, concurrently.
#[derive(Debug)]
pub(crate) struct Engine {
    slots: Vec<Slot>,
    /// The first token of the running round's block.
    base: usize,
    started: Instant,
    deadline: Option<Instant>,
    timeout: Duration,
    pending: usize,
    scratch: Box<[u8]>,
    resolver: Resolver,
    /// This round's lookups; their sockets are `dns_sockets`, by index.
    schedule: Schedule,
    dns_sockets: Vec<Option<Socket>>,
}

/// kubelet's probe dialer sets SO_LINGER on, 1 s, on every probe socket, so
/// that probes do not pile up sockets in TIME-WAIT; every probe socket here
/// gets the same. A close then waits, at most that long, for the peer to
/// acknowledge what was sent, which on a probe that reached its verdict is
/// the peer's own stack answering at once.
const PROBE_LINGER_SECS: libc::c_int = 1;

/// Read buffer: a probe response head fits at once most of the time.
const SCRATCH: usize = 16 * 1024;

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub(crate) fn new() -> Engine {
        Engine {
            slots: Vec::new(),
            base: 0,
            started: Instant::now(),
            deadline: None,
            timeout: Duration::ZERO,
            pending: 0,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            resolver: Resolver::default(),
            schedule: Schedule::default(),
            dns_sockets: Vec::new(),
        }
    }

    fn token(&self, owner: Owner) -> Token {
        match owner {
            Owner::Probe(i) => Token(self.base + i),
            Owner::Lookup(j) => Token(self.base + self.slots.len() + j),
        }
    }

    fn owner(&self, token: Token) -> Option<Owner> {
        let n = self.slots.len();
        match token.0.checked_sub(self.base)? {
            i if i < n => Some(Owner::Probe(i)),
            j if j < 2 * n => Some(Owner::Lookup(j - n)),
            _ => None,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.deadline.is_some()
    }

    /// When the engine next needs `expire`: the running round's deadline,
    /// or a lookup's retry before it. For the poll timeout.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let deadline = self.deadline?;
        Some(self.schedule.wake().map_or(deadline, |wake| wake.min(deadline)))
    }

    /// Starts a round: one probe per check, all at once, each after its
    /// name's lookup when it has one. Connections that fail at once settle
    /// their verdict here.
    pub(crate) fn start(
        &mut self,
        checks: &[Check],
        timeout: Duration,
        now: Instant,
        registry: &Registry,
        tokens: &mut Tokens,
    ) {
        debug_assert!(!self.is_running(), "one round at a time");
        self.base = tokens.block(2 * checks.len()).0;
        self.started = now;
        self.timeout = timeout;
        self.deadline = Some(now + timeout);
        self.pending = checks.len();
        self.slots.resize_with(checks.len(), Slot::default);
        if checks.iter().any(|c| c.dns_name().is_some()) {
            self.resolver.refresh();
        }
        self.schedule.start(checks);
        self.dns_sockets.clear();
        let mut addrs = Vec::new();
        for (i, check) in checks.iter().enumerate() {
            let Some(name) = check.dns_name() else {
                self.start_probe(i, check, &check.addrs, registry, now);
                continue;
            };
            match self.schedule.ask(i, name, &self.resolver, now) {
                None => self.slots[i].stage = Stage::Resolving,
                Some(Ok(ips)) => {
                    with_port(&mut addrs, &ips, check);
                    self.start_probe(i, check, &addrs, registry, now);
                }
                Some(Err(reason)) => self.settle(i, Verdict::Fail(Reason::Dns(reason)), now),
            }
        }
        self.begin_lookups(checks, registry, now);
    }

    /// Begins queued lookups while the schedule allows.
    fn begin_lookups(&mut self, checks: &[Check], registry: &Registry, now: Instant) {
        while let Some((j, action)) = self.schedule.begin(&mut self.resolver, now) {
            if self.dns_sockets.len() <= j {
                self.dns_sockets.resize_with(j + 1, || None);
            }
            self.drive_lookup(j, action, checks, registry, now);
        }
    }

    /// Starts the probe of check `i` on `addrs`.
    fn start_probe(&mut self, i: usize, check: &Check, addrs: &[SocketAddr], registry: &Registry, now: Instant) {
        let action = self.slots[i].probe.start(check, addrs, self.deadline.unwrap_or(now));
        self.slots[i].stage = Stage::Probing(None);
        self.drive_probe(i, check, action, registry, now);
    }

    /// Carries out probe `i`'s actions until one has to wait; settles its
    /// verdict when it ends.
    fn drive_probe(&mut self, i: usize, check: &Check, action: Action, registry: &Registry, now: Instant) {
        let token = self.token(Owner::Probe(i));
        let slot = &mut self.slots[i];
        let Stage::Probing(socket) = &mut slot.stage else { unreachable!("driving a probe that runs") };
        let mut machine = ProbeIo { probe: &mut slot.probe, check };
        let step = machine.step(action);
        if let Some(verdict) = driver::drive(&mut machine, socket, step, registry, token, &mut self.scratch) {
            slot.stage = Stage::Settled(verdict, now);
            self.pending -= 1;
        }
    }

    /// Gives check `i` its verdict without a probe.
    fn settle(&mut self, i: usize, verdict: Verdict, now: Instant) {
        self.slots[i].stage = Stage::Settled(verdict, now);
        self.pending -= 1;
    }

    /// Carries out a lookup's actions until one has to wait; when it ends,
    /// its checks get their addresses (and start) or their verdict.
    fn drive_lookup(
        &mut self,
        j: usize,
        action: resolver::Action,
        checks: &[Check],
        registry: &Registry,
        now: Instant,
    ) {
        let token = self.token(Owner::Lookup(j));
        let Some(lookup) = self.schedule.running(j) else { unreachable!("driving a lookup that runs") };
        let mut machine = LookupIo { lookup, now };
        let step = machine.step(action);
        let Some(result) =
            driver::drive(&mut machine, &mut self.dns_sockets[j], step, registry, token, &mut self.scratch)
        else {
            self.schedule.waiting(j);
            return;
        };
        let (waiters, outcome) = self.schedule.ended(j, result, &mut self.resolver, now);
        match outcome {
            Ok(ips) => {
                let mut addrs = Vec::new();
                for &i in &waiters {
                    with_port(&mut addrs, &ips, &checks[i]);
                    self.start_probe(i, &checks[i], &addrs, registry, now);
                }
            }
            Err(reason) => {
                for &i in &waiters {
                    self.settle(i, Verdict::Fail(Reason::Dns(reason)), now);
                }
            }
        }
    }

    /// Handles readiness of `token` at `now`; false when the token is not a
    /// probe's or a lookup's (the caller then looks elsewhere).
    pub(crate) fn ready(&mut self, token: Token, checks: &[Check], registry: &Registry, now: Instant) -> bool {
        let Some(owner) = self.owner(token) else {
            return false;
        };
        if !self.is_running() {
            return true; // a late event for a finished round: nothing to do
        }
        let i = match owner {
            Owner::Probe(i) => i,
            Owner::Lookup(j) => {
                self.lookup_ready(j, checks, registry, now);
                return true;
            }
        };
        let slot = &mut self.slots[i];
        let check = &checks[i];
        let Stage::Probing(Some(socket)) = &slot.stage else {
            return true;
        };
        let action = if slot.probe.is_connecting() {
            match socket.connect_result() {
                None => return true, // spurious: still connecting
                Some(Ok(())) => slot.probe.connected(check, now),
                Some(Err(e)) => slot.probe.connect_failed(&e),
            }
        } else {
            match slot.probe.resume() {
                Some(action) => action,
                None => return true,
            }
        };
        self.drive_probe(i, check, action, registry, now);
        true
    }

    fn lookup_ready(&mut self, j: usize, checks: &[Check], registry: &Registry, now: Instant) {
        let Some(lookup) = self.schedule.running(j) else {
            return; // a late event for a lookup that ended
        };
        let action = match self.dns_sockets.get(j) {
            Some(Some(Socket::Tcp(stream))) if lookup.is_connecting() => match driver::connect_result(stream) {
                None => return, // spurious: still connecting
                Some(Ok(())) => lookup.connected(),
                Some(Err(_)) => lookup.io_failed(now),
            },
            Some(Some(_)) => match lookup.resume() {
                Some(action) => action,
                None => return,
            },
            _ => return,
        };
        self.drive_lookup(j, action, checks, registry, now);
        self.begin_lookups(checks, registry, now);
    }

    /// Retries lookups whose try timed out; once the round's deadline has
    /// passed, fails every check still without a verdict: `dns: timeout`
    /// when it is still waiting for its name.
    pub(crate) fn expire(&mut self, now: Instant, checks: &[Check], registry: &Registry) {
        if self.deadline.is_none_or(|d| now < d) {
            if self.schedule.is_due(now) {
                self.retry_lookups(now, checks, registry);
            }
            return;
        }
        for slot in &mut self.slots {
            let verdict = match &mut slot.stage {
                Stage::Settled(..) | Stage::Idle => continue,
                Stage::Resolving => Verdict::Fail(Reason::Dns(DnsReason::Timeout)),
                Stage::Probing(socket) => {
                    reset(socket);
                    slot.probe.timed_out(self.timeout)
                }
            };
            slot.stage = Stage::Settled(verdict, now);
        }
        self.close_lookups();
        self.pending = 0;
    }

    fn retry_lookups(&mut self, now: Instant, checks: &[Check], registry: &Registry) {
        self.schedule.clear_wake();
        for j in 0..self.schedule.count() {
            if let Some(action) = self.schedule.due(j, now) {
                self.drive_lookup(j, action, checks, registry, now);
            }
        }
        self.begin_lookups(checks, registry, now);
    }

    fn close_lookups(&mut self) {
        self.schedule.close();
        self.dns_sockets.clear();
    }

    /// Drops the running round (its sockets close); its verdicts are lost.
    pub(crate) fn abort(&mut self) {
        for slot in &mut self.slots {
            if let Stage::Probing(socket) = &mut slot.stage {
                reset(socket);
            }
        }
        self.close_lookups();
        self.deadline = None;
        self.pending = 0;
    }

    /// Check `i`'s verdict in the running round (None while its probe
    /// runs), or in the last round until the next one starts.
    pub(crate) fn verdict(&self, i: usize) -> Option<&Verdict> {
        match &self.slots.get(i)?.stage {
            Stage::Settled(verdict, _) => Some(verdict),
            _ => None,
        }
    }

    /// When check `i`'s verdict landed (see [`Engine::verdict`]).
    pub(crate) fn settled_at(&self, i: usize) -> Option<Instant> {
        match self.slots.get(i)?.stage {
            Stage::Settled(_, at) => Some(at),
            _ => None,
        }
    }

    /// When the running (or last) round started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// How many checks of the running round still wait for their verdict.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// The verdicts, once per round, when every probe has one.
    pub(crate) fn finished(&mut self) -> Option<Finished<'_>> {
        if !self.is_running() || self.pending > 0 {
            return None;
        }
        self.deadline = None;
        Some(Finished { slots: &self.slots, started: self.started, lookups: self.schedule.count() })
    }
}

/// A finished round: its verdicts in check order.
pub(crate) struct Finished<'a> {
    slots: &'a [Slot],
    pub(crate) started: Instant,
    /// Names looked up in the round (not those answered by the hosts
    /// file or the cache).
    pub(crate) lookups: usize,
}

impl<'a> Finished<'a> {
    pub(crate) fn verdicts(&self) -> impl ExactSizeIterator<Item = &'a Verdict> + 'a {
        let slots: &'a [Slot] = self.slots;
        slots.iter().map(|s| match &s.stage {
            Stage::Settled(verdict, _) => verdict,
            _ => unreachable!("a finished round has every verdict"),
        })
    }

    /// How long after the round's start each verdict came, in check order.
    pub(crate) fn durations(&self) -> impl ExactSizeIterator<Item = Duration> + 'a {
        let (slots, started): (&'a [Slot], Instant) = (self.slots, self.started);
        slots.iter().map(move |s| match s.stage {
            Stage::Settled(_, at) => at.saturating_duration_since(started),
            _ => Duration::ZERO,
        })
    }
}

/// Closes the socket of a probe cut short (its deadline passed, the round
/// was dropped) with a reset: a peer that stopped answering would make a
/// lingering close wait in the loop, and nothing more is wanted from it.
fn reset(socket: &mut Option<Socket>) {
    if let Some(Socket::Tcp(stream)) = socket.take() {
        sockopt::set_linger(&stream, 0);
    }
}

/// `ips` with the check's port, into `out`.
fn with_port(out: &mut Vec<SocketAddr>, ips: &[IpAddr], check: &Check) {
    out.clear();
    out.extend(ips.iter().map(|&ip| SocketAddr::new(ip, check.port)));
}

/// A probe as the I/O driver sees it.
struct ProbeIo<'a> {
    probe: &'a mut Probe,
    check: &'a Check,
}

impl ProbeIo<'_> {
    fn step(&mut self, action: Action) -> Step<Verdict> {
        match action {
            Action::Connect(addr) => Step::Connect(addr),
            Action::ConnectUnix => Step::ConnectUnix,
            Action::Send => Step::Send,
            Action::Receive => Step::Receive,
            Action::Done(verdict) => Step::Done(verdict),
        }
    }
}

impl Endpoint for ProbeIo<'_> {
    type Outcome = Verdict;
    const LINGER_SECS: Option<libc::c_int> = Some(PROBE_LINGER_SECS);

    fn output(&self) -> &[u8] {
        self.probe.output(self.check)
    }

    fn socket_path(&self) -> &Path {
        self.check.unix_socket.as_deref().unwrap_or(Path::new(""))
    }

    fn wrote(&mut self, n: usize) -> Step<Verdict> {
        let action = self.probe.wrote(self.check, n);
        self.step(action)
    }

    fn received(&mut self, data: &[u8]) -> Step<Verdict> {
        let action = self.probe.received(self.check, data);
        self.step(action)
    }

    fn eof(&mut self) -> Step<Verdict> {
        let action = self.probe.eof();
        self.step(action)
    }

    fn open_failed(&mut self, err: &io::Error) -> Step<Verdict> {
        let action = self.probe.connect_failed(err);
        self.step(action)
    }

    fn io_failed(&mut self, err: &io::Error) -> Step<Verdict> {
        let action = self.probe.io_failed(err);
        self.step(action)
    }
}

/// A DNS lookup as the I/O driver sees it.
struct LookupIo<'a> {
    lookup: &'a mut Lookup,
    now: Instant,
}

impl LookupIo<'_> {
    fn step(&mut self, action: resolver::Action) -> Step<Result<Found, DnsReason>> {
        use resolver::Action as A;
        match action {
            A::Udp(server) => Step::Datagrams(server),
            A::Tcp(server) => Step::Connect(server),
            A::Send => Step::Send,
            A::Receive => Step::Receive,
            A::Done(result) => Step::Done(result),
        }
    }
}

impl Endpoint for LookupIo<'_> {
    type Outcome = Result<Found, DnsReason>;
    /// One byte more than a UDP answer may have, to see an oversized one.
    const MAX_DATAGRAM: usize = EDNS_UDP_SIZE as usize + 1;

    fn output(&self) -> &[u8] {
        self.lookup.output()
    }

    fn datagrams(&self) -> [&[u8]; 2] {
        self.lookup.datagrams()
    }

    fn wrote(&mut self, n: usize) -> Step<Self::Outcome> {
        let action = self.lookup.wrote(n);
        self.step(action)
    }

    fn received(&mut self, data: &[u8]) -> Step<Self::Outcome> {
        let action = self.lookup.received(data, self.now);
        self.step(action)
    }

    fn eof(&mut self) -> Step<Self::Outcome> {
        let action = self.lookup.eof(self.now);
        self.step(action)
    }

    fn open_failed(&mut self, _: &io::Error) -> Step<Self::Outcome> {
        let action = self.lookup.io_failed(self.now);
        self.step(action)
    }

    fn io_failed(&mut self, _: &io::Error) -> Step<Self::Outcome> {
        let action = self.lookup.io_failed(self.now);
        self.step(action)
    }
}
