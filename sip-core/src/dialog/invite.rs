//! One call: the INVITE session of RFC 3261 §13-§15 on top of [`Dialog`]s.
//!
//! ```text
//!  UAC: Calling --1xx(tag)--> Early --2xx--> Confirmed --BYE--> Terminated
//!         |  hangup: CANCEL; a 2xx that crosses it gets ACK + BYE (the CANCEL/200 race)
//!         '--3xx-6xx / timeout--> Terminated
//!  UAS: Incoming --accept: 2xx--> Answered --ACK--> Confirmed --BYE--> Terminated
//!         '--reject / CANCEL--> Terminated       '--no ACK (64*T1)--> BYE, Terminated
//! ```
//!
//! Forking (§13.2.2.4): every provisional with a new To tag makes an early dialog; the first
//! 2xx wins and confirms its dialog; a 2xx from another branch is acknowledged and ended with
//! a BYE. Re-INVITE (§14) changes the session (hold, resume, codec); when both sides send one
//! at once the loser gets 491 and retries after the random wait of §14.1.
//!
//! The session owns no transactions: it gives [`Output`]s (requests to send in new client
//! transactions, ACKs, a CANCEL, responses to the initial INVITE) and takes back the
//! responses, requests and failures that concern it. SDP bodies are opaque bytes here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Dialog, DialogError, DialogId};
use crate::auth::ChallengeAnswer;
use crate::message::typed::{CSeq, Method, NameAddr};
use crate::message::{HeaderName, Message, RequestBuilder, Uri, response_to};
use crate::rng::XorShiftRng;
use rand_core::SeedableRng;

/// The methods a Tincan user agent handles: the default
/// [`EndpointConfig::methods`](crate::endpoint::EndpointConfig::methods), so that every other
/// method gets 501 (or 405) from the endpoint, and, as [`ALLOW`], the `Allow` of its 200 to OPTIONS, its 2xx to INVITE and its
/// refusals (RFC 3261 §20.5). PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY, MESSAGE and PUBLISH are
/// not implemented.
pub const METHODS: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Info,
];

/// [`METHODS`] as an `Allow` value (RFC 3261 §20.5); a test keeps the two equal.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";

/// The SDP content type.
pub const SDP: &str = "application/sdp";

/// RFC 3261 §14.1: after a 491, the owner of the Call-ID waits 2.1 to 4 s...
const GLARE_OWNER: (u64, u64) = (2100, 4000);
/// ... and the other side 0 to 2 s, both in units of 10 ms.
const GLARE_OTHER: (u64, u64) = (0, 2000);

/// What a new session needs from the user agent.
#[derive(Debug, Clone)]
pub struct InviteConfig {
    /// Our address of record (From as UAC), without a tag.
    pub local_uri: NameAddr<'static>,
    /// Our tag.
    pub local_tag: String,
    /// Our Contact header value (`<sip:alice@192.0.2.1:5060>`).
    pub contact: String,
    /// The Call-ID (UAC; a UAS takes the request's).
    pub call_id: String,
    /// The first CSeq number (UAC).
    pub cseq: u32,
    /// Seed for the glare back-off.
    pub seed: u64,
    /// Extra headers for every request we create (`User-Agent`...), as (name, value).
    pub extra_headers: Vec<(String, String)>,
}

/// The session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// UAC: INVITE sent, no dialog yet.
    Calling,
    /// UAC: at least one early dialog.
    Early,
    /// UAS: INVITE received, not answered.
    Incoming,
    /// UAS: 2xx sent, waiting for the ACK.
    Answered,
    /// The call is up.
    Confirmed,
    /// Over.
    Terminated,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// We hung up (BYE sent, or CANCEL before the answer).
    LocalHangup,
    /// The peer hung up (BYE, or CANCEL before we answered).
    RemoteHangup,
    /// The call did not connect: a final response 300-699.
    Rejected {
        /// The status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// No answer in time, or the transport failed.
    Timeout,
    /// We answered but never got the ACK (§13.3.1.4).
    AckTimeout,
    /// The dialog was lost (481/408 to an in-dialog request).
    DialogGone {
        /// The status.
        status: u16,
    },
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A provisional response (UAC), with early media SDP if any.
    Progress {
        /// 180, 183...
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Its SDP, if any.
        body: Option<Bytes>,
    },
    /// UAC: the call was answered. When `offer` is true the 2xx carries an offer (we sent
    /// none): call [`InviteSession::ack_with_answer`].
    Answered {
        /// The 2xx's SDP.
        body: Option<Bytes>,
        /// Whether `body` is an offer awaiting our answer in the ACK.
        offer: bool,
    },
    /// UAS: the ACK arrived; the call is up. `body` is the answer when we offered in the 2xx.
    Confirmed {
        /// The ACK's SDP.
        body: Option<Bytes>,
    },
    /// The peer sent a re-INVITE: answer it with [`InviteSession::answer_reinvite`]. `body`
    /// is its offer, or `None` when it asks for ours.
    Reinvite {
        /// The offer.
        body: Option<Bytes>,
    },
    /// Our re-INVITE was accepted, with the peer's answer.
    ReinviteAccepted {
        /// The answer.
        body: Option<Bytes>,
    },
    /// Our re-INVITE was refused; the call goes on as before.
    ReinviteRejected {
        /// The status.
        status: u16,
    },
    /// The ACK of our 2xx to the peer's re-INVITE (with the answer when we offered).
    ReinviteConfirmed {
        /// The ACK's SDP.
        body: Option<Bytes>,
    },
    /// A DTMF key arrived in an INFO (application/dtmf-relay).
    Dtmf {
        /// The key.
        digit: char,
        /// How long it was held.
        duration: Duration,
    },
    /// The call ended.
    Ended(EndReason),
}

