//! Plays a source into a sink in real time, one frame every 20 ms, until told to stop, then
//! hands the sink back: a ring tone on the ring device, or ring-back on a call's speaker
//! before its media session takes the speaker over.
//!
//! ```no_run
//! # async fn demo() {
//! use tincan_media::device::NullSink;
//! use tincan_media::driver::player::TonePlayer;
//! use tincan_media::tones::{Cadence, CadenceSource};
//!
//! let ringback = TonePlayer::spawn(
//!     Box::new(CadenceSource::new(Cadence::ringback_etsi())),
//!     Box::new(NullSink::new()),
//! );
//! // ... the callee answers: the speaker goes to the call.
//! let speaker = ringback.stop().await;
//! # let _ = speaker; }
//! ```

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::FRAME_PERIOD;
use crate::codec::FRAME_SAMPLES;
use crate::device::{AudioSink, AudioSource, SourceStatus};

/// A running player (a task of the tokio runtime it was spawned on).
pub struct TonePlayer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Box<dyn AudioSink>>,
}

impl std::fmt::Debug for TonePlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonePlayer").finish_non_exhaustive()
    }
}

impl TonePlayer {
    /// Starts playing `source` into `sink`: a frame now, then one every
    /// [`FRAME_PERIOD`] (a late tick is caught up, as the media driver does, so a real
    /// device does not run dry). A source that ends leaves the sink quiet (nothing more is
    /// written); a failing sink is tried again on the next frame (a real device reopens).
    pub fn spawn(source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) -> TonePlayer {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(play(source, sink, stopped));
        TonePlayer { stop, task }
    }

    /// Stops playing and gives the sink back (not finished: it goes on being used). `None`
    /// only when the task was cancelled (its runtime shut down) or panicked.
    pub async fn stop(self) -> Option<Box<dyn AudioSink>> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}

async fn play(
    mut source: Box<dyn AudioSource>,
    mut sink: Box<dyn AudioSink>,
    mut stopped: oneshot::Receiver<()>,
) -> Box<dyn AudioSink> {
    let mut tick = tokio::time::interval(FRAME_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut ended = false;
    loop {
        tokio::select! {
            biased;
            // Stopped, or the player dropped: the sink is handed back (or dropped).
            _ = &mut stopped => return sink,
            _ = tick.tick(), if !ended => {
                match source.read_frame(&mut frame) {
                    Ok(SourceStatus::Ended) | Err(_) => {
                        ended = true;
                        continue;
                    }
                    Ok(_) => {}
                }
                // A device error is the device's to report (it reopens by itself); the
                // tone is a courtesy and goes on.
                let _ = sink.write_frame(&frame);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::device::{DeviceError, ToneSource};

    /// Keeps every frame written.
    struct Capture(Arc<Mutex<Vec<Vec<i16>>>>);

    impl AudioSink for Capture {
        fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
            self.0.lock().unwrap().push(frame.to_vec());
            Ok(())
        }
    }

    /// Waits (up to 20 s: a loaded machine) until `frames` holds at least `n` frames.
    async fn wait_for(frames: &Arc<Mutex<Vec<Vec<i16>>>>, n: usize) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while frames.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the player wrote frames");
    }

    #[tokio::test]
    async fn plays_until_stopped_and_gives_the_sink_back() {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let player = TonePlayer::spawn(
            Box::new(ToneSource::new(1000.0, -6.0)),
            Box::new(Capture(Arc::clone(&frames))),
        );
        wait_for(&frames, 10).await;
        let mut sink = player.stop().await.expect("the player ran");
        let n = frames.lock().unwrap().len();
        assert!(
            frames
                .lock()
                .unwrap()
                .iter()
                .all(|f| f.iter().any(|&s| s != 0))
        );
        // The sink still works, and nothing plays into it any more.
        sink.write_frame(&[0; FRAME_SAMPLES]).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(frames.lock().unwrap().len(), n + 1);
    }

    #[tokio::test]
    async fn a_source_that_ends_leaves_the_sink_quiet() {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let player = TonePlayer::spawn(
            Box::new(ToneSource::new(1000.0, -6.0).with_frames(3)),
            Box::new(Capture(Arc::clone(&frames))),
        );
        wait_for(&frames, 3).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(frames.lock().unwrap().len(), 3);
        assert!(player.stop().await.is_some());
    }
}
