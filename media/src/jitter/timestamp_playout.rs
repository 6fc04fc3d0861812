//! The fallback playout for streams whose packets are not 20 ms long (e.g. 30 ms G.711 from
//! sipp or older PBXes), which the adaptive jitter buffer ([`super::JitterBuffer`]) does not
//! take.
//!
//! A small adaptive playout buffer: packets are filed by (extended) RTP timestamp, decoded in
//! timestamp order into a PCM queue, and playout is pulled one 20 ms frame at a time, so any
//! packet duration (ptime 10, 20, 30, 60 ms...) plays out. The first packet is
//! played `target` frames after it arrived; a packet that comes too late to be played raises
//! the target by one frame (playout pauses one frame: one concealed frame is inserted), and a
//! buffer that has stayed deeper than needed for a while is trimmed by one frame. A missing
//! frame is rebuilt from the next packet's in-band FEC when the codec has it, else concealed.

use std::collections::{BTreeMap, VecDeque};

use crate::codec::comfort_noise::ComfortNoiseGenerator;
use crate::codec::{AudioDecoder, frame_samples_at};

use super::PlayoutCounters;

/// Smallest playout delay, in 20 ms frames.
pub(crate) const MIN_TARGET_FRAMES: u32 = 1;
/// Largest playout delay, in 20 ms frames (200 ms).
pub(crate) const MAX_TARGET_FRAMES: u32 = 10;
/// Initial playout delay, in 20 ms frames (40 ms).
pub(crate) const INITIAL_TARGET_FRAMES: u32 = 2;
/// Frames of steady surplus before the delay shrinks by one frame (2 s).
const SHRINK_AFTER_FRAMES: u32 = 100;

/// What one frame slot holds.
#[derive(Debug, Clone)]
enum Slot {
    Audio(Vec<u8>),
    ComfortNoise(Vec<u8>),
}

pub(crate) struct TimestampPlayout {
    decoder: Box<dyn AudioDecoder>,
    /// The decoder's PCM rate, and its samples per 20 ms frame.
    sample_rate: u32,
    frame_len: usize,
    comfort_noise: ComfortNoiseGenerator,
    clock_rate: u32,
    /// RTP timestamp units per 20 ms frame.
    frame_units: i64,
    /// Timestamp of the first packet of the stream (extended timestamps count from it).
    base_timestamp: Option<u32>,
    /// Extended timestamp of the newest packet filed, for unwrapping.
    last_ts: i64,
    slots: BTreeMap<i64, Slot>,
    /// Extended timestamp of the next media to decode, once playing.
    next_ts: Option<i64>,
    /// Decoded PCM (at `sample_rate`) waiting to be played.
    pcm: VecDeque<i16>,
    scratch: Vec<i16>,
    /// Frames to wait after the first packet before playing.
    target: u32,
    /// Frames waited so far before playing.
    waited: u32,
    surplus_frames: u32,
    /// Conceal one frame without advancing (deepens the buffer after a late packet).
    pause_one: bool,
    /// Whether the last media played was comfort noise (so gaps continue the noise).
    in_comfort_noise: bool,
    counters: PlayoutCounters,
}

impl TimestampPlayout {
    pub(crate) fn new(decoder: Box<dyn AudioDecoder>, clock_rate: u32, seed: u64) -> Self {
        let clock_rate = clock_rate.max(50);
        let sample_rate = decoder.sample_rate();
        let frame_len = frame_samples_at(sample_rate);
        Self {
            decoder,
            sample_rate,
            frame_len,
            comfort_noise: ComfortNoiseGenerator::new(seed),
            clock_rate,
            frame_units: i64::from(clock_rate / 50),
            base_timestamp: None,
            last_ts: 0,
            slots: BTreeMap::new(),
            next_ts: None,
            pcm: VecDeque::with_capacity(frame_len * 4),
            scratch: Vec::with_capacity(frame_len * 6),
            target: INITIAL_TARGET_FRAMES,
            waited: 0,
            surplus_frames: 0,
            pause_one: false,
            in_comfort_noise: false,
            counters: PlayoutCounters::default(),
        }
    }

