//! Parse -> print -> parse round trips for the authentication header values, and robustness:
//! arbitrary input never panics.

use proptest::prelude::*;
use tincan_sip::auth::{
    AuthParam, AuthenticationInfo, Challenge, Credentials, DigestChallenge, DigestCredentials,
};

#[test]
fn real_world_values_round_trip() {
    for v in [
        r#"Digest realm="example.test", nonce="Z8Qk2WfEXl+oXj1wDZXLyMZq5/dAL9nJ", qop="auth""#,
        r#"Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5"#,
        r#"Digest realm="biloxi.com",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",algorithm=SHA-512-256,qop="auth,auth-int",userhash=true,charset=UTF-8"#,
    ] {
        let c = Challenge::parse(v).unwrap();
        let printed = c.to_string();
        assert_eq!(Challenge::parse(&printed).unwrap(), c, "{printed}");
        let d = DigestChallenge::from_challenge(&c).unwrap();
        assert_eq!(
            DigestChallenge::from_challenge(&d.to_challenge()).unwrap(),
            d
        );
    }
    let v = r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    let c = Credentials::parse(v).unwrap();
    assert_eq!(c.to_string(), v);
    let d = DigestCredentials::from_credentials(&c).unwrap();
    assert_eq!(d.nc, Some(1));
    assert_eq!(
        DigestCredentials::from_credentials(&d.to_credentials()).unwrap(),
        d
    );
}

#[test]
fn duplicate_and_missing_parameters_are_typed_errors() {
    assert!(DigestChallenge::parse(r#"Digest realm="a", realm="b", nonce="n""#).is_err());
    assert!(DigestChallenge::parse(r#"Digest realm="a""#).is_err());
    assert!(DigestChallenge::parse(r#"Basic realm="a""#).is_err());
    assert!(
        DigestCredentials::parse(
            r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", nc=1"#
        )
        .is_err()
    );
}

fn param() -> impl Strategy<Value = AuthParam> {
    (
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
        "[ -~\u{e9}\u{4e2d}]{0,12}",
        any::<bool>(),
    )
        .prop_map(|(n, v, q)| AuthParam {
            name: n,
            value: v,
            quoted: q,
        })
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,80}") {
        let _ = Challenge::parse(&s);
        let _ = Challenge::parse_list(&s);
        let _ = Credentials::parse(&s);
        let _ = AuthenticationInfo::parse(&s);
        let _ = DigestChallenge::parse(&s);
        let _ = DigestCredentials::parse(&s);
    }

    #[test]
    fn printed_values_parse_back_to_the_same_content(
        scheme in "[A-Za-z][A-Za-z0-9-]{0,8}",
        params in proptest::collection::vec(param(), 1..6),
    ) {
        let c = Credentials { scheme, token68: None, params };
        let back = Credentials::parse(&c.to_string()).unwrap();
        prop_assert_eq!(&back.scheme, &c.scheme);
        prop_assert_eq!(back.params.len(), c.params.len());
        for (a, b) in back.params.iter().zip(&c.params) {
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(&a.value, &b.value);
        }
        // And the second print is byte-identical to the first.
        prop_assert_eq!(back.to_string(), c.to_string());
        let info = AuthenticationInfo { params: c.params.clone() };
        let info_back = AuthenticationInfo::parse(&info.to_string()).unwrap();
        prop_assert_eq!(info_back.params.len(), info.params.len());
    }
}
