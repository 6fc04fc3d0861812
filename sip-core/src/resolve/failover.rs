//! One failover machine for every request: try the resolved targets one after another
//! (RFC 3263 §4.3), each within a budget adapted to the target's round-trip time.
//!
//! A [`Failover`] routes one request (an INVITE, a REGISTER, an OPTIONS...) over the ordered
//! [`ResolvedTarget`]s of its next hop. It owns no transaction and no socket: it says when to send
//! the request to which target ([`FailoverEvent::Send`]), when to give up on an attempt
//! ([`FailoverEvent::Abandon`]) and when every target has failed
//! ([`FailoverEvent::Exhausted`]); the owner runs the client transactions and reports back
//! what happened to each attempt.
//!
//! ```text
//!            new(): order targets by health, Send{0}
//!                 |
//!                 v          budget passed / 503 / Timer B/F / transport error / ICMP
//!   +------> Waiting --------------------------------------------------------+
//!   |  (budget clock runs)                                                   |
//!   |             | first response (1xx or final)                            v
//!   |             v                                              Abandon{n}, then
//!   |         Responding --- 503 / transport error ------------>  Send{n+1} to the next target,
//!   |      (no clock; final pending)                             or Exhausted{tried} after the last
//!   |             | final response (not a 503 that moves on)
//!   |             v
//!   +------- Answered  (done; the response went to the TU)
//!   retry_same(): 401/407, resend with credentials to the same target as Send{n+1}
//! ```
//!
//! ## The adaptive budget
//!
//! Each attempt gets [`FailoverConfig::budget`]: `rtt_factor` (4) times the target's smoothed
//! round-trip time ([`TargetHealth::rtt`]) when the table has one, clamped to
//! `min_budget..=max_budget` (1 s to 4 s). Without a measurement:
//!
//! - an INVITE gets `min_budget` (1 s): a live proxy answers it with 100 Trying within 200 ms
//!   (RFC 3261 §16.2, §17.2.1), hop by hop, whatever happens further on. Over UDP the budget
//!   still covers two transmissions (Timer A at 0 and 500 ms);
//! - a non-INVITE gets twice `min_budget` (2 s, never more than `max_budget`): its answer is
//!   the final response, which a registrar gives at once but a proxy only after the request
//!   went further, and RFC 4320 §4.1 forbids a 100 Trying over UDP before Timer E reaches T2.
//!   Over UDP 2 s covers three transmissions (Timer E at 0, 0.5 and 1.5 s).
//!
//! So a black-holed first proxy costs an INVITE 1 s instead of 4 s; a registrar that answered
//! before (its RTT is known) is passed in `clamp(4 × SRTT, 1 s, 4 s)`. Every response times
//! its attempt (the first response only: a 200 after ten seconds of ringing is not a round
//! trip) and feeds the health table, so the next request to that target is judged by it.
//!
//! ## The last target
//!
//! There is nothing to move on to, so a budget would only cut the wait short: the last target
//! gets the whole transaction time, Timer B for an INVITE and Timer F for a non-INVITE (64*T1,
//! RFC 3261 §17.1.1.2, §17.1.2.2); only [`Failover::handle_failure`] ends it. A budget there
//! would fail calls on a lossy path that the RFC timers carry through: at 30 % loss each way,
//! an INVITE and its 100 Trying both get through within four sends (4 s) only 93 % of the
//! time, within Timer B's seven sends 99 %. A user who does not want to wait hangs up (an
//! INVITE nobody has answered is stopped at once, with no CANCEL, RFC 3261 §9.1). A 503 from
//! the last target is the answer: it goes to the transaction user (and the health table
//! still cools the target off for its Retry-After).
//!
//! ## What ends an attempt
//!
//! | Input | Health table | Next |
//! |---|---|---|
//! | budget passed, no response ([`Failover::handle_timeout`]) | failed, `Timeout` | Abandon, next target |
//! | 503 (not the last target) | failed, `ServiceUnavailable { retry_after }` (cools off that long) | Abandon, next target |
//! | Timer B/F, transport error, ICMP ([`Failover::handle_failure`]) | failed with that cause | Abandon, next target |
//! | any other response | RTT recorded, ok | the response goes to the TU; a final one ends the request |
//!
//! Any final response other than a 503 ends the request, whatever the status: a registrar that
//! refuses (403, a wrong password) or a 404 would be the same from the next server
//! (RFC 3263 §4.3). A 401/407 challenge is answered by [`Failover::retry_same`], which sends the
//! request again, with credentials, to the same target as a new attempt.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_sip::resolve::failover::*;
//! use tincan_sip::resolve::{AddressStep, TargetHealth, ResolvedTarget, TargetSource, Transport};
//!
//! let target = |port| ResolvedTarget {
//!     transport: Transport::Udp,
//!     addr: ([192, 0, 2, 1], port).into(),
//!     host: "example.com".into(),
//!     priority: 0,
//!     weight: 0,
//!     source: TargetSource { naptr: None, srv: None, address: AddressStep::Literal },
//! };
//! # #[allow(clippy::disallowed_methods)]
//! let t0 = Instant::now(); // a virtual epoch: the machine never reads the clock
//! let mut health = TargetHealth::default();
//! let mut f = Failover::new(
//!     t0,
//!     vec![target(5060), target(5062)],
//!     RequestKind::Invite,
//!     FailoverConfig::default(),
//!     &health,
//! );
//! assert!(matches!(f.poll_event(), Some(FailoverEvent::Send { attempt: 0, .. })));
//! // The first proxy is black-holed: nothing within 1 s, so the INVITE moves on.
//! let deadline = f.poll_timeout().expect("the budget clock runs");
//! assert_eq!(deadline - t0, Duration::from_secs(1));
//! f.handle_timeout(deadline, &mut health);
//! assert_eq!(f.poll_event(), Some(FailoverEvent::Abandon { attempt: 0 }));
//! let Some(FailoverEvent::Send { attempt: 1, target }) = f.poll_event() else { panic!() };
//! assert_eq!(target.addr.port(), 5062);
//! // The second answers 100 Trying after 30 ms: the clock stops, the RTT is learnt.
//! assert!(f.handle_response(deadline + Duration::from_millis(30), 1, 100, None, &mut health));
//! assert_eq!(f.poll_timeout(), None);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::health::{FailureCause, TargetHealth, TargetKey};
use super::resolution::ResolvedTarget;

