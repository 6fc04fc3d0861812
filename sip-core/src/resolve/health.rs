//! Failover with memory: the target health table and the failover policy.
//!
//! [`TargetHealth`] remembers which (transport, address) pairs failed recently. A failed target
//! cools off for an exponentially growing time (30 s, 60 s, ... capped at 30 min by default),
//! or exactly the `Retry-After` a 503 asked for. [`TargetHealth::order`] puts healthy targets
//! first (keeping the RFC 3263 order) and cooling ones last (never dropped: when everything is
//! down we still try). When a cool-off ends, [`TargetHealth::due_probes`] hands the target to
//! the driver to probe (OPTIONS); [`TargetHealth::mark_ok`] brings it back.
//!
//! The table also keeps each target's smoothed round-trip time ([`TargetHealth::record_rtt`],
//! [`TargetHealth::rtt`]), which the [`Failover`](super::failover::Failover) machine turns
//! into an adaptive per-target budget.
//!
//! [`FailoverPolicy`] holds the per-target response budgets and decides, for each outcome of
//! an attempt, whether the request moves on to the next target (RFC 3263 §4.3).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Transport;
use super::failover::FailoverConfig;
use super::resolution::ResolvedTarget;

/// A target's identity in the health table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TargetKey {
    /// The transport.
    pub transport: Transport,
    /// The address.
    pub addr: SocketAddr,
}

impl TargetKey {
    /// The key of `target`.
    pub fn of(target: &ResolvedTarget) -> Self {
        TargetKey {
            transport: target.transport,
            addr: target.addr,
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport, self.addr)
    }
}

/// Why a target was marked failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum FailureCause {
    /// The transport failed (connection refused or reset, TLS handshake failure, send error).
    TransportError,
    /// An ICMP destination/port unreachable came back.
    Unreachable,
    /// No response within the per-target budget (or Timer B/F).
    Timeout,
    /// 503 Service Unavailable, with the `Retry-After` it carried.
    ServiceUnavailable {
        /// The Retry-After delay, if any.
        retry_after: Option<Duration>,
    },
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureCause::TransportError => f.write_str("transport error"),
            FailureCause::Unreachable => f.write_str("unreachable (ICMP)"),
            FailureCause::Timeout => f.write_str("timeout"),
            FailureCause::ServiceUnavailable { retry_after: None } => f.write_str("503"),
            FailureCause::ServiceUnavailable {
                retry_after: Some(d),
            } => write!(f, "503 (Retry-After {} s)", d.as_secs()),
        }
    }
}

/// Cool-off settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Cool-off after the first failure: 30 s (long enough that the next requests skip the
    /// target, short enough that a restarted server is back within a minute).
    pub initial_cooloff: Duration,
    /// The cap of the doubling cool-off: 30 min (a long-dead server is still probed twice an
    /// hour).
    pub max_cooloff: Duration,
    /// Upper bound for a `Retry-After` (a server asking for a day is not trusted that far):
    /// 1 hour.
    pub max_retry_after: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            initial_cooloff: Duration::from_secs(30),
            max_cooloff: Duration::from_secs(30 * 60),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    down_until: Instant,
    cause: FailureCause,
    probing: bool,
}

/// What the table knows about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetStatus {
    /// No recent failure.
    Up,
    /// Cooling off until `until`.
    Down {
        /// End of the cool-off.
        until: Instant,
        /// Consecutive failures.
        failures: u32,
        /// The last failure.
        cause: FailureCause,
    },
    /// The cool-off ended; not confirmed healthy yet (a probe or a request will tell).
    Probation {
        /// Consecutive failures so far.
        failures: u32,
        /// The last failure.
        cause: FailureCause,
    },
}

/// The weight of a new round-trip sample in the smoothed RTT: alpha = 1/8, as RFC 6298 §2.3
/// does for TCP (`SRTT <- (1 - alpha) * SRTT + alpha * R'`). Stored as the divisor.
const SRTT_ALPHA_DIVISOR: u32 = 8;

