//! RFC 5626 outbound flows of the registrations: keep-alives and their failure.
//!
//! An account with an `instance_id` registers with `+sip.instance` and `reg-id`; each
//! registration's flow is then kept alive by a [`FlowKeepAlive`] (sans-IO timing from
//! `tincan_sip::flow`):
//!
//! - over TCP/TLS, CRLF CRLF pings on the connection the registrar's 200 came over
//!   ([`FlowCommand::Ping`], answered by [`PhoneCore::handle_pong`]), RFC 5626 §4.4.1;
//! - over UDP, STUN Binding requests to the registrar from the SIP socket
//!   ([`FlowCommand::SendBinding`], answered by [`PhoneCore::handle_binding_response`]),
//!   §4.4.2.
//!
//! The interval is [`PhoneConfig::keepalive`](super::PhoneConfig::keepalive) /
//! [`PhoneConfig::udp_keepalive`](super::PhoneConfig::udp_keepalive), or the registrar's
//! `Flow-Timer`. A missing pong or STUN response, a closed connection
//! ([`PhoneCore::handle_connection_closed`]), an ICMP unreachable
//! ([`PhoneCore::handle_unreachable`]) or a changed XOR-MAPPED-ADDRESS fails the flow:
//! [`AccountEvent::FlowFailed`], the connection is closed ([`FlowCommand::Close`]) and the
//! same registration is sent again at once over a new flow (§4.5), to the same registrar
//! first: [`AccountEvent::FlowRecovered`] when it accepts, failover to the next registrar
//! when it does not.

use std::net::SocketAddr;
use std::time::Instant;

use tincan_sip::flow::{FlowEvent, FlowFailure, FlowKeepAlive};
use tincan_sip::stun;
use tincan_sip::transport::{ConnectionId, Transport};

use super::account::SlotState;
use super::event::{AccountEvent, AccountId};
use super::{FlowCommand, PhoneCore};

/// A registration's flow being kept alive.
pub(super) struct Flow {
    /// Its keep-alive timing.
    pub(super) keepalive: FlowKeepAlive,
    /// The TCP/TLS connection it runs on (`None` over UDP).
    pub(super) connection: Option<ConnectionId>,
}

impl PhoneCore {
    /// A CRLF keep-alive pong arrived on a connection (RFC 5626 §4.4.1).
    pub fn handle_pong(&mut self, now: Instant, connection: ConnectionId) {
        for (account, slot) in self.flow_slots(|f| f.connection == Some(connection)) {
            if let Some((f, rng)) = self.flow_and_rng(account, slot) {
                f.keepalive.handle_pong(now, rng);
            }
            self.flow_drain(now, account, slot);
        }
        self.process(now);
    }

    /// A TCP/TLS connection closed (by the peer, reset, or after [`FlowCommand::Close`]).
    pub fn handle_connection_closed(&mut self, now: Instant, connection: ConnectionId) {
        for (account, slot) in self.flow_slots(|f| f.connection == Some(connection)) {
            if let Some(f) = self.slot_mut(account, slot).and_then(|s| s.flow.as_mut()) {
                f.keepalive.handle_closed(now);
            }
            self.flow_drain(now, account, slot);
        }
        self.process(now);
    }

    /// A STUN Binding response from `target` (RFC 5626 §4.4.2), with the mapped address it
    /// carried (XOR-MAPPED-ADDRESS or MAPPED-ADDRESS).
    pub fn handle_binding_response(
        &mut self,
        now: Instant,
        target: SocketAddr,
        transaction: stun::TransactionId,
        mapped: Option<SocketAddr>,
    ) {
        for (account, slot) in self.udp_flow_slots(target) {
            if let Some((f, rng)) = self.flow_and_rng(account, slot) {
                f.keepalive
                    .handle_binding_response(now, transaction, mapped, rng);
            }
            self.flow_drain(now, account, slot);
        }
        self.process(now);
    }

    /// An ICMP unreachable for `dest`: the UDP flows to it fail.
    pub(super) fn flows_unreachable(&mut self, now: Instant, dest: SocketAddr) {
        for (account, slot) in self.udp_flow_slots(dest) {
            if let Some(f) = self.slot_mut(account, slot).and_then(|s| s.flow.as_mut()) {
                f.keepalive.handle_unreachable(now);
            }
            self.flow_drain(now, account, slot);
        }
    }

    /// A slot's flow and the phone's generator (its pings are scheduled at random).
    fn flow_and_rng(
        &mut self,
        account: AccountId,
        slot: usize,
    ) -> Option<(&mut Flow, &mut dyn rand_core::Rng)> {
        let flow = self
            .accounts
            .get_mut(account.0)?
            .slots
            .get_mut(slot)?
            .flow
            .as_mut()?;
        Some((flow, &mut *self.rng))
    }

    /// The slots whose flow matches.
    fn flow_slots(&self, matches: impl Fn(&Flow) -> bool) -> Vec<(AccountId, usize)> {
        let mut out = Vec::new();
        for (a, account) in self.accounts.iter().enumerate() {
            for (i, s) in account.slots.iter().enumerate() {
                if s.flow.as_ref().is_some_and(&matches) {
                    out.push((AccountId(a), i));
                }
            }
        }
        out
    }

