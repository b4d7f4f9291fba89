//! An HTTP/1.x response read the way kubelet's client (Go's net/http) reads
//! it: the head line by line without keeping it, its framing, and a bounded
//! body, chunked or not. Pure: bytes in, progress or a failure out.

use std::fmt;

use crate::wire::text::hex_value;

/// Why a response cannot be read: the parser's own failures, which the
/// verdict layer nests as `HttpReason::Response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not HTTP/1 as Go's client reads it.
    Invalid,
    /// A head line or all heads together over their bound.
    HeadersTooLarge,
    /// The connection closed before the body's framing was complete.
    BodyCut,
    UnsupportedTransferEncoding,
    TooManyTransferEncodings,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Invalid => "invalid response",
            Error::HeadersTooLarge => "response headers too large",
            Error::BodyCut => "body cut short",
            Error::UnsupportedTransferEncoding => "unsupported transfer encoding",
            Error::TooManyTransferEncodings => "too many transfer encodings",
        })
    }
}

/// Head lines are kept up to this length. A longer field line is checked
/// as it streams past without being kept, as long as it is no field whose
/// value is needed; a longer status line or `Location`, `Content-Length` or
/// `Transfer-Encoding` value fails (Go takes them up to its head limit).
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// All response heads together (interim 1xx ones included), as Go's
/// `MaxResponseHeaderBytes` default. Counted, never kept.
pub(crate) const MAX_HEADS: u64 = 10 << 20;
/// Go reads a chunk-size line within its 4 KiB read buffer, CRLF included.
const MAX_CHUNK_LINE: usize = 4096;
/// Go's bound on chunk overhead beyond 16 bytes plus twice the data.
const MAX_CHUNK_EXCESS: i64 = 16 * 1024;
/// A trailer must end within Go's read buffer.
const MAX_TRAILER: usize = 4096;

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    UntilEof,
}

/// A final response head: what a verdict or a redirect needs of it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// The first `Location` value, trimmed (empty when there is none).
    pub(crate) location: Vec<u8>,
    pub(crate) framing: Option<Framing>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Location,
    ContentLength,
    TransferEncoding,
    Other,
}