/// The most targets [`TargetHealth`] remembers in each of its tables (failures, smoothed
/// RTTs). Every Contact a phone ever sent a BYE to is a target, so without a bound a stream of
/// strangers' calls would grow the tables for ever; past it the least useful entry goes (the
/// failure whose cool-off ended first, an arbitrary RTT).
pub const MAX_TARGETS: usize = 4096;

/// The health of every target, shared by all requests and accounts (the driver owns it).
#[derive(Debug, Clone, Default)]
pub struct TargetHealth {
    config: HealthConfig,
    entries: HashMap<TargetKey, Entry>,
    /// Smoothed round-trip time per target (RFC 6298 §2 SRTT); kept across failures and
    /// recoveries, since a slow server that failed once is still slow when it comes back.
    srtt: HashMap<TargetKey, Duration>,
}

impl TargetHealth {
    /// An empty table.
    pub fn new(config: HealthConfig) -> Self {
        TargetHealth {
            config,
            entries: HashMap::new(),
            srtt: HashMap::new(),
        }
    }

    /// The number of entries of each table, by name: for tests that check what the table
    /// keeps.
    #[doc(hidden)]
    pub fn table_sizes(&self) -> [(&'static str, usize); 2] {
        [
            ("health.entries", self.entries.len()),
            ("health.srtt", self.srtt.len()),
        ]
    }

    /// Record a round-trip sample for `key` (time from sending a request to its first
    /// response). The first sample is taken as it is; later ones are smoothed as RFC 6298
    /// §2.2-2.3 does: `SRTT <- 7/8 * SRTT + 1/8 * R'`. A response to a retransmission makes
    /// the sample longer than the true round trip (RFC 6298 §3, Karn), never shorter, so the
    /// budget derived from it errs on the patient side.
    pub fn record_rtt(&mut self, key: TargetKey, rtt: Duration) {
        if self.srtt.len() >= MAX_TARGETS && !self.srtt.contains_key(&key) {
            // Any one: a target that answered once and is gone costs only a default budget.
            if let Some(old) = self.srtt.keys().next().copied() {
                self.srtt.remove(&old);
            }
        }
        self.srtt
            .entry(key)
            .and_modify(|srtt| {
                *srtt = (*srtt * (SRTT_ALPHA_DIVISOR - 1) + rtt) / SRTT_ALPHA_DIVISOR;
            })
            .or_insert(rtt);
    }

    /// The smoothed round-trip time of `key`, if any response from it was ever timed.
    pub fn rtt(&self, key: TargetKey) -> Option<Duration> {
        self.srtt.get(&key).copied()
    }

    /// Record a failure; returns the end of the cool-off. A 503 with `Retry-After` cools off
    /// exactly that long (capped by `max_retry_after`); anything else doubles the previous
    /// cool-off from `initial_cooloff` up to `max_cooloff`.
    pub fn mark_failed(&mut self, now: Instant, key: TargetKey, cause: FailureCause) -> Instant {
        if self.entries.len() >= MAX_TARGETS && !self.entries.contains_key(&key) {
            // The failure that matters least: the one whose cool-off ended (or ends) first.
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.down_until)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        let e = self.entries.entry(key).or_insert(Entry {
            failures: 0,
            down_until: now,
            cause,
            probing: false,
        });
        e.failures = e.failures.saturating_add(1);
        e.cause = cause;
        e.probing = false;
        let cooloff = match cause {
            FailureCause::ServiceUnavailable {
                retry_after: Some(d),
            } => d.min(self.config.max_retry_after),
            _ => {
                let doublings = e.failures.saturating_sub(1).min(31);
                self.config
                    .initial_cooloff
                    .saturating_mul(1u32 << doublings)
                    .min(self.config.max_cooloff)
            }
        };
        e.down_until = now + cooloff;
        e.down_until
    }

    /// Record the outcome of an attempt and decide what the request does next: marks the
    /// target failed (with the cause `policy` derives) or healthy, and returns the decision.
    pub fn report(
        &mut self,
        now: Instant,
        key: TargetKey,
        outcome: AttemptOutcome,
        policy: &FailoverPolicy,
    ) -> FailoverDecision {
        let decision = policy.decide(outcome);
        match decision {
            FailoverDecision::TryNext(cause) => {
                self.mark_failed(now, key, cause);
            }
            FailoverDecision::Done => self.mark_ok(key),
        }
        decision
    }

    /// The target answered: forget its failures (its smoothed RTT is kept).
    pub fn mark_ok(&mut self, key: TargetKey) {
        self.entries.remove(&key);
    }

    /// The status of a target.
    pub fn status(&self, now: Instant, key: TargetKey) -> TargetStatus {
        match self.entries.get(&key) {
            None => TargetStatus::Up,
            Some(e) if now < e.down_until => TargetStatus::Down {
                until: e.down_until,
                failures: e.failures,
                cause: e.cause,
            },
            Some(e) => TargetStatus::Probation {
                failures: e.failures,
                cause: e.cause,
            },
        }
    }

    /// Whether a target is cooling off.
    pub fn is_down(&self, now: Instant, key: TargetKey) -> bool {
        matches!(self.status(now, key), TargetStatus::Down { .. })
    }

    /// `targets` reordered: those not cooling off first, in their given (RFC 3263) order,
    /// then those cooling off, the one recovering soonest first. Nothing is dropped.
    pub fn order(&self, targets: &[ResolvedTarget], now: Instant) -> Vec<ResolvedTarget> {
        let (mut up, mut down): (Vec<&ResolvedTarget>, Vec<&ResolvedTarget>) = targets
            .iter()
            .partition(|t| !self.is_down(now, TargetKey::of(t)));
        down.sort_by_key(|t| {
            self.entries
                .get(&TargetKey::of(t))
                .map(|e| e.down_until)
                .unwrap_or(now)
        });
        up.append(&mut down);
        up.into_iter().cloned().collect()
    }

    /// Targets whose cool-off has ended and that are not being probed yet: the driver should
    /// probe each (OPTIONS) and report with [`mark_ok`](Self::mark_ok) or
    /// [`mark_failed`](Self::mark_failed). Each is returned once per cool-off.
    pub fn due_probes(&mut self, now: Instant) -> Vec<TargetKey> {
        let mut due: Vec<TargetKey> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| !e.probing && now >= e.down_until)
            .map(|(k, e)| {
                e.probing = true;
                *k
            })
            .collect();
        due.sort();
        due
    }

