//! URLs as kubelet's client reads them (Go's net/url, RFC 3986): the check's
//! own URL as written and every redirect `Location` resolved against it.
//! Hosts are kept as written, never normalised, because kubelet compares
//! them that way when it decides whether to follow a redirect.

use crate::wire::text::{hex_value, percent_decode};

/// A parsed URL. Paths, queries and fragments are kept as the escaped text
/// they were written in (Go keeps the same and derives the rest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Url {
    /// Lower-cased, empty for a relative reference.
    pub(crate) scheme: Vec<u8>,
    /// What follows `scheme:` when no `/` does (`http:foo`).
    pub(crate) opaque: Vec<u8>,
    /// The `user[:password]` before `@`, as written.
    pub(crate) userinfo: Option<Vec<u8>>,
    /// `host[:port]`, unescaped, as written.
    pub(crate) host: Vec<u8>,
    /// `scheme:/path`: a scheme and a path but no `//`.
    pub(crate) omit_host: bool,
    /// The path as written (escaped).
    pub(crate) path: Vec<u8>,
    /// A `?` with nothing after it.
    pub(crate) force_query: bool,
    pub(crate) query: Vec<u8>,
    /// The fragment as written (escaped), without `#`.
    pub(crate) fragment: Vec<u8>,
}

/// A reference that Go's `url.Parse` rejects (kubelet's probe then fails).
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    Fragment,
}

/// Bytes a mode leaves as they are, besides ASCII letters and digits.
fn unreserved(mode: Mode) -> &'static [u8] {
    match mode {
        Mode::Path => b"$&+,-./:;=@_~",
        Mode::Host | Mode::Zone => b"!\"$&'()*+,-.:;<=>[]_~",
        Mode::Fragment => b"!$&()*+,-./:;=?@_~",
    }
}

fn should_escape(c: u8, mode: Mode) -> bool {
    !(c.is_ascii_alphanumeric() || unreserved(mode).contains(&c))
}

/// Decodes `%XX`, rejecting what Go's `unescape` rejects in each mode.
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, Invalid> {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' {
            let (Some(&h), Some(&l)) = (s.get(i + 1), s.get(i + 2)) else { return Err(Invalid) };
            let (Some(hi), Some(lo)) = (hex_value(h), hex_value(l)) else { return Err(Invalid) };
            let v = hi << 4 | lo;
            let is_25 = &s[i..i + 3] == b"%25";
            if mode == Mode::Host && hi < 8 && !is_25 {
                return Err(Invalid);
            }
            if mode == Mode::Zone && !is_25 && v != b' ' && should_escape(v, Mode::Host) {
                return Err(Invalid);
            }
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                return Err(Invalid);
            }
            i += 1;
        }
    }
    percent_decode(s, false).ok_or(Invalid)
}

/// Appends `%XX`.
fn push_escaped(out: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
}

fn escape(s: &[u8], mode: Mode) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if should_escape(c, mode) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

fn valid_encoded(s: &[u8], mode: Mode) -> bool {
    s.iter().all(|&c| b"!$&'()*+,;=:@[]%".contains(&c) || !should_escape(c, mode))
}

/// Text kept as written when it is validly escaped, else re-escaped.
fn escaped(raw: &[u8], mode: Mode) -> Vec<u8> {
    if valid_encoded(raw, mode) {
        return raw.to_vec();
    }
    escape(&unescape(raw, mode).unwrap_or_default(), mode)
}

/// `:digits` or nothing.
fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