/// Header lines (of a head or a trailer) as Go's textproto reads them:
/// obs-fold joins lines, a space may end a name, values are checked.
#[derive(Debug, Default)]
struct Fields {
    started: bool,
    pending: Option<Known>,
    value: Vec<u8>,
    location: Option<Vec<u8>>,
    /// The first `Content-Length` value, when `length_given`.
    content_length: Vec<u8>,
    length_given: bool,
    lengths_differ: bool,
    encodings: usize,
    encoding: Vec<u8>,
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_space(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_space(b)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// [`CLASS`] bits: a byte of a field name (a token byte, or a space Go
/// lets a name end in), of a token, of a field value.
const NAME: u8 = 1;
const TOKEN: u8 = 2;
const VALUE: u8 = 4;

/// Every byte's classes, so a head line costs one load per byte and class
/// instead of a search of the token punctuation (the bytes kubelet's
/// client reads every probe).
const CLASS: [u8; 256] = {
    let mut class = [0; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let token = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        let value = c == b'\t' || c == b' ' || (c >= 0x21 && c < 0x7f) || c >= 0x80;
        class[b] = if token {
            NAME | TOKEN
        } else if c == b' ' {
            NAME
        } else {
            0
        } | if value { VALUE } else { 0 };
        b += 1;
    }
    class
};

fn token_byte(b: u8) -> bool {
    CLASS[usize::from(b)] & TOKEN != 0
}

fn value_byte(b: u8) -> bool {
    CLASS[usize::from(b)] & VALUE != 0
}

impl Fields {
    /// Clears the fields but keeps the buffers' allocations (every field
    /// named, so a new one cannot be missed).
    fn reset(&mut self) {
        let Fields {
            started,
            pending,
            value,
            location,
            content_length,
            length_given,
            lengths_differ,
            encodings,
            encoding,
        } = self;
        *started = false;
        *pending = None;
        value.clear();
        *location = None;
        content_length.clear();
        *length_given = false;
        *lengths_differ = false;
        *encodings = 0;
        encoding.clear();
    }

    /// One line, without its line end. Ok(true) at the blank line.
    fn line(&mut self, line: &[u8]) -> Result<bool, Error> {
        if line.is_empty() {
            self.finish();
            return Ok(true);
        }
        if is_space(line[0]) {
            // A continuation, but never the first line.
            if !self.started || !line[1..].iter().all(|&b| value_byte(b)) {
                return Err(Error::Invalid);
            }
            if self.pending.is_some_and(|k| k != Known::Other) {
                if self.value.len() + line.len() > MAX_LINE {
                    return Err(Error::HeadersTooLarge);
                }
                self.value.push(b' ');
                self.value.extend_from_slice(trim(line));
            }
            return Ok(false);
        }
        self.finish();
        self.started = true;
        // The line starts with no space, and a trailing one is a value
        // byte: the name and the checks are those of the trimmed line.
        // One pass finds the colon and checks the name before it.
        let colon = line.iter().position(|&b| CLASS[usize::from(b)] & NAME == 0).ok_or(Error::Invalid)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if line[colon] != b':' || name.is_empty() || !value.iter().all(|&b| value_byte(b)) {
            return Err(Error::Invalid);
        }
        // A name with a space is kept apart, never matched (as Go does).
        let known = match name.len() {
            8 if name.eq_ignore_ascii_case(b"location") => Known::Location,
            14 if name.eq_ignore_ascii_case(b"content-length") => Known::ContentLength,
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Known::TransferEncoding,
            _ => Known::Other,
        };
        self.pending = Some(known);
        self.value.clear();
        if known != Known::Other {
            self.value.extend_from_slice(trim(value));
        }
        Ok(false)
    }

    /// Ends the current (possibly folded) field.
    fn finish(&mut self) {
        let value = &self.value;
        match self.pending.take() {
            Some(Known::Location) if self.location.is_none() => self.location = Some(value.clone()),
            Some(Known::ContentLength) => {
                let value = value.trim_ascii();
                if self.length_given {
                    self.lengths_differ |= self.content_length.as_slice() != value;
                } else {
                    self.length_given = true;
                    self.content_length.clear();
                    self.content_length.extend_from_slice(value);
                }
            }
            Some(Known::TransferEncoding) => {
                self.encodings += 1;
                if self.encodings == 1 {
                    self.encoding.clear();
                    self.encoding.extend_from_slice(value);
                }
            }
            _ => {}
        }
    }
}

/// The response head parser: feeds lines, skips interim 1xx responses.
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    /// The current line so far (bounded by [`MAX_LINE`]).
    line: Vec<u8>,
    /// Set while a line too long to keep streams past.
    long: Option<Long>,
    consumed: u64,
    status: Option<(u16, bool)>,
    fields: Fields,
}

/// Where a long field line stands (see [`MAX_LINE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Long {
    Start,
    /// In the name: its length and first bytes (enough to know it).
    Name(usize, [u8; 17]),
    Value,
    /// A CR in the value: fine only right before the LF.
    Cr,
}

impl HeadReader {
    /// Clears the state but keeps the buffers' allocations.
    pub(crate) fn reset(&mut self) {
        let HeadReader { line, long, consumed, status, fields } = self;
        line.clear();
        *long = None;
        *consumed = 0;
        *status = None;
        fields.reset();
    }

