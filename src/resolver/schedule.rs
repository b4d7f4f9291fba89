//! A round's name lookups, without sockets: each name is asked once and
//! its checks share the answer, at most [`MAX_LOOKUPS`] run at once while
//! the others wait their turn, and the earliest retry is known for the
//! poll timeout. The runtime carries out each lookup's actions.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use super::lookup::{Action, Found, Lookup};
use super::Resolver;
use crate::check::Check;
use crate::verdict::DnsReason;

/// Lookups under way at once, each with its two queries outstanding; the
/// others wait their turn within the same deadline, so a round with a
/// thousand names does not throw two thousand datagrams at the DNS server
/// in one burst (the load bench saw a server drop them).
pub(crate) const MAX_LOOKUPS: usize = 64;

/// What a name resolved to, for each check naming it.
pub(crate) type Outcome = Result<Vec<IpAddr>, DnsReason>;

/// One name's lookup in this round, shared by every check naming it.
#[derive(Debug)]
enum NameLookup {
    /// Waiting for its turn.
    Queued {
        name: String,
        waiters: Vec<usize>,
    },
    Running {
        name: String,
        lookup: Box<Lookup>,
        waiters: Vec<usize>,
    },
    /// How it ended, for the checks that name it later in the round.
    Ended(Outcome),
    /// Cut off by the round's deadline.
    Closed,
}

/// The lookups of the running round.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Lookup `j` of the round; its index names it to the runtime.
    lookups: Vec<NameLookup>,
    /// Per check, the first check of the round naming the same host
    /// (itself when none before it does): the one whose lookup it shares.
    first_of: Vec<usize>,
    /// Per check, the lookup it began.
    began: Vec<Option<usize>>,
    /// The checks with a name to resolve, in name order (a buffer kept
    /// across rounds).
    by_name: Vec<usize>,
    queued: VecDeque<usize>,
    in_flight: usize,
    /// No lookup needs a timer before this (it may be earlier than needed:
    /// then the lookups are scanned once for nothing).
    wake: Option<Instant>,
}

impl Schedule {
    /// A new round for `checks`, in check order.
    pub(crate) fn start(&mut self, checks: &[Check]) {
        self.lookups.clear();
        self.queued.clear();
        self.in_flight = 0;
        self.wake = None;
        self.began.clear();
        self.began.resize(checks.len(), None);
        self.first_of.clear();
        self.first_of.extend(0..checks.len());
        // Each name's checks in check order: the first leads.
        self.by_name.clear();
        self.by_name.extend((0..checks.len()).filter(|&i| checks[i].dns_name().is_some()));
        self.by_name.sort_unstable_by_key(|&i| (checks[i].dns_name(), i));
        for k in 1..self.by_name.len() {
            let (before, i) = (self.by_name[k - 1], self.by_name[k]);
            if checks[before].dns_name() == checks[i].dns_name() {
                self.first_of[i] = self.first_of[before];
            }
        }
    }

    /// Check `i` names `name`: what is known of it already (an earlier
    /// check's lookup ended, the hosts file, the cache), or None when it
    /// waits for a lookup (queued, or joined).
    pub(crate) fn ask(&mut self, i: usize, name: &str, resolver: &Resolver, now: Instant) -> Option<Outcome> {
        if let Some(j) = self.began[self.first_of[i]] {
            return match &mut self.lookups[j] {
                NameLookup::Queued { waiters, .. } | NameLookup::Running { waiters, .. } => {
                    waiters.push(i);
                    None
                }
                NameLookup::Ended(outcome) => Some(outcome.clone()),
                NameLookup::Closed => Some(Err(DnsReason::Timeout)),
            };
        }
        if let Some(known) = resolver.known(name, now) {
            return Some(known);
        }
        // Under the name's first check, so that every check naming it (and
        // a check probed again in the round) shares it: one lookup per name
        // per round, and never more lookups than checks.
        let j = self.lookups.len();
        self.began[self.first_of[i]] = Some(j);
        self.lookups.push(NameLookup::Queued { name: name.to_string(), waiters: vec![i] });
        self.queued.push_back(j);
        None
    }

    /// The next queued lookup to begin while fewer than [`MAX_LOOKUPS`]
    /// run, with its first action.
    pub(crate) fn begin(&mut self, resolver: &mut Resolver, now: Instant) -> Option<(usize, Action)> {
        if self.in_flight >= MAX_LOOKUPS {
            return None;
        }
        let j = self.queued.pop_front()?;
        let NameLookup::Queued { name, waiters } = std::mem::replace(&mut self.lookups[j], NameLookup::Closed) else {
            unreachable!("only queued lookups wait in the queue")
        };
        let (lookup, action) = resolver.lookup(&name, now);
        self.lookups[j] = NameLookup::Running { name, lookup, waiters };
        self.in_flight += 1;
        Some((j, action))
    }

    /// Lookup `j`'s machine while it runs.
    pub(crate) fn running(&mut self, j: usize) -> Option<&mut Lookup> {
        match self.lookups.get_mut(j) {
            Some(NameLookup::Running { lookup, .. }) => Some(lookup),
            _ => None,
        }
    }

    /// Lookup `j` waits for its socket: its retry counts for [`Schedule::wake`].
    pub(crate) fn waiting(&mut self, j: usize) {
        if let Some(wake) = self.running(j).and_then(|l| l.wake()) {
            self.wake = Some(self.wake.map_or(wake, |w| w.min(wake)));
        }
    }

