//! Two media sessions through a seeded simulated network in virtual time, 0 %, 5 % and 20 %
//! loss with 0-80 ms jitter: a 1 kHz tone one way and a 440 Hz tone the other way come out
//! at their frequency and level, and losses are concealed or go through Opus' FEC path
//! (printed; run with `--nocapture`). For a steady tone libopus carries little redundancy, so
//! most FEC-path frames are its concealment: `codec-jitter-e2e.rs` checks real redundancy.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::session::{MediaSession, SessionConfig, SessionStats};
use util::{Impairment, Network, Tone, db, rms, tone_purity, zero_crossing_frequency};

struct Outcome {
    /// What B played (A's 1 kHz tone).
    at_b: Vec<i16>,
    /// What A played (B's 440 Hz tone).
    at_a: Vec<i16>,
    stats_b: SessionStats,
    stats_a: SessionStats,
}

const AMPLITUDE: f64 = 8000.0;

fn run(codec: CodecKind, pt: u8, imp: Impairment, seconds: u64, seed: u64) -> Outcome {
    let t0 = Instant::now();
    let a_addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let b_addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut ca = SessionConfig::new(0xA, codec, pt, b_addr);
    ca.seed = seed;
    let mut cb = SessionConfig::new(0xB, codec, pt, a_addr);
    cb.seed = seed + 1;
    let mut a = MediaSession::new(ca, t0).expect("session a");
    let mut b = MediaSession::new(cb, t0).expect("session b");
    let mut net = Network::new(seed, imp);
    let mut tone_a = Tone::new(1000.0, AMPLITUDE);
    let mut tone_b = Tone::new(440.0, AMPLITUDE);
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    for ms in 0..seconds * 1000 {
        let now = t0 + Duration::from_millis(ms);
        while let Some(p) = net.deliver(now) {
            let target = if p.to.ip() == b_addr.ip() && p.to.port() / 2 == b_addr.port() / 2 {
                &mut b
            } else {
                &mut a
            };
            target.handle_packet(now, p.from, p.kind, &p.bytes);
        }
        if ms.is_multiple_of(20) {
            a.send_frame(now, &tone_a.frame()).expect("send a");
            b.send_frame(now, &tone_b.frame()).expect("send b");
            at_a.extend(a.playout(now));
            at_b.extend(b.playout(now));
        }
        for (s, from) in [(&mut a, a_addr), (&mut b, b_addr)] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            while let Some(t) = s.poll_transmit() {
                let mut src = from;
                if t.kind == tincan_media::rtp::PortKind::Rtcp {
                    src.set_port(from.port() + 1);
                }
                net.send(now, src, t.to, t.bytes);
            }
            while s.poll_event().is_some() {}
        }
    }
    Outcome {
        at_b,
        at_a,
        stats_b: b.stats(),
        stats_a: a.stats(),
    }
}

fn check(label: &str, played: &[i16], frequency: f64, min_purity: f64, max_level_db: f64) {
    // Skip the first half second (playout start, codec warm-up).
    let steady = &played[24_000..];
    let purity = tone_purity(steady, frequency, 48_000.0);
    let zc = zero_crossing_frequency(steady, 48_000.0);
    let level = db(rms(steady) / (AMPLITUDE / 2f64.sqrt()));
    println!(
        "{label}: {frequency} Hz purity {purity:.3}, zero-crossing {zc:.0} Hz, level {level:+.2} dB"
    );
    assert!(
        purity > min_purity,
        "{label}: tone purity {purity:.3} ≤ {min_purity}"
    );
    assert!(
        (zc - frequency).abs() < frequency * 0.1,
        "{label}: zero-crossing frequency {zc:.0} Hz"
    );
    assert!(
        level.abs() < max_level_db,
        "{label}: level {level:+.2} dB off"
    );
}

fn report(label: &str, s: &SessionStats) {
    let p = s.playout;
    println!(
        "{label}: received {} lost {} decoded {} fec {} concealed {} late {} jitter {:?} delay {:?} target {:?} rtt {:?} remote loss {:.3}",
        s.packets_received,
        s.packets_lost,
        p.decoded,
        p.fec_recovered,
        p.concealed,
        p.late,
        s.jitter,
        s.playout_delay,
        s.playout_target,
        s.rtt,
        s.remote_fraction_lost,
    );
}

