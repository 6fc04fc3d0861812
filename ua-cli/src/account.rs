//! Accounts: registration with one or several registrars through the SIP driver, with
//! RFC 3263 resolution, health-aware failover and fail-back.
//!
//! An account registers in one of two modes:
//! - [`RegisterMode::Failover`]: one registrar at a time. Targets come from the explicit
//!   registrar list (in order) or from the AOR domain's DNS (RFC 3263 order); a target that is
//!   refused, black-holed (no answer within the per-target budget) or answers 503 is marked in
//!   the shared [`TargetHealth`] table and the next one is tried at once; while registered with
//!   a lower-priority target, the preferred one is probed when its cool-off ends, and the
//!   account moves back (fail-back) when it answers.
//! - [`RegisterMode::All`]: registered with every registrar at the same time, each retried on
//!   its own, so the account stays reachable while any one is up.
//!
//! Every state change is an [`AccountEvent`].
//!
//! With RFC 5626 outbound on (`instance_id` set), each TCP/TLS registration flow is kept
//! alive with CRLF pings ([`tincan_sip::flow::FlowKeepAlive`]: every `Flow-Timer` seconds, or
//! [`AccountContext::keepalive`]); when the pong is missing or the connection closes, the
//! account registers again at once over a new connection ([`AccountEvent::FlowFailed`], then
//! [`AccountEvent::FlowRecovered`]), and fails over when that does not work. UDP flows are
//! kept alive with STUN Binding requests to the registrar on the SIP socket (RFC 5626
//! §4.4.2, [`AccountContext::udp_keepalive`]: every 24 s or `Flow-Timer`, retransmitted as
//! RFC 5389 says); no response within the STUN transaction (39.5 s by default), an ICMP
//! unreachable, or a changed XOR-MAPPED-ADDRESS (the NAT rebound the flow) fails the flow
//! the same way.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use tincan_sip::driver::dns::{self, HickoryBackend};
use tincan_sip::driver::{Flow, FlowSignal, Handle, TxError};
use tincan_sip::flow::{FlowEvent, FlowKeepAlive, KeepAliveConfig};
use tincan_sip::message::{HeaderName, Method, RequestBuilder, SipUri, Uri};
use tincan_sip::register::{
    RegisterError, Registration, RegistrationConfig, RegistrationEvent, RegistrationState,
};
use tincan_sip::resolve::health::{
    AttemptOutcome, FailoverDecision, FailoverPolicy, FailureCause, HealthConfig, TargetHealth,
    TargetKey,
};
use tincan_sip::resolve::{self, CacheConfig, Destination, DnsCache, ResolveConfig};
use tincan_sip::transport::{Target, Transport};

pub use crate::config::RegisterMode;

/// What an account registers. `Debug` does not print the password.
#[derive(Clone)]
pub struct AccountSpec {
    /// A name for events and logs.
    pub name: String,
    /// The address of record.
    pub aor: String,
    /// Digest username.
    pub username: String,
    /// Digest password (never printed).
    pub password: String,
    /// Forced transport (`None`: RFC 3263 chooses).
    pub transport: Option<Transport>,
    /// Explicit registrars (SIP URIs); empty: the AOR's domain.
    pub registrars: Vec<String>,
    /// Failover or all.
    pub mode: RegisterMode,
    /// Requested expiry, seconds.
    pub expires: u32,
    /// RFC 5626 instance id for `+sip.instance` (with `reg-id`), if outbound is on.
    pub instance_id: Option<String>,
}

impl std::fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSpec")
            .field("name", &self.name)
            .field("aor", &self.aor)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("transport", &self.transport)
            .field("registrars", &self.registrars)
            .field("mode", &self.mode)
            .field("expires", &self.expires)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

