//! Test harness: [`PhoneCore`]s and a test proxy on a simulated network in virtual time.
//!
//! The phone-core counterpart of `sip-core/tests/util/mod.rs`: a seeded network loses and
//! delays datagrams between nodes; time only moves when nothing is left to do at the current
//! instant, so minutes of SIP timers run in milliseconds and a seed always gives the same
//! trace. A node can be taken offline: everything it sends and everything sent to it is lost
//! (a black-holed server).
//!
//! What a driver does around a phone, the harness does at once: a `MediaCommand::Bind` is
//! answered with fake ports, a `Stop` with default figures, and DNS questions from a small
//! static zone (counted). The proxy is a plain [`Endpoint`] with a stateful proxy on top:
//! REGISTER challenged (401) then stored by AOR user; an out-of-dialog INVITE, MESSAGE or
//! SUBSCRIBE (when it is no MWI notifier) challenged (407) then forwarded to the callee's
//! contact (an INVITE with a Record-Route of the proxy); in-dialog requests
//! and ACKs forwarded to their next hop; responses relayed back.
#![allow(dead_code)]
// The simulation takes one real instant as its epoch; everything after is virtual.
#![allow(clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::Rng;
use rand_core::SeedableRng;
use tincan::phone::{
    AccountConfig, CallEvent, CallId, EndReason, FlowCommand, MediaCommand, PhoneConfig, PhoneCore,
    PhoneEvent,
};
use tincan_media::session::SessionStats;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event, Source};
use tincan_sip::message::{HeaderName, Message, Method, Uri, response_to};
use tincan_sip::resolve::{DnsAnswer, DnsError, DnsQuery, DnsRecord, RecordData, RecordType};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{ConnectionId, Received, Target, Transport};

/// The test domain of [`Sim::zone`].
pub const DOMAIN: &str = "example.test";
/// The first proxy of the test domain (SRV priority 10).
pub const P1: &str = "127.0.0.10:5060";
/// The second proxy of the test domain (SRV priority 20).
pub const P2: &str = "127.0.0.11:5060";
/// The digest realm of the proxies.
pub const REALM: &str = "example.test";

/// Network behaviour.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// One-way delay.
    pub delay: Duration,
}

impl NetConfig {
    pub fn perfect() -> NetConfig {
        NetConfig {
            loss: 0.0,
            delay: Duration::from_millis(10),
        }
    }

    pub fn lossy(loss: f64) -> NetConfig {
        NetConfig {
            loss,
            ..NetConfig::perfect()
        }
    }
}

/// A phone core and what came out of it.
pub struct PhoneNode {
    pub core: PhoneCore,
    /// Every event with the virtual time it came out.
    pub events: Vec<(Duration, PhoneEvent)>,
    /// Every flow command (keep-alives) with the virtual time it came out.
    pub flows: Vec<(Duration, FlowCommand)>,
    /// Every media command with the virtual time it came out.
    pub media: Vec<(Duration, MediaCommand)>,
    /// The phone's address as registrars see it in STUN responses (a NAT in between);
    /// `None`: its own.
    pub mapped: Option<SocketAddr>,
    /// Stream mode: everything the phone receives arrives over TCP on this connection (its
    /// CRLF pings are answered while `pongs`); a `FlowCommand::Close` of it opens the next
    /// one. `None`: UDP.
    pub connection: Option<ConnectionId>,
    /// Pings on the connection are answered (false: the flow is black-holed).
    pub pongs: bool,
    /// Binding media ports fails (ports or file descriptors exhausted).
    pub no_media_ports: bool,
    /// The public address a STUN server sees the RTP port at (behind a NAT): reported with
    /// `handle_media_mapped` before each bind; `None`: not asked.
    pub media_public_ip: Option<IpAddr>,
    next_port: u16,
}

/// A forwarded request: the server transaction it came in on and the request as received.
struct Forward {
    server: TransactionId,
    request: Message,
    source: Source,
}

/// A stateful test proxy and registrar over a plain [`Endpoint`].
pub struct Proxy {
    pub ep: Endpoint,
    pub addr: SocketAddr,
    /// Client transaction -> what it forwards.
    forwards: HashMap<TransactionId, Forward>,
    /// Requests seen: (time, method).
    pub received: Vec<(Duration, String)>,
    /// Its digest realm ([`REALM`] unless a test changes it): it challenges every REGISTER
    /// and out-of-dialog INVITE without credentials for this realm.
    pub realm: String,
    /// The `Authorization`/`Proxy-Authorization` values of the requests it received.
    pub credentials: Vec<String>,
    /// It also challenges (407) in-dialog requests without credentials for its realm.
    pub challenge_in_dialog: bool,
    /// It supports RFC 5626 outbound: a 200 to a REGISTER with `reg-id` says
    /// `Require: outbound` (§4.2.1).
    pub outbound: bool,
    /// It is also a `message-summary` notifier (RFC 3842) for the SUBSCRIBEs sent to it.
    pub mwi: Option<MwiNotifier>,
    /// It is also a presence server (RFC 3903 PUBLISH, RFC 3856 SUBSCRIBE).
    pub presence: Option<PresenceAgent>,
}

