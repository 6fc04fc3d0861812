//! RFC 5626 flows: keep-alives and failure detection, as a sans-IO state machine.
//!
//! A registration made over a connection (TCP, TLS) is only useful while that connection,
//! the "flow", is alive. RFC 5626 §4.4.1 has the user agent send a CRLF CRLF ping on the flow
//! every Flow-Timer seconds (or a recommended interval when the registrar gives none),
//! randomized between 80 % and 100 % of it so that clients do not synchronize, and consider
//! the flow failed when the CRLF pong does not come back within 10 seconds, or when the
//! connection closes. On failure the user agent opens a new flow and registers again at once
//! (§4.5).
//!
//! On UDP flows (§4.4.2) the ping is a STUN Binding request ([`crate::stun`]) sent to the
//! registrar on the same 5-tuple as SIP, retransmitted as RFC 5389 §7.2.1 says (RTO 500 ms,
//! doubling, 7 sends, failure 39.5 s after the first: [`KeepAliveConfig::datagram`]). The
//! flow has failed when no response comes, when the destination is reported unreachable
//! (ICMP), or when the XOR-MAPPED-ADDRESS of a response differs from the previous one: the
//! NAT in between has rebound the flow, and the registrar would send requests to the old
//! address (§4.4.2). Not every registrar answers STUN: a UDP flow whose peer has never
//! answered a Binding request, and whose registrar did not announce outbound support (a
//! `Flow-Timer`, [`FlowKeepAlive::peer_supports_keepalive`]), takes a timed-out transaction
//! as "no STUN here" ([`FlowEvent::StunUnsupported`]) and stops pinging instead of failing
//! the flow every 64 s; the flow is then kept by its REGISTER refreshes.
//!
//! [`FlowKeepAlive`] owns only the timing: the caller sends the ping when told
//! ([`FlowEvent::SendPing`], or [`FlowEvent::SendBinding`] with the transaction id to use),
//! reports pongs, Binding responses and closes, and hears [`FlowEvent::Failed`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_sip::flow::{FlowEvent, FlowFailure, FlowKeepAlive, KeepAliveConfig};
//! use rand_core::SeedableRng;
//! use tincan_sip::rng::XorShiftRng;
//!
//! let mut rng = XorShiftRng::seed_from_u64(7);
//! let start = Instant::now();
//! let mut flow = FlowKeepAlive::new(KeepAliveConfig::stream().with_flow_timer(30), start, &mut rng);
//! let ping_at = flow.poll_timeout().unwrap();
//! assert!(ping_at >= start + Duration::from_secs(24) && ping_at <= start + Duration::from_secs(30));
//! flow.handle_timeout(ping_at, &mut rng);
//! assert_eq!(flow.poll_event(), Some(FlowEvent::SendPing));
//! // No pong within 10 s: the flow has failed.
//! flow.handle_timeout(ping_at + Duration::from_secs(10), &mut rng);
//! assert_eq!(flow.poll_event(), Some(FlowEvent::Failed(FlowFailure::NoPong)));
//! ```
//!
//! A UDP flow, whose NAT binding changes:
//!
//! ```
//! use std::time::Instant;
//! use tincan_sip::flow::{FlowEvent, FlowFailure, FlowKeepAlive, KeepAliveConfig};
//! use rand_core::SeedableRng;
//! use tincan_sip::rng::XorShiftRng;
//!
//! let mut rng = XorShiftRng::seed_from_u64(7);
//! let start = Instant::now();
//! let mut flow = FlowKeepAlive::new(KeepAliveConfig::datagram(), start, &mut rng);
//! let mut ping = |flow: &mut FlowKeepAlive, rng: &mut XorShiftRng| {
//!     let at = flow.poll_timeout().unwrap();
//!     flow.handle_timeout(at, rng);
//!     match flow.poll_event() {
//!         Some(FlowEvent::SendBinding(id)) => (at, id),
//!         other => panic!("{other:?}"),
//!     }
//! };
//! let (at, id) = ping(&mut flow, &mut rng);
//! flow.handle_binding_response(at, id, Some("198.51.100.7:4000".parse().unwrap()), &mut rng);
//! let (at, id) = ping(&mut flow, &mut rng);
//! flow.handle_binding_response(at, id, Some("198.51.100.7:4711".parse().unwrap()), &mut rng);
//! assert!(matches!(
//!     flow.poll_event(),
//!     Some(FlowEvent::Failed(FlowFailure::MappedAddressChanged { .. }))
//! ));
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng;

