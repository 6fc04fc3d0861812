//! What the phone core tells its owner: typed events for calls and accounts, and the errors of
//! the commands that can fail at once.

use std::net::SocketAddr;
use std::time::Duration;

use tincan_media::codec::CodecKind;
use tincan_media::quality::StreamStats;
use tincan_media::rtp::PortKind;
use tincan_media::session::{Level, SessionStats};
use tincan_sip::flow::FlowFailure;
use tincan_sip::resolve::failover::FailedAttempt;
use tincan_sip::transport::Target;

/// A call of a phone, named by the phone (not the SIP Call-ID, which the peer chooses for
/// incoming calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// An account of a phone, in the order the accounts were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct AccountId(pub usize);

/// An outgoing page-mode message of a phone ([`PhoneCore::send_message`](super::PhoneCore::send_message)),
/// named by the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct MessageId(pub u64);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message-{}", self.0)
    }
}

/// Everything the phone reports, in the order it happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// A new call arrived: answer it with [`PhoneCore::accept`](super::PhoneCore::accept),
    /// refuse it with [`PhoneCore::reject`](super::PhoneCore::reject). Its later events are
    /// [`PhoneEvent::Call`]s.
    Incoming(IncomingCall),
    /// Something happened to a call.
    Call {
        /// The call.
        call: CallId,
        /// What.
        event: CallEvent,
    },
    /// A new incoming call was refused by admission control before it became a call (no
    /// call id, no media): the phone already carries
    /// [`PhoneConfig::call_limit`](super::PhoneConfig::call_limit) calls (503), or its
    /// account its [`AccountConfig::call_limit`](super::AccountConfig::call_limit) (486).
    Refused(RefusedCall),
    /// Something happened to an account's registration.
    Account {
        /// The account.
        account: AccountId,
        /// What.
        event: AccountEvent,
    },
    /// A page-mode message arrived, or one sent got its delivery report (RFC 3428).
    Message(MessageEvent),
    /// A PBX said how many voice (or other) messages wait (RFC 3842 `message-summary`
    /// NOTIFY, answered 200).
    MessageWaiting(super::message_waiting::MessageWaiting),
    /// A drain ([`PhoneCore::drain`](super::PhoneCore::drain)) is over: the phone takes no
    /// new call and the last of its calls has ended. Reported once.
    Drained,
    /// A watched contact's presence changed, or the account's own was published (RFC 3856,
    /// RFC 3903; [`presence`](super::presence)).
    Presence(super::presence::PresenceEvent),
    /// A watched contact's busy lamp changed (RFC 4235 dialog event package,
    /// [`PhoneCore::watch_dialogs`](super::PhoneCore::watch_dialogs)).
    Lamp(super::blf::LampChange),
}

/// What happens to page-mode messages (RFC 3428 MESSAGE).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MessageEvent {
    /// A MESSAGE arrived (in or out of a dialog) and was answered 200.
    Received(IncomingMessage),
    /// A message sent was accepted: a 2xx final response (RFC 3428 §7; a 202 says a
    /// gateway or store took it, not that the recipient read it).
    Delivered {
        /// The message.
        message: MessageId,
        /// The final status (200, 202).
        status: u16,
    },
    /// A message sent was refused (a 3xx-6xx final response, with its status) or could not
    /// be delivered anywhere (no status: every server timed out or was unreachable, or the
    /// recipient's domain could not be resolved).
    Failed {
        /// The message.
        message: MessageId,
        /// The final status, if one came.
        status: Option<u16>,
        /// The reason phrase, or what went wrong with each server tried.
        reason: String,
    },
}

/// A page-mode message received ([`MessageEvent::Received`]).
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    /// The sender (the From header's value).
    pub from: String,
    /// The recipient (the To header's value).
    pub to: String,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The Content-Type as received (`text/plain;charset=UTF-8`); empty for an empty body
    /// without one; `application/octet-stream` for a body with none or a malformed one.
    pub content_type: String,
    /// The body as text: a `text/*` body in UTF-8; `None` for any other type, or bytes that
    /// are not UTF-8 (see `body`).
    pub text: Option<String>,
    /// The body's bytes.
    pub body: bytes::Bytes,
    /// The account whose address of record it was sent to, if any.
    pub account: Option<AccountId>,
    /// The call whose dialog it came in, if any.
    pub call: Option<CallId>,
}

