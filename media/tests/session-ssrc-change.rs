//! The peer's SSRC changes mid-call (e.g. a transfer or a media server switching sources):
//! the receive state is reset, an event says so, and audio keeps playing.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::session::{MediaEvent, MediaSession, SessionConfig};
use util::{Impairment, Network, Pair, addr, rms};

#[test]
fn new_ssrc_resets_receive_state() {
    let t0 = Instant::now();
    let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
    let a = MediaSession::new(SessionConfig::new(0xA, CodecKind::Pcmu, 0, b_addr), t0).unwrap();
    let b = MediaSession::new(SessionConfig::new(0xB, CodecKind::Pcmu, 0, a_addr), t0).unwrap();
    let net = Network::new(7, Impairment::clean(Duration::from_millis(10)));
    let mut pair = Pair::new(t0, a, b, a_addr, b_addr, net);
    pair.run(1000);
    assert_eq!(pair.a.remote_ssrc(), Some(0xB));
    // B is replaced by a new stream (new SSRC, new random sequence numbers).
    let mut config = SessionConfig::new(0xC, CodecKind::Pcmu, 0, a_addr);
    config.seed = 12345;
    pair.b = MediaSession::new(config, pair.now).unwrap();
    pair.played_a.clear();
    pair.run(1000);
    assert_eq!(pair.a.remote_ssrc(), Some(0xC));
    assert!(pair.events_a.contains(&MediaEvent::SsrcChanged {
        old: Some(0xB),
        new: 0xC
    }));
    let stats = pair.a.stats();
    assert_eq!(
        stats.packets_lost, 0,
        "the new stream is counted on its own"
    );
    // The new stream plays: the last half second has the tone's level.
    let tail = &pair.played_a[pair.played_a.len() - 24_000..];
    assert!(rms(tail) > 5000.0, "rms {}", rms(tail));
}

#[test]
fn a_stray_packet_does_not_take_over() {
    use tincan_media::rtp::{PortKind, RtpPacket};
    let t0 = Instant::now();
    let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
    let a = MediaSession::new(SessionConfig::new(0xA, CodecKind::Pcmu, 0, b_addr), t0).unwrap();
    let b = MediaSession::new(SessionConfig::new(0xB, CodecKind::Pcmu, 0, a_addr), t0).unwrap();
    let net = Network::new(7, Impairment::clean(Duration::from_millis(10)));
    let mut pair = Pair::new(t0, a, b, a_addr, b_addr, net);
    pair.run(500);
    // Injected packets of another SSRC, out of sequence, from elsewhere (dropped as a
    // source on latching probation) and with B's address forged (dropped as an SSRC that
    // is not in sequence).
    for (seq, from) in [100u16, 7, 5000]
        .into_iter()
        .flat_map(|seq| [(seq, addr("127.0.0.66:6666")), (seq, b_addr)])
    {
        let stray = RtpPacket {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: 0,
            ssrc: 0x666,
            payload: vec![0; 160].into(),
        };
        let now = pair.now;
        pair.a
            .handle_packet(now, from, PortKind::Rtp, &stray.to_bytes());
    }
    pair.run(500);
    assert_eq!(pair.a.remote_ssrc(), Some(0xB));
    assert_eq!(pair.a.remote_rtp(), b_addr);
    assert_eq!(pair.a.stats().unknown_source, 3);
    assert_eq!(pair.a.stats().unknown_ssrc, 3);
    let tail = &pair.played_a[pair.played_a.len() - 9600..];
    assert!(rms(tail) > 5000.0);
}

#[test]
fn same_ssrc_restart_is_detected_and_played() {
    use tincan_media::rtp::{PortKind, RtpPacket};
    let t0 = Instant::now();
    let peer = addr("127.0.0.1:5000");
    let mut s = MediaSession::new(SessionConfig::new(0xA, CodecKind::Pcmu, 0, peer), t0).unwrap();
    let mut tone = util::Tone::new(1000.0, 8000.0);
    let mut enc = CodecKind::Pcmu.encoder().unwrap();
    let mut played = Vec::new();
    let mut events = Vec::new();
    // 1 s of stream, then the sender restarts: new sequence numbers and timestamps, same SSRC.
    for k in 0..100u32 {
        let (seq, ts) = if k < 50 {
            (1000 + k as u16, 8000 + 160 * k)
        } else {
            (40_000 + k as u16, 900_000 + 160 * k)
        };
        let mut payload = Vec::new();
        enc.encode(&tone.frame(), &mut payload).unwrap();
        let p = RtpPacket {
            payload_type: 0,
            marker: k == 50,
            sequence: seq,
            timestamp: ts,
            ssrc: 0xB,
            payload: payload.into(),
        };
        let now = t0 + Duration::from_millis(20 * u64::from(k));
        s.handle_packet(now, peer, PortKind::Rtp, &p.to_bytes());
        played.extend(s.playout(now));
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
    }
    assert!(events.contains(&MediaEvent::StreamRestarted { ssrc: 0xB }));
    // A.1: the first packet after the jump is held back as a possible stray, the second
    // confirms the restart.
    let stats = s.stats();
    assert_eq!(stats.packets_lost, 0);
    let tail = &played[played.len() - 19_200..];
    assert!(
        rms(tail) > 5000.0,
        "plays after the restart: rms {}",
        rms(tail)
    );
}