/// What the session asks its driver to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Send in a new client transaction; resolve `next_hop` (RFC 3263) for the transport.
    Request {
        /// The request.
        request: Message,
        /// Where it goes first.
        next_hop: Uri<'static>,
    },
    /// Send an ACK for a 2xx (no transaction).
    Ack {
        /// The ACK.
        ack: Message,
        /// Where it goes first.
        next_hop: Uri<'static>,
    },
    /// CANCEL the initial INVITE's client transaction.
    Cancel,
    /// Respond on the initial INVITE's server transaction.
    Respond(Message),
}

/// The answer to an in-dialog request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// Send this response now.
    Respond(Message),
    /// A re-INVITE: a [`SessionEvent::Reinvite`] was queued; respond with
    /// [`InviteSession::answer_reinvite`].
    Deferred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Uac,
    Uas,
}

/// One call.
#[derive(Debug)]
pub struct InviteSession {
    role: Role,
    state: SessionState,
    config: InviteConfig,
    /// The initial INVITE (ours as UAC, the peer's as UAS).
    invite: Message,
    invite_seq: u32,
    /// UAC: early dialogs from forks, by remote tag.
    early: Vec<Dialog>,
    /// The confirmed dialog (UAS: from the start).
    dialog: Option<Dialog>,
    /// The ACK we sent for the winning 2xx, resent on its retransmissions.
    last_ack: Option<(u32, Message)>,
    cancelling: bool,
    /// UAS: hang up once the ACK arrives.
    bye_after_ack: bool,
    /// Our re-INVITE in flight: its CSeq and body.
    reinvite_out: Option<(u32, Option<Bytes>)>,
    /// A re-INVITE to retry after a 491, at this instant.
    glare_retry: Option<(Instant, Option<Bytes>)>,
    /// The peer's re-INVITE waiting for our answer.
    reinvite_in: Option<Message>,
    /// The CSeq of the peer's re-INVITE we answered 2xx, until its ACK. The peer numbers its
    /// requests on its own, so this can equal `invite_seq` (a callee's first re-INVITE has
    /// CSeq 1 like many callers' INVITE).
    reinvite_acked_seq: Option<u32>,
    /// Whether our 2xx to the peer's re-INVITE (or the initial INVITE) carried an offer.
    offered_in_2xx: bool,
    rng: XorShiftRng,
    outputs: VecDeque<Output>,
    events: VecDeque<SessionEvent>,
}

impl InviteSession {
    /// Starts a call (UAC): queues the INVITE to `request_uri` with `to` as To, a preloaded
    /// route set (`routes`, e.g. an outbound proxy `<sip:proxy;lr>`) and an SDP offer (or
    /// `None` to let the peer offer in its 2xx).
    pub fn outgoing(
        config: InviteConfig,
        request_uri: Uri<'static>,
        to: NameAddr<'static>,
        routes: &[String],
        offer: Option<Bytes>,
    ) -> InviteSession {
        let mut from = config.local_uri.clone();
        from.params.set("tag", Some(&config.local_tag));
        let mut b = RequestBuilder::new(Method::Invite, &request_uri);
        for r in routes {
            b = b.header(HeaderName::Route, r);
        }
        b = b
            .header(HeaderName::From, &from.to_string())
            .header(HeaderName::To, &to.to_string())
            .call_id(&config.call_id)
            .cseq(config.cseq)
            .header(HeaderName::Contact, &config.contact)
            .header(HeaderName::Allow, ALLOW);
        for (n, v) in &config.extra_headers {
            b = b.header_named(n, v);
        }
        if let Some(body) = offer {
            b = b.body(SDP, body);
        }
        let invite = b.build();
        let next_hop = routes
            .first()
            .and_then(|r| NameAddr::parse_as(HeaderName::Route, r).ok())
            .and_then(|r| r.uri().ok().map(Uri::into_owned))
            .unwrap_or_else(|| request_uri.clone());
        let invite_seq = config.cseq;
        let mut outputs = VecDeque::new();
        outputs.push_back(Output::Request {
            request: invite.clone(),
            next_hop,
        });
        let mut session = InviteSession::new(Role::Uac, config, invite, invite_seq, None);
        session.outputs = outputs;
        session
    }