/// A call waiting to be answered.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    /// The call.
    pub call: CallId,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The caller (the From header's value).
    pub from: String,
    /// The callee (the To header's value).
    pub to: String,
    /// The account whose address of record (or registered contact) it was sent to, if any.
    pub account: Option<AccountId>,
}

/// An incoming call refused by admission control ([`PhoneEvent::Refused`]).
#[derive(Debug, Clone)]
pub struct RefusedCall {
    /// The SIP Call-ID.
    pub call_id: String,
    /// The caller (the From header's value).
    pub from: String,
    /// The account it was sent to, if any.
    pub account: Option<AccountId>,
    /// The status it was refused with: 503 (the phone is full) or 486 (the account is).
    pub status: u16,
}

/// How a DTMF key arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DtmfVia {
    /// RFC 4733 telephone-event in the media.
    Rfc4733,
    /// A SIP INFO with `application/dtmf-relay`.
    Info,
}

/// What happens to a call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallEvent {
    /// The INVITE went out to a server (once per server tried).
    Calling {
        /// The SIP Call-ID.
        call_id: String,
        /// The Request-URI.
        uri: String,
        /// Where it was sent.
        target: Target,
    },
    /// A provisional response (180, 183...).
    Progress {
        /// The status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The call is up and media flows.
    Answered {
        /// From the call's start to the answer.
        setup: Duration,
        /// The codec.
        codec: CodecKind,
        /// Whether the media is SRTP.
        srtp: bool,
        /// Where our RTP goes.
        remote_rtp: SocketAddr,
    },
    /// Live quality figures (every second while media flows).
    Quality(Quality),
    /// A DTMF key from the peer.
    Dtmf {
        /// The key.
        digit: char,
        /// How it came.
        via: DtmfVia,
    },
    /// The call was put on hold.
    Hold {
        /// Whether the peer did it (it sent a sendonly/inactive offer).
        by_peer: bool,
    },
    /// The call joined a local three-way conference with the call `with`
    /// ([`Phone::conference`](super::Phone::conference)), or left it (`None`: split, or the
    /// other call ended), going on as a normal call with its own devices.
    Conference {
        /// The other call of the conference; `None` once this call is on its own again.
        with: Option<CallId>,
    },
    /// The call was taken off hold.
    Resumed {
        /// Whether the peer did it.
        by_peer: bool,
    },
    /// The microphone was muted or unmuted ([`PhoneCore::mute`](super::PhoneCore::mute)).
    Muted {
        /// Whether it is muted now.
        muted: bool,
    },
    /// The levels of the call's audio over the last 200 ms, five times a second while its
    /// media runs, when [`PhoneConfig::level_meters`](super::PhoneConfig::level_meters) is
    /// on. An application that falls behind loses some (the next one replaces them).
    Levels(Levels),
    /// A re-INVITE changed the codec or the SRTP keys; media goes on with the new ones.
    CodecChanged {
        /// The new codec.
        codec: CodecKind,
        /// Whether the media is SRTP.
        srtp: bool,
    },
    /// The peer asks us to transfer this call (a REFER, RFC 3515): answer with
    /// [`PhoneCore::accept_transfer`](super::PhoneCore::accept_transfer) or
    /// [`PhoneCore::reject_transfer`](super::PhoneCore::reject_transfer).
    TransferRequested {
        /// The target (`Refer-To`), without its headers.
        to: String,
        /// Who asked for it (`Referred-By`, RFC 3892), when said.
        referred_by: Option<String>,
    },
    /// We accepted the peer's REFER and placed `new_call` to its target; this call ends
    /// when that one connects.
    TransferStarted {
        /// The call to the transfer target.
        new_call: CallId,
    },
    /// Our transfer of this call goes on: the 202 to our REFER, then the target's
    /// provisional statuses from the peer's NOTIFYs (RFC 3515 §2.4.5).
    TransferProgress {
        /// The status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Our transfer of this call worked (a 2xx sipfrag, or a 2xx with `Refer-Sub: false`,
    /// RFC 4488); the call is hung up.
    TransferSucceeded {
        /// The status reported.
        status: u16,
    },
    /// Our transfer of this call failed; the call goes on.
    TransferFailed {
        /// The REFER's refusal or the target's final status (0 when none was told).
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// An INVITE with `Replaces` (RFC 3891) took this call over: `by` is answered and
    /// this call is hung up.
    Replaced {
        /// The call that replaces this one.
        by: CallId,
    },
    /// Something went wrong without ending the call.
    Warning(CallWarning),
    /// The call is over; no event follows.
    Ended(CallEnd),
}

/// A problem that did not end the call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallWarning {
    /// A server did not work; the request went on to the next one (or failed, when it was
    /// the last).
    TargetFailed {
        /// The request's method.
        method: String,
        /// The server and what happened there.
        attempt: Box<FailedAttempt>,
    },
    /// The peer required SRTP (488 to our RTP/AVP offer): the call is placed again with an
    /// RTP/SAVP offer (as baresip's `mediaenc` and Linphone do).
    SrtpRequired,
    /// A re-INVITE of ours was refused; the call goes on as before.
    ReinviteRefused {
        /// The status.
        status: u16,
    },
    /// No RTP from the peer while neither side holds the call; or (`rtcp_too`) neither RTP
    /// nor RTCP, held or not (the media session's hold timeout, 5 minutes).
    NoMedia {
        /// For how long.
        silent_for: Duration,
        /// Whether no RTCP came either.
        rtcp_too: bool,
    },
    /// Our media now goes to another address: the peer's packets come from there (symmetric
    /// RTP, RFC 4961) and that source passed latching probation (10 packets in a row; and,
    /// if `from` had been heard, `from` silent for a second). Normal once at the start of a
    /// call through a NAT; later in a call, the peer moved or (plain RTP cannot tell) a
    /// stranger's packets took its place.
    MediaMoved {
        /// RTP or RTCP.
        kind: PortKind,
        /// Where it went until now.
        from: SocketAddr,
        /// Where it goes now.
        to: SocketAddr,
    },
    /// A DTMF key could not be sent.
    Dtmf {
        /// The key.
        digit: char,
        /// Why.
        reason: String,
    },
    /// A 401/407 to a request of the call asked for credentials of a realm the account's
    /// password is not for ([`AccountConfig::realm`](super::AccountConfig::realm)): it was not
    /// answered, and the request fails with that 401/407 as its final response.
    ChallengeRefused(RefusedChallenge),
    /// The audio device or the media session reported a problem.
    Media(String),
    /// The peer's SDP could not be used.
    Sdp(String),
}

impl std::fmt::Display for CallWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallWarning::TargetFailed { method, attempt } => write!(f, "{method} {attempt}"),
            CallWarning::SrtpRequired => {
                f.write_str("the peer requires SRTP (488): calling again with RTP/SAVP")
            }
            CallWarning::ReinviteRefused { status } => write!(f, "re-INVITE refused with {status}"),
            CallWarning::NoMedia {
                silent_for,
                rtcp_too: false,
            } => write!(
                f,
                "no audio from the peer for {:.0} s",
                silent_for.as_secs_f64()
            ),
            CallWarning::NoMedia {
                silent_for,
                rtcp_too: true,
            } => write!(
                f,
                "nothing (neither rtp nor rtcp) from the peer for {:.0} s",
                silent_for.as_secs_f64()
            ),
            CallWarning::MediaMoved { kind, from, to } => write!(
                f,
                "{} now goes to {to} (was {from}): the peer's packets come from there",
                match kind {
                    PortKind::Rtp => "rtp",
                    PortKind::Rtcp => "rtcp",
                }
            ),
            CallWarning::Dtmf { digit, reason } => write!(f, "dtmf {digit}: {reason}"),
            CallWarning::ChallengeRefused(r) => r.fmt(f),
            CallWarning::Media(m) => write!(f, "media: {m}"),
            CallWarning::Sdp(m) => write!(f, "sdp: {m}"),
        }
    }
}

