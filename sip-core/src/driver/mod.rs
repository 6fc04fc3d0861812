//! The tokio driver: real sockets, real time, one task owning the [`Endpoint`].
//!
//! [`Driver::start`] binds the configured UDP, TCP and TLS listeners and spawns one task that
//! `select!`s over received bytes, commands from [`Handle`]s, the endpoint's next deadline and
//! shutdown. UDP sockets and stream connections have small reader tasks that only receive
//! and frame; writers only write. The protocol lives in the endpoint.
//!
//! The sockets and connections are [`transports::Transports`]: the driver task owns one next
//! to its [`Endpoint`], and a driver that owns a sans-IO core of its own can use it the same
//! way (see the [`transports`] module).
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
pub mod dns;
mod icmp;
mod os_rng;
mod stream;
pub mod tls;
mod trace;
pub mod transports;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::endpoint::{Endpoint, EndpointConfig, Event, SendError, Source};
use crate::message::Message;
use crate::stun;
use crate::transaction::TransactionId;
use crate::transport::{ConnectionId, Target, Transport};

pub use os_rng::{OsRng, OsRngError};
pub use tls::{TlsError, TlsSettings};
pub use trace::{Direction, TraceRecord, Tracer};
use transports::{NetInput, Transports, TransportsConfig};

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
    /// Most accepted TCP and TLS connections open at once
    /// ([`TransportsConfig::max_connections`]).
    pub max_connections: usize,
    /// A stream message must arrive whole within this time of its first byte
    /// ([`TransportsConfig::message_timeout`]).
    pub message_timeout: Duration,
    /// Longest TLS handshake of an accepted connection
    /// ([`TransportsConfig::handshake_timeout`]).
    pub handshake_timeout: Duration,
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
            max_connections: transports::DEFAULT_MAX_CONNECTIONS,
            message_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
        }
    }

    /// The sockets part of this configuration, for [`Transports::bind`].
    pub fn transports(&self) -> TransportsConfig {
        TransportsConfig {
            udp: self.udp.clone(),
            tcp: self.tcp.clone(),
            tls_listen: self.tls_listen.clone(),
            tls: self.tls.clone(),
            idle_timeout: self.idle_timeout,
            connect_timeout: self.connect_timeout,
            udp_buffer_size: self.udp_buffer_size,
            trace: self.trace.clone(),
            max_connections: self.max_connections,
            message_timeout: self.message_timeout,
            handshake_timeout: self.handshake_timeout,
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
    events: mpsc::Receiver<IncomingEvent>,
}

impl Incoming {
    /// The next event; `None` when the driver stopped.
    pub async fn next(&mut self) -> Option<IncomingEvent> {
        self.events.recv().await
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
    signals: mpsc::UnboundedReceiver<FlowSignal>,
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
        let signal = self.signals.recv().await.unwrap_or(FlowSignal::Closed);
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
    updates: mpsc::UnboundedReceiver<TxUpdate>,
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
        match self.updates.recv().await {
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
    commands: mpsc::Sender<Command>,
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
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| DriverError::Stopped)?;
        answer.await.map_err(|_| DriverError::Stopped)
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
        Ok(watched.map(|(kind, signals)| Flow {
            kind,
            handle: self.clone(),
            signals,
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
        transports::local_address_for(&self.local, transport, dest)
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
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// Starts the driver.
pub struct Driver;

impl Driver {
    /// Binds the listeners, spawns the driver task, returns its handle and incoming stream.
    pub async fn start(config: DriverConfig) -> Result<(Handle, Incoming), DriverError> {
        let transports = Transports::bind(config.transports()).await?;
        let rng: Box<dyn rand_core::Rng + Send> = match config.seed {
            Some(seed) => {
                Box::new(<crate::rng::XorShiftRng as rand_core::SeedableRng>::seed_from_u64(seed))
            }
            None => Box::new(OsRng),
        };
        let mut endpoint = Endpoint::new(config.endpoint.clone(), rng);
        for (t, a) in transports.local_addresses() {
            if !a.ip().is_unspecified() {
                endpoint.add_local_address(*t, *a);
            }
        }
        let (commands, command_queue) = mpsc::channel(1024);
        let (responses, response_queue) = mpsc::unbounded_channel();
        let (incoming, incoming_queue) = mpsc::channel(4096);
        let handle = Handle {
            commands,
            responses,
            local: Arc::new(transports.local_addresses().to_vec()),
        };
        let task = Task {
            ep: endpoint,
            transports,
            shutdown_grace: config.shutdown_grace,
            client_txs: HashMap::new(),
            incoming,
            handle: handle.clone(),
            backlog: std::collections::VecDeque::new(),
            shutdown: None,
            conn_flows: HashMap::new(),
            udp_flows: HashMap::new(),
        };
        tokio::spawn(task.run(command_queue, response_queue));
        Ok((
            handle,
            Incoming {
                events: incoming_queue,
            },
        ))
    }
}

/// The driver task: the [`Endpoint`] and the [`Transports`] it sends through, the channels of
/// the client transactions and flows it reports to.
struct Task {
    ep: Endpoint,
    transports: Transports,
    shutdown_grace: Duration,
    /// Where each client transaction's responses go.
    client_txs: HashMap<TransactionId, mpsc::UnboundedSender<TxUpdate>>,
    incoming: mpsc::Sender<IncomingEvent>,
    /// Events the TU's channel had no room for, delivered in order before anything else;
    /// while it is not empty the driver reads no more from the network (backpressure: the
    /// peers retransmit), so nothing is ever dropped.
    backlog: std::collections::VecDeque<IncomingEvent>,
    handle: Handle,
    shutdown: Option<(Instant, Vec<oneshot::Sender<()>>)>,
    /// Watchers of stream connections as flows ([`Handle::flow`]).
    conn_flows: HashMap<ConnectionId, Vec<mpsc::UnboundedSender<FlowSignal>>>,
    /// Watchers of UDP flows, by target address.
    udp_flows: HashMap<SocketAddr, Vec<mpsc::UnboundedSender<FlowSignal>>>,
}

impl Task {
    async fn run(
        mut self,
        mut command_queue: mpsc::Receiver<Command>,
        mut response_queue: mpsc::UnboundedReceiver<(TransactionId, Message)>,
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
            let shutdown_deadline = self.shutdown.as_ref().map(|(d, _)| *d);
            let shutdown_tick = async {
                match shutdown_deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let backlogged = !self.backlog.is_empty();
            let incoming = self.incoming.clone();
            tokio::select! {
                Some((id, response)) = response_queue.recv() => {
                    self.respond(id, response);
                    while let Ok((id, response)) = response_queue.try_recv() {
                        self.respond(id, response);
                    }
                }
                permit = incoming.reserve(), if backlogged => {
                    if let (Ok(permit), Some(ev)) = (permit, self.backlog.pop_front()) {
                        permit.send(ev);
                    }
                    self.drain_backlog();
                }
                Some(input) = self.transports.next(), if !backlogged => {
                    took_network = true;
                    self.on_input(input);
                    // Take whatever else is ready without going round the loop.
                    for _ in 0..64 {
                        match self.transports.try_next() {
                            Some(input) => self.on_input(input),
                            None => break,
                        }
                    }
                }
                cmd = command_queue.recv(), if commands_open => match cmd {
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
            .filter(|(_, updates)| updates.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in orphans {
            if self.ep.abandon(id) {
                self.client_txs.remove(&id);
            }
        }
    }

    fn begin_shutdown(&mut self, done: Option<oneshot::Sender<()>>) {
        let deadline = Instant::now() + self.shutdown_grace;
        let entry = self.shutdown.get_or_insert((deadline, Vec::new()));
        if let Some(d) = done {
            entry.1.push(d);
        }
        self.ep.set_accepting(false);
    }

    /// What the network said: to the endpoint, or to the watchers of a flow.
    fn on_input(&mut self, input: NetInput) {
        let now = Instant::now();
        match input {
            NetInput::Received(received) => self.ep.handle_received(now, received),
            NetInput::TransportError(tx) => self.ep.handle_transport_error(now, tx),
            // An ICMP error said `dest` is unreachable (UDP): its client transactions fail,
            // its flow's watchers hear of it.
            NetInput::Unreachable(dest) => {
                self.ep.handle_unreachable(now, dest);
                signal_flow(&mut self.udp_flows, dest, FlowSignal::Unreachable);
            }
            NetInput::Pong(id) => signal_flow(&mut self.conn_flows, id, FlowSignal::Pong),
            NetInput::Closed(id) => {
                signal_flow(&mut self.conn_flows, id, FlowSignal::Closed);
                self.conn_flows.remove(&id);
            }
            NetInput::BindingResponse {
                target,
                transaction,
                mapped,
                error,
            } => {
                let signal = FlowSignal::BindingResponse {
                    transaction,
                    mapped,
                    error,
                };
                signal_flow(&mut self.udp_flows, target, signal);
            }
        }
    }

    /// Hands the endpoint what the transports produced themselves (send errors, ICMP errors
    /// found while sending, closed connections), without reading more from the network.
    fn on_ready_inputs(&mut self) -> bool {
        let mut any = false;
        while let Some(input) = self.transports.poll_ready() {
            self.on_input(input);
            any = true;
        }
        any
    }

    fn close_idle(&mut self) {
        self.transports.close_idle();
        // Forget the watchers of flows that were dropped.
        self.udp_flows.retain(|_, watchers| {
            watchers.retain(|w| !w.is_closed());
            !watchers.is_empty()
        });
        self.conn_flows.retain(|_, watchers| {
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
                self.transports
                    .ensure_local(&mut self.ep, target.transport, target.addr);
                let invite = request.method() == Some(&crate::message::Method::Invite);
                match self.ep.send_request(now, request, target) {
                    Ok(id) => {
                        let (sender, updates) = mpsc::unbounded_channel();
                        self.client_txs.insert(id, sender);
                        let _ = reply.send(Ok(ClientTransaction {
                            id,
                            updates,
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
                self.transports
                    .ensure_local(&mut self.ep, target.transport, target.addr);
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
                let watched = self.transports.udp_socket_for(target).map(|_| {
                    let (watcher, signals) = mpsc::unbounded_channel();
                    self.udp_flows.entry(target).or_default().push(watcher);
                    (FlowKind::Datagram(target), signals)
                });
                let _ = reply.send(watched);
            }
            Command::SendBinding {
                target,
                transaction,
                reply,
            } => {
                let sent = self.transports.send_binding(target, transaction);
                // ICMP errors it came across fail their transactions now, as they would
                // have had they been read by the socket's reader.
                self.on_ready_inputs();
                let _ = reply.send(sent);
            }
            Command::WatchFlow {
                key: (transport, addr),
                reply,
            } => {
                let watched = self.transports.connection_to(transport, addr).map(|id| {
                    let (watcher, signals) = mpsc::unbounded_channel();
                    self.conn_flows.entry(id).or_default().push(watcher);
                    (FlowKind::Stream(id), signals)
                });
                let _ = reply.send(watched);
            }
            Command::Ping { connection, reply } => {
                let _ = reply.send(self.transports.ping(connection));
            }
            Command::CloseConnection { connection, reply } => {
                self.transports.close(connection);
                // Its watchers hear `Closed` before the closer hears back.
                self.on_ready_inputs();
                let _ = reply.send(());
            }
            Command::Shutdown { done } => self.begin_shutdown(Some(done)),
        }
    }

    /// Sends what the endpoint has to send, hands it what sending produced (until neither has
    /// more), then delivers its events.
    async fn flush(&mut self) {
        loop {
            while let Some(t) = self.ep.poll_transmit() {
                self.transports.send(t).await;
            }
            if !self.on_ready_inputs() {
                break;
            }
        }
        while let Some(e) = self.ep.poll_event() {
            self.dispatch(e);
        }
    }

    fn dispatch(&mut self, e: Event) {
        match e {
            Event::Response {
                transaction,
                response,
            } => {
                if let Some(updates) = self.client_txs.get(&transaction) {
                    let _ = updates.send(TxUpdate::Response(response));
                }
            }
            Event::Timeout { transaction } => {
                if let Some(updates) = self.client_txs.remove(&transaction) {
                    let _ = updates.send(TxUpdate::Failed(TxError::Timeout));
                }
            }
            Event::TransportError { transaction } => {
                if let Some(updates) = self.client_txs.remove(&transaction) {
                    let _ = updates.send(TxUpdate::Failed(TxError::TransportError));
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

/// Tells the watchers of a flow (those still listening).
fn signal_flow<K: std::hash::Hash + Eq>(
    flows: &mut HashMap<K, Vec<mpsc::UnboundedSender<FlowSignal>>>,
    key: K,
    signal: FlowSignal,
) {
    if let Some(watchers) = flows.get_mut(&key) {
        watchers.retain(|w| w.send(signal).is_ok());
        if watchers.is_empty() {
            flows.remove(&key);
        }
    }
}