    /// When the next cool-off ends (for the driver's timer), if any target is cooling off.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.probing)
            .map(|e| e.down_until)
            .min()
    }

    /// Targets currently known as failed (cooling off or on probation), for display.
    pub fn failed(&self, now: Instant) -> Vec<(TargetKey, TargetStatus)> {
        let mut v: Vec<_> = self
            .entries
            .keys()
            .map(|k| (*k, self.status(now, *k)))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

/// The outcome of one attempt of a request at one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The transport failed (refused, reset, TLS failure).
    TransportError,
    /// ICMP unreachable.
    Unreachable,
    /// No response within the budget.
    Timeout,
    /// A response (provisional responses do not end an attempt; pass finals).
    Response {
        /// The status code.
        status: u16,
        /// The `Retry-After` delay, if the response had one.
        retry_after: Option<Duration>,
    },
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailoverDecision {
    /// Mark the target failed with this cause and try the next one.
    TryNext(FailureCause),
    /// The target works (any response but 503 shows it is alive): mark it ok, and the
    /// request is over with this outcome, whatever the status.
    Done,
}

/// Per-target response budgets and the failover decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailoverPolicy {
    /// How long one target may take to answer a request a user waits on (an interactive
    /// REGISTER, INVITE, OPTIONS from the CLI) before the next target is tried: 4 s. Over UDP
    /// that covers four transmissions (0, 0.5, 1.5, 3.5 s with T1 = 500 ms), so a loss rate of
    /// 10 % still fails over wrongly only once in 10 000 attempts, while a black-holed server
    /// costs 4 s instead of Timer F's 32 s.
    pub interactive_budget: Duration,
    /// The same for background requests (registration refreshes, which start well before
    /// expiry): 32 s, i.e. Timer F = 64*T1, the RFC 3261 behaviour.
    pub background_budget: Duration,
    /// The budget of a health probe (OPTIONS to a target whose cool-off ended): 4 s.
    pub probe_budget: Duration,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            interactive_budget: Duration::from_secs(4),
            background_budget: Duration::from_secs(32),
            probe_budget: Duration::from_secs(4),
        }
    }
}