/// What kind of request is being routed: an INVITE is judged on its first response (100 Trying
/// must come within 200 ms of a live proxy, RFC 3261 §16.2/§17.2.1); other requests on their
/// final response (a provisional response to a non-INVITE, rare, stops the budget clock too:
/// the server is alive and working on it, RFC 4320 §4.1, and abandoning it then would only
/// duplicate the request at the next target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// An INVITE (RFC 3261 §17.1.1).
    Invite,
    /// Any other request (RFC 3261 §17.1.2), one a proxy may forward before answering
    /// (BYE, INFO, MESSAGE...).
    NonInvite,
    /// A non-INVITE the next hop answers itself: a REGISTER to its registrar, an OPTIONS
    /// ping of the server. Judged like [`NonInvite`](Self::NonInvite), with
    /// `min_budget` when the target's RTT is unknown (the server answers at once; nothing
    /// further away is waited for), so a black-holed registrar is passed in about a second.
    Direct,
}

/// The per-target budgets of a [`Failover`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailoverConfig {
    /// Shortest per-target budget: 1 s. A live proxy answers an INVITE with 100 Trying within
    /// 200 ms (RFC 3261 §17.2.1), and over UDP 1 s still covers two transmissions (Timer A at
    /// 0 and T1 = 500 ms, RFC 3261 §17.1.1.2). It is also the INVITE budget when the target's
    /// round-trip time is unknown.
    pub min_budget: Duration,
    /// Budget as a multiple of the target's smoothed RTT when known: 4, the weight RFC 6298
    /// §2.3 gives the RTT variance in a TCP retransmission timeout, taken here as a margin
    /// for loss and server load.
    pub rtt_factor: u32,
    /// Longest per-target budget: 4 s, the old fixed interactive budget
    /// ([`FailoverPolicy::interactive_budget`](super::FailoverPolicy::interactive_budget)):
    /// four UDP transmissions of a non-INVITE (0, 0.5, 1.5, 3.5 s, RFC 3261 §17.1.2.2). The
    /// cap of every budget.
    pub max_budget: Duration,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            min_budget: Duration::from_secs(1),
            rtt_factor: 4,
            max_budget: Duration::from_secs(4),
        }
    }
}

