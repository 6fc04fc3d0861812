//! The ICE agent: gathering, pairing, connectivity checks, nomination and consent freshness
//! for one component (RTP with rtcp-mux), as a sans-IO state machine.
//!
//! ```text
//!   gather (host + srflx)     set_remote            checks every Ta            nomination
//!  ----------------------> Gathering --------> Checking ------------------> Completed
//!                                                 |  all pairs failed            | no consent
//!                                                 v                              v  for 30 s
//!                                               Failed <-------------------- ConsentLost
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

use super::candidate::{COMPONENT_RTP, Candidate, CandidateKind, candidate_priority};
use super::stun::{self, BINDING, Builder, Class, Message};
use super::{Credentials, RemoteIce, Role};

/// Ta, RFC 8445 §14.2: the pacing of new checks (one every 50 ms).
pub const TA: Duration = Duration::from_millis(50);
/// The first retransmission timeout of a check or a gathering request, RFC 8445 §14.3
/// (at least 500 ms) and RFC 8489 §6.2.1.
pub const RTO: Duration = Duration::from_millis(500);
/// Rc, RFC 8489 §6.2.1: a request is sent at most 7 times (0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s).
pub const MAX_SENDS: u32 = 7;
/// Rm, RFC 8489 §6.2.1: after the last send, wait Rm × RTO (8 s) before failing (39.5 s in all).
pub const LAST_WAIT_FACTOR: u32 = 16;
/// How long the controlling agent waits after the first valid pair for better pairs to succeed
/// before it nominates the best valid one (regular nomination, RFC 8445 §8.1.1 leaves the
/// stopping criterion to the agent).
pub const NOMINATION_DELAY: Duration = Duration::from_secs(1);
/// The mean interval of consent checks on the selected pair, RFC 7675 §5.1 (5 s, randomized
/// to 0.8-1.2 of it).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
/// Consent is lost after this long without an answered check, RFC 7675 §5.1.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The local preference of host candidates (one interface, RFC 8445 §5.1.2.1).
const LOCAL_PREFERENCE: u16 = 65535;

/// What the agent has to say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A server-reflexive candidate was learnt (RFC 8445 §5.1.1.2); give it to the peer.
    CandidateGathered(Candidate),
    /// No gathering request is pending any more: the local candidates are final.
    GatheringComplete,
    /// The role changed: a role conflict (RFC 8445 §7.3.1.1, §7.2.5.1) or an ICE-lite peer
    /// (RFC 8445 §6.1.1: the full agent controls).
    RoleChanged(Role),
    /// A pair was nominated and selected (RFC 8445 §8.1.1, §8.2): send media from `local` (the
    /// base, i.e. the socket) to `remote`.
    Selected {
        /// The local base address (the socket to send from).
        local: SocketAddr,
        /// The remote address to send to.
        remote: SocketAddr,
    },
    /// Every pair failed (RFC 8445 §8.1.2: the check list is Failed).
    Failed,
    /// No check on the selected pair was answered for [`CONSENT_TIMEOUT`] (RFC 7675 §5.1):
    /// stop sending media to `remote`.
    ConsentLost {
        /// The remote address whose consent expired.
        remote: SocketAddr,
    },
}

/// A datagram the caller must send from the socket bound to `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local base address (which socket).
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The STUN message.
    pub payload: Vec<u8>,
}

/// How the agent starts.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The initial role: the offerer controls, the answerer is controlled (RFC 8445 §6.1.1).
    pub role: Role,
    /// Our `ice-ufrag`/`ice-pwd`.
    pub credentials: Credentials,
    /// The role-conflict tie-breaker (RFC 8445 §7.1.1: a random 64-bit number).
    pub tie_breaker: u64,
    /// Seed of the agent's generator (transaction ids, consent jitter).
    pub seed: u64,
}

