//! A seeded virtual-time network for ICE agents: latency with jitter, loss, NATs with an
//! endpoint-independent mapping and address-and-port-dependent filtering (RFC 4787), and a
//! STUN server on the public side.
#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;
use tincan_media::ice::stun::{self, Builder, Class, Message};
use tincan_media::ice::{Agent, AgentConfig, Credentials, Event, RemoteIce, Role};

/// A NAT: hosts on `inside` (an IPv4 /24 prefix, first three octets) share `public`.
pub struct Nat {
    pub inside: [u8; 3],
    pub public: IpAddr,
    mappings: HashMap<SocketAddr, u16>,
    reverse: HashMap<u16, SocketAddr>,
    permissions: HashSet<(SocketAddr, SocketAddr)>,
    next_port: u16,
}

impl Nat {
    pub fn new(inside: [u8; 3], public: &str) -> Self {
        Nat {
            inside,
            public: public.parse().unwrap(),
            mappings: HashMap::new(),
            reverse: HashMap::new(),
            permissions: HashSet::new(),
            next_port: 40000,
        }
    }

    fn contains(&self, address: SocketAddr) -> bool {
        matches!(address.ip(), IpAddr::V4(ip) if ip.octets()[..3] == self.inside)
    }

    /// The public address of `private` (made on first use: endpoint-independent mapping).
    pub fn map(&mut self, private: SocketAddr) -> SocketAddr {
        let port = *self.mappings.entry(private).or_insert_with(|| {
            self.next_port += 7;
            self.reverse.insert(self.next_port, private);
            self.next_port
        });
        SocketAddr::new(self.public, port)
    }
}

/// One endpoint: an agent and what it said.
pub struct Peer {
    pub agent: Agent,
    pub events: Vec<(Instant, Event)>,
    /// A silent peer is no longer driven and receives nothing (it went away).
    pub silent: bool,
}

impl Peer {
    pub fn selected_event(&self) -> Option<(Instant, SocketAddr, SocketAddr)> {
        self.events.iter().find_map(|(at, e)| match e {
            Event::Selected { local, remote } => Some((*at, *local, *remote)),
            _ => None,
        })
    }

    pub fn has(&self, wanted: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(|(_, e)| wanted(e))
    }

    pub fn remote_description(&self) -> RemoteIce {
        RemoteIce {
            credentials: self.agent.credentials().clone(),
            lite: false,
            candidates: self.agent.local_candidates(),
        }
    }
}

struct Datagram {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    payload: Vec<u8>,
}

/// Who sent what to whom, as delivered (after NAT translation).
pub struct Delivery {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    rng: XorShiftRng,
    /// Probability of losing each datagram.
    pub loss: f64,
    pub latency: Duration,
    pub nats: Vec<Nat>,
    pub stun_server: SocketAddr,
    pub peers: Vec<Peer>,
    /// Extra endpoints handled by the test (an ICE-lite responder): address -> inbox.
    pub inboxes: HashMap<SocketAddr, Vec<Delivery>>,
    pub delivered: Vec<Delivery>,
    queue: Vec<Datagram>,
    order: u64,
}

impl Sim {
    pub fn new(seed: u64, loss: f64) -> Self {
        let now = Instant::now();
        Sim {
            now,
            start: now,
            rng: XorShiftRng::seed_from_u64(seed),
            loss,
            latency: Duration::from_millis(20),
            nats: Vec::new(),
            stun_server: "203.0.113.100:3478".parse().unwrap(),
            peers: Vec::new(),
            inboxes: HashMap::new(),
            delivered: Vec::new(),
            queue: Vec::new(),
            order: 0,
        }
    }

    /// Adds an agent with one host candidate `host`.
    pub fn add_peer(&mut self, host: &str, role: Role, tie_breaker: u64, seed: u64) -> usize {
        let mut rng = XorShiftRng::seed_from_u64(seed ^ 0x5EED);
        let mut agent = Agent::new(AgentConfig {
            role,
            credentials: Credentials::random(&mut rng),
            tie_breaker,
            seed,
        });
        agent.add_host(host.parse().unwrap());
        self.peers.push(Peer {
            agent,
            events: Vec::new(),
            silent: false,
        });
        self.peers.len() - 1
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Sends a datagram from `from` (a host address) into the network.
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, payload: Vec<u8>) {
        if self.rng.next_u32() as f64 / f64::from(u32::MAX) < self.loss {
            return;
        }
        let jitter = Duration::from_micros(u64::from(self.rng.next_u32() % 10_000));
        let mut source = from;
        let same_inside = self.nats.iter().any(|n| n.contains(from) && n.contains(to));
        if !same_inside && let Some(nat) = self.nats.iter_mut().find(|n| n.contains(from)) {
            source = nat.map(from);
            nat.permissions.insert((from, to));
        }
        self.order += 1;
        self.queue.push(Datagram {
            at: self.now + self.latency + jitter,
            order: self.order,
            from: source,
            to,
            payload,
        });
    }

