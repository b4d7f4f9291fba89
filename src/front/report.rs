//! The text report of `/all`, `/all/NAME` and `check`: kube-apiserver's
//! `[+]NAME ok` / `[-]NAME failed: REASON` / `[+]NAME excluded: ok` lines
//! and the summary line.

use crate::check::Check;
use crate::verdict::Verdict;

/// `[+]NAME ok` or `[-]NAME failed: REASON`.
pub(crate) fn write_line(out: &mut Vec<u8>, check: &Check, verdict: &Verdict) {
    use std::io::Write as _;
    let _ = match verdict {
        Verdict::Pass => writeln!(out, "[+]{} ok", check.name),
        Verdict::Fail(reason) => writeln!(out, "[-]{} failed: {reason}", check.name),
    };
}

/// Writes the apiserver-style lines, `[+]NAME ok` / `[-]NAME failed:
/// REASON`, and for a check the request excluded (its verdict None)
/// `[+]NAME excluded: ok`, as kube-apiserver's `/readyz?verbose&exclude=`
/// lists it, in the checks' order; then the summary line. Only the failed
/// ones are listed unless `verbose` (kube-apiserver's plain `ok`). Returns
/// whether every check reported on passed.
pub fn write_report<'a>(
    out: &mut Vec<u8>,
    results: impl Iterator<Item = (&'a Check, Option<&'a Verdict>)>,
    verbose: bool,
) -> bool {
    use std::io::Write as _;
    let mut all_passed = true;
    for (check, verdict) in results {
        match verdict {
            None if verbose => {
                let _ = writeln!(out, "[+]{} excluded: ok", check.name);
            }
            None => {}
            Some(verdict) => {
                all_passed &= verdict.passed();
                if verbose || !verdict.passed() {
                    write_line(out, check, verdict);
                }
            }
        }
    }
    out.extend_from_slice(match (all_passed, verbose) {
        (false, _) => b"some checks failed\n".as_slice(),
        (true, true) => b"all checks passed\n",
        (true, false) => b"ok\n",
    });
    all_passed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{HttpReason, Reason};

    #[test]
    fn reports() {
        let checks = [Check::parse("a=http://x/").unwrap(), Check::parse("b=http://x/").unwrap()];
        let verdicts = [Verdict::Pass, Verdict::Fail(Reason::Http(HttpReason::Status(503)))];
        let report = |verbose, excluded: &[usize]| {
            let mut out = Vec::new();
            let results = checks.iter().zip(&verdicts).enumerate();
            let results = results.map(|(i, (c, v))| (c, Some(v).filter(|_| !excluded.contains(&i))));
            let ok = write_report(&mut out, results, verbose);
            (ok, String::from_utf8(out).unwrap())
        };
        assert_eq!(report(false, &[]), (false, "[-]b failed: status 503\nsome checks failed\n".into()));
        assert_eq!(report(true, &[]), (false, "[+]a ok\n[-]b failed: status 503\nsome checks failed\n".into()));
        assert_eq!(report(false, &[1]), (true, "ok\n".into()));
        assert_eq!(report(true, &[1]), (true, "[+]a ok\n[+]b excluded: ok\nall checks passed\n".into()));
        assert_eq!(
            report(true, &[0]),
            (false, "[+]a excluded: ok\n[-]b failed: status 503\nsome checks failed\n".into())
        );
        assert_eq!(report(false, &[0]), (false, "[-]b failed: status 503\nsome checks failed\n".into()));
    }
}