impl FailoverConfig {
    /// The budget of one attempt at a target whose smoothed RTT is `srtt`:
    /// `rtt_factor × srtt` clamped to `min_budget..=max_budget` when known; otherwise
    /// `min_budget` for an INVITE or a [`RequestKind::Direct`] request and twice `min_budget`
    /// for another non-INVITE (see the
    /// [module documentation](self)). `max_budget` wins if the two bounds cross.
    pub fn budget(&self, kind: RequestKind, srtt: Option<Duration>) -> Duration {
        let budget = match (srtt, kind) {
            (Some(srtt), _) => srtt.saturating_mul(self.rtt_factor).max(self.min_budget),
            (None, RequestKind::Invite) => self.min_budget,
            (None, RequestKind::NonInvite) => self.min_budget.saturating_mul(2),
            (None, RequestKind::Direct) => self.min_budget,
        };
        budget.min(self.max_budget)
    }
}

/// Why one attempt did not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum AttemptFailure {
    /// No response within the per-target budget.
    NoResponse {
        /// The budget that passed.
        waited: Duration,
    },
    /// The client transaction timed out: Timer B (INVITE) or Timer F (non-INVITE), 64*T1
    /// (RFC 3261 §17.1.1.2, §17.1.2.2).
    Timeout,
    /// The transport failed: connection refused or reset, TLS handshake failure, send error
    /// (RFC 3261 §17.1.4).
    TransportError,
    /// An ICMP destination or port unreachable came back (RFC 3261 §18.4).
    Unreachable,
    /// 503 Service Unavailable (RFC 3263 §4.3), with its Retry-After.
    ServiceUnavailable {
        /// The Retry-After delay, if the response had one.
        retry_after: Option<Duration>,
    },
}

impl AttemptFailure {
    /// The cause the health table records for this failure.
    pub fn cause(self) -> FailureCause {
        match self {
            AttemptFailure::NoResponse { .. } | AttemptFailure::Timeout => FailureCause::Timeout,
            AttemptFailure::TransportError => FailureCause::TransportError,
            AttemptFailure::Unreachable => FailureCause::Unreachable,
            AttemptFailure::ServiceUnavailable { retry_after } => {
                FailureCause::ServiceUnavailable { retry_after }
            }
        }
    }
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptFailure::NoResponse { waited } => {
                write!(f, "no response in {} ms", waited.as_millis())
            }
            AttemptFailure::Timeout => f.write_str("transaction timed out"),
            AttemptFailure::TransportError => f.write_str("transport error"),
            AttemptFailure::Unreachable => f.write_str("unreachable (icmp)"),
            AttemptFailure::ServiceUnavailable { retry_after: None } => {
                f.write_str("503 service unavailable")
            }
            AttemptFailure::ServiceUnavailable {
                retry_after: Some(d),
            } => write!(f, "503 service unavailable (retry after {} s)", d.as_secs()),
        }
    }
}

/// One attempt that did not work, for the error shown to the user:
/// `udp:127.0.0.3:5060: no response in 1000 ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FailedAttempt {
    /// Where the request went.
    pub target: ResolvedTarget,
    /// How it failed.
    pub why: AttemptFailure,
}

impl fmt::Display for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.target.transport, self.target.addr, self.why
        )
    }
}

/// What the owner of a [`Failover`] must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // a few per request, drained at once: a Box would only cost an allocation
pub enum FailoverEvent {
    /// Send the request (a new client transaction) to this target now. `attempt` numbers
    /// attempts from 0; the owner reports on the attempt under this number.
    Send {
        /// The attempt's number.
        attempt: usize,
        /// Where to send it.
        target: ResolvedTarget,
    },
    /// The attempt `attempt` is abandoned (budget passed, 503, Timer B/F, transport error):
    /// the owner stops its client transaction (`Endpoint::abandon` for a non-INVITE; an
    /// INVITE that answers later is cancelled, or its stray 2xx ACKed and BYEd, by the owner,
    /// RFC 3261 §9.1, §13.2.2.4). Every attempt whose outcome did not go to the transaction
    /// user as its final response gets exactly one `Abandon`; responses to it are dropped.
    Abandon {
        /// The attempt's number.
        attempt: usize,
    },
    /// Every target was tried; the request failed. The list says what was tried and how each
    /// failed, in order (empty when there was no target at all).
    Exhausted {
        /// Every failed attempt.
        tried: Vec<FailedAttempt>,
    },
}

