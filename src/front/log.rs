//! One logfmt line per event on stderr: `ts=... level=... event=... key=value`.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::text::write_escaped;

/// A log line under construction; it is written when dropped.
pub struct Line {
    buf: String,
}

/// Starts a line with the timestamp, level and event name.
pub(crate) fn line(level: &str, event: &str) -> Line {
    let mut buf = String::with_capacity(128);
    buf.push_str("ts=");
    write_timestamp(&mut buf, SystemTime::now());
    let _ = write!(buf, " level={level} event={event}");
    Line { buf }
}

pub(crate) fn info(event: &str) -> Line {
    line("info", event)
}

pub(crate) fn warn(event: &str) -> Line {
    line("warn", event)
}

pub fn error(event: &str) -> Line {
    line("error", event)
}

impl Line {
    /// Adds `key=value`, quoting and escaping the value when it needs it, so
    /// a check name or a reason can never forge a second line or field.
    pub fn kv(mut self, key: &str, value: impl fmt::Display) -> Line {
        self.buf.push(' ');
        self.buf.push_str(key);
        self.buf.push('=');
        let start = self.buf.len();
        let _ = write!(self.buf, "{value}");
        let raw = self.buf.split_off(start);
        push_value(&mut self.buf, &raw);
        self
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.buf.push('\n');
        // One write per line keeps lines whole; a closed stderr is not a
        // reason to stop answering probes.
        let _ = std::io::stderr().lock().write_all(self.buf.as_bytes());
    }
}

/// Appends a logfmt value: bare when it is plain, quoted with escapes when it
/// holds spaces, quotes, `=` or anything that is not printable ASCII.
pub(crate) fn push_value(out: &mut String, raw: &str) {
    let plain = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        out.push_str(raw);
        return;
    }
    out.push('"');
    let _ = write_escaped(out, raw, '"');
    out.push('"');
}

/// RFC 3339 UTC with milliseconds, computed by hand to keep chrono out.
fn write_timestamp(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    );
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
        let mut s = String::new();
        write_timestamp(&mut s, UNIX_EPOCH + Duration::from_millis(1_795_705_200_123));
        assert_eq!(s, "2026-11-26T15:00:00.123Z");
    }

    #[test]
    fn values_are_escaped() {
        let cases = [
            ("app", "app"),
            ("status 503", "\"status 503\""),
            ("a=b", "\"a=b\""),
            ("x\ny=1", "\"x\\ny=1\""),
            ("q\"", "\"q\\\"\""),
            ("", "\"\""),
            ("\u{e9}", "\"\u{e9}\""),
            ("a\u{1}\u{202e}", "\"a\\x01\\u202e\""),
        ];
        for (raw, want) in cases {
            let mut out = String::new();
            push_value(&mut out, raw);
            assert_eq!(out, want, "{raw:?}");
        }
    }
}
