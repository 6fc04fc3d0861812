//! Symmetric RTP (RFC 4961) with latching: A was told (by SDP) to send to 127.0.0.1:5000 but
//! B's packets come from 127.0.0.9:7000 (a NAT). A keeps sending to the SDP address until a
//! packet of B's stream with the negotiated payload type arrives, then sends to where it came
//! from. A packet with a payload type we did not negotiate does not move A.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtp::{PortKind, RtpPacket};
use tincan_media::session::{MediaEvent, MediaSession, SessionConfig};
use util::addr;

#[test]
fn latches_on_first_valid_packet_only() {
    let t0 = Instant::now();
    let sdp_b = addr("127.0.0.1:5000");
    let nat_b = addr("127.0.0.9:7000");
    let mut a = MediaSession::new(SessionConfig::new(1, CodecKind::Pcmu, 0, sdp_b), t0).unwrap();
    a.send_frame(t0, &[0; 960]).unwrap();
    assert_eq!(a.poll_transmit().unwrap().to, sdp_b);

    // An attacker's packet with payload type 96 (not negotiated) from elsewhere: ignored.
    let bogus = RtpPacket {
        payload_type: 96,
        marker: false,
        sequence: 1,
        timestamp: 0,
        ssrc: 99,
        payload: vec![0; 160].into(),
    };
    a.handle_packet(
        t0,
        addr("127.0.0.66:6666"),
        PortKind::Rtp,
        &bogus.to_bytes(),
    );
    assert_eq!(a.remote_rtp(), sdp_b);
    assert_eq!(a.stats().unknown_payload_type, 1);

    // B's real stream, PCMU, from the NAT address.
    let good = RtpPacket {
        payload_type: 0,
        ssrc: 2,
        ..bogus
    };
    a.handle_packet(t0, nat_b, PortKind::Rtp, &good.to_bytes());
    assert_eq!(a.remote_rtp(), nat_b);
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.contains(&MediaEvent::RemoteLatched {
        kind: PortKind::Rtp,
        address: nat_b
    }));
    assert!(events.contains(&MediaEvent::SsrcChanged { old: None, new: 2 }));
    a.send_frame(t0 + Duration::from_millis(20), &[0; 960])
        .unwrap();
    assert_eq!(a.poll_transmit().unwrap().to, nat_b);
}

#[test]
fn latching_off_keeps_the_sdp_address() {
    let t0 = Instant::now();
    let sdp_b = addr("127.0.0.1:5000");
    let mut config = SessionConfig::new(1, CodecKind::Pcmu, 0, sdp_b);
    config.symmetric_rtp = false;
    let mut a = MediaSession::new(config, t0).unwrap();
    let p = RtpPacket {
        payload_type: 0,
        marker: false,
        sequence: 1,
        timestamp: 0,
        ssrc: 2,
        payload: vec![0; 160].into(),
    };
    a.handle_packet(t0, addr("127.0.0.9:7000"), PortKind::Rtp, &p.to_bytes());
    assert_eq!(a.remote_rtp(), sdp_b);
    assert_eq!(a.stats().packets_received, 1);
}
