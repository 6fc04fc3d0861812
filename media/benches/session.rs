//! Media session benchmarks: per-packet CPU of RTP packetizing and SRTP protect/unprotect,
//! one 20 ms frame through a whole session pair (G.711 and Opus, with SRTP), and the
//! pipeline latency from a source frame to playout on a clean network (virtual time, not a
//! timing: printed before the criterion runs).
//!
//! `cargo bench -p tincan-media --bench session` (see docs/benchmarks-media.md).
#![allow(clippy::disallowed_methods, missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tincan_media::codec::{CodecKind, FRAME_SAMPLES};
use tincan_media::rtp::{PortKind, RtpSender};
use tincan_media::session::{LevelMeter, MediaSession, SessionConfig};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite, SrtpSession};

fn key(fill: u8) -> CryptoAttribute {
    CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(fill))
}

fn tone(n0: usize, amplitude: f64) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = (n0 + i) as f64 / 48_000.0;
            (amplitude * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
        })
        .collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("bench address")
}

fn pair(codec: CodecKind, pt: u8, srtp: bool, t0: Instant) -> (MediaSession, MediaSession) {
    pair_with(codec, pt, srtp, false, t0)
}

fn pair_with(
    codec: CodecKind,
    pt: u8,
    srtp: bool,
    levels: bool,
    t0: Instant,
) -> (MediaSession, MediaSession) {
    let mut ca = SessionConfig::new(0xA, codec, pt, addr("127.0.0.1:5000"));
    let mut cb = SessionConfig::new(0xB, codec, pt, addr("127.0.0.1:4000"));
    ca.levels = levels;
    cb.levels = levels;
    if srtp {
        ca.srtp = Some((key(1), key(2)));
        cb.srtp = Some((key(2), key(1)));
    }
    cb.seed = 77;
    (
        MediaSession::new(ca, t0).expect("session"),
        MediaSession::new(cb, t0).expect("session"),
    )
}

/// Source frame to playout, in virtual time: A's frames go to B after `network_delay`; the
/// returned latency is from the moment a frame is handed to `send_frame` to the moment its
/// first sample leaves `playout` (capture and device buffers not included).
fn pipeline_latency(codec: CodecKind, pt: u8, network_delay: Duration) -> (Duration, Duration) {
    let t0 = Instant::now();
    let (mut a, mut b) = pair(codec, pt, true, t0);
    let a_addr = addr("127.0.0.1:4000");
    let onset_frame = 100usize; // 2 s of silence first: the jitter buffer settles
    let mut in_flight: Vec<(Instant, Vec<u8>)> = Vec::new();
    let mut played: Vec<i16> = Vec::new();
    let mut delay_seen = Duration::ZERO;
    for ms in 0..4000u64 {
        let now = t0 + Duration::from_millis(ms);
        in_flight.retain(|(at, bytes)| {
            if *at <= now {
                b.handle_packet(now, a_addr, PortKind::Rtp, bytes);
                false
            } else {
                true
            }
        });
        if ms % 20 == 0 {
            let k = (ms / 20) as usize;
            let frame = if k >= onset_frame {
                tone(k * FRAME_SAMPLES, 8000.0)
            } else {
                vec![0; FRAME_SAMPLES]
            };
            a.send_frame(now, &frame).expect("send");
            while let Some(t) = a.poll_transmit() {
                in_flight.push((now + network_delay, t.bytes));
            }
            played.extend(b.playout(now));
            if k == onset_frame {
                delay_seen = b.stats().playout_delay;
            }
        }
        for s in [&mut a, &mut b] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        while b.poll_transmit().is_some() {}
    }
    let onset_in = onset_frame * FRAME_SAMPLES;
    let onset_out = played
        .iter()
        .position(|v| v.unsigned_abs() > 2000)
        .expect("the tone comes out");
    let latency = Duration::from_nanos(
        ((onset_out.saturating_sub(onset_in)) as u64) * 1_000_000_000 / 48_000,
    );
    (latency, delay_seen)
}

