//! Calls in the phone core: an [`InviteSession`] joined with SDP offer/answer and the control
//! of the call's media session.
//!
//! An outgoing call first locates its next hop (the account's outbound proxy or registrars,
//! or the callee's domain), then asks the driver for media ports on the local address that
//! reaches it, then sends the INVITE over the located targets with failover. An incoming
//! call waits for [`PhoneCore::accept`], which binds its ports and answers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tincan_media::codec::CodecKind;
use tincan_media::sdp::{self, LocalMedia, Negotiated, SessionDescription, SrtpPolicy};
use tincan_media::session::{Direction, MediaEvent, SessionStats};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};
use tincan_sip::auth::{AuthError, ChallengeAnswer, DigestClient, answer_challenge};
use tincan_sip::dialog::{
    EndReason as SessionEnd, InviteConfig, InviteSession, Output, RequestOutcome, SessionEvent,
    SessionState,
};
use tincan_sip::endpoint::Source;
use tincan_sip::message::typed::{CSeq, NameAddr};
use tincan_sip::message::{Message, Method, Uri, response_to};
use tincan_sip::resolve::ResolvedTarget;
use tincan_sip::resolve::failover::{AttemptFailure, FailedAttempt};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{Target, Transport};

use super::event::{
    AccountId, CallEnd, CallEvent, CallId, CallWarning, DtmfVia, EndReason, IncomingCall, Levels,
    PhoneError, PhoneEvent, Quality, RefusedCall, UsageError,
};
use super::route::{Owner, RouteId};
use super::{AccountConfig, CallParams, MediaCommand, PhoneConfig, PhoneCore};

/// Where a call is before and around its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Outgoing: the next hop is being located (this many resolutions still owed).
    Locating(usize),
    /// Media ports are being bound (outgoing: before the INVITE; incoming: after accept).
    Binding,
    /// The session runs.
    Session,
    /// Over; waiting for the media's final figures before [`CallEvent::Ended`].
    Ending,
}

/// Why we sent the re-INVITE in flight.
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose {
    Hold,
    Resume,
    Codec,
}

/// The request that carried the peer's offer, and so the answer's way back.
#[derive(Debug, Clone, Copy)]
enum OfferIn {
    /// A re-INVITE (or one without an offer: ours goes in its 200).
    Reinvite,
    /// An UPDATE (RFC 3311).
    Update,
    /// A PRACK (RFC 3262 §5).
    Prack,
}

/// One call.
pub(super) struct Call {
    pub(super) account: Option<AccountId>,
    pub(super) outgoing: bool,
    pub(super) stage: Stage,
    pub(super) session: Option<InviteSession>,
    /// The SIP Call-ID.
    pub(super) call_id: String,
    /// Our From tag (outgoing).
    local_tag: String,
    /// The Request-URI (outgoing) as text, for events.
    uri: String,
    request_uri: Option<Uri<'static>>,
    /// Where the INVITE goes first (a proxy, or the Request-URI), as text.
    next_hop: String,
    /// Route headers preloaded for an outbound proxy.
    routes: Vec<String>,
    /// The INVITE's targets, in the order located.
    targets: Vec<ResolvedTarget>,
    /// Problems met while locating.
    locate_errors: Vec<String>,
    /// The targets of each next hop the call has resolved (its dialog's): an ACK, a BYE or
    /// a re-INVITE never resolves again what the call already knows.
    pub(super) known_hops: HashMap<String, Vec<ResolvedTarget>>,
    /// Our SIP address towards the first target (Contact, SDP).
    local: Option<SocketAddr>,
    /// The public address of the RTP socket a STUN server saw, for the SDP.
    media_public: Option<SocketAddr>,
    transport: Transport,
    params: CallParams,
    pub(super) local_media: Option<LocalMedia>,
    media_running: bool,
    negotiated: Option<Negotiated>,
    /// UAS: what our 2xx answered, held until the ACK confirms the call; the media session
    /// starts then (see `PhoneCore::answer`).
    awaiting_ack: Option<Negotiated>,
    /// The route of the initial INVITE.
    invite_route: Option<RouteId>,
    /// The INVITE's server transaction (incoming).
    pub(super) server_invite: Option<TransactionId>,
    /// Server transactions of the peer's re-INVITEs (and UPDATEs or PRACKs with an offer)
    /// waiting for our answer, by CSeq.
    pub(super) reinvites_in: HashMap<u32, TransactionId>,
    started: Instant,
    answered_at: Option<Instant>,
    held: bool,
    peer_held: bool,
    final_status: Option<(u16, String)>,
    last_stats: SessionStats,
    reinvite_purpose: Option<Purpose>,
    /// The target of the last `Calling` event.
    announced: Option<Target>,
    media_timeout: bool,
    /// We declined the incoming call with this status ([`PhoneCore::reject`]).
    declined: Option<u16>,
    /// What the INVITE's failover tried.
    tried: Vec<FailedAttempt>,
    /// The INVITE was placed again with RTP/SAVP after a 488.
    srtp_retried: bool,
    /// The end, once known (held back until the media's final figures come).
    end: Option<CallEnd>,
    /// Accept as soon as the ports are bound.
    accepting: bool,
    /// The microphone is muted ([`PhoneCore::mute`]): the session gets it when it starts.
    muted: bool,
}

impl Call {
    fn new(outgoing: bool, now: Instant, params: CallParams) -> Call {
        Call {
            account: params.account,
            outgoing,
            stage: Stage::Session,
            session: None,
            call_id: String::new(),
            local_tag: String::new(),
            uri: String::new(),
            request_uri: None,
            next_hop: String::new(),
            routes: Vec::new(),
            targets: Vec::new(),
            locate_errors: Vec::new(),
            known_hops: HashMap::new(),
            local: None,
            media_public: None,
            transport: Transport::Udp,
            params,
            local_media: None,
            media_running: false,
            negotiated: None,
            awaiting_ack: None,
            invite_route: None,
            server_invite: None,
            reinvites_in: HashMap::new(),
            started: now,
            answered_at: None,
            held: false,
            peer_held: false,
            final_status: None,
            last_stats: SessionStats::default(),
            reinvite_purpose: None,
            announced: None,
            media_timeout: false,
            declined: None,
            tried: Vec::new(),
            srtp_retried: false,
            end: None,
            accepting: false,
            muted: false,
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.state() == SessionState::Confirmed)
    }
}

/// The Request-URI for what a user typed: `sip:`/`sips:` URIs as they are; `bob@example.com`
/// as `sip:bob@example.com`; a bare user part (`bob`) in `default_domain` when one is given.
pub fn request_uri(uri: &str, default_domain: Option<&str>) -> Result<Uri<'static>, UsageError> {
    let bad = |reason: String| UsageError::BadUri {
        uri: uri.to_owned(),
        reason,
    };
    let lower = uri.to_ascii_lowercase();
    if let Some((scheme, rest)) = lower.split_once(':')
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-".contains(c))
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && !rest.starts_with(|c: char| c.is_ascii_digit())
        && scheme != "sip"
        && scheme != "sips"
    {
        // Another scheme (tel:, mailto:...), not a host:port.
        return Err(bad(format!(
            "only sip: and sips: URIs can be called, not {scheme}:"
        )));
    }
    let text = if lower.starts_with("sip:") || lower.starts_with("sips:") {
        uri.to_owned()
    } else if uri.contains('@') {
        format!("sip:{uri}")
    } else if let Some(domain) = default_domain.filter(|_| !looks_like_host(uri)) {
        format!("sip:{uri}@{domain}")
    } else {
        format!("sip:{uri}")
    };
    let parsed = Uri::parse(&text)
        .map_err(|e| bad(e.to_string()))?
        .into_owned();
    if parsed.as_sip().is_none() {
        return Err(bad("only sip: and sips: URIs can be called".into()));
    }
    Ok(parsed)
}

/// Whether a text is a host (`example.com`, `127.0.0.1:5070`, `[::1]`) rather than a user.
fn looks_like_host(text: &str) -> bool {
    text.contains('.')
        || text.contains(':')
        || text.starts_with('[')
        || text.parse::<IpAddr>().is_ok()
}

