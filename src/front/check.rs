//! `healthcheck check`: one round of probes, the report on stdout, the exit
//! status from the verdicts.

use std::io::{self, Write as _};

use crate::front::cli::{CheckConfig, Output};
use crate::front::error::Error;
use crate::front::json;
use crate::front::report;
use crate::runtime::waiter::Waiter;

/// `healthcheck check`: one round; the report on stdout unless quiet.
/// Ok(true) when every check passed. A signal ends it as failed.
pub fn check(config: &CheckConfig) -> Result<bool, Error> {
    let mut driver = Waiter::new(&[libc::SIGTERM, libc::SIGINT])?;
    let Ok(verdicts) = driver.round(&config.checks, config.timeout, |_| true)? else {
        return Ok(false);
    };
    let mut out = Vec::new();
    let passed = match config.output {
        Output::Text => report::write_report(&mut out, config.checks.iter().zip(verdicts.iter().map(Some)), true),
        Output::Json => {
            let entries = config.checks.iter().zip(&verdicts).zip(driver.durations()).map(|((c, v), d)| json::Entry {
                name: &c.name,
                verdict: Some(v),
                duration: *d,
            });
            json::write_report(&mut out, entries, &[] as &[&str])
        }
    };
    if !config.quiet {
        // A closed stdout must not turn a verdict into a crash.
        let _ = io::stdout().lock().write_all(&out);
    }
    Ok(passed)
}
