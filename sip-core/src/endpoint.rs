//! The SIP endpoint: the transport and transaction layers of a user agent as one sans-IO
//! state machine.
//!
//! Received bytes and the passing of time go in ([`Endpoint::handle_received`],
//! [`Endpoint::handle_timeout`]); requests and responses from the transaction user go in
//! ([`Endpoint::send_request`], [`Endpoint::send_response`]...); bytes to send, events and
//! the next deadline come out ([`Endpoint::poll_transmit`], [`Endpoint::poll_event`],
//! [`Endpoint::poll_timeout`]). Drain every output after each input.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
//! use rand_core::SeedableRng;
//! use tincan_sip::rng::XorShiftRng;
//! use tincan_sip::transport::{Transport, Target};
//! use tincan_sip::message::{HeaderName, Method, RequestBuilder, Uri};
//!
//! let now = Instant::now();
//! let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(XorShiftRng::seed_from_u64(1)));
//! ep.add_local_address(Transport::Udp, "127.0.0.1:5060".parse().unwrap());
//! let uri = Uri::parse("sip:bob@127.0.0.1:5070").unwrap();
//! let options = RequestBuilder::new(Method::Options, &uri)
//!     .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=1")
//!     .header(HeaderName::To, "<sip:bob@127.0.0.1>")
//!     .call_id("c1")
//!     .cseq(1)
//!     .build();
//! let target = Target::new(Transport::Udp, "127.0.0.1:5070".parse().unwrap());
//! let tx = ep.send_request(now, options, target).unwrap();
//! let sent = ep.poll_transmit().unwrap();
//! assert!(sent.payload.starts_with(b"OPTIONS sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK"));
//! // No answer: Timer E resends at T1.
//! ep.handle_timeout(now + std::time::Duration::from_millis(500));
//! assert!(ep.poll_transmit().is_some());
//! # let _ = tx;
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::Rng;

use crate::capacity::give_back;
use crate::message::typed::{BRANCH_MAGIC_COOKIE, CSeq, Via};
use crate::message::{
    CheckConfig, HeaderName, Message, Method, ParseError, ParseLimits, Verdict, response_to,
};
use crate::transaction::client_invite::ClientInvite;
use crate::transaction::client_non_invite::ClientNonInvite;
use crate::transaction::server_invite::ServerInvite;
use crate::transaction::server_non_invite::ServerNonInvite;
use crate::transaction::{Out, Progress, Report, ReportSink, TimerConfig, TransactionId};
use crate::transport::{ConnectionId, Received, Target, Transmit, Transport, UDP_MAX_REQUEST};

/// How an [`Endpoint`] behaves.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// Parser limits for received messages.
    pub limits: ParseLimits,
    /// Most live transactions; a new request over the bound is answered 503 with
    /// Retry-After, and `send_request` fails with [`SendError::Overloaded`].
    pub max_transactions: usize,
    /// Most undrained events before new requests are refused with 503.
    pub max_events: usize,
    /// Option tags understood in Require (RFC 3261 §8.2.2.3).
    pub supported: Vec<String>,
    /// Methods the transaction user handles, and the endpoint's `Allow`; others get
    /// [`unhandled_method_status`] with Allow (RFC 3261 §8.2.1). ACK and CANCEL are always
    /// handled. The default is a Tincan user agent's,
    /// [`dialog::invite::METHODS`](crate::dialog::invite::METHODS).
    pub methods: Vec<Method>,
    /// `User-Agent` for requests and `Server` for responses, when set.
    pub user_agent: Option<String>,
    /// Requests over this size go over TCP instead of UDP (RFC 3261 §18.1.1).
    pub udp_max_request: usize,
    /// Seconds in the Retry-After of a 503 sent when overloaded.
    pub overload_retry_after: u32,
    /// Transactions expected to be live at once: the transaction table is sized for this
    /// many up front, so that it does not rehash as it grows under load.
    pub expected_transactions: usize,
    /// Load shedding by queueing delay (RFC 6357 §5.1, as a CoDel-style sojourn bound): a
    /// new INVITE that waited longer than this between the socket and the endpoint (from
    /// [`Received::arrived`]) is refused 503 with Retry-After, statelessly. The driver is
    /// behind; a call taken now would only deepen the backlog, while the requests of calls
    /// already up (BYE, ACK, CANCEL, re-INVITE), OPTIONS and responses still go through, so
    /// that what is up can end. Any request older than its sender's own timeout (Timer B
    /// or F, 64*T1) is dropped unanswered: nobody waits for the answer any more.
    pub max_queue_delay: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: TimerConfig::default(),
            limits: ParseLimits::default(),
            max_transactions: 500_000,
            max_events: 65_536,
            supported: crate::message::SUPPORTED_EXTENSIONS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            methods: crate::dialog::invite::METHODS.to_vec(),
            user_agent: Some(concat!("Tincan/", env!("CARGO_PKG_VERSION")).to_owned()),
            udp_max_request: UDP_MAX_REQUEST,
            overload_retry_after: 5,
            expected_transactions: 1024,
            max_queue_delay: Duration::from_secs(1),
        }
    }
}

/// Where a received message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The transport.
    pub transport: Transport,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The stream connection (TCP, TLS).
    pub connection: Option<ConnectionId>,
}

/// What the endpoint tells its transaction user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new request. `transaction` is `None` for an ACK to a 2xx, which is not a
    /// transaction of its own; every other request must be answered with
    /// [`Endpoint::send_response`].
    Request {
        /// The server transaction to answer on.
        transaction: Option<TransactionId>,
        /// The request (its top Via carries `received`/`rport` as RFC 3581 says).
        request: Message,
        /// Where it came from.
        source: Source,
    },
    /// A response to a request sent with [`Endpoint::send_request`].
    Response {
        /// The client transaction.
        transaction: TransactionId,
        /// The response.
        response: Message,
    },
    /// A 2xx to an INVITE that matches no transaction any more (a late fork, RFC 6026): the
    /// dialog layer ACKs and BYEs it.
    StrayResponse {
        /// The response.
        response: Message,
        /// Where it came from.
        source: Source,
    },
    /// No final response before Timer B or F (RFC 3261 §17.1.1.2, §17.1.2.2).
    Timeout {
        /// The client transaction.
        transaction: TransactionId,
    },
    /// The transport failed to send (RFC 3261 §17.1.4, §17.2.4).
    TransportError {
        /// The transaction.
        transaction: TransactionId,
    },
    /// A final response to an INVITE was never acknowledged (Timer H, or the 2xx
    /// retransmission of §13.3.1.4 ran 64*T1): the session should be ended with BYE.
    AckTimeout {
        /// The server INVITE transaction.
        transaction: TransactionId,
    },
    /// A CANCEL ended a pending INVITE: the endpoint answered 200 to the CANCEL and 487 to
    /// the INVITE (RFC 3261 §9.2).
    Cancelled {
        /// The server INVITE transaction.
        transaction: TransactionId,
    },
    /// A transaction ended and its state is gone.
    Terminated {
        /// The transaction.
        transaction: TransactionId,
    },
}