/// An IP address as a URI host: IPv6 in brackets.
pub(crate) fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// `sip:user@local` for a flow over `transport` (with `;transport=` unless UDP).
pub(crate) fn contact_uri(user: &str, local: SocketAddr, transport: Transport) -> String {
    let host = host_literal(local.ip());
    match transport {
        Transport::Udp => format!("sip:{user}@{host}:{}", local.port()),
        t => format!("sip:{user}@{host}:{};transport={}", local.port(), t.param()),
    }
}

fn parse_sdp(body: &Bytes) -> Result<SessionDescription, sdp::SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| sdp::SdpError::Malformed {
        line: 0,
        reason: "not utf-8",
    })?;
    SessionDescription::parse(text)
}

pub(super) fn user_of(uri: &str) -> Option<String> {
    let rest = uri.split_once(':').map(|(_, r)| r)?;
    let (user, _) = rest.split_once('@')?;
    Some(user.split(';').next().unwrap_or(user).to_owned())
}

impl PhoneCore {
    /// Places a call to `uri` (a SIP URI, `user@domain`, or a bare user of the account's
    /// domain). It goes through `params.account` (or the account whose domain matches the
    /// callee's, or the only account): that account's outbound proxy, or its registrars in
    /// order with failover across them, with its credentials; with no account, through the
    /// phone's outbound proxy or straight to the callee's domain (RFC 3263).
    ///
    /// # Errors
    ///
    /// [`PhoneError::Usage`] for a URI that cannot be called or an unknown account;
    /// [`PhoneError::ShuttingDown`].
    pub fn call(
        &mut self,
        now: Instant,
        uri: &str,
        mut params: CallParams,
    ) -> Result<CallId, PhoneError> {
        if self.shutting_down {
            return Err(PhoneError::ShuttingDown);
        }
        if let Some(a) = params.account
            && a.0 >= self.accounts.len()
        {
            return Err(UsageError::UnknownAccount(format!("#{}", a.0)).into());
        }
        let only = (self.accounts.len() == 1).then_some(AccountId(0));
        let default_domain = params
            .account
            .or(only)
            .and_then(|a| self.accounts.get(a.0))
            .map(|a| a.config.domain().to_owned());
        let request_uri = request_uri(uri, default_domain.as_deref())?;
        if params.account.is_none() {
            let host = request_uri
                .as_sip()
                .map(|u| u.host.to_string())
                .unwrap_or_default();
            params.account = self
                .accounts
                .iter()
                .position(|a| a.config.domain().eq_ignore_ascii_case(&host))
                .map(AccountId)
                .or(only);
        }
        let id = self.new_call_id();
        let mut call = Call::new(true, now, params);
        call.uri = request_uri.to_string();
        // Where the INVITE goes: an outbound proxy (as a preloaded loose route), the
        // account's registrars (each a proxy for its domain, tried in order), or the callee.
        let account = call.account.and_then(|a| self.accounts.get(a.0));
        let proxy = account
            .and_then(|a| a.config.outbound_proxy.clone())
            .or_else(|| {
                account
                    .is_none()
                    .then(|| self.config.outbound_proxy.clone())
                    .flatten()
            });
        let hops: Vec<String> = match (&proxy, account) {
            (Some(p), _) => {
                let parsed = Uri::parse(p).map_err(|e| UsageError::BadUri {
                    uri: p.clone(),
                    reason: e.to_string(),
                })?;
                let mut route = parsed.into_owned();
                if let Uri::Sip(u) = &mut route
                    && !u.params.contains("lr")
                {
                    u.params.set("lr", None);
                }
                call.routes = vec![format!("<{route}>")];
                vec![p.clone()]
            }
            (None, Some(a)) if !a.config.registrars.is_empty() => a.config.registrars.clone(),
            // The provider's servers, found by RFC 3263 from the account's domain.
            (None, Some(a)) => vec![format!("sip:{}", a.config.domain())],
            _ => vec![call.uri.clone()],
        };
        call.next_hop = hops[0].clone();
        call.request_uri = Some(request_uri);
        call.stage = Stage::Locating(hops.len());
        let transport = account
            .and_then(|a| a.config.transport)
            .or(self.config.transport);
        call.call_id = format!("{}@tincan", self.token(20));
        call.local_tag = self.token(10);
        self.call_ids.insert(call.call_id.clone(), id);
        self.calls.insert(id, Box::new(call));
        for hop in hops {
            match tincan_sip::resolve::Destination::parse(&hop) {
                Ok(mut dest) => {
                    if let Some(t) = transport {
                        dest.transport = Some(t.param().to_owned());
                    }
                    let res = self.dns.start(now, dest, &mut *self.rng);
                    self.call_resolutions.insert(res, id);
                }
                Err(e) => self.call_located(now, id, Err(e.to_string())),
            }
        }
        self.process(now);
        Ok(id)
    }

    /// One of the resolutions of an outgoing call's next hop finished.
    pub(super) fn call_located(
        &mut self,
        now: Instant,
        id: CallId,
        result: Result<Vec<ResolvedTarget>, String>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Stage::Locating(n) = call.stage else {
            return;
        };
        match result {
            Ok(t) => call.targets.extend(t),
            Err(e) => call.locate_errors.push(e),
        }
        if n > 1 {
            call.stage = Stage::Locating(n - 1);
            return;
        }
        if call.targets.is_empty() {
            let errors = std::mem::take(&mut call.locate_errors);
            self.end_call(now, id, EndReason::Unreachable, None, errors);
            return;
        }
        call.known_hops
            .insert(call.next_hop.clone(), call.targets.clone());
        let first = super::route::transport_target(&call.targets[0]);
        self.ensure_local(&first);
        let local = self.endpoint.local_address_for(first.transport, first.addr);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(local) = local else {
            let reason = format!("no local {} socket for {}", first.transport, first.addr);
            self.end_call(now, id, EndReason::Unreachable, None, vec![reason]);
            return;
        };
        call.local = Some(local);
        call.transport = first.transport;
        call.stage = Stage::Binding;
        self.media.push_back(MediaCommand::Bind {
            call: id,
            ip: local.ip(),
        });
    }

