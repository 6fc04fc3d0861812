//! What `OpusConfig::high_density()` costs in quality: the voice-like test signal through the
//! encoder and decoder at each setting, compared with the input (normalized correlation
//! after the codec delay, and the signal-to-error ratio of that alignment). The figures are
//! printed (`--nocapture`) and in docs/benchmarks-media.md; the test guards a floor.
//!
//! The high-density profile takes and gives 16 kHz PCM: its input is the 48 kHz signal
//! resampled to 16 kHz (what a 16 kHz mixer gets), and it is compared with that; its output
//! brought back to 48 kHz is also compared with the 48 kHz signal (the whole device → mixer →
//! device path). With DTX, the receiving side is the jitter buffer and decoder in virtual
//! time, the 1-2 byte DTX packets not sent (as `MediaSession` does).
#![allow(clippy::disallowed_methods)] // the virtual clock starts at the real now

use std::time::{Duration, Instant};

use tincan_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_media::codec::{AudioDecoder, AudioEncoder, CodecKind, FRAME_SAMPLES};
use tincan_media::device::{AudioSource, VoiceSource};
use tincan_media::jitter::playout::{FrameKind, Playout};
use tincan_media::jitter::{ConcealReason, JitterConfig};
use tincan_media::resample::Resampler;

/// 5 s of the voice signal (two talkspurts and the pauses between them) at 48 kHz.
fn voice_48k() -> Vec<i16> {
    let mut voice = VoiceSource::new(-10.0);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut input = Vec::new();
    for _ in 0..250 {
        voice.read_frame(&mut frame).expect("generator");
        input.extend_from_slice(&frame);
    }
    input
}

fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    let mut out = Vec::new();
    Resampler::new(from, to).process(pcm, &mut out);
    out
}

