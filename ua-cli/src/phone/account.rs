//! Accounts in the phone core: each account registers in slots, one per registrar set.
//!
//! - [`RegisterMode::Failover`]: one slot over every registrar URI of the account (or its
//!   AOR's domain), whose targets are tried in order by the failover machine; the first that
//!   accepts the REGISTER holds the binding, refreshed there until it fails, when the slot
//!   moves on to the other targets (and looks again from the top when none answers).
//! - [`RegisterMode::All`]: one slot per registrar, each registered on its own, so the
//!   account stays reachable while any one is up.
//!
//! Fail-back: while a slot is registered with a target of lower priority than others of its
//! list, the better ones are probed with OPTIONS, one at a time, at most every
//! [`PhoneConfig::fail_back_interval`](super::PhoneConfig::fail_back_interval) and only once
//! their cool-off in the health table is over. When one answers, the slot registers there
//! and removes the backup binding only after the preferred registrar accepted (no gap in
//! reachability); when that REGISTER fails, the slot stays with its backup.
//!
//! With RFC 5626 outbound on, each registration's flow is kept alive and replaced at once
//! when it fails (`super::flow`).
//!
//! Every state change is an [`AccountEvent`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_sip::auth::{Credentials, DigestClient};
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, SipUri, Uri};
use tincan_sip::register::{
    RegisterError, Registration, RegistrationConfig, RegistrationEvent, RegistrationState,
    reflexive_address,
};
use tincan_sip::resolve::failover::{AttemptFailure, FailedAttempt};
use tincan_sip::resolve::{Destination, ResolvedTarget, TargetKey};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{Target, Transport};

use super::config::{AccountConfig, RealmPolicy, RegisterMode};
use super::event::{
    AccountEvent, AccountId, PhoneEvent, RefusedChallenge, RegistrarState, UsageError,
};
use super::flow::Flow;
use super::route::{Owner, Phase, RouteId, transport_target};
use super::{PhoneCore, call::contact_uri};

/// Where a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SlotState {
    /// Not registering.
    Idle,
    /// Resolving the registrars (this many resolutions still owed).
    Locating(usize),
    /// A REGISTER is on its way over the targets.
    Registering,
    /// Registered; refreshed when the registration says.
    Registered,
    /// Waiting to try again.
    Waiting(Instant),
    /// Removing the binding.
    Unregistering,
}

/// One registration of an account.
pub(super) struct Slot {
    uris: Vec<String>,
    reg_id: u32,
    pub(super) state: SlotState,
    pub(super) candidates: Vec<ResolvedTarget>,
    errors: Vec<String>,
    /// The registration bound to `target`.
    pub(super) reg: Option<Registration>,
    pub(super) target: Option<Target>,
    route: Option<RouteId>,
    /// The next REGISTER of `reg` (a challenge answered), for the failover's next send.
    pending: Option<Message>,
    /// When the REGISTERs to the current target began (the `elapsed` of events).
    attempt_started: Instant,
    /// The target the last REGISTER of the current route went to.
    last_sent: Option<Target>,
    /// Stop once the binding is removed (or now, when there is none).
    stopping: bool,
    /// The registration's flow, kept alive (RFC 5626 outbound).
    pub(super) flow: Option<Flow>,
    /// The registrar answered keep-alives on an earlier flow: a new flow to it treats a
    /// missing STUN response as a failure from the start.
    pub(super) peer_answers: bool,
    /// Since when, and with which registrar, the slot registers again over a new flow
    /// after its flow failed.
    pub(super) recovering: Option<(Instant, Target)>,
    /// The binding at a lower-priority registrar while a fail-back is under way.
    backup: Option<Backup>,
    /// When the better registrars are probed next (registered at a lower-priority one).
    next_probe: Option<Instant>,
    /// The fail-back probe in flight: its transaction, target and deadline.
    probe: Option<(TransactionId, ResolvedTarget, Instant)>,
    /// What the registrar saw of our REGISTERs (`received`/`rport`, RFC 3581): our local
    /// address and the public one it maps to. Only for UDP registrations without an
    /// outbound flow.
    pub(super) public: Option<(SocketAddr, SocketAddr)>,
}

/// A binding kept during a fail-back, removed once the preferred registrar accepted.
struct Backup {
    reg: Registration,
    target: Target,
    /// Its REGISTER with Expires: 0 is on its way.
    route: Option<RouteId>,
    /// Its next REGISTER (a challenge answered), for the failover's next send.
    pending: Option<Message>,
    /// Its flow, kept for when the fail-back does not work.
    flow: Option<Flow>,
}

impl Slot {
    fn new(uris: Vec<String>, reg_id: u32, now: Instant) -> Slot {
        Slot {
            uris,
            reg_id,
            state: SlotState::Idle,
            candidates: Vec::new(),
            errors: Vec::new(),
            reg: None,
            target: None,
            route: None,
            pending: None,
            attempt_started: now,
            last_sent: None,
            stopping: false,
            flow: None,
            peer_answers: false,
            recovering: None,
            backup: None,
            next_probe: None,
            probe: None,
            public: None,
        }
    }