/// Where the agent is, for callers and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the remote description.
    Gathering,
    /// Checks are running.
    Checking,
    /// A pair is selected.
    Completed,
    /// No pair works (or consent was lost).
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug)]
struct Pair {
    /// Index into `Agent::hosts`.
    local: usize,
    /// Index into `Agent::remote_candidates`.
    remote: usize,
    state: PairState,
    /// We sent a check with USE-CANDIDATE that succeeded, or the peer nominated it.
    nominated: bool,
    /// The peer sent USE-CANDIDATE on it (RFC 8445 §7.3.1.5).
    peer_nominated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A gathering request from this host base to a STUN server.
    Gather { base: usize, server: SocketAddr },
    /// A connectivity check on a pair (with USE-CANDIDATE when nominating).
    Check { pair: usize, nominate: bool },
    /// A consent check on the selected pair (RFC 7675), sent once.
    Consent { pair: usize },
}

#[derive(Debug)]
struct Transaction {
    id: [u8; 12],
    purpose: Purpose,
    payload: Vec<u8>,
    source: SocketAddr,
    destination: SocketAddr,
    sends: u32,
    rto: Duration,
    next: Instant,
    /// The role the request was sent in (a 487 answer switches away from it).
    role: Role,
}

/// The ICE agent for one media stream, one component. See the module documentation.
#[derive(Debug)]
pub struct Agent {
    role: Role,
    credentials: Credentials,
    tie_breaker: u64,
    rng: XorShiftRng,
    state: State,
    hosts: Vec<Candidate>,
    reflexive: Vec<Candidate>,
    remote: Option<RemoteIce>,
    remote_candidates: Vec<Candidate>,
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    transactions: Vec<Transaction>,
    gathering_reported: bool,
    next_check: Option<Instant>,
    first_valid: Option<Instant>,
    nominating: Option<usize>,
    selected: Option<usize>,
    last_consent: Option<Instant>,
    next_consent: Option<Instant>,
    /// Checks that arrived before the remote description: (local base, from, priority,
    /// USE-CANDIDATE).
    early_checks: Vec<(usize, SocketAddr, u32, bool)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Agent {
    /// An agent with no candidates yet.
    pub fn new(config: AgentConfig) -> Self {
        Agent {
            role: config.role,
            credentials: config.credentials,
            tie_breaker: config.tie_breaker,
            rng: XorShiftRng::seed_from_u64(config.seed),
            state: State::Gathering,
            hosts: Vec::new(),
            reflexive: Vec::new(),
            remote: None,
            remote_candidates: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            transactions: Vec::new(),
            gathering_reported: false,
            next_check: None,
            first_valid: None,
            nominating: None,
            selected: None,
            last_consent: None,
            next_consent: None,
            early_checks: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our role now.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our credentials (for `a=ice-ufrag`/`a=ice-pwd`).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Where the agent is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Adds a host candidate: a socket bound to `address` (a base).
    pub fn add_host(&mut self, address: SocketAddr) {
        if self.hosts.iter().all(|c| c.address != address) {
            // Later interfaces get a lower local preference (RFC 8445 §5.1.2.1).
            let preference = LOCAL_PREFERENCE.saturating_sub(self.hosts.len() as u16);
            self.hosts.push(Candidate::host(address, preference));
        }
    }

    /// Asks the STUN server `server` for the server-reflexive address of the host `base`
    /// (RFC 8445 §5.1.1.2): a Binding request goes out through [`Agent::poll_transmit`].
    /// An unknown base is ignored.
    pub fn gather_server_reflexive(&mut self, base: SocketAddr, server: SocketAddr, now: Instant) {
        let Some(base) = self.hosts.iter().position(|c| c.address == base) else {
            return;
        };
        if server.is_ipv4() != self.hosts[base].address.is_ipv4() {
            return;
        }
        let id = self.transaction_id();
        let payload = Builder::new(Class::Request, BINDING, id).finish(None);
        self.start(Purpose::Gather { base, server }, id, payload, server, now);
    }

    /// Host and server-reflexive candidates gathered so far (for `a=candidate`).
    pub fn local_candidates(&self) -> Vec<Candidate> {
        self.hosts.iter().chain(&self.reflexive).cloned().collect()
    }

    /// The default candidate (RFC 8839 §4.2.1.2: the one most likely to work, for `c=`/`m=`):
    /// the first server-reflexive candidate, else the first host.
    pub fn default_candidate(&self) -> Option<&Candidate> {
        self.reflexive.first().or(self.hosts.first())
    }

    /// The remote description's ICE part: credentials, ICE-lite, candidates. Pairs form
    /// and checks start. With an ICE-lite peer we control (RFC 8445 §6.1.1). Candidates of
    /// other components are ignored.
    pub fn set_remote(&mut self, remote: RemoteIce, now: Instant) {
        if remote.lite && self.role == Role::Controlled {
            self.set_role(Role::Controlling);
        }
        let candidates = remote.candidates.clone();
        self.remote = Some(remote);
        for candidate in candidates {
            self.add_remote_candidate(candidate);
        }
        for (local, from, priority, nominate) in std::mem::take(&mut self.early_checks) {
            self.on_check(local, from, priority, nominate, now);
        }
        if self.state == State::Gathering {
            self.state = State::Checking;
        }
        self.next_check.get_or_insert(now);
    }

    /// The selected pair `(local base, remote)` while consent holds.
    pub fn selected(&self) -> Option<(SocketAddr, SocketAddr)> {
        let pair = &self.pairs[self.selected?];
        (self.state == State::Completed).then(|| {
            (
                self.hosts[pair.local].address,
                self.remote_candidates[pair.remote].address,
            )
        })
    }

    /// A datagram arrived on the socket bound to `local` from `from`. Returns `false` when it
    /// is not STUN (RTP/RTCP: the caller's business); STUN that is malformed, not
    /// authenticated or not ours is consumed and dropped. Never panics.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) -> bool {
        if !stun::is_stun(data) {
            return false;
        }
        let Ok(message) = Message::parse(data) else {
            return true;
        };
        if message.method != BINDING {
            return true;
        }
        let Some(base) = self.hosts.iter().position(|c| c.address == local) else {
            return true;
        };
        match message.class {
            Some(Class::Request) => self.on_request(now, base, from, &message, data),
            Some(Class::Success) | Some(Class::Error) => {
                self.on_response(now, from, &message, data)
            }
            _ => {}
        }
        self.drive(now);
        true
    }

    /// Time passed: retransmissions, the next check, nomination, consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.transactions.len() {
            let tx = &mut self.transactions[i];
            if tx.next > now {
                i += 1;
                continue;
            }
            let expired = match tx.purpose {
                Purpose::Consent { .. } => true,
                _ => tx.sends >= MAX_SENDS,
            };
            if expired {
                let tx = self.transactions.swap_remove(i);
                self.on_timeout(tx.purpose);
                continue;
            }
            tx.sends += 1;
            tx.rto *= 2;
            tx.next = now
                + if tx.sends == MAX_SENDS {
                    RTO * LAST_WAIT_FACTOR
                } else {
                    tx.rto
                };
            self.transmits.push_back(Transmit {
                source: tx.source,
                destination: tx.destination,
                payload: tx.payload.clone(),
            });
            i += 1;
        }
        if self.next_check.is_some_and(|at| at <= now) {
            self.next_check = None;
            if matches!(self.state, State::Checking) && self.send_next_check(now) {
                self.next_check = Some(now + TA);
            }
        }
        if self.next_consent.is_some_and(|at| at <= now) {
            self.send_consent(now);
        }
        self.drive(now);
    }

