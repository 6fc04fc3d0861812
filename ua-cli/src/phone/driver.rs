//! The tokio driver of the phone core: one task that feeds [`PhoneCore`] received bytes, DNS
//! answers, media events, commands and timeouts, and carries out what it polls.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tincan::phone::driver::{CallOptions, Phone};
//! use tincan::phone::{AccountConfig, CallEvent, PhoneEvent};
//!
//! let mut phone = Phone::builder()
//!     .account(AccountConfig::new("work", "sip:alice@example.com", "alice", "secret"))
//!     .start()
//!     .await?;
//! let call = phone.call("bob", CallOptions::default()).await?;
//! while let Some(event) = phone.next_event().await {
//!     if let PhoneEvent::Call { call: c, event: CallEvent::Ended(end) } = &event
//!         && *c == call
//!     {
//!         println!("ended: {}", end.reason.as_str());
//!         break;
//!     }
//! }
//! phone.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Sockets come from [`Transports`] (UDP, TCP, TLS, ICMP errors); each DNS question is asked
//! by a small task that posts the answer back; each call's media session runs in its own
//! media task ([`tincan_media::driver`]) whose events are forwarded here. The core decides
//! everything; this loop only moves bytes and events.
#![allow(clippy::disallowed_methods)] // The driver is where the clock is read.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::event::RegistrarState;
use tincan_media::codec::CodecKind;
use tincan_media::conference::ConferenceBus;
use tincan_media::device::{AudioSink, AudioSource, NullSink, NullSource};
use tincan_media::driver::player::TonePlayer;
use tincan_media::driver::{MediaHandle, MediaPorts, PortRange};
use tincan_media::session::{MediaEvent, SessionStats};
use tincan_media::tones::{Cadence, CadenceSource};
use tincan_sip::driver::dns::{DnsBackend, HickoryBackend};
use tincan_sip::driver::transports::{NetInput, Transports, TransportsConfig};
use tincan_sip::driver::{TlsSettings, Tracer};
use tincan_sip::resolve::{DnsAnswer, DnsQuery};
use tincan_sip::transport::Transport;

use super::{
    AccountConfig, AccountId, CallEvent, CallId, CallParams, FlowCommand, MediaCommand, MessageId,
    PhoneConfig, PhoneCore, PhoneError, PhoneEvent, UsageError,
};

/// How long a shutdown waits for calls to end and bindings to be removed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Every queue around the phone task is bounded, and the task never waits on one of its
/// own outputs. Commands from the application: an async command waits for room (the
/// application is held back, not the phone).
const COMMAND_QUEUE: usize = 64;
/// Events to the application. When the application falls behind, a
/// [`PhoneEvent::Refused`] is dropped (and counted, [`Phone::refused_dropped`]): it carries
/// no state, and a flood of refused calls must not fill memory; so is a
/// [`CallEvent::Levels`] (the next one replaces it). Every other event is kept
/// (they are the application's view of its calls), and while any is kept the task reads
/// nothing more from the network: the backlog stays in the transports' bounded queue,
/// where new INVITEs are shed first.
const EVENT_QUEUE: usize = 1024;
/// DNS answers: each query task waits for room itself.
const DNS_QUEUE: usize = 64;
/// Media events of every call: each call's forwarding task waits for room itself, so a
/// burst is held back in that call's own session, never in the phone task.
const MEDIA_QUEUE: usize = 1024;
/// The SIP UDP sockets' receive (and send) buffer asked for: bursts above what the task
/// reads wait in the kernel instead of being dropped there. Linux caps it at
/// `net.core.rmem_max` (208 KiB by default, often raised to 4 MiB or more).
pub const UDP_BUFFER_SIZE: usize = 4 << 20;

