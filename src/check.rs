//! A check: a name and a target (an http URL, a tcp host:port or a gRPC
//! health service), parsed from the command line, with the request its
//! probes send built once.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::grpc;
use crate::wire::http;
use crate::wire::text;
use crate::wire::text::Shown;
use crate::wire::url;
use crate::wire::USER_AGENT;

/// Longest check name: a DNS label, so names fit wherever Kubernetes names do.
const MAX_NAME: usize = 63;

/// What a probe of a check does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `GET` the URL; pass on 200..399, following same-host redirects.
    Http,
    /// Pass when the TCP connect completes.
    Tcp,
    /// `POST` with an empty body (a completion callback); no redirects.
    Post,
    /// A grpc.health.v1 Check call over h2c (or TLS); pass on SERVING.
    Grpc,
}

/// The URL schemes whose checks go over TLS (`https://`, `grpcs://`).
pub(crate) fn is_tls_scheme(scheme: &[u8]) -> bool {
    matches!(scheme, b"https" | b"grpcs")
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub kind: Kind,
    /// Where to connect, tried in order, for an IP literal or `localhost`;
    /// empty for a name, which is resolved each round (see [`Check::dns_name`]).
    pub addrs: Vec<SocketAddr>,
    /// The port connected to: the URL's, else 80 (443 for https).
    pub(crate) port: u16,
    /// Whether the probe speaks TLS (`https://`, `grpcs://`).
    pub(crate) tls: bool,
    /// The host in lower case, without brackets: the name resolved each round.
    host: String,
    /// The URL as written, the way kubelet's client reads it: the base of
    /// redirects and the source of the request line and `Host`.
    pub(crate) target: url::Url,
    /// Request header fields given with `--header`, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The check's own deadline (`--timeout NAME=DUR`), else the mode's.
    pub(crate) timeout: Option<Duration>,
    /// The request bytes, built once so a round formats nothing.
    pub request: Vec<u8>,
    /// The gRPC call of a `grpc://` check, built once too.
    pub(crate) grpc: grpc::Request,
    /// The statuses that pass (`--expect-status`) instead of 200..=399.
    pub(crate) expect_status: Option<StatusSet>,
    /// Text the body must hold (`--expect-body`).
    pub(crate) expect_body: Option<BodyText>,
    /// The unix socket connected to instead of the URL's host and port
    /// (`--unix-socket`); the URL's host is still the one sent.
    pub(crate) unix_socket: Option<PathBuf>,
}

/// Longest part of an `--expect-body` text a reason shows.
const MAX_SHOWN_TEXT: usize = 40;

/// The text a check's body must hold (`--expect-body`): its bytes as
/// given, and how a failing reason shows them (escaped, cut short; shared,
/// so a failure copies nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BodyText {
    pub(crate) bytes: Vec<u8>,
    pub(crate) shown: Arc<str>,
}

impl BodyText {
    pub(crate) fn new(text: &str) -> BodyText {
        let mut shown = Vec::new();
        http::push_shown(&mut shown, text.as_bytes(), MAX_SHOWN_TEXT);
        BodyText { bytes: text.as_bytes().to_vec(), shown: String::from_utf8_lossy(&shown).into() }
    }
}

/// The statuses a check's final response must have (`--expect-status`),
/// replacing kubelet's 200..=399: codes and ranges, and the list as a
/// failing reason shows it (shared, so a failure copies nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusSet {
    ranges: Vec<(u16, u16)>,
    shown: Arc<str>,
}

impl StatusSet {
    /// Parses `200`, `200,204`, `200-299,401`: each code within 100..=599,
    /// a range's first no larger than its last. No spaces, no empty item.
    pub(crate) fn parse(list: &str) -> Result<StatusSet, &'static str> {
        // Three digits, read by hand: std's integer parser is bytes the
        // binary does not otherwise need.
        let code = |s: &str| match s.as_bytes() {
            &[a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
                Ok([a, b, c].iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
            }
            _ => Err("use codes from 100 to 599 and ranges like 200-299, comma-separated"),
        };
        let mut ranges = Vec::new();
        for item in list.split(',') {
            let (low, high) = match item.split_once('-') {
                Some((low, high)) => (code(low)?, code(high)?),
                None => (code(item)?, code(item)?),
            };
            if low > high {
                return Err("a range goes from the lower code to the higher");
            }
            ranges.push((low, high));
        }
        Ok(StatusSet { ranges, shown: list.into() })
    }