/// The transactions report straight into the event queue, in order.
impl ReportSink for VecDeque<Event> {
    fn report(&mut self, report: Report) {
        self.push_back(match report {
            Report::Response {
                transaction,
                response,
            } => Event::Response {
                transaction,
                response,
            },
            Report::Timeout { transaction } => Event::Timeout { transaction },
            Report::TransportError { transaction } => Event::TransportError { transaction },
            Report::AckTimeout { transaction } => Event::AckTimeout { transaction },
        });
    }
}

/// Why a request or response could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The transaction table is full.
    #[error("too many transactions ({0})")]
    Overloaded(usize),
    /// The message is not what the call expects (a request where a response goes...).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// No local address is known for the transport and address family.
    #[error("no local {0} address for this destination")]
    NoLocalAddress(Transport),
    /// The transaction does not exist (any more).
    #[error("no transaction {0}")]
    UnknownTransaction(TransactionId),
    /// The transaction's state does not allow this.
    #[error("{0}")]
    State(&'static str),
}

/// Counters for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams and framed messages received.
    pub received: u64,
    /// Received messages dropped (unusable responses, unanswerable bytes).
    pub dropped: u64,
    /// Requests answered statelessly because they were bad (4xx, 5xx).
    pub rejected: u64,
    /// Requests refused with 503 because a bound was reached, or new INVITEs that waited
    /// longer than [`EndpointConfig::max_queue_delay`].
    pub overloaded: u64,
    /// Requests dropped unanswered because they waited longer than their sender's timeout
    /// (64*T1: Timer B for an INVITE, F for the rest).
    pub stale: u64,
    /// Retransmissions absorbed by server transactions.
    pub retransmissions_absorbed: u64,
    /// Merged requests (the same request arrived by another path) answered 482 (RFC 3261
    /// §8.2.2.2).
    pub merged: u64,
}

#[derive(Debug)]
#[allow(clippy::enum_variant_names)] // the RFC's names: client INVITE, client non-INVITE...
enum Tx {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Tx {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Tx::ClientInvite(t) => t.next_deadline(),
            Tx::ClientNonInvite(t) => t.next_deadline(),
            Tx::ServerInvite(t) => t.next_deadline(),
            Tx::ServerNonInvite(t) => t.next_deadline(),
        }
    }
}

/// A transaction matching key in one allocation, its parts joined by `\n` (which no header
/// value holds):
/// - server (RFC 3261 §17.2.3): `METHOD \n branch \n sent-by`, ACK folded into INVITE, the
///   sent-by in lower case; for RFC 2543 peers without the magic cookie, `\x01` then the
///   Request-URI, From tag, Call-ID, CSeq number, method and top Via;
/// - client (§17.1.3): `branch \n CSeq method`;
/// - ACK of a 2xx: `Call-ID \n CSeq number`.
///
/// Lookups write the key into a buffer the endpoint keeps, so that only an insertion
/// allocates.
type Key = Box<str>;

#[derive(Debug)]
struct Slot {
    tx: Tx,
    server_key: Option<Key>,
    client_key: Option<Key>,
    ack_key: Option<Key>,
    /// A server transaction of a request without a To tag: its [`merge_key`].
    merge_key: Option<Key>,
    scheduled: Option<Instant>,
}

