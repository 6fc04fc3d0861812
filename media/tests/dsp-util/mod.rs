//! The capture-processing harness: two recorded talkers, a simulated laptop room (loudspeaker
//! to microphone), generated fan noise, and the figures the tests assert (ERLE, segmental SNR,
//! SNR improvement). Everything is 48 kHz mono i16, deterministic from fixed seeds.
#![allow(dead_code)]

use tincan_media::codec::FRAME_SAMPLES;
use tincan_media::dsp::CaptureProcessor;
use tincan_media::resample::Resampler;

/// The device rate.
pub const RATE: usize = 48_000;

/// One of the recorded talkers (eSpeak NG, 12 s, 16 kHz in the repository), at 48 kHz and
/// `gain_db` relative to the file (whose peak is -3 dBFS).
pub fn talker(name: &str, gain_db: f64) -> Vec<i16> {
    let path = format!(
        "{}/tests/data/dsp/{name}-16k.wav",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut reader = hound::WavReader::open(&path).expect("the test talker is in the repository");
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("a 16-bit wav");
    let mut up = Resampler::new(16_000, RATE as u32);
    let mut out = Vec::new();
    up.process(&samples, &mut out);
    let g = 10f64.powf(gain_db / 20.0);
    out.iter().map(|&s| sat(f64::from(s) * g)).collect()
}

/// The far-end talker (a male voice).
pub fn far_end(gain_db: f64) -> Vec<i16> {
    talker("far-end", gain_db)
}

/// The near-end talker (a female voice, other words).
pub fn near_end(gain_db: f64) -> Vec<i16> {
    talker("near-end", gain_db)
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The loudspeaker-to-microphone path of a laptop: a bulk delay, then a dense impulse
/// response of random amplitude decaying exponentially (60 dB over `tail_ms`, the room's
/// reverberation) after a direct path, scaled so the echo is `erl_db` below what the
/// loudspeaker plays.
pub struct Room {
    ir: Vec<f64>,
}

impl Room {
    pub fn laptop(seed: u64, delay_ms: usize, tail_ms: usize, erl_db: f64) -> Room {
        let mut rng = Rng::new(seed);
        let delay = delay_ms * RATE / 1000;
        let tail = tail_ms * RATE / 1000;
        // exp(-n / tau) falls by 60 dB (a factor 1000) over the tail.
        let tau = tail as f64 / 1000f64.ln();
        let mut ir = vec![0.0; delay + tail];
        for (n, h) in ir[delay..].iter_mut().enumerate() {
            *h = 0.3 * rng.uniform() * (-(n as f64) / tau).exp();
        }
        // The direct path: the strongest tap, first.
        ir[delay] = 1.0;
        let energy: f64 = ir.iter().map(|h| h * h).sum();
        let scale = 10f64.powf(-erl_db / 20.0) / energy.sqrt();
        for h in &mut ir {
            *h *= scale;
        }
        Room { ir }
    }

    /// The echo of `played` as the microphone hears it (floating point, not rounded):
    /// FFT overlap-add convolution.
    pub fn echo(&self, played: &[i16]) -> Vec<f64> {
        use rustfft::FftPlanner;
        use rustfft::num_complex::Complex;
        let size = (2 * self.ir.len()).next_power_of_two();
        let block = size - self.ir.len() + 1;
        let mut planner = FftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(size);
        let inverse = planner.plan_fft_inverse(size);
        let mut h: Vec<Complex<f64>> = self
            .ir
            .iter()
            .map(|&v| Complex::new(v, 0.0))
            .chain(std::iter::repeat(Complex::new(0.0, 0.0)))
            .take(size)
            .collect();
        forward.process(&mut h);
        let mut out = vec![0.0; played.len() + size];
        let mut buf = vec![Complex::new(0.0, 0.0); size];
        for (i, chunk) in played.chunks(block).enumerate() {
            buf.fill(Complex::new(0.0, 0.0));
            for (b, &x) in buf.iter_mut().zip(chunk) {
                b.re = f64::from(x);
            }
            forward.process(&mut buf);
            for (b, k) in buf.iter_mut().zip(&h) {
                *b *= k;
            }
            inverse.process(&mut buf);
            for (o, b) in out[i * block..].iter_mut().zip(&buf) {
                *o += b.re / size as f64;
            }
        }
        out.truncate(played.len());
        out
    }
}

/// Fan noise as a laptop or desk fan makes it: rumbling low-passed noise, the blade-pass hum
/// (`hum_hz` and harmonics, slowly wobbling), and a little broadband hiss; its RMS is
/// `rms_dbfs` (relative to a full-scale square wave).
pub fn fan_noise(seed: u64, len: usize, hum_hz: f64, rms_dbfs: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let (mut lp1, mut lp2) = (0.0, 0.0);
    let mut out: Vec<f64> = (0..len)
        .map(|n| {
            let t = n as f64 / RATE as f64;
            let white = rng.uniform();
            // Two one-pole low-passes (~300 Hz): the rumble of moving air.
            lp1 += 0.04 * (white - lp1);
            lp2 += 0.04 * (lp1 - lp2);
            let wobble = 1.0 + 0.01 * (std::f64::consts::TAU * 0.3 * t).sin();
            let hum: f64 = (1..=4)
                .map(|k| (std::f64::consts::TAU * hum_hz * k as f64 * wobble * t).sin() / k as f64)
                .sum();
            8.0 * lp2 + 0.15 * hum + 0.05 * white
        })
        .collect();
    let rms = (out.iter().map(|v| v * v).sum::<f64>() / len as f64).sqrt();
    let target = 32768.0 * 10f64.powf(rms_dbfs / 20.0);
    for v in &mut out {
        *v *= target / rms;
    }
    out
}

/// Rounds and saturates to i16.
pub fn sat(v: f64) -> i16 {
    v.round().clamp(-32768.0, 32767.0) as i16
}

/// Sum of signals, saturated.
pub fn mix(parts: &[&[f64]]) -> Vec<i16> {
    let len = parts.iter().map(|p| p.len()).min().unwrap_or(0);
    (0..len)
        .map(|n| sat(parts.iter().map(|p| p[n]).sum()))
        .collect()
}

/// i16 to f64.
pub fn float(x: &[i16]) -> Vec<f64> {
    x.iter().map(|&s| f64::from(s)).collect()
}

/// A deterministic white noise floor (the microphone's own) at `rms_dbfs`.
pub fn mic_floor(seed: u64, len: usize, rms_dbfs: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    // Uniform in [-1, 1) has an RMS of 1/sqrt(3).
    let a = 32768.0 * 10f64.powf(rms_dbfs / 20.0) * 3f64.sqrt();
    (0..len).map(|_| a * rng.uniform()).collect()
}

/// Runs the chain as the driver does, 20 ms at a time: the frame captured is processed, then
/// the frame played goes to the echo canceller as its reference (the room's bulk delay stands
/// for the devices' latency). Returns the processed
/// capture (a trailing part shorter than a frame is dropped).
pub fn run(chain: &mut CaptureProcessor, played: &[i16], captured: &[i16]) -> Vec<i16> {
    let frames = played.len().min(captured.len()) / FRAME_SAMPLES;
    let mut out = Vec::with_capacity(frames * FRAME_SAMPLES);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    for i in 0..frames {
        let span = i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES;
        frame.copy_from_slice(&captured[span.clone()]);
        chain.process_capture(&mut frame);
        chain.analyze_render(&played[span]);
        out.extend_from_slice(&frame);
    }
    out
}

/// Energy of a slice.
pub fn energy(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// Power in dB of a window (relative to 1.0 per sample squared).
pub fn db(ratio: f64) -> f64 {
    10.0 * ratio.max(1e-12).log10()
}

/// ERLE over windows of `window` samples: (start in seconds, dB) for each window whose echo
/// is loud enough to measure (within 30 dB of the loudest window), from the microphone's echo
/// and the processed output.
pub fn erle_windows(echo: &[f64], out: &[i16], window: usize) -> Vec<(f64, f64)> {
    let out = float(out);
    let n = echo.len().min(out.len()) / window;
    let powers: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let s = i * window..(i + 1) * window;
            (energy(&echo[s.clone()]), energy(&out[s]))
        })
        .collect();
    let loudest = powers.iter().map(|p| p.0).fold(0.0, f64::max);
    powers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.0 > loudest * 1e-3)
        .map(|(i, p)| ((i * window) as f64 / RATE as f64, db(p.0 / p.1.max(1.0))))
        .collect()
}

