//! Property tests: parse -> print -> parse gives the same message, and every typed header
//! round-trips through its printed form.

use bytes::Bytes;
use proptest::prelude::*;
use tincan_sip::message::typed::{self, Header};
use tincan_sip::message::{Message, Verdict, verdict};

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn hostname() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,6}){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..255)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), (1u16..).prop_map(|p| format!(":{p}"))]
}

fn uri_params() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(";lr".to_owned()),
            prop_oneof![Just("udp"), Just("tcp"), Just("tls")]
                .prop_map(|t| format!(";transport={t}")),
            ("[a-z]{1,6}", "[a-zA-Z0-9%]{1,6}")
                .prop_filter("valid escapes", |(_, v)| !v.contains('%'))
                .prop_map(|(n, v)| format!(";{n}={v}")),
        ],
        0..3,
    )
    .prop_map(|v| v.concat())
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("sip"), Just("sips")],
        proptest::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}(%[0-9A-F]{2})?"),
        hostname(),
        port(),
        uri_params(),
    )
        .prop_map(|(s, u, h, p, params)| match u {
            Some(u) => format!("{s}:{u}@{h}{p}{params}"),
            None => format!("{s}:{h}{p}{params}"),
        })
}

fn display_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z]{1,8}( [A-Za-z]{1,8})?".prop_map(|d| format!("{d} ")),
        "[ -!#-\\[\\]-~]{0,12}".prop_map(|d| format!("\"{d}\" ")),
        "[a-z]{1,5}".prop_map(|d| format!("\"{d} \\\"q\\\" \\\\\" ")),
    ]
}

fn header_params() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            token().prop_map(|t| format!(";{t}")),
            (token(), token()).prop_map(|(n, v)| format!(";{n}={v}")),
            (token(), "[ -!#-\\[\\]-~]{0,8}").prop_map(|(n, v)| format!(";{n}=\"{v}\"")),
        ],
        0..3,
    )
    .prop_map(|v| v.concat())
}

fn name_addr() -> impl Strategy<Value = String> {
    (display_name(), sip_uri(), header_params()).prop_map(|(d, u, p)| format!("{d}<{u}>{p}"))
}

fn via() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("UDP"),
            Just("TCP"),
            Just("TLS"),
            Just("SCTP"),
            Just("WS")
        ],
        hostname(),
        port(),
        "[a-zA-Z0-9]{1,12}",
        prop_oneof![
            Just(""),
            Just(";rport"),
            Just(";rport=5060;received=192.0.2.1")
        ],
    )
        .prop_map(|(t, h, p, b, extra)| format!("SIP/2.0/{t} {h}{p};branch=z9hG4bK{b}{extra}"))
}