    /// Forgets the stream (SSRC change, restart, resume); keeps the decoder and counters.
    pub(crate) fn reset(&mut self) {
        self.base_timestamp = None;
        self.last_ts = 0;
        self.slots.clear();
        self.next_ts = None;
        self.pcm.clear();
        self.waited = 0;
        self.in_comfort_noise = false;
    }

    pub(crate) fn counters(&self) -> PlayoutCounters {
        self.counters
    }

    /// The current playout delay target, in frames.
    pub(crate) fn target_frames(&self) -> u32 {
        self.target
    }

    /// The media buffered ahead of the playout point: from the next timestamp to play to the
    /// end of the newest packet (assumed one frame long), plus decoded samples not yet played.
    pub(crate) fn current_delay(&self) -> std::time::Duration {
        let Some(next) = self.next_ts else {
            return std::time::Duration::ZERO;
        };
        let units = (self.last_ts + self.frame_units - next).max(0) as u64;
        let nanos = units * 1_000_000_000 / u64::from(self.clock_rate)
            + self.pcm.len() as u64 * 1_000_000_000 / u64::from(self.sample_rate);
        std::time::Duration::from_nanos(nanos)
    }

    /// Packets buffered ahead of the playout point.
    pub(crate) fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Unwraps a 32-bit timestamp to the extended timeline around the newest one seen.
    fn extend(&mut self, timestamp: u32) -> i64 {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        let delta = i64::from(
            timestamp
                .wrapping_sub(base)
                .wrapping_sub(self.last_ts as u32) as i32,
        );
        self.last_ts + delta
    }

    /// RTP units for `samples` at the PCM rate.
    fn units(&self, samples: usize) -> i64 {
        samples as i64 * i64::from(self.clock_rate) / i64::from(self.sample_rate)
    }

    /// Files an audio packet (already validated RTP of the audio payload type).
    pub(crate) fn push_audio(&mut self, timestamp: u32, payload: &[u8]) {
        self.push(timestamp, Slot::Audio(payload.to_vec()));
    }

    /// Files a comfort-noise packet (RFC 3389).
    pub(crate) fn push_comfort_noise(&mut self, timestamp: u32, payload: &[u8]) {
        self.push(timestamp, Slot::ComfortNoise(payload.to_vec()));
    }

    fn push(&mut self, timestamp: u32, slot: Slot) {
        let ts = self.extend(timestamp);
        if let Some(next) = self.next_ts
            && ts < next
        {
            self.counters.late += 1;
            // Too late: wait one frame longer from now on (up to the maximum).
            if self.target < MAX_TARGET_FRAMES {
                self.target += 1;
                self.pause_one = true;
            }
            return;
        }
        if self.slots.contains_key(&ts) {
            self.counters.duplicates += 1;
            return;
        }
        self.last_ts = self.last_ts.max(ts);
        self.slots.insert(ts, slot);
    }

    /// Plays one 20 ms frame (mono, at the decoder's rate), appending exactly one frame.
    pub(crate) fn play(&mut self, out: &mut Vec<i16>) {
        let start = out.len();
        if self.next_ts.is_none() && !self.try_start() {
            out.resize(start + self.frame_len, 0);
            return;
        }
        if std::mem::take(&mut self.pause_one) {
            // Stretch: one frame of concealment without consuming media.
            self.scratch.clear();
            self.conceal_into_scratch();
            out.extend_from_slice(&self.scratch[..self.scratch.len().min(self.frame_len)]);
            out.resize(start + self.frame_len, 0);
            return;
        }
        if self.should_shrink() {
            // Drop one frame of media to shorten the delay.
            self.fill(self.frame_len * 2);
            self.pcm.drain(..self.frame_len);
            self.counters.skipped += 1;
        }
        self.fill(self.frame_len);
        let n = self.pcm.len().min(self.frame_len);
        out.extend(self.pcm.drain(..n));
        out.resize(start + self.frame_len, 0);
    }

    /// Starts playing `target` frames after the first packet arrived.
    fn try_start(&mut self) -> bool {
        let Some((&first, _)) = self.slots.first_key_value() else {
            return false;
        };
        self.waited += 1;
        if self.waited > self.target {
            self.next_ts = Some(first);
            true
        } else {
            false
        }
    }

