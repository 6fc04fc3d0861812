//! ICE (RFC 8445) for one audio stream: a sans-IO agent that gathers host and
//! server-reflexive candidates, pairs them with the peer's, runs connectivity checks with
//! short-term credentials, nominates a pair (regular nomination) and keeps consent fresh
//! (RFC 7675). The SDP side (`a=ice-ufrag`, `a=ice-pwd`, `a=candidate`, `a=ice-lite`,
//! RFC 8839) is [`crate::sdp::ice`].
//!
//! The agent owns no socket and reads no clock: datagrams and `now` go in
//! ([`Agent::handle_packet`], [`Agent::handle_timeout`]), STUN datagrams, events and the next
//! deadline come out ([`Agent::poll_transmit`], [`Agent::poll_event`],
//! [`Agent::poll_timeout`]). Randomness (transaction ids, consent jitter) comes from the seed
//! in [`AgentConfig`].
//!
//! Scope: UDP, one component (RTP with rtcp-mux), host and server-reflexive candidates, no
//! TURN, no trickle, no candidate freezing (every pair starts Waiting). A full agent; the
//! peer may be full or ICE-lite. A peer without ICE attributes does not get an agent at all
//! ([`crate::sdp::ice::IceSupport::None`]).
//!
//! ```
//! use std::time::Instant;
//! use tincan_media::ice::{Agent, AgentConfig, Credentials, Event, RemoteIce, Role};
//!
//! let now = Instant::now();
//! let mut a = Agent::new(AgentConfig {
//!     role: Role::Controlling,
//!     credentials: Credentials::new("AAAA", "aaaaaaaaaaaaaaaaaaaaaa").unwrap(),
//!     tie_breaker: 2,
//!     seed: 1,
//! });
//! let mut b = Agent::new(AgentConfig {
//!     role: Role::Controlled,
//!     credentials: Credentials::new("BBBB", "bbbbbbbbbbbbbbbbbbbbbb").unwrap(),
//!     tie_breaker: 1,
//!     seed: 2,
//! });
//! let (a_addr, b_addr) = ("127.0.0.1:5000".parse().unwrap(), "127.0.0.1:6000".parse().unwrap());
//! a.add_host(a_addr);
//! b.add_host(b_addr);
//! let describe = |agent: &Agent| RemoteIce {
//!     credentials: agent.credentials().clone(),
//!     lite: false,
//!     candidates: agent.local_candidates(),
//! };
//! let (for_b, for_a) = (describe(&a), describe(&b));
//! a.set_remote(for_a, now);
//! b.set_remote(for_b, now);
//! // A perfect network with no delay: hand each datagram to the other agent.
//! for _ in 0..10 {
//!     a.handle_timeout(now);
//!     b.handle_timeout(now);
//!     while let Some(t) = a.poll_transmit() {
//!         b.handle_packet(now, t.destination, t.source, &t.payload);
//!     }
//!     while let Some(t) = b.poll_transmit() {
//!         a.handle_packet(now, t.destination, t.source, &t.payload);
//!     }
//! }
//! assert_eq!(a.selected(), Some((a_addr, b_addr)));
//! assert_eq!(b.selected(), Some((b_addr, a_addr)));
//! ```

mod agent;
pub mod candidate;
pub mod stun;

pub use agent::{
    Agent, AgentConfig, CONSENT_INTERVAL, CONSENT_TIMEOUT, Event, MAX_SENDS, NOMINATION_DELAY, RTO,
    State, TA, Transmit,
};
pub use candidate::{Candidate, CandidateError, CandidateKind};

use rand_core::Rng;

/// The agent's role, RFC 8445 §6.1.1: the controlling agent nominates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nominates the pair (the offerer, or the full agent facing an ICE-lite peer).
    Controlling,
    /// Follows the nomination (the answerer).
    Controlled,
}

/// Short-term credentials, `a=ice-ufrag` and `a=ice-pwd` (RFC 8839 §5.4: ice-chars, the
/// fragment 4-256 of them, the password 22-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username fragment.
    pub ufrag: String,
    /// The password.
    pub pwd: String,
}

impl Credentials {
    /// Credentials from SDP values; `None` when they break RFC 8839 §5.4's grammar.
    pub fn new(ufrag: &str, pwd: &str) -> Option<Self> {
        let valid = |s: &str, min: usize| {
            (min..=256).contains(&s.len()) && s.bytes().all(candidate::is_ice_char)
        };
        (valid(ufrag, 4) && valid(pwd, 22)).then(|| Credentials {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }

    /// Fresh random credentials: an 8-character fragment and a 24-character password
    /// (RFC 8445 §5.3: at least 24 bits and 128 bits of randomness).
    pub fn random(rng: &mut impl Rng) -> Self {
        const ICE_CHARS: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut draw = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(ICE_CHARS[(rng.next_u32() % 64) as usize]))
                .collect()
        };
        let ufrag = draw(8);
        let pwd = draw(24);
        Credentials { ufrag, pwd }
    }
}

/// What the agent needs of the peer's description (from [`crate::sdp::ice::read_ice`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIce {
    /// The peer's `a=ice-ufrag`/`a=ice-pwd`.
    pub credentials: Credentials,
    /// `a=ice-lite`: the peer only answers checks (RFC 8445 §2.5).
    pub lite: bool,
    /// The peer's usable candidates.
    pub candidates: Vec<Candidate>,
}
