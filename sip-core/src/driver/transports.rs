//! The socket and connection layer of a tokio driver, reusable by any driver that owns its own
//! sans-IO core (an [`Endpoint`], or a phone core that embeds one).
//!
//! [`Transports::bind`] binds the UDP sockets and the TCP and TLS listeners and spawns their
//! reader and acceptor tasks; those only receive and frame. The owner then runs one loop:
//! what the network says comes out of [`Transports::next`] as a [`NetInput`] (a SIP message
//! for [`Endpoint::handle_received`], a transport error, an ICMP unreachable, a keep-alive
//! pong, a closed connection, a STUN Binding response), and what the endpoint wants sent goes
//! in through [`Transports::send`]. Everything transport-level stays here: opening and reusing
//! stream connections (TCP, TLS), closing idle ones, answering CRLF pings and STUN Binding
//! requests, ICMP errors, the SIP trace.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Instant;
//! use tincan_sip::driver::transports::{NetInput, Transports, TransportsConfig};
//! use tincan_sip::endpoint::{Endpoint, EndpointConfig};
//! use rand_core::SeedableRng;
//! use tincan_sip::rng::XorShiftRng;
//!
//! let mut net = Transports::bind(TransportsConfig::udp("127.0.0.1:0".parse()?)).await?;
//! let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(XorShiftRng::seed_from_u64(1)));
//! for (transport, addr) in net.local_addresses() {
//!     ep.add_local_address(*transport, *addr);
//! }
//! loop {
//!     while let Some(transmit) = ep.poll_transmit() {
//!         net.send(transmit).await;
//!     }
//!     while let Some(_event) = ep.poll_event() { /* the transaction user's business */ }
//!     let deadline = ep.poll_timeout().unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(5));
//!     tokio::select! {
//!         Some(input) = net.next() => match input {
//!             NetInput::Received(received) => ep.handle_received(Instant::now(), received),
//!             NetInput::TransportError(tx) => ep.handle_transport_error(Instant::now(), tx),
//!             NetInput::Unreachable(dest) => ep.handle_unreachable(Instant::now(), dest),
//!             _ => {}
//!         },
//!         _ = tokio::time::sleep_until(deadline.into()) => ep.handle_timeout(Instant::now()),
//!     }
//! }
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc};

use super::trace::{Direction, TraceRecord, Tracer};
use super::{DriverError, bind, icmp, stream, tls};
use crate::endpoint::Endpoint;
use crate::stun;
use crate::transaction::TransactionId;
use crate::transport::{ConnectionId, Received, Transmit, Transport};

use tls::{TlsError, TlsSettings};

/// The most network events waiting for the owner of the sockets (datagrams read by the
/// UDP readers, framed stream messages, connection news); see [`udp_reader`] for what
/// happens when it is full.
pub const NET_QUEUE: usize = 4096;

/// STUN transactions last 39.5 s at most (RFC 5389 §7.2.1): an unanswered Binding request
/// is forgotten well after that, by [`Transports::close_idle`].
const STUN_FORGET_AFTER: Duration = Duration::from_secs(120);

/// How long at most the write half of a connection whose peer stopped sending (a half-close,
/// `shutdown(SHUT_WR)`, or bytes that could not be framed) stays open for the final
/// responses owed to the requests it brought: 64·T1, the longest a non-INVITE server
/// transaction lives (Timer F, RFC 3261 §17.1.2.2). Closed as soon as every request it
/// brought has its final response, or when writing fails.
const WRITE_LINGER: Duration = Duration::from_secs(32);

/// The default of [`TransportsConfig::max_connections`]: kamailio's `tcp_max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

/// Which sockets [`Transports::bind`] binds, and how connections behave.
#[derive(Debug, Clone)]
pub struct TransportsConfig {
    /// UDP addresses to bind (port 0 picks a free port).
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (need a certificate in `tls`).
    pub tls_listen: Vec<SocketAddr>,
    /// TLS trust and certificates (the client side is always ready).
    pub tls: TlsSettings,
    /// A stream connection unused for this long is closed (by [`Transports::close_idle`]).
    pub idle_timeout: Duration,
    /// Longest wait for a TCP or TLS connection to open.
    pub connect_timeout: Duration,
    /// Receive and send buffer size of the UDP sockets in bytes (`SO_RCVBUF`, `SO_SNDBUF`,
    /// capped by the system's `net.core.rmem_max` / `wmem_max`); `None` keeps the system's
    /// default. A larger buffer rides out bursts under load instead of dropping datagrams.
    pub udp_buffer_size: Option<usize>,
    /// Sees every SIP message sent or received (a SIP trace); `None` traces nothing.
    pub trace: Option<Tracer>,
    /// Most accepted TCP and TLS connections open at once, all listeners together (TLS
    /// handshakes in progress count). At the cap, a new connection takes the place of the
    /// slowest accepted one (in the middle of a message, or still owing its first, the one
    /// whose deadline comes first); when none is slow the new one is refused (closed at
    /// once): a connection that works is never evicted for a newcomer. Default
    /// [`DEFAULT_MAX_CONNECTIONS`]; [`Transports::bind`] lowers it to half the process's
    /// file descriptor limit (`RLIMIT_NOFILE`), so that connections alone cannot use up the
    /// descriptors calls need for their media sockets. Connections we open are not counted.
    pub max_connections: usize,
    /// A SIP message on a TCP or TLS connection must arrive whole within this time of its
    /// first byte, and an accepted connection must bring its first message (or keep-alive)
    /// within this time of being accepted; else the connection is closed (slowloris). A
    /// connection between messages is idle, not slow: only `idle_timeout` applies to it.
    /// A message we send must be written whole within this time too (a peer that does not
    /// read is given up).
    pub message_timeout: Duration,
    /// Longest time an accepted TLS connection may take to finish its handshake.
    pub handshake_timeout: Duration,
}

