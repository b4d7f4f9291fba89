//! HTTP/2 framing (RFC 9113 section 4): the frame header parser, in
//! httparse's style (`Partial` is not an error), the payload rules of the
//! frames a client must read, and the writer for the frames it sends.

/// The client connection preface (3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Largest frame payload we accept: SETTINGS_MAX_FRAME_SIZE, which we
/// leave at its default (4.2), so a larger frame is the peer's error.
pub const MAX_FRAME: usize = 16 * 1024;

/// Octets in a frame header.
pub const HEADER_LEN: usize = 9;

pub(crate) const DATA: u8 = 0x0;
pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const PRIORITY: u8 = 0x2;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PUSH_PROMISE: u8 = 0x5;
pub(crate) const PING: u8 = 0x6;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const WINDOW_UPDATE: u8 = 0x8;
pub(crate) const CONTINUATION: u8 = 0x9;

pub(crate) const END_STREAM: u8 = 0x1;
pub(crate) const ACK: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;
pub(crate) const PADDED: u8 = 0x8;
pub(crate) const PRIORITY_FLAG: u8 = 0x20;

/// SETTINGS identifiers (6.5.2) the client sends or checks.
pub(crate) const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub(crate) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(crate) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub(crate) const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// One frame, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
    pub(crate) payload: &'a [u8],
}

/// A frame the connection cannot go on after (a connection error, 5.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    /// A payload over [`MAX_FRAME`], or the wrong length for its type.
    FrameSize,
    /// Anything else the RFC calls a PROTOCOL_ERROR.
    Protocol,
}

/// The result of [`parse`]: a frame and the octets it used, or a need for more.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status<'a> {
    Complete(Frame<'a>, usize),
    Partial,
}

/// The payload length a frame header announces, checked against the bound
/// as soon as the header is there, before any payload is buffered.
pub(crate) fn payload_len(header: &[u8; HEADER_LEN]) -> Result<usize, Error> {
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    if len > MAX_FRAME {
        return Err(Error::FrameSize);
    }
    Ok(len)
}

/// Parses the frame at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Status<'_>, Error> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Status::Partial);
    };
    let len = payload_len(header)?;
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(Status::Partial);
    };
    // The stream identifier's reserved top bit is ignored on receipt (4.1).
    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let frame = Frame { kind: header[3], flags: header[4], stream, payload };
    Ok(Status::Complete(frame, HEADER_LEN + len))
}

impl<'a> Frame<'a> {
    /// The payload of a DATA or HEADERS frame without its padding (6.1),
    /// and for HEADERS without the priority fields (6.2).
    pub(crate) fn content(&self) -> Result<&'a [u8], Error> {
        let mut payload = self.payload;
        let mut pad = 0;
        if self.flags & PADDED != 0 {
            let (&len, rest) = payload.split_first().ok_or(Error::FrameSize)?;
            payload = rest;
            pad = usize::from(len);
        }
        if self.kind == HEADERS && self.flags & PRIORITY_FLAG != 0 {
            payload = payload.get(5..).ok_or(Error::FrameSize)?;
        }
        // Padding that is not shorter than what is left is a PROTOCOL_ERROR.
        let end = payload.len().checked_sub(pad).ok_or(Error::Protocol)?;
        Ok(&payload[..end])
    }

    /// Checks the payload rules of the frame types a client reads (section
    /// 6); DATA, HEADERS and CONTINUATION are checked by their reader.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let len = self.payload.len();
        let on_connection = self.stream == 0;
        match self.kind {
            DATA | HEADERS | CONTINUATION | RST_STREAM | PRIORITY if on_connection => Err(Error::Protocol),
            PRIORITY if len != 5 => Err(Error::FrameSize),
            RST_STREAM | WINDOW_UPDATE if len != 4 => Err(Error::FrameSize),
            SETTINGS | PING | GOAWAY if !on_connection => Err(Error::Protocol),
            SETTINGS if self.flags & ACK != 0 && len != 0 => Err(Error::FrameSize),
            SETTINGS if len % 6 != 0 => Err(Error::FrameSize),
            PING if len != 8 => Err(Error::FrameSize),
            GOAWAY if len < 8 => Err(Error::FrameSize),
            _ => Ok(()),
        }
    }

    /// The settings of a SETTINGS frame, checked against their ranges (6.5.2).
    pub(crate) fn settings(&self) -> impl Iterator<Item = Result<(u16, u32), Error>> + 'a {
        self.payload.chunks_exact(6).map(|s| {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            let ok = match id {
                SETTINGS_ENABLE_PUSH => value <= 1,
                SETTINGS_INITIAL_WINDOW_SIZE => value <= 0x7fff_ffff,
                SETTINGS_MAX_FRAME_SIZE => (16_384..=16_777_215).contains(&value),
                _ => true,
            };
            if ok {
                Ok((id, value))
            } else {
                Err(Error::Protocol)
            }
        })
    }
}