fn report_latency() {
    println!("pipeline latency, send_frame -> playout, clean network, SRTP on:");
    for (codec, pt) in [(CodecKind::Pcmu, 0u8), (CodecKind::Opus, 111)] {
        for net in [0u64, 5, 20, 35] {
            let (latency, jb) = pipeline_latency(codec, pt, Duration::from_millis(net));
            let added = latency.saturating_sub(Duration::from_millis(net));
            println!(
                "  {codec:5} network {net:2} ms: source->playout {:5.1} ms, added by the pipeline {:5.1} ms (jitter buffer held {:4.1} ms)",
                latency.as_secs_f64() * 1000.0,
                added.as_secs_f64() * 1000.0,
                jb.as_secs_f64() * 1000.0,
            );
        }
    }
}

fn bench_rtp_srtp(c: &mut Criterion) {
    let payload = [0xd5u8; 160];
    let mut sender = RtpSender::new(1, 0, 0);
    let mut media_time = 0u32;
    c.bench_function("rtp packetize + serialize (160 B)", |b| {
        b.iter(|| {
            media_time = media_time.wrapping_add(160);
            let p = sender.packetize(0, false, media_time, black_box(&payload));
            black_box(p.to_bytes())
        })
    });

    let mut tx = SrtpSession::new(&key(1), &key(2)).expect("keys");
    let mut sender = RtpSender::new(1, 0, 0);
    c.bench_function("srtp protect (172 B rtp)", |b| {
        b.iter(|| {
            let p = sender.packetize(0, false, 0, &payload).to_bytes();
            black_box(tx.protect_rtp(&p).expect("protects"))
        })
    });

    c.bench_function("srtp unprotect (182 B srtp)", |b| {
        b.iter_custom(|iters| {
            // Fresh packets in order, protected untimed (a replayed one would be refused).
            let mut tx = SrtpSession::new(&key(1), &key(2)).expect("keys");
            let mut rx = SrtpSession::new(&key(2), &key(1)).expect("keys");
            let mut sender = RtpSender::new(1, 0, 0);
            let packets: Vec<Vec<u8>> = (0..iters)
                .map(|_| {
                    tx.protect_rtp(&sender.packetize(0, false, 0, &payload).to_bytes())
                        .expect("protects")
                })
                .collect();
            let start = Instant::now();
            for p in &packets {
                black_box(rx.unprotect_rtp(p).expect("authentic"));
            }
            start.elapsed()
        })
    });
}

fn bench_session_frame(c: &mut Criterion) {
    let cases = [
        (CodecKind::Pcmu, 0u8, false),
        (CodecKind::Pcmu, 0, true),
        (CodecKind::Opus, 111, false),
    ];
    for (codec, pt, levels) in cases {
        let name = format!(
            "session pair, one 20 ms frame each way ({codec}, SRTP{})",
            if levels { ", level meters" } else { "" }
        );
        c.bench_function(&name, |bench| {
            bench.iter_custom(|iters| {
                let t0 = Instant::now();
                let (mut a, mut b) = pair_with(codec, pt, true, levels, t0);
                let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
                let frame = tone(0, 8000.0);
                let start = Instant::now();
                for k in 0..iters {
                    let now = t0 + Duration::from_millis(20 * k);
                    a.send_frame(now, &frame).expect("send");
                    b.send_frame(now, &frame).expect("send");
                    while let Some(t) = a.poll_transmit() {
                        b.handle_packet(now, a_addr, PortKind::Rtp, &t.bytes);
                    }
                    while let Some(t) = b.poll_transmit() {
                        a.handle_packet(now, b_addr, PortKind::Rtp, &t.bytes);
                    }
                    black_box(a.playout(now));
                    black_box(b.playout(now));
                    for s in [&mut a, &mut b] {
                        if s.poll_timeout().is_some_and(|t| t <= now) {
                            s.handle_timeout(now);
                        }
                        while s.poll_event().is_some() {}
                    }
                }
                start.elapsed()
            })
        });
    }
}

fn bench_level_meter(c: &mut Criterion) {
    let frame = tone(0, 8000.0);
    let mut meter = LevelMeter::default();
    c.bench_function("level meter, one 20 ms frame (960 samples)", |b| {
        b.iter(|| meter.add(black_box(&frame)))
    });
    black_box(meter.take());
}

fn main() {
    report_latency();
    let mut c = Criterion::default().configure_from_args();
    bench_rtp_srtp(&mut c);
    bench_session_frame(&mut c);
    bench_level_meter(&mut c);
    c.final_summary();
}
