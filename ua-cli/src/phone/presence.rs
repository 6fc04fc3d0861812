//! Presence (RFC 3856): publishing the user's status and watching contacts'.
//!
//! **Publishing.** [`PhoneCore::set_presence`] publishes an account's status
//! ([`PresenceStatus`]: available, away, busy, offline, with an optional note) to its presence
//! server as a PIDF document (RFC 3863, with the RPID activity of away and busy, RFC 4480)
//! in a PUBLISH (RFC 3903, the sans-IO [`Publication`]): where the account's requests go,
//! answered 401/407 with its credentials, refreshed with `SIP-If-Match` before it expires,
//! published afresh after a 412. An account with
//! [`AccountConfig::presence`](super::AccountConfig::presence) publishes `available` once it
//! registers; while any call is up it publishes `busy` with `<rpid:on-the-phone/>` (and the
//! note "On the phone" unless the user set one), and its own status again when the calls are
//! over (not while the user chose `offline`). Unregistering the account (or the phone's
//! shutdown) removes the published state (`Expires: 0`).
//!
//! **Watching.** [`PhoneCore::watch_presence`] subscribes to a contact's `presence` (RFC 3856
//! §6: `Event: presence`, `Accept: application/pidf+xml`) with the RFC 6665 subscriber of
//! `tincan_sip::dialog::subscription`, once the account is registered (the SUBSCRIBE's
//! Contact is the address its registrar sees); each NOTIFY's document comes as
//! [`PresenceEvent::Changed`]. [`AccountConfig::watch`](super::AccountConfig::watch) lists
//! contacts watched from the start. A document that cannot be read is answered 200 all the
//! same (the subscription is fine) and reported as [`PresenceEvent::Unreadable`].

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tincan_sip::dialog::subscription::{
    Subscription, SubscriptionConfig, SubscriptionEvent, SubscriptionStatus,
};
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, Uri, response_to};
pub use tincan_sip::pidf::Status as PresenceStatus;
use tincan_sip::pidf::{self, Activity, PresenceDocument};
use tincan_sip::publication::{Publication, PublicationConfig, PublicationEvent};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Target;

use super::PhoneCore;
use super::call::{name_addr, request_uri};
use super::event::{AccountId, PhoneError, PhoneEvent, UsageError};
use super::route::{Owner, RouteId};

/// The event package of RFC 3856.
pub const PRESENCE_EVENT: &str = "presence";

/// How long a publication asks to last, in seconds (RFC 3903 leaves it to the publisher; an
/// hour, like the subscriptions).
pub const PUBLISH_EXPIRES: u32 = 3600;

/// How long a presence subscription asks to last, in seconds (RFC 3856 §6.4's default).
pub const WATCH_EXPIRES: u32 = 3600;

/// The note published while on a call when the user set none.
pub const ON_THE_PHONE: &str = "On the phone";

/// A status to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Available, away, busy or offline.
    pub status: PresenceStatus,
    /// A free-text note (`<dm:note>`), if any.
    pub note: Option<String>,
}

impl Presence {
    /// `status` without a note.
    pub fn new(status: PresenceStatus) -> Presence {
        Presence { status, note: None }
    }

    /// The same with a note.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Presence {
        self.note = Some(note.into());
        self
    }
}

/// A watched contact, named by the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct WatchId(pub u64);

impl std::fmt::Display for WatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "watch-{}", self.0)
    }
}