/// A challenge that was not answered because of its realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedChallenge {
    /// The method of the challenged request (`REGISTER`, `INVITE`, `BYE`...).
    pub method: String,
    /// 401 or 407.
    pub status: u16,
    /// The realm of the challenge.
    pub realm: String,
    /// The realms the account answers (configured, or pinned by its first challenge).
    pub allowed: Vec<String>,
}

impl std::fmt::Display for RefusedChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allowed: Vec<String> = self.allowed.iter().map(|r| format!("{r:?}")).collect();
        write!(
            f,
            "refused to answer the {} challenge to {} for realm {:?}: the account's password \
             is only for realm{} {} (set `realm` in the account's config if that realm is \
             right)",
            self.status,
            self.method,
            self.realm,
            if allowed.len() == 1 { "" } else { "s" },
            allowed.join(", ")
        )
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// We hung up.
    LocalHangup,
    /// The peer hung up.
    RemoteHangup,
    /// The call did not connect: a final response 300-699 (see [`CallEnd::status`]).
    Rejected,
    /// Nobody answered in time.
    Timeout,
    /// No server could be reached (every target refused or was unreachable, or DNS failed).
    Unreachable,
    /// We answered but the ACK never came (RFC 3261 §13.3.1.4).
    AckTimeout,
    /// The dialog was lost (481/408 to an in-dialog request).
    DialogGone,
    /// No RTP came for the configured time while neither side held the call.
    MediaTimeout,
    /// No session refresh came in time (RFC 4028 §10): we sent BYE.
    SessionExpired,
    /// The phone is shutting down.
    Shutdown,
    /// We declined the incoming call ([`Phone::reject`](super::driver::Phone::reject)); the
    /// status we sent is [`CallEnd::status`].
    Declined,
}

