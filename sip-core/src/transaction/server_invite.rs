//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, with RFC 6026's Accepted
//! state), and the UAS core's 2xx retransmission (§13.3.1.4), kept here because it lives as
//! long as the Accepted state.
//!
//! ```text
//!   Proceeding --1xx from TU--> Proceeding (100 Trying sent after 200 ms if the TU is silent)
//!     |--2xx from TU--> Accepted: 2xx resent at T1, 2*T1 ... T2 until the ACK; Timer L (64*T1)
//!     '--300-699-----> Completed: final resent by Timer G until ACK; Timer H (64*T1)
//!                        '--ACK--> Confirmed --Timer I (T4, 0 if reliable)--> Terminated
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::transport::{ConnectionId, Target, Transmit};

use super::{Out, Progress, Report, TimerConfig, TransactionId};

/// RFC 3261 §17.2.1: a server INVITE transaction sends 100 Trying when the TU has not
/// answered within 200 ms.
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    id: TransactionId,
    state: State,
    request: crate::message::Message,
    target: Target,
    connection: Option<ConnectionId>,
    timers: TimerConfig,
    last_response: Option<Bytes>,
    /// When to send the automatic 100 Trying; it is built only then (most TUs answer first).
    trying: Option<Instant>,
    /// Timer G, RFC 3261 §17.2.1: non-2xx final retransmission, T1 doubling to T2 (unreliable);
    /// also the UAS core's 2xx retransmission schedule in Accepted (§13.3.1.4, any transport).
    timer_g: Option<(Instant, Duration)>,
    /// Timer H, RFC 3261 §17.2.1: wait for the ACK, 64*T1.
    timer_h: Option<Instant>,
    /// Timer I, RFC 3261 §17.2.1: absorbs ACK retransmissions, T4 (0 if reliable).
    timer_i: Option<Instant>,
    /// Timer L, RFC 6026 §8.7: absorbs INVITE retransmissions after a 2xx, 64*T1.
    timer_l: Option<Instant>,
    acked: bool,
}

impl ServerInvite {
    pub(crate) fn new(
        id: TransactionId,
        now: Instant,
        request: crate::message::Message,
        target: Target,
        connection: Option<ConnectionId>,
        timers: TimerConfig,
    ) -> ServerInvite {
        ServerInvite {
            id,
            state: State::Proceeding,
            request,
            target,
            connection,
            timers,
            last_response: None,
            trying: Some(now + TRYING_DELAY),
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            acked: false,
        }
    }

    fn send(&self, out: &mut Out<'_>, payload: Bytes) {
        out.transmits.push_back(Transmit {
            target: self.target.clone(),
            connection: self.connection,
            payload,
            transaction: Some(self.id),
        });
    }

    /// The INVITE.
    pub(crate) fn request(&self) -> &crate::message::Message {
        &self.request
    }

    /// True while no final response was sent (a CANCEL can still end it with 487).
    pub(crate) fn is_proceeding(&self) -> bool {
        self.state == State::Proceeding
    }

