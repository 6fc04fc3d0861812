//! Digest response test vectors: RFC 2617 §3.5, RFC 7616 §3.9.1, a value computed by sipp in
//! the lab, and SHA-512-256 / -sess / auth-int / legacy values cross-checked with Python's
//! hashlib (OpenSSL), an independent implementation.

use tincan_sip::auth::{Algorithm, Qop, ResponseInputs, digest_response};

fn rfc7616(algorithm: Algorithm) -> ResponseInputs<'static> {
    ResponseInputs {
        algorithm,
        username: "Mufasa",
        realm: "http-auth@example.org",
        password: "Circle of Life",
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc: 1,
        qop: Some(Qop::Auth),
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
    }
}

#[test]
fn rfc2617_section_3_5() {
    let r = digest_response(&ResponseInputs {
        algorithm: Algorithm::Md5,
        username: "Mufasa",
        realm: "testrealm@host.com",
        password: "Circle Of Life",
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        cnonce: "0a4f113b",
        nc: 1,
        qop: Some(Qop::Auth),
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
    });
    assert_eq!(r, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc7616_section_3_9_1_md5() {
    assert_eq!(
        digest_response(&rfc7616(Algorithm::Md5)),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

#[test]
fn rfc7616_section_3_9_1_sha256() {
    assert_eq!(
        digest_response(&rfc7616(Algorithm::Sha256)),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn sha512_256_cross_checked_with_openssl() {
    // python3: hashlib.new('sha512_256', ...) on the RFC 7616 §3.9.1 inputs.
    assert_eq!(
        digest_response(&rfc7616(Algorithm::Sha512_256)),
        "430d05014cecc49cab6fbe03176d41a1da86cbfe24a16580e22aaad928d960d0"
    );
}

#[test]
fn sipp_lab_register_value() {
    let r = digest_response(&ResponseInputs {
        algorithm: Algorithm::Md5,
        username: "alice",
        realm: "example.test",
        password: "secret",
        nonce: "26397n1x608",
        cnonce: "6b8b4567",
        nc: 1,
        qop: Some(Qop::Auth),
        method: "REGISTER",
        uri: "sip:127.0.0.1:5080",
        body: b"",
    });
    assert_eq!(r, "ce768e0e20c42fc373d3494f253ed4d2");
}

#[test]
fn session_auth_int_and_legacy_variants_cross_checked_with_openssl() {
    assert_eq!(
        digest_response(&rfc7616(Algorithm::Sha256Sess)),
        "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
    );
    assert_eq!(
        digest_response(&rfc7616(Algorithm::Md5Sess)),
        "e783283f46242139c486a698fec7211d"
    );
    let mut i = rfc7616(Algorithm::Sha512_256);
    i.qop = Some(Qop::AuthInt);
    i.body = b"v=0\r\n";
    assert_eq!(
        digest_response(&i),
        "5e69357dfa951887c95e88aae45b1f7f834aeba94f85648b86d532e82afdb589"
    );
    let mut i = rfc7616(Algorithm::Md5);
    i.qop = None;
    assert_eq!(digest_response(&i), "7b2cc3b30e75b4777ea31027084363fd");
}

#[test]
fn rspauth_cross_checked_with_openssl() {
    // A2 = ":" digest-uri (RFC 2617 §3.2.3), RFC 7616 §3.9.1 inputs.
    assert_eq!(
        tincan_sip::auth::digest_rspauth(&rfc7616(Algorithm::Md5)),
        "9b712497bc9f91499fbcca1dfc5f09a5"
    );
}
