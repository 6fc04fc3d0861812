//! The tokio driver: real sockets, real time, one task owning the [`Endpoint`].
//!
//! [`Driver::start`] binds the configured UDP, TCP and TLS listeners and spawns one task that
//! `select!`s over received bytes, commands from [`Handle`]s, the endpoint's next deadline and
//! shutdown. UDP sockets and stream connections have small reader tasks that only receive
//! and frame; writers only write. The protocol lives in the endpoint.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tincan_sip::driver::{Driver, DriverConfig};
//! use tincan_sip::message::{HeaderName, Method, RequestBuilder, Uri};
//! use tincan_sip::transport::{Target, Transport};
//!
//! let (handle, _incoming) = Driver::start(DriverConfig::udp("127.0.0.1:0".parse()?)).await?;
//! let uri = Uri::parse("sip:bob@127.0.0.1:5070")?;
//! let options = RequestBuilder::new(Method::Options, &uri)
//!     .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=x1")
//!     .header(HeaderName::To, "<sip:bob@127.0.0.1>")
//!     .call_id(&handle.new_call_id())
//!     .cseq(1)
//!     .build();
//! let mut tx = handle.request(options, Target::new(Transport::Udp, "127.0.0.1:5070".parse()?)).await?;
//! let response = tx.final_response().await?;
//! println!("{}", response.status().unwrap());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```
#![allow(clippy::disallowed_methods)] // The driver is where the clock is read.

mod bind;
mod icmp;
mod os_rng;
mod stream;
pub mod tls;
mod trace;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::endpoint::{Endpoint, EndpointConfig, Event, SendError, Source};
use crate::message::Message;
use crate::stun;
use crate::transaction::TransactionId;
use crate::transport::{ConnectionId, Received, Target, Transmit, Transport};

pub use os_rng::{OsRng, OsRngError};
pub use tls::{TlsError, TlsSettings};
pub use trace::{Direction, TraceRecord, Tracer};

/// How the driver binds and behaves.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The endpoint's configuration.
    pub endpoint: EndpointConfig,
    /// UDP addresses to bind (port 0 picks a free port).
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (need a certificate in `tls`).
    pub tls_listen: Vec<SocketAddr>,
    /// TLS trust and certificates.
    pub tls: TlsSettings,
    /// A stream connection unused for this long is closed.
    pub idle_timeout: Duration,
    /// Longest wait for a TCP or TLS connection to open.
    pub connect_timeout: Duration,
    /// On shutdown, how long in-flight transactions may take to finish.
    pub shutdown_grace: Duration,
    /// Seed for a reproducible run: the endpoint's branches, tags and Call-IDs come from a
    /// [`XorShiftRng`](crate::rng::XorShiftRng) with this seed. `None` (the default, and what
    /// production uses): from the operating system's generator, [`OsRng`].
    pub seed: Option<u64>,
    /// Receive and send buffer size of the UDP sockets in bytes (`SO_RCVBUF`, `SO_SNDBUF`,
    /// capped by the system's `net.core.rmem_max` / `wmem_max`); `None` keeps the system's
    /// default. A larger buffer rides out bursts under load instead of dropping datagrams.
    pub udp_buffer_size: Option<usize>,
    /// Sees every SIP message sent or received (a SIP trace); `None` traces nothing.
    pub trace: Option<Tracer>,
}

impl DriverConfig {
    /// One UDP socket (also a TCP listener and TLS client) on `addr`'s IP.
    pub fn udp(addr: SocketAddr) -> DriverConfig {
        DriverConfig {
            endpoint: EndpointConfig::default(),
            udp: vec![addr],
            tcp: Vec::new(),
            tls_listen: Vec::new(),
            tls: TlsSettings::system(),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(4),
            seed: None,
            udp_buffer_size: None,
            trace: None,
        }
    }
}

/// Why the driver failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// A socket could not be bound.
    #[error("cannot bind {transport} {addr}: {source}")]
    Bind {
        /// Transport.
        transport: Transport,
        /// Address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The endpoint refused.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The driver has stopped.
    #[error("the SIP driver has stopped")]
    Stopped,
}

/// How a client transaction ended without a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// No final response in time (Timer B or F).
    #[error("no response (timeout)")]
    Timeout,
    /// The transport failed (connection refused, unreachable...).
    #[error("transport error")]
    TransportError,
    /// The driver stopped.
    #[error("the SIP driver has stopped")]
    Stopped,
}

/// Something for the transaction user that is not a response to its own request.
#[derive(Debug)]
#[non_exhaustive]
pub enum IncomingEvent {
    /// A request to answer with [`ServerRequest::respond`].
    Request(ServerRequest),
    /// The ACK of a 2xx.
    Ack {
        /// The ACK.
        request: Message,
        /// Where it came from.
        source: Source,
    },
    /// A CANCEL ended this INVITE transaction (487 already sent).
    Cancelled(TransactionId),
    /// A final response to this INVITE was never acknowledged.
    AckTimeout(TransactionId),
    /// A 2xx that matches no transaction (late fork).
    StrayResponse {
        /// The response.
        response: Message,
        /// Where it came from.
        source: Source,
    },
}

/// A received request with its server transaction.
#[derive(Debug)]
pub struct ServerRequest {
    /// The server transaction.
    pub transaction: TransactionId,
    /// The request.
    pub request: Message,
    /// Where it came from.
    pub source: Source,
    handle: Handle,
}

