//! The probe engine: runs a round of probes, one non-blocking socket per
//! check, on the caller's `mio::Poll`, under one deadline per round (the
//! names the checks use are looked up first, within it), and tells which
//! checks have their verdict (and since when) as they land.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use crate::check::{Check, Reason, Verdict};
use crate::dns::{self, Failure, Found, Lookup, Resolver};
use crate::probe::{Action, Probe};
use crate::sockopt;

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
    /// Waiting for its name: the probe starts when the lookup ends.
    resolving: bool,
    /// The first check of the round that names the same host (itself when
    /// none before it does): the one whose lookup it shares.
    same_name: usize,
    /// The lookup this check began this round.
    lookup: Option<usize>,
}

/// Lookups under way at once, each with its two queries outstanding; the
/// others wait their turn within the same deadline, so a round with a
/// thousand names does not throw two thousand datagrams at the DNS server
/// in one burst (the load bench saw a server drop them).
const MAX_LOOKUPS: usize = 64;

/// A lookup of one name for this round, shared by every check naming it.
#[derive(Debug)]
struct NameLookup {
    name: String,
    /// None while it waits for its turn.
    lookup: Option<Box<Lookup>>,
    socket: Option<DnsSocket>,
    /// The checks waiting for it.
    waiters: Vec<usize>,
    /// How it ended, for the checks that name it later in the round.
    outcome: Option<Result<Vec<IpAddr>, Failure>>,
    /// Ended, or cut off by the round's deadline.
    done: bool,
}