use crate::stun::TransactionId;

/// The recommended keep-alive interval on connection-oriented transports when the registrar
/// sends no Flow-Timer, RFC 5626 §4.4.1: 120 s.
pub const STREAM_INTERVAL: Duration = Duration::from_secs(120);

/// The recommended keep-alive interval on connectionless transports (STUN over UDP) when the
/// registrar sends no Flow-Timer, RFC 5626 §4.4.1: 24 s.
pub const DATAGRAM_INTERVAL: Duration = Duration::from_secs(24);

/// How long to wait for the pong of a ping before the flow is considered failed,
/// RFC 5626 §4.4.1: 10 s.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// The initial retransmission timeout of a STUN request over UDP, RFC 5389 §7.2.1: 500 ms
/// (the interval doubles after each send).
pub const STUN_RTO: Duration = Duration::from_millis(500);

/// How many RTOs a STUN transaction over UDP lasts, RFC 5389 §7.2.1 with Rc = 7 and
/// Rm = 16: sends at 0, 1, 3, 7, 15, 31 and 63 RTO, then the last wait of 16 RTO, so the
/// transaction fails at 79 RTO (39.5 s with the default RTO).
pub const STUN_TIMEOUT_RTOS: u32 = 79;

/// How often a flow is pinged and how long a pong may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// The keep-alive interval; each ping is sent after a random 80-100 % of it
    /// (RFC 5626 §4.4.1).
    pub interval: Duration,
    /// The longest wait for a pong ([`PONG_TIMEOUT`]), or for the response of a STUN Binding
    /// request (its whole transaction, retransmissions included).
    pub pong_timeout: Duration,
    /// `Some(rto)`: a UDP flow, pinged with STUN Binding requests retransmitted after `rto`,
    /// `2 rto`, `4 rto`... while the transaction lasts (RFC 5389 §7.2.1). `None`: a stream
    /// flow, pinged with CRLF CRLF.
    pub stun_rto: Option<Duration>,
}

impl KeepAliveConfig {
    /// The RFC 5626 defaults for a TCP or TLS flow: [`STREAM_INTERVAL`], [`PONG_TIMEOUT`].
    pub fn stream() -> KeepAliveConfig {
        KeepAliveConfig {
            interval: STREAM_INTERVAL,
            pong_timeout: PONG_TIMEOUT,
            stun_rto: None,
        }
    }

    /// The defaults for a UDP flow kept alive with STUN (RFC 5626 §4.4.2):
    /// [`DATAGRAM_INTERVAL`], RFC 5389's [`STUN_RTO`] and a transaction of
    /// [`STUN_TIMEOUT_RTOS`] RTOs (39.5 s).
    pub fn datagram() -> KeepAliveConfig {
        KeepAliveConfig {
            interval: DATAGRAM_INTERVAL,
            pong_timeout: STUN_RTO * STUN_TIMEOUT_RTOS,
            stun_rto: Some(STUN_RTO),
        }
    }

    /// A STUN keep-alive with another initial RTO (RFC 5389 §7.2.1 lets it be configured,
    /// e.g. from the measured round trip); the transaction then lasts
    /// [`STUN_TIMEOUT_RTOS`] times it.
    pub fn with_stun_rto(mut self, rto: Duration) -> KeepAliveConfig {
        let rto = rto.max(Duration::from_millis(1));
        self.stun_rto = Some(rto);
        self.pong_timeout = rto * STUN_TIMEOUT_RTOS;
        self
    }

    /// The interval the registrar asked for in its `Flow-Timer` header (seconds; RFC 5626
    /// §5.4). Zero is ignored.
    pub fn with_flow_timer(mut self, seconds: u32) -> KeepAliveConfig {
        if seconds > 0 {
            self.interval = Duration::from_secs(u64::from(seconds));
        }
        self
    }
}