impl ServerRequest {
    /// Sends a response on the transaction (call it more than once for provisionals).
    pub async fn respond(&self, response: Message) -> Result<(), DriverError> {
        self.handle.respond(self.transaction, response).await
    }

    /// Sends a response on the transaction without waiting for the driver to take it: the
    /// cheap way for a TU that answers at once (no round trip through the driver task). The
    /// endpoint's refusal (a second final response...) is not reported; use
    /// [`respond`](Self::respond) to hear it.
    pub fn respond_now(&self, response: Message) -> Result<(), DriverError> {
        self.handle.respond_now(self.transaction, response)
    }

    /// A handle to the driver.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The stream of [`IncomingEvent`]s.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<IncomingEvent>,
}

impl Incoming {
    /// The next event; `None` when the driver stopped.
    pub async fn next(&mut self) -> Option<IncomingEvent> {
        self.rx.recv().await
    }
}

/// What happens on a watched flow (see [`Handle::flow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowSignal {
    /// A CRLF keep-alive pong arrived (RFC 5626 §4.4.1).
    Pong,
    /// The connection closed, was reset, or was closed by the driver (idle, [`Flow::close`]).
    Closed,
    /// A STUN Binding response to a request sent with [`Flow::send_binding`] (or
    /// [`Flow::ping`]) arrived from the flow's target (UDP, RFC 5626 §4.4.2).
    BindingResponse {
        /// The transaction it answers.
        transaction: stun::TransactionId,
        /// XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS): the flow's address as the target sees it.
        mapped: Option<SocketAddr>,
        /// The ERROR-CODE of an error response.
        error: Option<u16>,
    },
    /// An ICMP error said the flow's target is unreachable (UDP).
    Unreachable,
}

/// Which flow a [`Flow`] watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowKind {
    /// A TCP or TLS connection.
    Stream(ConnectionId),
    /// The driver's UDP socket of the target's family, and the target.
    Datagram(SocketAddr),
}

/// A watch on the RFC 5626 "flow" that carries requests to a target: the stream connection
/// (TCP, TLS), or the driver's UDP socket and the target's address (UDP). Send keep-alive
/// pings on it (CRLF CRLF, or STUN Binding requests), hear its pongs and its end.
#[derive(Debug)]
pub struct Flow {
    kind: FlowKind,
    handle: Handle,
    rx: mpsc::UnboundedReceiver<FlowSignal>,
    closed: bool,
}

impl Flow {
    /// The connection watched (`None` for a UDP flow).
    pub fn connection(&self) -> Option<ConnectionId> {
        match self.kind {
            FlowKind::Stream(id) => Some(id),
            FlowKind::Datagram(_) => None,
        }
    }

    /// True for a UDP flow (keep-alives are STUN Binding requests, [`Flow::send_binding`]).
    pub fn is_datagram(&self) -> bool {
        matches!(self.kind, FlowKind::Datagram(_))
    }

    /// Sends a keep-alive ping: CRLF CRLF on a connection, or a STUN Binding request with a
    /// fresh transaction id on a UDP flow (its response comes as
    /// [`FlowSignal::BindingResponse`]; to retransmit with the same id, use
    /// [`send_binding`](Self::send_binding)). False when the connection is gone.
    pub async fn ping(&self) -> Result<bool, DriverError> {
        match self.kind {
            FlowKind::Stream(connection) => {
                self.handle
                    .call(|reply| Command::Ping { connection, reply })
                    .await
            }
            FlowKind::Datagram(_) => {
                let id = stun::TransactionId::random(&mut OsRng);
                self.send_binding(id).await
            }
        }
    }

    /// Sends a STUN Binding request (with FINGERPRINT) with this transaction id to a UDP
    /// flow's target, from the socket that carries SIP to it (RFC 5626 §4.4.2); the response
    /// is reported as [`FlowSignal::BindingResponse`]. Sending the same id again is a
    /// retransmission. False for a stream flow, or when there is no socket for the target's
    /// address family.
    pub async fn send_binding(
        &self,
        transaction: stun::TransactionId,
    ) -> Result<bool, DriverError> {
        let FlowKind::Datagram(target) = self.kind else {
            return Ok(false);
        };
        self.handle
            .call(|reply| Command::SendBinding {
                target,
                transaction,
                reply,
            })
            .await
    }

    /// The next pong, Binding response or ICMP report, or the end of the connection (then
    /// `Closed` for ever; a UDP flow ends only when the driver stops).
    pub async fn next(&mut self) -> FlowSignal {
        if self.closed {
            return FlowSignal::Closed;
        }
        let signal = self.rx.recv().await.unwrap_or(FlowSignal::Closed);
        if signal == FlowSignal::Closed {
            self.closed = true;
        }
        signal
    }

    /// Closes the connection (a flow considered dead): the next request to its target opens
    /// a new one. Nothing to close on a UDP flow: the socket is shared.
    pub async fn close(&self) {
        let FlowKind::Stream(connection) = self.kind else {
            return;
        };
        let _ = self
            .handle
            .call(|reply| Command::CloseConnection { connection, reply })
            .await;
    }
}

/// What a client transaction produces.
#[derive(Debug)]
enum TxUpdate {
    Response(Message),
    Failed(TxError),
}

