//! Text people write and read: durations parsed from and shown in their
//! command-line form, arguments and log values escaped onto one line, and
//! the one percent-decoder.

use std::fmt;
use std::time::Duration;

/// Writes `raw` for showing between two `quote`s on one line, as the user
/// typed it: UTF-8 as is; the quote and `\` escaped with a backslash; tab,
/// CR and LF as `\t`, `\r`, `\n`; other control characters and the
/// invisible ones that could hide or reorder text (see [`hidden`]) as Go's
/// `%q` writes them, `\x01`, `\u202e`. The one escaper of the text the
/// program writes to stderr: log values and usage errors.
pub(crate) fn write_escaped(out: &mut impl fmt::Write, raw: &str, quote: char) -> fmt::Result {
    for c in raw.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c == quote => write!(out, "\\{c}")?,
            c if c < '\u{80}' && c.is_control() => write!(out, "\\x{:02x}", c as u32)?,
            c if c.is_control() || hidden(c) => match c as u32 {
                n @ ..=0xffff => write!(out, "\\u{n:04x}")?,
                n => write!(out, "\\U{n:08x}")?,
            },
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Characters that show as nothing or as a plain space, or that reorder
/// the text around them: spaces other than U+0020, zero-width and bidi
/// controls, line and paragraph separators, the byte-order mark, tags.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{a0}' | '\u{ad}' | '\u{61c}' | '\u{1680}' | '\u{180e}'
        | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}' | '\u{205f}'..='\u{206f}'
        | '\u{3000}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// An argument as a usage error shows it between single quotes, escaped.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, '\'')
    }
}

/// A duration in its canonical command-line form, which parses back to the
/// same value: `1h`, `1m30s`, `1.5s`, `500ms`, `2.5us`, `0s`. Zero parts are
/// left out (`1h`, not Go's `1h0m0s`); below a second the largest unit that
/// keeps a whole number before the point is used, as Go does.
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), u64::from(self.0.subsec_nanos()));
        if secs == 0 {
            return match nanos {
                0 => f.write_str("0s"),
                n if n < 1_000 => write!(f, "{n}ns"),
                n if n < 1_000_000 => write_decimal(f, n / 1_000, n % 1_000, 3, "us"),
                n => write_decimal(f, n / 1_000_000, n % 1_000_000, 6, "ms"),
            };
        }
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || nanos > 0 {
            write_decimal(f, s, nanos, 9, "s")?;
        }
        Ok(())
    }
}

/// `whole.frac` + unit, `frac` having `digits` digits, trailing zeros cut.
fn write_decimal(f: &mut fmt::Formatter<'_>, whole: u64, frac: u64, digits: usize, unit: &str) -> fmt::Result {
    if frac == 0 {
        return write!(f, "{whole}{unit}");
    }
    let frac = format!("{frac:0digits$}");
    write!(f, "{whole}.{}{unit}", frac.trim_end_matches('0'))
}

