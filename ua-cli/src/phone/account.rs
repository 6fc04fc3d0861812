//! Accounts in the phone core: each account registers in slots, one per registrar set.
//!
//! - [`RegisterMode::Failover`]: one slot over every registrar URI of the account (or its
//!   AOR's domain), whose targets are tried in order by the failover machine; the first that
//!   accepts the REGISTER holds the binding, refreshed there until it fails, when the slot
//!   looks again from the top.
//! - [`RegisterMode::All`]: one slot per registrar, each registered on its own, so the
//!   account stays reachable while any one is up.
//!
//! Every state change is an [`AccountEvent`].

use std::time::{Duration, Instant};

use tincan_sip::auth::DigestClient;
use tincan_sip::message::{Message, SipUri};
use tincan_sip::register::{
    RegisterError, Registration, RegistrationConfig, RegistrationEvent, RegistrationState,
};
use tincan_sip::resolve::failover::FailedAttempt;
use tincan_sip::resolve::{Destination, ResolvedTarget};
use tincan_sip::transport::Target;

use super::config::{AccountConfig, RegisterMode};
use super::event::{AccountEvent, AccountId, PhoneEvent, UsageError};
use super::route::{Owner, Phase, RouteId};
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
    candidates: Vec<ResolvedTarget>,
    errors: Vec<String>,
    /// The registration bound to `target`.
    reg: Option<Registration>,
    target: Option<Target>,
    route: Option<RouteId>,
    /// The next REGISTER of `reg` (a challenge answered), for the failover's next send.
    pending: Option<Message>,
    started: Instant,
    /// Stop once the binding is removed (or now, when there is none).
    stopping: bool,
}

/// An account of the phone.
pub(super) struct Account {
    pub(super) config: AccountConfig,
    /// Answers challenges to this account's calls and in-dialog requests.
    pub(super) digest: DigestClient,
    pub(super) slots: Vec<Slot>,
    call_id: String,
    tag: String,
}

