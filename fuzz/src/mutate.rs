//! A small deterministic mutator (xorshift64*): random inputs for the oracles
//! on stable Rust, in the normal test run and in `stable_driver`.

/// xorshift64* — tiny, seedable, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is xorshift's fixed point.
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes that matter to the parsers: spliced in whole, they reach deeper
/// states than single random bytes do.
pub const DICTIONARY: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b" ",
    b"\t",
    b":",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"GET ",
    b"HEAD ",
    b"Host: x\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Location: ",
    b"HTTP/1.1 302 Found\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"http://",
    b"https://",
    b"tcp://",
    b"localhost",
    b"127.0.0.1",
    b"[::1]",
    b"/all",
    b"/self",
    b"/all/",
    b"?verbose",
    b"/metrics",
    b"?format=json",
    b"&format=json",
    b"&exclude=",
    b"%",
    b"%0a",
    b"%ff",
    b"..",
    b"0\r\n\r\n",
    b"ffffffffffffffff",
    b"18446744073709551616",
    b"ms",
    b"=",
    b"--",
    b"--dry-run",
    b"serve",
    b"check",
    b"run",
    b"\xff",
    b"\xc3\xa9",
];

/// One to four random edits of `input`; `other` is a second input to
/// splice from. The result is at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next_u64() as u8;
            }
            2 => out.insert(at, rng.next_u64() as u8),
            3 | 4 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            6 if !out.is_empty() => {
                // Repeat a range: long lines, many headers, many hops.
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(64)).min(out.len());
                let piece = out[start..end].repeat(1 + rng.below(64));
                out.splice(at..at, piece);
            }
            _ if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(other.len() - start)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out.truncate(max_len);
    out
}