    /// Media ports are bound: an outgoing call sends its INVITE, an accepted incoming one
    /// answers.
    pub(super) fn media_bound(
        &mut self,
        now: Instant,
        id: CallId,
        ports: Result<(u16, Option<u16>), String>,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.stage != Stage::Binding {
            return;
        }
        let (rtp, rtcp) = match ports {
            Ok(p) => p,
            Err(e) => {
                self.warn(id, CallWarning::Media(e));
                if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                    // No media port free (ports or file descriptors exhausted): the phone is
                    // overloaded, not broken (RFC 3261 §21.5.4), so a proxy may try elsewhere.
                    s.reject(503, Some("399 tincan \"no media port available\""));
                    self.flush_call(now, id);
                } else {
                    self.end_call(now, id, EndReason::LocalHangup, None, Vec::new());
                }
                return;
            }
        };
        let local_media = self.local_media(id, rtp, rtcp);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.local_media = Some(local_media);
        call.stage = Stage::Session;
        if call.outgoing {
            self.send_invite(now, id, 1);
        } else if call.accepting {
            self.answer(now, id);
        }
    }

    /// The public address of a call's RTP socket (STUN), while its ports are being bound.
    pub(super) fn media_mapped(&mut self, id: CallId, public: SocketAddr) {
        if let Some(call) = self.calls.get_mut(&id)
            && call.stage == Stage::Binding
        {
            call.media_public = Some(public);
        }
    }

    fn local_media(&mut self, id: CallId, rtp: u16, rtcp: Option<u16>) -> LocalMedia {
        let seed = self.rng.next_u64();
        let mut keys = [[0u8; 30]; 2];
        for k in &mut keys {
            self.rng.fill_bytes(k);
        }
        let call = &self.calls[&id];
        let ip = call.local.map_or(IpAddr::from([127, 0, 0, 1]), |a| a.ip());
        let mut local = LocalMedia::new(ip, rtp);
        local.rtcp_port = rtcp;
        if let Some(public) = call.media_public {
            // Behind a NAT without ICE: the address the peer must send to (RFC 8489 binding
            // from the RTP port). A NAT that kept the port likely keeps RTCP's too; one that
            // did not leaves RTCP's mapping unknown: the peer's default (RTP + 1) then.
            local.address = public.ip();
            local.rtp_port = public.port();
            if public.port() != rtp {
                local.rtcp_port = None;
            }
        }
        let account = call
            .account
            .and_then(|a| self.accounts.get(a.0))
            .map(|a| &a.config);
        // The call's own choice, else its account's, else the phone's.
        local.codecs = call
            .params
            .codecs
            .clone()
            .or_else(|| account.and_then(|a| a.codecs.clone()))
            .unwrap_or_else(|| self.config.codecs.clone());
        local.srtp = srtp_policy(&call.params, account, &self.config);
        local.telephone_event = self.config.telephone_event;
        local.session_id = seed >> 1 & 0x7fff_ffff_ffff;
        local.session_version = 1;
        if local.srtp != SrtpPolicy::Off {
            let [k80, k32] = keys;
            local.crypto = vec![
                CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| {
                    b.copy_from_slice(&k80[..b.len()])
                }),
                CryptoAttribute::generate(2, CryptoSuite::AesCm128HmacSha1_32, |b| {
                    b.copy_from_slice(&k32[..b.len()])
                }),
            ];
        }
        local
    }

    /// Builds the call's session with an offer (unless late offer) and sends the INVITE
    /// over the located targets.
    fn send_invite(&mut self, now: Instant, id: CallId, cseq: u32) {
        let seed = self.rng.next_u64();
        let Some(contact_addr) = self.calls.get(&id).and_then(|c| {
            c.local
                .map(|l| self.contact_address(c.account, c.transport, l))
        }) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(local), Some(request_uri), Some(media)) = (
            call.local,
            call.request_uri.clone(),
            call.local_media.as_ref(),
        ) else {
            return;
        };
        let account = call.account.and_then(|a| self.accounts.get(a.0));
        let (user, from) = match account {
            Some(a) => (
                user_of(&a.config.aor).unwrap_or_else(|| a.config.username.clone()),
                name_addr(a.config.display_name.as_deref(), &a.config.aor),
            ),
            None => {
                let domain = self
                    .config
                    .domain
                    .clone()
                    .unwrap_or_else(|| host_literal(local.ip()));
                (
                    self.config.user.clone(),
                    name_addr(
                        self.config.display_name.as_deref(),
                        &format!("sip:{}@{domain}", self.config.user),
                    ),
                )
            }
        };
        let offer = (!call.params.late_offer).then(|| Bytes::from(sdp::offer(media).to_string()));
        let config = InviteConfig {
            local_uri: from,
            local_tag: call.local_tag.clone(),
            contact: format!("<{}>", contact_uri(&user, contact_addr, call.transport)),
            call_id: call.call_id.clone(),
            cseq,
            seed,
            extra_headers: self.transfers.invite_headers(id),
            session_timer: self.config.session_timer,
            prack: self.config.prack,
        };
        let to = NameAddr::new(request_uri.clone());
        let mut session = InviteSession::outgoing(config, request_uri, to, &call.routes, offer);
        let Some(Output::Request { request, .. }) = session.poll_output() else {
            return;
        };
        call.session = Some(session);
        let hop = call.next_hop.clone();
        let targets = call.targets.clone();
        let route = self.start_route(now, Owner::Invite(id), request, hop, Some(targets));
        if let Some(call) = self.calls.get_mut(&id) {
            call.invite_route = Some(route);
        }
    }

    /// The INVITE went to a target: a `Calling` event, once per target.
    pub(super) fn invite_sent(&mut self, id: CallId, target: &Target) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.announced.as_ref() == Some(target) {
            return;
        }
        call.announced = Some(target.clone());
        let event = CallEvent::Calling {
            call_id: call.call_id.clone(),
            uri: call.uri.clone(),
            target: target.clone(),
        };
        self.events.push_back(PhoneEvent::Call { call: id, event });
    }

    /// A new INVITE from outside any dialog.
    pub(super) fn incoming_call(
        &mut self,
        now: Instant,
        tx: TransactionId,
        request: &Message,
        source: &Source,
    ) {
        if self.shutting_down {
            let mut r = response_to(request, 503, None);
            r.push_header(tincan_sip::message::HeaderName::RetryAfter, "5");
            let _ = self.endpoint.send_response(now, tx, r);
            return;
        }
        let local = if source.local.ip().is_unspecified() {
            self.endpoint
                .local_address_for(source.transport, source.addr)
                .unwrap_or(source.local)
        } else {
            source.local
        };
        let Some(call_id) = request
            .call_id()
            .and_then(Result::ok)
            .map(|c| c.as_str().to_owned())
        else {
            return;
        };
        let Some(to) = request.to().and_then(Result::ok).map(|t| t.0.into_owned()) else {
            return;
        };
        let to_text = request
            .header(tincan_sip::message::HeaderName::To)
            .unwrap_or("")
            .to_owned();
        let user = to
            .uri()
            .ok()
            .and_then(|u| {
                u.as_sip()
                    .and_then(|s| s.user.as_deref().map(str::to_owned))
            })
            .unwrap_or_else(|| self.config.user.clone());
        let account = self
            .accounts
            .iter()
            .position(|a| user_of(&a.config.aor).is_some_and(|u| u == user))
            .map(AccountId);
        let replaced = match self.replaced_call(request) {
            Ok(r) => r,
            Err(status) => {
                let _ = self
                    .endpoint
                    .send_response(now, tx, response_to(request, status, None));
                return;
            }
        };
        if replaced.is_none()
            && let Some(status) = self.admission(account)
        {
            self.refuse_incoming(now, tx, request, call_id, account, status);
            return;
        }
        let local_tag = self.token(10);
        let config = InviteConfig {
            local_uri: to,
            local_tag,
            contact: format!(
                "<{}>",
                contact_uri(
                    &user,
                    self.contact_address(account, source.transport, local),
                    source.transport
                )
            ),
            call_id: call_id.clone(),
            cseq: 1,
            seed: self.rng.next_u64(),
            extra_headers: Vec::new(),
            session_timer: self.config.session_timer,
            prack: self.config.prack,
        };
        let session = match InviteSession::incoming(config, request) {
            Ok(s) => s,
            Err(response) => {
                let _ = self.endpoint.send_response(now, tx, response);
                return;
            }
        };
        let id = self.new_call_id();
        let mut call = Call::new(
            false,
            now,
            CallParams {
                account,
                ..CallParams::default()
            },
        );
        call.session = Some(session);
        call.call_id = call_id.clone();
        call.local = Some(local);
        call.transport = source.transport;
        call.uri = request.uri_text().unwrap_or("").to_owned();
        call.server_invite = Some(tx);
        // Requests of this dialog go back the way the INVITE came (its Contact, or the
        // Record-Route): a literal address needs no DNS; a name is resolved once.
        self.calls.insert(id, Box::new(call));
        self.call_ids.insert(call_id.clone(), id);
        if let Some(old) = replaced {
            // RFC 3891 §3: the new call takes the old one's place without ringing.
            self.take_over(now, id, old);
            return;
        }
        let from = request
            .header(tincan_sip::message::HeaderName::From)
            .unwrap_or("")
            .to_owned();
        self.events.push_back(PhoneEvent::Incoming(IncomingCall {
            call: id,
            call_id,
            from,
            to: to_text,
            account,
        }));
    }

    /// Admission control of a new incoming call (RFC 6357 §4, the receiver's own bound):
    /// `None` to take it, or the status to refuse it with. The phone's bound first: a full
    /// phone is overloaded whoever the call is for, 503 with Retry-After (RFC 3261
    /// §21.5.4), which tells a proxy to try the user's other contacts and a caller when to
    /// come back. Then the account's: its user is busy though the phone is not, 486 Busy
    /// Here (§21.4.24), which a proxy hands on as it is (to voicemail, say) instead of
    /// taking it as a server failure.
    /// A draining phone ([`drain`](Self::drain)) takes no call at all: 503 as well.
    fn admission(&self, account: Option<AccountId>) -> Option<u16> {
        if self.unavailable().is_some() {
            return Some(503);
        }
        let account = account?;
        let bound = self.accounts.get(account.0)?.config.call_limit?;
        let busy = self
            .calls
            .values()
            .filter(|c| c.account == Some(account))
            .count();
        (busy >= bound).then_some(486)
    }

    /// Refuses a new INVITE on its server transaction alone: no call, no dialog, no media.
    fn refuse_incoming(
        &mut self,
        now: Instant,
        tx: TransactionId,
        request: &Message,
        call_id: String,
        account: Option<AccountId>,
        status: u16,
    ) {
        let mut r = response_to(request, status, None);
        if status == 503 {
            let secs = self
                .unavailable()
                .unwrap_or(self.config.endpoint.overload_retry_after);
            r.push_header(
                tincan_sip::message::HeaderName::RetryAfter,
                &secs.to_string(),
            );
        }
        let _ = self.endpoint.send_response(now, tx, r);
        let from = request
            .header(tincan_sip::message::HeaderName::From)
            .unwrap_or("")
            .to_owned();
        self.events.push_back(PhoneEvent::Refused(RefusedCall {
            call_id,
            from,
            account,
            status,
        }));
    }

    /// Sends 180 Ringing for an incoming call.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownCall`] or [`UsageError::WrongState`].
    pub fn ring(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        let session = self.incoming_session(id)?;
        session.ring(now, None);
        self.flush_call(now, id);
        Ok(())
    }

    /// Answers an incoming call: its media ports are bound, then it is answered with our SDP.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownCall`] or [`UsageError::WrongState`].
    pub fn accept(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        self.incoming_session(id)?;
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        if call.accepting {
            return Ok(());
        }
        call.accepting = true;
        call.stage = Stage::Binding;
        let ip = call.local.map_or(IpAddr::from([127, 0, 0, 1]), |a| a.ip());
        self.media.push_back(MediaCommand::Bind { call: id, ip });
        self.process(now);
        Ok(())
    }

    /// Refuses an incoming call with `status` (486 Busy Here, 603 Decline...).
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownCall`] or [`UsageError::WrongState`].
    pub fn reject(&mut self, now: Instant, id: CallId, status: u16) -> Result<(), PhoneError> {
        let session = self.incoming_session(id)?;
        session.reject(status, None);
        if let Some(call) = self.calls.get_mut(&id) {
            call.declined = Some(status);
        }
        self.flush_call(now, id);
        self.process(now);
        Ok(())
    }

    fn incoming_session(&mut self, id: CallId) -> Result<&mut InviteSession, PhoneError> {
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        match call.session.as_mut() {
            Some(s) if !call.outgoing && s.state() == SessionState::Incoming => Ok(s),
            _ => Err(UsageError::WrongState {
                call: id,
                reason: "not an unanswered incoming call",
            }
            .into()),
        }
    }

    /// Hangs up: CANCEL before the answer (or, when no server has answered the INVITE yet,
    /// stops it at once: RFC 3261 §9.1 allows no CANCEL before a provisional), BYE once up,
    /// 603 for an unanswered incoming call.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownCall`].
    pub fn hangup(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        match (&mut call.session, call.stage) {
            (_, Stage::Ending) => {}
            (Some(s), _) => {
                s.hangup();
                self.flush_call(now, id);
            }
            (None, _) => self.end_call(now, id, EndReason::LocalHangup, None, Vec::new()),
        }
        self.process(now);
        Ok(())
    }

    /// Puts the call on hold (re-INVITE with a sendonly offer).
    ///
    /// # Errors
    ///
    /// [`UsageError`] when the call is not up or another re-INVITE is in progress.
    pub fn hold(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        self.reinvite_direction(now, id, true)
    }

    /// Whether we put the call on hold ([`hold`](Self::hold)) and have not resumed it.
    pub fn is_held(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.held)
    }

    /// Takes the call off hold.
    ///
    /// # Errors
    ///
    /// [`UsageError`] when the call is not up or another re-INVITE is in progress.
    pub fn resume(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        self.reinvite_direction(now, id, false)
    }

    fn reinvite_direction(
        &mut self,
        now: Instant,
        id: CallId,
        hold: bool,
    ) -> Result<(), PhoneError> {
        let purpose = if hold { Purpose::Hold } else { Purpose::Resume };
        self.reinvite_with(now, id, purpose, |media| {
            media.direction = if hold {
                Direction::SendOnly
            } else {
                Direction::SendRecv
            };
        })
    }

    /// Offers `codec` first in a re-INVITE; [`CallEvent::CodecChanged`] follows when the peer
    /// takes it.
    ///
    /// # Errors
    ///
    /// [`UsageError`] when the call is not up or another re-INVITE is in progress.
    pub fn change_codec(
        &mut self,
        now: Instant,
        id: CallId,
        codec: CodecKind,
    ) -> Result<(), PhoneError> {
        self.reinvite_with(now, id, Purpose::Codec, |media| {
            media.codecs.retain(|c| *c != codec);
            media.codecs.insert(0, codec);
        })
    }

    /// A re-INVITE offering our media as `change` leaves it (a new session version); when
    /// the session refuses (the call is not up, another re-INVITE is in progress), our media
    /// stays as it was.
    fn reinvite_with(
        &mut self,
        now: Instant,
        id: CallId,
        purpose: Purpose,
        change: impl FnOnce(&mut LocalMedia),
    ) -> Result<(), PhoneError> {
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        let (Some(media), Some(session)) = (call.local_media.as_mut(), call.session.as_mut())
        else {
            return Err(UsageError::WrongState {
                call: id,
                reason: "the call is not up",
            }
            .into());
        };
        let before = media.clone();
        change(media);
        media.session_version += 1;
        let offer = Bytes::from(sdp::offer(media).to_string());
        if let Err(reason) = session.reinvite(Some(offer)) {
            *media = before;
            return Err(UsageError::WrongState { call: id, reason }.into());
        }
        call.reinvite_purpose = Some(purpose);
        self.flush_call(now, id);
        self.process(now);
        Ok(())
    }

    /// Sends DTMF keys: RFC 4733 in the media when negotiated, SIP INFO otherwise.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownCall`].
    pub fn send_dtmf(&mut self, now: Instant, id: CallId, digits: &str) -> Result<(), PhoneError> {
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        let rfc4733 = call.media_running
            && call
                .negotiated
                .as_ref()
                .is_some_and(|n| n.telephone_event_payload_type.is_some());
        let duration = Duration::from_millis(120);
        let mut warnings = Vec::new();
        for digit in digits.chars() {
            if rfc4733 {
                self.media.push_back(MediaCommand::SendDtmf {
                    call: id,
                    digit,
                    duration,
                });
            } else if let Some(s) = call.session.as_mut()
                && let Err(reason) = s.send_dtmf_info(digit, duration)
            {
                warnings.push(CallWarning::Dtmf {
                    digit,
                    reason: reason.to_owned(),
                });
            }
        }
        for w in warnings {
            self.warn(id, w);
        }
        self.flush_call(now, id);
        self.process(now);
        Ok(())
    }

    /// Mutes (or unmutes) the call's microphone: its media session sends silence in place of
    /// the captured audio and RTP keeps flowing (the peer's RTP timeout and NAT bindings stay
    /// alive). It may be set before the call is answered, and lasts across hold, resume and a
    /// codec change until unmuted. [`CallEvent::Muted`] follows a change.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownCall`] for a call that ended or never was.
    pub fn mute(&mut self, now: Instant, id: CallId, muted: bool) -> Result<(), PhoneError> {
        let _ = now;
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        if call.stage == Stage::Ending {
            return Err(UsageError::UnknownCall(id).into());
        }
        if call.muted == muted {
            return Ok(());
        }
        call.muted = muted;
        if call.media_running {
            self.media
                .push_back(MediaCommand::SetMute { call: id, muted });
        }
        self.call_event(id, CallEvent::Muted { muted });
        Ok(())
    }

    /// Switches the capture processing of every call (echo cancellation, noise
    /// suppression, gain control): the running ones from their next 20 ms frame, the later
    /// ones from their start ([`PhoneConfig::processing`](super::PhoneConfig::processing)).
    pub fn set_processing(
        &mut self,
        now: Instant,
        processing: tincan_media::dsp::ProcessingConfig,
    ) {
        let _ = now;
        self.config.processing = processing;
        let mut running: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.media_running)
            .map(|(id, _)| *id)
            .collect();
        running.sort_unstable();
        for call in running {
            self.media
                .push_back(MediaCommand::SetProcessing { call, processing });
        }
    }

    /// The capture processing calls get.
    pub fn processing(&self) -> tincan_media::dsp::ProcessingConfig {
        self.config.processing
    }

    fn warn(&mut self, call: CallId, warning: CallWarning) {
        self.events.push_back(PhoneEvent::Call {
            call,
            event: CallEvent::Warning(warning),
        });
    }

    pub(super) fn call_event(&mut self, call: CallId, event: CallEvent) {
        self.transfers.watch(call, &event);
        self.events.push_back(PhoneEvent::Call { call, event });
    }

    /// A request of the peer inside a call.
    pub(super) fn call_request(
        &mut self,
        now: Instant,
        id: CallId,
        tx: TransactionId,
        request: &Message,
    ) {
        let Some(session) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) else {
            let _ = self
                .endpoint
                .send_response(now, tx, response_to(request, 481, None));
            return;
        };
        match session.on_request(now, request) {
            RequestOutcome::Respond(r) => {
                let _ = self.endpoint.send_response(now, tx, r);
            }
            RequestOutcome::Deferred => {
                let seq = request.cseq().and_then(Result::ok).map_or(0, |c| c.seq);
                if let Some(c) = self.calls.get_mut(&id) {
                    c.reinvites_in.insert(seq, tx);
                }
            }
            RequestOutcome::Transfer => self.transfer_request(now, id, tx, request),
            _ => {}
        }
        self.flush_call(now, id);
    }

    /// A response to one of the call's requests.
    pub(super) fn call_response(
        &mut self,
        now: Instant,
        id: CallId,
        route: RouteId,
        response: &Message,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let status = response.status().unwrap_or(0);
        let initial = call.invite_route == Some(route);
        if initial && status >= 300 {
            // Record the final status; remember which target answered.
            call.final_status = Some((status, response.reason().unwrap_or_default().into_owned()));
        }
        if initial
            && status == 488
            && srtp_policy(
                &call.params,
                call.account
                    .and_then(|a| self.accounts.get(a.0))
                    .map(|a| &a.config),
                &self.config,
            ) == SrtpPolicy::Optional
            && !call.srtp_retried
            && call
                .local_media
                .as_ref()
                .is_some_and(|m| !m.crypto.is_empty())
        {
            // The peer requires SRTP: place the call again with an RTP/SAVP offer.
            call.srtp_retried = true;
            call.params.srtp = Some(SrtpPolicy::Required);
            if let Some(m) = call.local_media.as_mut() {
                m.srtp = SrtpPolicy::Required;
                m.session_version += 1;
            }
            call.final_status = None;
            let next_seq = call
                .session
                .as_ref()
                .map_or(2, |s| s.invite_cseq().seq.wrapping_add(1));
            call.session = None;
            self.warn(id, CallWarning::SrtpRequired);
            self.send_invite(now, id, next_seq);
            return;
        }
        if initial
            && (100..300).contains(&status)
            && let Some(r) = self.routes.get(&route)
            && let Some(t) = r.attempts.iter().rev().find(|(tx, _)| tx.is_some())
        {
            // The dialog goes on with the target that answered: put it first.
            let answered = t.1.clone();
            if let Some(call) = self.calls.get_mut(&id)
                && let Some(targets) = call.known_hops.get_mut(&call.next_hop)
                && let Some(i) = targets
                    .iter()
                    .position(|t| t.addr == answered.addr && t.transport == answered.transport)
            {
                let t = targets.remove(i);
                targets.insert(0, t);
            }
        }
        if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
            s.on_response(now, response);
        }
        self.flush_call(now, id);
        if response
            .cseq()
            .and_then(Result::ok)
            .is_some_and(|c| matches!(c.method, Method::Refer | Method::Notify))
        {
            self.transfer_response(now, id, response);
        }
    }

    /// Answers the challenge of the call's INVITE with its account's credentials.
    pub(super) fn retry_invite(
        &mut self,
        _now: Instant,
        id: CallId,
        request: &Message,
        response: &Message,
    ) -> Option<Message> {
        let headers = self.challenge_headers(id, request, response)?;
        let session = self.calls.get_mut(&id)?.session.as_mut()?;
        if !session.resend_invite_with(&headers) {
            return None;
        }
        match session.poll_output() {
            Some(Output::Request { request, .. }) => Some(request),
            _ => None,
        }
    }

    /// The call's INVITE again after a 422 (RFC 4028 §7.4), asking for the response's Min-SE;
    /// `None` when the 422 gives nothing to retry with (the call then fails with it).
    pub(super) fn retry_invite_min_se(
        &mut self,
        id: CallId,
        response: &Message,
    ) -> Option<Message> {
        let session = self.calls.get_mut(&id)?.session.as_mut()?;
        if !session.resend_invite_for_min_se(response) {
            return None;
        }
        match session.poll_output() {
            Some(Output::Request { request, .. }) => Some(request),
            _ => None,
        }
    }

    /// Answers the challenge of an in-dialog request (BYE, INFO) of the call.
    pub(super) fn retry_in_dialog(
        &mut self,
        id: CallId,
        request: &Message,
        response: &Message,
    ) -> Option<Message> {
        let headers = self.challenge_headers(id, request, response)?;
        let Some(call) = self.calls.get_mut(&id) else {
            // The call ended (its BYE was the last request): the dialog is gone, so the retry
            // is the challenged request with the credentials and the next CSeq (§8.1.3.5).
            return retry_after_dialog(request, &headers);
        };
        call.session.as_mut()?.retry_in_dialog(request, &headers)
    }

    fn challenge_headers(
        &mut self,
        id: CallId,
        request: &Message,
        response: &Message,
    ) -> Option<Vec<(String, String)>> {
        let account = match self.calls.get(&id) {
            Some(call) => call.account?,
            None => *self.ended_call_accounts.get(&id)?,
        };
        let realms = self.answerable_realms(account);
        let digest: &mut DigestClient = &mut self.accounts.get_mut(account.0)?.digest;
        digest.set_realms(realms);
        match answer_challenge(digest, request, response, &mut *self.rng) {
            Ok(answer) => {
                self.pin_realms(account, &answer.apply(request));
                Some(answer.headers)
            }
            Err(AuthError::RealmRefused { realm }) => {
                let method = request.method().map(|m| m.to_string()).unwrap_or_default();
                let status = response.status().unwrap_or(0);
                let refused = self.refused_challenge(account, &method, status, realm);
                self.events.push_back(PhoneEvent::Call {
                    call: id,
                    event: CallEvent::Warning(CallWarning::ChallengeRefused(refused)),
                });
                None
            }
            Err(_) => None,
        }
    }

    /// A request of the call could not be delivered anywhere.
    pub(super) fn call_request_failed(
        &mut self,
        now: Instant,
        id: CallId,
        owner: Owner,
        method: &Method,
        tried: Vec<FailedAttempt>,
        errors: Vec<String>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match owner {
            Owner::Invite(_) => {
                let unreachable = !tried.is_empty()
                    && tried.iter().all(|a| {
                        matches!(
                            a.why,
                            AttemptFailure::TransportError | AttemptFailure::Unreachable
                        )
                    })
                    || tried.is_empty() && !errors.is_empty();
                call.tried.extend(tried);
                call.locate_errors.extend(errors);
                if unreachable {
                    call.final_status = None;
                    let errors = std::mem::take(&mut call.locate_errors);
                    self.end_call(now, id, EndReason::Unreachable, None, errors);
                    return;
                }
                if let Some(s) = call.session.as_mut() {
                    s.on_invite_failure();
                }
            }
            Owner::InDialog(_) => {
                // Each failed target was reported as it failed (attempt_abandoned).
                if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                    s.on_request_failure(method);
                }
                self.transfer_request_failed(now, id, method);
            }
            _ => {}
        }
        self.flush_call(now, id);
    }

    /// Drains a call's session: requests to routes, responses to the server transactions,
    /// events to the application.
    pub(super) fn flush_call(&mut self, now: Instant, id: CallId) {
        loop {
            let Some(session) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) else {
                return;
            };
            if let Some(out) = session.poll_output() {
                self.call_output(now, id, out);
                continue;
            }
            if let Some(ev) = session.poll_event() {
                self.session_event(now, id, ev);
                continue;
            }
            return;
        }
    }

    fn call_output(&mut self, now: Instant, id: CallId, out: Output) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match out {
            Output::Request { request, next_hop } => {
                let hop = next_hop.to_string();
                let known = call.known_hops.get(&hop).cloned();
                let owner = if request.method() == Some(&Method::Invite)
                    && call.outgoing
                    && !call.is_up()
                    && call.invite_route.is_none()
                {
                    Owner::Invite(id)
                } else {
                    Owner::InDialog(id)
                };
                self.start_route(now, owner, request, hop, known);
            }
            Output::Ack { ack, next_hop } => {
                let hop = next_hop.to_string();
                let known = call.known_hops.get(&hop).cloned();
                self.start_route(now, Owner::Ack(id), ack, hop, known);
            }
            Output::Cancel => self.cancel_invite(now, id),
            Output::Respond(response) => {
                if let Some(tx) = call.server_invite {
                    let _ = self.endpoint.send_response(now, tx, response);
                }
            }
            _ => {}
        }
    }

    /// CANCEL of the initial INVITE: sent when a server has answered it provisionally;
    /// otherwise nobody has it yet, so it is stopped at once and the call ends (a late 2xx
    /// is ACKed and ended with a BYE).
    fn cancel_invite(&mut self, now: Instant, id: CallId) {
        let Some(route) = self.calls.get(&id).and_then(|c| c.invite_route) else {
            if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                s.on_invite_failure();
            }
            return;
        };
        let Some(r) = self.routes.get_mut(&route) else {
            if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                s.on_invite_failure();
            }
            return;
        };
        let provisional = r
            .provisional
            .and_then(|a| r.attempts.get(a))
            .and_then(|(tx, _)| *tx);
        if let Some(tx) = provisional {
            let _ = self.endpoint.cancel(now, tx);
            return;
        }
        let live: Vec<TransactionId> = r.attempts.iter_mut().filter_map(|a| a.0.take()).collect();
        r.phase = super::route::Phase::Done;
        for tx in live {
            self.transactions.remove(&tx);
            self.endpoint.abandon(tx);
        }
        if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
            s.on_invite_failure();
        }
    }

    fn session_event(&mut self, now: Instant, id: CallId, ev: SessionEvent) {
        match ev {
            SessionEvent::Progress {
                status,
                reason,
                body: Some(b),
                offer: true,
                ..
            } => {
                self.call_event(id, CallEvent::Progress { status, reason });
                self.answer_in_prack(now, id, &b);
            }
            SessionEvent::Progress {
                status,
                reason,
                body,
                early_media,
                ..
            } => {
                self.call_event(id, CallEvent::Progress { status, reason });
                let call = &self.calls[&id];
                // RFC 5009: `P-Early-Media: inactive` (or `recvonly`) keeps the local
                // ring-back instead.
                if let Some(b) = body
                    && early_media != Some(false)
                    && !call.media_running
                    && call
                        .session
                        .as_ref()
                        .is_some_and(|s| !s.invite().body().is_empty())
                    && let Some(local) = &call.local_media
                    && let Ok(n) = parse_sdp(&b).and_then(|a| sdp::apply_answer(local, &a))
                {
                    // Early media (183 with SDP).
                    self.start_media(now, id, n);
                }
            }
            SessionEvent::Answered { body, offer } => match (body, offer) {
                (Some(b), true) => {
                    let local = self.calls[&id].local_media.clone();
                    let answered = local
                        .as_ref()
                        .ok_or(sdp::SdpError::NoAudioStream)
                        .and_then(|l| parse_sdp(&b).and_then(|o| sdp::answer(&o, l)));
                    let session = self.calls.get_mut(&id).and_then(|c| c.session.as_mut());
                    match (answered, session) {
                        (Ok((answer, n)), Some(s)) => {
                            s.ack_with_answer(Some(Bytes::from(answer.to_string())));
                            self.start_media(now, id, n);
                        }
                        (Err(e), Some(s)) => {
                            s.ack_with_answer(None);
                            s.hangup();
                            self.warn(id, CallWarning::Sdp(format!("the 2xx offer: {e}")));
                        }
                        _ => {}
                    }
                }
                // The 2xx repeats the SDP of a reliable 18x whose offer our PRACK answered
                // (RFC 6337 §3.1): the media already follows it.
                (Some(_), false)
                    if self.calls[&id].media_running
                        && self.calls[&id]
                            .session
                            .as_ref()
                            .is_some_and(|s| s.invite().body().is_empty()) => {}
                (Some(b), false) => self.apply_answer(now, id, &b),
                (None, _) => {
                    if !self.calls[&id].media_running {
                        self.warn(id, CallWarning::Sdp("the answer has no SDP".into()));
                        if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                            s.hangup();
                        }
                    }
                }
            },
            SessionEvent::Confirmed { body: Some(b) } => self.apply_answer(now, id, &b),
            // The ACK of the 2xx that answered the INVITE's offer: the call is up.
            SessionEvent::Confirmed { body: None } => {
                if let Some(n) = self.calls.get_mut(&id).and_then(|c| c.awaiting_ack.take()) {
                    self.start_media(now, id, n);
                }
            }
            SessionEvent::Reinvite { body } => self.on_offer(now, id, body, OfferIn::Reinvite),
            SessionEvent::Update { body } => self.on_offer(now, id, Some(body), OfferIn::Update),
            SessionEvent::PrackOffer { body } => self.on_offer(now, id, Some(body), OfferIn::Prack),
            // The answer to an offer of ours in a PRACK (the phone makes none in an 18x).
            SessionEvent::PrackAnswer { body: Some(b) }
                if self.calls[&id]
                    .session
                    .as_ref()
                    .is_some_and(|s| s.is_outgoing()) =>
            {
                self.apply_answer(now, id, &b)
            }
            SessionEvent::UpdateAccepted { body: Some(b) } => self.apply_answer(now, id, &b),
            SessionEvent::ReinviteAccepted { body } => {
                if let Some(b) = body {
                    self.apply_answer(now, id, &b);
                }
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                match call.reinvite_purpose.take() {
                    Some(Purpose::Hold) => {
                        call.held = true;
                        self.call_event(id, CallEvent::Hold { by_peer: false });
                    }
                    Some(Purpose::Resume) => {
                        call.held = false;
                        self.call_event(id, CallEvent::Resumed { by_peer: false });
                    }
                    _ => {}
                }
            }
            // 491: the session retries after the glare back-off.
            SessionEvent::ReinviteRejected { status } if status != 491 => {
                if let Some(call) = self.calls.get_mut(&id)
                    && call.reinvite_purpose.take().is_some()
                    && let Some(m) = call.local_media.as_mut()
                {
                    m.direction = if call.held {
                        Direction::SendOnly
                    } else {
                        Direction::SendRecv
                    };
                }
                self.warn(id, CallWarning::ReinviteRefused { status });
            }
            SessionEvent::ReinviteConfirmed { body: Some(b) } => self.apply_answer(now, id, &b),
            SessionEvent::Dtmf { digit, .. } => self.call_event(
                id,
                CallEvent::Dtmf {
                    digit,
                    via: DtmfVia::Info,
                },
            ),
            SessionEvent::Ended(reason) => self.session_ended(now, id, reason),
            _ => {}
        }
    }

    /// UAS: answers the initial INVITE with our SDP (an answer to its offer, or our offer).
    ///
    /// The media session starts when the ACK arrives, not with the 2xx. RFC 3264 §6.1 lets
    /// an answerer send media as soon as it has sent its answer ("MAY"), and obliges it only
    /// to be ready to receive; RFC 3261 §13.3.1.4 has the UAS retransmit its 2xx until the
    /// ACK comes and end the call at Timer H (64*T1 = 32 s) when it never does. Starting at
    /// once would send 32 s of RTP to whatever `c=` address an INVITE named (a forged one
    /// makes us a traffic reflector) and hold a running session (codec, jitter buffer, a
    /// task) for every unacknowledged INVITE. Until the ACK the call holds only its bound
    /// ports: media the peer sends meanwhile waits in the socket's receive buffer and is
    /// read when the session starts (an ACK lost once comes again with our next 2xx
    /// retransmission, T1 = 500 ms later).
    fn answer(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(session), Some(local)) = (call.session.as_mut(), call.local_media.as_ref())
        else {
            return;
        };
        if session.state() != SessionState::Incoming {
            return;
        }
        let offer = session.invite().body().clone();
        if offer.is_empty() {
            // Late offer: we offer in the 200, the answer comes in the ACK.
            session.accept(Some(Bytes::from(sdp::offer(local).to_string())));
            self.flush_call(now, id);
            return;
        }
        match parse_sdp(&offer).and_then(|o| sdp::answer(&o, local)) {
            Ok((answer, negotiated)) => {
                session.accept(Some(Bytes::from(answer.to_string())));
                // Answered now (the application's answer is sent); the media waits.
                call.answered_at = Some(now);
                let event = CallEvent::Answered {
                    setup: now.saturating_duration_since(call.started),
                    codec: negotiated.codec,
                    srtp: negotiated.srtp.is_some(),
                    remote_rtp: negotiated.remote_rtp,
                };
                call.awaiting_ack = Some(negotiated);
                self.call_event(id, event);
            }
            Err(e) => {
                let warning = e
                    .warning()
                    .map(|(code, text)| format!("{code} tincan \"{text}\""));
                call.final_status = Some((e.status_code(), e.to_string()));
                session.reject(e.status_code(), warning.as_deref());
            }
        }
        self.flush_call(now, id);
    }

    fn apply_answer(&mut self, now: Instant, id: CallId, body: &Bytes) {
        let Some(local) = self.calls.get(&id).and_then(|c| c.local_media.clone()) else {
            return;
        };
        match parse_sdp(body).and_then(|a| sdp::apply_answer(&local, &a)) {
            Ok(n) => self.start_media(now, id, n),
            Err(e) => {
                self.warn(id, CallWarning::Sdp(format!("the answer is unusable: {e}")));
                if let Some(s) = self.calls.get_mut(&id).and_then(|c| c.session.as_mut()) {
                    s.hangup();
                }
            }
        }
    }

    /// UAC: the offer of a reliable 18x (the INVITE had none, RFC 3262 §5): answered in its
    /// PRACK, and the media starts on it (as early media does). An offer we cannot take
    /// gets a PRACK without SDP and the call is hung up (CANCEL).
    fn answer_in_prack(&mut self, now: Instant, id: CallId, offer: &Bytes) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(local), Some(session)) = (call.local_media.as_ref(), call.session.as_mut())
        else {
            return;
        };
        match parse_sdp(offer).and_then(|o| sdp::answer(&o, local)) {
            Ok((answer, negotiated)) => {
                session.prack_with_answer(Some(Bytes::from(answer.to_string())));
                self.start_media(now, id, negotiated);
            }
            Err(e) => {
                session.prack_with_answer(None);
                session.hangup();
                self.warn(id, CallWarning::Sdp(format!("the 18x offer: {e}")));
            }
        }
    }

    /// The peer's offer in a re-INVITE, an UPDATE or a PRACK, or its re-INVITE without one
    /// (we offer in the 200): answered with our media, which then follows.
    fn on_offer(&mut self, now: Instant, id: CallId, body: Option<Bytes>, kind: OfferIn) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(seq) = call.reinvites_in.keys().max().copied() else {
            return;
        };
        let Some(tx) = call.reinvites_in.remove(&seq) else {
            return;
        };
        let (Some(local), Some(session)) = (call.local_media.as_mut(), call.session.as_mut())
        else {
            return;
        };
        local.session_version += 1;
        let mut negotiated = None;
        let mut held = None;
        let mut respond = |status: u16, body: Option<Bytes>| match kind {
            OfferIn::Update => session.answer_update(now, status, body),
            OfferIn::Reinvite => session.answer_reinvite(status, body),
            OfferIn::Prack => session.answer_prack(status, body),
        };
        let response = match body {
            None => respond(200, Some(Bytes::from(sdp::offer(local).to_string()))),
            Some(b) => match parse_sdp(&b).and_then(|o| sdp::answer(&o, local)) {
                Ok((answer, n)) => {
                    if call.peer_held != n.remote_on_hold {
                        call.peer_held = n.remote_on_hold;
                        held = Some(n.remote_on_hold);
                    }
                    negotiated = Some(n);
                    respond(200, Some(Bytes::from(answer.to_string())))
                }
                Err(e) => respond(e.status_code(), None),
            },
        };
        if let Some(r) = response {
            let _ = self.endpoint.send_response(now, tx, r);
        }
        if let Some(h) = held {
            let by_peer = true;
            self.call_event(
                id,
                if h {
                    CallEvent::Hold { by_peer }
                } else {
                    CallEvent::Resumed { by_peer }
                },
            );
        }
        if let Some(n) = negotiated {
            self.start_media(now, id, n);
        }
    }

    /// Starts the call's media, or makes the running media follow a new negotiation.
    fn start_media(&mut self, now: Instant, id: CallId, negotiated: Negotiated) {
        let ssrc = (self.rng.next_u64() >> 16) as u32;
        let seed = self.rng.next_u64();
        let rtp_timeout = self.config.rtp_timeout_hangup;
        let level_meters = self.config.level_meters;
        let processing = self.config.processing;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let mut config = negotiated.session_config(ssrc, seed);
        config.levels = level_meters;
        config.processing = processing;
        if let Some(t) = rtp_timeout {
            config.rtp_timeout = t;
        }
        if call.media_running {
            let changed = call.negotiated.as_ref().is_some_and(|n| {
                n.codec != negotiated.codec
                    || n.payload_type != negotiated.payload_type
                    || n.srtp != negotiated.srtp
                    || n.telephone_event_payload_type != negotiated.telephone_event_payload_type
            });
            if changed {
                self.media.push_back(MediaCommand::Reconfigure {
                    call: id,
                    config: Box::new(config),
                });
                let event = CallEvent::CodecChanged {
                    codec: negotiated.codec,
                    srtp: negotiated.srtp.is_some(),
                };
                call.negotiated = Some(negotiated);
                self.call_event(id, event);
            } else {
                self.media.push_back(MediaCommand::SetRemote {
                    call: id,
                    rtp: negotiated.remote_rtp,
                    rtcp: negotiated.remote_rtcp,
                });
                self.media.push_back(MediaCommand::SetDirection {
                    call: id,
                    direction: negotiated.direction,
                });
                call.negotiated = Some(negotiated);
            }
            return;
        }
        call.media_running = true;
        // An incoming call was announced with its 200 (see `answer`).
        let announce = call.answered_at.is_none();
        call.answered_at.get_or_insert(now);
        let event = CallEvent::Answered {
            setup: now.saturating_duration_since(call.started),
            codec: negotiated.codec,
            srtp: negotiated.srtp.is_some(),
            remote_rtp: negotiated.remote_rtp,
        };
        call.negotiated = Some(negotiated);
        self.media.push_back(MediaCommand::Start {
            call: id,
            config: Box::new(config),
        });
        // Muted before the media started: the new session starts muted.
        if call.muted {
            self.media.push_back(MediaCommand::SetMute {
                call: id,
                muted: true,
            });
        }
        if announce {
            self.call_event(id, event);
        }
    }

    pub(super) fn media_event(&mut self, now: Instant, id: CallId, ev: MediaEvent) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match ev {
            MediaEvent::DtmfReceived { digit, .. } => self.call_event(
                id,
                CallEvent::Dtmf {
                    digit,
                    via: DtmfVia::Rfc4733,
                },
            ),
            MediaEvent::Stats(s) => {
                call.last_stats = s;
                if let Some(n) = &call.negotiated {
                    let q = Quality::of(&s, n.codec);
                    self.call_event(id, CallEvent::Quality(q));
                }
            }
            MediaEvent::Levels { input, output } => {
                self.call_event(id, CallEvent::Levels(Levels::of(input, output)));
            }
            MediaEvent::DeviceError { message } => self.warn(id, CallWarning::Media(message)),
            MediaEvent::RemoteLatched {
                kind,
                previous,
                address,
                ..
            } => self.warn(
                id,
                CallWarning::MediaMoved {
                    kind,
                    from: previous,
                    to: address,
                },
            ),
            // The hold timeout (neither RTP nor RTCP) ends held calls too.
            MediaEvent::Timeout {
                silent_for,
                hold_timeout,
                ..
            } if hold_timeout || (!call.peer_held && !call.held) => {
                let hang_up = self.config.rtp_timeout_hangup.is_some() && call.is_up();
                if hang_up {
                    call.media_timeout = true;
                    if let Some(s) = call.session.as_mut() {
                        s.hangup();
                    }
                }
                self.warn(
                    id,
                    CallWarning::NoMedia {
                        silent_for,
                        rtcp_too: hold_timeout,
                    },
                );
                self.flush_call(now, id);
            }
            _ => {}
        }
    }

    /// The session ended: stop the media (its final figures complete the end) or end now.
    fn session_ended(&mut self, now: Instant, id: CallId, reason: SessionEnd) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (reason, status) = match reason {
            SessionEnd::LocalHangup if call.media_timeout => (EndReason::MediaTimeout, None),
            SessionEnd::LocalHangup if self.shutting_down => (EndReason::Shutdown, None),
            SessionEnd::LocalHangup if call.declined.is_some() => {
                let status = call.declined.unwrap_or(603);
                (EndReason::Declined, Some((status, String::new())))
            }
            SessionEnd::LocalHangup => (EndReason::LocalHangup, None),
            SessionEnd::RemoteHangup => (EndReason::RemoteHangup, None),
            SessionEnd::Rejected { status, reason } => {
                (EndReason::Rejected, Some((status, reason)))
            }
            SessionEnd::Timeout => (EndReason::Timeout, None),
            SessionEnd::AckTimeout => (EndReason::AckTimeout, None),
            SessionEnd::DialogGone { status } => {
                (EndReason::DialogGone, Some((status, String::new())))
            }
            SessionEnd::SessionExpired => (EndReason::SessionExpired, None),
            _ => (EndReason::LocalHangup, None),
        };
        self.end_call(now, id, reason, status, Vec::new());
    }

    /// Ends a call: [`CallEvent::Ended`] now, or once its media reported its final figures.
    pub(super) fn end_call(
        &mut self,
        now: Instant,
        id: CallId,
        reason: EndReason,
        status: Option<(u16, String)>,
        errors: Vec<String>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.stage == Stage::Ending {
            return;
        }
        let (status, status_text) = match (status, &call.final_status) {
            (Some((s, t)), _) => (Some(s), (!t.is_empty()).then_some(t)),
            (None, Some((s, t))) if call.answered_at.is_none() => (Some(*s), Some(t.clone())),
            _ => (None, None),
        };
        let tried = std::mem::take(&mut call.tried);
        let codec = call.negotiated.as_ref().map(|n| n.codec);
        call.end = Some(CallEnd {
            reason,
            status,
            status_text,
            answered: call.answered_at.is_some(),
            duration: Duration::ZERO,
            codec,
            quality: codec
                .map(|c| Quality::of(&call.last_stats, c))
                .unwrap_or_default(),
            tried,
            errors,
        });
        let media_running = call.media_running;
        let bound = call.local_media.is_some() || call.stage == Stage::Binding;
        call.stage = Stage::Ending;
        // A call still locating its next hop: nobody waits for those answers any more.
        let locating: Vec<_> = self
            .call_resolutions
            .iter()
            .filter(|(_, c)| **c == id)
            .map(|(r, _)| *r)
            .collect();
        for r in locating {
            self.call_resolutions.remove(&r);
            self.dns.cancel(r);
        }
        if media_running || bound {
            self.media.push_back(MediaCommand::Stop { call: id });
        }
        if !media_running {
            self.finish_call(now, id);
        }
    }

    /// The media's final figures arrived.
    pub(super) fn media_stopped(&mut self, now: Instant, id: CallId, stats: SessionStats) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.stage != Stage::Ending {
            // The session stopped by itself (it never does without a Stop): keep the figures.
            call.last_stats = stats;
            return;
        }
        call.last_stats = stats;
        if let (Some(end), Some(n)) = (call.end.as_mut(), call.negotiated.as_ref()) {
            end.quality = Quality::of(&stats, n.codec);
        }
        self.finish_call(now, id);
    }

    fn finish_call(&mut self, now: Instant, id: CallId) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        if let Some(account) = call.account
            && self
                .routes
                .values()
                .any(|r| matches!(r.owner, Owner::InDialog(c) if c == id))
        {
            self.ended_call_accounts.insert(id, account);
        }
        self.call_ids.remove(&call.call_id);
        self.transfer_call_gone(id);
        self.ended_call_ids.push_back(call.call_id.clone());
        if self.ended_call_ids.len() > 64 {
            self.ended_call_ids.pop_front();
        }
        if let Some(mut end) = call.end.take() {
            end.duration = call
                .answered_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            self.call_event(id, CallEvent::Ended(end));
        }
        self.check_drained();
    }
}