/// Appends a frame header; the payload is the caller's to append.
pub(crate) fn write_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_FRAME);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Appends a whole frame.
pub(crate) fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    write_header(out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, kind, flags, stream, payload);
        out
    }

    #[test]
    fn parses_whole_and_partial_frames() {
        let bytes = frame(PING, 0, 0, b"12345678");
        assert_eq!(bytes[..9], [0, 0, 8, 6, 0, 0, 0, 0, 0]);
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), Ok(Status::Partial), "cut {cut}");
        }
        let mut two = bytes.clone();
        two.extend_from_slice(&frame(SETTINGS, ACK, 0, b""));
        let Ok(Status::Complete(f, used)) = parse(&two) else { panic!() };
        assert_eq!((f.kind, f.payload, used), (PING, &b"12345678"[..], 17));
        let Ok(Status::Complete(f, used)) = parse(&two[used..]) else { panic!() };
        assert_eq!((f.kind, f.flags, used), (SETTINGS, ACK, 9));
        // The reserved bit is ignored.
        let reserved = frame(DATA, 0, 0x8000_0001, b"");
        let Ok(Status::Complete(f, _)) = parse(&reserved) else { panic!() };
        assert_eq!(f.stream, 1);
    }

    #[test]
    fn refuses_oversized_frames_from_the_header_alone() {
        assert_eq!(parse(&[0, 0x40, 0x01, 0, 0, 0, 0, 0, 1]), Err(Error::FrameSize));
        // An HTTP/1.1 answer read as a frame header is far too large.
        assert_eq!(parse(b"HTTP/1.1 400 Bad Request\r\n"), Err(Error::FrameSize));
        let max = frame(DATA, 0, 1, &[0; MAX_FRAME]);
        assert!(matches!(parse(&max), Ok(Status::Complete(_, n)) if n == MAX_FRAME + 9));
    }

    #[test]
    fn strips_padding_and_priority() {
        let f = |kind, flags, payload: &'static [u8]| Frame { kind, flags, stream: 1, payload };
        assert_eq!(f(DATA, 0, b"abc").content(), Ok(&b"abc"[..]));
        assert_eq!(f(DATA, PADDED, b"\x02abc\0\0").content(), Ok(&b"abc"[..]));
        assert_eq!(f(DATA, PADDED, b"\x03abc").content(), Ok(&b""[..]));
        assert_eq!(f(DATA, PADDED, b"\x04abc").content(), Err(Error::Protocol));
        assert_eq!(f(DATA, PADDED, b"").content(), Err(Error::FrameSize));
        assert_eq!(f(HEADERS, PRIORITY_FLAG, b"\0\0\0\x03\x10hdr").content(), Ok(&b"hdr"[..]));
        assert_eq!(f(HEADERS, PRIORITY_FLAG | PADDED, b"\x01\0\0\0\x03\x10hdr\0").content(), Ok(&b"hdr"[..]));
        assert_eq!(f(HEADERS, PRIORITY_FLAG, b"\0\0\0").content(), Err(Error::FrameSize));
        // DATA has no priority fields: the flag means nothing there.
        assert_eq!(f(DATA, PRIORITY_FLAG, b"abcdef").content(), Ok(&b"abcdef"[..]));
    }

    #[test]
    fn validates_control_frames() {
        let f = |kind, flags, stream, payload: &'static [u8]| Frame { kind, flags, stream, payload }.validate();
        assert_eq!(f(SETTINGS, 0, 0, b""), Ok(()));
        assert_eq!(f(SETTINGS, 0, 1, b""), Err(Error::Protocol));
        assert_eq!(f(SETTINGS, 0, 0, b"12345"), Err(Error::FrameSize));
        assert_eq!(f(SETTINGS, ACK, 0, b"123456"), Err(Error::FrameSize));
        assert_eq!(f(PING, 0, 0, b"1234567"), Err(Error::FrameSize));
        assert_eq!(f(GOAWAY, 0, 0, b"1234567"), Err(Error::FrameSize));
        assert_eq!(f(GOAWAY, 0, 0, b"12345678debug"), Ok(()));
        assert_eq!(f(RST_STREAM, 0, 0, b"1234"), Err(Error::Protocol));
        assert_eq!(f(WINDOW_UPDATE, 0, 0, b"123"), Err(Error::FrameSize));
        assert_eq!(f(WINDOW_UPDATE, 0, 0, b"1234"), Ok(()));
        assert_eq!(f(PRIORITY, 0, 3, b"12345"), Ok(()));
        assert_eq!(f(DATA, 0, 0, b""), Err(Error::Protocol));
        assert_eq!(f(0xfa, 0xff, 7, b"unknown types are fine"), Ok(()));

        let s = Frame { kind: SETTINGS, flags: 0, stream: 0, payload: b"\0\x02\0\0\0\x01\0\x05\0\0\x40\0" };
        assert_eq!(s.settings().collect::<Vec<_>>(), [Ok((2, 1)), Ok((5, 16_384))]);
        let s = Frame { kind: SETTINGS, flags: 0, stream: 0, payload: b"\0\x05\0\0\x3f\xff" };
        assert_eq!(s.settings().next(), Some(Err(Error::Protocol)));
        let s = Frame { kind: SETTINGS, flags: 0, stream: 0, payload: b"\0\x04\x80\0\0\0" };
        assert_eq!(s.settings().next(), Some(Err(Error::Protocol)));
    }
}
