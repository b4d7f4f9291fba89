//! The probe engine: runs a round of probes, one non-blocking socket per
//! check, on the caller's `mio::Poll`, each probe under its check's own
//! deadline (the names the checks use are looked up first, within it), and
//! tells which checks have their verdict (and since when) as they land. A
//! check whose verdict landed may be probed again while the round runs.

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

/// Where one check's probe stands.
#[derive(Debug, Default)]
enum Stage {
    /// No probe in flight: never probed, or its verdict landed.
    #[default]
    Idle,
    /// Waiting for its name: the probe starts when the lookup ends.
    Resolving,
    /// The probe runs, on this socket once it has one.
    Probing(Option<Socket>),
}

/// A check's last verdict, and how long its probe took.
#[derive(Debug)]
struct Landed {
    verdict: Verdict,
    took: Duration,
}

/// One check's probe, kept across rounds to reuse its buffers.
#[derive(Debug)]
struct Slot {
    probe: Probe,
    stage: Stage,
    last: Option<Landed>,
    /// The running probe's start, deadline and timeout (its check's own).
    started: Instant,
    deadline: Instant,
    timeout: Duration,
    /// Listed in [`Engine::idle`].
    listed: bool,
}

impl Slot {
    fn new(now: Instant) -> Slot {
        Slot {
            probe: Probe::default(),
            stage: Stage::Idle,
            last: None,
            started: now,
            deadline: now,
            timeout: Duration::ZERO,
            listed: false,
        }
    }

