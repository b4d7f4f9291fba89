//! Layer 2, the verdict model: a probe's `Verdict`, and the `Reason` it
//! failed for, with each protocol's reasons as their own enum nested in it
//! (the parsers' errors nested in those), and the coarse `ReasonClass` a
//! reason is counted under in the metrics.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::grpc::{health_name, status_name};
use crate::wire::response;
use crate::wire::text::DisplayDuration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(Reason),
}

impl Verdict {
    pub(crate) fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// Why a check failed: short, stable texts for `/all` and the logs. The
/// connection's own failures are here; each protocol's are nested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Timeout(Duration),
    Refused,
    Reset,
    Closed,
    /// No unix socket at the path (`--unix-socket`).
    NoSocket,
    /// The unix socket may not be connected to (`--unix-socket`).
    PermissionDenied,
    Connect(io::ErrorKind, Option<i32>),
    Io(io::ErrorKind, Option<i32>),
    /// The name gave no address.
    Dns(DnsReason),
    /// The HTTP answer (HTTP/1 for an http check, HTTP/2 under gRPC).
    Http(HttpReason),
    /// The gRPC call.
    Grpc(GrpcReason),
    /// The TLS layer of an `https://` or `grpcs://` check.
    Tls(TlsReason),
}

/// Why a name gave no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsReason {
    /// NXDOMAIN for every name tried.
    NoSuchHost,
    /// The name exists but has no A or AAAA record (NODATA).
    NoAddress,
    /// No server answered in time.
    Timeout,
    /// The servers answered with an error (SERVFAIL, REFUSED, ...), a
    /// broken answer, or could not be reached.
    ServerFailure,
}

/// Why an HTTP answer fails the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpReason {
    /// A status outside the passing ones.
    Status(u16),
    /// A status outside the check's `--expect-status` list (shown as given).
    Unexpected(u16, Arc<str>),
    /// The `--expect-body` text (shown escaped, cut short) is not in the
    /// part of the body read.
    BodyNotFound(Arc<str>),
    /// The response could not be read (see [`response::Error`]).
    Response(response::Error),
    /// The tenth request was a redirect too (kubelet's own words).
    RedirectLimit,
    /// A same-host `Location` that does not parse as a URL.
    InvalidLocation,
    /// A same-host redirect to a scheme other than http or https (or to
    /// https in a build without TLS).
    UnsupportedScheme,
}

/// Why a gRPC health call fails the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrpcReason {
    /// The HTTP/2 conversation or the gRPC answer broke the protocol.
    Invalid,
    /// A health answer other than SERVING.
    Health(i32),
    /// A gRPC status other than OK, and its message (escaped, cut short).
    Status(u32, String),
    GoAway,
    StreamReset,
}

/// A failed TLS connection, as a short reason; all of them count under the
/// reason class `tls`. (The `tls/` machine returns it as its error.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsReason {
    /// The server sent a fatal alert (its code, RFC 8446 6): `tls: alert handshake failure`.
    Alert(u8),
    /// The handshake did not complete: `tls: handshake failed: ...`.
    Handshake(TlsFailure),
    /// A record after the handshake was refused: `tls: ...`.
    Record(TlsFailure),
}

/// Why a handshake or record failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFailure {
    /// The first bytes are no TLS record: a plain-HTTP server on an `https://` URL.
    NotTls,
    /// The server closed during the handshake.
    Closed,
    /// A record or handshake message over the limits (16 KiB + overhead, 64 KiB).
    TooLarge,
    /// No version, suite, group or signature scheme in common.
    Incompatible,
    /// A message out of order or against the protocol.
    Misbehaved,
    /// A record that does not decrypt.
    Decrypt,
    /// A malformed message.
    Invalid,
    /// A `grpcs://` server that did not choose `h2` by ALPN (gRPC requires it).
    NoH2,
    /// Anything else (no random bytes, ...).
    Internal,
}

impl Reason {
    /// The reason for an I/O error, naming the common ones plainly.
    pub(crate) fn from_io(err: &io::Error, connecting: bool) -> Reason {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Reason::Refused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Reason::Reset,
            io::ErrorKind::BrokenPipe if !connecting => Reason::Reset,
            kind if connecting => Reason::Connect(kind, err.raw_os_error()),
            kind => Reason::Io(kind, err.raw_os_error()),
        }
    }

    /// The reason a connect to a unix socket failed: a missing socket and
    /// one without permission said plainly, as a refusal is.
    pub(crate) fn from_unix_connect(err: &io::Error) -> Reason {
        match err.kind() {
            io::ErrorKind::NotFound => Reason::NoSocket,
            io::ErrorKind::PermissionDenied => Reason::PermissionDenied,
            _ => Reason::from_io(err, true),
        }
    }
}