/// Why a phone could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The SIP sockets could not be bound.
    #[error(transparent)]
    Bind(#[from] tincan_sip::driver::DriverError),
    /// The DNS resolver could not be set up.
    #[error("dns: {0}")]
    Dns(#[from] tincan_sip::driver::dns::BackendError),
    /// An account is not usable.
    #[error(transparent)]
    Account(#[from] UsageError),
}

/// Sets up a [`Phone`].
#[derive(Debug)]
pub struct PhoneBuilder {
    config: PhoneConfig,
    accounts: Vec<AccountConfig>,
    bind: SocketAddr,
    tcp: bool,
    dual_stack: bool,
    dns_server: Option<SocketAddr>,
    media_ports: PortRange,
    trace: Option<Tracer>,
    tls: TlsSettings,
    max_connections: Option<usize>,
    udp_buffer_size: Option<usize>,
    ringback: Option<Cadence>,
    stun_server: Option<String>,
}

impl PhoneBuilder {
    /// The core's configuration (codecs, SRTP, budgets...).
    pub fn config(mut self, config: PhoneConfig) -> Self {
        self.config = config;
        self
    }

    /// Everything a config file (`~/.config/tincan/config.toml`, docs/config.md) says: every
    /// `[[account]]` (each registering), and from `[network]` the bind address, the DNS
    /// server, the UDP buffer size, the call limit and the keep-alive settings.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = tincan::config::Config::load(None)?;
    /// let phone = tincan::phone::driver::Phone::builder()
    ///     .config_file(&config)?
    ///     .start()
    ///     .await?;
    /// # let _ = phone; Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`](crate::config::ConfigError) when an account's password cannot be read.
    pub fn config_file(
        mut self,
        file: &crate::config::Config,
    ) -> Result<Self, crate::config::ConfigError> {
        for a in &file.accounts {
            self.accounts.push(AccountConfig::from_config(a)?);
        }
        if let Some(bind) = file.network.bind {
            self.bind = bind;
        }
        if let Some(dns) = file.network.dns_server {
            self.dns_server = Some(dns);
        }
        if let Some(bytes) = file.network.udp_buffer_size {
            self.udp_buffer_size = (bytes > 0).then_some(bytes as usize);
        }
        if let Some(stun) = &file.network.stun_server {
            self.stun_server = Some(stun.clone());
        }
        self.config.apply_network(&file.network);
        Ok(self)
    }

    /// Adds an account (it registers as soon as the phone starts, unless told not to).
    pub fn account(mut self, account: AccountConfig) -> Self {
        self.accounts.push(account);
        self
    }

    /// The SIP address to bind (UDP, and TCP on the same port when it is not 0); default
    /// `0.0.0.0:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Listen on TCP too (on the bind address's port).
    pub fn tcp(mut self, on: bool) -> Self {
        self.tcp = on;
        self
    }

    /// With the IPv4 wildcard as the bind address (`0.0.0.0`), bind an IPv6 socket next to it
    /// (IPv6-only) so that IPv6 peers and registrars work too: on the same port when it is
    /// free (a `listen` on 5060 is on `[::]:5060` too), else on any port, else (no IPv6 on the
    /// machine) none. A named address (`127.0.0.1:5090`) is bound alone: a user who names an
    /// address gets only that address.
    pub fn dual_stack(mut self, on: bool) -> Self {
        self.dual_stack = on;
        self
    }

    /// A DNS server to ask instead of the system's.
    pub fn dns_server(mut self, server: SocketAddr) -> Self {
        self.dns_server = Some(server);
        self
    }

    /// Media port range.
    pub fn media_ports(mut self, range: PortRange) -> Self {
        self.media_ports = range;
        self
    }

    /// A STUN server (`host:port`, RFC 8489): before each call's SDP, one Binding request
    /// from its RTP port learns the public address of that port behind a NAT, and the SDP
    /// names it (`c=`/`m=`) for peers without ICE. The wait is bounded
    /// ([`MEDIA_STUN_WAIT`]); without an answer the SDP names the local address.
    pub fn stun_server(mut self, server: impl Into<String>) -> Self {
        self.stun_server = Some(server.into());
        self
    }

    /// Sees every SIP message sent or received.
    pub fn sip_trace(mut self, tracer: Tracer) -> Self {
        self.trace = Some(tracer);
        self
    }

    /// TLS trust and certificates.
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// Most TCP and TLS connections accepted at once; beyond it a new connection replaces a
    /// slow one or is refused (see [`TransportsConfig::max_connections`]: default 2048, at
    /// most half the process's file descriptor limit).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// The SIP UDP sockets' buffer size in bytes (`SO_RCVBUF`, `SO_SNDBUF`, capped by the
    /// system); default [`UDP_BUFFER_SIZE`], `None` the system's default.
    pub fn udp_buffer_size(mut self, bytes: Option<usize>) -> Self {
        self.udp_buffer_size = bytes;
        self
    }

    /// The ring-back an outgoing call plays on its sink while the callee rings (a 180
    /// without SDP), until the peer's early media, the answer or the end of the call;
    /// default [`Cadence::ringback_etsi`] (425 Hz, 1 s on, 4 s off), `None`: no ring-back
    /// (the sink hears nothing before the peer's media, as when recording to a file).
    pub fn ringback(mut self, cadence: Option<Cadence>) -> Self {
        self.ringback = cadence;
        self
    }

    /// Binds the sockets, starts the driver task and the accounts.
    ///
    /// # Errors
    ///
    /// [`StartError`] when a socket cannot be bound, DNS cannot be set up or an account is
    /// not usable.
    pub async fn start(self) -> Result<Phone, StartError> {
        let mut tc = TransportsConfig::udp(self.bind);
        if self.tcp || self.bind.port() != 0 {
            tc.tcp = vec![self.bind];
        }
        tc.tls = self.tls;
        tc.trace = self.trace;
        if let Some(max) = self.max_connections {
            tc.max_connections = max;
        }
        tc.udp_buffer_size = self.udp_buffer_size;
        let mut transports = None;
        if self.dual_stack && self.bind.is_ipv4() && self.bind.ip().is_unspecified() {
            let ports = if self.bind.port() == 0 {
                vec![0]
            } else {
                vec![self.bind.port(), 0]
            };
            for port in ports {
                let v6 = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port);
                let mut both = tc.clone();
                both.udp.push(v6);
                if !both.tcp.is_empty() {
                    both.tcp.push(v6);
                }
                if let Ok(t) = Transports::bind(both).await {
                    transports = Some(t);
                    break;
                }
            }
        }
        let transports = match transports {
            Some(t) => t,
            None => Transports::bind(tc).await?,
        };
        let dns = match self.dns_server {
            Some(server) => HickoryBackend::with_server(server)?,
            None => HickoryBackend::system()?,
        };
        let mut core = PhoneCore::with_generators(
            self.config,
            Box::new(tincan_sip::driver::OsRng),
            Box::new(tincan_sip::driver::OsRng),
        );
        announce_local_addresses(&mut core, &transports);
        let now = Instant::now();
        let mut ids = Vec::new();
        for a in self.accounts {
            ids.push(core.add_account(now, a)?);
        }
        let local = transports.local_addresses().to_vec();
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (dns_tx, dns_rx) = mpsc::channel(DNS_QUEUE);
        let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let refused_dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = Task {
            core,
            transports,
            dns: Arc::new(dns),
            dns_tx,
            media_tx,
            media: HashMap::new(),
            unparked: Vec::new(),
            media_ports: self.media_ports,
            events: event_tx,
            held: VecDeque::new(),
            refused_dropped: Arc::clone(&refused_dropped),
            shutdown: None,
            ringback: self.ringback,
            stun_server: self.stun_server,
            conference: None,
        };
        let handle = tokio::spawn(task.run(command_rx, dns_rx, media_rx, stop_rx));
        Ok(Phone {
            commands,
            stop,
            refused_dropped,
            events,
            local,
            accounts: ids,
            task: Some(handle),
        })
    }
}

/// Announces the local addresses the core puts in Via, Contact and SDP: for each family, the
/// one the sockets use towards loopback and towards the rest of the network
/// ([`Transports::local_address_for`]: a wildcard socket's routed address; nothing is sent).
/// A transport with no socket of its own (a TLS client) announces the UDP socket's address.
fn announce_local_addresses(core: &mut PhoneCore, transports: &Transports) {
    let probes: [SocketAddr; 4] = [
        ([127, 0, 0, 1], 9).into(),
        ([192, 0, 2, 1], 9).into(),
        ([0, 0, 0, 0, 0, 0, 0, 1], 9).into(),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9).into(),
    ];
    for probe in probes {
        let udp = transports.local_address_for(Transport::Udp, probe);
        for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            if let Some(a) = transports.local_address_for(transport, probe).or(udp) {
                core.add_local_address(transport, a);
            }
        }
    }
}

/// What a call's audio is and how it starts.
pub struct CallOptions {
    /// What we send.
    pub source: Box<dyn AudioSource>,
    /// Where received audio goes.
    pub sink: Box<dyn AudioSink>,
    /// Account, codecs, SRTP, late offer.
    pub params: CallParams,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            source: Box::new(NullSource::new()),
            sink: Box::new(NullSink::new()),
            params: CallParams::default(),
        }
    }
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

type Reply<T> = oneshot::Sender<Result<T, PhoneError>>;

/// What the application asks of the driver.
/// Where a transfer sends the peer.
enum TransferTo {
    Uri(String),
    Replacing(CallId),
}

