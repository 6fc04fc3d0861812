//! Plain DNS data the resolution state machine asks for and consumes: queries, the records of
//! the four types RFC 3263 uses, and lookup failures. Backends (hickory, a fake in tests)
//! translate to and from these.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The record types RFC 3263 server location uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum RecordType {
    /// NAPTR (RFC 3403): which transports a domain offers.
    Naptr,
    /// SRV (RFC 2782): which hosts and ports serve a transport.
    Srv,
    /// A: IPv4 addresses.
    A,
    /// AAAA: IPv6 addresses.
    Aaaa,
}

impl RecordType {
    /// The mnemonic (`NAPTR`, `SRV`, `A`, `AAAA`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Naptr => "NAPTR",
            RecordType::Srv => "SRV",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One DNS question: a fully qualified name (no trailing dot, lowercase) and a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DnsQuery {
    /// The name, lowercase, without the trailing dot.
    pub name: String,
    /// The record type.
    pub rtype: RecordType,
}

impl DnsQuery {
    /// A query for `name` (normalised: lowercase, trailing dot removed).
    pub fn new(name: &str, rtype: RecordType) -> Self {
        DnsQuery {
            name: normalize_name(name),
            rtype,
        }
    }
}

impl fmt::Display for DnsQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.rtype, self.name)
    }
}

/// Lowercase and strip one trailing dot.
pub(crate) fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The data of one answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum RecordData {
    /// A NAPTR record (RFC 3403 §4.1).
    Naptr {
        /// Lower first.
        order: u16,
        /// Lower first, among equal orders.
        preference: u16,
        /// Flags (`s` for RFC 3263: the next lookup is SRV).
        flags: String,
        /// Service (`SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, ...).
        services: String,
        /// Regular expression (unused by RFC 3263).
        regexp: String,
        /// The SRV name to look up next.
        replacement: String,
    },
    /// An SRV record (RFC 2782).
    Srv {
        /// Lower first.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// Port.
        port: u16,
        /// Host name (`.` means "no service here").
        target: String,
    },
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
}

/// One answer record with its time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DnsRecord {
    /// Seconds the record may be cached.
    pub ttl: u32,
    /// The data.
    pub data: RecordData,
}

impl DnsRecord {
    /// A record with this TTL and data.
    pub fn new(ttl: u32, data: RecordData) -> Self {
        DnsRecord { ttl, data }
    }
}

impl fmt::Display for DnsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.data {
            RecordData::Naptr {
                order,
                preference,
                flags,
                services,
                regexp,
                replacement,
            } => write!(
                f,
                "NAPTR {order} {preference} \"{flags}\" \"{services}\" \"{regexp}\" {replacement}"
            )?,
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => write!(f, "SRV {priority} {weight} {port} {target}")?,
            RecordData::A(a) => write!(f, "A {a}")?,
            RecordData::Aaaa(a) => write!(f, "AAAA {a}")?,
        }
        write!(f, " (ttl {})", self.ttl)
    }
}

/// Why a DNS lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (RCODE 3).
    #[error("NXDOMAIN")]
    NxDomain,
    /// No answer in time.
    #[error("timeout")]
    Timeout,
    /// The server refused (RCODE 5).
    #[error("REFUSED")]
    Refused,
    /// The server failed (RCODE 2).
    #[error("SERVFAIL")]
    ServerFailure,
    /// Anything else (network error, malformed answer), with a short description.
    #[error("{0}")]
    Other(String),
}

/// The outcome of one query: records (possibly none: NODATA) or a failure.
pub type DnsAnswer = Result<Vec<DnsRecord>, DnsError>;
