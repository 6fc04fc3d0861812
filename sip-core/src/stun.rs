//! STUN (RFC 5389) as far as SIP outbound keep-alives need it: pure encoding and decoding.
//!
//! RFC 5626 §4.4.2 keeps a UDP flow alive with STUN Binding requests sent to the registrar
//! (or edge proxy) on the same 5-tuple as SIP; the server answers with the address it saw the
//! request come from (XOR-MAPPED-ADDRESS). A missing answer, or a changed address (the NAT
//! rebound the flow), means the flow has failed. STUN and SIP share the port; RFC 5626 §5.1
//! tells them apart by the first two bits (always 0 in STUN, a letter in SIP) and the magic
//! cookie ([`is_stun`]).
//!
//! This module owns no socket and no clock: it builds Binding requests with a transaction id
//! drawn from the injected generator ([`TransactionId::random`]), parses whatever arrives
//! ([`Message::parse`] never panics, whatever the bytes), and builds the success response a
//! server sends ([`binding_success`]). Timing (RTO, retransmissions, the 39.5 s transaction
//! timeout) lives in [`crate::flow`].
//!
//! ```
//! use rand_core::SeedableRng;
//! use tincan_sip::rng::XorShiftRng;
//! use tincan_sip::stun::{self, Class, Message, TransactionId};
//!
//! let mut rng = XorShiftRng::seed_from_u64(1);
//! let id = TransactionId::random(&mut rng);
//! let request = stun::binding_request(id, true);
//! assert!(stun::is_stun(&request));
//! assert!(!stun::is_stun(b"OPTIONS sip:a@b SIP/2.0\r\n"));
//!
//! // What a server (kamailio's stun module, or Tincan itself) answers:
//! let seen_from = "192.0.2.1:32853".parse().unwrap();
//! let response = stun::binding_success(id, seen_from, true);
//! let parsed = Message::parse(&response).unwrap();
//! assert_eq!(parsed.class, Class::SuccessResponse);
//! assert_eq!(parsed.transaction, id);
//! assert_eq!(parsed.mapped_address(), Some(seen_from));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rand_core::Rng;

/// The magic cookie, RFC 5389 §6: bytes 4-7 of every STUN message (and the key of the
/// XOR-MAPPED-ADDRESS obfuscation).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// The length of the STUN header, RFC 5389 §6: type, length, cookie, transaction id.
pub const HEADER_LEN: usize = 20;

/// The Binding method, RFC 5389 §18.1.
pub const BINDING: u16 = 0x001;

/// MAPPED-ADDRESS, RFC 5389 §15.1.
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
/// ERROR-CODE, RFC 5389 §15.6.
const ATTR_ERROR_CODE: u16 = 0x0009;
/// XOR-MAPPED-ADDRESS, RFC 5389 §15.2.
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// OTHER-ADDRESS, RFC 5780 §7.4: the server's alternate address (another IP and port), for
/// NAT behaviour discovery.
const ATTR_OTHER_ADDRESS: u16 = 0x802C;
/// FINGERPRINT, RFC 5389 §15.5: CRC-32 of the message up to it, XOR this value.
const ATTR_FINGERPRINT: u16 = 0x8028;
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// A STUN transaction id: 96 random bits (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh id from the injected generator.
    pub fn random(rng: &mut dyn Rng) -> TransactionId {
        let mut id = [0u8; 12];
        rng.fill_bytes(&mut id);
        TransactionId(id)
    }
}

impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The class of a STUN message (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request (a Binding request asks for the mapped address).
    Request,
    /// An indication (no response).
    Indication,
    /// A success response.
    SuccessResponse,
    /// An error response (with ERROR-CODE).
    ErrorResponse,
}

