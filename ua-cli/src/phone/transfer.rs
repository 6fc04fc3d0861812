//! Call transfer in the phone core: REFER (RFC 3515) with Referred-By (RFC 3892), the
//! implicit subscription's NOTIFYs with `message/sipfrag` bodies, `Refer-Sub` (RFC 4488) and
//! Replaces (RFC 3891).
//!
//! - As the transferor, [`PhoneCore::transfer`] sends a REFER in the call's dialog; the
//!   transferee's 202 and its NOTIFYs become [`CallEvent::TransferProgress`], then
//!   [`CallEvent::TransferSucceeded`] (a 2xx sipfrag, and the call is hung up, as baresip
//!   and pjsua do) or [`CallEvent::TransferFailed`]. [`PhoneCore::transfer_attended`] refers
//!   the peer to the other party of a consultation call with its dialog in `Replaces`.
//! - As the transferee, a REFER is answered by the policy of the call's account or the
//!   phone ([`TransferPolicy`]): refused with 603, accepted at once, or asked of the
//!   application ([`CallEvent::TransferRequested`], then [`PhoneCore::accept_transfer`] or
//!   [`PhoneCore::reject_transfer`]). An accepted REFER gets 202, a NOTIFY `100 Trying`, a
//!   new call to the `Refer-To` target (with its `Replaces` and the `Referred-By`), a NOTIFY
//!   per provisional and one with the new call's final status; the old call is hung up once
//!   that last NOTIFY is answered, when the new call connected.
//! - An INVITE with `Replaces` naming one of our confirmed calls takes it over: it is
//!   answered at once and the old call gets [`CallEvent::Replaced`] and a BYE; a `Replaces`
//!   that names no call of ours gets 481.
//!
//! The session ([`tincan_sip::dialog::InviteSession`]) only carries these requests in its
//! dialog (`RequestOutcome::Transfer`, `send_request`); the state of a transfer lives here.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use tincan_sip::dialog::refer::{
    self, REFER_EVENT, REFER_SUB, ReferTarget, SIPFRAG, SUBSCRIPTION_SECONDS,
};
use tincan_sip::message::typed::{Header, Replaces};
use tincan_sip::message::{HeaderName, Message, Method, response_to};
use tincan_sip::transaction::TransactionId;

use super::call::request_uri;
use super::event::{CallEvent, CallId, PhoneError, UsageError};
use super::{CallParams, PhoneCore};

/// What the phone does with a REFER it receives (config `accept_transfer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TransferPolicy {
    /// Ask the application ([`CallEvent::TransferRequested`]).
    #[default]
    Ask,
    /// Accept every REFER.
    Always,
    /// Refuse every REFER with 603 Decline.
    Never,
}

impl TransferPolicy {
    /// The policy's name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferPolicy::Ask => "ask",
            TransferPolicy::Always => "always",
            TransferPolicy::Never => "never",
        }
    }
}

/// Our REFER in a call (transferor).
#[derive(Debug)]
struct Referring {
    /// The last status a NOTIFY reported.
    last: Option<u16>,
}

/// A REFER waiting for the application's answer (transferee).
#[derive(Debug)]
struct Asked {
    tx: TransactionId,
    request: Message,
    target: ReferTarget,
}

/// The new call placed for a REFER (transferee).
#[derive(Debug)]
struct Placed {
    /// The call the REFER came in.
    old: CallId,
    /// NOTIFYs are owed (the REFER did not say `Refer-Sub: false`).
    notify: bool,
}

/// Every transfer of the phone's calls.
#[derive(Debug, Default)]
pub(super) struct Transfers {
    /// Our REFERs, by the call they were sent in.
    referring: HashMap<CallId, Referring>,
    /// REFERs asked of the application, by call.
    asked: HashMap<CallId, Asked>,
    /// New calls placed for REFERs.
    placed: HashMap<CallId, Placed>,
    /// Headers for the INVITE of a placed call (Replaces, Referred-By).
    invite_headers: HashMap<CallId, Vec<(String, String)>>,
    /// What a placed call did, to report: (new call, its event).
    watched: VecDeque<(CallId, CallEvent)>,
    /// Old calls to hang up once the NOTIFY with this CSeq is answered.
    end_after: HashMap<CallId, u32>,
    /// Incoming calls with Replaces: new call -> the call it takes over.
    replacing: HashMap<CallId, CallId>,
}

