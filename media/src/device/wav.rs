//! WAV file devices (through the `hound` crate).
//!
//! [`WavSource`] reads integer (8 to 32 bit) or float PCM at any rate and channel count and
//! converts to 48 kHz mono (channels averaged, resampled). [`WavSink`] writes 16-bit PCM,
//! 48 kHz mono by default or at another rate and channel count.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::{AudioSink, AudioSource, DeviceError, SourceStatus, check_frame, f32_to_i16};
use crate::SAMPLE_RATE;
use crate::codec::FRAME_SAMPLES;
use crate::resample::Resampler;

/// Reads a WAV file as 20 ms frames of 48 kHz mono.
#[derive(Debug)]
pub struct WavSource {
    /// The whole file, converted (voice-length files: a minute is 5.8 MB).
    samples: Vec<i16>,
    position: usize,
    spec: hound::WavSpec,
    /// Starts again at the end (a ring tone).
    looping: bool,
}

impl WavSource {
    /// Opens and converts a file.
    pub fn open(path: impl AsRef<Path>) -> Result<WavSource, DeviceError> {
        let reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(DeviceError::WavFormat("zero channels or sample rate"));
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>()?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1i64 << (spec.bits_per_sample - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()?
            }
        };
        let channels = usize::from(spec.channels);
        let mono: Vec<f32> = interleaved
            .chunks_exact(channels)
            .map(|c| c.iter().sum::<f32>() / channels as f32)
            .collect();
        let mut resampled =
            Vec::with_capacity(mono.len() * SAMPLE_RATE as usize / spec.sample_rate as usize + 1);
        let mut resampler = Resampler::new(spec.sample_rate, SAMPLE_RATE);
        resampler.process_f32(&mono, &mut resampled);
        // Flush the filter's delay line so the end of the file is not cut.
        if spec.sample_rate != SAMPLE_RATE {
            let tail = vec![0.0f32; (spec.sample_rate / 100) as usize];
            resampler.process_f32(&tail, &mut resampled);
        }
        Ok(WavSource {
            samples: resampled.into_iter().map(f32_to_i16).collect(),
            position: 0,
            spec,
            looping: false,
        })
    }

    /// Plays the file again and again instead of ending (a ring tone from a file). A file
    /// with no audio still ends.
    pub fn looped(mut self) -> WavSource {
        self.looping = true;
        self
    }

    /// The file's original format.
    pub fn spec(&self) -> hound::WavSpec {
        self.spec
    }

    /// The number of 48 kHz samples the file converts to.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the file holds no audio.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

impl AudioSource for WavSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        check_frame(frame.len())?;
        if self.looping && !self.samples.is_empty() {
            let mut filled = 0;
            while filled < frame.len() {
                if self.position == self.samples.len() {
                    self.position = 0;
                }
                let n = (self.samples.len() - self.position).min(frame.len() - filled);
                frame[filled..filled + n]
                    .copy_from_slice(&self.samples[self.position..self.position + n]);
                filled += n;
                self.position += n;
            }
            return Ok(SourceStatus::Audio);
        }
        let left = self.samples.len() - self.position;
        if left == 0 {
            frame.fill(0);
            return Ok(SourceStatus::Ended);
        }
        let n = left.min(FRAME_SAMPLES);
        frame[..n].copy_from_slice(&self.samples[self.position..self.position + n]);
        frame[n..].fill(0);
        self.position += n;
        Ok(SourceStatus::Audio)
    }
}

