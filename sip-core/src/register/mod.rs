//! Registration (RFC 3261 §10) with one registrar, as a sans-IO state machine.
//!
//! A [`Registration`] builds each REGISTER ([`Registration::poll_request`]); its caller sends
//! it in a client transaction to the registrar's target and hands back the final response
//! ([`Registration::handle_response`]) or the failure ([`Registration::handle_failure`]). It
//! answers digest challenges (401/407, `stale=true`), follows 423 Min-Expires, refreshes
//! before expiry, unregisters on request, and reports every state change as a
//! [`RegistrationEvent`]. Accounts with several registrars run one per flow
//! (`register_mode = all`) or one at a time (`failover`).
//!
//! ```
//! use std::time::Instant;
//! use tincan_sip::register::{Registration, RegistrationConfig};
//!
//! let config = RegistrationConfig::new(
//!     "sip:alice@example.test",
//!     "sip:alice@192.0.2.1:5060",
//!     "alice",
//!     "secret",
//! ).unwrap();
//! let mut reg = Registration::new(config, "call-1@192.0.2.1".into(), "tag1".into());
//! let now = Instant::now();
//! reg.start(now);
//! let register = reg.poll_request().unwrap();
//! assert!(register.to_string().starts_with("REGISTER sip:example.test SIP/2.0\r\n"));
//! ```

use std::time::{Duration, Instant};

use rand_core::Rng;

use crate::auth::digest::{ChallengeKind, DigestClient, DigestRequest};
use crate::auth::header::Credentials;
use crate::message::typed::{self, Contact};
use crate::message::{HeaderName, Message, Method, RequestBuilder, SipUri, Uri};

/// How a registration is set up.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// The address of record (`sip:alice@example.com`): From and To.
    pub aor: SipUri<'static>,
    /// The display name of From and To (`"Alice Smith" <sip:alice@example.com>`, quoted as
    /// RFC 3261 §25.1 needs); `None`: the bare address.
    pub display_name: Option<String>,
    /// The Request-URI of the REGISTER: the registrar's domain (`sip:example.com`) by default.
    pub registrar: SipUri<'static>,
    /// The contact URI to bind (`sip:alice@192.0.2.1:5060;transport=tcp`).
    pub contact: SipUri<'static>,
    /// Requested expiry in seconds.
    pub expires: u32,
    /// RFC 5626 instance id (`urn:uuid:...`): adds `+sip.instance` (and `reg-id`) to Contact.
    pub instance_id: Option<String>,
    /// RFC 5626 `reg-id` of this flow.
    pub reg_id: Option<u32>,
    /// Digest username.
    pub username: String,
    /// Digest password (never printed).
    pub password: String,
    /// After a failure, the first retry delay; doubled up to `retry_max`.
    pub retry_min: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
    /// Routes (outbound proxy, `;lr`) to put in `Route`.
    pub route: Vec<SipUri<'static>>,
    /// The digest realms the password is given to (`None`: any). A challenge of another
    /// realm is refused: [`RegisterError::RealmRefused`].
    pub realms: Option<Vec<String>>,
}

impl RegistrationConfig {
    /// A configuration from text: address of record, contact, credentials; registrar = the
    /// AOR's domain, 3600 s.
    pub fn new(
        aor: &str,
        contact: &str,
        username: &str,
        password: &str,
    ) -> Result<RegistrationConfig, RegisterError> {
        let aor = SipUri::parse(aor)
            .map_err(|_| RegisterError::BadUri(aor.to_owned()))?
            .into_owned();
        let contact = SipUri::parse(contact)
            .map_err(|_| RegisterError::BadUri(contact.to_owned()))?
            .into_owned();
        let mut registrar = SipUri::new(aor.secure, aor.host.clone());
        registrar.port = aor.port;
        Ok(RegistrationConfig {
            aor,
            display_name: None,
            registrar,
            contact,
            expires: 3600,
            instance_id: None,
            reg_id: None,
            username: username.to_owned(),
            password: password.to_owned(),
            retry_min: Duration::from_secs(30),
            retry_max: Duration::from_secs(1800),
            route: Vec::new(),
            realms: None,
        })
    }
}

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A URI in the configuration does not parse.
    #[error("invalid SIP URI {0:?}")]
    BadUri(String),
    /// The registrar refused the credentials.
    #[error("authentication failed for realm {realm:?}: wrong username or password")]
    AuthenticationFailed {
        /// The realm.
        realm: String,
    },
    /// The registrar (or a proxy on the way) challenged for a realm the password is not for
    /// ([`RegistrationConfig::realms`]): not answered, so the REGISTER failed with that
    /// 401/407.
    #[error(
        "refused to answer the {status} challenge of realm {realm:?}: the password is not for that realm"
    )]
    RealmRefused {
        /// The realm of the challenge.
        realm: String,
        /// 401 or 407.
        status: u16,
    },
    /// The registrar's challenge could not be answered.
    #[error("cannot authenticate: {0}")]
    Challenge(String),
    /// The registrar answered with a final error.
    #[error("registrar answered {status} {reason}")]
    Rejected {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Retry-After, when given.
        retry_after: Option<u32>,
    },
    /// No response (Timer F or the caller's budget).
    #[error("no response from the registrar")]
    Timeout,
    /// The transport failed (refused, unreachable).
    #[error("transport error")]
    Transport,
}