    /// Decodes, recovers or conceals media in timestamp order until `want` samples are queued.
    fn fill(&mut self, want: usize) {
        while self.pcm.len() < want {
            let Some(next) = self.next_ts else { return };
            self.scratch.clear();
            let first = self.slots.first_key_value().map(|(&ts, _)| ts);
            match first {
                Some(ts) if ts <= next => {
                    let slot = self.slots.remove(&ts).expect("key just seen");
                    if ts < next {
                        // Overlaps what was already played (e.g. concealed): drop it.
                        continue;
                    }
                    self.play_slot(slot);
                    let n = self.scratch.len();
                    self.next_ts = Some(next + self.units(n).max(1));
                }
                Some(ts) if ts - next > self.frame_units * i64::from(MAX_TARGET_FRAMES) * 2 => {
                    // A jump far ahead (the sender paused, e.g. on hold, with its clock
                    // running): start over from that packet instead of concealing the gap.
                    self.next_ts = None;
                    self.waited = 0;
                    self.in_comfort_noise = false;
                    if !self.try_start() {
                        return;
                    }
                    continue;
                }
                Some(ts) => {
                    // Missing media before the next packet.
                    if self.in_comfort_noise {
                        self.comfort_noise
                            .generate_samples(self.frame_len, &mut self.scratch);
                        self.counters.comfort_noise += 1;
                    } else if ts - next == self.frame_units
                        && self.decoder.has_fec()
                        && matches!(self.slots.get(&ts), Some(Slot::Audio(_)))
                    {
                        let Some(Slot::Audio(payload)) = self.slots.get(&ts) else {
                            unreachable!("checked just above")
                        };
                        match self.decoder.decode_fec(payload, &mut self.scratch) {
                            Ok(_) => self.counters.fec_recovered += 1,
                            Err(_) => {
                                self.scratch.clear();
                                self.conceal_into_scratch();
                            }
                        }
                    } else {
                        self.conceal_into_scratch();
                    }
                    let units = self.units(self.scratch.len()).max(1).min(ts - next);
                    self.next_ts = Some(next + units);
                }
                None => {
                    // Underrun: nothing buffered. Conceal, and restart playout with the
                    // next packet after a fresh wait.
                    if self.in_comfort_noise {
                        self.comfort_noise
                            .generate_samples(self.frame_len, &mut self.scratch);
                        self.counters.comfort_noise += 1;
                    } else {
                        self.conceal_into_scratch();
                    }
                    self.next_ts = None;
                    self.waited = 0;
                }
            }
            self.pcm.extend(self.scratch.iter().copied());
            if self.next_ts.is_none() {
                return;
            }
        }
    }

    fn play_slot(&mut self, slot: Slot) {
        match slot {
            Slot::Audio(payload) => {
                self.in_comfort_noise = false;
                match self.decoder.decode(&payload, &mut self.scratch) {
                    Ok(_) => self.counters.decoded += 1,
                    Err(_) => {
                        self.scratch.clear();
                        self.conceal_into_scratch();
                    }
                }
            }
            Slot::ComfortNoise(payload) => {
                let _ = self.comfort_noise.update(&payload);
                self.in_comfort_noise = true;
                self.comfort_noise
                    .generate_samples(self.frame_len, &mut self.scratch);
                self.counters.comfort_noise += 1;
            }
        }
    }

    fn conceal_into_scratch(&mut self) {
        if self.decoder.conceal(&mut self.scratch).is_err() || self.scratch.is_empty() {
            self.scratch.resize(self.frame_len, 0);
        }
        self.counters.concealed += 1;
    }

    /// Whether to shrink the delay by one frame: the buffer held more than needed for a while.
    fn should_shrink(&mut self) -> bool {
        let Some(next) = self.next_ts else {
            return false;
        };
        let ahead = self
            .slots
            .last_key_value()
            .map_or(0, |(&last, _)| (last - next) / self.frame_units + 1)
            .max(0);
        if self.target > MIN_TARGET_FRAMES && ahead > i64::from(self.target) + 1 {
            self.surplus_frames += 1;
            if self.surplus_frames >= SHRINK_AFTER_FRAMES {
                self.surplus_frames = 0;
                self.target -= 1;
                return true;
            }
        } else {
            self.surplus_frames = 0;
        }
        false
    }
}