impl Url {
    /// Parses an absolute URL or a relative reference, as `url.Parse`.
    pub fn parse(raw: &[u8]) -> Result<Url, Invalid> {
        let (raw, fragment) = match raw.iter().position(|&b| b == b'#') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &b""[..]),
        };
        if raw.iter().any(|&b| b < b' ' || b == 0x7f) {
            return Err(Invalid);
        }
        let mut url = Url::default();
        let (scheme, mut rest) = split_scheme(raw)?;
        url.scheme = scheme.to_ascii_lowercase();
        let questions = rest.iter().filter(|&&b| b == b'?').count();
        if rest.last() == Some(&b'?') && questions == 1 {
            url.force_query = true;
            rest = &rest[..rest.len() - 1];
        } else if let Some(i) = rest.iter().position(|&b| b == b'?') {
            url.query = rest[i + 1..].to_vec();
            rest = &rest[..i];
        }
        if !rest.starts_with(b"/") {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_vec();
                return url.with_fragment(fragment);
            }
            let segment = rest.split(|&b| b == b'/').next().unwrap_or_default();
            if segment.contains(&b':') {
                return Err(Invalid);
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with(b"///")) && rest.starts_with(b"//") {
            let authority = &rest[2..];
            let end = authority.iter().position(|&b| b == b'/').unwrap_or(authority.len());
            (url.userinfo, url.host) = parse_authority(&url.scheme, &authority[..end])?;
            rest = &authority[end..];
        } else if !url.scheme.is_empty() && rest.starts_with(b"/") {
            url.omit_host = true;
        }
        unescape(rest, Mode::Path)?;
        url.path = rest.to_vec();
        url.with_fragment(fragment)
    }

    fn with_fragment(mut self, fragment: &[u8]) -> Result<Url, Invalid> {
        unescape(fragment, Mode::Fragment)?;
        self.fragment = fragment.to_vec();
        Ok(self)
    }

    /// Resolves a reference against this URL (RFC 3986 section 5.2, as
    /// Go's `ResolveReference`).
    pub fn join(&self, r: &Url) -> Url {
        let mut url = r.clone();
        if r.scheme.is_empty() {
            url.scheme = self.scheme.clone();
        }
        if !r.scheme.is_empty() || !r.host.is_empty() || r.userinfo.is_some() {
            url.path = remove_dots(&r.escaped_path(), b"");
            return url;
        }
        if !r.opaque.is_empty() {
            url.userinfo = None;
            url.host.clear();
            url.path.clear();
            return url;
        }
        if r.path.is_empty() && !r.force_query && r.query.is_empty() {
            url.query = self.query.clone();
            if r.fragment.is_empty() {
                url.fragment = self.fragment.clone();
            }
        }
        if r.path.is_empty() && !self.opaque.is_empty() {
            url.opaque = self.opaque.clone();
            url.userinfo = None;
            url.host.clear();
            url.path.clear();
            return url;
        }
        url.host = self.host.clone();
        url.userinfo = self.userinfo.clone();
        url.path = remove_dots(&self.escaped_path(), &r.escaped_path());
        url
    }

    /// The host without port and brackets, as written (Go's `Hostname`).
    pub(crate) fn hostname(&self) -> &[u8] {
        split_host_port(&self.host).0
    }

    /// The port as written, empty when there is none.
    pub(crate) fn port(&self) -> &[u8] {
        split_host_port(&self.host).1
    }

    /// `Basic <base64 of user:password>`, as Go's client sends for a URL
    /// with userinfo.
    pub(crate) fn basic_auth(&self) -> Option<Vec<u8>> {
        let userinfo = self.userinfo.as_ref()?;
        let mut parts = userinfo.splitn(2, |&b| b == b':');
        let user = unescape(parts.next().unwrap_or_default(), Mode::Path).ok()?;
        let password = unescape(parts.next().unwrap_or_default(), Mode::Path).ok()?;
        let plain = [&user[..], b":", &password].concat();
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = b"Basic ".to_vec();
        for chunk in plain.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                let c = if i <= chunk.len() { B64[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' };
                out.push(c);
            }
        }
        Some(out)
    }

    pub(crate) fn is_absolute(&self) -> bool {
        !self.scheme.is_empty()
    }

    pub(crate) fn escaped_path(&self) -> Vec<u8> {
        escaped(&self.path, Mode::Path)
    }

    /// The request target: escaped path (`/` when empty) and query.
    pub(crate) fn request_target(&self) -> Vec<u8> {
        let mut out = if self.opaque.is_empty() {
            let path = self.escaped_path();
            if path.is_empty() {
                b"/".to_vec()
            } else {
                path
            }
        } else if self.opaque.starts_with(b"//") {
            [&self.scheme[..], b":", &self.opaque].concat()
        } else {
            self.opaque.clone()
        };
        if self.force_query || !self.query.is_empty() {
            out.push(b'?');
            // Go sends the query raw; a space or a byte no request line may
            // carry would make ours a broken request, so those are escaped.
            for &c in &self.query {
                if c <= b' ' || c >= 0x7f || b"\"<>\\^`{|}".contains(&c) {
                    push_escaped(&mut out, c);
                } else {
                    out.push(c);
                }
            }
        }
        out
    }

    /// The URL as text (Go's `String`, without userinfo: the form kubelet's
    /// client sends as `Referer`).
    pub fn to_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.scheme.is_empty() {
            out.extend_from_slice(&self.scheme);
            out.push(b':');
        }
        if !self.opaque.is_empty() {
            out.extend_from_slice(&self.opaque);
        } else {
            let path = self.escaped_path();
            let user = self.userinfo.is_some();
            let has_authority = !self.scheme.is_empty() || !self.host.is_empty() || user;
            if has_authority && !(self.omit_host && self.host.is_empty() && !user) {
                if !self.host.is_empty() || !path.is_empty() || user {
                    out.extend_from_slice(b"//");
                }
                out.extend_from_slice(&escape(&self.host, Mode::Host));
            }
            let mut path = &path[..];
            if self.omit_host && self.host.is_empty() && !user && path.starts_with(b"//") {
                out.extend_from_slice(b"%2F");
                path = &path[1..];
            }
            if !path.is_empty() && path[0] != b'/' && !self.host.is_empty() {
                out.push(b'/');
            }
            if out.is_empty() {
                let segment = path.split(|&b| b == b'/').next().unwrap_or_default();
                if segment.contains(&b':') {
                    out.extend_from_slice(b"./");
                }
            }
            out.extend_from_slice(path);
        }
        if self.force_query || !self.query.is_empty() {
            out.push(b'?');
            out.extend_from_slice(&self.query);
        }
        if !self.fragment.is_empty() {
            out.push(b'#');
            out.extend_from_slice(&escaped(&self.fragment, Mode::Fragment));
        }
        out
    }
}

