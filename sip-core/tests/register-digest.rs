//! Registration with a digest-authenticating registrar, in virtual time: challenge, refresh
//! with nonce counting, stale nonces, wrong password, 423, 503 with Retry-After, unregister.

// Tests take one real instant as the epoch; all later times are computed from it.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::auth::digest::{
    Algorithm, DigestCredentials, Qop, ResponseInputs, digest_response,
};
use tincan_sip::message::{HeaderName, Message, response_to};
use tincan_sip::register::{
    RegisterError, Registration, RegistrationConfig, RegistrationEvent, RegistrationState,
};
use tincan_sip::rng::XorShiftRng;

/// A registrar that challenges with `algorithms`, checks the answer with `password`, and
/// grants `grant` seconds.
struct Registrar {
    password: &'static str,
    algorithms: Vec<&'static str>,
    nonce: String,
    grant: u32,
    min_expires: Option<u32>,
    stale_next: bool,
    last_nc: Option<u32>,
    seen: Vec<String>,
}

impl Registrar {
    fn new(password: &'static str) -> Registrar {
        Registrar {
            password,
            algorithms: vec!["MD5"],
            nonce: "n1".into(),
            grant: 600,
            min_expires: None,
            stale_next: false,
            last_nc: None,
            seen: Vec::new(),
        }
    }

    fn challenge(&self, req: &Message, stale: bool) -> Message {
        let mut r = response_to(req, 401, None);
        r.set_to_tag("reg");
        for alg in &self.algorithms {
            r.push_header(
                HeaderName::WwwAuthenticate,
                &format!(
                    "Digest realm=\"example.test\", nonce=\"{}\", algorithm={alg}, qop=\"auth\"{}",
                    self.nonce,
                    if stale { ", stale=true" } else { "" }
                ),
            );
        }
        r
    }

    fn handle(&mut self, req: &Message) -> Message {
        // Re-parse what would go on the wire.
        let req = Message::parse(req.to_bytes()).unwrap();
        self.seen.push(req.to_string());
        let expires: u32 = req.header(HeaderName::Expires).unwrap().parse().unwrap();
        if let Some(min) = self.min_expires
            && expires != 0
            && expires < min
        {
            let mut r = response_to(&req, 423, None);
            r.push_header(HeaderName::MinExpires, &min.to_string());
            return r;
        }
        let Some(auth) = req.header(HeaderName::Authorization) else {
            return self.challenge(&req, false);
        };
        let creds = DigestCredentials::parse(auth).unwrap();
        if creds.nonce != self.nonce {
            return self.challenge(&req, true);
        }
        if self.stale_next {
            self.stale_next = false;
            self.nonce = format!("{}x", self.nonce);
            return self.challenge(&req, true);
        }
        let alg = Algorithm::parse(creds.algorithm_token.as_deref().unwrap_or("MD5")).unwrap();
        let expected = digest_response(&ResponseInputs {
            algorithm: alg,
            username: &creds.username,
            realm: &creds.realm,
            password: self.password,
            nonce: &creds.nonce,
            cnonce: creds.cnonce.as_deref().unwrap_or(""),
            nc: creds.nc.unwrap_or(0),
            qop: creds.qop.as_deref().map(|_| Qop::Auth),
            method: "REGISTER",
            uri: &creds.uri,
            body: b"",
        });
        if expected != creds.response {
            return self.challenge(&req, false);
        }
        self.last_nc = creds.nc;
        let mut r = response_to(&req, 200, None);
        r.set_to_tag("reg");
        if expires > 0 {
            let contact = req.header(HeaderName::Contact).unwrap().to_owned();
            let contact = contact.replace(
                &format!("expires={expires}"),
                &format!("expires={}", self.grant.min(expires)),
            );
            r.push_header(HeaderName::Contact, &contact);
            r.push_header(
                HeaderName::Contact,
                "<sip:alice@198.51.100.7:5060>;expires=100",
            );
        }
        r
    }
}

