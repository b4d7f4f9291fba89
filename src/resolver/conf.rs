//! The system's resolver configuration, parsed the way glibc and Go read it:
//! `/etc/resolv.conf` (nameservers, search list, options) and `/etc/hosts`,
//! and the list of names a lookup tries (search list and ndots).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::wire::dns::MAX_ADDRS;

/// Nameservers used at most, as glibc (MAXNS).
const MAX_SERVERS: usize = 3;
/// Search domains kept at most: Kubernetes allows 32.
const MAX_SEARCH: usize = 32;
/// Caps on the options, as glibc applies them (RES_MAXNDOTS,
/// RES_MAXRETRANS, RES_MAXRETRY).
const MAX_NDOTS: u8 = 15;
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u8 = 5;

/// What `/etc/resolv.conf` says, with glibc's defaults for what it omits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: u8,
    /// How long one query waits for an answer from one server.
    pub timeout: Duration,
    /// Rounds over the server list.
    pub attempts: u8,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            servers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    /// Parses the file's text. Unknown keywords and bad values are ignored,
    /// as glibc does: a resolver config is never a reason to stop.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf { servers: Vec::new(), ..ResolvConf::default() };
        for line in text.lines() {
            let mut words = words(line);
            match words.next() {
                Some("nameserver") => {
                    let ip = words.next().and_then(|w| w.parse::<IpAddr>().ok());
                    if let Some(ip) = ip.filter(|_| conf.servers.len() < MAX_SERVERS) {
                        conf.servers.push(SocketAddr::new(ip, 53));
                    }
                }
                // The last `search` or `domain` line wins.
                Some("search") => {
                    conf.search = words.take(MAX_SEARCH).map(|d| d.trim_end_matches('.').to_string()).collect();
                    conf.search.retain(|d| !d.is_empty());
                }
                Some("domain") => {
                    conf.search = words.next().map(|d| d.trim_end_matches('.').to_string()).into_iter().collect();
                    conf.search.retain(|d| !d.is_empty());
                }
                Some("options") => {
                    for option in words {
                        conf.option(option);
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers = ResolvConf::default().servers;
        }
        conf
    }

    fn option(&mut self, option: &str) {
        let Some((key, value)) = option.split_once(':') else { return };
        let Ok(n) = value.parse::<u64>() else { return };
        match key {
            "ndots" => self.ndots = n.min(u64::from(MAX_NDOTS)) as u8,
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS)),
            "attempts" => self.attempts = n.clamp(1, u64::from(MAX_ATTEMPTS)) as u8,
            _ => {}
        }
    }

    /// The names a lookup of `name` tries, in order. A name ending in a dot
    /// is absolute: never searched. One with at least `ndots` dots is tried
    /// as is first, then with each search domain; one with fewer, the
    /// other way round. The result carries no trailing dots.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|domain| format!("{name}.{domain}"));
        let dots = name.bytes().filter(|&b| b == b'.').count();
        if dots >= usize::from(self.ndots) {
            std::iter::once(name.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

/// The words of a config line, up to a comment (`#` or `;`).
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split_ascii_whitespace().take_while(|w| !w.starts_with(['#', ';']))
}

/// `/etc/hosts`: addresses and their names, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<(IpAddr, Vec<String>)>,
}