/// What the endpoint takes from a received request's top Via, parsed once.
#[derive(Debug)]
struct RequestVia {
    /// Where responses go (RFC 3261 §18.2.2, RFC 3581 §4), `received` and `rport` applied.
    target: Target,
    /// How the request matches server transactions.
    matching: Matching,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matching {
    /// A magic-cookie branch: the endpoint's `via_key` holds `branch \n sent-by`.
    Rfc3261,
    /// No magic cookie: the RFC 2543 fields.
    Rfc2543,
    /// No usable Via.
    None,
}

/// The transport and transaction layers of a SIP user agent.
pub struct Endpoint {
    config: EndpointConfig,
    rng: Box<dyn Rng + Send>,
    next_id: u64,
    slots: HashMap<TransactionId, Slot>,
    server_keys: HashMap<Key, TransactionId>,
    client_keys: HashMap<Key, TransactionId>,
    /// Accepted INVITE server transactions by (Call-ID, CSeq), to match the ACK of a 2xx.
    ack_keys: HashMap<Key, TransactionId>,
    /// Server transactions of requests without a To tag by [`merge_key`] (From tag,
    /// Call-ID, CSeq), to find merged requests (RFC 3261 §8.2.2.2).
    merge_keys: HashMap<Key, TransactionId>,
    /// The `branch \n sent-by` of the request being handled (see [`Matching::Rfc3261`]).
    via_key: String,
    /// Where lookup keys are written.
    key_buf: String,
    /// CANCELs asked for before the INVITE got a provisional response (§9.1).
    pending_cancels: HashMap<TransactionId, ()>,
    deadlines: BinaryHeap<Reverse<(Instant, TransactionId)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    local: Vec<(Transport, SocketAddr)>,
    stats: EndpointStats,
    accepting: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("transactions", &self.slots.len())
            .field("local", &self.local)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A new endpoint. `rng` makes branches, tags and Call-IDs: seed it in tests.
    pub fn new(config: EndpointConfig, rng: Box<dyn Rng + Send>) -> Endpoint {
        let expected = config.expected_transactions.min(config.max_transactions);
        Endpoint {
            config,
            rng,
            next_id: 1,
            slots: HashMap::with_capacity(expected),
            server_keys: HashMap::with_capacity(expected),
            client_keys: HashMap::new(),
            ack_keys: HashMap::with_capacity(expected / 2),
            merge_keys: HashMap::with_capacity(expected),
            via_key: String::with_capacity(128),
            key_buf: String::with_capacity(128),
            pending_cancels: HashMap::new(),
            deadlines: BinaryHeap::with_capacity(expected),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            local: Vec::new(),
            stats: EndpointStats::default(),
            accepting: true,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Declares an address the driver listens on; the Via sent-by of requests sent over
    /// `transport` to the same address family is taken from it.
    pub fn add_local_address(&mut self, transport: Transport, addr: SocketAddr) {
        if !self.local.contains(&(transport, addr)) {
            self.local.push((transport, addr));
        }
    }

    /// The local addresses declared so far.
    pub fn local_addresses(&self) -> &[(Transport, SocketAddr)] {
        &self.local
    }

    /// The local address used for `transport` towards `dest`.
    pub fn local_address_for(&self, transport: Transport, dest: SocketAddr) -> Option<SocketAddr> {
        let family_matches = |a: &SocketAddr| a.is_ipv4() == dest.is_ipv4();
        self.local
            .iter()
            .filter(|(t, a)| *t == transport && family_matches(a))
            .map(|(_, a)| *a)
            .find(|a| a.ip().is_loopback() == dest.ip().is_loopback())
            .or_else(|| {
                self.local
                    .iter()
                    .find(|(t, a)| *t == transport && family_matches(a))
                    .map(|(_, a)| *a)
            })
    }

    /// While not accepting (shutting down), new requests get 503 with Retry-After; ACKs,
    /// CANCELs and retransmissions are still handled.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// Live transactions.
    pub fn transaction_count(&self) -> usize {
        self.slots.len()
    }

    /// The number of entries of each of the endpoint's tables and queues, by name: for tests
    /// that check what the endpoint keeps once its transactions are over.
    #[doc(hidden)]
    pub fn table_sizes(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("endpoint.slots", self.slots.len()),
            ("endpoint.server_keys", self.server_keys.len()),
            ("endpoint.client_keys", self.client_keys.len()),
            ("endpoint.ack_keys", self.ack_keys.len()),
            ("endpoint.pending_cancels", self.pending_cancels.len()),
            ("endpoint.deadlines", self.deadlines.len()),
            ("endpoint.transmits", self.transmits.len()),
            ("endpoint.events", self.events.len()),
            ("endpoint.local", self.local.len()),
        ]
    }

    /// Transactions still waiting for their final response (or, for an INVITE answered with
    /// a 2xx, for its ACK): what a graceful shutdown waits for.
    pub fn in_flight_count(&self) -> usize {
        self.slots
            .values()
            .filter(|s| match &s.tx {
                Tx::ClientInvite(t) => t.is_pending(),
                Tx::ClientNonInvite(t) => t.in_flight(),
                Tx::ServerInvite(t) => t.in_flight(),
                Tx::ServerNonInvite(t) => t.in_flight(),
            })
            .count()
    }

    /// Forgets a client non-INVITE transaction still waiting for its final response when
    /// nobody waits for that response any more (the TU gave up on it, as a failover does
    /// after its per-target budget): no more retransmissions, and a late response is a stray.
    /// A client INVITE can be forgotten the same way only while nothing at all came back
    /// for it: no CANCEL may be sent before a provisional response (RFC 3261 §9.1), and a
    /// caller who hung up, or a failover that moved on from a black-holed server, must not
    /// keep retransmitting it until Timer B. Returns `false`, changing nothing, for any
    /// other transaction (an INVITE that was answered ends through its CANCEL or its final
    /// response).
    pub fn abandon(&mut self, transaction: TransactionId) -> bool {
        match self.slots.get(&transaction).map(|s| &s.tx) {
            Some(Tx::ClientNonInvite(t)) if t.in_flight() => {
                self.remove(transaction);
                true
            }
            Some(Tx::ClientInvite(t)) if t.is_pending() && !t.provisional_seen() => {
                self.remove(transaction);
                true
            }
            _ => false,
        }
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// A random token of `len` alphanumerics (for branches, tags, Call-IDs).
    pub fn random_token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        // Bytes come in one draw per token (one system call with the OS generator, not one per
        // character); a byte of 248 or more (4 x 62) is skipped so that every character is
        // equally likely.
        let mut token = String::with_capacity(len);
        let mut bytes = [0u8; 64];
        while token.len() < len {
            let want = (len - token.len() + len / 8 + 2).min(bytes.len());
            self.rng.fill_bytes(&mut bytes[..want]);
            for &b in &bytes[..want] {
                if token.len() == len {
                    break;
                }
                if b < 248 {
                    token.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
                }
            }
        }
        token
    }

    fn new_id(&mut self) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id += 1;
        id
    }

    // ------------------------------------------------------------------------------ output

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let next = self.transmits.pop_front();
        if next.is_none() {
            // Drained: what a burst queued is given back.
            give_back(&mut self.transmits, 0);
        }
        next
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        let next = self.events.pop_front();
        if next.is_none() {
            give_back(&mut self.events, 0);
        }
        next
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            match self.slots.get(&id) {
                Some(slot) if slot.scheduled == Some(at) => return Some(at),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            if slot.scheduled != Some(at) {
                continue;
            }
            slot.scheduled = None;
            let mut out = Out {
                transmits: &mut self.transmits,
                reports: &mut self.events,
            };
            let progress = match &mut slot.tx {
                Tx::ClientInvite(t) => t.on_timeout(now, &mut out),
                Tx::ClientNonInvite(t) => t.on_timeout(now, &mut out),
                Tx::ServerInvite(t) => {
                    t.on_timeout(now, &mut out, self.config.user_agent.as_deref())
                }
                Tx::ServerNonInvite(t) => t.on_timeout(now),
            };
            self.after(id, progress);
        }
    }

