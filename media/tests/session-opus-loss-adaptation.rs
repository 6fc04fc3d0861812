//! Opus adapts to the loss the peer reports in RTCP (RFC 3550 §6.4.1 fraction lost, fed to
//! the codec's `adapt_to_loss` policy): at 10 % loss the policy raises the bitrate to pay for
//! the FEC redundancy (32 -> about 36 kbit/s), so the sender's packets grow once the first
//! report is in; on a clean network they keep the default size. The source is white noise so
//! that Opus' VBR spends its whole budget. The receiver's quality estimate reflects the loss.
//!
//! Not 25 %: that is the policy's cliff (above 25 % it falls back to the minimum bitrate), and
//! the loss measured in each RTCP interval lands on either side of it depending on where the
//! session's seeded RTCP intervals fall.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::session::{MediaSession, SessionConfig};
use util::{Impairment, Network, Pair, Tone, addr};

fn bytes_per_packet(loss: f64) -> (f64, f64, f64) {
    let t0 = Instant::now();
    let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
    let a = MediaSession::new(SessionConfig::new(0xA, CodecKind::Opus, 111, b_addr), t0).unwrap();
    let mut cb = SessionConfig::new(0xB, CodecKind::Opus, 111, a_addr);
    cb.seed = 3;
    let b = MediaSession::new(cb, t0).unwrap();
    let net = Network::new(
        11,
        Impairment {
            loss,
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
        },
    );
    let mut p = Pair::new(t0, a, b, a_addr, b_addr, net);
    p.source_a = Some(Tone::noise(6000.0, 5));
    p.run(1000);
    let s0 = p.a.stats();
    let before = s0.bytes_sent as f64 / s0.packets_sent as f64;
    p.run(11_000);
    let s1 = p.a.stats();
    let after = (s1.bytes_sent - s0.bytes_sent) as f64 / (s1.packets_sent - s0.packets_sent) as f64;
    let mos = p.b.quality_stats().quality().mos;
    println!(
        "loss {loss}: {before:.1} -> {after:.1} bytes/packet, remote loss {:.3}, mos at b {mos:.2}",
        s1.remote_fraction_lost
    );
    (before, after, mos)
}

#[test]
fn bitrate_follows_reported_loss() {
    let (clean_before, clean_after, clean_mos) = bytes_per_packet(0.0);
    let (lossy_before, lossy_after, lossy_mos) = bytes_per_packet(0.1);
    // Same source, same encoder (FEC at the initial expected loss) until the first report: the
    // same start.
    assert_eq!(clean_before, lossy_before);
    // Once the reports are in, the lossy call spends more per packet (FEC + higher rate).
    assert!(
        lossy_after > clean_after * 1.1,
        "10 % loss {lossy_after:.1} vs clean {clean_after:.1} bytes/packet"
    );
    assert!(clean_mos > lossy_mos, "mos {clean_mos} vs {lossy_mos}");
}
