//! The two protobuf messages of grpc.health.v1: `HealthCheckRequest`
//! written, `HealthCheckResponse.status` read, every other field skipped
//! whatever its wire type.

/// `HealthCheckResponse.ServingStatus` values.
pub(crate) const UNKNOWN: i32 = 0;
pub(crate) const SERVING: i32 = 1;
pub(crate) const NOT_SERVING: i32 = 2;
pub(crate) const SERVICE_UNKNOWN: i32 = 3;

/// Nesting allowed for (deprecated) groups inside unknown fields.
const MAX_GROUP_DEPTH: usize = 16;

/// Appends `HealthCheckRequest{service}`: field 1, a string; an empty one
/// is not written at all (proto3 defaults are implicit).
pub(crate) fn write_request(out: &mut Vec<u8>, service: &[u8]) {
    if !service.is_empty() {
        out.push(1 << 3 | 2);
        write_varint(out, service.len() as u64);
        out.extend_from_slice(service);
    }
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The `status` of a `HealthCheckResponse` (0, UNKNOWN, when absent; the
/// last occurrence wins, as protobuf merges); None when malformed.
pub fn read_status(mut msg: &[u8]) -> Option<i32> {
    let mut status = UNKNOWN;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return None;
        }
        if field == 1 && wire == 0 {
            // An enum is an int32 sent as a sign-extended varint.
            status = varint(&mut msg)? as i32;
        } else if field == 1 {
            return None; // the wrong wire type for the field we read
        } else {
            skip(&mut msg, wire, field, 0)?;
        }
    }
    Some(status)
}

/// Skips one field's value of wire type `wire`.
fn skip(msg: &mut &[u8], wire: u8, field: u64, depth: usize) -> Option<()> {
    match wire {
        0 => {
            varint(msg)?;
        }
        1 => *msg = msg.get(8..)?,
        2 => {
            let len = usize::try_from(varint(msg)?).ok()?;
            *msg = msg.get(len..)?;
        }
        5 => *msg = msg.get(4..)?,
        // A group: fields until the END_GROUP with the same field number.
        3 => {
            if depth >= MAX_GROUP_DEPTH {
                return None;
            }
            loop {
                let key = varint(msg)?;
                let (inner, inner_wire) = (key >> 3, (key & 7) as u8);
                if inner == 0 {
                    return None;
                }
                if inner_wire == 4 {
                    return (inner == field).then_some(());
                }
                skip(msg, inner_wire, inner, depth + 1)?;
            }
        }
        _ => return None, // 4 (END_GROUP) without a group, 6 and 7
    }
    Some(())
}

/// Reads a base-128 varint of at most 10 octets that fits in 64 bits.
fn varint(msg: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = msg.split_first()?;
        *msg = rest;
        // The tenth octet may carry only the 64th bit.
        if i == 9 && b > 1 {
            return None;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_requests() {
        let mut out = Vec::new();
        write_request(&mut out, b"");
        assert!(out.is_empty());
        write_request(&mut out, b"orders.v1.Orders");
        assert_eq!(out[..2], [0x0a, 16]);
        assert_eq!(&out[2..], b"orders.v1.Orders");
        let mut out = Vec::new();
        write_request(&mut out, &[b'x'; 200]);
        assert_eq!(out[..3], [0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn reads_the_status() {
        let cases: [(&[u8], Option<i32>); 18] = [
            (b"", Some(UNKNOWN)),
            (b"\x08\x01", Some(SERVING)),
            (b"\x08\x02", Some(NOT_SERVING)),
            (b"\x08\x03", Some(SERVICE_UNKNOWN)),
            (b"\x08\x01\x08\x02", Some(NOT_SERVING)), // the last one wins
            (b"\x08\x07", Some(7)),
            (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", Some(-1)),
            // Unknown fields of every wire type, before and after.
            (b"\x10\x96\x01\x08\x01", Some(SERVING)),
            (b"\x19\x01\x02\x03\x04\x05\x06\x07\x08\x08\x01", Some(SERVING)),
            (b"\x08\x01\x22\x03abc", Some(SERVING)),
            (b"\x2d\x01\x02\x03\x04\x08\x01", Some(SERVING)),
            (b"\x33\x08\x02\x3b\x40\x05\x3c\x34\x08\x01", Some(SERVING)), // group 6 holding group 7
            // Malformed.
            (b"\x08", None),
            (b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", None), // 11 octets
            (b"\x0a\x01\x01", None),                                     // field 1 as bytes
            (b"\x22\x05abc", None),
            (b"\x34", None),             // END_GROUP alone
            (b"\x33\x08\x02\x44", None), // group closed with another number
        ];
        for (i, (msg, want)) in cases.iter().enumerate() {
            assert_eq!(read_status(msg), *want, "case {i}");
        }
        assert_eq!(read_status(b"\x00\x01"), None); // field 0
        assert_eq!(read_status(b"\x0e"), None); // wire type 6
        assert_eq!(read_status(&[0x33; 100]), None); // groups nested past the bound
    }
}
