//! STUN (RFC 8489) as far as ICE needs it: Binding requests and responses with the ICE
//! attributes (RFC 8445 §16.1), short-term credentials (MESSAGE-INTEGRITY, HMAC-SHA1, RFC 8489
//! §14.5) and FINGERPRINT (RFC 8489 §14.7). Pure encoding and decoding, no socket, no clock.
//!
//! media does not depend on tincan-sip, whose `stun` module does the RFC 5626 keep-alives; this
//! is the media side's own small codec. [`Message::parse`] never panics, whatever the bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The magic cookie, RFC 8489 §5: bytes 4-7 of every STUN message and the key of the
/// XOR-MAPPED-ADDRESS obfuscation.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The STUN header length, RFC 8489 §5.
pub const HEADER_LEN: usize = 20;
/// The Binding method, RFC 8489 §18.2.
pub const BINDING: u16 = 0x001;

/// USERNAME, RFC 8489 §14.3 (`remote-ufrag:local-ufrag` in ICE checks, RFC 8445 §7.2.2).
const ATTR_USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY, RFC 8489 §14.5: HMAC-SHA1 over the message up to it.
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE, RFC 8489 §14.8.
const ATTR_ERROR_CODE: u16 = 0x0009;
/// XOR-MAPPED-ADDRESS, RFC 8489 §14.2.
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// PRIORITY, RFC 8445 §16.1: the priority a peer-reflexive candidate would have.
const ATTR_PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE, RFC 8445 §16.1: the controlling agent nominates this pair.
const ATTR_USE_CANDIDATE: u16 = 0x0025;
/// FINGERPRINT, RFC 8489 §14.7: CRC-32 of the message up to it, XOR [`FINGERPRINT_XOR`].
const ATTR_FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED, RFC 8445 §16.1: the sender's tie-breaker, sender is controlled.
const ATTR_ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING, RFC 8445 §16.1: the sender's tie-breaker, sender is controlling.
const ATTR_ICE_CONTROLLING: u16 = 0x802A;
/// The value FINGERPRINT's CRC-32 is XORed with, RFC 8489 §14.7 ("STUN" in ASCII).
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// The length of a MESSAGE-INTEGRITY attribute with its header (HMAC-SHA1 is 20 bytes).
const INTEGRITY_LEN: usize = 24;
/// The length of a FINGERPRINT attribute with its header.
const FINGERPRINT_LEN: usize = 8;

/// The class of a STUN message, RFC 8489 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request (a check, a gathering request).
    Request,
    /// An indication (never answered).
    Indication,
    /// A success response.
    Success,
    /// An error response (ERROR-CODE says why).
    Error,
}

/// A parsed STUN message: the header and the attributes ICE uses. Unknown attributes are
/// skipped; attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored
/// (RFC 8489 §14.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Request, indication, success or error (`None` only in a [`Default`] value).
    pub class: Option<Class>,
    /// The method ([`BINDING`] for everything ICE sends).
    pub method: u16,
    /// The 96-bit transaction id.
    pub transaction: [u8; 12],
    /// USERNAME, when present and UTF-8.
    pub username: Option<String>,
    /// XOR-MAPPED-ADDRESS, decoded.
    pub mapped_address: Option<SocketAddr>,
    /// PRIORITY.
    pub priority: Option<u32>,
    /// USE-CANDIDATE was present.
    pub use_candidate: bool,
    /// ICE-CONTROLLING's tie-breaker.
    pub ice_controlling: Option<u64>,
    /// ICE-CONTROLLED's tie-breaker.
    pub ice_controlled: Option<u64>,
    /// ERROR-CODE as a number (300-699).
    pub error_code: Option<u16>,
    /// Where MESSAGE-INTEGRITY starts (offset of its attribute header), if present.
    integrity_at: Option<usize>,
    /// FINGERPRINT was present (and matched: a mismatch is a parse error).
    pub fingerprint: bool,
}

/// Why bytes are not a usable STUN message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Not STUN (too short, first bits not 0, no magic cookie, a length not the datagram's).
    #[error("not a stun message")]
    NotStun,
    /// An attribute runs past the end of the message, or has a wrong length.
    #[error("malformed stun attribute {kind:#06x}")]
    Malformed {
        /// The attribute type.
        kind: u16,
    },
    /// The FINGERPRINT does not match the message (RFC 8489 §14.7).
    #[error("stun fingerprint mismatch")]
    BadFingerprint,
}

/// Whether a datagram looks like STUN (RFC 7983 demultiplexing: first byte 0-3, and the magic
/// cookie), so a media socket can tell it from RTP/RTCP (first byte 128-191).
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= HEADER_LEN
        && data[0] < 4
        && u32::from_be_bytes([data[4], data[5], data[6], data[7]]) == MAGIC_COOKIE
}