/// A scripted `message-summary` notifier inside a [`Proxy`]: it challenges a SUBSCRIBE
/// without credentials (407), answers the others `status` with `Expires` at most `grant`,
/// and sends a NOTIFY (a client transaction: retransmitted over UDP) after each accepted one.
pub struct MwiNotifier {
    /// The answer to a SUBSCRIBE with credentials (200, or a refusal like 489).
    pub status: u16,
    /// The most `Expires` it grants.
    pub grant: u32,
    /// The NOTIFY goes before the 200.
    pub notify_first: bool,
    /// The `Subscription-State` of the next NOTIFY, once (else `active;expires=N`, or
    /// `terminated;reason=timeout` for an un-SUBSCRIBE).
    pub next_state: Option<String>,
    /// The voice messages (new) the NOTIFYs report.
    pub new_messages: u32,
    /// SUBSCRIBEs with credentials: (time, Expires asked, in a dialog).
    pub subscribes: Vec<(Duration, u32, bool)>,
    /// Final answers to its NOTIFYs: (time, status).
    pub notify_answers: Vec<(Duration, u16)>,
    notify_txs: Vec<TransactionId>,
    /// Call-ID -> (its tag, its last NOTIFY CSeq).
    dialogs: HashMap<String, (String, u32)>,
}

impl MwiNotifier {
    pub fn new(grant: u32) -> MwiNotifier {
        MwiNotifier {
            status: 200,
            grant,
            notify_first: false,
            next_state: None,
            new_messages: 2,
            subscribes: Vec::new(),
            notify_answers: Vec::new(),
            notify_txs: Vec::new(),
            dialogs: HashMap::new(),
        }
    }
}

pub enum Kind {
    Phone(Box<PhoneNode>),
    Proxy(Box<Proxy>),
}

pub struct Node {
    pub addr: SocketAddr,
    pub kind: Kind,
    /// When false, everything it sends and everything sent to it is lost.
    pub online: bool,
    /// A proxy answers STUN Binding requests (RFC 5626 §4.4.2) while online.
    pub stun: bool,
    /// Everything it sent: (time, destination, first line).
    pub sent: Vec<(Duration, SocketAddr, String)>,
    /// Everything it sent, whole: (time, destination, bytes).
    pub sent_messages: Vec<(Duration, SocketAddr, Bytes)>,
    /// Behind a NAT ([`Sim::behind_nat`]): the public address everything it sends seems to
    /// come from, the only one it is reached at (its own `addr` is private: datagrams sent
    /// there go nowhere).
    pub public: Option<SocketAddr>,
}

/// A datagram on the wire: delivery time, sequence, from, to, bytes.
type InFlight = (Instant, u64, usize, usize, Bytes);

pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub net: NetConfig,
    rng: XorShiftRng,
    seq: u64,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    /// Every delivery and loss: "time from->to first-line".
    pub trace: Vec<String>,
    /// The static DNS zone.
    pub zone: HashMap<DnsQuery, DnsAnswer>,
    /// The proxies' shared location service: AOR user -> contact address.
    pub locations: HashMap<String, SocketAddr>,
    /// Datagrams to lose on purpose: the next `n` that contain the text.
    pub drop_next: Vec<(String, usize)>,
}

impl Sim {
    pub fn new(seed: u64, net: NetConfig) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            nodes: Vec::new(),
            net,
            rng: XorShiftRng::seed_from_u64(seed),
            seq: 0,
            in_flight: BinaryHeap::new(),
            trace: Vec::new(),
            zone: zone(),
            locations: HashMap::new(),
            drop_next: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// A phone core at `addr` (no account).
    pub fn add_phone(&mut self, addr: &str, user: &str) -> usize {
        let config = PhoneConfig {
            user: user.to_owned(),
            ..PhoneConfig::default()
        };
        self.add_phone_with(addr, config)
    }

    pub fn add_phone_with(&mut self, addr: &str, config: PhoneConfig) -> usize {
        let addr: SocketAddr = addr.parse().expect("a socket address");
        let seed = self.rng.next_u64();
        let mut core = PhoneCore::new(config, Box::new(XorShiftRng::seed_from_u64(seed)));
        core.add_local_address(Transport::Udp, addr);
        self.nodes.push(Node {
            addr,
            kind: Kind::Phone(Box::new(PhoneNode {
                core,
                events: Vec::new(),
                flows: Vec::new(),
                media: Vec::new(),
                mapped: None,
                connection: None,
                pongs: true,
                no_media_ports: false,
                media_public_ip: None,
                next_port: 40000 + 100 * self.nodes.len() as u16,
            })),
            online: true,
            stun: false,
            sent: Vec::new(),
            sent_messages: Vec::new(),
            public: None,
        });
        self.nodes.len() - 1
    }

    /// A proxy and registrar at `addr`.
    pub fn add_proxy(&mut self, addr: &str) -> usize {
        let addr: SocketAddr = addr.parse().expect("a socket address");
        let seed = self.rng.next_u64();
        let mut config = EndpointConfig::default();
        config.methods.push(Method::Register);
        config.methods.push(Method::Message);
        config.methods.push(Method::Subscribe);
        config.methods.push(Method::Publish);
        let mut ep = Endpoint::new(config, Box::new(XorShiftRng::seed_from_u64(seed)));
        ep.add_local_address(Transport::Udp, addr);
        self.nodes.push(Node {
            addr,
            kind: Kind::Proxy(Box::new(Proxy {
                ep,
                addr,
                forwards: HashMap::new(),
                received: Vec::new(),
                realm: REALM.to_owned(),
                credentials: Vec::new(),
                challenge_in_dialog: false,
                outbound: false,
                mwi: None,
                presence: None,
            })),
            online: true,
            stun: true,
            sent: Vec::new(),
            sent_messages: Vec::new(),
            public: None,
        });
        self.nodes.len() - 1
    }

    pub fn phone(&self, node: usize) -> &PhoneNode {
        match &self.nodes[node].kind {
            Kind::Phone(p) => p,
            Kind::Proxy(_) => panic!("node {node} is a proxy"),
        }
    }

    pub fn phone_mut(&mut self, node: usize) -> &mut PhoneNode {
        match &mut self.nodes[node].kind {
            Kind::Phone(p) => p,
            Kind::Proxy(_) => panic!("node {node} is a proxy"),
        }
    }