/// Correlation and signal-to-error ratio (dB) of `decoded` against `input` at the best lag
/// (up to `max_lag` samples).
fn compare(input: &[i16], decoded: &[i16], max_lag: usize) -> (f64, f64) {
    let mut best = (0usize, f64::MIN);
    for lag in 0..max_lag {
        let n = input.len().min(decoded.len().saturating_sub(lag));
        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
        for i in (0..n).step_by(3) {
            let (a, b) = (f64::from(input[i]), f64::from(decoded[i + lag]));
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
        let c = ab / (aa * bb).sqrt().max(1.0);
        if c > best.1 {
            best = (lag, c);
        }
    }
    let lag = best.0;
    let n = input.len().min(decoded.len() - lag);
    let (mut sig, mut err) = (0f64, 0f64);
    for i in 0..n {
        let (a, b) = (f64::from(input[i]), f64::from(decoded[i + lag]));
        sig += a * a;
        err += (a - b) * (a - b);
    }
    (best.1, 10.0 * (sig / err.max(1.0)).log10())
}

/// Encodes and decodes `input` (at `config.sample_rate`), every packet decoded.
fn round_trip(config: OpusConfig, input: &[i16]) -> Vec<i16> {
    let rate = config.sample_rate;
    let frame = (rate / 50) as usize;
    let mut enc = OpusEncoder::new(config).expect("encoder");
    let mut dec = OpusDecoder::with_sample_rate(rate).expect("decoder");
    let mut output = Vec::new();
    let mut packet = Vec::new();
    for f in input.chunks_exact(frame) {
        packet.clear();
        enc.encode(f, &mut packet).expect("encodes");
        dec.decode(&packet, &mut output).expect("decodes");
    }
    output
}

#[test]
fn high_density_keeps_the_voice() {
    let input48 = voice_48k();
    let input16 = resample(&input48, 48_000, 16_000);
    let mut figures = Vec::new();
    for (name, config) in [
        ("complexity 9 (default), 48 kHz", OpusConfig::default()),
        (
            "complexity 1, wideband, 48 kHz",
            OpusConfig {
                complexity: 1,
                sample_rate: 48_000,
                ..OpusConfig::high_density()
            },
        ),
        (
            "complexity 0, wideband, 48 kHz (high_density before 16 kHz)",
            OpusConfig {
                sample_rate: 48_000,
                ..OpusConfig::high_density()
            },
        ),
        (
            "high_density (complexity 0, wideband, 16 kHz)",
            OpusConfig::high_density(),
        ),
    ] {
        let rate = config.sample_rate;
        let input = if rate == 16_000 { &input16 } else { &input48 };
        let output = round_trip(config, input);
        let (corr, ser) = compare(input, &output, (rate / 50) as usize);
        println!("{name}: correlation {corr:.3}, signal-to-error {ser:.1} dB");
        figures.push((corr, ser));
        if rate == 16_000 {
            let back = resample(&output, 16_000, 48_000);
            let (corr, ser) = compare(&input48, &back, FRAME_SAMPLES * 2);
            println!(
                "  its output at 48 kHz against the 48 kHz input: correlation {corr:.3}, \
                 signal-to-error {ser:.1} dB"
            );
        }
    }
    let (default_corr, _) = figures[0];
    let (old_corr, old_ser) = figures[2];
    let (dense_corr, dense_ser) = figures[3];
    assert!(default_corr > 0.85, "default {default_corr}");
    // Wideband speech coded at complexity 0 still follows the waveform closely, at 16 kHz as
    // at 48 kHz.
    assert!(dense_corr > 0.85, "high density {dense_corr}");
    assert!(
        dense_corr > old_corr - 0.02 && dense_ser > old_ser - 0.5,
        "16 kHz ({dense_corr}, {dense_ser} dB) against 48 kHz ({old_corr}, {old_ser} dB)"
    );
}

/// High density with DTX: the pauses of the voice signal are not sent, the receiver's jitter
/// buffer plays them as silence (the decoder's comfort noise), not as losses, and its delay
/// stays at one frame; the voice still comes through.
#[test]
fn high_density_dtx_gaps_are_silence_not_loss() {
    let config = OpusConfig {
        dtx: true,
        ..OpusConfig::high_density()
    };
    let input = resample(&voice_48k(), 48_000, 16_000);
    let mut enc = OpusEncoder::new(config).expect("encoder");
    let mut playout = Playout::new(
        JitterConfig::for_codec(CodecKind::Opus),
        Box::new(OpusDecoder::with_sample_rate(16_000).expect("decoder")),
    );
    let t0 = Instant::now();
    let (mut seq, mut skipped, mut max_delay) = (0u64, 0u32, Duration::ZERO);
    let mut output = Vec::new();
    let mut packet = Vec::new();
    for (k, f) in input.chunks_exact(320).enumerate() {
        let now = t0 + Duration::from_millis(20 * k as u64);
        packet.clear();
        let n = enc.encode(f, &mut packet).expect("encodes");
        if n <= 2 {
            skipped += 1;
        } else {
            let ts = (k as u32).wrapping_mul(960);
            playout.insert(now, seq, ts, packet.clone(), false);
            seq += 1;
        }
        let frame = playout.pop(now + Duration::from_millis(5));
        assert_eq!(frame.pcm.len(), 320);
        assert!(
            !matches!(frame.kind, FrameKind::Concealed(ConcealReason::Loss)),
            "frame {k}: {:?}",
            frame.kind
        );
        output.extend_from_slice(frame.pcm);
        max_delay = max_delay.max(playout.jitter().current_delay());
    }
    let st = playout.stats();
    let (corr, ser) = compare(&input, &output, 320 * 3);
    println!(
        "high_density + DTX: {skipped} of 250 frames not sent, {} counted as silence; \
         lost {}, concealed {}, late {}; largest delay {max_delay:?}; correlation {corr:.3}, \
         signal-to-error {ser:.1} dB",
        st.silence, st.lost, st.concealed, st.late
    );
    assert!(skipped >= 20, "the pauses are DTX: {skipped}");
    // The pauses are silence, not underruns: nothing is concealed but the stream's end.
    assert_eq!((st.lost, st.late, st.stretched), (0, 0, 0), "{st:?}");
    assert!(st.silence >= u64::from(skipped) - 2, "{st:?}");
    assert!(st.underruns <= 2, "{st:?}");
    assert!(
        max_delay <= Duration::from_millis(40),
        "delay {max_delay:?}"
    );
    assert!(corr > 0.8, "correlation {corr}");
}
