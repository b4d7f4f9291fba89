//! DNS messages (RFC 1035): the query we send and the checks an answer must
//! pass before its records are believed. Pure: bytes in, values out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record types we ask for or follow.
pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// The UDP payload size we advertise with EDNS0: the size the DNS flag day
/// 2020 settled on, safe from IP fragmentation on any path.
pub(crate) const EDNS_UDP_SIZE: u16 = 1232;
/// Addresses kept from one answer; the rest are dropped. A probe tries them
/// in turn within one deadline, so more would never be reached.
pub const MAX_ADDRS: usize = 8;
/// CNAME links followed within one answer.
const MAX_CNAMES: usize = 8;
/// A name in wire form is at most 255 bytes (RFC 1035 3.1).
const MAX_NAME: usize = 255;
/// Compression pointers followed while reading one name: more is a loop.
const MAX_POINTERS: usize = 32;
/// Records looked at in one answer section; a real one holds a few.
const MAX_RECORDS: usize = 64;

const HEADER: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const OPCODE_MASK: u16 = 0x7800;

pub(crate) const RCODE_NOERROR: u8 = 0;
pub(crate) const RCODE_SERVFAIL: u8 = 2;
pub(crate) const RCODE_NXDOMAIN: u8 = 3;

/// Encodes `name` (dotted, without the root dot) as wire-form labels in
/// lower case, or None when it is not a valid DNS name.
pub fn encode_name(name: &str) -> Option<Vec<u8>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    (out.len() <= MAX_NAME).then_some(out)
}

/// Appends a recursive query for `qname` (wire form) and `qtype`, with an
/// EDNS0 OPT record so answers up to [`EDNS_UDP_SIZE`] come over UDP.
pub(crate) fn write_query(out: &mut Vec<u8>, id: u16, qname: &[u8], qtype: u16) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]); // 1 question, 1 additional
    out.extend_from_slice(qname);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root name, type, class = payload size, TTL = rcode/version/flags 0.
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

/// What an answer to our question says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// NOERROR: the addresses of the name (after CNAMEs), capped at
    /// [`MAX_ADDRS`], and the smallest TTL of the records used. No address
    /// is NODATA: the name exists but has no record of this type.
    Addrs { addrs: Vec<IpAddr>, ttl: u32 },
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// The answer did not fit (TC): ask again over TCP.
    Truncated,
    /// SERVFAIL, REFUSED and the other error codes: ask the next server.
    ServerFailure(u8),
}

/// Why an answer was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not an answer to our query (wrong ID or question): ignore it, the
    /// real answer may still come.
    Mismatch,
    /// Cut short, looping pointers, bad lengths.
    Malformed,
}