enum Command {
    Call(String, CallOptions, Reply<CallId>),
    Accept(CallId, Box<dyn AudioSource>, Box<dyn AudioSink>, Reply<()>),
    Ring(CallId, Reply<()>),
    Reject(CallId, u16, Reply<()>),
    Hangup(CallId, Reply<()>),
    Hold(CallId, Reply<()>),
    Resume(CallId, Reply<()>),
    Dtmf(CallId, String, Reply<()>),
    Transfer(CallId, TransferTo, Reply<()>),
    AnswerTransfer(CallId, bool, Reply<()>),
    Devices(CallId, Box<dyn AudioSource>, Box<dyn AudioSink>),
    Codec(CallId, CodecKind, Reply<()>),
    Mute(CallId, bool, Reply<()>),
    Processing(tincan_media::dsp::ProcessingConfig, Reply<()>),
    AddAccount(Box<AccountConfig>, Reply<AccountId>),
    Unregister(AccountId),
    Shutdown(oneshot::Sender<()>),
    Drain(Duration),
    RegistrarHealth(AccountId, Reply<Vec<RegistrarState>>),
    Message(
        String,
        String,
        bytes::Bytes,
        Option<AccountId>,
        Reply<MessageId>,
    ),
    MessageInCall(CallId, String, Reply<MessageId>),
    SetPresence(AccountId, super::presence::Presence, Reply<()>),
    WatchPresence(AccountId, String, Reply<super::presence::WatchId>),
    UnwatchPresence(super::presence::WatchId),
    Watch(AccountId, String, Reply<super::blf::WatchId>),
    Unwatch(super::blf::WatchId),
    Conference(CallId, CallId, Reply<()>),
    Split(CallId, Reply<()>),
}

/// A running phone: commands go in, [`PhoneEvent`]s come out of
/// [`next_event`](Self::next_event).
#[derive(Debug)]
pub struct Phone {
    commands: mpsc::Sender<Command>,
    /// Set by [`begin_shutdown`](Self::begin_shutdown), which cannot wait for room.
    stop: watch::Sender<bool>,
    refused_dropped: Arc<std::sync::atomic::AtomicU64>,
    events: mpsc::Receiver<PhoneEvent>,
    local: Vec<(Transport, SocketAddr)>,
    accounts: Vec<AccountId>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Phone {
    /// A phone to set up.
    pub fn builder() -> PhoneBuilder {
        PhoneBuilder {
            config: PhoneConfig::default(),
            accounts: Vec::new(),
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            tcp: false,
            dual_stack: false,
            dns_server: None,
            media_ports: PortRange::Any,
            trace: None,
            tls: TlsSettings::system(),
            max_connections: None,
            udp_buffer_size: Some(UDP_BUFFER_SIZE),
            ringback: Some(Cadence::ringback_etsi()),
            stun_server: None,
        }
    }

    /// The next event; `None` once the phone has stopped.
    pub async fn next_event(&mut self) -> Option<PhoneEvent> {
        self.events.recv().await
    }

    /// Every address the phone listens on, with its transport.
    pub fn local_addresses(&self) -> &[(Transport, SocketAddr)] {
        &self.local
    }

    /// The accounts given to the builder, in order.
    pub fn accounts(&self) -> &[AccountId] {
        &self.accounts
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, PhoneError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| PhoneError::ShuttingDown)?;
        rx.await.map_err(|_| PhoneError::ShuttingDown)?
    }

    /// Sends a text as a page-mode MESSAGE (RFC 3428) to `uri` (see
    /// [`PhoneCore::send_message`]): through `account`, or the account of the recipient's
    /// domain, or the only one, or directly. Its delivery report comes as a
    /// [`PhoneEvent::Message`] with [`MessageEvent::Delivered`](super::MessageEvent::Delivered)
    /// or [`MessageEvent::Failed`](super::MessageEvent::Failed) for the returned id.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for a URI that cannot be reached, an unknown account, a text over
    /// [`MAX_MESSAGE_BODY`](super::message::MAX_MESSAGE_BODY) or a phone that is shutting
    /// down.
    pub async fn send_message(
        &self,
        uri: &str,
        text: &str,
        account: Option<AccountId>,
    ) -> Result<MessageId, PhoneError> {
        let body = bytes::Bytes::copy_from_slice(text.as_bytes());
        self.send_message_body(uri, super::message::TEXT_PLAIN, body, account)
            .await
    }

    /// Sends a body of any content type as a page-mode MESSAGE (see
    /// [`send_message`](Self::send_message)).
    ///
    /// # Errors
    ///
    /// As [`send_message`](Self::send_message).
    pub async fn send_message_body(
        &self,
        uri: &str,
        content_type: &str,
        body: bytes::Bytes,
        account: Option<AccountId>,
    ) -> Result<MessageId, PhoneError> {
        self.ask(|r| Command::Message(uri.to_owned(), content_type.to_owned(), body, account, r))
            .await
    }

    /// Sends a text as a MESSAGE inside a call's dialog (see
    /// [`PhoneCore::send_message_in_call`]); its delivery report comes as for
    /// [`send_message`](Self::send_message).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown call, a call that is not up, a text over
    /// [`MAX_MESSAGE_BODY`](super::message::MAX_MESSAGE_BODY) or a phone that is shutting
    /// down.
    pub async fn send_message_in_call(
        &self,
        call: CallId,
        text: &str,
    ) -> Result<MessageId, PhoneError> {
        self.ask(|r| Command::MessageInCall(call, text.to_owned(), r))
            .await
    }

    /// Publishes `account`'s presence (see [`PhoneCore::set_presence`]); the server's answer
    /// comes as a [`PhoneEvent::Presence`] with
    /// [`PresenceEvent::Published`](super::presence::PresenceEvent::Published) or
    /// [`PresenceEvent::PublishFailed`](super::presence::PresenceEvent::PublishFailed).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown account or a phone that is shutting down.
    pub async fn set_presence(
        &self,
        account: AccountId,
        presence: super::presence::Presence,
    ) -> Result<(), PhoneError> {
        self.ask(|r| Command::SetPresence(account, presence, r))
            .await
    }

    /// Watches `uri`'s presence through `account` (see [`PhoneCore::watch_presence`]); its
    /// changes come as [`PhoneEvent::Presence`] with
    /// [`PresenceEvent::Changed`](super::presence::PresenceEvent::Changed).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown account, a bad URI or a phone that is shutting down.
    pub async fn watch_presence(
        &self,
        account: AccountId,
        uri: &str,
    ) -> Result<super::presence::WatchId, PhoneError> {
        self.ask(|r| Command::WatchPresence(account, uri.to_owned(), r))
            .await
    }

    /// Stops watching (see [`PhoneCore::unwatch_presence`]).
    pub async fn unwatch_presence(&self, watch: super::presence::WatchId) {
        let _ = self.commands.send(Command::UnwatchPresence(watch)).await;
    }

