//! Name resolution inside the loop: `/etc/hosts`, then the nameservers of
//! `/etc/resolv.conf`, with a cache bounded by each answer's TTL. The
//! resolver and its parts are pure; the engine does the socket work.

pub(crate) mod conf;
pub(crate) mod lookup;
pub(crate) mod schedule;

use std::fs;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

pub use conf::{Hosts, ResolvConf};
pub use lookup::{Action, Found, Lookup, Rng};

use crate::verdict::DnsReason;

/// Answers are reused at most this long, whatever their TTL says, so a
/// changed address is followed within minutes even behind a careless zone.
const MAX_TTL: Duration = Duration::from_secs(300);
/// Names cached at most; each check names one, so this is never reached
/// in use: it only bounds the table.
const MAX_CACHED: usize = 4096;
/// Bytes of `/etc/hosts` or `/etc/resolv.conf` read at most.
const MAX_FILE: u64 = 64 * 1024;

/// The resolver's lasting state: configuration, cache, randomness.
#[derive(Debug)]
pub(crate) struct Resolver {
    conf: ResolvConf,
    hosts: Hosts,
    /// Answers and until when they hold, sorted by name for a binary
    /// search: a round asks for each of its names.
    cache: Vec<(String, Vec<IpAddr>, Instant)>,
    rng: Rng,
    files: [FileStamp; 2],
}

/// What a file looked like when it was last read, to read it only when it
/// changed.
type FileStamp = Option<(SystemTime, u64)>;

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(ResolvConf::default(), Hosts::default(), Rng::from_os())
    }
}

impl Resolver {
    pub(crate) fn new(conf: ResolvConf, hosts: Hosts, rng: Rng) -> Resolver {
        Resolver { conf, hosts, cache: Vec::new(), rng, files: [None, None] }
    }

    /// Reads `/etc/resolv.conf` and `/etc/hosts` again if they changed
    /// (kubelet and operators rewrite them in place). Local files: a stat
    /// each, and a read only after a change.
    pub(crate) fn refresh(&mut self) {
        if let Some(text) = read_if_changed(Path::new("/etc/resolv.conf"), &mut self.files[0]) {
            self.conf = ResolvConf::parse(&text);
        }
        if let Some(text) = read_if_changed(Path::new("/etc/hosts"), &mut self.files[1]) {
            self.hosts = Hosts::parse(&text);
        }
    }

    /// What is known of `name` (not an IP literal, not `localhost`)
    /// without asking a server: the hosts file first, then a cached answer
    /// still within its TTL. None: it must be looked up.
    pub(crate) fn known(&self, name: &str, now: Instant) -> Option<Result<Vec<IpAddr>, DnsReason>> {
        // RFC 6761 6.4: `.invalid` names fail at once, without a query.
        let bare = name.strip_suffix('.').unwrap_or(name).as_bytes();
        let tld = bare.rsplit(|&b| b == b'.').next().unwrap_or_default();
        if tld.eq_ignore_ascii_case(b"invalid") {
            return Some(Err(DnsReason::NoSuchHost));
        }
        let from_hosts = self.hosts.lookup(name);
        if !from_hosts.is_empty() {
            return Some(Ok(from_hosts));
        }
        match self.cached(name) {
            Ok(k) if now < self.cache[k].2 => Some(Ok(self.cache[k].1.clone())),
            _ => None,
        }
    }

    /// Where `name` is in the cache, or where it would go.
    fn cached(&self, name: &str) -> Result<usize, usize> {
        self.cache.binary_search_by(|(cached, ..)| cached.as_str().cmp(name))
    }

    /// Begins a lookup of `name` with the servers and search list of now;
    /// carry out the action it returns.
    pub(crate) fn lookup(&mut self, name: &str, now: Instant) -> (Box<Lookup>, Action) {
        let rng = Rng::new(self.rng.next_u64());
        let (lookup, action) = Lookup::start(name, &self.conf, rng, now);
        (Box::new(lookup), action)
    }

    /// Keeps a lookup's answer for its TTL (capped); a TTL of 0 is not kept.
    pub(crate) fn store(&mut self, name: &str, found: &Found, now: Instant) {
        let ttl = found.ttl.min(MAX_TTL);
        let at = self.cached(name);
        if ttl.is_zero() {
            if let Ok(k) = at {
                self.cache.remove(k);
            }
            return;
        }
        let entry = (name.to_string(), found.addrs.clone(), now + ttl);
        let k = match at {
            Ok(k) => {
                self.cache[k] = entry;
                return;
            }
            Err(_) if self.cache.len() >= MAX_CACHED => {
                self.cache.retain(|(.., until)| now < *until);
                if self.cache.len() >= MAX_CACHED {
                    return;
                }
                // Not there before, so not there now: where it goes.
                let (Ok(k) | Err(k)) = self.cached(name);
                k
            }
            Err(k) => k,
        };
        self.cache.insert(k, entry);
    }
}

