//! The daemon: the listener, inbound connections and routing, on top of the
//! probe engine, in one mio poll loop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};

use crate::check::Check;
use crate::front::cli::{Listen, ServeConfig};
use crate::front::error::Error;
use crate::front::json;
use crate::front::log;
use crate::front::metrics::{self, Handler, Metrics};
use crate::front::report;
use crate::front::routes::{self, Route};
use crate::inbound::{self, Answer, Conn, Handled, Next};
use crate::runtime::engine::{Engine, Tokens};
use crate::runtime::signals::{self, Signals};
use crate::runtime::sockopt;
use crate::verdict::Verdict;
use crate::wire::http;
use crate::wire::text::DisplayDuration;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const FIRST_TOKEN: usize = 2;

/// How long accepting pauses when the process runs out of descriptors and
/// no connection can be dropped to make room.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up before the other events get a turn.
const ACCEPT_BATCH: usize = 256;
/// Read buffer shared by every connection; a request head must fit in
/// [`http::MAX_REQUEST_HEAD`] anyway.
const SCRATCH: usize = 16 * 1024;
/// Check names listed in the startup line.
const LOGGED_NAMES: usize = 16;
/// Unknown `exclude` names echoed at most, and the bytes shown of each: a
/// waiting `/all` keeps about a KiB, not its whole query (four times that
/// once escaped), whatever the caller sends.
const MAX_UNKNOWN_SHOWN: usize = 4;
const MAX_SHOWN_NAME: usize = 64;
/// TCP_DEFER_ACCEPT, in seconds: how long the kernel keeps a connection
/// that has sent nothing before handing it over anyway.
const DEFER_ACCEPT_SECS: libc::c_int = 1;
/// Events handled per poll call.
const EVENTS: usize = 1024;
/// Requests handled and reads done for one connection per loop turn
/// before the others get theirs: a connection pipelining requests as fast
/// as it reads answers cannot hold the loop.
const TURN_BUDGET: u32 = 16;
/// The send buffer asked for on the listener, which accepted sockets
/// inherit (the kernel doubles it for its bookkeeping): what a client that
/// never reads its answers can leave queued in the kernel per connection,
/// instead of an autotuned buffer of up to 4 MiB.
const SEND_BUFFER: libc::c_int = 64 * 1024;
/// Slack beyond the longest a request can wait for its round before its
/// connection is dropped (see [`wait_timeout`]).
const WAIT_SLACK: Duration = Duration::from_secs(1);

/// What a request waiting for verdicts reports on, and how.
#[derive(Debug)]
enum Want {
    All { verbose: bool, json: bool, excluded: Vec<usize>, unknown: Vec<Vec<u8>> },
    One { index: usize, verbose: bool, json: bool },
}

/// Where a request goes once routed.
enum Routed {
    /// Answered when the round has the verdicts.
    Wait(Want),
    /// Answered now with this status and its plain body.
    Now(Handler, u16),
    /// Answered now with the metrics.
    Metrics,
    /// Answered now: a 400 with this body (an unknown `format`).
    BadRequest(Handler, Vec<u8>),
}

impl Want {
    /// Whether no check this reports on has its probe in flight. A waiting
    /// request had every one of them in flight when it began to wait (see
    /// [`Server::settle`]), so its verdicts all landed after it came. O(1)
    /// but for the excluded checks, so settling stays cheap with many
    /// waiting requests.
    fn settled(&self, engine: &Engine) -> bool {
        match self {
            Want::One { index, .. } => !engine.in_flight(*index) && engine.verdict(*index).is_some(),
            Want::All { excluded, .. } => {
                let excluded_in_flight = excluded.iter().filter(|&&i| engine.in_flight(i)).count();
                engine.pending() == excluded_in_flight
            }
        }
    }

    /// Puts every check this reports on in flight again whose verdict has
    /// landed, in the running round.
    fn reprobe(&self, engine: &mut Engine, checks: &[Check], registry: &Registry, now: Instant) {
        match self {
            Want::One { index, .. } => engine.reprobe(*index, checks, registry, now),
            Want::All { excluded, .. } => engine.reprobe_idle(excluded, checks, registry, now),
        }
    }
}

