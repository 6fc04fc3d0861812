//! Message waiting indication (RFC 3842): the `message-summary` NOTIFYs a PBX sends.
//!
//! Many PBXs (Asterisk's `unsolicited_mwi`, FreeSWITCH, most hosted ones) send a registered
//! phone NOTIFYs with `Event: message-summary` without any subscription. The phone answers
//! them 200 and reports the counts as [`PhoneEvent::MessageWaiting`]; a NOTIFY of any other
//! event package is answered 481 (no such subscription, RFC 6665 §4.1.3).
//!
//! An account with [`AccountConfig::mwi`](super::AccountConfig::mwi) also subscribes to
//! its own `message-summary` once it registers (RFC 3842 §4), with the sans-IO subscriber of
//! `tincan_sip::dialog::subscription` (RFC 6665): the SUBSCRIBE goes where the account's
//! requests go (its outbound proxy, or the registrar it registered with, with failover over
//! its registrars' targets), a 401/407 is answered with the account's credentials, the
//! subscription is refreshed before it expires and subscribed again when the notifier ends
//! it in a way that invites it; its NOTIFYs come as [`PhoneEvent::MessageWaiting`] like
//! unsolicited ones. Unregistering the account (or the phone's shutdown) ends it with an
//! un-SUBSCRIBE (`Expires: 0`).

use std::time::Instant;

use tincan_sip::auth::answer_challenge;
use tincan_sip::dialog::subscription::{
    Subscription, SubscriptionConfig, SubscriptionEvent, SubscriptionStatus,
};
use tincan_sip::message::typed::CSeq;
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, Uri, response_to};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Target;

use super::PhoneCore;
use super::call::{contact_uri, name_addr, user_of};
use super::event::{AccountId, PhoneEvent};
use super::route::{Owner, RouteId};

/// The event package of RFC 3842.
pub const MESSAGE_SUMMARY: &str = "message-summary";

/// The body type of a `message-summary` NOTIFY (RFC 3842 §5).
pub const SIMPLE_MESSAGE_SUMMARY: &str = "application/simple-message-summary";

/// How long a `message-summary` subscription asks to last, in seconds (RFC 3842 §4 leaves it
/// to the subscriber; an hour, like the registrations most PBXs grant).
pub const MWI_EXPIRES: u32 = 3600;

/// A `message-summary` body (RFC 3842 §5.2), read leniently: unknown lines are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageSummary {
    /// `Messages-Waiting: yes`.
    pub waiting: bool,
    /// `Message-Account`: the mailbox's URI, if given.
    pub message_account: Option<String>,
    /// The counts by message context class (`voice`, `fax`, `text`...), lowercase.
    pub counts: Vec<(String, MessageCounts)>,
}

/// The counts of one message context class: `Voice-Message: 2/8 (0/2)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MessageCounts {
    /// New messages.
    pub new: u32,
    /// Old messages.
    pub old: u32,
    /// New urgent messages (among `new`).
    pub urgent_new: u32,
    /// Old urgent messages (among `old`).
    pub urgent_old: u32,
}

impl MessageSummary {
    /// Parses a `message-summary` body; `None` without a `Messages-Waiting` line.
    pub fn parse(body: &str) -> Option<MessageSummary> {
        let mut summary = MessageSummary::default();
        let mut seen_status = false;
        for line in body.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            match name.as_str() {
                "messages-waiting" => {
                    seen_status = true;
                    summary.waiting = value.eq_ignore_ascii_case("yes");
                }
                "message-account" => summary.message_account = Some(value.to_owned()),
                _ => {
                    if let Some(class) = name.strip_suffix("-message")
                        && let Some(counts) = MessageCounts::parse(value)
                    {
                        summary.counts.push((class.to_owned(), counts));
                    }
                }
            }
        }
        seen_status.then_some(summary)
    }

    /// The voice-message counts, if given.
    pub fn voice(&self) -> Option<MessageCounts> {
        self.counts
            .iter()
            .find(|(c, _)| c == "voice")
            .map(|(_, n)| *n)
    }
}

