//! The fuzz oracles: feed hostile bytes to a parser and assert what must
//! hold for any input. Shared by the cargo-fuzz targets, the stable driver
//! and `tests/hostile.rs` (which includes this file with `#[path]`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::time::{Duration, Instant};

use healthcheck::check::{Check, Kind};
use healthcheck::front::cli::{self, Command};
use healthcheck::front::json;
use healthcheck::front::metrics::{Handler, Metrics};
use healthcheck::front::routes::{self, Route};
use healthcheck::probe::grpc;
use healthcheck::probe::{self, Action, Probe};
use healthcheck::resolver::{self as dns, Hosts, Lookup, ResolvConf};
use healthcheck::verdict::{HttpReason, Reason, Verdict};
use healthcheck::wire::dns as message;
use healthcheck::wire::http::{self, Connection, Method, Parse};
use healthcheck::wire::text::{parse_duration, DisplayDuration};
use healthcheck::wire::{h2, hpack, proto};

/// Checks the daemon in the request oracle is configured with.
const CHECK_NAMES: [&str; 2] = ["app", "db"];

/// Inbound request parsing and routing, and the answer built from it.
pub fn request(data: &[u8]) {
    match http::parse(data) {
        Parse::Partial => assert!(data.len() < http::MAX_REQUEST_HEAD, "partial past the head bound"),
        Parse::Reject(status) => assert!(matches!(status, 400 | 431), "reject {status}"),
        Parse::Complete(req, used) => {
            assert!(used > 0 && used <= data.len() && used <= http::MAX_REQUEST_HEAD, "used {used}");
            assert!(req.target.starts_with('/'), "target {:?}", req.target);
            assert!(req.target.bytes().all(|b| b > b' ' && b != 0x7f), "control byte in {:?}", req.target);
            assert!(!(req.has_body && req.keep_alive), "a body that is not read must close");
            // Bytes trickled in any pieces get the same answer: a prefix
            // of a complete head is never complete, nor rejected.
            for cut in [used - 1, used / 2, used / 3, 1] {
                let prefix = &data[..cut.min(used - 1)];
                assert_eq!(http::parse(prefix), Parse::Partial, "prefix of {cut} bytes");
            }
            let (status, body) = answer(req.method, req.target);
            let conn = if req.keep_alive { Connection::KeepAlive } else { Connection::Close };
            check_response(status, &body, req.method == Method::Head, conn);
        }
    }
}

/// What the daemon answers, as `serve` builds it, with every check passing.
fn answer(method: Method, target: &str) -> (u16, Vec<u8>) {
    match routes::route(method, target) {
        Route::SelfCheck => (200, b"ok\n".to_vec()),
        Route::NotFound => (404, http::status_body(404).to_vec()),
        Route::MethodNotAllowed => (405, http::status_body(405).to_vec()),
        Route::Metrics => (200, scrape(target)),
        Route::One(name, query)
            if routes::percent_decode_path(name).is_some_and(|n| CHECK_NAMES.contains(&n.as_str())) =>
        {
            if routes::parse_query(query).json {
                let name = routes::percent_decode_path(name).unwrap_or_default();
                (200, json_report(&[&name], &[]))
            } else {
                (200, b"ok\n".to_vec())
            }
        }
        Route::One(..) => (404, http::status_body(404).to_vec()),
        Route::All(query) => {
            let query = routes::parse_query(query);
            let mut body = Vec::new();
            let mut warnings = Vec::new();
            let mut included: Vec<&str> = CHECK_NAMES.to_vec();
            for raw in query.exclude {
                let decoded = routes::percent_decode(raw);
                let name = decoded.as_deref().unwrap_or(raw);
                if CHECK_NAMES.contains(&name) {
                    included.retain(|n| *n != name);
                    continue;
                }
                let mut shown = Vec::new();
                http::push_escaped(&mut shown, name.as_bytes());
                assert_escaped(&shown, name.as_bytes());
                body.extend_from_slice(b"warn: no matches for \"");
                body.extend_from_slice(&shown);
                body.extend_from_slice(b"\"\n");
                warnings.push(String::from_utf8(shown).expect("escaped text is ASCII"));
            }
            if query.json {
                return (200, json_report(&included, &warnings));
            }
            body.extend_from_slice(b"ok\n");
            (200, body)
        }
    }
}