/// An inbound connection: its socket and its protocol machine.
struct Client {
    stream: TcpStream,
    conn: Conn<Want>,
    /// Registered for WRITABLE too: only once a write found the socket full.
    /// From the start, the event of a fresh socket being writable would
    /// cost a read that finds nothing, once per connection.
    writable_interest: bool,
    /// Time of this connection's entry in the deadline heap.
    queued: Instant,
}

/// What became of a connection driven for a turn.
#[derive(PartialEq, Eq)]
enum Turn {
    /// It waits for an event (readable, writable) or for verdicts.
    Idle,
    /// Its budget ran out with work left: drive it again next turn.
    Again,
    Close,
}

/// Hashes tokens with one multiply (Fibonacci hashing). Tokens come from a
/// counter, never from a peer, so the DoS resistance of the default SipHash
/// buys nothing here, and it cost a hundred instructions per event.
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// Only `Token`'s usize is ever hashed; any other input still hashes.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_usize((self.0 ^ u64::from(b)) as usize);
        }
    }
}

/// Everything but the connections, so a connection can be driven while the
/// rest is borrowed.
struct Ctx {
    poll: Poll,
    tokens: Tokens,
    engine: Engine,
    checks: Vec<Check>,
    timeout: Duration,
    verbose: bool,
    /// Connections waiting for verdicts of the running round.
    waiting: Vec<Token>,
    /// Connections that asked since the last settling: they join the
    /// running round or start the next one.
    next: Vec<Token>,
    /// Last logged state of each check, to log changes only.
    states: Vec<Option<bool>>,
    /// Rounds finished.
    rounds: u64,
    /// Checks whose verdict just landed (a buffer kept across turns).
    landed: Vec<usize>,
    metrics: Metrics,
    /// Inbound connections open now, for the metrics.
    connections: usize,
    /// Scratch for an answer's body, cleared at each use; the answer itself
    /// goes to the connection's own buffer.
    body: Vec<u8>,
}

/// The handler a connection's machine asks, for the connection `token`.
struct Requests<'a> {
    ctx: &'a mut Ctx,
    token: Token,
    /// Requests this connection may still have handled this turn.
    budget: &'a mut u32,
    now: Instant,
}

impl inbound::Handler for Requests<'_> {
    type Want = Want;

    fn request(&mut self, request: &http::Request<'_>, answer: Answer, out: &mut Vec<u8>) -> Handled<Want> {
        *self.budget = self.budget.saturating_sub(1);
        let ctx = &mut *self.ctx;
        match ctx.route(request) {
            Routed::Wait(want) => {
                ctx.join_round(self.token);
                Handled::Wait(want)
            }
            Routed::Now(handler, status) => {
                ctx.metrics.request(handler, status);
                http::write_response(out, status, http::status_body(status), answer.head_only, answer.conn);
                Handled::Answered
            }
            Routed::Metrics => {
                ctx.answer_metrics(out, answer, self.now);
                Handled::Answered
            }
            Routed::BadRequest(handler, body) => {
                ctx.metrics.request(handler, 400);
                http::write_response(out, 400, &body, answer.head_only, answer.conn);
                Handled::Answered
            }
        }
    }

    fn rejected(&mut self, status: u16) {
        *self.budget = self.budget.saturating_sub(1);
        self.ctx.metrics.request(Handler::Other, status);
    }
}

struct Server {
    ctx: Ctx,
    conns: HashMap<Token, Client, BuildHasherDefault<TokenHasher>>,
    timers: BinaryHeap<Reverse<(Instant, Token)>>,
    listener: TcpListener,
    signals: Signals,
    max_connections: usize,
    /// When to accept again: after a full batch (at once) or when out of
    /// descriptors (after [`ACCEPT_BACKOFF`]).
    accept_paused_until: Option<Instant>,
    /// Accepting failed for lack of descriptors and has not succeeded since.
    fds_exhausted: bool,
    /// Connections whose turn budget ran out with work left.
    again: Vec<Token>,
    /// How long a request may wait for its verdicts.
    wait_timeout: Duration,
    /// `--min-interval`: rounds start at least this far apart.
    min_interval: Duration,
    /// `--interval`: a round this long after the last one started, asked
    /// for or not (zero: only when asked).
    interval: Duration,
    /// When the last round started.
    last_round: Option<Instant>,
    /// When the next round may start, while requests wait for it.
    round_due: Option<Instant>,
    scratch: Box<[u8]>,
}

