//! G.722 (ITU-T G.722, 7 kHz wideband sub-band ADPCM) at 64 kbit/s, in pure Rust.
//!
//! Our own implementation of the ITU-T G.722 (09/2012) reference algorithm, mode 1 (64 kbit/s,
//! 6 low-band and 2 high-band bits per 16 kHz sample pair), following the blocks of the
//! Recommendation's §3 and §4 (the names in the comments: `QUANTL`, `INVQAL`, `LOGSCL`,
//! `SCALEL`, `UPPOL2`, ...). A 24-tap quadrature mirror filter (QMF) splits 16 kHz PCM into
//! a 0-4 kHz and a 4-8 kHz band at 8 kHz each; each band is coded by an adaptive
//! differential PCM coder with a two-pole, six-zero predictor. Its output is bit-exact with
//! sippy's libg722, the C code of Steve Underwood's spandsp codec that baresip's `g722`
//! module uses (`media/tests/codec-g722.rs` checks it against vectors made with it).
//!
//! The RTP payload format is RFC 3551 §4.5.2: one octet per 16 kHz sample *pair*, 160
//! octets per 20 ms, and — the quirk — an RTP clock rate of **8000 Hz** (`a=rtpmap:9
//! G722/8000`) although the codec samples at 16 kHz, kept for compatibility with an error in
//! RFC 1890. A 20 ms frame therefore advances the RTP timestamp by 160 ([`CLOCK_RATE`]
//! / 50), which [`super::CodecKind::frame_samples`] already gives.
//!
//! The encoder and decoder take and give PCM at the pipeline rate (or any rate they were
//! built for) and resample to and from 16 kHz with [`crate::resample::Resampler`] (a
//! 7.2 kHz cutoff, above G.722's 7 kHz band). Built for 16 kHz they code samples unchanged.
//! Loss concealment repeats the last pitch period and fades it out over 60 ms (as G.711's,
//! [`super::g711`]); the ADPCM state re-adapts on the next packet.
//!
//! ```
//! use tincan_media::codec::g722::{G722Decoder, G722Encoder};
//! use tincan_media::codec::{AudioDecoder, AudioEncoder};
//!
//! let mut encoder = G722Encoder::new();
//! let mut decoder = G722Decoder::new();
//! let mut payload = Vec::new();
//! assert_eq!(encoder.encode(&[0; 960], &mut payload).unwrap(), 160);
//! assert_eq!(encoder.frame_samples(), 160); // RTP timestamp units (8 kHz clock)
//! let mut pcm = Vec::new();
//! assert_eq!(decoder.decode(&payload, &mut pcm).unwrap(), 960); // 20 ms at 48 kHz
//! ```

use super::plc::PitchConcealer;
use super::{AudioDecoder, AudioEncoder, CodecError, check_frame};
use crate::resample::Resampler;

/// The RTP clock rate of G.722: 8000 Hz, although it samples at 16 kHz (RFC 3551 §4.5.2,
/// "for historical reasons").
pub const CLOCK_RATE: u32 = 8_000;

/// The rate G.722 samples at, in Hz.
pub const PCM_RATE: u32 = 16_000;

/// Octets in a 20 ms payload at 64 kbit/s: one per 16 kHz sample pair.
pub const FRAME_BYTES: usize = 160;

/// 16 kHz samples in a 20 ms frame.
const FRAME_PCM: usize = 2 * FRAME_BYTES;

/// The codec's name in errors.
const NAME: &str = "G722";

/// QMF coefficients h0..h11 (G.722 Table 11; h(23-i) = h(i)), scaled by 2^13.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Low-band quantizer decision levels (QUANTL, G.722 Table 12), scaled by 2^3.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];

/// QUANTL output code for a negative difference, by interval.
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];

/// QUANTL output code for a positive difference, by interval.
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];

/// Low-band log scale factor multipliers (LOGSCL, G.722 Table 14).
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];

/// The 4-bit low-band code to its magnitude index for [`WL`] (LOGSCL).
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];

/// The inverse log table (SCALEL/SCALEH, G.722 Table 15).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

