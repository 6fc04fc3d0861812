//! RFC 3263 server location: NAPTR -> SRV -> A/AAAA ordering, caching and target health.
//!
//! - [`Resolution`]: the sans-IO state machine for one SIP/SIPS URI: it says which DNS
//!   queries it needs ([`Resolution::poll_query`]), takes the answers
//!   ([`Resolution::handle_answer`]) and finally gives the ordered [`ResolvedTarget`]s plus the
//!   whole lookup chain, or a [`ResolveError`] naming every record tried.
//! - [`DnsCache`]: answers keyed by (name, type), kept for their TTL (negative answers
//!   briefly), `now` injected.
//! - [`TargetHealth`] and [`FailoverPolicy`]: failover with memory: which targets recently
//!   failed, how long they cool off, when to probe them, and whether a given failure means
//!   "try the next target".
//! - [`Failover`]: the sans-IO machine that routes one request over its ordered targets, each
//!   within a budget adapted to the target's round-trip time, and says what was tried when
//!   all fail.
//!
//! Everything here is sans-IO. The real DNS is the driver's (`tokio` feature):
//! `driver::dns::resolve` drives a [`Resolution`] with a `driver::dns::DnsBackend` (such as
//! `driver::dns::HickoryBackend`) and a [`DnsCache`].
//!
//! ```
//! use std::time::Instant;
//! use tincan_sip::resolve::*;
//!
//! # struct Fixed;
//! # impl rand_core::TryRng for Fixed {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(7) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { Ok(7) }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(7); Ok(()) }
//! # }
//! # let now = std::time::Instant::now();
//! let dest = Destination::parse("sip:alice@example.com;transport=tcp").expect("valid URI");
//! let mut res = Resolution::new(dest, ResolveConfig::default(), &mut Fixed);
//! // A transport parameter skips NAPTR: the first question is the SRV record.
//! let q = res.poll_query().expect("a query");
//! assert_eq!(q.to_string(), "SRV _sip._tcp.example.com");
//! let srv = RecordData::Srv { priority: 10, weight: 0, port: 5070, target: "sip.example.com".into() };
//! res.handle_answer(now, &q, Ok(vec![DnsRecord::new(300, srv)]));
//! while let Some(q) = res.poll_query() {
//!     let answer = match q.rtype {
//!         RecordType::A => Ok(vec![DnsRecord::new(300, RecordData::A([192, 0, 2, 7].into()))]),
//!         _ => Ok(vec![]),
//!     };
//!     res.handle_answer(now, &q, answer);
//! }
//! let resolved = res.poll_result().expect("done").expect("resolved");
//! assert_eq!(resolved.targets[0].addr.to_string(), "192.0.2.7:5070");
//! assert_eq!(resolved.targets[0].transport, Transport::Tcp);
//! ```

use std::fmt;
use std::net::IpAddr;

pub mod cache;
pub mod dns;
pub mod failover;
pub mod health;
pub mod resolution;
pub mod select;

pub use cache::{CacheConfig, DnsCache};
pub use dns::{DnsAnswer, DnsError, DnsQuery, DnsRecord, RecordData, RecordType};
pub use failover::{
    AttemptFailure, FailedAttempt, Failover, FailoverConfig, FailoverEvent, RequestKind, RetryError,
};
pub use health::{
    AttemptOutcome, FailoverDecision, FailoverPolicy, FailureCause, HealthConfig, TargetHealth,
    TargetKey, TargetStatus,
};
pub use resolution::{
    AddressFamily, AddressStep, Lookup, Resolution, ResolveConfig, ResolveError, Resolved,
    ResolvedTarget, TargetSource, TriedLookups,
};
pub use select::{NaptrStep, SrvStep, order_srv, select_naptr};

/// The transport of a target: the same type as the transport layer's.
pub use crate::transport::Transport;

