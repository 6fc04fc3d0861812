//! The phone core: accounts and calls as one sans-IO state machine.
//!
//! [`PhoneCore`] owns the transaction layer ([`Endpoint`]), the phone's DNS cache, the target
//! health table, every account's registrations and every call (an [`InviteSession`](tincan_sip::dialog::InviteSession) with its
//! SDP offer/answer and the control of its media session). It reads no clock, owns no socket,
//! spawns nothing: like `Endpoint` and `MediaSession` it takes inputs with the time they
//! happened and says what to do.
//!
//! - Inputs: received bytes ([`handle_received`](PhoneCore::handle_received)), transport
//!   failures, DNS answers ([`handle_dns_answer`](PhoneCore::handle_dns_answer)), media
//!   events, the passing of time ([`handle_timeout`](PhoneCore::handle_timeout)) and the
//!   application's commands ([`call`](PhoneCore::call), [`accept`](PhoneCore::accept),
//!   [`hangup`](PhoneCore::hangup), [`add_account`](PhoneCore::add_account)...).
//! - Outputs: bytes to send ([`poll_transmit`](PhoneCore::poll_transmit)), DNS questions
//!   ([`poll_dns_query`](PhoneCore::poll_dns_query)), media commands
//!   ([`poll_media`](PhoneCore::poll_media)), keep-alives of registration flows
//!   ([`poll_flow`](PhoneCore::poll_flow)), events for the application
//!   ([`poll_event`](PhoneCore::poll_event)) and the next deadline
//!   ([`poll_timeout`](PhoneCore::poll_timeout)). Drain them all after every input.
//!
//! Every request a user waits on (REGISTER, INVITE, BYE...) is resolved once and sent over
//! its ordered targets by the one failover machine of [`tincan_sip::resolve::failover`],
//! whose per-target budget adapts to the target's round-trip time: a black-holed proxy is
//! passed in about a second. An ACK, a CANCEL or an in-dialog request goes where its dialog
//! already knows. Digest challenges are answered for every request with the credentials of
//! the account the call or registration belongs to.
//!
//! The tokio driver ([`crate::phone::driver`]) is one task that feeds this core and carries
//! out what it asks; tests drive it in virtual time instead.

mod account;
pub mod blf;
pub mod call;
pub mod config;
mod dns;
pub mod driver;
pub mod event;
mod flow;
pub mod message;
pub mod message_waiting;
pub mod presence;
mod route;
pub mod transfer;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::Rng;
use tincan_media::session::{Direction, MediaEvent, SessionConfig, SessionStats};
use tincan_sip::capacity::give_back;
use tincan_sip::endpoint::{Endpoint, Event, Source};
use tincan_sip::message::{HeaderName, Message, Method, response_to};
use tincan_sip::resolve::failover::{AttemptFailure, Failover, FailoverEvent, RequestKind};
use tincan_sip::resolve::{Destination, DnsAnswer, DnsQuery, ResolveConfig, TargetHealth};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{ConnectionId, Received, Transmit, Transport};

pub use config::{AccountConfig, CallParams, PhoneConfig, RealmPolicy, RegisterMode};
pub use event::{
    AccountEvent, AccountId, CallEnd, CallEvent, CallId, CallWarning, DtmfVia, EndReason,
    IncomingCall, IncomingMessage, LEVEL_FLOOR_DBFS, Levels, MessageEvent, MessageId, PhoneError,
    PhoneEvent, Quality, RefusedCall, RefusedChallenge, UsageError,
};

use account::Account;
use call::Call;
use dns::{Dns, ResolutionId};
use route::{Owner, Phase, Route, RouteId};
pub use transfer::TransferPolicy;

/// The methods the phone handles, for `Allow` and the endpoint's 501 (RFC 3261 §8.2.1):
/// anything else is answered 501 Not Implemented (405 for RFC 3261's own REGISTER). The
/// dialog layer's list (with REFER and NOTIFY for transfers, [`transfer`]), then MESSAGE
/// (RFC 3428, [`message`]); a NOTIFY outside a call's transfer is `message-summary` only
/// (RFC 3842, [`message_waiting`]) or of a watched contact's dialogs ([`blf`]; any other
/// is answered 481); SUBSCRIBE is taken for the dialog event package ([`blf`]).
pub const ALLOWED_METHODS: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Info,
    Method::Update,
    Method::Prack,
    Method::Refer,
    Method::Notify,
    Method::Message,
    Method::Subscribe,
];

/// The `Allow` header value for [`ALLOWED_METHODS`] (a test keeps the two equal).
pub fn allow_header() -> &'static str {
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, MESSAGE, SUBSCRIBE"
}

/// What the core asks of the media side. Each call's media lives in the driver (sockets and
/// audio devices); the core decides what it does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MediaCommand {
    /// Bind RTP (and RTCP) ports on `ip` for the call; answer with
    /// [`PhoneCore::handle_media_bound`].
    Bind {
        /// The call.
        call: CallId,
        /// The local address the call's SIP goes from.
        ip: IpAddr,
    },
    /// Start the media session with the call's bound ports and audio devices.
    Start {
        /// The call.
        call: CallId,
        /// What was negotiated.
        config: Box<SessionConfig>,
    },
    /// Switch a running session to a new negotiated configuration (codec, keys).
    Reconfigure {
        /// The call.
        call: CallId,
        /// The new configuration.
        config: Box<SessionConfig>,
    },
    /// Point a running session at new remote addresses.
    SetRemote {
        /// The call.
        call: CallId,
        /// RTP.
        rtp: SocketAddr,
        /// RTCP (without rtcp-mux).
        rtcp: Option<SocketAddr>,
    },
    /// Change a running session's direction (hold, resume).
    SetDirection {
        /// The call.
        call: CallId,
        /// The direction.
        direction: Direction,
    },
    /// Mute or unmute a running session's microphone (silence is sent in its place).
    SetMute {
        /// The call.
        call: CallId,
        /// Muted or not.
        muted: bool,
    },
    /// Switch a running session's capture processing (echo cancellation, noise
    /// suppression, gain control).
    SetProcessing {
        /// The call.
        call: CallId,
        /// The stages that run.
        processing: tincan_media::dsp::ProcessingConfig,
    },
    /// Send an RFC 4733 DTMF key.
    SendDtmf {
        /// The call.
        call: CallId,
        /// The key.
        digit: char,
        /// How long.
        duration: Duration,
    },
    /// The call is over: stop its session (if it started) and free its ports and devices;
    /// answer with [`PhoneCore::handle_media_stopped`].
    Stop {
        /// The call.
        call: CallId,
    },
}