/// Low-band 4-bit inverse quantizer outputs (INVQAL, G.722 Table 13), the predictor's
/// feedback in every mode.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];

/// Low-band 6-bit inverse quantizer outputs (INVQBL in mode 1, G.722 Table 12).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];

/// High-band inverse quantizer outputs (INVQAH, G.722 Table 16).
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];

/// High-band log scale factor multipliers (LOGSCH, G.722 Table 17), by [`RH2`].
const WH: [i32; 3] = [0, -214, 798];

/// The 2-bit high-band code to its magnitude index for [`WH`].
const RH2: [i32; 4] = [2, 1, 2, 1];

/// QUANTH's decision level, scaled by 2^12.
const QUANTH_LEVEL: i32 = 564;

/// Upper limits of the log scale factors (LOGSCL: 18432, LOGSCH: 22528).
const NB_MAX_LOW: i32 = 18_432;
const NB_MAX_HIGH: i32 = 22_528;

/// Clamps to the 16-bit two's complement range, as the Recommendation's arithmetic does.
fn saturate(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The adaptive predictor and scale factor of one sub-band (the state of Blocks 3 and 4).
#[derive(Debug, Clone)]
struct Band {
    /// Predicted signal (`SL`/`SH`): pole plus zero section.
    s: i32,
    /// Zero-section output (`SZL`/`SZH`).
    sz: i32,
    /// Reconstructed signal `r`, now and the two before.
    r: [i32; 3],
    /// Pole coefficients `a1`, `a2` (index 0 unused).
    a: [i32; 3],
    /// Partially reconstructed signal `p`, now and the two before.
    p: [i32; 3],
    /// Quantized differences `d`, now and the six before.
    d: [i32; 7],
    /// Zero coefficients `b1`..`b6` (index 0 unused).
    b: [i32; 7],
    /// Log scale factor (`NBL`/`NBH`).
    nb: i32,
    /// Scale factor (`DETL`/`DETH`).
    det: i32,
}

impl Band {
    /// The reset state (G.722 §3.6.2): all zero but the scale factor.
    fn new(det: i32) -> Band {
        Band {
            s: 0,
            sz: 0,
            r: [0; 3],
            a: [0; 3],
            p: [0; 3],
            d: [0; 7],
            b: [0; 7],
            nb: 0,
            det,
        }
    }

    /// LOGSCL/LOGSCH then SCALEL/SCALEH: adapts the log scale factor by `w`, limits it to
    /// `0..=nb_max` and turns it into the linear scale factor (`shift` is 8 for the low band,
    /// 10 for the high band).
    fn adapt_scale(&mut self, w: i32, nb_max: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + w).clamp(0, nb_max);
        let mantissa = ILB[((self.nb >> 6) & 31) as usize];
        let exponent = shift - (self.nb >> 11);
        let det = if exponent < 0 {
            mantissa << -exponent
        } else {
            mantissa >> exponent
        };
        self.det = det << 2;
    }

    /// Block 4: reconstructs with the quantized difference `d`, adapts the pole and zero
    /// predictors and computes the next prediction.
    fn update(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);
        let sign = |x: i32| x >> 15;

        // UPPOL2: second pole coefficient
        let sg = [sign(self.p[0]), sign(self.p[1]), sign(self.p[2])];
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = (if sg[0] == sg[1] { -wd1 } else { wd1 }).min(32_767);
        let a2 =
            ((wd2 >> 7) + if sg[0] == sg[2] { 128 } else { -128 }) + ((self.a[2] * 32_512) >> 15);
        let a2 = a2.clamp(-12_288, 12_288);

        // UPPOL1: first pole coefficient, limited by the second
        let wd1 = if sg[0] == sg[1] { 192 } else { -192 };
        let a1 = saturate(wd1 + ((self.a[1] * 32_640) >> 15));
        let limit = saturate(15_360 - a2);
        let a1 = a1.clamp(-limit, limit);

        // UPZERO: zero coefficients
        let step = if d == 0 { 0 } else { 128 };
        let sg0 = sign(d);
        let mut b = [0i32; 7];
        for (i, bi) in b.iter_mut().enumerate().skip(1) {
            let wd2 = if sign(self.d[i]) == sg0 { step } else { -step };
            *bi = saturate(wd2 + ((self.b[i] * 32_640) >> 15));
        }

        // DELAYA
        self.d.copy_within(0..6, 1);
        self.b = b;
        self.r.copy_within(0..2, 1);
        self.p.copy_within(0..2, 1);
        self.a = [0, a1, a2];

        // FILTEP: pole section
        let sp = saturate(
            ((self.a[1] * saturate(self.r[1] + self.r[1])) >> 15)
                + ((self.a[2] * saturate(self.r[2] + self.r[2])) >> 15),
        );
        // FILTEZ: zero section
        let sz: i32 = (1..7)
            .map(|i| (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15)
            .sum();
        self.sz = saturate(sz);
        // PREDIC
        self.s = saturate(sp + self.sz);
    }
}

