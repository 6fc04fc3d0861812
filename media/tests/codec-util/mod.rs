//! Signal analysis shared by the codec, jitter and device tests.
#![allow(dead_code)]

/// Frequency estimated from zero crossings (sign changes / 2 / duration).
pub fn zero_crossing_hz(x: &[i16], rate: f64) -> f64 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (x.len() as f64 / rate)
}

/// Root mean square.
pub fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Share of the signal's power at `freq` (Goertzel), 0.0 to 1.0.
pub fn tone_share(x: &[i16], rate: f64, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = x.len() as f64;
    // A sine of amplitude A gives power (A n / 2)^2, and its mean square is A^2 / 2.
    let tone_ms = 2.0 * power / (n * n);
    let total_ms = rms(x).powi(2);
    if total_ms == 0.0 {
        0.0
    } else {
        (tone_ms / total_ms).min(1.0)
    }
}

/// A sine of `freq` Hz and peak `amp`, `n` samples at `rate`.
pub fn sine(freq: f64, amp: f64, rate: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (amp * (std::f64::consts::TAU * freq * i as f64 / rate).sin()).round() as i16)
        .collect()
}

/// A seeded xorshift generator.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