    /// When [`Agent::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let consent_expiry = self.last_consent.map(|at| at + CONSENT_TIMEOUT);
        let nomination = match (self.role, self.first_valid, self.nominating, self.selected) {
            (Role::Controlling, Some(at), None, None) => Some(at + NOMINATION_DELAY),
            _ => None,
        };
        self.transactions
            .iter()
            .map(|tx| tx.next)
            .chain(self.next_check)
            .chain(self.next_consent)
            .chain(consent_expiry)
            .chain(nomination)
            .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn transaction_id(&mut self) -> [u8; 12] {
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.rng.next_u32().to_be_bytes());
        id
    }

    fn set_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.events.push_back(Event::RoleChanged(role));
        }
    }

    fn start(
        &mut self,
        purpose: Purpose,
        id: [u8; 12],
        payload: Vec<u8>,
        destination: SocketAddr,
        now: Instant,
    ) {
        let source = match purpose {
            Purpose::Gather { base, .. } => self.hosts[base].address,
            Purpose::Check { pair, .. } | Purpose::Consent { pair } => {
                self.hosts[self.pairs[pair].local].address
            }
        };
        self.transmits.push_back(Transmit {
            source,
            destination,
            payload: payload.clone(),
        });
        let next = match purpose {
            Purpose::Consent { .. } => now + CONSENT_TIMEOUT,
            _ => now + RTO,
        };
        self.transactions.push(Transaction {
            id,
            purpose,
            payload,
            source,
            destination,
            sends: 1,
            rto: RTO,
            next,
            role: self.role,
        });
    }

    fn add_remote_candidate(&mut self, candidate: Candidate) -> Option<usize> {
        if candidate.component != COMPONENT_RTP {
            return None;
        }
        if let Some(i) = self
            .remote_candidates
            .iter()
            .position(|c| c.address == candidate.address)
        {
            return Some(i);
        }
        self.remote_candidates.push(candidate);
        let remote = self.remote_candidates.len() - 1;
        let address = self.remote_candidates[remote].address;
        for local in 0..self.hosts.len() {
            if self.hosts[local].address.is_ipv4() == address.is_ipv4() {
                self.pairs.push(Pair {
                    local,
                    remote,
                    state: PairState::Waiting,
                    nominated: false,
                    peer_nominated: false,
                });
            }
        }
        Some(remote)
    }

    /// RFC 8445 §6.1.2.3: `2^32 * min(G, D) + 2 * max(G, D) + (G > D ? 1 : 0)`, G the
    /// controlling agent's candidate priority, D the controlled one's.
    fn pair_priority(&self, pair: &Pair) -> u64 {
        let local = u64::from(self.hosts[pair.local].priority);
        let remote = u64::from(self.remote_candidates[pair.remote].priority);
        let (g, d) = match self.role {
            Role::Controlling => (local, remote),
            Role::Controlled => (remote, local),
        };
        (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
    }

    fn find_pair(&self, local: usize, remote: SocketAddr) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.local == local && self.remote_candidates[p.remote].address == remote)
    }

    /// One check per Ta: a triggered one first (RFC 8445 §6.1.4.2), else the Waiting pair of
    /// highest priority. Returns whether anything was sent.
    fn send_next_check(&mut self, now: Instant) -> bool {
        let pair = match self.triggered.pop_front() {
            Some(pair) => Some(pair),
            None => (0..self.pairs.len())
                .filter(|&i| self.pairs[i].state == PairState::Waiting)
                .max_by_key(|&i| self.pair_priority(&self.pairs[i])),
        };
        let Some(pair) = pair else {
            return false;
        };
        self.send_check(pair, false, now);
        true
    }

    fn check_request(&mut self, pair: usize, nominate: bool) -> Option<([u8; 12], Vec<u8>)> {
        let remote = self.remote.as_ref()?;
        let username = format!("{}:{}", remote.credentials.ufrag, self.credentials.ufrag);
        let key = remote.credentials.pwd.clone().into_bytes();
        // PRIORITY: what a peer-reflexive candidate of ours would be (RFC 8445 §7.1.1).
        let priority = candidate_priority(
            CandidateKind::PeerReflexive,
            LOCAL_PREFERENCE.saturating_sub(self.pairs[pair].local as u16),
            COMPONENT_RTP,
        );
        let id = self.transaction_id();
        let mut builder = Builder::new(Class::Request, BINDING, id)
            .username(&username)
            .priority(priority);
        builder = match self.role {
            Role::Controlling => builder.ice_controlling(self.tie_breaker),
            Role::Controlled => builder.ice_controlled(self.tie_breaker),
        };
        if nominate {
            builder = builder.use_candidate();
        }
        Some((id, builder.finish(Some(&key))))
    }

    fn send_check(&mut self, pair: usize, nominate: bool, now: Instant) {
        let Some((id, payload)) = self.check_request(pair, nominate) else {
            return;
        };
        // A new check on a pair replaces one in flight (RFC 8445 §7.3.1.4).
        self.transactions
            .retain(|tx| !matches!(tx.purpose, Purpose::Check { pair: p, .. } if p == pair));
        if self.pairs[pair].state != PairState::Succeeded {
            self.pairs[pair].state = PairState::InProgress;
        }
        let destination = self.remote_candidates[self.pairs[pair].remote].address;
        self.start(
            Purpose::Check { pair, nominate },
            id,
            payload,
            destination,
            now,
        );
    }

    fn send_consent(&mut self, now: Instant) {
        self.next_consent = None;
        let Some(pair) = self.selected else {
            return;
        };
        if self.state != State::Completed {
            return;
        }
        if let Some((id, payload)) = self.check_request(pair, false) {
            let destination = self.remote_candidates[self.pairs[pair].remote].address;
            self.start(Purpose::Consent { pair }, id, payload, destination, now);
        }
        // RFC 7675 §5.1: randomized to 0.8-1.2 of the interval, against synchronised bursts.
        let factor = 0.8 + 0.4 * (self.rng.next_u32() as f64 / f64::from(u32::MAX));
        self.next_consent = Some(now + CONSENT_INTERVAL.mul_f64(factor));
    }

    fn on_request(
        &mut self,
        now: Instant,
        base: usize,
        from: SocketAddr,
        message: &Message,
        data: &[u8],
    ) {
        // RFC 8445 §7.3 / RFC 8489 §9.1.3: short-term credentials. USERNAME is
        // "our-ufrag:their-ufrag" and MESSAGE-INTEGRITY is keyed with our password.
        let ours = message
            .username
            .as_deref()
            .and_then(|u| u.split_once(':'))
            .is_some_and(|(local, _)| local == self.credentials.ufrag);
        if !ours
            || !message.fingerprint
            || !message.verify_integrity(data, self.credentials.pwd.as_bytes())
        {
            return;
        }
        let source = self.hosts[base].address;
        // RFC 8445 §7.3.1.1: role conflict.
        let conflict = match (self.role, message.ice_controlling, message.ice_controlled) {
            (Role::Controlling, Some(theirs), _) => {
                if self.tie_breaker >= theirs {
                    true
                } else {
                    self.set_role(Role::Controlled);
                    false
                }
            }
            (Role::Controlled, _, Some(theirs)) => {
                if self.tie_breaker >= theirs {
                    self.set_role(Role::Controlling);
                    false
                } else {
                    true
                }
            }
            _ => false,
        };
        let key = self.credentials.pwd.clone().into_bytes();
        if conflict {
            let payload = Builder::new(Class::Error, BINDING, message.transaction)
                .error_code(487, "Role Conflict")
                .finish(Some(&key));
            self.transmits.push_back(Transmit {
                source,
                destination: from,
                payload,
            });
            return;
        }
        let payload = Builder::new(Class::Success, BINDING, message.transaction)
            .xor_mapped_address(from)
            .finish(Some(&key));
        self.transmits.push_back(Transmit {
            source,
            destination: from,
            payload,
        });
        let priority = message.priority.unwrap_or(0);
        let nominate = message.use_candidate && self.role == Role::Controlled;
        if self.remote.is_none() {
            if self.early_checks.len() < 64 {
                self.early_checks.push((base, from, priority, nominate));
            }
            return;
        }
        self.on_check(base, from, priority, nominate, now);
    }

    /// A valid check arrived on (local base, from): a peer-reflexive remote candidate when the
    /// address is new (RFC 8445 §7.3.1.3), then a triggered check (§7.3.1.4) and nomination
    /// (§7.3.1.5).
    fn on_check(
        &mut self,
        base: usize,
        from: SocketAddr,
        priority: u32,
        nominate: bool,
        now: Instant,
    ) {
        if matches!(self.state, State::Failed) {
            return;
        }
        if self.find_pair(base, from).is_none() && priority != 0 {
            let prflx = Candidate {
                foundation: format!("{}", self.remote_candidates.len() + 1000),
                component: COMPONENT_RTP,
                priority,
                address: from,
                kind: CandidateKind::PeerReflexive,
                related: None,
            };
            self.add_remote_candidate(prflx);
        }
        let Some(pair) = self.find_pair(base, from) else {
            return;
        };
        if nominate {
            self.pairs[pair].peer_nominated = true;
        }
        match self.pairs[pair].state {
            PairState::Succeeded => {
                if nominate {
                    self.nominated(pair, now);
                }
            }
            PairState::InProgress => {}
            PairState::Waiting | PairState::Failed => {
                self.pairs[pair].state = PairState::Waiting;
                if !self.triggered.contains(&pair) {
                    self.triggered.push_back(pair);
                }
            }
        }
        if self.state == State::Checking && self.next_check.is_none() {
            // Wake the pacer: the next handle_timeout sends the triggered check.
            self.next_check = Some(now);
        }
    }

    fn on_response(&mut self, now: Instant, from: SocketAddr, message: &Message, data: &[u8]) {
        let Some(i) = self
            .transactions
            .iter()
            .position(|tx| tx.id == message.transaction)
        else {
            return;
        };
        let purpose = self.transactions[i].purpose;
        if let Purpose::Gather { base, server } = purpose {
            if from != server {
                return;
            }
            self.transactions.swap_remove(i);
            if let Some(mapped) = message.mapped_address
                && message.class == Some(Class::Success)
                && mapped != self.hosts[base].address
                && self.reflexive.iter().all(|c| c.address != mapped)
            {
                let candidate =
                    Candidate::server_reflexive(mapped, self.hosts[base].address, LOCAL_PREFERENCE);
                self.reflexive.push(candidate.clone());
                self.events.push_back(Event::CandidateGathered(candidate));
            }
            return;
        }
        // Responses to checks are keyed with the peer's password (RFC 8445 §7.2.5).
        let Some(remote) = &self.remote else {
            return;
        };
        if !message.verify_integrity(data, remote.credentials.pwd.as_bytes()) {
            return;
        }
        let tx = self.transactions.swap_remove(i);
        let pair = match purpose {
            Purpose::Check { pair, .. } | Purpose::Consent { pair } => pair,
            Purpose::Gather { .. } => return,
        };
        // RFC 8445 §7.2.5.2.1: the response must come from where the check went.
        if from != tx.destination {
            self.pair_failed(pair);
            return;
        }
        if message.class == Some(Class::Error) {
            if message.error_code == Some(487) {
                // RFC 8445 §7.2.5.1: switch away from the role the request was sent in and
                // check again.
                self.set_role(match tx.role {
                    Role::Controlling => Role::Controlled,
                    Role::Controlled => Role::Controlling,
                });
                self.pairs[pair].state = PairState::Waiting;
                if !self.triggered.contains(&pair) {
                    self.triggered.push_back(pair);
                }
                if self.next_check.is_none() {
                    self.next_check = Some(now);
                }
            } else if !matches!(purpose, Purpose::Consent { .. }) {
                self.pair_failed(pair);
            }
            return;
        }
        match purpose {
            Purpose::Consent { .. } => self.last_consent = Some(now),
            Purpose::Check { nominate, .. } => {
                self.pairs[pair].state = PairState::Succeeded;
                self.first_valid.get_or_insert(now);
                if self.selected == Some(pair) {
                    self.last_consent = Some(now);
                }
                if nominate || (self.role == Role::Controlled && self.pairs[pair].peer_nominated) {
                    self.nominated(pair, now);
                }
            }
            Purpose::Gather { .. } => {}
        }
    }

    fn on_timeout(&mut self, purpose: Purpose) {
        match purpose {
            Purpose::Gather { .. } => {}
            Purpose::Check { pair, nominate } => {
                if nominate {
                    self.nominating = None;
                }
                self.pair_failed(pair);
            }
            Purpose::Consent { .. } => {}
        }
    }

    fn pair_failed(&mut self, pair: usize) {
        if self.pairs[pair].state != PairState::Succeeded {
            self.pairs[pair].state = PairState::Failed;
        }
        if self.nominating == Some(pair) {
            self.nominating = None;
        }
    }

    fn nominated(&mut self, pair: usize, now: Instant) {
        self.pairs[pair].nominated = true;
        if self.selected.is_some() || self.state == State::Failed {
            return;
        }
        self.selected = Some(pair);
        self.state = State::Completed;
        // Stop the remaining checks (RFC 8445 §8.1.2: the check list is Completed).
        self.transactions
            .retain(|tx| matches!(tx.purpose, Purpose::Gather { .. }));
        self.triggered.clear();
        let (local, remote) = (
            self.hosts[self.pairs[pair].local].address,
            self.remote_candidates[self.pairs[pair].remote].address,
        );
        self.events.push_back(Event::Selected { local, remote });
        // The check that got the pair here was answered: consent holds from now (RFC 7675 §5.1).
        self.last_consent = Some(now);
        self.next_consent = Some(now + CONSENT_INTERVAL);
    }

    /// After each input: gathering done, nomination, failure, consent expiry.
    fn drive(&mut self, now: Instant) {
        if !self.gathering_reported
            && !self
                .transactions
                .iter()
                .any(|tx| matches!(tx.purpose, Purpose::Gather { .. }))
        {
            self.gathering_reported = true;
            self.events.push_back(Event::GatheringComplete);
        }
        if self.state == State::Completed {
            if let (Some(pair), Some(at)) = (self.selected, self.last_consent)
                && now >= at + CONSENT_TIMEOUT
            {
                self.state = State::Failed;
                self.transactions
                    .retain(|tx| matches!(tx.purpose, Purpose::Gather { .. }));
                self.next_consent = None;
                self.last_consent = None;
                let remote = self.remote_candidates[self.pairs[pair].remote].address;
                self.events.push_back(Event::ConsentLost { remote });
            }
            return;
        }
        if self.state != State::Checking {
            return;
        }
        if self.role == Role::Controlling
            && self.nominating.is_none()
            && let Some(first) = self.first_valid
        {
            let best_valid = (0..self.pairs.len())
                .filter(|&i| self.pairs[i].state == PairState::Succeeded)
                .max_by_key(|&i| self.pair_priority(&self.pairs[i]));
            if let Some(best) = best_valid {
                let best_priority = self.pair_priority(&self.pairs[best]);
                let better_pending = self.pairs.iter().any(|p| {
                    matches!(p.state, PairState::Waiting | PairState::InProgress)
                        && self.pair_priority(p) > best_priority
                });
                if !better_pending || now >= first + NOMINATION_DELAY {
                    self.nominating = Some(best);
                    self.send_check(best, true, now);
                }
            }
        }
        let all_failed = !self.pairs.is_empty()
            && self.pairs.iter().all(|p| p.state == PairState::Failed)
            && self.triggered.is_empty();
        if all_failed && self.remote.is_some() {
            self.state = State::Failed;
            self.events.push_back(Event::Failed);
        }
    }
}
