//! Size measurement only (benches/size/tls/measure puts this in place of src/tls/verify.rs for
//! its "signatures" build): the verifier as Go's with InsecureSkipVerify, which accepts any
//! certificate but checks the handshake's signature (ECDSA P-256/P-384 over RustCrypto, RSA
//! PKCS#1 v1.5 and PSS over the rsa crate), to price that check.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use sha2::{Digest, Sha256, Sha384, Sha512};

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug)]
enum Algorithm {
    Ecdsa { p384: bool, hash: Hash },
    Pkcs1(Hash),
    Pss(Hash),
}

fn digest(hash: Hash, msg: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha256 => Sha256::digest(msg).to_vec(),
        Hash::Sha384 => Sha384::digest(msg).to_vec(),
        Hash::Sha512 => Sha512::digest(msg).to_vec(),
    }
}

impl SignatureVerificationAlgorithm for Algorithm {
    fn verify_signature(&self, key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), InvalidSignature> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        use rsa::pkcs1::DecodeRsaPublicKey;
        let ok = match *self {
            Algorithm::Ecdsa { p384: false, hash } => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| InvalidSignature)?;
                let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&digest(hash, msg), &sig).is_ok()
            }
            Algorithm::Ecdsa { p384: true, hash } => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| InvalidSignature)?;
                let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&digest(hash, msg), &sig).is_ok()
            }
            Algorithm::Pkcs1(hash) | Algorithm::Pss(hash) => {
                let key = rsa::RsaPublicKey::from_pkcs1_der(key).map_err(|_| InvalidSignature)?;
                let d = digest(hash, msg);
                match (self, hash) {
                    (Algorithm::Pkcs1(_), Hash::Sha256) => key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &d, sig),
                    (Algorithm::Pkcs1(_), Hash::Sha384) => key.verify(rsa::Pkcs1v15Sign::new::<Sha384>(), &d, sig),
                    (Algorithm::Pkcs1(_), Hash::Sha512) => key.verify(rsa::Pkcs1v15Sign::new::<Sha512>(), &d, sig),
                    (_, Hash::Sha256) => key.verify(rsa::Pss::new::<Sha256>(), &d, sig),
                    (_, Hash::Sha384) => key.verify(rsa::Pss::new::<Sha384>(), &d, sig),
                    (_, Hash::Sha512) => key.verify(rsa::Pss::new::<Sha512>(), &d, sig),
                }
                .is_ok()
            }
        };
        ok.then_some(()).ok_or(InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self {
            Algorithm::Ecdsa { p384: false, .. } => alg_id::ECDSA_P256,
            Algorithm::Ecdsa { .. } => alg_id::ECDSA_P384,
            _ => alg_id::RSA_ENCRYPTION,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match *self {
            Algorithm::Ecdsa { hash: Hash::Sha256, .. } => alg_id::ECDSA_SHA256,
            Algorithm::Ecdsa { .. } => alg_id::ECDSA_SHA384,
            Algorithm::Pkcs1(Hash::Sha256) => alg_id::RSA_PKCS1_SHA256,
            Algorithm::Pkcs1(Hash::Sha384) => alg_id::RSA_PKCS1_SHA384,
            Algorithm::Pkcs1(Hash::Sha512) => alg_id::RSA_PKCS1_SHA512,
            Algorithm::Pss(Hash::Sha256) => alg_id::RSA_PSS_SHA256,
            Algorithm::Pss(Hash::Sha384) => alg_id::RSA_PSS_SHA384,
            Algorithm::Pss(Hash::Sha512) => alg_id::RSA_PSS_SHA512,
        }
    }
}

static P256_SHA256: Algorithm = Algorithm::Ecdsa { p384: false, hash: Hash::Sha256 };
static P256_SHA384: Algorithm = Algorithm::Ecdsa { p384: false, hash: Hash::Sha384 };
static P384_SHA256: Algorithm = Algorithm::Ecdsa { p384: true, hash: Hash::Sha256 };
static P384_SHA384: Algorithm = Algorithm::Ecdsa { p384: true, hash: Hash::Sha384 };
static PKCS1_SHA256: Algorithm = Algorithm::Pkcs1(Hash::Sha256);
static PKCS1_SHA384: Algorithm = Algorithm::Pkcs1(Hash::Sha384);
static PKCS1_SHA512: Algorithm = Algorithm::Pkcs1(Hash::Sha512);
static PSS_SHA256: Algorithm = Algorithm::Pss(Hash::Sha256);
static PSS_SHA384: Algorithm = Algorithm::Pss(Hash::Sha384);
static PSS_SHA512: Algorithm = Algorithm::Pss(Hash::Sha512);

pub(crate) static ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        &P256_SHA256,
        &P256_SHA384,
        &P384_SHA256,
        &P384_SHA384,
        &PKCS1_SHA256,
        &PKCS1_SHA384,
        &PKCS1_SHA512,
        &PSS_SHA256,
        &PSS_SHA384,
        &PSS_SHA512,
    ],
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[&P384_SHA384, &P256_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[&P256_SHA256, &P384_SHA256]),
        (SignatureScheme::RSA_PSS_SHA512, &[&PSS_SHA512]),
        (SignatureScheme::RSA_PSS_SHA384, &[&PSS_SHA384]),
        (SignatureScheme::RSA_PSS_SHA256, &[&PSS_SHA256]),
        (SignatureScheme::RSA_PKCS1_SHA512, &[&PKCS1_SHA512]),
        (SignatureScheme::RSA_PKCS1_SHA384, &[&PKCS1_SHA384]),
        (SignatureScheme::RSA_PKCS1_SHA256, &[&PKCS1_SHA256]),
    ],
};

/// Any certificate, but a valid handshake signature by its key.
#[derive(Debug)]
pub(crate) struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &ALGORITHMS)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &ALGORITHMS)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ALGORITHMS.supported_schemes()
    }
}
