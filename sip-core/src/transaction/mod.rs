//! Transactions (RFC 3261 §17, with the INVITE fixes of RFC 6026).
//!
//! Four state machines, one file each: [`client_invite`], [`client_non_invite`],
//! [`server_invite`], [`server_non_invite`]. They own no timers of their own: each tells the
//! [`Endpoint`](crate::endpoint::Endpoint) when it next needs to run
//! (`next_deadline`) and is run at that instant (`on_timeout`), so every timer below is
//! exercised in virtual time by the tests.

pub mod client_invite;
pub mod client_non_invite;
pub mod server_invite;
pub mod server_non_invite;

use std::collections::VecDeque;
use std::time::Duration;

use crate::message::Message;
use crate::transport::Transmit;
// Defined in `transport`, below this layer, because a `Transmit` carries it.
pub use crate::transport::TransactionId;

/// The base timer values of RFC 3261 §17.1.1.1 and Table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1, RFC 3261 §17.1.1.1: the round-trip time estimate, 500 ms by default. Timers A, E
    /// and G start at T1; B, F, H, J, L and M last 64*T1.
    pub t1: Duration,
    /// T2, RFC 3261 §17.1.2.2: the largest retransmit interval for non-INVITE requests and
    /// INVITE responses, 4 s by default.
    pub t2: Duration,
    /// T4, RFC 3261 §17.1.2.2: the longest a message stays in the network, 5 s by default;
    /// Timers I and K last T4 on unreliable transports.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1_x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D, RFC 3261 §17.1.1.2: wait time for response retransmits after a non-2xx final
    /// to an INVITE: at least 32 s on unreliable transports (or 64*T1 if larger), 0 on
    /// reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.t1_x64())
        }
    }
}

/// What a transaction tells its user (RFC 3261 §17: the transaction user). The endpoint
/// passes each report on as the [`Event`](crate::endpoint::Event) of the same name.
#[derive(Debug)]
pub(crate) enum Report {
    /// A response passed up by a client transaction (RFC 3261 §17.1.1.2, §17.1.2.2).
    Response {
        transaction: TransactionId,
        response: Message,
    },
    /// No final response before Timer B or F (RFC 3261 §17.1.1.2, §17.1.2.2).
    Timeout { transaction: TransactionId },
    /// The transport failed to send (RFC 3261 §17.1.4, §17.2.4).
    TransportError { transaction: TransactionId },
    /// A final response to an INVITE was never acknowledged (Timer H, or the 2xx
    /// retransmission of RFC 3261 §13.3.1.4 ran 64*T1).
    AckTimeout { transaction: TransactionId },
}

/// Where a transaction's reports go: the endpoint's event queue.
pub(crate) trait ReportSink {
    /// Take one report, in order.
    fn report(&mut self, report: Report);
}

/// Where a transaction's output goes.
pub(crate) struct Out<'a> {
    pub transmits: &'a mut VecDeque<Transmit>,
    pub reports: &'a mut dyn ReportSink,
}

/// What a state machine says after handling an input or a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Still alive.
    Alive,
    /// Terminated: remove it.
    Terminated,
}
