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
//! UPDATE (RFC 3311) changes the session without a re-INVITE, in early and confirmed dialogs:
//! without a body it is answered 200 at once; an offer crossing ours gets 491 (retried as for
//! re-INVITE), an offer while the peer's previous one waits gets 500 with Retry-After.
//!
//! Reliable provisional responses (RFC 3262, [`PrackPolicy`]): a caller advertises `100rel`
//! (requires it when configured) and answers each reliable 18x with a PRACK carrying RAck,
//! in RSeq order, ignoring retransmissions. A callee whose caller requires `100rel` (or
//! supports it, when we require it) sends its 18x with `Require: 100rel` and an RSeq,
//! retransmits it from T1 doubling until the PRACK (answered 200; 481 for an unknown RAck),
//! holds a 2xx while an 18x with SDP is unacknowledged, and gives up after 64*T1 with 500.
//!
//! Offer/answer in PRACK (RFC 3262 §5, RFC 6337 §3.1): a reliable 18x that offers (to an
//! INVITE without SDP) is answered in its PRACK ([`SessionEvent::Progress`] with `offer`,
//! [`InviteSession::prack_with_answer`]); once the INVITE's offer/answer is done, a PRACK
//! may carry a new offer, answered in its 200 ([`InviteSession::offer_in_prack`] as caller,
//! [`SessionEvent::PrackOffer`] and [`InviteSession::answer_prack`] as callee).
//!
//! Session timers (RFC 4028, [`SessionTimerConfig`]): the INVITE asks for an interval, the
//! UAS grants one (422 with Min-SE when it is too small; the UAC retries with the larger
//! value), and the side named `refresher` refreshes the session every half interval, by
//! UPDATE when the peer allows it, else by a re-INVITE with the same SDP. The other side
//! sends BYE when no refresh came within the interval minus min(32 s, interval/3) (§10):
//! [`EndReason::SessionExpired`].
//!
//! The session owns no transactions: it gives [`Output`]s (requests to send in new client
//! transactions, ACKs, a CANCEL, responses to the initial INVITE) and takes back the
//! responses, requests and failures that concern it. SDP bodies are opaque bytes here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Dialog, DialogError, DialogId};
use crate::auth::ChallengeAnswer;
use crate::message::typed::{
    Allow, CSeq, Method, MinSe, NameAddr, RAck, RSeq, Require, SessionExpires, Supported,
};
use crate::message::{HeaderName, Message, RequestBuilder, Uri, response_to};
use crate::rng::XorShiftRng;
use rand_core::SeedableRng;

/// The methods a Tincan user agent handles: the default
/// [`EndpointConfig::methods`](crate::endpoint::EndpointConfig::methods), so that every other
/// method gets 501 (or 405) from the endpoint, and, as [`ALLOW`], the `Allow` of its 200 to OPTIONS, its 2xx to INVITE and its
/// refusals (RFC 3261 §20.5). REFER and NOTIFY are taken inside a call only (a transfer,
/// RFC 3515, see [`crate::dialog::refer`]); SUBSCRIBE, MESSAGE and PUBLISH are not
/// implemented.
pub const METHODS: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Info,
    Method::Update,
    Method::Prack,
    Method::Refer,
    Method::Notify,
];

/// [`METHODS`] as an `Allow` value (RFC 3261 §20.5); a test keeps the two equal.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY";

/// The SDP content type.
pub const SDP: &str = "application/sdp";

/// RFC 3261 §14.1: after a 491, the owner of the Call-ID waits 2.1 to 4 s...
const GLARE_OWNER: (u64, u64) = (2100, 4000);
/// ... and the other side 0 to 2 s, both in units of 10 ms.
const GLARE_OTHER: (u64, u64) = (0, 2000);

/// RFC 4028 §4: the recommended session interval (`Session-Expires`), 30 minutes.
pub const SESSION_EXPIRES: u32 = 1800;
/// RFC 4028 §5: the smallest session interval anyone may ask for, and the default `Min-SE`.
pub const MIN_SE: u32 = 90;
/// The option tag of session timers (RFC 4028 §3).
pub const TIMER: &str = "timer";

/// The option tag of reliable provisional responses (RFC 3262 §7).
pub const REL100: &str = "100rel";

/// RFC 3262 §3 (T1 of RFC 3261 §17.1.1.1): a reliable provisional response is sent again
/// after T1, then after twice the previous wait, until its PRACK...
const PRACK_T1: Duration = Duration::from_millis(500);
/// ... for 64*T1 at most; then the INVITE is refused with a 5xx.
const PRACK_GIVE_UP: Duration = Duration::from_millis(64 * 500);

/// When provisional responses are sent and asked for reliably (RFC 3262).
///
/// Whatever the policy, an INVITE with `Require: 100rel` gets reliable provisionals (never
/// 420): `100rel` is among [`SUPPORTED_EXTENSIONS`](crate::message::SUPPORTED_EXTENSIONS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrackPolicy {
    /// Our INVITE neither lists nor requires `100rel`; as callee, reliable only when the
    /// caller requires it.
    Off,
    /// Our INVITE lists `Supported: 100rel`; as callee, reliable only when the caller
    /// requires it. The default.
    #[default]
    Supported,
    /// Our INVITE carries `Require: 100rel` (a callee without it answers 420); as callee,
    /// reliable whenever the caller supports it.
    Required,
}

/// Session timers (RFC 4028): what we ask for and what we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The session interval we ask for in `Session-Expires` (and give when the peer asks
    /// for none), in seconds.
    pub interval: u32,
    /// The smallest interval we accept (`Min-SE`, RFC 4028 §5), in seconds; a request asking
    /// for less gets 422 (§8.1). Never below [`MIN_SE`].
    pub min_se: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            interval: SESSION_EXPIRES,
            min_se: MIN_SE,
        }
    }
}

/// Which side refreshes the session (RFC 4028 §7.1 `refresher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// We send the refreshes (UPDATE, or a re-INVITE with the same SDP).
    Us,
    /// The peer does; we hang up when its refresh is late (§10).
    Peer,
}

/// The session timer of a call that is up (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The session interval in seconds.
    pub interval: u32,
    /// Who refreshes.
    pub refresher: Refresher,
    /// When we refresh next (half the interval after the last refresh, §7.4), if we are the
    /// refresher.
    pub refresh_at: Option<Instant>,
    /// When the session expires without a refresh: the interval minus the smaller of 32 s
    /// and a third of it after the last refresh (§10); a BYE goes then.
    pub expires_at: Instant,
}

impl SessionTimer {
    fn new(now: Instant, interval: u32, refresher: Refresher) -> SessionTimer {
        let interval_ms = u64::from(interval) * 1000;
        let margin = (32_000).min(interval_ms / 3);
        SessionTimer {
            interval,
            refresher,
            refresh_at: (refresher == Refresher::Us)
                .then(|| now + Duration::from_millis(interval_ms / 2)),
            expires_at: now + Duration::from_millis(interval_ms - margin),
        }
    }
}

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
    /// Session timers (RFC 4028); `None` neither asks for nor grants one.
    pub session_timer: Option<SessionTimerConfig>,
    /// Reliable provisional responses (RFC 3262).
    pub prack: PrackPolicy,
}

