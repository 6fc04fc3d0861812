//! DNS answers are peer input: whatever comes back, a resolution finishes without panicking,
//! asks a bounded number of questions, and respects `sips:`. URI input never panics either.
#![allow(clippy::disallowed_methods)] // tests pick a virtual epoch

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use proptest::prelude::*;
use rand_core::SeedableRng;
use tincan_sip::resolve::{
    Destination, DnsAnswer, DnsError, DnsRecord, RecordData, Resolution, ResolveConfig, Transport,
};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("example.com".to_owned()),
        Just("_sip._udp.example.com".to_owned()),
        Just("_sips._tcp.example.com.".to_owned()),
        Just("sip1.example.com".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        "[a-z._]{0,12}",
    ]
}

fn record() -> impl Strategy<Value = DnsRecord> {
    let data = prop_oneof![
        (
            any::<u16>(),
            any::<u16>(),
            "[sSaAuU]{0,2}",
            prop_oneof![
                Just("SIP+D2U".to_owned()),
                Just("SIP+D2T".to_owned()),
                Just("SIPS+D2T".to_owned()),
                Just("sips+d2t".to_owned()),
                "[A-Z+0-9]{0,8}",
            ],
            name()
        )
            .prop_map(|(order, preference, flags, services, replacement)| {
                RecordData::Naptr {
                    order,
                    preference,
                    flags,
                    services,
                    regexp: String::new(),
                    replacement,
                }
            }),
        (any::<u16>(), any::<u16>(), any::<u16>(), name()).prop_map(
            |(priority, weight, port, target)| RecordData::Srv {
                priority,
                weight,
                port,
                target
            }
        ),
        any::<u32>().prop_map(|a| RecordData::A(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| RecordData::Aaaa(Ipv6Addr::from(a))),
    ];
    (any::<u32>(), data).prop_map(|(ttl, data)| DnsRecord::new(ttl, data))
}

fn answer() -> impl Strategy<Value = DnsAnswer> {
    prop_oneof![
        proptest::collection::vec(record(), 0..6).prop_map(Ok),
        Just(Err(DnsError::NxDomain)),
        Just(Err(DnsError::Timeout)),
        Just(Err(DnsError::Other("boom".into()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_dns_answers_finish_cleanly(
        secure in any::<bool>(),
        transport in proptest::option::of(prop_oneof![Just("udp"), Just("tcp"), Just("tls"), Just("ws")]),
        answers in proptest::collection::vec(answer(), 64),
        seed in any::<u64>(),
    ) {
        let mut dest = if secure { Destination::sips("example.com") } else { Destination::sip("example.com") };
        if let Some(t) = transport {
            dest = dest.with_transport(t);
        }
        let mut rng = rand_xorshift::XorShiftRng::seed_from_u64(seed);
        let mut res = Resolution::new(dest, ResolveConfig::default(), &mut rng);
        let now = Instant::now();
        let mut asked = 0;
        let result = loop {
            if let Some(r) = res.poll_result() {
                break r;
            }
            let q = res.poll_query().expect("an unfinished resolution always has a question");
            res.handle_answer(now, &q, answers[asked % answers.len()].clone());
            asked += 1;
            prop_assert!(asked < 200, "too many questions");
        };
        if let Ok(r) = result {
            prop_assert!(!r.targets.is_empty());
            if secure {
                prop_assert!(r.targets.iter().all(|t| t.transport == Transport::Tls));
            }
        }
    }

    #[test]
    fn any_uri_text_never_panics(s in "\\PC{0,60}") {
        if let Ok(d) = Destination::parse(&s) {
            let mut rng = rand_xorshift::XorShiftRng::seed_from_u64(1);
            let mut res = Resolution::new(d, ResolveConfig::default(), &mut rng);
            let now = Instant::now();
            for _ in 0..20 {
                match res.poll_query() {
                    Some(q) => res.handle_answer(now, &q, Err(DnsError::NxDomain)),
                    None => break,
                }
            }
        }
    }
}