    pub fn core(&mut self, node: usize) -> &mut PhoneCore {
        &mut self.phone_mut(node).core
    }

    pub fn core_ref(&self, node: usize) -> &PhoneCore {
        &self.phone(node).core
    }

    pub fn proxy(&self, node: usize) -> &Proxy {
        match &self.nodes[node].kind {
            Kind::Proxy(p) => p,
            Kind::Phone(_) => panic!("node {node} is a phone"),
        }
    }

    pub fn proxy_mut(&mut self, node: usize) -> &mut Proxy {
        match &mut self.nodes[node].kind {
            Kind::Proxy(p) => p,
            Kind::Phone(_) => panic!("node {node} is a phone"),
        }
    }

    /// Runs a command on a phone at the current instant, then settles what it caused.
    pub fn act<R>(&mut self, node: usize, f: impl FnOnce(&mut PhoneCore, Instant) -> R) -> R {
        let now = self.now;
        let r = f(self.core(node), now);
        self.settle();
        r
    }

    /// Adds an account to a phone.
    pub fn add_account(&mut self, node: usize, config: AccountConfig) {
        self.act(node, |c, now| c.add_account(now, config))
            .expect("a usable account");
    }

    /// DNS questions the phone asked.
    pub fn dns_queries_asked(&self, node: usize) -> u64 {
        self.phone(node).core.dns_queries_asked()
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn node_at(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.public.unwrap_or(n.addr) == addr)
    }

    /// Puts a phone behind a NAT with one endpoint-independent, port-preserving-or-not
    /// mapping (a full-cone NAT, like nftables `masquerade` once the mapping exists): what it
    /// sends seems to come from `public`, and only datagrams to `public` reach it. Its STUN
    /// keep-alives are answered with `public` too.
    pub fn behind_nat(&mut self, node: usize, public: &str) {
        let public: SocketAddr = public.parse().expect("a socket address");
        self.nodes[node].public = Some(public);
        if let Kind::Phone(p) = &mut self.nodes[node].kind {
            p.mapped = Some(public);
        }
    }

    /// Sends a hand-made datagram from node `from` to `to_addr`, as if that node sent it.
    pub fn inject(&mut self, from: usize, to_addr: SocketAddr, payload: Bytes) {
        self.put_on_wire(from, to_addr, payload);
    }

    fn put_on_wire(&mut self, from: usize, to_addr: SocketAddr, payload: Bytes) {
        let elapsed = self.elapsed();
        let first = first_line(&payload);
        self.nodes[from]
            .sent
            .push((elapsed, to_addr, first.clone()));
        self.nodes[from]
            .sent_messages
            .push((elapsed, to_addr, payload.clone()));
        let Some(to) = self.node_at(to_addr) else {
            self.trace
                .push(format!("{elapsed:?} {from}->{to_addr} nowhere {first}"));
            return;
        };
        let dropped = self
            .drop_next
            .iter_mut()
            .find(|(text, n)| {
                *n > 0
                    && payload
                        .windows(text.len())
                        .any(|w| !text.is_empty() && w == text.as_bytes())
            })
            .map(|(_, n)| *n -= 1)
            .is_some();
        if dropped || !self.nodes[from].online || self.unit() < self.net.loss {
            self.trace
                .push(format!("{elapsed:?} {from}->{to} lost {first}"));
            return;
        }
        self.seq += 1;
        let at = self.now + self.net.delay;
        self.in_flight
            .push(Reverse((at, self.seq, from, to, payload)));
    }

    /// Carries out everything node `i` asks at this instant; true when anything moved.
    fn drain_node(&mut self, i: usize) -> bool {
        let now = self.now;
        let elapsed = self.elapsed();
        let mut moved = false;
        let mut wire = Vec::new();
        let mut bindings = Vec::new();
        let mut stream = Vec::new();
        match &mut self.nodes[i].kind {
            Kind::Phone(p) => {
                while let Some(t) = p.core.poll_transmit() {
                    moved = true;
                    wire.push((t.target.addr, t.payload));
                }
                while let Some(q) = p.core.poll_dns_query() {
                    moved = true;
                    let answer = self
                        .zone
                        .get(&q)
                        .cloned()
                        .unwrap_or(Err(DnsError::NxDomain));
                    p.core.handle_dns_answer(now, &q, answer);
                }
                while let Some(m) = p.core.poll_media() {
                    moved = true;
                    p.media.push((elapsed, m.clone()));
                    match m {
                        MediaCommand::Bind { call, .. } if p.no_media_ports => {
                            p.core.handle_media_bound(
                                now,
                                call,
                                Err("Too many open files (os error 24)".into()),
                            );
                        }
                        MediaCommand::Bind { call, .. } => {
                            let port = p.next_port;
                            p.next_port += 2;
                            if let Some(ip) = p.media_public_ip {
                                p.core
                                    .handle_media_mapped(now, call, SocketAddr::new(ip, port));
                            }
                            p.core
                                .handle_media_bound(now, call, Ok((port, Some(port + 1))));
                        }
                        MediaCommand::Stop { call } => {
                            p.core
                                .handle_media_stopped(now, call, SessionStats::default());
                        }
                        _ => {}
                    }
                }
                while let Some(f) = p.core.poll_flow() {
                    moved = true;
                    if let FlowCommand::SendBinding {
                        target,
                        transaction,
                    } = &f
                    {
                        bindings.push((*target, *transaction, p.mapped));
                    }
                    if let FlowCommand::Ping { connection } | FlowCommand::Close { connection } = &f
                    {
                        stream.push((f.clone(), *connection));
                    }
                    p.flows.push((elapsed, f));
                }
                while let Some(e) = p.core.poll_event() {
                    moved = true;
                    p.events.push((elapsed, e));
                }
            }
            Kind::Proxy(p) => {
                while let Some(e) = p.ep.poll_event() {
                    moved = true;
                    p.on_event(now, elapsed, e, &mut self.locations);
                }
                while let Some(t) = p.ep.poll_transmit() {
                    moved = true;
                    wire.push((t.target.addr, t.payload));
                }
            }
        }
        for (to, payload) in wire {
            self.put_on_wire(i, to, payload);
        }
        // Pings on the phone's connection are answered at once while it pongs; a closed
        // connection is reported and the next one opened.
        if let Kind::Phone(p) = &mut self.nodes[i].kind {
            for (command, connection) in stream {
                let current = p.connection == Some(connection);
                match command {
                    FlowCommand::Ping { .. } if current && p.pongs => {
                        p.core.handle_pong(now, connection);
                    }
                    FlowCommand::Close { .. } => {
                        if current {
                            p.connection = Some(ConnectionId(connection.0 + 1));
                        }
                        p.core.handle_connection_closed(now, connection);
                    }
                    _ => {}
                }
            }
        }
        // STUN keep-alives are answered at once by an online proxy that does STUN.
        let own = self.nodes[i].addr;
        for (target, transaction, mapped) in bindings {
            let answers = self.nodes[i].online
                && self
                    .node_at(target)
                    .is_some_and(|n| self.nodes[n].online && self.nodes[n].stun);
            if answers && let Kind::Phone(p) = &mut self.nodes[i].kind {
                p.core.handle_binding_response(
                    now,
                    target,
                    transaction,
                    Some(mapped.unwrap_or(own)),
                );
            }
        }
        moved
    }