impl TransportsConfig {
    /// One UDP socket on `addr` (TCP and TLS are still available as clients), with the
    /// defaults of [`DriverConfig::udp`](super::DriverConfig::udp).
    pub fn udp(addr: SocketAddr) -> TransportsConfig {
        TransportsConfig {
            udp: vec![addr],
            tcp: Vec::new(),
            tls_listen: Vec::new(),
            tls: TlsSettings::system(),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            udp_buffer_size: None,
            trace: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            message_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// What the network tells the owner of the sockets, out of [`Transports::next`].
#[derive(Debug)]
#[non_exhaustive]
pub enum NetInput {
    /// A SIP message (a UDP datagram, or a message framed from a stream), already traced:
    /// feed it to [`Endpoint::handle_received`].
    Received(Received),
    /// Sending a transaction's message failed (no socket of the destination's family, a send
    /// error, a connection that could not be opened, or a response's connection that is
    /// gone): feed it to [`Endpoint::handle_transport_error`].
    TransportError(TransactionId),
    /// An ICMP error said this UDP destination is unreachable (`IP_RECVERR`, read off the
    /// socket's error queue by its reader or by a later send): the owner fails the client
    /// transactions sent there ([`Endpoint::handle_unreachable`]).
    Unreachable(SocketAddr),
    /// A CRLF keep-alive pong arrived on a stream connection (RFC 5626 §4.4.1).
    Pong(ConnectionId),
    /// A stream connection closed: by the peer, reset, idle ([`Transports::close_idle`]), too
    /// slow to bring a message ([`TransportsConfig::message_timeout`]), sending bytes that
    /// cannot be framed, or closed by the owner ([`Transports::close`]). Reported once per
    /// connection, as soon as nothing more can be read from it; responses owed to requests it
    /// brought can still be sent on it for a while when the peer only stopped sending (a
    /// half-close) or sent garbage after them.
    Closed(ConnectionId),
    /// A STUN Binding response (RFC 5389, RFC 5626 §4.4.2) on a UDP socket to a request sent
    /// with [`Transports::send_binding`], from that request's target.
    BindingResponse {
        /// Where the request went (and the response came from).
        target: SocketAddr,
        /// The transaction it answers.
        transaction: stun::TransactionId,
        /// XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS): our address as the target sees it.
        mapped: Option<SocketAddr>,
        /// The ERROR-CODE of an error response.
        error: Option<u16>,
    },
}

/// What reader, listener and connector tasks tell [`Transports`].
pub(crate) enum NetEvent {
    Datagram {
        local: SocketAddr,
        source: SocketAddr,
        payload: Bytes,
        /// When the reader took it off the socket.
        arrived: Instant,
    },
    Stream(ConnectionId, stream::StreamEvent),
    Accepted(stream::NewConnection),
    Connected {
        key: (Transport, SocketAddr),
        result: io::Result<stream::NewConnection>,
    },
    /// An ICMP error said this UDP destination is unreachable.
    Unreachable(SocketAddr),
    /// Every place under the connection cap is taken and a new connection waits: close the
    /// slowest accepted connection, if one is slow, and say whether one was closed.
    CapReached(tokio::sync::oneshot::Sender<bool>),
}

/// An open stream connection.
struct Conn {
    transport: Transport,
    peer: SocketAddr,
    writer: mpsc::Sender<Bytes>,
    last_used: Instant,
    ping_sent: Arc<AtomicBool>,
    reader: tokio::task::AbortHandle,
    /// Requests received on it not yet given a final response on it.
    owed: usize,
    /// See [`stream::NewConnection::slow_since`].
    slow_since: Arc<AtomicU64>,
    /// Accepted: it holds a place under the cap.
    accepted: bool,
}

/// The write half of a connection that can no longer be read (see [`WRITE_LINGER`]).
struct Lingering {
    transport: Transport,
    peer: SocketAddr,
    writer: mpsc::Sender<Bytes>,
    until: Instant,
    /// Requests it brought still waiting for their final response.
    owed: usize,
}

/// The sockets and connections of a driver: UDP sockets, TCP and TLS listeners, the stream
/// connections opened and accepted, and their reader tasks. One owner, `&mut self`; see the
/// [module documentation](self).
pub struct Transports {
    config: TransportsConfig,
    /// The UDP sockets by bound address, in bind order.
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    local: Vec<(Transport, SocketAddr)>,
    conns: HashMap<ConnectionId, Conn>,
    /// Connections no longer read whose write half stays open for the responses they are owed.
    lingering: HashMap<ConnectionId, Lingering>,
    /// Accepted connections refused because `max_connections` were open.
    refused: Arc<AtomicU64>,
    by_target: HashMap<(Transport, SocketAddr), ConnectionId>,
    /// Transmits waiting for a connection being opened.
    pending: HashMap<(Transport, SocketAddr), Vec<Transmit>>,
    /// What the reader, acceptor and connector tasks report.
    events: mpsc::Receiver<NetEvent>,
    /// Given to the tasks spawned later (connectors); keeps `events` open.
    event_sender: mpsc::Sender<NetEvent>,
    client_tls: tokio_rustls::TlsConnector,
    next_conn: Arc<AtomicU64>,
    /// New INVITEs the UDP readers dropped because the queue to the owner was full.
    shed: Arc<AtomicU64>,
    /// STUN Binding requests sent with [`Transports::send_binding`]: their target and when
    /// they were last sent.
    stun_pending: HashMap<stun::TransactionId, (SocketAddr, Instant)>,
    /// Inputs already produced (by a send, or the rest of what one network event produced),
    /// handed out before anything else.
    ready: VecDeque<NetInput>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("local", &self.local)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Transports {
    /// Binds every socket (every bind before any task starts: a bind that fails leaves
    /// nothing behind, so a caller may retry with other addresses), then spawns the UDP
    /// readers and the TCP/TLS acceptors. Fails on a bind error, on a TLS configuration
    /// error, or for a TLS listener without a certificate.
    pub async fn bind(config: TransportsConfig) -> Result<Transports, DriverError> {
        let client_tls = tls::client_config(&config.tls)?;
        let server_tls = tls::server_config(&config.tls)?;
        if !config.tls_listen.is_empty() && server_tls.is_none() {
            return Err(TlsError::NoServerCertificate.into());
        }
        let (event_sender, events) = mpsc::channel::<NetEvent>(NET_QUEUE);
        let mut local = Vec::new();
        let mut udp = Vec::new();
        // IPv6 sockets next to IPv4 ones are IPv6-only, so that both can have the same port.
        let udp_v6_only = config.udp.iter().any(SocketAddr::is_ipv4);
        for addr in &config.udp {
            let bind_error = |source| DriverError::Bind {
                transport: Transport::Udp,
                addr: *addr,
                source,
            };
            let sock = bind::udp(*addr, udp_v6_only).await.map_err(bind_error)?;
            let bound = sock.local_addr().map_err(bind_error)?;
            icmp::enable(&sock, bound.is_ipv6());
            if let Some(size) = config.udp_buffer_size {
                set_buffer_size(&sock, size);
            }
            local.push((Transport::Udp, bound));
            udp.push((bound, Arc::new(sock)));
        }
        let mut listeners = Vec::new();
        for (transport, addrs) in [
            (Transport::Tcp, &config.tcp),
            (Transport::Tls, &config.tls_listen),
        ] {
            let v6_only = addrs.iter().any(SocketAddr::is_ipv4);
            for addr in addrs {
                let bind_error = |source| DriverError::Bind {
                    transport,
                    addr: *addr,
                    source,
                };
                let listener = bind::tcp(*addr, v6_only).await.map_err(bind_error)?;
                let bound = listener.local_addr().map_err(bind_error)?;
                local.push((transport, bound));
                listeners.push((transport, listener));
            }
        }
        let next_conn = Arc::new(AtomicU64::new(1));
        let refused = Arc::new(AtomicU64::new(0));
        let limits = stream::Limits {
            max_connections: connection_cap(config.max_connections),
            message_timeout: config.message_timeout,
            handshake_timeout: config.handshake_timeout,
        };
        let cap = stream::Cap {
            limits,
            permits: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            refused: Arc::clone(&refused),
            epoch: tokio::time::Instant::now(),
        };
        let shed = Arc::new(AtomicU64::new(0));
        for (bound, sock) in &udp {
            tokio::spawn(udp_reader(
                sock.clone(),
                *bound,
                event_sender.clone(),
                Arc::clone(&shed),
            ));
        }
        for (transport, listener) in listeners {
            let acceptor = (transport == Transport::Tls).then(|| {
                tokio_rustls::TlsAcceptor::from(server_tls.clone().expect("checked above"))
            });
            tokio::spawn(stream::accept_loop(
                listener,
                transport,
                acceptor,
                event_sender.clone(),
                Arc::clone(&next_conn),
                cap.clone(),
            ));
        }
        Ok(Transports {
            config,
            udp,
            local,
            conns: HashMap::new(),
            lingering: HashMap::new(),
            refused,
            by_target: HashMap::new(),
            pending: HashMap::new(),
            events,
            event_sender,
            client_tls: tokio_rustls::TlsConnector::from(client_tls),
            next_conn,
            shed,
            stun_pending: HashMap::new(),
            ready: VecDeque::new(),
        })
    }

    /// Every bound (transport, address), as bound (a wildcard IP stays a wildcard; port 0
    /// is replaced by the port picked).
    pub fn local_addresses(&self) -> &[(Transport, SocketAddr)] {
        &self.local
    }

    /// The stream connections open (opened and accepted), not counting the write halves
    /// still open for responses after their peer stopped sending.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// How many accepted connections were refused because
    /// [`max_connections`](TransportsConfig::max_connections) were open.
    pub fn refused_connections(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The local address to announce (Via, Contact, SDP) for `transport` towards `dest`: the
    /// bound address of that transport and family, with a wildcard IP replaced by the address
    /// the system routes from. `None` when nothing of that transport and family is bound.
    pub fn local_address_for(&self, transport: Transport, dest: SocketAddr) -> Option<SocketAddr> {
        local_address_for(&self.local, transport, dest)
    }

    /// The bound address of the UDP socket that carries SIP to `dest` (the first bound one of
    /// its family), `None` when there is none.
    pub fn udp_socket_for(&self, dest: SocketAddr) -> Option<SocketAddr> {
        self.udp_socket(dest).map(|(bound, _)| bound)
    }

    /// The next input from the network. Inputs already produced (by [`send`](Self::send) and
    /// the other calls that send, or left from one network event that produced several) come
    /// out first. Cancel-safe: use it in `tokio::select!`. `None` never comes while the
    /// `Transports` lives (its tasks keep running).
    pub async fn next(&mut self) -> Option<NetInput> {
        loop {
            if let Some(input) = self.ready.pop_front() {
                return Some(input);
            }
            let event = self.events.recv().await?;
            self.on_event(event);
        }
    }

    /// New INVITEs the UDP readers dropped unread because the owner was behind (its queue
    /// of [`NET_QUEUE`] events full), since the start.
    pub fn invites_shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Like [`next`](Self::next) without waiting: `None` when nothing has arrived.
    pub fn try_next(&mut self) -> Option<NetInput> {
        loop {
            if let Some(input) = self.ready.pop_front() {
                return Some(input);
            }
            let event = self.events.try_recv().ok()?;
            self.on_event(event);
        }
    }

    /// Only the inputs already produced (see [`next`](Self::next)), without reading anything
    /// more from the network: what a driver that holds back the network (its transaction user
    /// is behind) still hands to its endpoint after sending.
    pub fn poll_ready(&mut self) -> Option<NetInput> {
        self.ready.pop_front()
    }

    /// Sends one endpoint transmit. UDP is sent now from the socket of the destination's
    /// family, waiting for room when the socket buffer is full; a stream transmit goes on its
    /// connection, or on the one open to its target, or waits for a new one being opened
    /// (with `connect_timeout`). A failure comes out of [`next`](Self::next) as
    /// [`NetInput::TransportError`] (when the transmit has a transaction); ICMP errors of
    /// earlier datagrams found while sending come out as [`NetInput::Unreachable`].
    ///
    /// Not cancel-safe: await it to the end (it waits only while a UDP socket buffer is
    /// full); a send dropped while it waits loses that datagram.
    pub async fn send(&mut self, transmit: Transmit) {
        match transmit.target.transport {
            Transport::Udp => self.send_udp(transmit).await,
            Transport::Tcp | Transport::Tls => self.send_stream(transmit),
        }
    }

    /// Sends a CRLF CRLF keep-alive ping on a stream connection (RFC 5626 §4.4.1); its pong
    /// comes out as [`NetInput::Pong`]. False when the connection is gone (or its writer is
    /// full).
    pub fn ping(&mut self, connection: ConnectionId) -> bool {
        let now = Instant::now();
        self.conns.get_mut(&connection).is_some_and(|c| {
            c.last_used = now;
            c.ping_sent.store(true, Ordering::Release);
            c.writer
                .try_send(Bytes::from_static(crate::message::framing::PING))
                .is_ok()
        })
    }

    /// Sends a STUN Binding request (with FINGERPRINT) with this transaction id to a UDP
    /// target, from the SIP socket of its family (RFC 5626 §4.4.2); the response comes out as
    /// [`NetInput::BindingResponse`]. Sending the same id again is a retransmission. False
    /// when there is no socket of the target's family, or the send failed (a full socket
    /// buffer counts as sent: the caller's keep-alive retransmits).
    pub fn send_binding(&mut self, target: SocketAddr, transaction: stun::TransactionId) -> bool {
        let Some((_, sock)) = self.udp_socket(target) else {
            return false;
        };
        let request = stun::binding_request(transaction, true);
        self.stun_pending
            .insert(transaction, (target, Instant::now()));
        match self.send_datagram(&sock, &request, target) {
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    /// The stream connection currently used for requests to `(transport, addr)`, if one is
    /// open.
    pub fn connection_to(&self, transport: Transport, addr: SocketAddr) -> Option<ConnectionId> {
        self.by_target
            .get(&(transport, addr))
            .copied()
            .filter(|id| self.conns.contains_key(id))
    }

    /// Closes a stream connection (a flow considered dead): the next transmit to its target
    /// opens a new one. [`NetInput::Closed`] comes out for it.
    pub fn close(&mut self, connection: ConnectionId) {
        self.lingering.remove(&connection);
        self.remove_connection(connection);
    }

    /// Closes the stream connections unused for `idle_timeout` ([`NetInput::Closed`] comes out
    /// for each) and forgets STUN transactions long unanswered. The owner calls it every few
    /// seconds.
    pub fn close_idle(&mut self) {
        let now = Instant::now();
        let idle = self.config.idle_timeout;
        let stale: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_used) > idle)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove_connection(id);
        }
        self.lingering.retain(|_, l| l.until > now);
        self.stun_pending
            .retain(|_, (_, sent)| now.duration_since(*sent) < STUN_FORGET_AFTER);
    }

    /// Makes sure `endpoint` knows a concrete local address for `transport` towards `dest`
    /// (for the Via sent-by): a socket bound to a wildcard address is resolved to the
    /// address the system would route from. Call it before sending a request or an ACK.
    pub fn ensure_local(&self, endpoint: &mut Endpoint, transport: Transport, dest: SocketAddr) {
        if let Some(a) = endpoint.local_address_for(transport, dest)
            && a.ip().is_loopback() == dest.ip().is_loopback()
        {
            return;
        }
        let bound = self
            .local
            .iter()
            .find(|(t, a)| *t == transport && a.is_ipv4() == dest.is_ipv4())
            .or_else(|| self.local.iter().find(|(t, _)| *t == Transport::Udp))
            .map(|(_, a)| *a);
        let Some(bound) = bound else {
            return;
        };
        let ip = if bound.ip().is_unspecified() {
            route_ip(dest).unwrap_or(bound.ip())
        } else {
            bound.ip()
        };
        let port = self
            .local
            .iter()
            .find(|(t, a)| *t == transport && a.is_ipv4() == dest.is_ipv4())
            .map(|(_, a)| a.port())
            .unwrap_or(bound.port());
        endpoint.add_local_address(transport, SocketAddr::new(ip, port));
    }

    // ------------------------------------------------------------------------- internals

    /// The UDP socket that carries SIP to `dest` (the first bound one of its family).
    fn udp_socket(&self, dest: SocketAddr) -> Option<(SocketAddr, Arc<UdpSocket>)> {
        self.udp
            .iter()
            .find(|(a, _)| a.is_ipv4() == dest.is_ipv4())
            .map(|(a, s)| (*a, s.clone()))
    }

    /// Handles what a task reported; what the owner must hear goes to `ready`.
    fn on_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Datagram {
                local,
                source,
                payload,
                ..
            } if stun::is_stun(&payload) => self.on_stun(local, source, &payload),
            NetEvent::Datagram {
                local,
                source,
                payload,
                arrived,
            } => {
                self.trace(
                    Direction::Received,
                    Transport::Udp,
                    Some(local),
                    source,
                    &payload,
                );
                self.ready.push_back(NetInput::Received(Received {
                    transport: Transport::Udp,
                    source,
                    local,
                    connection: None,
                    payload,
                    arrived: Some(arrived),
                }));
            }
            NetEvent::Stream(id, event) => match event {
                stream::StreamEvent::Message(payload) => {
                    let Some(c) = self.conns.get_mut(&id) else {
                        return;
                    };
                    c.last_used = Instant::now();
                    // A request is owed a final response (not a response, not an ACK).
                    if !payload.starts_with(b"SIP/") && !payload.starts_with(b"ACK ") {
                        c.owed += 1;
                    }
                    let received = Received {
                        transport: c.transport,
                        source: c.peer,
                        local: self
                            .local
                            .iter()
                            .find(|(t, _)| *t == c.transport)
                            .map(|(_, a)| *a)
                            .unwrap_or(c.peer),
                        connection: Some(id),
                        payload,
                        arrived: None,
                    };
                    self.trace(
                        Direction::Received,
                        received.transport,
                        Some(received.local),
                        received.source,
                        &received.payload,
                    );
                    self.ready.push_back(NetInput::Received(received));
                }
                stream::StreamEvent::Ping => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        // A keep-alive is use (RFC 5626 §4.4.1): the flow stays open.
                        c.last_used = Instant::now();
                        let _ = c
                            .writer
                            .try_send(Bytes::from_static(crate::message::framing::PONG));
                    }
                }
                stream::StreamEvent::Pong => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.last_used = Instant::now();
                        self.ready.push_back(NetInput::Pong(id));
                    }
                }
                stream::StreamEvent::ReadEnded(end) => self.read_ended(id, end),
                stream::StreamEvent::WriteFailed => self.close(id),
            },
            NetEvent::Unreachable(dest) => self.ready.push_back(NetInput::Unreachable(dest)),
            NetEvent::Accepted(nc) => self.register(nc),
            NetEvent::CapReached(reply) => {
                let _ = reply.send(self.evict_slowest());
            }
            NetEvent::Connected { key, result } => {
                let waiting = self.pending.remove(&key).unwrap_or_default();
                match result {
                    Ok(nc) => {
                        let id = nc.id;
                        self.register(nc);
                        for mut t in waiting {
                            t.connection = Some(id);
                            self.send_stream(t);
                        }
                    }
                    Err(_) => {
                        for t in waiting {
                            if let Some(tx) = t.transaction {
                                self.ready.push_back(NetInput::TransportError(tx));
                            }
                        }
                    }
                }
            }
        }
    }

    fn register(&mut self, nc: stream::NewConnection) {
        self.by_target.insert((nc.transport, nc.peer), nc.id);
        self.conns.insert(
            nc.id,
            Conn {
                transport: nc.transport,
                peer: nc.peer,
                writer: nc.writer,
                last_used: Instant::now(),
                ping_sent: nc.ping_sent,
                reader: nc.reader,
                owed: 0,
                slow_since: nc.slow_since,
                accepted: nc.accepted,
            },
        );
    }

    /// Forgets a connection (closed by the peer, idle, or declared dead); its reader is
    /// stopped, and dropping its writer ends the writer task, which closes it. The owner hears
    /// `Closed`.
    fn remove_connection(&mut self, id: ConnectionId) -> Option<Conn> {
        let c = self.conns.remove(&id)?;
        if self.by_target.get(&(c.transport, c.peer)) == Some(&id) {
            self.by_target.remove(&(c.transport, c.peer));
        }
        // A reader still waiting on a peer that went silent would keep the socket open.
        c.reader.abort();
        self.ready.push_back(NetInput::Closed(id));
        Some(c)
    }

    /// Closes the accepted connection whose message (or first frame) is due first, the one
    /// that would be closed soonest anyway, to make room for a new one; false when no
    /// accepted connection is in the middle of a message.
    fn evict_slowest(&mut self) -> bool {
        let slowest = self
            .conns
            .iter()
            .filter(|(_, c)| c.accepted)
            .map(|(id, c)| (c.slow_since.load(Ordering::Relaxed), *id))
            .filter(|(since, _)| *since != 0)
            .min();
        match slowest {
            Some((_, id)) => {
                self.remove_connection(id);
                true
            }
            None => false,
        }
    }

    /// A connection's reader ended. The owner hears `Closed` now (nothing more comes from
    /// it, and no new request goes on it); when the peer only stopped sending (a half-close)
    /// or sent bytes that cannot be framed after whole messages, the write half stays open
    /// for [`WRITE_LINGER`] so that the responses owed to those messages still go out.
    fn read_ended(&mut self, id: ConnectionId, end: stream::ReadEnd) {
        let Some(c) = self.remove_connection(id) else {
            return;
        };
        if matches!(end, stream::ReadEnd::Eof | stream::ReadEnd::Malformed) && c.owed > 0 {
            self.lingering.insert(
                id,
                Lingering {
                    transport: c.transport,
                    peer: c.peer,
                    writer: c.writer,
                    until: Instant::now() + WRITE_LINGER,
                    owed: c.owed,
                },
            );
        }
    }

    /// Hands a SIP message to the configured [`Tracer`], if any (not keep-alives: a payload
    /// of line ends only).
    fn trace(
        &self,
        direction: Direction,
        transport: Transport,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        payload: &[u8],
    ) {
        let Some(tracer) = &self.config.trace else {
            return;
        };
        if payload.iter().all(|&b| b == b'\r' || b == b'\n') {
            return;
        }
        tracer.record(&TraceRecord {
            direction,
            transport,
            local,
            remote,
            payload,
        });
    }

    /// Sends a datagram now ([`icmp::send_to`]); the destinations of the earlier datagrams
    /// whose ICMP errors it came across are reported unreachable.
    fn send_datagram(
        &mut self,
        sock: &UdpSocket,
        payload: &[u8],
        dest: SocketAddr,
    ) -> io::Result<usize> {
        let mut unreachable = Vec::new();
        let result = icmp::send_to(sock, payload, dest, &mut unreachable);
        self.ready
            .extend(unreachable.into_iter().map(NetInput::Unreachable));
        result
    }

    /// A STUN message on a UDP socket (RFC 5626 §5.1: never handed to the SIP parser).
    /// Binding responses to our requests are reported; Binding requests (peers keeping their
    /// flow to us alive) are answered with the address they came from. Anything else is
    /// dropped.
    fn on_stun(&mut self, local: SocketAddr, source: SocketAddr, payload: &[u8]) {
        let Ok(message) = stun::Message::parse(payload) else {
            return;
        };
        if message.method != stun::BINDING {
            return;
        }
        match message.class {
            stun::Class::Request => {
                let sock = self
                    .udp
                    .iter()
                    .find(|(a, _)| *a == local)
                    .map(|(_, s)| s.clone());
                if let Some(sock) = sock {
                    let response =
                        stun::binding_success(message.transaction, source, message.fingerprint);
                    // Best effort: the peer retransmits.
                    let _ = self.send_datagram(&sock, &response, source);
                }
            }
            stun::Class::SuccessResponse | stun::Class::ErrorResponse => {
                let Some((target, _)) = self.stun_pending.get(&message.transaction).copied() else {
                    return;
                };
                if target != source {
                    return;
                }
                self.stun_pending.remove(&message.transaction);
                self.ready.push_back(NetInput::BindingResponse {
                    target,
                    transaction: message.transaction,
                    mapped: message.mapped_address(),
                    error: message.error.as_ref().map(|e| e.code),
                });
            }
            stun::Class::Indication => {}
        }
    }

    async fn send_udp(&mut self, t: Transmit) {
        let Some((_, sock)) = self.udp_socket(t.target.addr) else {
            if let Some(tx) = t.transaction {
                self.ready.push_back(NetInput::TransportError(tx));
            }
            return;
        };
        let result = loop {
            match self.send_datagram(&sock, &t.payload, t.target.addr) {
                // The socket buffer is full: wait for room.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = sock.writable().await {
                        break Err(e);
                    }
                }
                r => break r,
            }
        };
        match result {
            Ok(_) => {
                if self.config.trace.is_some() {
                    let local = sock.local_addr().ok();
                    self.trace(
                        Direction::Sent,
                        Transport::Udp,
                        local,
                        t.target.addr,
                        &t.payload,
                    );
                }
            }
            Err(_) => {
                if let Some(tx) = t.transaction {
                    self.ready.push_back(NetInput::TransportError(tx));
                }
            }
        }
    }

    fn send_stream(&mut self, t: Transmit) {
        let key = (t.target.transport, t.target.addr);
        let conn = t.connection.or_else(|| self.by_target.get(&key).copied());
        if let Some(id) = conn {
            let is_final = is_final_response(&t.payload);
            if let Some(c) = self.conns.get_mut(&id) {
                c.last_used = Instant::now();
                if c.writer.try_send(t.payload.clone()).is_ok() {
                    if is_final {
                        c.owed = c.owed.saturating_sub(1);
                    }
                    let (transport, peer) = (c.transport, c.peer);
                    self.trace(Direction::Sent, transport, None, peer, &t.payload);
                    return;
                }
            }
            if let Some(l) = self.lingering.get_mut(&id)
                && l.writer.try_send(t.payload.clone()).is_ok()
            {
                // A response on the write half of a connection its peer stopped sending on;
                // after the last final response owed, the writer (dropped) writes what it
                // has and closes.
                let (transport, peer) = (l.transport, l.peer);
                if is_final {
                    l.owed = l.owed.saturating_sub(1);
                    if l.owed == 0 {
                        self.lingering.remove(&id);
                    }
                }
                self.trace(Direction::Sent, transport, None, peer, &t.payload);
                return;
            }
            if t.connection.is_some() {
                // The connection a response belongs to is gone (§18.2.2 would try the Via
                // address; the peer will retransmit over a new connection).
                if let Some(tx) = t.transaction {
                    self.ready.push_back(NetInput::TransportError(tx));
                }
                return;
            }
        }
        let waiting = self.pending.entry(key).or_default();
        let first = waiting.is_empty();
        waiting.push(t.clone());
        if first {
            let id = ConnectionId(self.next_conn.fetch_add(1, Ordering::Relaxed));
            let server_name = t.target.server_name.clone();
            tokio::spawn(stream::connect(
                id,
                key,
                server_name,
                self.client_tls.clone(),
                self.config.connect_timeout,
                self.config.message_timeout,
                self.event_sender.clone(),
            ));
        }
    }
}