impl Transfers {
    /// Extra headers for the INVITE of call `id`.
    pub(super) fn invite_headers(&self, id: CallId) -> Vec<(String, String)> {
        self.invite_headers.get(&id).cloned().unwrap_or_default()
    }

    /// Whether an event of `id` matters to a transfer (see [`PhoneCore::drive_transfers`]).
    pub(super) fn watch(&mut self, id: CallId, event: &CallEvent) {
        let watched = self.placed.contains_key(&id) || self.replacing.contains_key(&id);
        if watched
            && matches!(
                event,
                CallEvent::Progress { .. } | CallEvent::Answered { .. } | CallEvent::Ended(_)
            )
        {
            self.watched.push_back((id, event.clone()));
        }
    }

    /// Forgets an ended call.
    fn forget(&mut self, id: CallId) {
        self.referring.remove(&id);
        self.asked.remove(&id);
        self.end_after.remove(&id);
        self.invite_headers.remove(&id);
    }
}

impl PhoneCore {
    /// Blind transfer (RFC 3515): asks the peer of call `id` to call `uri` (a SIP URI,
    /// `user@domain` or a bare user of the account's domain) with a REFER carrying
    /// `Referred-By` (RFC 3892). Progress comes as [`CallEvent::TransferProgress`], the end
    /// as [`CallEvent::TransferSucceeded`] (the call is then hung up) or
    /// [`CallEvent::TransferFailed`].
    ///
    /// # Errors
    ///
    /// [`UsageError`] for an unknown call, a call that is not up, a transfer of this call
    /// already under way, or a URI that cannot be called.
    pub fn transfer(&mut self, now: Instant, id: CallId, uri: &str) -> Result<(), PhoneError> {
        let call = self.calls.get(&id).ok_or(UsageError::UnknownCall(id))?;
        let domain = call
            .account
            .and_then(|a| self.accounts.get(a.0))
            .map(|a| a.config.domain().to_owned());
        let target = request_uri(uri, domain.as_deref())?;
        self.send_refer(now, id, format!("<{target}>"))
    }

    /// Attended transfer (RFC 3891 §7): asks the peer of call `id` to call the peer of
    /// `consult` (a call of ours, usually the consultation call) with an INVITE that
    /// replaces our dialog with it. Progress and end as for [`transfer`](Self::transfer);
    /// `consult` ends when its peer's new call takes it over.
    ///
    /// # Errors
    ///
    /// [`UsageError`] for an unknown call, calls that are not up, or a transfer of `id`
    /// already under way.
    pub fn transfer_attended(
        &mut self,
        now: Instant,
        id: CallId,
        consult: CallId,
    ) -> Result<(), PhoneError> {
        let other = self
            .calls
            .get(&consult)
            .ok_or(UsageError::UnknownCall(consult))?;
        let not_up = UsageError::WrongState {
            call: consult,
            reason: "the call is not up",
        };
        let session = other.session.as_ref().ok_or(not_up.clone())?;
        let dialog = session.dialog().ok_or(not_up.clone())?;
        let target = dialog.remote_target().clone();
        let d = dialog.id();
        // The target sees its own tag as the to-tag (RFC 3891 §3).
        let refer_to = refer::refer_to_replacing(&target, &d.call_id, &d.remote_tag, &d.local_tag);
        self.send_refer(now, id, refer_to)
    }

    fn send_refer(&mut self, now: Instant, id: CallId, refer_to: String) -> Result<(), PhoneError> {
        if self.transfers.referring.contains_key(&id) {
            return Err(UsageError::WrongState {
                call: id,
                reason: "a transfer is already under way",
            }
            .into());
        }
        let call = self.calls.get_mut(&id).ok_or(UsageError::UnknownCall(id))?;
        let session = call.session.as_mut().ok_or(UsageError::WrongState {
            call: id,
            reason: "the call is not up",
        })?;
        let referred_by = session
            .dialog()
            .map(|d| format!("<{}>", d.local().uri_str()))
            .unwrap_or_default();
        let headers = [
            (HeaderName::ReferTo, refer_to),
            (HeaderName::ReferredBy, referred_by),
        ];
        session
            .send_request(Method::Refer, &headers, None)
            .map_err(|reason| UsageError::WrongState { call: id, reason })?;
        self.transfers
            .referring
            .insert(id, Referring { last: None });
        self.flush_call(now, id);
        self.process(now);
        Ok(())
    }