impl Default for KeepAliveConfig {
    fn default() -> KeepAliveConfig {
        KeepAliveConfig::stream()
    }
}

/// Why a flow failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum FlowFailure {
    /// A ping got no pong within the pong timeout.
    NoPong,
    /// The connection was closed or reset.
    Closed,
    /// A STUN Binding request got no response within its transaction (UDP, RFC 5626 §4.4.2).
    NoBindingResponse,
    /// The mapped address of a STUN Binding response differs from the previous one: a NAT
    /// has rebound the flow (RFC 5626 §4.4.2).
    MappedAddressChanged {
        /// The address the registrar saw before.
        previous: SocketAddr,
        /// The address it sees now.
        current: SocketAddr,
    },
    /// An ICMP error said the flow's destination is unreachable (UDP).
    Unreachable,
}

impl std::fmt::Display for FlowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowFailure::NoPong => f.write_str("no pong to a keep-alive ping"),
            FlowFailure::Closed => f.write_str("connection closed"),
            FlowFailure::NoBindingResponse => {
                f.write_str("no response to a stun keep-alive (binding request)")
            }
            FlowFailure::MappedAddressChanged { previous, current } => write!(
                f,
                "nat binding changed: mapped address {previous} is now {current}"
            ),
            FlowFailure::Unreachable => f.write_str("destination unreachable (icmp)"),
        }
    }
}

/// What the keep-alive machine asks for or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowEvent {
    /// Send a CRLF CRLF ping on the flow now.
    SendPing,
    /// Send a STUN Binding request with this transaction id on the flow now (UDP); a
    /// retransmission repeats the id.
    SendBinding(TransactionId),
    /// The peer has never answered a STUN Binding request on this flow and was not known to
    /// support keep-alives: it does not do STUN. Keep-alives stop (the flow is not failed).
    StunUnsupported,
    /// The flow is dead: open a new one and register again (RFC 5626 §4.5). Reported once.
    Failed(FlowFailure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next ping is due at this time.
    Waiting { ping_at: Instant },
    /// A ping was sent; its pong is due by this time. For STUN: the transaction, and when
    /// and after how long the request is sent again.
    AwaitingPong {
        deadline: Instant,
        stun: Option<Stun>,
    },
    /// Keep-alives stopped: the peer does not answer STUN.
    Stopped,
    /// Failed (reported).
    Failed,
}

/// An outstanding STUN Binding transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stun {
    transaction: TransactionId,
    /// The next retransmission (`None`: no more, only the deadline is left).
    resend_at: Option<Instant>,
    /// The wait after the next retransmission.
    rto: Duration,
}

/// The keep-alive timing of one flow.
#[derive(Debug, Clone)]
pub struct FlowKeepAlive {
    config: KeepAliveConfig,
    state: State,
    events: VecDeque<FlowEvent>,
    /// The mapped address of the last STUN response.
    mapped: Option<SocketAddr>,
    /// The peer answers keep-alives: it answered one, or its registrar said so.
    peer_answers: bool,
}

impl FlowKeepAlive {
    /// A live flow at `now`; its first ping is scheduled at a random 80-100 % of the interval.
    pub fn new(config: KeepAliveConfig, now: Instant, rng: &mut dyn Rng) -> FlowKeepAlive {
        FlowKeepAlive {
            state: State::Waiting {
                ping_at: now + jittered(config.interval, rng),
            },
            config,
            events: VecDeque::new(),
            mapped: None,
            peer_answers: false,
        }
    }

    /// The registrar announced outbound keep-alive support (a `Flow-Timer` in its 2xx,
    /// RFC 5626 §5.4): an unanswered STUN Binding request fails the flow even before the
    /// first response.
    pub fn peer_supports_keepalive(&mut self) {
        self.peer_answers = true;
    }