    /// Consumes bytes; Ok(Some((head, used))) once a final head is read.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<Option<(Head, usize)>, Error> {
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            let (piece, complete) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            let used = piece.len() + usize::from(complete);
            at += used;
            self.consumed += used as u64;
            if self.consumed > MAX_HEADS {
                return Err(Error::HeadersTooLarge);
            }
            if self.long.is_none() && self.line.len() + piece.len() > MAX_LINE {
                // Only field lines may stream past; a status line may not.
                if self.status.is_none() {
                    return Err(Error::HeadersTooLarge);
                }
                self.long = Some(Long::Start);
                let kept = std::mem::take(&mut self.line);
                let result = self.long_line(&kept);
                self.line = kept;
                self.line.clear();
                result?;
            }
            if self.long.is_some() {
                self.long_line(piece)?;
                // A line must not end in its name (no colon).
                if complete && matches!(self.long.take(), Some(Long::Start | Long::Name(..))) {
                    return Err(Error::Invalid);
                }
                continue;
            }
            if !complete {
                self.line.extend_from_slice(piece);
                return Ok(None);
            }
            // A line read whole is parsed where it lies, not copied.
            let result = if self.line.is_empty() {
                self.on_line(piece.strip_suffix(b"\r").unwrap_or(piece))
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(piece);
                let result = self.on_line(line.strip_suffix(b"\r").unwrap_or(&line));
                line.clear();
                self.line = line;
                result
            };
            if let Some(head) = result? {
                return Ok(Some((head, at)));
            }
        }
        Ok(None)
    }

    /// Checks part of a long field line with the rules [`Fields::line`]
    /// applies to a whole one, keeping nothing.
    fn long_line(&mut self, bytes: &[u8]) -> Result<(), Error> {
        for &b in bytes {
            let Some(state) = self.long else { return Ok(()) };
            self.long = Some(match (state, b) {
                (Long::Start, b' ' | b'\t') => {
                    if !self.fields.started {
                        return Err(Error::Invalid);
                    }
                    if self.fields.pending.is_some_and(|k| k != Known::Other) {
                        return Err(Error::HeadersTooLarge);
                    }
                    Long::Value
                }
                (Long::Start, _) => {
                    self.fields.finish();
                    self.fields.started = true;
                    self.fields.pending = Some(Known::Other);
                    self.fields.value.clear();
                    if !token_byte(b) {
                        return Err(Error::Invalid);
                    }
                    let mut name = [0; 17];
                    name[0] = b;
                    Long::Name(1, name)
                }
                (Long::Name(len, name), b':') => {
                    let name = &name[..len.min(17)];
                    if [&b"location"[..], b"content-length", b"transfer-encoding"]
                        .iter()
                        .any(|k| len == k.len() && name.eq_ignore_ascii_case(k))
                    {
                        return Err(Error::HeadersTooLarge);
                    }
                    Long::Value
                }
                (Long::Name(len, mut name), _) if token_byte(b) || b == b' ' => {
                    if len < name.len() {
                        name[len] = b;
                    }
                    Long::Name(len + 1, name)
                }
                (Long::Value, b'\r') => Long::Cr,
                (Long::Value, _) if value_byte(b) => Long::Value,
                _ => return Err(Error::Invalid),
            });
        }
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<Option<Head>, Error> {
        let Some((status, http11)) = self.status else {
            self.status = Some(status_line(line)?);
            return Ok(None);
        };
        if !self.fields.line(line)? {
            return Ok(None);
        }
        // Interim responses precede the real one; 101 is final.
        if (100..200).contains(&status) && status != 101 {
            self.status = None;
            self.fields.reset();
            return Ok(None);
        }
        let framing = framing(status, http11, &self.fields)?;
        let location = self.fields.location.take().unwrap_or_default();
        self.fields.reset();
        Ok(Some(Head { status, location, framing }))
    }
}

/// `HTTP/x.y code reason` -> (code, at least HTTP/1.1), as Go reads it.
fn status_line(line: &[u8]) -> Result<(u16, bool), Error> {
    let space = line.iter().position(|&b| b == b' ').ok_or(Error::Invalid)?;
    let (proto, rest) = (&line[..space], &line[space + 1..]);
    let rest = &rest[rest.iter().position(|&b| b != b' ').unwrap_or(rest.len())..];
    let code = rest.split(|&b| b == b' ').next().unwrap_or_default();
    if code.len() != 3 {
        return Err(Error::Invalid);
    }
    // strconv.Atoi: an optional sign, then digits; negative fails.
    let (negative, digits) = match code[0] {
        b'+' => (false, &code[1..]),
        b'-' => (true, &code[1..]),
        _ => (false, code),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::Invalid);
    }
    let value = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if negative && value != 0 {
        return Err(Error::Invalid);
    }
    let (major, minor) = match proto {
        b"HTTP/1.1" => (1, 1),
        b"HTTP/1.0" => (1, 0),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            (major - b'0', minor - b'0')
        }
        _ => return Err(Error::Invalid),
    };
    // Go reads version 0.0 as 1.1.
    let http11 = major > 1 || (major == 1 && minor >= 1) || (major, minor) == (0, 0);
    Ok((value, http11))
}

