//! The notifier side of SIP-specific event notification (RFC 6665 §4.2).
//!
//! A [`Notifier`] is one subscription to one of our resources, seen from the notifier, as a
//! sans-IO state machine:
//!
//! ```text
//!   SUBSCRIBE ──> Notifier::accept ──┬─> 489 Bad Event (another package)
//!                                    ├─> 423 Interval Too Brief (+ Min-Expires)
//!                                    ├─> 400 (no Event, no From tag, no Contact)
//!                                    └─> 200 (Expires granted) + NOTIFY at once
//!                                                   │
//!      set_content / authorize ──> NOTIFY ──────────┤ (one NOTIFY in flight; the newest
//!      refresh SUBSCRIBE ──> 200 + NOTIFY ──────────┤  state waits for its answer)
//!                                                   │
//!   Expires: 0, expiry, terminate ──> NOTIFY terminated;reason=... ──> Done
//!   481, 408 or no answer to a NOTIFY ─────────────────────────────────> Done
//! ```
//!
//! - [`Notifier::accept`] takes an initial SUBSCRIBE and gives its answer: a 2xx with the
//!   granted `Expires` (the asked one capped at [`NotifierConfig::max_expires`], or
//!   [`NotifierConfig::default_expires`] without one, §4.2.1.1), **423 Interval Too Brief**
//!   with `Min-Expires` below [`NotifierConfig::min_expires`], **489 Bad Event** (with
//!   `Allow-Events`) for a package the caller does not serve (§4.2.1.2; [`bad_event`] answers
//!   a SUBSCRIBE the caller has no notifier for). The first NOTIFY is queued at once (§4.2.1.2:
//!   "immediately"), `Subscription-State: active;expires=N` or `pending;expires=N`.
//! - [`Notifier::set_content`] changes the state and sends a NOTIFY with it;
//!   [`Notifier::authorize`] turns `pending` into `active`.
//! - [`Notifier::handle_subscribe`] answers a SUBSCRIBE in the dialog: a refresh extends the
//!   subscription and is followed by a NOTIFY (§4.2.1.2); `Expires: 0` ends it with a final
//!   NOTIFY `terminated;reason=timeout` (§4.2.1.4, as does the expiry).
//! - [`Notifier::handle_response`] / [`Notifier::handle_failure`]: the final answer to a
//!   NOTIFY. A **481**, **408**, a timeout or a transport failure ends the subscription
//!   (§4.2.2: the subscriber is gone); other refusals are left alone.
//!
//! One NOTIFY is in flight at a time: a state change while one is out waits for its answer
//! and then goes as the newest state (bodies are full state, so the ones in between are not
//! needed). Retransmission, credentials and routing are the caller's: each request goes in a
//! non-INVITE client transaction to [`Notifier::next_hop`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Dialog, DialogState};
use crate::message::typed::{Event, Method};
use crate::message::{HeaderName, Message, response_to};

/// What a notifier grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// The event package served (`Event`), e.g. `dialog`.
    pub event: String,
    /// The shortest subscription taken, in seconds; a shorter one is answered 423 with this
    /// as `Min-Expires` (RFC 6665 §4.2.1.1).
    pub min_expires: u32,
    /// The longest subscription granted, in seconds; a longer one is granted this.
    pub max_expires: u32,
    /// The duration granted to a SUBSCRIBE without `Expires` (the package's default; 3600 s
    /// for `dialog`, RFC 4235 §3.4).
    pub default_expires: u32,
}

impl NotifierConfig {
    /// The usual grants for `event`: at least 60 s, at most a day, an hour by default.
    pub fn new(event: &str) -> NotifierConfig {
        NotifierConfig {
            event: event.to_owned(),
            min_expires: 60,
            max_expires: 86_400,
            default_expires: 3600,
        }
    }
}

/// Where a subscription stands, seen from the notifier (RFC 6665 §4.1.3 substates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifierStatus {
    /// Not authorized yet: NOTIFYs say `pending` and carry no state.
    Pending,
    /// Authorized: NOTIFYs say `active` and carry the state.
    Active,
    /// The final NOTIFY (`terminated`) is queued or out.
    Terminating,
    /// Over.
    Done,
}