    /// Watches a contact's busy lamp through `account` (see
    /// [`PhoneCore::watch_dialogs`]): its changes come as [`PhoneEvent::Lamp`].
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown account, a URI that is not a SIP URI, or a phone that
    /// is shutting down.
    pub async fn watch_dialogs(
        &self,
        account: AccountId,
        uri: &str,
    ) -> Result<super::blf::WatchId, PhoneError> {
        self.ask(|r| Command::Watch(account, uri.to_owned(), r))
            .await
    }

    /// Stops watching (see [`PhoneCore::unwatch_dialogs`]).
    pub async fn unwatch_dialogs(&self, watch: super::blf::WatchId) {
        let _ = self.commands.send(Command::Unwatch(watch)).await;
    }

    /// Places a call (see [`PhoneCore::call`]).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for a URI that cannot be called, an unknown account, or a phone that
    /// is shutting down.
    pub async fn call(&self, uri: &str, options: CallOptions) -> Result<CallId, PhoneError> {
        self.ask(|r| Command::Call(uri.to_owned(), options, r))
            .await
    }

    /// Answers an incoming call with these audio devices.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not an unanswered incoming call.
    pub async fn accept(
        &self,
        call: CallId,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<(), PhoneError> {
        self.ask(|r| Command::Accept(call, source, sink, r)).await
    }

    /// Gives audio devices to a call the phone placed or answered by itself: the call to
    /// the target of an accepted transfer
    /// ([`CallEvent::TransferStarted`](super::CallEvent::TransferStarted)) or the call that
    /// took another over ([`CallEvent::Replaced`](super::CallEvent::Replaced)). Call it on
    /// that event: the new call's media waits for it (pass a `NullSource`/`NullSink` for a
    /// call without audio).
    pub async fn attach_devices(
        &self,
        call: CallId,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) {
        let _ = self
            .commands
            .send(Command::Devices(call, source, sink))
            .await;
    }

    /// Sends 180 Ringing.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not an unanswered incoming call.
    pub async fn ring(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Ring(call, r)).await
    }

    /// Refuses an incoming call.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not an unanswered incoming call.
    pub async fn reject(&self, call: CallId, status: u16) -> Result<(), PhoneError> {
        self.ask(|r| Command::Reject(call, status, r)).await
    }