/// A registration state change of an account.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AccountEvent {
    /// Registered with a registrar.
    Registered {
        /// Account name.
        account: String,
        /// The registrar target (`udp:127.0.0.1:5060`).
        registrar: String,
        /// Granted expiry, seconds.
        expires: u32,
        /// Every binding the registrar returned.
        bindings: Vec<String>,
        /// Time from the first REGISTER of this attempt to the 200, milliseconds.
        elapsed_ms: u64,
    },
    /// A registrar failed; in failover mode the next one is tried.
    Failed {
        /// Account name.
        account: String,
        /// The registrar target.
        registrar: String,
        /// What went wrong.
        error: String,
        /// Milliseconds spent on this registrar.
        elapsed_ms: u64,
    },
    /// The account could not register anywhere (every target tried).
    Unavailable {
        /// Account name.
        account: String,
        /// What was tried.
        tried: Vec<String>,
    },
    /// The binding was removed.
    Unregistered {
        /// Account name.
        account: String,
        /// The registrar target.
        registrar: String,
    },
    /// The flow of a registration died: over TCP/TLS its keep-alive ping got no pong or the
    /// connection closed (RFC 5626 §4.4.1); over UDP its STUN keep-alive got no response,
    /// the registrar was reported unreachable, or the mapped address changed (§4.4.2). The
    /// account registers again at once over a new flow.
    FlowFailed {
        /// Account name.
        account: String,
        /// The registrar target.
        registrar: String,
        /// Why the flow is considered dead.
        reason: String,
    },
    /// Registered again over a new flow after [`AccountEvent::FlowFailed`] (RFC 5626 §4.5).
    FlowRecovered {
        /// Account name.
        account: String,
        /// The registrar target.
        registrar: String,
        /// Granted expiry, seconds.
        expires: u32,
        /// Time from noticing the dead flow to the 200 on the new one, milliseconds.
        elapsed_ms: u64,
    },
}

/// Services shared by every account of a user agent.
#[derive(Clone)]
pub struct AccountContext {
    /// The SIP driver.
    pub sip: Handle,
    /// DNS.
    pub dns: Arc<HickoryBackend>,
    /// The target health table shared by all requests and accounts.
    pub health: Arc<Mutex<TargetHealth>>,
    /// Per-target budgets.
    pub policy: FailoverPolicy,
    /// Keep-alives on the TCP/TLS flows of outbound accounts when the registrar sends no
    /// `Flow-Timer` (its `Flow-Timer` replaces the interval); `None`: no keep-alives.
    pub keepalive: Option<KeepAliveConfig>,
    /// STUN keep-alives on the UDP flows of outbound accounts (RFC 5626 §4.4.2; default
    /// [`KeepAliveConfig::datagram`]; the registrar's `Flow-Timer` replaces the interval);
    /// `None`: no keep-alives on UDP flows.
    pub udp_keepalive: Option<KeepAliveConfig>,
}

impl AccountContext {
    /// A context with a fresh health table and the default policy.
    pub fn new(sip: Handle, dns: HickoryBackend) -> AccountContext {
        AccountContext {
            sip,
            dns: Arc::new(dns),
            health: Arc::new(Mutex::new(TargetHealth::new(HealthConfig::default()))),
            policy: FailoverPolicy::default(),
            keepalive: Some(KeepAliveConfig::stream()),
            udp_keepalive: Some(KeepAliveConfig::datagram()),
        }
    }
}

