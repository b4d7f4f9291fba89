//! The client against a rustls server in memory (ring, test-only), every byte handed over by hand.

use std::sync::Arc;

use rustls::crypto::ring as server_crypto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, SupportedCipherSuite, SupportedProtocolVersion};

use super::*;

/// A self-signed certificate for another name than the one the client asks for.
fn certificate(alg: &'static rcgen::SignatureAlgorithm) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate_for(alg).expect("key");
    let cert =
        rcgen::CertificateParams::new(vec!["elsewhere.test".into()]).expect("params").self_signed(&key).expect("cert");
    (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
}

struct ServerSpec {
    alg: &'static rcgen::SignatureAlgorithm,
    version: &'static SupportedProtocolVersion,
    suite: Option<SupportedCipherSuite>,
    group: Option<&'static dyn rustls::crypto::SupportedKxGroup>,
}

impl ServerSpec {
    fn new(version: &'static SupportedProtocolVersion) -> ServerSpec {
        ServerSpec { alg: &rcgen::PKCS_ECDSA_P256_SHA256, version, suite: None, group: None }
    }

    fn config(&self) -> Arc<ServerConfig> {
        // Deprecated for lacking post-quantum groups, which the client does not offer anyway.
        #[allow(deprecated)]
        let mut provider = server_crypto::default_provider();
        if let Some(suite) = self.suite {
            provider.cipher_suites = vec![suite];
        }
        if let Some(group) = self.group {
            provider.kx_groups = vec![group];
        }
        let (cert, key) = certificate(self.alg);
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[self.version])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A client and a server joined in memory.
struct Pair {
    client: Client,
    server: ServerConnection,
    /// Plaintext the client has read.
    received: Vec<u8>,
}

impl Pair {
    fn new(host: &str, alpn: Alpn, server: &ServerSpec) -> Pair {
        Pair {
            client: Client::new(host, alpn).expect("client"),
            server: ServerConnection::new(server.config()).expect("server"),
            received: Vec::new(),
        }
    }

    fn client_to_server(&mut self) -> Result<(), rustls::Error> {
        let mut bytes = Vec::new();
        self.client.transmit(&mut bytes).expect("transmit into a Vec");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            self.server.read_tls(&mut rest).expect("server read");
            self.server.process_new_packets()?;
        }
        Ok(())
    }

    fn server_output(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        while self.server.wants_write() {
            self.server.write_tls(&mut bytes).expect("write into a Vec");
        }
        bytes
    }

    /// Feeds `bytes` to the client in pieces of the given sizes (the rest as one), reading
    /// plaintext as it comes.
    fn feed(&mut self, bytes: &[u8], pieces: impl IntoIterator<Item = usize>) -> Result<(), TlsError> {
        let mut rest = bytes;
        let mut pieces = pieces.into_iter();
        while !rest.is_empty() {
            let n = pieces.next().unwrap_or(rest.len()).min(rest.len());
            let (piece, tail) = rest.split_at(n);
            self.feed_piece(piece)?;
            rest = tail;
        }
        Ok(())
    }

    fn feed_piece(&mut self, mut piece: &[u8]) -> Result<(), TlsError> {
        loop {
            let taken = self.client.receive(piece)?;
            piece = &piece[taken..];
            let mut buf = [0; 1024];
            while let Read::Data(n) = self.client.read(&mut buf)? {
                self.received.extend_from_slice(&buf[..n]);
            }
            if piece.is_empty() {
                return Ok(());
            }
        }
    }

    /// Runs the handshake, the server's flights fed in pieces of the given sizes.
    fn handshake_in(&mut self, pieces: impl Fn() -> Box<dyn Iterator<Item = usize>>) -> Result<(), TlsError> {
        for _ in 0..4 {
            self.client_to_server().map_err(|e| panic!("server: {e}"))?;
            let flight = self.server_output();
            self.feed(&flight, pieces())?;
        }
        assert!(!self.client.is_handshaking(), "handshake done after two round trips");
        assert!(!self.server.is_handshaking());
        Ok(())
    }

    fn handshake(&mut self) -> Result<(), TlsError> {
        self.handshake_in(|| Box::new(std::iter::empty()))
    }

    /// The client sends a request, the server answers and closes; returns what each side read.
    fn exchange(&mut self, request: &[u8], response: &[u8]) -> (Vec<u8>, Vec<u8>) {
        assert_eq!(self.client.send(request), request.len());
        self.client_to_server().expect("server reads the request");
        let mut got = vec![0; request.len()];
        std::io::Read::read_exact(&mut self.server.reader(), &mut got).expect("server plaintext");
        self.server.writer().write_all(response).expect("server writes");
        self.server.send_close_notify();
        let bytes = self.server_output();
        self.feed(&bytes, []).expect("client reads the response");
        assert_eq!(self.client.read(&mut [0; 16]), Ok(Read::Closed));
        (got, std::mem::take(&mut self.received))
    }
}

const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn one_config_per_alpn_built_once() {
    assert!(Arc::ptr_eq(&config(Alpn::Http1), &config(Alpn::Http1)));
    assert!(Arc::ptr_eq(&config(Alpn::H2), &config(Alpn::H2)));
    assert!(!Arc::ptr_eq(&config(Alpn::Http1), &config(Alpn::H2)));
    assert_eq!(config(Alpn::Http1).alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert_eq!(config(Alpn::H2).alpn_protocols, vec![b"h2".to_vec()]);
}

#[test]
fn every_suite_of_both_versions_with_any_certificate() {
    use server_crypto::cipher_suite::*;
    let cases = [
        (&rustls::version::TLS13, TLS13_AES_128_GCM_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256),
        (&rustls::version::TLS13, TLS13_AES_256_GCM_SHA384, &rcgen::PKCS_ECDSA_P384_SHA384),
        (&rustls::version::TLS13, TLS13_CHACHA20_POLY1305_SHA256, &rcgen::PKCS_ED25519),
        (&rustls::version::TLS12, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256),
        (&rustls::version::TLS12, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, &rcgen::PKCS_ECDSA_P384_SHA384),
        (&rustls::version::TLS12, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256),
    ];
    for (version, suite, alg) in cases {
        let spec = ServerSpec { alg, version, suite: Some(suite), group: None };
        let mut pair = Pair::new("app.test", Alpn::Http1, &spec);
        pair.handshake().unwrap_or_else(|e| panic!("{suite:?}: {e}"));
        assert_eq!(pair.server.negotiated_cipher_suite(), Some(suite));
        assert_eq!(pair.exchange(REQUEST, RESPONSE), (REQUEST.to_vec(), RESPONSE.to_vec()), "{suite:?}");
    }
}

#[test]
fn every_key_exchange_group() {
    let groups =
        [server_crypto::kx_group::X25519, server_crypto::kx_group::SECP256R1, server_crypto::kx_group::SECP384R1];
    for group in groups {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let spec = ServerSpec { group: Some(group), ..ServerSpec::new(version) };
            let mut pair = Pair::new("app.test", Alpn::Http1, &spec);
            pair.handshake().unwrap_or_else(|e| panic!("{group:?} {version:?}: {e}"));
            assert_eq!(pair.exchange(REQUEST, RESPONSE).1, RESPONSE);
        }
    }
}

#[test]
fn sni_for_a_name_none_for_an_ip_literal() {
    let spec = ServerSpec::new(&rustls::version::TLS13);
    for (host, sni) in [
        ("app.test", Some("app.test")),
        ("localhost", Some("localhost")),
        ("127.0.0.1", None),
        ("[::1]", None),
        ("::1", None),
        // Not a name rustls can send: no SNI rather than no connection.
        ("bad name", None),
    ] {
        let mut pair = Pair::new(host, Alpn::Http1, &spec);
        pair.handshake().expect("handshake");
        assert_eq!(pair.server.server_name(), sni, "{host}");
    }
}

#[test]
fn alpn_offers_http1_or_h2() {
    for (alpn, proto) in [(Alpn::Http1, &b"http/1.1"[..]), (Alpn::H2, &b"h2"[..])] {
        let mut pair = Pair::new("app.test", alpn, &ServerSpec::new(&rustls::version::TLS13));
        pair.handshake().expect("handshake");
        assert_eq!(pair.client.alpn_protocol(), Some(proto));
    }
}

/// Every split point of the server's flights: each one fed a byte at a time.
#[test]
fn handshake_fed_one_byte_at_a_time() {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut pair = Pair::new("app.test", Alpn::Http1, &ServerSpec::new(version));
        pair.handshake_in(|| Box::new(std::iter::repeat(1))).expect("handshake");
        assert_eq!(pair.exchange(REQUEST, RESPONSE).1, RESPONSE);
    }
}