/// How the body is delimited, with Go's checks of both headers.
fn framing(status: u16, http11: bool, fields: &Fields) -> Result<Option<Framing>, Error> {
    let chunked = match fields.encodings {
        0 => false,
        _ if !http11 => false,
        1 if fields.encoding.eq_ignore_ascii_case(b"chunked") => true,
        1 => return Err(Error::UnsupportedTransferEncoding),
        _ => return Err(Error::TooManyTransferEncodings),
    };
    if fields.lengths_differ {
        return Err(Error::Invalid);
    }
    let length = match fields.length_given.then_some(&fields.content_length) {
        None => None,
        Some(value) => {
            let valid = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
            let n = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
            match n {
                Some(n) if valid && n <= i64::MAX as u64 => Some(n),
                _ => return Err(Error::Invalid),
            }
        }
    };
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(None);
    }
    Ok(match (chunked, length) {
        (true, _) => Some(Framing::Chunked),
        (false, Some(0)) => None,
        (false, Some(n)) => Some(Framing::Length(n)),
        (false, None) => Some(Framing::UntilEof),
    })
}

/// Looks for a text in a body read in pieces (`--expect-body`), keeping
/// only the last `len - 1` bytes seen: a match across reads or chunks is
/// found without keeping the body.
#[derive(Debug, Default)]
pub(crate) struct Finder {
    tail: Vec<u8>,
}

impl Finder {
    /// Forgets what was seen, keeping the buffer.
    pub(crate) fn reset(&mut self) {
        self.tail.clear();
    }

    /// The next piece of body; true once `text` occurs in all fed so far.
    pub(crate) fn feed(&mut self, text: &[u8], data: &[u8]) -> bool {
        let keep = text.len().saturating_sub(1);
        // A match across the boundary starts in the tail and ends within
        // the first `keep` bytes of `data`.
        let had_tail = !self.tail.is_empty();
        self.tail.extend_from_slice(&data[..data.len().min(keep)]);
        if (had_tail && contains(&self.tail, text)) || contains(data, text) {
            return true;
        }
        if data.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - keep..]);
        } else {
            let excess = self.tail.len() - keep.min(self.tail.len());
            self.tail.drain(..excess);
        }
        false
    }
}

/// Whether `text` occurs in `hay` (an empty text always does).
fn contains(hay: &[u8], text: &[u8]) -> bool {
    let Some((&first, rest)) = text.split_first() else { return true };
    hay.len() >= text.len()
        && hay[..=hay.len() - text.len()]
            .iter()
            .enumerate()
            .any(|(i, &b)| b == first && &hay[i + 1..i + text.len()] == rest)
}

/// Position in a chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// In the size line: digits so far, its length, and the part of it.
    Size {
        size: u64,
        digits: u8,
        len: usize,
        part: SizePart,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// After the last chunk: the trailer, up to its blank line.
    Trailer,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizePart {
    Digits,
    Space,
    Extension,
    Cr,
}

const SIZE_START: Chunk = Chunk::Size { size: 0, digits: 0, len: 0, part: SizePart::Digits };

/// A body being read up to a limit of data bytes.
#[derive(Debug)]
pub(crate) struct BodyReader {
    framing: Framing,
    left: u64,
    chunk: Chunk,
    excess: i64,
    /// Data bytes still wanted before the reader stops.
    wanted: usize,
    trailer: Vec<u8>,
}

/// Where a body read stands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    More,
    /// The body ended, or the limit of data was read.
    Done,
}