pub(crate) fn lock(h: &Mutex<TargetHealth>) -> std::sync::MutexGuard<'_, TargetHealth> {
    // A panic while holding the lock cannot leave the table inconsistent (plain data).
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resolves a registrar URI (or the AOR domain) into ordered targets.
pub(crate) async fn targets_for(
    ctx: &AccountContext,
    uri: &str,
    transport: Option<Transport>,
) -> Result<Vec<resolve::ResolvedTarget>, String> {
    let mut dest = Destination::parse(uri).map_err(|e| e.to_string())?;
    if let Some(t) = transport {
        dest.transport = Some(t.as_str().to_owned());
    }
    let mut cache = DnsCache::new(CacheConfig::default());
    let mut rng = tincan_sip::driver::OsRng;
    let resolved = dns::resolve(
        dest,
        ResolveConfig::default(),
        &*ctx.dns,
        &mut cache,
        &mut rng,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(resolved.targets)
}

/// The transport target of a resolved one (server name for TLS from the URI's domain).
pub(crate) fn send_target(t: &resolve::ResolvedTarget) -> Target {
    let mut target = Target::new(t.transport, t.addr);
    if t.host.parse::<std::net::IpAddr>().is_err() {
        target.server_name = Some(t.host.clone());
    }
    target
}

/// The contact URI for a flow to `target`.
fn contact_for(ctx: &AccountContext, user: &str, target: &Target) -> String {
    let local = ctx
        .sip
        .local_address_for(target.transport, target.addr)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
    contact_uri(user, local, target.transport)
}

/// An IP address as a URI host: IPv6 in brackets.
pub(crate) fn host_literal(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// `sip:user@local` for a flow over `transport` (with `;transport=` unless UDP), IPv6
/// addresses in brackets.
pub(crate) fn contact_uri(user: &str, local: SocketAddr, transport: Transport) -> String {
    let host = host_literal(local.ip());
    match transport {
        Transport::Udp => format!("sip:{user}@{host}:{}", local.port()),
        t => format!("sip:{user}@{host}:{};transport={}", local.port(), t.param()),
    }
}

/// One registration bound to one target, driven through the SIP driver.
struct Binding {
    target: Target,
    reg: Registration,
}

/// The result of driving a binding's queued REGISTERs to a state.
enum Attempt {
    Registered {
        expires: u32,
        bindings: Vec<String>,
    },
    Unregistered,
    Failed {
        outcome: AttemptOutcome,
        error: RegisterError,
    },
}

impl Binding {
    fn new(
        ctx: &AccountContext,
        spec: &AccountSpec,
        target: Target,
        call_id: String,
        tag: String,
        reg_id: u32,
    ) -> Result<Binding, String> {
        let aor = SipUri::parse(&spec.aor).map_err(|_| format!("invalid aor {}", spec.aor))?;
        let user = aor
            .user
            .as_deref()
            .map(str::to_owned)
            .unwrap_or_else(|| spec.username.clone());
        let contact = contact_for(ctx, &user, &target);
        let mut config =
            RegistrationConfig::new(&spec.aor, &contact, &spec.username, &spec.password)
                .map_err(|e| e.to_string())?;
        config.expires = spec.expires;
        if let Some(id) = &spec.instance_id {
            config.instance_id = Some(id.clone());
            config.reg_id = Some(reg_id);
        }
        Ok(Binding {
            target,
            reg: Registration::new(config, call_id, tag),
        })
    }

    /// Sends the queued REGISTER(s) until the registration settles, each within `budget`.
    async fn drive(&mut self, ctx: &AccountContext, budget: Duration) -> Attempt {
        let mut rng = tincan_sip::driver::OsRng;
        loop {
            let Some(req) = self.reg.poll_request() else {
                break;
            };
            let outcome = match ctx.sip.request(req, self.target.clone()).await {
                Err(_) => Err(AttemptOutcome::TransportError),
                Ok(mut tx) => match tokio::time::timeout(budget, tx.final_response()).await {
                    Err(_) => Err(AttemptOutcome::Timeout),
                    Ok(Err(TxError::Timeout)) => Err(AttemptOutcome::Timeout),
                    Ok(Err(_)) => Err(AttemptOutcome::TransportError),
                    Ok(Ok(resp)) => Ok(resp),
                },
            };
            match outcome {
                Ok(resp) => {
                    let status = resp.status().unwrap_or(0);
                    self.reg.handle_response(Instant::now(), &resp, &mut rng);
                    if status == 503 {
                        let retry_after = resp
                            .get::<tincan_sip::message::typed::RetryAfter<'_>>()
                            .and_then(Result::ok)
                            .map(|r| Duration::from_secs(u64::from(r.delta)));
                        let error = match self.reg.poll_event() {
                            Some(RegistrationEvent::Failed(e)) => e,
                            _ => RegisterError::Timeout,
                        };
                        return Attempt::Failed {
                            outcome: AttemptOutcome::Response {
                                status,
                                retry_after,
                            },
                            error,
                        };
                    }
                }
                Err(outcome) => {
                    let error = match outcome {
                        AttemptOutcome::Timeout => RegisterError::Timeout,
                        _ => RegisterError::Transport,
                    };
                    self.reg.handle_failure(Instant::now(), error.clone());
                    while self.reg.poll_event().is_some() {}
                    return Attempt::Failed { outcome, error };
                }
            }
        }
        let mut last = None;
        while let Some(ev) = self.reg.poll_event() {
            last = Some(ev);
        }
        match last {
            Some(RegistrationEvent::Registered { expires, bindings }) => {
                Attempt::Registered { expires, bindings }
            }
            Some(RegistrationEvent::Unregistered) => Attempt::Unregistered,
            Some(RegistrationEvent::Failed(error)) => {
                let status = match &error {
                    RegisterError::Rejected { status, .. } => *status,
                    _ => 403,
                };
                Attempt::Failed {
                    outcome: AttemptOutcome::Response {
                        status,
                        retry_after: None,
                    },
                    error,
                }
            }
            _ => Attempt::Failed {
                outcome: AttemptOutcome::Timeout,
                error: RegisterError::Timeout,
            },
        }
    }
}

/// The health-table key of a transport target.
fn key_of(t: &Target) -> TargetKey {
    TargetKey {
        transport: t.transport,
        addr: t.addr,
    }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Runs an account until `stop` turns true: registers, refreshes, fails over and back, then
/// unregisters. Events go to `events`.
pub async fn run_account(
    ctx: AccountContext,
    spec: AccountSpec,
    events: mpsc::UnboundedSender<AccountEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let registrar_uris: Vec<String> = if spec.registrars.is_empty() {
        vec![spec.aor.clone()]
    } else {
        spec.registrars.clone()
    };
    match spec.mode {
        RegisterMode::All => {
            let mut tasks = Vec::new();
            for (i, uri) in registrar_uris.into_iter().enumerate() {
                let ctx = ctx.clone();
                let spec = spec.clone();
                let events = events.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    run_failover(ctx, spec, vec![uri], events, stop, (i + 1) as u32).await;
                }));
            }
            let _ = stop.wait_for(|s| *s).await;
            for t in tasks {
                let _ = t.await;
            }
        }
        RegisterMode::Failover => {
            run_failover(ctx, spec, registrar_uris, events, stop, 1).await;
        }
    }
}