/// Where a registration is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not started.
    Idle,
    /// A REGISTER is in flight.
    Registering,
    /// Registered until `expires_at`.
    Registered {
        /// When the binding expires.
        expires_at: Instant,
    },
    /// Failed; retried at `retry_at`.
    Failed {
        /// The failure.
        error: RegisterError,
        /// When the next attempt starts (`None`: not retried).
        retry_at: Option<Instant>,
    },
    /// An un-REGISTER (Expires: 0) is in flight.
    Unregistering,
    /// The binding was removed.
    Unregistered,
}

/// What a registration reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The registrar accepted the binding.
    Registered {
        /// Granted expiry in seconds.
        expires: u32,
        /// Every binding the registrar returned (Contact values).
        bindings: Vec<String>,
    },
    /// The registration failed.
    Failed(RegisterError),
    /// The binding was removed (or un-registering ended).
    Unregistered,
}

/// One registration with one registrar.
#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    digest: DigestClient,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: RegistrationState,
    /// The REGISTER to send next, and the credentials it carries.
    outgoing: Option<Message>,
    sent_credentials: Vec<Credentials>,
    refresh_at: Option<Instant>,
    retry_delay: Duration,
    unregistering: bool,
    events: std::collections::VecDeque<RegistrationEvent>,
    auth_rounds: u32,
    flow_timer: Option<u32>,
    /// A contact being replaced ([`Registration::rewrite_contact`]): removed (`expires=0`)
    /// by the REGISTER that binds the new one.
    retired_contact: Option<SipUri<'static>>,
}

/// The address a registrar saw our request come from: the `received` and `rport` it put in
/// the top Via of its response (RFC 3261 §18.2.1, RFC 3581 §4). Behind a NAT this is the
/// NAT's public address and port, the one a Contact must name for requests to reach us.
/// `None` when the response says nothing (neither parameter has a value) or the Via does not
/// parse.
pub fn reflexive_address(response: &Message) -> Option<std::net::SocketAddr> {
    let via = response.top_via()?.ok()?;
    let received = via
        .received()
        .and_then(|r| r.parse::<std::net::IpAddr>().ok());
    let rport = via.rport().flatten();
    if received.is_none() && rport.is_none() {
        return None;
    }
    let ip = received.or_else(|| via.host.ip())?;
    let port = rport.or(via.port).unwrap_or(5060);
    Some(std::net::SocketAddr::new(ip, port))
}

/// Most 401/407 rounds for one REGISTER before giving up (a loop of stale nonces).
const MAX_AUTH_ROUNDS: u32 = 4;

