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
//! [`FlowKeepAlive`] owns only the timing: the caller sends the ping when told
//! ([`FlowEvent::SendPing`]), reports pongs and closes, and hears [`FlowEvent::Failed`].
//! UDP flows would need STUN keep-alives (§4.4.2); Tincan does not send them, a UDP binding
//! is kept by its REGISTER refreshes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_sip::flow::{FlowEvent, FlowFailure, FlowKeepAlive, KeepAliveConfig};
//! use tincan_sip::rng::SplitMix64;
//!
//! let mut rng = SplitMix64::new(7);
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

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::Rng;

/// The recommended keep-alive interval on connection-oriented transports when the registrar
/// sends no Flow-Timer, RFC 5626 §4.4.1: 120 s.
pub const STREAM_INTERVAL: Duration = Duration::from_secs(120);

/// The recommended keep-alive interval on connectionless transports (STUN over UDP) when the
/// registrar sends no Flow-Timer, RFC 5626 §4.4.1: 24 s.
pub const DATAGRAM_INTERVAL: Duration = Duration::from_secs(24);

/// How long to wait for the pong of a ping before the flow is considered failed,
/// RFC 5626 §4.4.1: 10 s.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a flow is pinged and how long a pong may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// The keep-alive interval; each ping is sent after a random 80-100 % of it
    /// (RFC 5626 §4.4.1).
    pub interval: Duration,
    /// The longest wait for a pong ([`PONG_TIMEOUT`]).
    pub pong_timeout: Duration,
}

impl KeepAliveConfig {
    /// The RFC 5626 defaults for a TCP or TLS flow: [`STREAM_INTERVAL`], [`PONG_TIMEOUT`].
    pub fn stream() -> KeepAliveConfig {
        KeepAliveConfig {
            interval: STREAM_INTERVAL,
            pong_timeout: PONG_TIMEOUT,
        }
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
}

impl std::fmt::Display for FlowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlowFailure::NoPong => "no pong to a keep-alive ping",
            FlowFailure::Closed => "connection closed",
        })
    }
}

/// What the keep-alive machine asks for or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowEvent {
    /// Send a CRLF CRLF ping on the flow now.
    SendPing,
    /// The flow is dead: open a new one and register again (RFC 5626 §4.5). Reported once.
    Failed(FlowFailure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next ping is due at this time.
    Waiting { ping_at: Instant },
    /// A ping was sent; its pong is due by this time.
    AwaitingPong { deadline: Instant },
    /// Failed (reported).
    Failed,
}

/// The keep-alive timing of one flow.
#[derive(Debug, Clone)]
pub struct FlowKeepAlive {
    config: KeepAliveConfig,
    state: State,
    events: VecDeque<FlowEvent>,
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
        }
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
            State::AwaitingPong { deadline } => Some(deadline),
            State::Failed => None,
        }
    }

    /// Sends the due ping or notices the missing pong.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn Rng) {
        let _ = rng;
        match self.state {
            State::Waiting { ping_at } if ping_at <= now => {
                self.state = State::AwaitingPong {
                    deadline: now + self.config.pong_timeout,
                };
                self.events.push_back(FlowEvent::SendPing);
            }
            State::AwaitingPong { deadline } if deadline <= now => {
                self.fail(FlowFailure::NoPong);
            }
            _ => {}
        }
    }

    /// A pong arrived on the flow: the next ping is scheduled. A pong nobody asked for is
    /// harmless and ignored.
    pub fn handle_pong(&mut self, now: Instant, rng: &mut dyn Rng) {
        if let State::AwaitingPong { .. } = self.state {
            self.state = State::Waiting {
                ping_at: now + jittered(self.config.interval, rng),
            };
        }
    }

    /// The connection closed or was reset.
    pub fn handle_closed(&mut self, now: Instant) {
        let _ = now;
        self.fail(FlowFailure::Closed);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FlowEvent> {
        self.events.pop_front()
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
    use crate::rng::SplitMix64;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn pings_are_spread_over_80_to_100_percent_of_the_interval() {
        let mut rng = SplitMix64::new(1);
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
        let mut rng = SplitMix64::new(2);
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
        let mut rng = SplitMix64::new(3);
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
        let mut rng = SplitMix64::new(4);
        let t0 = Instant::now();
        let mut f = FlowKeepAlive::new(KeepAliveConfig::stream(), t0, &mut rng);
        f.handle_closed(t0 + secs(1));
        assert_eq!(f.poll_event(), Some(FlowEvent::Failed(FlowFailure::Closed)));
    }

    #[test]
    fn an_unasked_pong_changes_nothing() {
        let mut rng = SplitMix64::new(5);
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
}