/// UAS: the reliable provisional response waiting for its PRACK (RFC 3262 §3).
#[derive(Debug, Clone)]
struct ReliableProvisional {
    /// The response, sent again as is.
    response: Message,
    /// When it goes again.
    resend_at: Instant,
    /// The wait after that (doubles each time).
    wait: Duration,
    /// 64*T1 after it was first sent: the INVITE is refused then.
    give_up_at: Instant,
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
    /// No session refresh came in time (RFC 4028 §10): we sent BYE.
    SessionExpired,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A provisional response (UAC), with early media SDP if any. A reliable one (RFC 3262)
    /// is reported once, when it is PRACKed.
    Progress {
        /// 180, 183...
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Its SDP, if any.
        body: Option<Bytes>,
        /// What its `P-Early-Media` (RFC 5009 §5) says of the peer's early media reaching
        /// us: `Some(true)` for `sendrecv` or `sendonly`, `Some(false)` for `recvonly` or
        /// `inactive` (play local ring-back instead), `None` without the header (or
        /// `gated`, `supported`).
        early_media: Option<bool>,
        /// Whether `body` is an offer (RFC 3262 §5: a reliable 18x to our INVITE without
        /// SDP): its PRACK waits for our answer, [`InviteSession::prack_with_answer`].
        offer: bool,
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
    /// The peer sent an UPDATE with an offer (RFC 3311 §5.2): answer it with
    /// [`InviteSession::answer_update`].
    Update {
        /// The offer.
        body: Bytes,
    },
    /// Our UPDATE with an offer was accepted, with the peer's answer.
    UpdateAccepted {
        /// The answer.
        body: Option<Bytes>,
    },
    /// Our UPDATE with an offer was refused; the session goes on as before.
    UpdateRejected {
        /// The status.
        status: u16,
    },
    /// The session was refreshed (RFC 4028): a 2xx to a re-INVITE or an UPDATE, ours or the
    /// peer's. The timer starts again.
    Refreshed {
        /// The timer now running.
        timer: SessionTimer,
    },
    /// UAS: the peer's PRACK carries an offer (RFC 3262 §5): answer it in the PRACK's 200
    /// with [`InviteSession::answer_prack`].
    PrackOffer {
        /// The offer.
        body: Bytes,
    },
    /// The peer's answer arrived with a PRACK: UAS, the PRACK answered the offer of our
    /// reliable 18x; UAC, the 200 to our PRACK answered the offer it carried
    /// ([`InviteSession::offer_in_prack`]). `None`: that 200 had no SDP (our offer is
    /// taken as refused and the session stays as it was).
    PrackAnswer {
        /// The answer.
        body: Option<Bytes>,
    },
    /// UAC: the PRACK that carried our offer failed (a 488, say; RFC 3262 §5, RFC 6337
    /// §3.2): the session stays as it was.
    PrackOfferRejected {
        /// The status (408 when it was never answered).
        status: u16,
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
    /// A re-INVITE or an UPDATE with an offer: a [`SessionEvent::Reinvite`] or
    /// [`SessionEvent::Update`] was queued; respond with [`InviteSession::answer_reinvite`]
    /// or [`InviteSession::answer_update`].
    Deferred,
    /// A PRACK with an offer (RFC 3262 §5) is [`Deferred`](Self::Deferred) too: a
    /// [`SessionEvent::PrackOffer`] was queued; respond with [`InviteSession::answer_prack`].
    ///
    /// A REFER (RFC 3515) or a NOTIFY (of a REFER's implicit subscription) in the call's
    /// confirmed dialog: the dialog took its CSeq; the caller's transfer logic answers it
    /// (the session knows nothing of transfers, see [`crate::dialog::refer`]).
    Transfer,
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
    /// A re-INVITE or UPDATE to retry after a 491, at this instant, with its offer.
    glare_retry: Option<(Instant, Method, Option<Bytes>)>,
    /// Our UPDATE in flight: its CSeq and offer (RFC 3311).
    update_out: Option<(u32, Option<Bytes>)>,
    /// The peer's UPDATE with an offer, waiting for our answer.
    update_in: Option<Message>,
    /// Session timer settings (RFC 4028); the interval and Min-SE rise after a 422.
    timer_config: Option<SessionTimerConfig>,
    /// The running session timer, once the call is up.
    timer: Option<SessionTimer>,
    /// The session timer our next 2xx grants (UAS of the INVITE, a re-INVITE or an UPDATE):
    /// interval, who refreshes, and whether the peer asked for timers (`Require: timer`).
    timer_answer: Option<(u32, Refresher, bool)>,
    /// The timer our 2xx to an INVITE or re-INVITE granted, started by its ACK.
    timer_on_ack: Option<(u32, Refresher)>,
    /// 422s answered for the request in flight (RFC 4028 §7.4: retry with the larger
    /// interval); reset by a 2xx.
    min_se_retries: u8,
    /// Whether the peer's Allow lists UPDATE (a refresh then goes by UPDATE, §7.4).
    peer_allows_update: bool,
    /// Our SDP in the last completed offer/answer: the body of a refresh re-INVITE.
    local_sdp: Option<Bytes>,
    /// The peer's re-INVITE waiting for our answer.
    reinvite_in: Option<Message>,
    /// The CSeq of the peer's re-INVITE we answered 2xx, until its ACK. The peer numbers its
    /// requests on its own, so this can equal `invite_seq` (a callee's first re-INVITE has
    /// CSeq 1 like many callers' INVITE).
    reinvite_acked_seq: Option<u32>,
    /// Whether our 2xx to the peer's re-INVITE (or the initial INVITE) carried an offer.
    offered_in_2xx: bool,
    /// UAS: whether our provisional responses are reliable (RFC 3262 §3).
    reliable: bool,
    /// UAS: the RSeq of our next reliable provisional response.
    next_rseq: u32,
    /// UAS: the RSeq of the last reliable provisional response sent.
    last_rseq: Option<u32>,
    /// UAS: the reliable provisional response not yet PRACKed.
    unacked_provisional: Option<ReliableProvisional>,
    /// UAS: our 2xx held until the PRACK of a reliable provisional with SDP (RFC 3262 §3).
    held_2xx: Option<Message>,
    /// UAC: the RSeq of the last reliable provisional PRACKed, per early dialog (remote tag).
    rseq_in: Vec<(String, u32)>,
    /// Whether the INVITE's own offer/answer was completed before the 2xx (RFC 3262 §5): by
    /// a reliable 18x answering the INVITE's offer, or by the PRACK answering an 18x's offer.
    /// A new offer may then go in a PRACK; the 2xx's SDP is no offer.
    early_offer_answer: bool,
    /// UAC: reliable 18x that offered (early dialog's remote tag, RSeq), oldest first,
    /// whose PRACK waits for [`prack_with_answer`](Self::prack_with_answer).
    prack_answer_due: VecDeque<(String, u32)>,
    /// UAC: the offer our next PRACK carries ([`offer_in_prack`](Self::offer_in_prack)).
    prack_offer: Option<Bytes>,
    /// UAC: our PRACK in flight with an offer: its CSeq and the offer.
    prack_offer_out: Option<(u32, Bytes)>,
    /// UAS: our reliable 18x carried an offer (the INVITE had none) not yet answered.
    offered_in_18x: bool,
    /// UAS: the peer's PRACK with an offer, waiting for [`answer_prack`](Self::answer_prack).
    prack_in: Option<Message>,
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
        // One Supported line: some peers read only the first.
        let mut supported = Vec::new();
        if config.session_timer.is_some() {
            supported.push(TIMER);
        }
        if config.prack != PrackPolicy::Off {
            supported.push(REL100);
        }
        // RFC 3891 §6.1: a UA that takes INVITEs with Replaces says so, so that a transferee
        // or a call pickup can use it on our calls.
        supported.push("replaces");
        if !supported.is_empty() {
            b = b.header(HeaderName::Supported, &supported.join(", "));
        }
        if let Some(t) = config.session_timer.map(normalize_timer) {
            // RFC 4028 §7.1: ask for our interval; the UAS picks the refresher.
            b = b
                .header(HeaderName::SessionExpires, &t.interval.to_string())
                .header(HeaderName::MinSe, &t.min_se.to_string());
        }
        if config.prack == PrackPolicy::Required {
            b = b.header(HeaderName::Require, REL100);
        }
        for (n, v) in &config.extra_headers {
            b = b.header_named(n, v);
        }
        if let Some(body) = &offer {
            b = b.body(SDP, body.clone());
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
        session.local_sdp = offer;
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
        let timer_config = config.session_timer.map(normalize_timer);
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
            update_out: None,
            update_in: None,
            timer_config,
            timer: None,
            timer_answer: None,
            timer_on_ack: None,
            min_se_retries: 0,
            peer_allows_update: false,
            local_sdp: None,
            reinvite_in: None,
            reinvite_acked_seq: None,
            offered_in_2xx: false,
            reliable: false,
            next_rseq: 1,
            last_rseq: None,
            unacked_provisional: None,
            held_2xx: None,
            rseq_in: Vec::new(),
            early_offer_answer: false,
            prack_answer_due: VecDeque::new(),
            prack_offer: None,
            prack_offer_out: None,
            offered_in_18x: false,
            prack_in: None,
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
        let mut session =
            InviteSession::new(Role::Uas, config, invite.clone(), invite_seq, Some(dialog));
        session.peer_allows_update = allows(invite, &Method::Update);
        // RFC 3262 §3: reliable when the caller requires it, or supports it and we require.
        session.reliable = requires(invite, REL100)
            || (session.config.prack == PrackPolicy::Required && supports(invite, REL100));
        // §3: the first RSeq is random, 1 to 2^31-1; small enough here never to wrap.
        session.next_rseq = 1 + (session.rng_next() % 0x7fff_0000) as u32;
        match session.grant_timer(invite) {
            Ok(grant) => session.timer_answer = grant,
            Err(min_se) => {
                // RFC 4028 §8.1: 422 Session Interval Too Small, with our Min-SE.
                let mut r = too_small(invite, min_se);
                r.set_to_tag(&session.config.local_tag);
                return Err(r);
            }
        }
        Ok(session)
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

    /// When [`handle_timeout`](Self::handle_timeout) wants to run: the glare retry, the
    /// session refresh we owe, the session's expiry (RFC 4028). A retry or a refresh waits
    /// while the peer's re-INVITE or UPDATE is unanswered (§14.1: no new INVITE transaction
    /// while another is in progress in either direction); it is due at once after the
    /// answer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == SessionState::Terminated {
            return None;
        }
        let peer_pending = self.reinvite_in.is_some() || self.update_in.is_some();
        let glare = self
            .glare_retry
            .as_ref()
            .filter(|_| !peer_pending)
            .map(|(t, _, _)| *t);
        let timer = self
            .timer
            .as_ref()
            .filter(|_| self.state == SessionState::Confirmed)
            .map(|t| match t.refresh_at {
                Some(r) if !self.refresh_blocked() => r.min(t.expires_at),
                _ => t.expires_at,
            });
        let provisional = self
            .unacked_provisional
            .as_ref()
            .map(|p| p.resend_at.min(p.give_up_at));
        glare.into_iter().chain(timer).chain(provisional).min()
    }

    /// Whether a refresh must wait: a re-INVITE or UPDATE in flight either way (that one
    /// refreshes the session when it succeeds), or a glare retry to come.
    fn refresh_blocked(&self) -> bool {
        self.reinvite_out.is_some()
            || self.update_out.is_some()
            || self.reinvite_in.is_some()
            || self.update_in.is_some()
            || self.glare_retry.is_some()
    }

    /// The session timer (RFC 4028) of a call that is up, if one was negotiated.
    pub fn session_timer(&self) -> Option<SessionTimer> {
        self.timer
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.resend_provisional(now);
        if let Some((at, _, _)) = &self.glare_retry
            && *at <= now
            && self.reinvite_in.is_none()
            && self.update_in.is_none()
        {
            let (_, method, body) = self.glare_retry.take().expect("checked just above");
            if self.state == SessionState::Confirmed {
                match method {
                    Method::Update if self.update_out.is_none() => self.send_update(body),
                    Method::Invite if self.reinvite_out.is_none() => self.send_reinvite(body),
                    _ => {}
                }
            }
        }
        if self.state != SessionState::Confirmed {
            return;
        }
        let Some(t) = self.timer else { return };
        if now >= t.expires_at {
            // RFC 4028 §10: no refresh in time; the session is over.
            self.send_bye();
            self.end(EndReason::SessionExpired);
        } else if t.refresh_at.is_some_and(|r| r <= now) && !self.refresh_blocked() {
            self.send_refresh();
        }
    }

    /// UAS: sends the unacknowledged reliable provisional response again (RFC 3262 §3: T1,
    /// doubling), or, 64*T1 after it first went, refuses the INVITE with 500.
    fn resend_provisional(&mut self, now: Instant) {
        let Some(p) = &mut self.unacked_provisional else {
            return;
        };
        if now >= p.give_up_at {
            self.unacked_provisional = None;
            self.held_2xx = None;
            let r = self.uas_response(500, None);
            self.outputs.push_back(Output::Respond(r));
            self.end(EndReason::Timeout);
        } else if now >= p.resend_at {
            p.resend_at = now + p.wait;
            p.wait *= 2;
            let r = p.response.clone();
            self.outputs.push_back(Output::Respond(r));
        }
    }

    /// RFC 4028 §7.4: refreshes the session by UPDATE when the peer allows it, else by a
    /// re-INVITE with the SDP of the last offer/answer (same version: nothing changes).
    fn send_refresh(&mut self) {
        if let Some(t) = &mut self.timer {
            t.refresh_at = None;
        }
        match self.local_sdp.clone() {
            Some(sdp) if !self.peer_allows_update => self.send_reinvite(Some(sdp)),
            _ => self.send_update(None),
        }
    }

    /// A refresh of ours failed without ending the dialog: try again halfway to the
    /// expiry, while there is time.
    fn refresh_failed(&mut self, now: Instant) {
        if let Some(t) = &mut self.timer
            && t.refresher == Refresher::Us
        {
            let left = t.expires_at.saturating_duration_since(now);
            t.refresh_at = (left > Duration::from_secs(2)).then(|| now + left / 2);
        }
    }

    /// Starts the session timer again (a call up, a refresh).
    fn set_timer(&mut self, now: Instant, interval: u32, refresher: Refresher) {
        self.min_se_retries = 0;
        let timer = SessionTimer::new(now, interval.max(MIN_SE), refresher);
        self.timer = Some(timer);
        self.events.push_back(SessionEvent::Refreshed { timer });
    }

    /// RFC 4028 §7.2: the timer a 2xx to our INVITE, re-INVITE or UPDATE sets. Without
    /// Session-Expires the peer does not do timers: we refresh at our interval ourselves
    /// (a refresh does no harm, and a proxy that counts on one is served), or keep the
    /// timer running as it was.
    fn timer_from_response(&mut self, now: Instant, response: &Message) {
        let Some(config) = self.timer_config else {
            return;
        };
        let (interval, refresher) = match session_expires(response) {
            Some((delta, r)) => (
                delta,
                if r.as_deref() == Some("uas") {
                    Refresher::Peer
                } else {
                    Refresher::Us
                },
            ),
            None => match self.timer {
                Some(t) => (t.interval, t.refresher),
                None => (config.interval, Refresher::Us),
            },
        };
        self.set_timer(now, interval, refresher);
    }

    /// RFC 4028 §9: the timer a 2xx to `request` (INVITE, re-INVITE, UPDATE) grants, or the
    /// Min-SE of the 422 it deserves (it asks for less than our Min-SE).
    fn grant_timer(&self, request: &Message) -> Result<Option<(u32, Refresher, bool)>, u32> {
        let Some(config) = self.timer_config else {
            return Ok(None);
        };
        let asked = has_option(request, TIMER);
        match session_expires(request) {
            Some((delta, _)) if delta < config.min_se => Err(config.min_se),
            Some((delta, refresher)) => {
                let refresher = match refresher.as_deref() {
                    Some("uas") => Refresher::Us,
                    Some("uac") => Refresher::Peer,
                    // The UAS chooses: the requester when it knows timers, else us.
                    _ if asked => Refresher::Peer,
                    _ => Refresher::Us,
                };
                Ok(Some((delta, refresher, asked)))
            }
            None => Ok(Some(match self.timer {
                Some(t) => (t.interval, t.refresher, asked),
                None if asked => (config.interval, Refresher::Peer, asked),
                None => (config.interval, Refresher::Us, asked),
            })),
        }
    }

    /// The Session-Expires, Min-SE and Supported of a request of ours that refreshes the
    /// session (RFC 4028 §7.4); none without timers.
    fn timer_request_headers(&self) -> Vec<(HeaderName, String)> {
        let Some(config) = self.timer_config else {
            return Vec::new();
        };
        let expires = match self.timer {
            // We are the UAC of this transaction: `uac` is us.
            Some(t) => format!(
                "{};refresher={}",
                t.interval.max(config.min_se),
                match t.refresher {
                    Refresher::Us => "uac",
                    Refresher::Peer => "uas",
                }
            ),
            None => config.interval.to_string(),
        };
        vec![
            (HeaderName::Supported, TIMER.to_owned()),
            (HeaderName::SessionExpires, expires),
            (HeaderName::MinSe, config.min_se.to_string()),
        ]
    }

    /// RFC 4028 §7.4: a 422 names a Min-SE above what we asked for: raise our interval to it
    /// (twice at most per request). False when the 422 gives nothing to retry with.
    fn raise_interval(&mut self, response: &Message) -> bool {
        let Some(min) = min_se(response) else {
            return false;
        };
        let asked = self.timer.map(|t| t.interval);
        let Some(config) = &mut self.timer_config else {
            return false;
        };
        if self.min_se_retries >= 2 || min <= asked.unwrap_or(config.interval) {
            return false;
        }
        self.min_se_retries += 1;
        config.min_se = config.min_se.max(min);
        config.interval = config.interval.max(min);
        if let Some(t) = &mut self.timer {
            t.interval = t.interval.max(min);
        }
        true
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

    /// UAS: sends 180 Ringing, or 183 Session Progress with early media SDP (the answer to
    /// the INVITE's offer).
    ///
    /// When the caller asked for reliable provisional responses (RFC 3262) the response
    /// carries `Require: 100rel` and an RSeq and is sent again until its PRACK; while it
    /// waits, another `ring` does nothing (§3: one unacknowledged at a time).
    ///
    /// To a reliable caller whose INVITE had no SDP, the first reliable 18x must carry our
    /// offer (RFC 3262 §5): `early_media` is then that offer, answered in the PRACK
    /// ([`SessionEvent::PrackAnswer`]); a `ring` without one does nothing until the
    /// offer/answer is done (the 2xx may carry the offer instead, answered in the ACK).
    pub fn ring(&mut self, now: Instant, early_media: Option<Bytes>) {
        if self.state != SessionState::Incoming || self.unacked_provisional.is_some() {
            return;
        }
        let late_offer = self.invite.body().is_empty();
        if self.reliable && late_offer && !self.early_offer_answer && !self.offered_in_18x {
            if early_media.is_none() {
                return;
            }
            self.offered_in_18x = true;
        } else if self.reliable && !late_offer && early_media.is_some() {
            // The INVITE's offer is answered reliably: a PRACK may now offer (§5).
            self.early_offer_answer = true;
        }
        let status = if early_media.is_some() { 183 } else { 180 };
        if early_media.is_some() {
            self.local_sdp.clone_from(&early_media);
        }
        let mut r = self.uas_response(status, early_media);
        if self.reliable {
            let rseq = self.next_rseq;
            self.next_rseq = rseq.wrapping_add(1);
            self.last_rseq = Some(rseq);
            r.push_header(HeaderName::Require, REL100);
            r.push_header(HeaderName::RSeq, &rseq.to_string());
            self.unacked_provisional = Some(ReliableProvisional {
                response: r.clone(),
                resend_at: now + PRACK_T1,
                wait: PRACK_T1 * 2,
                give_up_at: now + PRACK_GIVE_UP,
            });
        }
        self.outputs.push_back(Output::Respond(r));
    }

    /// Whether our provisional responses are sent reliably (RFC 3262): the caller required
    /// `100rel`, or supported it and we require it.
    pub fn reliable_provisionals(&self) -> bool {
        self.reliable
    }

    /// UAS: a PRACK (RFC 3262 §3). 200 when its RAck names our last reliable provisional
    /// response (its retransmissions then stop, and a 2xx held for it goes; a PRACK that
    /// crossed our 2xx is answered 200 too); else 481.
    ///
    /// Its SDP (§5, RFC 6337 §3.1): the answer when our reliable 18x offered
    /// ([`SessionEvent::PrackAnswer`]); a new offer once the INVITE's offer/answer is done
    /// ([`SessionEvent::PrackOffer`], [`RequestOutcome::Deferred`]; 491 when an offer of ours
    /// is unanswered, 500 with Retry-After when another of the peer's is); ignored while
    /// the INVITE's own offer still waits for our answer (no offer/answer is possible then,
    /// RFC 3264 §4). The RAck acknowledges the 18x in every case.
    fn on_prack(&mut self, request: &Message) -> RequestOutcome {
        let rack = request.get::<RAck>().and_then(Result::ok);
        let acknowledges = rack.is_some_and(|r| {
            Some(r.rseq) == self.last_rseq
                && r.cseq == self.invite_seq
                && r.method == Method::Invite
        });
        if !acknowledges || self.state == SessionState::Terminated {
            return RequestOutcome::Respond(response_to(request, 481, None));
        }
        self.unacked_provisional = None;
        if !request.body().is_empty() {
            if self.offered_in_18x {
                self.offered_in_18x = false;
                self.early_offer_answer = true;
                self.events.push_back(SessionEvent::PrackAnswer {
                    body: Some(request.body().clone()),
                });
            } else if self.initial_offer_answer_done() {
                let ours_unanswered = self.reinvite_out.as_ref().is_some_and(|(_, o)| o.is_some())
                    || self.update_out.as_ref().is_some_and(|(_, o)| o.is_some());
                let theirs_unanswered = self.reinvite_in.is_some()
                    || self.update_in.is_some()
                    || self.prack_in.is_some();
                let refusal = if ours_unanswered {
                    Some(response_to(request, 491, None))
                } else if theirs_unanswered {
                    Some(self.retry_later(request))
                } else {
                    None
                };
                if let Some(r) = refusal {
                    self.release_held_2xx();
                    return RequestOutcome::Respond(r);
                }
                // The held 2xx goes with the answer (`answer_prack`).
                self.prack_in = Some(request.clone());
                self.events.push_back(SessionEvent::PrackOffer {
                    body: request.body().clone(),
                });
                return RequestOutcome::Deferred;
            }
        }
        self.release_held_2xx();
        RequestOutcome::Respond(response_to(request, 200, None))
    }

    /// UAS: sends our 2xx held for a PRACK (RFC 3262 §3).
    fn release_held_2xx(&mut self) {
        if let Some(r) = self.held_2xx.take() {
            self.outputs.push_back(Output::Respond(r));
        }
    }

    /// UAS: whether the INVITE's offer/answer is done, so that a PRACK may offer anew
    /// (RFC 3262 §5): answered in a reliable 18x or a PRACK, or in our 2xx (an offer of
    /// ours in the 2xx is done with the ACK).
    fn initial_offer_answer_done(&self) -> bool {
        self.early_offer_answer
            || match self.state {
                SessionState::Answered => !self.offered_in_2xx,
                SessionState::Confirmed => true,
                _ => false,
            }
    }

    /// UAS: answers the peer's PRACK with an offer ([`SessionEvent::PrackOffer`]): 200 with
    /// our answer, or a failure status (488) that leaves the session as it was (the PRACK
    /// still acknowledged our 18x). Returns the response to send on the PRACK's server
    /// transaction; a 2xx to the INVITE held for this PRACK goes after it.
    pub fn answer_prack(&mut self, status: u16, body: Option<Bytes>) -> Option<Message> {
        let request = self.prack_in.take()?;
        let mut r = response_to(&request, status, None);
        if (200..300).contains(&status)
            && let Some(b) = body
        {
            self.local_sdp = Some(b.clone());
            r.set_body(Some(SDP), b);
        }
        self.release_held_2xx();
        Some(r)
    }

    /// UAS: answers 200 with our SDP (the answer, or an offer when the INVITE had none).
    pub fn accept(&mut self, body: Option<Bytes>) {
        if self.state != SessionState::Incoming {
            return;
        }
        // After an offer/answer done in a reliable 18x and its PRACK the 2xx's SDP repeats
        // ours (RFC 6337 §3.1) and offers nothing.
        self.offered_in_2xx =
            self.invite.body().is_empty() && body.is_some() && !self.early_offer_answer;
        self.local_sdp.clone_from(&body);
        let mut r = self.uas_response(200, body);
        if let Some(grant) = self.timer_answer.take() {
            push_timer_answer(&mut r, grant);
            self.timer_on_ack = Some((grant.0, grant.1));
        }
        if let Some(d) = &mut self.dialog {
            d.confirm();
        }
        self.state = SessionState::Answered;
        if self
            .unacked_provisional
            .as_ref()
            .is_some_and(|p| !p.response.body().is_empty())
        {
            // RFC 3262 §3: no 2xx before the PRACK of a reliable 18x with SDP.
            self.held_2xx = Some(r);
        } else {
            // A final response ends the retransmissions of a provisional one.
            self.unacked_provisional = None;
            self.outputs.push_back(Output::Respond(r));
        }
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

    /// UAS: whether our 2xx waits for the PRACK of a reliable 18x with SDP.
    fn answer_held(&self) -> bool {
        self.held_2xx.is_some()
    }

    /// UAS: the initial INVITE was cancelled (the endpoint sent 200 to the CANCEL and 487).
    pub fn on_cancelled(&mut self) {
        if self.state == SessionState::Incoming || self.answer_held() {
            self.end(EndReason::RemoteHangup);
        }
    }

    /// An ACK for our 2xx (initial or re-INVITE).
    pub fn on_ack(&mut self, now: Instant, ack: &Message) {
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
            } else if let Some((interval, refresher)) = self.timer_on_ack.take() {
                self.set_timer(now, interval, refresher);
            }
        } else if self.state == SessionState::Confirmed && self.reinvite_acked_seq == Some(seq) {
            // The first ACK of our 2xx to the peer's re-INVITE; copies for 2xx
            // retransmissions are not reported again.
            self.reinvite_acked_seq = None;
            self.events.push_back(SessionEvent::ReinviteConfirmed {
                body: body.filter(|_| self.offered_in_2xx),
            });
            if let Some((interval, refresher)) = self.timer_on_ack.take() {
                self.set_timer(now, interval, refresher);
            }
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
                self.on_invite_response(now, response, status)
            }
            Method::Invite => self.on_reinvite_response(now, response, cseq.seq, status),
            // RFC 3262 §4: a failed PRACK changes nothing; the INVITE decides the call. Only
            // an offer it carried is refused (§5).
            Method::Prack => self.on_prack_offer_response(cseq.seq, response, status),
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
            Method::Update => self.on_update_response(now, response, cseq.seq, status),
            _ => {
                if matches!(status, 481 | 408) {
                    self.send_bye_if_up();
                    self.end(EndReason::DialogGone { status });
                }
            }
        }
    }

