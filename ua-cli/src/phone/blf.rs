//! Busy lamp field: the dialog event package (RFC 4235) both ways.
//!
//! **Watching** ([`PhoneCore::watch_dialogs`]): the phone subscribes to `Event: dialog` of a
//! contact's URI through one of its accounts (its outbound proxy or registrars, its digest
//! credentials), with the sans-IO subscriber of `tincan_sip::dialog::subscription`
//! (refresh, re-subscription, 481/489 handling). A SUBSCRIBE forked to several of the
//! contact's phones gives one subscription per phone that NOTIFYs (RFC 6665 §4.1.2.4). The
//! `application/dialog-info+xml` bodies (`tincan_sip::dialog::dialog_info`) keep a view of
//! the contact's dialogs per subscription; their union gives the [`Lamp`]: busy when a
//! dialog is confirmed or one the contact placed is under way, ringing when a call to it is
//! early, idle with none, unknown with no subscription running. Each change is a
//! [`PhoneEvent::Lamp`]. A watch starts when its account registers (it needs the Contact
//! the registrar saw) and stops when the account unregisters; the `blf` URIs of an account
//! ([`AccountConfig::blf`](super::AccountConfig::blf)) are watched by themselves.
//!
//! **Notifying**: a SUBSCRIBE with `Event: dialog` to one of the accounts' AORs is accepted
//! with the notifier of `tincan_sip::dialog::notifier` (Expires negotiated, 423 below
//! 60 s); a SUBSCRIBE for another package gets 489 Bad Event, one to no account 404. Each
//! subscriber gets the full state of the account's calls at once and again whenever one of
//! them changes (trying, proceeding, early, confirmed; direction; Call-ID and tags), with a
//! `version` one higher each time; unregistering the account ends the subscriptions
//! (`terminated;reason=deactivated`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tincan_sip::dialog::SessionState;
use tincan_sip::dialog::dialog_info::{
    DIALOG_INFO_XML, DialogEntry, DialogInfo, DialogPhase, Direction,
};
use tincan_sip::dialog::notifier::{
    Notifier, NotifierConfig, NotifierEvent, NotifierStatus, bad_event, event_package,
};
use tincan_sip::dialog::subscription::{
    Subscription, SubscriptionConfig, SubscriptionEvent, SubscriptionStatus,
};
use tincan_sip::endpoint::Source;
use tincan_sip::message::{HeaderName, Message, Uri, response_to};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Target;

use super::PhoneCore;
use super::call::{Stage, contact_uri, user_of};
use super::event::{AccountId, PhoneEvent, UsageError};
use super::route::{Owner, RouteId};

/// The event package of RFC 4235.
pub const DIALOG_EVENT: &str = "dialog";

/// How long a watch's subscription asks to last, in seconds (RFC 4235 §3.4's default).
pub const BLF_EXPIRES: u32 = 3600;

/// How long a watch waits before subscribing again after its subscription ended for good
/// (404 while the contact is not registered, 403, 489...): the contact may come later.
pub const BLF_RETRY: Duration = Duration::from_secs(60);

/// Names one watched contact ([`PhoneCore::watch_dialogs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub u64);

impl std::fmt::Display for WatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "watch {}", self.0)
    }
}

/// What a watched contact's lamp shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lamp {
    /// No subscription running (not yet, refused, or ended).
    Unknown,
    /// No call.
    Idle,
    /// A call to the contact is ringing (an early dialog it received).
    Ringing,
    /// In a call, or placing one.
    Busy,
}

impl Lamp {
    /// The lamp of a set of dialogs (the terminated ones left out).
    pub fn of<'a>(dialogs: impl IntoIterator<Item = &'a DialogEntry>) -> Lamp {
        let mut lamp = Lamp::Idle;
        for d in dialogs {
            let this = match (d.phase, d.direction) {
                (DialogPhase::Terminated, _) => Lamp::Idle,
                (DialogPhase::Confirmed, _) => Lamp::Busy,
                (_, Some(Direction::Recipient)) => Lamp::Ringing,
                _ => Lamp::Busy,
            };
            lamp = match (lamp, this) {
                (Lamp::Busy, _) | (_, Lamp::Busy) => Lamp::Busy,
                (Lamp::Ringing, _) | (_, Lamp::Ringing) => Lamp::Ringing,
                _ => Lamp::Idle,
            };
        }
        lamp
    }

    /// Its name: `unknown`, `idle`, `ringing`, `busy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lamp::Unknown => "unknown",
            Lamp::Idle => "idle",
            Lamp::Ringing => "ringing",
            Lamp::Busy => "busy",
        }
    }
}

