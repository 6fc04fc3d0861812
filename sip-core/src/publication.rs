//! Event state publication (RFC 3903): the publisher side, as a sans-IO state machine.
//!
//! A [`Publication`] keeps one piece of event state (a presence document, say) published at
//! an event state compositor (a presence server). The caller builds a PUBLISH template
//! (Request-URI, From with its tag, To, Call-ID; the machine sets `Event`, `Expires`,
//! CSeq and the body), and from then on the machine:
//!
//! ```text
//!   publish(body)                2xx (SIP-ETag)
//!  ──────────────► Publishing ───────────────────► Published ──┐ refresh at expiry - margin:
//!   initial: body,     ▲   412: again, fresh          │   ▲    │ SIP-If-Match, no body
//!   no SIP-If-Match    └────────────────────────────  │   └────┘ (§4.2)
//!                                                     │ publish(body): SIP-If-Match + body
//!                                  remove(): SIP-If-Match, Expires: 0, no body (§4.5)
//!                                                     ▼
//!                                                 Removing ──► Idle
//! ```
//!
//! - gives out the PUBLISHes to send ([`Publication::poll_request`]): the initial one with the
//!   body and no `SIP-If-Match` (§4.1), refreshes with the entity-tag and no body (§4.2), a
//!   modification with the entity-tag and the new body (§4.4), a removal with `Expires: 0`
//!   (§4.5); one at a time, later wishes wait for the answer to the one out;
//! - takes their final responses ([`Publication::handle_response`]): a 2xx's `SIP-ETag` and
//!   `Expires` set the next refresh; 412 Conditional Request Failed (the compositor lost
//!   the state, §6) starts over with an initial PUBLISH; 423 is retried with the
//!   `Min-Expires`; refusals that asking again will not change (403, 404, 489...) end it;
//!   other failures are retried later;
//! - keeps time ([`Publication::poll_timeout`], [`Publication::handle_timeout`]).
//!
//! Refresh time: as for subscriptions, `expires - min(expires / 2, 32 s)`.
//!
//! Transactions (retransmission, digest challenges, failover) are the caller's: it sends each
//! request in a client transaction, answers a 401/407 by sending it again with credentials
//! and the next CSeq, and reports the final response with the request it answers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::typed::{CSeq, Method};
use crate::message::{HeaderName, Message};

/// The most a refresh goes ahead of the expiry: 64*T1, one non-INVITE transaction timeout.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(32);

/// How long to wait before publishing again after a failure that does not say when (a
/// timeout, a 5xx without `Retry-After`).
pub const DEFAULT_RETRY: Duration = Duration::from_secs(60);

/// What a publication publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationConfig {
    /// The event package (`Event`), e.g. `presence`.
    pub event: String,
    /// The body type, e.g. `application/pidf+xml`.
    pub content_type: String,
    /// The duration asked for (`Expires`), in seconds.
    pub expires: u32,
}

/// Where a publication stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicationStatus {
    /// Nothing published (not yet, or removed, or refused for good).
    Idle,
    /// An initial or modifying PUBLISH is out, or waits to be tried again.
    Publishing,
    /// Published; refreshed before it expires.
    Published,
    /// A removal is out.
    Removing,
}

/// What a publication reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicationEvent {
    /// The compositor took a PUBLISH (initial, refresh or modification).
    Published {
        /// The entity-tag it gave (`SIP-ETag`), if any.
        etag: Option<String>,
        /// The duration granted, in seconds.
        expires: u32,
    },
    /// A PUBLISH failed.
    Failed {
        /// The status code, or `timeout`.
        reason: String,
        /// When it is tried again; `None`: not until [`Publication::publish`] is called.
        retry_in: Option<Duration>,
    },
    /// The state was removed (the answer to [`Publication::remove`]).
    Removed,
}

/// What the next PUBLISH carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The body, no entity-tag.
    Initial,
    /// The entity-tag, no body.
    Refresh,
    /// The entity-tag and the body.
    Modify,
    /// The entity-tag, `Expires: 0`.
    Remove,
}

/// One piece of event state, published and kept fresh (RFC 3903 §4).
#[derive(Debug)]
pub struct Publication {
    config: PublicationConfig,
    status: PublicationStatus,
    template: Message,
    /// The state to publish (`None` once removed).
    body: Option<Bytes>,
    /// The entity-tag of the published state.
    etag: Option<String>,
    /// The CSeq of the last PUBLISH sent or answered.
    cseq: u32,
    /// The `Expires` of the next PUBLISH (after a 423, the `Min-Expires`).
    expires: u32,
    /// A PUBLISH is out.
    in_flight: bool,
    /// What to send once the PUBLISH out is answered.
    wanted: Option<Kind>,
    expires_at: Option<Instant>,
    refresh_at: Option<Instant>,
    retry_at: Option<Instant>,
    requests: VecDeque<Message>,
    events: VecDeque<PublicationEvent>,
}