#[derive(Debug)]
enum DnsSocket {
    Udp(UdpSocket),
    Tcp(TcpStream),
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
    resolver: Resolver,
    /// This round's lookups; lookup `j` has token `base + slots + j`.
    lookups: Vec<NameLookup>,
    /// The checks with a name to resolve, in name order: each name is asked
    /// once per round.
    by_name: Vec<usize>,
    /// Lookups waiting for their turn, and how many are under way.
    queued: VecDeque<usize>,
    in_flight: usize,
    /// No lookup needs a timer before this (it may be earlier than needed:
    /// then the lookups are scanned once for nothing).
    dns_wake: Option<Instant>,
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
            resolver: Resolver::default(),
            lookups: Vec::new(),
            by_name: Vec::new(),
            queued: VecDeque::new(),
            in_flight: 0,
            dns_wake: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.deadline.is_some()
    }

    /// When the engine next needs `expire`: the running round's deadline,
    /// or a lookup's retry before it. For the poll timeout.
    pub fn deadline(&self) -> Option<Instant> {
        let deadline = self.deadline?;
        Some(self.dns_wake.map_or(deadline, |wake| wake.min(deadline)))
    }

    /// Starts a round: one probe per check, all at once, each after its
    /// name's lookup when it has one. Connections that fail at once settle
    /// their verdict here.
    pub fn start(
        &mut self,
        checks: &[Check],
        timeout: Duration,
        now: Instant,
        registry: &Registry,
        tokens: &mut Tokens,
    ) {
        debug_assert!(!self.is_running(), "one round at a time");
        // Tokens for a probe per check, then for at most a lookup per check.
        self.base = tokens.block(2 * checks.len()).0;
        self.started = now;
        self.timeout = timeout;
        self.deadline = Some(now + timeout);
        self.pending = checks.len();
        self.slots.resize_with(checks.len(), Slot::default);
        self.lookups.clear();
        self.queued.clear();
        self.in_flight = 0;
        self.dns_wake = None;
        self.by_name.clear();
        self.by_name.extend((0..checks.len()).filter(|&i| checks[i].dns_name().is_some()));
        if !self.by_name.is_empty() {
            self.resolver.refresh();
        }
        // Each name's checks in check order: the first leads.
        self.by_name.sort_unstable_by_key(|&i| (checks[i].dns_name(), i));
        for (k, &i) in self.by_name.iter().enumerate() {
            let same = k > 0 && checks[self.by_name[k - 1]].dns_name() == checks[i].dns_name();
            self.slots[i].same_name = if same { self.slots[self.by_name[k - 1]].same_name } else { i };
        }
        let mut addrs = Vec::new();
        for (i, check) in checks.iter().enumerate() {
            self.slots[i].verdict = None;
            self.slots[i].settled = None;
            self.slots[i].resolving = false;
            self.slots[i].lookup = None;
            let Some(name) = check.dns_name() else {
                self.start_probe(i, check, &check.addrs, registry, now);
                continue;
            };
            // A name already asked this round: its outcome, or a wait for it.
            let known = match self.slots[self.slots[i].same_name].lookup.map(|j| &mut self.lookups[j]) {
                Some(entry) => match &entry.outcome {
                    None => {
                        entry.waiters.push(i);
                        self.slots[i].resolving = true;
                        continue;
                    }
                    Some(outcome) => outcome.clone(),
                },
                None => match self.resolver.known(name, now) {
                    Some(known) => known,
                    None => {
                        let j = self.lookups.len();
                        self.slots[i].lookup = Some(j);
                        self.lookups.push(NameLookup {
                            name: name.to_string(),
                            lookup: None,
                            socket: None,
                            waiters: vec![i],
                            outcome: None,
                            done: false,
                        });
                        self.queued.push_back(j);
                        self.slots[i].resolving = true;
                        continue;
                    }
                },
            };
            match known {
                Ok(ips) => {
                    with_port(&mut addrs, &ips, check);
                    self.start_probe(i, check, &addrs, registry, now);
                }
                Err(failure) => self.settle(i, Verdict::Fail(Reason::Dns(failure)), now),
            }
        }
        self.begin_lookups(checks, registry, now);
    }

    /// Begins queued lookups while fewer than [`MAX_LOOKUPS`] are under way.
    fn begin_lookups(&mut self, checks: &[Check], registry: &Registry, now: Instant) {
        while self.in_flight < MAX_LOOKUPS {
            let Some(j) = self.queued.pop_front() else { break };
            let (lookup, action) = self.resolver.lookup(&self.lookups[j].name, now);
            self.lookups[j].lookup = Some(lookup);
            self.in_flight += 1;
            self.drive_lookup(j, action, checks, registry, now);
        }
    }

    /// Starts the probe of check `i` on `addrs`.
    fn start_probe(&mut self, i: usize, check: &Check, addrs: &[SocketAddr], registry: &Registry, now: Instant) {
        let slot = &mut self.slots[i];
        slot.resolving = false;
        let action = slot.probe.start(addrs, self.deadline.unwrap_or(now));
        if drive(slot, check, action, registry, Token(self.base + i), &mut self.scratch, now) {
            self.pending -= 1;
        }
    }

    /// Gives check `i` its verdict without a probe.
    fn settle(&mut self, i: usize, verdict: Verdict, now: Instant) {
        let slot = &mut self.slots[i];
        slot.resolving = false;
        close(slot);
        slot.verdict = Some(verdict);
        slot.settled = Some(now);
        self.pending -= 1;
    }

    /// Carries out a lookup's actions until one has to wait; when it ends,
    /// its checks get their addresses (and start) or their verdict.
    fn drive_lookup(&mut self, j: usize, action: dns::Action, checks: &[Check], registry: &Registry, now: Instant) {
        let token = Token(self.base + self.slots.len() + j);
        let entry = &mut self.lookups[j];
        let Some(result) = drive_dns(entry, action, registry, token, &mut self.scratch, now) else {
            if let Some(wake) = entry.lookup.as_ref().and_then(|l| l.wake()) {
                self.dns_wake = Some(self.dns_wake.map_or(wake, |w| w.min(wake)));
            }
            return;
        };
        entry.done = true;
        self.in_flight -= 1;
        entry.outcome = Some(result.as_ref().map(|found| found.addrs.clone()).map_err(|f| *f));
        let waiters = std::mem::take(&mut entry.waiters);
        match result {
            Ok(found) => {
                self.resolver.store(&entry.name, &found, now);
                let mut addrs = Vec::new();
                for &i in &waiters {
                    with_port(&mut addrs, &found.addrs, &checks[i]);
                    self.start_probe(i, &checks[i], &addrs, registry, now);
                }
            }
            Err(failure) => {
                for &i in &waiters {
                    self.settle(i, Verdict::Fail(Reason::Dns(failure)), now);
                }
            }
        }
    }

    /// Handles readiness of `token` at `now`; false when the token is not a
    /// probe's or a lookup's (the caller then looks elsewhere).
    pub fn ready(&mut self, token: Token, checks: &[Check], registry: &Registry, now: Instant) -> bool {
        let Some(i) = token.0.checked_sub(self.base).filter(|&i| i < 2 * self.slots.len()) else {
            return false;
        };
        if !self.is_running() {
            return true; // a late event for a finished round: nothing to do
        }
        if i >= self.slots.len() {
            self.lookup_ready(i - self.slots.len(), checks, registry, now);
            return true;
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
                Some(Err(e)) => slot.probe.connect_failed(&e),
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

    fn lookup_ready(&mut self, j: usize, checks: &[Check], registry: &Registry, now: Instant) {
        let Some(entry) = self.lookups.get_mut(j).filter(|e| !e.done) else {
            return; // a late event for a lookup that ended
        };
        let Some(lookup) = entry.lookup.as_mut() else { return };
        let action = match &entry.socket {
            Some(DnsSocket::Tcp(stream)) if lookup.is_connecting() => match connect_result(stream) {
                None => return, // spurious: still connecting
                Some(Ok(())) => lookup.connected(),
                Some(Err(_)) => lookup.io_failed(now),
            },
            Some(_) => match lookup.resume() {
                Some(action) => action,
                None => return,
            },
            None => return,
        };
        self.drive_lookup(j, action, checks, registry, now);
        self.begin_lookups(checks, registry, now);
    }

    /// Retries lookups whose try timed out; once the round's deadline has
    /// passed, fails every check still without a verdict: `dns: timeout`
    /// when it is still waiting for its name.
    pub fn expire(&mut self, now: Instant, checks: &[Check], registry: &Registry) {
        if self.deadline.is_none_or(|d| now < d) {
            if self.dns_wake.is_some_and(|w| now >= w) {
                self.retry_lookups(now, checks, registry);
            }
            return;
        }
        for slot in self.slots.iter_mut().filter(|s| s.verdict.is_none()) {
            let verdict = if slot.resolving {
                Verdict::Fail(Reason::Dns(Failure::Timeout))
            } else {
                slot.probe.timed_out(self.timeout)
            };
            reset(slot);
            slot.verdict = Some(verdict);
            slot.settled = Some(now);
        }
        self.close_lookups();
        self.pending = 0;
    }

    fn retry_lookups(&mut self, now: Instant, checks: &[Check], registry: &Registry) {
        self.dns_wake = None;
        for j in 0..self.lookups.len() {
            let entry = &mut self.lookups[j];
            let Some(lookup) = entry.lookup.as_mut().filter(|_| !entry.done) else { continue };
            match lookup.wake() {
                Some(wake) if now >= wake => {
                    let action = lookup.timed_out(now);
                    self.drive_lookup(j, action, checks, registry, now);
                }
                Some(wake) => self.dns_wake = Some(self.dns_wake.map_or(wake, |w| w.min(wake))),
                None => {}
            }
        }
        self.begin_lookups(checks, registry, now);
    }

    fn close_lookups(&mut self) {
        for entry in &mut self.lookups {
            entry.socket = None;
            entry.done = true;
        }
        self.queued.clear();
        self.in_flight = 0;
        self.dns_wake = None;
    }

    /// Drops the running round (its sockets close); its verdicts are lost.
    pub fn abort(&mut self) {
        for slot in &mut self.slots {
            reset(slot);
        }
        self.close_lookups();
        self.deadline = None;
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

    /// The verdicts, once per round, when every probe has one.
    pub fn finished(&mut self) -> Option<Finished<'_>> {
        if !self.is_running() || self.pending > 0 {
            return None;
        }
        self.deadline = None;
        Some(Finished { slots: &self.slots, started: self.started, lookups: self.lookups.len() })
    }
}

/// A finished round: its verdicts in check order.
pub struct Finished<'a> {
    slots: &'a [Slot],
    pub started: Instant,
    /// Names looked up in the round (not those answered by the hosts
    /// file or the cache).
    pub lookups: usize,
}

