//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! ```text
//!            send request
//!   Trying  ------------>  Proceeding  (1xx)
//!     | Timer E: resend at T1, 2*T1 ... capped at T2 (unreliable only)
//!     | Timer F (64*T1): timeout
//!     v 200-699
//!   Completed --Timer K (T4, or 0 on reliable)--> Terminated
//! ```

use std::time::{Duration, Instant};

use crate::message::Message;
use crate::transport::{ConnectionId, Target, Transmit};

use super::{Out, Progress, Report, TimerConfig, TransactionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
}

/// A non-INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    id: TransactionId,
    state: State,
    request: bytes::Bytes,
    target: Target,
    connection: Option<ConnectionId>,
    timers: TimerConfig,
    /// Timer E, RFC 3261 §17.1.2.2: next retransmission and the interval after it.
    timer_e: Option<(Instant, Duration)>,
    /// Timer F, RFC 3261 §17.1.2.2: transaction timeout, 64*T1.
    timer_f: Option<Instant>,
    /// Timer K, RFC 3261 §17.1.2.2: absorbs response retransmissions, T4 (0 if reliable).
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    pub(crate) fn start(
        id: TransactionId,
        now: Instant,
        request: bytes::Bytes,
        target: Target,
        connection: Option<ConnectionId>,
        timers: TimerConfig,
        out: &mut Out<'_>,
    ) -> ClientNonInvite {
        let reliable = target.transport.is_reliable();
        let tx = ClientNonInvite {
            id,
            state: State::Trying,
            request,
            target,
            connection,
            timers,
            timer_e: (!reliable).then(|| (now + timers.t1, (timers.t1 * 2).min(timers.t2))),
            timer_f: Some(now + timers.t1_x64()),
            timer_k: None,
        };
        tx.send(out);
        tx
    }

    fn send(&self, out: &mut Out<'_>) {
        out.transmits.push_back(Transmit {
            target: self.target.clone(),
            connection: self.connection,
            payload: self.request.clone(),
            transaction: Some(self.id),
        });
    }

    /// True while the final response has not arrived.
    pub(crate) fn in_flight(&self) -> bool {
        self.state != State::Completed
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.timer_e.map(|(t, _)| t), self.timer_f, self.timer_k]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Out<'_>) -> Progress {
        if self.timer_k.is_some_and(|k| k <= now) {
            return Progress::Terminated;
        }
        if self.timer_f.is_some_and(|f| f <= now) {
            out.reports.report(Report::Timeout {
                transaction: self.id,
            });
            return Progress::Terminated;
        }
        if let Some((at, interval)) = self.timer_e
            && at <= now
        {
            self.send(out);
            // In Proceeding the interval is T2 (§17.1.2.2).
            let next = match self.state {
                State::Proceeding => self.timers.t2,
                _ => interval,
            };
            self.timer_e = Some((at + next, (next * 2).min(self.timers.t2)));
        }
        Progress::Alive
    }

    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        response: Message,
        out: &mut Out<'_>,
    ) -> Progress {
        match self.state {
            State::Completed => Progress::Alive,
            State::Trying | State::Proceeding if status < 200 => {
                if self.state == State::Trying {
                    self.state = State::Proceeding;
                    // Retransmissions continue at T2 from here (§17.1.2.2).
                    if let Some((at, _)) = self.timer_e {
                        self.timer_e = Some((at, self.timers.t2));
                    }
                }
                out.reports.report(Report::Response {
                    transaction: self.id,
                    response,
                });
                Progress::Alive
            }
            State::Trying | State::Proceeding => {
                out.reports.report(Report::Response {
                    transaction: self.id,
                    response,
                });
                self.state = State::Completed;
                self.timer_e = None;
                self.timer_f = None;
                if self.target.transport.is_reliable() {
                    return Progress::Terminated;
                }
                self.timer_k = Some(now + self.timers.t4);
                Progress::Alive
            }
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Out<'_>) -> Progress {
        if self.state == State::Completed {
            return Progress::Alive;
        }
        out.reports.report(Report::TransportError {
            transaction: self.id,
        });
        Progress::Terminated
    }
}