impl From<response::Error> for Reason {
    fn from(e: response::Error) -> Reason {
        Reason::Http(HttpReason::Response(e))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Timeout(after) => write!(f, "timeout after {}", DisplayDuration(whole_millis(*after))),
            Reason::Refused => f.write_str("connection refused"),
            Reason::Reset => f.write_str("connection reset"),
            Reason::Closed => f.write_str("closed before response"),
            Reason::NoSocket => f.write_str("no such socket"),
            Reason::PermissionDenied => f.write_str("permission denied"),
            Reason::Connect(kind, os) => write!(f, "connect: {}", OsError(*kind, *os)),
            Reason::Io(kind, os) => write!(f, "io: {}", OsError(*kind, *os)),
            Reason::Dns(reason) => write!(f, "dns: {reason}"),
            Reason::Http(reason) => reason.fmt(f),
            Reason::Grpc(reason) => reason.fmt(f),
            Reason::Tls(reason) => reason.fmt(f),
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::NotTls => "not a TLS server",
            TlsFailure::Closed => "closed by server",
            TlsFailure::TooLarge => "message too large",
            TlsFailure::Incompatible => "no common version or cipher suite",
            TlsFailure::Misbehaved => "protocol violation",
            TlsFailure::Decrypt => "bad record MAC",
            TlsFailure::Invalid => "bad record",
            TlsFailure::NoH2 => "server did not choose h2 by ALPN",
            TlsFailure::Internal => "internal error",
        })
    }
}

impl fmt::Display for TlsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsReason::Alert(code) => match alert_name(*code) {
                Some(name) => write!(f, "tls: alert {name}"),
                None => write!(f, "tls: alert {code}"),
            },
            TlsReason::Handshake(failure) => write!(f, "tls: handshake failed: {failure}"),
            TlsReason::Record(failure) => write!(f, "tls: {failure}"),
        }
    }
}

impl std::error::Error for TlsReason {}

/// The alert names of the TLS registry (RFC 8446 6, RFC 5246 7.2), as Go prints them.
fn alert_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "close notify",
        10 => "unexpected message",
        20 => "bad record MAC",
        22 => "record overflow",
        40 => "handshake failure",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "revoked certificate",
        45 => "expired certificate",
        46 => "unknown certificate",
        47 => "illegal parameter",
        48 => "unknown certificate authority",
        49 => "access denied",
        50 => "error decoding message",
        51 => "error decrypting message",
        70 => "protocol version not supported",
        71 => "insufficient security level",
        80 => "internal error",
        86 => "inappropriate fallback",
        90 => "user canceled",
        100 => "no renegotiation",
        109 => "missing extension",
        110 => "unsupported extension",
        112 => "unrecognized name",
        115 => "unknown PSK identity",
        116 => "certificate required",
        120 => "no application protocol",
        _ => return None,
    })
}

impl fmt::Display for DnsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsReason::NoSuchHost => "no such host",
            DnsReason::NoAddress => "no address",
            DnsReason::Timeout => "timeout",
            DnsReason::ServerFailure => "server failure",
        })
    }
}

impl fmt::Display for HttpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpReason::Status(code) => write!(f, "status {code}"),
            HttpReason::Unexpected(code, expected) => write!(f, "status {code} (expected {expected})"),
            HttpReason::BodyNotFound(text) => write!(f, "body: \"{text}\" not found"),
            HttpReason::Response(e) => e.fmt(f),
            HttpReason::RedirectLimit => f.write_str("stopped after 10 redirects"),
            HttpReason::InvalidLocation => f.write_str("invalid Location header"),
            HttpReason::UnsupportedScheme => f.write_str("redirect to an unsupported scheme"),
        }
    }
}