    /// The slots with a UDP flow to `addr`.
    fn udp_flow_slots(&self, addr: SocketAddr) -> Vec<(AccountId, usize)> {
        let mut out = Vec::new();
        for (a, account) in self.accounts.iter().enumerate() {
            for (i, s) in account.slots.iter().enumerate() {
                if s.flow.is_some()
                    && s.target
                        .as_ref()
                        .is_some_and(|t| t.transport == Transport::Udp && t.addr == addr)
                {
                    out.push((AccountId(a), i));
                }
            }
        }
        out
    }

    /// After a 200 to a REGISTER: keeps the slot's flow alive (outbound accounts, with
    /// keep-alives configured for its transport). `connection`: the one the 200 came over.
    /// A flow still alive with the same interval and connection goes on as it is.
    pub(super) fn watch_flow(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        connection: Option<ConnectionId>,
    ) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        let outbound = a.config.instance_id.is_some();
        let Some(s) = a.slots.get(slot) else {
            return;
        };
        let (Some(target), Some(reg)) = (s.target.as_ref(), s.reg.as_ref()) else {
            return;
        };
        let base = match target.transport {
            Transport::Udp => self.config.udp_keepalive,
            _ => self.config.keepalive,
        };
        let flow_timer = reg.flow_timer();
        let stream = target.transport != Transport::Udp;
        let connection = match connection {
            Some(c) => Some(c),
            None => s.flow.as_ref().and_then(|f| f.connection),
        };
        let Some(base) = base.filter(|_| outbound && (!stream || connection.is_some())) else {
            self.drop_flow(account, slot);
            return;
        };
        let config = base.with_flow_timer(flow_timer.unwrap_or(0));
        if let Some(f) = &s.flow
            && !f.keepalive.is_failed()
            && f.keepalive.config() == config
            && f.connection == connection
        {
            return;
        }
        let answered =
            s.peer_answers || s.flow.as_ref().is_some_and(|f| f.keepalive.peer_answered());
        let mut keepalive = FlowKeepAlive::new(config, now, &mut *self.rng);
        // A Flow-Timer says the registrar supports outbound keep-alives (RFC 5626 §5.4).
        if answered || flow_timer.is_some() {
            keepalive.peer_supports_keepalive();
        }
        if let Some(s) = self.slot_mut(account, slot) {
            s.peer_answers = answered;
            s.flow = Some(Flow {
                keepalive,
                connection: connection.filter(|_| stream),
            });
        }
    }

    /// Stops keeping the slot's flow alive (its connection stays open: another REGISTER may
    /// still use it).
    pub(super) fn drop_flow(&mut self, account: AccountId, slot: usize) {
        if let Some(s) = self.slot_mut(account, slot)
            && let Some(f) = s.flow.take()
        {
            s.peer_answers |= f.keepalive.peer_answered();
        }
    }

    /// Sends a due keep-alive or notices a missing answer.
    pub(super) fn flow_timeout(&mut self, now: Instant, account: AccountId, slot: usize) {
        let Some((f, rng)) = self.flow_and_rng(account, slot) else {
            return;
        };
        if f.keepalive.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        f.keepalive.handle_timeout(now, rng);
        self.flow_drain(now, account, slot);
    }

    /// Carries out what a flow's keep-alive machine asks.
    fn flow_drain(&mut self, now: Instant, account: AccountId, slot: usize) {
        loop {
            let Some(s) = self.slot_mut(account, slot) else {
                return;
            };
            let Some(f) = s.flow.as_mut() else {
                return;
            };
            let Some(ev) = f.keepalive.poll_event() else {
                return;
            };
            let connection = f.connection;
            let target = s.target.as_ref().map(|t| t.addr);
            match ev {
                FlowEvent::SendPing => match connection {
                    Some(connection) => self.flows.push_back(FlowCommand::Ping { connection }),
                    None => f.keepalive.handle_closed(now),
                },
                FlowEvent::SendBinding(transaction) => {
                    if let Some(target) = target {
                        self.flows.push_back(FlowCommand::SendBinding {
                            target,
                            transaction,
                        });
                    }
                }
                FlowEvent::Failed(why) => {
                    self.flow_failed(now, account, slot, why);
                    return;
                }
                _ => {}
            }
        }
    }

    /// The slot's flow is dead: close it and register again over a new one (RFC 5626 §4.5).
    fn flow_failed(&mut self, now: Instant, account: AccountId, slot: usize, why: FlowFailure) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let Some(flow) = s.flow.take() else {
            return;
        };
        s.peer_answers |= flow.keepalive.peer_answered();
        if let Some(connection) = flow.connection {
            self.flows.push_back(FlowCommand::Close { connection });
        }
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        // A REGISTER already on its way (a refresh) finds out by itself.
        if s.state != SlotState::Registered {
            return;
        }
        let Some(registrar) = s.target.clone() else {
            return;
        };
        self.account_event(
            account,
            AccountEvent::FlowFailed {
                registrar,
                reason: why,
            },
        );
        self.register_again(now, account, slot);
    }
}