impl EndReason {
    /// The name used in logs and `--json` (`local_hangup`...).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::LocalHangup => "local_hangup",
            EndReason::RemoteHangup => "remote_hangup",
            EndReason::Rejected => "rejected",
            EndReason::Timeout => "timeout",
            EndReason::Unreachable => "unreachable",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::DialogGone => "dialog_gone",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::SessionExpired => "session_expired",
            EndReason::Shutdown => "shutdown",
            EndReason::Declined => "declined",
        }
    }
}

/// The end of a call.
#[derive(Debug, Clone)]
pub struct CallEnd {
    /// Why.
    pub reason: EndReason,
    /// The final SIP status when the call did not connect.
    pub status: Option<u16>,
    /// Its reason phrase.
    pub status_text: Option<String>,
    /// Whether the call was answered.
    pub answered: bool,
    /// From the answer to the end.
    pub duration: Duration,
    /// The codec, if the call was answered.
    pub codec: Option<CodecKind>,
    /// The final quality figures.
    pub quality: Quality,
    /// The servers that were tried and failed, when the call could not be placed.
    pub tried: Vec<FailedAttempt>,
    /// DNS or configuration problems met while locating the next hop.
    pub errors: Vec<String>,
}

/// Quality figures of a call, live and in the summary.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Quality {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets lost from the peer's stream.
    pub packets_lost: i64,
    /// Loss percentage of the peer's stream.
    pub loss_percent: f64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Audio waiting in the jitter buffer for playout (its current delay), milliseconds.
    pub jitter_buffer_ms: f64,
    /// Round-trip time, milliseconds, once RTCP measured it.
    pub rtt_ms: Option<f64>,
    /// Concealed share of played frames, percent.
    pub concealed_percent: f64,
    /// E-model MOS estimate (1-4.5); `None` while no RTP was received (nothing to rate:
    /// `"mos": null` in `--json`, `MOS -` in the human lines).
    pub mos: Option<f64>,
    /// SRTP packets refused.
    pub srtp_rejected: u64,
}