    /// Lookup `j` ended: an answer is kept in the resolver's cache. Returns
    /// the checks that waited for it and what they get.
    pub(crate) fn ended(
        &mut self,
        j: usize,
        result: Result<Found, DnsReason>,
        resolver: &mut Resolver,
        now: Instant,
    ) -> (Vec<usize>, Outcome) {
        let outcome = result.as_ref().map(|found| found.addrs.clone()).map_err(|reason| *reason);
        let NameLookup::Running { name, waiters, .. } =
            std::mem::replace(&mut self.lookups[j], NameLookup::Ended(outcome.clone()))
        else {
            unreachable!("only a running lookup ends")
        };
        self.in_flight -= 1;
        if let Ok(found) = &result {
            resolver.store(&name, found, now);
        }
        (waiters, outcome)
    }

    /// When a lookup's try may time out: call [`Schedule::due`] then.
    pub(crate) fn wake(&self) -> Option<Instant> {
        self.wake
    }

    /// Whether a retry may be due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.wake.is_some_and(|w| now >= w)
    }

    /// The lookups of the round, by index, to scan with [`Schedule::due`].
    pub(crate) fn count(&self) -> usize {
        self.lookups.len()
    }

    /// Forgets the wake-up before a scan with [`Schedule::due`], which
    /// notes the next ones.
    pub(crate) fn clear_wake(&mut self) {
        self.wake = None;
    }

    /// Lookup `j`'s timed-out try: the action to carry out, when its try's
    /// time is up at `now`.
    pub(crate) fn due(&mut self, j: usize, now: Instant) -> Option<Action> {
        let lookup = self.running(j)?;
        match lookup.wake() {
            Some(wake) if now >= wake => Some(lookup.timed_out(now)),
            Some(wake) => {
                self.wake = Some(self.wake.map_or(wake, |w| w.min(wake)));
                None
            }
            None => None,
        }
    }

    /// The round's deadline passed: every lookup still under way or
    /// queued is dropped.
    pub(crate) fn close(&mut self) {
        for entry in &mut self.lookups {
            if matches!(entry, NameLookup::Queued { .. } | NameLookup::Running { .. }) {
                *entry = NameLookup::Closed;
            }
        }
        self.queued.clear();
        self.in_flight = 0;
        self.wake = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::{Hosts, ResolvConf, Rng};
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn resolver() -> Resolver {
        Resolver::new(ResolvConf::default(), Hosts::parse("10.0.0.9 pinned\n"), Rng::new(7))
    }

    fn checks(urls: &[&str]) -> Vec<Check> {
        urls.iter().map(|u| Check::parse(u).unwrap()).collect()
    }

    fn found(ip: [u8; 4]) -> Found {
        Found { addrs: vec![IpAddr::V4(Ipv4Addr::from(ip))], ttl: Duration::from_secs(30) }
    }

    #[test]
    fn a_name_is_asked_once_per_round() {
        let (mut r, mut s, now) = (resolver(), Schedule::default(), Instant::now());
        let named = checks(&["http://app/", "http://127.0.0.1/", "http://db/", "tcp://app:1"]);
        s.start(&named);
        assert_eq!(s.ask(0, "app", &r, now), None);
        assert_eq!(s.ask(2, "db", &r, now), None);
        assert_eq!(s.ask(3, "app", &r, now), None, "joins the lookup of check 0");
        assert_eq!(s.count(), 2);
        let (j, action) = s.begin(&mut r, now).unwrap();
        assert!(matches!(action, Action::Udp(_)), "{action:?}");
        assert_eq!(j, 0);
        assert!(s.begin(&mut r, now).is_some());
        assert!(s.begin(&mut r, now).is_none(), "nothing left in the queue");
        let (waiters, outcome) = s.ended(0, Ok(found([10, 0, 0, 1])), &mut r, now);
        assert_eq!(waiters, [0, 3]);
        assert_eq!(outcome, Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]));
        // The answer is cached for the next round; the hosts file needs no lookup.
        s.start(&checks(&["http://app/", "http://pinned/"]));
        assert_eq!(s.ask(0, "app", &r, now), Some(outcome));
        assert_eq!(s.ask(1, "pinned", &r, now), Some(Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))])));
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn at_most_max_lookups_run_at_once() {
        let (mut r, mut s, now) = (resolver(), Schedule::default(), Instant::now());
        let names: Vec<String> = (0..=MAX_LOOKUPS).map(|i| format!("n{i}")).collect();
        let urls: Vec<String> = names.iter().map(|n| format!("http://{n}/")).collect();
        s.start(&checks(&urls.iter().map(String::as_str).collect::<Vec<_>>()));
        for (i, name) in names.iter().enumerate() {
            assert_eq!(s.ask(i, name, &r, now), None);
        }
        let begun: Vec<usize> = std::iter::from_fn(|| s.begin(&mut r, now).map(|(j, _)| j)).collect();
        assert_eq!(begun.len(), MAX_LOOKUPS);
        let _ = s.ended(5, Err(DnsReason::NoSuchHost), &mut r, now);
        assert_eq!(s.begin(&mut r, now).map(|(j, _)| j), Some(MAX_LOOKUPS), "the queued one takes the turn");
    }

    #[test]
    fn retries_wake_the_round_and_the_deadline_closes_it() {
        let (mut r, mut s, now) = (resolver(), Schedule::default(), Instant::now());
        s.start(&checks(&["http://app/"]));
        assert_eq!(s.ask(0, "app", &r, now), None);
        let (j, _) = s.begin(&mut r, now).unwrap();
        s.waiting(j);
        let wake = s.wake().expect("a try has a timeout");
        assert!(wake > now && !s.is_due(now) && s.is_due(wake));
        s.clear_wake();
        assert!(s.due(j, now).is_none(), "not yet");
        assert_eq!(s.wake(), Some(wake), "noted again");
        assert!(s.due(j, wake).is_some(), "the try timed out: the next one");
        s.close();
        assert!(s.running(j).is_none() && s.wake().is_none());
    }
}
