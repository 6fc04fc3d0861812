//! CPU cost of one call's audio per 20 ms frame, and of its parts.
//!
//! The headline, **call frame, session**: two [`MediaSession`]s in one process, looped back
//! (no sockets), each sending the voice-like test signal to the other every 20 ms: encode,
//! RTP packetize, SRTP protect; SRTP unprotect, RTP parse, RTCP and statistics bookkeeping,
//! jitter buffer insert, playout (jitter buffer pop + decode); RTCP reports when due. The
//! time of one such step is halved: one call end, which is what a server terminating many
//! calls does per call every 20 ms. Calls per core = 20 ms / call frame.
//!
//! **call frame, codec only**: the same without RTP, SRTP and the session (encode, jitter
//! buffer insert + pop, decode), as measured before RTP/SRTP were included.
//!
//! Run: `cargo bench -p tincan-media --bench opus-call` (or `-- 'call frame'`). Results are
//! in docs/benchmarks-media.md.
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//! wall-clock time: on a shared machine, time spent waiting for a core is not the call's
//! cost. Where that clock is missing, wall-clock time is measured instead.
#![allow(clippy::disallowed_methods)] // benchmarks start their virtual clock at the real now

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group};
use tincan_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_media::codec::{AudioDecoder, AudioEncoder, CodecKind, FRAME_SAMPLES};
use tincan_media::device::{AudioSource, VoiceSource};
use tincan_media::jitter::playout::Playout;
use tincan_media::jitter::{JitterBuffer, JitterConfig};
use tincan_media::resample::Resampler;
use tincan_media::session::{MediaSession, SessionConfig};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};

/// 10 s of the voice-like test signal (speech and pauses), as 20 ms frames at
/// `sample_rate` (generated at 48 kHz and resampled, as a 16 kHz mixer would get it).
fn voice_frames(sample_rate: u32) -> Vec<Vec<i16>> {
    let mut v = VoiceSource::new(-10.0);
    let mut down = Resampler::new(48_000, sample_rate);
    (0..500)
        .map(|_| {
            let mut f = vec![0i16; FRAME_SAMPLES];
            v.read_frame(&mut f).expect("generator");
            let mut out = Vec::with_capacity(FRAME_SAMPLES);
            down.process(&f, &mut out);
            out
        })
        .collect()
}

fn key(fill: u8) -> CryptoAttribute {
    CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(fill))
}

/// A call looped back in process: two sessions with SRTP (AES_CM_128_HMAC_SHA1_80) and
/// rtcp-mux, in virtual time.
struct LoopbackCall {
    a: MediaSession,
    b: MediaSession,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    t0: Instant,
    step: u64,
    frames: Vec<Vec<i16>>,
    out: Vec<i16>,
}

impl LoopbackCall {
    fn new(codec: CodecKind, opus: OpusConfig) -> LoopbackCall {
        let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
            "127.0.0.1:4000".parse().expect("address"),
            "127.0.0.1:5000".parse().expect("address"),
        );
        let pt = codec.default_payload_type();
        let mut ca = SessionConfig::new(0xA, codec, pt, b_addr).with_opus(opus.clone());
        let mut cb = SessionConfig::new(0xB, codec, pt, a_addr).with_opus(opus);
        ca.srtp = Some((key(1), key(2)));
        cb.srtp = Some((key(2), key(1)));
        ca.rtcp_mux = true;
        cb.rtcp_mux = true;
        cb.seed = 77;
        let frames = voice_frames(ca.sample_rate);
        let t0 = Instant::now();
        LoopbackCall {
            a: MediaSession::new(ca, t0).expect("session"),
            b: MediaSession::new(cb, t0).expect("session"),
            a_addr,
            b_addr,
            t0,
            step: 0,
            frames,
            out: Vec::with_capacity(FRAME_SAMPLES),
        }
    }

    /// One 20 ms step of the call, both ends (A talks through the signal from its start, B
    /// from its middle, so one end's pauses meet the other's speech).
    fn step(&mut self) -> i16 {
        let now = self.t0 + Duration::from_millis(20 * self.step);
        let n = self.frames.len();
        let k = self.step as usize;
        self.step += 1;
        self.a.send_frame(now, &self.frames[k % n]).expect("send");
        self.b
            .send_frame(now, &self.frames[(k + n / 2) % n])
            .expect("send");
        while let Some(t) = self.a.poll_transmit() {
            self.b.handle_packet(now, self.a_addr, t.kind, &t.bytes);
        }
        while let Some(t) = self.b.poll_transmit() {
            self.a.handle_packet(now, self.b_addr, t.kind, &t.bytes);
        }
        let mut probe = 0;
        for s in [&mut self.a, &mut self.b] {
            s.playout_into(now, &mut self.out);
            probe ^= self.out[self.out.len() / 2];
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            while s.poll_event().is_some() {}
        }
        probe
    }
}

/// One direction of a call without RTP/SRTP: the sender's encoder and the receiver's
/// playout (jitter buffer + decoder).
struct CodecLeg {
    encoder: OpusEncoder,
    playout: Playout,
    seq: u64,
    t0: Instant,
    packet: Vec<u8>,
    frames: Vec<Vec<i16>>,
}

impl CodecLeg {
    fn new(config: OpusConfig) -> CodecLeg {
        let rate = config.sample_rate;
        CodecLeg {
            encoder: OpusEncoder::new(config).expect("encoder"),
            playout: Playout::new(
                JitterConfig::for_codec(CodecKind::Opus),
                Box::new(OpusDecoder::with_sample_rate(rate).expect("decoder")),
            ),
            seq: 0,
            t0: Instant::now(),
            packet: Vec::with_capacity(1500),
            frames: voice_frames(rate),
        }
    }