    /// The position of a target among the candidates.
    fn rank_of(&self, target: &Target) -> Option<usize> {
        self.candidates
            .iter()
            .position(|c| c.addr == target.addr && c.transport == target.transport)
    }

    /// Every candidate, the one of `target` first (a refresh or a new flow goes there
    /// first, then on to the others when it fails).
    fn first(&self, target: Option<&Target>) -> Vec<ResolvedTarget> {
        let Some(i) = target.and_then(|t| self.rank_of(t)) else {
            return self.candidates.clone();
        };
        let mut all = vec![self.candidates[i].clone()];
        all.extend(
            self.candidates
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c.clone()),
        );
        all
    }

    /// The candidate of `target` alone.
    fn only(&self, target: &Target) -> Vec<ResolvedTarget> {
        self.rank_of(target)
            .map(|i| vec![self.candidates[i].clone()])
            .unwrap_or_default()
    }
}

/// An account of the phone.
pub(super) struct Account {
    pub(super) config: AccountConfig,
    /// Answers challenges to this account's calls and in-dialog requests.
    pub(super) digest: DigestClient,
    /// The realms pinned by the first challenge the account answered
    /// ([`RealmPolicy::FirstChallenge`]); empty until then.
    pinned: Vec<String>,
    pub(super) slots: Vec<Slot>,
    call_id: String,
    tag: String,
}

impl Account {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|s| {
                let registered = s.state == SlotState::Registered;
                [
                    match s.state {
                        SlotState::Registered => {
                            s.reg.as_ref().and_then(Registration::poll_timeout)
                        }
                        SlotState::Waiting(t) => Some(t),
                        _ => None,
                    },
                    s.flow.as_ref().and_then(|f| f.keepalive.poll_timeout()),
                    s.next_probe.filter(|_| registered && s.probe.is_none()),
                    s.probe.as_ref().map(|p| p.2),
                ]
            })
            .flatten()
            .min()
    }

    pub(super) fn is_idle(&self) -> bool {
        self.slots.iter().all(|s| {
            matches!(s.state, SlotState::Idle | SlotState::Waiting(_)) && s.backup.is_none()
        })
    }
}

impl PhoneCore {
    /// Adds an account; it starts registering at once when its configuration says so.
    ///
    /// # Errors
    ///
    /// [`UsageError::BadAccount`] when its address of record is not a SIP URI.
    pub fn add_account(
        &mut self,
        now: Instant,
        config: AccountConfig,
    ) -> Result<AccountId, UsageError> {
        let bad = |reason: String| UsageError::BadAccount {
            account: config.name.clone(),
            reason,
        };
        SipUri::parse(&config.aor).map_err(|e| bad(format!("aor {}: {e}", config.aor)))?;
        if self.accounts.iter().any(|a| a.config.name == config.name) {
            return Err(bad("an account of that name exists".into()));
        }
        let uris = if config.registrars.is_empty() {
            vec![config.aor.clone()]
        } else {
            config.registrars.clone()
        };
        let slots: Vec<Vec<String>> = match config.mode {
            RegisterMode::All => uris.into_iter().map(|u| vec![u]).collect(),
            _ => vec![uris],
        };
        let id = AccountId(self.accounts.len());
        let account = Account {
            digest: DigestClient::new(config.username.clone(), config.password.clone()),
            pinned: Vec::new(),
            slots: slots
                .into_iter()
                .enumerate()
                .map(|(i, uris)| Slot::new(uris, i as u32 + 1, now))
                .collect(),
            call_id: format!("{}@tincan", self.token(20)),
            tag: self.token(10),
            config,
        };
        let register = account.config.register;
        self.accounts.push(account);
        if register && !self.shutting_down {
            for slot in 0..self.accounts[id.0].slots.len() {
                self.slot_start(now, id, slot);
            }
        }
        self.process(now);
        Ok(id)
    }

    /// The account of this name.
    pub fn account_by_name(&self, name: &str) -> Option<AccountId> {
        self.accounts
            .iter()
            .position(|a| a.config.name == name)
            .map(AccountId)
    }

    /// An account's configuration.
    pub fn account_config(&self, account: AccountId) -> Option<&AccountConfig> {
        self.accounts.get(account.0).map(|a| &a.config)
    }

    /// Whether the account holds at least one binding.
    pub fn is_registered(&self, account: AccountId) -> bool {
        self.accounts
            .get(account.0)
            .is_some_and(|a| a.slots.iter().any(|s| s.state == SlotState::Registered))
    }