impl<'a> Finished<'a> {
    pub fn verdicts(&self) -> impl ExactSizeIterator<Item = &'a Verdict> + 'a {
        let slots: &'a [Slot] = self.slots;
        slots.iter().map(|s| s.verdict.as_ref().expect("a finished round has every verdict"))
    }

    /// How long after the round's start each verdict came, in check order.
    pub fn durations(&self) -> impl ExactSizeIterator<Item = Duration> + 'a {
        let (slots, started): (&'a [Slot], Instant) = (self.slots, self.started);
        slots.iter().map(move |s| s.settled.map_or(Duration::ZERO, |t| t.saturating_duration_since(started)))
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

/// `ips` with the check's port, into `out`.
fn with_port(out: &mut Vec<SocketAddr>, ips: &[IpAddr], check: &Check) {
    out.clear();
    out.extend(ips.iter().map(|&ip| SocketAddr::new(ip, check.port)));
}

/// Carries out a lookup's actions until one has to wait for readiness;
/// Some(result) when the lookup ended (its socket is closed then).
fn drive_dns(
    entry: &mut NameLookup,
    mut action: dns::Action,
    registry: &Registry,
    token: Token,
    scratch: &mut [u8],
    now: Instant,
) -> Option<Result<Found, Failure>> {
    use dns::Action as A;
    let Some(lookup) = entry.lookup.as_mut() else { unreachable!("driving a lookup that has begun") };
    loop {
        action = match action {
            A::Udp(server) => {
                entry.socket = None;
                match open_udp(server, lookup.datagrams(), registry, token) {
                    Ok(socket) => {
                        entry.socket = Some(DnsSocket::Udp(socket));
                        A::Receive
                    }
                    Err(_) => lookup.io_failed(now),
                }
            }
            A::Tcp(server) => {
                entry.socket = None;
                let opened = TcpStream::connect(server).and_then(|mut stream| {
                    registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                    Ok(stream)
                });
                match opened {
                    Ok(stream) => {
                        entry.socket = Some(DnsSocket::Tcp(stream));
                        return None;
                    }
                    Err(_) => lookup.io_failed(now),
                }
            }
            A::Send => {
                let Some(DnsSocket::Tcp(stream)) = entry.socket.as_mut() else { unreachable!("sending needs TCP") };
                match stream.write(lookup.output()) {
                    Ok(n) => lookup.wrote(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => A::Send,
                    Err(_) => lookup.io_failed(now),
                }
            }
            A::Receive => {
                // One byte more than a UDP answer may have, to see an oversized one.
                let read = match entry.socket.as_mut() {
                    Some(DnsSocket::Udp(socket)) => {
                        socket.recv(&mut scratch[..=usize::from(dns::message::EDNS_UDP_SIZE)])
                    }
                    Some(DnsSocket::Tcp(stream)) => stream.read(scratch),
                    None => unreachable!("receiving needs a socket"),
                };
                match read {
                    Ok(0) if matches!(entry.socket, Some(DnsSocket::Tcp(_))) => lookup.eof(now),
                    Ok(n) => lookup.received(&scratch[..n], now),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => A::Receive,
                    Err(_) => lookup.io_failed(now),
                }
            }
            A::Done(result) => {
                entry.socket = None;
                return Some(result);
            }
        };
    }
}

/// A UDP socket on a random port, connected to `server` (so the kernel
/// drops datagrams from any other source), with both queries sent.
fn open_udp(server: SocketAddr, datagrams: [&[u8]; 2], registry: &Registry, token: Token) -> io::Result<UdpSocket> {
    let any = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let mut socket = UdpSocket::bind(any)?;
    socket.connect(server)?;
    for datagram in datagrams {
        socket.send(datagram)?;
    }
    registry.register(&mut socket, token, Interest::READABLE)?;
    Ok(socket)
}

/// kubelet's probe dialer sets SO_LINGER on, 1 s, on every probe socket, so
/// that probes do not pile up sockets in TIME-WAIT; every probe socket here
/// gets the same. A close then waits, at most that long, for the peer to
/// acknowledge what was sent, which on a probe that reached its verdict is
/// the peer's own stack answering at once.
const PROBE_LINGER_SECS: libc::c_int = 1;

/// Closes the probe's socket. Closing removes it from the poll too: an
/// explicit deregister would cost one more syscall per probe for nothing.
fn close(slot: &mut Slot) {
    slot.stream = None;
}

/// Closes the socket of a probe cut short (its deadline passed, the round
/// was dropped) with a reset: a peer that stopped answering would make a
/// lingering close wait in the loop, and nothing more is wanted from it.
fn reset(slot: &mut Slot) {
    if let Some(stream) = slot.stream.take() {
        sockopt::set_linger(&stream, 0);
    }
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
                        sockopt::set_linger(&stream, PROBE_LINGER_SECS);
                        match registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE) {
                            Ok(()) => {
                                slot.stream = Some(stream);
                                return false;
                            }
                            Err(e) => slot.probe.connect_failed(&e),
                        }
                    }
                    Err(e) => slot.probe.connect_failed(&e),
                }
            }
            Action::Send => {
                let Some(stream) = slot.stream.as_mut() else { unreachable!("sending needs a connection") };
                match stream.write(slot.probe.output(check)) {
                    Ok(n) => slot.probe.wrote(check, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Action::Send,
                    Err(e) => slot.probe.io_failed(&e),
                }
            }
            Action::Receive => {
                let Some(stream) = slot.stream.as_mut() else { unreachable!("receiving needs a connection") };
                match stream.read(scratch) {
                    Ok(0) => slot.probe.eof(),
                    Ok(n) => slot.probe.received(check, &scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Action::Receive,
                    Err(e) => slot.probe.io_failed(&e),
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
