//! What `OpusConfig::high_density()` costs in quality: the voice-like test signal through the
//! encoder and decoder at each complexity, compared with the input (normalized correlation
//! after the codec delay, and the signal-to-error ratio of that alignment). The figures are
//! printed (`--nocapture`) and in docs/benchmarks-media.md; the test guards a floor.

use tincan_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_media::codec::{AudioDecoder, AudioEncoder, FRAME_SAMPLES};
use tincan_media::device::{AudioSource, VoiceSource};

/// Correlation and signal-to-error ratio (dB) of `decoded` against `input` at the best lag.
fn compare(input: &[i16], decoded: &[i16]) -> (f64, f64) {
    let mut best = (0usize, f64::MIN);
    for lag in 0..960 {
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

fn round_trip(config: OpusConfig) -> (f64, f64) {
    let mut voice = VoiceSource::new(-10.0);
    let mut enc = OpusEncoder::new(config).expect("encoder");
    let mut dec = OpusDecoder::new().expect("decoder");
    let (mut input, mut output) = (Vec::new(), Vec::new());
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut packet = Vec::new();
    // 5 s: two talkspurts and the pauses between them.
    for _ in 0..250 {
        voice.read_frame(&mut frame).expect("generator");
        input.extend_from_slice(&frame);
        packet.clear();
        enc.encode(&frame, &mut packet).expect("encodes");
        dec.decode(&packet, &mut output).expect("decodes");
    }
    compare(&input, &output)
}

#[test]
fn high_density_keeps_the_voice() {
    let mut figures = Vec::new();
    for (name, config) in [
        ("complexity 9 (default)", OpusConfig::default()),
        (
            "complexity 1, wideband",
            OpusConfig {
                complexity: 1,
                ..OpusConfig::high_density()
            },
        ),
        (
            "high_density (complexity 0, wideband)",
            OpusConfig::high_density(),
        ),
    ] {
        let (corr, ser) = round_trip(config);
        println!("{name}: correlation {corr:.3}, signal-to-error {ser:.1} dB");
        figures.push((corr, ser));
    }
    let (default_corr, _) = figures[0];
    let (dense_corr, _) = figures[2];
    assert!(default_corr > 0.85, "default {default_corr}");
    // Wideband speech coded at complexity 0 still follows the waveform closely.
    assert!(dense_corr > 0.85, "high density {dense_corr}");
}
