//! Layer 5, the front-ends: the command line, the modes (`check`, `run`;
//! `serve` is `crate::serve`) and what they write (JSON, metrics, logs).

pub mod check;
pub mod cli;
pub mod error;
pub mod json;
pub mod log;
pub mod metrics;
pub mod report;
pub mod routes;
pub mod run;
