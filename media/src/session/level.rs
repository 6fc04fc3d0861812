//! Level meters: the peak and RMS level of the audio a session captured (before encoding) and
//! played out, over a window of frames, for a UI's bar meters ([`super::MediaEvent::Levels`]).
//!
//! Metering a frame is one pass over its samples with integer arithmetic (a running peak and a
//! sum of squares); the logarithms are taken once per window, when the level is read. Nothing
//! is allocated.
//!
//! ```
//! use tincan_media::session::{Level, LevelMeter};
//! let mut meter = LevelMeter::default();
//! meter.add(&[16384, -16384, 16384, -16384]);
//! let level = meter.take();
//! assert!((level.peak_dbfs - -6.02).abs() < 0.01);
//! assert!((level.rms_dbfs - -6.02).abs() < 0.01);
//! assert_eq!(meter.take(), Level::SILENT);
//! ```

use std::time::Duration;

/// How often a session reports [`super::MediaEvent::Levels`]: every 200 ms of playout (5 Hz,
/// what a bar meter needs; a VU meter's integration time is 300 ms).
pub const LEVEL_INTERVAL: Duration = Duration::from_millis(200);

/// The level of digital silence: the bottom of a 16-bit sample's range (20 log10(1/32768) is
/// -90.3 dBFS; a little lower, so that the quietest non-zero signal is above it).
pub const LEVEL_FLOOR_DBFS: f32 = -96.0;

/// Full scale of a 16-bit sample.
const FULL_SCALE: f64 = 32768.0;

/// The level of a stretch of audio, in dB relative to full scale (0 dBFS is the loudest a
/// 16-bit sample can be; a full-scale sine has an RMS of -3 dBFS). Never below
/// [`LEVEL_FLOOR_DBFS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// The largest sample's magnitude.
    pub peak_dbfs: f32,
    /// The root mean square of the samples.
    pub rms_dbfs: f32,
}

impl Level {
    /// Digital silence (or no audio at all).
    pub const SILENT: Level = Level {
        peak_dbfs: LEVEL_FLOOR_DBFS,
        rms_dbfs: LEVEL_FLOOR_DBFS,
    };
}

impl Default for Level {
    fn default() -> Self {
        Level::SILENT
    }
}

/// Accumulates frames of PCM until [`LevelMeter::take`] reads their level.
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelMeter {
    peak: u16,
    sum_squares: u64,
    samples: u64,
}

impl LevelMeter {
    /// Adds a frame of samples.
    pub fn add(&mut self, pcm: &[i16]) {
        let mut peak = self.peak;
        let mut sum = 0u64;
        for &s in pcm {
            peak = peak.max(s.unsigned_abs());
            // At most 2^30 per sample: a frame's sum cannot overflow 64 bits.
            sum += u64::from(s.unsigned_abs()) * u64::from(s.unsigned_abs());
        }
        self.peak = peak;
        self.sum_squares = self.sum_squares.saturating_add(sum);
        self.samples = self.samples.saturating_add(pcm.len() as u64);
    }

    /// The level of everything added since the last call, and starts again.
    pub fn take(&mut self) -> Level {
        let meter = std::mem::take(self);
        if meter.samples == 0 || meter.peak == 0 {
            return Level::SILENT;
        }
        let peak = 20.0 * (f64::from(meter.peak) / FULL_SCALE).log10();
        let mean_square = meter.sum_squares as f64 / meter.samples as f64;
        let rms = 10.0 * (mean_square / (FULL_SCALE * FULL_SCALE)).log10();
        Level {
            peak_dbfs: (peak as f32).max(LEVEL_FLOOR_DBFS),
            rms_dbfs: (rms as f32).max(LEVEL_FLOOR_DBFS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_peaks_at_0_and_rms_at_minus_3() {
        let mut meter = LevelMeter::default();
        let sine: Vec<i16> = (0..960)
            .map(|i| {
                (32767.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 48_000.0).sin())
                    as i16
            })
            .collect();
        meter.add(&sine);
        let level = meter.take();
        assert!(
            level.peak_dbfs > -0.01 && level.peak_dbfs <= 0.0,
            "{level:?}"
        );
        assert!((level.rms_dbfs - -3.01).abs() < 0.05, "{level:?}");
    }

    #[test]
    fn extremes_do_not_overflow_and_silence_is_the_floor() {
        let mut meter = LevelMeter::default();
        meter.add(&[i16::MIN; 960]);
        let level = meter.take();
        assert_eq!(level.peak_dbfs, 0.0);
        assert_eq!(level.rms_dbfs, 0.0);
        meter.add(&[0; 960]);
        assert_eq!(meter.take(), Level::SILENT);
        meter.add(&[1, 0, 0, 0]);
        let quiet = meter.take();
        assert!(quiet.peak_dbfs > LEVEL_FLOOR_DBFS && quiet.peak_dbfs < -90.0);
        assert_eq!(quiet.rms_dbfs.max(LEVEL_FLOOR_DBFS), quiet.rms_dbfs);
        assert_eq!(LevelMeter::default().take(), Level::SILENT);
    }
}
