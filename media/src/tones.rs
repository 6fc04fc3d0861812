//! Call-progress and ring tones: a [`Cadence`] (tones and pauses, repeated) and the
//! [`CadenceSource`] that renders it as 20 ms frames of 48 kHz mono, like any other
//! [`AudioSource`]. Pure generators: no clock, no thread; whoever plays them paces the frames
//! (the driver's [`TonePlayer`](crate::driver::player::TonePlayer) does).
//!
//! - [`Cadence::ringback_etsi`]: what a caller hears while the callee rings in most of
//!   Europe, 425 Hz, 1 s on, 4 s off (ETSI ES 201 970; ITU-T E.180 Supplement 2).
//! - [`Cadence::ringback_us`]: the North American ring-back, 440 + 480 Hz, 2 s on, 4 s off
//!   (ANSI T1.401, ITU-T E.180 Supplement 2).
//! - [`Cadence::ring`]: the built-in ring of an incoming call: a soft two-note chime
//!   (880 Hz then 660 Hz, twice, each note fading), then 2 s of quiet; 3 s in all.
//!
//! ```
//! use tincan_media::codec::FRAME_SAMPLES;
//! use tincan_media::device::{AudioSource, SourceStatus};
//! use tincan_media::tones::{Cadence, CadenceSource};
//!
//! let mut ringback = CadenceSource::new(Cadence::ringback_etsi());
//! let mut frame = vec![0i16; FRAME_SAMPLES];
//! assert_eq!(ringback.read_frame(&mut frame).unwrap(), SourceStatus::Audio);
//! assert!(frame.iter().any(|&s| s != 0)); // the first second sounds
//! for _ in 1..50 {
//!     ringback.read_frame(&mut frame).unwrap();
//! }
//! ringback.read_frame(&mut frame).unwrap();
//! assert!(frame.iter().all(|&s| s == 0)); // then 4 s of silence
//! ```

use std::f64::consts::TAU;

use crate::SAMPLE_RATE;
use crate::device::{AudioSource, DeviceError, SourceStatus};

/// Samples of the fade in and out at a tone's edges (5 ms): no click where a tone starts or
/// stops.
const RAMP_SAMPLES: u64 = SAMPLE_RATE as u64 / 200;

/// One step of a [`Cadence`]: a tone (one frequency or the sum of several) or a pause.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// How long, in milliseconds.
    pub millis: u32,
    /// The frequencies summed, in Hz; none: a pause.
    pub frequencies: Vec<f64>,
    /// How fast the tone fades, per second (the level is multiplied by `exp(-decay * t)`):
    /// 0 for a steady tone, about 4-8 for a bell-like note.
    pub decay: f64,
}

impl Segment {
    /// A steady tone of these frequencies.
    pub fn tone(millis: u32, frequencies: &[f64]) -> Segment {
        Segment {
            millis,
            frequencies: frequencies.to_vec(),
            decay: 0.0,
        }
    }

    /// A note that fades by `decay` per second.
    pub fn note(millis: u32, frequency: f64, decay: f64) -> Segment {
        Segment {
            millis,
            frequencies: vec![frequency],
            decay,
        }
    }

    /// Silence.
    pub fn pause(millis: u32) -> Segment {
        Segment {
            millis,
            frequencies: Vec::new(),
            decay: 0.0,
        }
    }

    fn samples(&self) -> u64 {
        u64::from(self.millis) * u64::from(SAMPLE_RATE) / 1000
    }
}

/// Tones and pauses played in a loop, at a level.
#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    /// The steps of one period, in order.
    pub segments: Vec<Segment>,
    /// The peak level of a tone in dBFS (0 = full scale); several frequencies share it.
    pub level_dbfs: f64,
}

impl Cadence {
    /// European ring-back: 425 Hz, 1 s on, 4 s off (ETSI ES 201 970, ITU-T E.180
    /// Supplement 2), at -16 dBFS.
    pub fn ringback_etsi() -> Cadence {
        Cadence {
            segments: vec![Segment::tone(1000, &[425.0]), Segment::pause(4000)],
            level_dbfs: -16.0,
        }
    }

    /// North American ring-back: 440 + 480 Hz, 2 s on, 4 s off (ANSI T1.401), at -16 dBFS.
    pub fn ringback_us() -> Cadence {
        Cadence {
            segments: vec![Segment::tone(2000, &[440.0, 480.0]), Segment::pause(4000)],
            level_dbfs: -16.0,
        }
    }