/// The JSON verdicts of passing checks `names`: it parses, and says what
/// was written, whatever the warnings hold.
fn json_report(names: &[&str], warnings: &[String]) -> Vec<u8> {
    let pass = Verdict::Pass;
    let entries = names.iter().map(|name| json::Entry {
        name,
        verdict: Some(&pass),
        duration: std::time::Duration::from_micros(1500),
    });
    let mut body = Vec::new();
    assert!(json::write_report(&mut body, entries, warnings));
    let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON verdicts parse");
    assert_eq!(value["status"], "pass");
    let checks = value["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), names.len());
    for (check, name) in checks.iter().zip(names) {
        assert_eq!(check["name"], *name);
        assert_eq!(check["duration_seconds"], 0.0015);
    }
    let shown: Vec<&str> =
        value["warnings"].as_array().map_or(Vec::new(), |w| w.iter().filter_map(|w| w.as_str()).collect());
    assert_eq!(shown, warnings.iter().map(String::as_str).collect::<Vec<_>>());
    body
}

/// A scrape of a daemon whose check names hold the request target (names
/// from URLs hold almost anything): every line is a comment or one sample
/// whose label values read back as written.
fn scrape(target: &str) -> Vec<u8> {
    let mut checks: Vec<Check> =
        CHECK_NAMES.iter().map(|n| Check::parse(&format!("{n}=http://127.0.0.1:1/")).expect("check")).collect();
    checks[1].name = target.to_string();
    let mut m = Metrics::new(&checks);
    let now = std::time::SystemTime::now();
    m.verdict(0, &Verdict::Pass, std::time::Duration::from_millis(2), now);
    m.verdict(1, &Verdict::Fail(Reason::Http(HttpReason::Status(503))), std::time::Duration::from_secs(20), now);
    m.request(Handler::Metrics, 200);
    let mut body = Vec::new();
    m.write(&mut body, 1, Instant::now());
    let text = std::str::from_utf8(&body).expect("UTF-8 exposition");
    let mut names_seen = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "value in {line:?}");
        let Some((_, labels)) = series.split_once('{') else { continue };
        let labels = labels.strip_suffix('}').expect("closing brace");
        names_seen.extend(label_values(labels).into_iter().filter(|(k, _)| k == "check").map(|(_, v)| v));
    }
    assert!(names_seen.iter().any(|n| n == target), "{target:?} not read back from:\n{text}");
    assert!(names_seen.iter().all(|n| n == target || n == CHECK_NAMES[0]));
    body
}

/// Parses `k="v",k="v"` as the text format escapes it.
pub fn label_values(labels: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label key");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape") {
                    (_, 'n') => value.push('\n'),
                    (_, c @ ('\\' | '"')) => value.push(c),
                    (_, c) => panic!("bad escape \\{c} in {labels:?}"),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key.to_string(), value));
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    out
}

/// Escaped text is printable ASCII with no markup or bare quote, and it
/// decodes back to the original: nothing is lost or forged.
pub fn assert_escaped(shown: &[u8], original: &[u8]) {
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < shown.len() {
        let b = shown[i];
        assert!((b' '..=b'~').contains(&b) && !b"<>&\"".contains(&b), "{b:#x} in {shown:?}");
        if b != b'\\' {
            decoded.push(b);
            i += 1;
            continue;
        }
        match shown.get(i + 1) {
            Some(b'"' | b'\\') => {
                decoded.push(shown[i + 1]);
                i += 2;
            }
            Some(b'x') => {
                let hex = std::str::from_utf8(&shown[i + 2..i + 4]).expect("hex digits");
                decoded.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 4;
            }
            other => panic!("bad escape {other:?} in {shown:?}"),
        }
    }
    assert_eq!(decoded, original);
}

/// The response the daemon writes is one well-formed HTTP/1.1 head.
fn check_response(status: u16, body: &[u8], head_only: bool, conn: Connection) {
    let mut out = Vec::new();
    http::write_response(&mut out, status, body, head_only, conn);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(used)) = resp.parse(&out) else {
        panic!("response head does not parse: {:?}", String::from_utf8_lossy(&out));
    };
    assert_eq!(resp.code, Some(status));
    assert_eq!(out.len() - used, if head_only { 0 } else { body.len() });
}

/// Check URLs the response oracle probes, picked by the first input byte.
const PROBE_URLS: [&str; 5] = [
    "http://localhost:8080/health",
    "http://127.0.0.1/ready?full=1",
    "http://[::1]:9000/",
    "tcp://127.0.0.1:5432",
    "post:http://127.0.0.1:15020/quitquitquit",
];