/// Runs the daemon until SIGTERM or SIGINT. SIGHUP, SIGUSR1 and SIGUSR2
/// are logged and ignored: their default action would end it silently.
pub fn run(config: ServeConfig) -> Result<(), Error> {
    let max_connections = connection_limit(config.max_connections, raise_fd_limit(), config.checks.len());
    if max_connections < config.max_connections {
        log::warn("max_connections_lowered").kv("max_connections", max_connections).kv("reason", "fd limit");
    }
    let signals = Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2])
        .map_err(Error::Signals)?;
    let listener = bind(config.listen)?;
    defer_accept(&listener);
    limit_send_buffer(&listener);
    let poll = Poll::new().map_err(Error::Poll)?;
    // The longest deadline of any check's probe.
    let longest = config.checks.iter().filter_map(|c| c.timeout).fold(config.timeout, Duration::max);
    let mut server = Server {
        ctx: Ctx {
            poll,
            tokens: Tokens::new(FIRST_TOKEN),
            engine: Engine::new(),
            states: vec![None; config.checks.len()],
            rounds: 0,
            landed: Vec::new(),
            metrics: Metrics::new(&config.checks),
            connections: 0,
            checks: config.checks,
            timeout: config.timeout,
            verbose: config.verbose,
            waiting: Vec::new(),
            next: Vec::new(),
            body: Vec::with_capacity(1024),
        },
        conns: HashMap::default(),
        timers: BinaryHeap::new(),
        listener,
        signals,
        max_connections,
        accept_paused_until: None,
        fds_exhausted: false,
        again: Vec::new(),
        wait_timeout: wait_timeout(longest, config.min_interval),
        min_interval: config.min_interval,
        interval: config.interval,
        last_round: None,
        round_due: None,
        scratch: vec![0; SCRATCH].into_boxed_slice(),
    };
    let registry = server.ctx.poll.registry();
    registry.register(&mut server.listener, LISTENER, Interest::READABLE).map_err(Error::Poll)?;
    registry.register(&mut server.signals, SIGNALS, Interest::READABLE).map_err(Error::Poll)?;
    let addr = server.listener.local_addr().map_err(|e| Error::Listen(config.listen.candidates()[0], e))?;
    // The names of the first checks: enough to recognise the configuration
    // without one giant line for a thousand checks.
    let mut names: Vec<&str> = server.ctx.checks.iter().take(LOGGED_NAMES).map(|c| c.name.as_str()).collect();
    if server.ctx.checks.len() > LOGGED_NAMES {
        names.push("...");
    }
    log::info("listening")
        .kv("addr", addr)
        .kv("timeout", DisplayDuration(config.timeout))
        .kv("checks", server.ctx.checks.len())
        .kv("names", names.join(","));
    // A first round at once, so that the logs and /metrics say where the
    // pod stands before anything asks; afterwards only requests (and
    // --interval) start rounds.
    server.start_round(Instant::now());
    server.run()
}

/// Binds the first of the listen addresses the host has the family of:
/// `:PORT` is `[::]` and, on a host without IPv6, `0.0.0.0`. `[::]` takes
/// IPv4 too (dual-stack), as Go listens on it.
fn bind(listen: Listen) -> Result<TcpListener, Error> {
    let mut last = None;
    for addr in listen.candidates() {
        let bound = match addr {
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
                sockopt::listen_dual_stack(addr.port()).map(TcpListener::from_std)
            }
            _ => TcpListener::bind(addr),
        };
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)) => {
                last = Some(Error::Listen(addr, e));
            }
            Err(e) => return Err(Error::Listen(addr, e)),
        }
    }
    Err(last.expect("at least one address to listen on"))
}

/// Has the kernel hand over a connection only once its request arrived
/// (TCP_DEFER_ACCEPT), so accepting it and reading the request take one
/// wake-up instead of two. With `Connection: close` (kubelet's probes) this
/// measured 28% more requests per second and 22% less CPU per request. A
/// connection that stays silent is handed over after [`DEFER_ACCEPT_SECS`]
/// and then gets [`REQUEST_TIMEOUT`] like any other. Best effort: without
/// it connections are accepted at once, as before.
fn defer_accept(listener: &TcpListener) {
    sockopt::set_int(listener, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECS);
}

