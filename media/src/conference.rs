//! A local three-way conference: the person at this phone and two calls, each party hearing
//! the other two and never itself.
//!
//! Two layers, as everywhere in this crate:
//! - [`Mixer`] is the pure part: it sums 20 ms frames of 48 kHz audio with saturation, each
//!   output leaving out its own leg's input. No clock, no thread, no allocation per frame.
//! - [`ConferenceBus`] is the thin shared part for the driver: it wraps the local devices
//!   (microphone and speaker) and hands out four adapters, an [`AudioSource`] and an
//!   [`AudioSink`] for each of the two calls' media sessions. The sessions run in their own
//!   tasks on their own 20 ms ticks; the adapters exchange frames through lock-free rings
//!   (no lock, no allocation per frame). Call A's adapters do the local I/O: A's source reads
//!   the microphone, A's sink plays the speaker.
//!
//! ```
//! use tincan_media::codec::FRAME_SAMPLES;
//! use tincan_media::conference::{Leg, Mixer};
//!
//! let mut mixer = Mixer::new();
//! let local = vec![1000i16; FRAME_SAMPLES];
//! let a = vec![200i16; FRAME_SAMPLES];
//! let b = vec![30i16; FRAME_SAMPLES];
//! mixer.mix(&local, &a, &b);
//! assert_eq!(mixer.output(Leg::A)[0], 1030); // A hears the local person and B
//! assert_eq!(mixer.output(Leg::Local)[0], 230); // the speaker plays A and B
//! ```

use crate::codec::FRAME_SAMPLES;
use crate::device::{AudioSink, AudioSource, DeviceError, SourceStatus};

/// One party of a three-way conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The person at this phone (microphone in, speaker out).
    Local,
    /// The first call.
    A,
    /// The second call.
    B,
}

impl Leg {
    fn index(self) -> usize {
        match self {
            Leg::Local => 0,
            Leg::A => 1,
            Leg::B => 2,
        }
    }
}

/// Adds `input` to `acc` sample by sample, saturating at the `i16` range.
///
/// Both slices should have the same length; extra samples of the longer one are left alone.
pub fn add_saturating(acc: &mut [i16], input: &[i16]) {
    for (a, &x) in acc.iter_mut().zip(input) {
        *a = a.saturating_add(x);
    }
}

/// The three-way mix of one 20 ms frame: each leg's output is the sum of the two other legs'
/// inputs, saturated to the `i16` range (own-voice exclusion: a leg never hears itself).
///
/// Owns its three output frames, allocated once in [`new`](Self::new).
#[derive(Debug, Clone)]
pub struct Mixer {
    outputs: [Box<[i16]>; 3],
}

impl Default for Mixer {
    fn default() -> Self {
        Self::new()
    }
}

impl Mixer {
    /// A mixer for frames of [`FRAME_SAMPLES`] samples.
    pub fn new() -> Mixer {
        let frame = || vec![0i16; FRAME_SAMPLES].into_boxed_slice();
        Mixer {
            outputs: [frame(), frame(), frame()],
        }
    }

    /// Mixes one frame of each leg. Inputs shorter than [`FRAME_SAMPLES`] count as silence
    /// past their end; longer ones are cut.
    pub fn mix(&mut self, local: &[i16], a: &[i16], b: &[i16]) {
        let inputs = [local, a, b];
        for (leg, out) in self.outputs.iter_mut().enumerate() {
            out.fill(0);
            for (other, input) in inputs.iter().enumerate() {
                if other != leg {
                    add_saturating(out, input);
                }
            }
        }
    }

    /// What `leg` hears after the last [`mix`](Self::mix): the two others.
    pub fn output(&self, leg: Leg) -> &[i16] {
        &self.outputs[leg.index()]
    }
}

/// How many 20 ms frames a ring between two legs holds; a frame arriving at a full ring is
/// dropped (the two calls' ticks drift apart by at most this much: 80 ms).
pub const RING_FRAMES: usize = 4;

type Producer = rtrb::Producer<i16>;
type Consumer = rtrb::Consumer<i16>;

fn ring() -> (Producer, Consumer) {
    rtrb::RingBuffer::new(RING_FRAMES * FRAME_SAMPLES)
}

/// Writes a frame into a ring, dropping it when the ring is full.
fn push(ring: &mut Producer, frame: &[i16]) {
    if let Ok(chunk) = ring.write_chunk_uninit(frame.len()) {
        chunk.fill_from_iter(frame.iter().copied());
    }
}