impl fmt::Display for GrpcReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcReason::Invalid => f.write_str("invalid response"),
            GrpcReason::Health(status) => match health_name(*status) {
                Some(name) => f.write_str(name),
                None => write!(f, "health status {status}"),
            },
            GrpcReason::Status(code, message) => {
                match status_name(*code) {
                    Some(name) => write!(f, "grpc status {name}")?,
                    None => write!(f, "grpc status {code}")?,
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            GrpcReason::GoAway => f.write_str("goaway"),
            GrpcReason::StreamReset => f.write_str("stream reset"),
        }
    }
}

/// A deadline to the millisecond for reading: a wait attempt cut short ends
/// at an arbitrary nanosecond, and `timeout after 876ms` reads better than
/// `timeout after 876.543211ms`. Below a millisecond it stays exact.
fn whole_millis(d: Duration) -> Duration {
    if d < Duration::from_millis(1) {
        return d;
    }
    Duration::new(d.as_secs(), d.subsec_millis() * 1_000_000)
}

/// An OS error's message without std's " (os error N)" suffix.
struct OsError(io::ErrorKind, Option<i32>);

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(code) => {
                let text = io::Error::from_raw_os_error(code).to_string();
                f.write_str(text.split(" (os error").next().unwrap_or(&text))
            }
            None => write!(f, "{}", io::Error::from(self.0)),
        }
    }
}

/// Why a check failed, coarsely: the `reason` label. A fixed set, so a
/// reason's free text (an OS message, a status code) never becomes a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReasonClass {
    Status,
    Body,
    Timeout,
    Refused,
    Reset,
    Closed,
    Invalid,
    Redirects,
    Dns,
    Grpc,
    Tls,
    Other,
}

impl ReasonClass {
    pub(crate) const ALL: [ReasonClass; 12] = [
        ReasonClass::Status,
        ReasonClass::Body,
        ReasonClass::Timeout,
        ReasonClass::Refused,
        ReasonClass::Reset,
        ReasonClass::Closed,
        ReasonClass::Invalid,
        ReasonClass::Redirects,
        ReasonClass::Dns,
        ReasonClass::Grpc,
        ReasonClass::Tls,
        ReasonClass::Other,
    ];