/// Writes 20 ms frames to a 16-bit PCM WAV file.
pub struct WavSink {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    resampler: Resampler,
    channels: u16,
    scratch: Vec<i16>,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("rate", &self.resampler.to_rate())
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl WavSink {
    /// Creates a 48 kHz mono file.
    pub fn create(path: impl AsRef<Path>) -> Result<WavSink, DeviceError> {
        WavSink::create_with(path, SAMPLE_RATE, 1)
    }

    /// Creates a file at another rate or channel count (the mono signal is copied to each
    /// channel).
    pub fn create_with(
        path: impl AsRef<Path>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<WavSink, DeviceError> {
        if sample_rate == 0 || channels == 0 {
            return Err(DeviceError::WavUnsupported("zero channels or sample rate"));
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavSink {
            writer: Some(hound::WavWriter::create(path, spec)?),
            resampler: Resampler::new(SAMPLE_RATE, sample_rate),
            channels,
            scratch: Vec::with_capacity(FRAME_SAMPLES * 2),
        })
    }
}

impl AudioSink for WavSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        check_frame(frame.len())?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(DeviceError::Io(std::io::Error::other(
                "wav sink already finished",
            )));
        };
        self.scratch.clear();
        self.resampler.process(frame, &mut self.scratch);
        for &s in &self.scratch {
            for _ in 0..self.channels {
                writer.write_sample(s)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), DeviceError> {
        if let Some(writer) = self.writer.take() {
            writer.finalize()?;
        }
        Ok(())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::ToneSource;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tincan-media-{}-{name}", std::process::id()))
    }

    #[test]
    fn write_then_read_back_48k() {
        let path = temp("rt48.wav");
        let mut tone = ToneSource::new(440.0, -6.0);
        let mut sink = WavSink::create(&path).unwrap();
        let mut frames = Vec::new();
        let mut f = vec![0i16; FRAME_SAMPLES];
        for _ in 0..10 {
            tone.read_frame(&mut f).unwrap();
            sink.write_frame(&f).unwrap();
            frames.extend_from_slice(&f);
        }
        sink.finish().unwrap();
        let mut src = WavSource::open(&path).unwrap();
        assert_eq!(src.len(), FRAME_SAMPLES * 10);
        let mut back = Vec::new();
        while src.read_frame(&mut f).unwrap() == SourceStatus::Audio {
            back.extend_from_slice(&f);
        }
        assert_eq!(back, frames);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn stereo_8k_is_converted_to_48k_mono() {
        let path = temp("st8.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..8000 {
            let v = (8000.0 * (TAU_F * 500.0 * i as f64 / 8000.0).sin()) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let src = WavSource::open(&path).unwrap();
        // One second at 48 kHz, plus the 10 ms flush.
        assert!(
            (48_000..=48_000 + 480).contains(&src.len()),
            "{}",
            src.len()
        );
        let rms = (src.samples[4800..43_200]
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / 38_400.0)
            .sqrt();
        assert!((rms - 8000.0 / 2f64.sqrt()).abs() < 150.0, "rms {rms}");
        std::fs::remove_file(path).ok();
    }

    const TAU_F: f64 = std::f64::consts::TAU;

    #[test]
    fn a_looped_file_starts_again_at_its_end() {
        let path = temp("loop.wav");
        let mut sink = WavSink::create(&path).unwrap();
        // A file of one frame counting up, 0 to 959.
        let ramp: Vec<i16> = (0..1440).collect();
        let mut f = vec![0i16; FRAME_SAMPLES];
        f.copy_from_slice(&ramp[..FRAME_SAMPLES]);
        sink.write_frame(&f).unwrap();
        sink.finish().unwrap();
        let mut src = WavSource::open(&path).unwrap().looped();
        let mut played = Vec::new();
        for _ in 0..3 {
            assert_eq!(src.read_frame(&mut f).unwrap(), SourceStatus::Audio);
            played.extend_from_slice(&f);
        }
        let expected: Vec<i16> = (0..3).flat_map(|_| 0..960).collect();
        assert_eq!(played, expected);
        std::fs::remove_file(&path).ok();

        // A length that is not a whole number of frames (1.5) wraps inside a frame.
        let mut odd = WavSource {
            samples: ramp,
            position: 0,
            spec: src.spec(),
            looping: true,
        };
        odd.read_frame(&mut f).unwrap();
        odd.read_frame(&mut f).unwrap();
        assert_eq!(&f[..480], &(960..1440).collect::<Vec<i16>>()[..]);
        assert_eq!(&f[480..], &(0..480).collect::<Vec<i16>>()[..]);

        let mut empty = WavSource {
            samples: Vec::new(),
            position: 0,
            spec: src.spec(),
            looping: true,
        };
        assert_eq!(empty.read_frame(&mut f).unwrap(), SourceStatus::Ended);
    }

    #[test]
    fn missing_file_is_an_io_error() {
        assert!(matches!(
            WavSource::open("/nonexistent/x.wav"),
            Err(DeviceError::Io(_))
        ));
    }
}