    /// The registrars the account is registered with now (one per slot that holds a
    /// binding).
    pub fn registrars(&self, account: AccountId) -> Vec<Target> {
        self.accounts
            .get(account.0)
            .map(|a| {
                a.slots
                    .iter()
                    .filter(|s| s.state == SlotState::Registered)
                    .filter_map(|s| s.target.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The digest realms the account's password may answer now: `None` for any
    /// (`realm = "*"`, or none pinned yet by a first challenge).
    pub(super) fn answerable_realms(&self, account: AccountId) -> Option<Vec<String>> {
        let Some(a) = self.accounts.get(account.0) else {
            return Some(Vec::new());
        };
        match &a.config.realm {
            RealmPolicy::Only(list) => Some(list.clone()),
            RealmPolicy::Any => None,
            RealmPolicy::FirstChallenge if a.pinned.is_empty() => None,
            RealmPolicy::FirstChallenge => Some(a.pinned.clone()),
        }
    }

    /// `request` answers a challenge to the account: when it trusts its first challenge and
    /// none is pinned yet, the realms of its credentials are pinned (trust on first use).
    pub(super) fn pin_realms(&mut self, account: AccountId, request: &Message) {
        let Some(a) = self.accounts.get_mut(account.0) else {
            return;
        };
        if a.config.realm != RealmPolicy::FirstChallenge || !a.pinned.is_empty() {
            return;
        }
        a.pinned = credential_realms(request);
    }

    /// The refusal of a challenge of `realm` for `method`, with the realms the account
    /// answers.
    pub(super) fn refused_challenge(
        &self,
        account: AccountId,
        method: &str,
        status: u16,
        realm: String,
    ) -> RefusedChallenge {
        RefusedChallenge {
            method: method.to_owned(),
            status,
            realm,
            allowed: self.answerable_realms(account).unwrap_or_default(),
        }
    }

    /// Removes the account's bindings (REGISTER with Expires: 0) and stops registering.
    pub fn unregister(&mut self, now: Instant, account: AccountId) {
        self.account_stop(now, account.0);
        self.process(now);
    }

    /// The registrars `account` knows now: every target its registrar URIs (or its domain)
    /// resolved to, in the order they are tried, each with whether a registration is bound
    /// there and what the phone's target health table says of it (a target that failed cools
    /// off before it is tried again, RFC 3263 §4.3). Empty while the registrars are being
    /// located, and for an unknown account or one that does not register.
    pub fn registrar_health(&self, now: Instant, account: AccountId) -> Vec<RegistrarState> {
        let Some(a) = self.accounts.get(account.0) else {
            return Vec::new();
        };
        a.slots
            .iter()
            .flat_map(|s| {
                s.candidates.iter().map(move |c| {
                    let target = Target::new(c.transport, c.addr);
                    RegistrarState {
                        bound: s.state == SlotState::Registered
                            && s.target.as_ref() == Some(&target),
                        health: self.health.status(now, TargetKey::of(c)),
                        target,
                    }
                })
            })
            .collect()
    }

    /// Locates the slot's registrars.
    fn slot_start(&mut self, now: Instant, account: AccountId, slot: usize) {
        let transport = self.accounts[account.0].config.transport;
        let s = &mut self.accounts[account.0].slots[slot];
        s.candidates.clear();
        s.errors.clear();
        s.state = SlotState::Locating(s.uris.len());
        for uri in s.uris.clone() {
            match Destination::parse(&uri) {
                Ok(mut dest) => {
                    if let Some(t) = transport {
                        dest.transport = Some(t.param().to_owned());
                    }
                    let res = self.dns.start(now, dest, &mut *self.rng);
                    self.account_resolutions.insert(res, (account, slot, uri));
                }
                Err(e) => self.slot_located(now, account, slot, Err(format!("{uri}: {e}"))),
            }
        }
    }

    /// One registrar of the slot was resolved.
    pub(super) fn slot_located(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        result: Result<Vec<ResolvedTarget>, String>,
    ) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let SlotState::Locating(n) = s.state else {
            return;
        };
        match result {
            Ok(t) => s.candidates.extend(t),
            Err(e) => s.errors.push(e),
        }
        if n > 1 {
            s.state = SlotState::Locating(n - 1);
            return;
        }
        if s.candidates.is_empty() {
            self.register_failed(now, account, slot, Vec::new(), Vec::new());
            return;
        }
        s.reg = None;
        s.target = None;
        s.recovering = None;
        let candidates = s.candidates.clone();
        self.slot_route(now, account, slot, candidates);
    }

    /// Sends the slot's next REGISTER over `targets` (built for each target when the
    /// failover machine picks it).
    fn slot_route(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        targets: Vec<ResolvedTarget>,
    ) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        s.state = SlotState::Registering;
        s.last_sent = None;
        s.next_probe = None;
        let route = self.register_route(now, (account, slot), false, targets);
        if let Some(s) = self.slot_mut(account, slot) {
            s.route = Some(route);
        }
    }

    pub(super) fn slot_mut(&mut self, account: AccountId, slot: usize) -> Option<&mut Slot> {
        self.accounts
            .get_mut(account.0)
            .and_then(|a| a.slots.get_mut(slot))
    }

    /// The REGISTER for `target`: the slot's registration when it is bound there, else a new
    /// registration for that target's flow.
    pub(super) fn register_request(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        target: &Target,
    ) -> Option<Message> {
        let local = self
            .endpoint
            .local_address_for(target.transport, target.addr);
        let a = self.accounts.get_mut(account.0)?;
        let (call_id, tag) = (a.call_id.clone(), a.tag.clone());
        let config = a.config.clone();
        let s = a.slots.get_mut(slot)?;
        if s.last_sent.as_ref() != Some(target) {
            s.attempt_started = now;
            s.last_sent = Some(target.clone());
        }
        if s.target.as_ref() == Some(target)
            && let Some(reg) = s.reg.as_mut()
            && let Some(request) = s.pending.take().or_else(|| reg.poll_request())
        {
            return Some(request);
        }
        let user = config
            .aor
            .split_once(':')
            .and_then(|(_, r)| r.split_once('@'))
            .map_or_else(|| config.username.clone(), |(u, _)| u.to_owned());
        let local = local?;
        let contact = contact_uri(&user, local, target.transport);
        let mut rc =
            RegistrationConfig::new(&config.aor, &contact, &config.username, &config.password)
                .ok()?;
        rc.expires = config.expires;
        rc.display_name = config.display_name.clone();
        if let Some(id) = &config.instance_id {
            rc.instance_id = Some(id.clone());
            rc.reg_id = Some(s.reg_id);
        }
        let mut reg = Registration::new(rc, call_id, tag);
        reg.start(now);
        let request = reg.poll_request();
        s.reg = Some(reg);
        if s.target.as_ref() != Some(target) {
            // Another registrar: what was learnt of the old one's flow does not carry over.
            s.flow = None;
            s.peer_answers = false;
            s.public = None;
        }
        s.target = Some(target.clone());
        request
    }

    /// An attempt of the slot's REGISTER failed at one target (the route moves on).
    pub(super) fn register_attempt_failed(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        attempt: FailedAttempt,
    ) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        if s.state != SlotState::Registering {
            return;
        }
        let elapsed = now.saturating_duration_since(s.attempt_started);
        self.account_event(account, AccountEvent::Failed { attempt, elapsed });
    }

    /// A final response (or provisional) to a REGISTER of the slot.
    pub(super) fn register_response(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        route: RouteId,
        response: &Message,
    ) {
        let status = response.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        let realms = self.answerable_realms(account);
        let rng = &mut *self.rng;
        let Some(s) = self
            .accounts
            .get_mut(account.0)
            .and_then(|a| a.slots.get_mut(slot))
        else {
            return;
        };
        let Some(reg) = s.reg.as_mut() else {
            return;
        };
        reg.set_realms(realms);
        reg.handle_response(now, response, rng);
        if let Some(next) = reg.poll_request() {
            // A challenge answered, or a 423 with a longer expiry: again to the same target.
            s.pending = Some(next.clone());
            self.pin_realms(account, &next);
            self.retry_same(now, route, next);
            return;
        }
        let mut last = None;
        if let Some(reg) = self.slot_mut(account, slot).and_then(|s| s.reg.as_mut()) {
            while let Some(ev) = reg.poll_event() {
                last = Some(ev);
            }
        }
        let connection = self.receiving;
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let target = s.target.clone();
        let elapsed = now.saturating_duration_since(s.attempt_started);
        match last {
            Some(RegistrationEvent::Registered { expires, bindings }) => {
                s.state = SlotState::Registered;
                s.route = None;
                let recovering = s.recovering.take();
                let Some(registrar) = target else { return };
                self.health.mark_ok(TargetKey {
                    transport: registrar.transport,
                    addr: registrar.addr,
                });
                let expires = Duration::from_secs(u64::from(expires));
                let event = match recovering.filter(|(_, t)| *t == registrar) {
                    Some((since, _)) => AccountEvent::FlowRecovered {
                        registrar: registrar.clone(),
                        expires,
                        elapsed: now.saturating_duration_since(since),
                    },
                    None => AccountEvent::Registered {
                        registrar: registrar.clone(),
                        expires,
                        bindings,
                        elapsed,
                    },
                };
                self.account_event(account, event);
                self.mwi_registered(now, account, &registrar);
                self.presence_registered(now, account, &registrar);
                self.blf_registered(now, account, &registrar);
                let connection = connection
                    .filter(|(t, a, _)| *t == registrar.transport && *a == registrar.addr)
                    .map(|(_, _, c)| c);
                self.watch_flow(now, account, slot, connection);
                self.schedule_fail_back(now, account, slot);
                self.unbind_backup(now, account, slot);
                self.learn_public_address(now, account, slot, response);
            }
            Some(RegistrationEvent::Unregistered) => {
                s.state = SlotState::Idle;
                s.reg = None;
                s.route = None;
                self.drop_flow(account, slot);
                if let Some(registrar) = target {
                    self.account_event(account, AccountEvent::Unregistered { registrar });
                }
            }
            Some(RegistrationEvent::Failed(error)) => {
                s.route = None;
                s.recovering = None;
                let Some(registrar) = target else { return };
                let event = match error {
                    RegisterError::RealmRefused { realm, status } => {
                        AccountEvent::ChallengeRefused {
                            registrar,
                            challenge: self.refused_challenge(account, "REGISTER", status, realm),
                        }
                    }
                    RegisterError::AuthenticationFailed { .. }
                    | RegisterError::Rejected { status: 403, .. } => {
                        AccountEvent::AuthenticationFailed {
                            registrar,
                            status,
                            reason: error.to_string(),
                        }
                    }
                    other => AccountEvent::Rejected {
                        registrar,
                        status,
                        reason: other.to_string(),
                    },
                };
                self.account_event(account, event);
                if self.restore_backup(now, account, slot) {
                    return;
                }
                self.drop_flow(account, slot);
                if let Some(s) = self.slot_mut(account, slot) {
                    s.state = SlotState::Waiting(now + Duration::from_secs(60));
                }
            }
            _ => {}
        }
    }

    /// After a 200 to a REGISTER: what the registrar saw of it (`received`/`rport` of the
    /// top Via, RFC 3581 §4). When that is not the address our Contact names (a NAT in
    /// between), the registration is rewritten to a Contact of the public address, the old
    /// binding removed by the same REGISTER. Not over TCP/TLS (the registrar answers over
    /// the connection) nor when the registrar runs RFC 5626 outbound (`Require: outbound`
    /// in its 200, §4.2.1): it reaches us over the flow, whatever the Contact says.
    fn learn_public_address(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        response: &Message,
    ) {
        let Some(seen) = reflexive_address(response) else {
            return;
        };
        let outbound = self
            .accounts
            .get(account.0)
            .is_some_and(|a| a.config.instance_id.is_some())
            && response
                .header_lines_named("Require")
                .filter_map(Result::ok)
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case("outbound"));
        let Some(target) = self.slot_mut(account, slot).and_then(|s| s.target.clone()) else {
            return;
        };
        if outbound || target.transport != Transport::Udp {
            return;
        }
        let local = self
            .endpoint
            .local_address_for(target.transport, target.addr);
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let Some(reg) = s.reg.as_mut() else {
            return;
        };
        let contact = reg.config().contact.clone();
        let named = contact
            .host
            .ip()
            .map(|ip| SocketAddr::new(ip, contact.port.unwrap_or(5060)));
        if let Some(local) = local {
            s.public = (local != seen).then_some((local, seen));
        }
        if named == Some(seen) {
            return;
        }
        let user = contact.user.as_deref().unwrap_or("").to_owned();
        let text = contact_uri(&user, seen, target.transport);
        let Ok(new) = SipUri::parse(&text).map(SipUri::into_owned) else {
            return;
        };
        if !reg.rewrite_contact(new) {
            return;
        }
        let targets = s.only(&target);
        if let Some(from) = named {
            self.account_event(
                account,
                AccountEvent::ContactRewritten {
                    registrar: target.clone(),
                    from,
                    to: seen,
                },
            );
        }
        self.slot_route(now, account, slot, targets);
    }