/// A challenged in-dialog request sent again after its dialog ended: the same request with
/// the new credentials and the next CSeq number.
fn retry_after_dialog(request: &Message, headers: &[(String, String)]) -> Option<Message> {
    let cseq = request.cseq().and_then(Result::ok)?;
    let mut retried = ChallengeAnswer {
        headers: headers.to_vec(),
    }
    .apply(request);
    retried.set(&CSeq {
        seq: cseq.seq.checked_add(1)?,
        method: cseq.method,
    });
    Some(retried)
}

/// A call's SRTP policy: its own, else its account's, else the phone's.
fn srtp_policy(
    params: &CallParams,
    account: Option<&AccountConfig>,
    phone: &PhoneConfig,
) -> SrtpPolicy {
    params
        .srtp
        .or_else(|| account.and_then(|a| a.srtp))
        .unwrap_or(phone.srtp)
}

pub(super) fn name_addr(display: Option<&str>, uri: &str) -> NameAddr<'static> {
    let mut n = NameAddr::new(Uri::parse(uri).map(Uri::into_owned).unwrap_or_else(|_| {
        Uri::parse("sip:tincan@invalid")
            .expect("a valid literal")
            .into_owned()
    }));
    if let Some(d) = display {
        n.display_name = Some(d.to_owned().into());
    }
    n
}

#[cfg(test)]
mod tests {
    use super::request_uri;

    #[test]
    fn what_a_user_types_becomes_a_request_uri() {
        let uri =
            |text: &str, domain: Option<&str>| request_uri(text, domain).map(|u| u.to_string());
        let domain = Some("example.test");
        assert_eq!(uri("bob", domain).unwrap(), "sip:bob@example.test");
        assert_eq!(
            uri("bob@example.com", domain).unwrap(),
            "sip:bob@example.com"
        );
        assert_eq!(
            uri("sips:bob@example.com", None).unwrap(),
            "sips:bob@example.com"
        );
        assert_eq!(uri("example.com", domain).unwrap(), "sip:example.com");
        assert_eq!(uri("127.0.0.1:5070", None).unwrap(), "sip:127.0.0.1:5070");
        assert_eq!(uri("localhost:5070", domain).unwrap(), "sip:localhost:5070");
        assert!(uri("mailto:bob@example.com", domain).is_err());
        assert!(uri("tel:+15551234", domain).is_err());
        assert!(uri("sip:", None).is_err());
    }
}