/// Why bytes are not a usable STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Not STUN at all (too short, first bits not 0, no magic cookie, length not a multiple
    /// of 4 or not the datagram's).
    #[error("not a stun message")]
    NotStun,
    /// An attribute runs past the end of the message.
    #[error("stun attribute {kind:#06x} is truncated")]
    Truncated {
        /// The attribute type.
        kind: u16,
    },
    /// An address attribute with an unknown family or a wrong length.
    #[error("malformed stun address attribute {kind:#06x}")]
    BadAddress {
        /// The attribute type.
        kind: u16,
    },
    /// The FINGERPRINT does not match the message (RFC 5389 §15.5).
    #[error("stun fingerprint mismatch")]
    BadFingerprint,
}

/// The ERROR-CODE of an error response (RFC 5389 §15.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    /// 300-699 (class * 100 + number).
    pub code: u16,
    /// The reason phrase (lossy UTF-8).
    pub reason: String,
}

/// A parsed STUN message: the header and the attributes this module understands.
/// Other attributes (SOFTWARE, MESSAGE-INTEGRITY...) are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request, indication, success or error.
    pub class: Class,
    /// The method ([`BINDING`] for keep-alives).
    pub method: u16,
    /// The transaction id.
    pub transaction: TransactionId,
    /// XOR-MAPPED-ADDRESS, if present.
    pub xor_mapped_address: Option<SocketAddr>,
    /// MAPPED-ADDRESS (RFC 3489 servers), if present.
    pub mapped_address: Option<SocketAddr>,
    /// OTHER-ADDRESS (RFC 5780 §7.4: a server that can be asked from another address), if
    /// present.
    pub other_address: Option<SocketAddr>,
    /// ERROR-CODE, if present.
    pub error: Option<ErrorCode>,
    /// Whether a FINGERPRINT was present (and matched: a mismatch is an error).
    pub fingerprint: bool,
}

/// True when a datagram is a STUN message, not SIP (RFC 5626 §5.1, RFC 5389 §6): at least a
/// header, the first two bits 0, the magic cookie, and a length field (a multiple of 4) that
/// covers the rest of the datagram.
pub fn is_stun(datagram: &[u8]) -> bool {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xC0 != 0 {
        return false;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let cookie = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
    cookie == MAGIC_COOKIE && length % 4 == 0 && HEADER_LEN + length == datagram.len()
}

/// A Binding request, RFC 5389 §7.1, with FINGERPRINT (§15.5) when asked (it lets the
/// receiver tell STUN from other traffic on a shared port with more certainty).
pub fn binding_request(transaction: TransactionId, fingerprint: bool) -> Vec<u8> {
    let mut out = header(Class::Request, BINDING, transaction);
    if fingerprint {
        add_fingerprint(&mut out);
    }
    out
}

/// The Binding success response a server sends, RFC 5389 §7.3.1: the request's transaction
/// id and XOR-MAPPED-ADDRESS = the source address of the request.
pub fn binding_success(
    transaction: TransactionId,
    mapped: SocketAddr,
    fingerprint: bool,
) -> Vec<u8> {
    let mut out = header(Class::SuccessResponse, BINDING, transaction);
    let value = xor_address(mapped, transaction);
    push_attribute(&mut out, ATTR_XOR_MAPPED_ADDRESS, &value);
    if fingerprint {
        add_fingerprint(&mut out);
    }
    out
}

impl Message {
    /// Parses a STUN message. Never panics: anything that is not a well-formed message is a
    /// [`StunError`].
    pub fn parse(bytes: &[u8]) -> Result<Message, StunError> {
        if !is_stun(bytes) {
            return Err(StunError::NotStun);
        }
        let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
        let (class, method) = split_type(kind);
        let mut id = [0u8; 12];
        id.copy_from_slice(&bytes[8..HEADER_LEN]);
        let transaction = TransactionId(id);
        let mut message = Message {
            class,
            method,
            transaction,
            xor_mapped_address: None,
            mapped_address: None,
            other_address: None,
            error: None,
            fingerprint: false,
        };
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            let Some(head) = bytes.get(at..at + 4) else {
                return Err(StunError::Truncated { kind: 0 });
            };
            let attr = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let Some(value) = bytes.get(at + 4..at + 4 + len) else {
                return Err(StunError::Truncated { kind: attr });
            };
            match attr {
                ATTR_MAPPED_ADDRESS => {
                    message.mapped_address = Some(
                        parse_address(value, None).ok_or(StunError::BadAddress { kind: attr })?,
                    );
                }
                ATTR_OTHER_ADDRESS => {
                    message.other_address = Some(
                        parse_address(value, None).ok_or(StunError::BadAddress { kind: attr })?,
                    );
                }
                ATTR_XOR_MAPPED_ADDRESS => {
                    message.xor_mapped_address = Some(
                        parse_address(value, Some(transaction))
                            .ok_or(StunError::BadAddress { kind: attr })?,
                    );
                }
                ATTR_ERROR_CODE if len >= 4 => {
                    let code = u16::from(value[2] & 0x07) * 100 + u16::from(value[3]);
                    message.error = Some(ErrorCode {
                        code,
                        reason: String::from_utf8_lossy(&value[4..]).into_owned(),
                    });
                }
                ATTR_FINGERPRINT => {
                    if len != 4 {
                        return Err(StunError::BadFingerprint);
                    }
                    // The CRC covers the message up to the attribute, with the length field
                    // as sent (which already counts the FINGERPRINT, RFC 5389 §15.5).
                    let expected = crc32(&bytes[..at]) ^ FINGERPRINT_XOR;
                    if u32::from_be_bytes([value[0], value[1], value[2], value[3]]) != expected {
                        return Err(StunError::BadFingerprint);
                    }
                    message.fingerprint = true;
                    // FINGERPRINT is the last attribute; anything after it is ignored.
                    break;
                }
                _ => {}
            }
            // Values are padded to 4 bytes (RFC 5389 §15).
            at += 4 + len.div_ceil(4) * 4;
        }
        Ok(message)
    }

    /// The mapped address: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an older server.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address.or(self.mapped_address)
    }
}

