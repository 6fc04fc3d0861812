//! A test-side user agent: [`InviteSession`]s on top of one [`Sim`] node's [`Endpoint`].
//!
//! The glue a real driver has, kept small enough to read: session outputs become endpoint
//! sends (the next hop's host and port name a Sim node, no DNS), endpoint events go back to
//! the session that owns the transaction or matches the dialog, and the sessions' own timers
//! (the glare back-off) run on the Sim clock through [`Tu`].
//!
//! Its policy for requests no call claims: a new INVITE (no To tag) makes a call; any other
//! request gets 481 (RFC 3261 §12.2.2); a stray ACK is dropped.
//!
//! [`Endpoint`]: tincan_sip::endpoint::Endpoint

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tincan_sip::dialog::{
    EndReason, InviteConfig, InviteSession, Output, RequestOutcome, SessionEvent,
};
use tincan_sip::endpoint::{Event, Source};
use tincan_sip::message::typed::NameAddr;
use tincan_sip::message::{HeaderName, Message, Method, Uri, response_to};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Target;

use super::{Sim, Tu};

/// What a phone does with a new INVITE by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnInvite {
    /// Nothing: the test rings, accepts or rejects.
    Wait,
    /// 180 Ringing at once.
    Ring,
    /// 180 then 200 with this SDP at once.
    Accept(Option<Bytes>),
}

/// One call of a phone.
#[derive(Debug)]
pub struct Call {
    /// The session.
    pub session: InviteSession,
    /// UAC: the initial INVITE's client transaction; UAS: its server transaction.
    pub invite_tx: Option<TransactionId>,
    /// The peer's re-INVITE waiting for [`Phone::answer_reinvite`].
    pub reinvite_tx: Option<TransactionId>,
    /// The server transaction of the peer's re-INVITE we answered last (its ACK timeout
    /// belongs to this call).
    pub answered_reinvite_tx: Option<TransactionId>,
    /// The peer's UPDATE with an offer waiting for [`Phone::answer_update`].
    pub update_tx: Option<TransactionId>,
    /// The peer's PRACK with an offer waiting for [`Phone::answer_prack`].
    pub prack_tx: Option<TransactionId>,
}

/// Answers a re-INVITE's offer (`None`: the peer asks for ours) with our SDP.
pub type ReinviteAnswer = fn(Option<&Bytes>) -> Option<Bytes>;

/// A user agent on one node.
pub struct Phone {
    /// Its node.
    pub node: usize,
    /// Its user part.
    pub user: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Every call, by index.
    pub calls: Vec<Call>,
    /// Every session event: (virtual time, call index, event).
    pub events: Vec<(Duration, usize, SessionEvent)>,
    /// Endpoint events no call claimed (responses to hand-made requests, CANCEL answers...).
    pub unclaimed: Vec<(Duration, Event)>,
    /// Responses the glue itself sent, not a session: (virtual time, status, method).
    pub glue_responses: Vec<(Duration, u16, Method)>,
    /// Failed endpoint calls, as text (tests assert it stays empty).
    pub errors: Vec<String>,
    /// What to do with a new INVITE.
    pub on_invite: OnInvite,
    /// When set, a re-INVITE (or an UPDATE or PRACK with an offer) is answered 200 at once
    /// with what this returns.
    pub answer_reinvites: Option<ReinviteAnswer>,
    /// Mixed into every session's seed (the glare back-off), to vary runs.
    pub seed: u64,
    /// Session timers of new calls (RFC 4028); none unless a test sets them.
    pub session_timer: Option<tincan_sip::dialog::SessionTimerConfig>,
    /// Reliable provisional responses (RFC 3262) of new calls.
    pub prack: tincan_sip::dialog::invite::PrackPolicy,
    /// Our client transactions: call index and method.
    client_tx: HashMap<TransactionId, (usize, Method)>,
    next: u64,
}