    /// Hangs up.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown call.
    pub async fn hangup(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Hangup(call, r)).await
    }

    /// Puts a call on hold.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not up.
    pub async fn hold(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Hold(call, r)).await
    }

    /// Takes a call off hold.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not up.
    pub async fn resume(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Resume(call, r)).await
    }

    /// Joins two calls into a local three-way conference: each peer hears the other and the
    /// person at this phone, who hears both through `a`'s devices (its microphone is sent to
    /// both). A held call is resumed. Both calls get a [`CallEvent::Conference`]. The
    /// conference ends with [`split`](Self::split) or when either call ends; each call then
    /// goes on with its own devices. One conference at a time.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when either call has no running media (not up), `a` and `b` are the
    /// same call, a conference is already on, or a held call cannot be resumed.
    pub async fn conference(&self, a: CallId, b: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Conference(a, b, r)).await
    }

    /// Ends the conference `call` is in: both calls go on as normal calls with their own
    /// devices (and a [`CallEvent::Conference`] with `with: None`).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when `call` is in no conference.
    pub async fn split(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Split(call, r)).await
    }

    /// Sends DTMF keys.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown call.
    pub async fn send_dtmf(&self, call: CallId, digits: &str) -> Result<(), PhoneError> {
        self.ask(|r| Command::Dtmf(call, digits.to_owned(), r))
            .await
    }

    /// Blind transfer: asks the peer of `call` to call `uri` (REFER, RFC 3515); see
    /// [`PhoneCore::transfer`](super::PhoneCore::transfer).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not up, a transfer of it is under way, or `uri`
    /// cannot be called.
    pub async fn transfer(&self, call: CallId, uri: &str) -> Result<(), PhoneError> {
        self.ask(|r| Command::Transfer(call, TransferTo::Uri(uri.to_owned()), r))
            .await
    }

    /// Attended transfer: asks the peer of `call` to take over `consult` (REFER with
    /// Replaces, RFC 3891); see
    /// [`PhoneCore::transfer_attended`](super::PhoneCore::transfer_attended).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when a call is not up or a transfer of `call` is under way.
    pub async fn transfer_attended(&self, call: CallId, consult: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::Transfer(call, TransferTo::Replacing(consult), r))
            .await
    }

    /// Accepts the peer's REFER announced by
    /// [`CallEvent::TransferRequested`](super::CallEvent::TransferRequested).
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when no REFER of `call` waits.
    pub async fn accept_transfer(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::AnswerTransfer(call, true, r)).await
    }

    /// Refuses the peer's REFER (603 Decline); the call goes on.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when no REFER of `call` waits.
    pub async fn reject_transfer(&self, call: CallId) -> Result<(), PhoneError> {
        self.ask(|r| Command::AnswerTransfer(call, false, r)).await
    }

    /// Offers `codec` first in a re-INVITE.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the call is not up.
    pub async fn change_codec(&self, call: CallId, codec: CodecKind) -> Result<(), PhoneError> {
        self.ask(|r| Command::Codec(call, codec, r)).await
    }

    /// Mutes (`true`) or unmutes the call's microphone: silence is sent in its place, RTP
    /// keeps flowing; it lasts across hold, resume and codec changes (see
    /// [`PhoneCore::mute`]). [`CallEvent::Muted`](super::CallEvent::Muted) follows a change.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] for an unknown call.
    pub async fn mute(&self, call: CallId, muted: bool) -> Result<(), PhoneError> {
        self.ask(|r| Command::Mute(call, muted, r)).await
    }

    /// Switches the capture processing of every call, running and future: echo
    /// cancellation, noise suppression, automatic gain ([`tincan_media::dsp`]; the initial
    /// stages are [`PhoneConfig::processing`](super::PhoneConfig::processing)). Running calls
    /// follow from their next 20 ms frame.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] once the phone has shut down.
    pub async fn set_processing(
        &self,
        processing: tincan_media::dsp::ProcessingConfig,
    ) -> Result<(), PhoneError> {
        self.ask(|r| Command::Processing(processing, r)).await
    }

    /// Adds an account to the running phone.
    ///
    /// # Errors
    ///
    /// [`PhoneError`] when the account is not usable.
    pub async fn add_account(&self, account: AccountConfig) -> Result<AccountId, PhoneError> {
        self.ask(|r| Command::AddAccount(Box::new(account), r))
            .await
    }

    /// Removes an account's bindings.
    pub async fn unregister(&self, account: AccountId) {
        let _ = self.commands.send(Command::Unregister(account)).await;
    }

    /// The registrars `account` knows, each with whether it is bound there and its health
    /// (see [`PhoneCore::registrar_health`]).
    ///
    /// # Errors
    ///
    /// [`PhoneError::ShuttingDown`] once the phone stops.
    pub async fn registrar_health(
        &self,
        account: AccountId,
    ) -> Result<Vec<RegistrarState>, PhoneError> {
        self.ask(|r| Command::RegistrarHealth(account, r)).await
    }

    /// [`PhoneEvent::Refused`] events dropped because the application did not read
    /// [`next_event`](Self::next_event) fast enough (a flood of refused calls).
    pub fn refused_dropped(&self) -> u64 {
        self.refused_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts a shutdown without waiting for it: the events of the calls ending and the
    /// bindings being removed still come out of [`next_event`](Self::next_event), which
    /// returns `None` once the phone has stopped.
    pub fn begin_shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Starts a graceful drain ([`PhoneCore::drain`]): new INVITEs and out-of-dialog OPTIONS
    /// are answered `503 Service Unavailable` with `Retry-After: retry_after` while the calls
    /// go on; [`PhoneEvent::Drained`] comes out of [`next_event`](Self::next_event) once the
    /// last call has ended (at once when there is none). The phone keeps running (and
    /// registered) until [`shutdown`](Self::shutdown).
    pub async fn drain(&self, retry_after: Duration) {
        let _ = self.commands.send(Command::Drain(retry_after)).await;
    }

    /// Hangs up every call, unregisters every account (for up to 4 s), then stops.
    pub async fn shutdown(mut self) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A call's media on the driver side: its devices until the session starts, its ports, its
/// running session.
#[derive(Default)]
struct Media {
    devices: Option<(Box<dyn AudioSource>, Box<dyn AudioSink>)>,
    ports: Option<MediaPorts>,
    handle: Option<MediaHandle>,
    /// Ring-back playing into the call's sink (the call's source kept beside it) until the
    /// session starts.
    ringback: Option<(Box<dyn AudioSource>, TonePlayer)>,
    /// A call the phone placed or answered by itself (a transfer's, a replacing one): its
    /// media waits for [`Phone::attach_devices`].
    awaiting_devices: bool,
    /// Its session's start, held until the devices come.
    parked: Option<Box<tincan_media::session::SessionConfig>>,
}

impl Media {
    /// Stops the ring-back, if any, and puts the devices back.
    async fn stop_ringback(&mut self) {
        if let Some((source, player)) = self.ringback.take()
            && let Some(sink) = player.stop().await
        {
            self.devices = Some((source, sink));
        }
    }
}

enum MediaInput {
    Event(MediaEvent),
    Stopped(SessionStats),
    /// The call's ports, bound, and the public address of its RTP port (STUN), if learnt.
    Bound {
        ports: Result<MediaPorts, String>,
        mapped: Option<SocketAddr>,
    },
}

/// The longest a call waits for the STUN answer about its RTP port before its SDP goes out
/// with the local address (the request is sent at 0, 100 and 300 ms).
pub const MEDIA_STUN_WAIT: Duration = Duration::from_millis(500);

/// One STUN Binding transaction (RFC 8489) from `socket` to `server`, within `budget`: the
/// address the server saw, or `None` (no answer, a name that does not resolve, another
/// address family).
async fn stun_mapped(
    socket: &tokio::net::UdpSocket,
    server: &str,
    budget: Duration,
) -> Option<SocketAddr> {
    use tincan_sip::stun::{self, Class, Message, TransactionId};
    let deadline = tokio::time::Instant::now() + budget;
    let v4 = socket.local_addr().ok()?.is_ipv4();
    let server = tokio::time::timeout_at(deadline, tokio::net::lookup_host(server))
        .await
        .ok()?
        .ok()?
        .find(|a| a.is_ipv4() == v4)?;
    let id = TransactionId::random(&mut tincan_sip::driver::OsRng);
    let request = stun::binding_request(id, true);
    let mut buf = [0u8; 1500];
    let mut rto = Duration::from_millis(100);
    loop {
        socket.send_to(&request, server).await.ok()?;
        let until = (tokio::time::Instant::now() + rto).min(deadline);
        while let Ok(received) = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await {
            let Ok((n, from)) = received else { break };
            if from != server {
                continue;
            }
            if let Ok(m) = Message::parse(&buf[..n])
                && m.transaction == id
                && m.class == Class::SuccessResponse
            {
                return m.mapped_address();
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        rto *= 2;
    }
}

struct Task {
    core: PhoneCore,
    transports: Transports,
    dns: Arc<HickoryBackend>,
    dns_tx: mpsc::Sender<(DnsQuery, DnsAnswer)>,
    media_tx: mpsc::Sender<(CallId, MediaInput)>,
    media: HashMap<CallId, Media>,
    /// Media starts that waited for their devices, to carry out now.
    unparked: Vec<(CallId, Box<tincan_media::session::SessionConfig>)>,
    media_ports: PortRange,
    events: mpsc::Sender<PhoneEvent>,
    /// Events the application has no room for yet (see [`EVENT_QUEUE`]): while any is
    /// held, the network is not read.
    held: VecDeque<PhoneEvent>,
    refused_dropped: Arc<std::sync::atomic::AtomicU64>,
    shutdown: Option<(Instant, Vec<oneshot::Sender<()>>)>,
    /// What [`PhoneBuilder::ringback`] set.
    ringback: Option<Cadence>,
    /// What [`PhoneBuilder::stun_server`] set.
    stun_server: Option<String>,
    /// The local three-way conference, if one is on.
    conference: Option<Conference>,
}

/// Two calls mixed by a [`ConferenceBus`]: `a`'s session holds the adapters around the local
/// devices, `b`'s own devices wait here until the conference ends.
struct Conference {
    a: CallId,
    b: CallId,
    b_devices: (Box<dyn AudioSource>, Box<dyn AudioSink>),
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut dns: mpsc::Receiver<(DnsQuery, DnsAnswer)>,
        mut media: mpsc::Receiver<(CallId, MediaInput)>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut idle = tokio::time::interval(Duration::from_secs(5));
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.carry_out().await;
            if let Some((deadline, _)) = &self.shutdown
                && (self.core.is_idle() || Instant::now() >= *deadline)
            {
                break;
            }
            let deadline = self.core.poll_timeout();
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
            let behind = !self.held.is_empty();
            let events = self.events.clone();
            tokio::select! {
                permit = events.reserve(), if behind => match (permit, self.held.pop_front()) {
                    (Ok(permit), Some(ev)) => permit.send(ev),
                    // Nobody listens any more: nothing to hold.
                    _ => self.held.clear(),
                },
                input = self.transports.next(), if !behind => {
                    if let Some(input) = input {
                        self.on_net(input);
                    }
                }
                Ok(()) = stop.changed(), if self.shutdown.is_none() => self.begin_shutdown(None),
                Some((query, answer)) = dns.recv() => {
                    self.core.handle_dns_answer(Instant::now(), &query, answer);
                }
                Some((call, input)) = media.recv() => {
                    let now = Instant::now();
                    match input {
                        MediaInput::Event(ev) => self.core.handle_media_event(now, call, ev),
                        MediaInput::Stopped(stats) => self.core.handle_media_stopped(now, call, stats),
                        MediaInput::Bound { ports, mapped } => {
                            let result = ports.map(|p| {
                                let rtp = p.rtp_addr().port();
                                let rtcp = p.rtcp_addr().map(|a| a.port());
                                self.media.entry(call).or_default().ports = Some(p);
                                (rtp, rtcp)
                            });
                            if let Some(public) = mapped {
                                self.core.handle_media_mapped(now, call, public);
                            }
                            self.core.handle_media_bound(now, call, result);
                        }
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(Command::Conference(a, b, reply)) => {
                        let _ = reply.send(self.start_conference(a, b).await);
                    }
                    Some(Command::Split(call, reply)) => {
                        let result = if self.in_conference(call) {
                            self.end_conference().await;
                            Ok(())
                        } else {
                            Err(UsageError::WrongState {
                                call,
                                reason: "not in a conference",
                            }
                            .into())
                        };
                        let _ = reply.send(result);
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => self.begin_shutdown(None),
                },
                () = sleep => self.core.handle_timeout(Instant::now()),
                _ = idle.tick() => self.transports.close_idle(),
                () = shutdown_tick => {}
            }
        }
        // Whatever media is left stops with the phone.
        for (_, mut m) in self.media.drain() {
            m.stop_ringback().await;
            if let Some(h) = m.handle {
                let _ = h.stop().await;
            }
        }
        if let Some((_, waiters)) = self.shutdown.take() {
            for w in waiters {
                let _ = w.send(());
            }
        }
    }

    fn on_net(&mut self, input: NetInput) {
        let now = Instant::now();
        match input {
            NetInput::Received(r) => self.core.handle_received(now, r),
            NetInput::TransportError(tx) => self.core.handle_transport_error(now, tx),
            NetInput::Unreachable(dest) => self.core.handle_unreachable(now, dest),
            NetInput::Pong(connection) => self.core.handle_pong(now, connection),
            NetInput::Closed(connection) => self.core.handle_connection_closed(now, connection),
            NetInput::BindingResponse {
                target,
                transaction,
                mapped,
                ..
            } => self
                .core
                .handle_binding_response(now, target, transaction, mapped),
            _ => {}
        }
    }

    /// Sends a keep-alive or closes a dead flow's connection.
    fn on_flow_command(&mut self, cmd: FlowCommand) {
        let now = Instant::now();
        match cmd {
            FlowCommand::Ping { connection } => {
                // The connection is already gone when the ping cannot be written.
                if !self.transports.ping(connection) {
                    self.core.handle_connection_closed(now, connection);
                }
            }
            FlowCommand::SendBinding {
                target,
                transaction,
            } => {
                if !self.transports.send_binding(target, transaction) {
                    self.core.handle_unreachable(now, target);
                }
            }
            FlowCommand::Close { connection } => self.transports.close(connection),
        }
    }

    /// Whether `call` is one of the conference's two.
    fn in_conference(&self, call: CallId) -> bool {
        self.conference
            .as_ref()
            .is_some_and(|c| c.a == call || c.b == call)
    }

    /// Carries out [`Phone::conference`].
    async fn start_conference(&mut self, a: CallId, b: CallId) -> Result<(), PhoneError> {
        let wrong = |call: CallId, reason: &'static str| -> PhoneError {
            UsageError::WrongState { call, reason }.into()
        };
        if a == b {
            return Err(wrong(a, "cannot join a call with itself"));
        }
        if self.conference.is_some() {
            return Err(wrong(a, "a conference is already on"));
        }
        for call in [a, b] {
            if self
                .media
                .get(&call)
                .and_then(|m| m.handle.as_ref())
                .is_none()
            {
                return Err(wrong(call, "no audio yet (the call is not up)"));
            }
        }
        let now = Instant::now();
        for call in [a, b] {
            if self.core.is_held(call) {
                self.core.resume(now, call)?;
            }
        }
        let (Some(handle_a), Some(handle_b)) = (
            self.media.get(&a).and_then(|m| m.handle.as_ref()),
            self.media.get(&b).and_then(|m| m.handle.as_ref()),
        ) else {
            return Err(wrong(a, "no audio yet (the call is not up)"));
        };
        let silent = || -> (Box<dyn AudioSource>, Box<dyn AudioSink>) {
            (Box::new(NullSource::new()), Box::new(NullSink::new()))
        };
        let (s, k) = silent();
        let Some((microphone, speaker)) = handle_a.swap_devices(s, k).await else {
            return Err(UsageError::UnknownCall(a).into());
        };
        let bus = ConferenceBus::new(microphone, speaker);
        let Some(b_devices) = handle_b
            .swap_devices(Box::new(bus.source_b), Box::new(bus.sink_b))
            .await
        else {
            // B's session is gone: A keeps its devices.
            let (mut source, mut sink) = (bus.source_a, bus.sink_a);
            if let (Some(mic), Some(speaker)) = (source.take_wrapped(), sink.take_wrapped()) {
                handle_a.swap_devices(mic, speaker).await;
            }
            return Err(UsageError::UnknownCall(b).into());
        };
        handle_a
            .swap_devices(Box::new(bus.source_a), Box::new(bus.sink_a))
            .await;
        self.conference = Some(Conference { a, b, b_devices });
        for (call, with) in [(a, b), (b, a)] {
            self.deliver(PhoneEvent::Call {
                call,
                event: CallEvent::Conference { with: Some(with) },
            });
        }
        Ok(())
    }

    /// Ends the conference, if one is on: `a` gets the local devices back from the bus's
    /// adapters, `b` its own devices.
    async fn end_conference(&mut self) {
        let Some(conference) = self.conference.take() else {
            return;
        };
        if let Some(h) = self
            .media
            .get(&conference.a)
            .and_then(|m| m.handle.as_ref())
        {
            let silent: (Box<dyn AudioSource>, Box<dyn AudioSink>) =
                (Box::new(NullSource::new()), Box::new(NullSink::new()));
            if let Some((mut source, mut sink)) = h.swap_devices(silent.0, silent.1).await
                && let (Some(mic), Some(speaker)) = (source.take_wrapped(), sink.take_wrapped())
            {
                h.swap_devices(mic, speaker).await;
            }
        }
        if let Some(h) = self
            .media
            .get(&conference.b)
            .and_then(|m| m.handle.as_ref())
        {
            let (source, sink) = conference.b_devices;
            h.swap_devices(source, sink).await;
        }
        for call in [conference.a, conference.b] {
            self.deliver(PhoneEvent::Call {
                call,
                event: CallEvent::Conference { with: None },
            });
        }
    }

    fn begin_shutdown(&mut self, done: Option<oneshot::Sender<()>>) {
        let now = Instant::now();
        let entry = self
            .shutdown
            .get_or_insert_with(|| (now + SHUTDOWN_GRACE, Vec::new()));
        if let Some(d) = done {
            entry.1.push(d);
        }
        self.core.shutdown(now);
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        let core = &mut self.core;
        match cmd {
            Command::Call(uri, options, reply) => {
                let result = core.call(now, &uri, options.params);
                if let Ok(call) = &result {
                    self.media.insert(
                        *call,
                        Media {
                            devices: Some((options.source, options.sink)),
                            ..Media::default()
                        },
                    );
                }
                let _ = reply.send(result);
            }
            Command::Accept(call, source, sink, reply) => {
                let result = core.accept(now, call);
                // Only a call being answered keeps devices: a call that ended before the
                // application answered it (a CANCEL first) has no media to stop later.
                if result.is_ok() {
                    self.media.entry(call).or_default().devices = Some((source, sink));
                }
                let _ = reply.send(result);
            }
            Command::Ring(call, reply) => {
                let _ = reply.send(core.ring(now, call));
            }
            Command::Reject(call, status, reply) => {
                let _ = reply.send(core.reject(now, call, status));
            }
            Command::Hangup(call, reply) => {
                let _ = reply.send(core.hangup(now, call));
            }
            Command::Hold(call, reply) => {
                let _ = reply.send(core.hold(now, call));
            }
            Command::Resume(call, reply) => {
                let _ = reply.send(core.resume(now, call));
            }
            Command::Dtmf(call, digits, reply) => {
                let _ = reply.send(core.send_dtmf(now, call, &digits));
            }
            Command::Transfer(call, to, reply) => {
                let _ = reply.send(match to {
                    TransferTo::Uri(uri) => core.transfer(now, call, &uri),
                    TransferTo::Replacing(consult) => core.transfer_attended(now, call, consult),
                });
            }
            // They wait for the media sessions: `run` carries them out.
            Command::Conference(..) | Command::Split(..) => {}
            Command::Devices(call, source, sink) => {
                if let Some(m) = self.media.get_mut(&call)
                    && m.handle.is_none()
                {
                    m.devices = Some((source, sink));
                    m.awaiting_devices = false;
                    if let Some(config) = m.parked.take() {
                        self.unparked.push((call, config));
                    }
                }
            }
            Command::AnswerTransfer(call, accept, reply) => {
                let _ = reply.send(if accept {
                    core.accept_transfer(now, call)
                } else {
                    core.reject_transfer(now, call)
                });
            }
            Command::Codec(call, codec, reply) => {
                let _ = reply.send(core.change_codec(now, call, codec));
            }
            Command::Mute(call, muted, reply) => {
                let _ = reply.send(core.mute(now, call, muted));
            }
            Command::Processing(processing, reply) => {
                core.set_processing(now, processing);
                let _ = reply.send(Ok(()));
            }
            Command::AddAccount(account, reply) => {
                let _ = reply.send(core.add_account(now, *account).map_err(PhoneError::from));
            }
            Command::Unregister(account) => core.unregister(now, account),
            Command::Shutdown(done) => self.begin_shutdown(Some(done)),
            Command::Drain(retry_after) => core.drain(now, retry_after),
            Command::RegistrarHealth(account, reply) => {
                let _ = reply.send(Ok(core.registrar_health(now, account)));
            }
            Command::Message(uri, content_type, body, account, reply) => {
                let _ = reply.send(core.send_message(now, &uri, &content_type, body, account));
            }
            Command::MessageInCall(call, text, reply) => {
                let body = bytes::Bytes::from(text.into_bytes());
                let text_plain = super::message::TEXT_PLAIN;
                let _ = reply.send(core.send_message_in_call(now, call, text_plain, body));
            }
            Command::SetPresence(account, presence, reply) => {
                let _ = reply.send(core.set_presence(now, account, presence));
            }
            Command::WatchPresence(account, uri, reply) => {
                let _ = reply.send(core.watch_presence(now, account, &uri));
            }
            Command::UnwatchPresence(watch) => core.unwatch_presence(now, watch),
            Command::Watch(account, uri, reply) => {
                let _ = reply.send(
                    core.watch_dialogs(now, account, &uri)
                        .map_err(PhoneError::from),
                );
            }
            Command::Unwatch(watch) => core.unwatch_dialogs(now, watch),
        }
    }

    /// Carries out everything the core asks, until it asks nothing more.
    async fn carry_out(&mut self) {
        loop {
            let mut moved = false;
            // Flows first: a dead flow's connection is closed before the REGISTER that
            // replaces it goes out (on a new connection).
            while let Some(cmd) = self.core.poll_flow() {
                moved = true;
                self.on_flow_command(cmd);
            }
            while let Some(t) = self.core.poll_transmit() {
                moved = true;
                self.transports.send(t).await;
            }
            while let Some(input) = self.transports.poll_ready() {
                moved = true;
                self.on_net(input);
            }
            while let Some(q) = self.core.poll_dns_query() {
                moved = true;
                let dns = Arc::clone(&self.dns);
                let tx = self.dns_tx.clone();
                tokio::spawn(async move {
                    let answer = dns.query(&q).await;
                    let _ = tx.send((q, answer)).await;
                });
            }
            while let Some(cmd) = self.core.poll_media() {
                moved = true;
                self.on_media_command(cmd).await;
            }
            while let Some((call, config)) = self.unparked.pop() {
                moved = true;
                self.on_media_command(MediaCommand::Start { call, config })
                    .await;
            }
            while let Some(ev) = self.core.poll_event() {
                moved = true;
                if let PhoneEvent::Call {
                    event:
                        CallEvent::TransferStarted { new_call: next } | CallEvent::Replaced { by: next },
                    ..
                } = &ev
                {
                    self.media.entry(*next).or_default().awaiting_devices = true;
                }
                self.start_ringback(&ev);
                self.deliver(ev);
            }
            if !moved {
                return;
            }
        }
    }

    /// Hands an event to the application without waiting (see [`EVENT_QUEUE`]). Nobody
    /// listening is fine: the phone keeps working (and answers calls nobody takes with the
    /// session's own timers).
    fn deliver(&mut self, ev: PhoneEvent) {
        let ev = if self.held.is_empty() {
            match self.events.try_send(ev) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(ev)) => ev,
            }
        } else {
            ev
        };
        match ev {
            PhoneEvent::Refused(_) => {
                self.refused_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // A meter's reading carries no state: the next one replaces it.
            PhoneEvent::Call {
                event: CallEvent::Levels(_),
                ..
            } => {}
            ev => self.held.push_back(ev),
        }
    }

    /// An outgoing call whose callee rings (a 180 without SDP: with SDP, the session took
    /// the devices already, see [`carry_out`](Self::carry_out)) plays ring-back into its
    /// sink until the session starts or the call ends.
    fn start_ringback(&mut self, ev: &PhoneEvent) {
        let PhoneEvent::Call {
            call,
            event: CallEvent::Progress { status: 180, .. },
        } = ev
        else {
            return;
        };
        let Some(cadence) = &self.ringback else {
            return;
        };
        let Some(m) = self.media.get_mut(call) else {
            return;
        };
        if m.handle.is_some() || m.ringback.is_some() {
            return;
        }
        if let Some((source, sink)) = m.devices.take() {
            let tone = Box::new(CadenceSource::new(cadence.clone()));
            m.ringback = Some((source, TonePlayer::spawn(tone, sink)));
        }
    }

    async fn on_media_command(&mut self, cmd: MediaCommand) {
        let now = Instant::now();
        match cmd {
            MediaCommand::Bind { call, ip } if self.stun_server.is_some() => {
                // The STUN round trip runs beside the loop; the result comes back as input.
                let server = self.stun_server.clone().unwrap_or_default();
                let range = self.media_ports;
                let tx = self.media_tx.clone();
                tokio::spawn(async move {
                    let (ports, mapped) = match MediaPorts::bind(ip, range, false).await {
                        Ok(p) => {
                            let mapped =
                                stun_mapped(p.rtp_socket(), &server, MEDIA_STUN_WAIT).await;
                            (Ok(p), mapped)
                        }
                        Err(e) => (Err(format!("cannot bind rtp on {ip}: {e}")), None),
                    };
                    let _ = tx.send((call, MediaInput::Bound { ports, mapped })).await;
                });
            }
            MediaCommand::Bind { call, ip } => {
                let bound = MediaPorts::bind(ip, self.media_ports, false).await;
                let result = match bound {
                    Ok(ports) => {
                        let rtp = ports.rtp_addr().port();
                        let rtcp = ports.rtcp_addr().map(|a| a.port());
                        self.media.entry(call).or_default().ports = Some(ports);
                        Ok((rtp, rtcp))
                    }
                    Err(e) => Err(format!("cannot bind rtp on {ip}: {e}")),
                };
                self.core.handle_media_bound(now, call, result);
            }
            MediaCommand::Start { call, config } => {
                let m = self.media.entry(call).or_default();
                if m.awaiting_devices && m.devices.is_none() {
                    m.parked = Some(config);
                    return;
                }
                m.stop_ringback().await;
                let (Some(ports), devices) = (m.ports.take(), m.devices.take()) else {
                    return;
                };
                let (source, sink) = devices
                    .unwrap_or_else(|| (Box::new(NullSource::new()), Box::new(NullSink::new())));
                match tincan_media::driver::spawn(ports, *config, source, sink) {
                    Ok(mut handle) => {
                        let mut rx = handle.take_events();
                        let tx = self.media_tx.clone();
                        tokio::spawn(async move {
                            while let Some(ev) = rx.recv().await {
                                if tx.send((call, MediaInput::Event(ev))).await.is_err() {
                                    return;
                                }
                            }
                        });
                        m.handle = Some(handle);
                    }
                    Err(e) => {
                        let ev = MediaEvent::DeviceError {
                            message: format!("media failed: {e}"),
                        };
                        self.core.handle_media_event(now, call, ev);
                    }
                }
            }
            MediaCommand::Reconfigure { call, config } => {
                if let Some(h) = self.media.get(&call).and_then(|m| m.handle.as_ref())
                    && let Err(e) = h.reconfigure(*config).await
                {
                    let ev = MediaEvent::DeviceError {
                        message: format!("cannot switch codec: {e}"),
                    };
                    self.core.handle_media_event(now, call, ev);
                }
            }
            MediaCommand::SetRemote { call, rtp, rtcp } => {
                if let Some(h) = self.media.get(&call).and_then(|m| m.handle.as_ref()) {
                    h.set_remote(rtp, rtcp).await;
                }
            }
            MediaCommand::SetDirection { call, direction } => {
                if let Some(h) = self.media.get(&call).and_then(|m| m.handle.as_ref()) {
                    h.set_direction(direction).await;
                }
            }
            MediaCommand::SetMute { call, muted } => {
                if let Some(h) = self.media.get(&call).and_then(|m| m.handle.as_ref()) {
                    h.set_muted(muted).await;
                }
            }
            MediaCommand::SetProcessing { call, processing } => {
                if let Some(h) = self.media.get(&call).and_then(|m| m.handle.as_ref()) {
                    h.set_processing(processing).await;
                }
            }
            MediaCommand::SendDtmf {
                call,
                digit,
                duration,
            } => {
                if let Some(h) = self.media.get(&call).and_then(|m| m.handle.as_ref())
                    && let Err(e) = h.send_dtmf(digit, duration).await
                {
                    let ev = MediaEvent::DeviceError {
                        message: format!("dtmf {digit}: {e}"),
                    };
                    self.core.handle_media_event(now, call, ev);
                }
            }
            MediaCommand::Stop { call } => {
                if self.in_conference(call) {
                    self.end_conference().await;
                }
                let mut media = self.media.remove(&call);
                if let Some(m) = &mut media {
                    // The devices are let go with the call.
                    m.stop_ringback().await;
                }
                let handle = media.and_then(|m| m.handle);
                tincan_sip::capacity::give_back(&mut self.media, 0);
                let tx = self.media_tx.clone();
                match handle {
                    Some(h) => {
                        tokio::spawn(async move {
                            let stats = h.stop().await;
                            let _ = tx.send((call, MediaInput::Stopped(stats))).await;
                        });
                    }
                    // No session: nothing to wait for (carry_out drains what this causes).
                    None => self
                        .core
                        .handle_media_stopped(now, call, SessionStats::default()),
                }
            }
        }
    }
}
