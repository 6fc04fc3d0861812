//! CPU cost of one call's audio per 20 ms frame: Opus encode + jitter buffer insert +
//! playout (jitter buffer pop + Opus decode), and the parts alone; the same for PCMU.
//!
//! Run: `cargo bench -p tincan-media --bench opus-call`. Calls per core = 20 ms divided by
//! the time per frame (a call does one frame each way every 20 ms). Results are in
//! docs/benchmarks-media.md.
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//! wall-clock time: on a shared machine, time spent waiting for a core is not the call's
//! cost. Where that clock is missing, wall-clock time is measured instead.
#![allow(clippy::disallowed_methods)] // benchmarks start their virtual clock at the real now

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tincan_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_media::codec::{AudioDecoder, AudioEncoder, CodecKind, FRAME_SAMPLES};
use tincan_media::device::{AudioSource, VoiceSource};
use tincan_media::jitter::playout::Playout;
use tincan_media::jitter::{JitterBuffer, JitterConfig};

/// 10 s of the voice-like test signal (speech and pauses), as 20 ms frames.
fn voice_frames() -> Vec<Vec<i16>> {
    let mut v = VoiceSource::new(-10.0);
    (0..500)
        .map(|_| {
            let mut f = vec![0i16; FRAME_SAMPLES];
            v.read_frame(&mut f).expect("generator");
            f
        })
        .collect()
}

/// One direction of a call: the sender's encoder and the receiver's playout.
struct CallLeg {
    encoder: Box<dyn AudioEncoder>,
    playout: Playout,
    seq: u64,
    ts_step: u32,
    t0: Instant,
    packet: Vec<u8>,
}

impl CallLeg {
    fn new(kind: CodecKind, encoder: Box<dyn AudioEncoder>) -> CallLeg {
        CallLeg {
            ts_step: encoder.frame_samples() as u32,
            encoder,
            playout: Playout::new(
                JitterConfig::for_codec(kind),
                kind.decoder().expect("codec builds"),
            ),
            seq: 0,
            t0: Instant::now(),
            packet: Vec::with_capacity(1500),
        }
    }

    /// One 20 ms frame: encode, deliver (virtual time), play out.
    fn frame(&mut self, pcm: &[i16]) -> i16 {
        self.packet.clear();
        self.encoder.encode(pcm, &mut self.packet).expect("encodes");
        let now = self.t0 + Duration::from_millis(20 * self.seq);
        let ts = (self.seq as u32).wrapping_mul(self.ts_step);
        self.playout
            .insert(now, self.seq, ts, self.packet.clone(), false);
        self.seq += 1;
        let out = self.playout.pop(now + Duration::from_millis(5));
        out.pcm[FRAME_SAMPLES / 2]
    }
}

/// The calling thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`), or the wall
/// clock where the platform does not provide it.
fn thread_cpu_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    match cpu_time::ThreadTime::try_now() {
        Ok(t) => t.as_duration().as_nanos() as u64,
        Err(_) => START.get_or_init(Instant::now).elapsed().as_nanos() as u64,
    }
}

/// Criterion measurement: thread CPU time.
struct CpuTime;

struct CpuTimeFormatter;

impl ValueFormatter for CpuTimeFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else {
            (1e-6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let n = match throughput {
            Throughput::Elements(n) => *n as f64,
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v);
        "elem/s cpu"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns cpu"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuTimeFormatter
    }
}

fn call_frame(c: &mut Criterion<CpuTime>) {
    let frames = voice_frames();
    let opus = |complexity| -> Box<dyn AudioEncoder> {
        Box::new(
            OpusEncoder::new(OpusConfig {
                complexity,
                packet_loss_percent: 5,
                ..OpusConfig::default()
            })
            .expect("encoder"),
        )
    };
    let legs = [
        ("opus complexity 9 (default)", CodecKind::Opus, opus(9)),
        ("opus complexity 5", CodecKind::Opus, opus(5)),
        ("opus complexity 1", CodecKind::Opus, opus(1)),
        (
            "opus complexity 1, wideband",
            CodecKind::Opus,
            Box::new(
                OpusEncoder::new(OpusConfig {
                    packet_loss_percent: 5,
                    complexity: 1,
                    ..OpusConfig::high_density()
                })
                .expect("encoder"),
            ),
        ),
        (
            "opus high density (complexity 0, wideband)",
            CodecKind::Opus,
            Box::new(
                OpusEncoder::new(OpusConfig {
                    packet_loss_percent: 5,
                    ..OpusConfig::high_density()
                })
                .expect("encoder"),
            ),
        ),
        (
            "opus high density, clean network (no FEC data)",
            CodecKind::Opus,
            Box::new(OpusEncoder::new(OpusConfig::high_density()).expect("encoder")),
        ),
        (
            "PCMU",
            CodecKind::Pcmu,
            CodecKind::Pcmu.encoder().expect("pcmu"),
        ),
    ];
    for (name, kind, encoder) in legs {
        let mut leg = CallLeg::new(kind, encoder);
        let mut i = 0;
        c.bench_function(
            &format!("call frame, {name}: encode + jitter + decode"),
            |b| {
                b.iter(|| {
                    let f = &frames[i % frames.len()];
                    i += 1;
                    black_box(leg.frame(f))
                })
            },
        );
    }
}

fn opus_parts(c: &mut Criterion<CpuTime>) {
    let frames = voice_frames();
    for complexity in [9u8, 5, 1] {
        let mut enc = OpusEncoder::new(OpusConfig {
            complexity,
            ..OpusConfig::default()
        })
        .expect("encoder");
        let mut out = Vec::with_capacity(1500);
        let mut i = 0;
        c.bench_function(&format!("opus encode (complexity {complexity})"), |b| {
            b.iter(|| {
                out.clear();
                let f = &frames[i % frames.len()];
                i += 1;
                black_box(enc.encode(f, &mut out).expect("encodes"))
            })
        });
    }
    let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p).expect("encodes");
            p
        })
        .collect();
    let mut dec = OpusDecoder::new().expect("decoder");
    let mut pcm = Vec::with_capacity(FRAME_SAMPLES * 6);
    let mut i = 0;
    c.bench_function("opus decode", |b| {
        b.iter(|| {
            pcm.clear();
            let p = &packets[i % packets.len()];
            i += 1;
            black_box(dec.decode(p, &mut pcm).expect("decodes"))
        })
    });
}

/// The jitter buffer alone: one insert and one pop per frame (packet level, no decoding).
fn jitter_only(c: &mut Criterion<CpuTime>) {
    let mut jb = JitterBuffer::new(JitterConfig::for_codec(CodecKind::Opus));
    let t0 = Instant::now();
    let payload = vec![0u8; 60];
    let mut seq = 0u64;
    c.bench_function("jitter buffer insert + pop", |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(20 * seq);
            jb.insert(
                now,
                seq,
                (seq as u32).wrapping_mul(960),
                payload.clone(),
                false,
            );
            seq += 1;
            black_box(jb.pop(now + Duration::from_millis(5)))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = call_frame, opus_parts, jitter_only
}
criterion_main!(benches);
