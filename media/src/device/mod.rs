//! Audio devices behind two traits, [`AudioSource`] and [`AudioSink`], exchanging 20 ms
//! frames of 48 kHz mono `i16` PCM ([`crate::codec::FRAME_SAMPLES`] samples).
//!
//! - `cpal` (feature `cpal`, on by default): real input and output devices (`CpalSource`,
//!   `CpalSink`, `list_devices`); the audio callback exchanges samples with the caller
//!   through a lock-free single-producer single-consumer ring and never locks or allocates.
//! - [`wav`]: WAV files ([`WavSource`] reads any rate and channel count, [`WavSink`] writes).
//! - [`tone`]: a sine ([`ToneSource`]) and a voice-like test signal ([`VoiceSource`]).
//! - [`null`]: silence in, discard out ([`NullSource`], [`NullSink`]).
//! - [`loopback`]: an in-memory sink -> source pair ([`LoopbackDevice`]).
//!
//! Devices are pulled and pushed by the caller's 20 ms playout clock; real devices run on
//! their own clock, so `CpalSource` reports an [`SourceStatus::Underrun`] (silence) when
//! the device has not delivered a frame yet and drops the oldest audio when it is too far
//! ahead, keeping the latency bounded.
//!
//! ```
//! use tincan_media::codec::FRAME_SAMPLES;
//! use tincan_media::device::{AudioSink, AudioSource, LoopbackDevice, SourceStatus, ToneSource};
//!
//! let mut tone = ToneSource::new(1000.0, -12.0);
//! let (mut sink, mut source) = LoopbackDevice::new(10).split();
//! let mut frame = vec![0i16; FRAME_SAMPLES];
//! tone.read_frame(&mut frame).unwrap();
//! sink.write_frame(&frame).unwrap();
//! let mut back = vec![0i16; FRAME_SAMPLES];
//! assert_eq!(source.read_frame(&mut back).unwrap(), SourceStatus::Audio);
//! assert_eq!(back, frame);
//! ```

#[cfg(feature = "cpal")]
pub mod cpal;
pub mod loopback;
pub mod null;
pub mod tone;
pub mod wav;

#[cfg(feature = "cpal")]
pub use self::cpal::{CpalSink, CpalSource, DeviceInfo, DeviceSelector, list_devices};
pub use loopback::{LoopbackDevice, LoopbackSink, LoopbackSource};
pub use null::{NullSink, NullSource};
pub use tone::{ToneSource, VoiceSource};
pub use wav::{WavSink, WavSource};

use crate::codec::FRAME_SAMPLES;

/// What a source put in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// A frame of audio.
    Audio,
    /// No audio was ready (a device not started yet, or running late): the frame is silence.
    Underrun,
    /// The source has no more audio (end of file): the frame is silence.
    Ended,
}

/// Why a device failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The caller gave a frame of the wrong length (caller misuse).
    #[error("frame has {got} samples, devices exchange {expected}")]
    FrameSize {
        /// [`FRAME_SAMPLES`].
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// File input or output failed.
    #[error("audio file i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A WAV file is malformed.
    #[error("malformed wav file: {0}")]
    WavFormat(&'static str),
    /// A WAV file uses a format we do not read.
    #[error("unsupported wav file: {0}")]
    WavUnsupported(&'static str),
    /// No device matches the selector.
    #[error("no audio device matches {0}")]
    NotFound(String),
    /// The device has no configuration we can use.
    #[error("audio device {device} has no usable configuration: {reason}")]
    NoConfig {
        /// The device.
        device: String,
        /// What the backend said.
        reason: String,
    },
    /// The audio backend (ALSA, PulseAudio...) reported an error.
    #[error("audio backend error ({kind}): {message}")]
    Backend {
        /// The error's class, as the backend names it.
        kind: String,
        /// The backend's message.
        message: String,
    },
    /// The running stream failed (device unplugged, server gone); the device will try to
    /// reopen it on the next calls.
    #[error("audio stream on {device} failed: {message}")]
    StreamFailed {
        /// The device.
        device: String,
        /// The backend's message.
        message: String,
    },
}

impl From<hound::Error> for DeviceError {
    fn from(e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(io) => DeviceError::Io(io),
            hound::Error::FormatError(m) => DeviceError::WavFormat(m),
            hound::Error::Unsupported => DeviceError::WavUnsupported("format"),
            hound::Error::TooWide => DeviceError::WavUnsupported("sample too wide"),
            hound::Error::UnfinishedSample => DeviceError::WavFormat("unfinished sample"),
            hound::Error::InvalidSampleFormat => DeviceError::WavUnsupported("sample format"),
        }
    }
}

/// Where audio comes from (a microphone, a file, a generator).
pub trait AudioSource: Send {
    /// Fills `frame` ([`FRAME_SAMPLES`] samples, 48 kHz mono) with the next 20 ms.
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError>;

    /// Gives back the device this one wraps, if it is an adapter around one (a conference's,
    /// see [`crate::conference`]); afterwards this one reads silence. `None` by default.
    fn take_wrapped(&mut self) -> Option<Box<dyn AudioSource>> {
        None
    }
}

/// Where audio goes (a speaker, a file).
pub trait AudioSink: Send {
    /// Plays (or stores) one frame of [`FRAME_SAMPLES`] samples, 48 kHz mono.
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError>;

    /// Finishes: flushes buffers, completes file headers. Called once at the end; also
    /// done on drop where possible, without error reporting.
    fn finish(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }

    /// Gives back the device this one wraps, if it is an adapter around one (a conference's,
    /// see [`crate::conference`]); afterwards this one drops what it is given. `None` by
    /// default.
    fn take_wrapped(&mut self) -> Option<Box<dyn AudioSink>> {
        None
    }
}

impl<T: AudioSource + ?Sized> AudioSource for Box<T> {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        (**self).read_frame(frame)
    }

    fn take_wrapped(&mut self) -> Option<Box<dyn AudioSource>> {
        (**self).take_wrapped()
    }
}

impl<T: AudioSink + ?Sized> AudioSink for Box<T> {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        (**self).write_frame(frame)
    }

    fn finish(&mut self) -> Result<(), DeviceError> {
        (**self).finish()
    }

    fn take_wrapped(&mut self) -> Option<Box<dyn AudioSink>> {
        (**self).take_wrapped()
    }
}

pub(crate) fn check_frame(len: usize) -> Result<(), DeviceError> {
    if len == FRAME_SAMPLES {
        Ok(())
    } else {
        Err(DeviceError::FrameSize {
            expected: FRAME_SAMPLES,
            got: len,
        })
    }
}

/// Converts a sample in -1.0..1.0 to `i16`, saturating.
pub(crate) fn f32_to_i16(v: f32) -> i16 {
    (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}
