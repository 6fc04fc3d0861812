//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, with RFC 6026's Accepted state).
//!
//! ```text
//!   Calling --1xx--> Proceeding
//!     | Timer A: resend at T1, 2*T1, 4*T1 ... (unreliable only)
//!     | Timer B (64*T1): timeout
//!     |--300-699--> Completed (ACK sent by the transaction) --Timer D--> Terminated
//!     '--2xx------> Accepted (2xx passed up, ACK is the TU's) --Timer M (64*T1)--> Terminated
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::{HeaderName, Message, Method, typed};
use crate::transport::{ConnectionId, Target, Transmit};

use super::{Out, Progress, Report, TimerConfig, TransactionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    id: TransactionId,
    state: State,
    request: Message,
    bytes: Bytes,
    target: Target,
    connection: Option<ConnectionId>,
    timers: TimerConfig,
    /// Timer A, RFC 3261 §17.1.1.2: next retransmission and the interval after it (doubling).
    timer_a: Option<(Instant, Duration)>,
    /// Timer B, RFC 3261 §17.1.1.2: INVITE transaction timeout, 64*T1.
    timer_b: Option<Instant>,
    /// Timer D, RFC 3261 §17.1.1.2: absorbs final response retransmissions, 32 s (0 if reliable).
    timer_d: Option<Instant>,
    /// Timer M, RFC 6026 §8.4: absorbs 2xx retransmissions from other branches, 64*T1.
    timer_m: Option<Instant>,
    ack: Option<Bytes>,
    provisional_seen: bool,
}

impl ClientInvite {
    pub(crate) fn start(
        id: TransactionId,
        now: Instant,
        request: Message,
        target: Target,
        connection: Option<ConnectionId>,
        timers: TimerConfig,
        out: &mut Out<'_>,
    ) -> ClientInvite {
        let reliable = target.transport.is_reliable();
        let bytes = request.to_bytes();
        let tx = ClientInvite {
            id,
            state: State::Calling,
            request,
            bytes,
            target,
            connection,
            timers,
            timer_a: (!reliable).then(|| (now + timers.t1, timers.t1 * 2)),
            timer_b: Some(now + timers.t1_x64()),
            timer_d: None,
            timer_m: None,
            ack: None,
            provisional_seen: false,
        };
        tx.send(out, tx.bytes.clone());
        tx
    }

    fn send(&self, out: &mut Out<'_>, payload: Bytes) {
        out.transmits.push_back(Transmit {
            target: self.target.clone(),
            connection: self.connection,
            payload,
            transaction: Some(self.id),
        });
    }

    pub(crate) fn request(&self) -> &Message {
        &self.request
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn connection(&self) -> Option<ConnectionId> {
        self.connection
    }

    /// True once a provisional response arrived (a CANCEL may be sent, §9.1).
    pub(crate) fn provisional_seen(&self) -> bool {
        self.provisional_seen
    }

    /// True while a final response has not arrived (CANCEL still makes sense).
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self.state, State::Calling | State::Proceeding)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.timer_a.map(|(t, _)| t),
            self.timer_b,
            self.timer_d,
            self.timer_m,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Out<'_>) -> Progress {
        if self.timer_d.is_some_and(|d| d <= now) || self.timer_m.is_some_and(|m| m <= now) {
            return Progress::Terminated;
        }
        if self.timer_b.is_some_and(|b| b <= now) {
            out.reports.report(Report::Timeout {
                transaction: self.id,
            });
            return Progress::Terminated;
        }
        if let Some((at, interval)) = self.timer_a
            && at <= now
        {
            self.send(out, self.bytes.clone());
            self.timer_a = Some((at + interval, interval * 2));
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
        match (self.state, status) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.provisional_seen = true;
                self.timer_a = None;
                // Timer B only guards Calling (§17.1.1.2).
                self.timer_b = None;
                out.reports.report(Report::Response {
                    transaction: self.id,
                    response,
                });
                Progress::Alive
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_m = Some(now + self.timers.t1_x64());
                out.reports.report(Report::Response {
                    transaction: self.id,
                    response,
                });
                Progress::Alive
            }
            (State::Accepted, 200..=299) => {
                // RFC 6026 §8.4: retransmitted or forked 2xx go to the TU, which ACKs them.
                out.reports.report(Report::Response {
                    transaction: self.id,
                    response,
                });
                Progress::Alive
            }
            (State::Calling | State::Proceeding, _) => {
                let ack = build_ack(&self.request, &response).to_bytes();
                self.send(out, ack.clone());
                self.ack = Some(ack);
                self.state = State::Completed;
                self.timer_a = None;
                self.timer_b = None;
                out.reports.report(Report::Response {
                    transaction: self.id,
                    response,
                });
                let d = self.timers.timer_d(self.target.transport.is_reliable());
                if d.is_zero() {
                    return Progress::Terminated;
                }
                self.timer_d = Some(now + d);
                Progress::Alive
            }
            (State::Completed, 300..=699) => {
                // A retransmitted final: ACK it again, do not pass it up (§17.1.1.2).
                if let Some(ack) = self.ack.clone() {
                    self.send(out, ack);
                }
                Progress::Alive
            }
            _ => Progress::Alive,
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Out<'_>) -> Progress {
        if !self.is_pending() {
            return Progress::Alive;
        }
        out.reports.report(Report::TransportError {
            transaction: self.id,
        });
        Progress::Terminated
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, Call-ID,
/// From, CSeq number and top Via as the INVITE, To from the response, the INVITE's Route set.
pub(crate) fn build_ack(invite: &Message, response: &Message) -> Message {
    let mut ack = Message::new_request(
        Method::Ack,
        &invite.uri().unwrap_or_else(|| {
            crate::message::Uri::parse("sip:invalid").expect("literal URI parses")
        }),
    );
    if let Some(Ok(via)) = invite.top_via() {
        ack.push_header(HeaderName::Via, &via.to_string());
    }
    ack.copy_header_from(invite, HeaderName::Route);
    ack.push_header(HeaderName::MaxForwards, "70");
    ack.copy_header_from(invite, HeaderName::From);
    ack.copy_header_from(response, HeaderName::To);
    ack.copy_header_from(invite, HeaderName::CallId);
    if let Some(Ok(cseq)) = invite.cseq() {
        ack.push_header(
            HeaderName::CSeq,
            &typed::CSeq {
                seq: cseq.seq,
                method: Method::Ack,
            }
            .to_string(),
        );
    }
    ack.push_header(HeaderName::ContentLength, "0");
    ack
}
