//! The receiver report a session actually sends, parsed back and checked against figures
//! computed by hand (RFC 3550 §6.4.1, A.3, A.8): fraction lost, cumulative loss, extended
//! highest sequence number across a wrap, interarrival jitter, LSR and DLSR.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtcp::{self, Report, SenderInfo};
use tincan_media::rtp::{PortKind, RtpPacket, is_rtcp};
use tincan_media::session::{Direction, MediaSession, SessionConfig};

#[test]
fn receiver_report_matches_hand_computed_figures() {
    let t0 = Instant::now();
    let peer = "127.0.0.1:5000".parse().unwrap();
    let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, peer);
    config.direction = Direction::RecvOnly; // RR only: we send no RTP
    let mut s = MediaSession::new(config, t0).unwrap();

    // The peer (SSRC 0xB) sends 20 ms PCMU packets with sequence numbers 65530..=65535,
    // 0..=23 (a wrap), of which 65533, 2, 3 and 17 are lost. Packets arrive 5 ms late on
    // odd sequence numbers, on time on even ones.
    let lost = [65_533u16, 2, 3, 17];
    let seqs: Vec<u16> = (65_530u16..=65_535).chain(0..=23).collect();
    let mut last_arrival = t0;
    for (i, &seq) in seqs.iter().enumerate() {
        if lost.contains(&seq) {
            continue;
        }
        let skew = if seq % 2 == 1 { 5 } else { 0 };
        let at = t0 + Duration::from_millis(20 * i as u64 + skew);
        let p = RtpPacket {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: 160 * i as u32,
            ssrc: 0xB,
            payload: vec![0xd5; 160].into(),
        };
        s.handle_packet(at, peer, PortKind::Rtp, &p.to_bytes());
        last_arrival = at;
    }
    // An SR from the peer, 100 ms before our report.
    let sr_ntp = 0x1234_5678_abcd_ef01u64;
    let sr = rtcp::build_compound(
        &Report {
            ssrc: 0xB,
            sender_info: Some(SenderInfo {
                ntp_time: sr_ntp,
                rtp_time: 0,
                packet_count: 30,
                octet_count: 4800,
            }),
            blocks: vec![],
        },
        "peer",
    );
    let sr_at = last_arrival + Duration::from_millis(10);
    let mut rtcp_port = peer;
    rtcp_port.set_port(5001);
    s.handle_packet(sr_at, rtcp_port, PortKind::Rtcp, &sr);
    // Drive the session until its first report.
    let mut now = sr_at;
    let report = loop {
        now += Duration::from_millis(10);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        if let Some(t) = s.poll_transmit() {
            assert!(is_rtcp(&t.bytes));
            break (t, now);
        }
        assert!(now < t0 + Duration::from_secs(10), "no report within 10 s");
    };
    let (transmit, sent_at) = report;
    assert_eq!(transmit.kind, PortKind::Rtcp);
    assert_eq!(
        transmit.to, rtcp_port,
        "rtcp latched to the peer's rtcp port"
    );
    let compound = rtcp::parse_compound(&transmit.bytes).unwrap();
    let rr = &compound.reports[0];
    assert_eq!(rr.ssrc, 0xA);
    assert!(rr.sender_info.is_none(), "recvonly sends an RR");
    let block = rr.blocks[0];
    assert_eq!(block.ssrc, 0xB);
    // Probation (A.1) takes the first packet: counting starts at 65531. Highest: 23 in
    // cycle 1 -> 65536 + 23 = 65559. Expected 65559 - 65531 + 1 = 29; received 29 - 4 = 25
    // (65530 was the probation packet and is not counted, all 4 losses are after it).
    assert_eq!(block.extended_highest_sequence, 65_559);
    assert_eq!(block.cumulative_lost, 4);
    // Fraction: 4 * 256 / 29 = 35.3 -> 35.
    assert_eq!(block.fraction_lost, 35);
    // Jitter (A.8, 8 kHz): transit alternates by 40 units (5 ms) between consecutive
    // received packets, except across a loss where two packets of the same parity meet.
    let mut jitter_q4: u32 = 0;
    let mut prev_transit: Option<i64> = None;
    for (i, &seq) in seqs.iter().enumerate() {
        if lost.contains(&seq) {
            continue;
        }
        let skew = if seq % 2 == 1 { 40 } else { 0 };
        let transit = (160 * i as i64 + skew) - 160 * i as i64;
        if let Some(p) = prev_transit {
            let d = (transit - p).unsigned_abs() as u32;
            jitter_q4 = jitter_q4 + d - ((jitter_q4 + 8) >> 4);
        }
        prev_transit = Some(transit);
    }
    assert_eq!(block.jitter, jitter_q4 >> 4);
    assert!(block.jitter > 0);
    // LSR: the middle 32 bits of the SR's NTP time; DLSR: time since it came, 1/65536 s.
    assert_eq!(block.last_sr, 0x5678_abcd);
    let dlsr = (sent_at - sr_at).as_nanos() * 65_536 / 1_000_000_000;
    assert_eq!(u128::from(block.delay_since_last_sr), dlsr);
    assert_eq!(compound.cnames, vec![(0xA, "tincan-0000000a".to_owned())]);
}