impl FailoverPolicy {
    /// The settings of the adaptive [`Failover`](super::failover::Failover) machine that match
    /// this policy: its `interactive_budget` is the longest per-target budget (used when the
    /// target's round-trip time is unknown and its RTT-derived budget is longer), the rest
    /// [`FailoverConfig::default`].
    pub fn failover_config(&self) -> FailoverConfig {
        let default = FailoverConfig::default();
        FailoverConfig {
            min_budget: default.min_budget.min(self.interactive_budget),
            max_budget: self.interactive_budget,
            ..default
        }
    }

    /// The budget for one attempt.
    pub fn budget(&self, interactive: bool) -> Duration {
        if interactive {
            self.interactive_budget
        } else {
            self.background_budget
        }
    }

    /// RFC 3263 §4.3: move on after a transport error, an ICMP unreachable, a timeout or a
    /// 503 (its Retry-After cools the target off); every other final response ends the
    /// request (a 4xx-6xx from a working server would be the same from the next one).
    pub fn decide(&self, outcome: AttemptOutcome) -> FailoverDecision {
        match outcome {
            AttemptOutcome::TransportError => {
                FailoverDecision::TryNext(FailureCause::TransportError)
            }
            AttemptOutcome::Unreachable => FailoverDecision::TryNext(FailureCause::Unreachable),
            AttemptOutcome::Timeout => FailoverDecision::TryNext(FailureCause::Timeout),
            AttemptOutcome::Response {
                status: 503,
                retry_after,
            } => FailoverDecision::TryNext(FailureCause::ServiceUnavailable { retry_after }),
            AttemptOutcome::Response { .. } => FailoverDecision::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> TargetKey {
        TargetKey {
            transport: Transport::Udp,
            addr: SocketAddr::from(([192, 0, 2, 1], port)),
        }
    }

    #[test]
    fn srtt_takes_the_first_sample_then_smooths_by_an_eighth() {
        let mut h = TargetHealth::default();
        assert_eq!(h.rtt(key(1)), None);
        h.record_rtt(key(1), Duration::from_millis(400));
        assert_eq!(h.rtt(key(1)), Some(Duration::from_millis(400)));
        // 7/8 * 400 + 1/8 * 800 = 450.
        h.record_rtt(key(1), Duration::from_millis(800));
        assert_eq!(h.rtt(key(1)), Some(Duration::from_millis(450)));
        assert_eq!(h.rtt(key(2)), None);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn failures_and_recovery_keep_the_rtt() {
        let now = Instant::now();
        let mut h = TargetHealth::default();
        h.record_rtt(key(1), Duration::from_millis(30));
        h.mark_failed(now, key(1), FailureCause::Timeout);
        assert_eq!(h.rtt(key(1)), Some(Duration::from_millis(30)));
        h.mark_ok(key(1));
        assert_eq!(h.rtt(key(1)), Some(Duration::from_millis(30)));
        assert_eq!(h.status(now, key(1)), TargetStatus::Up);
    }

    #[test]
    fn the_policy_gives_its_interactive_budget_as_the_cap() {
        let config = FailoverPolicy::default().failover_config();
        assert_eq!(config, FailoverConfig::default());
        let policy = FailoverPolicy {
            interactive_budget: Duration::from_millis(500),
            ..FailoverPolicy::default()
        };
        let config = policy.failover_config();
        assert_eq!(config.max_budget, Duration::from_millis(500));
        assert_eq!(config.min_budget, Duration::from_millis(500));
    }
}