    /// The built-in ring of an incoming call: a chime of two fading notes, 880 Hz and
    /// 660 Hz, played twice (250 ms each), then 2 s of quiet; at -10 dBFS.
    pub fn ring() -> Cadence {
        Cadence {
            segments: vec![
                Segment::note(250, 880.0, 5.0),
                Segment::note(250, 660.0, 5.0),
                Segment::note(250, 880.0, 5.0),
                Segment::note(250, 660.0, 5.0),
                Segment::pause(2000),
            ],
            level_dbfs: -10.0,
        }
    }

    /// One period's length in milliseconds.
    pub fn period_millis(&self) -> u64 {
        self.segments.iter().map(|s| u64::from(s.millis)).sum()
    }
}

/// Renders a [`Cadence`] for ever (an empty or zero-length cadence is silence).
#[derive(Debug, Clone)]
pub struct CadenceSource {
    cadence: Cadence,
    peak: f64,
    /// The segment playing.
    segment: usize,
    /// Samples played of it.
    position: u64,
}

impl CadenceSource {
    /// Starts at the beginning of the cadence's first segment.
    pub fn new(cadence: Cadence) -> CadenceSource {
        CadenceSource {
            peak: 32767.0 * 10f64.powf(cadence.level_dbfs / 20.0),
            cadence,
            segment: 0,
            position: 0,
        }
    }

    fn next_sample(&mut self) -> i16 {
        let Some(seg) = self.cadence.segments.get(self.segment) else {
            return 0;
        };
        let len = seg.samples();
        let value = if seg.frequencies.is_empty() {
            0.0
        } else {
            let t = self.position as f64 / f64::from(SAMPLE_RATE);
            let edge = self.position.min(len.saturating_sub(self.position + 1));
            let ramp = (edge as f64 / RAMP_SAMPLES as f64).min(1.0);
            let envelope = ramp * (-seg.decay * t).exp();
            let sum: f64 = seg.frequencies.iter().map(|f| (TAU * f * t).sin()).sum();
            self.peak * envelope * sum / seg.frequencies.len() as f64
        };
        self.position += 1;
        if self.position >= len {
            self.position = 0;
            // Past zero-length segments, at most once round the cadence.
            for _ in 0..self.cadence.segments.len() {
                self.segment = (self.segment + 1) % self.cadence.segments.len();
                if self.cadence.segments[self.segment].samples() > 0 {
                    break;
                }
            }
        }
        value.round().clamp(-32768.0, 32767.0) as i16
    }
}

impl AudioSource for CadenceSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        crate::device::check_frame(frame.len())?;
        if self.cadence.period_millis() == 0 {
            frame.fill(0);
            return Ok(SourceStatus::Audio);
        }
        for s in frame.iter_mut() {
            *s = self.next_sample();
        }
        Ok(SourceStatus::Audio)
    }
}