    fn in_flight(&self) -> bool {
        !matches!(self.stage, Stage::Idle)
    }
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
    /// A round runs: from `start` until `finished` reports it.
    running: bool,
    /// The earliest deadline of a probe in flight.
    expiry: Option<Instant>,
    /// The timeout of checks without one of their own.
    timeout: Duration,
    /// Probes in flight.
    pending: usize,
    /// Checks of the running round whose verdict landed (and maybe more:
    /// entries are checked when taken), to probe again.
    idle: Vec<usize>,
    /// Checks whose verdict landed since [`Engine::take_landed`] last ran,
    /// in the order they landed.
    landed: Vec<usize>,
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
            running: false,
            expiry: None,
            timeout: Duration::ZERO,
            pending: 0,
            idle: Vec::new(),
            landed: Vec::new(),
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
        self.running
    }

    /// When the engine next needs `expire`: the earliest deadline of a
    /// probe in flight, or a lookup's retry before it. For the poll timeout.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let expiry = self.expiry?;
        Some(self.schedule.wake().map_or(expiry, |wake| wake.min(expiry)))
    }

    /// Starts a round: one probe per check, all at once, each after its
    /// name's lookup when it has one, each under its check's timeout (else
    /// `timeout`). Connections that fail at once settle their verdict here.
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
        self.running = true;
        self.idle.clear();
        self.landed.clear();
        self.slots.resize_with(checks.len(), || Slot::new(now));
        if checks.iter().any(|c| c.dns_name().is_some()) {
            self.resolver.refresh();
        }
        self.schedule.start(checks);
        self.dns_sockets.clear();
        for (i, check) in checks.iter().enumerate() {
            self.begin_probe(i, check, registry, now);
        }
        self.begin_lookups(checks, registry, now);
    }

    /// Probes check `i` again in the running round, unless its probe is
    /// still in flight: a request that came after its verdict landed wants
    /// a newer one. Its name is looked up again only if the round's lookup
    /// of it has not ended (else its answer is reused).
    pub(crate) fn reprobe(&mut self, i: usize, checks: &[Check], registry: &Registry, now: Instant) {
        if !self.running || self.slots[i].in_flight() {
            return;
        }
        self.begin_probe(i, &checks[i], registry, now);
        self.begin_lookups(checks, registry, now);
    }

    /// Probes again every check of the running round whose verdict landed,
    /// but those in `except`.
    pub(crate) fn reprobe_idle(&mut self, except: &[usize], checks: &[Check], registry: &Registry, now: Instant) {
        if !self.running {
            return;
        }
        let mut idle = std::mem::take(&mut self.idle);
        idle.retain(|&i| {
            if self.slots[i].in_flight() {
                self.slots[i].listed = false;
                return false; // probed again meanwhile
            }
            if except.contains(&i) {
                return true;
            }
            self.slots[i].listed = false;
            self.begin_probe(i, &checks[i], registry, now);
            false
        });
        // Probes that failed at once listed themselves again meanwhile.
        idle.append(&mut self.idle);
        self.idle = idle;
        self.begin_lookups(checks, registry, now);
    }

    /// Puts check `i`'s probe in flight: its deadline set, its name asked.
    fn begin_probe(&mut self, i: usize, check: &Check, registry: &Registry, now: Instant) {
        let slot = &mut self.slots[i];
        slot.timeout = check.timeout.unwrap_or(self.timeout);
        slot.started = now;
        slot.deadline = now + slot.timeout;
        slot.stage = Stage::Resolving;
        self.expiry = Some(self.expiry.map_or(slot.deadline, |e| e.min(slot.deadline)));
        self.pending += 1;
        let Some(name) = check.dns_name() else {
            self.start_probe(i, check, &check.addrs, registry, now);
            return;
        };
        match self.schedule.ask(i, name, &self.resolver, now) {
            None => {}
            Some(Ok(ips)) => {
                let mut addrs = Vec::new();
                with_port(&mut addrs, &ips, check);
                self.start_probe(i, check, &addrs, registry, now);
            }
            Some(Err(reason)) => self.settle(i, Verdict::Fail(Reason::Dns(reason)), now),
        }
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
        let deadline = self.slots[i].deadline;
        let action = self.slots[i].probe.start(check, addrs, deadline);
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
            self.settle(i, verdict, now);
        }
    }

    /// Check `i`'s probe ends with `verdict` (its socket, if any, closed).
    fn settle(&mut self, i: usize, verdict: Verdict, now: Instant) {
        let slot = &mut self.slots[i];
        slot.stage = Stage::Idle;
        slot.last = Some(Landed { verdict, took: now.saturating_duration_since(slot.started) });
        if !slot.listed {
            slot.listed = true;
            self.idle.push(i);
        }
        self.landed.push(i);
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
        // A check whose deadline passed meanwhile has its verdict already.
        let waiters: Vec<usize> =
            waiters.into_iter().filter(|&i| matches!(self.slots[i].stage, Stage::Resolving)).collect();
        match outcome {
            Ok(ips) => {
                let mut addrs = Vec::new();
                for i in waiters {
                    with_port(&mut addrs, &ips, &checks[i]);
                    self.start_probe(i, &checks[i], &addrs, registry, now);
                }
            }
            Err(reason) => {
                for i in waiters {
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

    /// Retries lookups whose try timed out; fails every probe whose
    /// deadline has passed: `dns: timeout` when it is still waiting for its
    /// name. The round's lookups end with its last probe.
    pub(crate) fn expire(&mut self, now: Instant, checks: &[Check], registry: &Registry) {
        if self.expiry.is_none_or(|e| now < e) {
            if self.schedule.is_due(now) {
                self.retry_lookups(now, checks, registry);
            }
            return;
        }
        self.expiry = None;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if !slot.in_flight() {
                continue;
            }
            if slot.deadline > now {
                self.expiry = Some(self.expiry.map_or(slot.deadline, |e| e.min(slot.deadline)));
                continue;
            }
            let verdict = match &mut slot.stage {
                Stage::Idle => continue,
                Stage::Resolving => Verdict::Fail(Reason::Dns(DnsReason::Timeout)),
                Stage::Probing(socket) => {
                    reset(socket);
                    slot.probe.timed_out(slot.timeout)
                }
            };
            self.settle(i, verdict, now);
        }
        if self.pending == 0 {
            self.close_lookups();
        }
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
            slot.stage = Stage::Idle;
        }
        self.close_lookups();
        self.running = false;
        self.expiry = None;
        self.pending = 0;
    }

    /// Check `i`'s last verdict, None before its first.
    pub(crate) fn verdict(&self, i: usize) -> Option<&Verdict> {
        Some(&self.slots.get(i)?.last.as_ref()?.verdict)
    }

    /// Swaps the checks whose verdict landed since the last call (in the
    /// order they landed) into `out`, which is cleared first: each verdict
    /// can be recorded as it lands, however long its round runs.
    pub(crate) fn take_landed(&mut self, out: &mut Vec<usize>) {
        out.clear();
        std::mem::swap(out, &mut self.landed);
    }

    /// Whether check `i`'s probe is in flight.
    pub(crate) fn in_flight(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(Slot::in_flight)
    }

    /// How long the probe behind check `i`'s last verdict took.
    pub(crate) fn took(&self, i: usize) -> Option<Duration> {
        Some(self.slots.get(i)?.last.as_ref()?.took)
    }

    /// How many checks of the running round still wait for their verdict.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// The verdicts, once per round, when no probe is in flight.
    pub(crate) fn finished(&mut self) -> Option<Finished<'_>> {
        if !self.is_running() || self.pending > 0 {
            return None;
        }
        self.running = false;
        self.expiry = None;
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
        slots.iter().map(|s| match &s.last {
            Some(landed) => &landed.verdict,
            None => unreachable!("a finished round has every verdict"),
        })
    }

    /// How long each check's last probe took, in check order.
    pub(crate) fn durations(&self) -> impl ExactSizeIterator<Item = Duration> + 'a {
        let slots: &'a [Slot] = self.slots;
        slots.iter().map(|s| s.last.as_ref().map_or(Duration::ZERO, |l| l.took))
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