/// The file's text when it changed since `stamp` (which is updated). A
/// missing file reads as empty: glibc's defaults then apply.
fn read_if_changed(path: &Path, stamp: &mut FileStamp) -> Option<String> {
    let now = fs::metadata(path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
    if now.is_some() && now == *stamp {
        return None;
    }
    if now.is_none() && stamp.is_none() {
        // Never there: parse the empty text once, for the defaults.
        *stamp = Some((SystemTime::UNIX_EPOCH, u64::MAX));
        return Some(String::new());
    }
    *stamp = now;
    let mut text = String::new();
    if let Ok(file) = fs::File::open(path) {
        let _ = file.take(MAX_FILE).read_to_string(&mut text);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(hosts: &str) -> Resolver {
        Resolver::new(ResolvConf::parse("nameserver 10.0.0.1\n"), Hosts::parse(hosts), Rng::new(1))
    }

    #[test]
    fn hosts_first_then_cache_then_lookup() {
        let now = Instant::now();
        let mut r = resolver("10.1.1.1 db\n");
        assert_eq!(r.known("db", now), Some(Ok(vec![IpAddr::from([10, 1, 1, 1])])));
        assert_eq!(r.known("web", now), None);
        assert!(matches!(r.lookup("web", now), (_, Action::Udp(_))));
        for invalid in ["x.invalid", "X.INVALID.", "invalid"] {
            assert_eq!(r.known(invalid, now), Some(Err(DnsReason::NoSuchHost)), "{invalid}");
        }
        assert_eq!(r.known("invalid.example", now), None);
        let found = Found { addrs: vec![IpAddr::from([10, 2, 2, 2])], ttl: Duration::from_secs(5) };
        r.store("web", &found, now);
        assert_eq!(r.known("web", now + Duration::from_secs(4)), Some(Ok(found.addrs.clone())));
        assert_eq!(r.known("web", now + Duration::from_secs(5)), None, "expired");
    }

    #[test]
    fn cache_keeps_each_name_and_stays_bounded() {
        let now = Instant::now();
        let mut r = resolver("");
        let found = |i: u32, secs| Found { addrs: vec![IpAddr::from(i.to_be_bytes())], ttl: Duration::from_secs(secs) };
        // Stored out of name order, each name is found with its own answer.
        let names: Vec<String> = (0..MAX_CACHED as u32).map(|i| format!("n{}.test", i * 7919 % 4096)).collect();
        for (i, name) in names.iter().enumerate() {
            r.store(name, &found(i as u32, 60), now);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(r.known(name, now), Some(Ok(found(i as u32, 60).addrs)), "{name}");
        }
        // A new answer replaces the old one; a TTL of 0 drops it.
        r.store("n0.test", &found(9, 60), now);
        assert_eq!(r.known("n0.test", now), Some(Ok(found(9, 60).addrs)));
        r.store("n0.test", &found(9, 0), now);
        assert_eq!(r.known("n0.test", now), None);
        // Full: a new name is kept only once expired answers made room.
        r.store("n0.test", &found(1, 60), now);
        r.store("more.test", &found(2, 60), now);
        assert_eq!((r.known("more.test", now), r.cache.len()), (None, MAX_CACHED));
        r.store("more.test", &found(2, 60), now + Duration::from_secs(61));
        assert_eq!(r.known("more.test", now + Duration::from_secs(61)), Some(Ok(found(2, 60).addrs)));
        assert_eq!(r.cache.len(), 1);
    }

    #[test]
    fn ttl_zero_is_not_reused_and_long_ttls_are_capped() {
        let now = Instant::now();
        let mut r = resolver("");
        let found = Found { addrs: vec![IpAddr::from([10, 2, 2, 2])], ttl: Duration::ZERO };
        r.store("web", &found, now);
        assert_eq!(r.known("web", now), None);
        let found = Found { ttl: Duration::from_secs(86_400), ..found };
        r.store("web", &found, now);
        assert!(r.known("web", now + MAX_TTL - Duration::from_secs(1)).is_some());
        assert_eq!(r.known("web", now + MAX_TTL), None);
    }

    #[test]
    fn query_ids_differ_between_lookups() {
        let now = Instant::now();
        let mut r = resolver("");
        let ids: Vec<u16> = (0..4)
            .map(|_| {
                let (l, _) = r.lookup("web", now);
                u16::from_be_bytes([l.datagrams()[0][0], l.datagrams()[0][1]])
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[0] != w[1]), "{ids:?}");
    }

    #[test]
    fn failures_read_well() {
        let all = [DnsReason::NoSuchHost, DnsReason::NoAddress, DnsReason::Timeout, DnsReason::ServerFailure];
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["no such host", "no address", "timeout", "server failure"]);
    }
}
