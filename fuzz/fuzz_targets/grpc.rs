//! cargo fuzz target: the gRPC oracle of healthcheck_fuzz::oracles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| healthcheck_fuzz::oracles::grpc(data));