    /// Accepts the REFER of call `id` that [`CallEvent::TransferRequested`] announced: 202,
    /// then a new call to its target.
    ///
    /// # Errors
    ///
    /// [`UsageError`] for an unknown call or one with no REFER waiting.
    pub fn accept_transfer(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        let asked = self.take_asked(id)?;
        self.start_transfer(now, id, asked);
        self.process(now);
        Ok(())
    }

    /// Refuses the REFER of call `id` that [`CallEvent::TransferRequested`] announced
    /// (603 Decline); the call goes on.
    ///
    /// # Errors
    ///
    /// [`UsageError`] for an unknown call or one with no REFER waiting.
    pub fn reject_transfer(&mut self, now: Instant, id: CallId) -> Result<(), PhoneError> {
        let asked = self.take_asked(id)?;
        let _ = self
            .endpoint
            .send_response(now, asked.tx, response_to(&asked.request, 603, None));
        self.process(now);
        Ok(())
    }

    fn take_asked(&mut self, id: CallId) -> Result<Asked, PhoneError> {
        if !self.calls.contains_key(&id) {
            return Err(UsageError::UnknownCall(id).into());
        }
        self.transfers.asked.remove(&id).ok_or_else(|| {
            UsageError::WrongState {
                call: id,
                reason: "no transfer request waiting",
            }
            .into()
        })
    }

    /// The policy for REFERs in call `id`: its account's, else the phone's.
    fn transfer_policy(&self, id: CallId) -> TransferPolicy {
        self.calls
            .get(&id)
            .and_then(|c| c.account)
            .and_then(|a| self.accounts.get(a.0))
            .and_then(|a| a.config.accept_transfer)
            .unwrap_or(self.config.accept_transfer)
    }

    /// A REFER or a NOTIFY in call `id` (the session's `RequestOutcome::Transfer`).
    pub(super) fn transfer_request(
        &mut self,
        now: Instant,
        id: CallId,
        tx: TransactionId,
        request: &Message,
    ) {
        match request.method() {
            Some(Method::Refer) => self.on_refer(now, id, tx, request),
            Some(Method::Notify) => self.on_notify(now, id, tx, request),
            _ => {
                let _ = self
                    .endpoint
                    .send_response(now, tx, response_to(request, 501, None));
            }
        }
    }

    fn on_refer(&mut self, now: Instant, id: CallId, tx: TransactionId, request: &Message) {
        let target = match ReferTarget::of_request(request) {
            Ok(t) => t,
            Err(e) => {
                let mut r = response_to(request, 400, None);
                r.set_status(400, &e.to_string());
                let _ = self.endpoint.send_response(now, tx, r);
                return;
            }
        };
        let busy = self.transfers.asked.contains_key(&id)
            || self.transfers.placed.values().any(|p| p.old == id);
        let policy = self.transfer_policy(id);
        if busy || policy == TransferPolicy::Never {
            let status = if busy { 491 } else { 603 };
            let _ = self
                .endpoint
                .send_response(now, tx, response_to(request, status, None));
            return;
        }
        let asked = Asked {
            tx,
            request: request.clone(),
            target,
        };
        if policy == TransferPolicy::Always {
            self.start_transfer(now, id, asked);
            return;
        }
        let to = asked.target.uri.to_string();
        let referred_by = request.header(HeaderName::ReferredBy).map(str::to_owned);
        self.transfers.asked.insert(id, asked);
        self.call_event(id, CallEvent::TransferRequested { to, referred_by });
    }

