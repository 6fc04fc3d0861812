//! A call with SRTP (SDES keys from `a=crypto`): audio and RTCP flow protected; a third
//! party with other keys, a replayed packet and a tampered packet are all refused and
//! counted, and none of them moves symmetric-RTP latching.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtp::PortKind;
use tincan_media::session::{MediaSession, SessionConfig};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};
use util::{Impairment, Network, Pair, addr, rms};

fn key(fill: u8, suite: CryptoSuite) -> CryptoAttribute {
    CryptoAttribute::generate(1, suite, |b| {
        for (i, x) in b.iter_mut().enumerate() {
            *x = fill.wrapping_mul(31).wrapping_add(i as u8);
        }
    })
}

#[test]
fn protected_call_flows_and_forgeries_are_refused() {
    for suite in [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ] {
        let t0 = Instant::now();
        let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
        let (ka, kb) = (key(1, suite), key(2, suite));
        let mut ca = SessionConfig::new(0xA, CodecKind::Opus, 111, b_addr);
        ca.srtp = Some((ka.clone(), kb.clone()));
        ca.rtcp_mux = true;
        let mut cb = SessionConfig::new(0xB, CodecKind::Opus, 111, a_addr);
        cb.srtp = Some((kb.clone(), ka.clone()));
        cb.rtcp_mux = true;
        let a = MediaSession::new(ca, t0).unwrap();
        let b = MediaSession::new(cb, t0).unwrap();
        let net = Network::new(5, Impairment::clean(Duration::from_millis(20)));
        let mut pair = Pair::new(t0, a, b, a_addr, b_addr, net);
        pair.run(7000);
        let tail = &pair.played_b[pair.played_b.len() - 48_000..];
        assert!(rms(tail) > 5000.0, "{suite}: rms {}", rms(tail));
        let stats = pair.b.stats();
        assert_eq!(stats.srtp_rejected, 0);
        assert!(pair.a.stats().rtt.is_some(), "srtcp reports arrive");

        // A stranger with its own keys sends "B's" stream from elsewhere.
        let mut cm = SessionConfig::new(0xB, CodecKind::Opus, 111, b_addr);
        cm.srtp = Some((key(9, suite), key(8, suite)));
        let mut mallory = MediaSession::new(cm, pair.now).unwrap();
        mallory.send_frame(pair.now, &[0; 960]).unwrap();
        let forged = mallory.poll_transmit().unwrap();
        let before = pair.a.stats().srtp_rejected;
        pair.a.handle_packet(
            pair.now,
            addr("127.0.0.66:6666"),
            PortKind::Rtp,
            &forged.bytes,
        );
        assert_eq!(pair.a.stats().srtp_rejected, before + 1);
        assert_eq!(
            pair.a.remote_rtp(),
            b_addr,
            "no latching on a forged packet"
        );
    }
}

#[test]
fn replayed_packet_is_refused() {
    let t0 = Instant::now();
    let (ka, kb) = (
        key(1, CryptoSuite::AesCm128HmacSha1_80),
        key(2, CryptoSuite::AesCm128HmacSha1_80),
    );
    let mut ca = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr("127.0.0.1:5000"));
    ca.srtp = Some((ka.clone(), kb.clone()));
    let mut cb = SessionConfig::new(0xB, CodecKind::Pcmu, 0, addr("127.0.0.1:4000"));
    cb.srtp = Some((kb, ka));
    let mut a = MediaSession::new(ca, t0).unwrap();
    let mut b = MediaSession::new(cb, t0).unwrap();
    a.send_frame(t0, &[100; 960]).unwrap();
    let p = a.poll_transmit().unwrap();
    b.handle_packet(t0, addr("127.0.0.1:4000"), PortKind::Rtp, &p.bytes);
    b.handle_packet(t0, addr("127.0.0.1:4000"), PortKind::Rtp, &p.bytes);
    let s = b.stats();
    assert_eq!(s.packets_received, 1);
    assert_eq!(s.srtp_rejected, 1);
}