    fn new(
        role: Role,
        config: InviteConfig,
        invite: Message,
        invite_seq: u32,
        dialog: Option<Dialog>,
    ) -> InviteSession {
        let seed = config.seed;
        InviteSession {
            role,
            state: match role {
                Role::Uac => SessionState::Calling,
                Role::Uas => SessionState::Incoming,
            },
            config,
            invite,
            invite_seq,
            early: Vec::new(),
            dialog,
            last_ack: None,
            cancelling: false,
            bye_after_ack: false,
            reinvite_out: None,
            glare_retry: None,
            reinvite_in: None,
            reinvite_acked_seq: None,
            offered_in_2xx: false,
            rng: XorShiftRng::seed_from_u64(seed),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Takes an incoming INVITE (UAS). The call waits for [`ring`](Self::ring),
    /// [`accept`](Self::accept) or [`reject`](Self::reject).
    ///
    /// # Errors
    ///
    /// The response to send (400) when the INVITE cannot make a dialog (no Contact...).
    // The error is the response to send at once, on a rare path: boxing it would only
    // change the API others code against.
    #[allow(clippy::result_large_err)]
    pub fn incoming(mut config: InviteConfig, invite: &Message) -> Result<InviteSession, Message> {
        let dialog = Dialog::uas(invite, &config.local_tag, &config.contact).map_err(|e| {
            let mut r = response_to(invite, 400, Some(&e.to_string()));
            r.set_to_tag(&config.local_tag);
            r
        })?;
        // The call is the INVITE's: `call_id()` and request matching use its Call-ID.
        config.call_id.clone_from(&dialog.id().call_id);
        let invite_seq = invite.cseq().and_then(Result::ok).map_or(0, |c| c.seq);
        Ok(InviteSession::new(
            Role::Uas,
            config,
            invite.clone(),
            invite_seq,
            Some(dialog),
        ))
    }

    /// The state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The confirmed dialog (UAS: from the start).
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.config.call_id
    }

    /// Our tag.
    pub fn local_tag(&self) -> &str {
        &self.config.local_tag
    }

    /// The initial INVITE (ours as UAC, the peer's as UAS).
    pub fn invite(&self) -> &Message {
        &self.invite
    }

    /// Whether this session is a UAC (we called).
    pub fn is_outgoing(&self) -> bool {
        self.role == Role::Uac
    }

    /// Whether a received request belongs to this call (its dialog, or the initial INVITE's
    /// Call-ID and From tag for a UAS).
    pub fn matches_request(&self, request: &Message) -> bool {
        if let Some(d) = &self.dialog
            && d.matches_request(request)
        {
            return true;
        }
        // The ACK or BYE of an early UAS dialog carries our To tag too; a CANCEL has none.
        let Some(Ok(call_id)) = request.call_id() else {
            return false;
        };
        if call_id.as_str() != self.config.call_id {
            return false;
        }
        let to_tag = request.to().and_then(Result::ok);
        let to_tag = to_tag.as_ref().and_then(|t| t.tag());
        match self.role {
            Role::Uas => to_tag.is_none_or(|t| t == self.config.local_tag),
            Role::Uac => self.early.iter().any(|d| d.matches_request(request)),
        }
    }

    /// The next thing to send.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run (the glare retry). A retry
    /// waits while the peer's re-INVITE is unanswered (§14.1: no new INVITE transaction while
    /// another is in progress in either direction); it is due at once after the answer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.reinvite_in.is_some() {
            return None;
        }
        self.glare_retry.as_ref().map(|(t, _)| *t)
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((at, _)) = &self.glare_retry
            && *at <= now
            && self.reinvite_in.is_none()
        {
            let (_, body) = self.glare_retry.take().expect("checked just above");
            if self.state == SessionState::Confirmed && self.reinvite_out.is_none() {
                self.send_reinvite(body);
            }
        }
    }

    // ------------------------------------------------------------------ UAS side

    fn uas_response(&self, status: u16, body: Option<Bytes>) -> Message {
        let mut r = response_to(&self.invite, status, None);
        r.set_to_tag(&self.config.local_tag);
        if status > 100 && status < 300 {
            // A response that creates a dialog carries the request's Record-Route values, in
            // order (RFC 3261 §12.1.1): the caller's route set comes from them.
            let routes: Vec<&str> = self
                .invite
                .header_lines_named("Record-Route")
                .filter_map(Result::ok)
                .collect();
            for route in routes {
                r.push_header(HeaderName::RecordRoute, route);
            }
            r.push_header(HeaderName::Contact, &self.config.contact);
        }
        if (200..300).contains(&status) {
            r.push_header(HeaderName::Allow, ALLOW);
        }
        if let Some(b) = body {
            r.set_body(Some(SDP), b);
        }
        r
    }

    /// UAS: sends 180 Ringing, or 183 Session Progress with early media SDP.
    pub fn ring(&mut self, early_media: Option<Bytes>) {
        if self.state != SessionState::Incoming {
            return;
        }
        let status = if early_media.is_some() { 183 } else { 180 };
        let r = self.uas_response(status, early_media);
        self.outputs.push_back(Output::Respond(r));
    }

    /// UAS: answers 200 with our SDP (the answer, or an offer when the INVITE had none).
    pub fn accept(&mut self, body: Option<Bytes>) {
        if self.state != SessionState::Incoming {
            return;
        }
        self.offered_in_2xx = self.invite.body().is_empty() && body.is_some();
        let r = self.uas_response(200, body);
        if let Some(d) = &mut self.dialog {
            d.confirm();
        }
        self.state = SessionState::Answered;
        self.outputs.push_back(Output::Respond(r));
    }

    /// UAS: refuses the call (486 Busy Here, 603 Decline, 488 Not Acceptable Here...).
    pub fn reject(&mut self, status: u16, warning: Option<&str>) {
        if self.state != SessionState::Incoming {
            return;
        }
        let mut r = self.uas_response(status, None);
        if let Some(w) = warning {
            r.push_header(HeaderName::Warning, w);
        }
        self.outputs.push_back(Output::Respond(r));
        self.end(EndReason::LocalHangup);
    }

    /// UAS: the initial INVITE was cancelled (the endpoint sent 200 to the CANCEL and 487).
    pub fn on_cancelled(&mut self) {
        if self.state == SessionState::Incoming {
            self.end(EndReason::RemoteHangup);
        }
    }

    /// An ACK for our 2xx (initial or re-INVITE).
    pub fn on_ack(&mut self, _now: Instant, ack: &Message) {
        let seq = ack.cseq().and_then(Result::ok).map_or(0, |c| c.seq);
        let body = (!ack.body().is_empty()).then(|| ack.body().clone());
        if self.state == SessionState::Answered && seq == self.invite_seq {
            self.state = SessionState::Confirmed;
            self.events.push_back(SessionEvent::Confirmed {
                body: body.filter(|_| self.offered_in_2xx),
            });
            if self.bye_after_ack {
                self.send_bye();
                self.end(EndReason::LocalHangup);
            }
        } else if self.state == SessionState::Confirmed && self.reinvite_acked_seq == Some(seq) {
            // The first ACK of our 2xx to the peer's re-INVITE; copies for 2xx
            // retransmissions are not reported again.
            self.reinvite_acked_seq = None;
            self.events.push_back(SessionEvent::ReinviteConfirmed {
                body: body.filter(|_| self.offered_in_2xx),
            });
        }
    }

    /// UAS: our 2xx to the INVITE (§13.3.1.4) or to the peer's re-INVITE (§14.2) was never
    /// acknowledged: the call ends with a BYE.
    pub fn on_ack_timeout(&mut self) {
        let unacked = match self.state {
            SessionState::Answered => true,
            SessionState::Confirmed => self.reinvite_acked_seq.take().is_some(),
            _ => false,
        };
        if unacked {
            self.send_bye();
            self.end(EndReason::AckTimeout);
        }
    }

    // ------------------------------------------------------------------ UAC side

    /// A response to one of our requests in this call (the INVITE, a re-INVITE, BYE, INFO).
    pub fn on_response(&mut self, now: Instant, response: &Message) {
        let Some(Ok(cseq)) = response.cseq() else {
            return;
        };
        let status = response.status().unwrap_or(0);
        match cseq.method {
            Method::Invite if cseq.seq == self.invite_seq && self.role == Role::Uac => {
                self.on_invite_response(response, status)
            }
            Method::Invite => self.on_reinvite_response(now, response, cseq.seq, status),
            // Only our dialog's answers end the call: the BYE that ends a losing fork's
            // dialog (§13.2.2.4) gets its own 200, which must not end the winner's.
            _ if !self
                .dialog
                .as_ref()
                .is_some_and(|d| d.matches_response(response)) => {}
            Method::Bye => {
                if status >= 200 {
                    self.end(EndReason::LocalHangup);
                }
            }
            _ => {
                if matches!(status, 481 | 408) {
                    self.send_bye_if_up();
                    self.end(EndReason::DialogGone { status });
                }
            }
        }
    }

    fn on_invite_response(&mut self, response: &Message, status: u16) {
        let body = (!response.body().is_empty()).then(|| response.body().clone());
        let to_tag = response
            .to()
            .and_then(Result::ok)
            .and_then(|t| t.tag().map(str::to_owned));
        match status {
            100 => {}
            101..=199 => {
                if self.state == SessionState::Terminated {
                    return;
                }
                if let Some(tag) = &to_tag {
                    match self.early.iter_mut().find(|d| &d.id().remote_tag == tag) {
                        Some(d) => d.receive_response(response),
                        None => {
                            if let Ok(d) = Dialog::uac(&self.invite, response) {
                                self.early.push(d);
                            }
                        }
                    }
                    if self.state == SessionState::Calling {
                        self.state = SessionState::Early;
                    }
                }
                self.events.push_back(SessionEvent::Progress {
                    status,
                    reason: response.reason().unwrap_or_default().into_owned(),
                    body,
                });
            }
            200..=299 => {
                let Some(tag) = to_tag else { return };
                if let Some(d) = &self.dialog {
                    if d.id().remote_tag == tag {
                        // A retransmission of the winning 2xx: our ACK got lost.
                        if let Some((_, ack)) = &self.last_ack {
                            let next_hop = d.next_hop();
                            self.outputs.push_back(Output::Ack {
                                ack: ack.clone(),
                                next_hop,
                            });
                        }
                    } else {
                        self.ack_and_bye(response);
                    }
                    return;
                }
                if self.state == SessionState::Terminated {
                    // A late 2xx after we gave up: acknowledge it and end that dialog.
                    self.ack_and_bye(response);
                    return;
                }
                let mut dialog = match self.early.iter().position(|d| d.id().remote_tag == tag) {
                    Some(i) => self.early.swap_remove(i),
                    None => match Dialog::uac(&self.invite, response) {
                        Ok(d) => d,
                        Err(_) => return,
                    },
                };
                dialog.receive_response(response);
                self.early.clear();
                self.dialog = Some(dialog);
                let offer = self.invite.body().is_empty() && body.is_some();
                if self.cancelling {
                    // The CANCEL/200 race (§9.1): the call was answered as we hung up.
                    self.send_ack(None);
                    self.send_bye();
                    self.end(EndReason::LocalHangup);
                    return;
                }
                self.state = SessionState::Confirmed;
                if !offer {
                    self.send_ack(None);
                }
                self.events
                    .push_back(SessionEvent::Answered { body, offer });
            }
            _ => {
                if self.dialog.is_some() || self.state == SessionState::Terminated {
                    return;
                }
                let reason = if self.cancelling && status == 487 {
                    EndReason::LocalHangup
                } else if status == 408 {
                    EndReason::Timeout
                } else {
                    EndReason::Rejected {
                        status,
                        reason: response.reason().unwrap_or_default().into_owned(),
                    }
                };
                self.end(reason);
            }
        }
    }

    /// UAC: sends the initial INVITE again with new headers (the `Authorization` or
    /// `Proxy-Authorization` answering a 401/407), with the next CSeq (RFC 3261 §22.2). Call
    /// it instead of [`on_response`](Self::on_response) for the challenge. Returns false when
    /// the call is past the point where that makes sense.
    pub fn resend_invite_with(&mut self, headers: &[(String, String)]) -> bool {
        if self.role != Role::Uac
            || !matches!(self.state, SessionState::Calling | SessionState::Early)
            || self.cancelling
        {
            return false;
        }
        let mut invite = self.invite.clone();
        invite.remove_header(HeaderName::Authorization);
        invite.remove_header(HeaderName::ProxyAuthorization);
        for (n, v) in headers {
            invite.push_header_named(n, v);
        }
        self.invite_seq = self.invite_seq.wrapping_add(1);
        invite.set(&CSeq {
            seq: self.invite_seq,
            method: Method::Invite,
        });
        let next_hop = invite
            .routes()
            .next()
            .and_then(Result::ok)
            .and_then(|r| r.uri().ok().map(Uri::into_owned))
            .or_else(|| invite.uri().map(Uri::into_owned));
        let Some(next_hop) = next_hop else {
            return false;
        };
        self.invite = invite.clone();
        self.early.clear();
        self.state = SessionState::Calling;
        self.outputs.push_back(Output::Request {
            request: invite,
            next_hop,
        });
        true
    }

    /// UAC: answers the offer of a 2xx in the ACK ([`SessionEvent::Answered`] with `offer`).
    pub fn ack_with_answer(&mut self, answer: Option<Bytes>) {
        if self.last_ack.is_none() && self.dialog.is_some() {
            self.send_ack(answer);
        }
    }

    fn send_ack(&mut self, body: Option<Bytes>) {
        let Some(d) = &self.dialog else { return };
        let ack = d.ack(self.invite_seq, body.map(|b| (SDP, b)));
        self.last_ack = Some((self.invite_seq, ack.clone()));
        self.outputs.push_back(Output::Ack {
            ack,
            next_hop: d.next_hop(),
        });
    }

    /// A forked 2xx we don't want: ACK it and end its dialog with a BYE (§13.2.2.4).
    fn ack_and_bye(&mut self, response: &Message) {
        let Ok(mut other) = Dialog::uac(&self.invite, response) else {
            return;
        };
        let next_hop = other.next_hop();
        let ack = other.ack(self.invite_seq, None);
        self.outputs.push_back(Output::Ack {
            ack,
            next_hop: next_hop.clone(),
        });
        let bye = self.with_extra(other.request(Method::Bye));
        self.outputs.push_back(Output::Request {
            request: bye,
            next_hop,
        });
    }

    /// The initial INVITE's client transaction failed (Timer B, transport error).
    pub fn on_invite_failure(&mut self) {
        if self.role == Role::Uac && self.dialog.is_none() && self.state != SessionState::Terminated
        {
            self.end(if self.cancelling {
                EndReason::LocalHangup
            } else {
                EndReason::Timeout
            });
        }
    }

    /// An in-dialog request of ours got no response (timeout or transport error): for BYE
    /// the call is over anyway; for a re-INVITE or INFO the dialog is gone (§12.2.1.2).
    pub fn on_request_failure(&mut self, method: &Method) {
        match method {
            Method::Bye => self.end(EndReason::LocalHangup),
            _ if self.state == SessionState::Confirmed => {
                self.reinvite_out = None;
                self.send_bye();
                self.end(EndReason::DialogGone { status: 408 });
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ both sides

    /// Ends the call: CANCEL before the answer (UAC), 603 Decline (UAS, unanswered), BYE
    /// once it is up.
    pub fn hangup(&mut self) {
        match (self.role, self.state) {
            (_, SessionState::Terminated) => {}
            (Role::Uac, SessionState::Calling | SessionState::Early) => {
                if !self.cancelling {
                    self.cancelling = true;
                    self.outputs.push_back(Output::Cancel);
                }
            }
            (Role::Uas, SessionState::Incoming) => self.reject(603, None),
            (Role::Uas, SessionState::Answered) => self.bye_after_ack = true,
            _ => {
                self.send_bye();
                self.end(EndReason::LocalHangup);
            }
        }
    }

    fn send_bye_if_up(&mut self) {
        if self.state == SessionState::Confirmed {
            self.send_bye();
        }
    }

    fn send_bye(&mut self) {
        let Some(d) = &mut self.dialog else { return };
        let next_hop = d.next_hop();
        let bye = d.request(Method::Bye);
        let bye = self.with_extra(bye);
        self.outputs.push_back(Output::Request {
            request: bye,
            next_hop,
        });
    }

    fn with_extra(&self, mut request: Message) -> Message {
        for (n, v) in &self.config.extra_headers {
            request.push_header_named(n, v);
        }
        request
    }

    fn end(&mut self, reason: EndReason) {
        if self.state != SessionState::Terminated {
            self.state = SessionState::Terminated;
            self.glare_retry = None;
            self.events.push_back(SessionEvent::Ended(reason));
        }
    }

    /// Sends a re-INVITE with a new offer (hold, resume, codec change). `Err` when the call
    /// is not up or another re-INVITE is in progress.
    pub fn reinvite(&mut self, offer: Option<Bytes>) -> Result<(), &'static str> {
        if self.state != SessionState::Confirmed {
            return Err("the call is not up");
        }
        if self.reinvite_out.is_some() || self.reinvite_in.is_some() {
            return Err("a re-INVITE is already in progress");
        }
        self.glare_retry = None;
        self.send_reinvite(offer);
        Ok(())
    }

    fn send_reinvite(&mut self, offer: Option<Bytes>) {
        let Some(d) = &mut self.dialog else { return };
        let next_hop = d.next_hop();
        let mut req = d.request(Method::Invite);
        req.push_header(HeaderName::Allow, ALLOW);
        if let Some(body) = &offer {
            req.set_body(Some(SDP), body.clone());
        }
        let seq = d.local_seq();
        let req = self.with_extra(req);
        self.reinvite_out = Some((seq, offer));
        self.outputs.push_back(Output::Request {
            request: req,
            next_hop,
        });
    }

    fn on_reinvite_response(&mut self, now: Instant, response: &Message, seq: u32, status: u16) {
        let Some((pending, _)) = &self.reinvite_out else {
            // A retransmitted 2xx of a re-INVITE we already acknowledged.
            if (200..300).contains(&status)
                && let Some(d) = &self.dialog
                && let Some((ack_seq, ack)) = &self.last_ack
                && *ack_seq == seq
            {
                self.outputs.push_back(Output::Ack {
                    ack: ack.clone(),
                    next_hop: d.next_hop(),
                });
            }
            return;
        };
        if *pending != seq || status < 200 {
            return;
        }
        let (_, offer) = self.reinvite_out.take().expect("checked just above");
        match status {
            200..=299 => {
                let Some(d) = &mut self.dialog else { return };
                d.receive_response(response);
                let ack = d.ack(seq, None);
                self.last_ack = Some((seq, ack.clone()));
                self.outputs.push_back(Output::Ack {
                    ack,
                    next_hop: d.next_hop(),
                });
                let body = (!response.body().is_empty()).then(|| response.body().clone());
                self.events
                    .push_back(SessionEvent::ReinviteAccepted { body });
            }
            491 => {
                let (lo, hi) = if self.role == Role::Uac {
                    GLARE_OWNER
                } else {
                    GLARE_OTHER
                };
                let steps = (hi - lo) / 10 + 1;
                let wait = lo + (self.rng_next() % steps) * 10;
                self.glare_retry = Some((now + Duration::from_millis(wait), offer));
                self.events
                    .push_back(SessionEvent::ReinviteRejected { status: 491 });
            }
            481 | 408 => {
                self.end(EndReason::DialogGone { status });
            }
            _ => self
                .events
                .push_back(SessionEvent::ReinviteRejected { status }),
        }
    }

    fn rng_next(&mut self) -> u64 {
        use rand_core::TryRng;
        let Ok(v) = self.rng.try_next_u64();
        v
    }

    /// A request inside this call from the peer (BYE, re-INVITE, INFO, OPTIONS...). Not for
    /// ACK ([`on_ack`](Self::on_ack)) or CANCEL (the endpoint answers it).
    pub fn on_request(&mut self, _now: Instant, request: &Message) -> RequestOutcome {
        let method = request.method().cloned().unwrap_or(Method::Options);
        let Some(d) = &mut self.dialog else {
            return RequestOutcome::Respond(response_to(request, 481, None));
        };
        if !d.matches_request(request) {
            // Another dialog's request (§12.2.2): not ours to take, whatever the driver did.
            return RequestOutcome::Respond(response_to(request, 481, None));
        }
        if let Err(e) = d.receive_request(request) {
            let status = if matches!(e, DialogError::CSeqOutOfOrder { .. }) {
                500
            } else {
                400
            };
            return RequestOutcome::Respond(response_to(request, status, None));
        }
        match method {
            Method::Bye => {
                if self.state == SessionState::Incoming {
                    // §15.1.2: a BYE before our final response: 487 for the INVITE.
                    let r = self.uas_response(487, None);
                    self.outputs.push_back(Output::Respond(r));
                }
                self.end(EndReason::RemoteHangup);
                RequestOutcome::Respond(response_to(request, 200, None))
            }
            Method::Invite => {
                if self.state == SessionState::Terminated {
                    return RequestOutcome::Respond(response_to(request, 481, None));
                }
                if self.reinvite_out.is_some() || self.state == SessionState::Answered {
                    // §14.2: glare, or an offer while ours is pending.
                    return RequestOutcome::Respond(response_to(request, 491, None));
                }
                if self.reinvite_in.is_some() {
                    let mut r = response_to(request, 500, None);
                    let wait = self.rng_next() % 10;
                    r.push_header(HeaderName::RetryAfter, &wait.to_string());
                    return RequestOutcome::Respond(r);
                }
                let body = (!request.body().is_empty()).then(|| request.body().clone());
                self.reinvite_in = Some(request.clone());
                self.events.push_back(SessionEvent::Reinvite { body });
                RequestOutcome::Deferred
            }
            Method::Info => {
                let content_type = request.content_type().and_then(Result::ok).map(|c| {
                    (
                        c.0.mtype.to_ascii_lowercase(),
                        c.0.subtype.to_ascii_lowercase(),
                    )
                });
                match content_type.as_ref().map(|(a, b)| (a.as_str(), b.as_str())) {
                    Some(("application", "dtmf-relay" | "dtmf")) => {
                        if let Some((digit, duration)) = parse_dtmf_info(request.body()) {
                            self.events
                                .push_back(SessionEvent::Dtmf { digit, duration });
                        }
                        RequestOutcome::Respond(response_to(request, 200, None))
                    }
                    None if request.body().is_empty() => {
                        RequestOutcome::Respond(response_to(request, 200, None))
                    }
                    _ => {
                        let mut r = response_to(request, 415, None);
                        r.push_header(HeaderName::Accept, "application/dtmf-relay");
                        RequestOutcome::Respond(r)
                    }
                }
            }
            Method::Options => {
                let mut r = response_to(request, 200, None);
                r.push_header(HeaderName::Allow, ALLOW);
                RequestOutcome::Respond(r)
            }
            _ => {
                let status = crate::endpoint::unhandled_method_status(&method);
                let mut r = response_to(request, status, None);
                r.push_header(HeaderName::Allow, ALLOW);
                RequestOutcome::Respond(r)
            }
        }
    }

    /// Answers the peer's re-INVITE ([`SessionEvent::Reinvite`]): 200 with our SDP, or a
    /// failure status (488) that leaves the session as it was. Returns the response to send
    /// on the re-INVITE's server transaction.
    pub fn answer_reinvite(&mut self, status: u16, body: Option<Bytes>) -> Option<Message> {
        let request = self.reinvite_in.take()?;
        let mut r = response_to(&request, status, None);
        if (200..300).contains(&status) {
            r.push_header(HeaderName::Contact, &self.config.contact);
            r.push_header(HeaderName::Allow, ALLOW);
            self.offered_in_2xx = request.body().is_empty() && body.is_some();
            if let Some(b) = body {
                r.set_body(Some(SDP), b);
            }
            self.reinvite_acked_seq = request.cseq().and_then(Result::ok).map(|c| c.seq);
        }
        Some(r)
    }

    /// Sends a DTMF key in an INFO (application/dtmf-relay), the fallback when the peer did
    /// not negotiate RFC 4733 telephone-event.
    pub fn send_dtmf_info(&mut self, digit: char, duration: Duration) -> Result<(), &'static str> {
        if self.state != SessionState::Confirmed {
            return Err("the call is not up");
        }
        if !matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d') {
            return Err("not a dtmf key");
        }
        let Some(d) = &mut self.dialog else {
            return Err("the call is not up");
        };
        let next_hop = d.next_hop();
        let mut info = d.request(Method::Info);
        let body = format!(
            "Signal={}\r\nDuration={}\r\n",
            digit.to_ascii_uppercase(),
            duration.as_millis()
        );
        info.set_body(Some("application/dtmf-relay"), Bytes::from(body));
        let info = self.with_extra(info);
        self.outputs.push_back(Output::Request {
            request: info,
            next_hop,
        });
        Ok(())
    }

    /// A new request of `method` inside the confirmed dialog (a MESSAGE, RFC 3428 §4), with
    /// the dialog's next CSeq, and its next hop; the caller sends it and takes its responses
    /// (the session does not track it). Not for INVITE, ACK, CANCEL or BYE, which the session
    /// makes itself.
    pub fn request_in_dialog(
        &mut self,
        method: Method,
    ) -> Result<(Message, Uri<'static>), &'static str> {
        if matches!(
            method,
            Method::Invite | Method::Ack | Method::Cancel | Method::Bye
        ) {
            return Err("the session makes its own INVITE, ACK, CANCEL and BYE");
        }
        if self.state != SessionState::Confirmed {
            return Err("the call is not up");
        }
        let Some(d) = &mut self.dialog else {
            return Err("the call is not up");
        };
        let next_hop = d.next_hop();
        let request = d.request(method);
        Ok((self.with_extra(request), next_hop))
    }

    /// An in-dialog request of ours (BYE, INFO) that a proxy or the peer challenged (401/407),
    /// again with `headers` (the credentials answering the challenge) and the dialog's next
    /// CSeq (RFC 3261 §22.2: a retried request is a new request of the dialog). `None` when
    /// there is no dialog any more, or for a re-INVITE, whose offer/answer state is tied to
    /// its CSeq.
    pub fn retry_in_dialog(
        &mut self,
        request: &Message,
        headers: &[(String, String)],
    ) -> Option<Message> {
        let method = request.method()?.clone();
        if method == Method::Invite {
            return None;
        }
        let d = self.dialog.as_mut()?;
        let seq = d.request(method.clone()).cseq().and_then(Result::ok)?.seq;
        let mut retried = ChallengeAnswer {
            headers: headers.to_vec(),
        }
        .apply(request);
        retried.set(&CSeq { seq, method });
        Some(retried)
    }

    /// The dialog id, once there is a dialog.
    pub fn dialog_id(&self) -> Option<&DialogId> {
        self.dialog.as_ref().map(Dialog::id)
    }

    /// The CSeq of the initial INVITE.
    pub fn invite_cseq(&self) -> CSeq {
        CSeq {
            seq: self.invite_seq,
            method: Method::Invite,
        }
    }
}