    /// Drains every node until nothing is left to do at this instant.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                moved |= self.drain_node(i);
            }
            if !moved {
                return;
            }
        }
    }

    fn next_time(&mut self) -> Option<Instant> {
        let mut next = self.in_flight.peek().map(|Reverse((t, ..))| *t);
        for n in &mut self.nodes {
            let t = match &mut n.kind {
                Kind::Phone(p) => p.core.poll_timeout(),
                Kind::Proxy(p) => p.ep.poll_timeout(),
            };
            if let Some(t) = t {
                next = Some(next.map_or(t, |x: Instant| x.min(t)));
            }
        }
        next
    }

    /// Moves the clock to `t` and runs the deliveries and timers due then.
    fn step_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let now = self.now;
        let elapsed = self.elapsed();
        while let Some(Reverse((at, ..))) = self.in_flight.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, from, to, mut payload)) =
                self.in_flight.pop().expect("peeked just above");
            let first = first_line(&payload);
            if !self.nodes[to].online {
                self.trace
                    .push(format!("{elapsed:?} {from}->{to} black-holed {first}"));
                continue;
            }
            self.trace.push(format!("{elapsed:?} {from}->{to} {first}"));
            let source = self.nodes[from].public.unwrap_or(self.nodes[from].addr);
            let local = self.nodes[to].addr;
            let connection = match &self.nodes[to].kind {
                Kind::Phone(p) => p.connection,
                Kind::Proxy(_) => None,
            };
            let received = |payload| Received {
                transport: if connection.is_some() {
                    Transport::Tcp
                } else {
                    Transport::Udp
                },
                source,
                local,
                connection,
                payload,
                arrived: None,
            };
            match &mut self.nodes[to].kind {
                Kind::Phone(p) => {
                    let r = received(payload);
                    p.core.handle_received(now, r);
                }
                Kind::Proxy(p) => {
                    payload = only_top_via(payload);
                    let r = received(payload);
                    p.ep.handle_received(now, r);
                }
            }
            self.settle();
        }
        for i in 0..self.nodes.len() {
            match &mut self.nodes[i].kind {
                Kind::Phone(p) => {
                    if p.core.poll_timeout().is_some_and(|t| t <= now) {
                        p.core.handle_timeout(now);
                    }
                }
                Kind::Proxy(p) => {
                    if p.ep.poll_timeout().is_some_and(|t| t <= now) {
                        p.ep.handle_timeout(now);
                    }
                }
            }
        }
        self.settle();
    }

    /// Runs until virtual time `d` after the start.
    pub fn run_until(&mut self, d: Duration) {
        let end = self.start + d;
        loop {
            self.settle();
            match self.next_time() {
                Some(t) if t <= end => self.step_to(t),
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    /// Runs until `pred` holds (checked after every instant), at most until `limit`; returns
    /// whether it held.
    pub fn run_until_with(&mut self, limit: Duration, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.start + limit;
        loop {
            self.settle();
            if pred(self) {
                return true;
            }
            match self.next_time() {
                Some(t) if t <= end => self.step_to(t),
                _ => {
                    self.now = self.now.max(end);
                    return pred(self);
                }
            }
        }
    }

    // ------------------------------------------------------------------ event look-ups

    /// Every call event of a phone: (time, call, event).
    pub fn call_events(&self, node: usize) -> Vec<(Duration, CallId, CallEvent)> {
        self.phone(node)
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                PhoneEvent::Call { call, event } => Some((*t, *call, event.clone())),
                _ => None,
            })
            .collect()
    }

    /// The incoming calls a phone was offered.
    pub fn incoming(&self, node: usize) -> Vec<CallId> {
        self.phone(node)
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                PhoneEvent::Incoming(i) => Some(i.call),
                _ => None,
            })
            .collect()
    }

    /// How a phone's call ended, if it did, and when.
    pub fn ended(&self, node: usize, call: CallId) -> Option<(Duration, EndReason)> {
        self.call_events(node)
            .into_iter()
            .find_map(|(t, c, e)| match e {
                CallEvent::Ended(end) if c == call => Some((t, end.reason)),
                _ => None,
            })
    }

    /// Whether a phone's call was answered.
    pub fn answered(&self, node: usize, call: CallId) -> bool {
        self.call_events(node)
            .iter()
            .any(|(_, c, e)| *c == call && matches!(e, CallEvent::Answered { .. }))
    }

    /// Messages a node sent whose first line starts with `prefix`: (time, destination).
    pub fn sent(&self, node: usize, prefix: &str) -> Vec<(Duration, SocketAddr)> {
        self.nodes[node]
            .sent
            .iter()
            .filter(|(_, _, l)| l.starts_with(prefix))
            .map(|(t, a, _)| (*t, *a))
            .collect()
    }
}

