//! ICE candidates (RFC 8445 §5.1) and their SDP form, `a=candidate` (RFC 8839 §5.1).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The RTP component id (RFC 8445 §5.1.1.1). Tincan's agent runs one component: RTP with
/// rtcp-mux (RFC 5761); component 2 (RTCP) candidates from a peer are ignored.
pub const COMPONENT_RTP: u16 = 1;

/// The type of a candidate, RFC 8445 §5.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateKind {
    /// An address of a local interface (`typ host`).
    Host,
    /// The address a NAT maps the host's base to, learnt from a STUN server (`typ srflx`).
    ServerReflexive,
    /// An address learnt from a connectivity check (`typ prflx`).
    PeerReflexive,
    /// An address on a TURN relay (`typ relay`); parsed, never gathered yet.
    Relayed,
}

impl CandidateKind {
    /// The type preference, RFC 8445 §5.1.2.2's recommended values.
    pub fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }

    fn sdp_name(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        }
    }
}

/// RFC 8445 §5.1.2.1: `priority = 2^24 * type preference + 2^8 * local preference +
/// (256 - component id)`.
pub fn candidate_priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24)
        + (u32::from(local_preference) << 8)
        + (256 - u32::from(component.clamp(1, 256)))
}

/// One UDP candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The foundation (RFC 8445 §5.1.1.3): equal for candidates of the same type, base IP and
    /// server.
    pub foundation: String,
    /// The component id ([`COMPONENT_RTP`]).
    pub component: u16,
    /// The priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// The transport address.
    pub address: SocketAddr,
    /// The type.
    pub kind: CandidateKind,
    /// `raddr`/`rport`: the base of a reflexive candidate (informational, RFC 8839 §5.1).
    pub related: Option<SocketAddr>,
}

impl Candidate {
    /// A host candidate on `address`, with the local preference `local_preference` (65535 for
    /// the only or preferred interface, RFC 8445 §5.1.2.1).
    pub fn host(address: SocketAddr, local_preference: u16) -> Self {
        Candidate {
            foundation: foundation(CandidateKind::Host, address.ip()),
            component: COMPONENT_RTP,
            priority: candidate_priority(CandidateKind::Host, local_preference, COMPONENT_RTP),
            address,
            kind: CandidateKind::Host,
            related: None,
        }
    }

    /// A server-reflexive candidate `address` of the host candidate `base`.
    pub fn server_reflexive(address: SocketAddr, base: SocketAddr, local_preference: u16) -> Self {
        Candidate {
            foundation: foundation(CandidateKind::ServerReflexive, base.ip()),
            component: COMPONENT_RTP,
            priority: candidate_priority(
                CandidateKind::ServerReflexive,
                local_preference,
                COMPONENT_RTP,
            ),
            address,
            kind: CandidateKind::ServerReflexive,
            related: Some(base),
        }
    }

    /// Parses the value of an `a=candidate` attribute (RFC 8839 §5.1), with or without the
    /// `candidate:` prefix. TCP candidates and FQDN addresses are refused (Tincan's agent
    /// runs UDP to literal addresses); unknown extension attributes are skipped. Never panics.
    pub fn parse(value: &str) -> Result<Self, CandidateError> {
        let value = value.trim();
        let value = value.strip_prefix("candidate:").unwrap_or(value);
        let mut fields = value.split_ascii_whitespace();
        let mut next = |what: &'static str| fields.next().ok_or(CandidateError::Missing(what));
        let foundation = next("foundation")?;
        if foundation.is_empty() || foundation.len() > 32 || !foundation.bytes().all(is_ice_char) {
            return Err(CandidateError::Invalid("foundation"));
        }
        let component: u16 = next("component")?
            .parse()
            .map_err(|_| CandidateError::Invalid("component"))?;
        if component == 0 {
            return Err(CandidateError::Invalid("component"));
        }
        let transport = next("transport")?;
        if !transport.eq_ignore_ascii_case("udp") {
            return Err(CandidateError::Unsupported("transport"));
        }
        let priority: u32 = next("priority")?
            .parse()
            .map_err(|_| CandidateError::Invalid("priority"))?;
        if priority == 0 {
            return Err(CandidateError::Invalid("priority"));
        }
        let ip: IpAddr = next("address")?
            .parse()
            .map_err(|_| CandidateError::Unsupported("address"))?;
        let port: u16 = next("port")?
            .parse()
            .map_err(|_| CandidateError::Invalid("port"))?;
        if next("typ")? != "typ" {
            return Err(CandidateError::Invalid("typ"));
        }
        let kind = match next("type")? {
            "host" => CandidateKind::Host,
            "srflx" => CandidateKind::ServerReflexive,
            "prflx" => CandidateKind::PeerReflexive,
            "relay" => CandidateKind::Relayed,
            _ => return Err(CandidateError::Unsupported("type")),
        };
        let mut related_ip = None;
        let mut related_port = None;
        while let Some(name) = fields.next() {
            let Some(value) = fields.next() else {
                break;
            };
            match name {
                "raddr" => related_ip = value.parse::<IpAddr>().ok(),
                "rport" => related_port = value.parse::<u16>().ok(),
                _ => {}
            }
        }
        Ok(Candidate {
            foundation: foundation.to_owned(),
            component,
            priority,
            address: SocketAddr::new(ip, port),
            kind,
            related: related_ip
                .zip(related_port)
                .map(|(ip, port)| SocketAddr::new(ip, port)),
        })
    }
}