fn split_scheme(raw: &[u8]) -> Result<(&[u8], &[u8]), Invalid> {
    for (i, &c) in raw.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err(Invalid),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => break,
        }
    }
    Ok((b"", raw))
}

/// `user@host:port` -> (userinfo, host).
fn parse_authority(scheme: &[u8], authority: &[u8]) -> Result<(Option<Vec<u8>>, Vec<u8>), Invalid> {
    let at = authority.iter().rposition(|&b| b == b'@');
    let host = parse_host(scheme, &authority[at.map_or(0, |i| i + 1)..])?;
    let Some(at) = at else { return Ok((None, host)) };
    let userinfo = &authority[..at];
    let valid = userinfo.iter().all(|&c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c));
    if !valid {
        return Err(Invalid);
    }
    for part in userinfo.splitn(2, |&b| b == b':') {
        unescape(part, Mode::Path)?;
    }
    Ok((Some(userinfo.to_vec()), host))
}

fn parse_host(scheme: &[u8], host: &[u8]) -> Result<Vec<u8>, Invalid> {
    match host.iter().rposition(|&b| b == b'[') {
        Some(i) if i > 0 => return Err(Invalid),
        Some(_) => {
            let close = host.iter().rposition(|&b| b == b']').ok_or(Invalid)?;
            let port = &host[close + 1..];
            if !valid_optional_port(port) {
                return Err(Invalid);
            }
            let inner = &host[1..close];
            let literal = match inner.windows(3).position(|w| w == b"%25") {
                Some(z) => [unescape(&inner[..z], Mode::Host)?, unescape(&inner[z..], Mode::Zone)?].concat(),
                None => unescape(inner, Mode::Host)?,
            };
            let text = std::str::from_utf8(&literal).map_err(|_| Invalid)?;
            let addr = text.split('%').next().unwrap_or_default();
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(Invalid);
            }
            return Ok([b"[", &literal[..], b"]", &unescape(port, Mode::Host)?[..]].concat());
        }
        None => {}
    }
    if let Some(i) = host.iter().position(|&b| b == b':') {
        let last = host.iter().rposition(|&b| b == b':').unwrap_or(i);
        // Go requires one colon in an http host; other schemes take the last.
        let i = if last != i && scheme != b"http" && scheme != b"https" { last } else { i };
        if !valid_optional_port(&host[i..]) {
            return Err(Invalid);
        }
    }
    unescape(host, Mode::Host)
}

