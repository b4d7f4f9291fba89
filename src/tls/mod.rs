//! The TLS client under an `https://` or `grpcs://` probe: a sans-IO rustls connection, no certificate checks.
//!
//! As kubelet's HTTPS probe (`InsecureSkipVerify`): any certificate passes (self-signed, expired,
//! another name, unknown CA). TLS 1.2 and 1.3; the suites and groups are in `provider.rs`. SNI is
//! sent for a host name, never for an IP literal; ALPN offers `http/1.1` or `h2`.
//!
//! The surface is a probe machine's: ciphertext from the socket in ([`Client::receive`], and
//! [`Client::receive_eof`] when the socket reads 0), ciphertext to send out
//! ([`Client::transmit`] into the socket or any writer, while [`Client::wants_write`]), plaintext
//! in ([`Client::send`]) and out ([`Client::read`]). Nothing here touches a socket or the clock: the
//! probe's deadline covers the handshake because the caller stops driving it. After an error, one
//! more [`Client::transmit`] sends the alert rustls queued for the server (as Go's client does);
//! then close the socket.
//!
//! Memory one connection holds, bounded (the heap `tests/tls.rs` counts against `openssl
//! s_server`, x86_64): 2.2 KiB once created (the ClientHello queued), at most 9.1 KiB during the
//! handshake, 7.1 to 7.9 KiB once established (keys, buffers), at most 16 KiB while a response of
//! many records is read. The parts and their limits:
//! - the record reader: grows 4 KiB per read up to one record (18 KiB); up to 64 KiB only while
//!   the server sends one handshake message (its certificate chain) larger than a record, then
//!   shrunk again; a larger message fails the handshake (`message too large`);
//! - received plaintext: at most one record (16 KiB), since [`Client::receive`] stops feeding
//!   records while plaintext waits to be read;
//! - plaintext and records to send: at most [`SEND_LIMIT`] bytes of each (a request is far less);
//! - the config ([`config`]) is shared by every connection, built once per ALPN.
//!
//! So one connection holds at most about 43 KiB (8 KiB of state, a full record read, a full record
//! of plaintext unread; a request is well under 1 KiB), 89 KiB while a server sends a handshake
//! message over a record; measured, 7.5 KiB once connected and 16 KiB reading: 1,000 HTTPS checks
//! in one round need about 8 to 16 MiB, not 1,000 x 64 KiB.

mod provider;
mod verify;

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

pub use crate::verdict::{TlsFailure as Failure, TlsReason as TlsError};

/// The most plaintext, and separately the most records, one connection holds unsent: one full
/// record. A probe's request is far smaller; a larger one goes out as the socket drains.
pub const SEND_LIMIT: usize = 16 * 1024;

/// The protocol offered in ALPN (RFC 7301).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `http/1.1`, as kubelet's HTTPS probe (Go's `net/http` offers it for HTTP/1-only transports).
    Http1,
    /// `h2`, as gRPC over TLS requires (gRPC's HTTP/2 transport spec).
    H2,
}

impl Alpn {
    fn protocol(self) -> &'static [u8] {
        match self {
            Alpn::Http1 => b"http/1.1",
            Alpn::H2 => b"h2",
        }
    }
}

/// The client configuration for `alpn`, built once and shared by every connection.
pub fn config(alpn: Alpn) -> Arc<ClientConfig> {
    static HTTP1: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static H2: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let cell = match alpn {
        Alpn::Http1 => &HTTP1,
        Alpn::H2 => &H2,
    };
    Arc::clone(cell.get_or_init(|| Arc::new(build_config(alpn))))
}

fn build_config(alpn: Alpn) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider::provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        // The provider is a constant; a unit test builds both configs.
        .expect("the built-in provider offers TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verify::AnyCertificate))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.protocol().to_vec()];
    // Every probe is a new connection, as kubelet's (Go keeps no session cache unless asked): no
    // tickets to store, no state shared between checks.
    config.resumption = Resumption::disabled();
    config
}

/// One TLS client connection, driven by the caller's socket.
pub struct Client {
    conn: ClientConnection,
}

/// What [`Client::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// This many plaintext bytes were copied out.
    Data(usize),
    /// No plaintext now: feed more records.
    Pending,
    /// The server closed: by `close_notify`, or the socket's end after the handshake.
    Closed,
}

impl Client {
    /// A client for `host` as the URL writes it (a name, an IPv4 literal or a bracketed or bare
    /// IPv6 literal), offering `alpn`. The ClientHello is ready to [`transmit`](Client::transmit).
    pub fn new(host: &str, alpn: Alpn) -> Result<Client, TlsError> {
        let mut conn = ClientConnection::new(config(alpn), server_name(host))
            .map_err(|_| TlsError::Handshake(Failure::Internal))?;
        conn.set_buffer_limit(Some(SEND_LIMIT));
        Ok(Client { conn })
    }