/// A request in flight: provisional and final responses arrive here.
#[derive(Debug)]
pub struct ClientTransaction {
    /// The transaction.
    pub id: TransactionId,
    rx: mpsc::UnboundedReceiver<TxUpdate>,
    done: bool,
    /// An INVITE: after a 2xx, more 2xx may come (retransmissions, other forks, RFC 6026).
    invite: bool,
    accepted: bool,
}

impl ClientTransaction {
    /// The next response (provisional or final), an error, or `None` after the final.
    ///
    /// For an INVITE answered with a 2xx, retransmitted and forked 2xx keep arriving until the
    /// transaction ends (Timer M, 64*T1); each needs its ACK.
    pub async fn next(&mut self) -> Option<Result<Message, TxError>> {
        if self.done {
            return None;
        }
        match self.rx.recv().await {
            Some(TxUpdate::Response(m)) => {
                let status = m.status().unwrap_or(0);
                if status >= 200 && !(self.invite && status < 300) {
                    self.done = true;
                } else if status >= 200 {
                    self.accepted = true;
                }
                Some(Ok(m))
            }
            Some(TxUpdate::Failed(e)) => {
                self.done = true;
                (!self.accepted).then_some(Err(e))
            }
            None => {
                self.done = true;
                (!self.accepted).then_some(Err(TxError::Stopped))
            }
        }
    }

    /// Waits for the final response, skipping provisionals.
    pub async fn final_response(&mut self) -> Result<Message, TxError> {
        loop {
            match self.next().await {
                Some(Ok(m)) if m.status().unwrap_or(0) >= 200 => return Ok(m),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Err(TxError::Stopped),
            }
        }
    }
}