fn registration(password: &str) -> Registration {
    let mut c = RegistrationConfig::new(
        "sip:alice@example.test",
        "sip:alice@192.0.2.1:5060",
        "alice",
        password,
    )
    .unwrap();
    c.expires = 3600;
    Registration::new(c, "reg-call@192.0.2.1".into(), "t1".into())
}

/// Sends every queued REGISTER to the registrar until none is left.
fn exchange(
    reg: &mut Registration,
    registrar: &mut Registrar,
    now: Instant,
    rng: &mut XorShiftRng,
) -> Vec<RegistrationEvent> {
    while let Some(req) = reg.poll_request() {
        let resp = registrar.handle(&req);
        let resp = Message::parse(Bytes::from(resp.to_bytes().to_vec())).unwrap();
        reg.handle_response(now, &resp, rng);
    }
    std::iter::from_fn(|| reg.poll_event()).collect()
}

#[test]
fn registers_after_a_challenge_and_refreshes_with_the_next_nonce_count() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(9);
    let mut reg = registration("secret");
    let mut registrar = Registrar::new("secret");
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert_eq!(
        registrar.seen.len(),
        2,
        "REGISTER, 401, REGISTER with credentials, 200"
    );
    match &events[..] {
        [RegistrationEvent::Registered { expires, bindings }] => {
            assert_eq!(*expires, 600);
            assert_eq!(bindings.len(), 2, "every binding is reported: {bindings:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(registrar.last_nc, Some(1));
    // Refresh 10% before expiry (540 s), with credentials up front (no new 401).
    assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(540)));
    let t1 = t0 + Duration::from_secs(540);
    reg.handle_timeout(t1, &mut rng);
    let events = exchange(&mut reg, &mut registrar, t1, &mut rng);
    assert_eq!(registrar.seen.len(), 3, "the refresh needed no challenge");
    assert_eq!(registrar.last_nc, Some(2), "nonce count incremented");
    assert!(matches!(events[..], [RegistrationEvent::Registered { .. }]));
    // The refresh keeps the Call-ID and increments CSeq (RFC 3261 §10.2.4).
    assert!(registrar.seen[2].contains("Call-ID: reg-call@192.0.2.1"));
    assert!(registrar.seen[2].contains("CSeq: 3 REGISTER"));
}

#[test]
fn stale_nonce_is_retried_without_failing() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(1);
    let mut reg = registration("secret");
    let mut registrar = Registrar::new("secret");
    registrar.stale_next = true;
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert!(
        matches!(events[..], [RegistrationEvent::Registered { .. }]),
        "{events:?}"
    );
    assert_eq!(registrar.seen.len(), 3);
}

#[test]
fn wrong_password_fails_clearly_and_is_not_retried() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(2);
    let mut reg = registration("wrong");
    let mut registrar = Registrar::new("secret");
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert_eq!(
        events,
        [RegistrationEvent::Failed(
            RegisterError::AuthenticationFailed {
                realm: "example.test".into()
            }
        )]
    );
    assert!(events[0].clone() != RegistrationEvent::Unregistered);
    let msg = match &events[0] {
        RegistrationEvent::Failed(e) => e.to_string(),
        _ => unreachable!(),
    };
    assert!(msg.contains("wrong username or password"), "{msg}");
    assert_eq!(
        reg.poll_timeout(),
        None,
        "a wrong password is not retried in a loop"
    );
}