/// A random header line (name as written, value).
fn header_line() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (prop_oneof![Just("Via"), Just("v")], via()).prop_map(|(n, v)| (n.to_owned(), v)),
        (prop_oneof![Just("Contact"), Just("m")], name_addr()).prop_map(|(n, v)| (n.to_owned(), v)),
        (Just("Route"), proptest::collection::vec(sip_uri(), 1..3)).prop_map(|(n, v)| (
            n.to_owned(),
            v.iter()
                .map(|u| format!("<{u};lr>"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Just("Supported"), proptest::collection::vec(token(), 1..4))
            .prop_map(|(n, v)| (n.to_owned(), v.join(", "))),
        (Just("Subject"), "[ -~]{0,20}").prop_map(|(n, v)| (n.to_owned(), v.trim().to_owned())),
        ("X-[A-Za-z]{1,8}", "[!-~]([ -~]{0,20}[!-~])?").prop_map(|(n, v)| (n, v)),
        (Just("User-Agent"), "[A-Za-z]{1,8}/[0-9.]{1,5}").prop_map(|(n, v)| (n.to_owned(), v)),
    ]
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just("INVITE"),
            Just("REGISTER"),
            Just("OPTIONS"),
            Just("BYE"),
            token().prop_map(|t| Box::leak(t.into_boxed_str()) as &str)
        ],
        sip_uri(),
        via(),
        name_addr(),
        name_addr(),
        "[a-zA-Z0-9.-]{1,20}(@[a-z0-9.]{1,10})?",
        0u32..=u32::MAX,
        proptest::collection::vec((header_line(), any::<bool>()), 0..8),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(
            |(method, ruri, v, from, to, callid, seq, extra, body, compact)| {
                let mut m = format!("{method} {ruri} SIP/2.0\r\n");
                m += &format!("{}: {v}\r\n", if compact { "v" } else { "Via" });
                m += &format!("{}: {from}\r\n", if compact { "f" } else { "From" });
                m += &format!("To: {to}\r\n");
                m += &format!("{}: {callid}\r\n", if compact { "i" } else { "Call-ID" });
                m += &format!("CSeq: {seq} {method}\r\nMax-Forwards: 70\r\n");
                for ((name, value), fold) in extra {
                    // Fold the value at a space when asked to.
                    let value = if fold {
                        value.replacen(' ', "\r\n  ", 1)
                    } else {
                        value
                    };
                    m += &format!("{name}: {value}\r\n");
                }
                m += &format!("Content-Length: {}\r\n\r\n", body.len());
                let mut bytes = m.into_bytes();
                bytes.extend_from_slice(&body);
                bytes
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_print_parse_is_identity(bytes in message()) {
        let msg = Message::parse(Bytes::from(bytes.clone())).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(verdict(&bytes), Verdict::Accept, "{}", String::from_utf8_lossy(&bytes));
        let printed = msg.to_bytes();
        // Untouched headers print exactly as received.
        prop_assert_eq!(&printed[..], &bytes[..]);
        let again = Message::parse(printed.clone()).unwrap();
        prop_assert_eq!(&again, &msg);
    }

    #[test]
    fn changed_headers_reparse(bytes in message(), new_via in via()) {
        let mut msg = Message::parse(Bytes::from(bytes)).unwrap();
        msg.prepend_header(tincan_sip::message::HeaderName::Via, &new_via);
        msg.set_body(Some("text/plain"), Bytes::from_static(b"changed"));
        let again = Message::parse(msg.to_bytes()).unwrap();
        prop_assert_eq!(&again, &msg);
        prop_assert_eq!(again.top_via().unwrap().unwrap().to_string(), typed::Via::parse(&new_via).unwrap().to_string());
        prop_assert_eq!(again.body().as_ref(), b"changed");
    }

    #[test]
    fn via_round_trips(v in via()) {
        let a = typed::Via::parse(&v).unwrap();
        let printed = a.to_string();
        let b = typed::Via::parse(&printed).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(b.to_string(), printed);
    }

    #[test]
    fn name_addr_round_trips(v in name_addr()) {
        for parsed in [typed::From::parse(&v).map(|f| f.0), typed::Contact::parse(&v).map(|c| c.address().unwrap().clone())] {
            let a = parsed.unwrap();
            let printed = a.to_string();
            let b = typed::From::parse(&printed).unwrap().0;
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(b.to_string(), printed);
        }
    }

    #[test]
    fn scalars_round_trip(seq in any::<u32>(), mf in any::<u8>(), exp in any::<u32>(), secs in 0i64..253_402_300_799) {
        let c = typed::CSeq { seq, method: typed::Method::Invite };
        prop_assert_eq!(typed::CSeq::parse(&c.to_string()).unwrap(), c);
        prop_assert_eq!(typed::MaxForwards::parse(&mf.to_string()).unwrap(), typed::MaxForwards(mf));
        prop_assert_eq!(typed::Expires::parse(&exp.to_string()).unwrap(), typed::Expires(exp));
        let d = typed::Date::from_unix_seconds(secs);
        prop_assert_eq!(typed::Date::parse(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn token_and_text_headers_round_trip(t in token(), params in header_params()) {
        let src = format!("{t}{params}");
        let e = typed::Event::parse(&src).unwrap();
        let p = e.to_string();
        prop_assert_eq!(typed::Event::parse(&p).unwrap(), e);
        let s = typed::SubscriptionState::parse(&src).unwrap();
        let p = s.to_string();
        prop_assert_eq!(typed::SubscriptionState::parse(&p).unwrap(), s);
        let src_ct = format!("application/{t}{params}");
        let ct = typed::ContentType::parse(&src_ct).unwrap();
        let p = ct.to_string();
        prop_assert_eq!(typed::ContentType::parse(&p).unwrap(), ct);
        let r = typed::Require::parse(&t).unwrap();
        let p = r.to_string();
        prop_assert_eq!(typed::Require::parse(&p).unwrap(), r);
        let src_se = format!("1800{params}");
        let se = typed::SessionExpires::parse(&src_se).unwrap();
        let p = se.to_string();
        prop_assert_eq!(typed::SessionExpires::parse(&p).unwrap(), se);
    }

    #[test]
    fn auth_values_round_trip(realm in "[ -!#-\\[\\]-~]{0,12}", nonce in "[a-zA-Z0-9+/=]{1,20}", alg in prop_oneof![Just("MD5"), Just("SHA-256")]) {
        let v = format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\"");
        let a = typed::WwwAuthenticate::parse(&v).unwrap();
        let printed = a.to_string();
        prop_assert_eq!(typed::WwwAuthenticate::parse(&printed).unwrap(), a);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = verdict(&bytes);
        let mut f = tincan_sip::message::framing::StreamFramer::default();
        f.push(&bytes);
        while let Ok(Some(_)) = f.next_frame() {}
    }
}