/// Fixes the send buffer of every accepted socket (they inherit the
/// listener's), so that what a client leaves unread queued in the kernel
/// is bounded too (see [`SEND_BUFFER`]). Best effort, as [`defer_accept`].
fn limit_send_buffer(listener: &TcpListener) {
    sockopt::set_int(listener, libc::SOL_SOCKET, libc::SO_SNDBUF, SEND_BUFFER);
}

/// The longest a request may wait for its verdicts: the rest of the round
/// running when it came, the minimum interval, then its own round, and
/// some slack.
fn wait_timeout(timeout: Duration, min_interval: Duration) -> Duration {
    timeout.saturating_mul(2).saturating_add(min_interval).saturating_add(WAIT_SLACK)
}

impl Server {
    fn run(&mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(EVENTS);
        loop {
            let timeout = if self.again.is_empty() {
                self.next_deadline().map(|d| d.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO) // connections left work for this turn
            };
            if let Err(e) = self.ctx.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Poll(e));
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    // Every pending one: a SIGTERM may be queued behind an ignored signal.
                    SIGNALS => {
                        while let Some(sig) = self.signals.pending().map_err(Error::Signals)? {
                            if sig != libc::SIGTERM && sig != libc::SIGINT {
                                log::info("signal_ignored").kv("signal", signals::name(sig));
                                continue;
                            }
                            log::info("shutdown").kv("signal", signals::name(sig));
                            return Ok(());
                        }
                    }
                    token => {
                        let ctx = &mut self.ctx;
                        if !ctx.engine.ready(token, &ctx.checks, ctx.poll.registry(), now) {
                            self.drive(token, now, !event.is_read_closed());
                        }
                    }
                }
            }
            for token in std::mem::take(&mut self.again) {
                self.drive(token, now, false);
            }
            let ctx = &mut self.ctx;
            ctx.engine.expire(now, &ctx.checks, ctx.poll.registry());
            self.settle(now);
            self.expire(now);
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                self.accept_paused_until = None;
                self.accept(now);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.ctx.engine.deadline(),
            self.timers.peek().map(|Reverse((t, _))| *t),
            self.accept_paused_until,
            self.round_due,
            self.background_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Accepts until the backlog is empty. At the connection limit the
    /// oldest idle connection makes room; out of descriptors, the same, or a
    /// short pause, so the loop neither spins nor stalls.
    fn accept(&mut self, now: Instant) {
        if self.accept_paused_until.is_some() {
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.fds_exhausted = false;
                    if self.conns.len() >= self.max_connections && !self.evict_oldest() {
                        self.ctx.metrics.dropped();
                        continue; // every connection is busy: refuse this one
                    }
                    self.add(stream, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) =>
                {
                    if !self.evict_oldest() {
                        // One line per episode, not one per retry.
                        if !self.fds_exhausted {
                            self.fds_exhausted = true;
                            log::warn("accept_paused").kv("error", &e);
                        }
                        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                        return;
                    }
                }
                // The peer gave up before accept (ECONNABORTED, EPERM from a
                // firewall, ...): that connection only.
                Err(_) => continue,
            }
        }
        // More may be waiting, and an edge-triggered listener will not say
        // so again: come back right after the other events.
        self.accept_paused_until = Some(now);
    }

    fn add(&mut self, mut stream: TcpStream, now: Instant) {
        let token = self.ctx.tokens.next_token();
        if self.ctx.poll.registry().register(&mut stream, token, Interest::READABLE).is_err() {
            return; // dropping the stream closes it
        }
        let conn = Conn::new(now, self.wait_timeout);
        let deadline = conn.deadline();
        self.conns.insert(token, Client { stream, conn, writable_interest: false, queued: deadline });
        self.ctx.connections = self.conns.len();
        self.timers.push(Reverse((deadline, token)));
    }

    /// Drops a connection to make room for a new one: the one whose request
    /// cycle started first among those not waiting for verdicts, else the
    /// oldest waiting one (its request goes unanswered). So a new
    /// connection, kubelet's probe of `/self` or `/all`, always gets a slot,
    /// whatever the others are doing. False only with no connection at all.
    fn evict_oldest(&mut self) -> bool {
        let oldest = self.conns.iter().min_by_key(|(_, c)| (c.conn.is_waiting(), c.conn.since())).map(|(t, _)| *t);
        match oldest {
            Some(token) => {
                self.close(token);
                self.ctx.metrics.dropped();
                true
            }
            None => false,
        }
    }

    /// Dropping the stream closes it, which also removes it from the poll:
    /// no deregister syscall per connection. (Sockets are close-on-exec and
    /// tokens are never reused, so even a late event would be harmless.)
    /// Whatever the connection had staged is dropped with it.
    fn close(&mut self, token: Token) {
        self.conns.remove(&token);
        self.ctx.connections = self.conns.len();
    }

    /// Drives a connection; `short_read_drains` as in [`Client::drive`].
    fn drive(&mut self, token: Token, now: Instant, short_read_drains: bool) {
        // An unknown token is a late event for a connection already closed
        // (tokens are never reused): nothing to do.
        let Some(client) = self.conns.get_mut(&token) else {
            return;
        };
        match client.drive(&mut self.ctx, token, &mut self.scratch, now, short_read_drains) {
            Turn::Close => {
                self.close(token);
                return;
            }
            Turn::Again => self.again.push(token),
            Turn::Idle => {}
        }
        let deadline = client.conn.deadline();
        if deadline < client.queued {
            client.queued = deadline;
            self.timers.push(Reverse((deadline, token)));
        }
    }

    /// Closes connections whose deadline passed: a request that did not
    /// arrive whole, an idle keep-alive, a client that stopped reading, a
    /// request that waited longer than any round takes. Heap entries are
    /// lazy: a connection whose deadline moved later is queued again at its
    /// pop.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, token))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(client) = self.conns.get_mut(&token) else {
                continue;
            };
            if client.queued != at {
                continue; // superseded by an earlier entry
            }
            let deadline = client.conn.deadline();
            if deadline > now {
                client.queued = deadline;
                self.timers.push(Reverse((deadline, token)));
                continue;
            }
            self.close(token);
            self.ctx.metrics.dropped();
        }
        // Entries superseded by earlier ones wait for their time; rebuild
        // when they outnumber the connections, so the heap stays bounded.
        if self.timers.len() > 2 * self.conns.len() + 64 {
            self.timers = self.conns.iter().map(|(t, c)| Reverse((c.queued, *t))).collect();
        }
    }

    /// Answers every waiting request whose checks all have their verdicts,
    /// ends the round once every probe has one, and starts the next round
    /// for requests that came while none ran.
    fn settle(&mut self, now: Instant) {
        loop {
            self.record_landed();
            if self.ctx.engine.is_running() && self.ctx.engine.pending() == 0 {
                self.finish_round(now);
            }
            if self.answer_settled(now) {
                continue; // answered requests may have pipelined more
            }
            if self.ctx.engine.is_running() {
                // Requests that came while the round runs: whichever of
                // their checks has its verdict already is probed again, so
                // that no request is answered with a verdict older than
                // itself (still one probe per check in flight). After the
                // waiting requests were answered, so that none of those
                // waits for a newer probe than it needs. With
                // --min-interval they wait for the next round instead.
                if self.min_interval.is_zero() && !self.ctx.next.is_empty() {
                    self.join_running(now);
                    continue; // a probe may have failed at once
                }
                return;
            }
            if self.ctx.next.is_empty() {
                if self.background_due().is_some_and(|due| now >= due) {
                    self.start_round(now);
                }
                return;
            }
            // With --min-interval, requests that come sooner wait for the
            // next round: still answered from probes started after they
            // came, never from older verdicts.
            if let Some(due) = self.last_round.map(|t| t + self.min_interval).filter(|&due| now < due) {
                self.round_due = Some(due);
                return;
            }
            self.start_round(now);
        }
    }

    /// The requests that came while the round runs join it, their checks
    /// with a verdict already probed again.
    fn join_running(&mut self, now: Instant) {
        let next = std::mem::take(&mut self.ctx.next);
        let ctx = &mut self.ctx;
        for &token in &next {
            if let Some(want) = self.conns.get(&token).and_then(|c| c.conn.want()) {
                want.reprobe(&mut ctx.engine, &ctx.checks, ctx.poll.registry(), now);
                ctx.waiting.push(token);
            }
        }
        ctx.next = next;
        ctx.next.clear(); // keeps its capacity
    }

    /// Starts a round; the requests that asked for one while none ran
    /// wait for it.
    fn start_round(&mut self, now: Instant) {
        self.round_due = None;
        self.last_round = Some(now);
        let ctx = &mut self.ctx;
        ctx.engine.start(&ctx.checks, ctx.timeout, now, ctx.poll.registry(), &mut ctx.tokens);
        ctx.waiting.append(&mut ctx.next);
    }

    /// When `--interval` wants the next round, while none runs.
    #[inline]
    fn background_due(&self) -> Option<Instant> {
        if self.interval.is_zero() || self.ctx.engine.is_running() {
            return None;
        }
        Some(self.last_round.map_or_else(Instant::now, |t| t + self.interval))
    }

    /// Answers the waiting requests whose checks all have verdicts; true
    /// when there was one. The others keep waiting.
    fn answer_settled(&mut self, now: Instant) -> bool {
        let mut ready = Vec::new();
        let (conns, engine) = (&self.conns, &self.ctx.engine);
        self.ctx.waiting.retain(|token| match conns.get(token).and_then(|c| c.conn.want()) {
            Some(want) if want.settled(engine) => {
                ready.push(*token);
                false
            }
            Some(_) => true,
            None => false, // closed meanwhile
        });
        for &token in &ready {
            let Some(client) = self.conns.get_mut(&token) else {
                continue;
            };
            let ctx = &mut self.ctx;
            if client.conn.answer(now, |want, answer, out| ctx.answer(want, answer, out)) {
                self.drive(token, now, false);
            }
        }
        !ready.is_empty()
    }

    /// Records each verdict as it lands, in the metrics and, when its check
    /// changed state, in the log: a round that goes on (checks probed again
    /// for the requests that keep coming) holds nothing back.
    fn record_landed(&mut self) {
        let ctx = &mut self.ctx;
        ctx.engine.take_landed(&mut ctx.landed);
        if ctx.landed.is_empty() {
            return;
        }
        let wall = SystemTime::now();
        for &i in &ctx.landed {
            let (Some(verdict), Some(took)) = (ctx.engine.verdict(i), ctx.engine.took(i)) else { continue };
            ctx.metrics.verdict(i, verdict, took, wall);
            let ok = verdict.passed();
            if ctx.states[i] != Some(ok) {
                ctx.states[i] = Some(ok);
                let name = &ctx.checks[i].name;
                match verdict {
                    Verdict::Pass => drop(log::info("check_passing").kv("check", name)),
                    Verdict::Fail(reason) => drop(log::warn("check_failing").kv("check", name).kv("reason", reason)),
                }
            }
        }
    }

    /// Ends the round: counts it, and logs it (always the first, else with
    /// `--verbose`).
    fn finish_round(&mut self, now: Instant) {
        let ctx = &mut self.ctx;
        let Some(round) = ctx.engine.finished() else {
            return;
        };
        let passed = round.verdicts().filter(|v| v.passed()).count();
        let failed = ctx.checks.len() - passed;
        ctx.metrics.round(now.saturating_duration_since(round.started));
        ctx.rounds += 1;
        // The round at start is always logged: where the pod stands.
        if ctx.verbose || ctx.rounds == 1 {
            log::info("round")
                .kv("passed", passed)
                .kv("failed", failed)
                .kv("elapsed_ms", now.saturating_duration_since(round.started).as_millis())
                .kv("lookups", round.lookups);
        }
    }
}

