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
use std::fmt;
use std::time::Duration;

use crate::endpoint::Event;
use crate::transport::Transmit;

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

/// A transaction of an [`Endpoint`](crate::endpoint::Endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub(crate) u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

impl TransactionId {
    /// The number inside, for logs.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Where a transaction's output goes.
pub(crate) struct Out<'a> {
    pub transmits: &'a mut VecDeque<Transmit>,
    pub events: &'a mut VecDeque<Event>,
}

/// What a state machine says after handling an input or a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Still alive.
    Alive,
    /// Terminated: remove it.
    Terminated,
}