    /// True once the peer has answered a keep-alive on this flow (or was said to support
    /// them): a new flow to the same peer can start from this knowledge
    /// ([`peer_supports_keepalive`](Self::peer_supports_keepalive)).
    pub fn peer_answered(&self) -> bool {
        self.peer_answers
    }

    /// The mapped address of the last STUN Binding response (UDP flows): the flow's address
    /// as the registrar sees it.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The configuration.
    pub fn config(&self) -> KeepAliveConfig {
        self.config
    }

    /// True once the flow has failed.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next (`None` once failed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { ping_at } => Some(ping_at),
            State::AwaitingPong {
                deadline,
                stun:
                    Some(Stun {
                        resend_at: Some(at),
                        ..
                    }),
            } => Some(at.min(deadline)),
            State::AwaitingPong { deadline, .. } => Some(deadline),
            State::Stopped | State::Failed => None,
        }
    }

    /// Sends the due ping (or STUN retransmission) or notices the missing pong.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn Rng) {
        match self.state {
            State::Waiting { ping_at } if ping_at <= now => {
                let deadline = now + self.config.pong_timeout;
                let stun = self.config.stun_rto.map(|rto| {
                    let transaction = TransactionId::random(rng);
                    self.events.push_back(FlowEvent::SendBinding(transaction));
                    Stun {
                        transaction,
                        resend_at: Some(now + rto).filter(|at| *at < deadline),
                        rto: rto * 2,
                    }
                });
                if stun.is_none() {
                    self.events.push_back(FlowEvent::SendPing);
                }
                self.state = State::AwaitingPong { deadline, stun };
            }
            State::AwaitingPong {
                deadline,
                stun: Some(_),
            } if deadline <= now && !self.peer_answers => {
                self.state = State::Stopped;
                self.events.push_back(FlowEvent::StunUnsupported);
            }
            State::AwaitingPong { deadline, stun } if deadline <= now => {
                self.fail(if stun.is_some() {
                    FlowFailure::NoBindingResponse
                } else {
                    FlowFailure::NoPong
                });
            }
            State::AwaitingPong {
                deadline,
                stun: Some(mut stun),
            } if stun.resend_at.is_some_and(|at| at <= now) => {
                // RFC 5389 §7.2.1: the same request again, the wait doubling each time.
                self.events
                    .push_back(FlowEvent::SendBinding(stun.transaction));
                stun.resend_at = Some(now + stun.rto).filter(|at| *at < deadline);
                stun.rto *= 2;
                self.state = State::AwaitingPong {
                    deadline,
                    stun: Some(stun),
                };
            }
            _ => {}
        }
    }

    /// A pong arrived on the flow: the next ping is scheduled. A pong nobody asked for is
    /// harmless and ignored.
    pub fn handle_pong(&mut self, now: Instant, rng: &mut dyn Rng) {
        if let State::AwaitingPong { .. } = self.state {
            self.schedule(now, rng);
        }
    }

    /// A STUN Binding response arrived on the flow (UDP), with the mapped address it carried
    /// (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS). A response to another transaction is
    /// ignored. When the address differs from the previous response's, the NAT binding has
    /// changed and the flow has failed (RFC 5626 §4.4.2); otherwise the next ping is
    /// scheduled. An error response (no address) still shows that the flow carries
    /// traffic both ways, and counts as a pong.
    pub fn handle_binding_response(
        &mut self,
        now: Instant,
        transaction: TransactionId,
        mapped: Option<SocketAddr>,
        rng: &mut dyn Rng,
    ) {
        let State::AwaitingPong {
            stun: Some(stun), ..
        } = self.state
        else {
            return;
        };
        if stun.transaction != transaction {
            return;
        }
        self.peer_answers = true;
        if let Some(current) = mapped {
            match self.mapped.replace(current) {
                Some(previous) if previous != current => {
                    self.fail(FlowFailure::MappedAddressChanged { previous, current });
                    return;
                }
                _ => {}
            }
        }
        self.schedule(now, rng);
    }

    /// The connection closed or was reset.
    pub fn handle_closed(&mut self, now: Instant) {
        let _ = now;
        self.fail(FlowFailure::Closed);
    }

    /// An ICMP error said the flow's destination is unreachable (UDP).
    pub fn handle_unreachable(&mut self, now: Instant) {
        let _ = now;
        self.fail(FlowFailure::Unreachable);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FlowEvent> {
        self.events.pop_front()
    }

    fn schedule(&mut self, now: Instant, rng: &mut dyn Rng) {
        self.state = State::Waiting {
            ping_at: now + jittered(self.config.interval, rng),
        };
    }

    fn fail(&mut self, why: FlowFailure) {
        if self.state != State::Failed {
            self.state = State::Failed;
            self.events.push_back(FlowEvent::Failed(why));
        }
    }
}