impl MessageCounts {
    /// `new/old` with an optional `(urgent_new/urgent_old)`.
    fn parse(value: &str) -> Option<MessageCounts> {
        let (main, urgent) = match value.split_once('(') {
            Some((m, u)) => (m, Some(u.trim_end_matches(')'))),
            None => (value, None),
        };
        let pair = |text: &str| -> Option<(u32, u32)> {
            let (a, b) = text.split_once('/')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        };
        let (new, old) = pair(main)?;
        let (urgent_new, urgent_old) = match urgent {
            Some(u) => pair(u)?,
            None => (0, 0),
        };
        Some(MessageCounts {
            new,
            old,
            urgent_new,
            urgent_old,
        })
    }
}

/// A message-waiting report ([`PhoneEvent::MessageWaiting`]).
#[derive(Debug, Clone)]
pub struct MessageWaiting {
    /// The account whose address the NOTIFY was sent to, if any.
    pub account: Option<AccountId>,
    /// What the body said.
    pub summary: MessageSummary,
}

impl PhoneCore {
    /// A NOTIFY (server transaction `tx`): a `message-summary` one is answered 200 and
    /// reported (400 when its body says nothing); any other is answered 481.
    pub(super) fn incoming_notify(&mut self, now: Instant, tx: TransactionId, request: &Message) {
        let subscribed = self
            .mwi
            .iter()
            .find(|(_, s)| s.matches_notify(request))
            .map(|(a, _)| *a);
        if let Some(account) = subscribed {
            self.subscribed_notify(now, account, tx, request);
            return;
        }
        let event = request
            .header(HeaderName::Event)
            .and_then(|e| e.split(';').next())
            .map(|e| e.trim().to_ascii_lowercase());
        let tag = self.token(10);
        if event.as_deref() != Some(MESSAGE_SUMMARY) {
            let mut r = response_to(request, 481, None);
            r.set_to_tag(&tag);
            let _ = self.endpoint.send_response(now, tx, r);
            return;
        }
        let summary = std::str::from_utf8(request.body())
            .ok()
            .and_then(MessageSummary::parse);
        let Some(summary) = summary else {
            let mut r = response_to(request, 400, Some("Bad message-summary body"));
            r.set_to_tag(&tag);
            let _ = self.endpoint.send_response(now, tx, r);
            return;
        };
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
        let mut r = response_to(request, 200, None);
        r.set_to_tag(&tag);
        let _ = self.endpoint.send_response(now, tx, r);
        self.events
            .push_back(PhoneEvent::MessageWaiting(MessageWaiting {
                account,
                summary,
            }));
    }
}