/// Reads a frame from a ring into `into`; silence when none is there yet.
fn pull(ring: &mut Consumer, into: &mut [i16]) {
    match ring.read_chunk(into.len()) {
        Ok(chunk) => {
            let (x, y) = chunk.as_slices();
            into[..x.len()].copy_from_slice(x);
            into[x.len()..].copy_from_slice(y);
            chunk.commit_all();
        }
        Err(_) => into.fill(0),
    }
}

fn frame() -> Box<[i16]> {
    vec![0i16; FRAME_SAMPLES].into_boxed_slice()
}

/// The shared piece of a conference: takes the local devices and gives out the two calls'
/// adapters (see the [module documentation](self)).
pub struct ConferenceBus {
    /// Call A's outgoing audio: the microphone plus B.
    pub source_a: ConferenceSource,
    /// Call A's received audio: to the speaker (with B) and into B's outgoing audio.
    pub sink_a: ConferenceSink,
    /// Call B's outgoing audio: the microphone plus A.
    pub source_b: ConferenceSource,
    /// Call B's received audio: to the speaker and into A's outgoing audio.
    pub sink_b: ConferenceSink,
}

impl std::fmt::Debug for ConferenceBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConferenceBus")
    }
}

impl ConferenceBus {
    /// Wires the local microphone and speaker into a conference of two calls.
    pub fn new(microphone: Box<dyn AudioSource>, speaker: Box<dyn AudioSink>) -> ConferenceBus {
        let (local_to_b, from_local) = ring();
        let (a_to_b, from_a) = ring();
        let (b_to_a, from_b_for_a) = ring();
        let (b_to_local, from_b_for_local) = ring();
        ConferenceBus {
            source_a: ConferenceSource(SourceLeg::A {
                microphone,
                to_b: local_to_b,
                from_b: from_b_for_a,
                mic: frame(),
                other: frame(),
            }),
            sink_a: ConferenceSink(SinkLeg::A {
                speaker,
                to_b: a_to_b,
                from_b: from_b_for_local,
                other: frame(),
                out: frame(),
            }),
            source_b: ConferenceSource(SourceLeg::B {
                from_local,
                from_a,
                other: frame(),
            }),
            sink_b: ConferenceSink(SinkLeg::B {
                to_a: b_to_a,
                to_local: b_to_local,
            }),
        }
    }
}

enum SourceLeg {
    A {
        microphone: Box<dyn AudioSource>,
        to_b: Producer,
        from_b: Consumer,
        mic: Box<[i16]>,
        other: Box<[i16]>,
    },
    B {
        from_local: Consumer,
        from_a: Consumer,
        other: Box<[i16]>,
    },
    /// The microphone was taken back with [`AudioSource::take_wrapped`].
    Detached,
}

/// A call's outgoing audio in a conference: the local person plus the other call.
pub struct ConferenceSource(SourceLeg);

impl std::fmt::Debug for ConferenceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConferenceSource")
    }
}

impl AudioSource for ConferenceSource {
    fn read_frame(&mut self, out: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        crate::device::check_frame(out.len())?;
        match &mut self.0 {
            SourceLeg::A {
                microphone,
                to_b,
                from_b,
                mic,
                other,
            } => {
                let result = match microphone.read_frame(mic) {
                    Ok(SourceStatus::Ended) => {
                        mic.fill(0);
                        Ok(SourceStatus::Audio)
                    }
                    Ok(_) => Ok(SourceStatus::Audio),
                    Err(e) => {
                        mic.fill(0);
                        Err(e)
                    }
                };
                push(to_b, mic);
                pull(from_b, other);
                out.copy_from_slice(mic);
                add_saturating(out, other);
                // A device error is reported once the frame is sent on to B.
                result
            }
            SourceLeg::B {
                from_local,
                from_a,
                other,
            } => {
                pull(from_local, out);
                pull(from_a, other);
                add_saturating(out, other);
                Ok(SourceStatus::Audio)
            }
            SourceLeg::Detached => {
                out.fill(0);
                Ok(SourceStatus::Audio)
            }
        }
    }

    fn take_wrapped(&mut self) -> Option<Box<dyn AudioSource>> {
        match std::mem::replace(&mut self.0, SourceLeg::Detached) {
            SourceLeg::A { microphone, .. } => Some(microphone),
            other => {
                self.0 = other;
                None
            }
        }
    }
}

enum SinkLeg {
    A {
        speaker: Box<dyn AudioSink>,
        to_b: Producer,
        from_b: Consumer,
        other: Box<[i16]>,
        out: Box<[i16]>,
    },
    B {
        to_a: Producer,
        to_local: Producer,
    },
    /// The speaker was taken back with [`AudioSink::take_wrapped`].
    Detached,
}

/// A call's received audio in a conference: to the speaker and to the other call.
pub struct ConferenceSink(SinkLeg);

impl std::fmt::Debug for ConferenceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConferenceSink")
    }
}