    /// The address a Contact of `account` names for a message sent from `local`: the public
    /// address its registrar saw ([`AccountEvent::ContactRewritten`]) when a UDP
    /// registration from `local` learnt one, else `local`.
    pub(super) fn contact_address(
        &self,
        account: Option<AccountId>,
        transport: Transport,
        local: SocketAddr,
    ) -> SocketAddr {
        if transport != Transport::Udp {
            return local;
        }
        account
            .and_then(|a| self.accounts.get(a.0))
            .and_then(|a| {
                a.slots
                    .iter()
                    .filter_map(|s| s.public)
                    .find(|(l, _)| *l == local)
            })
            .map_or(local, |(_, public)| public)
    }

    /// The public address the account's registrar saw its REGISTERs come from, when it is
    /// not the local one (behind a NAT; RFC 3581 `received`/`rport`). `None` when no
    /// registration learnt one (not registered, no NAT seen, TCP/TLS or an outbound flow).
    pub fn public_address(&self, account: AccountId) -> Option<SocketAddr> {
        self.accounts
            .get(account.0)?
            .slots
            .iter()
            .find_map(|s| s.public.map(|(_, p)| p))
    }

    /// Sends a route's request again to the same target (a challenge answered).
    fn retry_same(&mut self, now: Instant, route: RouteId, request: Message) {
        if let Some(r) = self.routes.get_mut(&route) {
            r.request = request;
            if let Phase::Sending(f) = &mut r.phase {
                let _ = f.retry_same(now, &self.health);
            }
        }
        self.drive_route(now, route);
    }