    /// Feeds ciphertext read from the socket; returns how many bytes were taken. It stops early
    /// while plaintext waits to be [`read`](Client::read) (that bounds the plaintext held): read
    /// it, then feed the rest. Records may be split anywhere.
    pub fn receive(&mut self, mut bytes: &[u8]) -> Result<usize, TlsError> {
        let total = bytes.len();
        while !bytes.is_empty() {
            match self.conn.read_tls(&mut bytes) {
                // close_notify was seen: nothing more is read, the rest is ignored.
                Ok(0) => return Ok(total),
                Ok(_) => {}
                // The record buffer is full: a handshake message over 64 KiB, or plaintext left
                // unread (receive stops before that).
                Err(_) => return Err(self.failure(Failure::TooLarge)),
            }
            let state = self.conn.process_new_packets().map_err(|e| self.error(&e))?;
            if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                break;
            }
        }
        Ok(total - bytes.len())
    }

    /// The socket read its end. During the handshake that fails the connection.
    pub fn receive_eof(&mut self) -> Result<(), TlsError> {
        // An empty read is how rustls learns of the end.
        let _ = self.conn.read_tls(&mut io::empty());
        self.conn.process_new_packets().map_err(|e| self.error(&e))?;
        match self.conn.is_handshaking() {
            true => Err(TlsError::Handshake(Failure::Closed)),
            false => Ok(()),
        }
    }

    /// Whether records wait to be sent (the ClientHello at first, then the handshake's answers,
    /// the request, alerts).
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes waiting records into `out` until it would block or none is left; returns how many
    /// bytes went. `WouldBlock` is not an error: [`wants_write`](Client::wants_write) stays true.
    pub fn transmit(&mut self, out: &mut dyn io::Write) -> io::Result<usize> {
        let mut sent = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Queues plaintext (the request) to be encrypted and sent, after the handshake if it is
    /// still running; returns how much was taken, less than `plaintext` when [`SEND_LIMIT`] is
    /// reached: transmit, then send the rest.
    pub fn send(&mut self, plaintext: &[u8]) -> usize {
        // Writing into rustls's buffer cannot fail; at its limit it takes 0 bytes.
        self.conn.writer().write(plaintext).unwrap_or(0)
    }

    /// Copies received plaintext into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Read, TlsError> {
        match self.conn.reader().read(buf) {
            Ok(0) if !buf.is_empty() => Ok(Read::Closed),
            Ok(n) => Ok(Read::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read::Pending),
            // The socket ended without close_notify. Go accepts that at a record boundary (as
            // popular servers do it); rustls cannot tell a cut record from a boundary here, and
            // the HTTP layer above sees a short body anyway.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Read::Closed),
            Err(_) => Err(self.failure(Failure::Invalid)),
        }
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The protocol the server chose by ALPN, if it chose one.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Queues a `close_notify` alert (then transmit it), as Go's `Close` sends one.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }

    fn failure(&self, failure: Failure) -> TlsError {
        match self.conn.is_handshaking() {
            true => TlsError::Handshake(failure),
            false => TlsError::Record(failure),
        }
    }

    fn error(&self, error: &rustls::Error) -> TlsError {
        use rustls::{Error as E, InvalidMessage as M};
        let failure = match error {
            E::AlertReceived(alert) => return TlsError::Alert(u8::from(*alert)),
            E::InvalidMessage(M::InvalidContentType | M::UnknownProtocolVersion) if self.conn.is_handshaking() => {
                Failure::NotTls
            }
            E::InvalidMessage(M::MessageTooLarge | M::HandshakePayloadTooLarge | M::CertificatePayloadTooLarge)
            | E::PeerSentOversizedRecord => Failure::TooLarge,
            E::InvalidMessage(_) => Failure::Invalid,
            E::PeerIncompatible(_) => Failure::Incompatible,
            E::DecryptError => Failure::Decrypt,
            E::PeerMisbehaved(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
                Failure::Misbehaved
            }
            _ => Failure::Internal,
        };
        self.failure(failure)
    }
}

/// rustls sends SNI for a DNS name only. An IP literal, or a host rustls does not take as a DNS
/// name (Go would send it as written), goes as an address, so no SNI; the name serves nothing else
/// here (no verification, no resumption).
fn server_name(host: &str) -> ServerName<'static> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    ServerName::try_from(bare.to_owned()).unwrap_or(ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into()))
}

#[cfg(test)]
mod tests;
