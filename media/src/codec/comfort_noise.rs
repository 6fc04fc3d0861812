//! RFC 3389 comfort noise, received: the peer sends a noise level (and optionally a spectral
//! shape) during silence; we generate noise at that level until speech resumes.
//!
//! Only the level is used: the noise is white (the optional reflection coefficients of
//! RFC 3389 §3.2 are accepted and ignored), which RFC 3389 §4 allows for a receiver.
//!
//! The level byte is in -dBov (RFC 3389 §3.1): 0 dBov is the overload point of the
//! system, here a full-scale 16-bit square wave (RMS 32767).

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

use super::{CodecError, FRAME_SAMPLES};

/// The SDP encoding name (`a=rtpmap:13 CN/8000`, static payload type 13 per RFC 3551).
pub const ENCODING_NAME: &str = "CN";

/// The static payload type for CN at 8000 Hz (RFC 3551 table 4).
pub const STATIC_PAYLOAD_TYPE: u8 = 13;

/// A parsed comfort-noise payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComfortNoise {
    /// Noise level in -dBov (0 to 127).
    pub level: u8,
    /// Reflection coefficients, quantized as sent (possibly none).
    pub spectrum: Vec<u8>,
}

impl ComfortNoise {
    /// Parses a payload: the level byte, then any number of coefficient bytes.
    pub fn parse(payload: &[u8]) -> Result<ComfortNoise, CodecError> {
        let (&level, rest) = payload.split_first().ok_or(CodecError::Malformed {
            codec: ENCODING_NAME,
            reason: "empty payload",
        })?;
        if level > 127 {
            return Err(CodecError::Malformed {
                codec: ENCODING_NAME,
                reason: "level above 127 dBov",
            });
        }
        Ok(ComfortNoise {
            level,
            spectrum: rest.to_vec(),
        })
    }

    /// The RMS amplitude (16-bit scale) this level asks for.
    pub fn rms(&self) -> f64 {
        32767.0 * 10f64.powf(-f64::from(self.level) / 20.0)
    }
}

/// Generates comfort noise at the last level received. Randomness comes from a seeded
/// `rand_xorshift::XorShiftRng` (the cores' one deterministic generator), so output is
/// reproducible.
#[derive(Debug, Clone)]
pub struct ComfortNoiseGenerator {
    rms: f64,
    rng: XorShiftRng,
}

impl ComfortNoiseGenerator {
    /// A generator, silent until [`ComfortNoiseGenerator::update`] gives it a level.
    pub fn new(seed: u64) -> ComfortNoiseGenerator {
        ComfortNoiseGenerator {
            rms: 0.0,
            rng: XorShiftRng::seed_from_u64(seed),
        }
    }

    /// Takes a received CN payload.
    pub fn update(&mut self, payload: &[u8]) -> Result<(), CodecError> {
        self.rms = ComfortNoise::parse(payload)?.rms();
        Ok(())
    }

    fn next_uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    /// Appends one 48 kHz frame of noise to `out`; returns [`FRAME_SAMPLES`].
    pub fn generate(&mut self, out: &mut Vec<i16>) -> usize {
        self.generate_samples(FRAME_SAMPLES, out)
    }

    /// Appends `samples` of noise to `out` (one frame at another PCM rate); returns
    /// `samples`.
    pub fn generate_samples(&mut self, samples: usize, out: &mut Vec<i16>) -> usize {
        // Uniform noise in [-a, a] has RMS a / sqrt(3).
        let a = self.rms * 3f64.sqrt();
        for _ in 0..samples {
            let v = self.next_uniform() * a;
            out.push(v.clamp(-32768.0, 32767.0) as i16);
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_requested_level() {
        let mut g = ComfortNoiseGenerator::new(7);
        g.update(&[40, 1, 2]).unwrap(); // -40 dBov -> RMS 327.67
        let mut out = Vec::new();
        for _ in 0..50 {
            g.generate(&mut out);
        }
        let rms =
            (out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / out.len() as f64).sqrt();
        assert!((rms - 327.67).abs() < 10.0, "rms {rms}");
        assert!(g.update(&[]).is_err());
        assert!(g.update(&[200]).is_err());
    }

    #[test]
    fn silent_before_any_level() {
        let mut g = ComfortNoiseGenerator::new(1);
        let mut out = Vec::new();
        g.generate(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }
}
