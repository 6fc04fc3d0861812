//! G.711 PCMU (µ-law) and PCMA (A-law), ITU-T G.711, in pure Rust.
//!
//! The companding follows the ITU-T reference (the classic Sun `g711.c` arithmetic): 14-bit
//! (µ-law) or 13-bit (A-law) linear samples in 8 segments. Payloads are 8 kHz, one byte per
//! sample (RFC 3551 §4.5.14); the encoder and decoder resample from and to the 48 kHz pipeline
//! rate with [`crate::resample::Resampler`].
//!
//! Loss concealment repeats the last pitch period found by autocorrelation and fades it out
//! over 60 ms, the approach of G.711 Appendix I (simplified: no overlap-add at the ends).

use super::plc::PitchConcealer;
use super::{AudioDecoder, AudioEncoder, CodecError, check_frame};
use crate::resample::Resampler;

/// The G.711 RTP clock rate.
pub const CLOCK_RATE: u32 = 8_000;

/// Samples (bytes) in a 20 ms G.711 payload.
pub const FRAME_BYTES: usize = 160;

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, North America and Japan).
    Mu,
    /// A-law (PCMA, elsewhere).
    A,
}

impl Law {
    fn name(self) -> &'static str {
        match self {
            Law::Mu => "PCMU",
            Law::A => "PCMA",
        }
    }

    /// Compresses one 16-bit linear sample.
    pub fn encode_sample(self, pcm: i16) -> u8 {
        match self {
            Law::Mu => linear_to_ulaw(pcm),
            Law::A => linear_to_alaw(pcm),
        }
    }

    /// Expands one companded byte to a 16-bit linear sample.
    pub fn decode_sample(self, byte: u8) -> i16 {
        match self {
            Law::Mu => ULAW_TABLE[usize::from(byte)],
            Law::A => ALAW_TABLE[usize::from(byte)],
        }
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// µ-law compression (G.711 table 2).
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    let mut v = i32::from(pcm);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(ULAW_CLIP) + ULAW_BIAS;
    let exponent = 31 - ((v >> 7) as u32).leading_zeros();
    let exponent = exponent.min(7) as i32;
    let mantissa = (v >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

const fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let t = ((mantissa << 3) + ULAW_BIAS) << exponent;
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

/// A-law compression (G.711 table 1).
pub fn linear_to_alaw(pcm: i16) -> u8 {
    let mut v = i32::from(pcm) >> 3;
    let mask: i32 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let Some(seg) = SEG_END.iter().position(|&end| v <= end) else {
        return (0x7F ^ mask) as u8;
    };
    let seg = seg as i32;
    let mut aval = seg << 4;
    if seg < 2 {
        aval |= (v >> 1) & 0x0F;
    } else {
        aval |= (v >> seg) & 0x0F;
    }
    (aval ^ mask) as u8
}

const fn alaw_to_linear(byte: u8) -> i16 {
    let a = (byte ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_to_linear(i as u8)
        } else {
            ulaw_to_linear(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = table(false);
static ALAW_TABLE: [i16; 256] = table(true);

/// Checks a PCM rate for the G.711 wrappers: 8 kHz to 192 kHz, whole samples per 20 ms.
fn check_rate(law: Law, rate: u32) -> Result<u32, CodecError> {
    if (8_000..=192_000).contains(&rate) && rate.is_multiple_of(50) {
        Ok(rate)
    } else {
        Err(CodecError::SampleRate {
            codec: law.name(),
            rate,
        })
    }
}

/// A G.711 encoder: 48 kHz frames in (or frames at the rate it was built for), 160-byte
/// payloads out.
#[derive(Debug, Clone)]
pub struct G711Encoder {
    law: Law,
    sample_rate: u32,
    resampler: Resampler,
    scratch: Vec<i16>,
}

impl G711Encoder {
    /// A new encoder for `law`, taking 48 kHz PCM.
    pub fn new(law: Law) -> G711Encoder {
        G711Encoder::with_sample_rate(law, crate::SAMPLE_RATE)
            .expect("the pipeline rate is a valid pcm rate")
    }

    /// A new encoder for `law` taking PCM at `sample_rate` (8 kHz to 192 kHz, a multiple of
    /// 50 Hz), resampled to 8 kHz.
    pub fn with_sample_rate(law: Law, sample_rate: u32) -> Result<G711Encoder, CodecError> {
        let sample_rate = check_rate(law, sample_rate)?;
        Ok(G711Encoder {
            law,
            sample_rate,
            resampler: Resampler::new(sample_rate, CLOCK_RATE),
            scratch: Vec::with_capacity(FRAME_BYTES),
        })
    }
}

impl AudioEncoder for G711Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        check_frame(pcm, self.sample_rate)?;
        self.scratch.clear();
        self.resampler.process(pcm, &mut self.scratch);
        let law = self.law;
        out.extend(self.scratch.iter().map(|&s| law.encode_sample(s)));
        Ok(self.scratch.len())
    }

    fn clock_rate(&self) -> u32 {
        CLOCK_RATE
    }

    fn frame_samples(&self) -> usize {
        FRAME_BYTES
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
}

/// A G.711 decoder: payloads in, 48 kHz frames (or frames at the rate it was built for)
/// out, with pitch-repetition concealment.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    law: Law,
    sample_rate: u32,
    resampler: Resampler,
    narrow: Vec<i16>,
    /// Pitch-repetition concealment of lost frames, at 8 kHz.
    plc: PitchConcealer,
}

impl G711Decoder {
    /// A new decoder for `law`, giving 48 kHz PCM.
    pub fn new(law: Law) -> G711Decoder {
        G711Decoder::with_sample_rate(law, crate::SAMPLE_RATE)
            .expect("the pipeline rate is a valid pcm rate")
    }

    /// A new decoder for `law` giving PCM at `sample_rate` (8 kHz to 192 kHz, a multiple of
    /// 50 Hz), resampled from 8 kHz.
    pub fn with_sample_rate(law: Law, sample_rate: u32) -> Result<G711Decoder, CodecError> {
        let sample_rate = check_rate(law, sample_rate)?;
        Ok(G711Decoder {
            law,
            sample_rate,
            resampler: Resampler::new(CLOCK_RATE, sample_rate),
            narrow: Vec::with_capacity(FRAME_BYTES * 4),
            plc: PitchConcealer::new(CLOCK_RATE),
        })
    }
}

impl AudioDecoder for G711Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Malformed {
                codec: self.law.name(),
                reason: "empty payload",
            });
        }
        self.narrow.clear();
        let law = self.law;
        self.narrow
            .extend(payload.iter().map(|&b| law.decode_sample(b)));
        self.plc.remember(&self.narrow);
        Ok(self.resampler.process(&self.narrow, out))
    }

    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        Ok(self.resampler.process(self.plc.conceal(), out))
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FRAME_SAMPLES;

    #[test]
    fn known_code_points() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(Law::Mu.decode_sample(0xFF), 0);
        assert_eq!(Law::Mu.decode_sample(0x7F), 0);
        assert_eq!(Law::Mu.decode_sample(0x80), 32124);
        assert_eq!(Law::Mu.decode_sample(0x00), -32124);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(Law::A.decode_sample(0xD5), 8);
        assert_eq!(Law::A.decode_sample(0x55), -8);
        assert_eq!(Law::A.decode_sample(0xAA), 32256);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_round_trips() {
        for law in [Law::Mu, Law::A] {
            for b in 0..=255u8 {
                let lin = law.decode_sample(b);
                let again = law.decode_sample(law.encode_sample(lin));
                assert_eq!(again, lin, "{law:?} byte {b:#x}");
            }
        }
    }

    #[test]
    fn quantization_error_is_relative() {
        for law in [Law::Mu, Law::A] {
            for x in (-32000i32..32000).step_by(7) {
                let x = x as i16;
                let y = law.decode_sample(law.encode_sample(x));
                let err = (i32::from(x) - i32::from(y)).abs();
                // Segment step is at most 1/16 of the value (plus the small-signal step).
                assert!(err <= i32::from(x).abs() / 16 + 16, "{law:?} {x} -> {y}");
            }
        }
    }

    #[test]
    fn encoder_decoder_frame_sizes_and_concealment_fades() {
        let mut enc = G711Encoder::new(Law::A);
        let mut dec = G711Decoder::new(Law::A);
        let tone: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| {
                (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 200.0 / 48_000.0).sin()) as i16
            })
            .collect();
        let mut out = Vec::new();
        for _ in 0..5 {
            let mut payload = Vec::new();
            assert_eq!(enc.encode(&tone, &mut payload).unwrap(), 160);
            assert_eq!(dec.decode(&payload, &mut out).unwrap(), FRAME_SAMPLES);
        }
        let peak = |x: &[i16]| x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let mut c1 = Vec::new();
        dec.conceal(&mut c1).unwrap();
        assert!(peak(&c1) > 4000, "first concealed frame continues the tone");
        let mut rest = Vec::new();
        for _ in 0..4 {
            rest.clear();
            dec.conceal(&mut rest).unwrap();
        }
        assert!(peak(&rest) < 200, "after 100 ms concealment is silent");
        assert!(dec.decode(&[], &mut out).is_err());
    }
}