impl Hosts {
    pub fn parse(text: &str) -> Hosts {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_ascii_whitespace();
            // An address with a zone (`fe80::1%eth0`) cannot be probed by
            // a SocketAddr without the zone's index: skipped.
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else { continue };
            let names: Vec<String> = words.map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect();
            if !names.is_empty() {
                entries.push((ip, names));
            }
        }
        Hosts { entries }
    }

    /// Every address of `name` (case-insensitive, a trailing dot ignored),
    /// in file order, at most [`MAX_ADDRS`], as from a DNS answer.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut addrs = Vec::new();
        for (ip, names) in &self.entries {
            if names.iter().any(|n| n.eq_ignore_ascii_case(name)) && !addrs.contains(ip) {
                addrs.push(*ip);
                if addrs.len() == MAX_ADDRS {
                    break;
                }
            }
        }
        addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a pod in namespace `shop` gets from kubelet.
    const POD: &str = "search shop.svc.cluster.local svc.cluster.local cluster.local\n\
                       nameserver 10.96.0.10\n\
                       options ndots:5\n";

    #[test]
    fn reads_a_pod_resolv_conf() {
        let conf = ResolvConf::parse(POD);
        assert_eq!(conf.servers, ["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(conf.search, ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
        assert_eq!((conf.ndots, conf.timeout, conf.attempts), (5, Duration::from_secs(5), 2));
    }

    #[test]
    fn defaults_are_glibcs() {
        let conf = ResolvConf::parse("");
        assert_eq!(conf, ResolvConf::default());
        assert_eq!(conf.servers, ["127.0.0.1:53".parse().unwrap()]);
        assert_eq!((conf.ndots, conf.timeout, conf.attempts), (1, Duration::from_secs(5), 2));
    }

    #[test]
    fn survives_comments_odd_spacing_and_bad_values() {
        let text = "# generated\n\
                    ; another comment\n\
                    \tnameserver   10.0.0.1   # the first\n\
                    nameserver\t::1\n\
                    nameserver not-an-ip\n\
                    nameserver 10.0.0.3\n\
                    nameserver 10.0.0.4\n\
                    domain   old.example\n\
                    search a.example. b.example ; comment\n\
                    options  ndots:99 timeout:0 attempts:x rotate edns0 attempts:9\n\
                    options timeout:3\n\
                    sortlist 130.155.160.0/255.255.240.0\n\
                    nameserver";
        let conf = ResolvConf::parse(text);
        let want: Vec<SocketAddr> =
            ["10.0.0.1:53", "[::1]:53", "10.0.0.3:53"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(conf.servers, want, "three at most, bad ones skipped");
        assert_eq!(conf.search, ["a.example", "b.example"], "the last of search/domain wins");
        assert_eq!((conf.ndots, conf.timeout, conf.attempts), (15, Duration::from_secs(3), 5));
        assert_eq!(ResolvConf::parse("search x\ndomain y.example\n").search, ["y.example"]);
    }

    #[test]
    fn expands_names_with_search_and_ndots() {
        let conf = ResolvConf::parse(POD);
        assert_eq!(
            conf.candidates("app"),
            ["app.shop.svc.cluster.local", "app.svc.cluster.local", "app.cluster.local", "app"]
        );
        assert_eq!(conf.candidates("db.other")[0], "db.other.shop.svc.cluster.local");
        assert_eq!(conf.candidates("a.b.c.d.e.f")[0], "a.b.c.d.e.f", "five dots: as is first");
        assert_eq!(conf.candidates("a.b.c.d.e.f").len(), 4);
        assert_eq!(conf.candidates("app.shop.svc.cluster.local."), ["app.shop.svc.cluster.local"], "absolute");
        let plain = ResolvConf::parse("search corp.example\n");
        assert_eq!(plain.candidates("db.internal"), ["db.internal", "db.internal.corp.example"], "ndots 1");
        assert_eq!(plain.candidates("db"), ["db.corp.example", "db"]);
        assert_eq!(ResolvConf::default().candidates("db"), ["db"]);
    }

    #[test]
    fn reads_hosts() {
        let hosts = Hosts::parse(
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1 localhost ip6-localhost\n\
             \n\
             10.244.1.7   web-0.web.shop.svc.cluster.local   web-0 # the pod itself\n\
             # Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tBar.Local.\n\
             10.1.2.4 bar.local\n\
             fe80::1%eth0 zoned\n\
             not-an-ip name\n\
             10.9.9.9\n",
        );
        assert_eq!(hosts.lookup("web-0"), [IpAddr::from([10, 244, 1, 7])]);
        assert_eq!(hosts.lookup("BAR.local."), [IpAddr::from([10, 1, 2, 3]), IpAddr::from([10, 1, 2, 4])]);
        assert_eq!(hosts.lookup("localhost"), [IpAddr::from([127, 0, 0, 1]), "::1".parse().unwrap()]);
        assert!(hosts.lookup("zoned").is_empty());
        assert!(hosts.lookup("name").is_empty());
        assert!(hosts.lookup("web").is_empty(), "never searched");
    }
}