impl AudioSink for ConferenceSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        crate::device::check_frame(frame.len())?;
        match &mut self.0 {
            SinkLeg::A {
                speaker,
                to_b,
                from_b,
                other,
                out,
            } => {
                push(to_b, frame);
                pull(from_b, other);
                out.copy_from_slice(frame);
                add_saturating(out, other);
                speaker.write_frame(out)
            }
            SinkLeg::B { to_a, to_local } => {
                push(to_a, frame);
                push(to_local, frame);
                Ok(())
            }
            SinkLeg::Detached => Ok(()),
        }
    }

    fn take_wrapped(&mut self) -> Option<Box<dyn AudioSink>> {
        match std::mem::replace(&mut self.0, SinkLeg::Detached) {
            SinkLeg::A { speaker, .. } => Some(speaker),
            other => {
                self.0 = other;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: i16) -> Vec<i16> {
        vec![v; FRAME_SAMPLES]
    }

    #[test]
    fn each_leg_hears_the_two_others() {
        let mut m = Mixer::new();
        m.mix(&f(1), &f(10), &f(100));
        assert!(m.output(Leg::Local).iter().all(|&s| s == 110));
        assert!(m.output(Leg::A).iter().all(|&s| s == 101));
        assert!(m.output(Leg::B).iter().all(|&s| s == 11));
    }

    #[test]
    fn own_voice_is_left_out() {
        let mut m = Mixer::new();
        m.mix(&f(0), &f(5000), &f(0));
        assert!(m.output(Leg::A).iter().all(|&s| s == 0));
        assert!(m.output(Leg::Local).iter().all(|&s| s == 5000));
        assert!(m.output(Leg::B).iter().all(|&s| s == 5000));
    }

    #[test]
    fn sums_saturate() {
        let mut m = Mixer::new();
        m.mix(&f(30000), &f(30000), &f(-30000));
        assert!(m.output(Leg::B).iter().all(|&s| s == i16::MAX));
        assert!(m.output(Leg::A).iter().all(|&s| s == 0));
        m.mix(&f(-30000), &f(-30000), &f(0));
        assert!(m.output(Leg::B).iter().all(|&s| s == i16::MIN));
    }

    #[test]
    fn short_inputs_count_as_silence() {
        let mut m = Mixer::new();
        m.mix(&[7, 7], &f(1), &[]);
        assert_eq!(&m.output(Leg::B)[..3], &[8, 8, 1]);
        assert_eq!(m.output(Leg::B).len(), FRAME_SAMPLES);
    }

    struct Constant(i16);
    impl AudioSource for Constant {
        fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
            frame.fill(self.0);
            Ok(SourceStatus::Audio)
        }
    }

    #[derive(Clone, Default)]
    struct Last(std::sync::Arc<std::sync::Mutex<i16>>);
    impl AudioSink for Last {
        fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
            *self.0.lock().unwrap() = frame[0];
            Ok(())
        }
    }

    #[test]
    fn the_bus_routes_each_party_to_the_two_others() {
        let speaker = Last::default();
        let mut bus = ConferenceBus::new(Box::new(Constant(1)), Box::new(speaker.clone()));
        let mut out = f(0);
        // Two rounds: the rings carry the first round's frames to the second.
        for _ in 0..2 {
            bus.source_a.read_frame(&mut out).unwrap();
            assert_eq!(out[0] & 1, 1, "A hears the microphone");
            bus.sink_a.write_frame(&f(10)).unwrap();
            bus.sink_b.write_frame(&f(100)).unwrap();
            bus.source_b.read_frame(&mut out).unwrap();
        }
        assert_eq!(out[0], 11, "B hears the microphone and A");
        bus.source_a.read_frame(&mut out).unwrap();
        assert_eq!(out[0], 101, "A hears the microphone and B");
        bus.sink_a.write_frame(&f(10)).unwrap();
        assert_eq!(*speaker.0.lock().unwrap(), 110, "the speaker plays A and B");
    }

    #[test]
    fn the_local_devices_come_back() {
        let mut bus = ConferenceBus::new(Box::new(Constant(3)), Box::new(Last::default()));
        assert!(bus.source_b.take_wrapped().is_none());
        assert!(bus.sink_b.take_wrapped().is_none());
        let mut mic = bus.source_a.take_wrapped().expect("A holds the microphone");
        assert!(bus.sink_a.take_wrapped().is_some());
        let mut out = f(0);
        mic.read_frame(&mut out).unwrap();
        assert_eq!(out[0], 3);
        bus.source_a.read_frame(&mut out).unwrap();
        assert_eq!(out[0], 0);
        assert!(bus.sink_a.write_frame(&out).is_ok());
    }
}