    /// Re-arms a transaction's timer or removes it when terminated.
    fn after(&mut self, id: TransactionId, progress: Progress) {
        if progress == Progress::Terminated {
            self.remove(id);
            return;
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let next = slot.tx.next_deadline();
        if next != slot.scheduled {
            slot.scheduled = next;
            if let Some(at) = next {
                self.deadlines.push(Reverse((at, id)));
            }
        }
    }

    fn remove(&mut self, id: TransactionId) {
        if let Some(slot) = self.slots.remove(&id) {
            if let Some(k) = slot.server_key {
                self.server_keys.remove(&k);
            }
            if let Some(k) = slot.client_key {
                self.client_keys.remove(&k);
            }
            if let Some(k) = slot.ack_key
                && self.ack_keys.get(&k) == Some(&id)
            {
                self.ack_keys.remove(&k);
            }
            if let Some(k) = slot.merge_key
                && self.merge_keys.get(&k) == Some(&id)
            {
                self.merge_keys.remove(&k);
            }
            self.pending_cancels.remove(&id);
            self.events.push_back(Event::Terminated { transaction: id });
            self.give_back_capacity();
        }
    }

    /// Shrinks the tables a burst of transactions grew, once they are mostly empty again
    /// (down to their configured working size, [`EndpointConfig::expected_transactions`]):
    /// the memory of a burst is not kept for the life of the process.
    fn give_back_capacity(&mut self) {
        let expected = self
            .config
            .expected_transactions
            .min(self.config.max_transactions);
        give_back(&mut self.slots, expected);
        give_back(&mut self.server_keys, expected);
        give_back(&mut self.client_keys, 0);
        give_back(&mut self.ack_keys, expected / 2);
        give_back(&mut self.pending_cancels, 0);
        give_back(&mut self.deadlines, expected);
    }

    fn insert(&mut self, id: TransactionId, slot: Slot) {
        if let Some(k) = &slot.server_key {
            self.server_keys.insert(k.clone(), id);
        }
        if let Some(k) = &slot.client_key {
            self.client_keys.insert(k.clone(), id);
        }
        if let Some(k) = &slot.merge_key {
            self.merge_keys.insert(k.clone(), id);
        }
        self.slots.insert(id, slot);
        self.after(id, Progress::Alive);
    }

    // ------------------------------------------------------------------------------- input

    /// Handles one received datagram or framed stream message.
    pub fn handle_received(&mut self, now: Instant, received: Received) {
        self.stats.received += 1;
        let source = Source {
            transport: received.transport,
            addr: received.source,
            local: received.local,
            connection: received.connection,
        };
        let payload = received.payload;
        let waited = received
            .arrived
            .map_or(Duration::ZERO, |a| now.saturating_duration_since(a));
        // CRLF keep-alives on UDP (RFC 5626 §4.4.1 uses STUN there, but CRLFs are common).
        if payload.iter().all(|&b| b == b'\r' || b == b'\n') {
            return;
        }
        let looks_like_request = !payload
            .iter()
            .skip_while(|&&b| b == b'\r' || b == b'\n')
            .take(4)
            .map(u8::to_ascii_uppercase)
            .eq(*b"SIP/");
        let (mut msg, defect) = match Message::parse_lenient(payload, &self.config.limits) {
            Ok(parsed) => parsed,
            Err(_) => {
                // Nothing to build a response from (§18.3: unparseable bytes are dropped).
                self.stats.dropped += 1;
                return;
            }
        };
        let supported: Vec<&str> = self.config.supported.iter().map(String::as_str).collect();
        let check = CheckConfig {
            supported: &supported,
            ..CheckConfig::default()
        };
        let problem = defect.or_else(|| msg.check(&check).err());
        if !msg.is_request() || !looks_like_request {
            if problem.is_some() || !msg.is_request() && !looks_like_request && msg.is_request() {
                self.stats.dropped += 1;
                return;
            }
            self.handle_response(now, msg, source);
            return;
        }
        // The top Via is parsed once here, for §18.2.1 (received, rport), the response
        // target and the transaction key.
        if msg.top_via().is_none() {
            // No Via at all: nowhere to send a response (§18.2.2, §8.1.3.3), not even a 400;
            // dropped (§18.3). A Via that is there but malformed still gets its 400 (RFC 4475
            // §3.1.2.1), at the source address.
            self.stats.dropped += 1;
            return;
        }
        let via = self.inspect_via(&mut msg, &source);
        // RFC 3261 §17.1.1.2, §17.1.2.2: the sender's transaction timed out after 64*T1 (Timer
        // B, F); an answer now reaches nobody, and a call set up now has no caller.
        if waited > self.config.timers.t1 * 64 {
            self.stats.stale += 1;
            return;
        }
        if let Some(problem) = problem {
            self.reject(&msg, &source, &problem);
            return;
        }
        self.handle_request(now, msg, source, via, waited);
    }

    /// Reads the top Via of a received request once: notes where the request really came
    /// from (RFC 3261 §18.2.1, RFC 3581 §4: `received` when the sent-by host is not the
    /// source address, `rport` filled when asked for), works out where responses go
    /// (§18.2.2), and leaves `branch \n sent-by` in `via_key` for matching (§17.2.3).
    fn inspect_via(&mut self, request: &mut Message, source: &Source) -> RequestVia {
        use std::fmt::Write;
        let (rewrite, target, matching) = {
            let Some(Ok(via)) = request.top_via() else {
                return RequestVia {
                    target: Target::new(source.transport, source.addr),
                    matching: Matching::None,
                };
            };
            let host_ip = via.host.ip();
            let host_matches = host_ip == Some(source.addr.ip());
            let wants_rport = matches!(via.rport(), Some(None));
            // Where responses go, as if received and rport were already in the Via.
            let transport = if source.connection.is_some() {
                source.transport
            } else {
                Transport::from_token(&via.transport).unwrap_or(source.transport)
            };
            let target = if source.connection.is_some() {
                Target::new(transport, source.addr)
            } else {
                let received = if host_matches {
                    via.received().and_then(|r| r.parse::<IpAddr>().ok())
                } else {
                    Some(source.addr.ip())
                };
                let ip = received.or(host_ip).unwrap_or(source.addr.ip());
                let port = match (wants_rport, via.rport()) {
                    (true, _) => source.addr.port(),
                    (false, Some(Some(p))) => p,
                    _ => via.port.unwrap_or(transport.default_port()),
                };
                Target::new(transport, SocketAddr::new(ip, port))
            };
            let matching = match via.branch() {
                Some(b)
                    if b.starts_with(BRANCH_MAGIC_COOKIE)
                        && b.len() > BRANCH_MAGIC_COOKIE.len() =>
                {
                    self.via_key.clear();
                    self.via_key.push_str(b);
                    self.via_key.push('\n');
                    let at = self.via_key.len();
                    let _ = write!(self.via_key, "{}", via.host);
                    if let Some(p) = via.port {
                        let _ = write!(self.via_key, ":{p}");
                    }
                    self.via_key[at..].make_ascii_lowercase();
                    Matching::Rfc3261
                }
                _ => Matching::Rfc2543,
            };
            let rewrite = (!host_matches || wants_rport).then(|| {
                let mut via = via.into_owned();
                if !host_matches {
                    via.params
                        .set("received", Some(&source.addr.ip().to_string()));
                }
                if wants_rport {
                    via.params
                        .set("rport", Some(&source.addr.port().to_string()));
                }
                via.to_string()
            });
            (rewrite, target, matching)
        };
        if let Some(via) = rewrite {
            request.remove_first_value(HeaderName::Via);
            request.prepend_header(HeaderName::Via, &via);
        }
        RequestVia { target, matching }
    }

    /// Writes the server transaction key of `request` for `method` into `key_buf` (see
    /// [`Key`]); false when the request has none.
    fn server_key(&mut self, request: &Message, method: &Method, via: &RequestVia) -> bool {
        let method = match method {
            Method::Ack => "INVITE",
            m => m.as_str(),
        };
        self.key_buf.clear();
        match via.matching {
            Matching::Rfc3261 => {
                self.key_buf.push_str(method);
                self.key_buf.push('\n');
                self.key_buf.push_str(&self.via_key);
                true
            }
            Matching::Rfc2543 => rfc2543_key(request, method, &mut self.key_buf).is_some(),
            Matching::None => false,
        }
    }

    fn reject(&mut self, request: &Message, source: &Source, problem: &ParseError) {
        let Verdict::Reject { status, reason } = problem.verdict(true) else {
            self.stats.dropped += 1;
            return;
        };
        if request.method() == Some(&Method::Ack) {
            // An ACK is never answered (§17.2.3).
            self.stats.dropped += 1;
            return;
        }
        self.stats.rejected += 1;
        let mut response = response_to(request, status, Some(&reason));
        if let ParseError::BadExtension(tags) = problem {
            response.push_header(HeaderName::Unsupported, &tags.join(", "));
        }
        self.send_stateless(request, source, response);
    }

    /// Sends a response without a transaction, to where §18.2.2 says.
    fn send_stateless(&mut self, request: &Message, source: &Source, response: Message) {
        let response = self.with_server_header(response);
        self.transmits.push_back(Transmit {
            target: response_target(request, source),
            connection: source.connection,
            payload: response.to_bytes(),
            transaction: None,
        });
    }

    fn handle_request(
        &mut self,
        now: Instant,
        request: Message,
        source: Source,
        via: RequestVia,
        waited: Duration,
    ) {
        let Some(method) = request.method().cloned() else {
            return;
        };
        let keyed = self.server_key(&request, &method, &via);
        if let Some(&id) = keyed
            .then(|| self.server_keys.get(self.key_buf.as_str()))
            .flatten()
        {
            self.stats.retransmissions_absorbed += 1;
            let mut out = Out {
                transmits: &mut self.transmits,
                reports: &mut self.events,
            };
            let progress = match (&mut self.slots.get_mut(&id).map(|s| &mut s.tx), &method) {
                (Some(Tx::ServerInvite(t)), Method::Ack) => t.on_ack(now),
                (Some(Tx::ServerInvite(t)), _) => {
                    t.on_request_retransmission(&mut out);
                    Progress::Alive
                }
                (Some(Tx::ServerNonInvite(t)), _) => {
                    t.on_request_retransmission(&mut out);
                    Progress::Alive
                }
                _ => Progress::Alive,
            };
            self.after(id, progress);
            return;
        }
        match method {
            Method::Ack => {
                // The ACK of a 2xx (§13.3.1.4, RFC 6026): stop retransmitting, tell the TU.
                if ack_key(&request, &mut self.key_buf)
                    && let Some(&id) = self.ack_keys.get(self.key_buf.as_str())
                {
                    if let Some(Slot {
                        tx: Tx::ServerInvite(t),
                        ..
                    }) = self.slots.get_mut(&id)
                    {
                        t.on_ack_2xx();
                    }
                    self.after(id, Progress::Alive);
                }
                self.events.push_back(Event::Request {
                    transaction: None,
                    request,
                    source,
                });
                return;
            }
            Method::Cancel => {
                self.handle_cancel(now, request, source, via);
                return;
            }
            _ => {}
        }
        if !self.config.methods.contains(&method) {
            let status = unhandled_method_status(&method);
            let mut response = response_to(&request, status, None);
            let allow: Vec<&str> = self.config.methods.iter().map(Method::as_str).collect();
            response.push_header(HeaderName::Allow, &allow.join(", "));
            self.stats.rejected += 1;
            self.send_stateless(&request, &source, response);
            return;
        }
        // Only a new call is shed: a re-INVITE (with a To tag) belongs to a call already up.
        let behind = method == Method::Invite
            && waited > self.config.max_queue_delay
            && request
                .to()
                .and_then(Result::ok)
                .is_none_or(|t| t.tag().is_none());
        if !self.accepting
            || behind
            || self.slots.len() >= self.config.max_transactions
            || self.events.len() >= self.config.max_events
        {
            self.stats.overloaded += 1;
            let mut response = response_to(&request, 503, None);
            response.push_header(
                HeaderName::RetryAfter,
                &self.config.overload_retry_after.to_string(),
            );
            self.send_stateless(&request, &source, response);
            return;
        }
        let key: Option<Key> = keyed.then(|| self.key_buf.as_str().into());
        let merge_key: Option<Key> =
            merge_key(&request, &mut self.key_buf).then(|| self.key_buf.as_str().into());
        let merged = merge_key
            .as_ref()
            .is_some_and(|k| self.merge_keys.contains_key(k));
        let id = self.new_id();
        let target = via.target;
        let tx = if method == Method::Invite {
            Tx::ServerInvite(ServerInvite::new(
                id,
                now,
                request.clone(),
                target,
                source.connection,
                self.config.timers,
            ))
        } else {
            Tx::ServerNonInvite(ServerNonInvite::new(
                id,
                now,
                target,
                source.connection,
                self.config.timers,
            ))
        };
        self.insert(
            id,
            Slot {
                tx,
                server_key: key,
                client_key: None,
                ack_key: None,
                merge_key: if merged { None } else { merge_key },
                scheduled: None,
            },
        );
        if merged {
            // §8.2.2.2: the same request (From tag, Call-ID, CSeq) as an ongoing transaction,
            // arrived by another path (another branch): 482, in a transaction of its own
            // that absorbs its retransmissions and the ACK. The TU never sees it.
            self.stats.merged += 1;
            let response = response_to(&request, 482, None);
            let _ = self.send_response(now, id, response);
            return;
        }
        self.events.push_back(Event::Request {
            transaction: Some(id),
            request,
            source,
        });
    }

    fn handle_cancel(&mut self, now: Instant, cancel: Message, source: Source, via: RequestVia) {
        // §9.2: the CANCEL matches the INVITE it cancels by the INVITE's transaction key.
        let invite = self
            .server_key(&cancel, &Method::Invite, &via)
            .then(|| self.server_keys.get(self.key_buf.as_str()).copied())
            .flatten();
        let Some(invite_id) = invite else {
            let response = response_to(&cancel, 481, None);
            self.send_stateless(&cancel, &source, response);
            return;
        };
        // The CANCEL is a non-INVITE server transaction of its own.
        let id = self.new_id();
        let key: Option<Key> = self
            .server_key(&cancel, &Method::Cancel, &via)
            .then(|| self.key_buf.as_str().into());
        let mut tx =
            ServerNonInvite::new(id, now, via.target, source.connection, self.config.timers);
        let ok = self.with_server_header(response_to(&cancel, 200, None));
        let mut out = Out {
            transmits: &mut self.transmits,
            reports: &mut self.events,
        };
        let progress = tx
            .send_response(now, 200, ok.to_bytes(), &mut out)
            .unwrap_or(Progress::Terminated);
        self.insert(
            id,
            Slot {
                tx: Tx::ServerNonInvite(tx),
                server_key: key,
                client_key: None,
                ack_key: None,
                merge_key: None,
                scheduled: None,
            },
        );
        self.after(id, progress);
        let terminated = match self.slots.get(&invite_id).map(|s| &s.tx) {
            Some(Tx::ServerInvite(t)) if t.is_proceeding() => {
                Some((response_to(t.request(), 487, None), t.last_to_tag()))
            }
            _ => None,
        };
        if let Some((mut resp, tag)) = terminated {
            let tag = tag.unwrap_or_else(|| self.random_token(10));
            resp.set_to_tag(&tag);
            let resp = self.with_server_header(resp);
            if let Some(Slot {
                tx: Tx::ServerInvite(t),
                ..
            }) = self.slots.get_mut(&invite_id)
            {
                let mut out = Out {
                    transmits: &mut self.transmits,
                    reports: &mut self.events,
                };
                let _ = t.send_response(now, 487, resp.to_bytes(), &mut out);
            }
            self.after(invite_id, Progress::Alive);
            self.events.push_back(Event::Cancelled {
                transaction: invite_id,
            });
        }
    }

    /// The `Server` header, and a To tag where the response has none (RFC 3261 §8.2.6.2: a
    /// UAS tags the To of every response but a 100 Trying; the transaction user tags the
    /// responses of a dialog itself, this covers the others: 200 to OPTIONS or CANCEL, 481,
    /// 501...).
    fn with_server_header(&mut self, mut response: Message) -> Message {
        if let Some(server) = &self.config.user_agent
            && response.header(HeaderName::Server).is_none()
        {
            response.push_header(HeaderName::Server, server);
        }
        self.with_to_tag(response)
    }

    fn with_to_tag(&mut self, mut response: Message) -> Message {
        let untagged = response.status().is_some_and(|s| s > 100)
            && response
                .to()
                .and_then(Result::ok)
                .is_some_and(|to| to.tag().is_none());
        if untagged {
            let tag = self.random_token(10);
            response.set_to_tag(&tag);
        }
        response
    }

    fn handle_response(&mut self, now: Instant, response: Message, source: Source) {
        // §8.1.3.3: a response with more than one Via is not for a UAC (RFC 4475 bcast).
        if response.vias().nth(1).is_some() {
            self.stats.dropped += 1;
            return;
        }
        let (Some(Ok(via)), Some(Ok(cseq))) = (response.top_via(), response.cseq()) else {
            self.stats.dropped += 1;
            return;
        };
        let status = response.status().unwrap_or(0);
        self.key_buf.clear();
        self.key_buf.push_str(via.branch().unwrap_or(""));
        self.key_buf.push('\n');
        self.key_buf.push_str(cseq.method.as_str());
        let Some(&id) = self.client_keys.get(self.key_buf.as_str()) else {
            if cseq.method == Method::Invite && (200..300).contains(&status) {
                self.events
                    .push_back(Event::StrayResponse { response, source });
            } else {
                self.stats.dropped += 1;
            }
            return;
        };
        let mut out = Out {
            transmits: &mut self.transmits,
            reports: &mut self.events,
        };
        let mut send_cancel = false;
        let progress = match self.slots.get_mut(&id).map(|s| &mut s.tx) {
            Some(Tx::ClientInvite(t)) => {
                let p = t.on_response(now, status, response, &mut out);
                send_cancel = status < 200 && self.pending_cancels.contains_key(&id);
                p
            }
            Some(Tx::ClientNonInvite(t)) => t.on_response(now, status, response, &mut out),
            _ => Progress::Alive,
        };
        self.after(id, progress);
        if send_cancel {
            self.pending_cancels.remove(&id);
            let _ = self.cancel(now, id);
        }
    }

    /// Reports that sending a transaction's message failed (the driver's connect or send
    /// error, or an ICMP unreachable).
    pub fn handle_transport_error(&mut self, _now: Instant, transaction: TransactionId) {
        let mut out = Out {
            transmits: &mut self.transmits,
            reports: &mut self.events,
        };
        let progress = match self.slots.get_mut(&transaction).map(|s| &mut s.tx) {
            Some(Tx::ClientInvite(t)) => t.on_transport_error(&mut out),
            Some(Tx::ClientNonInvite(t)) => t.on_transport_error(&mut out),
            Some(Tx::ServerInvite(t)) => t.on_transport_error(&mut out),
            Some(Tx::ServerNonInvite(t)) => t.on_transport_error(&mut out),
            None => return,
        };
        self.after(transaction, progress);
    }

    /// Reports that an ICMP error said `dest` is unreachable over UDP (the driver reads it off
    /// its socket's error queue, or finds it on a later send): every client transaction whose
    /// target is UDP to `dest` fails as on [`handle_transport_error`](Self::handle_transport_error)
    /// (an [`Event::TransportError`] for each one still waiting for its final response), in
    /// the order they were sent. Transactions sent over a stream to the same address, and
    /// server transactions, are untouched.
    pub fn handle_unreachable(&mut self, now: Instant, dest: SocketAddr) {
        let mut failed: Vec<TransactionId> = self
            .slots
            .iter()
            .filter(|(_, slot)| {
                let target = match &slot.tx {
                    Tx::ClientInvite(t) => t.target(),
                    Tx::ClientNonInvite(t) => t.target(),
                    Tx::ServerInvite(_) | Tx::ServerNonInvite(_) => return false,
                };
                target.transport == Transport::Udp && target.addr == dest
            })
            .map(|(id, _)| *id)
            .collect();
        failed.sort_unstable_by_key(|id| id.0);
        for transaction in failed {
            self.handle_transport_error(now, transaction);
        }
    }

    // ------------------------------------------------------------------------------- sends

    /// Sends a request in a new client transaction: adds the top Via (sent-by from the local
    /// address, `rport`, a fresh branch) and `User-Agent`; moves a large UDP request to TCP
    /// (§18.1.1). Not for ACK (see [`send_ack`](Self::send_ack)).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        target: Target,
    ) -> Result<TransactionId, SendError> {
        self.send_request_on(now, request, target, None)
    }