impl std::fmt::Display for Lamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lamp changed ([`PhoneEvent::Lamp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LampChange {
    /// The watch.
    pub watch: WatchId,
    /// The account watching.
    pub account: AccountId,
    /// The watched URI.
    pub uri: String,
    /// What it shows now.
    pub lamp: Lamp,
}

/// Who a dialog-package request belongs to (a route's owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventOwner {
    /// A SUBSCRIBE of a watch's subscription (its index: one per fork).
    Watch(WatchId, usize),
    /// A NOTIFY of one of our notifiers.
    Notify(u64),
}

/// One watched contact.
struct Watch {
    account: AccountId,
    uri: String,
    /// One per fork that NOTIFYed; the first is the one that subscribes (again).
    subscriptions: Vec<Subscription>,
    /// The dialogs each subscription was told of, and whether it was told anything yet.
    views: Vec<(DialogInfo, bool)>,
    lamp: Lamp,
    /// When to subscribe again, after the subscription ended for good.
    retry_at: Option<Instant>,
}

/// One subscription to an account's dialogs.
struct Served {
    account: AccountId,
    notifier: Notifier,
    version: u32,
    sent: Vec<DialogEntry>,
}

/// The phone's watches and notifiers.
#[derive(Default)]
pub(super) struct Blf {
    watches: BTreeMap<WatchId, Watch>,
    next_watch: u64,
    /// The registrar each registered account registered with (its Contact's address).
    registered: HashMap<AccountId, Target>,
    /// The accounts whose configured `blf` URIs are being watched.
    configured: Vec<AccountId>,
    served: BTreeMap<u64, Served>,
    next_served: u64,
}

impl PhoneCore {
    /// Watches `uri`'s dialogs (its busy lamp, RFC 4235) through `account`: subscribes once
    /// the account is registered (now, if it is), and reports [`PhoneEvent::Lamp`] changes.
    pub fn watch_dialogs(
        &mut self,
        now: Instant,
        account: AccountId,
        uri: &str,
    ) -> Result<WatchId, UsageError> {
        let id = self.watch_add(now, account, uri)?;
        self.process(now);
        Ok(id)
    }

    fn watch_add(
        &mut self,
        now: Instant,
        account: AccountId,
        uri: &str,
    ) -> Result<WatchId, UsageError> {
        let Some(a) = self.accounts.get(account.0) else {
            return Err(UsageError::UnknownAccount(account.0.to_string()));
        };
        let domain = a.config.domain().to_owned();
        let uri = if uri.contains(':') {
            uri.to_owned()
        } else if uri.contains('@') {
            format!("sip:{uri}")
        } else {
            format!("sip:{uri}@{domain}")
        };
        if Uri::parse(&uri).is_err() {
            return Err(UsageError::BadUri {
                uri,
                reason: "not a SIP URI".to_owned(),
            });
        }
        let id = WatchId(self.blf.next_watch);
        self.blf.next_watch += 1;
        self.blf.watches.insert(
            id,
            Watch {
                account,
                uri,
                subscriptions: Vec::new(),
                views: Vec::new(),
                lamp: Lamp::Unknown,
                retry_at: None,
            },
        );
        if let Some(registrar) = self.blf.registered.get(&account).cloned() {
            self.lamp_watch_start(now, id, &registrar);
        }
        Ok(id)
    }

    /// Stops watching: an un-SUBSCRIBE for each of its subscriptions.
    pub fn unwatch_dialogs(&mut self, now: Instant, watch: WatchId) {
        if let Some(w) = self.blf.watches.get_mut(&watch) {
            for s in &mut w.subscriptions {
                s.unsubscribe(now);
            }
        }
        self.lamp_watch_flush(now, watch);
        self.blf.watches.remove(&watch);
        self.process(now);
    }

    /// The watches: id, URI and lamp.
    pub fn watches(&self) -> Vec<(WatchId, String, Lamp)> {
        self.blf
            .watches
            .iter()
            .map(|(id, w)| (*id, w.uri.clone(), w.lamp))
            .collect()
    }

    /// How many subscriptions to our accounts' dialogs are running (as notifier).
    pub fn dialog_subscribers(&self) -> usize {
        self.blf
            .served
            .values()
            .filter(|s| s.notifier.status() != NotifierStatus::Done)
            .count()
    }

    /// The account registered with `registrar`: its watches (and its `blf` URIs) start.
    pub(super) fn blf_registered(&mut self, now: Instant, account: AccountId, registrar: &Target) {
        if self.shutting_down {
            return;
        }
        self.blf.registered.insert(account, registrar.clone());
        if !self.blf.configured.contains(&account) {
            self.blf.configured.push(account);
            let uris = self
                .accounts
                .get(account.0)
                .map(|a| a.config.blf.clone())
                .unwrap_or_default();
            for uri in uris {
                let _ = self.watch_add(now, account, &uri);
            }
        }
        let idle: Vec<WatchId> = self
            .blf
            .watches
            .iter()
            .filter(|(_, w)| {
                w.account == account
                    && w.subscriptions
                        .first()
                        .is_none_or(|s| s.status() == SubscriptionStatus::Done)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.lamp_watch_start(now, id, registrar);
        }
    }

    /// The account unregisters: its watches and its subscribers' subscriptions end.
    pub(super) fn blf_stop(&mut self, now: Instant, account: AccountId) {
        self.blf.registered.remove(&account);
        let watches: Vec<WatchId> = self
            .blf
            .watches
            .iter()
            .filter(|(_, w)| w.account == account)
            .map(|(id, _)| *id)
            .collect();
        for id in watches {
            if let Some(w) = self.blf.watches.get_mut(&id) {
                for s in &mut w.subscriptions {
                    s.unsubscribe(now);
                }
                w.retry_at = None;
            }
            self.lamp_watch_flush(now, id);
        }
        let served: Vec<u64> = self
            .blf
            .served
            .iter()
            .filter(|(_, s)| s.account == account)
            .map(|(id, _)| *id)
            .collect();
        for id in served {
            if let Some(s) = self.blf.served.get_mut(&id) {
                s.notifier.terminate(now, "deactivated");
            }
            self.served_flush(now, id);
        }
    }

    /// When the watches' and notifiers' next timer is due.
    pub(super) fn blf_poll_timeout(&self) -> Option<Instant> {
        let watches = self.blf.watches.values().flat_map(|w| {
            w.subscriptions
                .iter()
                .filter_map(Subscription::poll_timeout)
                .chain(w.retry_at)
        });
        let served = self
            .blf
            .served
            .values()
            .filter_map(|s| s.notifier.poll_timeout());
        watches.chain(served).min()
    }

    /// Runs the watches' and notifiers' timers due at `now`.
    pub(super) fn blf_timeout(&mut self, now: Instant) {
        let again: Vec<(WatchId, Target)> = self
            .blf
            .watches
            .iter()
            .filter(|(_, w)| w.retry_at.is_some_and(|t| t <= now))
            .filter_map(|(id, w)| Some((*id, self.blf.registered.get(&w.account)?.clone())))
            .collect();
        for w in self.blf.watches.values_mut() {
            if w.retry_at.is_some_and(|t| t <= now) {
                w.retry_at = None;
            }
        }
        for (id, registrar) in again {
            self.lamp_watch_start(now, id, &registrar);
        }
        let due: Vec<WatchId> = self
            .blf
            .watches
            .iter()
            .filter(|(_, w)| {
                w.subscriptions
                    .iter()
                    .any(|s| s.poll_timeout().is_some_and(|t| t <= now))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(w) = self.blf.watches.get_mut(&id) {
                for s in &mut w.subscriptions {
                    if s.poll_timeout().is_some_and(|t| t <= now) {
                        s.handle_timeout(now);
                    }
                }
            }
            self.lamp_watch_flush(now, id);
        }
        let due: Vec<u64> = self
            .blf
            .served
            .iter()
            .filter(|(_, s)| s.notifier.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(s) = self.blf.served.get_mut(&id) {
                s.notifier.handle_timeout(now);
            }
            self.served_flush(now, id);
        }
    }

    /// A NOTIFY of one of the watches' subscriptions (or of another fork of one): answered
    /// and taken; false when it is none of theirs.
    pub(super) fn blf_notify(
        &mut self,
        now: Instant,
        tx: TransactionId,
        request: &Message,
    ) -> bool {
        if event_package(request).as_deref() != Some(DIALOG_EVENT) {
            return false;
        }
        let mut found = None;
        'watches: for (id, w) in &self.blf.watches {
            for (i, s) in w.subscriptions.iter().enumerate() {
                if s.matches_notify(request) && !s.is_fork(request) {
                    found = Some((*id, Some(i)));
                    break 'watches;
                }
            }
            if found.is_none() && w.subscriptions.iter().any(|s| s.is_fork(request)) {
                found = Some((*id, None));
            }
        }
        let Some((id, index)) = found else {
            return false;
        };
        let Some(w) = self.blf.watches.get_mut(&id) else {
            return false;
        };
        let status = match index {
            Some(i) => w.subscriptions[i].handle_notify(now, request).status,
            None => {
                let fork = w
                    .subscriptions
                    .iter()
                    .find(|s| s.is_fork(request))
                    .and_then(|s| s.fork(now, request));
                match fork {
                    Some(mut f) => {
                        let status = f.handle_notify(now, request).status;
                        w.subscriptions.push(f);
                        w.views.push((DialogInfo::default(), false));
                        status
                    }
                    None => 481,
                }
            }
        };
        let mut r = response_to(request, status, None);
        if request
            .to()
            .and_then(Result::ok)
            .is_some_and(|t| t.tag().is_none())
        {
            let tag = self.token(10);
            r.set_to_tag(&tag);
        }
        let _ = self.endpoint.send_response(now, tx, r);
        self.lamp_watch_flush(now, id);
        true
    }

    /// A SUBSCRIBE: to a notifier of ours in its dialog, or a new subscription to an
    /// account's dialogs.
    pub(super) fn incoming_subscribe(
        &mut self,
        now: Instant,
        tx: TransactionId,
        request: &Message,
        source: &Source,
    ) {
        let in_dialog = request
            .to()
            .and_then(Result::ok)
            .is_some_and(|t| t.tag().is_some());
        if in_dialog {
            let found = self
                .blf
                .served
                .iter()
                .find(|(_, s)| s.notifier.matches(request))
                .map(|(id, _)| *id);
            let answer = match found.and_then(|id| self.blf.served.get_mut(&id)) {
                Some(s) => s.notifier.handle_subscribe(now, request),
                None => response_to(request, 481, None),
            };
            let _ = self.endpoint.send_response(now, tx, answer);
            if let Some(id) = found {
                self.served_flush(now, id);
            }
            return;
        }
        let tag = self.token(10);
        let refuse = |mut r: Message, core: &mut PhoneCore| {
            r.set_to_tag(&tag);
            let _ = core.endpoint.send_response(now, tx, r);
        };
        if event_package(request).as_deref() != Some(DIALOG_EVENT) {
            refuse(bad_event(request, &[DIALOG_EVENT]), self);
            return;
        }
        let user = request.to().and_then(Result::ok).and_then(|t| {
            t.uri()
                .ok()
                .and_then(|u| u.as_sip()?.user.as_deref().map(str::to_owned))
        });
        let account = user.and_then(|user| {
            self.accounts
                .iter()
                .position(|a| user_of(&a.config.aor).is_some_and(|u| u == user))
                .map(AccountId)
        });
        let (Some(account), false) = (account, self.shutting_down) else {
            refuse(response_to(request, 404, None), self);
            return;
        };
        let user = user_of(&self.accounts[account.0].config.aor).unwrap_or_default();
        let seen = self.contact_address(Some(account), source.transport, source.local);
        let contact = format!("<{}>", contact_uri(&user, seen, source.transport));
        let entries = self.dialog_entries(account);
        let body = self.dialog_info(account, 0, entries.clone());
        match Notifier::accept(
            now,
            NotifierConfig::new(DIALOG_EVENT),
            request,
            &tag,
            &contact,
            true,
            Some((DIALOG_INFO_XML.to_owned(), body)),
        ) {
            Ok((notifier, ok)) => {
                let _ = self.endpoint.send_response(now, tx, ok);
                let id = self.blf.next_served;
                self.blf.next_served += 1;
                self.blf.served.insert(
                    id,
                    Served {
                        account,
                        notifier,
                        version: 0,
                        sent: entries,
                    },
                );
                self.served_flush(now, id);
            }
            Err(refusal) => {
                let mut r = *refusal;
                r.set_to_tag(&tag);
                let _ = self.endpoint.send_response(now, tx, r);
            }
        }
    }

    /// Tells the subscribers of each account whose calls changed: true when a NOTIFY went.
    pub(super) fn blf_update(&mut self, now: Instant) -> bool {
        if self.blf.served.is_empty() {
            return false;
        }
        let mut current: HashMap<AccountId, Vec<DialogEntry>> = HashMap::new();
        let mut changed = Vec::new();
        for (id, s) in &self.blf.served {
            if !matches!(
                s.notifier.status(),
                NotifierStatus::Active | NotifierStatus::Pending
            ) {
                continue;
            }
            let entries = current
                .entry(s.account)
                .or_insert_with(|| self.dialog_entries(s.account));
            if *entries != s.sent {
                changed.push((*id, s.account, entries.clone()));
            }
        }
        let moved = !changed.is_empty();
        for (id, account, entries) in changed {
            let Some(version) = self.blf.served.get(&id).map(|s| s.version + 1) else {
                continue;
            };
            let body = self.dialog_info(account, version, entries.clone());
            if let Some(s) = self.blf.served.get_mut(&id) {
                s.version = version;
                s.sent = entries;
                s.notifier.set_content(now, DIALOG_INFO_XML, body);
            }
            self.served_flush(now, id);
        }
        moved
    }

    /// The account's calls as RFC 4235 dialogs (the ended ones left out).
    fn dialog_entries(&self, account: AccountId) -> Vec<DialogEntry> {
        let mut entries: Vec<(u64, DialogEntry)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.account == Some(account))
            .filter_map(|(id, c)| {
                let state = c.session.as_ref().map(|s| s.state());
                let phase = match (&c.stage, state) {
                    (Stage::Ending, _) | (_, Some(SessionState::Terminated)) => return None,
                    (_, Some(SessionState::Confirmed | SessionState::Answered)) => {
                        DialogPhase::Confirmed
                    }
                    (_, Some(SessionState::Early | SessionState::Incoming)) => DialogPhase::Early,
                    _ => DialogPhase::Trying,
                };
                let dialog = c.session.as_ref().and_then(|s| s.dialog());
                Some((
                    id.0,
                    DialogEntry {
                        id: format!("call{}", id.0),
                        call_id: Some(c.call_id.clone()),
                        local_tag: dialog.map(|d| d.id().local_tag.clone()),
                        remote_tag: dialog.map(|d| d.id().remote_tag.clone()),
                        direction: Some(if c.outgoing {
                            Direction::Initiator
                        } else {
                            Direction::Recipient
                        }),
                        phase,
                        event: None,
                        code: None,
                        local: None,
                        remote: dialog.and_then(|d| d.remote().uri().ok().map(|u| u.to_string())),
                    },
                ))
            })
            .collect();
        entries.sort_by_key(|(id, _)| *id);
        entries.into_iter().map(|(_, e)| e).collect()
    }

    fn dialog_info(&self, account: AccountId, version: u32, entries: Vec<DialogEntry>) -> Bytes {
        let entity = self
            .accounts
            .get(account.0)
            .map(|a| a.config.aor.clone())
            .unwrap_or_default();
        Bytes::from(DialogInfo::full(version, &entity, entries).to_xml())
    }

    /// A watch's first SUBSCRIBE, from the account registered with `registrar`.
    fn lamp_watch_start(&mut self, now: Instant, id: WatchId, registrar: &Target) {
        let Some(w) = self.blf.watches.get(&id) else {
            return;
        };
        let account = w.account;
        let Ok(uri) = Uri::parse(&w.uri).map(Uri::into_owned) else {
            return;
        };
        let config = SubscriptionConfig {
            event: DIALOG_EVENT.to_owned(),
            accept: Some(DIALOG_INFO_XML.to_owned()),
            expires: BLF_EXPIRES,
        };
        let Some(subscription) = self.new_subscription(now, account, registrar, &uri, config)
        else {
            return;
        };
        if let Some(w) = self.blf.watches.get_mut(&id) {
            w.subscriptions = vec![subscription];
            w.views = vec![(DialogInfo::default(), false)];
        }
        self.lamp_watch_flush(now, id);
    }

    /// Sends a watch's SUBSCRIBEs, takes its subscriptions' events, reports its lamp.
    fn lamp_watch_flush(&mut self, now: Instant, id: WatchId) {
        let mut sends = Vec::new();
        {
            let Some(w) = self.blf.watches.get_mut(&id) else {
                return;
            };
            for (i, s) in w.subscriptions.iter_mut().enumerate() {
                while let Some(r) = s.poll_request() {
                    sends.push((i, r));
                }
                while let Some(e) = s.poll_event() {
                    let view = &mut w.views[i];
                    match e {
                        SubscriptionEvent::Notify { body, .. } => {
                            if let Ok(info) = std::str::from_utf8(&body)
                                .map_err(|_| ())
                                .and_then(|t| DialogInfo::parse(t).map_err(|_| ()))
                            {
                                let first = !view.1;
                                if view.0.apply(info, first) {
                                    view.1 = true;
                                }
                            }
                        }
                        SubscriptionEvent::Terminated { .. } | SubscriptionEvent::Done => {
                            *view = (DialogInfo::default(), false);
                        }
                        _ => {}
                    }
                }
            }
        }
        let account = self.blf.watches.get(&id).map(|w| w.account);
        for (i, request) in sends {
            if let Some(account) = account {
                self.send_account_request(
                    now,
                    account,
                    request,
                    Owner::Event(EventOwner::Watch(id, i)),
                );
            }
        }
        let Some(w) = self.blf.watches.get_mut(&id) else {
            return;
        };
        let registered = self.blf.registered.contains_key(&w.account);
        if registered
            && w.retry_at.is_none()
            && w.subscriptions
                .first()
                .is_some_and(|s| s.status() == SubscriptionStatus::Done)
        {
            w.retry_at = Some(now + BLF_RETRY);
        }
        let running = w.subscriptions.iter().zip(&w.views).any(|(s, v)| {
            v.1 && matches!(
                s.status(),
                SubscriptionStatus::Active | SubscriptionStatus::Pending
            )
        });
        let lamp = if running {
            Lamp::of(
                w.subscriptions
                    .iter()
                    .zip(&w.views)
                    .filter(|(s, _)| {
                        matches!(
                            s.status(),
                            SubscriptionStatus::Active | SubscriptionStatus::Pending
                        )
                    })
                    .flat_map(|(_, v)| v.0.dialogs.iter()),
            )
        } else {
            Lamp::Unknown
        };
        if lamp != w.lamp {
            w.lamp = lamp;
            let change = LampChange {
                watch: id,
                account: w.account,
                uri: w.uri.clone(),
                lamp,
            };
            self.events.push_back(PhoneEvent::Lamp(change));
        }
    }

    /// Sends a notifier's NOTIFYs; forgets it once it is done.
    fn served_flush(&mut self, now: Instant, id: u64) {
        let mut sends = Vec::new();
        let mut done = false;
        if let Some(s) = self.blf.served.get_mut(&id) {
            while let Some(r) = s.notifier.poll_request() {
                sends.push(r);
            }
            while let Some(NotifierEvent::Terminated { .. }) = s.notifier.poll_event() {}
            done = s.notifier.status() == NotifierStatus::Done;
        }
        for request in sends {
            let hop = in_dialog_hop(&request);
            self.start_route(
                now,
                Owner::Event(EventOwner::Notify(id)),
                request,
                hop,
                None,
            );
        }
        if done {
            self.blf.served.remove(&id);
        }
    }

    /// The account a dialog-package request goes through.
    pub(super) fn blf_account(&self, owner: EventOwner) -> Option<AccountId> {
        match owner {
            EventOwner::Watch(w, _) => self.blf.watches.get(&w).map(|w| w.account),
            EventOwner::Notify(n) => self.blf.served.get(&n).map(|s| s.account),
        }
    }

    /// The final response to a dialog-package request.
    pub(super) fn blf_response(
        &mut self,
        now: Instant,
        owner: EventOwner,
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
            EventOwner::Watch(w, i) => {
                if let Some(s) = self
                    .blf
                    .watches
                    .get_mut(&w)
                    .and_then(|w| w.subscriptions.get_mut(i))
                {
                    s.handle_response(now, &request, response);
                }
                self.lamp_watch_flush(now, w);
            }
            EventOwner::Notify(n) => {
                if let Some(s) = self.blf.served.get_mut(&n) {
                    s.notifier.handle_response(now, response);
                }
                self.served_flush(now, n);
            }
        }
    }

    /// A dialog-package request no server answered.
    pub(super) fn blf_failed(&mut self, now: Instant, owner: EventOwner, route: RouteId) {
        let Some(request) = self.routes.get(&route).map(|r| r.request.clone()) else {
            return;
        };
        match owner {
            EventOwner::Watch(w, i) => {
                if let Some(s) = self
                    .blf
                    .watches
                    .get_mut(&w)
                    .and_then(|w| w.subscriptions.get_mut(i))
                {
                    s.handle_failure(now, &request);
                }
                self.lamp_watch_flush(now, w);
            }
            EventOwner::Notify(n) => {
                if let Some(s) = self.blf.served.get_mut(&n) {
                    s.notifier.handle_failure(now);
                }
                self.served_flush(now, n);
            }
        }
    }

    /// A watch's SUBSCRIBE challenged: again with the account's credentials.
    pub(super) fn retry_blf(
        &mut self,
        owner: EventOwner,
        request: &Message,
        response: &Message,
    ) -> Option<Message> {
        let account = self.blf_account(owner)?;
        match owner {
            EventOwner::Watch(..) => self.retry_subscribe(account, request, response),
            // Our NOTIFYs are not retried with credentials.
            EventOwner::Notify(_) => None,
        }
    }
}

/// Where an in-dialog request goes first: its first Route, else its Request-URI.
fn in_dialog_hop(request: &Message) -> String {
    request
        .header(HeaderName::Route)
        .map(|r| r.split(',').next().unwrap_or(r).trim().to_owned())
        .and_then(|r| {
            tincan_sip::message::typed::NameAddr::parse_as(HeaderName::Route, &r)
                .ok()
                .and_then(|n| n.uri().ok().map(|u| u.into_owned().to_string()))
        })
        .unwrap_or_else(|| request.uri().map(|u| u.to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(phase: DialogPhase, direction: Direction) -> DialogEntry {
        DialogEntry {
            id: "d".to_owned(),
            call_id: None,
            local_tag: None,
            remote_tag: None,
            direction: Some(direction),
            phase,
            event: None,
            code: None,
            local: None,
            remote: None,
        }
    }

    #[test]
    fn lamp_of_dialogs() {
        use DialogPhase::*;
        use Direction::*;
        assert_eq!(Lamp::of(&[]), Lamp::Idle);
        assert_eq!(Lamp::of(&[entry(Early, Recipient)]), Lamp::Ringing);
        assert_eq!(Lamp::of(&[entry(Trying, Initiator)]), Lamp::Busy);
        assert_eq!(
            Lamp::of(&[entry(Early, Recipient), entry(Confirmed, Recipient)]),
            Lamp::Busy
        );
        assert_eq!(Lamp::of(&[entry(Terminated, Recipient)]), Lamp::Idle);
    }
}