/// The local address to announce for `transport` towards `dest` among the bound addresses
/// `local` (see [`Transports::local_address_for`]).
pub(crate) fn local_address_for(
    local: &[(Transport, SocketAddr)],
    transport: Transport,
    dest: SocketAddr,
) -> Option<SocketAddr> {
    let bound = local
        .iter()
        .filter(|(t, a)| *t == transport && a.is_ipv4() == dest.is_ipv4())
        .map(|(_, a)| *a)
        .find(|a| a.ip().is_unspecified() || a.ip().is_loopback() == dest.ip().is_loopback())
        .or_else(|| {
            local
                .iter()
                .find(|(t, a)| *t == transport && a.is_ipv4() == dest.is_ipv4())
                .map(|(_, a)| *a)
        })?;
    if bound.ip().is_unspecified() {
        return Some(SocketAddr::new(route_ip(dest)?, bound.port()));
    }
    Some(bound)
}

/// Receives datagrams on a UDP socket and reads its ICMP errors, until the [`Transports`]
/// is dropped. Each datagram is stamped with the instant it was read
/// ([`Received::arrived`]), so that the endpoint knows how long it waited.
///
/// The queue to the owner is bounded ([`NET_QUEUE`]). When it is full the owner is behind,
/// and a new INVITE (a datagram that starts `INVITE `) is dropped here, unread: it is the
/// one kind of work that adds load, and its sender retransmits it. Everything else (the
/// responses, ACK, BYE, CANCEL, OPTIONS that let calls already up end) waits for room,
/// while the socket's own buffer ([`TransportsConfig::udp_buffer_size`]) holds what
/// arrives meanwhile.
async fn udp_reader(
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
    shed: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, source)) => {
                let event = NetEvent::Datagram {
                    local,
                    source,
                    payload: Bytes::copy_from_slice(&buf[..n]),
                    arrived: Instant::now(),
                };
                let event = match events.try_send(event) {
                    Ok(()) => continue,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                    Err(mpsc::error::TrySendError::Full(event)) => event,
                };
                if buf[..n].starts_with(b"INVITE ") {
                    shed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if events.send(event).await.is_err() {
                    return;
                }
            }
            // An ICMP error (IP_RECVERR): the queued errors name the unreachable destinations.
            // The socket stays usable.
            Err(e) if icmp::is_icmp_error(&e) => {
                for dest in icmp::drain(&sock) {
                    if events.send(NetEvent::Unreachable(dest)).await.is_err() {
                        return;
                    }
                }
            }
            Err(_) => {
                // Whatever else is queued must not keep the socket readable for ever.
                let _ = icmp::drain(&sock);
                tokio::time::sleep(Duration::from_millis(10)).await;
                if events.is_closed() {
                    return;
                }
            }
        }
    }
}