    /// Where a datagram to `to` from `from` ends up (after the destination NAT), if anywhere.
    fn route(&mut self, from: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        if let Some(nat) = self.nats.iter().find(|n| n.public == to.ip()) {
            let private = *nat.reverse.get(&to.port())?;
            return nat
                .permissions
                .contains(&(private, from))
                .then_some(private);
        }
        if let Some(nat) = self.nats.iter().find(|n| n.contains(to)) {
            // A private address: reachable only from inside the same NAT.
            return nat.contains(from).then_some(to);
        }
        Some(to)
    }

    fn deliver(&mut self, datagram: Datagram) {
        let Some(to) = self.route(datagram.from, datagram.to) else {
            return;
        };
        if to == self.stun_server {
            if let Ok(request) = Message::parse(&datagram.payload)
                && request.class == Some(Class::Request)
            {
                let response = Builder::new(Class::Success, stun::BINDING, request.transaction)
                    .xor_mapped_address(datagram.from)
                    .finish(None);
                self.send(self.stun_server, datagram.from, response);
            }
            return;
        }
        let now = self.now;
        self.delivered.push(Delivery {
            at: now,
            from: datagram.from,
            to,
            payload: datagram.payload.clone(),
        });
        if let Some(inbox) = self.inboxes.get_mut(&to) {
            inbox.push(Delivery {
                at: now,
                from: datagram.from,
                to,
                payload: datagram.payload,
            });
            return;
        }
        for peer in &mut self.peers {
            if !peer.silent
                && peer
                    .agent
                    .local_candidates()
                    .iter()
                    .any(|c| c.address == to)
            {
                peer.agent
                    .handle_packet(now, to, datagram.from, &datagram.payload);
            }
        }
    }

    fn drain(&mut self) {
        for i in 0..self.peers.len() {
            while let Some(t) = self.peers[i].agent.poll_transmit() {
                self.send(t.source, t.destination, t.payload);
            }
            while let Some(e) = self.peers[i].agent.poll_event() {
                let now = self.now;
                self.peers[i].events.push((now, e));
            }
        }
    }

    /// Runs until `done` holds (true) or `limit` of virtual time has passed (false).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = self.now + limit;
        for _ in 0..1_000_000 {
            self.drain();
            if done(self) {
                return true;
            }
            let next_timer = self
                .peers
                .iter()
                .filter(|p| !p.silent)
                .filter_map(|p| p.agent.poll_timeout())
                .min();
            let next_packet = self.queue.iter().map(|d| d.at).min();
            let Some(next) = next_timer.into_iter().chain(next_packet).min() else {
                return false;
            };
            if next > deadline {
                self.now = deadline;
                return false;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let mut due: Vec<Datagram> = Vec::new();
            let mut i = 0;
            while i < self.queue.len() {
                if self.queue[i].at <= now {
                    due.push(self.queue.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            due.sort_by_key(|d| (d.at, d.order));
            for datagram in due {
                self.deliver(datagram);
            }
            for peer in &mut self.peers {
                if !peer.silent && peer.agent.poll_timeout().is_some_and(|t| t <= now) {
                    peer.agent.handle_timeout(now);
                }
            }
        }
        panic!("simulation did not settle in a million steps");
    }

    /// Gathers srflx candidates for every peer from the STUN server, then exchanges the
    /// descriptions (as an offer/answer would) and starts the checks.
    pub fn gather_and_exchange(&mut self) {
        let now = self.now;
        let server = self.stun_server;
        for peer in &mut self.peers {
            let host = peer.agent.local_candidates()[0].address;
            peer.agent.gather_server_reflexive(host, server, now);
        }
        let all_gathered = self.run_until(Duration::from_secs(60), |sim| {
            sim.peers
                .iter()
                .all(|p| p.has(|e| *e == Event::GatheringComplete))
        });
        assert!(all_gathered, "gathering did not complete");
        self.exchange();
    }

    /// Gives each of the two peers the other's description.
    pub fn exchange(&mut self) {
        let (a, b) = (
            self.peers[0].remote_description(),
            self.peers[1].remote_description(),
        );
        let now = self.now;
        self.peers[0].agent.set_remote(b, now);
        self.peers[1].agent.set_remote(a, now);
    }

    pub fn both_selected(&self) -> bool {
        self.peers.iter().all(|p| p.selected_event().is_some())
    }
}