    /// Like [`send_request`](Self::send_request), on a given stream connection (a flow).
    pub fn send_request_on(
        &mut self,
        now: Instant,
        mut request: Message,
        mut target: Target,
        connection: Option<ConnectionId>,
    ) -> Result<TransactionId, SendError> {
        let method = request
            .method()
            .cloned()
            .ok_or(SendError::Invalid("not a request"))?;
        if method == Method::Ack {
            return Err(SendError::Invalid(
                "an ACK has no transaction: use send_ack",
            ));
        }
        if self.slots.len() >= self.config.max_transactions {
            return Err(SendError::Overloaded(self.slots.len()));
        }
        if let Some(ua) = &self.config.user_agent
            && request.header(HeaderName::UserAgent).is_none()
        {
            request.push_header(HeaderName::UserAgent, ua);
        }
        let branch = format!("{BRANCH_MAGIC_COOKIE}{}", self.random_token(16));
        self.add_via(&mut request, &mut target, &branch)?;
        let id = self.new_id();
        let mut out = Out {
            transmits: &mut self.transmits,
            reports: &mut self.events,
        };
        let tx = if method == Method::Invite {
            Tx::ClientInvite(ClientInvite::start(
                id,
                now,
                request,
                target,
                connection,
                self.config.timers,
                &mut out,
            ))
        } else {
            Tx::ClientNonInvite(ClientNonInvite::start(
                id,
                now,
                request.to_bytes(),
                target,
                connection,
                self.config.timers,
                &mut out,
            ))
        };
        self.insert(
            id,
            Slot {
                tx,
                server_key: None,
                client_key: Some(format!("{branch}\n{}", method.as_str()).into()),
                ack_key: None,
                merge_key: None,
                scheduled: None,
            },
        );
        Ok(id)
    }