    /// Adds the codes of another `--expect-status` for the same check.
    pub(crate) fn extend(&mut self, other: StatusSet) {
        self.ranges.extend(other.ranges);
        self.shown = [&*self.shown, ",", &*other.shown].concat().into();
    }

    pub(crate) fn contains(&self, status: u16) -> bool {
        self.ranges.iter().any(|&(low, high)| (low..=high).contains(&status))
    }

    /// The list as given, for a reason and `--dry-run`.
    pub(crate) fn shown(&self) -> &Arc<str> {
        &self.shown
    }
}

/// A command-line CHECK that could not be accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckError(pub String);

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Check {
    /// Parses `[NAME=]URL` for a probe (`http[s]://`, `tcp://` or `grpc[s]://`).
    /// Only an IP literal or `localhost` gets its addresses here: a name is
    /// resolved each round, never at startup.
    pub fn parse(arg: &str) -> Result<Check, CheckError> {
        let (name, text) = split_name(arg)?;
        let url = parse_url(text, &["http", "https", "tcp", "grpc", "grpcs"])?;
        let kind = match &url.target.scheme[..] {
            b"tcp" => Kind::Tcp,
            b"grpc" | b"grpcs" => Kind::Grpc,
            _ => Kind::Http,
        };
        let mut check = Check::new(String::new(), url, kind);
        check.name = match name {
            Some(name) => name.to_string(),
            None => check.default_name(),
        };
        if kind == Kind::Grpc {
            check.grpc_request()?;
        }
        Ok(check)
    }

    /// Parses a completion-callback URL (`http://` or `https://`), probed with `POST`.
    pub fn callback(arg: &str) -> Result<Check, CheckError> {
        let url = parse_url(arg, &["http", "https"])?;
        Ok(Check::new(arg.to_string(), url, Kind::Post))
    }

    fn new(name: String, url: ParsedUrl, kind: Kind) -> Check {
        let ParsedUrl { target, host, port, ip } = url;
        let addrs = match ip {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            // IPv4 first: it is what most applications in a pod listen on.
            None if host == "localhost" => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ],
            None => Vec::new(),
        };
        let tls = is_tls_scheme(&target.scheme);
        let mut check = Check {
            name,
            kind,
            addrs,
            port,
            tls,
            host,
            target,
            headers: Vec::new(),
            timeout: None,
            request: Vec::new(),
            grpc: grpc::Request::default(),
            expect_status: None,
            expect_body: None,
            unix_socket: None,
        };
        check.build_request();
        check
    }

    /// Adds a request header field (`--header`); the caller validated it.
    /// The name is sent in Go's canonical case (`x-token` as `X-Token`), as
    /// kubelet's `http.Header` sends a probe's `httpHeaders`.
    pub(crate) fn add_header(&mut self, name: &str, value: &str) {
        self.headers.push((canonical_field_name(name), value.trim_matches([' ', '\t']).to_string()));
        self.build_request();
    }

    fn build_request(&mut self) {
        self.request = match self.kind {
            Kind::Tcp => Vec::new(),
            Kind::Http | Kind::Post => self.request_to(&self.target, self.host_override(), None, true),
            Kind::Grpc => {
                // `parse` and `--header` checked that it builds.
                self.grpc = self.grpc_request().unwrap_or_default();
                Vec::new()
            }
        };
    }

    /// The gRPC call of a `grpc://` check: the service its URL names and
    /// the `--header` fields as metadata; Err when the URL's query is not
    /// `service=NAME` or the request cannot fit one HTTP/2 frame.
    pub(crate) fn grpc_request(&self) -> Result<grpc::Request, CheckError> {
        let shown = || String::from_utf8_lossy(&self.target.to_text()).into_owned();
        let service = grpc_service(&self.target).map_err(|why| CheckError(format!("{why}: '{}'", Shown(&shown()))))?;
        let scheme: &[u8] = if self.tls { b"https" } else { b"http" };
        grpc::Request::with_scheme(scheme, &self.target.host, &service, &self.headers)
            .map_err(|e| CheckError(format!("{e}: '{}'", Shown(&shown()))))
    }

    /// The service a `grpc://` check asks about, percent-decoded as it is
    /// sent (`a%2Fb` is `a/b`; empty: the server as a whole); None for
    /// the other kinds.
    pub(crate) fn grpc_service(&self) -> Option<String> {
        let service = grpc_service(&self.target).ok().filter(|_| self.kind == Kind::Grpc)?;
        // `parse` checked that it is UTF-8.
        Some(String::from_utf8_lossy(&service).into_owned())
    }

    /// A `Host` given with `--header`, which kubelet sends instead of the
    /// URL's host.
    pub(crate) fn host_override(&self) -> Option<&[u8]> {
        Some(http::field(&self.headers, "host")?.as_bytes()).filter(|h| !h.is_empty())
    }

    /// A request to `url` as kubelet's client writes it: its `Host` (or the
    /// given one), the user's fields (the body-describing ones only while
    /// `body_fields`), `Referer` on a redirect, basic authentication for a
    /// URL with userinfo unless a non-empty `Authorization` was given, and
    /// no keep-alive.
    pub(crate) fn request_to(
        &self,
        url: &url::Url,
        host: Option<&[u8]>,
        referer: Option<&[u8]>,
        body_fields: bool,
    ) -> Vec<u8> {
        let method = if self.kind == Kind::Post { "POST" } else { "GET" };
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&url.request_target());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.unwrap_or(&url.host));
        out.extend_from_slice(b"\r\n");
        let given = |name: &str| http::field(&self.headers, name);
        let mut line = |name: &str, value: &[u8]| {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        // kubelet: a given User-Agent or Accept replaces the default one;
        // given empty, none is sent.
        match given("user-agent") {
            None => line("User-Agent", USER_AGENT.as_bytes()),
            Some(v) if !v.is_empty() => line("User-Agent", v.as_bytes()),
            Some(_) => {}
        }
        if given("accept").is_none() {
            line("Accept", b"*/*");
        }
        // A given non-empty Referer is kept through redirects; an empty one is
        // replaced by the previous URL, as Go's client sets it.
        let has_referer = given("referer").is_some_and(|v| !v.is_empty());
        let referer = referer.filter(|_| !has_referer);
        let basic = url.basic_auth().filter(|_| given("authorization").is_none_or(str::is_empty));
        for (name, value) in &self.headers {
            let body_field = ["content-encoding", "content-language", "content-location", "content-type"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f));
            let skip = ["host", "user-agent"].iter().any(|f| name.eq_ignore_ascii_case(f))
                || (basic.is_some() && name.eq_ignore_ascii_case("authorization"))
                || (name.eq_ignore_ascii_case("accept") && value.is_empty())
                || (body_field && !body_fields)
                || (referer.is_some() && name.eq_ignore_ascii_case("referer"));
            if !skip {
                line(name, value.as_bytes());
            }
        }
        if let Some(basic) = &basic {
            line("Authorization", basic);
        }
        if let Some(referer) = referer {
            line("Referer", referer);
        }
        if self.kind == Kind::Post {
            line("Content-Length", b"0");
        }
        line("Connection", b"close");
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The host name to resolve each round; None for an IP literal or
    /// `localhost`, which never touch DNS, and over a unix socket.
    pub(crate) fn dns_name(&self) -> Option<&str> {
        Some(self.host.as_str()).filter(|_| self.addrs.is_empty() && self.unix_socket.is_none())
    }

    /// Whether the check is unnamed (named after its URL). An explicit name
    /// never looks like a default one: those hold a `/` or a `:`.
    pub(crate) fn has_default_name(&self) -> bool {
        self.kind != Kind::Post && self.name == self.default_name()
    }

    /// Whether two checks probe the same thing the same way: the same kind,
    /// request (HTTP or gRPC) and default name (host, port, path and query; not the
    /// fragment, which is never sent, nor a tcp URL's empty path).
    pub(crate) fn same_target(&self, other: &Check) -> bool {
        self.kind == other.kind
            && self.tls == other.tls
            && self.request == other.request
            && self.grpc == other.grpc
            && self.default_name() == other.default_name()
    }

    /// The name of an unnamed check: its URL without the scheme. The path
    /// is the one the request line sends, as written (`.` and `..`
    /// segments kept: a name must not read as another path than the one
    /// probed), with spaces, quotes and the like percent-encoded as sent.
    /// The host is in lower case and `:80` on http left out, so that
    /// spellings of one host share a name (`~2` tells probes apart).
    fn default_name(&self) -> String {
        let mut name = match self.addrs.first() {
            Some(SocketAddr::V6(a)) if self.target.host.starts_with(b"[") => format!("[{}]", a.ip()),
            _ => self.host.clone(),
        };
        let http = matches!(self.kind, Kind::Http | Kind::Post);
        let default_port = if self.tls { 443 } else { 80 };
        if !http || self.port != default_port {
            name.push(':');
            name.push_str(&self.port.to_string());
        }
        if http {
            let path = self.target.escaped_path();
            push_encoded(&mut name, if path.is_empty() { b"/" } else { &path }, b"\"<>`{}");
        }
        let query = self.target.force_query || !self.target.query.is_empty();
        if query && self.kind != Kind::Tcp {
            name.push('?');
            // `'` only in an http query, as the standard has it.
            push_encoded(&mut name, &self.target.query, if http { b"\"<>'" } else { b"\"<>" });
        }
        name
    }
}