fn first_line(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The endpoint drops a response with more than one Via (RFC 3261 §8.1.3.3: it is not for a
/// UAC). A proxy is not a UAC: the harness keeps only the top Via (the proxy's own, which
/// matches its client transaction); the relay puts back the Vias of the request it forwarded.
fn only_top_via(payload: Bytes) -> Bytes {
    let Ok(mut m) = Message::parse(payload.clone()) else {
        return payload;
    };
    if m.is_request() || m.vias().nth(1).is_none() {
        return payload;
    }
    let Some(top) = m
        .header_lines_named("Via")
        .filter_map(Result::ok)
        .next()
        .map(str::to_owned)
    else {
        return payload;
    };
    m.remove_header(HeaderName::Via);
    m.prepend_header(HeaderName::Via, &top);
    m.to_bytes()
}

/// The static zone: `example.test` has no NAPTR, SRV for UDP only (p1 then p2), and A records.
fn zone() -> HashMap<DnsQuery, DnsAnswer> {
    let mut z = HashMap::new();
    let rec = |data| DnsRecord::new(300, data);
    z.insert(DnsQuery::new(DOMAIN, RecordType::Naptr), Ok(vec![]));
    let srv = |priority, target: &str| {
        rec(RecordData::Srv {
            priority,
            weight: 0,
            port: 5060,
            target: target.to_owned(),
        })
    };
    z.insert(
        DnsQuery::new(&format!("_sip._udp.{DOMAIN}"), RecordType::Srv),
        Ok(vec![
            srv(10, &format!("p1.{DOMAIN}")),
            srv(20, &format!("p2.{DOMAIN}")),
        ]),
    );
    for name in ["_sip._tcp", "_sips._tcp"] {
        z.insert(
            DnsQuery::new(&format!("{name}.{DOMAIN}"), RecordType::Srv),
            Ok(vec![]),
        );
    }
    for (host, ip) in [("p1", [127, 0, 0, 10]), ("p2", [127, 0, 0, 11])] {
        let name = format!("{host}.{DOMAIN}");
        z.insert(
            DnsQuery::new(&name, RecordType::A),
            Ok(vec![rec(RecordData::A(ip.into()))]),
        );
        z.insert(DnsQuery::new(&name, RecordType::Aaaa), Ok(vec![]));
    }
    z.insert(DnsQuery::new(DOMAIN, RecordType::A), Ok(vec![]));
    z.insert(DnsQuery::new(DOMAIN, RecordType::Aaaa), Ok(vec![]));
    z
}

/// An account of `user` in the test domain (password "secret").
pub fn account(user: &str, registrars: &[&str]) -> AccountConfig {
    let mut a = AccountConfig::new(user, format!("sip:{user}@{DOMAIN}"), user, "secret");
    a.registrars = registrars.iter().map(|r| format!("sip:{r}")).collect();
    a
}

/// The address a URI names (its IP literal and port, 5060 when none).
fn addr_of(uri: &str) -> Option<SocketAddr> {
    let uri = uri.trim();
    let uri = uri
        .strip_prefix('<')
        .and_then(|u| u.split('>').next())
        .unwrap_or(uri);
    let parsed = Uri::parse(uri).ok()?;
    let sip = parsed.as_sip()?;
    let ip: IpAddr = sip.host.ip()?;
    Some(SocketAddr::new(ip, sip.port.unwrap_or(5060)))
}

fn to_user(request: &Message) -> Option<String> {
    let to = request.to()?.ok()?;
    let uri = to.uri().ok()?;
    uri.as_sip()?.user.as_deref().map(str::to_owned)
}

impl Proxy {
    fn is_us(&self, route: &str) -> bool {
        addr_of(route) == Some(self.addr)
    }

    /// Removes the top Route when it names us; the next hop is the next Route or the
    /// Request-URI.
    fn next_hop(&self, request: &mut Message) -> Option<SocketAddr> {
        let top = request
            .header_lines_named("Route")
            .filter_map(Result::ok)
            .next()
            .map(str::to_owned);
        if let Some(r) = &top
            && self.is_us(r)
        {
            request.remove_first_value(HeaderName::Route);
        }
        let next = request
            .header_lines_named("Route")
            .filter_map(Result::ok)
            .next()
            .map(str::to_owned);
        match next {
            Some(r) => addr_of(&r),
            None => addr_of(request.uri_text()?),
        }
    }

    /// Whether the request carries credentials (`header`) for our realm.
    fn has_credentials(&self, request: &Message, header: &str) -> bool {
        let ours = format!("realm=\"{}\"", self.realm);
        request
            .header_lines_named(header)
            .filter_map(Result::ok)
            .any(|v| v.contains(&ours))
    }

    fn challenge(&mut self, now: Instant, tx: TransactionId, request: &Message, status: u16) {
        let mut r = response_to(request, status, None);
        r.set_to_tag("proxy");
        let name = if status == 401 {
            HeaderName::WwwAuthenticate
        } else {
            HeaderName::ProxyAuthenticate
        };
        r.push_header(
            name,
            &format!(
                "Digest realm=\"{}\", nonce=\"n0nce{status}\", qop=\"auth\", algorithm=MD5",
                self.realm
            ),
        );
        let _ = self.ep.send_response(now, tx, r);
    }

    fn on_event(
        &mut self,
        now: Instant,
        elapsed: Duration,
        event: Event,
        locations: &mut HashMap<String, SocketAddr>,
    ) {
        match event {
            Event::Request {
                transaction: Some(tx),
                request,
                source,
            } => {
                let method = request.method().cloned();
                for h in ["Authorization", "Proxy-Authorization"] {
                    let values: Vec<String> = request
                        .header_lines_named(h)
                        .filter_map(Result::ok)
                        .map(str::to_owned)
                        .collect();
                    self.credentials.extend(values);
                }
                self.received.push((
                    elapsed,
                    method.as_ref().map_or("?", Method::as_str).to_owned(),
                ));
                let has_to_tag = request
                    .to()
                    .and_then(Result::ok)
                    .is_some_and(|t| t.tag().is_some());
                let presence_event = request
                    .header(HeaderName::Event)
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("presence"));
                match method {
                    Some(Method::Register) => self.register(now, tx, &request, locations),
                    Some(Method::Publish | Method::Subscribe)
                        if self.presence.is_some() && presence_event =>
                    {
                        if !self.has_credentials(&request, "Proxy-Authorization") {
                            self.challenge(now, tx, &request, 407);
                            return;
                        }
                        self.presence_request(now, elapsed, tx, &request, &source);
                    }
                    Some(Method::Subscribe) if self.mwi.is_some() => {
                        if !self.has_credentials(&request, "Proxy-Authorization") {
                            self.challenge(now, tx, &request, 407);
                            return;
                        }
                        self.subscribe(now, elapsed, tx, &request, &source);
                    }
                    Some(m @ (Method::Invite | Method::Message | Method::Subscribe))
                        if !has_to_tag =>
                    {
                        if !self.has_credentials(&request, "Proxy-Authorization") {
                            self.challenge(now, tx, &request, 407);
                            return;
                        }
                        let invite = m == Method::Invite;
                        if invite {
                            let _ =
                                self.ep
                                    .send_response(now, tx, response_to(&request, 100, None));
                        }
                        let user = request.uri().and_then(|u| {
                            u.as_sip()
                                .and_then(|s| s.user.as_deref().map(str::to_owned))
                        });
                        let Some(contact) = user.and_then(|u| locations.get(&u).copied()) else {
                            let _ =
                                self.ep
                                    .send_response(now, tx, response_to(&request, 404, None));
                            return;
                        };
                        let mut fwd = request.clone();
                        let uri = Uri::parse(&format!("sip:{contact}"))
                            .expect("a valid uri")
                            .into_owned();
                        fwd.set_uri(&uri);
                        fwd.remove_header(HeaderName::ProxyAuthorization);
                        let _ = self.next_hop(&mut fwd);
                        if invite {
                            fwd.prepend_header(
                                HeaderName::RecordRoute,
                                &format!("<sip:{};lr>", self.addr),
                            );
                        }
                        self.forward(now, tx, request, source, fwd, contact);
                    }
                    Some(_)
                        if has_to_tag
                            && self.challenge_in_dialog
                            && !self.has_credentials(&request, "Proxy-Authorization") =>
                    {
                        self.challenge(now, tx, &request, 407);
                    }
                    Some(_) if has_to_tag => {
                        let mut fwd = request.clone();
                        let Some(next) = self.next_hop(&mut fwd) else {
                            let _ =
                                self.ep
                                    .send_response(now, tx, response_to(&request, 404, None));
                            return;
                        };
                        self.forward(now, tx, request, source, fwd, next);
                    }
                    _ => {
                        let _ = self
                            .ep
                            .send_response(now, tx, response_to(&request, 404, None));
                    }
                }
            }
            Event::Request {
                transaction: None,
                mut request,
                ..
            } => {
                // The ACK of a 2xx: on to the next hop.
                self.received.push((elapsed, "ACK".to_owned()));
                if let Some(next) = self.next_hop(&mut request) {
                    let _ = self.ep.send_ack(request, Target::new(Transport::Udp, next));
                }
            }
            Event::Response {
                transaction,
                response,
            } => {
                let status = response.status().unwrap_or(0);
                if status == 100 {
                    return;
                }
                if let Some(n) = &mut self.mwi
                    && n.notify_txs.contains(&transaction)
                {
                    n.notify_answers.push((elapsed, status));
                    return;
                }
                if let Some(n) = &mut self.presence
                    && n.notify_txs.contains(&transaction)
                {
                    n.notify_answers.push((elapsed, status));
                    return;
                }
                let Some(f) = self.forwards.get(&transaction) else {
                    return;
                };
                let mut relayed = response.clone();
                relayed.remove_header(HeaderName::Via);
                // The Vias of the request as it came to us, in order, first.
                let vias: Vec<String> = f
                    .request
                    .header_lines_named("Via")
                    .filter_map(Result::ok)
                    .map(str::to_owned)
                    .collect();
                for v in vias.iter().rev() {
                    relayed.prepend_header(HeaderName::Via, v);
                }
                let (server, request, source) = (f.server, f.request.clone(), f.source.clone());
                if self.ep.send_response(now, server, relayed.clone()).is_err()
                    && (200..300).contains(&status)
                {
                    // A 2xx retransmission after the first went: statelessly, as RFC 3261
                    // §16.7 step 10 forwards 2xx.
                    self.ep.send_response_stateless(&request, &source, relayed);
                }
            }
            Event::Cancelled { transaction } => {
                let client: Vec<TransactionId> = self
                    .forwards
                    .iter()
                    .filter(|(_, f)| f.server == transaction)
                    .map(|(c, _)| *c)
                    .collect();
                for c in client {
                    let _ = self.ep.cancel(now, c);
                }
            }
            Event::Timeout { transaction } => {
                if let Some(f) = self.forwards.get(&transaction) {
                    let r = response_to(&f.request, 408, None);
                    let _ = self.ep.send_response(now, f.server, r);
                }
            }
            _ => {}
        }
    }

    /// A SUBSCRIBE to the notifier: its answer and a NOTIFY.
    fn subscribe(
        &mut self,
        now: Instant,
        elapsed: Duration,
        tx: TransactionId,
        request: &Message,
        source: &Source,
    ) {
        let addr = self.addr;
        let Some(n) = self.mwi.as_mut() else { return };
        let asked: u32 = request
            .header(HeaderName::Expires)
            .and_then(|e| e.trim().parse().ok())
            .unwrap_or(3600);
        let to_tag = request
            .to()
            .and_then(Result::ok)
            .and_then(|t| t.tag().map(str::to_owned));
        n.subscribes.push((elapsed, asked, to_tag.is_some()));
        let call_id = request
            .call_id()
            .and_then(Result::ok)
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        if n.status != 200 {
            let mut r = response_to(request, n.status, None);
            r.set_to_tag("refused");
            let _ = self.ep.send_response(now, tx, r);
            return;
        }
        let count = n.dialogs.len();
        let (tag, seq) = n
            .dialogs
            .entry(call_id.clone())
            .or_insert_with(|| (format!("n{count}"), 0));
        *seq += 1;
        let (tag, seq) = (tag.clone(), *seq);
        let granted = asked.min(n.grant);
        let mut ok = response_to(request, 200, None);
        if to_tag.is_none() {
            ok.set_to_tag(&tag);
        }
        ok.push_header(HeaderName::Expires, &granted.to_string());
        ok.push_header(HeaderName::Contact, &format!("<sip:vm@{addr}>"));
        let state = n.next_state.take().unwrap_or_else(|| {
            if granted == 0 {
                "terminated;reason=timeout".to_owned()
            } else {
                format!("active;expires={granted}")
            }
        });
        let body = format!(
            "Messages-Waiting: {}\r\nVoice-Message: {}/0 (0/0)\r\n",
            if n.new_messages > 0 { "yes" } else { "no" },
            n.new_messages
        );
        let from = request.header(HeaderName::From).unwrap_or("").to_owned();
        let to = request.header(HeaderName::To).unwrap_or("").to_owned();
        let to = if to_tag.is_some() {
            to
        } else {
            format!("{to};tag={tag}")
        };
        let contact = request
            .contacts()
            .next()
            .and_then(Result::ok)
            .and_then(|c| {
                c.address()
                    .and_then(|a| a.uri().ok().map(|u| u.into_owned()))
            });
        let Some(contact) = contact else { return };
        let notify = tincan_sip::message::RequestBuilder::new(Method::Notify, &contact)
            .header(HeaderName::From, &to)
            .header(HeaderName::To, &from)
            .call_id(&call_id)
            .cseq(seq)
            .header(HeaderName::Contact, &format!("<sip:vm@{addr}>"))
            .header(HeaderName::Event, "message-summary")
            .header(HeaderName::SubscriptionState, &state)
            .body("application/simple-message-summary", Bytes::from(body))
            .build();
        let target = Target::new(Transport::Udp, source.addr);
        if !n.notify_first {
            let _ = self.ep.send_response(now, tx, ok.clone());
        }
        if let Ok(t) = self.ep.send_request(now, notify, target)
            && let Some(n) = self.mwi.as_mut()
        {
            n.notify_txs.push(t);
        }
        if self.mwi.as_ref().is_some_and(|n| n.notify_first) {
            let _ = self.ep.send_response(now, tx, ok);
        }
    }

    fn forward(
        &mut self,
        now: Instant,
        server: TransactionId,
        request: Message,
        source: Source,
        fwd: Message,
        to: SocketAddr,
    ) {
        match self
            .ep
            .send_request(now, fwd, Target::new(Transport::Udp, to))
        {
            Ok(client) => {
                self.forwards.insert(
                    client,
                    Forward {
                        server,
                        request,
                        source,
                    },
                );
            }
            Err(_) => {
                let _ = self
                    .ep
                    .send_response(now, server, response_to(&request, 500, None));
            }
        }
    }

    fn register(
        &mut self,
        now: Instant,
        tx: TransactionId,
        request: &Message,
        locations: &mut HashMap<String, SocketAddr>,
    ) {
        if !self.has_credentials(request, "Authorization") {
            self.challenge(now, tx, request, 401);
            return;
        }
        let user = to_user(request).unwrap_or_default();
        let contact = request.header(HeaderName::Contact).map(str::to_owned);
        let expires = request
            .header(HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(3600);
        let mut r = response_to(request, 200, None);
        r.set_to_tag("reg");
        if self.outbound && contact.as_deref().is_some_and(|c| c.contains("reg-id")) {
            r.push_header_named("Require", "outbound");
        }
        match contact {
            Some(c) if expires > 0 => {
                if let Some(a) = addr_of(c.split(';').next().unwrap_or(&c)) {
                    locations.insert(user, a);
                }
                let value = c.split('>').next().unwrap_or(&c);
                r.push_header(HeaderName::Contact, &format!("{value}>;expires={expires}"));
            }
            _ => {
                locations.remove(&user);
            }
        }
        let _ = self.ep.send_response(now, tx, r);
    }
}

// ------------------------------------------------------------------ presence server

/// A scripted presence server inside a [`Proxy`] (RFC 3903, RFC 3856): it takes PUBLISHes
/// (an entity-tag per accepted one, `Expires` at most `grant`; 412 for an unknown
/// `SIP-If-Match`, or once when told to lose the state) and answers `presence` SUBSCRIBEs
/// 200 with a NOTIFY carrying `document`.
pub struct PresenceAgent {
    /// The most `Expires` it grants.
    pub grant: u32,
    /// The next PUBLISH with `SIP-If-Match` is answered 412, once (the server restarted).
    pub lose_state: bool,
    /// PUBLISHes with credentials: (time, Expires, SIP-If-Match, body).
    pub publishes: Vec<(Duration, u32, Option<String>, String)>,
    /// The answers to them: (time, status).
    pub publish_answers: Vec<(Duration, u16)>,
    /// The body of the NOTIFYs (`application/pidf+xml`); empty: a NOTIFY without body.
    pub document: String,
    /// `presence` SUBSCRIBEs with credentials: (time, Expires, in a dialog, Accept).
    pub subscribes: Vec<(Duration, u32, bool, Option<String>)>,
    /// Final answers to its NOTIFYs: (time, status).
    pub notify_answers: Vec<(Duration, u16)>,
    notify_txs: Vec<TransactionId>,
    etag: Option<String>,
    etags: u32,
    /// Call-ID -> (its tag, its last NOTIFY CSeq).
    dialogs: HashMap<String, (String, u32)>,
}

impl PresenceAgent {
    pub fn new(grant: u32) -> PresenceAgent {
        PresenceAgent {
            grant,
            lose_state: false,
            publishes: Vec::new(),
            publish_answers: Vec::new(),
            document: String::new(),
            subscribes: Vec::new(),
            notify_answers: Vec::new(),
            notify_txs: Vec::new(),
            etag: None,
            etags: 0,
            dialogs: HashMap::new(),
        }
    }
}

impl Proxy {
    fn presence_request(
        &mut self,
        now: Instant,
        elapsed: Duration,
        tx: TransactionId,
        request: &Message,
        source: &Source,
    ) {
        let addr = self.addr;
        let Some(n) = self.presence.as_mut() else {
            return;
        };
        let asked: u32 = request
            .header(HeaderName::Expires)
            .and_then(|e| e.trim().parse().ok())
            .unwrap_or(3600);
        let granted = asked.min(n.grant);
        if request.method() == Some(&Method::Publish) {
            let if_match = request.header(HeaderName::SipIfMatch).map(str::to_owned);
            let body = String::from_utf8_lossy(request.body()).into_owned();
            n.publishes.push((elapsed, asked, if_match.clone(), body));
            let lost = if_match.is_some() && std::mem::take(&mut n.lose_state);
            let r = if lost || (if_match.is_some() && if_match != n.etag) {
                n.etag = None;
                response_to(request, 412, None)
            } else if asked == 0 {
                n.etag = None;
                let mut r = response_to(request, 200, None);
                r.push_header(HeaderName::Expires, "0");
                r
            } else {
                n.etags += 1;
                let etag = format!("etag{}", n.etags);
                n.etag = Some(etag.clone());
                let mut r = response_to(request, 200, None);
                r.push_header(HeaderName::SipEtag, &etag);
                r.push_header(HeaderName::Expires, &granted.to_string());
                r
            };
            n.publish_answers.push((elapsed, r.status().unwrap_or(0)));
            let _ = self.ep.send_response(now, tx, r);
            return;
        }
        let to_tag = request
            .to()
            .and_then(Result::ok)
            .and_then(|t| t.tag().map(str::to_owned));
        let accept = request.header(HeaderName::Accept).map(str::to_owned);
        n.subscribes
            .push((elapsed, asked, to_tag.is_some(), accept));
        let call_id = request
            .call_id()
            .and_then(Result::ok)
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let count = n.dialogs.len();
        let (tag, seq) = n
            .dialogs
            .entry(call_id.clone())
            .or_insert_with(|| (format!("ps{count}"), 0));
        *seq += 1;
        let (tag, seq) = (tag.clone(), *seq);
        let mut ok = response_to(request, 200, None);
        if to_tag.is_none() {
            ok.set_to_tag(&tag);
        }
        ok.push_header(HeaderName::Expires, &granted.to_string());
        ok.push_header(HeaderName::Contact, &format!("<sip:presence@{addr}>"));
        let state = if granted == 0 {
            "terminated;reason=timeout".to_owned()
        } else {
            format!("active;expires={granted}")
        };
        let from = request.header(HeaderName::From).unwrap_or("").to_owned();
        let to = request.header(HeaderName::To).unwrap_or("").to_owned();
        let to = if to_tag.is_some() {
            to
        } else {
            format!("{to};tag={tag}")
        };
        let contact = request
            .contacts()
            .next()
            .and_then(Result::ok)
            .and_then(|c| {
                c.address()
                    .and_then(|a| a.uri().ok().map(|u| u.into_owned()))
            });
        let Some(contact) = contact else { return };
        let mut notify = tincan_sip::message::RequestBuilder::new(Method::Notify, &contact)
            .header(HeaderName::From, &to)
            .header(HeaderName::To, &from)
            .call_id(&call_id)
            .cseq(seq)
            .header(HeaderName::Contact, &format!("<sip:presence@{addr}>"))
            .header(HeaderName::Event, "presence")
            .header(HeaderName::SubscriptionState, &state)
            .build();
        if !n.document.is_empty() {
            notify.set_body(
                Some("application/pidf+xml"),
                Bytes::from(n.document.clone()),
            );
        }
        let _ = self.ep.send_response(now, tx, ok);
        let target = Target::new(Transport::Udp, source.addr);
        if let Ok(t) = self.ep.send_request(now, notify, target)
            && let Some(n) = self.presence.as_mut()
        {
            n.notify_txs.push(t);
        }
    }
}
