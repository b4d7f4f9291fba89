//! gRPC over HTTP/2, the bytes: the health call's request (header block and
//! length-prefixed message, built once per check), `grpc-timeout` values,
//! `grpc-message` decoding, and the names of statuses.

use std::time::Duration;

use crate::wire::digits::push_decimal;
use crate::wire::http;
use crate::wire::text::percent_decode;
use crate::wire::{h2, hpack, proto, USER_AGENT};

/// The method every health check calls.
pub(crate) const PATH: &str = "/grpc.health.v1.Health/Check";
/// Largest request header block: it must fit one HEADERS frame, with room
/// for the `grpc-timeout` field added when the call starts.
const MAX_REQUEST_BLOCK: usize = h2::MAX_FRAME - 64;
/// `grpc-message` octets kept to show (escaped) in a reason.
pub(crate) const MAX_SHOWN: usize = 80;

/// What a gRPC check sends, built once when the check is parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The request header block, but for `grpc-timeout`.
    pub(crate) block: Vec<u8>,
    /// The length-prefixed HealthCheckRequest.
    pub(crate) message: Vec<u8>,
}

impl Request {
    /// The call for `service` on `authority` (`host:port` as written), with
    /// the `--header` fields as metadata: `Host` names the `:authority` and
    /// `User-Agent` replaces ours (given empty, none is sent), as for HTTP
    /// checks; other names are sent lower-case, as HTTP/2 requires; the
    /// [`reserved`] ones are the call's own and never sent. Err when the
    /// request cannot fit one frame.
    pub fn new(authority: &[u8], service: &[u8], headers: &[(String, String)]) -> Result<Request, String> {
        Request::with_scheme(b"http", authority, service, headers)
    }

    /// [`Request::new`] with the `:scheme` given: `https` for a call over TLS.
    pub fn with_scheme(
        scheme: &[u8],
        authority: &[u8],
        service: &[u8],
        headers: &[(String, String)],
    ) -> Result<Request, String> {
        let given = |name: &str| http::field(headers, name).map(str::as_bytes);
        let authority = given("host").filter(|h| !h.is_empty()).unwrap_or(authority);
        let user_agent = given("user-agent").unwrap_or(USER_AGENT.as_bytes());
        let mut block = Vec::new();
        let fields: [(&[u8], &[u8]); 6] = [
            (b":method", b"POST"),
            (b":scheme", scheme),
            (b":path", PATH.as_bytes()),
            (b":authority", authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ];
        for (name, value) in fields {
            hpack::encode(&mut block, name, value);
        }
        if !user_agent.is_empty() {
            hpack::encode(&mut block, b"user-agent", user_agent);
        }
        for (name, value) in headers {
            if !reserved(name) && !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("user-agent") {
                hpack::encode(&mut block, name.to_ascii_lowercase().as_bytes(), value.as_bytes());
            }
        }
        if block.len() > MAX_REQUEST_BLOCK {
            return Err(format!("gRPC request headers over {MAX_REQUEST_BLOCK} bytes"));
        }
        let mut body = Vec::new();
        proto::write_request(&mut body, service);
        if body.len() + 5 > h2::MAX_FRAME {
            return Err(format!("gRPC service name over {} bytes", h2::MAX_FRAME - 16));
        }
        let mut message = vec![0]; // not compressed
        message.extend_from_slice(&(body.len() as u32).to_be_bytes());
        message.extend_from_slice(&body);
        Ok(Request { block, message })
    }
}

/// Header fields the call sets itself or HTTP/2 forbids (RFC 9113 8.2.2),
/// and the `grpc-` names gRPC reserves: a `--header` may not name them.
pub(crate) fn reserved(name: &str) -> bool {
    const OWN: [&str; 6] = ["content-type", "te", "connection", "keep-alive", "proxy-connection", "upgrade"];
    OWN.iter().any(|f| name.eq_ignore_ascii_case(f))
        || name.get(..5).is_some_and(|prefix| prefix.eq_ignore_ascii_case("grpc-"))
}

/// Appends a `grpc-timeout` value (gRPC over HTTP/2): at most 8 digits and
/// a unit, the finest unit that fits, truncated, as grpc-go writes it. In
/// 64-bit nanoseconds (584 years): 128-bit arithmetic would cost size.
pub(crate) fn push_timeout(out: &mut Vec<u8>, remaining: Duration) {
    const MAX_VALUE: u64 = 99_999_999;
    let nanos = u64::try_from(remaining.as_nanos()).unwrap_or(u64::MAX);
    for (unit, per) in [(b'n', 1), (b'u', 1_000), (b'm', 1_000_000), (b'S', 1_000_000_000), (b'M', 60_000_000_000)] {
        if nanos / per <= MAX_VALUE {
            push_decimal(out, nanos / per);
            out.push(unit);
            return;
        }
    }
    push_decimal(out, (nanos / 3_600_000_000_000).min(MAX_VALUE));
    out.push(b'H');
}

/// `application/grpc`, alone or with a `+format` or parameters.
pub(crate) fn is_grpc_content(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(b"application/grpc") else { return false };
    matches!(rest.first(), None | Some(b'+' | b';'))
}

/// A decimal number of at most 9 digits.
pub(crate) fn parse_number(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// A `grpc-message` to show: percent-decoded (as gRPC encodes it; a
/// malformed one is shown as it came), then escaped and cut short, so a
/// server cannot forge log lines or markup.
pub(crate) fn shown(raw: &[u8]) -> String {
    let decoded = percent_decode(raw, false).unwrap_or_else(|| raw.to_vec());
    let mut out = Vec::new();
    http::push_shown(&mut out, &decoded, MAX_SHOWN);
    String::from_utf8(out).unwrap_or_default()
}

/// The name of a gRPC status code.
pub(crate) fn status_name(code: u32) -> Option<&'static str> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied()
}

/// The name of a `HealthCheckResponse.ServingStatus`.
pub(crate) fn health_name(status: i32) -> Option<&'static str> {
    match status {
        proto::UNKNOWN => Some("UNKNOWN"),
        proto::SERVING => Some("SERVING"),
        proto::NOT_SERVING => Some("NOT_SERVING"),
        proto::SERVICE_UNKNOWN => Some("SERVICE_UNKNOWN"),
        _ => None,
    }
}