/// Appends `part`, percent-encoding controls, space, non-ASCII bytes and
/// those of `also`, as the URL standard encodes a path or a query.
fn push_encoded(out: &mut String, part: &[u8], also: &[u8]) {
    use fmt::Write as _;
    for &c in part {
        if c <= b' ' || c >= 0x7f || also.contains(&c) {
            let _ = write!(out, "%{c:02X}");
        } else {
            out.push(char::from(c));
        }
    }
}

/// Splits `NAME=URL`. A `=` only names when what precedes it is a valid
/// name, so `http://h/?a=b` stays a URL.
fn split_name(arg: &str) -> Result<(Option<&str>, &str), CheckError> {
    let Some((name, rest)) = arg.split_once('=') else {
        return Ok((None, arg));
    };
    if name.contains("://") || name.contains('/') || name.contains(':') {
        return Ok((None, arg));
    }
    validate_name(name)?;
    Ok((Some(name), rest))
}

pub(crate) fn validate_name(name: &str) -> Result<(), CheckError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CheckError(format!(
            "invalid check name '{}': use letters, digits, '.', '_' and '-' (at most {MAX_NAME}), starting with a letter or digit",
            Shown(name)
        )))
    }
}

/// A check's URL, read as kubelet's client reads it, and where it leads.
struct ParsedUrl {
    target: url::Url,
    /// The host in lower case, without brackets.
    host: String,
    port: u16,
    /// The host as an IP literal.
    ip: Option<IpAddr>,
}

