//! HPACK (RFC 7541): a bounded decoder (static and dynamic tables, size
//! updates, Huffman strings) and the encoder for the few request fields,
//! which writes literals without indexing and needs no Huffman.

use std::collections::VecDeque;

/// The dynamic table size a peer may use without asking: we never raise it
/// (SETTINGS_HEADER_TABLE_SIZE stays at its default), so no server can make
/// the table hold more than this.
pub const TABLE_SIZE: usize = 4096;

/// RFC 7541 section 4.1: every entry counts 32 octets besides its strings.
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded; each ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The block ends inside a representation.
    Truncated,
    /// An integer longer than any bound we accept.
    Integer,
    /// Index 0, or past the end of both tables.
    Index,
    /// A size update above [`TABLE_SIZE`], or after the first field.
    SizeUpdate,
    /// Huffman data with the EOS symbol, or padding that is not 1 to 7 ones.
    Huffman,
}

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The decoding side of one connection: its dynamic table and the buffers
/// Huffman strings decode into (kept for reuse).
#[derive(Debug)]
pub struct Decoder {
    /// Newest first, as the index counts them.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// The table's size in RFC 7541 terms (strings plus 32 per entry).
    size: usize,
    /// The size the peer last chose, at most [`TABLE_SIZE`].
    max_size: usize,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::with_size(TABLE_SIZE)
    }

    /// A decoder whose table starts at (and may never exceed) `max_size`.
    pub(crate) fn with_size(max_size: usize) -> Decoder {
        Decoder { table: VecDeque::new(), size: 0, max_size, name_buf: Vec::new(), value_buf: Vec::new() }
    }

    /// Forgets the table, for a new connection; keeps the allocations.
    pub(crate) fn reset(&mut self) {
        self.table.clear();
        self.size = 0;
        self.max_size = TABLE_SIZE;
    }

    /// The dynamic table's size in RFC 7541 terms.
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Decodes one complete header block, calling `field` for each header
    /// in order. The table changes as the block says even when `field`
    /// ignores what it is given.
    pub fn decode(&mut self, block: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Result<(), Error> {
        let mut pos = 0;
        let mut first = true;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                // Indexed header field (6.1).
                let index = integer(block, &mut pos, 7)?;
                let (name, value) = self.get(index)?;
                field(name, value);
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update (6.3): only before the first field.
                let size = integer(block, &mut pos, 5)?;
                if !first || size > TABLE_SIZE {
                    return Err(Error::SizeUpdate);
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                // Literal (6.2): with incremental indexing (01), without (0000)
                // or never indexed (0001).
                let indexing = b & 0x40 != 0;
                let index = integer(block, &mut pos, if indexing { 6 } else { 4 })?;
                let mut name_buf = std::mem::take(&mut self.name_buf);
                let mut value_buf = std::mem::take(&mut self.value_buf);
                let result = self.literal(block, &mut pos, index, indexing, &mut name_buf, &mut value_buf, &mut field);
                self.name_buf = name_buf;
                self.value_buf = value_buf;
                result?;
            }
            first = false;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn literal(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        index: usize,
        indexing: bool,
        name_buf: &mut Vec<u8>,
        value_buf: &mut Vec<u8>,
        field: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Error> {
        let name: &[u8] = if index == 0 {
            string(block, pos, name_buf)?
        } else {
            // The name may live in the table this field is about to change.
            name_buf.clear();
            name_buf.extend_from_slice(self.get(index)?.0);
            name_buf
        };
        let value = string(block, pos, value_buf)?;
        field(name, value);
        if indexing {
            self.insert(name, value);
        }
        Ok(())
    }

    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), Error> {
        match index {
            0 => Err(Error::Index),
            1..=61 => {
                let (name, value) = STATIC[index - 1];
                Ok((name.as_bytes(), value.as_bytes()))
            }
            _ => self.table.get(index - 62).map(|(n, v)| (n.as_slice(), v.as_slice())).ok_or(Error::Index),
        }
    }

    /// Adds an entry (4.4): evicts first; an entry larger than the whole
    /// table empties it and is not kept, so nothing is allocated for it.
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.evict(self.max_size);
            return;
        }
        self.evict(size);
        self.table.push_front((name.to_vec(), value.to_vec()));
        self.size += size;
    }

    /// Drops the oldest entries until `room` more octets fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((name, value)) = self.table.pop_back() else { break };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Largest integer accepted: bigger than any string or index a bounded