/// The low band's reset scale factor (`DETL`).
const DET_LOW_RESET: i32 = 32;
/// The high band's reset scale factor (`DETH`).
const DET_HIGH_RESET: i32 = 8;

/// The sample-level G.722 64 kbit/s encoder: 16 kHz PCM in, one octet per sample pair out.
#[derive(Debug, Clone)]
struct Encoder64 {
    /// QMF input history, oldest first.
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Encoder64 {
    fn new() -> Encoder64 {
        Encoder64 {
            x: [0; 24],
            low: Band::new(DET_LOW_RESET),
            high: Band::new(DET_HIGH_RESET),
        }
    }

    /// Encodes one pair of 16 kHz samples into one octet.
    fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        // Transmit QMF: split into the low and high band at 8 kHz.
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(first);
        self.x[23] = i32::from(second);
        let (mut even, mut odd) = (0i32, 0i32);
        for i in 0..12 {
            odd += self.x[2 * i] * QMF[i];
            even += self.x[2 * i + 1] * QMF[11 - i];
        }
        let xlow = (even + odd) >> 14;
        let xhigh = (even - odd) >> 14;

        // Low band. SUBTRA, QUANTL
        let low = &mut self.low;
        let el = saturate(xlow - low.s);
        let magnitude = if el >= 0 { el } else { -(el + 1) };
        let interval = (1..30)
            .find(|&i| magnitude < (Q6[i] * low.det) >> 12)
            .unwrap_or(30);
        let ilow = if el < 0 { ILN[interval] } else { ILP[interval] };
        // INVQAL (the 4 most significant bits feed the predictor), LOGSCL, SCALEL, Block 4
        let ril = (ilow >> 2) as usize;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.adapt_scale(WL[RL42[ril] as usize], NB_MAX_LOW, 8);
        low.update(dlow);

        // High band. SUBTRA, QUANTH
        let high = &mut self.high;
        let eh = saturate(xhigh - high.s);
        let magnitude = if eh >= 0 { eh } else { -(eh + 1) };
        let big = magnitude >= (QUANTH_LEVEL * high.det) >> 12;
        let ihigh = match (eh < 0, big) {
            (true, false) => 1,
            (true, true) => 0,
            (false, false) => 3,
            (false, true) => 2,
        };
        // INVQAH, LOGSCH, SCALEH, Block 4
        let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
        high.adapt_scale(WH[RH2[ihigh as usize] as usize], NB_MAX_HIGH, 10);
        high.update(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

/// The sample-level G.722 64 kbit/s decoder: octets in, two 16 kHz samples per octet out.
#[derive(Debug, Clone)]
struct Decoder64 {
    /// Receive QMF history, oldest first.
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Decoder64 {
    fn new() -> Decoder64 {
        Decoder64 {
            x: [0; 24],
            low: Band::new(DET_LOW_RESET),
            high: Band::new(DET_HIGH_RESET),
        }
    }

    /// Decodes one octet into two 16 kHz samples.
    fn decode_octet(&mut self, code: u8) -> [i16; 2] {
        let code = i32::from(code);
        let ilow = (code & 0x3f) as usize;
        let ihigh = ((code >> 6) & 0x3) as usize;

        // Low band. INVQBL (6 bits), RECONS, LIMIT
        let low = &mut self.low;
        let rlow = (low.s + ((low.det * QM6[ilow]) >> 15)).clamp(-16_384, 16_383);
        // INVQAL (4 bits), LOGSCL, SCALEL, Block 4
        let ril = ilow >> 2;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.adapt_scale(WL[RL42[ril] as usize], NB_MAX_LOW, 8);
        low.update(dlow);

        // High band. INVQAH, RECONS, LIMIT, LOGSCH, SCALEH, Block 4
        let high = &mut self.high;
        let dhigh = (high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + high.s).clamp(-16_384, 16_383);
        high.adapt_scale(WH[RH2[ihigh] as usize], NB_MAX_HIGH, 10);
        high.update(dhigh);

        // Receive QMF: join the bands into two 16 kHz samples.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let (mut first, mut second) = (0i32, 0i32);
        for i in 0..12 {
            second += self.x[2 * i] * QMF[i];
            first += self.x[2 * i + 1] * QMF[11 - i];
        }
        [saturate(first >> 11) as i16, saturate(second >> 11) as i16]
    }
}

/// Checks a PCM rate for the wrappers: 8 kHz to 192 kHz, whole samples per 20 ms.
fn check_rate(rate: u32) -> Result<u32, CodecError> {
    if (8_000..=192_000).contains(&rate) && rate.is_multiple_of(50) {
        Ok(rate)
    } else {
        Err(CodecError::SampleRate { codec: NAME, rate })
    }
}

/// A G.722 encoder: 48 kHz frames in (or frames at the rate it was built for), 160-octet
/// payloads out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    sample_rate: u32,
    resampler: Resampler,
    coder: Encoder64,
    wide: Vec<i16>,
}

impl G722Encoder {
    /// A new encoder taking 48 kHz PCM.
    pub fn new() -> G722Encoder {
        G722Encoder::with_sample_rate(crate::SAMPLE_RATE)
            .expect("the pipeline rate is a valid pcm rate")
    }

    /// A new encoder taking PCM at `sample_rate` (8 kHz to 192 kHz, a multiple of 50 Hz),
    /// resampled to 16 kHz; at 16 kHz the samples are coded as they are.
    pub fn with_sample_rate(sample_rate: u32) -> Result<G722Encoder, CodecError> {
        let sample_rate = check_rate(sample_rate)?;
        Ok(G722Encoder {
            sample_rate,
            resampler: Resampler::new(sample_rate, PCM_RATE),
            coder: Encoder64::new(),
            wide: Vec::with_capacity(FRAME_PCM),
        })
    }
}

impl Default for G722Encoder {
    fn default() -> Self {
        G722Encoder::new()
    }
}

impl AudioEncoder for G722Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        check_frame(pcm, self.sample_rate)?;
        self.wide.clear();
        self.resampler.process(pcm, &mut self.wide);
        let before = out.len();
        let coder = &mut self.coder;
        out.extend(
            self.wide
                .chunks_exact(2)
                .map(|pair| coder.encode_pair(pair[0], pair[1])),
        );
        Ok(out.len() - before)
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

/// A G.722 decoder: payloads in, 48 kHz frames (or frames at the rate it was built for)
/// out, with pitch-repetition concealment.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    sample_rate: u32,
    resampler: Resampler,
    coder: Decoder64,
    wide: Vec<i16>,
    /// Pitch-repetition concealment of lost frames, at 16 kHz.
    plc: PitchConcealer,
}

impl G722Decoder {
    /// A new decoder giving 48 kHz PCM.
    pub fn new() -> G722Decoder {
        G722Decoder::with_sample_rate(crate::SAMPLE_RATE)
            .expect("the pipeline rate is a valid pcm rate")
    }

    /// A new decoder giving PCM at `sample_rate` (8 kHz to 192 kHz, a multiple of 50 Hz),
    /// resampled from 16 kHz; at 16 kHz the decoded samples are given as they are.
    pub fn with_sample_rate(sample_rate: u32) -> Result<G722Decoder, CodecError> {
        let sample_rate = check_rate(sample_rate)?;
        Ok(G722Decoder {
            sample_rate,
            resampler: Resampler::new(PCM_RATE, sample_rate),
            coder: Decoder64::new(),
            wide: Vec::with_capacity(FRAME_PCM * 4),
            plc: PitchConcealer::new(PCM_RATE),
        })
    }
}

impl Default for G722Decoder {
    fn default() -> Self {
        G722Decoder::new()
    }
}

impl AudioDecoder for G722Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Malformed {
                codec: NAME,
                reason: "empty payload",
            });
        }
        let mut wide = std::mem::take(&mut self.wide);
        wide.clear();
        for &code in payload {
            wide.extend_from_slice(&self.coder.decode_octet(code));
        }
        self.plc.remember(&wide);
        let n = self.resampler.process(&wide, out);
        self.wide = wide;
        Ok(n)
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

    fn tone(hz: f64, rate: u32, n: usize, amplitude: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * (i as f64 * 2.0 * std::f64::consts::PI * hz / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn silence_codes_to_the_reset_pattern_and_back_to_silence() {
        let mut enc = G722Encoder::with_sample_rate(PCM_RATE).unwrap();
        let mut dec = G722Decoder::with_sample_rate(PCM_RATE).unwrap();
        let mut payload = Vec::new();
        assert_eq!(enc.encode(&[0; FRAME_PCM], &mut payload).unwrap(), 160);
        let mut pcm = Vec::new();
        assert_eq!(dec.decode(&payload, &mut pcm).unwrap(), FRAME_PCM);
        assert!(pcm.iter().all(|s| s.abs() < 8), "{pcm:?}");
    }

    #[test]
    fn every_octet_decodes_without_overflow() {
        let mut dec = G722Decoder::new();
        let payload: Vec<u8> = (0..=255u8).cycle().take(160 * 20).collect();
        let mut out = Vec::new();
        for frame in payload.chunks(160) {
            assert_eq!(dec.decode(frame, &mut out).unwrap(), FRAME_SAMPLES);
        }
        // Odd sizes (a peer's other ptime) decode too: two 16 kHz samples per octet.
        let mut out = Vec::new();
        assert_eq!(
            dec.decode(&[0x55; 80], &mut out).unwrap(),
            FRAME_SAMPLES / 2
        );
        assert!(dec.decode(&[], &mut out).is_err());
    }

    #[test]
    fn full_scale_input_does_not_overflow() {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let square: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| {
                if (i / 24) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let mut out = Vec::new();
        for _ in 0..50 {
            let mut payload = Vec::new();
            enc.encode(&square, &mut payload).unwrap();
            dec.decode(&payload, &mut out).unwrap();
        }
        assert_eq!(out.len(), 50 * FRAME_SAMPLES);
    }

    #[test]
    fn concealment_continues_then_fades() {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let t = tone(200.0, 48_000, FRAME_SAMPLES, 8000.0);
        let mut out = Vec::new();
        for _ in 0..5 {
            let mut payload = Vec::new();
            enc.encode(&t, &mut payload).unwrap();
            dec.decode(&payload, &mut out).unwrap();
        }
        let peak = |x: &[i16]| x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let mut c1 = Vec::new();
        assert_eq!(dec.conceal(&mut c1).unwrap(), FRAME_SAMPLES);
        assert!(peak(&c1) > 4000, "first concealed frame continues the tone");
        let mut rest = Vec::new();
        for _ in 0..4 {
            rest.clear();
            dec.conceal(&mut rest).unwrap();
        }
        assert!(peak(&rest) < 200, "after 100 ms concealment is silent");
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(G722Encoder::with_sample_rate(7_000).is_err());
        assert!(G722Decoder::with_sample_rate(16_010).is_err());
        let mut enc = G722Encoder::new();
        assert!(matches!(
            enc.encode(&[0; 100], &mut Vec::new()),
            Err(CodecError::FrameSize { .. })
        ));
    }
}