impl Quality {
    /// The figures of a media session's statistics for `codec`.
    pub fn of(stats: &SessionStats, codec: CodecKind) -> Quality {
        let q: StreamStats = stats.to_quality_stats(codec);
        let est = q.quality();
        let expected = stats.packets_received as i64 + stats.packets_lost.max(0);
        Quality {
            packets_sent: stats.packets_sent,
            packets_received: stats.packets_received,
            packets_lost: stats.packets_lost,
            loss_percent: if expected > 0 {
                100.0 * stats.packets_lost.max(0) as f64 / expected as f64
            } else {
                0.0
            },
            jitter_ms: stats.jitter.as_secs_f64() * 1000.0,
            jitter_buffer_ms: (stats.playout_delay.as_secs_f64() * 10_000.0).round() / 10.0,
            rtt_ms: stats.rtt.map(|d| d.as_secs_f64() * 1000.0),
            concealed_percent: 100.0 * stats.concealment_ratio(),
            mos: (stats.packets_received > 0).then(|| (est.mos * 100.0).round() / 100.0),
            srtp_rejected: stats.srtp_rejected,
        }
    }
}

/// The levels of a call's audio ([`CallEvent::Levels`]), in dB relative to full scale: 0 is
/// the loudest a sample can be, [`LEVEL_FLOOR_DBFS`] is silence.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Levels {
    /// The microphone's peak (before encoding; still measured while muted).
    pub input_peak_dbfs: f32,
    /// The microphone's RMS level.
    pub input_rms_dbfs: f32,
    /// The peak of what is played.
    pub output_peak_dbfs: f32,
    /// The RMS level of what is played.
    pub output_rms_dbfs: f32,
}

/// The level of silence in [`Levels`].
pub const LEVEL_FLOOR_DBFS: f32 = tincan_media::session::LEVEL_FLOOR_DBFS;

impl Levels {
    /// The levels a media session reported.
    pub fn of(input: Level, output: Level) -> Levels {
        Levels {
            input_peak_dbfs: input.peak_dbfs,
            input_rms_dbfs: input.rms_dbfs,
            output_peak_dbfs: output.peak_dbfs,
            output_rms_dbfs: output.rms_dbfs,
        }
    }
}

impl Default for Levels {
    /// Silence both ways.
    fn default() -> Self {
        Levels::of(Level::SILENT, Level::SILENT)
    }
}

/// What happens to an account's registration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AccountEvent {
    /// Registered (or refreshed) with a registrar.
    Registered {
        /// The registrar.
        registrar: Target,
        /// The granted expiry.
        expires: Duration,
        /// Every binding the registrar returned.
        bindings: Vec<String>,
        /// From the first REGISTER of this attempt to the 200.
        elapsed: Duration,
    },
    /// A registrar did not work (no answer in its budget, a transport error, an ICMP
    /// unreachable, a 503); in failover mode the next one is tried.
    Failed {
        /// The registrar and what happened there.
        attempt: FailedAttempt,
        /// The time spent on that registrar.
        elapsed: Duration,
    },
    /// The registrar refused our credentials (401/403 after answering its challenge): no
    /// other registrar is tried, since it would say the same.
    AuthenticationFailed {
        /// The registrar.
        registrar: Target,
        /// The final status.
        status: u16,
        /// What went wrong ("authentication failed for realm ...: wrong username or
        /// password").
        reason: String,
    },
    /// A 401/407 to a REGISTER asked for credentials of a realm the account's password is not
    /// for ([`AccountConfig::realm`](super::AccountConfig::realm)): it was not answered and
    /// the registration failed with that 401/407; the account tries again later.
    ChallengeRefused {
        /// The registrar.
        registrar: Target,
        /// The refused challenge.
        challenge: RefusedChallenge,
    },
    /// A registrar refused the REGISTER (a final response other than a challenge, 503 or
    /// 403); the slot tries again later.
    Rejected {
        /// The registrar.
        registrar: Target,
        /// The status.
        status: u16,
        /// What it said.
        reason: String,
    },
    /// The account could not register anywhere; it tries again after `retry_in`.
    Unavailable {
        /// What was tried.
        tried: Vec<FailedAttempt>,
        /// DNS or configuration problems met on the way.
        errors: Vec<String>,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// The binding was removed (unregistered).
    Unregistered {
        /// The registrar.
        registrar: Target,
    },
    /// The flow of a registration died (RFC 5626 §4.4): over TCP/TLS its keep-alive ping got
    /// no pong or the connection closed; over UDP its STUN keep-alive got no response, the
    /// registrar was reported unreachable, or the mapped address changed. The account
    /// registers again at once over a new flow (§4.5): [`AccountEvent::FlowRecovered`], or
    /// failover to the next registrar when that fails.
    FlowFailed {
        /// The registrar.
        registrar: Target,
        /// Why the flow is considered dead.
        reason: FlowFailure,
    },
    /// Registered again with the same registrar over a new flow after
    /// [`AccountEvent::FlowFailed`] (RFC 5626 §4.5).
    FlowRecovered {
        /// The registrar.
        registrar: Target,
        /// The granted expiry.
        expires: Duration,
        /// From noticing the dead flow to the 200 on the new one.
        elapsed: Duration,
    },
    /// The registrar saw our REGISTER come from another address than the Contact names (a
    /// NAT in between: `received`/`rport` of its Via, RFC 3581), so the account re-registers
    /// with a Contact of that public address and removes the old binding in the same
    /// REGISTER (pjsua's contact rewrite). Calls of the account use the public address in
    /// their Contact from then on. Not done over an RFC 5626 outbound flow (the registrar
    /// reaches us over the flow) nor over TCP/TLS (over the connection).
    ContactRewritten {
        /// The registrar.
        registrar: Target,
        /// The address the Contact named.
        from: SocketAddr,
        /// The address the registrar saw, now in the Contact.
        to: SocketAddr,
    },
}

