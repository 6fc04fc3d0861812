//! An in-memory loopback device: what is written to the sink is read from the source,
//! through a lock-free ring (either half can move to another thread).

use super::{AudioSink, AudioSource, DeviceError, SourceStatus, check_frame};
use crate::codec::FRAME_SAMPLES;

/// Builds a connected sink and source.
#[derive(Debug)]
pub struct LoopbackDevice {
    sink: LoopbackSink,
    source: LoopbackSource,
}

impl LoopbackDevice {
    /// A loopback holding up to `frames` frames of 20 ms.
    pub fn new(frames: usize) -> LoopbackDevice {
        let (producer, consumer) = rtrb::RingBuffer::new(frames.max(1) * FRAME_SAMPLES);
        LoopbackDevice {
            sink: LoopbackSink {
                producer,
                dropped: 0,
            },
            source: LoopbackSource { consumer },
        }
    }

    /// The two halves.
    pub fn split(self) -> (LoopbackSink, LoopbackSource) {
        (self.sink, self.source)
    }
}

/// The writing half of a [`LoopbackDevice`].
#[derive(Debug)]
pub struct LoopbackSink {
    producer: rtrb::Producer<i16>,
    dropped: u64,
}

impl LoopbackSink {
    /// Frames dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl AudioSink for LoopbackSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        check_frame(frame.len())?;
        match self.producer.write_chunk_uninit(frame.len()) {
            Ok(chunk) => {
                chunk.fill_from_iter(frame.iter().copied());
            }
            Err(_) => self.dropped += 1,
        }
        Ok(())
    }
}

/// The reading half of a [`LoopbackDevice`].
#[derive(Debug)]
pub struct LoopbackSource {
    consumer: rtrb::Consumer<i16>,
}

impl AudioSource for LoopbackSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        check_frame(frame.len())?;
        match self.consumer.read_chunk(frame.len()) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                frame[..a.len()].copy_from_slice(a);
                frame[a.len()..].copy_from_slice(b);
                chunk.commit_all();
                Ok(SourceStatus::Audio)
            }
            Err(_) => {
                frame.fill(0);
                Ok(SourceStatus::Underrun)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underrun_and_overflow() {
        let (mut sink, mut source) = LoopbackDevice::new(2).split();
        let mut f = vec![0i16; FRAME_SAMPLES];
        assert_eq!(source.read_frame(&mut f).unwrap(), SourceStatus::Underrun);
        for i in 0..3 {
            sink.write_frame(&vec![i as i16; FRAME_SAMPLES]).unwrap();
        }
        assert_eq!(sink.dropped(), 1);
        source.read_frame(&mut f).unwrap();
        assert_eq!(f[0], 0);
        source.read_frame(&mut f).unwrap();
        assert_eq!(f[0], 1);
        assert!(sink.write_frame(&[0; 5]).is_err());
    }
}
