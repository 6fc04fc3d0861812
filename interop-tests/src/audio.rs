//! Checks of recorded audio: read a 16-bit PCM WAV, measure its duration, RMS level and
//! dominant frequency (Goertzel scan, with a zero-crossing estimate as a cross-check).

use std::path::Path;
use std::time::Duration;

/// What went wrong reading a WAV file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// hound could not read it.
    #[error("reading wav: {0}")]
    Read(#[from] hound::Error),
    /// Not 16-bit integer PCM.
    #[error("not 16-bit pcm ({bits} bits, {format:?})")]
    Format {
        /// Bits per sample.
        bits: u16,
        /// Sample format.
        format: hound::SampleFormat,
    },
}

/// A decoded WAV file.
#[derive(Debug, Clone)]
pub struct Wav {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels (interleaved in `samples`).
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

/// Reads a 16-bit PCM WAV file. A file whose header was never finalised (the writer is
/// still running or was killed) yields the samples actually present.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Wav, WavError> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(WavError::Format {
            bits: spec.bits_per_sample,
            format: spec.sample_format,
        });
    }
    let mut samples = Vec::new();
    for s in reader.samples::<i16>() {
        match s {
            Ok(s) => samples.push(s),
            // A truncated last frame: keep what was read.
            Err(_) => break,
        }
    }
    Ok(Wav {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        samples,
    })
}

impl Wav {
    /// Mono samples: the first channel.
    pub fn first_channel(&self) -> Vec<i16> {
        self.samples
            .iter()
            .step_by(usize::from(self.channels.max(1)))
            .copied()
            .collect()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Duration of the audio.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.frames() as f64 / f64::from(self.sample_rate.max(1)))
    }

    /// The first channel without its first `skip` (jitter buffer and codec start-up).
    pub fn after(&self, skip: Duration) -> Vec<i16> {
        let skip = (skip.as_secs_f64() * f64::from(self.sample_rate)) as usize;
        self.first_channel().into_iter().skip(skip).collect()
    }

    /// A summary of the first channel after `skip`.
    pub fn analyse(&self, skip: Duration) -> ToneReport {
        let s = self.after(skip);
        ToneReport {
            duration: self.duration(),
            rms: rms(&s),
            frequency: dominant_frequency(&s, self.sample_rate),
            zero_crossing_frequency: zero_crossing_frequency(&s, self.sample_rate),
        }
    }
}

/// Duration, level and main frequency of a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ToneReport {
    /// Length of the whole file.
    pub duration: Duration,
    /// RMS level of the analysed part (full scale sine ≈ 23170).
    pub rms: f64,
    /// Dominant frequency by a Goertzel scan (Hz), 0 for silence.
    pub frequency: f64,
    /// Frequency estimated from zero crossings (Hz): reliable for one clean tone only.
    pub zero_crossing_frequency: f64,
}

/// Convenience: read `path` and analyse it after skipping the first 0.5 s.
pub fn analyse_file(path: impl AsRef<Path>) -> Result<ToneReport, WavError> {
    Ok(read_wav(path)?.analyse(Duration::from_millis(500)))
}

/// Root mean square of the samples (0 for none).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// How much of the first channel is sound: the total length of the 20 ms windows whose RMS
/// level is above `threshold` (e.g. 300 for speech or a tone, against silence or comfort
/// noise).
pub fn active_duration(wav: &Wav, threshold: f64) -> Duration {
    let window = (wav.sample_rate / 50).max(1) as usize;
    let active = wav
        .first_channel()
        .chunks_exact(window)
        .filter(|w| rms(w) > threshold)
        .count();
    Duration::from_millis(20 * active as u64)
}

/// The 20 ms frames of `samples` (at `sample_rate`) that hold a tone of `hz`: frames whose RMS
/// level is above `min_rms` and at least half of whose power is at `hz` (a Goertzel filter;
/// a pure sine puts about 0.5 of its mean square there, silence, noise and other tones next
/// to nothing). Returns (frames with the tone, all whole frames).
pub fn tone_frames(samples: &[i16], sample_rate: u32, hz: f64, min_rms: f64) -> (usize, usize) {
    let window = (sample_rate / 50).max(1) as usize;
    let frames = samples.chunks_exact(window);
    let total = frames.len();
    let with_tone = frames
        .filter(|f| {
            let level = rms(f);
            level > min_rms && goertzel_power(f, sample_rate, hz) >= 0.25 * level * level
        })
        .count();
    (with_tone, total)
}