/// Response parsing of one probe: the status line, headers, body framing
/// and redirects. Every hop answers with the same bytes (a redirect to
/// itself is a loop), cut three ways: whole, byte by byte, and in pieces.
/// The verdict must not depend on the cuts, nor on reusing the probe.
pub fn response(data: &[u8]) {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let url = PROBE_URLS[pick as usize % PROBE_URLS.len()];
    let check = match url.strip_prefix("post:") {
        Some(url) => Check::callback(url),
        None => Check::parse(url),
    }
    .expect("a valid check");

    let mut probe = Probe::default();
    let whole = transcript(&mut probe, &check, data, &mut |_| probe::MAX_HEAD);
    let reused = transcript(&mut probe, &check, data, &mut |_| probe::MAX_HEAD);
    assert_eq!(whole, reused, "a reused probe reaches another verdict");
    // Past its 10 KiB of body kubelet's client still checks the chunk
    // framing it already holds, so there the verdict may depend on the
    // cuts, as it does for kubelet.
    let lookahead = data.len() > probe::MAX_BODY && data.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
    if lookahead {
        return;
    }
    let pieces = transcript(&mut Probe::default(), &check, data, &mut random_cuts(u64::from(pick)));
    assert_eq!(whole, pieces, "cut in pieces");
    if data.len() <= 4096 {
        let bytes = transcript(&mut Probe::default(), &check, data, &mut |_| 1);
        assert_eq!(whole, bytes, "byte by byte");
    }
    // The same bytes with an `--expect-body` text taken from them (so it
    // is often there): the verdict does not depend on the cuts either.
    if check.kind == Kind::Http {
        let at = data.len() / 2;
        let text = &data[at..data.len().min(at + 1 + usize::from(pick % 8))];
        if let Some(check) = expecting_body(url, text) {
            let whole = transcript(&mut probe, &check, data, &mut |_| probe::MAX_HEAD);
            let pieces = transcript(&mut Probe::default(), &check, data, &mut random_cuts(u64::from(pick)));
            assert_eq!(whole, pieces, "expect-body, cut in pieces");
        }
    }
    body_match(pick, data);
}

/// The `--expect-body` matcher against the plain answer: a 200 whose body
/// is the input after a text taken from its start, framed by length,
/// chunked at random sizes, or delimited by the close, and cut into random
/// pieces, passes exactly when the text occurs in its first 10 KiB.
fn body_match(pick: u8, data: &[u8]) {
    let split = (1 + usize::from(pick % 16)).min(data.len());
    let (text, rest) = data.split_at(split);
    // Past 10 KiB now and then, the body repeated.
    let body: Vec<u8> = if pick & 0x80 != 0 && !rest.is_empty() {
        rest.iter().copied().cycle().take(probe::MAX_BODY + 2 * rest.len().min(1024)).collect()
    } else {
        rest.to_vec()
    };
    let text = String::from_utf8_lossy(text).into_owned();
    let Some(check) = expecting_body("http://127.0.0.1/ready", text.as_bytes()) else { return };
    let read = &body[..body.len().min(probe::MAX_BODY)];
    let found = read.windows(text.len()).any(|w| w == text.as_bytes());
    let mut cuts = random_cuts(u64::from(pick) << 8 | split as u64);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut left = &body[..];
    while !left.is_empty() {
        let n = cuts(left.len());
        chunked.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        chunked.extend_from_slice(&left[..n]);
        chunked.extend_from_slice(b"\r\n");
        left = &left[n..];
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let length = [format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(), &body].concat();
    let close = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], &body].concat();
    for response in [&length, &chunked, &close] {
        let steps = transcript(&mut Probe::default(), &check, response, &mut cuts);
        let verdict = steps.last().expect("a verdict");
        assert_eq!(verdict == &format!("{:?}", Verdict::Pass), found, "{text:?}: {verdict}");
    }
}

/// The check `url` with `--expect-body TEXT`, as the command line makes
/// it; None when the command line refuses the text (empty).
fn expecting_body(url: &str, text: &[u8]) -> Option<Check> {
    let text = String::from_utf8_lossy(text);
    let argv = ["serve", "--dry-run", "--expect-body", &format!("app={text}"), &format!("app={url}")];
    match cli::parse(argv.iter().map(OsString::from).collect(), |_| None) {
        Ok(Command::Serve(c)) => c.checks.into_iter().next(),
        _ => None,
    }
}

/// Piece sizes from a xorshift stream: each between 1 and the bytes left,
/// the same for the same seed.
fn random_cuts(seed: u64) -> impl FnMut(usize) -> usize {
    let mut seed = seed | 1;
    move |left| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + (seed as usize) % left.max(1)
    }
}