/// Reads an `application/dtmf-relay` body (`Signal=5`, `Duration=160`) or an
/// `application/dtmf` one (`5`).
fn parse_dtmf_info(body: &[u8]) -> Option<(char, Duration)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut digit = None;
    let mut duration = Duration::from_millis(250);
    for line in text.lines() {
        let line = line.trim();
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = v.chars().next(),
                "duration" => {
                    if let Ok(ms) = v.parse::<u64>() {
                        duration = Duration::from_millis(ms.min(60_000));
                    }
                }
                _ => {}
            }
        } else if line.len() == 1 {
            digit = line.chars().next();
        }
    }
    let digit = digit?.to_ascii_uppercase();
    let digit = match digit {
        '0'..='9' | '*' | '#' | 'A'..='D' => digit,
        // RFC 4733 event codes 10 and 11 written as numbers by some phones.
        _ => return None,
    };
    Some((digit, duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_is_the_method_list() {
        let listed: Vec<&str> = METHODS.iter().map(Method::as_str).collect();
        assert_eq!(ALLOW, listed.join(", "));
    }

    #[test]
    fn dialog_creating_responses_copy_the_record_route_values_in_order() {
        let invite = Message::parse(Bytes::from_static(
            b"INVITE sip:bob@192.0.2.2:5060 SIP/2.0\r\n\
              Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-p2\r\n\
              Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a1\r\n\
              Record-Route: <sip:192.0.2.9;lr;ftag=a1>\r\n\
              Record-Route: <sip:p1.example.com;lr>, <sip:p0.example.com;lr>\r\n\
              From: <sip:alice@example.com>;tag=a1\r\n\
              To: <sip:bob@example.com>\r\n\
              Call-ID: rr-copy@192.0.2.1\r\n\
              CSeq: 1 INVITE\r\n\
              Contact: <sip:alice@192.0.2.1:5060>\r\n\
              Max-Forwards: 69\r\n\
              Content-Length: 0\r\n\r\n",
        ))
        .expect("a well-formed INVITE");
        let config = InviteConfig {
            local_uri: NameAddr::parse_as(HeaderName::From, "<sip:bob@example.com>")
                .expect("a well-formed name-addr")
                .into_owned(),
            local_tag: "b1".to_owned(),
            contact: "<sip:bob@192.0.2.2:5060>".to_owned(),
            call_id: String::new(),
            cseq: 1,
            seed: 7,
            extra_headers: Vec::new(),
        };
        let mut session = InviteSession::incoming(config, &invite).expect("a valid INVITE");
        session.ring(None);
        session.accept(None);
        let mut statuses = Vec::new();
        while let Some(out) = session.poll_output() {
            let Output::Respond(r) = out else { continue };
            let routes: Vec<String> = r
                .record_routes()
                .filter_map(Result::ok)
                .map(|rr| rr.0.uri_str().to_string())
                .collect();
            assert_eq!(
                routes,
                [
                    "sip:192.0.2.9;lr;ftag=a1",
                    "sip:p1.example.com;lr",
                    "sip:p0.example.com;lr"
                ],
                "{r:?}"
            );
            statuses.push(r.status());
        }
        assert_eq!(statuses, [Some(180), Some(200)]);
    }

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(
            parse_dtmf_info(b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Duration::from_millis(160)))
        );
        assert_eq!(
            parse_dtmf_info(b"Signal= #\nDuration= 100"),
            Some(('#', Duration::from_millis(100)))
        );
        assert_eq!(
            parse_dtmf_info(b"*"),
            Some(('*', Duration::from_millis(250)))
        );
        assert_eq!(parse_dtmf_info(b"Signal=X"), None);
        assert_eq!(parse_dtmf_info(b"\xff"), None);
    }
}