    /// No registrar of the slot could be reached (or none was found).
    pub(super) fn register_failed(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        tried: Vec<FailedAttempt>,
        errors: Vec<String>,
    ) {
        let retry_in = self
            .health
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(30))
            .clamp(Duration::from_secs(5), Duration::from_secs(60));
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let unregistering = s.state == SlotState::Unregistering;
        s.route = None;
        s.recovering = None;
        let mut errors_all = std::mem::take(&mut s.errors);
        errors_all.extend(errors);
        if unregistering || s.stopping {
            s.state = SlotState::Idle;
            s.reg = None;
            self.drop_flow(account, slot);
            let target = self.slot_mut(account, slot).and_then(|s| s.target.take());
            if let Some(registrar) = target {
                self.account_event(account, AccountEvent::Unregistered { registrar });
            }
            return;
        }
        // A fail-back that did not work: the backup binding is still there.
        if self.restore_backup(now, account, slot) {
            return;
        }
        self.drop_flow(account, slot);
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        s.state = SlotState::Waiting(now + retry_in);
        s.reg = None;
        s.target = None;
        // Each failed attempt was reported as it failed.
        self.account_event(
            account,
            AccountEvent::Unavailable {
                tried,
                errors: errors_all,
                retry_in,
            },
        );
    }

    /// Refreshes, keep-alives, fail-back probes and retries that are due.
    pub(super) fn account_timeout(&mut self, now: Instant, account: usize) {
        let id = AccountId(account);
        for slot in 0..self.accounts[account].slots.len() {
            self.flow_timeout(now, id, slot);
            self.fail_back_timeout(now, id, slot);
            let state = self.accounts[account].slots[slot].state;
            match state {
                SlotState::Waiting(t) if t <= now => self.slot_start(now, id, slot),
                SlotState::Registered => {
                    let rng = &mut *self.rng;
                    let s = &mut self.accounts[account].slots[slot];
                    let Some(reg) = s.reg.as_mut() else { continue };
                    if reg.poll_timeout().is_none_or(|t| t > now) {
                        continue;
                    }
                    reg.handle_timeout(now, rng);
                    if !matches!(reg.state(), RegistrationState::Registering) {
                        continue;
                    }
                    // The refresh goes to the registrar that holds the binding; when it
                    // fails, on to the others.
                    let targets = s.first(s.target.as_ref());
                    self.slot_route(now, id, slot, targets);
                }
                _ => {}
            }
        }
    }

    /// Unregisters every slot of the account (or stops trying).
    pub(super) fn account_stop(&mut self, now: Instant, account: usize) {
        let id = AccountId(account);
        self.mwi_stop(now, id);
        self.presence_stop(now, id);
        self.blf_stop(now, id);
        for slot in 0..self.accounts[account].slots.len() {
            self.drop_flow(id, slot);
            self.stop_probe(id, slot);
            // A backup kept by a fail-back under way goes too.
            self.unbind_backup(now, id, slot);
            let s = &mut self.accounts[account].slots[slot];
            s.stopping = true;
            s.next_probe = None;
            match s.state {
                SlotState::Registered | SlotState::Registering => {
                    let Some(reg) = s.reg.as_mut() else {
                        s.state = SlotState::Idle;
                        continue;
                    };
                    if !reg.unregister(now) {
                        s.state = SlotState::Idle;
                        continue;
                    }
                    let Some(target) = s.target.clone() else {
                        s.state = SlotState::Idle;
                        continue;
                    };
                    let known = s.only(&target);
                    if let Some(old) = s.route.take()
                        && let Some(r) = self.routes.get_mut(&old)
                    {
                        r.phase = Phase::Done;
                    }
                    let s = &mut self.accounts[account].slots[slot];
                    s.state = SlotState::Unregistering;
                    s.last_sent = None;
                    let route = self.register_route(now, (id, slot), false, known);
                    if let Some(s) = self.slot_mut(id, slot) {
                        s.route = Some(route);
                    }
                }
                _ => s.state = SlotState::Idle,
            }
        }
    }

    pub(super) fn account_event(&mut self, account: AccountId, event: AccountEvent) {
        self.events
            .push_back(PhoneEvent::Account { account, event });
    }

    /// The REGISTER of a flow that failed: the same registration again at once, to the same
    /// registrar first (a new connection opens for it), then on to the others
    /// (RFC 5626 §4.5).
    pub(super) fn register_again(&mut self, now: Instant, account: AccountId, slot: usize) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let Some(reg) = s.reg.as_mut() else {
            return;
        };
        reg.start(now);
        s.recovering = s.target.clone().map(|t| (now, t));
        let targets = s.first(s.target.as_ref());
        self.slot_route(now, account, slot, targets);
    }

    // --------------------------------------------------------------------- fail-back

    /// After a registration: when the slot is bound to a target of lower priority than
    /// others of its list, the better ones are probed from now on.
    fn schedule_fail_back(&mut self, now: Instant, account: AccountId, slot: usize) {
        let interval = self.config.fail_back_interval;
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let rank = s.target.as_ref().and_then(|t| s.rank_of(t)).unwrap_or(0);
        if rank > 0 {
            s.next_probe.get_or_insert(now + interval);
        } else {
            s.next_probe = None;
        }
    }

    /// Starts a due fail-back probe, or gives up one whose budget passed.
    fn fail_back_timeout(&mut self, now: Instant, account: AccountId, slot: usize) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        if let Some((tx, _, deadline)) = &s.probe
            && *deadline <= now
        {
            let tx = *tx;
            let waited = self.config.probe_budget;
            self.probe_failed(now, tx, AttemptFailure::NoResponse { waited });
            return;
        }
        let interval = self.config.fail_back_interval;
        let s = &mut self.accounts[account.0].slots[slot];
        if s.state != SlotState::Registered
            || s.probe.is_some()
            || s.next_probe.is_none_or(|t| t > now)
        {
            return;
        }
        s.next_probe = Some(now + interval);
        let rank = s.target.as_ref().and_then(|t| s.rank_of(t)).unwrap_or(0);
        let better = s.candidates[..rank]
            .iter()
            .find(|c| !self.health.is_down(now, TargetKey::of(c)))
            .cloned();
        let Some(target) = better else { return };
        let aor = self.accounts[account.0].config.aor.clone();
        let Some(request) = self.probe_request(&aor, &target) else {
            return;
        };
        let transport_target = transport_target(&target);
        self.ensure_local(&transport_target);
        let Ok(tx) = self.endpoint.send_request(now, request, transport_target) else {
            self.health.mark_failed(
                now,
                TargetKey::of(&target),
                AttemptFailure::TransportError.cause(),
            );
            return;
        };
        self.probes.insert(tx, (account, slot));
        let deadline = now + self.config.probe_budget;
        if let Some(s) = self.slot_mut(account, slot) {
            s.probe = Some((tx, target, deadline));
        }
    }

    /// An OPTIONS probe to a preferred registrar: `sip:addr`, From the account's AOR.
    fn probe_request(&mut self, aor: &str, target: &ResolvedTarget) -> Option<Message> {
        let uri = Uri::parse(&format!("sip:{}", target.addr))
            .ok()?
            .into_owned();
        let tag = self.token(8);
        let call_id = format!("{}@tincan", self.token(20));
        Some(
            RequestBuilder::new(Method::Options, &uri)
                .header(HeaderName::From, &format!("<{aor}>;tag={tag}"))
                .header(HeaderName::To, &format!("<{uri}>"))
                .call_id(&call_id)
                .cseq(1)
                .build(),
        )
    }

    /// A fail-back probe got a response: the registrar is back; the slot registers there.
    pub(super) fn probe_answered(&mut self, now: Instant, tx: TransactionId, response: &Message) {
        if response.status().unwrap_or(0) < 200 {
            return;
        }
        let Some((account, slot)) = self.probes.remove(&tx) else {
            return;
        };
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let Some((_, target, _)) = s.probe.take() else {
            return;
        };
        self.health.mark_ok(TargetKey::of(&target));
        self.fail_back(now, account, slot);
        self.process(now);
    }

    /// A fail-back probe got no answer: the registrar cools off again.
    pub(super) fn probe_failed(&mut self, now: Instant, tx: TransactionId, why: AttemptFailure) {
        let Some((account, slot)) = self.probes.remove(&tx) else {
            return;
        };
        self.endpoint.abandon(tx);
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        if let Some((_, target, _)) = s.probe.take() {
            self.health
                .mark_failed(now, TargetKey::of(&target), why.cause());
        }
    }

    /// An ICMP unreachable for the target of a probe.
    pub(super) fn probes_unreachable(&mut self, now: Instant, dest: std::net::SocketAddr) {
        let hit: Vec<TransactionId> = self
            .probes
            .iter()
            .filter(|(_, (a, s))| {
                self.accounts[a.0].slots[*s]
                    .probe
                    .as_ref()
                    .is_some_and(|p| p.1.addr == dest)
            })
            .map(|(tx, _)| *tx)
            .collect();
        for tx in hit {
            self.probe_failed(now, tx, AttemptFailure::Unreachable);
        }
    }

    fn stop_probe(&mut self, account: AccountId, slot: usize) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        if let Some((tx, _, _)) = s.probe.take() {
            self.probes.remove(&tx);
            self.endpoint.abandon(tx);
        }
    }

    /// Registers with the better registrars, keeping the current binding as a backup until
    /// one accepts.
    fn fail_back(&mut self, now: Instant, account: AccountId, slot: usize) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        if s.state != SlotState::Registered || s.backup.is_some() {
            return;
        }
        let flow = s.flow.take();
        let (Some(reg), Some(target)) = (s.reg.take(), s.target.take()) else {
            return;
        };
        let rank = s.rank_of(&target).unwrap_or(0);
        let better = s.candidates[..rank].to_vec();
        s.backup = Some(Backup {
            reg,
            target,
            route: None,
            pending: None,
            flow,
        });
        s.peer_answers = false;
        self.slot_route(now, account, slot, better);
    }

    /// The fail-back did not work: the slot goes on with its backup binding. False when
    /// there is none.
    fn restore_backup(&mut self, now: Instant, account: AccountId, slot: usize) -> bool {
        let Some(s) = self.slot_mut(account, slot) else {
            return false;
        };
        let Some(backup) = s.backup.take_if(|b| b.route.is_none()) else {
            return false;
        };
        s.reg = Some(backup.reg);
        s.target = Some(backup.target);
        s.state = SlotState::Registered;
        // Its flow goes on (a missed ping is sent at once).
        s.flow = backup.flow;
        s.peer_answers = s.flow.as_ref().is_some_and(|f| f.keepalive.peer_answered());
        self.watch_flow(now, account, slot, None);
        self.schedule_fail_back(now, account, slot);
        true
    }

    /// Removes the backup binding of a fail-back (the preferred registrar accepted).
    fn unbind_backup(&mut self, now: Instant, account: AccountId, slot: usize) {
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let Some(backup) = s.backup.as_mut() else {
            return;
        };
        if backup.route.is_some() {
            return;
        }
        if !backup.reg.unregister(now) {
            s.backup = None;
            return;
        }
        let target = backup.target.clone();
        let known = s.only(&target);
        let route = self.register_route(now, (account, slot), true, known);
        if let Some(b) = self.slot_mut(account, slot).and_then(|s| s.backup.as_mut()) {
            b.route = Some(route);
        }
    }

    /// The REGISTER (Expires: 0) of a slot's backup binding.
    pub(super) fn unbind_request(&mut self, account: AccountId, slot: usize) -> Option<Message> {
        let b = self.slot_mut(account, slot)?.backup.as_mut()?;
        b.pending.take().or_else(|| b.reg.poll_request())
    }

    /// A response to the REGISTER removing the backup binding.
    pub(super) fn unbind_response(
        &mut self,
        now: Instant,
        account: AccountId,
        slot: usize,
        route: RouteId,
        response: &Message,
    ) {
        if response.status().unwrap_or(0) < 200 {
            return;
        }
        let realms = self.answerable_realms(account);
        let rng = &mut *self.rng;
        let Some(b) = self
            .accounts
            .get_mut(account.0)
            .and_then(|a| a.slots.get_mut(slot))
            .and_then(|s| s.backup.as_mut())
        else {
            return;
        };
        b.reg.set_realms(realms);
        b.reg.handle_response(now, response, rng);
        if let Some(next) = b.reg.poll_request() {
            b.pending = Some(next.clone());
            self.retry_same(now, route, next);
            return;
        }
        self.unbind_done(account, slot);
    }

    /// The backup binding is gone (or could not be removed: it expires by itself).
    pub(super) fn unbind_done(&mut self, account: AccountId, slot: usize) {
        let Some(b) = self.slot_mut(account, slot).and_then(|s| s.backup.take()) else {
            return;
        };
        self.account_event(
            account,
            AccountEvent::Unregistered {
                registrar: b.target,
            },
        );
    }
}