impl Client {
    /// Runs the connection's machine: writes its answers, reads requests,
    /// until the socket would block, it waits for verdicts, or its turn's
    /// budget ([`TURN_BUDGET`]) is spent.
    ///
    /// `short_read_drains`: driven for a readiness event whose peer has not
    /// closed. A read shorter than the buffer then took every byte there
    /// was, and epoll reports the next bytes, or the peer's close, as a new
    /// event: the read that would only say `WouldBlock` is skipped, one
    /// syscall less per keep-alive request (nginx does the same with
    /// EPOLLRDHUP).
    fn drive(
        &mut self,
        ctx: &mut Ctx,
        token: Token,
        scratch: &mut [u8],
        now: Instant,
        short_read_drains: bool,
    ) -> Turn {
        let mut drained = false;
        let mut budget = TURN_BUDGET;
        loop {
            if budget == 0 && self.conn.unsent().is_empty() {
                return Turn::Again;
            }
            let next = self.conn.poll(now, &mut Requests { ctx: &mut *ctx, token, budget: &mut budget, now });
            match next {
                Next::Write => match write_nonblocking(&mut self.stream, self.conn.unsent()) {
                    Ok(n) => {
                        self.conn.written(n, now);
                        if !self.conn.unsent().is_empty() {
                            return self.want_writable(ctx, token);
                        }
                    }
                    Err(_) => return Turn::Close,
                },
                Next::Read => {
                    if drained {
                        return Turn::Idle;
                    }
                    match self.stream.read(scratch) {
                        // The peer is gone (a partial request cut short has
                        // no answer); what was answered has been written.
                        Ok(0) => return Turn::Close,
                        Ok(n) => {
                            budget = budget.saturating_sub(1);
                            drained = short_read_drains && n < scratch.len();
                            self.conn.received(&scratch[..n], now);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Turn::Idle,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Turn::Close,
                    }
                }
                Next::Wait => return Turn::Idle,
                Next::Shutdown => {
                    if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
                        return Turn::Close;
                    }
                }
                Next::Close => return Turn::Close,
            }
        }
    }

