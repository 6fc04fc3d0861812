//! Never panic on peer input: random and mutated datagrams into the RTP, RTCP and `a=crypto`
//! parsers and into whole sessions (plain and SRTP, both ports) are refused or counted.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tincan_media::codec::CodecKind;
use tincan_media::rtcp;
use tincan_media::rtp::{PortKind, RtpPacket};
use tincan_media::session::{MediaSession, SessionConfig};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};

fn session(srtp: bool) -> (Instant, MediaSession) {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(1, CodecKind::Pcmu, 0, "127.0.0.1:5000".parse().unwrap());
    c.telephone_event_payload_type = Some(101);
    c.comfort_noise_payload_type = Some(13);
    if srtp {
        let k = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(3));
        c.srtp = Some((k.clone(), k));
    }
    (t0, MediaSession::new(c, t0).unwrap())
}

/// A valid RTP or RTCP header start, so that mutations reach deep into the parsers.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            prop_oneof![Just(0x80u8), Just(0x81), Just(0x90), Just(0xa0), Just(0x8f)],
            prop_oneof![
                Just(0u8),
                Just(101),
                Just(13),
                Just(200),
                Just(201),
                Just(202),
                Just(203)
            ],
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(b0, b1, rest)| {
                let mut v = vec![b0, b1];
                v.extend(rest);
                v
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_do_not_panic(bytes in datagram()) {
        let _ = RtpPacket::parse(&bytes);
        let _ = rtcp::parse_compound(&bytes);
    }

    #[test]
    fn crypto_attribute_parser_does_not_panic(s in "\\PC{0,120}") {
        let _ = CryptoAttribute::parse(&s);
    }

    #[test]
    fn crypto_attribute_mutations_do_not_panic(
        tag in "[0-9]{0,11}",
        suite in "(AES_CM_128_HMAC_SHA1_(80|32)|[A-Z_0-9]{0,20})",
        key in "[A-Za-z0-9+/=]{0,48}",
        tail in "(\\|[0-9^:]{0,12}){0,3}( [A-Z_=0-9]{0,12}){0,2}",
    ) {
        let _ = CryptoAttribute::parse(&format!("{tag} {suite} inline:{key}{tail}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn sessions_survive_hostile_datagrams(
        packets in proptest::collection::vec((datagram(), any::<bool>()), 1..40),
        srtp in any::<bool>(),
    ) {
        let (t0, mut s) = session(srtp);
        let from = "127.0.0.9:7000".parse().unwrap();
        for (i, (bytes, rtcp_port)) in packets.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * i as u64);
            let port = if *rtcp_port { PortKind::Rtcp } else { PortKind::Rtp };
            s.handle_packet(now, from, port, bytes);
            let _ = s.playout(now);
            s.handle_timeout(now);
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        }
        let _ = s.stats();
    }
}
