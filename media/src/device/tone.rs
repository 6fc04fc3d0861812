//! Signal generators: a sine tone and a voice-like test signal.

use std::f64::consts::TAU;

use super::{AudioSource, DeviceError, SourceStatus, check_frame};
use crate::SAMPLE_RATE;

/// Converts dBFS (0 = a full-scale sine's peak) to a peak amplitude.
fn peak_for_dbfs(dbfs: f64) -> f64 {
    32767.0 * 10f64.powf(dbfs / 20.0)
}

/// A sine tone at a given frequency and level, optionally for a limited time.
#[derive(Debug, Clone)]
pub struct ToneSource {
    frequency: f64,
    peak: f64,
    phase: f64,
    frames_left: Option<u64>,
}

impl ToneSource {
    /// A tone of `frequency` Hz whose peak is `dbfs` below full scale (e.g. -12.0).
    pub fn new(frequency: f64, dbfs: f64) -> ToneSource {
        ToneSource {
            frequency,
            peak: peak_for_dbfs(dbfs),
            phase: 0.0,
            frames_left: None,
        }
    }

    /// Ends the tone after `frames` frames of 20 ms.
    pub fn with_frames(mut self, frames: u64) -> ToneSource {
        self.frames_left = Some(frames);
        self
    }
}

impl AudioSource for ToneSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        check_frame(frame.len())?;
        if let Some(left) = self.frames_left.as_mut() {
            if *left == 0 {
                frame.fill(0);
                return Ok(SourceStatus::Ended);
            }
            *left -= 1;
        }
        let step = TAU * self.frequency / f64::from(SAMPLE_RATE);
        for s in frame.iter_mut() {
            *s = (self.peak * self.phase.sin()).round() as i16;
            self.phase = (self.phase + step) % TAU;
        }
        Ok(SourceStatus::Audio)
    }
}

/// A voice-like test signal: a gliding fundamental (100-180 Hz) with 30 harmonics shaped by
/// two moving formants, syllables at about 4 Hz, and pauses between talkspurts (1.6 s of
/// speech, 0.8 s of silence). Deterministic; for demos and codec/DTX tests.
#[derive(Debug, Clone)]
pub struct VoiceSource {
    peak: f64,
    /// Samples generated so far.
    t: u64,
    /// Phase of the fundamental.
    phase: f64,
}

/// Harmonics in the voice signal.
const HARMONICS: usize = 30;

impl VoiceSource {
    /// A voice-like signal whose loudest peaks are about `dbfs` below full scale.
    pub fn new(dbfs: f64) -> VoiceSource {
        VoiceSource {
            peak: peak_for_dbfs(dbfs),
            t: 0,
            phase: 0.0,
        }
    }
}

impl AudioSource for VoiceSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        check_frame(frame.len())?;
        let rate = f64::from(SAMPLE_RATE);
        for s in frame.iter_mut() {
            let secs = self.t as f64 / rate;
            self.t += 1;
            // Talkspurts of 1.6 s, pauses of 0.8 s.
            let cycle = secs % 2.4;
            if cycle >= 1.6 {
                *s = 0;
                continue;
            }
            // Syllable envelope: raised cosine at ~4 Hz, never quite zero inside a word.
            let syllable = 0.55 - 0.45 * (TAU * 4.1 * cycle).cos();
            // Fade talkspurt edges over 20 ms.
            let edge = (cycle / 0.02).min((1.6 - cycle) / 0.02).min(1.0);
            let f0 = 140.0 + 40.0 * (TAU * 0.7 * secs).sin();
            self.phase = (self.phase + TAU * f0 / rate) % TAU;
            let f1 = 500.0 + 250.0 * (TAU * 3.3 * secs).sin();
            let f2 = 1500.0 + 600.0 * (TAU * 2.1 * secs).cos();
            let mut v = 0.0;
            for h in 1..=HARMONICS {
                let f = f0 * h as f64;
                if f > 7000.0 {
                    break;
                }
                let formant =
                    |center: f64, width: f64| 1.0 / (1.0 + ((f - center) / width).powi(2));
                let gain = (formant(f1, 150.0) + 0.6 * formant(f2, 250.0) + 0.05) / h as f64;
                v += gain * (self.phase * h as f64).sin();
            }
            *s = (self.peak * 0.9 * syllable * edge * v).clamp(-32768.0, 32767.0) as i16;
        }
        Ok(SourceStatus::Audio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FRAME_SAMPLES;

    #[test]
    fn tone_level_and_end() {
        let mut t = ToneSource::new(1000.0, -6.0).with_frames(2);
        let mut f = vec![0i16; FRAME_SAMPLES];
        assert_eq!(t.read_frame(&mut f).unwrap(), SourceStatus::Audio);
        let peak = f.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((16300..=16450).contains(&peak), "peak {peak}");
        t.read_frame(&mut f).unwrap();
        assert_eq!(t.read_frame(&mut f).unwrap(), SourceStatus::Ended);
        assert!(f.iter().all(|&s| s == 0));
    }

    #[test]
    fn voice_has_speech_and_pauses() {
        let mut v = VoiceSource::new(-6.0);
        let mut f = vec![0i16; FRAME_SAMPLES];
        let mut energies = Vec::new();
        for _ in 0..120 {
            v.read_frame(&mut f).unwrap();
            energies.push(f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64);
        }
        let loud = energies.iter().filter(|&&e| e > 1e5).count();
        let silent = energies.iter().filter(|&&e| e == 0.0).count();
        assert!(loud > 40 && silent > 30, "loud {loud} silent {silent}");
        let peak = energies.iter().copied().fold(0.0, f64::max).sqrt();
        assert!(peak < 32767.0 && peak > 1000.0);
    }
}