/// What happens to presence ([`PhoneEvent::Presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceEvent {
    /// A watched contact's presence, as its NOTIFY said.
    Changed {
        /// The watch.
        watch: WatchId,
        /// The account watching.
        account: AccountId,
        /// The contact's URI, as watched.
        uri: String,
        /// What the document comes to.
        status: PresenceStatus,
        /// Its note, if any.
        note: Option<String>,
    },
    /// A NOTIFY of a watched contact carried a document that could not be read.
    Unreadable {
        /// The watch.
        watch: WatchId,
        /// Why.
        reason: String,
    },
    /// A watch ended for good (refused by the server, or [`PhoneCore::unwatch_presence`]).
    WatchEnded {
        /// The watch.
        watch: WatchId,
        /// The contact's URI.
        uri: String,
        /// Why: the status code or `reason` of the termination, or `unwatched`.
        reason: String,
    },
    /// The presence server took the account's status.
    Published {
        /// The account.
        account: AccountId,
        /// The status published.
        status: PresenceStatus,
    },
    /// A PUBLISH failed (it is tried again later unless the server refused the event
    /// package).
    PublishFailed {
        /// The account.
        account: AccountId,
        /// The status code, or `408` for no answer.
        reason: String,
    },
}

/// Who waits for a presence request's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresenceOwner {
    /// A PUBLISH of an account's status.
    Publish(AccountId),
    /// A SUBSCRIBE of a watch.
    Watch(WatchId),
}

/// The presence of the phone's accounts and watches.
#[derive(Debug, Default)]
pub(crate) struct PresenceState {
    published: HashMap<AccountId, Published>,
    watches: HashMap<WatchId, Watch>,
    next_watch: u64,
    /// A call was up when the statuses were last published.
    on_call: bool,
}

#[derive(Debug)]
struct Published {
    publication: Publication,
    /// What the user chose.
    chosen: Presence,
    /// The document last handed to the publication, and its status.
    sent: Option<(String, PresenceStatus)>,
}

#[derive(Debug)]
struct Watch {
    account: AccountId,
    uri: String,
    target: Uri<'static>,
    /// Started once the account registered.
    subscription: Option<Subscription>,
    /// Being ended for good (unwatched).
    stopping: bool,
    /// Ended while the account is not registered; started again when it is.
    paused: bool,
}

impl PresenceState {
    /// The earliest timer of the publications and watches.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.published
            .values()
            .filter_map(|p| p.publication.poll_timeout())
            .chain(
                self.watches
                    .values()
                    .filter_map(|w| w.subscription.as_ref()?.poll_timeout()),
            )
            .min()
    }
}