/// The message type's class and method bits (RFC 5389 §6: M11..M7 C1 M6..M4 C0 M3..M0).
fn split_type(kind: u16) -> (Class, u16) {
    let class = match ((kind >> 7) & 0b10) | ((kind >> 4) & 0b1) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    let method = (kind & 0x000F) | ((kind >> 1) & 0x0070) | ((kind >> 2) & 0x0F80);
    (class, method)
}

fn join_type(class: Class, method: u16) -> u16 {
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::SuccessResponse => 0b10,
        Class::ErrorResponse => 0b11,
    };
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b1) << 4)
        | ((c & 0b10) << 7)
}

fn header(class: Class, method: u16, transaction: TransactionId) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 20);
    out.extend_from_slice(&join_type(class, method).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(&transaction.0);
    out
}

/// Appends an attribute (padded to 4 bytes) and updates the header's length.
fn push_attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    // Attribute values built here are at most 20 bytes.
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().div_ceil(4) * 4, 0);
    set_length(out);
}

fn set_length(out: &mut [u8]) {
    let len = (out.len() - HEADER_LEN) as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
}

/// Appends FINGERPRINT: the length field first counts it, then the CRC is taken.
fn add_fingerprint(out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    set_length(out);
    let crc = crc32(&out[..at]) ^ FINGERPRINT_XOR;
    out[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
}

/// The value of an (XOR-)MAPPED-ADDRESS: family, port, address (RFC 5389 §15.1, §15.2).
fn xor_address(addr: SocketAddr, transaction: TransactionId) -> Vec<u8> {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(&transaction.0);
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut out = vec![0, 0];
    out.extend_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = 0x01;
            out.extend(ip.octets().iter().zip(key).map(|(b, k)| b ^ k));
        }
        IpAddr::V6(ip) => {
            out[1] = 0x02;
            out.extend(ip.octets().iter().zip(key).map(|(b, k)| b ^ k));
        }
    }
    out
}

