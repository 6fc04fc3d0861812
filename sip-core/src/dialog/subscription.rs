//! The subscriber side of SIP-specific event notification (RFC 6665).
//!
//! A [`Subscription`] is one subscription to one event package (`message-summary`,
//! `presence`, `dialog`...) as a sans-IO state machine. The caller builds the first SUBSCRIBE
//! (Request-URI, From with its tag, To, Call-ID, CSeq, Contact) and hands it in; the machine
//! adds `Event`, `Expires` and `Accept`, and from then on:
//!
//! - gives out the SUBSCRIBEs to send ([`Subscription::poll_request`]): the initial one, the
//!   refreshes inside the dialog, an un-SUBSCRIBE (`Expires: 0`), and a new initial one when
//!   the notifier ends the subscription in a way that invites a retry;
//! - takes their final responses ([`Subscription::handle_response`]): a 2xx creates the
//!   dialog (§4.1.2.1) and its `Expires` sets the refresh time; 423 is retried with the
//!   `Min-Expires`; 489 Bad Event and other refusals end it for good; a 481 to a refresh
//!   means the notifier forgot it, and a new one starts;
//! - takes the NOTIFYs ([`Subscription::handle_notify`]) and says how to answer them:
//!   200 and a [`SubscriptionEvent::Notify`] for one of its dialog, also when it comes before
//!   the 2xx (§4.1.2.4: it creates the dialog); 481 for a NOTIFY of another fork (the
//!   notifier then ends that one, §4.1.3), 400 without `Subscription-State`. A caller that
//!   keeps every fork instead ([`Subscription::is_fork`]) makes a subscription of its own
//!   for it with [`Subscription::fork`] (§4.1.2.4);
//! - keeps time ([`Subscription::poll_timeout`], [`Subscription::handle_timeout`]): the
//!   refresh, the expiry, Timer N (no NOTIFY 64*T1 after the SUBSCRIBE, §4.1.2.4) and the
//!   retry after a termination.
//!
//! Refresh time: RFC 6665 §4.1.2.1 only asks for a refresh before the expiry; this one
//! refreshes at `expires - min(expires / 2, 32 s)`: 32 s ahead of an hour-long subscription
//! (64*T1, time enough for a non-INVITE transaction to time out and another to go), half way
//! through a short one.
//!
//! Transactions (retransmission, digest challenges, failover) are the caller's: it sends each
//! request in a client transaction, answers a 401/407 by sending it again with credentials
//! and the next CSeq, and reports the final response with the request it answers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Dialog, DialogState};
use crate::message::typed::{CSeq, Method, SubscriptionState};
use crate::message::{HeaderName, Message};

/// Timer N (RFC 6665 §4.1.2.4, 64*T1): how long a subscriber waits for the first NOTIFY
/// after sending a SUBSCRIBE before it takes the subscription as failed.
pub const TIMER_N: Duration = Duration::from_secs(32);

/// The most a refresh goes ahead of the expiry: 64*T1, one non-INVITE transaction timeout.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(32);

/// How long to wait before subscribing again after a failure that does not say when
/// (a timeout, a 5xx without `Retry-After`, a termination with `probation` or `giveup` and
/// no `retry-after`, RFC 6665 §4.1.3).
pub const DEFAULT_RETRY: Duration = Duration::from_secs(60);

/// What a subscription asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// The event package (`Event` header), e.g. `message-summary`.
    pub event: String,
    /// The body types taken (`Accept`), e.g. `application/simple-message-summary`.
    pub accept: Option<String>,
    /// The duration asked for (`Expires`), in seconds.
    pub expires: u32,
}

/// Where a subscription stands (RFC 6665 §4.1.2, `Subscription-State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionStatus {
    /// The SUBSCRIBE is out; no NOTIFY yet.
    Subscribing,
    /// The notifier has not authorized it yet (`pending`).
    Pending,
    /// Accepted (`active`).
    Active,
    /// An un-SUBSCRIBE is out.
    Unsubscribing,
    /// Ended; a new one may be started later ([`Subscription::poll_timeout`]).
    Terminated,
    /// Ended for good.
    Done,
}

/// What a subscription reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// A NOTIFY of the subscription: its state and its body.
    Notify {
        /// `Subscription-State` as it said.
        state: SubscriptionStatus,
        /// Its `Content-Type`, if it has one.
        content_type: Option<String>,
        /// Its body.
        body: Bytes,
    },
    /// The subscription ended: by the notifier (`Subscription-State: terminated`), a
    /// refused SUBSCRIBE, an expiry or Timer N.
    Terminated {
        /// Why: the `reason` parameter, or the status code, or `timeout`.
        reason: String,
        /// When a new one will be tried; `None`: never (the subscription is [`Done`]).
        ///
        /// [`Done`]: SubscriptionStatus::Done
        retry_in: Option<Duration>,
    },
    /// The subscription is over for good: unsubscribed, or refused.
    Done,
}