/// Records after the handshake (three of them, one over 16 KiB of plaintext) split in two at
/// every byte boundary, and in pieces of pseudo-random sizes.
#[test]
fn records_split_at_every_byte_boundary() {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut pair = Pair::new("app.test", Alpn::Http1, &ServerSpec::new(version));
        pair.handshake().expect("handshake");
        let small = b"HTTP/1.1 200 OK\r\n\r\nok";
        // The records are the same length each time (only the sequence number changes).
        let mut k = 0;
        loop {
            pair.server.writer().write_all(&small[..]).expect("server writes");
            pair.server.writer().write_all(b"second record").expect("server writes");
            let bytes = pair.server_output();
            pair.feed(&bytes, [k]).expect("split records");
            assert_eq!(pair.received, [&small[..], b"second record"].concat(), "split at {k}");
            pair.received.clear();
            k += 1;
            if k > bytes.len() {
                break;
            }
        }
        let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut seed = 0x2545_f491_u32;
        for _ in 0..20 {
            pair.server.writer().write_all(&big).expect("server writes");
            let bytes = pair.server_output();
            let sizes: Vec<usize> = (0..bytes.len())
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    1 + seed as usize % 3000
                })
                .collect();
            pair.feed(&bytes, sizes).expect("random pieces");
            assert!(pair.received == big, "40,000 bytes in random pieces");
            pair.received.clear();
        }
    }
}