/// The first time after which every measured window has at least `floor_db` ERLE.
pub fn converged_at(windows: &[(f64, f64)], floor_db: f64) -> Option<f64> {
    let last_bad = windows.iter().rposition(|w| w.1 < floor_db);
    match last_bad {
        None => windows.first().map(|w| w.0),
        Some(i) => windows.get(i + 1).map(|w| w.0),
    }
}

/// ERLE over everything from `from_s` on: echo energy over output energy, where the echo is
/// active.
pub fn erle_from(echo: &[f64], out: &[i16], from_s: f64) -> f64 {
    let start = (from_s * RATE as f64) as usize;
    let windows = erle_windows(&echo[start..], &out[start..], RATE / 10);
    let out = float(out);
    let window = RATE / 10;
    let (mut e, mut o) = (0.0, 0.0);
    for (t, _) in windows {
        let i = start + (t * RATE as f64) as usize;
        e += energy(&echo[i..i + window]);
        o += energy(&out[i..i + window]);
    }
    db(e / o.max(1.0))
}

/// Segmental SNR (dB) of `processed` against `clean`, over the 20 ms frames where `clean`
/// is within 40 dB of its loudest frame, from `from_s` on; each frame clamped to
/// [-10, 35] dB (ITU-T P.56 style). The processed signal is first aligned to the clean one
/// (the filterbanks delay it by a few samples).
pub fn segmental_snr(clean: &[i16], processed: &[i16], from_s: f64) -> f64 {
    let lag = best_lag(clean, processed, 480);
    let clean = float(clean);
    let processed = float(processed);
    let frame = RATE / 50;
    let start = (from_s * RATE as f64) as usize;
    let n = (clean.len().min(processed.len().saturating_sub(lag)) - start) / frame;
    let frames: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let s = start + i * frame;
            let c = &clean[s..s + frame];
            let p = &processed[s + lag..s + lag + frame];
            let noise: f64 = c.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
            (energy(c), noise)
        })
        .collect();
    let loudest = frames.iter().map(|f| f.0).fold(0.0, f64::max);
    let snrs: Vec<f64> = frames
        .iter()
        .filter(|f| f.0 > loudest * 1e-4)
        .map(|f| db(f.0 / f.1.max(1.0)).clamp(-10.0, 35.0))
        .collect();
    snrs.iter().sum::<f64>() / snrs.len().max(1) as f64
}