impl Account {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s.state {
                SlotState::Registered => s.reg.as_ref().and_then(Registration::poll_timeout),
                SlotState::Waiting(t) => Some(t),
                _ => None,
            })
            .min()
    }

    pub(super) fn is_idle(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Idle | SlotState::Waiting(_)))
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
            slots: slots
                .into_iter()
                .enumerate()
                .map(|(i, uris)| Slot {
                    uris,
                    reg_id: i as u32 + 1,
                    state: SlotState::Idle,
                    candidates: Vec::new(),
                    errors: Vec::new(),
                    reg: None,
                    target: None,
                    route: None,
                    pending: None,
                    started: now,
                    stopping: false,
                })
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

    /// Removes the account's bindings (REGISTER with Expires: 0) and stops registering.
    pub fn unregister(&mut self, now: Instant, account: AccountId) {
        self.account_stop(now, account.0);
        self.process(now);
    }

    /// Locates the slot's registrars.
    fn slot_start(&mut self, now: Instant, account: AccountId, slot: usize) {
        let transport = self.accounts[account.0].config.transport;
        let s = &mut self.accounts[account.0].slots[slot];
        s.candidates.clear();
        s.errors.clear();
        s.started = now;
        s.state = SlotState::Locating(s.uris.len());
        for uri in s.uris.clone() {
            match Destination::parse(&uri) {
                Ok(mut dest) => {
                    if let Some(t) = transport {
                        dest.transport = Some(t.param().to_owned());
                    }
                    let res = self.dns.start(now, dest, &mut *self.rng);
                    self.account_resolutions.insert(res, (account, slot));
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
        let Some(s) = self
            .accounts
            .get_mut(account.0)
            .and_then(|a| a.slots.get_mut(slot))
        else {
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
        s.state = SlotState::Registering;
        s.reg = None;
        s.target = None;
        let hop = s.uris[0].clone();
        let candidates = s.candidates.clone();
        // The request is built for each target when the failover machine picks it.
        let placeholder = placeholder_register(&self.accounts[account.0].config.aor);
        let route = self.start_route(
            now,
            Owner::Register(account, slot),
            placeholder,
            hop,
            Some(candidates),
        );
        if let Some(s) = self.slot_mut(account, slot) {
            s.route = Some(route);
        }
    }

    fn slot_mut(&mut self, account: AccountId, slot: usize) -> Option<&mut Slot> {
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
        if let Some(id) = &config.instance_id {
            rc.instance_id = Some(id.clone());
            rc.reg_id = Some(s.reg_id);
        }
        let mut reg = Registration::new(rc, call_id, tag);
        reg.start(now);
        let request = reg.poll_request();
        s.reg = Some(reg);
        s.target = Some(target.clone());
        request
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
        reg.handle_response(now, response, rng);
        if let Some(next) = reg.poll_request() {
            // A challenge answered, or a 423 with a longer expiry: again to the same target.
            if let Some(r) = self.routes.get_mut(&route) {
                r.request = next;
                if let Phase::Sending(f) = &mut r.phase {
                    let _ = f.retry_same(now, &self.health);
                }
            }
            // Kept for `register_request`, which the failover's Send asks.
            let pending = self.routes.get(&route).map(|r| r.request.clone());
            if let Some(s) = self.slot_mut(account, slot) {
                s.pending = pending;
            }
            self.drive_route(now, route);
            return;
        }
        let mut last = None;
        if let Some(reg) = self.slot_mut(account, slot).and_then(|s| s.reg.as_mut()) {
            while let Some(ev) = reg.poll_event() {
                last = Some(ev);
            }
        }
        let Some(s) = self.slot_mut(account, slot) else {
            return;
        };
        let target = s.target.clone();
        let elapsed = now.saturating_duration_since(s.started);
        match last {
            Some(RegistrationEvent::Registered { expires, bindings }) => {
                s.state = SlotState::Registered;
                s.route = None;
                if let Some(t) = &target {
                    self.health.mark_ok(tincan_sip::resolve::TargetKey {
                        transport: t.transport,
                        addr: t.addr,
                    });
                }
                if let Some(registrar) = target {
                    self.account_event(
                        account,
                        AccountEvent::Registered {
                            registrar,
                            expires: Duration::from_secs(u64::from(expires)),
                            bindings,
                            elapsed,
                        },
                    );
                }
            }
            Some(RegistrationEvent::Unregistered) => {
                s.state = SlotState::Idle;
                s.reg = None;
                s.route = None;
                if let Some(registrar) = target {
                    self.account_event(account, AccountEvent::Unregistered { registrar });
                }
            }
            Some(RegistrationEvent::Failed(error)) => {
                s.route = None;
                let retry = Duration::from_secs(60);
                s.state = SlotState::Waiting(now + retry);
                let Some(registrar) = target else { return };
                match error {
                    RegisterError::AuthenticationFailed { .. } => {
                        self.account_event(
                            account,
                            AccountEvent::AuthenticationFailed { registrar, status },
                        );
                    }
                    RegisterError::Rejected { status: 403, .. } => {
                        self.account_event(
                            account,
                            AccountEvent::AuthenticationFailed { registrar, status },
                        );
                    }
                    other => {
                        self.account_event(
                            account,
                            AccountEvent::Rejected {
                                registrar,
                                status,
                                reason: other.to_string(),
                            },
                        );
                    }
                }
            }
            _ => {}
        }
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
        let mut errors_all = std::mem::take(&mut s.errors);
        errors_all.extend(errors);
        if unregistering || s.stopping {
            s.state = SlotState::Idle;
            s.reg = None;
            if let Some(registrar) = s.target.take() {
                self.account_event(account, AccountEvent::Unregistered { registrar });
            }
            return;
        }
        s.state = SlotState::Waiting(now + retry_in);
        s.reg = None;
        s.target = None;
        self.account_event(
            account,
            AccountEvent::Unavailable {
                tried,
                errors: errors_all,
                retry_in,
            },
        );
    }

    /// Refreshes and retries that are due.
    pub(super) fn account_timeout(&mut self, now: Instant, account: usize) {
        let id = AccountId(account);
        for slot in 0..self.accounts[account].slots.len() {
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
                    // fails, the slot looks again from the top.
                    let Some(target) = s.target.clone() else {
                        continue;
                    };
                    let known = s
                        .candidates
                        .iter()
                        .find(|c| c.addr == target.addr && c.transport == target.transport)
                        .cloned();
                    s.state = SlotState::Registering;
                    s.started = now;
                    let hop = s.uris[0].clone();
                    let route = self.start_route(
                        now,
                        Owner::Register(id, slot),
                        placeholder_register(&self.accounts[id.0].config.aor),
                        hop,
                        Some(known.into_iter().collect()),
                    );
                    if let Some(s) = self.slot_mut(id, slot) {
                        s.route = Some(route);
                    }
                }
                _ => {}
            }
        }
    }

    /// Unregisters every slot of the account (or stops trying).
    pub(super) fn account_stop(&mut self, now: Instant, account: usize) {
        let id = AccountId(account);
        for slot in 0..self.accounts[account].slots.len() {
            let s = &mut self.accounts[account].slots[slot];
            s.stopping = true;
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
                    let known = s
                        .candidates
                        .iter()
                        .find(|c| c.addr == target.addr && c.transport == target.transport)
                        .cloned();
                    if let Some(old) = s.route.take()
                        && let Some(r) = self.routes.get_mut(&old)
                    {
                        r.phase = Phase::Done;
                    }
                    let s = &mut self.accounts[account].slots[slot];
                    s.state = SlotState::Unregistering;
                    let hop = s.uris[0].clone();
                    let route = self.start_route(
                        now,
                        Owner::Register(id, slot),
                        placeholder_register(&self.accounts[id.0].config.aor),
                        hop,
                        Some(known.into_iter().collect()),
                    );
                    if let Some(s) = self.slot_mut(id, slot) {
                        s.route = Some(route);
                    }
                }
                _ => s.state = SlotState::Idle,
            }
        }
    }

    fn account_event(&mut self, account: AccountId, event: AccountEvent) {
        self.events
            .push_back(PhoneEvent::Account { account, event });
    }
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