fn split_host_port(host_port: &[u8]) -> (&[u8], &[u8]) {
    let (mut host, mut port) = (host_port, &b""[..]);
    if let Some(colon) = host.iter().rposition(|&b| b == b':') {
        if valid_optional_port(&host[colon..]) {
            (host, port) = (&host_port[..colon], &host_port[colon + 1..]);
        }
    }
    if host.starts_with(b"[") && host.ends_with(b"]") && host.len() >= 2 {
        host = &host[1..host.len() - 1];
    }
    (host, port)
}

/// Merges a reference path into a base path and removes `.` and `..`
/// segments (RFC 3986 section 5.2.3 and 5.2.4, as Go does them).
pub(crate) fn remove_dots(base: &[u8], r: &[u8]) -> Vec<u8> {
    let full = if r.is_empty() {
        base.to_vec()
    } else if r[0] != b'/' {
        let keep = base.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        [&base[..keep], r].concat()
    } else {
        r.to_vec()
    };
    if full.is_empty() {
        return full;
    }
    let mut dst = vec![b'/'];
    let mut first = true;
    let mut last: &[u8] = b"";
    for elem in full.split(|&b| b == b'/') {
        last = elem;
        match elem {
            b"." => first = false,
            b".." => {
                match dst[1..].iter().rposition(|&b| b == b'/') {
                    Some(i) => dst.truncate(i + 1),
                    None => dst.truncate(1),
                }
                first = dst.len() == 1;
            }
            _ => {
                if !first {
                    dst.push(b'/');
                }
                dst.extend_from_slice(elem);
                first = false;
            }
        }
    }
    if last == b"." || last == b".." {
        dst.push(b'/');
    }
    if dst.len() > 1 && dst[1] == b'/' {
        dst.remove(0);
    }
    dst
}