impl Registration {
    /// A registration with this Call-ID and From tag (RFC 3261 §10.2: one Call-ID for all
    /// the REGISTERs of a binding).
    pub fn new(config: RegistrationConfig, call_id: String, from_tag: String) -> Registration {
        let mut digest = DigestClient::new(config.username.clone(), config.password.clone());
        digest.set_realms(config.realms.clone());
        Registration {
            retry_delay: config.retry_min,
            config,
            digest,
            call_id,
            from_tag,
            cseq: 0,
            state: RegistrationState::Idle,
            outgoing: None,
            sent_credentials: Vec::new(),
            refresh_at: None,
            unregistering: false,
            events: std::collections::VecDeque::new(),
            auth_rounds: 0,
            flow_timer: None,
            retired_contact: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// The state.
    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    /// The keep-alive interval the registrar asked for in the `Flow-Timer` header of its last
    /// 2xx (seconds, RFC 5626 §5.4), if it sent one.
    pub fn flow_timer(&self) -> Option<u32> {
        self.flow_timer
    }

    /// True while registered.
    pub fn is_registered(&self) -> bool {
        matches!(self.state, RegistrationState::Registered { .. })
    }

    /// Starts (or restarts) registering now.
    pub fn start(&mut self, now: Instant) {
        let _ = now;
        self.unregistering = false;
        self.auth_rounds = 0;
        self.queue_register(self.config.expires, None);
        self.state = RegistrationState::Registering;
    }

    /// Removes the binding (REGISTER with Expires: 0). Returns false when there is nothing to
    /// remove.
    pub fn unregister(&mut self, now: Instant) -> bool {
        let _ = now;
        if matches!(
            self.state,
            RegistrationState::Idle | RegistrationState::Unregistered
        ) {
            return false;
        }
        self.unregistering = true;
        self.auth_rounds = 0;
        self.refresh_at = None;
        self.queue_register(0, None);
        self.state = RegistrationState::Unregistering;
        true
    }

    /// The digest realms the password is given to from now on (`None`: any).
    pub fn set_realms(&mut self, realms: Option<Vec<String>>) {
        self.digest.set_realms(realms.clone());
        self.config.realms = realms;
    }

    /// Moves to another contact (a new flow after the old one died): the next REGISTER binds
    /// it.
    pub fn set_contact(&mut self, contact: SipUri<'static>) {
        self.config.contact = contact;
    }

    /// Replaces the registered contact with one that reaches us (the address the registrar
    /// saw, behind a NAT: pjsua's contact rewrite): one REGISTER binds `contact` and removes
    /// the old one (`Contact: <new>;expires=N, <old>;expires=0`, RFC 3261 §10.2.2), so there
    /// is no moment without a binding and no stale one left. Only while registered; returns
    /// false (and changes nothing) otherwise, or when `contact` is the one registered.
    pub fn rewrite_contact(&mut self, contact: SipUri<'static>) -> bool {
        if !self.is_registered() || contact.equivalent(&self.config.contact) {
            return false;
        }
        self.retired_contact = Some(std::mem::replace(&mut self.config.contact, contact));
        self.auth_rounds = 0;
        self.refresh_at = None;
        self.queue_register(self.config.expires, None);
        self.state = RegistrationState::Registering;
        true
    }

    fn contact_value(&self, expires: u32) -> String {
        let mut c = typed::NameAddr::new(Uri::Sip(self.config.contact.clone()));
        if let Some(id) = &self.config.instance_id {
            c.params.set("+sip.instance", Some(&format!("\"<{id}>\"")));
            if let Some(r) = self.config.reg_id {
                c.params.set("reg-id", Some(&r.to_string()));
            }
        }
        c.params.set("expires", Some(&expires.to_string()));
        Contact::Address(c).to_string()
    }

    /// The address of record with its display name, for From and To.
    fn aor_name_addr(&self) -> String {
        let mut n = typed::NameAddr::new(Uri::Sip(self.config.aor.clone()));
        n.display_name = self.config.display_name.clone().map(Into::into);
        n.to_string()
    }

    fn queue_register(&mut self, expires: u32, auth: Option<Vec<(String, String)>>) {
        self.cseq += 1;
        let registrar = Uri::Sip(self.config.registrar.clone());
        let mut b = RequestBuilder::new(Method::Register, &registrar);
        for r in &self.config.route {
            b = b.header(HeaderName::Route, &format!("<{r}>"));
        }
        b = b
            .header(
                HeaderName::From,
                &format!("{};tag={}", self.aor_name_addr(), self.from_tag),
            )
            .header(HeaderName::To, &self.aor_name_addr())
            .call_id(&self.call_id)
            .cseq(self.cseq)
            .header(HeaderName::Contact, &self.contact_value(expires));
        if let Some(old) = self.retired_contact.clone() {
            let mut c = typed::NameAddr::new(Uri::Sip(old));
            c.params.set("expires", Some("0"));
            b = b.header(HeaderName::Contact, &Contact::Address(c).to_string());
        }
        b = b.header(HeaderName::Expires, &expires.to_string());
        if self.config.instance_id.is_some() {
            b = b.header(
                HeaderName::Supported,
                &crate::message::SUPPORTED_EXTENSIONS.join(", "),
            );
        }
        let mut msg = b.build();
        self.sent_credentials.clear();
        if let Some(auth) = auth {
            for (name, value) in auth {
                msg.push_header_named(&name, &value);
                if let Ok(c) = Credentials::parse(&value) {
                    self.sent_credentials.push(c);
                }
            }
        }
        self.outgoing = Some(msg);
    }

    /// The REGISTER to send now, if any.
    pub fn poll_request(&mut self) -> Option<Message> {
        self.outgoing.take()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next (refresh or retry).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            RegistrationState::Registered { .. } => self.refresh_at,
            RegistrationState::Failed { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    /// Refreshes or retries when due (`rng` makes the digest cnonce of a refresh).
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn Rng) {
        match &self.state {
            RegistrationState::Registered { .. } if self.refresh_at.is_some_and(|t| t <= now) => {
                self.refresh_at = None;
                self.auth_rounds = 0;
                self.queue_register(self.config.expires, None);
                self.preauthorize(rng);
                self.state = RegistrationState::Registering;
            }
            RegistrationState::Failed {
                retry_at: Some(t), ..
            } if *t <= now => {
                self.start(now);
            }
            _ => {}
        }
    }

    /// Adds credentials from the challenge answered before, saving a round trip (refresh).
    fn preauthorize(&mut self, rng: &mut dyn Rng) {
        let Some(msg) = self.outgoing.as_mut() else {
            return;
        };
        let uri = msg.uri_text().unwrap_or("").to_owned();
        let auths = self.digest.authorize(
            &DigestRequest {
                method: "REGISTER",
                uri: &uri,
                body: b"",
            },
            rng,
        );
        for a in auths {
            msg.push_header_named(a.header_name(), &a.credentials.to_string());
            self.sent_credentials.push(a.credentials);
        }
    }

    /// A final (or provisional: ignored) response to the last REGISTER.
    pub fn handle_response(&mut self, now: Instant, response: &Message, rng: &mut dyn Rng) {
        let Some(status) = response.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        match status {
            200..=299 => self.on_success(now, response),
            401 | 407 => self.on_challenge(now, status, response, rng),
            423 => {
                let min = response
                    .get::<typed::MinExpires>()
                    .and_then(Result::ok)
                    .map(|m| m.0);
                match min {
                    Some(min) if min > self.config.expires && !self.unregistering => {
                        self.config.expires = min;
                        self.queue_register(min, None);
                        self.preauthorize(rng);
                    }
                    _ => self.fail(
                        now,
                        RegisterError::Rejected {
                            status,
                            reason: response.reason().unwrap_or_default().into_owned(),
                            retry_after: None,
                        },
                    ),
                }
            }
            _ => {
                let retry_after = response
                    .get::<typed::RetryAfter<'_>>()
                    .and_then(Result::ok)
                    .map(|r| r.delta);
                self.fail(
                    now,
                    RegisterError::Rejected {
                        status,
                        reason: response.reason().unwrap_or_default().into_owned(),
                        retry_after,
                    },
                )
            }
        }
    }

    /// The REGISTER got no final response (timeout) or could not be sent.
    pub fn handle_failure(&mut self, now: Instant, error: RegisterError) {
        self.fail(now, error);
    }

    fn fail(&mut self, now: Instant, error: RegisterError) {
        if self.unregistering {
            self.state = RegistrationState::Unregistered;
            self.events.push_back(RegistrationEvent::Unregistered);
            return;
        }
        let retry = match &error {
            // Retrying would get the same answer: the credentials or the realm are wrong.
            RegisterError::AuthenticationFailed { .. } | RegisterError::RealmRefused { .. } => None,
            RegisterError::Rejected {
                retry_after: Some(s),
                ..
            } => Some(Duration::from_secs(u64::from(*s))),
            _ => Some(self.retry_delay),
        };
        self.retry_delay = (self.retry_delay * 2).min(self.config.retry_max);
        self.refresh_at = None;
        self.state = RegistrationState::Failed {
            error: error.clone(),
            retry_at: retry.map(|d| now + d),
        };
        self.events.push_back(RegistrationEvent::Failed(error));
    }

    fn on_success(&mut self, now: Instant, response: &Message) {
        if let Some(Ok(info)) = response.get::<typed::AuthenticationInfo<'_>>()
            && let Ok(parsed) = crate::auth::header::AuthenticationInfo::parse(&info.to_string())
        {
            let realm = self
                .sent_credentials
                .first()
                .and_then(|c| c.param("realm").map(str::to_owned))
                .unwrap_or_default();
            self.digest.handle_authentication_info(&realm, &parsed);
        }
        self.retired_contact = None;
        if self.unregistering {
            self.state = RegistrationState::Unregistered;
            self.events.push_back(RegistrationEvent::Unregistered);
            return;
        }
        self.flow_timer = response
            .header_lines_named("Flow-Timer")
            .next()
            .and_then(Result::ok)
            .and_then(|v| v.trim().parse().ok());
        let bindings: Vec<String> = response
            .contacts()
            .filter_map(Result::ok)
            .map(|c| c.to_string())
            .collect();
        // The expiry granted to our contact (§10.2.4): its expires parameter, else Expires.
        let ours = response.contacts().filter_map(Result::ok).find(|c| {
            c.address().is_some_and(|a| match &a.uri() {
                Ok(Uri::Sip(u)) => u.equivalent(&self.config.contact),
                _ => false,
            }) || self.config.instance_id.as_ref().is_some_and(|id| {
                c.address()
                    .and_then(|a| {
                        a.params
                            .value("+sip.instance")
                            .map(|v| v.contains(id.as_str()))
                    })
                    .unwrap_or(false)
            })
        });
        let expires = ours
            .as_ref()
            .and_then(Contact::expires)
            .or_else(|| response.expires().and_then(Result::ok).map(|e| e.0))
            .unwrap_or(self.config.expires);
        let expires_at = now + Duration::from_secs(u64::from(expires));
        // Refresh ahead of expiry: 10% early, at least 5 s, never before half the interval.
        let margin = (expires / 10).max(5).min(expires / 2);
        self.refresh_at = Some(now + Duration::from_secs(u64::from(expires - margin)));
        self.retry_delay = self.config.retry_min;
        self.state = RegistrationState::Registered { expires_at };
        self.events
            .push_back(RegistrationEvent::Registered { expires, bindings });
    }

    fn on_challenge(&mut self, now: Instant, status: u16, response: &Message, rng: &mut dyn Rng) {
        self.auth_rounds += 1;
        if self.auth_rounds > MAX_AUTH_ROUNDS {
            self.fail(now, RegisterError::Challenge("too many challenges".into()));
            return;
        }
        let kind = ChallengeKind::from_status(status).expect("401 or 407");
        let header = match kind {
            ChallengeKind::Www => HeaderName::WwwAuthenticate,
            ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
        };
        let values: Vec<&str> = response
            .header_lines(header)
            .filter_map(Result::ok)
            .collect();
        let uri = Uri::Sip(self.config.registrar.clone()).to_string();
        let request = DigestRequest {
            method: "REGISTER",
            uri: &uri,
            body: b"",
        };
        let previous = std::mem::take(&mut self.sent_credentials);
        match self
            .digest
            .respond_to_values(kind, &values, &request, &previous, rng)
        {
            Ok(auths) => {
                let expires = if self.unregistering {
                    0
                } else {
                    self.config.expires
                };
                let headers = auths
                    .iter()
                    .map(|a| (a.header_name().to_owned(), a.credentials.to_string()))
                    .collect();
                self.queue_register(expires, Some(headers));
            }
            Err(crate::auth::digest::AuthError::Rejected { realm }) => {
                self.fail(now, RegisterError::AuthenticationFailed { realm })
            }
            Err(crate::auth::digest::AuthError::RealmRefused { realm }) => {
                self.fail(now, RegisterError::RealmRefused { realm, status })
            }
            Err(e) => self.fail(now, RegisterError::Challenge(e.to_string())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant; the code under test never reads the clock
mod tests {
    use super::*;
    use crate::rng::XorShiftRng;
    use rand_core::SeedableRng;

    #[test]
    fn the_flow_timer_of_the_200_is_kept() {
        let config = RegistrationConfig::new(
            "sip:alice@example.test",
            "sip:alice@192.0.2.1:5060;transport=tcp",
            "alice",
            "secret",
        )
        .unwrap();
        let mut reg = Registration::new(config, "c@192.0.2.1".into(), "t".into());
        let now = Instant::now();
        reg.start(now);
        let req = reg.poll_request().unwrap();
        let mut ok = crate::message::response_to(&req, 200, None);
        ok.push_header(
            HeaderName::Contact,
            "<sip:alice@192.0.2.1:5060;transport=tcp>;expires=600",
        );
        ok.push_header_named("Flow-Timer", " 25");
        let ok = Message::parse(bytes::Bytes::from(ok.to_bytes().to_vec())).unwrap();
        reg.handle_response(now, &ok, &mut XorShiftRng::seed_from_u64(1));
        assert!(reg.is_registered());
        assert_eq!(reg.flow_timer(), Some(25));
    }

    #[test]
    fn a_rewritten_contact_replaces_the_old_binding_in_one_register() {
        let config = RegistrationConfig::new(
            "sip:alice@example.test",
            "sip:alice@192.168.1.20:5060",
            "alice",
            "secret",
        )
        .unwrap();
        let mut reg = Registration::new(config, "c@192.0.2.1".into(), "t".into());
        let now = Instant::now();
        let mut rng = XorShiftRng::seed_from_u64(1);
        let public = SipUri::parse("sip:alice@203.0.113.5:40000")
            .unwrap()
            .into_owned();
        // Not registered yet: nothing to rewrite.
        assert!(!reg.rewrite_contact(public.clone()));
        reg.start(now);
        let req = reg.poll_request().unwrap();
        let mut ok = crate::message::response_to(&req, 200, None);
        ok.push_header(
            HeaderName::Contact,
            "<sip:alice@192.168.1.20:5060>;expires=600",
        );
        let ok = Message::parse(bytes::Bytes::from(ok.to_bytes().to_vec())).unwrap();
        reg.handle_response(now, &ok, &mut rng);
        assert!(reg.is_registered());
        assert!(reg.rewrite_contact(public.clone()));
        assert!(!reg.rewrite_contact(public.clone()), "already that contact");
        let req = reg.poll_request().unwrap();
        let contacts: Vec<String> = req
            .contacts()
            .filter_map(Result::ok)
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            contacts,
            [
                "<sip:alice@203.0.113.5:40000>;expires=3600",
                "<sip:alice@192.168.1.20:5060>;expires=0"
            ]
        );
        let mut ok = crate::message::response_to(&req, 200, None);
        ok.push_header(
            HeaderName::Contact,
            "<sip:alice@203.0.113.5:40000>;expires=600",
        );
        let ok = Message::parse(bytes::Bytes::from(ok.to_bytes().to_vec())).unwrap();
        reg.handle_response(now, &ok, &mut rng);
        assert!(reg.is_registered());
        // The refresh binds the new contact alone.
        reg.start(now);
        let req = reg.poll_request().unwrap();
        assert_eq!(req.contacts().count(), 1);
    }

    #[test]
    fn the_reflexive_address_comes_from_received_and_rport() {
        let via = |v: &str| {
            let text = format!(
                "SIP/2.0 200 OK\r\nVia: {v}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
            );
            reflexive_address(&Message::parse(bytes::Bytes::from(text)).unwrap())
        };
        let addr = |s: &str| Some(s.parse().unwrap());
        assert_eq!(
            via("SIP/2.0/UDP 192.168.1.20:5060;rport=40000;received=203.0.113.5;branch=z9hG4bKa"),
            addr("203.0.113.5:40000")
        );
        assert_eq!(
            via("SIP/2.0/UDP 192.168.1.20:5070;received=203.0.113.5;branch=z9hG4bKa"),
            addr("203.0.113.5:5070")
        );
        assert_eq!(
            via("SIP/2.0/UDP 192.168.1.20:5070;rport=5071;branch=z9hG4bKa"),
            addr("192.168.1.20:5071")
        );
        assert_eq!(
            via("SIP/2.0/UDP 192.168.1.20:5070;rport;branch=z9hG4bKa"),
            None
        );
        assert_eq!(
            via("SIP/2.0/UDP 192.168.1.20;received=junk;rport=x;branch=z9hG4bKa"),
            None
        );
    }
}