#[test]
fn opus_clean_network() {
    let o = run(
        CodecKind::Opus,
        111,
        Impairment::clean(Duration::from_millis(30)),
        6,
        1,
    );
    report("opus clean b", &o.stats_b);
    check("opus clean a->b", &o.at_b, 1000.0, 0.9, 1.5);
    check("opus clean b->a", &o.at_a, 440.0, 0.9, 1.5);
    assert_eq!(o.stats_b.packets_lost, 0);
    assert_eq!(o.stats_b.playout.concealed, 0);
    // RTT over a 30 ms each-way network: 60 ms (RTCP is not delayed by jitter here).
    let rtt = o.stats_a.rtt.expect("an rr about a came back");
    assert!(
        rtt >= Duration::from_millis(59) && rtt <= Duration::from_millis(61),
        "{rtt:?}"
    );
}

#[test]
fn pcmu_clean_network() {
    let o = run(
        CodecKind::Pcmu,
        0,
        Impairment::clean(Duration::from_millis(10)),
        4,
        2,
    );
    check("pcmu clean a->b", &o.at_b, 1000.0, 0.95, 1.0);
    check("pcmu clean b->a", &o.at_a, 440.0, 0.95, 1.0);
}

#[test]
fn opus_5_percent_loss_40ms_jitter() {
    let imp = Impairment {
        loss: 0.05,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(40),
    };
    let o = run(CodecKind::Opus, 111, imp, 12, 3);
    report("opus 5% b", &o.stats_b);
    check("opus 5% a->b", &o.at_b, 1000.0, 0.7, 3.0);
    let p = o.stats_b.playout;
    assert!(p.concealed + p.fec_recovered > 0, "losses were concealed");
    let recovered = p.fec_recovered as f64 / (p.fec_recovered + p.concealed).max(1) as f64;
    println!(
        "opus 5%: {:.0} % of the missing frames went through the FEC path",
        recovered * 100.0
    );
}

#[test]
fn opus_20_percent_loss_80ms_jitter() {
    let imp = Impairment {
        loss: 0.20,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(80),
    };
    let o = run(CodecKind::Opus, 111, imp, 12, 4);
    report("opus 20% b", &o.stats_b);
    check("opus 20% a->b", &o.at_b, 1000.0, 0.4, 6.0);
    let p = o.stats_b.playout;
    assert!(p.concealed > 0);
    assert!(p.fec_recovered > 0, "fec recovered nothing");
    let recovered = p.fec_recovered as f64 / (p.fec_recovered + p.concealed).max(1) as f64;
    println!(
        "opus 20%: {:.0} % of the missing frames went through the FEC path",
        recovered * 100.0
    );
    assert!(
        o.stats_a.remote_fraction_lost > 0.1,
        "rtcp reported the loss"
    );
}

#[test]
fn pcma_5_percent_loss_20ms_jitter() {
    let imp = Impairment {
        loss: 0.05,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(20),
    };
    let o = run(CodecKind::Pcma, 8, imp, 6, 5);
    report("pcma 5% b", &o.stats_b);
    check("pcma 5% b->a", &o.at_a, 440.0, 0.6, 3.0);
    assert!(o.stats_b.playout.concealed > 0);
}

#[test]
fn pcma_30ms_ptime_both_ways() {
    // Packets of 30 ms (as sipp and many PBXes send G.711) go through the fallback playout.
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:4000".parse().unwrap(),
        "127.0.0.1:5000".parse().unwrap(),
    );
    let mut ca = SessionConfig::new(0xA, CodecKind::Pcma, 8, b_addr);
    ca.ptime = Duration::from_millis(30);
    let mut cb = SessionConfig::new(0xB, CodecKind::Pcma, 8, a_addr);
    cb.ptime = Duration::from_millis(30);
    let mut a = MediaSession::new(ca, t0).unwrap();
    let mut b = MediaSession::new(cb, t0).unwrap();
    let mut tone = Tone::new(1000.0, AMPLITUDE);
    let mut played = Vec::new();
    let mut sizes = Vec::new();
    for k in 0..150u64 {
        let now = t0 + Duration::from_millis(20 * k);
        a.send_frame(now, &tone.frame()).unwrap();
        b.send_frame(now, &[0; 960]).unwrap();
        while let Some(t) = a.poll_transmit() {
            sizes.push(t.bytes.len());
            b.handle_packet(now, a_addr, t.kind, &t.bytes);
        }
        while b.poll_transmit().is_some() {}
        played.extend(b.playout(now));
    }
    assert!(
        sizes.iter().all(|&n| n == 12 + 240),
        "30 ms of PCMA per packet"
    );
    assert_eq!(sizes.len(), 100, "3 s in 30 ms packets");
    check("pcma 30 ms a->b", &played, 1000.0, 0.95, 1.0);
}
