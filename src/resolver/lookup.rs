//! One lookup of one name: the A and AAAA queries for each candidate name
//! (search list), each server in turn for each attempt, UDP then TCP when
//! the answer is truncated. Pure: it takes bytes and `now` and says what to
//! do next, as the probe state machine does.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use super::conf::ResolvConf;
use crate::verdict::DnsReason;
use crate::wire::dns::{self as message, Invalid, Reply, EDNS_UDP_SIZE, TYPE_A, TYPE_AAAA};

/// The addresses of a name, IPv4 first, and how long they may be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub addrs: Vec<IpAddr>,
    pub(crate) ttl: Duration,
}

/// A small PRNG (splitmix64) for query IDs, seeded from the kernel. Query
/// IDs must be unpredictable to an off-path spoofer, not cryptographic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seeded by `getrandom`, or by the clock and pid if it fails.
    pub(crate) fn from_os() -> Rng {
        let mut seed = [0u8; 8];
        // SAFETY: the buffer is valid for 8 bytes; GRND_NONBLOCK never waits.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), libc::GRND_NONBLOCK) };
        if n != 8 {
            let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
            seed = ((nanos as u64) ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
        }
        Rng(u64::from_le_bytes(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }
}

/// A TCP answer larger than this fails the try: ours hold a few addresses.
pub(crate) const MAX_TCP_ANSWER: usize = 16 * 1024;

/// How long the other address family is waited for once one has answered
/// with addresses (RFC 8305's resolution delay): a slow or silent family
/// must not hold a probe that can already connect.
pub(crate) const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

/// What the engine must do next for this lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a fresh UDP socket connected to this server (a new random
    /// source port), send each of [`Lookup::datagrams`], then receive.
    Udp(SocketAddr),
    /// Open a TCP connection to this server; report [`Lookup::connected`].
    Tcp(SocketAddr),
    /// Write [`Lookup::output`] to the TCP connection.
    Send,
    /// Read, and pass what arrives to [`Lookup::received`] (one datagram
    /// at a time over UDP).
    Receive,
    /// Close the socket: the lookup is over.
    Done(Result<Found, DnsReason>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

const QTYPES: [u16; 2] = [TYPE_A, TYPE_AAAA];

#[derive(Debug)]
pub struct Lookup {
    /// The names to try, in wire form, in order.
    candidates: Vec<Vec<u8>>,
    candidate: usize,
    servers: Vec<SocketAddr>,
    per_try: Duration,
    /// Tries per candidate: every server, `attempts` times.
    tries: usize,
    attempt: usize,
    transport: Transport,
    ids: [u16; 2],
    replies: [Option<Reply>; 2],
    /// The two queries: back to back for UDP (split at `split`), each with
    /// its length prefix for TCP.
    out: Vec<u8>,
    split: usize,
    sent: usize,
    /// TCP bytes not yet framed into an answer.
    inbuf: Vec<u8>,
    /// When the current try gives up, or earlier: when the resolution delay
    /// for the second family ends.
    wake: Instant,
    /// The first failure other than "no such host", reported when no
    /// candidate resolves.
    failure: Option<DnsReason>,
    rng: Rng,
    done: bool,
}

impl Lookup {
    /// Starts looking `name` up (not `localhost`, not an IP literal, not in
    /// the hosts file: the caller saw to those).
    pub fn start(name: &str, conf: &ResolvConf, rng: Rng, now: Instant) -> (Lookup, Action) {
        let candidates: Vec<Vec<u8>> = conf.candidates(name).iter().filter_map(|n| message::encode_name(n)).collect();
        let mut lookup = Lookup {
            candidates,
            candidate: 0,
            servers: conf.servers.clone(),
            per_try: conf.timeout,
            tries: conf.servers.len().max(1) * usize::from(conf.attempts.max(1)),
            attempt: 0,
            transport: Transport::Udp,
            ids: [0; 2],
            replies: [None, None],
            out: Vec::new(),
            split: 0,
            sent: 0,
            inbuf: Vec::new(),
            wake: now,
            failure: None,
            rng,
            done: false,
        };
        let action = if lookup.candidates.is_empty() || lookup.servers.is_empty() {
            lookup.finish(Err(DnsReason::NoSuchHost))
        } else {
            lookup.begin_try(Transport::Udp, now)
        };
        (lookup, action)
    }

    /// When the current try gives up, or stops waiting for the second
    /// family's answer: call [`Lookup::timed_out`] then.
    pub(crate) fn wake(&self) -> Option<Instant> {
        (!self.done).then_some(self.wake)
    }

    pub(crate) fn is_connecting(&self) -> bool {
        self.transport == Transport::Tcp && self.sent == 0 && !self.done
    }

    /// The two UDP queries, A then AAAA.
    pub fn datagrams(&self) -> [&[u8]; 2] {
        [&self.out[..self.split], &self.out[self.split..]]
    }

    /// TCP bytes still to write.
    pub fn output(&self) -> &[u8] {
        &self.out[self.sent.min(self.out.len())..]
    }

    /// The TCP connection is up: send both queries.
    pub(crate) fn connected(&mut self) -> Action {
        Action::Send
    }

    pub(crate) fn wrote(&mut self, n: usize) -> Action {
        self.sent += n;
        if self.output().is_empty() {
            Action::Receive
        } else {
            Action::Send
        }
    }

    /// The step to retry when the socket reports readiness.
    pub(crate) fn resume(&self) -> Option<Action> {
        match (self.done, self.transport) {
            (true, _) => None,
            (false, Transport::Tcp) if !self.output().is_empty() => Some(Action::Send),
            (false, _) => Some(Action::Receive),
        }
    }

    /// Bytes arrived: one datagram over UDP, a piece of the stream over TCP.
    pub fn received(&mut self, data: &[u8], now: Instant) -> Action {
        if self.done {
            return Action::Receive;
        }
        match self.transport {
            Transport::Udp => {
                // Over the size we advertised: not an answer we asked for.
                if data.len() > usize::from(EDNS_UDP_SIZE) {
                    return Action::Receive;
                }
                match self.answer(data, now) {
                    Ok(Some(action)) => action,
                    // Spoofed, stray or garbled: ignored, the real answer may follow.
                    Ok(None) | Err(_) => Action::Receive,
                }
            }
            Transport::Tcp => {
                if self.inbuf.len() + data.len() > MAX_TCP_ANSWER + 2 {
                    return self.try_failed(DnsReason::ServerFailure, now);
                }
                self.inbuf.extend_from_slice(data);
                while self.inbuf.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]));
                    if len > MAX_TCP_ANSWER {
                        return self.try_failed(DnsReason::ServerFailure, now);
                    }
                    if self.inbuf.len() < 2 + len {
                        break;
                    }
                    let msg: Vec<u8> = self.inbuf.drain(..2 + len).skip(2).collect();
                    match self.answer(&msg, now) {
                        Ok(Some(action)) => return action,
                        Ok(None) | Err(Invalid::Mismatch) => {}
                        Err(Invalid::Malformed) => return self.try_failed(DnsReason::ServerFailure, now),
                    }
                }
                Action::Receive
            }
        }
    }

    /// The TCP peer closed before both answers came.
    pub(crate) fn eof(&mut self, now: Instant) -> Action {
        self.try_failed(DnsReason::ServerFailure, now)
    }

    /// Sending, connecting or reading failed: this server is out for this try.
    pub(crate) fn io_failed(&mut self, now: Instant) -> Action {
        self.try_failed(DnsReason::ServerFailure, now)
    }

    /// The try's time ran out (the engine calls this at [`Lookup::wake`]).
    pub(crate) fn timed_out(&mut self, now: Instant) -> Action {
        if self.done || now < self.wake {
            return Action::Receive;
        }
        // An error answer for one type says more than the other's silence.
        let failure = if self.server_failed() { DnsReason::ServerFailure } else { DnsReason::Timeout };
        self.try_failed(failure, now)
    }

    /// Handles one answer; Ok(None) when more are awaited.
    fn answer(&mut self, msg: &[u8], now: Instant) -> Result<Option<Action>, Invalid> {
        let qname = &self.candidates[self.candidate];
        let mut parsed = Err(Invalid::Mismatch);
        let mut which = 0;
        for (i, (&id, &qtype)) in self.ids.iter().zip(&QTYPES).enumerate() {
            if self.replies[i].is_none() {
                parsed = message::parse_reply(msg, id, qname, qtype);
                which = i;
                if parsed != Err(Invalid::Mismatch) {
                    break;
                }
            }
        }
        let reply = parsed?;
        match reply {
            // Asking both again over TCP would drop the other type's addresses in hand: with
            // them, this type counts as failed, as when it is truncated over TCP (broken).
            Reply::Truncated if self.transport == Transport::Udp && !self.has_addresses() => {
                return Ok(Some(self.begin_try(Transport::Tcp, now)))
            }
            Reply::Truncated => self.replies[which] = Some(Reply::ServerFailure(message::RCODE_SERVFAIL)),
            // NXDOMAIN is about the name, whatever the type; addresses of the other type, if
            // they came, still count.
            Reply::NoSuchName if self.has_addresses() => return Ok(Some(self.candidate_done(now))),
            Reply::NoSuchName => return Ok(Some(self.candidate_failed(DnsReason::NoSuchHost, now))),
            // An error for one type says nothing of the other: kept until both answered.
            Reply::ServerFailure(_) | Reply::Addrs { .. } => self.replies[which] = Some(reply),
        }
        if self.replies.iter().any(Option::is_none) {
            if self.has_addresses() {
                // Addresses in hand: the other type gets the resolution delay, no more.
                self.wake = self.wake.min(now + RESOLUTION_DELAY);
            }
            return Ok(None);
        }
        if self.has_addresses() || !self.server_failed() {
            return Ok(Some(self.candidate_done(now)));
        }
        Ok(Some(self.try_failed(DnsReason::ServerFailure, now)))
    }

    /// Whether a server answered this try with an error for either type.
    fn server_failed(&self) -> bool {
        self.replies.iter().flatten().any(|r| matches!(r, Reply::ServerFailure(_)))
    }

    /// Both answers are in (or the try ended with one in hand).
    fn candidate_done(&mut self, now: Instant) -> Action {
        let mut addrs: Vec<IpAddr> = Vec::new();
        let mut ttl = u32::MAX;
        for reply in self.replies.iter().flatten() {
            if let Reply::Addrs { addrs: found, ttl: t } = reply {
                if !found.is_empty() {
                    addrs.extend(found);
                    ttl = ttl.min(*t);
                }
            }
        }
        if addrs.is_empty() {
            return self.candidate_failed(DnsReason::NoAddress, now);
        }
        self.finish(Ok(Found { addrs, ttl: Duration::from_secs(u64::from(ttl)) }))
    }

    /// This try got no usable answer: keep an address answer in hand if
    /// one came, else the next server (or attempt), else the next name.
    fn try_failed(&mut self, failure: DnsReason, now: Instant) -> Action {
        if self.has_addresses() {
            return self.candidate_done(now);
        }
        self.attempt += 1;
        if self.attempt < self.tries {
            return self.begin_try(Transport::Udp, now);
        }
        self.candidate_failed(failure, now)
    }

    fn has_addresses(&self) -> bool {
        self.replies.iter().flatten().any(|r| matches!(r, Reply::Addrs { addrs, .. } if !addrs.is_empty()))
    }

    fn candidate_failed(&mut self, failure: DnsReason, now: Instant) -> Action {
        if failure != DnsReason::NoSuchHost {
            self.failure.get_or_insert(failure);
        }
        self.candidate += 1;
        self.attempt = 0;
        if self.candidate < self.candidates.len() {
            return self.begin_try(Transport::Udp, now);
        }
        let failure = self.failure.unwrap_or(DnsReason::NoSuchHost);
        self.finish(Err(failure))
    }

    /// Sends both queries afresh (new IDs) to the server of this attempt.
    fn begin_try(&mut self, transport: Transport, now: Instant) -> Action {
        self.transport = transport;
        self.replies = [None, None];
        self.sent = 0;
        self.inbuf.clear();
        self.out.clear();
        self.wake = now + self.per_try;
        let qname = &self.candidates[self.candidate];
        for (i, qtype) in QTYPES.into_iter().enumerate() {
            let id = self.rng.next_u16();
            // Distinct IDs, so each answer belongs to one query.
            self.ids[i] = if i == 1 && id == self.ids[0] { id ^ 1 } else { id };
            let start = self.out.len();
            if transport == Transport::Tcp {
                self.out.extend_from_slice(&[0, 0]);
            }
            message::write_query(&mut self.out, self.ids[i], qname, qtype);
            if transport == Transport::Tcp {
                let len = (self.out.len() - start - 2) as u16;
                self.out[start..start + 2].copy_from_slice(&len.to_be_bytes());
            }
            if i == 0 {
                self.split = self.out.len();
            }
        }
        let server = self.servers[self.attempt % self.servers.len()];
        match transport {
            Transport::Udp => Action::Udp(server),
            Transport::Tcp => Action::Tcp(server),
        }
    }

    fn finish(&mut self, result: Result<Found, DnsReason>) -> Action {
        self.done = true;
        Action::Done(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dns::{build_reply, encode_name, RCODE_NXDOMAIN, RCODE_SERVFAIL};

    const S1: &str = "10.0.0.1:53";
    const S2: &str = "10.0.0.2:53";

    fn conf(text: &str) -> ResolvConf {
        ResolvConf::parse(text)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn start(name: &str, text: &str, now: Instant) -> (Lookup, Action) {
        Lookup::start(name, &conf(text), Rng::new(42), now)
    }

    /// The (id, qname, qtype) of a query datagram.
    fn question(q: &[u8]) -> (u16, Vec<u8>, u16) {
        let id = u16::from_be_bytes([q[0], q[1]]);
        let end = q.len() - 11 - 4;
        (id, q[12..end].to_vec(), u16::from_be_bytes([q[end], q[end + 1]]))
    }

    /// An answer to query `q` with these A/AAAA addresses (rcode 0).
    fn answer(q: &[u8], rcode: u16, addrs: &[&[u8]], ttl: u32) -> Vec<u8> {
        let (id, name, qtype) = question(q);
        let records: Vec<(&[u8], u16, u32, &[u8])> =
            addrs.iter().map(|a| (name.as_slice(), if a.len() == 4 { TYPE_A } else { TYPE_AAAA }, ttl, *a)).collect();
        build_reply(id, rcode, &name, qtype, &records)
    }

    fn both(l: &Lookup) -> [Vec<u8>; 2] {
        let [a, b] = l.datagrams();
        [a.to_vec(), b.to_vec()]
    }

    const V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

    #[test]
    fn asks_a_and_aaaa_and_puts_ipv4_first() {
        let now = Instant::now();
        let (mut l, action) = start("db", &format!("nameserver {}\n", &S1[..8]), now);
        assert_eq!(action, Action::Udp(addr(S1)));
        let [a, aaaa] = both(&l);
        assert_eq!(question(&a).2, TYPE_A);
        assert_eq!(question(&aaaa).2, TYPE_AAAA);
        assert_eq!(question(&a).1, encode_name("db").unwrap());
        assert_ne!(question(&a).0, question(&aaaa).0);
        assert_eq!(l.received(&answer(&aaaa, 0, &[&V6], 30), now), Action::Receive);
        let done = l.received(&answer(&a, 0, &[&[10, 0, 0, 5]], 10), now);
        let want = Found { addrs: vec![IpAddr::from([10, 0, 0, 5]), IpAddr::from(V6)], ttl: Duration::from_secs(10) };
        assert_eq!(done, Action::Done(Ok(want)));
        assert_eq!(l.wake(), None);
    }

    #[test]
    fn ignores_spoofed_and_oversized_answers() {
        let now = Instant::now();
        let (mut l, _) = start("db", "nameserver 10.0.0.1\n", now);
        let [a, aaaa] = both(&l);
        let mut spoofed = answer(&a, 0, &[&[6, 6, 6, 6]], 10);
        spoofed[0] ^= 0xff;
        assert_eq!(l.received(&spoofed, now), Action::Receive);
        assert_eq!(l.received(b"garbage", now), Action::Receive);
        let mut big = answer(&a, 0, &[&[6, 6, 6, 6]], 10);
        big.resize(usize::from(EDNS_UDP_SIZE) + 1, 0);
        assert_eq!(l.received(&big, now), Action::Receive);
        assert_eq!(l.received(&answer(&a, 0, &[&[10, 0, 0, 1]], 10), now), Action::Receive);
        let Action::Done(Ok(found)) = l.received(&answer(&aaaa, 0, &[], 0), now) else { panic!() };
        assert_eq!(found.addrs, [IpAddr::from([10, 0, 0, 1])]);
    }

    #[test]
    fn walks_the_search_list_until_a_name_resolves() {
        let now = Instant::now();
        let text = "nameserver 10.0.0.1\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5\n";
        let (mut l, _) = start("app", text, now);
        let [a, _] = both(&l);
        assert_eq!(question(&a).1, encode_name("app.ns.svc.cluster.local").unwrap());
        // NXDOMAIN on A alone settles the name: the next one is asked.
        assert_eq!(l.received(&answer(&a, RCODE_NXDOMAIN as u16, &[], 0), now), Action::Udp(addr(S1)));
        let [a, aaaa] = both(&l);
        assert_eq!(question(&a).1, encode_name("app.svc.cluster.local").unwrap());
        // NODATA on both: the next name.
        l.received(&answer(&a, 0, &[], 0), now);
        assert_eq!(l.received(&answer(&aaaa, 0, &[], 0), now), Action::Udp(addr(S1)));
        let [a, _] = both(&l);
        assert_eq!(question(&a).1, encode_name("app").unwrap());
        // The NODATA seen on the way says more than the last NXDOMAIN.
        assert_eq!(
            l.received(&answer(&a, RCODE_NXDOMAIN as u16, &[], 0), now),
            Action::Done(Err(DnsReason::NoAddress))
        );
    }

    #[test]
    fn reports_no_such_host_and_no_address() {
        let now = Instant::now();
        let (mut l, _) = start("gone", "nameserver 10.0.0.1\n", now);
        let [a, _] = both(&l);
        assert_eq!(
            l.received(&answer(&a, RCODE_NXDOMAIN as u16, &[], 0), now),
            Action::Done(Err(DnsReason::NoSuchHost))
        );
        // An inconsistent server: AAAA addresses, then NXDOMAIN for A.
        let (mut l, _) = start("odd", "nameserver 10.0.0.1\n", now);
        let [a, aaaa] = both(&l);
        l.received(&answer(&aaaa, 0, &[&V6], 9), now);
        let Action::Done(Ok(found)) = l.received(&answer(&a, RCODE_NXDOMAIN as u16, &[], 0), now) else { panic!() };
        assert_eq!(found.addrs, [IpAddr::from(V6)]);
        let (mut l, _) = start("v4less", "nameserver 10.0.0.1\n", now);
        let [a, aaaa] = both(&l);
        l.received(&answer(&aaaa, 0, &[], 0), now);
        assert_eq!(l.received(&answer(&a, 0, &[], 0), now), Action::Done(Err(DnsReason::NoAddress)));
    }

    #[test]
    fn tries_each_server_then_again_then_times_out() {
        let t0 = Instant::now();
        let text = "nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions timeout:1 attempts:2\n";
        let (mut l, first) = start("db.example.", text, t0);
        assert_eq!(first, Action::Udp(addr(S1)));
        assert_eq!(l.wake(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(l.timed_out(t0 + Duration::from_millis(500)), Action::Receive, "early: nothing");
        let mut now = t0;
        for want in [S2, S1, S2] {
            now += Duration::from_secs(1);
            assert_eq!(l.timed_out(now), Action::Udp(addr(want)));
        }
        now += Duration::from_secs(1);
        assert_eq!(l.timed_out(now), Action::Done(Err(DnsReason::Timeout)));
    }

    #[test]
    fn server_failure_moves_to_the_next_server() {
        let now = Instant::now();
        let (mut l, _) = start("db.", "nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions attempts:1\n", now);
        let [a, aaaa] = both(&l);
        // The AAAA question may still bring addresses: waited for.
        assert_eq!(l.received(&answer(&a, RCODE_SERVFAIL as u16, &[], 0), now), Action::Receive);
        assert_eq!(l.received(&answer(&aaaa, 0, &[], 0), now), Action::Udp(addr(S2)));
        let [a, aaaa] = both(&l);
        assert_eq!(l.received(&answer(&aaaa, 5, &[], 0), now), Action::Receive);
        assert_eq!(l.received(&answer(&a, 5, &[], 0), now), Action::Done(Err(DnsReason::ServerFailure)));
        // An I/O error (ICMP refused on a connected UDP socket) too.
        let (mut l, _) = start("db.", "nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions attempts:1\n", now);
        assert_eq!(l.io_failed(now), Action::Udp(addr(S2)));
    }

    #[test]
    fn an_address_in_hand_beats_a_missing_aaaa() {
        let t0 = Instant::now();
        let (mut l, _) = start("db.", "nameserver 10.0.0.1\noptions timeout:1\n", t0);
        let [a, _] = both(&l);
        assert_eq!(l.received(&answer(&a, 0, &[&[10, 1, 1, 1]], 7), t0), Action::Receive);
        let Action::Done(Ok(found)) = l.timed_out(t0 + Duration::from_secs(1)) else { panic!() };
        assert_eq!((found.addrs, found.ttl), (vec![IpAddr::from([10, 1, 1, 1])], Duration::from_secs(7)));
    }

    /// Answers the A and AAAA queries of `l` in the order given, each at its instant; the
    /// action after the last.
    fn feed(l: &mut Lookup, replies: &[(usize, u16, &[&[u8]], Instant)]) -> Action {
        let queries = both(l);
        let mut last = Action::Receive;
        for &(i, rcode, addrs, at) in replies {
            last = l.received(&answer(&queries[i], rcode, addrs, 30), at);
        }
        last
    }

    const REFUSED: u16 = 5;
    const LOOPBACK_V6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn one_family_failing_does_not_lose_the_others_addresses() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let servers = "nameserver 10.0.0.1\nnameserver 10.0.0.2\n";
        let v6 = || Ok(Found { addrs: vec![IpAddr::from(LOOPBACK_V6)], ttl: Duration::from_secs(30) });
        let v4 = || Ok(Found { addrs: vec![IpAddr::from([127, 0, 0, 1])], ttl: Duration::from_secs(30) });
        // (A, AAAA) in the order they arrive: whatever A's error, AAAA's address is used.
        for rcode in [RCODE_SERVFAIL as u16, REFUSED] {
            let (mut l, _) = start("web.", servers, t0);
            assert_eq!(feed(&mut l, &[(0, rcode, &[], t0), (1, 0, &[&LOOPBACK_V6], ms(1))]), Action::Done(v6()));
            let (mut l, _) = start("web.", servers, t0);
            // AAAA first: A has the resolution delay to answer, and its error changes nothing.
            assert_eq!(feed(&mut l, &[(1, 0, &[&LOOPBACK_V6], t0)]), Action::Receive);
            assert_eq!(l.wake(), Some(t0 + RESOLUTION_DELAY));
            assert_eq!(feed(&mut l, &[(0, rcode, &[], ms(10))]), Action::Done(v6()));
        }
        // AAAA fails at once, A answers 80 ms later: A's address, not the next server.
        let (mut l, _) = start("web.", servers, t0);
        assert_eq!(feed(&mut l, &[(1, RCODE_SERVFAIL as u16, &[], t0)]), Action::Receive);
        assert_eq!(l.wake(), Some(t0 + Duration::from_secs(5)), "no address yet: the try's own timeout");
        assert_eq!(feed(&mut l, &[(0, 0, &[&[127, 0, 0, 1]], ms(80))]), Action::Done(v4()));
        // NODATA for one, an address for the other.
        let (mut l, _) = start("web.", servers, t0);
        assert_eq!(feed(&mut l, &[(0, 0, &[], t0), (1, 0, &[&LOOPBACK_V6], ms(1))]), Action::Done(v6()));
    }

    #[test]
    fn a_silent_family_is_waited_for_the_resolution_delay_only() {
        let t0 = Instant::now();
        let v4: &[u8] = &[127, 0, 0, 1];
        for (family, addr, ip) in [(0, v4, IpAddr::from([127, 0, 0, 1])), (1, &LOOPBACK_V6, IpAddr::from(LOOPBACK_V6))]
        {
            let (mut l, _) = start("web.", "nameserver 10.0.0.1\n", t0);
            let at = t0 + Duration::from_millis(20);
            assert_eq!(feed(&mut l, &[(family, 0, &[addr], at)]), Action::Receive);
            let wake = at + RESOLUTION_DELAY;
            assert_eq!(l.wake(), Some(wake));
            assert_eq!(l.timed_out(wake - Duration::from_millis(1)), Action::Receive, "early: nothing");
            let Action::Done(Ok(found)) = l.timed_out(wake) else { panic!("family {family}: not done") };
            assert_eq!(found.addrs, [ip]);
        }
    }

    #[test]
    fn with_no_address_from_either_family_the_most_telling_reason_wins() {
        let t0 = Instant::now();
        let conf = "nameserver 10.0.0.1\noptions attempts:1 timeout:1\n";
        let fail = |f| Action::Done(Err(f));
        let cases: [(&[(usize, u16)], Action); 5] = [
            (&[(0, RCODE_SERVFAIL as u16), (1, REFUSED)], fail(DnsReason::ServerFailure)),
            (&[(1, RCODE_SERVFAIL as u16), (0, 0)], fail(DnsReason::ServerFailure)),
            (&[(0, 0), (1, REFUSED)], fail(DnsReason::ServerFailure)),
            (&[(0, 0), (1, 0)], fail(DnsReason::NoAddress)),
            (&[(1, RCODE_SERVFAIL as u16), (0, RCODE_NXDOMAIN as u16)], fail(DnsReason::NoSuchHost)),
        ];
        for (replies, want) in cases {
            let (mut l, _) = start("web.", conf, t0);
            let replies: Vec<_> = replies.iter().map(|&(i, rcode)| (i, rcode, &[][..], t0)).collect();
            assert_eq!(feed(&mut l, &replies), want, "{replies:?}");
        }
        // An error for one family and silence from the other: the error is told, at the timeout.
        let (mut l, _) = start("web.", conf, t0);
        assert_eq!(feed(&mut l, &[(0, RCODE_SERVFAIL as u16, &[], t0)]), Action::Receive);
        assert_eq!(l.timed_out(t0 + Duration::from_secs(1)), fail(DnsReason::ServerFailure));
    }

    #[test]
    fn a_truncated_family_does_not_drop_the_others_addresses() {
        let t0 = Instant::now();
        let (mut l, _) = start("web.", "nameserver 10.0.0.1\n", t0);
        let [a, aaaa] = both(&l);
        assert_eq!(l.received(&answer(&a, 0, &[&[127, 0, 0, 1]], 30), t0), Action::Receive);
        let mut tc = answer(&aaaa, 0, &[], 0);
        tc[2] |= 0x02;
        let Action::Done(Ok(found)) = l.received(&tc, t0) else { panic!("asked again, dropping A") };
        assert_eq!(found.addrs, [IpAddr::from([127, 0, 0, 1])]);
    }

    #[test]
    fn truncated_answers_are_asked_again_over_tcp() {
        let now = Instant::now();
        let (mut l, _) = start("big.", "nameserver 10.0.0.1\n", now);
        let [a, _] = both(&l);
        let mut tc = answer(&a, 0, &[], 0);
        tc[2] |= 0x02;
        assert_eq!(l.received(&tc, now), Action::Tcp(addr(S1)));
        assert!(l.is_connecting());
        assert_eq!(l.connected(), Action::Send);
        // Both queries, each with its length prefix.
        let out = l.output().to_vec();
        let first = usize::from(u16::from_be_bytes([out[0], out[1]]));
        let (qa, rest) = out[2..].split_at(first);
        let qaaaa = &rest[2..];
        assert_eq!(usize::from(u16::from_be_bytes([rest[0], rest[1]])), qaaaa.len());
        assert_eq!(l.wrote(3), Action::Send);
        assert_eq!(l.wrote(out.len() - 3), Action::Receive);
        // The answers arrive in pieces, in any order.
        let mut stream = Vec::new();
        for msg in [answer(qaaaa, 0, &[&V6], 60), answer(qa, 0, &[&[10, 2, 2, 2], &[10, 2, 2, 3]], 60)] {
            stream.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            stream.extend_from_slice(&msg);
        }
        let (head, tail) = stream.split_at(5);
        assert_eq!(l.received(head, now), Action::Receive);
        let Action::Done(Ok(found)) = l.received(tail, now) else { panic!() };
        assert_eq!(found.addrs.len(), 3);
    }

    #[test]
    fn a_tcp_answer_is_bounded() {
        let now = Instant::now();
        let (mut l, _) = start("big.", "nameserver 10.0.0.1\nnameserver 10.0.0.2\n", now);
        let [a, _] = both(&l);
        let mut tc = answer(&a, 0, &[], 0);
        tc[2] |= 0x02;
        l.received(&tc, now);
        assert_eq!(l.received(&[0xff, 0xff], now), Action::Udp(addr(S2)), "65535 bytes announced");
        let (mut l, _) = start("big.", "nameserver 10.0.0.1\noptions attempts:1\n", now);
        let [a, _] = both(&l);
        let mut tc = answer(&a, 0, &[], 0);
        tc[2] |= 0x02;
        l.received(&tc, now);
        assert_eq!(l.eof(now), Action::Done(Err(DnsReason::ServerFailure)));
    }

    #[test]
    fn invalid_names_fail_at_once() {
        let now = Instant::now();
        let (_, action) = start(&"x".repeat(64), "", now);
        assert_eq!(action, Action::Done(Err(DnsReason::NoSuchHost)));
    }
}