    fn add_via(
        &mut self,
        request: &mut Message,
        target: &mut Target,
        branch: &str,
    ) -> Result<(), SendError> {
        let local = self
            .local_address_for(target.transport, target.addr)
            .ok_or(SendError::NoLocalAddress(target.transport))?;
        request.prepend_header(HeaderName::Via, &our_via(target.transport, local, branch));
        // §18.1.1: a request over 1300 bytes on UDP goes over TCP when we can.
        if target.transport == Transport::Udp
            && request.to_bytes().len() > self.config.udp_max_request
            && let Some(tcp_local) = self.local_address_for(Transport::Tcp, target.addr)
        {
            target.transport = Transport::Tcp;
            request.remove_first_value(HeaderName::Via);
            request.prepend_header(HeaderName::Via, &our_via(Transport::Tcp, tcp_local, branch));
        }
        Ok(())
    }

    /// Sends the ACK of a 2xx (RFC 3261 §13.2.2.4): a new branch, no transaction. Call it for
    /// every 2xx retransmission too.
    pub fn send_ack(&mut self, mut ack: Message, mut target: Target) -> Result<(), SendError> {
        if ack.method() != Some(&Method::Ack) {
            return Err(SendError::Invalid("not an ACK"));
        }
        let branch = format!("{BRANCH_MAGIC_COOKIE}{}", self.random_token(16));
        self.add_via(&mut ack, &mut target, &branch)?;
        self.transmits.push_back(Transmit {
            target,
            connection: None,
            payload: ack.to_bytes(),
            transaction: None,
        });
        Ok(())
    }