/// Nanoseconds per unit, Go's `time.ParseDuration` units.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a bare whole number of seconds (the original form) or Go's
/// duration syntax as Kubernetes users write it: `500ms`, `3s`, `1m30s`,
/// `1.5s`, `2h45m`, units `ns`, `us`, `ms`, `s`, `m`, `h`. No sign. Checked
/// arithmetic: anything beyond `Duration`'s range is "too large".
pub fn parse_duration(s: &str) -> Result<Duration, &'static str> {
    const HINT: &str = "use a number with a unit (ms, s, m or h), e.g. 500ms, 3s, 1.5s or 1m30s";
    const TOO_LARGE: &str = "too large";
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| TOO_LARGE)?;
        return Ok(Duration::from_secs(secs));
    }
    let mut nanos: u128 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(HINT);
    }
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after) = rest.split_at(whole_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(HINT);
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per_unit = UNITS.iter().find(|(name, _)| *name == unit).ok_or(HINT)?.1;
        // u128 holds u64::MAX hours in nanoseconds, so only the sum can overflow.
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse::<u64>().map_err(|_| TOO_LARGE)?.into() };
        // Digits past the nanosecond are dropped, as Go does.
        let frac = &frac[..frac.len().min(18)];
        let frac_nanos = match frac {
            "" => 0,
            f => f.parse::<u128>().map_err(|_| HINT)? * per_unit / 10u128.pow(f.len() as u32),
        };
        nanos = nanos.checked_add(whole * per_unit + frac_nanos).ok_or(TOO_LARGE)?;
        rest = after;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| TOO_LARGE)?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space` (as a
/// query value has it); None when an escape is not two hex digits.
pub(crate) fn percent_decode(raw: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        out.push(match raw[i] {
            b'%' => {
                let hi = hex_value(*raw.get(i + 1)?)?;
                let lo = hex_value(*raw.get(i + 2)?)?;
                i += 2;
                hi << 4 | lo
            }
            b'+' if plus_is_space => b' ',
            b => b,
        });
        i += 1;
    }
    Some(out)
}

/// The value of a hex digit.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%2Fb%20c+d", false).as_deref(), Some(&b"a/b c+d"[..]));
        assert_eq!(percent_decode(b"a%2fb+c", true).as_deref(), Some(&b"a/b c"[..]));
        for bad in [&b"%"[..], b"%2", b"%zz", b"%+f", b"x%g0"] {
            assert_eq!(percent_decode(bad, false), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let ok = [
            ("500ms", ms(500), "500ms"),
            ("3s", ms(3000), "3s"),
            ("3", ms(3000), "3s"),
            ("90", ms(90_000), "1m30s"),
            ("2m", ms(120_000), "2m"),
            ("1h", ms(3_600_000), "1h"),
            ("60m", ms(3_600_000), "1h"),
            ("1m30s", ms(90_000), "1m30s"),
            ("1.5s", ms(1500), "1.5s"),
            ("1500ms", ms(1500), "1.5s"),
            ("0.5s", ms(500), "500ms"),
            (".5s", ms(500), "500ms"),
            ("1.s", ms(1000), "1s"),
            ("2h45m", ms(9_900_000), "2h45m"),
            ("1h0m0s", ms(3_600_000), "1h"),
            ("1m1.001s", ms(61_001), "1m1.001s"),
            ("1.5ms", Duration::from_micros(1500), "1.5ms"),
            ("300us", Duration::from_micros(300), "300us"),
            ("300\u{b5}s", Duration::from_micros(300), "300us"),
            ("1us", Duration::from_micros(1), "1us"),
            ("1ns", Duration::from_nanos(1), "1ns"),
            ("1.0000000001s", ms(1000), "1s"),
            ("0", Duration::ZERO, "0s"),
            ("0s", Duration::ZERO, "0s"),
            ("18446744073709551615", Duration::from_secs(u64::MAX), "5124095576030431h15s"),
            ("18446744073709551615s", Duration::from_secs(u64::MAX), "5124095576030431h15s"),
            ("18446744073709551615ms", ms(u64::MAX), "5124095576030h25m51.615s"),
            ("18446744073709551615ns", Duration::from_nanos(u64::MAX), "5124095h34m33.709551615s"),
        ];
        for (s, want, shown) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
            assert_eq!(DisplayDuration(want).to_string(), shown, "{s}");
            assert_eq!(parse_duration(shown), Ok(want), "{shown} parses back");
        }
        let bad = [
            "",
            "abc",
            "-1",
            "-1s",
            "+3s",
            "3 s",
            "3sec",
            "ms",
            "s",
            ".s",
            "1..5s",
            "1.5",
            "3S",
            "1d",
            "1m30",
            "18446744073709551616",
            "18446744073709551616ms",
            "18446744073709551615h",
            "5124095576030431h16s",
            "18446744073709551615s1s",
        ];
        for s in bad {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn usage_errors_show_arguments_escaped() {
        assert_eq!(Shown("a'b\"c\\\t\u{e9}\u{1}\n").to_string(), "a\\'b\"c\\\\\\t\u{e9}\\x01\\n");
        // As typed, UTF-8 and all; what could hide or reorder text is escaped as Go's %q.
        assert_eq!(Shown("caf\u{e9} \u{65e5}\u{672c} \u{1f600}").to_string(), "caf\u{e9} \u{65e5}\u{672c} \u{1f600}");
        assert_eq!(
            Shown("\u{7f}\u{85}\u{a0}\u{200b}\u{202e}\u{2028}\u{feff}\u{e0041}").to_string(),
            "\\x7f\\u0085\\u00a0\\u200b\\u202e\\u2028\\ufeff\\U000e0041"
        );
        assert_eq!(Shown("-x=1").to_string(), "-x=1");
    }
}
