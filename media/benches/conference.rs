//! The local three-way conference's cost per 20 ms frame: the pure [`Mixer`] (three outputs,
//! each the saturating sum of two inputs), and one frame through the four adapters of a
//! [`ConferenceBus`] (rings included), beside a plain copy of three frames for scale.
//!
//! `cargo bench -p tincan-media --bench conference` (see docs/benchmarks-media.md).
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::Criterion;
use tincan_media::codec::FRAME_SAMPLES;
use tincan_media::conference::{ConferenceBus, Leg, Mixer};
use tincan_media::device::{
    AudioSink, AudioSource, DeviceError, NullSink, SourceStatus, ToneSource,
};

fn tone(frequency: f64) -> Vec<i16> {
    let mut source = ToneSource::new(frequency, -6.0);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    source.read_frame(&mut frame).expect("a tone frame");
    frame
}

/// A microphone that costs nothing: the same frame again.
struct Replay(Vec<i16>);

impl AudioSource for Replay {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        frame.copy_from_slice(&self.0);
        Ok(SourceStatus::Audio)
    }
}

fn bench_mixer(c: &mut Criterion) {
    let (local, a, b) = (tone(660.0), tone(440.0), tone(880.0));
    let mut group = c.benchmark_group("conference");
    let mut copy = vec![0i16; FRAME_SAMPLES];
    group.bench_function("copy three frames (scale)", |bench| {
        bench.iter(|| {
            for input in [&local, &a, &b] {
                copy.copy_from_slice(black_box(input));
            }
            black_box(&copy);
        })
    });
    let mut mixer = Mixer::new();
    group.bench_function("mixer, one 20 ms frame of three legs", |bench| {
        bench.iter(|| {
            mixer.mix(black_box(&local), black_box(&a), black_box(&b));
            black_box(mixer.output(Leg::Local));
        })
    });
    let mut bus = ConferenceBus::new(Box::new(Replay(local.clone())), Box::new(NullSink::new()));
    let mut out = vec![0i16; FRAME_SAMPLES];
    group.bench_function("bus, one 20 ms frame through the four adapters", |bench| {
        bench.iter(|| {
            bus.source_a.read_frame(&mut out).expect("a frame");
            bus.sink_a.write_frame(black_box(&a)).expect("played");
            bus.sink_b.write_frame(black_box(&b)).expect("played");
            bus.source_b.read_frame(&mut out).expect("a frame");
            black_box(&out);
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_mixer(&mut c);
    c.final_summary();
}