impl BodyReader {
    pub(crate) fn new(framing: Framing, limit: usize) -> BodyReader {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        BodyReader { framing, left, chunk: SIZE_START, excess: 0, wanted: limit, trailer: Vec::new() }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<Progress, Error> {
        self.feed_data(data, |_| false)
    }

    /// Consumes bytes, handing each run of body data within the limit to
    /// `found`, which says whether the reader may stop there (Done).
    pub(crate) fn feed_data(&mut self, data: &[u8], mut found: impl FnMut(&[u8]) -> bool) -> Result<Progress, Error> {
        match self.framing {
            Framing::UntilEof => {
                let n = data.len().min(self.wanted);
                self.wanted -= n;
                Ok(if found(&data[..n]) || self.wanted == 0 { Progress::Done } else { Progress::More })
            }
            Framing::Length(_) => {
                let n = (data.len() as u64).min(self.left);
                self.left -= n;
                let seen = (n as usize).min(self.wanted);
                self.wanted -= seen;
                let stop = found(&data[..seen]);
                Ok(if stop || self.left == 0 || self.wanted == 0 { Progress::Done } else { Progress::More })
            }
            Framing::Chunked => self.feed_chunked(data, &mut found),
        }
    }

    /// The peer closed: fine only where the body runs to the close.
    pub(crate) fn eof(&self) -> Result<(), Error> {
        match (self.framing, self.chunk) {
            (Framing::UntilEof, _) | (Framing::Chunked, Chunk::End) => Ok(()),
            (Framing::Length(_), _) if self.left == 0 => Ok(()),
            _ => Err(Error::BodyCut),
        }
    }

    fn feed_chunked(&mut self, data: &[u8], found: &mut impl FnMut(&[u8]) -> bool) -> Result<Progress, Error> {
        let mut i = 0;
        // Once the limit is read, Go still checks what it already holds:
        // the CRLF ending that chunk and a next size line read whole.
        let mut lookahead = false;
        while i < data.len() {
            let b = data[i];
            match self.chunk {
                Chunk::Data(left) => {
                    if self.wanted == 0 {
                        return Ok(Progress::Done);
                    }
                    let take = (data.len() - i).min(left as usize).min(self.wanted);
                    self.wanted -= take;
                    if found(&data[i..i + take]) {
                        return Ok(Progress::Done);
                    }
                    i += take;
                    self.chunk = if left == take as u64 { Chunk::DataCr } else { Chunk::Data(left - take as u64) };
                    if self.wanted == 0 {
                        if self.chunk != Chunk::DataCr || data.len() - i < 2 {
                            return Ok(Progress::Done);
                        }
                        lookahead = true;
                    }
                    continue;
                }
                Chunk::DataCr if b == b'\r' => self.chunk = Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => {
                    self.chunk = SIZE_START;
                    // Go parses a next size line only when it holds it whole.
                    if lookahead && !data[i + 1..].contains(&b'\n') {
                        return Ok(Progress::Done);
                    }
                }
                Chunk::DataCr | Chunk::DataLf => return Err(Error::Invalid),
                Chunk::Size { size, digits, len, part } => {
                    let len = len + 1;
                    if len > MAX_CHUNK_LINE {
                        return Err(Error::Invalid);
                    }
                    let part = match (part, b) {
                        (SizePart::Cr, b'\n') => {
                            if digits == 0 {
                                return Err(Error::Invalid);
                            }
                            self.excess += len as i64 - 16 - 2 * size.min(i64::MAX as u64 / 4) as i64;
                            self.excess = self.excess.max(0);
                            if self.excess > MAX_CHUNK_EXCESS {
                                return Err(Error::Invalid);
                            }
                            self.chunk = if size == 0 { Chunk::Trailer } else { Chunk::Data(size) };
                            i += 1;
                            if lookahead && size != 0 {
                                return Ok(Progress::Done);
                            }
                            continue;
                        }
                        (SizePart::Cr, _) | (_, b'\n') => return Err(Error::Invalid),
                        (_, b'\r') => SizePart::Cr,
                        (SizePart::Digits, b';') | (SizePart::Extension, _) => SizePart::Extension,
                        (SizePart::Digits | SizePart::Space, b' ' | b'\t') => SizePart::Space,
                        (SizePart::Digits, _) if hex_value(b).is_some() => {
                            if digits == 16 {
                                return Err(Error::Invalid);
                            }
                            let size = size << 4 | u64::from(hex_value(b).unwrap_or(0));
                            self.chunk = Chunk::Size { size, digits: digits + 1, len, part };
                            i += 1;
                            continue;
                        }
                        _ => return Err(Error::Invalid),
                    };
                    self.chunk = Chunk::Size { size, digits, len, part };
                }
                Chunk::Trailer => {
                    let take = (data.len() - i).min(MAX_TRAILER + 1 - self.trailer.len());
                    self.trailer.extend_from_slice(&data[i..i + take]);
                    i += take;
                    if self.trailer.starts_with(b"\r\n") {
                        self.chunk = Chunk::End;
                        return Ok(Progress::Done);
                    }
                    if self.trailer.len() < 2 {
                        continue;
                    }
                    let Some(end) = self.trailer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if self.trailer.len() > MAX_TRAILER {
                            return Err(Error::Invalid);
                        }
                        continue;
                    };
                    if end + 4 > MAX_TRAILER {
                        return Err(Error::Invalid);
                    }
                    let mut fields = Fields::default();
                    for line in self.trailer[..end + 4].split(|&b| b == b'\n') {
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        if fields.line(line)? {
                            break;
                        }
                    }
                    self.chunk = Chunk::End;
                    return Ok(Progress::Done);
                }
                Chunk::End => return Ok(Progress::Done),
            }
            i += 1;
        }
        let done = match self.chunk {
            Chunk::End => true,
            Chunk::Trailer => false,
            Chunk::Data(_) => self.wanted == 0,
            _ => lookahead,
        };
        Ok(if done { Progress::Done } else { Progress::More })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &[u8]) -> Result<Option<Head>, Error> {
        let mut r = HeadReader::default();
        r.feed(text).map(|h| h.map(|(h, _)| h))
    }

