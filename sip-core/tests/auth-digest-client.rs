//! `DigestClient` behaviour: challenge choice, nonce counting, stale retry, rejection, 401 vs
//! 407, qop choice, userhash, preemptive refresh credentials.

use rand_core::SeedableRng;
use rand_xorshift::XorShiftRng;
use tincan_sip::auth::{
    Algorithm, AuthError, AuthenticationInfo, Challenge, ChallengeKind, DigestClient,
    DigestCredentials, DigestRequest, Qop, ResponseInputs, digest_response,
};

const REGISTER: DigestRequest<'static> = DigestRequest {
    method: "REGISTER",
    uri: "sip:example.test",
    body: b"",
};

fn rng() -> XorShiftRng {
    XorShiftRng::seed_from_u64(7)
}

fn challenges(values: &[&str]) -> Vec<Challenge> {
    values
        .iter()
        .map(|v| Challenge::parse(v).unwrap())
        .collect()
}

/// Recompute the response the server would expect and compare.
fn verify(creds: &DigestCredentials, password: &str, request: &DigestRequest<'_>) {
    let algorithm = creds
        .algorithm_token
        .as_deref()
        .map(|a| Algorithm::parse(a).unwrap())
        .unwrap_or(Algorithm::Md5);
    let qop = creds.qop.as_deref().map(|q| match q {
        "auth" => Qop::Auth,
        "auth-int" => Qop::AuthInt,
        other => panic!("unexpected qop {other}"),
    });
    let expected = digest_response(&ResponseInputs {
        algorithm,
        username: "alice",
        realm: &creds.realm,
        password,
        nonce: &creds.nonce,
        cnonce: creds.cnonce.as_deref().unwrap_or(""),
        nc: creds.nc.unwrap_or(0),
        qop,
        method: request.method,
        uri: request.uri,
        body: request.body,
    });
    assert_eq!(creds.response, expected);
}

#[test]
fn strongest_algorithm_wins_and_unknown_ones_are_ignored() {
    let mut c = DigestClient::new("alice", "secret");
    let offered = challenges(&[
        r#"Basic realm="example.test""#,
        r#"Digest realm="example.test", nonce="n1", algorithm=MD5, qop="auth""#,
        r#"Digest realm="example.test", nonce="n2", algorithm=AKAv1-MD5, qop="auth""#,
        r#"Digest realm="example.test", nonce="n3", algorithm=SHA-512-256, qop="auth""#,
        r#"Digest realm="example.test", nonce="n4", algorithm=SHA-256, qop="auth""#,
    ]);
    let out = c
        .respond(ChallengeKind::Www, &offered, &REGISTER, &[], &mut rng())
        .unwrap();
    assert_eq!(out.len(), 1);
    let creds = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    assert_eq!(creds.algorithm_token.as_deref(), Some("SHA-512-256"));
    assert_eq!(creds.nonce, "n3");
    assert_eq!(creds.nc, Some(1));
    verify(&creds, "secret", &REGISTER);
}

#[test]
fn nothing_supported_is_a_clear_error() {
    let mut c = DigestClient::new("alice", "secret");
    let offered = challenges(&[
        r#"Basic realm="x""#,
        r#"Digest realm="x", nonce="n", algorithm=AKAv1-MD5"#,
        r#"Digest realm="x", nonce="n", qop="auth-conf""#,
    ]);
    let err = c
        .respond(ChallengeKind::Www, &offered, &REGISTER, &[], &mut rng())
        .unwrap_err();
    assert!(matches!(err, AuthError::NoSupportedChallenge { .. }));
    assert!(err.to_string().contains("AKAv1-MD5"), "{err}");
}

