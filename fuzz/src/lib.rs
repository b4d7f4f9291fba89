//! Fuzzing healthcheck's parsers: the oracles the targets run, and a
//! mutator for the stable driver.

pub mod mutate;
pub mod oracles;

/// A fuzz target: an oracle, its name and its seeds.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: &'static [&'static [u8]],
    /// Inputs longer than this teach nothing new (heads are bounded).
    pub max_len: usize,
}

pub const TARGETS: [Target; 6] = [
    Target { name: "request", run: oracles::request, seeds: oracles::REQUEST_SEEDS, max_len: 9 * 1024 },
    Target { name: "response", run: oracles::response, seeds: oracles::RESPONSE_SEEDS, max_len: 20 * 1024 },
    Target { name: "cli", run: oracles::cli, seeds: oracles::CLI_SEEDS, max_len: 1024 },
    // A UDP answer is 1232 bytes at most; TCP ones are cut at 16 KiB.
    Target { name: "dns", run: oracles::dns, seeds: oracles::DNS_SEEDS, max_len: 2048 },
    // A header block may span frames up to its 16 KiB bound, and more.
    Target { name: "grpc", run: oracles::grpc, seeds: oracles::GRPC_SEEDS, max_len: 40 * 1024 },
    // A handshake message may take 64 KiB before it is refused.
    Target { name: "tls", run: oracles::tls, seeds: oracles::TLS_SEEDS, max_len: 72 * 1024 },
];