/// header block can hold, small enough that the arithmetic cannot overflow.
const MAX_INTEGER: u64 = 1 << 24;

/// Reads an integer with an `n`-bit prefix (5.1) starting at `block[*pos]`.
fn integer(block: &[u8], pos: &mut usize, n: u8) -> Result<usize, Error> {
    let mask = ((1u16 << n) - 1) as u8;
    let first = *block.get(*pos).ok_or(Error::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0;
    loop {
        let b = *block.get(*pos).ok_or(Error::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << shift;
        if value > MAX_INTEGER {
            return Err(Error::Integer);
        }
        if b & 0x80 == 0 {
            return Ok(value as usize);
        }
        shift += 7;
        if shift > 28 {
            return Err(Error::Integer);
        }
    }
}

/// Reads a string literal (5.2); a Huffman one is decoded into `buf`.
fn string<'a>(block: &'a [u8], pos: &mut usize, buf: &'a mut Vec<u8>) -> Result<&'a [u8], Error> {
    let huffman = *block.get(*pos).ok_or(Error::Truncated)? & 0x80 != 0;
    let len = integer(block, pos, 7)?;
    // The length is checked against what is there before anything is used.
    let end = pos.checked_add(len).filter(|&end| end <= block.len()).ok_or(Error::Truncated)?;
    let raw = &block[*pos..end];
    *pos = end;
    if !huffman {
        return Ok(raw);
    }
    buf.clear();
    huffman_decode(raw, buf)?;
    Ok(buf)
}

/// Code length of each symbol (RFC 7541 Appendix B), 256 being EOS. The
/// code is canonical, so the lengths alone give every code.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
    28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12,
    10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6,
    5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22,
    22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20,
    22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28,
    27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28,
    27, 27, 27, 27, 27, 26, 30,
];

const MAX_CODE: usize = 30;
const EOS: u16 = 256;

/// How many codes have each length.
const COUNTS: [u16; MAX_CODE + 1] = {
    let mut counts = [0; MAX_CODE + 1];
    let mut s = 0;
    while s < CODE_LENGTHS.len() {
        counts[CODE_LENGTHS[s] as usize] += 1;
        s += 1;
    }
    counts
};

/// The symbols in code order: by length, then by symbol.
const SYMBOLS: [u16; 257] = {
    let mut symbols = [0; 257];
    let mut n = 0;
    let mut len = 1;
    while len <= MAX_CODE {
        let mut s = 0;
        while s < CODE_LENGTHS.len() {
            if CODE_LENGTHS[s] as usize == len {
                symbols[n] = s as u16;
                n += 1;
            }
            s += 1;
        }
        len += 1;
    }
    symbols
};

/// Decodes a canonical Huffman string bit by bit: header values in a probe
/// response are a few bytes, so a table-driven decoder would cost size for
/// no time that matters.
fn huffman_decode(data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    // The current partial code, its length, the first code of that length
    // and the index in SYMBOLS where that length's symbols start.
    let (mut code, mut len, mut first, mut start) = (0u32, 0usize, 0u32, 0usize);
    for &byte in data {
        for shift in (0..8).rev() {
            code = code << 1 | u32::from(byte >> shift & 1);
            first <<= 1;
            len += 1;
            let count = u32::from(COUNTS[len]);
            if code - first < count {
                let symbol = SYMBOLS[start + (code - first) as usize];
                if symbol == EOS {
                    return Err(Error::Huffman);
                }
                out.push(symbol as u8);
                (code, len, first, start) = (0, 0, 0, 0);
            } else {
                first += count;
                start += count as usize;
                if len == MAX_CODE {
                    return Err(Error::Huffman); // unreachable: the code is complete
                }
            }
        }
    }
    // Padding: the most significant bits of EOS (all ones), at most 7 of them.
    if len > 7 || code != (1 << len) - 1 {
        return Err(Error::Huffman);
    }
    Ok(())
}

/// Appends a field as a literal without indexing (6.2.2), naming it by its
/// static-table index when it has one; strings are not Huffman-coded.
pub(crate) fn encode(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match STATIC.iter().position(|(n, _)| n.as_bytes() == name) {
        Some(i) => encode_integer(out, 0x00, 4, i + 1),
        None => {
            out.push(0x00);
            encode_string(out, name);
        }
    }
    encode_string(out, value);
}

fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    encode_integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// Appends `value` with an `n`-bit prefix after the representation bits `flags`.
fn encode_integer(out: &mut Vec<u8>, flags: u8, n: u8, mut value: usize) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
    }

    fn decode(d: &mut Decoder, hex: &str) -> Result<Vec<(String, String)>, Error> {
        let mut fields = Vec::new();
        d.decode(&unhex(hex), |n, v| {
            fields.push((String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
        })?;
        Ok(fields)
    }

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn integers_rfc7541_c1() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337; C.1.3: 42 at an octet boundary.
        for (value, n, bytes) in [(10, 5, &[0x0a][..]), (1337, 5, &[0x1f, 0x9a, 0x0a]), (42, 8, &[0x2a])] {
            let mut out = Vec::new();
            encode_integer(&mut out, 0, n, value);
            assert_eq!(out, bytes);
            let mut pos = 0;
            assert_eq!(integer(bytes, &mut pos, n), Ok(value));
            assert_eq!(pos, bytes.len());
        }
        // Overflow is refused, however many continuation bytes follow.
        let mut pos = 0;
        assert_eq!(integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos, 5), Err(Error::Integer));
        let mut pos = 0;
        assert_eq!(integer(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos, 5), Err(Error::Integer));
        let mut pos = 0;
        assert_eq!(integer(&[0x1f, 0x9a], &mut pos, 5), Err(Error::Truncated));
    }

    #[test]
    fn fields_rfc7541_c2() {
        // C.2.1: literal with indexing; the table holds it afterwards.
        let mut d = Decoder::new();
        let f = decode(&mut d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572").unwrap();
        assert_eq!(f, pairs(&[("custom-key", "custom-header")]));
        assert_eq!(d.table_size(), 55);
        // C.2.2: literal without indexing; C.2.3: never indexed; neither is kept.
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, "040c 2f73 616d 706c 652f 7061 7468").unwrap(), pairs(&[(":path", "/sample/path")]));
        assert_eq!(
            decode(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74").unwrap(),
            pairs(&[("password", "secret")])
        );
        assert_eq!(d.table_size(), 0);
        // C.2.4: indexed.
        assert_eq!(decode(&mut d, "82").unwrap(), pairs(&[(":method", "GET")]));
    }

    const REQUEST_1: [(&str, &str); 4] =
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];

    fn request_2() -> Vec<(String, String)> {
        let mut r = pairs(&REQUEST_1);
        r.push(("cache-control".into(), "no-cache".into()));
        r
    }

    fn request_3() -> Vec<(String, String)> {
        pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ])
    }

    #[test]
    fn requests_rfc7541_c3_and_c4() {
        // C.3: without Huffman; C.4: the same requests with Huffman.
        let sequences = [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ];
        for blocks in sequences {
            let mut d = Decoder::new();
            assert_eq!(decode(&mut d, blocks[0]).unwrap(), pairs(&REQUEST_1));
            assert_eq!(d.table_size(), 57);
            assert_eq!(decode(&mut d, blocks[1]).unwrap(), request_2());
            assert_eq!(d.table_size(), 110);
            assert_eq!(decode(&mut d, blocks[2]).unwrap(), request_3());
            assert_eq!(d.table_size(), 164);
            assert_eq!(d.get(62).unwrap(), (&b"custom-key"[..], &b"custom-value"[..]));
            assert_eq!(d.get(64).unwrap(), (&b":authority"[..], &b"www.example.com"[..]));
        }
    }

    #[test]
    fn responses_with_eviction_rfc7541_c5_and_c6() {
        let sequences = [
            [
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 \
                 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "4803 3330 37c1 c0bf",
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 \
                 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 \
                 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
            ],
            [
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad \
                 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                "4883 640e ffc1 c0bf",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 \
                 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ],
        ];
        let first = [
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ];
        for blocks in sequences {
            let mut d = Decoder::with_size(256);
            let mut want = pairs(&[(":status", "302")]);
            want.extend(pairs(&first));
            assert_eq!(decode(&mut d, blocks[0]).unwrap(), want);
            assert_eq!(d.table_size(), 222);
            want[0].1 = "307".into();
            assert_eq!(decode(&mut d, blocks[1]).unwrap(), want);
            assert_eq!(d.table_size(), 222);
            let third = decode(&mut d, blocks[2]).unwrap();
            assert_eq!(
                third,
                pairs(&[
                    (":status", "200"),
                    ("cache-control", "private"),
                    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                    ("location", "https://www.example.com"),
                    ("content-encoding", "gzip"),
                    ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
                ])
            );
            assert_eq!(d.table_size(), 215);
            assert_eq!(d.table.len(), 3);
        }
    }

    #[test]
    fn size_updates() {
        let mut d = Decoder::new();
        decode(&mut d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572").unwrap();
        // To 0 and back at the start of a block: the table is emptied.
        assert_eq!(decode(&mut d, "20 3fe1 1f 82").unwrap(), pairs(&[(":method", "GET")]));
        assert_eq!((d.table_size(), d.max_size), (0, 4096));
        // Above our SETTINGS value, or after a field: refused.
        assert_eq!(decode(&mut d, "3fe2 1f"), Err(Error::SizeUpdate));
        assert_eq!(decode(&mut d, "82 20"), Err(Error::SizeUpdate));
        // An entry larger than the table empties it and is not kept.
        let mut d = Decoder::with_size(40);
        decode(&mut d, "4001 6101 62").unwrap();
        assert_eq!(d.table_size(), 34);
        decode(&mut d, "4005 6161 6161 6105 6262 6262 62").unwrap();
        assert_eq!((d.table_size(), d.table.len()), (0, 0));
    }

    #[test]
    fn malformed_blocks_fail() {
        let mut d = Decoder::new();
        for (hex, want) in [
            ("80", Error::Index),
            ("be", Error::Index),   // 62: the dynamic table is empty
            ("ff49", Error::Index), // 200
            ("400a 6375", Error::Truncated),
            ("41", Error::Truncated),
            ("4085 ffff ffff ff01", Error::Huffman), // EOS inside
            ("4081 00 00", Error::Huffman),          // padding not ones
            ("4082 1fff 00", Error::Huffman),        // 8 bits of padding
            ("407f ffff ffff 0f", Error::Integer),
        ] {
            assert_eq!(decode(&mut d, hex), Err(want), "{hex}");
        }
    }

    #[test]
    fn huffman_decodes_every_symbol() {
        // Encode each byte with its canonical code, then decode the lot.
        let mut codes = [0u32; 257];
        let (mut code, mut prev) = (0u32, CODE_LENGTHS[SYMBOLS[0] as usize]);
        for (i, &s) in SYMBOLS.iter().enumerate() {
            let len = CODE_LENGTHS[s as usize];
            if i > 0 {
                code = (code + 1) << (len - prev);
            }
            prev = len;
            codes[s as usize] = code;
        }
        assert_eq!((codes[b'a' as usize], codes[256]), (0x3, 0x3fff_ffff));
        let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
        for s in 0..256 {
            acc = acc << CODE_LENGTHS[s] | u64::from(codes[s]);
            bits += u32::from(CODE_LENGTHS[s]);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push((acc << (8 - bits)) as u8 | (0xff >> bits));
        }
        let mut decoded = Vec::new();
        huffman_decode(&out, &mut decoded).unwrap();
        assert_eq!(decoded, (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn encodes_literals_a_decoder_reads_back() {
        let mut block = Vec::new();
        encode(&mut block, b":path", b"/grpc.health.v1.Health/Check");
        encode(&mut block, b"te", b"trailers");
        encode(&mut block, b"x-long", &[b'v'; 300]);
        assert_eq!(block[0], 0x04); // literal without indexing, static name 4
        let mut d = Decoder::new();
        let mut fields = Vec::new();
        d.decode(&block, |n, v| fields.push((n.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(fields[0], (b":path".to_vec(), b"/grpc.health.v1.Health/Check".to_vec()));
        assert_eq!(fields[1], (b"te".to_vec(), b"trailers".to_vec()));
        assert_eq!(fields[2].1.len(), 300);
        assert_eq!(d.table_size(), 0);
    }
}