/// What a notifier reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifierEvent {
    /// The subscription is over: `reason` is the `reason` of the final NOTIFY (`timeout`,
    /// `deactivated`, `noresource`...), or `481`/`408`/`timeout` when the subscriber stopped
    /// answering NOTIFYs.
    Terminated {
        /// Why.
        reason: String,
    },
}

/// One subscription to one of our resources, as notifier (RFC 6665 §4.2).
#[derive(Debug)]
pub struct Notifier {
    config: NotifierConfig,
    dialog: Dialog,
    /// The `Event` header of the subscription, with its `id` (§8.2.1).
    event_header: String,
    status: NotifierStatus,
    expires_at: Instant,
    /// The body of the NOTIFYs: (Content-Type, bytes).
    content: Option<(String, Bytes)>,
    /// The reason of the final NOTIFY, once the subscription ends.
    end_reason: Option<String>,
    /// A NOTIFY is out (one at a time).
    in_flight: bool,
    /// The state changed while a NOTIFY was out: another one goes after its answer.
    notify_wanted: bool,
    requests: VecDeque<Message>,
    events: VecDeque<NotifierEvent>,
}

/// The 489 Bad Event answer to a SUBSCRIBE for a package not served (RFC 6665 §4.2.1.2),
/// with `Allow-Events` listing the ones that are.
pub fn bad_event(subscribe: &Message, served: &[&str]) -> Message {
    let mut r = response_to(subscribe, 489, None);
    if !served.is_empty() {
        r.push_header(HeaderName::AllowEvents, &served.join(", "));
    }
    r
}

/// The event package of a SUBSCRIBE or NOTIFY, lowercase.
pub fn event_package(message: &Message) -> Option<String> {
    message
        .get::<Event<'_>>()
        .and_then(Result::ok)
        .map(|e| e.package.to_ascii_lowercase())
}

