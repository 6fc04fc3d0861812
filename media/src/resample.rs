//! Sample-rate conversion between any two integer rates (48 kHz <-> 8 kHz for G.711,
//! device rates such as 44.1 kHz <-> 48 kHz for audio devices).
//!
//! A streaming polyphase resampler: the input is conceptually upsampled by `L`, low-pass
//! filtered and downsampled by `M` (`to / from = L / M` in lowest terms), computing only the
//! outputs that are kept. The low-pass filter is a Kaiser-windowed sinc with 60 dB of stopband
//! attenuation, its cutoff at 0.45 of the lower rate (3.6 kHz for 8 kHz: the telephone band
//! passes, aliases stay out) and a transition band of 0.1 of the lower rate.
//!
//! The filter delays the signal by half its length: for 48 kHz -> 8 kHz about 2.3 ms.
//!
//! ```
//! use tincan_media::resample::Resampler;
//!
//! let mut down = Resampler::new(48_000, 8_000);
//! let mut out = Vec::new();
//! down.process(&[0i16; 960], &mut out);
//! assert_eq!(out.len(), 160); // integer ratios give exact frame sizes
//! ```

/// Stopband attenuation of the anti-aliasing filter, in dB.
const STOPBAND_DB: f64 = 60.0;

/// A streaming resampler from one rate to another. Keeps filter history between calls, so
/// consecutive frames join without clicks.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Upsampling factor.
    up: usize,
    /// Downsampling factor.
    down: usize,
    /// Taps per polyphase branch.
    taps: usize,
    /// Polyphase coefficients: `coeffs[phase * taps + k]`.
    coeffs: Vec<f32>,
    /// Input history, oldest first; `history[0]` is the oldest sample still needed.
    history: Vec<f32>,
    /// Position of the next output in upsampled units, relative to `history[0]`.
    position: usize,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz. Equal rates pass samples through unchanged.
    ///
    /// # Panics
    /// If a rate is zero (caller misuse).
    pub fn new(from: u32, to: u32) -> Resampler {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let g = gcd(from, to);
        let up = (to / g) as usize;
        let down = (from / g) as usize;
        let (taps, coeffs) = if from == to {
            (1, vec![1.0])
        } else {
            design(from, to, up, down)
        };
        Resampler {
            from,
            to,
            up,
            down,
            taps,
            coeffs,
            history: vec![0.0; taps - 1],
            position: (taps - 1) * up,
        }
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input`, appending the output to `out`; returns the number of samples
    /// appended. Integer ratios give exact counts per call when the input length is a
    /// multiple of the ratio (960 at 48 kHz -> 160 at 8 kHz).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> usize {
        let before = out.len();
        self.process_with(input.iter().map(|&s| f32::from(s)), |y| {
            out.push(y.round().clamp(-32768.0, 32767.0) as i16)
        });
        out.len() - before
    }

    /// Like [`Resampler::process`] for `f32` samples (any scale), appending to `out`.
    pub fn process_f32(&mut self, input: &[f32], out: &mut Vec<f32>) -> usize {
        let before = out.len();
        self.process_with(input.iter().copied(), |y| out.push(y));
        out.len() - before
    }

    fn process_with(&mut self, input: impl Iterator<Item = f32>, mut emit: impl FnMut(f32)) {
        if self.from == self.to {
            input.for_each(emit);
            return;
        }
        self.history.extend(input);
        let (up, down, taps) = (self.up, self.down, self.taps);
        let gain = up as f32;
        loop {
            let index = self.position / up;
            if index >= self.history.len() {
                break;
            }
            let phase = self.position % up;
            let branch = &self.coeffs[phase * taps..(phase + 1) * taps];
            // y = sum_k h[k*L + phase] * x[index - k]
            let window = &self.history[index + 1 - taps..=index];
            emit(dot_reversed(branch, window) * gain);
            self.position += down;
        }
        // Drop the samples no future output needs.
        let first_needed = (self.position / up + 1).saturating_sub(taps);
        if first_needed > 0 {
            let drop = first_needed.min(self.history.len());
            self.history.drain(..drop);
            self.position -= drop * up;
        }
    }

    /// Forgets the history (as after a stream restart).
    pub fn reset(&mut self) {
        self.history.clear();
        self.history.resize(self.taps - 1, 0.0);
        self.position = (self.taps - 1) * self.up;
    }
}

/// `sum h[k] * x[len - 1 - k]`, with eight independent accumulators so the compiler can
/// vectorize it (a single running sum must be added in order).
fn dot_reversed(h: &[f32], x: &[f32]) -> f32 {
    debug_assert_eq!(h.len(), x.len());
    let mut acc = [0.0f32; 8];
    let mut hc = h.chunks_exact(8);
    let mut xc = x.rchunks_exact(8);
    for (hs, xs) in (&mut hc).zip(&mut xc) {
        for i in 0..8 {
            acc[i] += hs[i] * xs[7 - i];
        }
    }
    let tail: f32 = hc
        .remainder()
        .iter()
        .zip(xc.remainder().iter().rev())
        .map(|(a, b)| a * b)
        .sum();
    acc.iter().sum::<f32>() + tail
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Designs the polyphase branches of a Kaiser-windowed sinc low-pass filter.
fn design(from: u32, to: u32, up: usize, down: usize) -> (usize, Vec<f32>) {
    let _ = down;
    let fs_up = f64::from(from) * up as f64;
    let lower = f64::from(from.min(to));
    let cutoff = 0.45 * lower; // -6 dB point
    let transition = 0.1 * lower;
    // Kaiser's formulas for length and beta.
    let n_est = (STOPBAND_DB - 7.95) / (14.36 * transition / fs_up);
    let taps = ((n_est / up as f64).ceil() as usize).max(4);
    let len = taps * up;
    let beta = 0.1102 * (STOPBAND_DB - 8.7);
    let center = (len - 1) as f64 / 2.0;
    let fc = cutoff / fs_up; // normalized to the upsampled rate
    let i0_beta = bessel_i0(beta);
    let mut proto: Vec<f64> = (0..len)
        .map(|n| {
            let t = n as f64 - center;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
            };
            let r = t / center;
            let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            sinc * w
        })
        .collect();
    // Normalize to unity DC gain at the upsampled rate (the caller multiplies by `up`).
    let sum: f64 = proto.iter().sum();
    for h in &mut proto {
        *h /= sum;
    }
    let mut coeffs = vec![0.0f32; len];
    for phase in 0..up {
        for k in 0..taps {
            coeffs[phase * taps + k] = proto[k * up + phase] as f32;
        }
    }
    (taps, coeffs)
}

/// The zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn exact_frame_counts() {
        let mut down = Resampler::new(48_000, 8_000);
        let mut up = Resampler::new(8_000, 48_000);
        let mut cd = Resampler::new(44_100, 48_000);
        for _ in 0..10 {
            let mut out = Vec::new();
            assert_eq!(down.process(&[0; 960], &mut out), 160);
            let mut out = Vec::new();
            assert_eq!(up.process(&[0; 160], &mut out), 960);
            let mut out = Vec::new();
            assert_eq!(cd.process(&[0; 441], &mut out), 480);
        }
    }

    #[test]
    fn passband_tone_keeps_its_level() {
        let input = tone(48_000, 1000.0, 10_000.0, 48_000);
        let mut down = Resampler::new(48_000, 8_000);
        let mut up = Resampler::new(8_000, 48_000);
        let mut mid = Vec::new();
        let mut out = Vec::new();
        for chunk in input.chunks(960) {
            mid.clear();
            down.process(chunk, &mut mid);
            up.process(&mid, &mut out);
        }
        let level = rms(&out[4800..]) / rms(&input[4800..]);
        assert!((level - 1.0).abs() < 0.02, "level ratio {level}");
    }

    #[test]
    fn alias_above_nyquist_is_removed() {
        // 6 kHz at 48 kHz would alias to 2 kHz at 8 kHz without the filter.
        let input = tone(48_000, 6000.0, 10_000.0, 48_000);
        let mut down = Resampler::new(48_000, 8_000);
        let mut out = Vec::new();
        down.process(&input, &mut out);
        let level = rms(&out[800..]) / 10_000.0;
        assert!(level < 0.002, "alias level {level}");
    }

    #[test]
    fn identity_passes_through() {
        let mut same = Resampler::new(48_000, 48_000);
        let mut out = Vec::new();
        same.process(&[1, 2, 3], &mut out);
        assert_eq!(out, vec![1, 2, 3]);
    }
}