/// The lag (0..max) at which `processed` best matches `clean` (cross-correlation over
/// every 7th sample).
pub fn best_lag(clean: &[i16], processed: &[i16], max: usize) -> usize {
    let n = clean.len().min(processed.len()).saturating_sub(max);
    let correlation = |lag: usize| -> f64 {
        (0..n)
            .step_by(7)
            .map(|i| f64::from(clean[i]) * f64::from(processed[i + lag]))
            .sum()
    };
    let scores: Vec<f64> = (0..max).map(correlation).collect();
    (0..max)
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap_or(0)
}

/// SNR (dB) of a noisy recording of `clean` speech: the power where the speech is active
/// (20 ms frames within 30 dB of the loudest) less the power of the noise-only frames (clean
/// more than 50 dB below the loudest), over the noise power. Works for a nonlinear processor's
/// output, where speech and noise cannot be separated.
pub fn speech_snr(clean: &[i16], noisy: &[i16], from_s: f64) -> f64 {
    let frame = RATE / 50;
    let start = (from_s * RATE as f64) as usize;
    let n = (clean.len().min(noisy.len()) - start) / frame;
    let clean = float(clean);
    let noisy = float(noisy);
    let frames: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let s = start + i * frame..start + (i + 1) * frame;
            (energy(&clean[s.clone()]), energy(&noisy[s]))
        })
        .collect();
    let loudest = frames.iter().map(|f| f.0).fold(0.0, f64::max);
    let mean = |keep: &dyn Fn(f64) -> bool| {
        let v: Vec<f64> = frames.iter().filter(|f| keep(f.0)).map(|f| f.1).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let active = mean(&|e| e > loudest * 1e-3);
    let silent = mean(&|e| e < loudest * 1e-5);
    db((active - silent).max(1.0) / silent.max(1.0))
}

/// RMS in dBFS (a full-scale square wave is 0) of the 20 ms frames where `clean` speech is
/// active (within 30 dB of its loudest frame), from `from_s` on.
pub fn active_level_dbfs(clean: &[i16], x: &[i16], from_s: f64) -> f64 {
    let frame = RATE / 50;
    let start = (from_s * RATE as f64) as usize;
    let n = (clean.len().min(x.len()) - start) / frame;
    let clean = float(clean);
    let x = float(x);
    let frames: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let s = start + i * frame..start + (i + 1) * frame;
            (energy(&clean[s.clone()]), energy(&x[s]))
        })
        .collect();
    let loudest = frames.iter().map(|f| f.0).fold(0.0, f64::max);
    let active: Vec<f64> = frames
        .iter()
        .filter(|f| f.0 > loudest * 1e-3)
        .map(|f| f.1)
        .collect();
    let power = active.iter().sum::<f64>() / (active.len().max(1) * frame) as f64;
    db(power / (32768.0 * 32768.0))
}

/// Writes `x` as a 48 kHz wav into `$TINCAN_DSP_WAV_DIR` if that is set (for listening, or
/// for PESQ with `media/tests/dsp-pesq.py`).
pub fn maybe_write(name: &str, x: &[i16]) {
    let Ok(dir) = std::env::var("TINCAN_DSP_WAV_DIR") else {
        return;
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(format!("{dir}/{name}.wav"), spec).expect("writable");
    for &s in x {
        w.write_sample(s).expect("writable");
    }
    w.finalize().expect("writable");
}