    /// The class of a reason. Exhaustive: a new reason does not compile
    /// until it is given a class here.
    pub(crate) fn of(reason: &Reason) -> ReasonClass {
        match reason {
            Reason::Timeout(_) => ReasonClass::Timeout,
            Reason::Refused | Reason::NoSocket | Reason::PermissionDenied => ReasonClass::Refused,
            Reason::Reset => ReasonClass::Reset,
            Reason::Closed => ReasonClass::Closed,
            Reason::Connect(..) | Reason::Io(..) => ReasonClass::Other,
            Reason::Dns(_) => ReasonClass::Dns,
            Reason::Http(reason) => match reason {
                HttpReason::Status(_) | HttpReason::Unexpected(..) => ReasonClass::Status,
                HttpReason::BodyNotFound(_) => ReasonClass::Body,
                HttpReason::Response(response::Error::BodyCut) => ReasonClass::Closed,
                HttpReason::Response(
                    response::Error::Invalid
                    | response::Error::HeadersTooLarge
                    | response::Error::UnsupportedTransferEncoding
                    | response::Error::TooManyTransferEncodings,
                ) => ReasonClass::Invalid,
                HttpReason::RedirectLimit | HttpReason::InvalidLocation | HttpReason::UnsupportedScheme => {
                    ReasonClass::Redirects
                }
            },
            Reason::Grpc(reason) => match reason {
                GrpcReason::Invalid => ReasonClass::Invalid,
                GrpcReason::Health(_) | GrpcReason::Status(..) | GrpcReason::GoAway | GrpcReason::StreamReset => {
                    ReasonClass::Grpc
                }
            },
            Reason::Tls(_) => ReasonClass::Tls,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReasonClass::Status => "status",
            ReasonClass::Body => "body",
            ReasonClass::Timeout => "timeout",
            ReasonClass::Refused => "refused",
            ReasonClass::Reset => "reset",
            ReasonClass::Closed => "closed",
            ReasonClass::Invalid => "invalid",
            ReasonClass::Redirects => "redirects",
            ReasonClass::Dns => "dns",
            ReasonClass::Grpc => "grpc",
            ReasonClass::Tls => "tls",
            ReasonClass::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well() {
        assert_eq!(Reason::Http(HttpReason::Status(503)).to_string(), "status 503");
        let unexpected = HttpReason::Unexpected(503, "200-299,401".into());
        assert_eq!(Reason::Http(unexpected).to_string(), "status 503 (expected 200-299,401)");
        let body = HttpReason::BodyNotFound("\\\"ready\\\"".into());
        assert_eq!(Reason::Http(body).to_string(), "body: \"\\\"ready\\\"\" not found");
        assert_eq!(Reason::Timeout(Duration::from_secs(3)).to_string(), "timeout after 3s");
        assert_eq!(Reason::Timeout(Duration::from_millis(1500)).to_string(), "timeout after 1.5s");
        assert_eq!(Reason::Timeout(Duration::from_nanos(876_543_211)).to_string(), "timeout after 876ms");
        assert_eq!(Reason::Timeout(Duration::from_secs(90)).to_string(), "timeout after 1m30s");
        assert_eq!(Reason::Timeout(Duration::from_micros(500)).to_string(), "timeout after 500us");
        let e = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert_eq!(Reason::from_io(&e, true).to_string(), "connect: No route to host");
        assert_eq!(Reason::Dns(DnsReason::NoSuchHost).to_string(), "dns: no such host");
        let unix = |code| Reason::from_unix_connect(&io::Error::from_raw_os_error(code)).to_string();
        assert_eq!(unix(libc::ENOENT), "no such socket");
        assert_eq!(unix(libc::EACCES), "permission denied");
        assert_eq!(unix(libc::ECONNREFUSED), "connection refused");
        assert_eq!(Reason::Tls(TlsReason::Alert(40)).to_string(), "tls: alert handshake failure");
        assert_eq!(Reason::Tls(TlsReason::Alert(200)).to_string(), "tls: alert 200");
        let not_tls = Reason::Tls(TlsReason::Handshake(TlsFailure::NotTls));
        assert_eq!(not_tls.to_string(), "tls: handshake failed: not a TLS server");
    }

    #[test]
    fn reason_classes() {
        use response::Error as E;
        let cases = [
            (Reason::Http(HttpReason::Status(503)), "status"),
            (Reason::Http(HttpReason::Unexpected(200, "401".into())), "status"),
            (Reason::Http(HttpReason::BodyNotFound("ok".into())), "body"),
            (Reason::Timeout(Duration::from_secs(1)), "timeout"),
            (Reason::Refused, "refused"),
            (Reason::NoSocket, "refused"),
            (Reason::PermissionDenied, "refused"),
            (Reason::Reset, "reset"),
            (Reason::Closed, "closed"),
            (Reason::from(E::BodyCut), "closed"),
            (Reason::from(E::Invalid), "invalid"),
            (Reason::from(E::HeadersTooLarge), "invalid"),
            (Reason::Http(HttpReason::RedirectLimit), "redirects"),
            (Reason::Http(HttpReason::InvalidLocation), "redirects"),
            (Reason::Http(HttpReason::UnsupportedScheme), "redirects"),
            (Reason::from(E::UnsupportedTransferEncoding), "invalid"),
            (Reason::from(E::TooManyTransferEncodings), "invalid"),
            (Reason::Connect(io::ErrorKind::Other, Some(libc::EHOSTUNREACH)), "other"),
            (Reason::Io(io::ErrorKind::Other, None), "other"),
            (Reason::Dns(DnsReason::Timeout), "dns"),
            (Reason::Grpc(GrpcReason::Invalid), "invalid"),
            (Reason::Grpc(GrpcReason::Health(2)), "grpc"),
            (Reason::Grpc(GrpcReason::Status(12, String::new())), "grpc"),
            (Reason::Grpc(GrpcReason::GoAway), "grpc"),
            (Reason::Grpc(GrpcReason::StreamReset), "grpc"),
            (Reason::Tls(TlsReason::Alert(40)), "tls"),
            (Reason::Tls(TlsReason::Handshake(TlsFailure::NotTls)), "tls"),
            (Reason::Tls(TlsReason::Record(TlsFailure::Decrypt)), "tls"),
        ];
        for (reason, want) in cases {
            assert_eq!(ReasonClass::of(&reason).as_str(), want, "{reason:?}");
        }
        // The label set is fixed and each class indexes its own counter.
        for (i, class) in ReasonClass::ALL.iter().enumerate() {
            assert_eq!(*class as usize, i);
        }
    }
}