/// A final response (status 200-699): what a request on a stream connection is owed.
fn is_final_response(payload: &[u8]) -> bool {
    payload.starts_with(b"SIP/2.0 ") && payload.get(8).is_some_and(|d| (b'2'..=b'6').contains(d))
}

/// The connection cap for `configured`: no more than half the process's file descriptor
/// limit (`RLIMIT_NOFILE`, soft), the other half left for the UDP and media sockets of calls,
/// DNS, and the connections we open ourselves; at least 1.
#[cfg(target_os = "linux")]
fn connection_cap(configured: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            let half = usize::try_from(soft / 2).unwrap_or(usize::MAX);
            configured.min(half).max(1)
        }
        Err(_) => configured.max(1),
    }
}

#[cfg(not(target_os = "linux"))]
fn connection_cap(configured: usize) -> usize {
    configured.max(1)
}

/// Sets a UDP socket's receive and send buffer sizes (best effort).
#[cfg(target_os = "linux")]
fn set_buffer_size(sock: &UdpSocket, size: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = setsockopt(sock, sockopt::RcvBuf, &size);
    let _ = setsockopt(sock, sockopt::SndBuf, &size);
}

#[cfg(not(target_os = "linux"))]
fn set_buffer_size(_sock: &UdpSocket, _size: usize) {}

/// The local address the system would use to reach `dest` (no packet is sent).
fn route_ip(dest: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if dest.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = std::net::UdpSocket::bind(bind).ok()?;
    s.connect(dest).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}