/// How to answer a NOTIFY ([`Subscription::handle_notify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyAnswer {
    /// The status code of the response: 200, 400, 481 or 500.
    pub status: u16,
}

/// One subscription, as subscriber (RFC 6665 §4.1).
#[derive(Debug)]
pub struct Subscription {
    config: SubscriptionConfig,
    status: SubscriptionStatus,
    /// The first SUBSCRIBE as the caller built it (the template of a new one after a
    /// termination).
    initial: Message,
    /// How many times a new subscription was started (the suffix of its tag and Call-ID).
    generation: u32,
    dialog: Option<Dialog>,
    /// A SUBSCRIBE is out (one at a time).
    in_flight: bool,
    /// The un-SUBSCRIBE waits for the SUBSCRIBE in flight.
    unsubscribe_wanted: bool,
    /// A refresh waits for the SUBSCRIBE in flight.
    refresh_wanted: bool,
    /// The `Expires` of the next SUBSCRIBE (after a 423, the `Min-Expires`).
    expires: u32,
    expires_at: Option<Instant>,
    refresh_at: Option<Instant>,
    retry_at: Option<Instant>,
    timer_n: Option<Instant>,
    /// Made by [`Subscription::fork`] for another fork's NOTIFY: never starts over.
    fork: bool,
    requests: VecDeque<Message>,
    events: VecDeque<SubscriptionEvent>,
}

impl Subscription {
    /// A subscription that sends `subscribe` (a SUBSCRIBE with Request-URI, From with tag,
    /// To, Call-ID, CSeq and Contact; `Event`, `Expires` and `Accept` are set here) first.
    pub fn new(now: Instant, config: SubscriptionConfig, subscribe: Message) -> Subscription {
        let expires = config.expires;
        let mut s = Subscription {
            config,
            status: SubscriptionStatus::Subscribing,
            initial: subscribe,
            generation: 0,
            dialog: None,
            in_flight: false,
            unsubscribe_wanted: false,
            refresh_wanted: false,
            expires,
            expires_at: None,
            refresh_at: None,
            retry_at: None,
            timer_n: None,
            fork: false,
            requests: VecDeque::new(),
            events: VecDeque::new(),
        };
        let first = s.initial.clone();
        s.send(now, first);
        s
    }

    /// The event package.
    pub fn event(&self) -> &str {
        &self.config.event
    }

    /// Where it stands.
    pub fn status(&self) -> SubscriptionStatus {
        self.status
    }