fn parse_url(text: &str, schemes: &[&str]) -> Result<ParsedUrl, CheckError> {
    let shown = Shown(text);
    let with_scheme = || {
        let all: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        match all.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    };
    let invalid = |why: &str| CheckError(format!("invalid URL '{shown}'{why}"));
    // `localhost:8080/health` reads as the scheme `localhost`, `127.0.0.1:8080` as a
    // relative URL: either way the scheme was forgotten, so say that.
    if !text.contains("://") {
        return Err(invalid(&format!(": start it with {}", with_scheme())));
    }
    let target = url::Url::parse(text.as_bytes()).map_err(|_| invalid(""))?;
    let scheme = String::from_utf8_lossy(&target.scheme);
    match &*scheme {
        s if !cfg!(feature = "tls") && is_tls_scheme(s.as_bytes()) => {
            return Err(CheckError(format!("unsupported scheme '{s}' in '{shown}': this build has no TLS")))
        }
        s if schemes.contains(&s) => {}
        s => return Err(CheckError(format!("unsupported scheme '{s}' in '{shown}': use {}", with_scheme()))),
    }
    let http = scheme == "http" || scheme == "https";
    // `http:x://y` has no authority: what follows the scheme is opaque.
    if target.hostname().is_empty() || !target.opaque.is_empty() {
        return Err(invalid(": empty host"));
    }
    if target.userinfo.is_some() {
        return Err(CheckError(format!("credentials in URL are not supported: '{shown}'")));
    }
    let port = match target.port() {
        b"" if !http => return Err(CheckError(format!("{scheme} URL without port: '{shown}'"))),
        b"" if scheme == "https" => 443,
        b"" => 80,
        digits => std::str::from_utf8(digits)
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| invalid(": invalid port number"))?,
    };
    // Nothing listens on port 0: connecting there is refused or worse, never a probe.
    if port == 0 {
        return Err(invalid(": port 0 cannot be probed, use 1 to 65535"));
    }
    if !http && (!matches!(&target.path[..], b"" | b"/") || !target.fragment.is_empty()) {
        return Err(CheckError(format!("{scheme} URL takes no path or fragment: '{shown}'")));
    }
    if scheme == "tcp" && (target.force_query || !target.query.is_empty()) {
        return Err(CheckError(format!("tcp URL takes no query: '{shown}'")));
    }
    // A name the resolver can ask for, or an IP literal in its plain form.
    // A host ending in a number is meant as IPv4 (as the URL standard reads
    // it), and only the dotted quad is taken: Go's dialer would look `127.1`
    // up as a name, which never resolves.
    let host = String::from_utf8_lossy(target.hostname()).to_ascii_lowercase();
    let last_label = host.trim_end_matches('.').rsplit('.').next().unwrap_or_default();
    let ip = if target.host.starts_with(b"[") {
        Some(IpAddr::V6(host.parse().map_err(|_| invalid(": invalid IPv6 address"))?))
    } else if !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit()) {
        Some(IpAddr::V4(host.parse().map_err(|_| invalid(": invalid IPv4 address"))?))
    } else if host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        None
    } else {
        return Err(invalid(": invalid host name"));
    };
    Ok(ParsedUrl { target, host, port, ip })
}

