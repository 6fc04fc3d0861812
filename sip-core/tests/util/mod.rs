//! Test harness: endpoints on a simulated network in virtual time.
//!
//! A seeded network loses, duplicates, reorders and delays datagrams between any number of
//! endpoints; time only moves when nothing is left to do at the current instant, so a test
//! of 32 s of RFC timers runs in microseconds and the same seed gives the same trace.
#![allow(dead_code)]
// The simulation takes one real instant as its epoch; everything after is virtual.
#![allow(clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::Rng;
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, Uri};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{Received, Target, Transport};

pub mod ua;

/// Network behaviour.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Minimum one-way delay.
    pub delay: Duration,
    /// Extra random delay, up to this (reorders datagrams).
    pub jitter: Duration,
}

impl NetConfig {
    pub fn perfect() -> NetConfig {
        NetConfig {
            loss: 0.0,
            duplicate: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
        }
    }
}

pub struct Node {
    pub ep: Endpoint,
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Events with the virtual time they came out, drained by the test.
    pub events: Vec<(Duration, Event)>,
    /// Every message this node sent: (time, first line).
    pub sent: Vec<(Duration, String)>,
    /// Every message this node sent, whole: (time, destination node or `None`, bytes).
    pub wire: Vec<(Duration, Option<usize>, Bytes)>,
    /// When false, this node's outgoing datagrams are all lost.
    pub online: bool,
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
    /// Every delivery and drop, for determinism checks.
    pub trace: Vec<String>,
    /// Drops the datagrams it returns true for: (from, to, first line). Applies to every
    /// transport, after `online` and before the random loss.
    pub drop_if: Option<DropFilter>,
}

/// A deterministic loss rule: (from node, to node, first line) -> drop.
pub type DropFilter = Box<dyn FnMut(usize, usize, &str) -> bool>;

