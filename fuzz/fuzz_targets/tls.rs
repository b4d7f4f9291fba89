//! cargo fuzz target: the TLS glue oracle of healthcheck_fuzz::oracles (records in any split).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| healthcheck_fuzz::oracles::tls(data));
