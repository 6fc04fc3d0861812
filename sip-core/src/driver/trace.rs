//! A hook that sees every SIP message the driver sends or receives, as bytes on the wire: a
//! SIP trace for debugging (what `baresip`'s `sip_trace` or PJSIP's message log print).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::transport::Transport;

/// Which way a traced message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Handed to a socket or connection.
    Sent,
    /// Read from a socket or connection, before it is parsed.
    Received,
}

impl Direction {
    /// `sent` or `received`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// One SIP message on the wire.
#[derive(Debug, Clone, Copy)]
pub struct TraceRecord<'a> {
    /// Sent or received.
    pub direction: Direction,
    /// The transport it went over.
    pub transport: Transport,
    /// The local address, when the driver knows it (UDP, and received stream messages).
    pub local: Option<SocketAddr>,
    /// The peer: destination of a sent message, source of a received one.
    pub remote: SocketAddr,
    /// The bytes, as sent or as received (not necessarily valid SIP, nor UTF-8).
    pub payload: &'a [u8],
}

/// Called by the driver with every SIP message it sends or receives (not keep-alive pings,
/// pongs or STUN), on the driver's task: it should be quick (write to a buffered file, send
/// to a channel).
///
/// ```
/// use tincan_sip::driver::{DriverConfig, Tracer};
///
/// let mut config = DriverConfig::udp("127.0.0.1:0".parse().unwrap());
/// config.trace = Some(Tracer::new(|r| {
///     eprintln!("{} {} bytes {}", r.direction.as_str(), r.payload.len(), r.remote)
/// }));
/// ```
#[derive(Clone)]
pub struct Tracer(Arc<dyn Fn(&TraceRecord<'_>) + Send + Sync>);

impl Tracer {
    /// A tracer that calls `f`.
    pub fn new(f: impl Fn(&TraceRecord<'_>) + Send + Sync + 'static) -> Tracer {
        Tracer(Arc::new(f))
    }

    pub(crate) fn record(&self, record: &TraceRecord<'_>) {
        (self.0)(record);
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer(..)")
    }
}