    fn on_invite_response(&mut self, now: Instant, response: &Message, status: u16) {
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
                let Some(offer) = self.prack_provisional(response, to_tag.as_deref()) else {
                    return;
                };
                self.events.push_back(SessionEvent::Progress {
                    status,
                    reason: response.reason().unwrap_or_default().into_owned(),
                    body,
                    early_media: p_early_media(response),
                    offer,
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
                // After an offer/answer done in a reliable 18x and its PRACK (RFC 3262 §5)
                // the 2xx's SDP only repeats the callee's (RFC 6337 §3.1).
                let offer =
                    self.invite.body().is_empty() && body.is_some() && !self.early_offer_answer;
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
                self.peer_allows_update = allows(response, &Method::Update);
                self.events
                    .push_back(SessionEvent::Answered { body, offer });
                self.timer_from_response(now, response);
            }
            _ => {
                if self.dialog.is_some() || self.state == SessionState::Terminated {
                    return;
                }
                if status == 422 && self.resend_invite_for_min_se(response) {
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

    /// UAC: a provisional response to our INVITE. An unreliable one is reported; a reliable
    /// one (RFC 3262 §4: `Require: 100rel` with an RSeq) is PRACKed and reported when it is
    /// the next of its early dialog in RSeq order. `None` for what must be ignored: a
    /// retransmission (or a duplicate) of one already PRACKed, or one out of order; else
    /// whether its SDP is an offer (§5: to our INVITE without SDP), whose PRACK then waits
    /// for [`prack_with_answer`](Self::prack_with_answer).
    fn prack_provisional(&mut self, response: &Message, to_tag: Option<&str>) -> Option<bool> {
        if !requires(response, REL100) {
            return Some(false);
        }
        let (Some(tag), Some(Ok(RSeq(rseq)))) = (to_tag, response.get::<RSeq>()) else {
            // §4: reliable without RSeq or To tag cannot be PRACKed; report it as it is.
            return Some(false);
        };
        match self.rseq_in.iter_mut().find(|(t, _)| t == tag) {
            Some((_, last)) if rseq <= *last => return None,
            // §4: a gap: the missing one comes again first.
            Some((_, last)) if rseq != last.wrapping_add(1) => return None,
            Some((_, last)) => *last = rseq,
            None => self.rseq_in.push((tag.to_owned(), rseq)),
        }
        if !response.body().is_empty() && !self.early_offer_answer {
            if self.invite.body().is_empty() {
                // §5: the callee offers; our PRACK carries the answer.
                self.prack_answer_due.push_back((tag.to_owned(), rseq));
                return Some(true);
            }
            // The answer to our INVITE's offer, reliably: a PRACK may now offer anew.
            self.early_offer_answer = true;
        }
        let offer = if self.early_offer_answer && self.prack_offer_out.is_none() {
            self.prack_offer.take()
        } else {
            None
        };
        self.send_prack(tag, rseq, offer, true);
        Some(false)
    }

    /// UAC: the PRACK of the reliable 18x `rseq` of the early dialog `tag` (or of the
    /// dialog it became), with `body`: an offer (`offer`) or an answer.
    fn send_prack(&mut self, tag: &str, rseq: u32, body: Option<Bytes>, offer: bool) {
        let invite_seq = self.invite_seq;
        let d = match self.early.iter_mut().find(|d| d.id().remote_tag == tag) {
            Some(d) => d,
            None => match self.dialog.as_mut().filter(|d| d.id().remote_tag == tag) {
                Some(d) => d,
                None => return,
            },
        };
        let next_hop = d.next_hop();
        let mut prack = d.request(Method::Prack);
        let seq = d.local_seq();
        let rack = RAck {
            rseq,
            cseq: invite_seq,
            method: Method::Invite,
        };
        prack.push_header(HeaderName::RAck, &rack.to_string());
        if let Some(b) = body {
            if offer {
                self.prack_offer_out = Some((seq, b.clone()));
            }
            prack.set_body(Some(SDP), b);
        }
        let prack = self.with_extra(prack);
        self.outputs.push_back(Output::Request {
            request: prack,
            next_hop,
        });
    }

    /// UAC: answers the offer of a reliable 18x ([`SessionEvent::Progress`] with `offer`)
    /// in its PRACK (RFC 3262 §5); with `None`, a PRACK without SDP (the answer may then
    /// come in the ACK of an offering 2xx; a callee keeping to §5 will not like it). The
    /// offers are answered in the order they came (one per early dialog when forked).
    pub fn prack_with_answer(&mut self, answer: Option<Bytes>) {
        if self.state == SessionState::Terminated {
            return;
        }
        let Some((tag, rseq)) = self.prack_answer_due.pop_front() else {
            return;
        };
        if answer.is_some() {
            self.early_offer_answer = true;
            self.local_sdp.clone_from(&answer);
        }
        self.send_prack(&tag, rseq, answer, false);
    }

    /// UAC: the next PRACK (of a reliable 18x once the INVITE's offer/answer is done, RFC
    /// 3262 §5) carries `offer`; the answer comes in its 200 as
    /// [`SessionEvent::PrackAnswer`], a refusal as [`SessionEvent::PrackOfferRejected`].
    /// Call it before the 18x arrives (on the `calling` state, say): an 18x is PRACKed as
    /// it comes. `Err` when the call is past its early state or an offer in a PRACK is
    /// still out.
    pub fn offer_in_prack(&mut self, offer: Bytes) -> Result<(), &'static str> {
        if self.role != Role::Uac
            || !matches!(self.state, SessionState::Calling | SessionState::Early)
        {
            return Err("the call is not in its early state");
        }
        if self.prack_offer_out.is_some() {
            return Err("an offer is already in progress");
        }
        self.prack_offer = Some(offer);
        Ok(())
    }

    /// UAC: the response to our PRACK that carried an offer.
    fn on_prack_offer_response(&mut self, seq: u32, response: &Message, status: u16) {
        if status < 200 || self.prack_offer_out.as_ref().is_none_or(|(s, _)| *s != seq) {
            return;
        }
        let Some((_, offer)) = self.prack_offer_out.take() else {
            return;
        };
        if (200..300).contains(&status) {
            let body = (!response.body().is_empty()).then(|| response.body().clone());
            if body.is_some() {
                self.local_sdp = Some(offer);
            }
            self.events.push_back(SessionEvent::PrackAnswer { body });
        } else {
            self.events
                .push_back(SessionEvent::PrackOfferRejected { status });
        }
    }

    /// UAC: sends the initial INVITE again with new headers (the `Authorization` or
    /// `Proxy-Authorization` answering a 401/407), with the next CSeq (RFC 3261 §22.2). Call
    /// it instead of [`on_response`](Self::on_response) for the challenge. Returns false when
    /// the call is past the point where that makes sense.
    pub fn resend_invite_with(&mut self, headers: &[(String, String)]) -> bool {
        self.resend_invite(|invite| {
            invite.remove_header(HeaderName::Authorization);
            invite.remove_header(HeaderName::ProxyAuthorization);
            for (n, v) in headers {
                invite.push_header_named(n, v);
            }
        })
    }

    /// UAC: a 422 Session Interval Too Small (RFC 4028 §7.4) to the initial INVITE: sends
    /// it again with the next CSeq, asking for the response's Min-SE as Session-Expires and
    /// Min-SE. [`on_response`](Self::on_response) does this by itself; a driver that keeps
    /// the retry in the INVITE's own client transaction chain calls it instead. False when
    /// the 422 names no larger Min-SE (or twice already): the call then fails with 422.
    pub fn resend_invite_for_min_se(&mut self, response: &Message) -> bool {
        if self.role != Role::Uac
            || !matches!(self.state, SessionState::Calling | SessionState::Early)
            || self.cancelling
            || !self.raise_interval(response)
        {
            return false;
        }
        let Some(config) = self.timer_config else {
            return false;
        };
        self.resend_invite(|invite| {
            invite.remove_header(HeaderName::SessionExpires);
            invite.remove_header(HeaderName::MinSe);
            invite.push_header(HeaderName::SessionExpires, &config.interval.to_string());
            invite.push_header(HeaderName::MinSe, &config.min_se.to_string());
        })
    }

    /// The initial INVITE again, changed by `edit`, with the next CSeq.
    fn resend_invite(&mut self, edit: impl FnOnce(&mut Message)) -> bool {
        if self.role != Role::Uac
            || !matches!(self.state, SessionState::Calling | SessionState::Early)
            || self.cancelling
        {
            return false;
        }
        let mut invite = self.invite.clone();
        edit(&mut invite);
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
        self.rseq_in.clear();
        self.prack_answer_due.clear();
        self.early_offer_answer = false;
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
            if answer.is_some() {
                self.local_sdp.clone_from(&answer);
            }
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
            // Only an offer the PRACK carried is refused by its failure (RFC 3262 §5).
            Method::Prack if self.prack_offer_out.take().is_some() => {
                self.events
                    .push_back(SessionEvent::PrackOfferRejected { status: 408 });
            }
            Method::Prack => {}
            _ if self.state == SessionState::Confirmed => {
                self.reinvite_out = None;
                self.update_out = None;
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
            (Role::Uas, SessionState::Answered) if self.answer_held() => {
                // The 2xx never went: refuse the INVITE instead.
                self.held_2xx = None;
                let r = self.uas_response(603, None);
                self.outputs.push_back(Output::Respond(r));
                self.end(EndReason::LocalHangup);
            }
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
            self.timer = None;
            self.unacked_provisional = None;
            self.held_2xx = None;
            self.prack_answer_due.clear();
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
        if self.offer_in_progress() {
            return Err("an offer is already in progress");
        }
        self.glare_retry = None;
        self.send_reinvite(offer);
        Ok(())
    }

    /// Whether an offer/answer exchange is under way in an UPDATE, either way (RFC 3311
    /// §5.1: no new offer until it completes).
    fn offer_in_progress(&self) -> bool {
        self.update_in.is_some() || self.update_out.as_ref().is_some_and(|(_, o)| o.is_some())
    }

    /// Sends an UPDATE (RFC 3311) in the call that is up: with an offer, a change of the
    /// session without a re-INVITE ([`SessionEvent::UpdateAccepted`] or
    /// [`SessionEvent::UpdateRejected`] follow); without one, a session refresh (RFC 4028)
    /// or a target refresh. `Err` when the call is not up, another UPDATE is in flight, or
    /// an offer is already in progress.
    pub fn update(&mut self, offer: Option<Bytes>) -> Result<(), &'static str> {
        if self.state != SessionState::Confirmed {
            return Err("the call is not up");
        }
        if self.update_out.is_some() {
            return Err("an UPDATE is already in progress");
        }
        if offer.is_some()
            && (self.reinvite_out.is_some()
                || self.reinvite_in.is_some()
                || self.update_in.is_some())
        {
            return Err("an offer is already in progress");
        }
        self.send_update(offer);
        Ok(())
    }

    fn send_update(&mut self, offer: Option<Bytes>) {
        let timer_headers = self.timer_request_headers();
        let Some(d) = &mut self.dialog else { return };
        let next_hop = d.next_hop();
        let mut req = d.request(Method::Update);
        let seq = d.local_seq();
        req.push_header(HeaderName::Allow, ALLOW);
        for (name, value) in &timer_headers {
            req.push_header(*name, value);
        }
        if let Some(body) = &offer {
            req.set_body(Some(SDP), body.clone());
        }
        let req = self.with_extra(req);
        self.update_out = Some((seq, offer));
        self.outputs.push_back(Output::Request {
            request: req,
            next_hop,
        });
    }

    fn on_update_response(&mut self, now: Instant, response: &Message, seq: u32, status: u16) {
        if status < 200 || self.update_out.as_ref().is_none_or(|(s, _)| *s != seq) {
            return;
        }
        let (_, offer) = self.update_out.take().expect("checked just above");
        match status {
            200..=299 => {
                if let Some(d) = &mut self.dialog {
                    d.receive_response(response);
                }
                if offer.is_some() {
                    self.local_sdp.clone_from(&offer);
                    let body = (!response.body().is_empty()).then(|| response.body().clone());
                    self.events.push_back(SessionEvent::UpdateAccepted { body });
                }
                if self.state == SessionState::Confirmed {
                    self.timer_from_response(now, response);
                }
            }
            422 if self.raise_interval(response) => self.send_update(offer),
            491 => {
                let wait = self.glare_wait();
                self.glare_retry = Some((now + wait, Method::Update, offer.clone()));
                if offer.is_some() {
                    self.events
                        .push_back(SessionEvent::UpdateRejected { status: 491 });
                }
            }
            481 | 408 => {
                self.send_bye_if_up();
                self.end(EndReason::DialogGone { status });
            }
            405 | 501 if offer.is_none() => {
                // The peer does not take UPDATE after all: refresh by re-INVITE (§7.4).
                self.peer_allows_update = false;
                if let Some(t) = &mut self.timer
                    && t.refresher == Refresher::Us
                {
                    t.refresh_at = Some(now);
                }
            }
            _ => {
                if offer.is_some() {
                    self.events
                        .push_back(SessionEvent::UpdateRejected { status });
                }
                self.refresh_failed(now);
            }
        }
    }

    /// RFC 3261 §14.1 (RFC 3311 §5.1 for UPDATE): the random wait before retrying after a
    /// 491, by who owns the Call-ID.
    fn glare_wait(&mut self) -> Duration {
        let (lo, hi) = if self.role == Role::Uac {
            GLARE_OWNER
        } else {
            GLARE_OTHER
        };
        let steps = (hi - lo) / 10 + 1;
        Duration::from_millis(lo + (self.rng_next() % steps) * 10)
    }

    fn send_reinvite(&mut self, offer: Option<Bytes>) {
        let timer_headers = self.timer_request_headers();
        let Some(d) = &mut self.dialog else { return };
        let next_hop = d.next_hop();
        let mut req = d.request(Method::Invite);
        req.push_header(HeaderName::Allow, ALLOW);
        for (name, value) in &timer_headers {
            req.push_header(*name, value);
        }
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
                if offer.is_some() {
                    self.local_sdp.clone_from(&offer);
                }
                let body = (!response.body().is_empty()).then(|| response.body().clone());
                self.events
                    .push_back(SessionEvent::ReinviteAccepted { body });
                self.timer_from_response(now, response);
            }
            // RFC 4028 §7.4: again with the larger interval the 422 asks for.
            422 if self.raise_interval(response) => self.send_reinvite(offer),
            491 => {
                let wait = self.glare_wait();
                self.glare_retry = Some((now + wait, Method::Invite, offer));
                self.events
                    .push_back(SessionEvent::ReinviteRejected { status: 491 });
            }
            481 | 408 => {
                self.end(EndReason::DialogGone { status });
            }
            _ => {
                self.events
                    .push_back(SessionEvent::ReinviteRejected { status });
                self.refresh_failed(now);
            }
        }
    }

    fn rng_next(&mut self) -> u64 {
        use rand_core::TryRng;
        let Ok(v) = self.rng.try_next_u64();
        v
    }

    /// A request inside this call from the peer (BYE, re-INVITE, INFO, OPTIONS...). Not for
    /// ACK ([`on_ack`](Self::on_ack)) or CANCEL (the endpoint answers it).
    pub fn on_request(&mut self, now: Instant, request: &Message) -> RequestOutcome {
        let method = request.method().cloned().unwrap_or(Method::Options);
        if self.dialog.is_none() {
            // UAC: an UPDATE in one of the callee's early dialogs (RFC 3311 §5.2).
            let early = self.early.iter_mut().find(|e| e.matches_request(request));
            return match early {
                Some(e) if method == Method::Update => match e.receive_request(request) {
                    Ok(()) => self.on_update(now, request),
                    Err(_) => RequestOutcome::Respond(response_to(request, 500, None)),
                },
                _ => RequestOutcome::Respond(response_to(request, 481, None)),
            };
        }
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
                if self.reinvite_out.is_some()
                    || self.state == SessionState::Answered
                    || self.update_out.as_ref().is_some_and(|(_, o)| o.is_some())
                {
                    // §14.2: glare, or an offer while ours is pending.
                    return RequestOutcome::Respond(response_to(request, 491, None));
                }
                if self.reinvite_in.is_some() || self.update_in.is_some() {
                    return RequestOutcome::Respond(self.retry_later(request));
                }
                match self.grant_timer(request) {
                    Ok(grant) => self.timer_answer = grant,
                    Err(min_se) => return RequestOutcome::Respond(too_small(request, min_se)),
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
            Method::Update => self.on_update(now, request),
            Method::Prack => self.on_prack(request),
            Method::Refer | Method::Notify if self.state == SessionState::Confirmed => {
                RequestOutcome::Transfer
            }
            Method::Refer | Method::Notify => {
                // RFC 3515 §2.4.2 lets a REFER outside a confirmed call be refused.
                RequestOutcome::Respond(response_to(request, 481, None))
            }
            _ => {
                let status = crate::endpoint::unhandled_method_status(&method);
                let mut r = response_to(request, status, None);
                r.push_header(HeaderName::Allow, ALLOW);
                RequestOutcome::Respond(r)
            }
        }
    }

    /// A 500 with a random Retry-After of 0-9 s (RFC 3261 §14.2, RFC 3311 §5.2): the peer
    /// offered while its previous offer still waits for our answer.
    fn retry_later(&mut self, request: &Message) -> Message {
        let mut r = response_to(request, 500, None);
        let wait = self.rng_next() % 10;
        r.push_header(HeaderName::RetryAfter, &wait.to_string());
        r
    }

    /// An UPDATE from the peer (RFC 3311 §5.2), in an early or a confirmed dialog. Without
    /// a body it is a session refresh (RFC 4028 §9) or a target refresh, answered 200 at
    /// once. With an offer: 491 when an offer of ours is unanswered, 500 with Retry-After
    /// when one of the peer's is, else a [`SessionEvent::Update`] for the application.
    fn on_update(&mut self, now: Instant, request: &Message) -> RequestOutcome {
        if self.state == SessionState::Terminated {
            return RequestOutcome::Respond(response_to(request, 481, None));
        }
        let grant = match self.grant_timer(request) {
            Ok(grant) => grant,
            Err(min_se) => return RequestOutcome::Respond(too_small(request, min_se)),
        };
        if request.body().is_empty() {
            let mut r = response_to(request, 200, None);
            r.push_header(HeaderName::Contact, &self.config.contact);
            r.push_header(HeaderName::Allow, ALLOW);
            if self.state == SessionState::Confirmed
                && let Some(grant) = grant
            {
                push_timer_answer(&mut r, grant);
                self.set_timer(now, grant.0, grant.1);
            }
            return RequestOutcome::Respond(r);
        }
        let ours_unanswered = self.reinvite_out.as_ref().is_some_and(|(_, o)| o.is_some())
            || self.update_out.as_ref().is_some_and(|(_, o)| o.is_some())
            || (self.offered_in_2xx
                && (self.state == SessionState::Answered || self.reinvite_acked_seq.is_some()))
            || (self.role == Role::Uac
                && matches!(self.state, SessionState::Calling | SessionState::Early)
                && !self.invite.body().is_empty());
        if ours_unanswered {
            return RequestOutcome::Respond(response_to(request, 491, None));
        }
        let theirs_unanswered = self.reinvite_in.is_some()
            || self.update_in.is_some()
            || !matches!(self.state, SessionState::Confirmed | SessionState::Answered);
        if theirs_unanswered {
            return RequestOutcome::Respond(self.retry_later(request));
        }
        self.update_in = Some(request.clone());
        self.timer_answer = grant;
        self.events.push_back(SessionEvent::Update {
            body: request.body().clone(),
        });
        RequestOutcome::Deferred
    }

    /// Answers the peer's UPDATE with an offer ([`SessionEvent::Update`]): 200 with our
    /// answer, or a failure status (488) that leaves the session as it was. Returns the
    /// response to send on the UPDATE's server transaction.
    pub fn answer_update(
        &mut self,
        now: Instant,
        status: u16,
        body: Option<Bytes>,
    ) -> Option<Message> {
        let request = self.update_in.take()?;
        let grant = self.timer_answer.take();
        let mut r = response_to(&request, status, None);
        if (200..300).contains(&status) {
            r.push_header(HeaderName::Contact, &self.config.contact);
            r.push_header(HeaderName::Allow, ALLOW);
            if let Some(b) = body {
                self.local_sdp = Some(b.clone());
                r.set_body(Some(SDP), b);
            }
            if let Some(grant) = grant {
                push_timer_answer(&mut r, grant);
                if self.state == SessionState::Confirmed {
                    self.set_timer(now, grant.0, grant.1);
                }
            }
        }
        Some(r)
    }

    /// Answers the peer's re-INVITE ([`SessionEvent::Reinvite`]): 200 with our SDP, or a
    /// failure status (488) that leaves the session as it was. Returns the response to send
    /// on the re-INVITE's server transaction.
    pub fn answer_reinvite(&mut self, status: u16, body: Option<Bytes>) -> Option<Message> {
        let request = self.reinvite_in.take()?;
        let grant = self.timer_answer.take();
        let mut r = response_to(&request, status, None);
        if (200..300).contains(&status) {
            r.push_header(HeaderName::Contact, &self.config.contact);
            r.push_header(HeaderName::Allow, ALLOW);
            self.offered_in_2xx = request.body().is_empty() && body.is_some();
            if let Some(b) = body {
                self.local_sdp = Some(b.clone());
                r.set_body(Some(SDP), b);
            }
            if let Some(grant) = grant {
                push_timer_answer(&mut r, grant);
                // The refresh counts from the ACK (RFC 4028 §9 starts it with the 2xx; the
                // ACK follows within a round trip).
                self.timer_on_ack = Some((grant.0, grant.1));
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

    /// Sends a request of another layer in the call's confirmed dialog (a REFER or a NOTIFY of
    /// a transfer, RFC 3515) with `headers` and a body, as an [`Output::Request`]; its
    /// responses go to the caller (the session only ends the call on a 481 or 408, RFC 3261
    /// §12.2.1.2). `Err` when the call is not up.
    pub fn send_request(
        &mut self,
        method: Method,
        headers: &[(HeaderName, String)],
        body: Option<(&str, Bytes)>,
    ) -> Result<(), &'static str> {
        let (mut request, next_hop) = self.request_in_dialog(method)?;
        for (n, v) in headers {
            request.push_header(*n, v);
        }
        if let Some((content_type, body)) = body {
            request.set_body(Some(content_type), body);
        }
        self.outputs
            .push_back(Output::Request { request, next_hop });
        Ok(())
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

/// `t` with its interval at least its Min-SE, and both at least [`MIN_SE`].
fn normalize_timer(t: SessionTimerConfig) -> SessionTimerConfig {
    let min_se = t.min_se.max(MIN_SE);
    SessionTimerConfig {
        interval: t.interval.max(min_se),
        min_se,
    }
}

/// A message's Session-Expires: the interval and the `refresher` parameter, lowercase.
fn session_expires(message: &Message) -> Option<(u32, Option<String>)> {
    let se = message.get::<SessionExpires<'_>>()?.ok()?;
    let refresher = se
        .params
        .get("refresher")
        .flatten()
        .map(str::to_ascii_lowercase);
    Some((se.delta, refresher))
}

/// A message's Min-SE.
fn min_se(message: &Message) -> Option<u32> {
    Some(message.get::<MinSe<'_>>()?.ok()?.delta)
}

/// Whether a message lists `tag` in Supported or Require.
fn has_option(message: &Message, tag: &str) -> bool {
    message
        .get_all::<Supported<'_>>()
        .filter_map(Result::ok)
        .any(|s| s.as_str().eq_ignore_ascii_case(tag))
        || message
            .get_all::<Require<'_>>()
            .filter_map(Result::ok)
            .any(|s| s.as_str().eq_ignore_ascii_case(tag))
}

/// RFC 5009 §5: whether a response's `P-Early-Media` lets the peer's early media reach
/// us: one direction per media line, any `sendrecv` or `sendonly` allows it, else any
/// `recvonly` or `inactive` forbids it; `None` without the header or with only `gated` or
/// `supported`.
fn p_early_media(response: &Message) -> Option<bool> {
    let mut verdict = None;
    for line in response
        .header_lines_named("P-Early-Media")
        .filter_map(Result::ok)
    {
        for param in line.split(',') {
            match param.trim().to_ascii_lowercase().as_str() {
                "sendrecv" | "sendonly" => return Some(true),
                "recvonly" | "inactive" => verdict = Some(false),
                _ => {}
            }
        }
    }
    verdict
}

/// Whether a message's `Require` lists `tag`.
fn requires(message: &Message, tag: &str) -> bool {
    message
        .get_all::<Require<'_>>()
        .filter_map(Result::ok)
        .any(|s| s.as_str().eq_ignore_ascii_case(tag))
}

/// Whether a message's `Supported` lists `tag`.
fn supports(message: &Message, tag: &str) -> bool {
    message
        .get_all::<Supported<'_>>()
        .filter_map(Result::ok)
        .any(|s| s.as_str().eq_ignore_ascii_case(tag))
}

/// Whether a message's Allow lists `method`.
fn allows(message: &Message, method: &Method) -> bool {
    message
        .get_all::<Allow<'_>>()
        .filter_map(Result::ok)
        .any(|a| a.as_str().eq_ignore_ascii_case(method.as_str()))
}

/// 422 Session Interval Too Small with our Min-SE (RFC 4028 §8.1).
fn too_small(request: &Message, min_se: u32) -> Message {
    let mut r = response_to(request, 422, None);
    r.push_header(HeaderName::MinSe, &min_se.to_string());
    r
}

/// The Session-Expires (with `refresher`, as the UAS of the transaction), Supported and,
/// when the request knew timers, Require of a 2xx granting a timer (RFC 4028 §9).
fn push_timer_answer(r: &mut Message, (interval, refresher, asked): (u32, Refresher, bool)) {
    let who = match refresher {
        Refresher::Us => "uas",
        Refresher::Peer => "uac",
    };
    r.push_header(HeaderName::Supported, TIMER);
    r.push_header(
        HeaderName::SessionExpires,
        &format!("{interval};refresher={who}"),
    );
    if asked {
        r.push_header(HeaderName::Require, TIMER);
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
            session_timer: None,
            prack: PrackPolicy::default(),
        };
        let mut session = InviteSession::incoming(config, &invite).expect("a valid INVITE");
        #[allow(clippy::disallowed_methods)] // a unit test has no driver to take `now` from
        session.ring(Instant::now(), None);
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

#[cfg(test)]
mod prack_tests {
    use super::*;

    fn message(text: String) -> Message {
        Message::parse(Bytes::from(text)).expect("a well-formed message")
    }

    fn prack(rack: &str, cseq: u32) -> Message {
        prack_with(rack, cseq, None)
    }

    /// A minimal SDP body of `owner` at `ip`.
    fn sdp(owner: &str, ip: &str) -> Bytes {
        Bytes::from(format!(
            "v=0\r\no={owner} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio 49170 RTP/AVP 0\r\na=sendrecv\r\n"
        ))
    }

    /// Alice's INVITE requiring 100rel, with an SDP offer or none (a late offer).
    fn invite(offer: Option<&Bytes>) -> Message {
        let mut m = message(
            "INVITE sip:bob@192.0.2.2:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a1\r\n\
             From: <sip:alice@example.com>;tag=a1\r\n\
             To: <sip:bob@example.com>\r\n\
             Call-ID: prack@192.0.2.1\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:alice@192.0.2.1:5060>\r\n\
             Require: 100rel\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
                .to_owned(),
        );
        if let Some(b) = offer {
            m.set_body(Some(SDP), b.clone());
        }
        m
    }

    /// Bob's session for `invite` (he does not ask for 100rel: Alice requires it).
    fn bob(invite: &Message) -> InviteSession {
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
            session_timer: None,
            prack: PrackPolicy::Off,
        };
        InviteSession::incoming(config, invite).expect("a valid INVITE")
    }

    /// Bob's session for `invite`, its reliable 18x sent with `early` and that 18x's RAck.
    fn bob_rings(now: Instant, invite: &Message, early: Option<Bytes>) -> (InviteSession, String) {
        let mut session = bob(invite);
        session.ring(now, early);
        let Some(Output::Respond(provisional)) = session.poll_output() else {
            panic!("no 18x");
        };
        let rseq = provisional
            .get::<RSeq>()
            .and_then(Result::ok)
            .expect("an RSeq")
            .0;
        (session, format!("{rseq} 1 INVITE"))
    }

    fn events(session: &mut InviteSession) -> Vec<SessionEvent> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    fn prack_with(rack: &str, cseq: u32, body: Option<&Bytes>) -> Message {
        let mut m = message(format!(
            "PRACK sip:bob@192.0.2.2:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-pr{cseq}\r\n\
             From: <sip:alice@example.com>;tag=a1\r\n\
             To: <sip:bob@example.com>;tag=b1\r\n\
             Call-ID: prack@192.0.2.1\r\n\
             CSeq: {cseq} PRACK\r\n\
             RAck: {rack}\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        ));
        if let Some(b) = body {
            m.set_body(Some(SDP), b.clone());
        }
        m
    }

    fn status(outcome: RequestOutcome) -> u16 {
        match outcome {
            RequestOutcome::Respond(r) => r.status().unwrap_or(0),
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn prack_with_an_unknown_rack_gets_481_and_the_right_one_200() {
        let now = Instant::now();
        let invite = invite(Some(&sdp("alice", "192.0.2.1")));
        let mut session = bob(&invite);
        assert!(session.reliable_provisionals());
        session.ring(now, None);
        let Some(Output::Respond(ringing)) = session.poll_output() else {
            panic!("no 180");
        };
        let rseq = ringing
            .get::<RSeq>()
            .and_then(Result::ok)
            .expect("an RSeq")
            .0;
        assert_eq!(ringing.header(HeaderName::Require), Some(REL100));
        // Before the PRACK: the 180 again at T1.
        assert_eq!(session.poll_timeout(), Some(now + PRACK_T1));
        let wrong = format!("{} 1 INVITE", rseq.wrapping_add(1));
        assert_eq!(status(session.on_request(now, &prack(&wrong, 2))), 481);
        assert_eq!(status(session.on_request(now, &prack("garbage", 3))), 481);
        let right = format!("{rseq} 1 INVITE");
        assert_eq!(status(session.on_request(now, &prack(&right, 4))), 200);
        assert_eq!(session.poll_timeout(), None);
        assert_eq!(session.state(), SessionState::Incoming);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn a_late_offer_in_a_reliable_18x_is_answered_by_the_prack() {
        let now = Instant::now();
        let invite = invite(None);
        // RFC 3262 §5: no reliable 18x without our offer to an INVITE without one.
        assert!(
            bob_rings_nothing(now, &invite),
            "a reliable 180 without the offer was sent"
        );
        let (mut session, rack) = bob_rings(now, &invite, Some(sdp("bob", "192.0.2.2")));
        // The PRACK's SDP is the answer: 200 without SDP, the answer reported.
        let answer = sdp("alice", "198.51.100.7");
        let RequestOutcome::Respond(ok) =
            session.on_request(now, &prack_with(&rack, 2, Some(&answer)))
        else {
            panic!("the PRACK is answered at once");
        };
        assert_eq!(ok.status(), Some(200));
        assert!(ok.body().is_empty());
        assert_eq!(
            events(&mut session),
            [SessionEvent::PrackAnswer { body: Some(answer) }]
        );
        // The 2xx repeats our SDP and offers nothing: an SDP in the ACK is not an answer.
        session.accept(Some(sdp("bob", "192.0.2.2")));
        let Some(Output::Respond(two_hundred)) = session.poll_output() else {
            panic!("no 2xx");
        };
        assert_eq!(two_hundred.status(), Some(200));
        let ack = message(
            "ACK sip:bob@192.0.2.2:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack\r\n\
             From: <sip:alice@example.com>;tag=a1\r\n\
             To: <sip:bob@example.com>;tag=b1\r\n\
             Call-ID: prack@192.0.2.1\r\n\
             CSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
                .to_owned(),
        );
        session.on_ack(now, &ack);
        assert_eq!(
            events(&mut session),
            [SessionEvent::Confirmed { body: None }]
        );
    }

    /// Whether `ring` without an offer sends nothing to a reliable late-offer INVITE.
    fn bob_rings_nothing(now: Instant, invite: &Message) -> bool {
        let mut session = bob(invite);
        session.ring(now, None);
        session.poll_output().is_none()
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn an_offer_in_a_prack_after_a_reliable_answer_is_answered_in_its_200() {
        let now = Instant::now();
        let invite = invite(Some(&sdp("alice", "192.0.2.1")));
        let (mut session, rack) = bob_rings(now, &invite, Some(sdp("bob", "192.0.2.2")));
        // Bob answers at once: the 2xx waits for the 183's PRACK, then for its answer.
        session.accept(Some(sdp("bob", "192.0.2.2")));
        assert!(session.poll_output().is_none());
        let offer = sdp("alice", "198.51.100.7");
        let outcome = session.on_request(now, &prack_with(&rack, 2, Some(&offer)));
        assert!(matches!(outcome, RequestOutcome::Deferred), "{outcome:?}");
        assert_eq!(
            events(&mut session),
            [SessionEvent::PrackOffer { body: offer }]
        );
        // Acknowledged: no 183 again.
        assert_eq!(session.poll_timeout(), None);
        assert!(
            session.poll_output().is_none(),
            "the 2xx waits for the PRACK's answer"
        );
        let answer = sdp("bob", "203.0.113.9");
        let ok = session
            .answer_prack(200, Some(answer.clone()))
            .expect("a PRACK to answer");
        assert_eq!((ok.status(), ok.body()), (Some(200), &answer));
        let Some(Output::Respond(two_hundred)) = session.poll_output() else {
            panic!("the held 2xx goes after the PRACK's answer");
        };
        assert_eq!(two_hundred.status(), Some(200));
        assert!(session.answer_prack(200, None).is_none());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn sdp_in_a_prack_while_the_invites_offer_is_unanswered_is_ignored() {
        let now = Instant::now();
        let invite = invite(Some(&sdp("alice", "192.0.2.1")));
        // A reliable 180 without SDP: Alice's offer still waits for our answer, so her
        // PRACK can carry neither an answer nor a new offer (RFC 3264 §4, RFC 6337 §3.1).
        let (mut session, rack) = bob_rings(now, &invite, None);
        let stray = sdp("alice", "198.51.100.7");
        let RequestOutcome::Respond(ok) =
            session.on_request(now, &prack_with(&rack, 2, Some(&stray)))
        else {
            panic!("the PRACK is answered at once");
        };
        assert_eq!(ok.status(), Some(200));
        assert!(ok.body().is_empty());
        assert!(events(&mut session).is_empty());
        assert_eq!(session.poll_timeout(), None, "the 180 is acknowledged");
    }
}