impl PhoneCore {
    /// An account registered: its `message-summary` subscription starts, when it has `mwi`
    /// and none is running.
    pub(super) fn mwi_registered(&mut self, now: Instant, account: AccountId, registrar: &Target) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        if !a.config.mwi || self.shutting_down {
            return;
        }
        // One running (or refused for good: not asked again until the account unregisters).
        if self.mwi.contains_key(&account) {
            return;
        }
        let Ok(aor) = Uri::parse(&a.config.aor).map(Uri::into_owned) else {
            return;
        };
        let config = SubscriptionConfig {
            event: MESSAGE_SUMMARY.to_owned(),
            accept: Some(SIMPLE_MESSAGE_SUMMARY.to_owned()),
            expires: MWI_EXPIRES,
        };
        let Some(subscription) = self.new_subscription(now, account, registrar, &aor, config)
        else {
            return;
        };
        self.mwi.insert(account, subscription);
        self.mwi_flush(now, account);
    }

    /// A new subscription of `account` to `target` (its initial SUBSCRIBE: From the account's
    /// AOR with a fresh tag, To `target`, a new Call-ID, the Contact at the address
    /// `registrar` sees), for MWI, busy lamps and presence alike; `None` when the account or
    /// a local address for `registrar` is missing.
    pub(super) fn new_subscription(
        &mut self,
        now: Instant,
        account: AccountId,
        registrar: &Target,
        target: &Uri<'_>,
        config: SubscriptionConfig,
    ) -> Option<Subscription> {
        let account_config = &self.accounts.get(account.0)?.config;
        let user = user_of(&account_config.aor).unwrap_or_else(|| account_config.username.clone());
        let from = name_addr(account_config.display_name.as_deref(), &account_config.aor);
        let local = self
            .endpoint
            .local_address_for(registrar.transport, registrar.addr)?;
        let seen = self.contact_address(Some(account), registrar.transport, local);
        let contact = format!("<{}>", contact_uri(&user, seen, registrar.transport));
        let tag = self.token(10);
        let call_id = format!("{}@tincan", self.token(20));
        let request = RequestBuilder::new(Method::Subscribe, target)
            .header(HeaderName::From, &format!("{from};tag={tag}"))
            .header(HeaderName::To, &format!("<{target}>"))
            .header(HeaderName::Contact, &contact)
            .call_id(&call_id)
            .cseq(1)
            .build();
        Some(Subscription::new(now, config, request))
    }

    /// The account stops (unregisters, or the phone shuts down): its subscription ends.
    pub(super) fn mwi_stop(&mut self, now: Instant, account: AccountId) {
        if let Some(s) = self.mwi.get_mut(&account) {
            self.mwi_stopping.insert(account);
            s.unsubscribe(now);
            self.mwi_flush(now, account);
        }
    }

    /// Runs the subscriptions' timers.
    pub(super) fn mwi_timeout(&mut self, now: Instant) {
        let due: Vec<AccountId> = self
            .mwi
            .iter()
            .filter(|(_, s)| s.poll_timeout().is_some_and(|t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        for account in due {
            if let Some(s) = self.mwi.get_mut(&account) {
                s.handle_timeout(now);
            }
            self.mwi_flush(now, account);
        }
    }

    /// Sends what a subscription asks to send and reports its NOTIFYs.
    fn mwi_flush(&mut self, now: Instant, account: AccountId) {
        loop {
            let Some(s) = self.mwi.get_mut(&account) else {
                return;
            };
            if let Some(request) = s.poll_request() {
                self.send_subscribe(now, account, request);
                continue;
            }
            let Some(event) = s.poll_event() else {
                break;
            };
            if let SubscriptionEvent::Notify { body, .. } = event
                && let Some(summary) = std::str::from_utf8(&body)
                    .ok()
                    .and_then(MessageSummary::parse)
            {
                self.events
                    .push_back(PhoneEvent::MessageWaiting(MessageWaiting {
                        account: Some(account),
                        summary,
                    }));
            }
        }
        let done = self
            .mwi
            .get(&account)
            .is_some_and(|s| s.status() == SubscriptionStatus::Done);
        if done && self.mwi_stopping.remove(&account) {
            self.mwi.remove(&account);
        }
    }

    /// Sends a SUBSCRIBE: in its dialog along the route set (to the Request-URI, or the
    /// first Route), or, outside one, where the account's requests go.
    fn send_subscribe(&mut self, now: Instant, account: AccountId, request: Message) {
        self.send_account_request(now, account, request, Owner::Subscribe(account));
    }

    /// Sends a request of an account (a SUBSCRIBE, a PUBLISH) for `owner`: in its dialog
    /// along the route set (to the Request-URI, or the first Route), or, outside one, where
    /// the account's requests go (its outbound proxy, or its registrars' targets).
    pub(super) fn send_account_request(
        &mut self,
        now: Instant,
        account: AccountId,
        mut request: Message,
        owner: Owner,
    ) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        let in_dialog = request
            .to()
            .and_then(Result::ok)
            .is_some_and(|t| t.tag().is_some());
        let first_route = request
            .header(HeaderName::Route)
            .map(|r| r.split(',').next().unwrap_or(r).trim().to_owned())
            .and_then(|r| {
                tincan_sip::message::typed::NameAddr::parse_as(HeaderName::Route, &r)
                    .ok()
                    .and_then(|n| n.uri().ok().map(|u| u.into_owned().to_string()))
            });
        let mut known = None;
        let hop = if in_dialog {
            first_route.unwrap_or_else(|| request.uri().map(|u| u.to_string()).unwrap_or_default())
        } else if let Some(proxy) = &a.config.outbound_proxy {
            if let Ok(mut parsed) = Uri::parse(proxy).map(Uri::into_owned) {
                if let Uri::Sip(u) = &mut parsed
                    && !u.params.contains("lr")
                {
                    u.params.set("lr", None);
                }
                request.set_header(HeaderName::Route, &format!("<{parsed}>"));
            }
            proxy.clone()
        } else {
            let mut targets = Vec::new();
            for s in &a.slots {
                for t in &s.candidates {
                    if !targets.contains(t) {
                        targets.push(t.clone());
                    }
                }
            }
            if !targets.is_empty() {
                known = Some(targets);
            }
            a.config
                .registrars
                .first()
                .cloned()
                .unwrap_or_else(|| format!("sip:{}", a.config.domain()))
        };
        self.start_route(now, owner, request, hop, known);
    }

    /// A NOTIFY of an account's subscription: answered as the subscription says.
    fn subscribed_notify(
        &mut self,
        now: Instant,
        account: AccountId,
        tx: TransactionId,
        request: &Message,
    ) {
        let Some(s) = self.mwi.get_mut(&account) else {
            return;
        };
        let answer = s.handle_notify(now, request);
        let mut r = response_to(request, answer.status, None);
        if request
            .to()
            .and_then(Result::ok)
            .is_some_and(|t| t.tag().is_none())
        {
            let tag = self.token(10);
            r.set_to_tag(&tag);
        }
        let _ = self.endpoint.send_response(now, tx, r);
        self.mwi_flush(now, account);
    }

    /// A response to a SUBSCRIBE of an account's subscription.
    pub(super) fn subscribe_response(
        &mut self,
        now: Instant,
        account: AccountId,
        route: RouteId,
        response: &Message,
    ) {
        if response.status().unwrap_or(0) < 200 {
            return;
        }
        let Some(request) = self.routes.get(&route).map(|r| r.request.clone()) else {
            return;
        };
        if let Some(s) = self.mwi.get_mut(&account) {
            s.handle_response(now, &request, response);
        }
        self.mwi_flush(now, account);
    }

    /// A SUBSCRIBE that no server answered.
    pub(super) fn subscribe_failed(&mut self, now: Instant, account: AccountId, route: RouteId) {
        let Some(request) = self.routes.get(&route).map(|r| r.request.clone()) else {
            return;
        };
        if let Some(s) = self.mwi.get_mut(&account) {
            s.handle_failure(now, &request);
        }
        self.mwi_flush(now, account);
    }

    /// Answers a 401/407 to a SUBSCRIBE with the account's credentials and the next CSeq
    /// (the subscription takes the CSeq from the request the final response answers).
    pub(super) fn retry_subscribe(
        &mut self,
        account: AccountId,
        request: &Message,
        response: &Message,
    ) -> Option<Message> {
        let realms = self.answerable_realms(account);
        let digest = &mut self.accounts.get_mut(account.0)?.digest;
        digest.set_realms(realms);
        let answer = answer_challenge(digest, request, response, &mut *self.rng).ok()?;
        self.pin_realms(account, &answer.apply(request));
        let mut retried = answer.apply(request);
        let cseq = request.cseq().and_then(Result::ok)?;
        retried.set(&CSeq {
            seq: cseq.seq.checked_add(1)?,
            method: cseq.method,
        });
        Some(retried)
    }

    /// Whether `account` has a `message-summary` subscription running (or being started
    /// again after the notifier ended it); false once it was refused or ended for good.
    pub fn mwi_subscribed(&self, account: AccountId) -> bool {
        self.mwi
            .get(&account)
            .is_some_and(|s| s.status() != SubscriptionStatus::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3842_example() {
        let body = "Messages-Waiting: yes\r\n\
                    Message-Account: sip:alice@vmail.example.com\r\n\
                    Voice-Message: 2/8 (0/2)\r\n";
        let s = MessageSummary::parse(body).expect("a summary");
        assert!(s.waiting);
        assert_eq!(
            s.message_account.as_deref(),
            Some("sip:alice@vmail.example.com")
        );
        assert_eq!(
            s.voice(),
            Some(MessageCounts {
                new: 2,
                old: 8,
                urgent_new: 0,
                urgent_old: 2
            })
        );
    }

    #[test]
    fn lenient_and_bounded() {
        let s = MessageSummary::parse(
            "messages-waiting: no\nFax-Message: 1/0\ngarbage\nVoice-Message: x/y\n",
        )
        .expect("a summary");
        assert!(!s.waiting);
        assert_eq!(s.counts.len(), 1);
        assert_eq!(s.voice(), None);
        assert_eq!(MessageSummary::parse(""), None);
        let s = MessageSummary::parse("Messages-Waiting: yes\nVoice-Message: 99999999999/1")
            .expect("a summary");
        assert!(s.counts.is_empty());
    }
}
