//! cargo fuzz target: the DNS oracle of healthcheck_fuzz::oracles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| healthcheck_fuzz::oracles::dns(data));