    /// One 20 ms frame: encode, deliver (virtual time), play out.
    fn frame(&mut self) -> i16 {
        self.packet.clear();
        let pcm = &self.frames[self.seq as usize % self.frames.len()];
        self.encoder.encode(pcm, &mut self.packet).expect("encodes");
        let now = self.t0 + Duration::from_millis(20 * self.seq);
        let ts = (self.seq as u32).wrapping_mul(960);
        self.playout
            .insert(now, self.seq, ts, self.packet.clone(), false);
        self.seq += 1;
        let out = self.playout.pop(now + Duration::from_millis(5));
        out.pcm[out.pcm.len() / 2]
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

/// The high-density settings at 48 kHz PCM: the profile before it took 16 kHz.
fn high_density_48k() -> OpusConfig {
    OpusConfig {
        sample_rate: 48_000,
        ..OpusConfig::high_density()
    }
}

/// The session legs: a short key (for `CALL_FRAME_STEPS`), the benchmark name, the codec
/// and the Opus settings.
fn session_legs() -> Vec<(&'static str, &'static str, CodecKind, OpusConfig)> {
    let opus = |complexity| OpusConfig {
        complexity,
        ..OpusConfig::default()
    };
    vec![
        (
            "c9",
            "opus complexity 9 (default)",
            CodecKind::Opus,
            opus(9),
        ),
        ("c5", "opus complexity 5", CodecKind::Opus, opus(5)),
        (
            "hd48",
            "opus high density at 48 kHz (complexity 0, wideband)",
            CodecKind::Opus,
            high_density_48k(),
        ),
        (
            "hd16",
            "opus high density (complexity 0, wideband, 16 kHz)",
            CodecKind::Opus,
            OpusConfig::high_density(),
        ),
        (
            "hd16dtx",
            "opus high density + DTX",
            CodecKind::Opus,
            OpusConfig {
                dtx: true,
                ..OpusConfig::high_density()
            },
        ),
        ("g722", "G.722", CodecKind::G722, OpusConfig::default()),
        ("pcmu", "PCMU", CodecKind::Pcmu, OpusConfig::default()),
    ]
}

fn call_frame(c: &mut Criterion<CpuTime>) {
    for (_, name, kind, opus) in session_legs() {
        let mut call = LoopbackCall::new(kind, opus);
        c.bench_function(&format!("call frame, session, {name}"), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_ns();
                for _ in 0..iters {
                    black_box(call.step());
                }
                // One step is both ends of the call: half of it is one call end.
                thread_cpu_ns().saturating_sub(start) / 2
            })
        });
    }
    for (name, config) in [
        ("opus high density at 48 kHz", high_density_48k()),
        ("opus high density (16 kHz)", OpusConfig::high_density()),
    ] {
        let mut leg = CodecLeg::new(config);
        c.bench_function(&format!("call frame, codec only, {name}"), |b| {
            b.iter(|| black_box(leg.frame()))
        });
    }
}

fn opus_parts(c: &mut Criterion<CpuTime>) {
    let configs = [
        ("complexity 9", OpusConfig::default()),
        (
            "complexity 1",
            OpusConfig {
                complexity: 1,
                ..OpusConfig::default()
            },
        ),
        ("high density at 48 kHz", high_density_48k()),
        ("high density (16 kHz)", OpusConfig::high_density()),
    ];
    for (name, config) in configs {
        let frames = voice_frames(config.sample_rate);
        let mut enc = OpusEncoder::new(config).expect("encoder");
        let mut out = Vec::with_capacity(1500);
        let mut i = 0;
        c.bench_function(&format!("opus encode ({name})"), |b| {
            b.iter(|| {
                out.clear();
                let f = &frames[i % frames.len()];
                i += 1;
                black_box(enc.encode(f, &mut out).expect("encodes"))
            })
        });
    }
    let frames = voice_frames(16_000);
    let mut enc = OpusEncoder::new(OpusConfig::high_density()).expect("encoder");
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p).expect("encodes");
            p
        })
        .collect();
    for rate in [48_000, 16_000] {
        let mut dec = OpusDecoder::with_sample_rate(rate).expect("decoder");
        let mut pcm = Vec::with_capacity(FRAME_SAMPLES * 6);
        let mut i = 0;
        c.bench_function(
            &format!("opus decode (wideband packets, {} kHz out)", rate / 1000),
            |b| {
                b.iter(|| {
                    pcm.clear();
                    let p = &packets[i % packets.len()];
                    i += 1;
                    black_box(dec.decode(p, &mut pcm).expect("decodes"))
                })
            },
        );
    }
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

/// `CALL_FRAME_STEPS="<key> <steps>"` runs that many steps of one session leg and exits,
/// without criterion: for instruction counts under `valgrind --tool=callgrind` (two runs
/// with different step counts; the difference divided by the extra steps and by 2 is one
/// call end's frame, set-up excluded). Keys: see [`session_legs`].
fn main() {
    if let Ok(spec) = std::env::var("CALL_FRAME_STEPS") {
        let mut words = spec.split_whitespace();
        let key = words.next().unwrap_or("hd16");
        let steps: u64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(500);
        let (_, name, kind, opus) = session_legs()
            .into_iter()
            .find(|l| l.0 == key)
            .expect("CALL_FRAME_STEPS names a leg key");
        let mut call = LoopbackCall::new(kind, opus);
        let mut probe = 0;
        for _ in 0..steps {
            probe ^= call.step();
        }
        println!("{name}: {steps} steps (probe {probe})");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