/// One registration at a time over the targets of `uris`, in order, with fail-back.
async fn run_failover(
    ctx: AccountContext,
    spec: AccountSpec,
    uris: Vec<String>,
    events: mpsc::UnboundedSender<AccountEvent>,
    mut stop: watch::Receiver<bool>,
    reg_id: u32,
) {
    let call_id = ctx.sip.new_call_id();
    let tag = ctx.sip.token(10).await.unwrap_or_else(|_| "t".into());
    // After a fail-back, the binding at the backup registrar, removed once the preferred one
    // has accepted us (no gap in reachability).
    let mut previous: Option<Binding> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        // The ordered candidates: every target of every registrar URI, in order; healthy
        // ones first (the health table keeps RFC order among equals).
        let mut candidates = Vec::new();
        let mut tried = Vec::new();
        for uri in &uris {
            match targets_for(&ctx, uri, spec.transport).await {
                Ok(t) => candidates.extend(t),
                Err(e) => tried.push(format!("{uri}: {e}")),
            }
        }
        // Targets still cooling off are skipped while another one is healthy; when all are
        // down, the attempt waits for the first cool-off to end (instead of hammering a dead
        // server, which would only lengthen its cool-off).
        let ordered: Vec<resolve::ResolvedTarget> = {
            let health = lock(&ctx.health);
            let now = Instant::now();
            health
                .order(&candidates, now)
                .into_iter()
                .filter(|t| !health.is_down(now, TargetKey::of(t)))
                .collect()
        };
        if ordered.is_empty() && !candidates.is_empty() {
            let wait = lock(&ctx.health)
                .poll_timeout()
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(5))
                .clamp(Duration::from_millis(200), Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => continue,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let mut registered = None;
        for target in ordered {
            let started = Instant::now();
            let rank = candidates
                .iter()
                .position(|t| *t == target)
                .unwrap_or(usize::MAX);
            let binding = Binding::new(
                &ctx,
                &spec,
                send_target(&target),
                call_id.clone(),
                tag.clone(),
                reg_id,
            );
            let mut binding = match binding {
                Ok(b) => b,
                Err(e) => {
                    tried.push(e);
                    continue;
                }
            };
            binding.reg.start(Instant::now());
            match binding.drive(&ctx, ctx.policy.budget(true)).await {
                Attempt::Registered { expires, bindings } => {
                    lock(&ctx.health).mark_ok(TargetKey::of(&target));
                    let _ = events.send(AccountEvent::Registered {
                        account: spec.name.clone(),
                        registrar: send_target(&target).to_string(),
                        expires,
                        bindings,
                        elapsed_ms: ms(started),
                    });
                    registered = Some((rank, binding));
                    break;
                }
                Attempt::Failed { outcome, error } => {
                    let _ = events.send(AccountEvent::Failed {
                        account: spec.name.clone(),
                        registrar: send_target(&target).to_string(),
                        error: error.to_string(),
                        elapsed_ms: ms(started),
                    });
                    tried.push(format!("{}: {error}", send_target(&target)));
                    match ctx.policy.decide(outcome) {
                        FailoverDecision::TryNext(cause) => {
                            lock(&ctx.health).mark_failed(
                                Instant::now(),
                                TargetKey::of(&target),
                                cause,
                            );
                        }
                        // The registrar works but refuses (403, wrong password...): the next
                        // one would say the same.
                        _ => break,
                    }
                }
                Attempt::Unregistered => {}
            }
        }
        let Some((rank, mut binding)) = registered else {
            let _ = events.send(AccountEvent::Unavailable {
                account: spec.name.clone(),
                tried,
            });
            // Retry when the earliest cool-off ends (at least 5 s, at most 60 s).
            let wait = lock(&ctx.health)
                .poll_timeout()
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(30))
                .clamp(Duration::from_secs(5), Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => continue,
                _ = stop.wait_for(|s| *s) => break,
            }
        };
        if let Some(mut old) = previous.take()
            && old.target != binding.target
        {
            old.reg.unregister(Instant::now());
            let _ = old.drive(&ctx, ctx.policy.budget(true)).await;
            let _ = events.send(AccountEvent::Unregistered {
                account: spec.name.clone(),
                registrar: old.target.to_string(),
            });
        }
        // Registered: refresh until stopped, failing over when a refresh fails, failing back
        // when a preferred target recovers.
        match stay_registered(
            &ctx,
            &spec,
            &mut binding,
            rank,
            &candidates,
            &events,
            &mut stop,
        )
        .await
        {
            Stay::Stopped => {
                binding.reg.unregister(Instant::now());
                let _ = binding.drive(&ctx, ctx.policy.budget(true)).await;
                let _ = events.send(AccountEvent::Unregistered {
                    account: spec.name.clone(),
                    registrar: binding.target.to_string(),
                });
                return;
            }
            Stay::Lost => continue,
            Stay::FailBack => {
                previous = Some(binding);
                continue;
            }
        }
    }
}

