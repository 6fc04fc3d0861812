//! Null devices: silence in, discard out (headless use and tests).

use super::{AudioSink, AudioSource, DeviceError, SourceStatus, check_frame};

/// A source of silence.
#[derive(Debug, Clone, Default)]
pub struct NullSource;

impl NullSource {
    /// A new silent source.
    pub fn new() -> NullSource {
        NullSource
    }
}

impl AudioSource for NullSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        check_frame(frame.len())?;
        frame.fill(0);
        Ok(SourceStatus::Audio)
    }
}

/// A sink that discards audio, counting frames.
#[derive(Debug, Clone, Default)]
pub struct NullSink {
    frames: u64,
}

impl NullSink {
    /// A new sink.
    pub fn new() -> NullSink {
        NullSink::default()
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl AudioSink for NullSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        check_frame(frame.len())?;
        self.frames += 1;
        Ok(())
    }
}