/// The service a `grpc://` URL names: `?service=NAME`, percent-decoded;
/// empty (the server as a whole) without a query. Nothing else is allowed.
fn grpc_service(url: &url::Url) -> Result<Vec<u8>, &'static str> {
    if !url.force_query && url.query.is_empty() {
        return Ok(Vec::new());
    }
    let value = url.query.strip_prefix(b"service=").ok_or("grpc URL takes only ?service=NAME")?;
    if value.contains(&b'&') {
        return Err("grpc URL takes only ?service=NAME");
    }
    text::percent_decode(value, false).filter(|v| std::str::from_utf8(v).is_ok()).ok_or("invalid service name in URL")
}

/// Go's `CanonicalMIMEHeaderKey` for a valid field name: upper case at the
/// start and after each `-`, lower case elsewhere.
fn canonical_field_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let c = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::VERSION;

    #[test]
    fn body_texts_are_shown_escaped_and_cut_short() {
        assert_eq!(&*BodyText::new("\"ok\"\n").shown, "\\\"ok\\\"\\x0a");
        let long = BodyText::new(&"a".repeat(100));
        assert_eq!(long.bytes.len(), 100);
        assert_eq!(&*long.shown, format!("{}...", "a".repeat(MAX_SHOWN_TEXT)));
    }

    #[test]
    fn status_sets() {
        let set = StatusSet::parse("200-299,401").unwrap();
        for (status, want) in [(199, false), (200, true), (250, true), (299, true), (300, false), (401, true)] {
            assert_eq!(set.contains(status), want, "{status}");
        }
        assert_eq!(&**set.shown(), "200-299,401");
        assert!(StatusSet::parse("204").unwrap().contains(204));
        assert!(StatusSet::parse("100-599").unwrap().contains(599));
        let mut set = StatusSet::parse("200").unwrap();
        set.extend(StatusSet::parse("503").unwrap());
        assert!(set.contains(503) && !set.contains(204));
        assert_eq!(&**set.shown(), "200,503");
        for bad in [
            "",
            ",",
            "200,",
            ",200",
            "99",
            "600",
            "0200",
            "20",
            "2000",
            "+200",
            "200 ",
            " 200",
            "299-200",
            "200-",
            "-200",
            "200--299",
            "200-299-300",
            "abc",
            "2xx",
            "65736",
        ] {
            assert!(StatusSet::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_checks() {
        let c = Check::parse("http://localhost:8080/health").unwrap();
        assert_eq!(c.name, "localhost:8080/health");
        assert_eq!(c.kind, Kind::Http);
        let c = Check::parse("app=http://127.0.0.1/ready?full=1").unwrap();
        assert_eq!(c.name, "app");
        assert_eq!(
            String::from_utf8(c.request).unwrap(),
            format!("GET /ready?full=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: healthcheck/{VERSION}\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        );
        let c = Check::parse("http://h/?a=b").unwrap();
        assert_eq!(c.name, "h/?a=b");
        let c = Check::parse("db=tcp://127.0.0.1:5432").unwrap();
        assert_eq!((c.name.as_str(), c.kind), ("db", Kind::Tcp));
        let c = Check::parse("tcp://127.0.0.1:5432").unwrap();
        assert_eq!((c.dns_name(), &c.addrs[..]), (None, &["127.0.0.1:5432".parse().unwrap()][..]));
        let c = Check::parse("tcp://[::1]:5432").unwrap();
        assert_eq!(c.name, "[::1]:5432");
        let c = Check::parse("http://[::1]:8080/").unwrap();
        assert!(String::from_utf8(c.request).unwrap().contains("Host: [::1]:8080\r\n"));
        let c = Check::parse("grpc://127.0.0.1:9090").unwrap();
        assert_eq!((c.name.as_str(), c.kind), ("127.0.0.1:9090", Kind::Grpc));
        assert_eq!(c.grpc, grpc::Request::new(b"127.0.0.1:9090", b"", &[]).unwrap());
        let c = Check::parse("orders=grpc://[::1]:9090/?service=orders.v1%2FOrders%20x+y").unwrap();
        assert_eq!((c.name.as_str(), c.kind), ("orders", Kind::Grpc));
        assert_eq!(c.grpc, grpc::Request::new(b"[::1]:9090", b"orders.v1/Orders x+y", &[]).unwrap());
        let c = Check::parse("grpc://localhost:9090?service=").unwrap();
        assert_eq!(
            (c.name.as_str(), c.grpc),
            ("localhost:9090?service=", grpc::Request::new(b"localhost:9090", b"", &[]).unwrap())
        );
    }

    /// Spellings of one host share a default name; the path is the one
    /// sent, as written (dot segments kept), as kubelet's request has it.
    #[test]
    fn default_names_are_normalised() {
        let cases = [
            ("HTTP://LocalHost:80/a/./b/../c d?x y'z#f", "localhost/a/./b/../c%20d?x%20y%27z"),
            ("http://h/./x/../x", "h/./x/../x"),
            ("http://h/a%2Fb/%7e", "h/a%2Fb/%7e"),
            ("http://h", "h/"),
            ("http://h:/x", "h/x"),
            ("http://h:08080/x?", "h:8080/x?"),
            ("http://h/x{y}=1,2/%22q%22?a=b&c=\\'|^`", "h/x%7By%7D=1,2/%22q%22?a=b&c=\\%27|^`"),
            ("http://h/caf\u{e9}", "h/caf%C3%A9"),
            ("http://[0:0::1]:80/", "[::1]/"),
            ("tcp://DB.example:5432/", "db.example:5432"),
            ("grpc://H:80/?service=a b'c", "h:80?service=a%20b'c"),
        ];
        for (url, name) in cases {
            assert_eq!(Check::parse(url).unwrap().name, name, "{url}");
        }
        let c = Check::parse("http://LocalHost:80/a/./b/../c").unwrap();
        assert!(String::from_utf8(c.request)
            .unwrap()
            .starts_with("GET /a/./b/../c HTTP/1.1\r\nHost: LocalHost:80\r\n"));
    }

    /// https:// and grpcs:// are checks over TLS in a build with it, and a
    /// usage error that says so without.
    #[test]
    fn tls_schemes_need_the_feature() {
        for (url, port, name) in [("https://Localhost/h", 443, "localhost/h"), ("grpcs://h:9443", 9443, "h:9443")] {
            match Check::parse(url) {
                Ok(c) => {
                    assert!(cfg!(feature = "tls") && c.tls, "{url}");
                    assert_eq!((c.port, c.name.as_str()), (port, name), "{url}");
                }
                Err(e) => assert!(!cfg!(feature = "tls") && e.0.ends_with("this build has no TLS"), "{url}: {e}"),
            }
        }
        if cfg!(feature = "tls") {
            let c = Check::parse("https://h:8443/").unwrap();
            assert_eq!((c.port, c.name.as_str()), (8443, "h:8443/"));
            assert!(Check::callback("https://h/x").unwrap().tls);
            assert!(!Check::parse("http://h/").unwrap().same_target(&Check::parse("https://h:80/").unwrap()));
        }
    }

    #[test]
    fn rejects_bad_checks() {
        let cases = [
            ("ftp://localhost/", "unsupported scheme 'ftp'"),
            (
                "localhost:8080",
                "invalid URL 'localhost:8080': start it with http://, https://, tcp://, grpc:// or grpcs://",
            ),
            ("127.0.0.1:8080/health", "invalid URL '127.0.0.1:8080/health': start it with http://"),
            ("/health", "invalid URL '/health': start it with http://"),
            ("http:localhost/", "start it with http://"),
            ("http://", "invalid URL"),
            ("tcp://localhost", "without port"),
            ("tcp://localhost:1/x", "no path"),
            ("http://u:p@localhost/", "credentials"),
            ("bad name=http://localhost/", "invalid check name"),
            ("=http://localhost/", "invalid check name"),
            ("-x=http://localhost/", "invalid check name"),
            ("http://localhost:99999/", "invalid URL 'http://localhost:99999/': invalid port number"),
            ("http://", "empty host"),
            ("tcp:///x", "empty host"),
            ("http:x://y", "empty host"),
            ("http://@localhost/", "credentials"),
            ("http://127.1/", "invalid IPv4 address"),
            ("http://1.2.3.256/", "invalid IPv4 address"),
            ("http://[fe80::1%25eth0]/", "invalid IPv6 address"),
            ("http://[::1/", "invalid URL"),
            ("http://a!b/", "invalid host name"),
            ("http://caf\u{e9}/", "invalid host name"),
            ("http://a b/", "invalid URL"),
            ("grpc://localhost", "grpc URL without port"),
            ("grpc://localhost:1/grpc.health.v1.Health", "no path"),
            ("grpc://localhost:1#x", "no path or fragment"),
            ("grpc://u@localhost:1", "credentials"),
            ("grpc://localhost:1?svc=a", "only ?service=NAME"),
            ("grpc://localhost:1?service=a&service=b", "only ?service=NAME"),
            ("grpc://localhost:1?service=a&x=1", "only ?service=NAME"),
            ("grpc://localhost:1?", "only ?service=NAME"),
            ("grpc://localhost:1?service=%zz", "invalid service name"),
            ("grpc://localhost:1?service=%ff", "invalid service name"),
            ("tcp://localhost:1?a", "no query"),
            ("tcp://localhost:1#x", "no path or fragment"),
        ];
        for (arg, want) in cases {
            let err = Check::parse(arg).unwrap_err().0;
            assert!(err.contains(want), "{arg}: {err}");
        }
    }

    #[test]
    fn resolves_locally_and_leaves_names_to_each_round() {
        let c = Check::parse("http://localhost:81/").unwrap();
        assert_eq!(c.dns_name(), None);
        assert_eq!(c.addrs, ["127.0.0.1:81".parse().unwrap(), "[::1]:81".parse().unwrap()]);
        let c = Check::parse("http://10.1.2.3/").unwrap();
        assert_eq!((c.dns_name(), &c.addrs[..]), (None, &["10.1.2.3:80".parse().unwrap()][..]));
        let c = Check::parse("tcp://127.0.0.1:5432").unwrap();
        assert_eq!((c.dns_name(), &c.addrs[..]), (None, &["127.0.0.1:5432".parse().unwrap()][..]));
        let c = Check::parse("tcp://[::1]:5432").unwrap();
        assert_eq!((c.dns_name(), &c.addrs[..]), (None, &["[::1]:5432".parse().unwrap()][..]));
        let c = Check::parse("http://DB.Example.:8080/").unwrap();
        assert_eq!((c.dns_name(), c.addrs.len()), (Some("db.example."), 0));
    }

    #[test]
    fn header_names_in_gos_canonical_case() {
        let mut c = Check::parse("http://localhost:81/").unwrap();
        for name in ["x-token", "WWW-AUTHENTICATE", "x--a", "-x", "x_y-z", "X-Probe-Token"] {
            c.add_header(name, "v");
        }
        let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["X-Token", "Www-Authenticate", "X--A", "-X", "X_y-Z", "X-Probe-Token"]);
        assert!(String::from_utf8(c.request).unwrap().contains("\r\nX-Token: v\r\n"));
    }
}