    /// True while no final response was sent, or a 2xx waits for its ACK.
    pub(crate) fn in_flight(&self) -> bool {
        self.state == State::Proceeding || (self.state == State::Accepted && !self.acked)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.trying,
            self.timer_g.map(|(t, _)| t),
            self.timer_h,
            self.timer_i,
            self.timer_l,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`; `server` is the `Server` header of the automatic 100.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
        server: Option<&str>,
    ) -> Progress {
        if self.timer_i.is_some_and(|t| t <= now) {
            return Progress::Terminated;
        }
        if self.timer_l.is_some_and(|t| t <= now) {
            if !self.acked {
                out.reports.report(Report::AckTimeout {
                    transaction: self.id,
                });
            }
            return Progress::Terminated;
        }
        if self.timer_h.is_some_and(|t| t <= now) {
            out.reports.report(Report::AckTimeout {
                transaction: self.id,
            });
            return Progress::Terminated;
        }
        if self.trying.is_some_and(|at| at <= now) {
            self.trying = None;
            let mut trying = crate::message::response_to(&self.request, 100, None);
            if let Some(server) = server {
                trying.push_header(crate::message::HeaderName::Server, server);
            }
            let trying = trying.to_bytes();
            self.send(out, trying.clone());
            self.last_response = Some(trying);
        }
        if let Some((at, interval)) = self.timer_g
            && at <= now
        {
            if let Some(r) = self.last_response.clone() {
                self.send(out, r);
            }
            self.timer_g = Some((at + interval, (interval * 2).min(self.timers.t2)));
        }
        Progress::Alive
    }

    /// A retransmission of the INVITE.
    pub(crate) fn on_request_retransmission(&mut self, out: &mut Out<'_>) {
        match self.state {
            // §17.2.1: resend the last provisional (or the final in Completed).
            State::Proceeding | State::Completed => {
                if let Some(r) = self.last_response.clone() {
                    self.send(out, r);
                }
            }
            // RFC 6026 §7.1: absorbed; the 2xx is being retransmitted anyway.
            State::Accepted | State::Confirmed => {}
        }
    }

    /// The ACK for a non-2xx final (same branch).
    pub(crate) fn on_ack(&mut self, now: Instant) -> Progress {
        if self.state == State::Completed {
            self.state = State::Confirmed;
            self.timer_g = None;
            self.timer_h = None;
            if self.target.transport.is_reliable() {
                return Progress::Terminated;
            }
            self.timer_i = Some(now + self.timers.t4);
        }
        Progress::Alive
    }

    /// The ACK for a 2xx (a new transaction of its own): stop retransmitting the 2xx.
    pub(crate) fn on_ack_2xx(&mut self) {
        if self.state == State::Accepted {
            self.acked = true;
            self.timer_g = None;
        }
    }

    /// A response from the TU.
    /// The To tag of the last provisional or final response sent, if any: a 487 after CANCEL
    /// keeps the tag of the early dialog the 1xx created (RFC 3261 §8.2.6.2).
    pub(crate) fn last_to_tag(&self) -> Option<String> {
        let msg = crate::message::Message::parse(self.last_response.clone()?).ok()?;
        msg.to()?.ok()?.tag().map(str::to_owned)
    }

    pub(crate) fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        payload: Bytes,
        out: &mut Out<'_>,
    ) -> Result<(), &'static str> {
        match (self.state, status) {
            (State::Proceeding, 100..=199) => {
                self.trying = None;
                self.send(out, payload.clone());
                self.last_response = Some(payload);
            }
            (State::Proceeding, 200..=299) => {
                self.trying = None;
                self.send(out, payload.clone());
                self.last_response = Some(payload);
                self.state = State::Accepted;
                self.timer_l = Some(now + self.timers.t1_x64());
                // §13.3.1.4: the UAS core retransmits the 2xx whatever the transport.
                self.timer_g = Some((
                    now + self.timers.t1,
                    (self.timers.t1 * 2).min(self.timers.t2),
                ));
            }
            (State::Accepted, 200..=299) => {
                // A 2xx on another dialog of the same INVITE is not expected from a UA; send it.
                self.send(out, payload);
            }
            (State::Proceeding, _) => {
                self.trying = None;
                self.send(out, payload.clone());
                self.last_response = Some(payload);
                self.state = State::Completed;
                if !self.target.transport.is_reliable() {
                    self.timer_g = Some((
                        now + self.timers.t1,
                        (self.timers.t1 * 2).min(self.timers.t2),
                    ));
                }
                self.timer_h = Some(now + self.timers.t1_x64());
            }
            _ => return Err("the transaction already sent a final response"),
        }
        Ok(())
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Out<'_>) -> Progress {
        out.reports.report(Report::TransportError {
            transaction: self.id,
        });
        Progress::Terminated
    }
}