/// The parts of a SIP or SIPS URI that server location looks at (RFC 3263 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Destination {
    /// `sips:` (TLS required).
    pub secure: bool,
    /// The host: a domain name or an IP literal (IPv6 with or without brackets). A `maddr`
    /// parameter, if any, goes here instead of the URI host (RFC 3263 §4).
    pub host: String,
    /// An explicit port.
    pub port: Option<u16>,
    /// The `transport=` parameter as written, if any.
    pub transport: Option<String>,
}

impl Destination {
    /// A `sip:` destination for `host` with no port or transport.
    pub fn sip(host: impl Into<String>) -> Self {
        Destination {
            secure: false,
            host: host.into(),
            port: None,
            transport: None,
        }
    }

    /// A `sips:` destination for `host`.
    pub fn sips(host: impl Into<String>) -> Self {
        Destination {
            secure: true,
            ..Destination::sip(host)
        }
    }

    /// With an explicit port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// With a `transport=` parameter.
    pub fn with_transport(mut self, transport: impl Into<String>) -> Self {
        self.transport = Some(transport.into());
        self
    }

    /// The host as an IP address, if it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        let h = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        h.parse().ok()
    }

    /// Extract the server-location parts of a `sip:`/`sips:` URI (a bare `host[:port]` is taken
    /// as `sip:`). This is a small reader for the CLI and tests, not the message layer's URI
    /// parser: it reads the scheme, the host/port after any userinfo, and the `transport` and
    /// `maddr` parameters.
    pub fn parse(uri: &str) -> Result<Self, ResolveError> {
        let bad = |reason: &str| ResolveError::InvalidUri {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = uri.trim();
        let (secure, rest) = match trimmed.split_once(':') {
            Some((s, rest)) if s.eq_ignore_ascii_case("sip") => (false, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("sips") => (true, rest),
            Some((s, _)) if s.contains(['.', '[']) || s.parse::<IpAddr>().is_ok() => {
                (false, trimmed)
            }
            Some((s, rest)) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
                let _ = s;
                (false, trimmed)
            }
            None => (false, trimmed),
            Some(_) => return Err(bad("not a sip: or sips: URI")),
        };
        let rest = rest.split('?').next().unwrap_or_default();
        // Userinfo ends at the last '@' before the parameters (a '@' in the user is escaped).
        let params_start = rest.rfind('@').map_or(0, |i| i + 1);
        let rest = &rest[params_start..];
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        let mut dest = Destination::sip(String::new());
        dest.secure = secure;
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("no host"));
        }
        dest.host = host;
        if let Some(p) = port {
            dest.port = Some(p.parse().map_err(|_| bad("invalid port"))?);
        }
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.trim().eq_ignore_ascii_case("transport") {
                dest.transport = Some(value.trim().to_owned());
            } else if name.trim().eq_ignore_ascii_case("maddr") && !value.trim().is_empty() {
                dest.host = value.trim().to_owned();
            }
        }
        Ok(dest)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        match self.ip() {
            Some(IpAddr::V6(v6)) => write!(f, "[{v6}]")?,
            _ => f.write_str(&self.host)?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(t) = &self.transport {
            write!(f, ";transport={t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uri_parts() {
        let d =
            Destination::parse("sip:alice@Example.COM:5070;transport=TCP;lr?subject=x").unwrap();
        assert_eq!(
            d,
            Destination::sip("Example.COM")
                .with_port(5070)
                .with_transport("TCP")
        );
        let d = Destination::parse("sips:[2001:db8::1]").unwrap();
        assert!(d.secure);
        assert_eq!(d.ip(), Some("2001:db8::1".parse().unwrap()));
        let d = Destination::parse("sip:bob@example.com;maddr=192.0.2.1").unwrap();
        assert_eq!(d.host, "192.0.2.1");
        assert_eq!(
            Destination::parse("example.com:5080").unwrap().port,
            Some(5080)
        );
        assert!(Destination::parse("tel:+123").is_err());
        assert!(Destination::parse("sip:alice@").is_err());
        assert!(Destination::parse("sip:[::1").is_err());
        assert!(Destination::parse("sip:host:99999").is_err());
    }
}
