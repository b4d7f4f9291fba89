/// Size measurement only (benches/size/tls/measure appends this for its ring build): ring's provider cut to
/// the suites and groups of provider.rs.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as s, default_provider, kx_group};
    let _ = provider::provider;
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            s::TLS13_AES_128_GCM_SHA256,
            s::TLS13_AES_256_GCM_SHA384,
            s::TLS13_CHACHA20_POLY1305_SHA256,
            s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            s::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            s::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            s::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: verify::ALGORITHMS,
        ..default_provider()
    }
}
