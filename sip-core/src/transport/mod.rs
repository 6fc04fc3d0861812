//! The transport layer's data (RFC 3261 §18): which transport, where to, and what the
//! driver's sockets carry in and out. The sockets themselves live in the tokio driver; the
//! core only addresses and frames.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use bytes::Bytes;

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Transport {
    /// UDP (unreliable: the transaction layer retransmits).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// True for TCP and TLS: no retransmissions, Timers K, I, J and D are zero (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token in a Via header (`UDP`, `TCP`, `TLS`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport` URI parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The default port: 5060, or 5061 for TLS (RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }

    /// The SRV service and protocol labels (RFC 3263 §4.1): `_sip._udp`, `_sip._tcp`,
    /// `_sips._tcp`.
    pub fn srv_prefix(self) -> &'static str {
        match self {
            Transport::Udp => "_sip._udp",
            Transport::Tcp => "_sip._tcp",
            Transport::Tls => "_sips._tcp",
        }
    }

    /// The NAPTR service field (RFC 3263 §4.1): `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
    pub fn naptr_service(self) -> &'static str {
        match self {
            Transport::Udp => "SIP+D2U",
            Transport::Tcp => "SIP+D2T",
            Transport::Tls => "SIPS+D2T",
        }
    }

    /// The transport a NAPTR service field names (case-insensitive), if supported.
    pub fn from_naptr_service(service: &str) -> Option<Self> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| t.naptr_service().eq_ignore_ascii_case(service))
    }

    /// The transport a URI `transport=` parameter names (`udp`, `tcp`, `tls`; case-insensitive).
    pub fn from_param(param: &str) -> Option<Self> {
        Transport::from_token(param)
    }

    /// Lowercase name (`udp`, `tcp`, `tls`).
    pub fn as_str(self) -> &'static str {
        self.param()
    }

    /// Whether this transport is a stream (TCP or TLS): connection failures are immediate.
    pub fn is_stream(self) -> bool {
        self.is_reliable()
    }

    /// Reads a Via transport token or a `transport` parameter, ignoring case.
    pub fn from_token(s: &str) -> Option<Transport> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param())
    }
}

/// Error of [`Transport::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport {0:?} (expected udp, tcp or tls)")]
pub struct UnknownTransport(pub String);

impl FromStr for Transport {
    type Err = UnknownTransport;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transport::from_token(s).ok_or_else(|| UnknownTransport(s.to_owned()))
    }
}

/// A transaction of an [`Endpoint`](crate::endpoint::Endpoint) (also
/// `tincan_sip::transaction::TransactionId`). Defined here, below the transaction layer,
/// because a [`Transmit`] carries the id of the transaction that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub(crate) u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

impl TransactionId {
    /// The number inside, for logs.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A stream connection of the driver (TCP or TLS), named by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Where a message goes: a transport and an address (and, for TLS, the name to check the
/// server's certificate against).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The transport.
    pub transport: Transport,
    /// The address.
    pub addr: SocketAddr,
    /// The host name for TLS SNI and certificate checks (RFC 5922), when known.
    pub server_name: Option<String>,
}

impl Target {
    /// A target without a server name.
    pub fn new(transport: Transport, addr: SocketAddr) -> Target {
        Target {
            transport,
            addr,
            server_name: None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// Bytes for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport and destination.
    pub target: Target,
    /// Send on this connection when set (responses go back on the connection the request
    /// came in on, RFC 3261 §18.2.2); otherwise the driver reuses or opens one to the target.
    pub connection: Option<ConnectionId>,
    /// The message.
    pub payload: Bytes,
    /// The transaction that sent it, to report a transport error against.
    pub transaction: Option<TransactionId>,
}

/// Bytes the driver received: one datagram, or one message framed from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Transport it came over.
    pub transport: Transport,
    /// The peer's address.
    pub source: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The stream connection, for TCP and TLS.
    pub connection: Option<ConnectionId>,
    /// The bytes.
    pub payload: Bytes,
    /// When the driver read it off the socket, if it knows: the endpoint measures from it
    /// how long the message waited in the driver's queues, drops a request its sender has
    /// already given up on and sheds new INVITEs while the wait says it is behind
    /// ([`EndpointConfig::max_queue_delay`](crate::endpoint::EndpointConfig::max_queue_delay)).
    /// `None`: it has not waited (it is handled at once).
    pub arrived: Option<std::time::Instant>,
}

/// RFC 3261 §18.1.1: a request larger than this, with an unknown path MTU, goes over TCP.
pub const UDP_MAX_REQUEST: usize = 1300;
