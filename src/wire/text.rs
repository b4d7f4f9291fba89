//! Text the program shows people: durations in their command-line form,
//! and arguments and log values escaped onto one line.

use std::fmt;
use std::time::Duration;

/// Writes `raw` for showing between two `quote`s on one line: the quote
/// and `\` escaped with a backslash, tab, CR and LF as `\t`, `\r`, `\n`,
/// anything else outside printable ASCII as `\u{..}`. The one escaper of
/// the text the program writes to stderr: log values and usage errors.
pub fn write_escaped(out: &mut impl fmt::Write, raw: &str, quote: char) -> fmt::Result {
    for c in raw.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c == quote => write!(out, "\\{c}")?,
            ' '..='~' => out.write_char(c)?,
            _ => write!(out, "\\u{{{:x}}}", c as u32)?,
        }
    }
    Ok(())
}

/// An argument as a usage error shows it between single quotes, escaped.
pub struct Shown<'a>(pub &'a str);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_show_arguments_escaped() {
        assert_eq!(Shown("a'b\"c\\\t\u{e9}\u{1}\n").to_string(), "a\\'b\"c\\\\\\t\\u{e9}\\u{1}\\n");
        assert_eq!(Shown("-x=1").to_string(), "-x=1");
    }
}