#[test]
fn a_challenge_of_a_realm_not_allowed_is_refused_and_not_retried() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(2);
    let mut c = RegistrationConfig::new(
        "sip:alice@example.test",
        "sip:alice@192.0.2.1:5060",
        "alice",
        "secret",
    )
    .unwrap();
    c.realms = Some(vec!["other.test".into()]);
    let mut reg = Registration::new(c, "reg-call@192.0.2.1".into(), "t1".into());
    let mut registrar = Registrar::new("secret");
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert_eq!(registrar.seen.len(), 1, "no REGISTER with credentials went");
    assert_eq!(
        events,
        [RegistrationEvent::Failed(RegisterError::RealmRefused {
            realm: "example.test".into(),
            status: 401,
        })]
    );
    assert_eq!(reg.poll_timeout(), None, "not retried in a loop");
    // The same registration with the realm allowed registers.
    reg.set_realms(Some(vec!["other.test".into(), "example.test".into()]));
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert!(
        matches!(events[..], [RegistrationEvent::Registered { .. }]),
        "{events:?}"
    );
}

#[test]
fn strongest_algorithm_is_chosen() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(3);
    let mut reg = registration("secret");
    let mut registrar = Registrar::new("secret");
    registrar.algorithms = vec!["MD5", "SHA-256", "SHA-512-256"];
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert!(matches!(events[..], [RegistrationEvent::Registered { .. }]));
    assert!(
        registrar.seen[1].contains("algorithm=SHA-512-256"),
        "{}",
        registrar.seen[1]
    );
}

#[test]
fn interval_too_brief_follows_min_expires() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(4);
    let mut c = RegistrationConfig::new(
        "sip:alice@example.test",
        "sip:alice@192.0.2.1",
        "alice",
        "secret",
    )
    .unwrap();
    c.expires = 30;
    let mut reg = Registration::new(c, "c2".into(), "t".into());
    let mut registrar = Registrar::new("secret");
    registrar.min_expires = Some(120);
    reg.start(t0);
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert!(
        matches!(
            events[..],
            [RegistrationEvent::Registered { expires: 120, .. }]
        ),
        "{events:?}"
    );
    assert!(registrar.seen.iter().any(|m| m.contains("Expires: 120")));
}

#[test]
fn service_unavailable_retries_after_retry_after() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(5);
    let mut reg = registration("secret");
    reg.start(t0);
    let req = reg.poll_request().unwrap();
    let mut r = response_to(&req, 503, None);
    r.push_header(HeaderName::RetryAfter, "120");
    let r = Message::parse(r.to_bytes()).unwrap();
    reg.handle_response(t0, &r, &mut rng);
    assert!(matches!(
        reg.poll_event(),
        Some(RegistrationEvent::Failed(RegisterError::Rejected {
            status: 503,
            retry_after: Some(120),
            ..
        }))
    ));
    assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    reg.handle_timeout(t0 + Duration::from_secs(120), &mut rng);
    assert!(reg.poll_request().is_some(), "retried at Retry-After");
}

#[test]
fn unregister_sends_expires_zero() {
    let t0 = Instant::now();
    let mut rng = XorShiftRng::seed_from_u64(6);
    let mut reg = registration("secret");
    let mut registrar = Registrar::new("secret");
    reg.start(t0);
    exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert!(reg.unregister(t0));
    let events = exchange(&mut reg, &mut registrar, t0, &mut rng);
    assert_eq!(events, [RegistrationEvent::Unregistered]);
    assert_eq!(reg.state(), &RegistrationState::Unregistered);
    let last = registrar.seen.last().unwrap();
    assert!(
        last.contains("Expires: 0") && last.contains(";expires=0"),
        "{last}"
    );
}

#[test]
fn outbound_contact_has_instance_and_reg_id() {
    let mut c = RegistrationConfig::new(
        "sip:alice@example.test",
        "sip:alice@192.0.2.1;transport=tcp",
        "alice",
        "x",
    )
    .unwrap();
    c.instance_id = Some("urn:uuid:00000000-0000-1000-8000-000A95A0E128".into());
    c.reg_id = Some(1);
    let mut reg = Registration::new(c, "c3".into(), "t".into());
    reg.start(Instant::now());
    let text = reg.poll_request().unwrap().to_string();
    assert!(
        text.contains("+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\""),
        "{text}"
    );
    assert!(text.contains("reg-id=1"));
    assert!(text.contains("Supported: outbound, path"));
}
