//! RTP keep-alives (RFC 6263): a session that sends no RTP (on hold, recvonly) sends one
//! keep-alive packet from its RTP port every 15 s, so a NAT keeps the mapping: comfort noise
//! when CN was negotiated, else an empty packet of an unused dynamic payload type. None while
//! media flows, none with rtcp-mux (RTCP keeps the port open). Virtual time.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtp::{PortKind, RtpPacket, is_rtcp};
use tincan_media::session::{Direction, MediaSession, SessionConfig};

/// Runs a session alone for `secs` (feeding silent frames every 20 ms when `send`), and
/// returns the RTP packets it sent: (time since the start, payload type, payload).
fn run(config: SessionConfig, secs: u64, send: bool) -> Vec<(Duration, u8, Vec<u8>)> {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config, t0).expect("a session");
    let frame = vec![0i16; s.frame_samples()];
    let mut out = Vec::new();
    let mut now = t0;
    let end = t0 + Duration::from_secs(secs);
    while now < end {
        if send {
            s.send_frame(now, &frame).expect("a frame");
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while let Some(t) = s.poll_transmit() {
            if t.kind == PortKind::Rtp && !is_rtcp(&t.bytes) {
                let p = RtpPacket::parse(&t.bytes).expect("an rtp packet");
                out.push((now - t0, p.payload_type, p.payload.to_vec()));
            }
        }
        now += Duration::from_millis(20);
    }
    out
}

fn config(direction: Direction) -> SessionConfig {
    let mut c = SessionConfig::new(0xA, CodecKind::Pcmu, 0, "127.0.0.1:5000".parse().unwrap());
    c.direction = direction;
    c.telephone_event_payload_type = Some(96);
    c
}

#[test]
fn on_hold_an_empty_packet_of_an_unused_payload_type_every_15_s() {
    let sent = run(config(Direction::RecvOnly), 46, true);
    let times: Vec<u64> = sent.iter().map(|(t, ..)| t.as_secs()).collect();
    assert_eq!(times, [15, 30, 45], "{sent:?}");
    for (_, pt, payload) in &sent {
        assert_eq!(
            *pt, 97,
            "the first dynamic type not in use (96 is telephone-event)"
        );
        assert!(payload.is_empty());
    }
}

#[test]
fn with_comfort_noise_the_keepalive_is_a_cn_packet() {
    let mut c = config(Direction::Inactive);
    c.comfort_noise_payload_type = Some(13);
    let sent = run(c, 20, false);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, 13);
    assert_eq!(sent[0].2, [127], "silence: -127 dBov (RFC 3389)");
}

#[test]
fn no_keepalive_while_media_flows_or_with_rtcp_mux() {
    let sent = run(config(Direction::SendRecv), 40, true);
    assert!(sent.iter().all(|(_, pt, _)| *pt == 0), "only audio");
    let mut muxed = config(Direction::Inactive);
    muxed.rtcp_mux = true;
    assert!(run(muxed, 40, false).is_empty());
}