/// The power of `frequency` in `samples` (48 kHz), by the Goertzel algorithm, normalised so
/// that a full-scale sine at `frequency` gives about 0.25: a cheap single-bin DFT for tests
/// and tone detection.
pub fn goertzel_power(samples: &[i16], frequency: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (TAU * frequency / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len() as f64).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FRAME_SAMPLES;

    /// Renders `seconds` of a cadence.
    fn render(cadence: Cadence, seconds: f64) -> Vec<i16> {
        let mut src = CadenceSource::new(cadence);
        let frames = (seconds * 50.0).round() as usize;
        let mut out = Vec::with_capacity(frames * FRAME_SAMPLES);
        let mut f = vec![0i16; FRAME_SAMPLES];
        for _ in 0..frames {
            assert_eq!(src.read_frame(&mut f).unwrap(), SourceStatus::Audio);
            out.extend_from_slice(&f);
        }
        out
    }

    /// Which frames sound (any sample above a whisper).
    fn sounding(samples: &[i16]) -> Vec<bool> {
        samples
            .chunks(FRAME_SAMPLES)
            .map(|f| f.iter().any(|s| s.unsigned_abs() > 30))
            .collect()
    }

    /// Zero crossings per second of a steady stretch: twice the frequency.
    fn crossings_per_second(samples: &[i16]) -> f64 {
        let n = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        n as f64 * f64::from(SAMPLE_RATE) / samples.len() as f64
    }

    #[test]
    fn etsi_ringback_is_425_hz_one_second_on_four_off() {
        let s = render(Cadence::ringback_etsi(), 10.0);
        let on = sounding(&s);
        // 50 frames on, 200 off, twice.
        for (i, &o) in on.iter().enumerate() {
            assert_eq!(o, i % 250 < 50, "frame {i}");
        }
        let f = crossings_per_second(&s[4800..43_200]) / 2.0;
        assert!((f - 425.0).abs() < 2.0, "{f} Hz");
        let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
        let expected = 32767.0 * 10f64.powf(-16.0 / 20.0);
        assert!((f64::from(peak) - expected).abs() < 50.0, "peak {peak}");
    }

    #[test]
    fn us_ringback_is_440_plus_480_two_seconds_on_four_off() {
        let s = render(Cadence::ringback_us(), 12.0);
        let on = sounding(&s);
        for (i, &o) in on.iter().enumerate() {
            assert_eq!(o, i % 300 < 100, "frame {i}");
        }
        let tone = &s[4800..48_000];
        let p440 = goertzel_power(tone, 440.0);
        let p480 = goertzel_power(tone, 480.0);
        let p425 = goertzel_power(tone, 425.0);
        let p460 = goertzel_power(tone, 460.0);
        assert!(
            p440 > 100.0 * p425 && p480 > 100.0 * p460,
            "{p440} {p480} {p425} {p460}"
        );
        assert!((p440 / p480 - 1.0).abs() < 0.1);
    }

    #[test]
    fn ring_is_a_chime_880_then_660_every_three_seconds() {
        let s = render(Cadence::ring(), 6.0);
        let on = sounding(&s);
        for (i, &o) in on.iter().enumerate() {
            // 1 s of notes, 2 s of quiet.
            assert_eq!(o, i % 150 < 50, "frame {i}");
        }
        for period in 0..2 {
            let base = period * 3 * 48_000;
            for note in 0..4 {
                let start = base + note * 12_000;
                let chunk = &s[start + 480..start + 12_000 - 480];
                let (want, other) = if note % 2 == 0 {
                    (880.0, 660.0)
                } else {
                    (660.0, 880.0)
                };
                let (p, q) = (goertzel_power(chunk, want), goertzel_power(chunk, other));
                assert!(p > 50.0 * q, "period {period} note {note}: {p} vs {q}");
            }
        }
        // Each note fades: its end is quieter than its start.
        let level = |c: &[i16]| c.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!(level(&s[9_600..12_000]) < level(&s[240..2_640]) / 2);
    }

    #[test]
    fn tones_start_and_stop_without_a_click() {
        let s = render(Cadence::ringback_etsi(), 1.1);
        // The first and last samples of the tone are near zero, and no step is larger than
        // a 425 Hz sine's at this level allows.
        assert!(s[0].unsigned_abs() < 50 && s[47_999].unsigned_abs() < 50);
        let max_step = s
            .windows(2)
            .map(|w| (w[1] - w[0]).unsigned_abs())
            .max()
            .unwrap();
        let peak = 32767.0 * 10f64.powf(-16.0 / 20.0);
        assert!(f64::from(max_step) <= peak * TAU * 425.0 / 48_000.0 + 2.0);
    }

    #[test]
    fn an_empty_or_silent_cadence_is_silence_and_a_bad_frame_is_an_error() {
        let mut empty = CadenceSource::new(Cadence {
            segments: Vec::new(),
            level_dbfs: 0.0,
        });
        let mut f = vec![1i16; FRAME_SAMPLES];
        assert_eq!(empty.read_frame(&mut f).unwrap(), SourceStatus::Audio);
        assert!(f.iter().all(|&s| s == 0));
        let mut zero = CadenceSource::new(Cadence {
            segments: vec![Segment::tone(0, &[1000.0]), Segment::pause(0)],
            level_dbfs: 0.0,
        });
        zero.read_frame(&mut f).unwrap();
        assert!(f.iter().all(|&s| s == 0));
        let mut short = vec![0i16; 10];
        assert!(
            CadenceSource::new(Cadence::ring())
                .read_frame(&mut short)
                .is_err()
        );
    }

    #[test]
    fn goertzel_finds_a_sine() {
        let s = render(
            Cadence {
                segments: vec![Segment::tone(1000, &[1000.0])],
                level_dbfs: 0.0,
            },
            1.0,
        );
        let p = goertzel_power(&s[960..47_040], 1000.0);
        assert!((p - 0.25).abs() < 0.02, "{p}");
        assert!(goertzel_power(&s[960..47_040], 1200.0) < 1e-4);
        assert_eq!(goertzel_power(&[], 1000.0), 0.0);
    }
}