    /// 202 to an accepted REFER, the new call, and the first NOTIFY.
    fn start_transfer(&mut self, now: Instant, id: CallId, asked: Asked) {
        let account = self.calls.get(&id).and_then(|c| c.account);
        let params = CallParams {
            account,
            ..CallParams::default()
        };
        let new = match self.call(now, &asked.target.uri.to_string(), params) {
            Ok(new) => new,
            Err(e) => {
                let mut r = response_to(&asked.request, 400, None);
                r.set_status(400, &e.to_string());
                let _ = self.endpoint.send_response(now, asked.tx, r);
                return;
            }
        };
        let no_sub = refer::refer_sub_refused(&asked.request);
        let mut r = response_to(&asked.request, 202, None);
        if no_sub {
            // RFC 4488 §4: we honour the request for no subscription, and say so.
            r.push_header_named(REFER_SUB, "false");
        }
        let _ = self.endpoint.send_response(now, asked.tx, r);
        let mut headers = Vec::new();
        if let Some(replaces) = asked.target.replaces {
            headers.push(("Replaces".to_owned(), replaces));
        }
        if let Some(by) = asked.request.header(HeaderName::ReferredBy) {
            headers.push(("Referred-By".to_owned(), by.to_owned()));
        }
        // The INVITE is built once the new call's next hop is located and its ports bound.
        self.transfers.invite_headers.insert(new, headers);
        self.transfers.placed.insert(
            new,
            Placed {
                old: id,
                notify: !no_sub,
            },
        );
        if !no_sub {
            self.send_notify(now, id, 100, "Trying", false);
        }
        self.call_event(id, CallEvent::TransferStarted { new_call: new });
    }

    /// A NOTIFY with a sipfrag of the new call's status, in call `id` (RFC 3515 §2.4.5).
    /// Returns the NOTIFY's CSeq.
    fn send_notify(
        &mut self,
        now: Instant,
        id: CallId,
        status: u16,
        reason: &str,
        last: bool,
    ) -> Option<u32> {
        let session = self.calls.get_mut(&id)?.session.as_mut()?;
        let state = if last {
            "terminated;reason=noresource".to_owned()
        } else {
            format!("active;expires={SUBSCRIPTION_SECONDS}")
        };
        let headers = [
            (HeaderName::Event, REFER_EVENT.to_owned()),
            (HeaderName::SubscriptionState, state),
        ];
        session
            .send_request(
                Method::Notify,
                &headers,
                Some((SIPFRAG, refer::sipfrag(status, reason))),
            )
            .ok()?;
        let seq = session.dialog().map(|d| d.local_seq());
        self.flush_call(now, id);
        seq
    }

    fn on_notify(&mut self, now: Instant, id: CallId, tx: TransactionId, request: &Message) {
        let ours = refer::is_refer_notify(request) && self.transfers.referring.contains_key(&id);
        if !ours {
            // RFC 6665 §4.1.3: a NOTIFY for no subscription of ours.
            let _ = self
                .endpoint
                .send_response(now, tx, response_to(request, 481, None));
            return;
        }
        let _ = self
            .endpoint
            .send_response(now, tx, response_to(request, 200, None));
        let ended = refer::ends_subscription(request);
        let Some(t) = self.transfers.referring.get_mut(&id) else {
            return;
        };
        match refer::parse_sipfrag(request.body()) {
            Some((status, reason)) if status < 200 => {
                t.last = Some(status);
                if ended {
                    self.transfer_failed(id, status, reason);
                } else {
                    self.call_event(id, CallEvent::TransferProgress { status, reason });
                }
            }
            Some((status, _)) if status < 300 => {
                self.transfers.referring.remove(&id);
                self.call_event(id, CallEvent::TransferSucceeded { status });
                // The transferee talks to the target now (RFC 5589 §6.1): our part is done.
                let _ = self.hangup(now, id);
            }
            Some((status, reason)) => self.transfer_failed(id, status, reason),
            None if ended => {
                let status = t.last.unwrap_or(0);
                self.transfer_failed(id, status, "subscription ended".to_owned());
            }
            None => {}
        }
    }

    fn transfer_failed(&mut self, id: CallId, status: u16, reason: String) {
        self.transfers.referring.remove(&id);
        self.call_event(id, CallEvent::TransferFailed { status, reason });
    }

    /// A final response to a REFER or NOTIFY of call `id`.
    pub(super) fn transfer_response(&mut self, now: Instant, id: CallId, response: &Message) {
        let Some(Ok(cseq)) = response.cseq() else {
            return;
        };
        let status = response.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        match cseq.method {
            Method::Refer => {
                if !self.transfers.referring.contains_key(&id) {
                    return;
                }
                let reason = response.reason().unwrap_or_default().into_owned();
                if status >= 300 {
                    self.transfer_failed(id, status, reason);
                } else if refer::refer_sub_refused(response) {
                    // RFC 4488: no NOTIFY will tell how it went; the REFER's acceptance is
                    // all we learn.
                    self.transfers.referring.remove(&id);
                    self.call_event(id, CallEvent::TransferProgress { status, reason });
                    self.call_event(id, CallEvent::TransferSucceeded { status });
                    let _ = self.hangup(now, id);
                } else {
                    self.call_event(id, CallEvent::TransferProgress { status, reason });
                }
            }
            Method::Notify if self.transfers.end_after.get(&id) == Some(&cseq.seq) => {
                self.transfers.end_after.remove(&id);
                let _ = self.hangup(now, id);
            }
            _ => {}
        }
    }