/// A random duration between 80 % and 100 % of `interval` (RFC 5626 §4.4.1), in
/// milliseconds.
fn jittered(interval: Duration, rng: &mut dyn Rng) -> Duration {
    let full = interval.as_millis().min(u128::from(u64::MAX)) as u64;
    let low = full / 5 * 4;
    let span = full - low;
    Duration::from_millis(low + rng.next_u64() % (span + 1))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
mod tests {
    use super::*;
    use crate::rng::XorShiftRng;
    use rand_core::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn pings_are_spread_over_80_to_100_percent_of_the_interval() {
        let mut rng = XorShiftRng::seed_from_u64(1);
        let t0 = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..200 {
            let f = FlowKeepAlive::new(KeepAliveConfig::stream(), t0, &mut rng);
            let d = f.poll_timeout().unwrap() - t0;
            assert!(d >= secs(96) && d <= secs(120), "{d:?}");
            seen.push(d);
        }
        // Spread, not one value.
        let min = seen.iter().min().unwrap();
        let max = seen.iter().max().unwrap();
        assert!(*max - *min > secs(15), "{min:?}..{max:?}");
    }

    #[test]
    fn a_live_flow_pings_forever_in_virtual_time() {
        let mut rng = XorShiftRng::seed_from_u64(2);
        let t0 = Instant::now();
        let cfg = KeepAliveConfig::stream().with_flow_timer(30);
        let mut f = FlowKeepAlive::new(cfg, t0, &mut rng);
        let mut now = t0;
        let mut pings = 0;
        // One simulated hour; the peer answers every ping after 40 ms.
        while now < t0 + secs(3600) {
            now = f.poll_timeout().unwrap();
            f.handle_timeout(now, &mut rng);
            while let Some(ev) = f.poll_event() {
                assert_eq!(ev, FlowEvent::SendPing);
                pings += 1;
                now += Duration::from_millis(40);
                f.handle_pong(now, &mut rng);
            }
        }
        assert!(!f.is_failed());
        // Between 3600/30 and 3600/24 pings.
        assert!((120..=151).contains(&pings), "{pings}");
    }

    #[test]
    fn a_missing_pong_fails_the_flow_after_10_s() {
        let mut rng = XorShiftRng::seed_from_u64(3);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::stream().with_flow_timer(5), t0, &mut rng);
        let ping_at = f.poll_timeout().unwrap();
        // Early wake-ups do nothing.
        f.handle_timeout(ping_at - Duration::from_millis(1), &mut rng);
        assert_eq!(f.poll_event(), None);
        f.handle_timeout(ping_at, &mut rng);
        assert_eq!(f.poll_event(), Some(FlowEvent::SendPing));
        assert_eq!(f.poll_timeout(), Some(ping_at + PONG_TIMEOUT));
        f.handle_timeout(ping_at + secs(9), &mut rng);
        assert_eq!(f.poll_event(), None);
        f.handle_timeout(ping_at + PONG_TIMEOUT, &mut rng);
        assert_eq!(f.poll_event(), Some(FlowEvent::Failed(FlowFailure::NoPong)));
        assert!(f.is_failed());
        assert_eq!(f.poll_timeout(), None);
        // Reported once; a late pong does not revive it.
        f.handle_pong(ping_at + secs(11), &mut rng);
        f.handle_closed(ping_at + secs(12));
        assert_eq!(f.poll_event(), None);
        assert!(f.is_failed());
    }

    #[test]
    fn a_closed_connection_fails_the_flow_at_once() {
        let mut rng = XorShiftRng::seed_from_u64(4);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::stream(), t0, &mut rng);
        f.handle_closed(t0 + secs(1));
        assert_eq!(f.poll_event(), Some(FlowEvent::Failed(FlowFailure::Closed)));
    }

    #[test]
    fn an_unasked_pong_changes_nothing() {
        let mut rng = XorShiftRng::seed_from_u64(5);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::stream(), t0, &mut rng);
        let at = f.poll_timeout();
        f.handle_pong(t0 + secs(1), &mut rng);
        assert_eq!(f.poll_timeout(), at);
        assert_eq!(
            KeepAliveConfig::stream().with_flow_timer(0).interval,
            STREAM_INTERVAL
        );
    }

    /// Drives a STUN flow to its next `SendBinding` and returns when and with which id.
    fn next_binding(f: &mut FlowKeepAlive, rng: &mut XorShiftRng) -> (Instant, TransactionId) {
        let at = f.poll_timeout().unwrap();
        f.handle_timeout(at, rng);
        match f.poll_event() {
            Some(FlowEvent::SendBinding(id)) => (at, id),
            other => panic!("expected a binding request, got {other:?}"),
        }
    }

    #[test]
    fn datagram_defaults_follow_rfc5626_and_rfc5389() {
        let c = KeepAliveConfig::datagram();
        assert_eq!(c.interval, secs(24));
        assert_eq!(c.stun_rto, Some(Duration::from_millis(500)));
        assert_eq!(c.pong_timeout, Duration::from_millis(39_500));
        let fast = c
            .with_stun_rto(Duration::from_millis(50))
            .with_flow_timer(2);
        assert_eq!(fast.pong_timeout, Duration::from_millis(3950));
        assert_eq!(fast.interval, secs(2));
    }

    /// A lost Binding request is sent at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s with the same
    /// transaction id, and the flow fails at 39.5 s (RFC 5389 §7.2.1).
    #[test]
    fn an_unanswered_binding_is_retransmitted_then_fails_at_39_5_s() {
        let mut rng = XorShiftRng::seed_from_u64(11);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::datagram(), t0, &mut rng);
        // A first keep-alive is answered: the peer does STUN.
        let (at, id) = next_binding(&mut f, &mut rng);
        f.handle_binding_response(at, id, None, &mut rng);
        let (first, id) = next_binding(&mut f, &mut rng);
        assert!(first - at >= Duration::from_millis(19_200) && first - at <= secs(24));
        let mut sends = vec![Duration::ZERO];
        loop {
            let at = f.poll_timeout().unwrap();
            f.handle_timeout(at, &mut rng);
            match f.poll_event() {
                Some(FlowEvent::SendBinding(again)) => {
                    assert_eq!(again, id, "a retransmission keeps the transaction id");
                    sends.push(at - first);
                }
                Some(FlowEvent::Failed(why)) => {
                    assert_eq!(why, FlowFailure::NoBindingResponse);
                    assert_eq!(at - first, Duration::from_millis(39_500));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
        assert!(f.is_failed());
        assert!(
            FlowFailure::NoBindingResponse.to_string().contains("stun"),
            "{}",
            FlowFailure::NoBindingResponse
        );
    }

    /// An hour of answered keep-alives over a simulated network that loses a third of the
    /// requests: retransmissions cover the losses, the flow never fails, and the same mapped
    /// address changes nothing. (All seven sends of one Binding transaction are lost with
    /// probability 3^-7, so about 7 % of such hours, 14 of 200 seeds, rightly fail a flow:
    /// the network's seed is one whose hour has no such transaction.)
    #[test]
    fn a_lossy_but_live_udp_flow_stays_up() {
        let mut rng = XorShiftRng::seed_from_u64(12);
        let mut net = XorShiftRng::seed_from_u64(1);
        let t0 = Instant::now();
        let mapped: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::datagram(), t0, &mut rng);
        let (mut answered, mut sent) = (0, 0);
        while f.poll_timeout().unwrap() < t0 + secs(3600) {
            let at = f.poll_timeout().unwrap();
            f.handle_timeout(at, &mut rng);
            while let Some(ev) = f.poll_event() {
                let FlowEvent::SendBinding(id) = ev else {
                    panic!("{ev:?}")
                };
                sent += 1;
                if !rand_core::Rng::next_u32(&mut net).is_multiple_of(3) {
                    answered += 1;
                    f.handle_binding_response(
                        at + Duration::from_millis(30),
                        id,
                        Some(mapped),
                        &mut rng,
                    );
                }
            }
        }
        assert!(!f.is_failed());
        assert_eq!(f.mapped_address(), Some(mapped));
        assert!(answered >= 150 && sent > answered, "{answered}/{sent}");
    }

    #[test]
    fn a_changed_mapped_address_fails_the_flow() {
        let mut rng = XorShiftRng::seed_from_u64(13);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::datagram(), t0, &mut rng);
        let a: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let b: SocketAddr = "203.0.113.5:40001".parse().unwrap();
        let (at, id) = next_binding(&mut f, &mut rng);
        // A response to another transaction (stale, forged) is ignored.
        f.handle_binding_response(at, TransactionId([0; 12]), Some(b), &mut rng);
        assert_eq!(f.mapped_address(), None);
        assert!(!f.peer_answered());
        f.handle_binding_response(at, id, Some(a), &mut rng);
        assert!(f.peer_answered());
        // An error response (no address) is a pong and keeps the known address.
        let (at, id) = next_binding(&mut f, &mut rng);
        f.handle_binding_response(at, id, None, &mut rng);
        assert_eq!(f.mapped_address(), Some(a));
        let (at, id) = next_binding(&mut f, &mut rng);
        f.handle_binding_response(at, id, Some(b), &mut rng);
        let why = FlowFailure::MappedAddressChanged {
            previous: a,
            current: b,
        };
        assert_eq!(f.poll_event(), Some(FlowEvent::Failed(why)));
        assert!(why.to_string().contains("203.0.113.5:40001"), "{why}");
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn an_unreachable_destination_fails_the_flow_at_once() {
        let mut rng = XorShiftRng::seed_from_u64(14);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::datagram(), t0, &mut rng);
        let (at, _) = next_binding(&mut f, &mut rng);
        f.handle_unreachable(at + Duration::from_millis(1));
        assert_eq!(
            f.poll_event(),
            Some(FlowEvent::Failed(FlowFailure::Unreachable))
        );
    }

    /// A registrar that never answers STUN: keep-alives stop after the first transaction,
    /// the flow is not failed. One that announced support fails the flow instead.
    #[test]
    fn a_peer_that_never_answers_stun_is_not_a_dead_flow() {
        let mut rng = XorShiftRng::seed_from_u64(15);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::datagram(), t0, &mut rng);
        let (first, _) = next_binding(&mut f, &mut rng);
        let mut events = Vec::new();
        while let Some(at) = f.poll_timeout() {
            f.handle_timeout(at, &mut rng);
            while let Some(event) = f.poll_event() {
                events.push((at - first, event));
            }
        }
        // Retransmissions of the first binding request, then, when its transaction timed
        // out, StunUnsupported as the last event: the keep-alives stop.
        let (last, sends) = events.split_last().expect("the flow reported events");
        assert_eq!(
            *last,
            (Duration::from_millis(39_500), FlowEvent::StunUnsupported),
            "{events:?}"
        );
        assert!(
            sends
                .iter()
                .all(|(_, e)| matches!(e, FlowEvent::SendBinding(_))),
            "{events:?}"
        );
        assert!(!f.is_failed());
        assert_eq!(f.poll_timeout(), None);

        let mut f = FlowKeepAlive::new(KeepAliveConfig::datagram(), t0, &mut rng);
        f.peer_supports_keepalive();
        next_binding(&mut f, &mut rng);
        while let Some(at) = f.poll_timeout() {
            f.handle_timeout(at, &mut rng);
            while f.poll_event().is_some() {}
        }
        assert!(f.is_failed());
    }
}