enum Command {
    Request {
        request: Message,
        target: Target,
        reply: oneshot::Sender<Result<ClientTransaction, SendError>>,
    },
    Respond {
        transaction: TransactionId,
        response: Message,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    Ack {
        ack: Message,
        target: Target,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    Cancel {
        transaction: TransactionId,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    Token {
        len: usize,
        reply: oneshot::Sender<String>,
    },
    WatchFlow {
        key: (Transport, SocketAddr),
        reply: oneshot::Sender<Option<(FlowKind, mpsc::UnboundedReceiver<FlowSignal>)>>,
    },
    SendBinding {
        target: SocketAddr,
        transaction: stun::TransactionId,
        reply: oneshot::Sender<bool>,
    },
    Ping {
        connection: ConnectionId,
        reply: oneshot::Sender<bool>,
    },
    CloseConnection {
        connection: ConnectionId,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Commands the driver; cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
    /// Responses sent without a reply ([`Handle::respond_now`]). Unbounded, but bounded in
    /// practice by the endpoint's table: each one answers a live server transaction.
    responses: mpsc::UnboundedSender<(TransactionId, Message)>,
    local: Arc<Vec<(Transport, SocketAddr)>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Handle {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DriverError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Sends a request in a new client transaction.
    pub async fn request(
        &self,
        request: Message,
        target: Target,
    ) -> Result<ClientTransaction, DriverError> {
        Ok(self
            .call(|reply| Command::Request {
                request,
                target,
                reply,
            })
            .await??)
    }

    /// Answers a server transaction.
    pub async fn respond(
        &self,
        transaction: TransactionId,
        response: Message,
    ) -> Result<(), DriverError> {
        Ok(self
            .call(|reply| Command::Respond {
                transaction,
                response,
                reply,
            })
            .await??)
    }

    /// Answers a server transaction without waiting for the driver (see
    /// [`ServerRequest::respond_now`]). Fails only when the driver has stopped.
    pub fn respond_now(
        &self,
        transaction: TransactionId,
        response: Message,
    ) -> Result<(), DriverError> {
        self.responses
            .send((transaction, response))
            .map_err(|_| DriverError::Stopped)
    }

    /// Sends the ACK of a 2xx.
    pub async fn send_ack(&self, ack: Message, target: Target) -> Result<(), DriverError> {
        Ok(self
            .call(|reply| Command::Ack { ack, target, reply })
            .await??)
    }

    /// Cancels a pending INVITE.
    pub async fn cancel(&self, transaction: TransactionId) -> Result<(), DriverError> {
        Ok(self
            .call(|reply| Command::Cancel { transaction, reply })
            .await??)
    }

    /// A fresh random token from the endpoint's generator (tags, Call-IDs).
    pub async fn token(&self, len: usize) -> Result<String, DriverError> {
        self.call(|reply| Command::Token { len, reply }).await
    }

    /// A watch on the flow that carries requests to `target`: the stream connection
    /// currently used for it (TCP or TLS; `None` when none is open), or for UDP the driver's
    /// socket of the target's family and the target address (`None` when there is no such
    /// socket).
    pub async fn flow(&self, target: &Target) -> Result<Option<Flow>, DriverError> {
        let key = (target.transport, target.addr);
        let watched = self.call(|reply| Command::WatchFlow { key, reply }).await?;
        Ok(watched.map(|(kind, rx)| Flow {
            kind,
            handle: self.clone(),
            rx,
            closed: false,
        }))
    }

    /// A new Call-ID (`random@host`).
    pub fn new_call_id(&self) -> String {
        let host = self
            .local
            .first()
            .map(|(_, a)| a.ip().to_string())
            .unwrap_or_else(|| "tincan".into());
        let n: u128 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{:x}{:x}@{host}", n, std::process::id())
    }

    /// The bound addresses.
    pub fn local_addresses(&self) -> &[(Transport, SocketAddr)] {
        &self.local
    }

    /// The local address to announce (Contact, SDP) for `transport` towards `dest`: the bound
    /// address of that transport and family, with a wildcard IP replaced by the address the
    /// system routes from.
    pub fn local_address_for(&self, transport: Transport, dest: SocketAddr) -> Option<SocketAddr> {
        let bound = self
            .local
            .iter()
            .filter(|(t, a)| *t == transport && a.is_ipv4() == dest.is_ipv4())
            .map(|(_, a)| *a)
            .find(|a| a.ip().is_unspecified() || a.ip().is_loopback() == dest.ip().is_loopback())
            .or_else(|| {
                self.local
                    .iter()
                    .find(|(t, a)| *t == transport && a.is_ipv4() == dest.is_ipv4())
                    .map(|(_, a)| *a)
            })?;
        if bound.ip().is_unspecified() {
            return Some(SocketAddr::new(route_ip(dest)?, bound.port()));
        }
        Some(bound)
    }

    /// The bound address of a transport (the first of its family when several).
    pub fn local_address(&self, transport: Transport) -> Option<SocketAddr> {
        self.local
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    /// Stops accepting requests, lets in-flight transactions finish (up to the grace
    /// period), then stops.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// What reader, listener and connector tasks tell the driver task.
pub(crate) enum NetEvent {
    Datagram {
        local: SocketAddr,
        source: SocketAddr,
        payload: Bytes,
    },
    Stream(ConnectionId, stream::StreamEvent),
    Accepted(stream::NewConnection),
    Connected {
        key: (Transport, SocketAddr),
        result: io::Result<stream::NewConnection>,
    },
    /// An ICMP error said this UDP destination is unreachable.
    Unreachable(SocketAddr),
}

/// Starts the driver.
pub struct Driver;

impl Driver {
    /// Binds the listeners, spawns the driver task, returns its handle and incoming stream.
    pub async fn start(config: DriverConfig) -> Result<(Handle, Incoming), DriverError> {
        let client_tls = tls::client_config(&config.tls)?;
        let server_tls = tls::server_config(&config.tls)?;
        if !config.tls_listen.is_empty() && server_tls.is_none() {
            return Err(TlsError::NoServerCertificate.into());
        }
        let (net_tx, net_rx) = mpsc::channel::<NetEvent>(4096);
        let mut local = Vec::new();
        let mut udp = HashMap::new();
        // IPv6 sockets next to IPv4 ones are IPv6-only, so that both can have the same port.
        let udp_v6_only = config.udp.iter().any(SocketAddr::is_ipv4);
        for addr in &config.udp {
            let sock = bind::udp(*addr, udp_v6_only)
                .await
                .map_err(|source| DriverError::Bind {
                    transport: Transport::Udp,
                    addr: *addr,
                    source,
                })?;
            let bound = sock.local_addr().map_err(|source| DriverError::Bind {
                transport: Transport::Udp,
                addr: *addr,
                source,
            })?;
            icmp::enable(&sock, bound.is_ipv6());
            if let Some(size) = config.udp_buffer_size {
                set_buffer_size(&sock, size);
            }
            let sock = Arc::new(sock);
            local.push((Transport::Udp, bound));
            udp.insert(bound, sock);
        }
        let mut next_conn = Arc::new(std::sync::atomic::AtomicU64::new(1));
        // Every socket is bound before any task starts: a bind that fails leaves nothing
        // behind (a caller may retry with other addresses, e.g. the same IPv4 port alone).
        let mut listeners = Vec::new();
        for (transport, addrs) in [
            (Transport::Tcp, &config.tcp),
            (Transport::Tls, &config.tls_listen),
        ] {
            let v6_only = addrs.iter().any(SocketAddr::is_ipv4);
            for addr in addrs {
                let listener =
                    bind::tcp(*addr, v6_only)
                        .await
                        .map_err(|source| DriverError::Bind {
                            transport,
                            addr: *addr,
                            source,
                        })?;
                let bound = listener.local_addr().map_err(|source| DriverError::Bind {
                    transport,
                    addr: *addr,
                    source,
                })?;
                local.push((transport, bound));
                listeners.push((transport, listener));
            }
        }
        for (&bound, sock) in &udp {
            tokio::spawn(udp_reader(sock.clone(), bound, net_tx.clone()));
        }
        for (transport, listener) in listeners {
            let acceptor = (transport == Transport::Tls).then(|| {
                tokio_rustls::TlsAcceptor::from(server_tls.clone().expect("checked above"))
            });
            tokio::spawn(stream::accept_loop(
                listener,
                transport,
                acceptor,
                net_tx.clone(),
                Arc::clone(&next_conn),
            ));
        }
        let rng: Box<dyn rand_core::Rng + Send> = match config.seed {
            Some(seed) => {
                Box::new(<crate::rng::XorShiftRng as rand_core::SeedableRng>::seed_from_u64(seed))
            }
            None => Box::new(OsRng),
        };
        let mut endpoint = Endpoint::new(config.endpoint.clone(), rng);
        for (t, a) in &local {
            if !a.ip().is_unspecified() {
                endpoint.add_local_address(*t, *a);
            }
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (resp_tx, resp_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::channel(4096);
        let handle = Handle {
            tx: cmd_tx,
            responses: resp_tx,
            local: Arc::new(local.clone()),
        };
        let task = Task {
            ep: endpoint,
            config,
            udp,
            local,
            conns: HashMap::new(),
            by_target: HashMap::new(),
            pending: HashMap::new(),
            client_txs: HashMap::new(),
            incoming: in_tx,
            handle: handle.clone(),
            backlog: std::collections::VecDeque::new(),
            net_tx,
            client_tls: tokio_rustls::TlsConnector::from(client_tls),
            next_conn: std::mem::take(&mut next_conn),
            shutdown: None,
            udp_flows: HashMap::new(),
            stun_pending: HashMap::new(),
        };
        tokio::spawn(task.run(net_rx, cmd_rx, resp_rx));
        Ok((handle, Incoming { rx: in_rx }))
    }
}

async fn udp_reader(sock: Arc<UdpSocket>, local: SocketAddr, tx: mpsc::Sender<NetEvent>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, source)) => {
                let ev = NetEvent::Datagram {
                    local,
                    source,
                    payload: Bytes::copy_from_slice(&buf[..n]),
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            // An ICMP error (IP_RECVERR): the queued errors name the unreachable destinations.
            // The socket stays usable.
            Err(e) if icmp::is_icmp_error(&e) => {
                for dest in icmp::drain(&sock) {
                    if tx.send(NetEvent::Unreachable(dest)).await.is_err() {
                        return;
                    }
                }
            }
            Err(_) => {
                // Whatever else is queued must not keep the socket readable for ever.
                let _ = icmp::drain(&sock);
                tokio::time::sleep(Duration::from_millis(10)).await;
                if tx.is_closed() {
                    return;
                }
            }
        }
    }
}

struct Conn {
    transport: Transport,
    peer: SocketAddr,
    writer: mpsc::Sender<Bytes>,
    last_used: Instant,
    ping_sent: Arc<std::sync::atomic::AtomicBool>,
    reader: tokio::task::AbortHandle,
    /// Watchers of this connection as a flow ([`Handle::flow`]).
    watchers: Vec<mpsc::UnboundedSender<FlowSignal>>,
}

impl Conn {
    fn signal(&mut self, signal: FlowSignal) {
        self.watchers.retain(|w| w.send(signal).is_ok());
    }
}

/// A client transaction's channel, and its UDP destination (for ICMP errors).
struct ClientTx {
    tx: mpsc::UnboundedSender<TxUpdate>,
    udp_dest: Option<SocketAddr>,
}

struct Task {
    ep: Endpoint,
    config: DriverConfig,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    local: Vec<(Transport, SocketAddr)>,
    conns: HashMap<ConnectionId, Conn>,
    by_target: HashMap<(Transport, SocketAddr), ConnectionId>,
    /// Transmits waiting for a connection being opened.
    pending: HashMap<(Transport, SocketAddr), Vec<Transmit>>,
    client_txs: HashMap<TransactionId, ClientTx>,
    incoming: mpsc::Sender<IncomingEvent>,
    /// Events the TU's channel had no room for, delivered in order before anything else;
    /// while it is not empty the driver reads no more from the network (backpressure: the
    /// peers retransmit), so nothing is ever dropped.
    backlog: std::collections::VecDeque<IncomingEvent>,
    handle: Handle,
    net_tx: mpsc::Sender<NetEvent>,
    client_tls: tokio_rustls::TlsConnector,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
    shutdown: Option<(Instant, Vec<oneshot::Sender<()>>)>,
    /// Watchers of UDP flows, by target address.
    udp_flows: HashMap<SocketAddr, Vec<mpsc::UnboundedSender<FlowSignal>>>,
    /// STUN Binding requests sent on UDP flows: their target and when they were last sent.
    stun_pending: HashMap<stun::TransactionId, (SocketAddr, Instant)>,
}

impl Task {
    async fn run(
        mut self,
        mut net_rx: mpsc::Receiver<NetEvent>,
        mut cmd_rx: mpsc::Receiver<Command>,
        mut resp_rx: mpsc::UnboundedReceiver<(TransactionId, Message)>,
    ) {
        let mut idle = tokio::time::interval(Duration::from_secs(5));
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut commands_open = true;
        let mut took_network = false;
        loop {
            self.flush().await;
            if std::mem::take(&mut took_network) {
                // Let the TU run between batches of received messages, so that its answers
                // come back while the next batch waits in the socket, not behind thousands
                // of events (the select below is always ready under load and would not
                // yield to the scheduler by itself).
                tokio::task::yield_now().await;
            }
            if self.shutdown.is_some() {
                self.abandon_orphans();
            }
            if let Some((deadline, _)) = &self.shutdown
                && (self.ep.in_flight_count() == 0 || Instant::now() >= *deadline)
            {
                break;
            }
            let mut deadline = self.ep.poll_timeout();
            // Under a steady load some branch below is always ready: run due timers here so
            // that they never wait for a quiet moment.
            if deadline.is_some_and(|d| d <= Instant::now()) {
                self.ep.handle_timeout(Instant::now());
                self.flush().await;
                deadline = self.ep.poll_timeout();
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let shutdown_tick = async {
                match &self.shutdown {
                    Some((d, _)) => tokio::time::sleep_until((*d).into()).await,
                    None => std::future::pending().await,
                }
            };
            let backlogged = !self.backlog.is_empty();
            let incoming = self.incoming.clone();
            tokio::select! {
                Some((id, response)) = resp_rx.recv() => {
                    self.respond(id, response);
                    while let Ok((id, response)) = resp_rx.try_recv() {
                        self.respond(id, response);
                    }
                }
                permit = incoming.reserve(), if backlogged => {
                    if let (Ok(permit), Some(ev)) = (permit, self.backlog.pop_front()) {
                        permit.send(ev);
                    }
                    self.drain_backlog();
                }
                Some(ev) = net_rx.recv(), if !backlogged => {
                    took_network = true;
                    self.on_net(ev);
                    // Take whatever else is ready without going round the loop.
                    for _ in 0..64 {
                        match net_rx.try_recv() {
                            Ok(ev) => self.on_net(ev),
                            Err(_) => break,
                        }
                    }
                }
                cmd = cmd_rx.recv(), if commands_open => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => {
                        commands_open = false;
                        self.begin_shutdown(None);
                    }
                },
                _ = sleep => self.ep.handle_timeout(Instant::now()),
                _ = idle.tick() => self.close_idle(),
                _ = shutdown_tick => {}
            }
        }
        if let Some((_, waiters)) = self.shutdown.take() {
            for w in waiters {
                let _ = w.send(());
            }
        }
    }

    /// Client transactions whose [`ClientTransaction`] was dropped (the TU gave up on them)
    /// are not waited for: a shutdown waits only for what somebody still wants.
    fn abandon_orphans(&mut self) {
        let orphans: Vec<TransactionId> = self
            .client_txs
            .iter()
            .filter(|(_, c)| c.tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in orphans {
            if self.ep.abandon(id) {
                self.client_txs.remove(&id);
            }
        }
    }

    fn begin_shutdown(&mut self, done: Option<oneshot::Sender<()>>) {
        let deadline = Instant::now() + self.config.shutdown_grace;
        let entry = self.shutdown.get_or_insert((deadline, Vec::new()));
        if let Some(d) = done {
            entry.1.push(d);
        }
        self.ep.set_accepting(false);
    }

    fn on_net(&mut self, ev: NetEvent) {
        let now = Instant::now();
        match ev {
            NetEvent::Datagram {
                local,
                source,
                payload,
            } if stun::is_stun(&payload) => self.on_stun(local, source, &payload),
            NetEvent::Datagram {
                local,
                source,
                payload,
            } => {
                self.trace(
                    Direction::Received,
                    Transport::Udp,
                    Some(local),
                    source,
                    &payload,
                );
                self.ep.handle_received(
                    now,
                    Received {
                        transport: Transport::Udp,
                        source,
                        local,
                        connection: None,
                        payload,
                    },
                );
            }
            NetEvent::Stream(id, ev) => match ev {
                stream::StreamEvent::Message(payload) => {
                    let Some(c) = self.conns.get_mut(&id) else {
                        return;
                    };
                    c.last_used = now;
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
                    };
                    self.trace(
                        Direction::Received,
                        received.transport,
                        Some(received.local),
                        received.source,
                        &received.payload,
                    );
                    self.ep.handle_received(now, received);
                }
                stream::StreamEvent::Ping => {
                    if let Some(c) = self.conns.get(&id) {
                        let _ = c
                            .writer
                            .try_send(Bytes::from_static(crate::message::framing::PONG));
                    }
                }
                stream::StreamEvent::Pong => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.signal(FlowSignal::Pong);
                    }
                }
                stream::StreamEvent::Closed => self.remove_connection(id),
            },
            NetEvent::Unreachable(dest) => self.on_unreachable(now, dest),
            NetEvent::Accepted(nc) => self.register(nc),
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
                                self.ep.handle_transport_error(now, tx);
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
                watchers: Vec::new(),
            },
        );
    }

    /// Forgets a connection (closed by the peer, idle, or declared dead); dropping its writer
    /// ends the writer task, which closes it. Its watchers hear `Closed`.
    fn remove_connection(&mut self, id: ConnectionId) {
        if let Some(mut c) = self.conns.remove(&id) {
            if self.by_target.get(&(c.transport, c.peer)) == Some(&id) {
                self.by_target.remove(&(c.transport, c.peer));
            }
            c.signal(FlowSignal::Closed);
        }
    }

    fn close_idle(&mut self) {
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
        // STUN transactions last 39.5 s at most (RFC 5389 §7.2.1); forget unanswered ones
        // well after, and the watchers of UDP flows that were dropped.
        self.stun_pending
            .retain(|_, (_, sent)| now.duration_since(*sent) < Duration::from_secs(120));
        self.udp_flows.retain(|_, watchers| {
            watchers.retain(|w| !w.is_closed());
            !watchers.is_empty()
        });
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Request {
                request,
                target,
                reply,
            } => {
                self.ensure_local(target.transport, target.addr);
                let invite = request.method() == Some(&crate::message::Method::Invite);
                let udp_dest = (target.transport == Transport::Udp).then_some(target.addr);
                match self.ep.send_request(now, request, target) {
                    Ok(id) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        self.client_txs.insert(id, ClientTx { tx, udp_dest });
                        let _ = reply.send(Ok(ClientTransaction {
                            id,
                            rx,
                            done: false,
                            invite,
                            accepted: false,
                        }));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Respond {
                transaction,
                response,
                reply,
            } => {
                let _ = reply.send(self.ep.send_response(now, transaction, response));
            }
            Command::Ack { ack, target, reply } => {
                self.ensure_local(target.transport, target.addr);
                let _ = reply.send(self.ep.send_ack(ack, target));
            }
            Command::Cancel { transaction, reply } => {
                let _ = reply.send(self.ep.cancel(now, transaction).map(|_| ()));
            }
            Command::Token { len, reply } => {
                let _ = reply.send(self.ep.random_token(len));
            }
            Command::WatchFlow {
                key: (Transport::Udp, target),
                reply,
            } => {
                let watched = self.udp_socket_for(target).map(|_| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.udp_flows.entry(target).or_default().push(tx);
                    (FlowKind::Datagram(target), rx)
                });
                let _ = reply.send(watched);
            }
            Command::SendBinding {
                target,
                transaction,
                reply,
            } => {
                let sent = self.udp_socket_for(target).is_some_and(|sock| {
                    let request = stun::binding_request(transaction, true);
                    self.stun_pending.insert(transaction, (target, now));
                    // A full send buffer loses this one; the keep-alive retransmits.
                    match self.send_datagram(&sock, &request, target) {
                        Ok(_) => true,
                        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                    }
                });
                let _ = reply.send(sent);
            }
            Command::WatchFlow { key, reply } => {
                let watched = self
                    .by_target
                    .get(&key)
                    .copied()
                    .and_then(|id| self.conns.get_mut(&id).map(|c| (id, c)))
                    .map(|(id, c)| {
                        let (tx, rx) = mpsc::unbounded_channel();
                        c.watchers.push(tx);
                        (FlowKind::Stream(id), rx)
                    });
                let _ = reply.send(watched);
            }
            Command::Ping { connection, reply } => {
                let sent = self.conns.get_mut(&connection).is_some_and(|c| {
                    c.last_used = now;
                    c.ping_sent
                        .store(true, std::sync::atomic::Ordering::Release);
                    c.writer
                        .try_send(Bytes::from_static(crate::message::framing::PING))
                        .is_ok()
                });
                let _ = reply.send(sent);
            }
            Command::CloseConnection { connection, reply } => {
                if let Some(c) = self.conns.get(&connection) {
                    c.reader.abort();
                }
                self.remove_connection(connection);
                let _ = reply.send(());
            }
            Command::Shutdown { done } => self.begin_shutdown(Some(done)),
        }
    }

    /// Makes sure the endpoint knows a concrete local address for `transport` towards `dest`
    /// (for the Via): a socket bound to a wildcard address is resolved to the address the
    /// system would route from.
    fn ensure_local(&mut self, transport: Transport, dest: SocketAddr) {
        if let Some(a) = self.ep.local_address_for(transport, dest)
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
        self.ep
            .add_local_address(transport, SocketAddr::new(ip, port));
    }

    async fn flush(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            match t.target.transport {
                Transport::Udp => self.send_udp(t).await,
                Transport::Tcp | Transport::Tls => self.send_stream(t),
            }
        }
        while let Some(e) = self.ep.poll_event() {
            self.dispatch(e);
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

    /// An ICMP error said `dest` is unreachable (UDP): its client transactions fail, its
    /// flow's watchers hear of it.
    fn on_unreachable(&mut self, now: Instant, dest: SocketAddr) {
        let failed: Vec<TransactionId> = self
            .client_txs
            .iter()
            .filter(|(_, c)| c.udp_dest == Some(dest))
            .map(|(id, _)| *id)
            .collect();
        for tx in failed {
            self.ep.handle_transport_error(now, tx);
        }
        signal_udp_flow(&mut self.udp_flows, dest, FlowSignal::Unreachable);
    }

    /// Sends a datagram now ([`icmp::send_to`]); the destinations of the earlier datagrams
    /// whose ICMP errors it came across are handled as unreachable.
    fn send_datagram(
        &mut self,
        sock: &UdpSocket,
        payload: &[u8],
        dest: SocketAddr,
    ) -> io::Result<usize> {
        let mut unreachable = Vec::new();
        let result = icmp::send_to(sock, payload, dest, &mut unreachable);
        let now = Instant::now();
        for dest in unreachable {
            self.on_unreachable(now, dest);
        }
        result
    }

    /// The UDP socket that carries SIP to `dest` (the first bound one of its family).
    fn udp_socket_for(&self, dest: SocketAddr) -> Option<Arc<UdpSocket>> {
        self.udp
            .iter()
            .find(|(a, _)| a.is_ipv4() == dest.is_ipv4())
            .map(|(_, s)| s.clone())
    }

    /// A STUN message on a UDP socket (RFC 5626 §5.1: never handed to the SIP parser).
    /// Binding responses go to the watchers of the flow whose request they answer; Binding
    /// requests (peers keeping their flow to us alive) are answered with the address they
    /// came from. Anything else is dropped.
    fn on_stun(&mut self, local: SocketAddr, source: SocketAddr, payload: &[u8]) {
        let Ok(message) = stun::Message::parse(payload) else {
            return;
        };
        if message.method != stun::BINDING {
            return;
        }
        match message.class {
            stun::Class::Request => {
                if let Some(sock) = self.udp.get(&local).cloned() {
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
                let signal = FlowSignal::BindingResponse {
                    transaction: message.transaction,
                    mapped: message.mapped_address(),
                    error: message.error.as_ref().map(|e| e.code),
                };
                signal_udp_flow(&mut self.udp_flows, target, signal);
            }
            stun::Class::Indication => {}
        }
    }

    async fn send_udp(&mut self, t: Transmit) {
        let sock = self.udp_socket_for(t.target.addr);
        let Some(sock) = sock else {
            if let Some(tx) = t.transaction {
                self.ep.handle_transport_error(Instant::now(), tx);
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
                    self.ep.handle_transport_error(Instant::now(), tx);
                }
            }
        }
    }

    fn send_stream(&mut self, t: Transmit) {
        let key = (t.target.transport, t.target.addr);
        let conn = t.connection.or_else(|| self.by_target.get(&key).copied());
        if let Some(id) = conn {
            if let Some(c) = self.conns.get_mut(&id) {
                c.last_used = Instant::now();
                if c.writer.try_send(t.payload.clone()).is_ok() {
                    let (transport, peer) = (c.transport, c.peer);
                    self.trace(Direction::Sent, transport, None, peer, &t.payload);
                    return;
                }
            }
            if t.connection.is_some() {
                // The connection a response belongs to is gone (§18.2.2 would try the Via
                // address; the peer will retransmit over a new connection).
                if let Some(tx) = t.transaction {
                    self.ep.handle_transport_error(Instant::now(), tx);
                }
                return;
            }
        }
        let waiting = self.pending.entry(key).or_default();
        let first = waiting.is_empty();
        waiting.push(t.clone());
        if first {
            let id = ConnectionId(
                self.next_conn
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            );
            let server_name = t.target.server_name.clone();
            tokio::spawn(stream::connect(
                id,
                key,
                server_name,
                self.client_tls.clone(),
                self.config.connect_timeout,
                self.net_tx.clone(),
            ));
        }
    }

    fn dispatch(&mut self, e: Event) {
        match e {
            Event::Response {
                transaction,
                response,
            } => {
                if let Some(c) = self.client_txs.get(&transaction) {
                    let _ = c.tx.send(TxUpdate::Response(response));
                }
            }
            Event::Timeout { transaction } => {
                if let Some(c) = self.client_txs.remove(&transaction) {
                    let _ = c.tx.send(TxUpdate::Failed(TxError::Timeout));
                }
            }
            Event::TransportError { transaction } => {
                if let Some(c) = self.client_txs.remove(&transaction) {
                    let _ = c.tx.send(TxUpdate::Failed(TxError::TransportError));
                }
            }
            Event::Terminated { transaction } => {
                self.client_txs.remove(&transaction);
            }
            Event::Request {
                transaction: Some(transaction),
                request,
                source,
            } => {
                let ev = IncomingEvent::Request(ServerRequest {
                    transaction,
                    request,
                    source,
                    handle: self.handle.clone(),
                });
                self.deliver(ev);
            }
            Event::Request {
                transaction: None,
                request,
                source,
            } => self.deliver(IncomingEvent::Ack { request, source }),
            Event::AckTimeout { transaction } => {
                self.deliver(IncomingEvent::AckTimeout(transaction))
            }
            Event::Cancelled { transaction } => self.deliver(IncomingEvent::Cancelled(transaction)),
            Event::StrayResponse { response, source } => {
                self.deliver(IncomingEvent::StrayResponse { response, source })
            }
        }
    }

    /// Hands an event to the TU. Nothing is dropped: when the TU's channel is full the event
    /// waits in the backlog, and the run loop stops reading the network until the TU has
    /// caught up. Only when the TU has gone (its receiver dropped) is a request answered
    /// 503 with Retry-After (RFC 3261 §21.5.4), so that its transaction ends.
    fn deliver(&mut self, ev: IncomingEvent) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(ev);
            return;
        }
        match self.incoming.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => self.backlog.push_back(ev),
            Err(mpsc::error::TrySendError::Closed(IncomingEvent::Request(req))) => {
                let mut busy = crate::message::response_to(&req.request, 503, None);
                busy.push_header(crate::message::HeaderName::RetryAfter, "1");
                let _ = self.ep.send_response(Instant::now(), req.transaction, busy);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Moves what the TU's channel has room for from the backlog.
    fn drain_backlog(&mut self) {
        while let Some(ev) = self.backlog.pop_front() {
            match self.incoming.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.backlog.push_front(ev);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(ev)) => {
                    self.backlog.clear();
                    self.deliver(ev);
                    return;
                }
            }
        }
    }

    /// A response from [`Handle::respond_now`].
    fn respond(&mut self, transaction: TransactionId, response: Message) {
        let _ = self.ep.send_response(Instant::now(), transaction, response);
    }
}

/// Tells the watchers of the UDP flow to `target` (those still listening).
fn signal_udp_flow(
    flows: &mut HashMap<SocketAddr, Vec<mpsc::UnboundedSender<FlowSignal>>>,
    target: SocketAddr,
    signal: FlowSignal,
) {
    if let Some(watchers) = flows.get_mut(&target) {
        watchers.retain(|w| w.send(signal).is_ok());
        if watchers.is_empty() {
            flows.remove(&target);
        }
    }
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