/// What the core asks of the transport side for the flows of its registrations
/// (RFC 5626 keep-alives). Answer with [`PhoneCore::handle_pong`],
/// [`PhoneCore::handle_binding_response`], [`PhoneCore::handle_connection_closed`] and
/// [`PhoneCore::handle_unreachable`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowCommand {
    /// Send a CRLF CRLF ping on this TCP/TLS connection (RFC 5626 §4.4.1). When it cannot
    /// be written (the connection is gone), say so with
    /// [`PhoneCore::handle_connection_closed`].
    Ping {
        /// The connection.
        connection: ConnectionId,
    },
    /// Send a STUN Binding request with this transaction id to `target` from the SIP socket
    /// of its family (RFC 5626 §4.4.2); the same id again is a retransmission. When it
    /// cannot be sent, say so with [`PhoneCore::handle_unreachable`].
    SendBinding {
        /// The registrar.
        target: SocketAddr,
        /// The STUN transaction.
        transaction: tincan_sip::stun::TransactionId,
    },
    /// Close this connection: its flow is dead; the next request to its target opens a new
    /// one.
    Close {
        /// The connection.
        connection: ConnectionId,
    },
}

/// Accounts and calls as one sans-IO state machine (see the [module docs](self)).
pub struct PhoneCore {
    config: PhoneConfig,
    endpoint: Endpoint,
    rng: Box<dyn Rng + Send>,
    dns: Dns,
    health: TargetHealth,
    routes: HashMap<RouteId, Route>,
    next_route: RouteId,
    /// Which route and attempt each client transaction belongs to.
    transactions: HashMap<TransactionId, (RouteId, usize)>,
    /// Routes waiting for each resolution.
    resolving: HashMap<ResolutionId, RouteId>,
    /// Outgoing calls locating their next hop, by resolution.
    call_resolutions: HashMap<ResolutionId, CallId>,
    /// Account slots locating their registrars, by resolution.
    account_resolutions: HashMap<ResolutionId, (AccountId, usize, String)>,
    /// Calls by id, boxed: a call is kilobytes, and the table's empty slots cost a pointer.
    calls: HashMap<CallId, Box<Call>>,
    /// SIP Call-ID -> call.
    call_ids: HashMap<String, CallId>,
    /// Call-IDs of calls that ended lately: a BYE crossing ours is answered 200.
    ended_call_ids: VecDeque<String>,
    /// The accounts of ended calls whose last in-dialog request (their BYE) is still on its
    /// way: a proxy may challenge that BYE after the call is gone.
    ended_call_accounts: HashMap<CallId, AccountId>,
    next_call: u64,
    accounts: Vec<Account>,
    events: VecDeque<PhoneEvent>,
    media: VecDeque<MediaCommand>,
    flows: VecDeque<FlowCommand>,
    /// What is being received (transport, source, connection): the REGISTER 200 it carries
    /// tells which connection a TCP/TLS registration flow uses.
    receiving: Option<(Transport, SocketAddr, ConnectionId)>,
    /// Fail-back probes (OPTIONS) in flight: transaction -> account slot.
    probes: HashMap<TransactionId, (AccountId, usize)>,
    /// Outgoing page-mode messages waiting for their final response.
    messages: HashMap<MessageId, message::Outgoing>,
    next_message: u64,
    /// The `message-summary` subscriptions of the accounts with `mwi` (RFC 3842).
    /// A refused one (489...) stays, ended, until the account unregisters, so that the
    /// account's next registrations do not ask again.
    mwi: HashMap<AccountId, tincan_sip::dialog::subscription::Subscription>,
    /// The accounts whose subscription is being ended (unregister, shutdown).
    mwi_stopping: std::collections::HashSet<AccountId>,
    /// Published statuses and watched contacts (RFC 3856, RFC 3903).
    presence: presence::PresenceState,
    shutting_down: bool,
    /// Set by [`drain`](PhoneCore::drain): the Retry-After (whole seconds) of the 503 that
    /// new INVITEs and out-of-dialog OPTIONS get.
    draining: Option<u32>,
    /// Whether [`PhoneEvent::Drained`] was reported.
    drained: bool,
    /// Transfers (REFER, Replaces) of the calls.
    transfers: transfer::Transfers,
    /// Busy lamps: the watched contacts and the subscribers to our dialogs (RFC 4235).
    blf: blf::Blf,
}