impl Message {
    /// Parses a datagram. Never panics.
    pub fn parse(data: &[u8]) -> Result<Self, StunError> {
        if !is_stun(data) {
            return Err(StunError::NotStun);
        }
        let kind = u16::from_be_bytes([data[0], data[1]]);
        let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if length % 4 != 0 || HEADER_LEN + length != data.len() {
            return Err(StunError::NotStun);
        }
        let class = match kind & 0x0110 {
            0x0000 => Class::Request,
            0x0010 => Class::Indication,
            0x0100 => Class::Success,
            _ => Class::Error,
        };
        let method = (kind & 0x000F) | ((kind & 0x00E0) >> 1) | ((kind & 0x3E00) >> 2);
        let mut message = Message {
            class: Some(class),
            method,
            ..Message::default()
        };
        message.transaction.copy_from_slice(&data[8..20]);
        let mut at = HEADER_LEN;
        while at + 4 <= data.len() {
            let kind = u16::from_be_bytes([data[at], data[at + 1]]);
            let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
            let value_at = at + 4;
            let end = value_at + len;
            if end > data.len() {
                return Err(StunError::Malformed { kind });
            }
            let value = &data[value_at..end];
            let malformed = StunError::Malformed { kind };
            if kind == ATTR_FINGERPRINT {
                let expected = crc32(&data[..at]) ^ FINGERPRINT_XOR;
                if len != 4 || value != expected.to_be_bytes() {
                    return Err(StunError::BadFingerprint);
                }
                message.fingerprint = true;
                break;
            }
            if message.integrity_at.is_none() {
                match kind {
                    ATTR_USERNAME => {
                        message.username = std::str::from_utf8(value).ok().map(str::to_owned)
                    }
                    ATTR_MESSAGE_INTEGRITY => {
                        if len != 20 {
                            return Err(malformed);
                        }
                        message.integrity_at = Some(at);
                    }
                    ATTR_ERROR_CODE => {
                        if len < 4 {
                            return Err(malformed);
                        }
                        message.error_code =
                            Some(u16::from(value[2] & 0x7) * 100 + u16::from(value[3]));
                    }
                    ATTR_XOR_MAPPED_ADDRESS => {
                        message.mapped_address =
                            Some(xor_address(value, &data[4..20]).ok_or(malformed)?);
                    }
                    ATTR_PRIORITY => {
                        let bytes: [u8; 4] = value.try_into().map_err(|_| malformed)?;
                        message.priority = Some(u32::from_be_bytes(bytes));
                    }
                    ATTR_USE_CANDIDATE => message.use_candidate = true,
                    ATTR_ICE_CONTROLLING => {
                        let bytes: [u8; 8] = value.try_into().map_err(|_| malformed)?;
                        message.ice_controlling = Some(u64::from_be_bytes(bytes));
                    }
                    ATTR_ICE_CONTROLLED => {
                        let bytes: [u8; 8] = value.try_into().map_err(|_| malformed)?;
                        message.ice_controlled = Some(u64::from_be_bytes(bytes));
                    }
                    _ => {}
                }
            }
            at = end + (4 - len % 4) % 4;
        }
        Ok(message)
    }