enum Stay {
    Stopped,
    Lost,
    FailBack,
}

async fn stay_registered(
    ctx: &AccountContext,
    spec: &AccountSpec,
    binding: &mut Binding,
    rank: usize,
    preferred: &[resolve::ResolvedTarget],
    events: &mpsc::UnboundedSender<AccountEvent>,
    stop: &mut watch::Receiver<bool>,
) -> Stay {
    let mut rng = tincan_sip::driver::OsRng;
    // Whether this registrar has answered a keep-alive on one of the binding's flows: a new
    // flow to it then treats a missing STUN response as a failure from the start.
    let mut answers = false;
    let mut flow = watch_flow(ctx, spec, binding, answers, &mut rng).await;
    // Fail-back: better targets are probed at most this often.
    let probe_every = Duration::from_secs(5);
    let mut next_probe = Instant::now() + probe_every;
    loop {
        let refresh_at = binding
            .reg
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(30));
        let mut wake = refresh_at.min(next_probe);
        if let Some(at) = flow.as_ref().and_then(|(_, k)| k.poll_timeout()) {
            wake = wake.min(at);
        }
        let signal = async {
            match flow.as_mut() {
                Some((f, _)) => f.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            s = signal => {
                if let Some((_, keepalive)) = flow.as_mut() {
                    let now = Instant::now();
                    match s {
                        FlowSignal::Pong => keepalive.handle_pong(now, &mut rng),
                        FlowSignal::BindingResponse {
                            transaction,
                            mapped,
                            ..
                        } => keepalive.handle_binding_response(now, transaction, mapped, &mut rng),
                        FlowSignal::Unreachable => keepalive.handle_unreachable(now),
                        _ => keepalive.handle_closed(now),
                    }
                }
            }
            _ = stop.wait_for(|s| *s) => return Stay::Stopped,
        }
        // Keep-alive: send the due ping, notice a missing pong or a closed connection.
        let mut dead = None;
        if let Some((f, keepalive)) = flow.as_mut() {
            keepalive.handle_timeout(Instant::now(), &mut rng);
            while let Some(ev) = keepalive.poll_event() {
                match ev {
                    // The connection is already gone when the ping cannot be written.
                    FlowEvent::SendPing if !f.ping().await.unwrap_or(false) => {
                        keepalive.handle_closed(Instant::now());
                    }
                    FlowEvent::SendBinding(id) if !f.send_binding(id).await.unwrap_or(false) => {
                        keepalive.handle_unreachable(Instant::now());
                    }
                    FlowEvent::Failed(why) => dead = Some(why),
                    _ => {}
                }
            }
        }
        answers |= flow.as_ref().is_some_and(|(_, k)| k.peer_answered());
        if let Some(why) = dead {
            if let Some((f, _)) = flow.take() {
                f.close().await;
            }
            let _ = events.send(AccountEvent::FlowFailed {
                account: spec.name.clone(),
                registrar: binding.target.to_string(),
                reason: why.to_string(),
            });
            // RFC 5626 §4.5: a new flow (the driver opens a new connection for the next
            // request) and a new REGISTER on it at once.
            let started = Instant::now();
            binding.reg.start(started);
            match binding.drive(ctx, ctx.policy.budget(true)).await {
                Attempt::Registered { expires, .. } => {
                    let _ = events.send(AccountEvent::FlowRecovered {
                        account: spec.name.clone(),
                        registrar: binding.target.to_string(),
                        expires,
                        elapsed_ms: ms(started),
                    });
                    flow = watch_flow(ctx, spec, binding, answers, &mut rng).await;
                    continue;
                }
                Attempt::Failed { outcome, error } => {
                    return lost(ctx, spec, binding, events, outcome, &error, started);
                }
                Attempt::Unregistered => return Stay::Lost,
            }
        }
        if rank > 0 && Instant::now() >= next_probe {
            next_probe = Instant::now() + probe_every;
            let better: Vec<resolve::ResolvedTarget> =
                preferred[..rank.min(preferred.len())].to_vec();
            for t in better {
                let key = TargetKey::of(&t);
                let t = send_target(&t);
                let down = lock(&ctx.health).is_down(Instant::now(), key);
                if down {
                    continue;
                }
                if probe(ctx, &t, spec).await {
                    lock(&ctx.health).mark_ok(key);
                    return Stay::FailBack;
                }
                lock(&ctx.health).mark_failed(Instant::now(), key, FailureCause::Timeout);
            }
        }
        if Instant::now() < refresh_at {
            continue;
        }
        let started = Instant::now();
        binding.reg.handle_timeout(Instant::now(), &mut rng);
        match binding.drive(ctx, ctx.policy.budget(false)).await {
            Attempt::Registered { expires, bindings } => {
                let _ = events.send(AccountEvent::Registered {
                    account: spec.name.clone(),
                    registrar: binding.target.to_string(),
                    expires,
                    bindings,
                    elapsed_ms: ms(started),
                });
                // The registrar may have changed its Flow-Timer, or the refresh went over a
                // new connection.
                if flow.as_ref().is_none_or(|(_, k)| k.is_failed())
                    || binding.reg.flow_timer().is_some()
                {
                    flow = watch_flow(ctx, spec, binding, answers, &mut rng).await;
                }
            }
            Attempt::Failed { outcome, error } => {
                return lost(ctx, spec, binding, events, outcome, &error, started);
            }
            Attempt::Unregistered => return Stay::Lost,
        }
        if matches!(binding.reg.state(), RegistrationState::Failed { .. }) {
            return Stay::Lost;
        }
    }
}

