//! healthcheck: aggregated readiness for Kubernetes pods, on one mio loop.
//! The modules are layers, bottom up: `wire` (bytes), `verdict` and
//! `check` (the model), `probe` and `resolver` (sans-IO machines),
//! `runtime` (mio), `front` and `serve` (the modes); a layer never imports
//! one above it (tests/layers.rs checks it, ARCHITECTURE.md draws it).
//! The binary is `src/main.rs`.

#![deny(rust_2018_idioms)]

pub mod check;
pub mod front;
pub(crate) mod inbound;
pub mod probe;
pub mod resolver;
pub(crate) mod runtime;
pub mod serve;
#[cfg(feature = "tls")]
pub mod tls;
pub mod verdict;
pub mod wire;