/// Error of [`Failover::retry_same`]: there is no answered attempt to repeat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// No attempt has had a final response yet (or the targets are exhausted).
    #[error("no attempt has had a final response to retry after")]
    NotAnswered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    /// Sent, no response yet.
    Waiting,
    /// A response stopped the budget clock; the final response is pending.
    Responding,
    /// The final response went to the transaction user.
    Answered,
    /// Given up (Abandon was queued).
    Abandoned,
    /// Repeated by `retry_same`: its answer was handled, a newer attempt replaces it.
    Superseded,
}

#[derive(Debug, Clone)]
struct Attempt {
    target: ResolvedTarget,
    sent_at: Instant,
    /// The end of the budget; `None` when the attempt has no budget (a non-INVITE at the
    /// last target waits for Timer F).
    deadline: Option<Instant>,
    budget: Duration,
    state: AttemptState,
    /// Whether a response was timed already (only the first one is a round trip).
    timed: bool,
}

/// Routes one request over its ordered targets. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Failover {
    kind: RequestKind,
    config: FailoverConfig,
    /// Targets not tried yet, in order.
    remaining: Vec<ResolvedTarget>,
    /// Every attempt, by number.
    attempts: Vec<Attempt>,
    /// The attempt in flight or answered last.
    live: Option<usize>,
    tried: Vec<FailedAttempt>,
    events: VecDeque<FailoverEvent>,
    done: bool,
}

impl Failover {
    /// Orders `targets` with the health table (known-down ones last, as
    /// [`TargetHealth::order`] does) and queues a Send for the first. Empty `targets`:
    /// Exhausted at once.
    pub fn new(
        now: Instant,
        targets: Vec<ResolvedTarget>,
        kind: RequestKind,
        config: FailoverConfig,
        health: &TargetHealth,
    ) -> Failover {
        let mut failover = Failover {
            kind,
            config,
            remaining: health.order(&targets, now),
            attempts: Vec::new(),
            live: None,
            tried: Vec::new(),
            events: VecDeque::new(),
            done: false,
        };
        failover.next_target(now, health);
        failover
    }

    /// The next thing to do, if any. Drain it after every input.
    pub fn poll_event(&mut self) -> Option<FailoverEvent> {
        self.events.pop_front()
    }