/// Zero-crossing frequency estimate: crossings / 2 / seconds.
pub fn zero_crossing_frequency(samples: &[i16], sample_rate: u32) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(sample_rate))
}

/// Power of `freq` in the samples (Goertzel algorithm, normalised by the length).
pub fn goertzel_power(samples: &[i16], sample_rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len().max(1) as f64).powi(2)
}

/// The strongest frequency between 50 Hz and min(4 kHz, Nyquist): a Goertzel scan in 5 Hz
/// steps over a 100 ms window from the middle of the samples, refined in 1 Hz steps. 0 for
/// silence or fewer than 100 ms of samples.
pub fn dominant_frequency(samples: &[i16], sample_rate: u32) -> f64 {
    let window = (sample_rate / 10) as usize;
    if samples.len() < window || rms(samples) < 1.0 {
        return 0.0;
    }
    let start = (samples.len() - window) / 2;
    let w = &samples[start..start + window];
    let top = 4000.0f64.min(f64::from(sample_rate) / 2.0 - 10.0);
    let best = |from: f64, to: f64, step: f64| {
        let mut f = from;
        let (mut best_f, mut best_p) = (from, -1.0);
        while f <= to {
            let p = goertzel_power(w, sample_rate, f);
            if p > best_p {
                best_p = p;
                best_f = f;
            }
            f += step;
        }
        best_f
    };
    let coarse = best(50.0, top, 5.0);
    best((coarse - 5.0).max(50.0), (coarse + 5.0).min(top), 1.0)
}

/// Writes interleaved 16-bit samples as a WAV file.
pub fn write_wav(
    path: impl AsRef<Path>,
    sample_rate: u32,
    channels: u16,
    samples: &[i16],
) -> Result<(), WavError> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

/// Mono samples duplicated into interleaved stereo.
pub fn to_stereo(mono: &[i16]) -> Vec<i16> {
    mono.iter().flat_map(|&s| [s, s]).collect()
}

/// Writes a mono 16-bit sine WAV (e.g. audio to send from a file source).
pub fn write_tone_wav(
    path: impl AsRef<Path>,
    freq: f64,
    duration: Duration,
    sample_rate: u32,
    amplitude: i16,
) -> Result<(), WavError> {
    write_wav(
        path,
        sample_rate,
        1,
        &sine(freq, duration, sample_rate, amplitude),
    )
}

/// Samples of a sine.
pub fn sine(freq: f64, duration: Duration, sample_rate: u32, amplitude: i16) -> Vec<i16> {
    let n = (duration.as_secs_f64() * f64::from(sample_rate)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(sample_rate);
            (f64::from(amplitude) * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_is_measured() {
        for (freq, rate) in [
            (440.0, 48_000),
            (880.0, 48_000),
            (1000.0, 8_000),
            (697.0, 16_000),
        ] {
            let s = sine(freq, Duration::from_secs(1), rate, 10_000);
            let f = dominant_frequency(&s, rate);
            assert!(
                (f - freq).abs() <= 2.0,
                "{freq} Hz at {rate} measured as {f}"
            );
            let z = zero_crossing_frequency(&s, rate);
            assert!((z - freq).abs() <= 5.0, "zero crossings: {z}");
            let level = rms(&s);
            assert!((level - 10_000.0 / 2f64.sqrt()).abs() < 50.0, "rms {level}");
        }
    }

    #[test]
    fn silence_has_no_frequency() {
        let s = vec![0i16; 48_000];
        assert_eq!(dominant_frequency(&s, 48_000), 0.0);
        assert_eq!(rms(&s), 0.0);
        assert_eq!(dominant_frequency(&[], 8_000), 0.0);
    }

    #[test]
    fn wav_round_trip() {
        let dir = crate::WorkDir::new("wav-test").expect("temp dir is writable");
        let p = dir.join("tone.wav");
        write_tone_wav(&p, 440.0, Duration::from_secs(2), 16_000, 8_000).expect("writable");
        let wav = read_wav(&p).expect("just written");
        assert_eq!(
            (wav.sample_rate, wav.channels, wav.frames()),
            (16_000, 1, 32_000)
        );
        assert_eq!(wav.duration(), Duration::from_secs(2));
        let r = wav.analyse(Duration::from_millis(500));
        assert!((r.frequency - 440.0).abs() <= 2.0);
        assert!(r.rms > 5_000.0);
    }
}