/// (base, reference, resolved as text or "invalid"): the resolver's unit
/// table, which tests/kubelet.rs also sends through Go's net/url.
pub const EXAMPLES: &[(&str, &str, &str)] = &[
    ("http://a/b/c/d;p?q", "g", "http://a/b/c/g"),
    ("http://a/b/c/d;p?q", "./g", "http://a/b/c/g"),
    ("http://a/b/c/d;p?q", "g/", "http://a/b/c/g/"),
    ("http://a/b/c/d;p?q", "/g", "http://a/g"),
    ("http://a/b/c/d;p?q", "//g", "http://g"),
    ("http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y"),
    ("http://a/b/c/d;p?q", "g?y", "http://a/b/c/g?y"),
    ("http://a/b/c/d;p?q", "#s", "http://a/b/c/d;p?q#s"),
    ("http://a/b/c/d;p?q", "g#s", "http://a/b/c/g#s"),
    ("http://a/b/c/d;p?q", ";x", "http://a/b/c/;x"),
    ("http://a/b/c/d;p?q", "", "http://a/b/c/d;p?q"),
    ("http://a/b/c/d;p?q", ".", "http://a/b/c/"),
    ("http://a/b/c/d;p?q", "..", "http://a/b/"),
    ("http://a/b/c/d;p?q", "../g", "http://a/b/g"),
    ("http://a/b/c/d;p?q", "../../../g", "http://a/g"),
    ("http://a/b/c/d;p?q", "/./g", "http://a/g"),
    ("http://a/b/c/d;p?q", "g.", "http://a/b/c/g."),
    ("http://a/b/c/d;p?q", "./../g", "http://a/b/g"),
    ("http://a/b/c/d;p?q", "g;x=1/../y", "http://a/b/c/y"),
    ("http://a/b/c/d;p?q", "http:g", "http:g"),
    ("http://a/b/c/d;p?q", "HTTP://A/x", "http://A/x"),
    ("http://a/b", "\\\\evil/x", "http://a/%5C%5Cevil/x"),
    ("http://a/b", "/a b", "http://a/a%20b"),
    ("http://a/b", "/a%2fb", "http://a/a%2fb"),
    ("http://a/b", "/%zz", "invalid"),
    ("http://a/b", "/a\tb", "invalid"),
    ("http://a/b", ":x", "invalid"),
    ("http://a/b", "x:y/z", "x:y/z"),
    ("http://a/b", "c:d", "c:d"),
    ("http://a/b", "http://a:b/", "invalid"),
    ("http://a/b", "http://a:1:2/", "invalid"),
    ("http://a/b", "http://[::1]:8/x", "http://[::1]:8/x"),
    ("http://a/b", "http://[::1/x", "invalid"),
    ("http://a/b", "http://a b/", "invalid"),
    ("http://a/b", "http://u@a/x", "http://a/x"),
    ("http://a/b", "http:/x", "http:/x"),
    ("http://a/b", "///x", "http://a///x"),
    ("http://a/b", "/x#a%zz", "invalid"),
    ("http://a:1/b", "/c?", "http://a:1/c?"),
    ("http://a/b?q", "#f", "http://a/b?q#f"),
    ("http://a/b/c", "%2e%2e/x", "http://a/b/%2e%2e/x"),
    ("http://a/b/c", "../../../..", "http://a/"),
    ("http://a/b", "http://[fe80::1%25eth0]:8/", "http://[fe80::1%25eth0]:8/"),
    ("http://a/b", "http://[1.2.3.4]/", "invalid"),
    ("http://a/b", "http://a%41/", "invalid"),
    ("http://a/b", "http://caf%C3%A9/", "http://caf%C3%A9/"),
    ("http://a/b", "http://a:/x", "http://a:/x"),
    ("http://a/b", "/x?a b&c=d%zz", "http://a/x?a b&c=d%zz"),
    ("http://a/b", "\u{e9}", "http://a/%C3%A9"),
    ("http://a/b", "/x#a b", "http://a/x#a%20b"),
    ("http://a/b", "HtTp://a/", "http://a/"),
    ("http://a/b", "1http://a/", "invalid"),
    ("http://a/b/c", "/a/..//f", "http://a/f"),
    ("http://a/b/c", "a/..//f", "http://a/b//f"),
    ("http://a/b/c", "/a/b/..//..//f", "http://a/a//f"),
    ("http://a/b/c", "//a/..//f", "http://a/f"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_as_go_does() {
        for (base, reference, want) in EXAMPLES {
            let base = Url::parse(base.as_bytes()).unwrap();
            let got = match Url::parse(reference.as_bytes()) {
                Ok(r) => String::from_utf8_lossy(&base.join(&r).to_text()).into_owned(),
                Err(Invalid) => "invalid".to_string(),
            };
            assert_eq!(&got, want, "{reference:?}");
        }
    }

    #[test]
    fn hosts_as_written() {
        let u = Url::parse(b"http://LOCALHOST:8080/x").unwrap();
        assert_eq!((u.hostname(), u.port()), (&b"LOCALHOST"[..], &b"8080"[..]));
        let u = Url::parse(b"http://[::1]/x?y").unwrap();
        assert_eq!((u.hostname(), u.port()), (&b"::1"[..], &b""[..]));
        assert_eq!(u.request_target(), b"/x?y");
        assert_eq!(Url::parse(b"http://127.1").unwrap().request_target(), b"/");
        let u = Url::parse(b"http:foo").unwrap();
        assert_eq!(u.hostname(), b"");
        let auth = |u: &str| Url::parse(u.as_bytes()).unwrap().basic_auth().map(|a| String::from_utf8(a).unwrap());
        assert_eq!(auth("http://Aladdin:open%20sesame@h/").as_deref(), Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert_eq!(auth("http://u@h/").as_deref(), Some("Basic dTo="));
        assert_eq!(auth("http://ab:c@h/").as_deref(), Some("Basic YWI6Yw=="));
        assert_eq!(auth("http://h/"), None);
    }
}