    /// The socket is full: be told when it takes more. Readiness is
    /// rechecked on modify, so no wake-up is lost.
    fn want_writable(&mut self, ctx: &mut Ctx, token: Token) -> Turn {
        if !self.writable_interest {
            let interest = Interest::READABLE | Interest::WRITABLE;
            if ctx.poll.registry().reregister(&mut self.stream, token, interest).is_err() {
                return Turn::Close;
            }
            self.writable_interest = true;
        }
        Turn::Idle
    }
}

/// Raises the soft descriptor limit to the hard one, as Go programs do:
/// 1,000 checks plus 1,024 connections need more than the usual 1,024.
/// Returns the soft limit in force, if known.
fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: both calls only read or write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, ..limit };
            // Failure leaves the old limit, which EMFILE handling copes with.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Descriptors kept out of the connection limit besides one per check:
/// stdio, the listener, the poll, the signalfd, and slack.
const RESERVED_FDS: usize = 16;

/// The inbound connection limit, lowered below the descriptor limit so that
/// connections alone never exhaust it: every check keeps a descriptor for
/// its probe, and a connection flood cannot fail a healthy check with
/// "Too many open files" (at the limit the oldest idle connection goes).
fn connection_limit(wanted: usize, nofile: Option<u64>, checks: usize) -> usize {
    match nofile.and_then(|n| usize::try_from(n).ok()) {
        Some(n) => wanted.min(n.saturating_sub(checks + RESERVED_FDS)).max(1),
        None => wanted,
    }
}

