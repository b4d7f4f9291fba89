//! Text for the hot paths (response heads, the metrics scrape, JSON
//! verdicts) without the `fmt` machinery: numbers, and short pieces.

/// Appends `bytes` in 8-byte words, each a single store, rather than
/// with a call to `memcpy`: musl's (the static build's) starts every copy
/// with `rep movsq`, which costs more than a metrics line's short pieces.
#[inline]
pub(crate) fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if let Ok(word) = <&[u8; 8]>::try_from(word) {
            out.extend_from_slice(word);
        }
    }
    for &b in words.remainder() {
        out.push(b);
    }
}

/// Appends `n` in decimal. Not `write!`: the formatting machinery was a
/// fifth of the instructions spent on a `/self` request.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let (digits, start) = decimal(n);
    // A few bytes: pushed one by one, which is cheaper than a call to
    // musl's `memcpy` (the static build's) for so few.
    for &d in &digits[start..] {
        out.push(d);
    }
}

/// `n`'s decimal digits: `digits[start..]`.
#[inline]
pub(crate) fn decimal(mut n: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return (digits, start);
        }
    }
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Appends `nanos` as seconds, exactly: `0.0021`, `3`, `1.5`. No exponent
/// and no trailing zeros, so it is a valid Prometheus float and JSON number.
pub(crate) fn push_seconds(out: &mut Vec<u8>, nanos: u64) {
    push_decimal(out, nanos / NANOS_PER_SEC);
    let mut frac = nanos % NANOS_PER_SEC;
    if frac == 0 {
        return;
    }
    let mut digits = [b'0'; 9];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    out.push(b'.');
    out.extend_from_slice(&digits[..end]);
}

/// Nanoseconds in `d`, saturating (u64 nanoseconds last 584 years).
pub(crate) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 4096, u64::MAX] {
            assert_eq!(text(|o| push_decimal(o, n)), n.to_string());
        }
    }

    #[test]
    fn pieces() {
        for len in [0, 1, 7, 8, 9, 16, 23, 100] {
            let piece: Vec<u8> = (0..len as u8).collect();
            assert_eq!(text(|o| put(o, &piece)).into_bytes(), piece);
        }
    }

    #[test]
    fn seconds() {
        let cases = [
            (0, "0"),
            (1, "0.000000001"),
            (2_100_000, "0.0021"),
            (1_000_000_000, "1"),
            (1_500_000_000, "1.5"),
            (10_000_000_000, "10"),
            (1_795_705_200_123_000_000, "1795705200.123"),
            (u64::MAX, "18446744073.709551615"),
        ];
        for (n, want) in cases {
            assert_eq!(text(|o| push_seconds(o, n)), want, "{n}");
            // Whatever is written reads back as the same number.
            let back: f64 = want.parse().unwrap();
            assert!((back - n as f64 / 1e9).abs() <= back * 1e-15, "{n}");
        }
    }
}