/// `ice-char = ALPHA / DIGIT / "+" / "/"` (RFC 8839 §5.1).
pub(crate) fn is_ice_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// A foundation from the type and base IP (RFC 8445 §5.1.1.3), as ice-chars.
fn foundation(kind: CandidateKind, base: IpAddr) -> String {
    // FNV-1a over the type and the base address: short, stable and made of digits.
    let mut hash: u32 = 0x811C_9DC5;
    for byte in kind.sdp_name().bytes().chain(base.to_string().into_bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash.to_string()
}

impl fmt::Display for Candidate {
    /// The value of `a=candidate` (RFC 8839 §5.1), without the `candidate:` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} UDP {} {} {} typ {}",
            self.foundation,
            self.component,
            self.priority,
            self.address.ip(),
            self.address.port(),
            self.kind.sdp_name()
        )?;
        if let Some(related) = self.related {
            write!(f, " raddr {} rport {}", related.ip(), related.port())?;
        }
        Ok(())
    }
}

/// Why an `a=candidate` line is not used. The caller ignores the line (RFC 8839 §5.1: a
/// candidate an agent cannot use is skipped, the others still count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CandidateError {
    /// A field is missing.
    #[error("candidate {0} missing")]
    Missing(&'static str),
    /// A field is malformed.
    #[error("candidate {0} malformed")]
    Invalid(&'static str),
    /// Well-formed but not supported here (TCP, an FQDN, an unknown type).
    #[error("candidate {0} not supported")]
    Unsupported(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_parse() {
        let line = "candidate:1 1 UDP 2130706431 10.0.1.1 8998 typ host";
        let c = Candidate::parse(line).unwrap();
        assert_eq!(c.address, "10.0.1.1:8998".parse().unwrap());
        assert_eq!(c.kind, CandidateKind::Host);
        assert_eq!(Candidate::parse(&c.to_string()).unwrap(), c);
        let srflx =
            "2 1 udp 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998 generation 0";
        let c = Candidate::parse(srflx).unwrap();
        assert_eq!(c.related, Some("10.0.1.1:8998".parse().unwrap()));
        assert_eq!(Candidate::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn priorities_follow_rfc8445() {
        let host = Candidate::host("10.0.0.1:5000".parse().unwrap(), 65535);
        assert_eq!(host.priority, 2_130_706_431);
        let srflx = Candidate::server_reflexive(
            "192.0.2.1:6000".parse().unwrap(),
            "10.0.0.1:5000".parse().unwrap(),
            65535,
        );
        assert_eq!(srflx.priority, 1_694_498_815);
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for line in [
            "",
            "candidate:",
            "1 1 TCP 1 10.0.0.1 9 typ host tcptype active",
            "1 1 UDP 1 host.example 9 typ host",
            "1 0 UDP 1 10.0.0.1 9 typ host",
            "1 1 UDP 99999999999 10.0.0.1 9 typ host",
            "1 1 UDP 1 10.0.0.1 70000 typ host",
            "1 1 UDP 1 10.0.0.1 9 type host",
            "1 1 UDP 1 10.0.0.1 9 typ bogus",
            "\u{e9}\u{e9} 1 UDP 1 10.0.0.1 9 typ host",
        ] {
            assert!(Candidate::parse(line).is_err(), "{line:?}");
        }
    }
}
