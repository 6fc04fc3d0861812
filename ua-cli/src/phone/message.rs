//! Page-mode instant messages (RFC 3428 MESSAGE).
//!
//! Sending: [`PhoneCore::send_message`] builds a MESSAGE outside any dialog and sends it like
//! every request a user waits on: through an account (its outbound proxy, or its registrars
//! in order with failover across them, its digest credentials answering a 401/407) or, with
//! no account, through the phone's outbound proxy or straight to the recipient's domain
//! (RFC 3263). It is a non-INVITE transaction: over UDP it is retransmitted by Timer E
//! until a final response (RFC 3261 §17.1.2.2). The final response is the delivery report
//! (RFC 3428 §7): [`MessageEvent::Delivered`] for a 2xx, [`MessageEvent::Failed`] for
//! anything else, or when no server could be reached. [`PhoneCore::send_message_in_call`]
//! sends one inside a call's dialog (RFC 3428 §4), along its route set with its CSeq.
//!
//! Receiving: a MESSAGE, in or out of a dialog, is answered 200 and reported as
//! [`MessageEvent::Received`]; a body over [`MAX_MESSAGE_BODY`] is answered 413 Request
//! Entity Too Large (RFC 3428 §7) and not reported. Any content type is taken: a `text/*`
//! body in UTF-8 comes with its text, anything else as bytes only.

use std::time::Instant;

use bytes::Bytes;
use tincan_sip::auth::{AuthError, answer_challenge};
use tincan_sip::message::typed::CSeq;
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, Uri, response_to};
use tincan_sip::resolve::ResolvedTarget;
use tincan_sip::resolve::failover::FailedAttempt;
use tincan_sip::transaction::TransactionId;

use super::PhoneCore;
use super::call::{host_literal, name_addr, request_uri, user_of};
use super::event::{
    AccountId, CallId, IncomingMessage, MessageEvent, MessageId, PhoneError, PhoneEvent, UsageError,
};
use super::route::Owner;

/// The largest MESSAGE body the phone takes or sends: 32 KiB. RFC 3428 §7 lets a UAS refuse
/// a larger one with 413; page-mode messages are meant to be short (§4: under 1300 bytes
/// unless congestion-controlled transport is known to be used). A whole SIP message over
/// the parser's limit (64 KiB, `ParseLimits::max_message_size`) is dropped unread by the
/// transaction layer before it gets here.
pub const MAX_MESSAGE_BODY: usize = 32 * 1024;

/// The content type of a message given as text.
pub const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// An outgoing message waiting for its final response.
pub(super) struct Outgoing {
    /// The account it goes through (whose credentials answer challenges).
    pub(super) account: Option<AccountId>,
    /// The call whose dialog it is sent in (its CSeq comes from the dialog).
    pub(super) call: Option<CallId>,
}