    /// Sends a response on a server transaction (adds `Server`).
    pub fn send_response(
        &mut self,
        now: Instant,
        transaction: TransactionId,
        response: Message,
    ) -> Result<(), SendError> {
        let status = response
            .status()
            .ok_or(SendError::Invalid("not a response"))?;
        let response = self.with_server_header(response);
        let payload = response.to_bytes();
        let slot = self
            .slots
            .get_mut(&transaction)
            .ok_or(SendError::UnknownTransaction(transaction))?;
        let mut out = Out {
            transmits: &mut self.transmits,
            reports: &mut self.events,
        };
        let progress = match &mut slot.tx {
            Tx::ServerInvite(t) => {
                t.send_response(now, status, payload, &mut out)
                    .map_err(SendError::State)?;
                if (200..300).contains(&status) && ack_key(t.request(), &mut self.key_buf) {
                    let key: Key = self.key_buf.as_str().into();
                    slot.ack_key = Some(key.clone());
                    self.ack_keys.insert(key, transaction);
                }
                Progress::Alive
            }
            Tx::ServerNonInvite(t) => t
                .send_response(now, status, payload, &mut out)
                .map_err(SendError::State)?,
            _ => return Err(SendError::Invalid("not a server transaction")),
        };
        self.after(transaction, progress);
        Ok(())
    }

    /// Sends a response without a transaction (e.g. to a request the TU received as a
    /// stray), to the address RFC 3261 §18.2.2 gives.
    pub fn send_response_stateless(
        &mut self,
        request: &Message,
        source: &Source,
        response: Message,
    ) {
        self.send_stateless(request, source, response);
    }

    /// Cancels a pending INVITE (RFC 3261 §9.1): the CANCEL goes once a provisional response
    /// has arrived. Returns the CANCEL's transaction, or `None` when it waits for the
    /// provisional.
    pub fn cancel(
        &mut self,
        now: Instant,
        invite: TransactionId,
    ) -> Result<Option<TransactionId>, SendError> {
        let (cancel, target, connection) = match self.slots.get(&invite).map(|s| &s.tx) {
            Some(Tx::ClientInvite(t)) => {
                if !t.is_pending() {
                    return Err(SendError::State("the INVITE already has a final response"));
                }
                if !t.provisional_seen() {
                    self.pending_cancels.insert(invite, ());
                    return Ok(None);
                }
                (
                    build_cancel(t.request()),
                    t.target().clone(),
                    t.connection(),
                )
            }
            Some(_) => return Err(SendError::Invalid("not a client INVITE transaction")),
            None => return Err(SendError::UnknownTransaction(invite)),
        };
        let branch = cancel
            .top_via()
            .and_then(Result::ok)
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let id = self.new_id();
        let mut out = Out {
            transmits: &mut self.transmits,
            reports: &mut self.events,
        };
        let tx = ClientNonInvite::start(
            id,
            now,
            cancel.to_bytes(),
            target,
            connection,
            self.config.timers,
            &mut out,
        );
        self.insert(
            id,
            Slot {
                tx: Tx::ClientNonInvite(tx),
                server_key: None,
                client_key: Some(format!("{branch}\nCANCEL").into()),
                ack_key: None,
                merge_key: None,
                scheduled: None,
            },
        );
        Ok(Some(id))
    }

    /// The target a client transaction sends to.
    pub fn transaction_target(&self, transaction: TransactionId) -> Option<&Target> {
        match &self.slots.get(&transaction)?.tx {
            Tx::ClientInvite(t) => Some(t.target()),
            Tx::ClientNonInvite(t) => Some(t.target()),
            _ => None,
        }
    }
}

/// The status for a request whose method the transaction user does not handle, sent with
/// `Allow`:
/// - 405 Method Not Allowed for a method of RFC 3261 itself (REGISTER at a user agent): every
///   SIP element understands it, it is only not served here (§8.2.1, §21.4.6);
/// - 501 Not Implemented for any other method (SUBSCRIBE, MESSAGE, REFER, an unknown token):
///   the extension is not implemented for any user (§21.5.2), so no other address here would
///   take it either.
pub fn unhandled_method_status(method: &Method) -> u16 {
    match method {
        Method::Invite
        | Method::Ack
        | Method::Bye
        | Method::Cancel
        | Method::Options
        | Method::Register => 405,
        _ => 501,
    }
}

/// Our Via for a request: `SIP/2.0/<T> local;rport;branch=...` (RFC 3261 §8.1.1.7, RFC 3581).
fn our_via(transport: Transport, local: SocketAddr, branch: &str) -> String {
    let mut via = Via::new(
        transport.via_token(),
        host_of(local.ip()),
        Some(local.port()),
        branch,
    );
    let mut params = crate::message::Params::default();
    params.set("rport", None);
    params.set("branch", Some(branch));
    via.params = params;
    via.to_string()
}

fn host_of(ip: IpAddr) -> crate::message::Host<'static> {
    match ip {
        IpAddr::V4(a) => crate::message::Host::V4(a),
        IpAddr::V6(a) => crate::message::Host::V6(a),
    }
}