/// A REGISTER of the registration in place (over a new flow, or a refresh) failed: the
/// failure is reported, its target marked down when the failure says another one may do
/// better, and the account goes looking for a registrar again.
fn lost(
    ctx: &AccountContext,
    spec: &AccountSpec,
    binding: &Binding,
    events: &mpsc::UnboundedSender<AccountEvent>,
    outcome: AttemptOutcome,
    error: &RegisterError,
    started: Instant,
) -> Stay {
    let _ = events.send(AccountEvent::Failed {
        account: spec.name.clone(),
        registrar: binding.target.to_string(),
        error: error.to_string(),
        elapsed_ms: ms(started),
    });
    if let FailoverDecision::TryNext(cause) = ctx.policy.decide(outcome) {
        lock(&ctx.health).mark_failed(Instant::now(), key_of(&binding.target), cause);
    }
    Stay::Lost
}

/// The keep-alive watch of a registration's flow: for outbound accounts, when keep-alives
/// are on: CRLF pings over TCP or TLS (RFC 5626 §4.4.1), STUN Binding requests over UDP
/// (§4.4.2). The registrar's `Flow-Timer` sets the interval. `answers`: the registrar has
/// answered keep-alives on an earlier flow.
async fn watch_flow(
    ctx: &AccountContext,
    spec: &AccountSpec,
    binding: &Binding,
    answers: bool,
    rng: &mut tincan_sip::driver::OsRng,
) -> Option<(Flow, FlowKeepAlive)> {
    let config = match binding.target.transport {
        Transport::Udp => ctx.udp_keepalive?,
        _ => ctx.keepalive?,
    };
    spec.instance_id.as_ref()?;
    let config = config.with_flow_timer(binding.reg.flow_timer().unwrap_or(0));
    let flow = ctx.sip.flow(&binding.target).await.ok().flatten()?;
    let mut keepalive = FlowKeepAlive::new(config, Instant::now(), rng);
    // A Flow-Timer says the registrar supports outbound keep-alives (RFC 5626 §5.4).
    if answers || binding.reg.flow_timer().is_some() {
        keepalive.peer_supports_keepalive();
    }
    Some((flow, keepalive))
}

/// An OPTIONS probe: true when the target answers anything within the probe budget.
async fn probe(ctx: &AccountContext, target: &Target, spec: &AccountSpec) -> bool {
    let text = format!("sip:{}", target.addr);
    let Ok(uri) = Uri::parse(&text) else {
        return false;
    };
    let tag = ctx.sip.token(8).await.unwrap_or_default();
    let req = RequestBuilder::new(Method::Options, &uri)
        .header(HeaderName::From, &format!("<{}>;tag={tag}", spec.aor))
        .header(HeaderName::To, &format!("<{uri}>"))
        .call_id(&ctx.sip.new_call_id())
        .cseq(1)
        .build();
    let Ok(mut tx) = ctx.sip.request(req, target.clone()).await else {
        return false;
    };
    matches!(
        tokio::time::timeout(ctx.policy.probe_budget, tx.final_response()).await,
        Ok(Ok(_))
    )
}