/// The node a next hop names (its IP address and port; 5060 when none).
pub fn node_of(sim: &Sim, uri: &Uri<'_>) -> Option<usize> {
    let sip = uri.as_sip()?;
    let ip = sip.host.ip()?;
    let addr = SocketAddr::new(ip, sip.port.unwrap_or(5060));
    sim.nodes.iter().position(|n| n.addr == addr)
}

fn target_of(sim: &Sim, uri: &Uri<'_>) -> Option<Target> {
    node_of(sim, uri).map(|n| sim.target(n))
}

/// A minimal SDP body with a direction attribute (`sendrecv`, `sendonly`...).
pub fn sdp(owner: &str, version: u32, direction: &str) -> Bytes {
    Bytes::from(format!(
        "v=0\r\no={owner} 1 {version} IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\na={direction}\r\n"
    ))
}

/// The `a=` direction of an SDP body.
pub fn direction(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body).ok()?.lines().find_map(|l| {
        let a = l.strip_prefix("a=")?;
        ["sendrecv", "sendonly", "recvonly", "inactive"]
            .contains(&a)
            .then_some(a)
    })
}

/// The answer RFC 3264 §6.1 gives to an offer's direction, in a body of our own.
pub fn answer_direction(offer: Option<&Bytes>) -> Option<Bytes> {
    let dir = match offer.and_then(|b| direction(b)) {
        Some("sendonly") => "recvonly",
        Some("recvonly") => "sendonly",
        Some("inactive") => "inactive",
        _ => "sendrecv",
    };
    Some(sdp("answerer", 2, dir))
}

impl Phone {
    /// A phone on `node` with user part `user`.
    pub fn new(sim: &Sim, node: usize, user: &str) -> Phone {
        Phone {
            node,
            user: user.to_owned(),
            addr: sim.nodes[node].addr,
            calls: Vec::new(),
            events: Vec::new(),
            unclaimed: Vec::new(),
            glue_responses: Vec::new(),
            errors: Vec::new(),
            on_invite: OnInvite::Wait,
            answer_reinvites: None,
            seed: 0,
            session_timer: None,
            prack: Default::default(),
            client_tx: HashMap::new(),
            next: 0,
        }
    }