/// The CANCEL of an INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, To, From, CSeq number
/// and top Via (same branch), the INVITE's Route set.
fn build_cancel(invite: &Message) -> Message {
    let uri = invite
        .uri()
        .unwrap_or_else(|| crate::message::Uri::parse("sip:invalid").expect("literal URI parses"));
    let mut cancel = Message::new_request(Method::Cancel, &uri);
    if let Some(Ok(via)) = invite.top_via() {
        cancel.push_header(HeaderName::Via, &via.to_string());
    }
    cancel.copy_header_from(invite, HeaderName::Route);
    cancel.push_header(HeaderName::MaxForwards, "70");
    cancel.copy_header_from(invite, HeaderName::From);
    cancel.copy_header_from(invite, HeaderName::To);
    cancel.copy_header_from(invite, HeaderName::CallId);
    if let Some(Ok(cseq)) = invite.cseq() {
        cancel.push_header(
            HeaderName::CSeq,
            &CSeq {
                seq: cseq.seq,
                method: Method::Cancel,
            }
            .to_string(),
        );
    }
    cancel.copy_header_from(invite, HeaderName::UserAgent);
    cancel.push_header(HeaderName::ContentLength, "0");
    cancel
}

/// Where a response to `request` goes (RFC 3261 §18.2.2, RFC 3581 §4).
fn response_target(request: &Message, source: &Source) -> Target {
    let via = request.top_via().and_then(Result::ok);
    let transport = via
        .as_ref()
        .and_then(|v| Transport::from_token(&v.transport))
        .unwrap_or(source.transport);
    let transport = if source.connection.is_some() {
        source.transport
    } else {
        transport
    };
    if source.connection.is_some() || via.is_none() {
        return Target::new(transport, source.addr);
    }
    let via = via.expect("checked above");
    let ip = via
        .received()
        .and_then(|r| r.parse::<IpAddr>().ok())
        .or_else(|| via.host.ip())
        .unwrap_or(source.addr.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port.unwrap_or(transport.default_port()),
    };
    Target::new(transport, SocketAddr::new(ip, port))
}

/// The RFC 2543 server key (§17.2.3: Request-URI, From tag, Call-ID, CSeq, top Via) into
/// `key` (see [`Key`]). (An ACK also needs the To tag of our response; INVITE retransmissions
/// have none.)
fn rfc2543_key(request: &Message, method: &str, key: &mut String) -> Option<()> {
    use std::fmt::Write;
    let via = request.top_via()?.ok()?;
    let cseq = request.cseq()?.ok()?;
    let call_id = request.call_id()?.ok()?;
    let from = request.from().and_then(Result::ok);
    let from_tag = from.as_ref().and_then(|f| f.tag()).unwrap_or("");
    let _ = write!(
        key,
        "\x01\n{}\n{from_tag}\n{}\n{}\n{method}\n{via}",
        request.uri_text().unwrap_or(""),
        call_id.as_str(),
        cseq.seq,
    );
    Some(())
}

/// The key of a request without a To tag that finds merged requests (RFC 3261 §8.2.2.2:
/// From tag, Call-ID, CSeq number and method) into `key`; false for a request with a To tag
/// or without these headers.
fn merge_key(request: &Message, key: &mut String) -> bool {
    use std::fmt::Write;
    key.clear();
    if request
        .to()
        .and_then(Result::ok)
        .is_none_or(|to| to.tag().is_some())
    {
        return false;
    }
    let (Some(Ok(from)), Some(Ok(call_id)), Some(Ok(cseq))) =
        (request.from(), request.call_id(), request.cseq())
    else {
        return false;
    };
    let _ = write!(
        key,
        "{}\n{}\n{}\n{}",
        from.tag().unwrap_or(""),
        call_id.as_str(),
        cseq.seq,
        cseq.method.as_str()
    );
    true
}

/// The key matching the ACK of a 2xx to `request` (Call-ID, CSeq number) into `key`.
fn ack_key(request: &Message, key: &mut String) -> bool {
    use std::fmt::Write;
    key.clear();
    let (Some(Ok(call_id)), Some(Ok(cseq))) = (request.call_id(), request.cseq()) else {
        return false;
    };
    let _ = write!(key, "{}\n{}", call_id.as_str(), cseq.seq);
    true
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
mod tests {
    use super::*;
    use crate::message::RequestBuilder;
    use crate::rng::XorShiftRng;
    use rand_core::SeedableRng;

    fn request(method: Method, to: SocketAddr, call_id: &str) -> Message {
        let text = format!("sip:bob@{to}");
        let uri = crate::message::Uri::parse(&text).unwrap();
        RequestBuilder::new(method, &uri)
            .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=1")
            .header(HeaderName::To, "<sip:bob@127.0.0.1>")
            .call_id(call_id)
            .cseq(1)
            .build()
    }

    fn failed(ep: &mut Endpoint) -> Vec<TransactionId> {
        let mut failed = Vec::new();
        while let Some(event) = ep.poll_event() {
            if let Event::TransportError { transaction } = event {
                failed.push(transaction);
            }
        }
        failed
    }

    /// An ICMP unreachable for a UDP destination fails the client transactions sent there
    /// over UDP (INVITE and non-INVITE), and only those: not one to another address, not one
    /// to the same address over TCP.
    #[test]
    fn unreachable_fails_the_udp_client_transactions_to_that_destination() {
        let now = Instant::now();
        let mut ep = Endpoint::new(
            EndpointConfig::default(),
            Box::new(XorShiftRng::seed_from_u64(7)),
        );
        ep.add_local_address(Transport::Udp, "127.0.0.1:5060".parse().unwrap());
        ep.add_local_address(Transport::Tcp, "127.0.0.1:5060".parse().unwrap());
        let dead: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let live: SocketAddr = "127.0.0.1:5080".parse().unwrap();
        let options = ep
            .send_request(
                now,
                request(Method::Options, dead, "c1"),
                Target::new(Transport::Udp, dead),
            )
            .unwrap();
        let invite = ep
            .send_request(
                now,
                request(Method::Invite, dead, "c2"),
                Target::new(Transport::Udp, dead),
            )
            .unwrap();
        let elsewhere = ep
            .send_request(
                now,
                request(Method::Options, live, "c3"),
                Target::new(Transport::Udp, live),
            )
            .unwrap();
        let over_tcp = ep
            .send_request(
                now,
                request(Method::Options, dead, "c4"),
                Target::new(Transport::Tcp, dead),
            )
            .unwrap();
        while ep.poll_transmit().is_some() {}
        assert!(failed(&mut ep).is_empty());

        ep.handle_unreachable(now, dead);
        assert_eq!(failed(&mut ep), vec![options, invite]);
        assert!(ep.transaction_target(options).is_none());
        assert!(ep.transaction_target(invite).is_none());
        assert!(ep.transaction_target(elsewhere).is_some());
        assert!(ep.transaction_target(over_tcp).is_some());

        // Nothing left to fail.
        ep.handle_unreachable(now, dead);
        assert!(failed(&mut ep).is_empty());
    }
}