/// A transaction user driven by [`Sim::run_tu`]: it takes every endpoint event and has
/// timers of its own (a dialog layer, a registration refresh...), all in virtual time.
pub trait Tu {
    /// One event of node `node`, which came out at virtual time `at`.
    fn on_event(&mut self, sim: &mut Sim, node: usize, at: Duration, event: Event);
    /// The next instant the TU wants [`handle_timeout`](Tu::handle_timeout).
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// Runs the TU's timers due at `sim.now`.
    fn handle_timeout(&mut self, sim: &mut Sim);
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
            drop_if: None,
        }
    }

    pub fn add_node(&mut self, addr: &str, transport: Transport, config: EndpointConfig) -> usize {
        let addr: SocketAddr = addr.parse().unwrap();
        let seed = self.rng.next_u64();
        let mut ep = Endpoint::new(config, Box::new(XorShiftRng::seed_from_u64(seed)));
        ep.add_local_address(transport, addr);
        self.nodes.push(Node {
            ep,
            addr,
            transport,
            events: Vec::new(),
            sent: Vec::new(),
            wire: Vec::new(),
            online: true,
        });
        self.nodes.len() - 1
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn target(&self, node: usize) -> Target {
        Target::new(self.nodes[node].transport, self.nodes[node].addr)
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Moves every transmit of every node onto the network, and events into `events`.
    pub fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].ep.poll_transmit() {
                let elapsed = self.now - self.start;
                let first = String::from_utf8_lossy(&t.payload)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                self.nodes[i].sent.push((elapsed, first.clone()));
                let dest = self.nodes.iter().position(|n| n.addr == t.target.addr);
                self.nodes[i].wire.push((elapsed, dest, t.payload.clone()));
                let Some(to) = dest else {
                    self.trace
                        .push(format!("{elapsed:?} {i} -> nowhere {first}"));
                    continue;
                };
                let reliable = t.target.transport.is_reliable();
                let filtered = match &mut self.drop_if {
                    Some(f) => f(i, to, &first),
                    None => false,
                };
                let copies = if !self.nodes[i].online || filtered {
                    0
                } else if reliable {
                    1
                } else if self.unit() < self.net.loss {
                    0
                } else if self.unit() < self.net.duplicate {
                    2
                } else {
                    1
                };
                if copies == 0 {
                    self.trace
                        .push(format!("{elapsed:?} {i}->{to} lost {first}"));
                }
                for _ in 0..copies {
                    let jitter = if self.net.jitter.is_zero() || reliable {
                        Duration::ZERO
                    } else {
                        self.net.jitter.mul_f64(self.unit())
                    };
                    let at = self.now + self.net.delay + jitter;
                    self.seq += 1;
                    self.in_flight
                        .push(Reverse((at, self.seq, i, to, t.payload.clone())));
                }
            }
            while let Some(e) = self.nodes[i].ep.poll_event() {
                let elapsed = self.now - self.start;
                self.nodes[i].events.push((elapsed, e));
            }
        }
    }

    /// The next instant something happens.
    pub fn next_time(&mut self) -> Option<Instant> {
        let mut next = self.in_flight.peek().map(|Reverse((t, ..))| *t);
        for n in &mut self.nodes {
            if let Some(t) = n.ep.poll_timeout() {
                next = Some(next.map_or(t, |x: Instant| x.min(t)));
            }
        }
        next
    }

    /// Runs one instant: deliveries and timers due at the next time. False when idle.
    pub fn step(&mut self) -> bool {
        self.drain();
        let Some(t) = self.next_time() else {
            return false;
        };
        self.step_to(t);
        true
    }

    /// Moves the clock to `t` (never back) and runs the deliveries and timers due then.
    pub fn step_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        while let Some(Reverse((at, ..))) = self.in_flight.peek() {
            if *at > self.now {
                break;
            }
            let Reverse((_, _, from, to, payload)) = self.in_flight.pop().unwrap();
            let elapsed = self.now - self.start;
            self.trace.push(format!(
                "{elapsed:?} {from}->{to} {}",
                String::from_utf8_lossy(&payload)
                    .lines()
                    .next()
                    .unwrap_or("")
            ));
            let received = Received {
                transport: self.nodes[to].transport,
                source: self.nodes[from].addr,
                local: self.nodes[to].addr,
                connection: None,
                payload,
                arrived: None,
            };
            self.nodes[to].ep.handle_received(self.now, received);
        }
        for n in &mut self.nodes {
            n.ep.handle_timeout(self.now);
        }
        self.drain();
    }

    /// Puts raw bytes on the wire from node `from` to node `to` (the network's delay applies,
    /// not its loss): a test's hand-made message, or a copy of one that a proxy would fork.
    pub fn inject(&mut self, from: usize, to: usize, payload: Bytes) {
        let at = self.now + self.net.delay;
        self.seq += 1;
        self.in_flight
            .push(Reverse((at, self.seq, from, to, payload)));
    }

    /// Runs with a [`Tu`] until `d`: endpoint events go to the TU as they come out, and the
    /// clock also stops at the TU's own deadlines.
    pub fn run_tu<T: Tu + ?Sized>(&mut self, d: Duration, tu: &mut T) {
        let end = self.start + d;
        loop {
            self.drain();
            let mut busy = false;
            for i in 0..self.nodes.len() {
                let events = std::mem::take(&mut self.nodes[i].events);
                for (t, e) in events {
                    busy = true;
                    tu.on_event(self, i, t, e);
                }
            }
            if tu.poll_timeout().is_some_and(|t| t <= self.now) {
                busy = true;
                tu.handle_timeout(self);
            }
            self.drain();
            if busy || self.nodes.iter().any(|n| !n.events.is_empty()) {
                continue;
            }
            let next = match (self.next_time(), tu.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match next {
                Some(t) if t <= end => self.step_to(t),
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    /// Runs until virtual time `d` after the start (or until idle).
    pub fn run_until(&mut self, d: Duration) {
        let end = self.start + d;
        loop {
            self.drain();
            match self.next_time() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    /// Runs with a transaction user callback for each event, until `d`.
    pub fn run_with<F>(&mut self, d: Duration, mut tu: F)
    where
        F: FnMut(&mut Sim, usize, Duration, Event),
    {
        let end = self.start + d;
        loop {
            self.drain();
            for i in 0..self.nodes.len() {
                let events = std::mem::take(&mut self.nodes[i].events);
                for (t, e) in events {
                    tu(self, i, t, e);
                }
            }
            self.drain();
            match self.next_time() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    let pending = self.nodes.iter().any(|n| !n.events.is_empty());
                    if !pending {
                        break;
                    }
                }
            }
        }
        self.now = self.now.max(end);
    }
}

/// A request from node `from` to node `to`.
pub fn request(
    sim: &Sim,
    method: Method,
    from: usize,
    to: usize,
    call_id: &str,
    cseq: u32,
) -> Message {
    let to_addr = sim.nodes[to].addr;
    let uri_text = format!("sip:bob@{to_addr}");
    let uri = Uri::parse(&uri_text).unwrap();
    RequestBuilder::new(method, &uri)
        .header(
            HeaderName::From,
            &format!("<sip:alice@{}>;tag=a{call_id}", sim.nodes[from].addr),
        )
        .header(HeaderName::To, &format!("<sip:bob@{to_addr}>"))
        .call_id(call_id)
        .cseq(cseq)
        .header(
            HeaderName::Contact,
            &format!("<sip:alice@{}>", sim.nodes[from].addr),
        )
        .build()
}

/// Times (in seconds) at which a node sent messages whose first line starts with `prefix`.
pub fn send_times(node: &Node, prefix: &str) -> Vec<f64> {
    node.sent
        .iter()
        .filter(|(_, l)| l.starts_with(prefix))
        .map(|(t, _)| t.as_secs_f64())
        .collect()
}