    /// Our Contact value.
    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.addr)
    }

    /// A fresh session configuration (tag, Call-ID, seed); the first CSeq is 1.
    pub fn config(&mut self) -> InviteConfig {
        self.next += 1;
        let n = self.next;
        let aor = format!("<sip:{}@{}>", self.user, self.addr);
        InviteConfig {
            local_uri: NameAddr::parse_as(HeaderName::From, &aor)
                .expect("a well-formed name-addr")
                .into_owned(),
            local_tag: format!("{}-{n}", self.user),
            contact: self.contact(),
            call_id: format!("call{n}-{}@{}", self.user, self.addr.ip()),
            cseq: 1,
            seed: self.seed ^ ((self.node as u64) << 32 | n),
            extra_headers: Vec::new(),
            session_timer: self.session_timer,
            prack: self.prack,
        }
    }

    /// Calls `user` at `to`'s node with an SDP offer: returns the call index.
    pub fn dial(&mut self, sim: &mut Sim, to: usize, user: &str, offer: Option<Bytes>) -> usize {
        let config = self.config();
        let text = format!("sip:{user}@{}", sim.nodes[to].addr);
        let uri = Uri::parse(&text).expect("a well-formed uri").into_owned();
        let to = NameAddr::new(uri.clone());
        let session = InviteSession::outgoing(config, uri, to, &[], offer);
        self.calls.push(Call {
            session,
            invite_tx: None,
            reinvite_tx: None,
            answered_reinvite_tx: None,
            update_tx: None,
            prack_tx: None,
        });
        let call = self.calls.len() - 1;
        self.flush(sim, call);
        call
    }

    /// Runs `f` on a call's session, then sends what it queued.
    pub fn act<R>(
        &mut self,
        sim: &mut Sim,
        call: usize,
        f: impl FnOnce(&mut InviteSession) -> R,
    ) -> R {
        let r = f(&mut self.calls[call].session);
        self.flush(sim, call);
        r
    }

    /// Answers the peer's pending re-INVITE on its server transaction.
    pub fn answer_reinvite(
        &mut self,
        sim: &mut Sim,
        call: usize,
        status: u16,
        body: Option<Bytes>,
    ) {
        let c = &mut self.calls[call];
        let response = c.session.answer_reinvite(status, body);
        match (response, c.reinvite_tx.take()) {
            (Some(r), Some(tx)) => {
                c.answered_reinvite_tx = Some(tx);
                if let Err(e) = sim.nodes[self.node].ep.send_response(sim.now, tx, r) {
                    self.errors.push(format!("re-INVITE answer: {e}"));
                }
            }
            _ => self.errors.push("no re-INVITE to answer".to_owned()),
        }
        self.flush(sim, call);
    }

    /// Answers the peer's pending UPDATE with an offer on its server transaction.
    pub fn answer_update(&mut self, sim: &mut Sim, call: usize, status: u16, body: Option<Bytes>) {
        let c = &mut self.calls[call];
        let response = c.session.answer_update(sim.now, status, body);
        match (response, c.update_tx.take()) {
            (Some(r), Some(tx)) => {
                if let Err(e) = sim.nodes[self.node].ep.send_response(sim.now, tx, r) {
                    self.errors.push(format!("UPDATE answer: {e}"));
                }
            }
            _ => self.errors.push("no UPDATE to answer".to_owned()),
        }
        self.flush(sim, call);
    }

    /// Answers the peer's pending PRACK with an offer on its server transaction.
    pub fn answer_prack(&mut self, sim: &mut Sim, call: usize, status: u16, body: Option<Bytes>) {
        let c = &mut self.calls[call];
        let response = c.session.answer_prack(status, body);
        match (response, c.prack_tx.take()) {
            (Some(r), Some(tx)) => {
                if let Err(e) = sim.nodes[self.node].ep.send_response(sim.now, tx, r) {
                    self.errors.push(format!("PRACK answer: {e}"));
                }
            }
            _ => self.errors.push("no PRACK to answer".to_owned()),
        }
        self.flush(sim, call);
    }

    /// The session of a call.
    pub fn session(&self, call: usize) -> &InviteSession {
        &self.calls[call].session
    }

    /// A call's events with their times in seconds.
    pub fn events_of(&self, call: usize) -> Vec<(f64, SessionEvent)> {
        self.events
            .iter()
            .filter(|(_, c, _)| *c == call)
            .map(|(t, _, e)| (t.as_secs_f64(), e.clone()))
            .collect()
    }

    /// How and when a call ended; every `Ended` of the call (a test expects exactly one).
    pub fn ends(&self, call: usize) -> Vec<(f64, EndReason)> {
        self.events_of(call)
            .into_iter()
            .filter_map(|(t, e)| match e {
                SessionEvent::Ended(r) => Some((t, r)),
                _ => None,
            })
            .collect()
    }

    /// Sends what a call's session queued and records its events.
    fn flush(&mut self, sim: &mut Sim, call: usize) {
        let node = self.node;
        while let Some(out) = self.calls[call].session.poll_output() {
            let now = sim.now;
            match out {
                Output::Request { request, next_hop } => {
                    let Some(target) = target_of(sim, &next_hop) else {
                        self.errors.push(format!("no node for {next_hop}"));
                        continue;
                    };
                    let method = request.method().cloned().unwrap_or(Method::Options);
                    match sim.nodes[node].ep.send_request(now, request, target) {
                        Ok(tx) => {
                            let c = &mut self.calls[call];
                            if method == Method::Invite
                                && c.session.is_outgoing()
                                && (c.invite_tx.is_none()
                                    || c.session.state()
                                        == tincan_sip::dialog::SessionState::Calling)
                            {
                                c.invite_tx = Some(tx);
                            }
                            self.client_tx.insert(tx, (call, method));
                        }
                        Err(e) => self.errors.push(format!("send {method}: {e}")),
                    }
                }
                Output::Ack { ack, next_hop } => {
                    let Some(target) = target_of(sim, &next_hop) else {
                        self.errors.push(format!("no node for {next_hop}"));
                        continue;
                    };
                    if let Err(e) = sim.nodes[node].ep.send_ack(ack, target) {
                        self.errors.push(format!("send ACK: {e}"));
                    }
                }
                Output::Cancel => {
                    let Some(tx) = self.calls[call].invite_tx else {
                        self.errors.push("CANCEL without an INVITE".to_owned());
                        continue;
                    };
                    match sim.nodes[node].ep.cancel(now, tx) {
                        Ok(Some(cancel)) => {
                            self.client_tx.insert(cancel, (call, Method::Cancel));
                        }
                        Ok(None) => {}
                        Err(e) => self.errors.push(format!("CANCEL: {e}")),
                    }
                }
                Output::Respond(response) => {
                    let Some(tx) = self.calls[call].invite_tx else {
                        self.errors.push("response without an INVITE".to_owned());
                        continue;
                    };
                    let status = response.status().unwrap_or(0);
                    if let Err(e) = sim.nodes[node].ep.send_response(now, tx, response) {
                        self.errors.push(format!("respond {status}: {e}"));
                    }
                }
                _ => self.errors.push("an unknown output".to_owned()),
            }
        }
        let at = sim.elapsed();
        while let Some(e) = self.calls[call].session.poll_event() {
            self.events.push((at, call, e));
        }
    }

    fn call_of_tx(&self, tx: TransactionId) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.invite_tx == Some(tx) || c.answered_reinvite_tx == Some(tx))
    }

    /// One endpoint event of our node.
    pub fn on_event(&mut self, sim: &mut Sim, at: Duration, event: Event) {
        let now = sim.now;
        match event {
            Event::Request {
                transaction,
                request,
                source,
            } => self.on_request(sim, at, transaction, request, source),
            Event::Response {
                transaction,
                response,
            } => match self.client_tx.get(&transaction) {
                Some(&(call, ref method)) if *method != Method::Cancel => {
                    self.calls[call].session.on_response(now, &response);
                    self.flush(sim, call);
                }
                _ => self.unclaimed.push((
                    at,
                    Event::Response {
                        transaction,
                        response,
                    },
                )),
            },
            Event::StrayResponse { response, source } => {
                // A 2xx from another fork after the INVITE transaction ended (RFC 6026).
                let call = self.calls.iter().position(|c| {
                    c.session.is_outgoing()
                        && response
                            .call_id()
                            .and_then(Result::ok)
                            .is_some_and(|id| id.as_str() == c.session.call_id())
                        && response
                            .from()
                            .and_then(Result::ok)
                            .and_then(|f| f.tag().map(|t| t == c.session.local_tag()))
                            == Some(true)
                });
                match call {
                    Some(call) => {
                        self.calls[call].session.on_response(now, &response);
                        self.flush(sim, call);
                    }
                    None => self
                        .unclaimed
                        .push((at, Event::StrayResponse { response, source })),
                }
            }
            Event::Timeout { transaction } | Event::TransportError { transaction } => {
                if let Some((call, method)) = self.client_tx.get(&transaction).cloned() {
                    let initial = self.calls[call].invite_tx == Some(transaction);
                    let session = &mut self.calls[call].session;
                    if initial {
                        session.on_invite_failure();
                    } else if method != Method::Cancel {
                        session.on_request_failure(&method);
                    }
                    self.flush(sim, call);
                } else {
                    self.unclaimed.push((at, event));
                }
            }
            Event::AckTimeout { transaction } => match self.call_of_tx(transaction) {
                Some(call) => {
                    self.calls[call].session.on_ack_timeout();
                    self.flush(sim, call);
                }
                None => self.unclaimed.push((at, event)),
            },
            Event::Cancelled { transaction } => match self.call_of_tx(transaction) {
                Some(call) => {
                    self.calls[call].session.on_cancelled();
                    self.flush(sim, call);
                }
                None => self.unclaimed.push((at, event)),
            },
            Event::Terminated { transaction } => {
                self.client_tx.remove(&transaction);
            }
            other => self.unclaimed.push((at, other)),
        }
    }

    fn on_request(
        &mut self,
        sim: &mut Sim,
        at: Duration,
        transaction: Option<TransactionId>,
        request: Message,
        source: Source,
    ) {
        let now = sim.now;
        let method = request.method().cloned().unwrap_or(Method::Options);
        let claimed = self
            .calls
            .iter()
            .position(|c| c.session.matches_request(&request));
        let Some(tx) = transaction else {
            // An ACK for a 2xx.
            match claimed {
                Some(call) => {
                    self.calls[call].session.on_ack(now, &request);
                    self.flush(sim, call);
                }
                None => self.unclaimed.push((
                    at,
                    Event::Request {
                        transaction,
                        request,
                        source,
                    },
                )),
            }
            return;
        };
        let to_tag = request
            .to()
            .and_then(Result::ok)
            .is_some_and(|t| t.tag().is_some());
        if method == Method::Invite && !to_tag {
            let config = self.config();
            match InviteSession::incoming(config, &request) {
                Ok(session) => {
                    self.calls.push(Call {
                        session,
                        invite_tx: Some(tx),
                        reinvite_tx: None,
                        answered_reinvite_tx: None,
                        update_tx: None,
                        prack_tx: None,
                    });
                    let call = self.calls.len() - 1;
                    match self.on_invite.clone() {
                        OnInvite::Wait => {}
                        OnInvite::Ring => self.calls[call].session.ring(now, None),
                        OnInvite::Accept(body) => {
                            self.calls[call].session.ring(now, None);
                            self.calls[call].session.accept(body);
                        }
                    }
                    self.flush(sim, call);
                }
                Err(response) => {
                    let status = response.status().unwrap_or(0);
                    self.glue_responses.push((at, status, method));
                    let _ = sim.nodes[self.node].ep.send_response(now, tx, response);
                }
            }
            return;
        }
        let Some(call) = claimed else {
            // §12.2.2: a request for a dialog we do not know.
            self.glue_responses.push((at, 481, method));
            let response = response_to(&request, 481, None);
            if let Err(e) = sim.nodes[self.node].ep.send_response(now, tx, response) {
                self.errors.push(format!("481: {e}"));
            }
            return;
        };
        match self.calls[call].session.on_request(now, &request) {
            RequestOutcome::Respond(response) => {
                if let Err(e) = sim.nodes[self.node].ep.send_response(now, tx, response) {
                    self.errors.push(format!("in-dialog answer: {e}"));
                }
            }
            RequestOutcome::Deferred if method == Method::Prack => {
                self.calls[call].prack_tx = Some(tx);
                if let Some(answer) = self.answer_reinvites {
                    // Record the PrackOffer event before our answer's own effects.
                    self.flush(sim, call);
                    let body = answer(Some(request.body()));
                    self.answer_prack(sim, call, 200, body);
                }
            }
            RequestOutcome::Deferred if method == Method::Update => {
                self.calls[call].update_tx = Some(tx);
                if let Some(answer) = self.answer_reinvites {
                    // Record the Update event before our answer's own effects.
                    self.flush(sim, call);
                    let body = answer(Some(request.body()));
                    self.answer_update(sim, call, 200, body);
                }
            }
            RequestOutcome::Deferred => {
                self.calls[call].reinvite_tx = Some(tx);
                if let Some(answer) = self.answer_reinvites {
                    let offer = (!request.body().is_empty()).then(|| request.body().clone());
                    // Record the Reinvite event before our answer's own effects.
                    self.flush(sim, call);
                    let body = answer(offer.as_ref());
                    self.answer_reinvite(sim, call, 200, body);
                }
            }
            _ => self.errors.push("an unknown request outcome".to_owned()),
        }
        self.flush(sim, call);
    }

    /// The earliest session deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .iter()
            .filter_map(|c| c.session.poll_timeout())
            .min()
    }

    /// Runs the session timers due now.
    pub fn handle_timeout(&mut self, sim: &mut Sim) {
        for call in 0..self.calls.len() {
            if self.calls[call]
                .session
                .poll_timeout()
                .is_some_and(|t| t <= sim.now)
            {
                self.calls[call].session.handle_timeout(sim.now);
                self.flush(sim, call);
            }
        }
    }
}