impl Notifier {
    /// Takes an initial SUBSCRIBE (outside any dialog). `Ok`: the notifier and its 2xx (202
    /// when `authorized` is false, the subscription then `pending`), with the first NOTIFY
    /// already queued ([`Notifier::poll_request`]). `Err`: the answer refusing it (400, 423,
    /// 489), boxed. `local_tag` is our To tag, `local_contact` our Contact value; `content` the
    /// current state (`None`: NOTIFYs without a body).
    pub fn accept(
        now: Instant,
        config: NotifierConfig,
        subscribe: &Message,
        local_tag: &str,
        local_contact: &str,
        authorized: bool,
        content: Option<(String, Bytes)>,
    ) -> Result<(Notifier, Message), Box<Message>> {
        let Some(event) = subscribe.get::<Event<'_>>().and_then(Result::ok) else {
            return Err(Box::new(response_to(subscribe, 400, Some("Missing Event"))));
        };
        if !event.package.eq_ignore_ascii_case(&config.event) {
            return Err(Box::new(bad_event(subscribe, &[&config.event])));
        }
        let event_header = event.to_string();
        let granted = match grant(&config, subscribe) {
            Ok(Some(g)) => g,
            // An initial SUBSCRIBE with Expires 0 is a fetch (§4.4.3): one NOTIFY, terminated.
            Ok(None) => 0,
            Err(r) => return Err(r),
        };
        let Ok(mut dialog) = Dialog::uas(subscribe, local_tag, local_contact) else {
            return Err(Box::new(response_to(
                subscribe,
                400,
                Some("Bad Dialog Headers"),
            )));
        };
        dialog.state = DialogState::Confirmed;
        let mut ok = response_to(subscribe, if authorized { 200 } else { 202 }, None);
        ok.set_to_tag(&dialog.id.local_tag);
        ok.push_header(HeaderName::Contact, local_contact);
        ok.push_header(HeaderName::Expires, &granted.to_string());
        let mut n = Notifier {
            config,
            dialog,
            event_header,
            status: if authorized {
                NotifierStatus::Active
            } else {
                NotifierStatus::Pending
            },
            expires_at: now + Duration::from_secs(granted.into()),
            content,
            end_reason: None,
            in_flight: false,
            notify_wanted: false,
            requests: VecDeque::new(),
            events: VecDeque::new(),
        };
        if granted == 0 {
            n.end("timeout");
        }
        n.notify(now);
        Ok((n, ok))
    }

    /// The event package served.
    pub fn event(&self) -> &str {
        &self.config.event
    }

    /// Where it stands.
    pub fn status(&self) -> NotifierStatus {
        self.status
    }

    /// The subscription's dialog.
    pub fn dialog(&self) -> &Dialog {
        &self.dialog
    }

    /// Where its NOTIFYs go first: the first route, else the subscriber's Contact.
    pub fn next_hop(&self) -> crate::message::Uri<'static> {
        self.dialog.next_hop()
    }

    /// When it expires, unless refreshed.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether a request (a refresh SUBSCRIBE) belongs to this subscription's dialog.
    pub fn matches(&self, request: &Message) -> bool {
        self.dialog.matches_request(request)
    }

    /// The next NOTIFY to send.
    pub fn poll_request(&mut self) -> Option<Message> {
        self.requests.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NotifierEvent> {
        self.events.pop_front()
    }

    /// When [`Notifier::handle_timeout`] is next due: the expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        matches!(
            self.status,
            NotifierStatus::Active | NotifierStatus::Pending
        )
        .then_some(self.expires_at)
    }

    /// Runs the expiry: a final NOTIFY `terminated;reason=timeout` (§4.2.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.end("timeout");
            self.notify(now);
        }
    }

    /// The resource's state changed: NOTIFYs now carry `content`; one goes now (or after the
    /// one in flight).
    pub fn set_content(&mut self, now: Instant, content_type: &str, body: Bytes) {
        if !matches!(
            self.status,
            NotifierStatus::Active | NotifierStatus::Pending
        ) {
            return;
        }
        self.content = Some((content_type.to_owned(), body));
        self.notify(now);
    }

    /// Authorizes a `pending` subscription: a NOTIFY `active` with the state.
    pub fn authorize(&mut self, now: Instant) {
        if self.status == NotifierStatus::Pending {
            self.status = NotifierStatus::Active;
            self.notify(now);
        }
    }

    /// Ends the subscription with a final NOTIFY `terminated;reason=<reason>` (`deactivated`,
    /// `noresource`, `rejected`...).
    pub fn terminate(&mut self, now: Instant, reason: &str) {
        if matches!(
            self.status,
            NotifierStatus::Active | NotifierStatus::Pending
        ) {
            self.end(reason);
            self.notify(now);
        }
    }

    /// A SUBSCRIBE in the subscription's dialog ([`Notifier::matches`]): the answer to send.
    /// A refresh is granted like the first one and followed by a NOTIFY; `Expires: 0` ends
    /// the subscription with a final NOTIFY (`terminated;reason=timeout`, §4.2.1.4).
    pub fn handle_subscribe(&mut self, now: Instant, subscribe: &Message) -> Message {
        if !matches!(
            self.status,
            NotifierStatus::Active | NotifierStatus::Pending
        ) {
            return response_to(subscribe, 481, None);
        }
        if self.dialog.receive_request(subscribe).is_err() {
            return response_to(subscribe, 500, Some("CSeq Out of Order"));
        }
        let granted = match grant(&self.config, subscribe) {
            Ok(Some(g)) => g,
            Ok(None) => 0,
            Err(r) => return *r,
        };
        let mut ok = response_to(subscribe, 200, None);
        ok.push_header(HeaderName::Expires, &granted.to_string());
        if granted == 0 {
            self.end("timeout");
        } else {
            self.expires_at = now + Duration::from_secs(granted.into());
        }
        self.notify(now);
        ok
    }

    /// The final answer to one of its NOTIFYs. 481 and 408 end the subscription (§4.2.2).
    pub fn handle_response(&mut self, now: Instant, response: &Message) {
        let status = response.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        self.in_flight = false;
        if matches!(status, 481 | 408) {
            self.gone(status.to_string());
            return;
        }
        self.next(now);
    }

    /// One of its NOTIFYs got no answer (Timer F) or could not be sent: the subscriber is
    /// gone (§4.2.2).
    pub fn handle_failure(&mut self, _now: Instant) {
        self.in_flight = false;
        self.gone("timeout".to_owned());
    }

    /// After a NOTIFY's answer: the final one done, or the state that changed meanwhile.
    fn next(&mut self, now: Instant) {
        if self.status == NotifierStatus::Terminating {
            if self.notify_wanted {
                self.notify_wanted = false;
                self.send_notify(now);
            } else {
                self.finish();
            }
            return;
        }
        if self.notify_wanted {
            self.notify_wanted = false;
            self.send_notify(now);
        }
    }

    fn gone(&mut self, reason: String) {
        if self.status == NotifierStatus::Done {
            return;
        }
        self.end_reason.get_or_insert(reason);
        self.finish();
    }

    fn finish(&mut self) {
        self.status = NotifierStatus::Done;
        self.notify_wanted = false;
        let reason = self.end_reason.clone().unwrap_or_default();
        self.events.push_back(NotifierEvent::Terminated { reason });
    }

    fn end(&mut self, reason: &str) {
        self.status = NotifierStatus::Terminating;
        self.end_reason = Some(reason.to_owned());
    }

    /// A NOTIFY with the current state, now or after the one in flight.
    fn notify(&mut self, now: Instant) {
        if self.in_flight {
            self.notify_wanted = true;
        } else {
            self.send_notify(now);
        }
    }

    fn send_notify(&mut self, now: Instant) {
        let mut request = self.dialog.request(Method::Notify);
        request.set_header(HeaderName::Event, &self.event_header);
        let left = self.expires_at.saturating_duration_since(now).as_secs();
        let state = match self.status {
            NotifierStatus::Active => format!("active;expires={left}"),
            NotifierStatus::Pending => format!("pending;expires={left}"),
            _ => format!(
                "terminated;reason={}",
                self.end_reason.as_deref().unwrap_or("timeout")
            ),
        };
        request.set_header(HeaderName::SubscriptionState, &state);
        // A pending subscription is told nothing of the resource (§4.2.1.2); the final
        // NOTIFY carries the last state.
        if self.status != NotifierStatus::Pending
            && let Some((content_type, body)) = &self.content
        {
            request.set_body(Some(content_type), body.clone());
        }
        self.in_flight = true;
        self.requests.push_back(request);
    }
}