/// Parses an address attribute value; `xor` un-obfuscates XOR-MAPPED-ADDRESS.
fn parse_address(value: &[u8], xor: Option<TransactionId>) -> Option<SocketAddr> {
    let mut key = [0u8; 16];
    if let Some(t) = xor {
        key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        key[4..].copy_from_slice(&t.0);
    }
    let port =
        u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ u16::from_be_bytes([key[0], key[1]]);
    let family = *value.get(1)?;
    let ip: IpAddr = match (family, value.len()) {
        (0x01, 8) => {
            let mut o = [0u8; 4];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            Ipv4Addr::from(o).into()
        }
        (0x02, 20) => {
            let mut o = [0u8; 16];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            Ipv6Addr::from(o).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// CRC-32 (ISO/IEEE 802.3, reflected, polynomial 0xEDB88320), as FINGERPRINT uses.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShiftRng;
    use proptest::prelude::*;
    use rand_core::SeedableRng;

    #[test]
    fn other_address_is_read_rfc_5780() {
        let id = TransactionId([7; 12]);
        let mut r = binding_success(id, "192.0.2.1:32853".parse().unwrap(), false);
        r.extend_from_slice(&[0x80, 0x2C, 0, 8, 0, 1, 0x0D, 0x97, 198, 51, 100, 3]);
        let len = (r.len() - HEADER_LEN) as u16;
        r[2..4].copy_from_slice(&len.to_be_bytes());
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.other_address, Some("198.51.100.3:3479".parse().unwrap()));
        assert_eq!(m.mapped_address(), Some("192.0.2.1:32853".parse().unwrap()));
        // A truncated one is an error, not a panic.
        let mut bad = binding_success(id, "192.0.2.1:1".parse().unwrap(), false);
        bad.extend_from_slice(&[0x80, 0x2C, 0, 4, 0, 1, 0x0D, 0x97]);
        let len = (bad.len() - HEADER_LEN) as u16;
        bad[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            Message::parse(&bad),
            Err(StunError::BadAddress { kind: 0x802C })
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// RFC 5769 §2.2: the sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS
    /// 192.0.2.1:32853, MESSAGE-INTEGRITY, FINGERPRINT).
    #[test]
    fn rfc5769_ipv4_response() {
        let bytes = hex(
            "0101003c 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563 \
             746f7220 00200008 0001a147 e112a643 00080014 2b91f599 fd9e90c3 8c7489f9 \
             2af9ba53 f06be7d7 80280004 c07d4c96",
        );
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.class, Class::SuccessResponse);
        assert_eq!(m.method, BINDING);
        assert_eq!(m.mapped_address(), Some("192.0.2.1:32853".parse().unwrap()));
        assert!(m.fingerprint);
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(Message::parse(&bad), Err(StunError::BadFingerprint));
    }

    /// RFC 5769 §2.3: the sample IPv6 response.
    #[test]
    fn rfc5769_ipv6_response() {
        let bytes = hex(
            "01010048 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563 \
             746f7220 00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9 00080014 \
             a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41 80280004 c8fb0b4c",
        );
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(
            m.xor_mapped_address,
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
        assert!(m.fingerprint);
    }

    /// What kamailio 5.6's stun module answered on the lab's UDP port (captured).
    #[test]
    fn kamailio_response() {
        let bytes = hex(
            "01010038 2112a442 050a66c9 c45ec85f b3bd5cb6 00200008 0001b361 5e12a443 \
             80220027 53657276 65723a20 6b616d61 696c696f 2028352e 362e3320 28783836 \
             5f36342f 6c696e75 78292900",
        );
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.class, Class::SuccessResponse);
        assert_eq!(m.mapped_address(), Some("127.0.0.1:37491".parse().unwrap()));
        assert!(!m.fingerprint);
    }

    #[test]
    fn request_and_responses_round_trip() {
        let mut rng = XorShiftRng::seed_from_u64(9);
        for addr in ["10.1.2.3:5060", "[2001:db8::1]:40000", "0.0.0.0:0"] {
            let id = TransactionId::random(&mut rng);
            for fp in [false, true] {
                let req = Message::parse(&binding_request(id, fp)).unwrap();
                assert_eq!(
                    (req.class, req.method, req.transaction),
                    (Class::Request, BINDING, id)
                );
                assert_eq!(req.fingerprint, fp);
                let addr: SocketAddr = addr.parse().unwrap();
                let resp = Message::parse(&binding_success(id, addr, fp)).unwrap();
                assert_eq!(resp.class, Class::SuccessResponse);
                assert_eq!(resp.mapped_address(), Some(addr));
            }
        }
        // Fresh ids differ.
        assert_ne!(
            TransactionId::random(&mut rng),
            TransactionId::random(&mut rng)
        );
    }

    #[test]
    fn error_response_and_mapped_address() {
        let id = TransactionId([7; 12]);
        let mut m = header(Class::ErrorResponse, BINDING, id);
        push_attribute(&mut m, ATTR_ERROR_CODE, &[0, 0, 4, 20, b'U', b'n', b'k']);
        push_attribute(
            &mut m,
            ATTR_MAPPED_ADDRESS,
            &[0, 1, 0x13, 0xc4, 10, 0, 0, 1],
        );
        let p = Message::parse(&m).unwrap();
        assert_eq!(p.class, Class::ErrorResponse);
        assert_eq!(
            p.error,
            Some(ErrorCode {
                code: 420,
                reason: "Unk".into()
            })
        );
        assert_eq!(p.mapped_address(), Some("10.0.0.1:5060".parse().unwrap()));
    }

    #[test]
    fn sip_and_garbage_are_not_stun() {
        assert!(!is_stun(b""));
        assert!(!is_stun(b"\r\n\r\n"));
        assert!(!is_stun(
            b"REGISTER sip:example.test SIP/2.0\r\nVia: x\r\n\r\n"
        ));
        let mut req = binding_request(TransactionId([1; 12]), false);
        assert!(is_stun(&req));
        req[4] ^= 1; // cookie
        assert!(!is_stun(&req));
        let mut req = binding_request(TransactionId([1; 12]), true);
        req.push(0); // length no longer covers the datagram
        assert_eq!(Message::parse(&req), Err(StunError::NotStun));
    }

    #[test]
    fn truncated_and_malformed_attributes_are_errors() {
        let id = TransactionId([3; 12]);
        let good = binding_success(id, "1.2.3.4:5".parse().unwrap(), false);
        // An attribute length past the end.
        let mut long = good.clone();
        long[HEADER_LEN + 3] = 200;
        assert!(matches!(
            Message::parse(&long),
            Err(StunError::Truncated { .. })
        ));
        // An unknown address family.
        let mut fam = good.clone();
        fam[HEADER_LEN + 5] = 9;
        assert!(matches!(
            Message::parse(&fam),
            Err(StunError::BadAddress { .. })
        ));
        // Every truncation of a valid message fails cleanly (the length no longer fits).
        let full = binding_success(id, "[::1]:7".parse().unwrap(), true);
        for n in 0..full.len() {
            assert!(Message::parse(&full[..n]).is_err());
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = is_stun(&bytes);
            let _ = Message::parse(&bytes);
        }

        /// Garbage behind a valid STUN header: the attribute walk never panics.
        #[test]
        fn attribute_walk_never_panics(body in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut m = header(Class::SuccessResponse, BINDING, TransactionId([5; 12]));
            m.extend_from_slice(&body);
            m.truncate(HEADER_LEN + (m.len() - HEADER_LEN) / 4 * 4);
            set_length(&mut m);
            prop_assert!(is_stun(&m));
            let _ = Message::parse(&m);
        }
    }
}