    /// The next SUBSCRIBE to send.
    pub fn poll_request(&mut self) -> Option<Message> {
        self.requests.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SubscriptionEvent> {
        self.events.pop_front()
    }

    /// When [`Subscription::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.refresh_at,
            self.expires_at,
            self.retry_at,
            self.timer_n,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a NOTIFY is for this subscription: its Call-ID and To tag are ours and its
    /// event package is ours (RFC 6665 §4.1.3, §8.2.1). A NOTIFY of another fork matches too
    /// (and is answered 481 by [`Subscription::handle_notify`]).
    pub fn matches_notify(&self, notify: &Message) -> bool {
        let call_id = notify.call_id().and_then(Result::ok);
        let to_tag = notify
            .to()
            .and_then(Result::ok)
            .and_then(|t| t.tag().map(str::to_owned));
        let event = notify
            .get::<crate::message::typed::Event<'_>>()
            .and_then(Result::ok)
            .map(|e| e.package.to_ascii_lowercase());
        let (Some(call_id), Some(to_tag), Some(event)) = (call_id, to_tag, event) else {
            return false;
        };
        let (our_call_id, our_tag) = match &self.dialog {
            Some(d) => (d.id.call_id.clone(), d.id.local_tag.clone()),
            None => match self.current_ids() {
                Some(ids) => ids,
                None => return false,
            },
        };
        call_id.as_str() == our_call_id
            && to_tag == our_tag
            && event == self.config.event.to_ascii_lowercase()
    }

    /// Ends the subscription: an un-SUBSCRIBE (`Expires: 0`) in its dialog, or, with none
    /// yet, once the SUBSCRIBE in flight created it. With no dialog and nothing in flight it
    /// is [`SubscriptionStatus::Done`] at once.
    pub fn unsubscribe(&mut self, now: Instant) {
        if matches!(
            self.status,
            SubscriptionStatus::Done | SubscriptionStatus::Unsubscribing
        ) {
            return;
        }
        self.retry_at = None;
        self.refresh_at = None;
        if self.in_flight {
            self.unsubscribe_wanted = true;
            self.status = SubscriptionStatus::Unsubscribing;
            return;
        }
        if self.dialog.is_some() && self.status != SubscriptionStatus::Terminated {
            self.status = SubscriptionStatus::Unsubscribing;
            self.expires = 0;
            self.send_in_dialog(now);
            return;
        }
        self.finish();
    }

    /// The final response to one of its SUBSCRIBEs (`request`: the one it answers, as sent,
    /// with credentials and CSeq after a challenge).
    pub fn handle_response(&mut self, now: Instant, request: &Message, response: &Message) {
        let status = response.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        self.in_flight = false;
        let asked = request
            .header(HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(self.expires);
        // The dialog's CSeq follows the request that went (a retry with credentials).
        if let Some(d) = &mut self.dialog
            && let Some(Ok(cseq)) = request.cseq()
            && cseq.seq > d.local_seq
            && request
                .call_id()
                .and_then(Result::ok)
                .is_some_and(|c| c.as_str() == d.id.call_id)
        {
            d.local_seq = cseq.seq;
        }
        if (200..300).contains(&status) {
            if self.dialog.is_none()
                && let Ok(mut d) = Dialog::uac(request, response)
            {
                d.state = DialogState::Confirmed;
                self.dialog = Some(d);
            } else if let Some(d) = &mut self.dialog
                && d.matches_response(response)
            {
                d.receive_response(response);
            }
            // §4.1.2.1: the 2xx's Expires is the duration granted; it may be shorter.
            let granted = response
                .header(HeaderName::Expires)
                .and_then(|e| e.trim().parse::<u32>().ok())
                .unwrap_or(asked)
                .min(asked.max(1));
            if self.unsubscribe_wanted {
                self.unsubscribe_wanted = false;
                self.status = SubscriptionStatus::Unsubscribing;
                self.expires = 0;
                if self.dialog.is_some() {
                    self.send_in_dialog(now);
                } else {
                    self.finish();
                }
                return;
            }
            if asked == 0 {
                // Our un-SUBSCRIBE was taken; the final NOTIFY may or may not come.
                self.finish();
                return;
            }
            self.expires = self.config.expires;
            self.schedule(now, granted);
            if self.refresh_wanted {
                self.refresh_wanted = false;
                self.send_in_dialog(now);
            }
            return;
        }
        if asked == 0 || self.status == SubscriptionStatus::Unsubscribing {
            self.finish();
            return;
        }
        if self.unsubscribe_wanted {
            self.finish();
            return;
        }
        match status {
            423 => {
                // Interval Too Brief (RFC 6665 §4.1.2.1): again with the Min-Expires.
                let min = response
                    .header(HeaderName::MinExpires)
                    .and_then(|e| e.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > asked => {
                        self.expires = min;
                        self.config.expires = min;
                        if self.dialog.is_some() {
                            self.send_in_dialog(now);
                        } else {
                            self.restart(now);
                        }
                    }
                    _ => self.terminate(now, "423".to_owned(), None),
                }
            }
            // A refresh the notifier knows nothing of (§4.1.2.2): a new subscription.
            481 if self.dialog.is_some() => {
                self.dialog = None;
                self.terminate(now, "481".to_owned(), Some(Duration::ZERO));
            }
            // Refusals that will not change by asking again: 489 Bad Event (§4.1.2.1), and
            // no such resource, forbidden, not supported.
            403 | 404 | 405 | 489 | 501 | 603 => {
                self.terminate(now, status.to_string(), None);
            }
            _ => {
                // A failed refresh leaves the subscription valid until it expires
                // (§4.1.2.2); a failed initial SUBSCRIBE is tried again later.
                if self.dialog.is_some() && self.expires_at.is_some_and(|t| t > now) {
                    self.refresh_at = None;
                    return;
                }
                let retry =
                    crate::message::typed::RetryAfter::of(response).unwrap_or(DEFAULT_RETRY);
                self.terminate(now, status.to_string(), Some(retry));
            }
        }
    }

    /// No final response came to the SUBSCRIBE (`request`): a transaction timeout or no
    /// server reachable. Handled like a 408.
    pub fn handle_failure(&mut self, now: Instant, request: &Message) {
        let mut response = crate::message::response_to(request, 408, None);
        response.remove_header(HeaderName::Expires);
        self.handle_response(now, request, &response);
    }

    /// A NOTIFY that [`Subscription::matches_notify`]: what to answer, and events.
    pub fn handle_notify(&mut self, now: Instant, notify: &Message) -> NotifyAnswer {
        let answer = |status| NotifyAnswer { status };
        if matches!(self.status, SubscriptionStatus::Done) {
            return answer(481);
        }
        let Some(Ok(state)) = notify.get::<SubscriptionState<'_>>() else {
            return answer(400);
        };
        match &mut self.dialog {
            Some(d) if !d.matches_request(notify) => {
                // Another fork (§4.1.2.4): one subscription is enough; a 481 makes that
                // notifier end its own.
                return answer(481);
            }
            Some(d) => {
                if d.receive_request(notify).is_err() {
                    return answer(500);
                }
            }
            None => {
                // A NOTIFY before the 2xx creates the dialog (§4.1.2.4).
                let Some(d) = self.dialog_of(notify) else {
                    return answer(400);
                };
                self.dialog = Some(d);
            }
        }
        self.timer_n = None;
        let param = |name: &str| -> Option<String> {
            state
                .params
                .get(name)
                .flatten()
                .map(|v| v.trim().to_owned())
        };
        let seconds =
            |name: &str| -> Option<u32> { param(name).and_then(|v| v.parse::<u32>().ok()) };
        let value = state.state.to_ascii_lowercase();
        let reported = match value.as_str() {
            "active" => SubscriptionStatus::Active,
            "pending" => SubscriptionStatus::Pending,
            "terminated" => SubscriptionStatus::Terminated,
            // An extension state (§4.1.3): the body is still reported, the state stays.
            _ => self.status,
        };
        let content_type = notify
            .content_type()
            .and_then(Result::ok)
            .map(|c| c.to_string());
        self.events.push_back(SubscriptionEvent::Notify {
            state: reported,
            content_type,
            body: notify.body().clone(),
        });
        match reported {
            SubscriptionStatus::Terminated => {
                self.dialog = None;
                if self.status == SubscriptionStatus::Unsubscribing {
                    self.finish();
                    return answer(200);
                }
                let reason = param("reason").unwrap_or_default().to_ascii_lowercase();
                let retry = seconds("retry-after").map(|s| Duration::from_secs(s.into()));
                // §4.1.3: what each reason invites.
                let retry_in = match reason.as_str() {
                    "rejected" | "noresource" | "invariant" => None,
                    "probation" | "giveup" => Some(retry.unwrap_or(DEFAULT_RETRY)),
                    _ => Some(retry.unwrap_or(Duration::ZERO)),
                };
                let shown = if reason.is_empty() {
                    "terminated".to_owned()
                } else {
                    reason
                };
                self.in_flight = false;
                self.terminate(now, shown, retry_in);
            }
            SubscriptionStatus::Active | SubscriptionStatus::Pending
                if self.status != SubscriptionStatus::Unsubscribing =>
            {
                self.status = reported;
                // §4.1.2.1: the NOTIFY's `expires` may shorten the subscription.
                if let Some(s) = seconds("expires") {
                    let at = now + Duration::from_secs(s.into());
                    if self.expires_at.is_none_or(|e| at < e) {
                        self.schedule(now, s);
                    }
                }
            }
            _ => {}
        }
        answer(200)
    }

    /// Whether a NOTIFY that [`matches_notify`](Subscription::matches_notify) comes from
    /// another fork of the SUBSCRIBE than the one whose dialog this subscription holds
    /// (another To tag, RFC 6665 §4.1.2.4). [`Subscription::handle_notify`] answers it 481
    /// (one subscription is enough, as for message waiting); a caller that wants every
    /// fork (the dialog package, presence) makes a subscription of its own for it with
    /// [`Subscription::fork`].
    pub fn is_fork(&self, notify: &Message) -> bool {
        self.dialog
            .as_ref()
            .is_some_and(|d| !d.matches_request(notify))
            && self.matches_notify(notify)
    }

    /// A subscription of its own for another fork's NOTIFY (RFC 6665 §4.1.2.4: each fork
    /// that NOTIFYs creates a subscription): in the dialog that NOTIFY creates, refreshed
    /// and unsubscribed on its own, with the same package and `Expires`. It has sent
    /// nothing; hand it the NOTIFY ([`Subscription::handle_notify`]) for its answer and
    /// report. When it ends it is [`SubscriptionStatus::Done`] (the original subscription
    /// is the one that subscribes again). `None` when the NOTIFY is not another fork's or
    /// cannot create a dialog.
    pub fn fork(&self, now: Instant, notify: &Message) -> Option<Subscription> {
        if !self.is_fork(notify) {
            return None;
        }
        let dialog = self.dialog_of(notify)?;
        let mut s = Subscription {
            config: self.config.clone(),
            status: SubscriptionStatus::Subscribing,
            initial: self.current_request(),
            generation: 0,
            dialog: Some(dialog),
            in_flight: false,
            unsubscribe_wanted: false,
            refresh_wanted: false,
            expires: self.config.expires,
            expires_at: None,
            refresh_at: None,
            retry_at: None,
            timer_n: None,
            fork: true,
            requests: VecDeque::new(),
            events: VecDeque::new(),
        };
        s.schedule(now, self.expires.max(1));
        Some(s)
    }

    /// Whether it was made by [`Subscription::fork`].
    pub fn is_forked(&self) -> bool {
        self.fork
    }

    /// The dialog a NOTIFY creates with the current SUBSCRIBE (§4.1.2.4).
    fn dialog_of(&self, notify: &Message) -> Option<Dialog> {
        let request = self.current_request();
        let contact = request.header(HeaderName::Contact).unwrap_or("").to_owned();
        let seq = request.cseq().and_then(Result::ok).map_or(1, |c| c.seq);
        let mut d = Dialog::uas(notify, "", &contact).ok()?;
        d.local_seq = seq.max(d.local_seq);
        d.state = DialogState::Confirmed;
        Some(d)
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_n.is_some_and(|t| t <= now) {
            self.timer_n = None;
            if self.status == SubscriptionStatus::Subscribing && !self.in_flight {
                self.dialog = None;
                self.terminate(now, "timeout".to_owned(), Some(DEFAULT_RETRY));
                return;
            }
        }
        if self.expires_at.is_some_and(|t| t <= now) {
            self.expires_at = None;
            self.refresh_at = None;
            self.dialog = None;
            if self.status == SubscriptionStatus::Unsubscribing {
                self.finish();
            } else {
                self.terminate(now, "timeout".to_owned(), Some(Duration::ZERO));
            }
            return;
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            if self.in_flight {
                self.refresh_wanted = true;
            } else if self.dialog.is_some() {
                self.send_in_dialog(now);
            }
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.restart(now);
        }
    }

    /// The refresh and expiry times of a subscription granted `seconds` from `now`.
    fn schedule(&mut self, now: Instant, seconds: u32) {
        let granted = Duration::from_secs(seconds.into());
        self.expires_at = Some(now + granted);
        let margin = (granted / 2).min(REFRESH_MARGIN);
        self.refresh_at = Some(now + granted - margin);
    }

    /// Ends the subscription; a new one starts after `retry_in`, or never.
    fn terminate(&mut self, now: Instant, reason: String, retry_in: Option<Duration>) {
        // A fork's subscription does not start over: the original one does.
        let retry_in = if self.fork { None } else { retry_in };
        self.dialog = None;
        self.expires_at = None;
        self.refresh_at = None;
        self.timer_n = None;
        self.refresh_wanted = false;
        self.events
            .push_back(SubscriptionEvent::Terminated { reason, retry_in });
        match retry_in {
            Some(d) => {
                self.status = SubscriptionStatus::Terminated;
                self.retry_at = Some(now + d);
            }
            None => self.finish(),
        }
    }

    fn finish(&mut self) {
        if self.status == SubscriptionStatus::Done {
            return;
        }
        self.status = SubscriptionStatus::Done;
        self.dialog = None;
        self.expires_at = None;
        self.refresh_at = None;
        self.retry_at = None;
        self.timer_n = None;
        self.unsubscribe_wanted = false;
        self.refresh_wanted = false;
        self.events.push_back(SubscriptionEvent::Done);
    }

    /// A new subscription (a new dialog): the first SUBSCRIBE with a tag and Call-ID of
    /// its own.
    fn restart(&mut self, now: Instant) {
        self.generation += 1;
        self.dialog = None;
        self.status = SubscriptionStatus::Subscribing;
        let request = self.current_request();
        self.send(now, request);
    }

    /// The first SUBSCRIBE of the current generation.
    fn current_request(&self) -> Message {
        let mut request = self.initial.clone();
        if self.generation == 0 {
            return request;
        }
        let suffix = format!("-{}", self.generation);
        if let Some(Ok(from)) = request.from() {
            let mut from = from.0.into_owned();
            let tag = from.tag().unwrap_or("t").to_owned();
            from.params.set("tag", Some(&format!("{tag}{suffix}")));
            request.set_header(HeaderName::From, &from.to_string());
        }
        if let Some(Ok(call_id)) = request.call_id() {
            let id = format!("{}{suffix}", call_id.as_str());
            request.set_header(HeaderName::CallId, &id);
        }
        request
    }

    /// The Call-ID and From tag of the current generation's first SUBSCRIBE.
    fn current_ids(&self) -> Option<(String, String)> {
        let r = self.current_request();
        let call_id = r.call_id()?.ok()?.as_str().to_owned();
        let tag = r.from()?.ok()?.tag()?.to_owned();
        Some((call_id, tag))
    }

    fn send_in_dialog(&mut self, now: Instant) {
        let Some(d) = &mut self.dialog else {
            return;
        };
        let request = d.request(Method::Subscribe);
        self.send(now, request);
    }

    fn send(&mut self, now: Instant, mut request: Message) {
        request.set_header(HeaderName::Event, &self.config.event);
        request.set_header(HeaderName::Expires, &self.expires.to_string());
        if let Some(accept) = &self.config.accept {
            request.set_header(HeaderName::Accept, accept);
        }
        if request.cseq().is_none() {
            request.set(&CSeq {
                seq: 1,
                method: Method::Subscribe,
            });
        }
        self.in_flight = true;
        if self.expires > 0 && self.dialog.is_none() {
            self.timer_n = Some(now + TIMER_N);
        }
        self.requests.push_back(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{RequestBuilder, Uri, response_to};

    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn start() -> Instant {
        Instant::now()
    }

    fn config() -> SubscriptionConfig {
        SubscriptionConfig {
            event: "message-summary".to_owned(),
            accept: Some("application/simple-message-summary".to_owned()),
            expires: 3600,
        }
    }

    fn first() -> Message {
        let uri = Uri::parse("sip:alice@example.com").unwrap();
        RequestBuilder::new(Method::Subscribe, &uri)
            .header(
                HeaderName::Via,
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            )
            .header(HeaderName::From, "<sip:alice@example.com>;tag=a1")
            .header(HeaderName::To, "<sip:alice@example.com>")
            .header(HeaderName::Contact, "<sip:alice@192.0.2.1:5060>")
            .call_id("c1@tincan")
            .cseq(1)
            .build()
    }

    fn ok(request: &Message, expires: Option<u32>) -> Message {
        let mut r = response_to(request, 200, None);
        if request
            .to()
            .and_then(Result::ok)
            .and_then(|t| t.tag().map(str::to_owned))
            .is_none()
        {
            r.set_to_tag("n1");
        }
        r.push_header(HeaderName::Contact, "<sip:vm@192.0.2.9:5060>");
        if let Some(e) = expires {
            r.push_header(HeaderName::Expires, &e.to_string());
        }
        r
    }

    fn notify(call_id: &str, our_tag: &str, their_tag: &str, seq: u32, state: &str) -> Message {
        let text = format!(
            "NOTIFY sip:alice@192.0.2.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKn{seq}{their_tag}\r\n\
             From: <sip:alice@example.com>;tag={their_tag}\r\n\
             To: <sip:alice@example.com>;tag={our_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} NOTIFY\r\n\
             Contact: <sip:vm@192.0.2.9:5060>\r\n\
             Event: message-summary\r\n\
             Subscription-State: {state}\r\n\
             Content-Type: application/simple-message-summary\r\n\
             Content-Length: 22\r\n\r\n\
             Messages-Waiting: yes\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    fn events(s: &mut Subscription) -> Vec<SubscriptionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    /// Runs the timers up to `until`, one due time after another.
    fn run(s: &mut Subscription, until: Instant) {
        while let Some(t) = s.poll_timeout() {
            if t > until {
                break;
            }
            s.handle_timeout(t);
        }
    }

    #[test]
    fn subscribes_refreshes_before_expiry_and_unsubscribes() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().expect("the first SUBSCRIBE");
        assert_eq!(sub.header(HeaderName::Event), Some("message-summary"));
        assert_eq!(sub.header(HeaderName::Expires), Some("3600"));
        assert_eq!(
            sub.header(HeaderName::Accept),
            Some("application/simple-message-summary")
        );
        // The notifier grants less than asked.
        s.handle_response(t0, &sub, &ok(&sub, Some(600)));
        assert_eq!(
            s.handle_notify(
                t0,
                &notify("c1@tincan", "a1", "n1", 1, "active;expires=600")
            )
            .status,
            200
        );
        assert_eq!(s.status(), SubscriptionStatus::Active);
        assert!(matches!(
            &events(&mut s)[..],
            [SubscriptionEvent::Notify {
                state: SubscriptionStatus::Active,
                ..
            }]
        ));
        // Refresh at 600 - 32 s, in the dialog: To tag, the next CSeq, the notifier's Contact.
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(568)));
        run(&mut s, t0 + Duration::from_secs(568));
        let refresh = s.poll_request().expect("a refresh");
        assert_eq!(refresh.uri().unwrap().to_string(), "sip:vm@192.0.2.9:5060");
        assert_eq!(refresh.to().unwrap().unwrap().tag(), Some("n1"));
        assert_eq!(refresh.cseq().unwrap().unwrap().seq, 2);
        s.handle_response(
            t0 + Duration::from_secs(568),
            &refresh,
            &ok(&refresh, Some(600)),
        );
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(568 + 568)));
        // Unsubscribe: Expires 0; the final NOTIFY ends it.
        let t1 = t0 + Duration::from_secs(700);
        s.unsubscribe(t1);
        let unsub = s.poll_request().expect("an un-SUBSCRIBE");
        assert_eq!(unsub.header(HeaderName::Expires), Some("0"));
        assert_eq!(unsub.cseq().unwrap().unwrap().seq, 3);
        let last = notify("c1@tincan", "a1", "n1", 2, "terminated;reason=timeout");
        assert_eq!(s.handle_notify(t1, &last).status, 200);
        assert_eq!(s.status(), SubscriptionStatus::Done);
        s.handle_response(t1, &unsub, &ok(&unsub, Some(0)));
        assert_eq!(s.poll_request(), None, "no new subscription");
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn expiry_without_a_refresh_answer_starts_a_new_subscription() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        s.handle_response(t0, &sub, &ok(&sub, Some(100)));
        s.handle_notify(t0, &notify("c1@tincan", "a1", "n1", 1, "active"));
        run(&mut s, t0 + Duration::from_secs(68));
        let refresh = s.poll_request().expect("a refresh at 100 - 32 s");
        // It times out; the subscription stays until it expires at 100 s.
        s.handle_failure(t0 + Duration::from_secs(99), &refresh);
        assert_eq!(s.status(), SubscriptionStatus::Active);
        run(&mut s, t0 + Duration::from_secs(100));
        let evs = events(&mut s);
        assert!(evs.iter().any(|e| matches!(e, SubscriptionEvent::Terminated { reason, retry_in: Some(_) } if reason == "timeout")), "{evs:?}");
        let again = s.poll_request().expect("a new SUBSCRIBE");
        assert_eq!(
            again.to().unwrap().unwrap().tag(),
            None,
            "outside any dialog"
        );
        assert_eq!(again.from().unwrap().unwrap().tag(), Some("a1-1"));
        assert_eq!(again.call_id().unwrap().unwrap().as_str(), "c1@tincan-1");
    }