/// Parses an answer to the query `id` for `qname` (wire form, lower case)
/// and `qtype`. The question is checked before any record is believed.
pub fn parse_reply(msg: &[u8], id: u16, qname: &[u8], qtype: u16) -> Result<Reply, Invalid> {
    if msg.len() < HEADER {
        return Err(Invalid::Malformed);
    }
    if u16::from_be_bytes([msg[0], msg[1]]) != id {
        return Err(Invalid::Mismatch);
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & FLAG_QR == 0 || flags & OPCODE_MASK != 0 {
        return Err(Invalid::Mismatch);
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    // A truncated answer may carry no question at all; its ID matched.
    if flags & FLAG_TC != 0 && qdcount == 0 {
        return Ok(Reply::Truncated);
    }
    if qdcount != 1 {
        return Err(Invalid::Mismatch);
    }
    let mut name = Vec::with_capacity(MAX_NAME);
    let pos = read_name(msg, HEADER, &mut name)?;
    let question = msg.get(pos..pos + 4).ok_or(Invalid::Malformed)?;
    if name != qname
        || u16::from_be_bytes([question[0], question[1]]) != qtype
        || u16::from_be_bytes([question[2], question[3]]) != CLASS_IN
    {
        return Err(Invalid::Mismatch);
    }
    if flags & FLAG_TC != 0 {
        return Ok(Reply::Truncated);
    }
    match (flags & 0x000f) as u8 {
        RCODE_NOERROR => {}
        RCODE_NXDOMAIN => return Ok(Reply::NoSuchName),
        rcode => return Ok(Reply::ServerFailure(rcode)),
    }
    let records = read_answers(msg, pos + 4, ancount, &mut name)?;
    Ok(follow(&records, qname, qtype))
}

/// One answer record that matters to us: its owner and what it says.
struct Record {
    owner: Vec<u8>,
    ttl: u32,
    data: Data,
}

enum Data {
    Addr(IpAddr),
    Cname(Vec<u8>),
}

fn read_answers(msg: &[u8], mut pos: usize, count: u16, scratch: &mut Vec<u8>) -> Result<Vec<Record>, Invalid> {
    let mut records = Vec::new();
    for _ in 0..usize::from(count).min(MAX_RECORDS) {
        pos = read_name(msg, pos, scratch)?;
        let fixed = msg.get(pos..pos + 10).ok_or(Invalid::Malformed)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let start = pos + 10;
        let rdata = msg.get(start..start + len).ok_or(Invalid::Malformed)?;
        pos = start + len;
        // RFC 2181 8: a TTL with the top bit set is taken as zero.
        let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
        let data = match (rtype, class, len) {
            (TYPE_A, CLASS_IN, 4) => Data::Addr(IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))),
            (TYPE_AAAA, CLASS_IN, 16) => {
                let octets: [u8; 16] = rdata.try_into().map_err(|_| Invalid::Malformed)?;
                Data::Addr(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            (TYPE_A | TYPE_AAAA, CLASS_IN, _) => return Err(Invalid::Malformed),
            (TYPE_CNAME, CLASS_IN, _) => {
                let mut target = Vec::new();
                let end = read_name(msg, start, &mut target)?;
                if end != pos {
                    return Err(Invalid::Malformed);
                }
                Data::Cname(target)
            }
            _ => continue,
        };
        records.push(Record { owner: scratch.clone(), ttl, data });
    }
    Ok(records)
}

/// Follows CNAMEs from `qname` within the answer, then keeps the addresses
/// of the final name. Records about other names are not believed.
fn follow(records: &[Record], qname: &[u8], qtype: u16) -> Reply {
    let mut name = qname;
    let mut ttl = u32::MAX;
    for _ in 0..MAX_CNAMES {
        let next = records.iter().find_map(|r| match &r.data {
            Data::Cname(target) if r.owner == name => Some((target, r.ttl)),
            _ => None,
        });
        let Some((target, cname_ttl)) = next else { break };
        name = target;
        ttl = ttl.min(cname_ttl);
    }
    let mut addrs = Vec::new();
    for r in records.iter().filter(|r| r.owner == name) {
        let Data::Addr(addr) = r.data else { continue };
        let wanted = matches!((addr, qtype), (IpAddr::V4(_), TYPE_A) | (IpAddr::V6(_), TYPE_AAAA));
        if wanted && addrs.len() < MAX_ADDRS && !addrs.contains(&addr) {
            addrs.push(addr);
            ttl = ttl.min(r.ttl);
        }
    }
    if addrs.is_empty() {
        ttl = 0;
    }
    Reply::Addrs { addrs, ttl }
}

/// Reads the (possibly compressed) name at `pos` into `out` in wire form,
/// lower case; returns the position after it in the message.
fn read_name(msg: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Result<usize, Invalid> {
    out.clear();
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *msg.get(pos).ok_or(Invalid::Malformed)?;
        match len {
            0 => {
                out.push(0);
                if out.len() > MAX_NAME {
                    return Err(Invalid::Malformed);
                }
                return Ok(end.unwrap_or(pos + 1));
            }
            1..=63 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len)).ok_or(Invalid::Malformed)?;
                out.push(len);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                if out.len() >= MAX_NAME {
                    return Err(Invalid::Malformed);
                }
                pos += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let low = *msg.get(pos + 1).ok_or(Invalid::Malformed)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                pointers += 1;
                // Pointers only go backwards: with the count bound this
                // rules out loops.
                if target >= pos || pointers > MAX_POINTERS {
                    return Err(Invalid::Malformed);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(Invalid::Malformed), // 0x40 and 0x80: reserved label types
        }
    }
}

/// Builds answers for tests and the fuzz seeds: the question, then each
/// record `(owner, type, ttl, rdata)` with the owner written in full.
pub fn build_reply(id: u16, flags: u16, qname: &[u8], qtype: u16, records: &[(&[u8], u16, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(flags | FLAG_QR).to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(qname);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    for (owner, rtype, ttl, rdata) in records {
        out.extend_from_slice(owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Vec<u8> {
        encode_name(s).unwrap()
    }

    #[test]
    fn encodes_names() {
        assert_eq!(name("Db.Example."), b"\x02db\x07example\x00");
        assert_eq!(name("a"), b"\x01a\x00");
        for bad in ["", ".", "a..b", ".a", &"x".repeat(64), &["abcdefghi"; 26].join(".")] {
            assert_eq!(encode_name(bad), None, "{bad}");
        }
        assert!(encode_name(&["abcdefghi"; 25].join(".")).is_some());
    }

    #[test]
    fn encodes_a_query_with_edns() {
        let mut q = Vec::new();
        write_query(&mut q, 0xbeef, &name("db"), TYPE_AAAA);
        assert_eq!(
            q,
            b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x02db\x00\x00\x1c\x00\x01\
              \x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
        );
    }

    #[test]
    fn parses_addresses_and_the_smallest_ttl() {
        let q = name("db.svc");
        let msg = build_reply(7, 0, &q, TYPE_A, &[(&q, TYPE_A, 30, &[10, 0, 0, 1]), (&q, TYPE_A, 5, &[10, 0, 0, 2])]);
        assert_eq!(
            parse_reply(&msg, 7, &q, TYPE_A),
            Ok(Reply::Addrs { addrs: vec![[10, 0, 0, 1].into(), [10, 0, 0, 2].into()], ttl: 5 })
        );
        let v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let msg = build_reply(8, 0, &q, TYPE_AAAA, &[(&q, TYPE_AAAA, 60, &v6)]);
        assert_eq!(parse_reply(&msg, 8, &q, TYPE_AAAA), Ok(Reply::Addrs { addrs: vec![IpAddr::from(v6)], ttl: 60 }));
    }

    #[test]
    fn follows_compression_pointers_and_cname_chains() {
        // db -> x.cdn -> y.cdn (A), all written with pointers into the
        // question; records out of order; a stray A for another name.
        let q = name("db.example");
        let mut msg = build_reply(1, 0, &q, TYPE_A, &[]);
        msg[7] = 4; // ancount
        let at_q = [0xc0, 12]; // "db.example" at offset 12
        let x_cdn_at = msg.len() + 12; // where the CNAME's rdata starts
                                       // db.example CNAME x.cdn
        msg.extend_from_slice(&at_q);
        msg.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0, 50, 0, 7]);
        msg.extend_from_slice(b"\x01x\x03cdn\x00");
        // y.cdn A 10.9.9.9 (after the CNAME that names it)
        let y_at = msg.len();
        msg.extend_from_slice(b"\x01y");
        msg.extend_from_slice(&[0xc0, (x_cdn_at + 2) as u8]); // "cdn"
        msg.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 20, 0, 4, 10, 9, 9, 9]);
        // x.cdn CNAME y.cdn
        msg.extend_from_slice(&[0xc0, x_cdn_at as u8]);
        msg.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0, 40, 0, 2, 0xc0, y_at as u8]);
        // an A record for another name: not believed
        msg.extend_from_slice(b"\x04evil\x00");
        msg.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 99, 0, 4, 6, 6, 6, 6]);
        assert_eq!(parse_reply(&msg, 1, &q, TYPE_A), Ok(Reply::Addrs { addrs: vec![[10, 9, 9, 9].into()], ttl: 20 }));
    }

    #[test]
    fn tells_nxdomain_from_nodata() {
        let q = name("nope");
        let msg = build_reply(2, RCODE_NXDOMAIN as u16, &q, TYPE_A, &[]);
        assert_eq!(parse_reply(&msg, 2, &q, TYPE_A), Ok(Reply::NoSuchName));
        let msg = build_reply(2, 0, &q, TYPE_A, &[]);
        assert_eq!(parse_reply(&msg, 2, &q, TYPE_A), Ok(Reply::Addrs { addrs: vec![], ttl: 0 }));
        // A CNAME to a name without A records is NODATA too.
        let msg = build_reply(2, 0, &q, TYPE_A, &[(&q, TYPE_CNAME, 9, &name("other"))]);
        assert_eq!(parse_reply(&msg, 2, &q, TYPE_A), Ok(Reply::Addrs { addrs: vec![], ttl: 0 }));
        let msg = build_reply(2, RCODE_SERVFAIL as u16, &q, TYPE_A, &[]);
        assert_eq!(parse_reply(&msg, 2, &q, TYPE_A), Ok(Reply::ServerFailure(2)));
        let msg = build_reply(2, 5, &q, TYPE_A, &[]);
        assert_eq!(parse_reply(&msg, 2, &q, TYPE_A), Ok(Reply::ServerFailure(5)));
    }

    #[test]
    fn sees_truncation() {
        let q = name("big");
        let msg = build_reply(3, FLAG_TC, &q, TYPE_A, &[]);
        assert_eq!(parse_reply(&msg, 3, &q, TYPE_A), Ok(Reply::Truncated));
        // Some servers send a truncated header with no question.
        let mut bare = msg[..12].to_vec();
        bare[5] = 0;
        assert_eq!(parse_reply(&bare, 3, &q, TYPE_A), Ok(Reply::Truncated));
        assert_eq!(parse_reply(&msg, 3, &name("other"), TYPE_A), Err(Invalid::Mismatch));
    }

    #[test]
    fn ignores_answers_to_other_questions() {
        let q = name("db");
        let ok = build_reply(4, 0, &q, TYPE_A, &[(&q, TYPE_A, 1, &[1, 2, 3, 4])]);
        assert!(parse_reply(&ok, 4, &q, TYPE_A).is_ok());
        assert_eq!(parse_reply(&ok, 5, &q, TYPE_A), Err(Invalid::Mismatch), "wrong id");
        assert_eq!(parse_reply(&ok, 4, &name("dc"), TYPE_A), Err(Invalid::Mismatch), "wrong name");
        assert_eq!(parse_reply(&ok, 4, &q, TYPE_AAAA), Err(Invalid::Mismatch), "wrong type");
        let mut query = Vec::new();
        write_query(&mut query, 4, &q, TYPE_A);
        assert_eq!(parse_reply(&query, 4, &q, TYPE_A), Err(Invalid::Mismatch), "a query, not an answer");
        // Case differs (0x20 randomisation by a resolver): still ours.
        let upper = build_reply(4, 0, b"\x02DB\x00", TYPE_A, &[(b"\x02Db\x00", TYPE_A, 1, &[1, 2, 3, 4])]);
        assert_eq!(parse_reply(&upper, 4, &q, TYPE_A), Ok(Reply::Addrs { addrs: vec![[1, 2, 3, 4].into()], ttl: 1 }));
    }

    #[test]
    fn rejects_malformed_answers() {
        let q = name("db");
        let ok = build_reply(4, 0, &q, TYPE_A, &[(&q, TYPE_A, 1, &[1, 2, 3, 4])]);
        for cut in 0..ok.len() {
            assert!(parse_reply(&ok[..cut], 4, &q, TYPE_A).is_err(), "cut at {cut}");
        }
        // A record with a 3-byte address.
        let bad = build_reply(4, 0, &q, TYPE_A, &[(&q, TYPE_A, 1, &[1, 2, 3])]);
        assert_eq!(parse_reply(&bad, 4, &q, TYPE_A), Err(Invalid::Malformed));
        // A pointer to itself, and one forwards.
        let mut looped = build_reply(4, 0, &q, TYPE_A, &[]);
        looped[7] = 1;
        let at = looped.len() as u8;
        looped.extend_from_slice(&[0xc0, at, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse_reply(&looped, 4, &q, TYPE_A), Err(Invalid::Malformed));
        looped[at as usize + 1] = at + 4;
        assert_eq!(parse_reply(&looped, 4, &q, TYPE_A), Err(Invalid::Malformed));
    }

    #[test]
    fn keeps_a_bounded_number_of_addresses() {
        let q = name("many");
        let ips: Vec<[u8; 4]> = (0..40).map(|i| [10, 0, 0, i]).collect();
        let records: Vec<(&[u8], u16, u32, &[u8])> =
            ips.iter().map(|ip| (q.as_slice(), TYPE_A, 5, ip.as_slice())).collect();
        let msg = build_reply(9, 0, &q, TYPE_A, &records);
        let Ok(Reply::Addrs { addrs, .. }) = parse_reply(&msg, 9, &q, TYPE_A) else { panic!() };
        assert_eq!(addrs.len(), MAX_ADDRS);
    }
}
