//! Outgoing requests: each request a user waits on is resolved once (RFC 3263, through the
//! phone's cache, or from what its dialog already knows) and sent over the ordered targets by
//! the one failover machine of `tincan_sip::resolve::failover`; a 401/407 is answered and the
//! request sent again to the same target.

use tincan_sip::message::Message;
use tincan_sip::resolve::ResolvedTarget;
use tincan_sip::resolve::failover::{Failover, RequestKind};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Target;

use super::event::{AccountId, CallId, MessageId};

/// An outgoing request of the phone, named by the phone.
pub(crate) type RouteId = u64;

/// Who waits for a request's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The initial INVITE of a call (or its retry with credentials, or with SRTP).
    Invite(CallId),
    /// A request inside a call's dialog (BYE, re-INVITE, INFO).
    InDialog(CallId),
    /// The ACK of a 2xx (no transaction: sent once its next hop is known).
    Ack(CallId),
    /// A REGISTER of an account's registration slot.
    Register(AccountId, usize),
    /// The ACK or BYE ending a 2xx that came after its call was over (RFC 3261 §13.2.2.4):
    /// nobody waits for the outcome.
    Stray,
    /// The REGISTER that removes a slot's backup binding once a fail-back to a preferred
    /// registrar succeeded.
    Unbind(AccountId, usize),
    /// A page-mode MESSAGE outside any dialog (RFC 3428).
    Message(MessageId),
    /// A SUBSCRIBE of an account's `message-summary` subscription (RFC 6665, RFC 3842).
    Subscribe(AccountId),
    /// A PUBLISH of an account's presence or a SUBSCRIBE of a watch (RFC 3903, RFC 3856).
    Presence(super::presence::PresenceOwner),
    /// A SUBSCRIBE or NOTIFY of the dialog event package (RFC 4235, busy lamps).
    Event(super::blf::EventOwner),
}

impl Owner {
    pub(crate) fn call(self) -> Option<CallId> {
        match self {
            Owner::Invite(c) | Owner::InDialog(c) | Owner::Ack(c) => Some(c),
            _ => None,
        }
    }
}

/// Where a request is on its way.
pub(crate) enum Phase {
    /// Its next hop is being resolved.
    Resolving,
    /// Going over the targets.
    Sending(Failover),
    /// Nothing more will be sent.
    Done,
}

/// One outgoing request.
pub(crate) struct Route {
    pub(crate) owner: Owner,
    /// The request as it goes out next (with credentials after a challenge).
    pub(crate) request: Message,
    /// The next hop's URI text (what was resolved).
    pub(crate) next_hop: String,
    pub(crate) kind: RequestKind,
    pub(crate) phase: Phase,
    /// The client transaction and target of each attempt; `None` once it is over or was
    /// abandoned.
    pub(crate) attempts: Vec<(Option<TransactionId>, Target)>,
    /// An attempt got a provisional response (a CANCEL may go).
    pub(crate) provisional: Option<usize>,
    /// Challenges answered so far (at most two: a second challenge of the same realm means
    /// the credentials are wrong).
    pub(crate) challenges: u8,
}

impl Route {
    pub(crate) fn new(
        owner: Owner,
        request: Message,
        next_hop: String,
        kind: RequestKind,
    ) -> Route {
        Route {
            owner,
            request,
            next_hop,
            kind,
            phase: Phase::Done,
            attempts: Vec::new(),
            provisional: None,
            challenges: 0,
        }
    }

    /// Whether nothing of this request is left in flight.
    pub(crate) fn is_finished(&self) -> bool {
        let over = match &self.phase {
            Phase::Done => true,
            Phase::Sending(f) => f.is_done(),
            Phase::Resolving => false,
        };
        over && self.attempts.iter().all(|(t, _)| t.is_none())
    }
}

/// The transport target of a resolved one (the server name for TLS from the URI's domain).
pub(crate) fn transport_target(t: &ResolvedTarget) -> Target {
    let mut target = Target::new(t.transport, t.addr);
    if t.host.parse::<std::net::IpAddr>().is_err() {
        target.server_name = Some(t.host.clone());
    }
    target
}