    #[test]
    fn heads_as_go_reads_them() {
        let ok = |text: &[u8], status: u16, framing: Option<Framing>| {
            let h = head(text).unwrap().unwrap_or_else(|| panic!("{}", text.escape_ascii()));
            assert_eq!((h.status, h.framing), (status, framing), "{}", text.escape_ascii());
        };
        ok(b"HTTP/1.1 200 OK\r\n\r\n", 200, Some(Framing::UntilEof));
        ok(b"HTTP/1.1 200 OK\n\n", 200, Some(Framing::UntilEof));
        ok(b"HTTP/1.1   204\r\n\r\n", 204, None);
        ok(b"HTTP/2.0 200 OK\r\nContent-Length: 3\r\n\r\n", 200, Some(Framing::Length(3)));
        ok(b"HTTP/1.1 200 OK\r\nX: a\r\n  folded\r\nContent-Length:\r\n 7\r\n\r\n", 200, Some(Framing::Length(7)));
        ok(b"HTTP/1.1 200 OK\r\nContent-Length : 9\r\nBad Name: x\r\n\r\n", 200, Some(Framing::UntilEof));
        ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length:  5 \r\n\r\n", 200, Some(Framing::Length(5)));
        ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\nContent-Length: 9\r\n\r\n", 200, Some(Framing::Chunked));
        ok(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 200, Some(Framing::UntilEof));
        ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 F\r\nLocation:  /x \r\n\r\n", 302, Some(Framing::UntilEof));
        ok(b"HTTP/1.1 304 N\r\nTransfer-Encoding: chunked\r\n\r\n", 304, None);
        ok(b"HTTP/1.1 +20 X\r\n\r\n", 20, Some(Framing::UntilEof));
        let many: Vec<u8> = [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-A: b\r\n".repeat(1000), b"\r\n"].concat();
        ok(&many, 200, Some(Framing::UntilEof));

        let fail = |text: &[u8], reason: Error| assert_eq!(head(text), Err(reason), "{}", text.escape_ascii());
        fail(b"\r\nHTTP/1.1 200 OK\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 20 OK\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 -20 OK\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.10 200 OK\r\n\r\n", Error::Invalid);
        fail(b"ICY 200 OK\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\n folded-first: x\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 204 OK\r\nContent-Length: x\r\n\r\n", Error::Invalid);
        fail(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Error::UnsupportedTransferEncoding);
        fail(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Error::UnsupportedTransferEncoding);
        fail(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Error::TooManyTransferEncodings,
        );
        // Long lines stream past unless their value is needed.
        let long = |start: &[u8], end: &[u8]| {
            [&b"HTTP/1.1 200 OK\r\nA: b\r\n"[..], start, &[b'a'; 2 * MAX_LINE], end, b"Content-Length: 0\r\n\r\n"]
                .concat()
        };
        ok(&long(b"X: ", b"\r\n"), 200, None);
        ok(&long(b" ", b"\n"), 200, None);
        ok(&long(b"X-", b" : v\r\n"), 200, None);
        fail(&long(b"X: ", b"\x01\r\n"), Error::Invalid);
        fail(&long(b"X: ", b"\r\r\n"), Error::Invalid);
        fail(&long(b"X", b"\r\n"), Error::Invalid);
        fail(&long(b"X", b"(: v\r\n"), Error::Invalid);
        fail(&long(b"Location: ", b"\r\n"), Error::HeadersTooLarge);
        fail(
            &[&b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"[..], &[b' '; 2 * MAX_LINE], b"\r\n\r\n"].concat(),
            Error::HeadersTooLarge,
        );
        fail(&[&b"HTTP/1.1 200 "[..], &[b'a'; 2 * MAX_LINE], b"\r\n\r\n"].concat(), Error::HeadersTooLarge);
        // Incomplete is not an error.
        assert_eq!(head(b"HTTP/1.1 200 OK\r\nX: y"), Ok(None));
    }

    #[test]
    fn heads_byte_by_byte() {
        let text = b"HTTP/1.1 301 M\r\nLocation: /next\r\nContent-Length: 2\r\n\r\nok";
        let mut r = HeadReader::default();
        for (i, b) in text.iter().enumerate() {
            if let Some((h, used)) = r.feed(std::slice::from_ref(b)).unwrap() {
                assert_eq!(
                    (h.status, &h.location[..], h.framing, used, i),
                    (301, &b"/next"[..], Some(Framing::Length(2)), 1, text.len() - 3)
                );
                return;
            }
        }
        panic!("no head");
    }

    fn chunked(body: &[u8], limit: usize) -> Result<Progress, Error> {
        BodyReader::new(Framing::Chunked, limit).feed(body)
    }

    #[test]
    fn chunked_as_go_reads_it() {
        let done = Ok(Progress::Done);
        assert_eq!(chunked(b"2\r\nok\r\n0\r\n\r\n", 100), done);
        assert_eq!(chunked(b"2;a=b\r\nok\r\n0 \t\r\nT: v\r\n\r\n", 100), done);
        assert_eq!(chunked(b"0000000000000002\r\nok\r\n0\r\n\r\n", 100), done);
        assert_eq!(chunked(b"2\r\nok\r\n", 100), Ok(Progress::More));
        for bad in [
            &b"2\r\nok\n0\r\n\r\n"[..],
            b"2\nok\r\n0\r\n\r\n",
            b"00000000000000002\r\nok\r\n0\r\n\r\n",
            b"2 ;x\r\nok\r\n0\r\n\r\n",
            b" 2\r\nok\r\n0\r\n\r\n",
            b"\r\nok\r\n0\r\n\r\n",
            b"2\r\nokX\r\n0\r\n\r\n",
            b"2\r\nok\r\n0\r\nno colon\r\n\r\n",
            b"2;a\rb\r\nok\r\n0\r\n\r\n",
        ] {
            assert_eq!(chunked(bad, 100), Err(Error::Invalid), "{}", bad.escape_ascii());
        }
        // A trailer must end in CRLF CRLF: Go waits for one, then fails.
        let mut b = BodyReader::new(Framing::Chunked, 100);
        assert_eq!(b.feed(b"2\r\nok\r\n0\r\nT: v\n\n"), Ok(Progress::More));
        assert_eq!(b.eof(), Err(Error::BodyCut));
        let long = [&b"1;"[..], &[b'x'; MAX_CHUNK_LINE], b"\r\nx\r\n0\r\n\r\n"].concat();
        assert_eq!(chunked(&long, 100), Err(Error::Invalid));
        // Extensions bigger than the data they carry.
        let ext = [&b"1;"[..], &[b'x'; 4000], b"\r\nx\r\n"].concat().repeat(5);
        assert_eq!(chunked(&ext, 100), Err(Error::Invalid));
        // At the limit: a malformed next size line already received fails,
        // one not yet complete does not, nor does anything mid-chunk.
        assert_eq!(chunked(b"2\r\nok\r\nzz\r\n", 2), Err(Error::Invalid));
        assert_eq!(chunked(b"2\r\nok\r\nzz", 2), done);
        assert_eq!(chunked(b"4\r\nokok\r\nzz\r\n", 2), done);
        assert_eq!(chunked(b"2\r\nok\r\n5\r\n", 2), done);
    }

    /// Whether `text` is found in `body` fed in pieces of `cut` bytes.
    fn finds(text: &[u8], body: &[u8], cut: usize) -> bool {
        let mut finder = Finder::default();
        body.chunks(cut).any(|piece| finder.feed(text, piece))
    }

    #[test]
    fn finds_text_across_pieces() {
        let body = b"status: ok; ready: yes";
        for cut in 1..=body.len() {
            for text in [&b"ready: yes"[..], b"s", b"status: ok; ready: yes", b"; r", b"k;"] {
                assert!(finds(text, body, cut), "{} cut {cut}", text.escape_ascii());
            }
            for text in [&b"ready: no"[..], b"yes!", b"status: ok; ready: yes.", b"ss"] {
                assert!(!finds(text, body, cut), "{} cut {cut}", text.escape_ascii());
            }
        }
        // The tail never grows past twice the text.
        let mut finder = Finder::default();
        for _ in 0..100 {
            assert!(!finder.feed(b"abcd", b"xyzxyz"));
            assert!(finder.tail.len() <= 6);
        }
        finder.reset();
        assert!(!finder.feed(b"abcd", b"ab") && finder.feed(b"abcd", b"cd"));
    }

    #[test]
    fn body_data_within_the_limit() {
        // Only the data within the limit is handed on, in every framing.
        let seen = |framing: Framing, body: &[u8], limit: usize| {
            let mut seen = Vec::new();
            let mut b = BodyReader::new(framing, limit);
            let _ = b.feed_data(body, |piece| {
                seen.extend_from_slice(piece);
                false
            });
            seen
        };
        assert_eq!(seen(Framing::UntilEof, b"abcdef", 4), b"abcd");
        assert_eq!(seen(Framing::Length(5), b"abcdef", 4), b"abcd");
        assert_eq!(seen(Framing::Length(3), b"abcdef", 4), b"abc");
        assert_eq!(seen(Framing::Chunked, b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", 4), b"abcd");
        // Found: the reader stops there.
        let mut b = BodyReader::new(Framing::Chunked, 100);
        assert_eq!(b.feed_data(b"2\r\nab\r\n", |p| p == b"ab"), Ok(Progress::Done));
    }

    #[test]
    fn lengths_and_eof() {
        let mut b = BodyReader::new(Framing::Length(10), 4);
        assert_eq!(b.feed(b"abc"), Ok(Progress::More));
        assert_eq!(b.eof(), Err(Error::BodyCut));
        assert_eq!(b.feed(b"d"), Ok(Progress::Done));
        let mut b = BodyReader::new(Framing::UntilEof, 4);
        assert_eq!(b.feed(b"ab"), Ok(Progress::More));
        assert_eq!(b.eof(), Ok(()));
        assert_eq!(BodyReader::new(Framing::Chunked, 4).eof(), Err(Error::BodyCut));
    }
}