#[test]
fn nonce_count_increments_per_realm_and_nonce() {
    let mut c = DigestClient::new("alice", "secret");
    let mut r = rng();
    let ch = challenges(&[r#"Digest realm="example.test", nonce="abc", qop="auth""#]);
    let first = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut r)
        .unwrap();
    assert!(first[0].credentials.to_string().contains("nc=00000001"));
    for n in 2..=3u32 {
        let again = c.authorize(&REGISTER, &mut r);
        let creds = DigestCredentials::from_credentials(&again[0].credentials).unwrap();
        assert_eq!(creds.nc, Some(n));
        verify(&creds, "secret", &REGISTER);
    }
    assert_eq!(c.nonce_count("example.test", "abc"), 3);
    // A new nonce (stale) restarts at 1.
    let prev = vec![first[0].credentials.clone()];
    let stale =
        challenges(&[r#"Digest realm="example.test", nonce="def", qop="auth", stale=true"#]);
    let out = c
        .respond(ChallengeKind::Www, &stale, &REGISTER, &prev, &mut r)
        .unwrap();
    let creds = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    assert_eq!((creds.nonce.as_str(), creds.nc), ("def", Some(1)));
    assert_eq!(c.nonce_count("example.test", "abc"), 0);
}

#[test]
fn a_second_challenge_without_stale_means_wrong_credentials() {
    let mut c = DigestClient::new("alice", "wrong");
    let mut r = rng();
    let ch = challenges(&[r#"Digest realm="example.test", nonce="abc", qop="auth""#]);
    let first = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut r)
        .unwrap();
    let prev = vec![first[0].credentials.clone()];
    let ch2 = challenges(&[r#"Digest realm="example.test", nonce="xyz", qop="auth""#]);
    let err = c
        .respond(ChallengeKind::Www, &ch2, &REGISTER, &prev, &mut r)
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::Rejected {
            realm: "example.test".into()
        }
    );
    assert!(c.authorize(&REGISTER, &mut r).is_empty());
}

#[test]
fn proxy_challenges_are_answered_with_proxy_authorization() {
    let mut c = DigestClient::new("alice", "secret");
    let invite = DigestRequest {
        method: "INVITE",
        uri: "sip:bob@example.test",
        body: b"v=0\r\n",
    };
    let out = c
        .respond_to_values(
            ChallengeKind::from_status(407).unwrap(),
            &[r#"Digest realm="proxy.test", nonce="p1", opaque="op", algorithm=SHA-256, qop="auth-int""#],
            &invite,
            &[],
            &mut rng(),
        )
        .unwrap();
    assert_eq!(out[0].header_name(), "Proxy-Authorization");
    let creds = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    assert_eq!(creds.qop.as_deref(), Some("auth-int"));
    assert_eq!(creds.opaque.as_deref(), Some("op"));
    verify(&creds, "secret", &invite);
}

#[test]
fn auth_is_preferred_over_auth_int_when_both_are_offered() {
    let mut c = DigestClient::new("alice", "secret");
    let ch = challenges(&[r#"Digest realm="r", nonce="n", qop="auth-int, auth""#]);
    let out = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
        .unwrap();
    let creds = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    assert_eq!(creds.qop.as_deref(), Some("auth"));
}

#[test]
fn legacy_challenge_without_qop_has_no_cnonce_or_nc() {
    let mut c = DigestClient::new("alice", "secret");
    let ch = challenges(&[r#"Digest realm="r", nonce="n""#]);
    let out = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
        .unwrap();
    let creds = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    assert_eq!(
        (creds.cnonce.as_deref(), creds.nc, creds.qop.as_deref()),
        (None, None, None)
    );
    assert_eq!(creds.algorithm_token, None);
    verify(&creds, "secret", &REGISTER);
}

#[test]
fn session_algorithms_keep_one_cnonce_per_nonce() {
    let mut c = DigestClient::new("alice", "secret");
    let mut r = rng();
    let ch = challenges(&[r#"Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth""#]);
    let a = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut r)
        .unwrap();
    let b = c.authorize(&REGISTER, &mut r);
    let a = DigestCredentials::from_credentials(&a[0].credentials).unwrap();
    let b = DigestCredentials::from_credentials(&b[0].credentials).unwrap();
    assert_eq!(a.cnonce, b.cnonce);
    assert_eq!((a.nc, b.nc), (Some(1), Some(2)));
    verify(&b, "secret", &REGISTER);
}

#[test]
fn userhash_is_sent_when_offered_and_enabled() {
    let mut c = DigestClient::new("alice", "secret").with_userhash(true);
    let ch = challenges(&[
        r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth", userhash=true"#,
    ]);
    let out = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
        .unwrap();
    let creds = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    assert!(creds.userhash);
    assert_eq!(
        creds.username,
        Algorithm::Sha256.hash_hex(b"alice:r"),
        "RFC 7616 §3.4.4: username = H(unq(username) \":\" unq(realm))"
    );
}

#[test]
fn realm_restriction_ignores_other_realms() {
    let mut c = DigestClient::new("alice", "secret").with_realm("mine");
    let ch = challenges(&[
        r#"Digest realm="other", nonce="n""#,
        r#"Digest realm="mine", nonce="m""#,
    ]);
    let out = c
        .respond(ChallengeKind::Proxy, &ch, &REGISTER, &[], &mut rng())
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].realm, "mine");
}

#[test]
fn a_challenge_only_of_other_realms_is_refused_by_name() {
    // The password is for "mine" and "also": a challenge of "evil.example" alone gets no
    // answer (an MD5 of the password the challenger could attack offline), and says why.
    let mut c = DigestClient::new("alice", "secret").with_realms(["mine", "also"]);
    let ch = challenges(&[r#"Digest realm="evil.example", nonce="n", qop="auth""#]);
    let e = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
        .unwrap_err();
    assert_eq!(
        e,
        AuthError::RealmRefused {
            realm: "evil.example".into()
        }
    );
    assert!(e.to_string().contains("\"evil.example\""), "{e}");
    // A listed realm is answered; without a list (None) any realm is.
    let ch = challenges(&[r#"Digest realm="also", nonce="n", qop="auth""#]);
    assert!(
        c.respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
            .is_ok()
    );
    c.set_realms(None);
    let ch = challenges(&[r#"Digest realm="evil.example", nonce="n", qop="auth""#]);
    assert!(
        c.respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
            .is_ok()
    );
}

#[test]
fn narrowing_the_realms_forgets_credentials_of_the_others() {
    let mut c = DigestClient::new("alice", "secret");
    let ch = challenges(&[r#"Digest realm="a", nonce="n", qop="auth""#]);
    c.respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
        .unwrap();
    assert_eq!(c.authorize(&REGISTER, &mut rng()).len(), 1);
    c.set_realms(Some(vec!["b".to_owned()]));
    assert_eq!(c.realms(), Some(&["b".to_owned()][..]));
    assert!(
        c.authorize(&REGISTER, &mut rng()).is_empty(),
        "no credentials for a realm no longer allowed"
    );
}

#[test]
fn nextnonce_from_authentication_info_is_used_next() {
    let mut c = DigestClient::new("alice", "secret");
    let mut r = rng();
    let ch = challenges(&[r#"Digest realm="r", nonce="n1", qop="auth""#]);
    c.respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut r)
        .unwrap();
    let info = AuthenticationInfo::parse(r#"nextnonce="n2", qop=auth"#).unwrap();
    c.handle_authentication_info("r", &info);
    let next = c.authorize(&REGISTER, &mut r);
    let creds = DigestCredentials::from_credentials(&next[0].credentials).unwrap();
    assert_eq!((creds.nonce.as_str(), creds.nc), ("n2", Some(1)));
}

#[test]
fn rspauth_from_the_server_is_checked() {
    use tincan_sip::auth::digest_rspauth;
    let mut c = DigestClient::new("alice", "secret");
    let ch = challenges(&[r#"Digest realm="r", nonce="n1", algorithm=SHA-256, qop="auth""#]);
    let out = c
        .respond(ChallengeKind::Www, &ch, &REGISTER, &[], &mut rng())
        .unwrap();
    let sent = DigestCredentials::from_credentials(&out[0].credentials).unwrap();
    // What a server knowing the password computes.
    let good = digest_rspauth(&ResponseInputs {
        algorithm: Algorithm::Sha256,
        username: "alice",
        realm: "r",
        password: "secret",
        nonce: "n1",
        cnonce: sent.cnonce.as_deref().unwrap(),
        nc: 1,
        qop: Some(Qop::Auth),
        method: "",
        uri: REGISTER.uri,
        body: b"",
    });
    let info = |rsp: &str| {
        AuthenticationInfo::parse(&format!(
            r#"qop=auth, rspauth="{rsp}", cnonce="{}", nc=00000001"#,
            sent.cnonce.as_deref().unwrap()
        ))
        .unwrap()
    };
    assert_eq!(c.check_rspauth("r", &info(&good), b""), Some(true));
    assert_eq!(c.check_rspauth("r", &info("00ff"), b""), Some(false));
    assert_eq!(c.check_rspauth("other", &info(&good), b""), None);
    let no_rspauth = AuthenticationInfo::parse(r#"nextnonce="n2""#).unwrap();
    assert_eq!(c.check_rspauth("r", &no_rspauth, b""), None);
}