    /// The budget deadline of the current attempt (None once it has had its first response,
    /// when it has no budget (a non-INVITE at the last target), or when done).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let attempt = &self.attempts[self.live?];
        match attempt.state {
            AttemptState::Waiting => attempt.deadline,
            _ => None,
        }
    }

    /// Budget passed with no response: marks the target failed (`Timeout`) in `health`,
    /// queues Abandon and a Send to the next target, or Exhausted after the last. Does
    /// nothing before the deadline. The last target has no budget: its transaction's Timer B
    /// or F ends it ([`handle_failure`](Self::handle_failure)).
    pub fn handle_timeout(&mut self, now: Instant, health: &mut TargetHealth) {
        let Some(n) = self.live else { return };
        let attempt = &self.attempts[n];
        match (attempt.state, attempt.deadline) {
            (AttemptState::Waiting, Some(deadline)) if now >= deadline => {
                let why = AttemptFailure::NoResponse {
                    waited: attempt.budget,
                };
                self.move_on(now, n, why, health);
            }
            _ => {}
        }
    }

    /// A response to attempt `attempt`. Returns whether the owner should give it to its
    /// transaction user (true) or drop it (false: a 503 that made us move on, or a response to
    /// an abandoned attempt).
    ///
    /// The first response of an attempt records its round trip (time since the Send) in
    /// `health`, even when the attempt was abandoned already: a late answer teaches the table
    /// a slow target's RTT, and so a longer budget next time. A 503 cools the target off for
    /// its `retry_after` (RFC 3263 §4.3) and, unless this is the last target, moves on; any
    /// other response marks the target ok. The first response (provisional or final) stops
    /// the budget clock; a final one other than such a 503 ends the request.
    pub fn handle_response(
        &mut self,
        now: Instant,
        attempt: usize,
        status: u16,
        retry_after: Option<Duration>,
        health: &mut TargetHealth,
    ) -> bool {
        let last = self.remaining.is_empty();
        let Some(a) = self.attempts.get_mut(attempt) else {
            return false;
        };
        let key = TargetKey::of(&a.target);
        if !a.timed {
            a.timed = true;
            health.record_rtt(key, now.saturating_duration_since(a.sent_at));
        }
        let unavailable = AttemptFailure::ServiceUnavailable { retry_after };
        let live = matches!(a.state, AttemptState::Waiting | AttemptState::Responding);
        if live && status == 503 && !last {
            // Marks the target failed too.
            self.move_on(now, attempt, unavailable, health);
            return false;
        }
        if status == 503 {
            health.mark_failed(now, key, unavailable.cause());
        } else {
            health.mark_ok(key);
        }
        match a.state {
            AttemptState::Abandoned | AttemptState::Superseded => false,
            // Retransmitted or forked finals of the answer (several 2xx to an INVITE).
            AttemptState::Answered => true,
            AttemptState::Waiting | AttemptState::Responding => {
                if status >= 200 {
                    a.state = AttemptState::Answered;
                    self.done = true;
                } else {
                    a.state = AttemptState::Responding;
                }
                true
            }
        }
    }

    /// The attempt's transaction failed (Timer B/F timeout, transport error, ICMP
    /// unreachable): marks the target failed with that cause and moves on (or Exhausted after
    /// the last). A failure of an attempt that is not in flight any more is ignored.
    pub fn handle_failure(
        &mut self,
        now: Instant,
        attempt: usize,
        failure: AttemptFailure,
        health: &mut TargetHealth,
    ) {
        if self.live != Some(attempt) {
            return;
        }
        match self.attempts[attempt].state {
            AttemptState::Waiting | AttemptState::Responding => {
                self.move_on(now, attempt, failure, health);
            }
            _ => {}
        }
    }

    /// After a final response that asks for credentials (401/407, RFC 3261 §22.2), send the
    /// request again, with them, to the same target: queues `Send { attempt: new, target: same }`
    /// and returns the new attempt's number. The retry is an attempt like any other: it gets
    /// a budget (from the RTT just measured) and moves on to the next target if that passes,
    /// so a server that dies between challenge and answer is still failed over. The answered
    /// attempt is left as it is (its transaction is complete; no Abandon) and responses to it
    /// are dropped from now on. Limiting the number of retries is the owner's job (the digest
    /// client's).
    pub fn retry_same(&mut self, now: Instant, health: &TargetHealth) -> Result<usize, RetryError> {
        let n = self.live.ok_or(RetryError::NotAnswered)?;
        if self.attempts[n].state != AttemptState::Answered {
            return Err(RetryError::NotAnswered);
        }
        self.attempts[n].state = AttemptState::Superseded;
        let target = self.attempts[n].target.clone();
        self.done = false;
        Ok(self.send(now, target, health))
    }

    /// The target of the current attempt: the one in flight, or the one that answered (the
    /// one the dialog continues with). `None` once the targets are exhausted.
    pub fn current(&self) -> Option<&ResolvedTarget> {
        self.live.map(|n| &self.attempts[n].target)
    }

    /// The attempts that failed so far, in order (what [`FailoverEvent::Exhausted`] will
    /// list): after an [`Abandon`](FailoverEvent::Abandon), the last one says why.
    pub fn tried(&self) -> &[FailedAttempt] {
        &self.tried
    }

    /// Whether the request is over: a final response went to the transaction user, or every
    /// target failed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Give up on attempt `n` (in flight) with `why` and go on with the next target.
    fn move_on(&mut self, now: Instant, n: usize, why: AttemptFailure, health: &mut TargetHealth) {
        let attempt = &mut self.attempts[n];
        attempt.state = AttemptState::Abandoned;
        health.mark_failed(now, TargetKey::of(&attempt.target), why.cause());
        self.tried.push(FailedAttempt {
            target: attempt.target.clone(),
            why,
        });
        self.events.push_back(FailoverEvent::Abandon { attempt: n });
        self.next_target(now, health);
    }

    /// Send to the best remaining target (re-ordered by the current health: another request
    /// may have found one down meanwhile), or end with Exhausted.
    fn next_target(&mut self, now: Instant, health: &TargetHealth) {
        if self.remaining.is_empty() {
            self.live = None;
            self.done = true;
            self.events.push_back(FailoverEvent::Exhausted {
                tried: self.tried.clone(),
            });
            return;
        }
        self.remaining = health.order(&self.remaining, now);
        let target = self.remaining.remove(0);
        self.send(now, target, health);
    }

    /// Start an attempt at `target` (already taken out of `remaining`).
    fn send(&mut self, now: Instant, target: ResolvedTarget, health: &TargetHealth) -> usize {
        let last = self.remaining.is_empty();
        let budget = self
            .config
            .budget(self.kind, health.rtt(TargetKey::of(&target)));
        // The last target has nothing to move on to: it gets the whole transaction time.
        let deadline = (!last).then_some(now + budget);
        let n = self.attempts.len();
        self.attempts.push(Attempt {
            target: target.clone(),
            sent_at: now,
            deadline,
            budget,
            state: AttemptState::Waiting,
            timed: false,
        });
        self.live = Some(n);
        self.events
            .push_back(FailoverEvent::Send { attempt: n, target });
        n
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
mod tests {
    use super::*;
    use crate::resolve::{AddressStep, TargetSource, Transport};

    fn target(port: u16) -> ResolvedTarget {
        ResolvedTarget {
            transport: Transport::Udp,
            addr: ([127, 0, 0, 1], port).into(),
            host: "example.test".into(),
            priority: 0,
            weight: 0,
            source: TargetSource {
                naptr: None,
                srv: None,
                address: AddressStep::Literal,
            },
        }
    }

    fn drain(f: &mut Failover) -> Vec<FailoverEvent> {
        std::iter::from_fn(|| f.poll_event()).collect()
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn budgets_follow_the_rtt_within_the_bounds() {
        let c = FailoverConfig::default();
        let invite = RequestKind::Invite;
        let other = RequestKind::NonInvite;
        assert_eq!(c.budget(invite, None), 1000 * MS);
        assert_eq!(c.budget(other, None), 2000 * MS);
        assert_eq!(c.budget(invite, Some(20 * MS)), 1000 * MS);
        assert_eq!(c.budget(other, Some(400 * MS)), 1600 * MS);
        assert_eq!(c.budget(invite, Some(3000 * MS)), 4000 * MS);
        assert_eq!(c.budget(invite, Some(Duration::MAX)), 4000 * MS);
        let crossed = FailoverConfig {
            min_budget: Duration::from_secs(10),
            ..FailoverConfig::default()
        };
        assert_eq!(crossed.budget(invite, Some(20 * MS)), 4000 * MS);
        assert_eq!(crossed.budget(other, None), 4000 * MS);
    }

    #[test]
    fn a_black_holed_registrar_is_passed_in_a_second() {
        let c = FailoverConfig::default();
        assert_eq!(c.budget(RequestKind::Direct, None), 1000 * MS);
        assert_eq!(c.budget(RequestKind::Direct, Some(400 * MS)), 1600 * MS);
        let t0 = Instant::now();
        let mut health = TargetHealth::default();
        let mut f = Failover::new(
            t0,
            vec![target(1), target(2)],
            RequestKind::Direct,
            c,
            &health,
        );
        drain(&mut f);
        assert_eq!(f.poll_timeout(), Some(t0 + 1000 * MS));
        f.handle_timeout(t0 + 1000 * MS, &mut health);
        let events = drain(&mut f);
        assert!(
            matches!(
                &events[..],
                [
                    FailoverEvent::Abandon { attempt: 0 },
                    FailoverEvent::Send { attempt: 1, .. }
                ]
            ),
            "{events:?}"
        );
        // The last target of a REGISTER has the whole transaction time (Timer F).
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn no_targets_is_exhausted_at_once() {
        let now = Instant::now();
        let health = TargetHealth::default();
        let mut f = Failover::new(
            now,
            vec![],
            RequestKind::Invite,
            FailoverConfig::default(),
            &health,
        );
        assert_eq!(drain(&mut f), [FailoverEvent::Exhausted { tried: vec![] }]);
        assert!(f.is_done());
        assert_eq!(f.current(), None);
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn early_timeouts_unknown_attempts_and_stale_failures_change_nothing() {
        let t0 = Instant::now();
        let mut health = TargetHealth::default();
        let mut f = Failover::new(
            t0,
            vec![target(1), target(2)],
            RequestKind::NonInvite,
            FailoverConfig::default(),
            &health,
        );
        drain(&mut f);
        f.handle_timeout(t0 + 1999 * MS, &mut health);
        assert!(!f.handle_response(t0, 7, 200, None, &mut health));
        f.handle_failure(t0, 7, AttemptFailure::TransportError, &mut health);
        assert_eq!(drain(&mut f), []);
        assert_eq!(f.poll_timeout(), Some(t0 + 2000 * MS));
        assert_eq!(f.current(), Some(&target(1)));
    }

    #[test]
    fn a_provisional_answer_to_a_non_invite_stops_the_clock() {
        let t0 = Instant::now();
        let mut health = TargetHealth::default();
        let mut f = Failover::new(
            t0,
            vec![target(1), target(2)],
            RequestKind::NonInvite,
            FailoverConfig::default(),
            &health,
        );
        drain(&mut f);
        assert!(f.handle_response(t0 + 50 * MS, 0, 100, None, &mut health));
        assert_eq!(f.poll_timeout(), None);
        f.handle_timeout(t0 + Duration::from_secs(5), &mut health);
        assert_eq!(drain(&mut f), []);
        assert!(!f.is_done());
        assert!(f.handle_response(t0 + 6000 * MS, 0, 200, None, &mut health));
        assert!(f.is_done());
    }

    #[test]
    fn retry_needs_a_final_answer() {
        let t0 = Instant::now();
        let mut health = TargetHealth::default();
        let mut f = Failover::new(
            t0,
            vec![target(1)],
            RequestKind::Invite,
            FailoverConfig::default(),
            &health,
        );
        drain(&mut f);
        assert_eq!(f.retry_same(t0, &health), Err(RetryError::NotAnswered));
        assert!(f.handle_response(t0 + 10 * MS, 0, 100, None, &mut health));
        assert_eq!(f.retry_same(t0, &health), Err(RetryError::NotAnswered));
        assert!(f.handle_response(t0 + 20 * MS, 0, 407, None, &mut health));
        assert!(f.is_done());
        assert_eq!(f.retry_same(t0 + 20 * MS, &health), Ok(1));
        assert!(!f.is_done());
        // The RTT is the first response's, not the final's.
        assert_eq!(health.rtt(TargetKey::of(&target(1))), Some(10 * MS));
    }

    #[test]
    fn the_next_target_is_chosen_by_the_health_of_the_moment() {
        let t0 = Instant::now();
        let mut health = TargetHealth::default();
        let mut f = Failover::new(
            t0,
            vec![target(1), target(2), target(3)],
            RequestKind::Invite,
            FailoverConfig::default(),
            &health,
        );
        drain(&mut f);
        // Another request finds target 2 down meanwhile: target 3 goes before it.
        health.mark_failed(t0, TargetKey::of(&target(2)), FailureCause::Unreachable);
        f.handle_failure(t0 + MS, 0, AttemptFailure::Unreachable, &mut health);
        assert_eq!(
            drain(&mut f),
            [
                FailoverEvent::Abandon { attempt: 0 },
                FailoverEvent::Send {
                    attempt: 1,
                    target: target(3)
                }
            ]
        );
    }

    #[test]
    fn failures_read_well() {
        let line = |why| {
            FailedAttempt {
                target: target(5060),
                why,
            }
            .to_string()
        };
        assert_eq!(
            line(AttemptFailure::NoResponse { waited: 1000 * MS }),
            "udp:127.0.0.1:5060: no response in 1000 ms"
        );
        assert_eq!(
            line(AttemptFailure::Timeout),
            "udp:127.0.0.1:5060: transaction timed out"
        );
        assert_eq!(
            line(AttemptFailure::TransportError),
            "udp:127.0.0.1:5060: transport error"
        );
        assert_eq!(
            line(AttemptFailure::Unreachable),
            "udp:127.0.0.1:5060: unreachable (icmp)"
        );
        assert_eq!(
            line(AttemptFailure::ServiceUnavailable { retry_after: None }),
            "udp:127.0.0.1:5060: 503 service unavailable"
        );
        assert_eq!(
            line(AttemptFailure::ServiceUnavailable {
                retry_after: Some(Duration::from_secs(20))
            }),
            "udp:127.0.0.1:5060: 503 service unavailable (retry after 20 s)"
        );
    }
}