#[test]
fn a_plain_http_server_is_not_tls() {
    let mut client = Client::new("app.test", Alpn::Http1).expect("client");
    let err = client.receive(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").unwrap_err();
    assert_eq!(err, TlsError::Handshake(Failure::NotTls));
    assert_eq!(err.to_string(), "tls: handshake failed: not a TLS server");
}

#[test]
fn a_close_during_the_handshake_fails_it() {
    let mut client = Client::new("app.test", Alpn::Http1).expect("client");
    assert!(client.wants_write(), "the ClientHello is ready");
    assert!(client.is_handshaking());
    let err = client.receive_eof().unwrap_err();
    assert_eq!(err.to_string(), "tls: handshake failed: closed by server");
}

#[test]
fn an_alert_is_named() {
    // The server speaks only h2, the client offers http/1.1: it refuses with no_application_protocol.
    let spec = ServerSpec::new(&rustls::version::TLS13);
    let mut config = (*spec.config()).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut pair = Pair::new("app.test", Alpn::Http1, &spec);
    pair.server = ServerConnection::new(Arc::new(config)).expect("server");
    assert!(pair.client_to_server().is_err());
    let alert = pair.server_output();
    let err = pair.feed(&alert, []).unwrap_err();
    assert_eq!(err, TlsError::Alert(120));
    assert_eq!(err.to_string(), "tls: alert no application protocol");
    assert_eq!(TlsError::Alert(40).to_string(), "tls: alert handshake failure");
    assert_eq!(TlsError::Alert(116).to_string(), "tls: alert certificate required");
    assert_eq!(TlsError::Alert(200).to_string(), "tls: alert 200");
}

#[test]
fn oversized_records_and_messages_fail_at_once() {
    // A record header claiming 64 KiB, more than a record may hold.
    let mut client = Client::new("app.test", Alpn::Http1).expect("client");
    let err = client.receive(&[0x16, 0x03, 0x03, 0xff, 0xff]).unwrap_err();
    assert_eq!(err.to_string(), "tls: handshake failed: message too large");
    // A handshake message claiming 16 MiB inside a small record.
    let mut client = Client::new("app.test", Alpn::Http1).expect("client");
    let err = client.receive(&[0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(err, TlsError::Handshake(Failure::TooLarge));
}

#[test]
fn garbage_after_the_server_hello_fails() {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut pair = Pair::new("app.test", Alpn::Http1, &ServerSpec::new(version));
        pair.client_to_server().expect("hello");
        let flight = pair.server_output();
        // The ServerHello alone (its record), then an application-data record of garbage.
        let hello_len = 5 + usize::from(u16::from_be_bytes([flight[3], flight[4]]));
        pair.feed(&flight[..hello_len], []).expect("server hello");
        let err = pair.feed(
            &[
                0x17, 0x03, 0x03, 0x00, 0x20, 0xaa, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            [],
        );
        let err = err.unwrap_err();
        assert!(matches!(err, TlsError::Handshake(_)), "{version:?}: {err}");
    }
}

#[test]
fn plaintext_waits_are_bounded_to_one_record() {
    let mut pair = Pair::new("app.test", Alpn::Http1, &ServerSpec::new(&rustls::version::TLS13));
    pair.handshake().expect("handshake");
    pair.server.writer().write_all(&[7; 50_000]).expect("server writes");
    let bytes = pair.server_output();
    // Fed without reading: the client takes one record and stops.
    let taken = pair.client.receive(&bytes).expect("receive");
    // At most one record's worth of ciphertext (16 KiB + 2 KiB of overhead + the header).
    assert!(taken <= 16 * 1024 + 2048 + 5, "took {taken} of {}", bytes.len());
    pair.feed(&bytes[taken..], []).expect("the rest");
    assert!(pair.received == [7; 50_000], "50,000 bytes");
}
