//! The capture chain's cost per 20 ms frame (the driver's tick: one frame played as the echo
//! reference, one frame captured and processed), on speech: the whole chain at 48 kHz (an
//! Opus call) and at 16 kHz (G.722/G.711), each stage alone at 48 kHz, and the chain with
//! every stage off for scale. The signals are the tests' (a far end through a simulated
//! laptop room, a near end, fan noise); the chain keeps running across iterations, so the
//! figures are those of a converged canceller.
//!
//! `cargo bench -p tincan-media --bench dsp` (see docs/benchmarks-media.md).
#![allow(missing_docs)]

#[path = "../tests/dsp-util/mod.rs"]
mod util;

use std::hint::black_box;

use criterion::Criterion;
use tincan_media::codec::FRAME_SAMPLES;
use tincan_media::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
use util::{RATE, Room, fan_noise, far_end, float, mix, near_end};

fn bench_chain(c: &mut Criterion) {
    let seconds = 6;
    let far: Vec<i16> = far_end(0.0)[..seconds * RATE].to_vec();
    let near: Vec<i16> = near_end(-6.0)[..seconds * RATE].to_vec();
    let echo = Room::laptop(2, 40, 200, 6.0).echo(&far);
    let mic = mix(&[&echo, &float(&near), &fan_noise(3, far.len(), 120.0, -40.0)]);
    let frames = far.len() / FRAME_SAMPLES;
    let stage = |echo_cancellation, noise_suppression, auto_gain| ProcessingConfig {
        echo_cancellation,
        noise_suppression,
        auto_gain,
    };
    let cases = [
        (
            "all three, 48 kHz",
            ProcessingConfig::default(),
            ProcessingRate::Full,
        ),
        (
            "all three, 16 kHz",
            ProcessingConfig::default(),
            ProcessingRate::Wide,
        ),
        (
            "echo cancellation, 48 kHz",
            stage(true, false, false),
            ProcessingRate::Full,
        ),
        (
            "noise suppression, 48 kHz",
            stage(false, true, false),
            ProcessingRate::Full,
        ),
        (
            "auto gain, 48 kHz",
            stage(false, false, true),
            ProcessingRate::Full,
        ),
        ("off (scale)", ProcessingConfig::OFF, ProcessingRate::Full),
    ];
    let mut group = c.benchmark_group("dsp per 20 ms frame");
    for (name, config, rate) in cases {
        let mut chain = CaptureProcessor::new(config, rate);
        let mut frame = vec![0i16; FRAME_SAMPLES];
        let mut i = 0;
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let span = (i % frames) * FRAME_SAMPLES..(i % frames + 1) * FRAME_SAMPLES;
                i += 1;
                frame.copy_from_slice(&mic[span.clone()]);
                chain.process_capture(black_box(&mut frame));
                chain.analyze_render(&far[span]);
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_chain(&mut c);
    c.final_summary();
}
