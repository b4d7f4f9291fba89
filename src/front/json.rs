//! JSON verdicts (`/all?format=json`, `check --output json`), written by
//! hand: one small object, strings escaped for any text they may hold.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::verdict::Verdict;
use crate::wire::digits::{nanos, push_seconds};

pub(crate) const CONTENT_TYPE: &str = "application/json";

/// One check in a report.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub name: &'a str,
    /// None for a check the request excluded: `"status":"excluded"`, as
    /// the text report's `[+]NAME excluded: ok`.
    pub verdict: Option<&'a Verdict>,
    /// From the round's start to this verdict (not shown when excluded).
    pub duration: Duration,
}

/// Appends `{"status":"pass"|"fail","checks":[...]}` and, when there are
/// any, `"warnings":[...]`; then a newline. Returns whether every entry
/// passed (an empty report passes).
pub fn write_report<'a, I>(out: &mut Vec<u8>, entries: I, warnings: &[impl AsRef<str>]) -> bool
where
    I: Iterator<Item = Entry<'a>> + Clone,
{
    let passed = entries.clone().all(|e| e.verdict.is_none_or(Verdict::passed));
    out.extend_from_slice(if passed {
        b"{\"status\":\"pass\",\"checks\":["
    } else {
        b"{\"status\":\"fail\",\"checks\":["
    });
    for (i, entry) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_str(out, entry.name);
        match entry.verdict {
            None => {
                out.extend_from_slice(b",\"status\":\"excluded\"}");
                continue;
            }
            Some(Verdict::Pass) => out.extend_from_slice(b",\"status\":\"pass\""),
            Some(Verdict::Fail(reason)) => {
                out.extend_from_slice(b",\"status\":\"fail\",\"reason\":\"");
                let _ = write!(Escaper(out), "{reason}");
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"duration_seconds\":");
        push_seconds(out, nanos(entry.duration));
        out.push(b'}');
    }
    out.push(b']');
    if !warnings.is_empty() {
        out.extend_from_slice(b",\"warnings\":[");
        for (i, w) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, w.as_ref());
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}\n");
    passed
}

/// Appends `text` as a JSON string, quotes included.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_escaped(out, text);
    out.push(b'"');
}

/// The one place JSON string contents are escaped (RFC 8259 section 7):
/// the quote, the backslash and every control character. The rest of the
/// UTF-8 text is copied as it is.
fn push_escaped(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            b => out.push(b),
        }
    }
}

/// Escapes what `Display` writes, without a temporary string.
struct Escaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{HttpReason, Reason};

    fn report(entries: &[Entry<'_>], warnings: &[&str]) -> (bool, String) {
        let mut out = Vec::new();
        let passed = write_report(&mut out, entries.iter().copied(), warnings);
        (passed, String::from_utf8(out).unwrap())
    }

    #[test]
    fn escapes_any_text() {
        let cases = [
            ("app", r#""app""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("l1\nl2\r\t", r#""l1\nl2\r\t""#),
            ("\u{0}\u{1f}\u{7f}", r#""\u0000\u001f\u007f""#),
            ("é ✓ 𝄞", "\"é ✓ 𝄞\""),
            ("</script>", r#""</script>""#),
            ("", r#""""#),
        ];
        for (text, want) in cases {
            let mut out = Vec::new();
            push_str(&mut out, text);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn writes_the_issue_example() {
        let pass = Verdict::Pass;
        let fail = Verdict::Fail(Reason::Http(HttpReason::Status(503)));
        let entries = [
            Entry { name: "app", verdict: Some(&pass), duration: Duration::from_micros(2100) },
            Entry { name: "istio", verdict: Some(&fail), duration: Duration::from_micros(1300) },
            Entry { name: "db", verdict: None, duration: Duration::ZERO },
        ];
        assert_eq!(
            report(&entries, &[]),
            (
                false,
                concat!(
                    r#"{"status":"fail","checks":["#,
                    r#"{"name":"app","status":"pass","duration_seconds":0.0021},"#,
                    r#"{"name":"istio","status":"fail","reason":"status 503","duration_seconds":0.0013},"#,
                    r#"{"name":"db","status":"excluded"}]}"#,
                    "\n"
                )
                .into()
            )
        );
        assert!(report(&entries[..1], &[]).0);
        assert!(report(&entries[2..], &[]).0, "excluded checks do not fail a report");
        assert_eq!(
            report(&[], &["no \"x\""]),
            (true, "{\"status\":\"pass\",\"checks\":[],\"warnings\":[\"no \\\"x\\\"\"]}\n".into())
        );
    }
}