impl Publication {
    /// A publication with nothing published yet; `template` is a PUBLISH with Request-URI,
    /// From with tag, To and Call-ID.
    pub fn new(config: PublicationConfig, template: Message) -> Publication {
        let cseq = template
            .cseq()
            .and_then(Result::ok)
            .map_or(0, |c| c.seq.saturating_sub(1));
        Publication {
            expires: config.expires,
            config,
            status: PublicationStatus::Idle,
            template,
            body: None,
            etag: None,
            cseq,
            in_flight: false,
            wanted: None,
            expires_at: None,
            refresh_at: None,
            retry_at: None,
            requests: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Where it stands.
    pub fn status(&self) -> PublicationStatus {
        self.status
    }

    /// The entity-tag of the published state, if any.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The next PUBLISH to send.
    pub fn poll_request(&mut self) -> Option<Message> {
        self.requests.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PublicationEvent> {
        self.events.pop_front()
    }

    /// When [`Publication::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.refresh_at, self.expires_at, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Publishes `body`: an initial PUBLISH, or a modification of the published state
    /// (§4.4); after the PUBLISH out when one is.
    pub fn publish(&mut self, now: Instant, body: Bytes) {
        self.body = Some(body);
        self.retry_at = None;
        let kind = if self.etag.is_some() {
            Kind::Modify
        } else {
            Kind::Initial
        };
        if self.status != PublicationStatus::Published {
            self.status = PublicationStatus::Publishing;
        }
        self.request(now, kind);
    }

    /// Removes the published state (§4.5: `Expires: 0` with the entity-tag); with none
    /// published, nothing is sent and it is [`PublicationStatus::Idle`] at once.
    pub fn remove(&mut self, now: Instant) {
        self.body = None;
        self.retry_at = None;
        self.refresh_at = None;
        if self.in_flight {
            self.status = PublicationStatus::Removing;
            self.wanted = Some(Kind::Remove);
            return;
        }
        if self.etag.is_some() {
            self.status = PublicationStatus::Removing;
            self.send(now, Kind::Remove);
            return;
        }
        self.idle();
        self.events.push_back(PublicationEvent::Removed);
    }

    /// The final response to one of its PUBLISHes (`request`: the one it answers, as sent,
    /// with credentials and CSeq after a challenge).
    pub fn handle_response(&mut self, now: Instant, request: &Message, response: &Message) {
        let status = response.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        self.in_flight = false;
        if let Some(Ok(c)) = request.cseq() {
            self.cseq = self.cseq.max(c.seq);
        }
        let asked = request
            .header(HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(self.expires);
        let kind = kind_of(request);
        if (200..300).contains(&status) {
            if asked == 0 {
                self.etag = None;
                self.expires_at = None;
                self.refresh_at = None;
                if self.wanted == Some(Kind::Remove) || self.body.is_none() {
                    self.wanted = None;
                    self.idle();
                    self.events.push_back(PublicationEvent::Removed);
                    return;
                }
            } else {
                // §4.1: the 2xx's Expires may be shorter than asked; its SIP-ETag names the
                // state from now on.
                let granted = response
                    .header(HeaderName::Expires)
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .unwrap_or(asked)
                    .min(asked.max(1));
                self.etag = response
                    .header(HeaderName::SipEtag)
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty());
                self.expires = self.config.expires;
                self.schedule(now, granted);
                self.status = PublicationStatus::Published;
                self.events.push_back(PublicationEvent::Published {
                    etag: self.etag.clone(),
                    expires: granted,
                });
            }
            if let Some(next) = self.wanted.take() {
                let next = match next {
                    Kind::Remove if self.etag.is_none() => {
                        self.idle();
                        self.events.push_back(PublicationEvent::Removed);
                        return;
                    }
                    Kind::Modify | Kind::Initial if self.etag.is_none() => Kind::Initial,
                    Kind::Initial => Kind::Modify,
                    other => other,
                };
                if next == Kind::Remove {
                    self.status = PublicationStatus::Removing;
                }
                self.send(now, next);
            }
            return;
        }
        if kind == Kind::Remove || self.wanted == Some(Kind::Remove) {
            // The state goes away with its expiry anyway.
            self.wanted = None;
            self.etag = None;
            self.idle();
            self.events.push_back(PublicationEvent::Removed);
            return;
        }
        match status {
            // §6: the compositor has no state with that entity-tag; publish afresh.
            412 => {
                self.etag = None;
                self.wanted = None;
                self.expires_at = None;
                self.refresh_at = None;
                if self.body.is_some() {
                    self.status = PublicationStatus::Publishing;
                    self.send(now, Kind::Initial);
                } else {
                    self.idle();
                }
            }
            // Interval Too Brief (§4.1): again with the Min-Expires.
            423 => {
                let min = response
                    .header(HeaderName::MinExpires)
                    .and_then(|e| e.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > asked => {
                        self.expires = min;
                        self.config.expires = min;
                        let again = self.wanted.take().unwrap_or(kind);
                        self.send(now, again);
                    }
                    _ => self.fail(now, "423".to_owned(), None),
                }
            }
            403 | 404 | 405 | 489 | 501 | 603 => self.fail(now, status.to_string(), None),
            _ => {
                // A failed refresh leaves the state valid until it expires.
                if kind == Kind::Refresh && self.expires_at.is_some_and(|t| t > now) {
                    let retry =
                        crate::message::typed::RetryAfter::of(response).unwrap_or(DEFAULT_RETRY);
                    self.refresh_at = self.expires_at.map(|e| e.min(now + retry));
                    self.events.push_back(PublicationEvent::Failed {
                        reason: status.to_string(),
                        retry_in: Some(retry),
                    });
                    return;
                }
                let retry =
                    crate::message::typed::RetryAfter::of(response).unwrap_or(DEFAULT_RETRY);
                self.fail(now, status.to_string(), Some(retry));
            }
        }
    }

    /// No final response came to the PUBLISH (`request`): handled like a 408.
    pub fn handle_failure(&mut self, now: Instant, request: &Message) {
        let mut response = crate::message::response_to(request, 408, None);
        response.remove_header(HeaderName::Expires);
        self.handle_response(now, request, &response);
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.expires_at.is_some_and(|t| t <= now) {
            // Not refreshed in time: the compositor dropped it; publish afresh.
            self.expires_at = None;
            self.refresh_at = None;
            self.etag = None;
            if self.body.is_some() && !self.in_flight {
                self.status = PublicationStatus::Publishing;
                self.send(now, Kind::Initial);
            }
            return;
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.request(now, Kind::Refresh);
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            if self.body.is_some() {
                let kind = if self.etag.is_some() {
                    Kind::Modify
                } else {
                    Kind::Initial
                };
                self.request(now, kind);
            }
        }
    }

    fn idle(&mut self) {
        self.status = PublicationStatus::Idle;
        self.expires_at = None;
        self.refresh_at = None;
        self.retry_at = None;
    }

    fn fail(&mut self, now: Instant, reason: String, retry_in: Option<Duration>) {
        self.wanted = None;
        self.expires_at = None;
        self.refresh_at = None;
        self.etag = None;
        self.events
            .push_back(PublicationEvent::Failed { reason, retry_in });
        match retry_in {
            Some(d) => {
                self.status = PublicationStatus::Publishing;
                self.retry_at = Some(now + d);
            }
            None => {
                self.body = None;
                self.idle();
            }
        }
    }

    fn schedule(&mut self, now: Instant, seconds: u32) {
        let granted = Duration::from_secs(seconds.into());
        self.expires_at = Some(now + granted);
        let margin = (granted / 2).min(REFRESH_MARGIN);
        self.refresh_at = Some(now + granted - margin);
    }

    /// Sends `kind` now, or once the PUBLISH out is answered (a later wish replaces an
    /// earlier one, except that a body wins over a refresh).
    fn request(&mut self, now: Instant, kind: Kind) {
        if self.in_flight {
            self.wanted = match (self.wanted, kind) {
                (Some(Kind::Modify | Kind::Initial), Kind::Refresh) => self.wanted,
                _ => Some(kind),
            };
            return;
        }
        self.send(now, kind);
    }

    fn send(&mut self, _now: Instant, kind: Kind) {
        let kind = match kind {
            Kind::Refresh | Kind::Modify if self.etag.is_none() => Kind::Initial,
            k => k,
        };
        let mut request = self.template.clone();
        self.cseq = self.cseq.saturating_add(1);
        request.set(&CSeq {
            seq: self.cseq,
            method: Method::Publish,
        });
        request.set_header(HeaderName::Event, &self.config.event);
        let expires = if kind == Kind::Remove {
            0
        } else {
            self.expires
        };
        request.set_header(HeaderName::Expires, &expires.to_string());
        request.remove_header(HeaderName::SipIfMatch);
        if kind != Kind::Initial
            && let Some(etag) = &self.etag
        {
            request.set_header(HeaderName::SipIfMatch, etag);
        }
        match (kind, &self.body) {
            (Kind::Initial | Kind::Modify, Some(body)) => {
                request.set_body(Some(&self.config.content_type), body.clone());
            }
            _ => {
                request.remove_header(HeaderName::ContentType);
                request.set_body(None, Bytes::new());
            }
        }
        self.in_flight = true;
        self.requests.push_back(request);
    }
}

/// What a PUBLISH that was sent is, from its headers.
fn kind_of(request: &Message) -> Kind {
    let expires = request
        .header(HeaderName::Expires)
        .and_then(|e| e.trim().parse::<u32>().ok());
    let if_match = request.header(HeaderName::SipIfMatch).is_some();
    match (if_match, request.body().is_empty(), expires) {
        (true, _, Some(0)) => Kind::Remove,
        (true, true, _) => Kind::Refresh,
        (true, false, _) => Kind::Modify,
        (false, _, _) => Kind::Initial,
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

    fn config() -> PublicationConfig {
        PublicationConfig {
            event: "presence".to_owned(),
            content_type: "application/pidf+xml".to_owned(),
            expires: 3600,
        }
    }

    fn template() -> Message {
        let uri = Uri::parse("sip:alice@example.com").unwrap();
        RequestBuilder::new(Method::Publish, &uri)
            .header(
                HeaderName::Via,
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            )
            .header(HeaderName::From, "<sip:alice@example.com>;tag=a1")
            .header(HeaderName::To, "<sip:alice@example.com>")
            .call_id("p1@tincan")
            .cseq(1)
            .build()
    }

    fn ok(request: &Message, etag: &str, expires: u32) -> Message {
        let mut r = response_to(request, 200, None);
        r.set_to_tag("s1");
        r.push_header(HeaderName::SipEtag, etag);
        r.push_header(HeaderName::Expires, &expires.to_string());
        r
    }

    fn events(p: &mut Publication) -> Vec<PublicationEvent> {
        std::iter::from_fn(|| p.poll_event()).collect()
    }

    fn run(p: &mut Publication, until: Instant) {
        while let Some(t) = p.poll_timeout() {
            if t > until {
                break;
            }
            p.handle_timeout(t);
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn publishes_refreshes_with_if_match_modifies_and_removes() {
        let t0 = start();
        let mut p = Publication::new(config(), template());
        assert_eq!(p.poll_request(), None);
        p.publish(t0, Bytes::from_static(b"<presence/>"));
        let first = p.poll_request().expect("the initial PUBLISH");
        assert_eq!(first.header(HeaderName::Event), Some("presence"));
        assert_eq!(first.header(HeaderName::Expires), Some("3600"));
        assert_eq!(first.header(HeaderName::SipIfMatch), None);
        assert_eq!(
            first.header(HeaderName::ContentType),
            Some("application/pidf+xml")
        );
        assert_eq!(first.body().as_ref(), b"<presence/>");
        assert_eq!(first.cseq().unwrap().unwrap().seq, 1);
        // Granted less than asked.
        p.handle_response(t0, &first, &ok(&first, "e1", 120));
        assert_eq!(p.status(), PublicationStatus::Published);
        assert_eq!(
            events(&mut p),
            vec![PublicationEvent::Published {
                etag: Some("e1".to_owned()),
                expires: 120
            }]
        );
        // Refresh at 120 - 32 s: the entity-tag, no body.
        assert_eq!(p.poll_timeout(), Some(t0 + secs(88)));
        run(&mut p, t0 + secs(88));
        let refresh = p.poll_request().expect("a refresh");
        assert_eq!(refresh.header(HeaderName::SipIfMatch), Some("e1"));
        assert_eq!(refresh.header(HeaderName::Expires), Some("3600"));
        assert!(refresh.body().is_empty());
        assert_eq!(refresh.header(HeaderName::ContentType), None);
        assert_eq!(refresh.cseq().unwrap().unwrap().seq, 2);
        let t1 = t0 + secs(88);
        p.handle_response(t1, &refresh, &ok(&refresh, "e2", 120));
        assert_eq!(p.etag(), Some("e2"));
        assert_eq!(p.poll_timeout(), Some(t1 + secs(88)));
        // A modification: the new entity-tag and the body.
        let t2 = t1 + secs(10);
        p.publish(t2, Bytes::from_static(b"<presence>busy</presence>"));
        let modify = p.poll_request().expect("a modification");
        assert_eq!(modify.header(HeaderName::SipIfMatch), Some("e2"));
        assert_eq!(modify.body().as_ref(), b"<presence>busy</presence>");
        // Removed while the modification is out: after its answer.
        p.remove(t2);
        assert_eq!(p.poll_request(), None);
        p.handle_response(t2, &modify, &ok(&modify, "e3", 120));
        let remove = p.poll_request().expect("a removal");
        assert_eq!(remove.header(HeaderName::SipIfMatch), Some("e3"));
        assert_eq!(remove.header(HeaderName::Expires), Some("0"));
        assert!(remove.body().is_empty());
        assert_eq!(remove.cseq().unwrap().unwrap().seq, 4);
        let mut gone = response_to(&remove, 200, None);
        gone.push_header(HeaderName::Expires, "0");
        p.handle_response(t2, &remove, &gone);
        assert_eq!(p.status(), PublicationStatus::Idle);
        assert!(events(&mut p).contains(&PublicationEvent::Removed));
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.poll_request(), None);
    }

    #[test]
    fn conditional_request_failed_publishes_afresh() {
        let t0 = start();
        let mut p = Publication::new(config(), template());
        p.publish(t0, Bytes::from_static(b"state"));
        let first = p.poll_request().unwrap();
        p.handle_response(t0, &first, &ok(&first, "e1", 3600));
        run(&mut p, t0 + secs(3568));
        let refresh = p.poll_request().expect("a refresh at 3600 - 32 s");
        assert_eq!(refresh.header(HeaderName::SipIfMatch), Some("e1"));
        // The compositor restarted and lost the state.
        let t1 = t0 + secs(3568);
        p.handle_response(t1, &refresh, &response_to(&refresh, 412, None));
        let again = p.poll_request().expect("an initial PUBLISH again");
        assert_eq!(again.header(HeaderName::SipIfMatch), None);
        assert_eq!(again.body().as_ref(), b"state");
        assert_eq!(again.cseq().unwrap().unwrap().seq, 3);
        p.handle_response(t1, &again, &ok(&again, "f1", 3600));
        assert_eq!(p.etag(), Some("f1"));
        assert_eq!(p.status(), PublicationStatus::Published);
    }

    #[test]
    fn interval_too_brief_and_failures() {
        let t0 = start();
        let mut p = Publication::new(config(), template());
        p.publish(t0, Bytes::from_static(b"state"));
        let first = p.poll_request().unwrap();
        let mut brief = response_to(&first, 423, None);
        brief.push_header(HeaderName::MinExpires, "7200");
        p.handle_response(t0, &first, &brief);
        let again = p.poll_request().expect("again with Min-Expires");
        assert_eq!(again.header(HeaderName::Expires), Some("7200"));
        assert_eq!(again.body().as_ref(), b"state");
        // A 503 with Retry-After: tried again then.
        let mut busy = response_to(&again, 503, None);
        busy.push_header(HeaderName::RetryAfter, "30");
        p.handle_response(t0, &again, &busy);
        assert_eq!(
            events(&mut p),
            vec![PublicationEvent::Failed {
                reason: "503".to_owned(),
                retry_in: Some(secs(30))
            }]
        );
        assert_eq!(p.poll_timeout(), Some(t0 + secs(30)));
        run(&mut p, t0 + secs(30));
        let third = p.poll_request().expect("a retry");
        assert_eq!(third.header(HeaderName::Expires), Some("7200"));
        // 489: the server does not do this event package; no more tries.
        p.handle_response(t0 + secs(30), &third, &response_to(&third, 489, None));
        assert_eq!(p.status(), PublicationStatus::Idle);
        assert_eq!(p.poll_timeout(), None);
        // A timed-out refresh leaves the state until its expiry; then an initial PUBLISH.
        let mut p = Publication::new(config(), template());
        p.publish(t0, Bytes::from_static(b"state"));
        let first = p.poll_request().unwrap();
        p.handle_response(t0, &first, &ok(&first, "e1", 100));
        run(&mut p, t0 + secs(68));
        let refresh = p.poll_request().unwrap();
        p.handle_failure(t0 + secs(99), &refresh);
        assert_eq!(p.status(), PublicationStatus::Published);
        run(&mut p, t0 + secs(100));
        let fresh = p.poll_request().expect("an initial PUBLISH");
        assert_eq!(fresh.header(HeaderName::SipIfMatch), None);
        assert_eq!(fresh.body().as_ref(), b"state");
    }

    #[test]
    fn remove_with_nothing_published_sends_nothing() {
        let t0 = start();
        let mut p = Publication::new(config(), template());
        p.remove(t0);
        assert_eq!(p.poll_request(), None);
        assert_eq!(events(&mut p), vec![PublicationEvent::Removed]);
    }
}