impl std::fmt::Debug for PhoneCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneCore")
            .field("calls", &self.calls.len())
            .field("accounts", &self.accounts.len())
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl PhoneCore {
    /// A phone with no account and no call. `rng` draws every tag, Call-ID, branch, cnonce,
    /// SSRC and SRTP key: the driver passes the OS generator, tests a seeded one.
    pub fn new(config: PhoneConfig, mut rng: Box<dyn Rng + Send>) -> PhoneCore {
        let seed = rng.next_u64();
        let endpoint_rng =
            Box::new(<tincan_sip::rng::XorShiftRng as rand_core::SeedableRng>::seed_from_u64(seed));
        PhoneCore::with_generators(config, rng, endpoint_rng)
    }

    /// A phone whose transaction layer draws its tags, branches and Call-IDs from
    /// `endpoint_rng` (the driver passes the OS generator to both: RFC 3261 §19.3 asks for
    /// cryptographically random tags).
    pub fn with_generators(
        config: PhoneConfig,
        rng: Box<dyn Rng + Send>,
        endpoint_rng: Box<dyn Rng + Send>,
    ) -> PhoneCore {
        let endpoint = Endpoint::new(config.endpoint.clone(), endpoint_rng);
        let mut resolve = ResolveConfig::default();
        if let Some(t) = config.transport {
            resolve = resolve.with_transports(vec![t]);
        }
        PhoneCore {
            dns: Dns::new(resolve, config.dns_timeout),
            health: TargetHealth::new(config.health.clone()),
            config,
            endpoint,
            rng,
            routes: HashMap::new(),
            next_route: 1,
            transactions: HashMap::new(),
            resolving: HashMap::new(),
            call_resolutions: HashMap::new(),
            account_resolutions: HashMap::new(),
            calls: HashMap::new(),
            call_ids: HashMap::new(),
            ended_call_ids: VecDeque::new(),
            ended_call_accounts: HashMap::new(),
            next_call: 1,
            accounts: Vec::new(),
            events: VecDeque::new(),
            media: VecDeque::new(),
            flows: VecDeque::new(),
            receiving: None,
            probes: HashMap::new(),
            messages: HashMap::new(),
            next_message: 1,
            mwi: HashMap::new(),
            mwi_stopping: Default::default(),
            presence: presence::PresenceState::default(),
            blf: blf::Blf::default(),
            shutting_down: false,
            draining: None,
            drained: false,
            transfers: transfer::Transfers::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PhoneConfig {
        &self.config
    }

    /// A local address the driver bound (with a concrete IP: a wildcard socket is announced
    /// as the address the system routes from, added per destination).
    pub fn add_local_address(&mut self, transport: Transport, addr: SocketAddr) {
        self.endpoint.add_local_address(transport, addr);
    }

    /// The transaction layer (for the driver: local addresses, statistics).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The transaction layer, mutably (the driver adds local addresses as it learns them).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The target health table shared by every request of the phone.
    pub fn health(&self) -> &TargetHealth {
        &self.health
    }

    /// The number of entries of each of the core's tables and queues (and its endpoint's),
    /// by name: for tests that check what the phone keeps once its calls are over.
    #[doc(hidden)]
    pub fn table_sizes(&self) -> Vec<(&'static str, usize)> {
        let mut sizes = vec![
            ("routes", self.routes.len()),
            ("transactions", self.transactions.len()),
            ("resolving", self.resolving.len()),
            ("call_resolutions", self.call_resolutions.len()),
            ("account_resolutions", self.account_resolutions.len()),
            ("calls", self.calls.len()),
            ("call_ids", self.call_ids.len()),
            ("ended_call_ids", self.ended_call_ids.len()),
            ("events", self.events.len()),
            ("media", self.media.len()),
            ("flows", self.flows.len()),
            ("probes", self.probes.len()),
            ("ended_call_accounts", self.ended_call_accounts.len()),
            ("messages", self.messages.len()),
        ];
        sizes.extend(self.dns.table_sizes());
        sizes.extend(self.health.table_sizes());
        sizes.extend(self.endpoint.table_sizes());
        sizes
    }

    /// DNS questions asked of the network since the start.
    pub fn dns_queries_asked(&self) -> u64 {
        self.dns.asked_total
    }

    /// The calls in progress.
    pub fn calls(&self) -> impl Iterator<Item = CallId> + '_ {
        self.calls.keys().copied()
    }

    /// The SIP Call-ID of a call.
    pub fn sip_call_id(&self, call: CallId) -> Option<&str> {
        self.calls.get(&call).map(|c| c.call_id.as_str())
    }

    // ------------------------------------------------------------------------ outputs

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }

    /// The next DNS question to ask (answer with [`handle_dns_answer`](Self::handle_dns_answer)).
    pub fn poll_dns_query(&mut self) -> Option<DnsQuery> {
        self.dns.poll_query()
    }

    /// The next media command.
    pub fn poll_media(&mut self) -> Option<MediaCommand> {
        let next = self.media.pop_front();
        if next.is_none() {
            // Drained: what a burst queued is given back.
            give_back(&mut self.media, 0);
        }
        next
    }

    /// The next keep-alive command for a registration flow.
    pub fn poll_flow(&mut self) -> Option<FlowCommand> {
        let next = self.flows.pop_front();
        if next.is_none() {
            give_back(&mut self.flows, 0);
        }
        next
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        let next = self.events.pop_front();
        if next.is_none() {
            give_back(&mut self.events, 0);
        }
        next
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut next = self.endpoint.poll_timeout();
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        take(self.dns.poll_timeout());
        for route in self.routes.values() {
            if let Phase::Sending(f) = &route.phase {
                take(f.poll_timeout());
            }
        }
        for call in self.calls.values() {
            take(call.session.as_ref().and_then(|s| s.poll_timeout()));
        }
        for account in &self.accounts {
            take(account.poll_timeout());
        }
        for s in self.mwi.values() {
            take(s.poll_timeout());
        }
        take(self.presence.poll_timeout());
        take(self.blf_poll_timeout());
        next
    }

    /// Whether the phone has nothing left to do after [`shutdown`](Self::shutdown): no call,
    /// no registration being removed, no transaction in flight.
    pub fn is_idle(&self) -> bool {
        self.calls.is_empty()
            && self.accounts.iter().all(Account::is_idle)
            && self.endpoint.in_flight_count() == 0
    }

    // ------------------------------------------------------------------------- inputs

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.dns.handle_timeout(now);
        let due: Vec<RouteId> = self
            .routes
            .iter()
            .filter(|(_, r)| matches!(&r.phase, Phase::Sending(f) if f.poll_timeout().is_some_and(|t| t <= now)))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(Route {
                phase: Phase::Sending(f),
                ..
            }) = self.routes.get_mut(&id)
            {
                f.handle_timeout(now, &mut self.health);
            }
            self.drive_route(now, id);
        }
        let calls: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.session
                    .as_ref()
                    .and_then(|s| s.poll_timeout())
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in calls {
            if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                s.handle_timeout(now);
            }
            self.flush_call(now, id);
        }
        for i in 0..self.accounts.len() {
            self.account_timeout(now, i);
        }
        self.mwi_timeout(now);
        self.presence_timeout(now);
        self.blf_timeout(now);
        self.process(now);
    }

    /// Bytes received on a socket (a UDP datagram or a framed stream message). With
    /// [`Received::arrived`] (when the driver read it) the endpoint drops a request its sender
    /// has given up on (older than 64*T1) and sheds a new INVITE that waited longer than
    /// [`EndpointConfig::max_queue_delay`](tincan_sip::endpoint::EndpointConfig::max_queue_delay)
    /// with 503.
    pub fn handle_received(&mut self, now: Instant, received: Received) {
        self.receiving = received
            .connection
            .map(|c| (received.transport, received.source, c));
        self.endpoint.handle_received(now, received);
        self.process(now);
        self.receiving = None;
    }

    /// Sending a transaction's message failed (connection refused, no route...).
    pub fn handle_transport_error(&mut self, now: Instant, transaction: TransactionId) {
        self.endpoint.handle_transport_error(now, transaction);
        self.process(now);
    }

    /// An ICMP error said a UDP destination is unreachable: the requests sent there fail at
    /// once and move on to their next target, and a registration flow to it fails.
    pub fn handle_unreachable(&mut self, now: Instant, dest: SocketAddr) {
        self.flows_unreachable(now, dest);
        self.probes_unreachable(now, dest);
        let hit: Vec<(TransactionId, RouteId, usize)> = self
            .transactions
            .iter()
            .filter_map(|(tx, (route, attempt))| {
                let r = self.routes.get(route)?;
                let (_, target) = r.attempts.get(*attempt)?;
                (target.transport == Transport::Udp && target.addr == dest)
                    .then_some((*tx, *route, *attempt))
            })
            .collect();
        for (tx, route, attempt) in hit {
            self.transactions.remove(&tx);
            self.endpoint.abandon(tx);
            self.attempt_failed(now, route, attempt, AttemptFailure::Unreachable);
        }
        self.process(now);
    }

    /// The network's answer to a question from [`poll_dns_query`](Self::poll_dns_query).
    pub fn handle_dns_answer(&mut self, now: Instant, query: &DnsQuery, answer: DnsAnswer) {
        self.dns.handle_answer(now, query, answer);
        self.process(now);
    }

    /// The media ports of a call are bound (after [`MediaCommand::Bind`]); `Err` when they
    /// could not be.
    pub fn handle_media_bound(
        &mut self,
        now: Instant,
        call: CallId,
        ports: Result<(u16, Option<u16>), String>,
    ) {
        self.media_bound(now, call, ports);
        self.process(now);
    }

    /// The public address of a call's RTP socket as a STUN server saw it (the driver sends
    /// one Binding request from the RTP port, RFC 8489, with a bounded wait, before it
    /// reports the bind): the SDP names it in `c=`/`m=` instead of the local address, so a
    /// peer without ICE sends its media through the NAT. Only before
    /// [`handle_media_bound`](Self::handle_media_bound) of that call; ignored afterwards.
    pub fn handle_media_mapped(&mut self, now: Instant, call: CallId, public: SocketAddr) {
        self.media_mapped(call, public);
        self.process(now);
    }

    /// An event of a call's media session.
    pub fn handle_media_event(&mut self, now: Instant, call: CallId, event: MediaEvent) {
        self.media_event(now, call, event);
        self.process(now);
    }

    /// A call's media has stopped (after [`MediaCommand::Stop`]), with its final figures.
    pub fn handle_media_stopped(&mut self, now: Instant, call: CallId, stats: SessionStats) {
        self.media_stopped(now, call, stats);
        self.process(now);
    }

    /// Stops taking calls, hangs up every call and unregisters every account; the driver
    /// runs until [`is_idle`](Self::is_idle) (or its grace period ends).
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.endpoint.set_accepting(false);
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for c in calls {
            let _ = self.hangup(now, c);
        }
        for i in 0..self.accounts.len() {
            self.account_stop(now, i);
        }
        self.process(now);
    }

    /// Starts a graceful drain: the phone stops taking calls while the calls it has go on.
    /// From now on a new INVITE (out of any dialog, not one that replaces a call of ours) is
    /// refused `503 Service Unavailable` with `Retry-After: retry_after` (whole seconds,
    /// rounded up; RFC 3261 §21.5.4), reported as [`PhoneEvent::Refused`], and an
    /// out-of-dialog OPTIONS is answered the same 503, so a dispatcher probing with OPTIONS
    /// (RFC 3261 §11) sends its calls elsewhere. Requests inside the calls' dialogs are
    /// handled as before, and the application may still place calls. Once no call is left
    /// (at once when there is none) the phone reports [`PhoneEvent::Drained`], once. Calling
    /// it again changes the Retry-After.
    pub fn drain(&mut self, now: Instant, retry_after: Duration) {
        let secs = retry_after
            .as_secs()
            .saturating_add(u64::from(retry_after.subsec_nanos() > 0));
        self.draining = Some(u32::try_from(secs).unwrap_or(u32::MAX));
        self.check_drained();
        self.process(now);
    }

    /// Whether [`drain`](Self::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.draining.is_some()
    }

    /// Reports [`PhoneEvent::Drained`] when a drain has no call left.
    fn check_drained(&mut self) {
        if self.draining.is_some() && !self.drained && self.calls.is_empty() {
            self.drained = true;
            self.events.push_back(PhoneEvent::Drained);
        }
    }

    /// Whether the phone takes no new call now, and the Retry-After (seconds) of the 503 it
    /// answers instead: draining, or carrying [`PhoneConfig::call_limit`] calls.
    fn unavailable(&self) -> Option<u32> {
        if let Some(secs) = self.draining {
            return Some(secs);
        }
        (self.calls.len() >= self.config.call_limit)
            .then_some(self.config.endpoint.overload_retry_after)
    }

    // ----------------------------------------------------------------------- internals

    /// Drains the endpoint's events and everything they cause, until nothing moves.
    fn process(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(ev) = self.endpoint.poll_event() {
                moved = true;
                self.on_endpoint_event(now, ev);
            }
            while let Some((id, result)) = self.dns.poll_done() {
                moved = true;
                if let Some(route) = self.resolving.remove(&id) {
                    self.route_resolved(now, route, result);
                } else if let Some(call) = self.call_resolutions.remove(&id) {
                    let result = result.map(|r| r.targets).map_err(|e| e.to_string());
                    self.call_located(now, call, result);
                } else if let Some((account, slot, uri)) = self.account_resolutions.remove(&id) {
                    let result = result.map(|r| r.targets).map_err(|e| format!("{uri}: {e}"));
                    self.slot_located(now, account, slot, result);
                }
            }
            moved |= self.drive_transfers(now);
            moved |= self.presence_follow_calls(now);
            moved |= self.blf_update(now);
            if !moved {
                break;
            }
        }
        self.collect_routes();
    }

    fn collect_routes(&mut self) {
        self.routes.retain(|_, r| !r.is_finished());
        if !self.ended_call_accounts.is_empty() {
            let routes = &self.routes;
            self.ended_call_accounts.retain(|call, _| {
                routes
                    .values()
                    .any(|r| matches!(r.owner, Owner::InDialog(c) if c == *call))
            });
        }
        self.give_back_capacity();
    }

    /// Shrinks the tables a burst of calls grew, once they are mostly empty again: a call is
    /// kilobytes, and a table keeps the capacity of its largest size (issue 19, finding 5).
    fn give_back_capacity(&mut self) {
        give_back(&mut self.routes, 0);
        give_back(&mut self.transactions, 0);
        give_back(&mut self.resolving, 0);
        give_back(&mut self.call_resolutions, 0);
        give_back(&mut self.account_resolutions, 0);
        give_back(&mut self.calls, 0);
        give_back(&mut self.call_ids, 0);
        give_back(&mut self.probes, 0);
        give_back(&mut self.ended_call_accounts, 0);
        give_back(&mut self.messages, 0);
        self.dns.give_back_capacity();
    }

    fn on_endpoint_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Request {
                transaction: Some(tx),
                request,
                source,
            } => self.on_request(now, tx, request, source),
            Event::Request {
                transaction: None,
                request,
                ..
            } => {
                if let Some(call) = self.call_of(&request) {
                    if let Some(s) = self.calls.get_mut(&call).and_then(|c| c.session.as_mut()) {
                        s.on_ack(now, &request);
                    }
                    self.flush_call(now, call);
                }
            }
            Event::Response {
                transaction,
                response,
            } => self.on_response(now, transaction, response),
            Event::StrayResponse { response, .. } => match self.call_of(&response) {
                Some(call) => {
                    if let Some(s) = self.calls.get_mut(&call).and_then(|c| c.session.as_mut()) {
                        s.on_response(now, &response);
                    }
                    self.flush_call(now, call);
                }
                None => self.end_stray_dialog(now, &response),
            },
            Event::Timeout { transaction } if self.probes.contains_key(&transaction) => {
                self.probe_failed(now, transaction, AttemptFailure::Timeout);
            }
            Event::TransportError { transaction } if self.probes.contains_key(&transaction) => {
                self.probe_failed(now, transaction, AttemptFailure::TransportError);
            }
            Event::Timeout { transaction } => {
                if let Some((route, attempt)) = self.transactions.remove(&transaction) {
                    self.attempt_failed(now, route, attempt, AttemptFailure::Timeout);
                }
            }
            Event::TransportError { transaction } => {
                if let Some((route, attempt)) = self.transactions.remove(&transaction) {
                    self.attempt_failed(now, route, attempt, AttemptFailure::TransportError);
                }
            }
            Event::AckTimeout { transaction } => {
                if let Some(call) = self.call_of_server_tx(transaction) {
                    if let Some(s) = self.calls.get_mut(&call).and_then(|c| c.session.as_mut()) {
                        s.on_ack_timeout();
                    }
                    self.flush_call(now, call);
                }
            }
            Event::Cancelled { transaction } => {
                if let Some(call) = self.call_of_server_tx(transaction) {
                    if let Some(s) = self.calls.get_mut(&call).and_then(|c| c.session.as_mut()) {
                        s.on_cancelled();
                    }
                    self.flush_call(now, call);
                }
            }
            Event::Terminated { transaction } => {
                if let Some((route, attempt)) = self.transactions.remove(&transaction)
                    && let Some(r) = self.routes.get_mut(&route)
                    && let Some(a) = r.attempts.get_mut(attempt)
                {
                    a.0 = None;
                }
            }
            _ => {}
        }
    }

    /// A 2xx to an INVITE of a call that is over (an attempt abandoned by the failover, an
    /// INVITE stopped before any provisional, that still reached the callee): its dialog is
    /// acknowledged and ended at once, so the callee's phone does not ring on (RFC 3261
    /// §13.2.2.4, RFC 6026).
    fn end_stray_dialog(&mut self, now: Instant, response: &Message) {
        let is_invite_2xx = response.status().is_some_and(|s| (200..300).contains(&s))
            && response
                .cseq()
                .and_then(Result::ok)
                .is_some_and(|c| c.method == Method::Invite);
        if !is_invite_2xx || !self.recently_ended(response) {
            return;
        }
        // The dialog from the response alone: our side is its From, the INVITE's CSeq its.
        let (Some(Ok(from)), Some(Ok(to)), Some(Ok(call_id)), Some(Ok(cseq))) = (
            response.from(),
            response.to(),
            response.call_id(),
            response.cseq(),
        ) else {
            return;
        };
        let Ok(to_uri) = to.0.uri() else { return };
        let mut to_no_tag = to.0.clone().into_owned();
        to_no_tag.params.remove("tag");
        let invite = tincan_sip::message::RequestBuilder::new(Method::Invite, &to_uri)
            .header(HeaderName::From, &from.0.to_string())
            .header(HeaderName::To, &to_no_tag.to_string())
            .call_id(call_id.as_str())
            .cseq(cseq.seq)
            .header(HeaderName::Contact, "<sip:tincan@invalid>")
            .build();
        let Ok(mut dialog) = tincan_sip::dialog::Dialog::uac(&invite, response) else {
            return;
        };
        let hop = dialog.next_hop().to_string();
        let ack = dialog.ack(cseq.seq, None);
        let bye = dialog.request(Method::Bye);
        self.start_route(now, Owner::Stray, ack, hop.clone(), None);
        self.start_route(now, Owner::Stray, bye, hop, None);
    }

    /// The call a message belongs to, by its Call-ID.
    fn call_of(&self, message: &Message) -> Option<CallId> {
        let id = message.call_id().and_then(Result::ok)?;
        self.call_ids.get(id.as_str()).copied()
    }

    fn call_of_server_tx(&self, tx: TransactionId) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, c)| c.server_invite == Some(tx) || c.reinvites_in.values().any(|t| *t == tx))
            .map(|(id, _)| *id)
    }

    fn on_request(&mut self, now: Instant, tx: TransactionId, request: Message, source: Source) {
        // Page-mode messages are taken in a dialog as out of one (RFC 3428 §4).
        if request.method() == Some(&Method::Message) {
            self.incoming_message(now, tx, &request);
            return;
        }
        // A NOTIFY of a watched contact's presence (RFC 3856).
        if request.method() == Some(&Method::Notify) && self.presence_notify(now, tx, &request) {
            return;
        }
        if request.method() == Some(&Method::Notify)
            && !tincan_sip::dialog::refer::is_refer_notify(&request)
        {
            if !self.blf_notify(now, tx, &request) {
                self.incoming_notify(now, tx, &request);
            }
            return;
        }
        if request.method() == Some(&Method::Subscribe) {
            self.incoming_subscribe(now, tx, &request, &source);
            return;
        }
        if let Some(call) = self.call_of(&request) {
            self.call_request(now, call, tx, &request);
            return;
        }
        let method = request.method().cloned();
        let to_tag = request
            .to()
            .and_then(Result::ok)
            .is_some_and(|t| t.tag().is_some());
        let response = match (method, to_tag) {
            (Some(Method::Invite), false) => {
                self.incoming_call(now, tx, &request, &source);
                return;
            }
            (Some(Method::Options), false) => self.options_response(&request),
            // A BYE that crossed ours when both hung up at once: the dialog it ends is gone
            // either way.
            (Some(Method::Bye), true) if self.recently_ended(&request) => {
                response_to(&request, 200, None)
            }
            // RFC 3261 §12.2.2: a request inside a dialog we do not know.
            (_, true) => response_to(&request, 481, None),
            // Out of a dialog, a method we handle only inside one (BYE, INFO).
            _ => response_to(&request, 481, None),
        };
        let _ = self.endpoint.send_response(now, tx, response);
    }

    /// The answer to an out-of-dialog OPTIONS: what we support (RFC 3261 §11.2), or, for a
    /// dispatcher probing whether we take calls, 503 with when to ask again while draining
    /// or full (§21.5.4).
    fn options_response(&self, request: &Message) -> Message {
        if let Some(secs) = self.unavailable() {
            let mut r = response_to(request, 503, None);
            r.push_header(HeaderName::RetryAfter, &secs.to_string());
            return r;
        }
        let mut r = response_to(request, 200, None);
        r.push_header(HeaderName::Allow, allow_header());
        r.push_header(HeaderName::Accept, "application/sdp");
        r
    }

    fn recently_ended(&self, request: &Message) -> bool {
        request
            .call_id()
            .and_then(Result::ok)
            .is_some_and(|id| self.ended_call_ids.iter().any(|e| e == id.as_str()))
    }

    // -------------------------------------------------------------------------- routes

    /// Starts sending `request` towards `next_hop`: over `known` targets when the owner
    /// already has them (its dialog's), else after resolving the hop.
    fn start_route(
        &mut self,
        now: Instant,
        owner: Owner,
        request: Message,
        next_hop: String,
        known: Option<Vec<tincan_sip::resolve::ResolvedTarget>>,
    ) -> RouteId {
        let kind = match request.method() {
            Some(Method::Invite) => RequestKind::Invite,
            // Answered by the next hop itself: a black-holed registrar costs about a second.
            Some(Method::Register | Method::Options) => RequestKind::Direct,
            _ => RequestKind::NonInvite,
        };
        let id = self.next_route;
        self.next_route += 1;
        let mut route = Route::new(owner, request, next_hop.clone(), kind);
        match known {
            Some(targets) => {
                route.phase = Phase::Sending(Failover::new(
                    now,
                    targets,
                    kind,
                    self.config.failover.clone(),
                    &self.health,
                ));
                self.routes.insert(id, route);
                self.drive_route(now, id);
            }
            None => {
                let dest = match Destination::parse(&next_hop) {
                    Ok(mut d) => {
                        if let Some(t) = self.transport_of(owner) {
                            d.transport = Some(t.param().to_owned());
                        }
                        d
                    }
                    Err(e) => {
                        self.routes.insert(id, route);
                        self.route_failed(now, id, vec![], vec![e.to_string()]);
                        return id;
                    }
                };
                let res = self.dns.start(now, dest, &mut *self.rng);
                route.phase = Phase::Resolving;
                self.routes.insert(id, route);
                self.resolving.insert(res, id);
            }
        }
        id
    }

    /// The forced transport of an owner's account (or the phone's).
    fn transport_of(&self, owner: Owner) -> Option<Transport> {
        let account = match owner {
            Owner::Register(a, _) | Owner::Unbind(a, _) | Owner::Subscribe(a) => Some(a),
            Owner::Message(m) => self.messages.get(&m).and_then(|m| m.account),
            Owner::Presence(p) => self.presence_account(p),
            Owner::Event(e) => self.blf_account(e),
            o => o
                .call()
                .and_then(|c| self.calls.get(&c))
                .and_then(|c| c.account),
        };
        match account {
            Some(a) => self.accounts.get(a.0).and_then(|a| a.config.transport),
            None => self.config.transport,
        }
    }

    fn route_resolved(
        &mut self,
        now: Instant,
        id: RouteId,
        result: Result<tincan_sip::resolve::Resolved, tincan_sip::resolve::ResolveError>,
    ) {
        let Some(route) = self.routes.get(&id) else {
            return;
        };
        let (owner, hop, kind) = (route.owner, route.next_hop.clone(), route.kind);
        match result {
            Ok(resolved) if !resolved.targets.is_empty() => {
                if let Some(call) = owner.call().and_then(|c| self.calls.get_mut(&c)) {
                    call.known_hops
                        .entry(hop)
                        .or_insert_with(|| resolved.targets.clone());
                }
                let failover = Failover::new(
                    now,
                    resolved.targets,
                    kind,
                    self.config.failover.clone(),
                    &self.health,
                );
                if let Some(r) = self.routes.get_mut(&id) {
                    r.phase = Phase::Sending(failover);
                }
                self.drive_route(now, id);
            }
            Ok(_) => self.route_failed(now, id, vec![], vec![format!("{hop}: no servers found")]),
            Err(e) => self.route_failed(now, id, vec![], vec![e.to_string()]),
        }
    }

    /// Carries out what a route's failover machine asks.
    fn drive_route(&mut self, now: Instant, id: RouteId) {
        loop {
            let Some(route) = self.routes.get_mut(&id) else {
                return;
            };
            let Phase::Sending(f) = &mut route.phase else {
                return;
            };
            let Some(ev) = f.poll_event() else {
                return;
            };
            match ev {
                FailoverEvent::Send { attempt, target } => {
                    let owner = route.owner;
                    let transport_target = route::transport_target(&target);
                    self.ensure_local(&transport_target);
                    let Some(request) = self.request_for_attempt(now, id, &transport_target) else {
                        continue;
                    };
                    let Some(route) = self.routes.get_mut(&id) else {
                        return;
                    };
                    route.request = request.clone();
                    while route.attempts.len() <= attempt {
                        route.attempts.push((None, transport_target.clone()));
                    }
                    route.attempts[attempt].1 = transport_target.clone();
                    if let Owner::Invite(call) = owner {
                        self.invite_sent(call, &transport_target);
                    }
                    let is_ack = request.method() == Some(&Method::Ack);
                    if matches!(owner, Owner::Ack(_)) || is_ack {
                        let _ = self.endpoint.send_ack(request, transport_target);
                        if let Some(r) = self.routes.get_mut(&id) {
                            r.phase = Phase::Done;
                        }
                        return;
                    }
                    match self.endpoint.send_request(now, request, transport_target) {
                        Ok(tx) => {
                            if let Some(r) = self.routes.get_mut(&id) {
                                r.attempts[attempt].0 = Some(tx);
                            }
                            self.transactions.insert(tx, (id, attempt));
                        }
                        Err(_) => {
                            if let Some(Route {
                                phase: Phase::Sending(f),
                                ..
                            }) = self.routes.get_mut(&id)
                            {
                                f.handle_failure(
                                    now,
                                    attempt,
                                    AttemptFailure::TransportError,
                                    &mut self.health,
                                );
                            }
                        }
                    }
                }
                FailoverEvent::Abandon { attempt } => {
                    let failed = f.tried().last().cloned();
                    let owner = route.owner;
                    let method = route.request.method().map(ToString::to_string);
                    if let Some(tx) = route.attempts.get_mut(attempt).and_then(|a| a.0.take()) {
                        self.transactions.remove(&tx);
                        self.endpoint.abandon(tx);
                    }
                    if let Some(failed) = failed {
                        match owner {
                            Owner::Register(account, slot) => {
                                self.register_attempt_failed(now, account, slot, failed)
                            }
                            _ => self.attempt_abandoned(owner, method.unwrap_or_default(), failed),
                        }
                    }
                }
                FailoverEvent::Exhausted { tried } => {
                    route.phase = Phase::Done;
                    self.route_failed(now, id, tried, Vec::new());
                    return;
                }
                _ => {}
            }
        }
    }

    /// Makes sure the endpoint has a local address for a target's transport and family.
    fn ensure_local(&mut self, target: &tincan_sip::transport::Target) {
        if self
            .endpoint
            .local_address_for(target.transport, target.addr)
            .is_some()
        {
            return;
        }
        // A transport with no socket of its own (a TLS client without a listener) sends from
        // an ephemeral port: announce the UDP address's IP.
        let fallback = self
            .endpoint
            .local_addresses()
            .iter()
            .find(|(_, a)| a.is_ipv4() == target.addr.is_ipv4())
            .map(|(_, a)| *a);
        if let Some(a) = fallback {
            self.endpoint.add_local_address(target.transport, a);
        }
    }

    /// The request a route sends to `target` (a REGISTER is built for its target's flow).
    fn request_for_attempt(
        &mut self,
        now: Instant,
        id: RouteId,
        target: &tincan_sip::transport::Target,
    ) -> Option<Message> {
        let route = self.routes.get(&id)?;
        match route.owner {
            Owner::Register(account, slot) => self.register_request(now, account, slot, target),
            Owner::Unbind(account, slot) => self.unbind_request(account, slot),
            _ => Some(route.request.clone()),
        }
    }

    fn on_response(&mut self, now: Instant, tx: TransactionId, response: Message) {
        if self.probes.contains_key(&tx) {
            self.probe_answered(now, tx, &response);
            return;
        }
        let Some(&(id, attempt)) = self.transactions.get(&tx) else {
            return;
        };
        let status = response.status().unwrap_or(0);
        if status >= 200
            && self
                .routes
                .get(&id)
                .is_some_and(|r| r.kind != RequestKind::Invite)
        {
            self.transactions.remove(&tx);
            if let Some(a) = self
                .routes
                .get_mut(&id)
                .and_then(|r| r.attempts.get_mut(attempt))
            {
                a.0 = None;
            }
        }
        let retry_after = response
            .get::<tincan_sip::message::typed::RetryAfter<'_>>()
            .and_then(Result::ok)
            .map(|r| Duration::from_secs(u64::from(r.delta)));
        let Some(route) = self.routes.get_mut(&id) else {
            return;
        };
        let deliver = match &mut route.phase {
            Phase::Sending(f) => {
                f.handle_response(now, attempt, status, retry_after, &mut self.health)
            }
            _ => true,
        };
        if (100..200).contains(&status) {
            route.provisional.get_or_insert(attempt);
        }
        if deliver {
            let owner = route.owner;
            if matches!(status, 401 | 407) && self.answer_challenge(now, id, &response) {
                return;
            }
            if status == 422 && self.answer_min_se(now, id, &response) {
                return;
            }
            self.deliver_response(now, owner, id, response);
        }
        self.drive_route(now, id);
    }

    /// Answers a 401/407 with the owner's credentials and sends the request again to the
    /// same target; false when there are none, or they were refused.
    fn answer_challenge(&mut self, now: Instant, id: RouteId, response: &Message) -> bool {
        let Some(route) = self.routes.get(&id) else {
            return false;
        };
        if route.challenges >= 2 {
            return false;
        }
        let owner = route.owner;
        let request = route.request.clone();
        let retried = match owner {
            // The registration answers its own challenges (its state machine keeps the CSeq).
            Owner::Register(..) | Owner::Unbind(..) | Owner::Ack(_) | Owner::Stray => return false,
            Owner::Invite(call) => self.retry_invite(now, call, &request, response),
            Owner::InDialog(call) => self.retry_in_dialog(call, &request, response),
            Owner::Message(m) => self.retry_message(m, &request, response),
            Owner::Subscribe(a) => self.retry_subscribe(a, &request, response),
            Owner::Presence(p) => self.retry_presence(p, &request, response),
            Owner::Event(e) => self.retry_blf(e, &request, response),
        };
        let Some(retried) = retried else {
            return false;
        };
        let Some(route) = self.routes.get_mut(&id) else {
            return false;
        };
        route.challenges += 1;
        route.request = retried;
        if let Phase::Sending(f) = &mut route.phase {
            let _ = f.retry_same(now, &self.health);
        }
        self.drive_route(now, id);
        true
    }

    /// A 422 to a call's INVITE (RFC 4028 §7.4): the INVITE goes again, to the same target,
    /// asking for the larger interval; false when the call cannot retry.
    fn answer_min_se(&mut self, now: Instant, id: RouteId, response: &Message) -> bool {
        let Some(Owner::Invite(call)) = self.routes.get(&id).map(|r| r.owner) else {
            return false;
        };
        let Some(retried) = self.retry_invite_min_se(call, response) else {
            return false;
        };
        let Some(route) = self.routes.get_mut(&id) else {
            return false;
        };
        route.request = retried;
        if let Phase::Sending(f) = &mut route.phase {
            let _ = f.retry_same(now, &self.health);
        }
        self.drive_route(now, id);
        true
    }

    fn deliver_response(&mut self, now: Instant, owner: Owner, id: RouteId, response: Message) {
        match owner {
            Owner::Invite(call) | Owner::InDialog(call) => {
                self.call_response(now, call, id, &response)
            }
            Owner::Register(account, slot) => {
                self.register_response(now, account, slot, id, &response)
            }
            Owner::Unbind(account, slot) => self.unbind_response(now, account, slot, id, &response),
            Owner::Message(m) => self.message_response(m, &response),
            Owner::Subscribe(a) => self.subscribe_response(now, a, id, &response),
            Owner::Presence(p) => self.presence_response(now, p, id, &response),
            Owner::Event(e) => self.blf_response(now, e, id, &response),
            Owner::Ack(_) | Owner::Stray => {}
        }
    }

    fn attempt_failed(&mut self, now: Instant, id: RouteId, attempt: usize, why: AttemptFailure) {
        let Some(route) = self.routes.get_mut(&id) else {
            return;
        };
        if let Some(a) = route.attempts.get_mut(attempt) {
            a.0 = None;
        }
        if let Phase::Sending(f) = &mut route.phase {
            f.handle_failure(now, attempt, why, &mut self.health);
        }
        self.drive_route(now, id);
    }

    /// One target of a request failed and the request moved on (or gives up next): the
    /// owner hears which and why.
    fn attempt_abandoned(
        &mut self,
        owner: Owner,
        method: String,
        failed: tincan_sip::resolve::failover::FailedAttempt,
    ) {
        match owner {
            Owner::Invite(call) | Owner::InDialog(call) => {
                self.events.push_back(PhoneEvent::Call {
                    call,
                    event: CallEvent::Warning(CallWarning::TargetFailed {
                        method,
                        attempt: Box::new(failed),
                    }),
                })
            }
            // A registration's attempts are reported by the account (with their elapsed time);
            // a message's failed servers come with its delivery report.
            Owner::Register(..)
            | Owner::Unbind(..)
            | Owner::Ack(_)
            | Owner::Stray
            | Owner::Message(_)
            | Owner::Subscribe(_)
            | Owner::Presence(_)
            | Owner::Event(_) => {}
        }
    }

    /// A request that could not be delivered anywhere.
    fn route_failed(
        &mut self,
        now: Instant,
        id: RouteId,
        tried: Vec<tincan_sip::resolve::failover::FailedAttempt>,
        errors: Vec<String>,
    ) {
        let Some(route) = self.routes.get_mut(&id) else {
            return;
        };
        route.phase = Phase::Done;
        let owner = route.owner;
        let method = route.request.method().cloned().unwrap_or(Method::Options);
        match owner {
            Owner::Invite(call) | Owner::InDialog(call) | Owner::Ack(call) => {
                self.call_request_failed(now, call, owner, &method, tried, errors)
            }
            Owner::Register(account, slot) => {
                self.register_failed(now, account, slot, tried, errors)
            }
            Owner::Unbind(account, slot) => self.unbind_done(account, slot),
            Owner::Message(m) => self.message_failed(m, tried, errors),
            Owner::Subscribe(a) => self.subscribe_failed(now, a, id),
            Owner::Presence(p) => self.presence_failed(now, p, id),
            Owner::Event(e) => self.blf_failed(now, e, id),
            Owner::Stray => {}
        }
    }

    fn new_call_id(&mut self) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        id
    }

    /// A random token of `len` alphanumerics from the phone's generator.
    fn token(&mut self, len: usize) -> String {
        self.endpoint.random_token(len)
    }
}