/// The duration to grant a SUBSCRIBE (§4.2.1.1): `Ok(None)` for `Expires: 0`, `Err(423)`
/// below the minimum.
fn grant(config: &NotifierConfig, subscribe: &Message) -> Result<Option<u32>, Box<Message>> {
    let asked = match subscribe.header(HeaderName::Expires) {
        None => config.default_expires,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
            Err(_) => return Err(Box::new(response_to(subscribe, 400, Some("Bad Expires")))),
        },
    };
    if asked == 0 {
        return Ok(None);
    }
    if asked < config.min_expires {
        let mut r = response_to(subscribe, 423, None);
        r.push_header(HeaderName::MinExpires, &config.min_expires.to_string());
        return Err(Box::new(r));
    }
    Ok(Some(asked.min(config.max_expires.max(config.min_expires))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::typed::SubscriptionState;
    use crate::message::{RequestBuilder, Uri};

    #[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
    fn start() -> Instant {
        Instant::now()
    }

    fn subscribe(event: &str, expires: Option<u32>) -> Message {
        let uri = Uri::parse("sip:bob@192.0.2.2").unwrap();
        let mut b = RequestBuilder::new(Method::Subscribe, &uri)
            .header(
                HeaderName::Via,
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs1",
            )
            .header(HeaderName::From, "<sip:alice@example.com>;tag=w1")
            .header(HeaderName::To, "<sip:bob@example.com>")
            .header(HeaderName::Contact, "<sip:alice@192.0.2.1:5060>")
            .header(HeaderName::Event, event)
            .call_id("s1@watcher")
            .cseq(1);
        if let Some(e) = expires {
            b = b.header(HeaderName::Expires, &e.to_string());
        }
        b.build()
    }

    fn refresh(seq: u32, expires: u32) -> Message {
        let mut r = subscribe("dialog", Some(expires));
        r.set_header(HeaderName::To, "<sip:bob@example.com>;tag=n1");
        r.set_header(HeaderName::CSeq, &format!("{seq} SUBSCRIBE"));
        r
    }

    fn state(m: &Message) -> String {
        m.get::<SubscriptionState<'_>>()
            .unwrap()
            .unwrap()
            .to_string()
    }

    fn body() -> Option<(String, Bytes)> {
        Some((
            "application/dialog-info+xml".to_owned(),
            Bytes::from_static(b"<dialog-info/>"),
        ))
    }

    fn accept(now: Instant, expires: Option<u32>) -> (Notifier, Message) {
        Notifier::accept(
            now,
            NotifierConfig::new("dialog"),
            &subscribe("dialog", expires),
            "n1",
            "<sip:bob@192.0.2.2>",
            true,
            body(),
        )
        .expect("accepted")
    }

    #[test]
    fn accepts_notifies_at_once_and_on_change() {
        let t0 = start();
        let (mut n, ok) = accept(t0, Some(600));
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.to().unwrap().unwrap().tag(), Some("n1"));
        assert_eq!(ok.header(HeaderName::Expires), Some("600"));
        let first = n.poll_request().expect("the first NOTIFY at once");
        assert_eq!(first.method(), Some(&Method::Notify));
        assert_eq!(state(&first), "active;expires=600");
        assert_eq!(first.header(HeaderName::Event), Some("dialog"));
        assert_eq!(first.uri().unwrap().to_string(), "sip:alice@192.0.2.1:5060");
        assert_eq!(first.from().unwrap().unwrap().tag(), Some("n1"));
        assert_eq!(first.to().unwrap().unwrap().tag(), Some("w1"));
        assert_eq!(first.body().as_ref(), b"<dialog-info/>");
        // Two changes while it is out: one NOTIFY after its answer, with the newest state.
        let t1 = t0 + Duration::from_secs(100);
        n.set_content(t1, "application/dialog-info+xml", Bytes::from_static(b"a"));
        n.set_content(t1, "application/dialog-info+xml", Bytes::from_static(b"b"));
        assert_eq!(n.poll_request(), None);
        n.handle_response(t1, &response_to(&first, 200, None));
        let second = n.poll_request().expect("the newest state");
        assert_eq!(second.body().as_ref(), b"b");
        assert_eq!(state(&second), "active;expires=500");
        assert_eq!(second.cseq().unwrap().unwrap().seq, 2);
        assert_eq!(n.poll_request(), None);
    }

    #[test]
    fn refuses_bad_event_brief_interval_and_caps_long_ones() {
        let t0 = start();
        let c = NotifierConfig::new("dialog");
        let refused = |s: &Message| {
            Notifier::accept(t0, c.clone(), s, "n1", "<sip:b@h>", true, None).expect_err("refused")
        };
        let r = refused(&subscribe("presence", Some(600)));
        assert_eq!(r.status(), Some(489));
        assert_eq!(r.header(HeaderName::AllowEvents), Some("dialog"));
        let r = refused(&subscribe("dialog", Some(10)));
        assert_eq!(r.status(), Some(423));
        assert_eq!(r.header(HeaderName::MinExpires), Some("60"));
        let mut no_event = subscribe("dialog", Some(600));
        no_event.remove_header(HeaderName::Event);
        assert_eq!(refused(&no_event).status(), Some(400));
        let mut bad = subscribe("dialog", None);
        bad.set_header(HeaderName::Expires, "soon");
        assert_eq!(refused(&bad).status(), Some(400));
        let (_, ok) = accept(t0, Some(1_000_000));
        assert_eq!(ok.header(HeaderName::Expires), Some("86400"));
        let (_, ok) = accept(t0, None);
        assert_eq!(ok.header(HeaderName::Expires), Some("3600"));
    }

    #[test]
    fn refresh_extends_and_expiry_sends_terminated_timeout() {
        let t0 = start();
        let (mut n, _) = accept(t0, Some(120));
        let first = n.poll_request().unwrap();
        n.handle_response(t0, &response_to(&first, 200, None));
        assert_eq!(n.poll_timeout(), Some(t0 + Duration::from_secs(120)));
        let t1 = t0 + Duration::from_secs(90);
        let ok = n.handle_subscribe(t1, &refresh(2, 120));
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.header(HeaderName::Expires), Some("120"));
        let after = n.poll_request().expect("a NOTIFY after the refresh");
        assert_eq!(state(&after), "active;expires=120");
        n.handle_response(t1, &response_to(&after, 200, None));
        assert_eq!(n.poll_timeout(), Some(t1 + Duration::from_secs(120)));
        // A refresh too brief is refused and changes nothing.
        assert_eq!(n.handle_subscribe(t1, &refresh(3, 5)).status(), Some(423));
        let t2 = t1 + Duration::from_secs(120);
        n.handle_timeout(t2);
        let last = n.poll_request().expect("the final NOTIFY");
        assert_eq!(state(&last), "terminated;reason=timeout");
        assert_eq!(n.status(), NotifierStatus::Terminating);
        n.handle_response(t2, &response_to(&last, 200, None));
        assert_eq!(n.status(), NotifierStatus::Done);
        assert_eq!(
            n.poll_event(),
            Some(NotifierEvent::Terminated {
                reason: "timeout".to_owned()
            })
        );
        assert_eq!(n.poll_timeout(), None);
        // A refresh after the end: no such subscription.
        assert_eq!(n.handle_subscribe(t2, &refresh(4, 120)).status(), Some(481));
    }

    #[test]
    fn unsubscribe_and_481_end_it() {
        let t0 = start();
        let (mut n, _) = accept(t0, Some(600));
        let first = n.poll_request().unwrap();
        n.handle_response(t0, &response_to(&first, 200, None));
        let ok = n.handle_subscribe(t0, &refresh(2, 0));
        assert_eq!(ok.header(HeaderName::Expires), Some("0"));
        let last = n.poll_request().expect("the final NOTIFY");
        assert_eq!(state(&last), "terminated;reason=timeout");
        assert_eq!(last.body().as_ref(), b"<dialog-info/>");
        // Once it is ending, a SUBSCRIBE finds no subscription.
        assert_eq!(n.handle_subscribe(t0, &refresh(3, 600)).status(), Some(481));

        let (mut n, _) = accept(t0, Some(600));
        let first = n.poll_request().unwrap();
        n.handle_response(t0, &response_to(&first, 481, None));
        assert_eq!(n.status(), NotifierStatus::Done);
        assert_eq!(
            n.poll_event(),
            Some(NotifierEvent::Terminated {
                reason: "481".to_owned()
            })
        );
        let (mut n, _) = accept(t0, Some(600));
        n.poll_request().unwrap();
        n.handle_failure(t0);
        assert_eq!(n.status(), NotifierStatus::Done);
    }

    #[test]
    fn pending_until_authorized_and_fetch() {
        let t0 = start();
        let (mut n, ok) = Notifier::accept(
            t0,
            NotifierConfig::new("dialog"),
            &subscribe("dialog", Some(600)),
            "n1",
            "<sip:bob@192.0.2.2>",
            false,
            body(),
        )
        .unwrap();
        assert_eq!(ok.status(), Some(202));
        let first = n.poll_request().unwrap();
        assert_eq!(state(&first), "pending;expires=600");
        assert!(first.body().is_empty(), "nothing told before authorization");
        n.handle_response(t0, &response_to(&first, 200, None));
        n.authorize(t0);
        let second = n.poll_request().unwrap();
        assert_eq!(state(&second), "active;expires=600");
        assert!(!second.body().is_empty());
        // A fetch (Expires 0): one NOTIFY, terminated.
        let (mut f, ok) = accept(t0, Some(0));
        assert_eq!(ok.header(HeaderName::Expires), Some("0"));
        let only = f.poll_request().unwrap();
        assert_eq!(state(&only), "terminated;reason=timeout");
        f.handle_response(t0, &response_to(&only, 200, None));
        assert_eq!(f.status(), NotifierStatus::Done);
    }
}