    #[test]
    fn notify_before_the_200_creates_the_dialog() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        let n = notify("c1@tincan", "a1", "n1", 1, "pending;expires=3600");
        assert!(s.matches_notify(&n));
        assert_eq!(s.handle_notify(t0, &n).status, 200);
        assert_eq!(s.status(), SubscriptionStatus::Pending);
        s.handle_response(t0, &sub, &ok(&sub, Some(3600)));
        run(&mut s, t0 + Duration::from_secs(3568));
        let refresh = s.poll_request().expect("a refresh");
        assert_eq!(refresh.to().unwrap().unwrap().tag(), Some("n1"));
        assert_eq!(refresh.cseq().unwrap().unwrap().seq, 2);
        assert_eq!(refresh.uri().unwrap().to_string(), "sip:vm@192.0.2.9:5060");
    }

    #[test]
    fn forked_notify_is_refused_and_unknown_is_not_matched() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        s.handle_response(t0, &sub, &ok(&sub, Some(3600)));
        assert_eq!(
            s.handle_notify(t0, &notify("c1@tincan", "a1", "n1", 1, "active"))
                .status,
            200
        );
        let fork = notify("c1@tincan", "a1", "n2", 1, "active");
        assert!(s.matches_notify(&fork));
        assert_eq!(s.handle_notify(t0, &fork).status, 481);
        assert_eq!(s.status(), SubscriptionStatus::Active);
        assert!(!s.matches_notify(&notify("other", "a1", "n1", 2, "active")));
        assert!(!s.matches_notify(&notify("c1@tincan", "zz", "n1", 2, "active")));
        let mut no_state = notify("c1@tincan", "a1", "n1", 2, "active");
        no_state.remove_header(HeaderName::SubscriptionState);
        assert_eq!(s.handle_notify(t0, &no_state).status, 400);
        // An old CSeq.
        assert_eq!(
            s.handle_notify(t0, &notify("c1@tincan", "a1", "n1", 0, "active"))
                .status,
            500
        );
    }

    #[test]
    fn a_fork_gets_a_subscription_of_its_own() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        s.handle_response(t0, &sub, &ok(&sub, Some(600)));
        s.handle_notify(
            t0,
            &notify("c1@tincan", "a1", "n1", 1, "active;expires=600"),
        );
        let other = notify("c1@tincan", "a1", "n2", 1, "active;expires=300");
        assert!(s.is_fork(&other));
        assert!(!s.is_fork(&notify("c1@tincan", "a1", "n1", 2, "active")));
        let mut f = s.fork(t0, &other).expect("a subscription for the fork");
        assert!(f.is_forked());
        assert_eq!(f.poll_request(), None, "it sends nothing by itself");
        assert_eq!(f.handle_notify(t0, &other).status, 200);
        assert_eq!(f.status(), SubscriptionStatus::Active);
        assert!(f.matches_notify(&other) && !f.is_fork(&other));
        assert!(s.is_fork(&other), "the first one still refuses it");
        // Each refreshes in its own dialog: the fork at 300 - 32 s.
        assert_eq!(f.poll_timeout(), Some(t0 + Duration::from_secs(268)));
        run(&mut f, t0 + Duration::from_secs(268));
        let refresh = f.poll_request().expect("the fork's refresh");
        assert_eq!(refresh.to().unwrap().unwrap().tag(), Some("n2"));
        assert_eq!(refresh.cseq().unwrap().unwrap().seq, 2);
        // Ended by its notifier, it does not start over.
        let t1 = t0 + Duration::from_secs(268);
        f.handle_response(t1, &refresh, &ok(&refresh, Some(300)));
        f.handle_notify(t1, &notify("c1@tincan", "a1", "n2", 2, "terminated"));
        assert_eq!(f.status(), SubscriptionStatus::Done);
        assert_eq!(f.poll_timeout(), None);
        assert_eq!(s.status(), SubscriptionStatus::Active);
    }

    #[test]
    fn terminated_with_retry_after_subscribes_again_later() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        s.handle_response(t0, &sub, &ok(&sub, Some(3600)));
        s.handle_notify(t0, &notify("c1@tincan", "a1", "n1", 1, "active"));
        let t1 = t0 + Duration::from_secs(10);
        let end = notify(
            "c1@tincan",
            "a1",
            "n1",
            2,
            "terminated;reason=probation;retry-after=120",
        );
        assert_eq!(s.handle_notify(t1, &end).status, 200);
        assert_eq!(s.status(), SubscriptionStatus::Terminated);
        assert!(events(&mut s).contains(&SubscriptionEvent::Terminated {
            reason: "probation".to_owned(),
            retry_in: Some(Duration::from_secs(120)),
        }));
        assert_eq!(s.poll_request(), None);
        assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(120)));
        run(&mut s, t1 + Duration::from_secs(120));
        let again = s.poll_request().expect("a new SUBSCRIBE");
        assert_eq!(again.from().unwrap().unwrap().tag(), Some("a1-1"));
        // `rejected` ends it for good.
        s.handle_response(t1, &again, &ok(&again, Some(3600)));
        let n = notify("c1@tincan-1", "a1-1", "n1", 1, "terminated;reason=rejected");
        assert!(s.matches_notify(&n));
        s.handle_notify(t1, &n);
        assert_eq!(s.status(), SubscriptionStatus::Done);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn bad_event_stops_and_interval_too_brief_is_retried() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        let mut brief = response_to(&sub, 423, None);
        brief.push_header(HeaderName::MinExpires, "7200");
        s.handle_response(t0, &sub, &brief);
        let again = s.poll_request().expect("again with Min-Expires");
        assert_eq!(again.header(HeaderName::Expires), Some("7200"));
        s.handle_response(t0, &again, &response_to(&again, 489, None));
        assert_eq!(s.status(), SubscriptionStatus::Done);
        assert!(events(&mut s).contains(&SubscriptionEvent::Terminated {
            reason: "489".to_owned(),
            retry_in: None
        }));
        assert_eq!(s.poll_request(), None);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn refresh_answered_481_starts_over_and_timer_n() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        s.handle_response(t0, &sub, &ok(&sub, Some(100)));
        // No NOTIFY within Timer N: failed, retried after DEFAULT_RETRY.
        run(&mut s, t0 + TIMER_N);
        assert_eq!(s.status(), SubscriptionStatus::Terminated);
        run(&mut s, t0 + TIMER_N + DEFAULT_RETRY);
        let again = s.poll_request().expect("a new SUBSCRIBE");
        let t1 = t0 + TIMER_N + DEFAULT_RETRY;
        s.handle_response(t1, &again, &ok(&again, Some(100)));
        s.handle_notify(t1, &notify("c1@tincan-1", "a1-1", "n1", 1, "active"));
        run(&mut s, t1 + Duration::from_secs(68));
        let refresh = s.poll_request().expect("a refresh");
        s.handle_response(t1, &refresh, &response_to(&refresh, 481, None));
        run(&mut s, t1 + Duration::from_secs(68));
        let fresh = s.poll_request().expect("a new subscription at once");
        assert_eq!(fresh.to().unwrap().unwrap().tag(), None);
    }

    #[test]
    fn unsubscribe_before_the_answer_waits_for_the_dialog() {
        let t0 = start();
        let mut s = Subscription::new(t0, config(), first());
        let sub = s.poll_request().unwrap();
        s.unsubscribe(t0);
        assert_eq!(s.poll_request(), None);
        s.handle_response(t0, &sub, &ok(&sub, Some(3600)));
        let unsub = s.poll_request().expect("an un-SUBSCRIBE");
        assert_eq!(unsub.header(HeaderName::Expires), Some("0"));
        assert_eq!(unsub.to().unwrap().unwrap().tag(), Some("n1"));
        s.handle_response(t0, &unsub, &ok(&unsub, None));
        assert_eq!(s.status(), SubscriptionStatus::Done);
    }
}