impl PhoneCore {
    /// Publishes `presence` as `account`'s status (RFC 3903 PUBLISH of a PIDF document; see
    /// the [module documentation](self)). While a call is up an account with
    /// [`AccountConfig::presence`](super::AccountConfig::presence) shows busy, "on the
    /// phone", whatever was chosen (except offline).
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownAccount`], or [`PhoneError::ShuttingDown`].
    pub fn set_presence(
        &mut self,
        now: Instant,
        account: AccountId,
        presence: Presence,
    ) -> Result<(), PhoneError> {
        if self.shutting_down {
            return Err(PhoneError::ShuttingDown);
        }
        self.presence_publication(account)?.chosen = presence;
        self.presence_republish(now, account);
        self.process(now);
        Ok(())
    }

    /// The status `account` publishes (as chosen; `None` before anything was).
    pub fn presence(&self, account: AccountId) -> Option<&Presence> {
        self.presence.published.get(&account).map(|p| &p.chosen)
    }

    /// Watches `uri`'s presence through `account` (RFC 3856 SUBSCRIBE, from when the account
    /// is registered); its NOTIFYs come as [`PresenceEvent::Changed`]. A bare user name is
    /// taken in the account's domain.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownAccount`], [`UsageError::BadUri`], or
    /// [`PhoneError::ShuttingDown`].
    pub fn watch_presence(
        &mut self,
        now: Instant,
        account: AccountId,
        uri: &str,
    ) -> Result<WatchId, PhoneError> {
        if self.shutting_down {
            return Err(PhoneError::ShuttingDown);
        }
        let Some(a) = self.accounts.get(account.0) else {
            return Err(UsageError::UnknownAccount(account.0.to_string()).into());
        };
        let target = request_uri(uri, Some(a.config.domain()))?;
        self.presence.next_watch += 1;
        let id = WatchId(self.presence.next_watch);
        self.presence.watches.insert(
            id,
            Watch {
                account,
                uri: uri.to_owned(),
                target,
                subscription: None,
                stopping: false,
                paused: false,
            },
        );
        if let Some(registrar) = self.registered_target(account) {
            self.watch_start(now, id, &registrar);
        }
        self.process(now);
        Ok(id)
    }

    /// Stops watching (an un-SUBSCRIBE); a [`PresenceEvent::WatchEnded`] follows.
    pub fn unwatch_presence(&mut self, now: Instant, watch: WatchId) {
        let Some(w) = self.presence.watches.get_mut(&watch) else {
            return;
        };
        w.stopping = true;
        match &mut w.subscription {
            Some(s) => s.unsubscribe(now),
            None => {
                let uri = w.uri.clone();
                self.presence.watches.remove(&watch);
                self.events
                    .push_back(PhoneEvent::Presence(PresenceEvent::WatchEnded {
                        watch,
                        uri,
                        reason: "unwatched".to_owned(),
                    }));
            }
        }
        self.watch_flush(now, watch);
        self.process(now);
    }

    /// The watches, with the URI watched and the account watching.
    pub fn presence_watches(&self) -> Vec<(WatchId, AccountId, String)> {
        let mut v: Vec<_> = self
            .presence
            .watches
            .iter()
            .map(|(id, w)| (*id, w.account, w.uri.clone()))
            .collect();
        v.sort_by_key(|(id, _, _)| *id);
        v
    }

    /// The publication of `account`, made if it has none yet.
    fn presence_publication(&mut self, account: AccountId) -> Result<&mut Published, PhoneError> {
        let Some(a) = self.accounts.get(account.0) else {
            return Err(UsageError::UnknownAccount(account.0.to_string()).into());
        };
        if !self.presence.published.contains_key(&account) {
            let config = a.config.clone();
            let aor =
                Uri::parse(&config.aor)
                    .map(Uri::into_owned)
                    .map_err(|e| UsageError::BadUri {
                        uri: config.aor.clone(),
                        reason: e.to_string(),
                    })?;
            let tag = self.token(10);
            let call_id = format!("{}@tincan", self.token(20));
            let from = name_addr(config.display_name.as_deref(), &config.aor);
            let template = RequestBuilder::new(Method::Publish, &aor)
                .header(HeaderName::From, &format!("{from};tag={tag}"))
                .header(HeaderName::To, &format!("<{aor}>"))
                .call_id(&call_id)
                .cseq(1)
                .build();
            let publication = Publication::new(
                PublicationConfig {
                    event: PRESENCE_EVENT.to_owned(),
                    content_type: pidf::CONTENT_TYPE.to_owned(),
                    expires: PUBLISH_EXPIRES,
                },
                template,
            );
            self.presence.published.insert(
                account,
                Published {
                    publication,
                    chosen: Presence::new(PresenceStatus::Available),
                    sent: None,
                },
            );
        }
        Ok(self
            .presence
            .published
            .get_mut(&account)
            .expect("inserted just above when missing"))
    }

    /// Publishes what the account should show now, if it changed.
    fn presence_republish(&mut self, now: Instant, account: AccountId) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        let automatic = a.config.presence;
        let entity = a.config.aor.clone();
        let on_call = self.presence.on_call;
        let Some(p) = self.presence.published.get_mut(&account) else {
            return;
        };
        let chosen = p.chosen.clone();
        let (doc, status) = if automatic && on_call && chosen.status != PresenceStatus::Offline {
            let note = chosen.note.as_deref().unwrap_or(ON_THE_PHONE);
            let mut doc = PresenceDocument::of_status(&entity, PresenceStatus::Busy, Some(note));
            if let Some(person) = doc.persons.first_mut() {
                person.activities = vec![Activity::OnThePhone];
            }
            (doc, PresenceStatus::Busy)
        } else {
            (
                PresenceDocument::of_status(&entity, chosen.status, chosen.note.as_deref()),
                chosen.status,
            )
        };
        let xml = doc.to_xml();
        if p.sent.as_ref().is_some_and(|(s, _)| *s == xml) {
            return;
        }
        p.sent = Some((xml.clone(), status));
        p.publication.publish(now, Bytes::from(xml));
        self.publish_flush(now, account);
    }

    /// Follows the calls: the accounts with automatic presence show busy while one is up.
    /// Whether anything was sent.
    pub(super) fn presence_follow_calls(&mut self, now: Instant) -> bool {
        let on_call = !self.calls.is_empty();
        if on_call == self.presence.on_call {
            return false;
        }
        self.presence.on_call = on_call;
        let accounts: Vec<AccountId> = self
            .presence
            .published
            .keys()
            .copied()
            .filter(|a| self.accounts.get(a.0).is_some_and(|a| a.config.presence))
            .collect();
        for account in &accounts {
            self.presence_republish(now, *account);
        }
        !accounts.is_empty()
    }

    /// An account registered: its automatic presence is published (once), and its watches
    /// start.
    pub(super) fn presence_registered(
        &mut self,
        now: Instant,
        account: AccountId,
        registrar: &Target,
    ) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        if self.shutting_down {
            return;
        }
        let automatic = a.config.presence;
        let configured = a.config.watch.clone();
        // Published once: the automatic status, or (again after an unregistration) the
        // chosen one.
        if automatic && !self.presence.published.contains_key(&account) {
            let _ = self.presence_publication(account);
        }
        if self
            .presence
            .published
            .get(&account)
            .is_some_and(|p| p.sent.is_none())
        {
            self.presence_republish(now, account);
        }
        // The configured watches, once.
        for uri in configured {
            let known = self
                .presence
                .watches
                .values()
                .any(|w| w.account == account && w.uri == uri);
            if !known {
                let _ = self.watch_presence(now, account, &uri);
            }
        }
        let waiting: Vec<WatchId> = self
            .presence
            .watches
            .iter()
            .filter(|(_, w)| {
                let ended = w
                    .subscription
                    .as_ref()
                    .is_none_or(|s| s.status() == SubscriptionStatus::Done);
                w.account == account
                    && !w.stopping
                    && (w.subscription.is_none() || w.paused && ended)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.watch_start(now, id, registrar);
        }
    }

    /// The account stops (unregisters, or the phone shuts down): its published state is
    /// removed and its watches end.
    pub(super) fn presence_stop(&mut self, now: Instant, account: AccountId) {
        if let Some(p) = self.presence.published.get_mut(&account) {
            p.publication.remove(now);
            p.sent = None;
            self.publish_flush(now, account);
        }
        let watches: Vec<WatchId> = self
            .presence
            .watches
            .iter()
            .filter(|(_, w)| w.account == account)
            .map(|(id, _)| *id)
            .collect();
        for id in watches {
            if let Some(w) = self.presence.watches.get_mut(&id)
                && let Some(s) = &mut w.subscription
            {
                // Started again at the next registration.
                s.unsubscribe(now);
                w.paused = true;
            }
            self.watch_flush(now, id);
        }
    }

    /// Runs the publications' and watches' timers.
    pub(super) fn presence_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        let publications: Vec<AccountId> = self
            .presence
            .published
            .iter()
            .filter(|(_, p)| due(p.publication.poll_timeout()))
            .map(|(a, _)| *a)
            .collect();
        for account in publications {
            if let Some(p) = self.presence.published.get_mut(&account) {
                p.publication.handle_timeout(now);
            }
            self.publish_flush(now, account);
        }
        let watches: Vec<WatchId> = self
            .presence
            .watches
            .iter()
            .filter(|(_, w)| due(w.subscription.as_ref().and_then(Subscription::poll_timeout)))
            .map(|(id, _)| *id)
            .collect();
        for id in watches {
            if let Some(s) = self
                .presence
                .watches
                .get_mut(&id)
                .and_then(|w| w.subscription.as_mut())
            {
                s.handle_timeout(now);
            }
            self.watch_flush(now, id);
        }
    }

    /// A NOTIFY: true when it is one of a watch (answered here).
    pub(super) fn presence_notify(
        &mut self,
        now: Instant,
        tx: TransactionId,
        request: &Message,
    ) -> bool {
        let Some(id) = self
            .presence
            .watches
            .iter()
            .find(|(_, w)| {
                w.subscription
                    .as_ref()
                    .is_some_and(|s| s.matches_notify(request))
            })
            .map(|(id, _)| *id)
        else {
            return false;
        };
        let Some(s) = self
            .presence
            .watches
            .get_mut(&id)
            .and_then(|w| w.subscription.as_mut())
        else {
            return false;
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
        self.watch_flush(now, id);
        true
    }

    /// A final response to a presence request (`route`: the one it answers).
    pub(super) fn presence_response(
        &mut self,
        now: Instant,
        owner: PresenceOwner,
        route: RouteId,
        response: &Message,
    ) {
        if response.status().unwrap_or(0) < 200 {
            return;
        }
        let Some(request) = self.routes.get(&route).map(|r| r.request.clone()) else {
            return;
        };
        match owner {
            PresenceOwner::Publish(account) => {
                if let Some(p) = self.presence.published.get_mut(&account) {
                    p.publication.handle_response(now, &request, response);
                }
                self.publish_flush(now, account);
            }
            PresenceOwner::Watch(id) => {
                if let Some(s) = self
                    .presence
                    .watches
                    .get_mut(&id)
                    .and_then(|w| w.subscription.as_mut())
                {
                    s.handle_response(now, &request, response);
                }
                self.watch_flush(now, id);
            }
        }
    }

    /// A presence request that no server answered.
    pub(super) fn presence_failed(&mut self, now: Instant, owner: PresenceOwner, route: RouteId) {
        let Some(request) = self.routes.get(&route).map(|r| r.request.clone()) else {
            return;
        };
        match owner {
            PresenceOwner::Publish(account) => {
                if let Some(p) = self.presence.published.get_mut(&account) {
                    p.publication.handle_failure(now, &request);
                }
                self.publish_flush(now, account);
            }
            PresenceOwner::Watch(id) => {
                if let Some(s) = self
                    .presence
                    .watches
                    .get_mut(&id)
                    .and_then(|w| w.subscription.as_mut())
                {
                    s.handle_failure(now, &request);
                }
                self.watch_flush(now, id);
            }
        }
    }

    /// The account a presence request is sent for.
    pub(super) fn presence_account(&self, owner: PresenceOwner) -> Option<AccountId> {
        match owner {
            PresenceOwner::Publish(a) => Some(a),
            PresenceOwner::Watch(id) => self.presence.watches.get(&id).map(|w| w.account),
        }
    }

    /// Answers a 401/407 to a presence request with the account's credentials.
    pub(super) fn retry_presence(
        &mut self,
        owner: PresenceOwner,
        request: &Message,
        response: &Message,
    ) -> Option<Message> {
        let account = self.presence_account(owner)?;
        self.retry_subscribe(account, request, response)
    }

    /// The target of a registered slot of the account, if any.
    fn registered_target(&self, account: AccountId) -> Option<Target> {
        self.accounts.get(account.0)?.slots.iter().find_map(|s| {
            (s.state == super::account::SlotState::Registered)
                .then(|| s.target.clone())
                .flatten()
        })
    }

    /// Starts a watch's subscription; the Contact is the address `registrar` sees.
    fn watch_start(&mut self, now: Instant, id: WatchId, registrar: &Target) {
        let Some(w) = self.presence.watches.get(&id) else {
            return;
        };
        let target = w.target.clone();
        let account = w.account;
        let config = SubscriptionConfig {
            event: PRESENCE_EVENT.to_owned(),
            accept: Some(pidf::CONTENT_TYPE.to_owned()),
            expires: WATCH_EXPIRES,
        };
        let Some(subscription) = self.new_subscription(now, account, registrar, &target, config)
        else {
            return;
        };
        if let Some(w) = self.presence.watches.get_mut(&id) {
            w.subscription = Some(subscription);
            w.paused = false;
        }
        self.watch_flush(now, id);
    }

    /// Sends what a publication asks to send and reports its events.
    fn publish_flush(&mut self, now: Instant, account: AccountId) {
        loop {
            let Some(p) = self.presence.published.get_mut(&account) else {
                return;
            };
            if let Some(request) = p.publication.poll_request() {
                self.send_account_request(
                    now,
                    account,
                    request,
                    Owner::Presence(PresenceOwner::Publish(account)),
                );
                continue;
            }
            let Some(event) = p.publication.poll_event() else {
                return;
            };
            let status = p
                .sent
                .as_ref()
                .map_or(p.chosen.status, |(_, status)| *status);
            let event = match event {
                PublicationEvent::Published { .. } => PresenceEvent::Published { account, status },
                PublicationEvent::Failed { reason, .. } => {
                    PresenceEvent::PublishFailed { account, reason }
                }
                _ => continue,
            };
            self.events.push_back(PhoneEvent::Presence(event));
        }
    }

    /// Sends what a watch's subscription asks to send and reports its NOTIFYs.
    fn watch_flush(&mut self, now: Instant, id: WatchId) {
        loop {
            let Some(w) = self.presence.watches.get_mut(&id) else {
                return;
            };
            let account = w.account;
            let Some(s) = w.subscription.as_mut() else {
                return;
            };
            if let Some(request) = s.poll_request() {
                self.send_account_request(
                    now,
                    account,
                    request,
                    Owner::Presence(PresenceOwner::Watch(id)),
                );
                continue;
            }
            let Some(event) = s.poll_event() else {
                break;
            };
            match event {
                SubscriptionEvent::Notify { state, body, .. } => {
                    if body.is_empty() {
                        // No document (yet): kamailio's first NOTIFY when nothing is
                        // published, a pending subscription.
                        if state == SubscriptionStatus::Active {
                            let uri = w.uri.clone();
                            self.events
                                .push_back(PhoneEvent::Presence(PresenceEvent::Changed {
                                    watch: id,
                                    account,
                                    uri,
                                    status: PresenceStatus::Offline,
                                    note: None,
                                }));
                        }
                        continue;
                    }
                    let event = match PresenceDocument::parse(&body) {
                        Ok(doc) => PresenceEvent::Changed {
                            watch: id,
                            account,
                            uri: w.uri.clone(),
                            status: doc.status(),
                            note: doc.note().map(str::to_owned),
                        },
                        Err(e) => PresenceEvent::Unreadable {
                            watch: id,
                            reason: e.to_string(),
                        },
                    };
                    self.events.push_back(PhoneEvent::Presence(event));
                }
                SubscriptionEvent::Terminated {
                    reason,
                    retry_in: None,
                } if !w.stopping && !w.paused => {
                    let uri = w.uri.clone();
                    self.events
                        .push_back(PhoneEvent::Presence(PresenceEvent::WatchEnded {
                            watch: id,
                            uri,
                            reason,
                        }));
                }
                _ => {}
            }
        }
        let done = self
            .presence
            .watches
            .get(&id)
            .and_then(|w| w.subscription.as_ref())
            .is_some_and(|s| s.status() == SubscriptionStatus::Done);
        if done
            && let Some(w) = self.presence.watches.get(&id)
            && w.stopping
        {
            let uri = w.uri.clone();
            self.presence.watches.remove(&id);
            self.events
                .push_back(PhoneEvent::Presence(PresenceEvent::WatchEnded {
                    watch: id,
                    uri,
                    reason: "unwatched".to_owned(),
                }));
        }
    }
}