    /// Whether the message carries a MESSAGE-INTEGRITY made with `key` (the ICE password,
    /// RFC 8445 §7.2.2: short-term credentials). `data` is the datagram `self` was parsed from.
    pub fn verify_integrity(&self, data: &[u8], key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else {
            return false;
        };
        if data.len() < at + INTEGRITY_LEN {
            return false;
        }
        // RFC 8489 §14.5: the length field covers the message up to MESSAGE-INTEGRITY's end.
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&data[..HEADER_LEN]);
        let covered = (at + INTEGRITY_LEN - HEADER_LEN) as u16;
        header[2..4].copy_from_slice(&covered.to_be_bytes());
        let mut mac = new_mac(key);
        mac.update(&header);
        mac.update(&data[HEADER_LEN..at]);
        mac.verify_slice(&data[at + 4..at + INTEGRITY_LEN]).is_ok()
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha1> {
    <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn xor_address(value: &[u8], cookie_and_id: &[u8]) -> Option<SocketAddr> {
    if value.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (value[1], value.len()) {
        (0x01, 8) => {
            let mut octets = [0u8; 4];
            for (i, octet) in octets.iter_mut().enumerate() {
                *octet = value[4 + i] ^ cookie_and_id[i];
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        (0x02, 20) => {
            let mut octets = [0u8; 16];
            for (i, octet) in octets.iter_mut().enumerate() {
                *octet = value[4 + i] ^ cookie_and_id[i];
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Builds one STUN message: attributes in order, then MESSAGE-INTEGRITY (when a key is
/// given) and FINGERPRINT (always: RFC 8445 §7.2.2 wants it on every ICE message).
#[derive(Debug)]
pub struct Builder {
    bytes: Vec<u8>,
}

impl Builder {
    /// Starts a message of `class` for `method` with `transaction`.
    pub fn new(class: Class, method: u16, transaction: [u8; 12]) -> Self {
        let class_bits = match class {
            Class::Request => 0x0000,
            Class::Indication => 0x0010,
            Class::Success => 0x0100,
            Class::Error => 0x0110,
        };
        let kind = (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2);
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&(kind | class_bits).to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(&transaction);
        Builder { bytes }
    }

    fn attribute(mut self, kind: u16, value: &[u8]) -> Self {
        self.bytes.extend_from_slice(&kind.to_be_bytes());
        self.bytes
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.bytes.extend_from_slice(value);
        let pad = (4 - value.len() % 4) % 4;
        self.bytes.extend(std::iter::repeat_n(0, pad));
        self
    }

    /// USERNAME.
    pub fn username(self, username: &str) -> Self {
        self.attribute(ATTR_USERNAME, username.as_bytes())
    }

    /// PRIORITY.
    pub fn priority(self, priority: u32) -> Self {
        self.attribute(ATTR_PRIORITY, &priority.to_be_bytes())
    }

    /// USE-CANDIDATE (no value).
    pub fn use_candidate(self) -> Self {
        self.attribute(ATTR_USE_CANDIDATE, &[])
    }

    /// ICE-CONTROLLING with the tie-breaker.
    pub fn ice_controlling(self, tie_breaker: u64) -> Self {
        self.attribute(ATTR_ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }

    /// ICE-CONTROLLED with the tie-breaker.
    pub fn ice_controlled(self, tie_breaker: u64) -> Self {
        self.attribute(ATTR_ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }

    /// ERROR-CODE `code` (300-699) with a reason phrase.
    pub fn error_code(self, code: u16, reason: &str) -> Self {
        let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        value.extend_from_slice(reason.as_bytes());
        self.attribute(ATTR_ERROR_CODE, &value)
    }

    /// XOR-MAPPED-ADDRESS of `address`.
    pub fn xor_mapped_address(self, address: SocketAddr) -> Self {
        let mut key = [0u8; 16];
        key.copy_from_slice(&self.bytes[4..20]);
        let port = address.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let mut value = vec![0];
        match address.ip() {
            IpAddr::V4(ip) => {
                value.push(0x01);
                value.extend_from_slice(&port.to_be_bytes());
                value.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
            }
            IpAddr::V6(ip) => {
                value.push(0x02);
                value.extend_from_slice(&port.to_be_bytes());
                value.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
            }
        }
        self.attribute(ATTR_XOR_MAPPED_ADDRESS, &value)
    }

    /// Finishes the message: MESSAGE-INTEGRITY with `key` when given, then FINGERPRINT.
    pub fn finish(mut self, key: Option<&[u8]>) -> Vec<u8> {
        if let Some(key) = key {
            let length = (self.bytes.len() + INTEGRITY_LEN - HEADER_LEN) as u16;
            self.bytes[2..4].copy_from_slice(&length.to_be_bytes());
            let mut mac = new_mac(key);
            mac.update(&self.bytes);
            let digest = mac.finalize().into_bytes();
            self = self.attribute(ATTR_MESSAGE_INTEGRITY, &digest);
        }
        let length = (self.bytes.len() + FINGERPRINT_LEN - HEADER_LEN) as u16;
        self.bytes[2..4].copy_from_slice(&length.to_be_bytes());
        let crc = crc32(&self.bytes) ^ FINGERPRINT_XOR;
        self.attribute(ATTR_FINGERPRINT, &crc.to_be_bytes()).bytes
    }
}

/// CRC-32 (ISO 3309 / ITU-T V.42, the one FINGERPRINT uses), bit by bit: STUN messages are
/// short and a table is not worth its 1 KiB.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// RFC 5769 §2.1: the sample request, with its USERNAME, PRIORITY, ICE-CONTROLLED,
    /// MESSAGE-INTEGRITY (password "VOkJxbRl1RmTxUk/WvJxBt") and FINGERPRINT.
    #[test]
    fn rfc5769_sample_request() {
        let hex = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e2074657374\
                   20636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576\
                   746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b5\
                   71a280280004e57a3bcf";
        let data: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let message = Message::parse(&data).unwrap();
        assert_eq!(message.class, Some(Class::Request));
        assert_eq!(message.method, BINDING);
        assert_eq!(message.username.as_deref(), Some("evtj:h6vY"));
        assert_eq!(message.priority, Some(0x6e0001ff));
        assert_eq!(message.ice_controlled, Some(0x932ff9b151263b36));
        assert!(message.fingerprint);
        assert!(message.verify_integrity(&data, b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!message.verify_integrity(&data, b"wrong"));
    }

    #[test]
    fn round_trip() {
        let id = [7u8; 12];
        let from: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let data = Builder::new(Class::Success, BINDING, id)
            .xor_mapped_address(from)
            .error_code(487, "Role Conflict")
            .finish(Some(b"pwd"));
        let message = Message::parse(&data).unwrap();
        assert_eq!(message.class, Some(Class::Success));
        assert_eq!(message.transaction, id);
        assert_eq!(message.mapped_address, Some(from));
        assert_eq!(message.error_code, Some(487));
        assert!(message.verify_integrity(&data, b"pwd"));
        let mut bad = data.clone();
        bad[30] ^= 1;
        assert!(Message::parse(&bad).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678u32;
        for len in 0..200usize {
            let mut data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            if len >= 20 {
                data[0] &= 0x01;
                data[2..4].copy_from_slice(&((len - 20) as u16).to_be_bytes());
                data[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            }
            if let Ok(message) = Message::parse(&data) {
                let _ = message.verify_integrity(&data, b"x");
            }
        }
    }
}
