//! Interop with real RTP from outside: sipp's own captures (Debian `sip-tester`,
//! `/usr/share/sip-tester/`), parsed with a tiny pcap reader and fed to a `MediaSession` at
//! their capture times (virtual time):
//! - `g711a.pcap`: 236 PCMA packets, decoded without loss to audio of plausible level;
//! - `dtmf_2833_*.pcap`: RFC 2833/4733 telephone-events, reported as the right keys.
//!
//! Skips loudly when the files are missing (`apt-get install sip-tester`).
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/pcap.rs"]
mod pcap;
#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtp::{PortKind, RtpPacket};
use tincan_media::session::{MediaEvent, MediaSession, SessionConfig};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

const DIR: &str = "/usr/share/sip-tester";

fn load(name: &str) -> Option<Vec<pcap::UdpRecord>> {
    let path = format!("{DIR}/{name}");
    match std::fs::read(&path) {
        Ok(bytes) => Some(pcap::udp_records(&bytes).expect("sipp's capture is classic pcap")),
        Err(e) => {
            skip::skip(&format!(
                "{path} not readable ({e}); install Debian package sip-tester"
            ));
            None
        }
    }
}

/// Feeds the records at their capture times, pulling playout every 20 ms; returns the
/// session, what it played and its events.
fn replay(
    records: &[pcap::UdpRecord],
    config: SessionConfig,
) -> (MediaSession, Vec<i16>, Vec<MediaEvent>) {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config, t0).expect("session");
    let end = records.last().map_or(Duration::ZERO, |r| r.at) + Duration::from_millis(300);
    let (mut played, mut events) = (Vec::new(), Vec::new());
    let mut next = 0;
    let mut ms = 0u64;
    while Duration::from_millis(ms) <= end {
        let now = t0 + Duration::from_millis(ms);
        while next < records.len() && t0 + records[next].at <= now {
            s.handle_packet(
                now,
                records[next].from,
                PortKind::Rtp,
                &records[next].payload,
            );
            next += 1;
        }
        if ms.is_multiple_of(20) {
            played.extend(s.playout(now));
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        ms += 1;
    }
    (s, played, events)
}

#[test]
fn sipp_g711a_capture_decodes() {
    let Some(records) = load("g711a.pcap") else {
        return;
    };
    let rtp: Vec<_> = records
        .into_iter()
        .filter(|r| RtpPacket::parse(&r.payload).is_ok_and(|p| p.payload_type == 8))
        .collect();
    assert_eq!(rtp.len(), 236, "packets in sipp's g711a.pcap");
    let first = RtpPacket::parse(&rtp[0].payload).unwrap();
    assert_eq!(
        first.payload.len(),
        240,
        "sipp sends 30 ms of PCMA per packet"
    );
    let remote = rtp[0].from;
    let (mut s, played, events) = replay(&rtp, SessionConfig::new(1, CodecKind::Pcma, 8, remote));
    let stats = s.stats();
    println!("g711a.pcap: {stats:?}");
    assert_eq!(stats.packets_received, 236);
    assert_eq!(stats.packets_lost, 0);
    assert_eq!(stats.playout.decoded, 236);
    assert!(
        stats.playout.concealed <= 1,
        "nothing concealed but the underrun when the stream ends"
    );
    assert_eq!(stats.playout.late, 0);
    assert!(events.contains(&MediaEvent::SsrcChanged {
        old: None,
        new: first.ssrc
    }));
    // Plausible speech-like level: well above silence, well below full scale.
    let level = util::rms(&played);
    let peak = played.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
    println!(
        "g711a.pcap: played {} samples, rms {level:.0}, peak {peak}",
        played.len()
    );
    assert!(level > 100.0 && level < 20_000.0, "rms {level}");
    assert!(peak < 32_767, "no clipping");
}

#[test]
fn sipp_rfc2833_captures_give_their_keys() {
    let keys = [
        ("0", '0'),
        ("1", '1'),
        ("5", '5'),
        ("9", '9'),
        ("star", '*'),
        ("pound", '#'),
    ];
    for (name, key) in keys {
        let Some(records) = load(&format!("dtmf_2833_{name}.pcap")) else {
            return;
        };
        let packets: Vec<_> = records
            .iter()
            .filter_map(|r| RtpPacket::parse(&r.payload).ok())
            .collect();
        assert!(!packets.is_empty(), "{name}: rtp in the capture");
        let pt = packets[0].payload_type;
        let mut config = SessionConfig::new(1, CodecKind::Pcmu, 0, records[0].from);
        config.telephone_event_payload_type = Some(pt);
        let (_, _, events) = replay(&records, config);
        let digits: Vec<char> = events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::DtmfReceived { digit, .. } => Some(*digit),
                _ => None,
            })
            .collect();
        assert_eq!(
            digits,
            vec![key],
            "dtmf_2833_{name}.pcap (payload type {pt})"
        );
    }
}