/// Writes as much as the socket takes; returns how much.
fn write_nonblocking(stream: &mut TcpStream, mut buf: &[u8]) -> io::Result<usize> {
    let total = buf.len();
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total - buf.len())
}

impl Ctx {
    /// What a request wants: a round's verdicts, an answer right away (its
    /// handler and status), or the metrics.
    fn route(&mut self, request: &http::Request<'_>) -> Routed {
        match routes::route(request.method, request.target) {
            Route::SelfCheck => Routed::Now(Handler::SelfCheck, 200),
            Route::NotFound => Routed::Now(Handler::Other, 404),
            Route::MethodNotAllowed => Routed::Now(Handler::Other, 405),
            Route::Metrics => Routed::Metrics,
            Route::One(name, query) => {
                let index =
                    routes::percent_decode_path(name).and_then(|name| self.checks.iter().position(|c| c.name == name));
                match index {
                    Some(index) => {
                        let query = routes::parse_query(query);
                        if let Some(raw) = query.bad_format {
                            return Routed::BadRequest(Handler::Check, routes::bad_format_body(raw));
                        }
                        Routed::Wait(Want::One { index, verbose: query.verbose, json: query.json })
                    }
                    None => Routed::Now(Handler::Check, 404),
                }
            }
            Route::All(query) => {
                let query = routes::parse_query(query);
                if let Some(raw) = query.bad_format {
                    return Routed::BadRequest(Handler::All, routes::bad_format_body(raw));
                }
                let mut excluded = Vec::new();
                let mut unknown = Vec::new();
                for raw in query.exclude {
                    let decoded = routes::percent_decode(raw);
                    match decoded.as_deref().and_then(|n| self.checks.iter().position(|c| c.name == n)) {
                        // Once each: a request is settled when the unsettled
                        // checks are exactly its excluded ones.
                        Some(i) if excluded.contains(&i) => {}
                        Some(i) => excluded.push(i),
                        None if unknown.len() < MAX_UNKNOWN_SHOWN => {
                            let name = decoded.as_deref().unwrap_or(raw).as_bytes();
                            let mut shown = Vec::new();
                            http::push_shown(&mut shown, name, MAX_SHOWN_NAME);
                            unknown.push(shown);
                        }
                        None => {}
                    }
                }
                Routed::Wait(Want::All { verbose: query.verbose, json: query.json, excluded, unknown })
            }
        }
    }