impl PhoneCore {
    /// A route for a REGISTER of an account's slot over `targets` (`unbind`: the one removing
    /// its backup binding); the request itself is built for each target when the failover
    /// machine picks it.
    fn register_route(
        &mut self,
        now: Instant,
        (account, slot): (AccountId, usize),
        unbind: bool,
        targets: Vec<ResolvedTarget>,
    ) -> RouteId {
        let owner = if unbind {
            Owner::Unbind(account, slot)
        } else {
            Owner::Register(account, slot)
        };
        let hop = self.accounts[account.0].slots[slot].uris[0].clone();
        let placeholder = placeholder_register(&self.accounts[account.0].config.aor);
        self.start_route(now, owner, placeholder, hop, Some(targets))
    }
}

/// The realms of the credentials a request carries.
fn credential_realms(request: &Message) -> Vec<String> {
    ["Authorization", "Proxy-Authorization"]
        .into_iter()
        .flat_map(|h| request.header_lines_named(h).filter_map(Result::ok))
        .filter_map(|v| Credentials::parse(v).ok())
        .filter_map(|c| c.param("realm").map(str::to_owned))
        .collect()
}

/// A REGISTER standing for the ones built per target (the route asks for each).
fn placeholder_register(aor: &str) -> Message {
    let uri = tincan_sip::message::Uri::parse(aor)
        .map(tincan_sip::message::Uri::into_owned)
        .unwrap_or_else(|_| {
            tincan_sip::message::Uri::parse("sip:invalid")
                .expect("a valid literal")
                .into_owned()
        });
    tincan_sip::message::RequestBuilder::new(tincan_sip::message::Method::Register, &uri).build()
}