/// Every step of a probe fed `data` on each connection, in pieces of
/// `cut(bytes left)`: the addresses, requests and the verdict.
fn transcript(probe: &mut Probe, check: &Check, data: &[u8], cut: &mut dyn FnMut(usize) -> usize) -> Vec<String> {
    let mut steps = Vec::new();
    let mut action = probe.start(check, &check.addrs, Instant::now());
    for _hop in 0..=probe::MAX_REDIRECTS {
        let Action::Connect(addr) = action else {
            panic!("expected a connect, got {action:?}");
        };
        assert!(check.addrs.iter().any(|a| a.ip() == addr.ip()), "redirected to another host: {addr}");
        steps.push(format!("connect {addr}"));
        action = probe.connected(check, Instant::now());
        if check.kind == Kind::Tcp {
            assert_eq!(action, Action::Done(Verdict::Pass));
            return steps;
        }
        while action == Action::Send {
            let out = probe.output(check).to_vec();
            check_probe_request(check, &out);
            steps.push(String::from_utf8_lossy(&out).into_owned());
            action = probe.wrote(check, out.len());
        }
        assert_eq!(action, Action::Receive);
        let mut rest = data;
        while action == Action::Receive && !rest.is_empty() {
            let n = cut(rest.len()).clamp(1, rest.len().min(probe::MAX_HEAD));
            action = probe.received(check, &rest[..n]);
            rest = &rest[n..];
        }
        if action == Action::Receive {
            action = probe.eof();
        }
        if let Action::Done(verdict) = &action {
            check_verdict(verdict);
            steps.push(format!("{verdict:?}"));
            return steps;
        }
    }
    panic!("more than {} redirects followed", probe::MAX_REDIRECTS);
}

/// A probe's request, first or redirected, is one clean head: a Location
/// cannot add a header or a request. (A long Location makes it longer than
/// our own inbound bound, so httparse judges it.)
fn check_probe_request(check: &Check, out: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(used)) = req.parse(out) else {
        panic!("probe request does not parse: {:?}", String::from_utf8_lossy(out));
    };
    assert_eq!(used, out.len(), "one request only");
    assert!(req.path.is_some_and(|p| p.starts_with('/')), "target {:?}", req.path);
    // A followed redirect adds Referer, and Authorization for a Location
    // with userinfo, as Go's client does.
    let names: Vec<&str> =
        req.headers.iter().map(|h| h.name).filter(|&n| n != "Referer" && n != "Authorization").collect();
    let want: &[&str] = if check.kind == Kind::Post {
        &["Host", "User-Agent", "Accept", "Content-Length", "Connection"]
    } else {
        &["Host", "User-Agent", "Accept", "Connection"]
    };
    assert_eq!(names, want, "{:?}", String::from_utf8_lossy(out));
}

fn check_verdict(verdict: &Verdict) {
    match verdict {
        Verdict::Fail(Reason::Http(HttpReason::Status(code))) => assert!(!probe::passes(*code), "status {code} fails"),
        Verdict::Fail(Reason::Http(HttpReason::BodyNotFound(text))) => {
            assert!(text.len() <= 200 && text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}")
        }
        Verdict::Fail(Reason::Timeout(_)) => panic!("no deadline passed"),
        _ => {}
    }
}

/// The gRPC call's response path: HTTP/2 frames, HPACK, gRPC message
/// framing and protobuf. The verdict is the same whole, byte by byte, in
/// random pieces and with a reused call; what the call holds stays within
/// its bounds and what it writes back (SETTINGS and PING acknowledgements)
/// within what it read; a reason is printable. The HPACK decoder and the
/// protobuf reader take the bytes on their own too.
pub fn grpc(data: &[u8]) {
    let request = grpc::Request::new(b"127.0.0.1:9090", b"orders.v1.Orders", &[]).expect("a request");
    let mut call = grpc::Call::default();
    let whole = grpc_transcript(&mut call, &request, data, &mut |left| left);
    let reused = grpc_transcript(&mut call, &request, data, &mut |left| left);
    assert_eq!(whole, reused, "a reused call reaches another verdict");
    let seed = data.iter().take(8).fold(data.len() as u64, |h, &b| h.rotate_left(8) ^ u64::from(b));
    let pieces = grpc_transcript(&mut grpc::Call::default(), &request, data, &mut random_cuts(seed));
    assert_eq!(whole, pieces, "cut in pieces");
    if data.len() <= 4096 {
        let bytes = grpc_transcript(&mut grpc::Call::default(), &request, data, &mut |_| 1);
        assert_eq!(whole, bytes, "byte by byte");
    }
    let mut decoder = hpack::Decoder::new();
    let _ = decoder.decode(data, |_, _| {});
    assert!(decoder.table_size() <= hpack::TABLE_SIZE, "table of {}", decoder.table_size());
    let _ = proto::read_status(data);
}