/// A registrar of an account, as [`PhoneCore::registrar_health`](super::PhoneCore::registrar_health)
/// reports it: where it is, whether a registration is bound there, and its health.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrarState {
    /// The registrar's transport and address.
    pub target: Target,
    /// Whether a registration of the account is bound there now.
    pub bound: bool,
    /// What the phone's target health table says of it: up, down (cooling off after a
    /// failure) or on probation.
    pub health: tincan_sip::resolve::TargetStatus,
}

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The caller asked for something that cannot be (a bad URI, an unknown account...).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The phone is shutting down and takes no new calls.
    #[error("the phone is shutting down")]
    ShuttingDown,
}

/// A command the caller got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The URI is not one we can call.
    #[error("cannot call {uri}: {reason}")]
    BadUri {
        /// The URI as given.
        uri: String,
        /// Why.
        reason: String,
    },
    /// No such call (it ended, or never was).
    #[error("no call {0}")]
    UnknownCall(CallId),
    /// No such account.
    #[error("no account {0}")]
    UnknownAccount(String),
    /// The call is not in a state that allows this.
    #[error("{call}: {reason}")]
    WrongState {
        /// The call.
        call: CallId,
        /// Why.
        reason: &'static str,
    },
    /// A message body larger than the phone sends
    /// ([`MAX_MESSAGE_BODY`](super::message::MAX_MESSAGE_BODY)).
    #[error("message of {size} bytes is over the limit of {limit}")]
    MessageTooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An account's configuration is not usable.
    #[error("account {account}: {reason}")]
    BadAccount {
        /// The account's name.
        account: String,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::Quality;
    use tincan_media::codec::CodecKind;
    use tincan_media::session::SessionStats;

    /// Nothing received, nothing to rate: no MOS (it used to say 4.40, a perfect call).
    #[test]
    fn no_rtp_received_is_no_mos() {
        let stats = SessionStats {
            packets_sent: 500,
            ..SessionStats::default()
        };
        let q = Quality::of(&stats, CodecKind::Opus);
        assert_eq!(q.mos, None);
        let v = serde_json::to_value(&q).expect("quality serializes");
        assert!(v["mos"].is_null(), "{v}");
    }

    /// Received RTP gets its estimate.
    #[test]
    fn rtp_received_is_rated() {
        let stats = SessionStats {
            packets_sent: 500,
            packets_received: 500,
            ..SessionStats::default()
        };
        let mos = Quality::of(&stats, CodecKind::Opus).mos.expect("a MOS");
        assert!(mos > 4.0 && mos <= 4.5, "{mos}");
    }
}