impl PhoneCore {
    /// Sends `body` (of `content_type`, e.g. [`TEXT_PLAIN`]) to `uri` in a MESSAGE (RFC 3428)
    /// outside any dialog. It goes through `account` (or the account whose domain matches the
    /// recipient's, or the only account) like a call: that account's outbound proxy, or its
    /// registrars in order with failover, with its credentials; with no account, through the
    /// phone's outbound proxy or straight to the recipient's domain (RFC 3263). The outcome
    /// comes as [`MessageEvent::Delivered`] or [`MessageEvent::Failed`].
    ///
    /// # Errors
    ///
    /// [`PhoneError::Usage`] for a URI that cannot be reached, an unknown account or a body
    /// over [`MAX_MESSAGE_BODY`]; [`PhoneError::ShuttingDown`].
    pub fn send_message(
        &mut self,
        now: Instant,
        uri: &str,
        content_type: &str,
        body: Bytes,
        account: Option<AccountId>,
    ) -> Result<MessageId, PhoneError> {
        if self.shutting_down {
            return Err(PhoneError::ShuttingDown);
        }
        if body.len() > MAX_MESSAGE_BODY {
            return Err(UsageError::MessageTooLarge {
                size: body.len(),
                limit: MAX_MESSAGE_BODY,
            }
            .into());
        }
        if let Some(a) = account
            && a.0 >= self.accounts.len()
        {
            return Err(UsageError::UnknownAccount(format!("#{}", a.0)).into());
        }
        let only = (self.accounts.len() == 1).then_some(AccountId(0));
        let default_domain = account
            .or(only)
            .and_then(|a| self.accounts.get(a.0))
            .map(|a| a.config.domain().to_owned());
        let target = request_uri(uri, default_domain.as_deref())?;
        let account = account.or_else(|| {
            let host = target
                .as_sip()
                .map(|u| u.host.to_string())
                .unwrap_or_default();
            self.accounts
                .iter()
                .position(|a| a.config.domain().eq_ignore_ascii_case(&host))
                .map(AccountId)
                .or(only)
        });
        let config = account
            .and_then(|a| self.accounts.get(a.0))
            .map(|a| &a.config);
        let proxy = match config {
            Some(c) => c.outbound_proxy.clone(),
            None => self.config.outbound_proxy.clone(),
        };
        let from = match config {
            Some(c) => name_addr(c.display_name.as_deref(), &c.aor),
            None => {
                let domain = self.config.domain.clone().unwrap_or_else(|| {
                    self.endpoint
                        .local_addresses()
                        .first()
                        .map_or_else(|| "invalid".to_owned(), |(_, a)| host_literal(a.ip()))
                });
                name_addr(
                    self.config.display_name.as_deref(),
                    &format!("sip:{}@{domain}", self.config.user),
                )
            }
        };
        // Where it goes: an outbound proxy (a preloaded loose route), the account's
        // registrars (each a proxy for its domain; the targets they resolved to when the
        // account registered, in order), the account's domain, or the recipient's.
        let mut route_header = None;
        let mut known: Option<Vec<ResolvedTarget>> = None;
        let hop = match (&proxy, config) {
            (Some(p), _) => {
                let mut parsed = Uri::parse(p)
                    .map_err(|e| UsageError::BadUri {
                        uri: p.clone(),
                        reason: e.to_string(),
                    })?
                    .into_owned();
                if let Uri::Sip(u) = &mut parsed
                    && !u.params.contains("lr")
                {
                    u.params.set("lr", None);
                }
                route_header = Some(format!("<{parsed}>"));
                p.clone()
            }
            (None, Some(c)) => {
                let account = account.and_then(|a| self.accounts.get(a.0));
                let mut targets: Vec<ResolvedTarget> = Vec::new();
                for s in account.map(|a| a.slots.as_slice()).unwrap_or_default() {
                    for t in &s.candidates {
                        if !targets.contains(t) {
                            targets.push(t.clone());
                        }
                    }
                }
                if !targets.is_empty() {
                    known = Some(targets);
                }
                c.registrars
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("sip:{}", c.domain()))
            }
            (None, None) => target.to_string(),
        };
        let mut to = target.clone();
        if let Uri::Sip(u) = &mut to {
            u.params = Default::default();
        }
        let tag = self.token(10);
        let call_id = format!("{}@tincan", self.token(20));
        let mut builder = RequestBuilder::new(Method::Message, &target)
            .header(HeaderName::From, &format!("{from};tag={tag}"))
            .header(HeaderName::To, &format!("<{to}>"))
            .call_id(&call_id)
            .cseq(1);
        if let Some(r) = &route_header {
            builder = builder.header(HeaderName::Route, r);
        }
        let request = builder.body(content_type, body).build();
        let id = MessageId(self.next_message);
        self.next_message += 1;
        self.messages.insert(
            id,
            Outgoing {
                account,
                call: None,
            },
        );
        self.start_route(now, Owner::Message(id), request, hop, known);
        self.process(now);
        Ok(id)
    }

    /// Sends `body` (of `content_type`) in a MESSAGE inside the dialog of `call` (RFC 3428
    /// §4): to the peer's target along the dialog's route set, with the dialog's next CSeq;
    /// a challenge is answered with the call's account's credentials. The outcome comes as
    /// [`MessageEvent::Delivered`] or [`MessageEvent::Failed`].
    ///
    /// # Errors
    ///
    /// [`PhoneError::Usage`] for an unknown call, a call that is not up, or a body over
    /// [`MAX_MESSAGE_BODY`].
    pub fn send_message_in_call(
        &mut self,
        now: Instant,
        call: CallId,
        content_type: &str,
        body: Bytes,
    ) -> Result<MessageId, PhoneError> {
        if body.len() > MAX_MESSAGE_BODY {
            return Err(UsageError::MessageTooLarge {
                size: body.len(),
                limit: MAX_MESSAGE_BODY,
            }
            .into());
        }
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(UsageError::UnknownCall(call))?;
        let session = c.session.as_mut().ok_or(UsageError::WrongState {
            call,
            reason: "the call is not up",
        })?;
        let (mut request, next_hop) = session
            .request_in_dialog(Method::Message)
            .map_err(|reason| UsageError::WrongState { call, reason })?;
        request.set_body(Some(content_type), body);
        let hop = next_hop.to_string();
        let known = c.known_hops.get(&hop).cloned();
        let account = c.account;
        let id = MessageId(self.next_message);
        self.next_message += 1;
        self.messages.insert(
            id,
            Outgoing {
                account,
                call: Some(call),
            },
        );
        self.start_route(now, Owner::Message(id), request, hop, known);
        self.process(now);
        Ok(id)
    }

    /// A MESSAGE received (server transaction `tx`), in or out of a dialog: 200 and an
    /// event, or 413 for a body over [`MAX_MESSAGE_BODY`].
    pub(super) fn incoming_message(&mut self, now: Instant, tx: TransactionId, request: &Message) {
        let tag = self.token(10);
        let body = request.body().clone();
        if body.len() > MAX_MESSAGE_BODY {
            let mut r = response_to(request, 413, None);
            r.set_to_tag(&tag);
            let _ = self.endpoint.send_response(now, tx, r);
            return;
        }
        let content_type = match request.content_type() {
            Some(Ok(ct)) => ct.to_string(),
            // RFC 3428 §5: a body needs a Content-Type; an empty one has none to name.
            Some(Err(_)) | None if !body.is_empty() => "application/octet-stream".to_owned(),
            _ => String::new(),
        };
        let text = is_text(&content_type)
            .then(|| std::str::from_utf8(&body).ok().map(str::to_owned))
            .flatten();
        let to_user = request.to().and_then(Result::ok).and_then(|t| {
            t.uri()
                .ok()
                .and_then(|u| u.as_sip()?.user.as_deref().map(str::to_owned))
        });
        let account = to_user.and_then(|user| {
            self.accounts
                .iter()
                .position(|a| user_of(&a.config.aor).is_some_and(|u| u == user))
                .map(AccountId)
        });
        let incoming = IncomingMessage {
            from: request.header(HeaderName::From).unwrap_or("").to_owned(),
            to: request.header(HeaderName::To).unwrap_or("").to_owned(),
            call_id: request
                .call_id()
                .and_then(Result::ok)
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            content_type,
            text,
            body,
            account,
            call: self.call_of(request),
        };
        let mut r = response_to(request, 200, None);
        r.set_to_tag(&tag);
        let _ = self.endpoint.send_response(now, tx, r);
        self.events
            .push_back(PhoneEvent::Message(MessageEvent::Received(incoming)));
    }

    /// Answers a 401/407 to a MESSAGE with its account's credentials: the request again
    /// with them and the next CSeq (RFC 3261 §8.1.3.5); `None` without an account, or
    /// when the challenge cannot be answered.
    pub(super) fn retry_message(
        &mut self,
        id: MessageId,
        request: &Message,
        response: &Message,
    ) -> Option<Message> {
        let outgoing = self.messages.get(&id)?;
        let (account, call) = (outgoing.account?, outgoing.call);
        let realms = self.answerable_realms(account);
        let digest = &mut self.accounts.get_mut(account.0)?.digest;
        digest.set_realms(realms);
        let answer = match answer_challenge(digest, request, response, &mut *self.rng) {
            Ok(answer) => answer,
            Err(AuthError::RealmRefused { .. }) | Err(_) => return None,
        };
        self.pin_realms(account, &answer.apply(request));
        // In a dialog, the retry takes the dialog's next CSeq (RFC 3261 §22.2).
        if let Some(call) = call {
            let session = self.calls.get_mut(&call)?.session.as_mut()?;
            return session.retry_in_dialog(request, &answer.headers);
        }
        let mut retried = answer.apply(request);
        let cseq = request.cseq().and_then(Result::ok)?;
        retried.set(&CSeq {
            seq: cseq.seq.checked_add(1)?,
            method: cseq.method,
        });
        Some(retried)
    }

    /// A response to a MESSAGE: the final one is its delivery report.
    pub(super) fn message_response(&mut self, id: MessageId, response: &Message) {
        let status = response.status().unwrap_or(0);
        if status < 200 || self.messages.remove(&id).is_none() {
            return;
        }
        let event = if (200..300).contains(&status) {
            MessageEvent::Delivered {
                message: id,
                status,
            }
        } else {
            MessageEvent::Failed {
                message: id,
                status: Some(status),
                reason: response
                    .reason()
                    .map(|r| r.into_owned())
                    .unwrap_or_default(),
            }
        };
        self.events.push_back(PhoneEvent::Message(event));
    }

    /// A MESSAGE that no server answered with a final response.
    pub(super) fn message_failed(
        &mut self,
        id: MessageId,
        tried: Vec<FailedAttempt>,
        errors: Vec<String>,
    ) {
        if self.messages.remove(&id).is_none() {
            return;
        }
        let mut reasons: Vec<String> = tried.iter().map(ToString::to_string).collect();
        reasons.extend(errors);
        if reasons.is_empty() {
            reasons.push("no server answered".to_owned());
        }
        self.events
            .push_back(PhoneEvent::Message(MessageEvent::Failed {
                message: id,
                status: None,
                reason: reasons.join("; "),
            }));
    }
}

/// Whether a content type is text (`text/plain`, `text/html`...; empty: none given).
fn is_text(content_type: &str) -> bool {
    content_type
        .split(['/', ';'])
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text"))
}

#[cfg(test)]
mod tests {
    use super::is_text;

    #[test]
    fn text_types() {
        assert!(is_text("text/plain;charset=UTF-8"));
        assert!(is_text("TEXT/html"));
        assert!(!is_text("application/im-iscomposing+xml"));
        assert!(!is_text(""));
    }
}