    /// A REFER or NOTIFY of call `id` got no response at all.
    pub(super) fn transfer_request_failed(&mut self, now: Instant, id: CallId, method: &Method) {
        match method {
            Method::Refer if self.transfers.referring.contains_key(&id) => {
                self.transfer_failed(id, 408, "Request Timeout".to_owned());
            }
            Method::Notify if self.transfers.end_after.remove(&id).is_some() => {
                let _ = self.hangup(now, id);
            }
            _ => {}
        }
    }

    /// Reports what placed and replacing calls did; `true` when anything moved.
    pub(super) fn drive_transfers(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some((new, event)) = self.transfers.watched.pop_front() {
            moved = true;
            if let Some(&old) = self.transfers.replacing.get(&new) {
                if matches!(event, CallEvent::Answered { .. } | CallEvent::Ended(_)) {
                    self.transfers.replacing.remove(&new);
                }
                if matches!(event, CallEvent::Answered { .. }) {
                    let _ = self.hangup(now, old);
                }
                continue;
            }
            let Some(placed) = self.transfers.placed.get(&new) else {
                continue;
            };
            let (old, notify) = (placed.old, placed.notify);
            let (status, reason, last) = match &event {
                CallEvent::Progress { status, reason } => (*status, reason.clone(), false),
                CallEvent::Answered { .. } => (200, "OK".to_owned(), true),
                CallEvent::Ended(end) => (
                    end.status.unwrap_or(503),
                    end.status_text
                        .clone()
                        .unwrap_or_else(|| "Service Unavailable".to_owned()),
                    true,
                ),
                _ => continue,
            };
            if last {
                self.transfers.placed.remove(&new);
                self.transfers.invite_headers.remove(&new);
            }
            let connected = status < 300 && last;
            if !notify {
                if connected {
                    let _ = self.hangup(now, old);
                }
                continue;
            }
            let seq = self.send_notify(now, old, status, &reason, last);
            if connected {
                match seq {
                    Some(seq) => {
                        self.transfers.end_after.insert(old, seq);
                    }
                    None => {
                        let _ = self.hangup(now, old);
                    }
                }
            }
        }
        moved
    }

    /// Whether an incoming INVITE replaces a call (RFC 3891 §3): `Ok(None)` without
    /// `Replaces`, `Ok(Some(call))` for a confirmed call of ours, `Err(status)` otherwise.
    pub(super) fn replaced_call(&self, invite: &Message) -> Result<Option<CallId>, u16> {
        let Some(value) = invite.header(HeaderName::Replaces) else {
            return Ok(None);
        };
        let Ok(r) = Replaces::parse(value) else {
            return Err(400);
        };
        let (Some(to_tag), Some(from_tag)) = (r.to_tag(), r.from_tag()) else {
            return Err(400);
        };
        let found = self.call_ids.get(r.call_id.as_ref()).copied().filter(|id| {
            self.calls
                .get(id)
                .and_then(|c| c.session.as_ref())
                .and_then(|s| s.dialog_id())
                .is_some_and(|d| d.local_tag == to_tag && d.remote_tag == from_tag)
        });
        match found {
            Some(id) if self.calls.get(&id).is_some_and(|c| c.is_up()) => Ok(Some(id)),
            // An early or unknown dialog: nothing to replace (RFC 3891 §3).
            _ => Err(481),
        }
    }

    /// The new incoming call `new` replaces call `old`: it is answered at once, and `old`
    /// ends when it is up.
    pub(super) fn take_over(&mut self, now: Instant, new: CallId, old: CallId) {
        self.transfers.replacing.insert(new, old);
        self.call_event(old, CallEvent::Replaced { by: new });
        let _ = self.accept(now, new);
    }

    /// Call `id` is gone: its transfers with it.
    pub(super) fn transfer_call_gone(&mut self, id: CallId) {
        self.transfers.forget(id);
    }
}