    /// Queues a request for verdicts: it joins the running round, or starts
    /// the next one (see [`Server::settle`]).
    fn join_round(&mut self, token: Token) {
        self.next.push(token);
    }

    /// Stages the answer to a request whose checks have their verdicts.
    fn answer(&mut self, want: &Want, answer: Answer, out: &mut Vec<u8>) {
        let Ctx { engine, checks, body, metrics, .. } = self;
        let verdict = |i: usize| engine.verdict(i).expect("answered only once settled");
        let entry = |i: usize| json::Entry {
            name: &checks[i].name,
            verdict: Some(verdict(i)),
            duration: engine.took(i).unwrap_or_default(),
        };
        body.clear();
        let (handler, passed, json) = match want {
            Want::One { index, json: true, .. } => {
                (Handler::Check, json::write_report(body, std::iter::once(entry(*index)), &[] as &[&str]), true)
            }
            Want::One { index, verbose, json: false } => {
                let verdict = verdict(*index);
                if *verbose || !verdict.passed() {
                    report::write_line(body, &checks[*index], verdict);
                } else {
                    body.extend_from_slice(b"ok\n");
                }
                (Handler::Check, verdict.passed(), false)
            }
            Want::All { excluded, unknown, json: true, .. } => {
                let warnings: Vec<String> = unknown.iter().map(|name| unknown_warning(name)).collect();
                let excluded_entry =
                    |i: usize| json::Entry { name: &checks[i].name, verdict: None, duration: Duration::ZERO };
                let entries =
                    (0..checks.len()).map(|i| if excluded.contains(&i) { excluded_entry(i) } else { entry(i) });
                (Handler::All, json::write_report(body, entries, &warnings), true)
            }
            Want::All { verbose, excluded, unknown, json: false } => {
                for name in unknown {
                    body.extend_from_slice(b"warn: ");
                    body.extend_from_slice(unknown_warning(name).as_bytes());
                    body.push(b'\n');
                }
                let results =
                    checks.iter().enumerate().map(|(i, c)| (c, Some(i).filter(|i| !excluded.contains(i)).map(verdict)));
                (Handler::All, report::write_report(body, results, *verbose), false)
            }
        };
        let status = if passed { 200 } else { 503 };
        metrics.request(handler, status);
        let content_type = if json { json::CONTENT_TYPE } else { http::TEXT };
        http::write_typed(out, status, content_type, body, answer.head_only, answer.conn);
    }

    /// Stages the scrape; the body buffer is kept for the next one.
    fn answer_metrics(&mut self, out: &mut Vec<u8>, answer: Answer, now: Instant) {
        self.metrics.request(Handler::Metrics, 200);
        self.body.clear();
        self.metrics.write(&mut self.body, self.connections, now);
        http::write_typed(out, 200, metrics::CONTENT_TYPE, &self.body, answer.head_only, answer.conn);
    }
}

/// The warning for an `exclude` that names no check; `name` is escaped.
fn unknown_warning(name: &[u8]) -> String {
    format!("some health checks cannot be excluded: no matches for \"{}\"", String::from_utf8_lossy(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_descriptors_for_the_probes() {
        assert_eq!(connection_limit(1024, Some(1_048_576), 3), 1024);
        assert_eq!(connection_limit(1024, Some(64), 4), 44);
        assert_eq!(connection_limit(1024, Some(10), 4), 1);
        assert_eq!(connection_limit(1024, None, 4), 1024);
    }
}