impl Tu for [Phone] {
    fn on_event(&mut self, sim: &mut Sim, node: usize, at: Duration, event: Event) {
        if let Some(p) = self.iter_mut().find(|p| p.node == node) {
            p.on_event(sim, at, event);
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.iter().filter_map(Phone::poll_timeout).min()
    }

    fn handle_timeout(&mut self, sim: &mut Sim) {
        for p in self.iter_mut() {
            p.handle_timeout(sim);
        }
    }
}

/// Runs the network and the phones until virtual time `until`.
pub fn run(sim: &mut Sim, phones: &mut [Phone], until: Duration) {
    sim.run_tu(until, phones);
}

/// The messages a node sent whose first line starts with `prefix`: (seconds, bytes as text).
pub fn sent(sim: &Sim, node: usize, prefix: &str) -> Vec<(f64, String)> {
    sim.nodes[node]
        .wire
        .iter()
        .filter(|(_, _, b)| b.starts_with(prefix.as_bytes()))
        .map(|(t, _, b)| (t.as_secs_f64(), String::from_utf8_lossy(b).into_owned()))
        .collect()
}

/// A header's value in a message's text.
pub fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Seconds of virtual time.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Alice (node 0, 127.0.0.1:5060) and Bob (node 1, 127.0.0.1:5070) over UDP, and their
/// phones (`phones[0]` is Alice's).
pub fn alice_and_bob(seed: u64, net: super::NetConfig) -> (Sim, Vec<Phone>) {
    let mut sim = Sim::new(seed, net);
    let config = tincan_sip::endpoint::EndpointConfig::default();
    let a = sim.add_node(
        "127.0.0.1:5060",
        tincan_sip::transport::Transport::Udp,
        config.clone(),
    );
    let b = sim.add_node(
        "127.0.0.1:5070",
        tincan_sip::transport::Transport::Udp,
        config,
    );
    let phones = vec![Phone::new(&sim, a, "alice"), Phone::new(&sim, b, "bob")];
    (sim, phones)
}

/// Alice calls Bob, who answers at once; runs until `until` and checks both calls are up.
/// Returns (Alice's call, Bob's call).
pub fn connected(sim: &mut Sim, phones: &mut [Phone], until: Duration) -> (usize, usize) {
    phones[1].on_invite = OnInvite::Accept(Some(sdp("bob", 1, "sendrecv")));
    let a = phones[0].dial(sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(sim, phones, until);
    let b = phones[1].calls.len() - 1;
    assert_eq!(
        phones[0].session(a).state(),
        tincan_sip::dialog::SessionState::Confirmed,
        "{:?}",
        phones[0].events
    );
    assert_eq!(
        phones[1].session(b).state(),
        tincan_sip::dialog::SessionState::Confirmed,
        "{:?}",
        phones[1].events
    );
    (a, b)
}