/// What the call holds at most: one partial frame, one header block, one
/// message with its prefix, and a `grpc-message` to show.
const GRPC_BOUND: usize = h2::HEADER_LEN + h2::MAX_FRAME + grpc::MAX_BLOCK + 5 + grpc::MAX_MESSAGE + 256;

/// A call fed `data` as the server's side, in pieces of `cut(bytes left)`,
/// then the end of the connection: its verdict.
fn grpc_transcript(
    call: &mut grpc::Call,
    request: &grpc::Request,
    data: &[u8],
    cut: &mut dyn FnMut(usize) -> usize,
) -> String {
    let now = Instant::now();
    call.start(now + Duration::from_secs(1));
    let mut action = call.connected(request, now);
    let (mut written, mut first) = (0, None);
    let mut rest = data;
    loop {
        action = match action {
            Action::Send => {
                let n = call.output().len();
                written += n;
                first.get_or_insert(n);
                call.wrote(n)
            }
            Action::Receive if rest.is_empty() => call.eof(),
            Action::Receive => {
                let n = cut(rest.len()).clamp(1, rest.len());
                let action = call.received(&rest[..n]);
                rest = &rest[n..];
                assert!(call.buffered() <= GRPC_BOUND, "holds {} octets", call.buffered());
                action
            }
            Action::Done(verdict) => {
                assert!(written <= first.unwrap_or(0) + data.len(), "wrote {written} for {} read", data.len());
                if let Verdict::Fail(reason) = &verdict {
                    let text = reason.to_string();
                    assert!(text.len() <= 200 && text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
                    assert!(
                        !matches!(reason, Reason::Timeout(_) | Reason::Http(HttpReason::Status(200))),
                        "{reason:?}"
                    );
                }
                return format!("{verdict:?}");
            }
            Action::Connect(addr) => panic!("a call never connects: {addr}"),
            Action::ConnectUnix => panic!("a call never connects"),
        };
    }
}

/// The TLS layer under an `https://` probe (`probe/conn.rs` and the probe's
/// glue): `data` as the server's bytes after the ClientHello, whole, in
/// random pieces and byte by byte. Every split reaches the same verdict, no
/// verdict is a pass (nothing can complete a handshake without the keys),
/// the records written stay bounded and every step makes progress.
pub fn tls(data: &[u8]) {
    let check = Check::parse("https://localhost:8443/health").expect("an https check");
    let whole = tls_transcript(&check, data, &mut |left| left);
    let seed = data.iter().take(8).fold(data.len() as u64, |h, &b| h.rotate_left(8) ^ u64::from(b));
    let pieces = tls_transcript(&check, data, &mut random_cuts(seed));
    assert_eq!(whole, pieces, "cut in pieces");
    if data.len() <= 4096 {
        assert_eq!(whole, tls_transcript(&check, data, &mut |_| 1), "byte by byte");
    }
}

/// The most a client writes during a handshake it cannot finish: its
/// ClientHello and an alert, well under one record's worth.
const TLS_WRITTEN_BOUND: usize = 18 * 1024;

/// A probe of `check` fed `data` as the server's side after its connect, in
/// pieces of `cut(bytes left)`, then the end of the stream: its verdict.
fn tls_transcript(check: &Check, data: &[u8], cut: &mut dyn FnMut(usize) -> usize) -> String {
    let now = Instant::now();
    let mut probe = Probe::default();
    assert!(matches!(probe.start(check, &check.addrs, now + Duration::from_secs(1)), Action::Connect(_)));
    let mut action = probe.connected(check, now);
    let (mut written, mut rest, mut ended) = (0, data, false);
    loop {
        action = match action {
            Action::Send => {
                let n = probe.output(check).len();
                assert!(n > 0, "Send with nothing to send");
                written += n;
                assert!(written <= TLS_WRITTEN_BOUND, "wrote {written}");
                probe.wrote(check, n)
            }
            Action::Receive if rest.is_empty() => {
                assert!(!ended, "no verdict after the end of the stream");
                ended = true;
                probe.eof()
            }
            Action::Receive => {
                let n = cut(rest.len()).clamp(1, rest.len());
                let action = probe.received(check, &rest[..n]);
                rest = &rest[n..];
                action
            }
            Action::Done(Verdict::Pass) => panic!("a pass without a handshake"),
            Action::Done(Verdict::Fail(reason)) => {
                let text = reason.to_string();
                assert!(text.len() <= 200 && text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
                return text;
            }
            Action::Connect(addr) => panic!("a redirect without a handshake: {addr}"),
            Action::ConnectUnix => panic!("a TCP check connected to a unix socket"),
        };
    }
}

/// The command line: durations, CHECKs and whole argument lists. Arguments
/// are split on NUL, which no real argv can hold.
pub fn cli(data: &[u8]) {
    let args: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    for arg in args.iter().filter_map(|a| std::str::from_utf8(a).ok()) {
        duration(arg);
        check_arg(arg);
    }
    // `--dry-run` right after the mode word keeps name resolution (DNS)
    // out of the fuzzer; in the positional form it is an error.
    let mut argv: Vec<OsString> = args.iter().map(|a| OsString::from_vec(a.to_vec())).collect();
    argv.insert(argv.len().min(1), OsString::from("--dry-run"));
    match cli::parse(argv, |_| None) {
        Ok(command) => {
            if let Command::Serve(c) = &command {
                assert!(!c.checks.is_empty() && !c.timeout.is_zero());
            }
            let _ = cli::describe(&command);
        }
        Err(e) => assert_one_clean_line(&e.0),
    }
}

/// A parsed duration prints back to itself.
fn duration(s: &str) {
    if let Ok(d) = parse_duration(s) {
        let shown = DisplayDuration(d).to_string();
        assert_eq!(parse_duration(&shown), Ok(d), "{s:?} shown as {shown:?}");
    }
}

/// An accepted CHECK has a name of printable ASCII, and a
/// request our own parser takes whole; a refused one says why in one line.
fn check_arg(arg: &str) {
    match Check::parse(arg) {
        Ok(check) => {
            assert!(!check.name.is_empty(), "empty name for {arg:?}");
            // A name is one printable word: logs quote and escape it, and
            // a default name is the URL (a host may hold `"`, say).
            assert!(check.name.bytes().all(|b| b.is_ascii_graphic()), "name {:?}", check.name);
            if check.kind == Kind::Http {
                check_probe_request(&check, &check.request);
            }
        }
        Err(e) => assert_one_clean_line(&e.0),
    }
}

/// Error text echoes arguments escaped: no control character can start a
/// new line on the terminal or in a log.
fn assert_one_clean_line(msg: &str) {
    assert!(!msg.is_empty());
    assert!(!msg.chars().any(char::is_control), "control character in {msg:?}");
}

/// Seeds for the mutators (and the cargo-fuzz corpora): one well-formed
/// input of each kind the parsers know, plus known-hostile ones.
pub const REQUEST_SEEDS: &[&[u8]] = &[
    b"GET /self HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /all?verbose&exclude=app&exclude=b%2Dc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /all/db?verbose HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://x:1/all HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /all HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"GET /all?exclude=%3Cscript%3E%0d%0aX:%20y HTTP/1.1\nHost: x\n\n",
    b"GET /all/../self HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    b"GET /metrics?x=\"}%0a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /all?format=json&exclude=%22%5c%00%e2%9c%93&exclude=db HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /all/app?format=json HTTP/1.1\r\nHost: x\r\n\r\n",
];

pub const RESPONSE_SEEDS: &[&[u8]] = &[
    b"\x00HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"\x01HTTP/1.1 302 Found\r\nLocation: /next?x=1\r\nContent-Length: 0\r\n\r\n",
    b"\x00HTTP/1.1 301 Moved\r\nLocation: http://localhost:9/a%0d%0aX: y\r\n\r\n",
    b"\x02HTTP/1.1 307 T\r\nLocation: //[::1]:1/\r\n\r\n",
    b"\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n2;x\r\nok\r\n0\r\nT: v\r\n\r\n",
    b"\x00HTTP/1.0 200 OK\r\n\r\nuntil eof",
    b"\x04HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"\x03",
    b"\x00HTTP/1.2  200 OK\nA: b\n  folded\nBad Name : x\nTransfer-Encoding: chunked\n\n0000000000000002;e\r\nok\r\n0 \r\nT: v\r\n\r\n",
    b"\x01HTTP/1.1 308 P\r\nLocation: \\\\h\\x/../y?a b#f\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    b"\x01HTTP/1.1 303 S\r\nLocation: http://u:p@localhost:1/%zz\r\nTransfer-Encoding: gzip\r\n\r\n",
];

pub const DNS_SEEDS: &[&[u8]] = &[
    b"\x00\x124\x81\x80\x00\x01\x00\x02\x00\x00\x00\x01\x02db\x07example\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\n\x00\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\n\x00\x00\x02\x00\x00)\x04\xd0\x00\x00\x00\x00\x00\x00",
    b"\x01\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x02db\x07example\x00\x00\x1c\x00\x01\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00<\x00\x10\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07",
    b"\x00BB\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x07example\x00\x00\x01\x00\x01",
    b"\x00BB\x81\x82\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x07example\x00\x00\x01\x00\x01",
    b"\x00BB\x83\x80\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x07example\x00\x00\x01\x00\x01",
    b"\x00ww\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00\x02db\x07example\x00\x00\x01\x00\x01\xc0\x0c\x00\x05\x00\x01\x00\x00\x002\x00\x07\x01x\x03cdn\x00\x01x\x03cdn\x00\x00\x05\x00\x01\x00\x00\x00(\x00\x04\x01y\xc0*\x01y\xc0*\x00\x01\x00\x01\x00\x00\x00\x14\x00\x04\n\t\t\t",
    b"\x02nameserver 10.0.0.1 # c\nsearch a.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:2 attempts:3\n",
    b"\x03127.0.0.1 localhost\n10.1.2.3\tdb.example db # pod\n::1 ip6-localhost\n",
];

/// Answers captured from grpc-go and Python grpcio, and hostile ones.
pub const GRPC_SEEDS: &[&[u8]] = &[
    include_bytes!("../../tests/grpc/responses/go-serving.h2"),
    include_bytes!("../../tests/grpc/responses/py-serving.h2"),
    include_bytes!("../../tests/grpc/responses/go-notfound.h2"),
    include_bytes!("../../tests/grpc/responses/py-notfound.h2"),
    include_bytes!("../../tests/grpc/responses/go-unimplemented.h2"),
    // SETTINGS; padded HEADERS opening with a table size update, without
    // END_HEADERS; a CONTINUATION with an indexed Huffman value; padded
    // DATA; a PING; the trailers. SERVING.
    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x05\x01\x08\x00\x00\x00\x01\x02\x20\x88\x00\x00\x00\x00\x0d\x09\x04\x00\x00\x00\x01\x5f\x8b\x1du\xd0b\x0d\x26\x3dLMed\x00\x00\x0a\x00\x08\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x01\x00\x00\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong\x00\x00\x0f\x01\x05\x00\x00\x00\x01\x40\x0bgrpc-status\x010",
    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02",
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
];

/// TLS records a client may meet first: the start of a ServerHello, an alert,
/// a record claiming the most a length can say, plain HTTP (no TLS at all).
pub const TLS_SEEDS: &[&[u8]] = &[
    b"\x16\x03\x03\x00\x4a\x02\x00\x00\x46\x03\x03\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20\x00\x13\x01\x00\x00\x1e\x00\x2b\x00\x02\x03\x04\x00\x33\x00\x24\x00\x1d\x00\x20",
    b"\x15\x03\x03\x00\x02\x02\x28",
    b"\x16\x03\x03\xff\xff\x0b\xff\xff\xff",
    b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x13hello, no key here",
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
];

pub const CLI_SEEDS: &[&[u8]] = &[
    b"8081\x003\x00http://localhost:8080/healthz",
    b"serve\x00--listen=[::1]:9000\x00--timeout\x00500ms\x00app=http://127.0.0.1/h?x=1\x00db=tcp://[::1]:5432",
    b"check\x00--quiet\x00--timeout=18446744073709551615ms\x00http://localhost/",
    b"run\x00--istio\x00--wait-timeout\x002m\x00--on-exit\x00http://127.0.0.1:1/done\x00--\x00job\x00--flag",
    b"serve\x00-x\nforged\x00http://localhost/",
    b"check\x00grpc://127.0.0.1:9090?service=a%2Fb\x00orders=grpc://[::1]:1/?service=\x00grpc://h:1?service=a&x",
    b"check\x00--header\x00g=Authorization: Bearer t\x00--header\x00g=grpc-encoding: gzip\x00g=grpc://127.0.0.1:1",
    b"check\x00--header\x00a=Host: h\x00--header=a=X-T: 1\x00a=http://127.0.0.1/x\x00--header\x00127.0.0.1/y=Accept:",
    b"run\x00--wait\x00http://localhost/w\x00--header\x00localhost/w=User-Agent: u\x00--\x00true",
];

/// DNS answers as the resolver meets them. The first byte picks: 0 and 1
/// an answer to an A / AAAA question for `db.example` (its ID is taken as
/// ours, so the question is what decides), 2 a resolv.conf, 3 a hosts file.
pub fn dns(data: &[u8]) {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    match pick % 4 {
        0 | 1 => dns_answer(data, if pick % 4 == 0 { message::TYPE_A } else { message::TYPE_AAAA }),
        2 => {
            let conf = ResolvConf::parse(&String::from_utf8_lossy(data));
            assert!((1..=3).contains(&conf.servers.len()), "{:?}", conf.servers);
            assert!(conf.servers.iter().all(|s| s.port() == 53));
            assert!(conf.ndots <= 15 && (1..=5).contains(&conf.attempts), "{conf:?}");
            assert!((1..=30).contains(&conf.timeout.as_secs()), "{conf:?}");
            for name in ["app", "a.b.c.d.e.f", "abs."] {
                let names = conf.candidates(name);
                assert_eq!(names.len(), if name.ends_with('.') { 1 } else { conf.search.len() + 1 });
                assert!(names.iter().all(|n| !n.ends_with('.') && n.starts_with(name.trim_end_matches('.'))));
            }
        }
        _ => {
            let text = String::from_utf8_lossy(data);
            let hosts = Hosts::parse(&text);
            for word in text.split_ascii_whitespace().take(64) {
                assert!(hosts.lookup(word).len() <= 8, "{word}");
            }
        }
    }
}

fn dns_answer(msg: &[u8], qtype: u16) {
    let qname = message::encode_name("db.example").expect("a valid name");
    let id = msg.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if let Ok(message::Reply::Addrs { addrs, ttl }) = message::parse_reply(msg, id, &qname, qtype) {
        assert!(addrs.len() <= message::MAX_ADDRS, "{} addresses kept", addrs.len());
        assert!(addrs.iter().all(|a| a.is_ipv4() == (qtype == message::TYPE_A)), "wrong family: {addrs:?}");
        assert!(addrs.iter().enumerate().all(|(i, a)| !addrs[..i].contains(a)), "duplicates: {addrs:?}");
        assert!(ttl <= i32::MAX as u32 && addrs.is_empty() <= (ttl == 0), "ttl {ttl} for {addrs:?}");
    }
    // The lookup machine fed the same bytes as its answer over UDP; when
    // that sends it to TCP, the same answer over TCP, whole and byte by
    // byte, must end alike.
    let conf = ResolvConf::parse("nameserver 127.0.0.1\noptions attempts:1\n");
    let now = std::time::Instant::now();
    let which = usize::from(qtype == message::TYPE_AAAA);
    let over_udp = || {
        let (mut lookup, _) = Lookup::start("db.example.", &conf, dns::Rng::new(u64::from(id)), now);
        let action = lookup.received(&with_id(msg, lookup.datagrams()[which]), now);
        check_dns_action(&action);
        (lookup, action)
    };
    let (mut whole, action) = over_udp();
    if action != dns::Action::Tcp(conf.servers[0]) {
        return;
    }
    let queries = tcp_queries(whole.output());
    assert_eq!(queries.len(), 2, "two queries over TCP");
    let answer = with_id(msg, queries[which]);
    let mut stream = (answer.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(&answer);
    let outcome = whole.received(&stream, now);
    check_dns_action(&outcome);
    let (mut bytes, _) = over_udp();
    let mut last = dns::Action::Receive;
    for b in &stream {
        last = bytes.received(std::slice::from_ref(b), now);
        if last != dns::Action::Receive {
            break;
        }
    }
    assert_eq!(outcome, last, "byte by byte over TCP");
}

/// `msg` with the ID of `query`.
fn with_id(msg: &[u8], query: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    if out.len() >= 2 {
        out[..2].copy_from_slice(&query[..2]);
    }
    out
}

/// The length-prefixed queries of a TCP stream.
fn tcp_queries(mut out: &[u8]) -> Vec<&[u8]> {
    let mut queries = Vec::new();
    while out.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([out[0], out[1]]));
        queries.push(&out[2..2 + len]);
        out = &out[2 + len..];
    }
    queries
}

fn check_dns_action(action: &dns::Action) {
    if let dns::Action::Done(Ok(found)) = action {
        assert!(!found.addrs.is_empty() && found.addrs.len() <= 2 * message::MAX_ADDRS, "{found:?}");
    }
}
