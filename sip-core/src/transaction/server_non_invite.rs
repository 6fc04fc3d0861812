//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!   Trying --1xx from TU--> Proceeding --200-699 from TU--> Completed
//!   Trying --200-699 from TU-----------------------------> Completed
//!   Completed: request retransmissions get the final again; Timer J (64*T1, 0 if reliable)
//! ```

use std::time::Instant;

use bytes::Bytes;

use crate::transport::{ConnectionId, Target, Transmit};

use super::{Out, Progress, Report, TimerConfig, TransactionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    id: TransactionId,
    state: State,
    target: Target,
    connection: Option<ConnectionId>,
    timers: TimerConfig,
    last_response: Option<Bytes>,
    /// Timer J, RFC 3261 §17.2.2: absorbs request retransmissions, 64*T1 (0 if reliable).
    timer_j: Option<Instant>,
    /// Not in the RFC: a transaction the TU never answers is dropped after 64*T1 (the
    /// client has given up by then, Timer F), so a silent TU cannot leak state.
    abandon_at: Instant,
}

impl ServerNonInvite {
    pub(crate) fn new(
        id: TransactionId,
        now: Instant,
        target: Target,
        connection: Option<ConnectionId>,
        timers: TimerConfig,
    ) -> ServerNonInvite {
        ServerNonInvite {
            id,
            state: State::Trying,
            target,
            connection,
            timers,
            last_response: None,
            timer_j: None,
            abandon_at: now + timers.t1_x64(),
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

    /// True while the final response has not been sent.
    pub(crate) fn in_flight(&self) -> bool {
        self.state != State::Completed
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Completed => self.timer_j,
            _ => Some(self.abandon_at),
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Progress {
        if self.timer_j.is_some_and(|t| t <= now) {
            return Progress::Terminated;
        }
        if self.state != State::Completed && self.abandon_at <= now {
            return Progress::Terminated;
        }
        Progress::Alive
    }

    pub(crate) fn on_request_retransmission(&mut self, out: &mut Out<'_>) {
        if let (State::Proceeding | State::Completed, Some(r)) =
            (self.state, self.last_response.clone())
        {
            self.send(out, r);
        }
    }

    pub(crate) fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        payload: Bytes,
        out: &mut Out<'_>,
    ) -> Result<Progress, &'static str> {
        if self.state == State::Completed {
            return Err("the transaction already sent a final response");
        }
        self.send(out, payload.clone());
        self.last_response = Some(payload);
        if status < 200 {
            self.state = State::Proceeding;
            return Ok(Progress::Alive);
        }
        self.state = State::Completed;
        if self.target.transport.is_reliable() {
            return Ok(Progress::Terminated);
        }
        self.timer_j = Some(now + self.timers.t1_x64());
        Ok(Progress::Alive)
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Out<'_>) -> Progress {
        out.reports.report(Report::TransportError {
            transaction: self.id,
        });
        Progress::Terminated
    }
}
