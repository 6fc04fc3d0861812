//! The decoding side of the jitter buffer: slots in, 20 ms PCM frames out, and click-free
//! shrinking of the delay.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_media::codec::{CodecKind, FRAME_SAMPLES};
//! use tincan_media::jitter::{JitterConfig, playout::{Playout, FrameKind}};
//!
//! let kind = CodecKind::Pcmu;
//! let mut playout = Playout::new(JitterConfig::for_codec(kind), kind.decoder().unwrap());
//! let t0 = Instant::now();
//! playout.insert(t0, 1, 160, vec![0xFF; 160], true);
//! let frame = playout.pop(t0 + Duration::from_millis(5));
//! assert_eq!(frame.kind, FrameKind::Decoded);
//! assert_eq!(frame.pcm.len(), FRAME_SAMPLES);
//! ```

use std::time::Instant;

use super::{ConcealReason, InsertOutcome, JitterBuffer, JitterConfig, JitterStats, Slot};
use crate::codec::{AudioDecoder, FRAME_SAMPLES, frame_samples_at};

/// The short cross-fade when a quiet frame is dropped: 2.5 ms, in samples at 48 kHz.
const SHORT_FADE: usize = 120;

/// Frames a shrink may wait for a quiet frame before it cross-fades two speech frames.
const QUIET_WAIT: u32 = 50;

/// What produced a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Playout has not started: silence.
    Idle,
    /// Decoded from its own packet.
    Decoded,
    /// Recovered from the next packet's FEC.
    Fec,
    /// Concealed (PLC).
    Concealed(ConcealReason),
    /// The sender is silent (DTX): the decoder's comfort noise or silence.
    Silence,
}

/// One 20 ms frame of mono PCM at the decoder's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutFrame<'a> {
    /// What produced it.
    pub kind: FrameKind,
    /// [`FRAME_SAMPLES`] samples at 48 kHz ([`Playout::frame_samples`] at the decoder's
    /// [`AudioDecoder::sample_rate`]).
    pub pcm: &'a [i16],
}

/// A jitter buffer joined to a decoder. It plays 20 ms frames at the decoder's PCM rate
/// ([`AudioDecoder::sample_rate`]); the jitter buffer counts in RTP timestamp units.
pub struct Playout {
    jitter: JitterBuffer,
    decoder: Box<dyn AudioDecoder>,
    /// The decoder's PCM rate.
    sample_rate: u32,
    /// Samples per 20 ms frame at `sample_rate`.
    frame_len: usize,
    /// Samples of the short cross-fade at `sample_rate`.
    short_fade: usize,
    frame: Vec<i16>,
    extra: Vec<i16>,
    /// Decoded samples not played yet (packets longer than a frame).
    carry: Vec<i16>,
    /// What produced the carried samples.
    carry_kind: FrameKind,
    decoded: Vec<i16>,
    /// Running mean of the frame energy (mean square), for "quiet" decisions.
    mean_energy: f64,
    /// Pops a requested shrink has waited for a quiet frame.
    shrink_wait: u32,
    decode_errors: u64,
}

impl std::fmt::Debug for Playout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playout")
            .field("jitter", &self.jitter)
            .field("decode_errors", &self.decode_errors)
            .finish_non_exhaustive()
    }
}

impl Playout {
    /// A playout for one stream.
    pub fn new(config: JitterConfig, decoder: Box<dyn AudioDecoder>) -> Playout {
        let sample_rate = decoder.sample_rate();
        let frame_len = frame_samples_at(sample_rate);
        Playout {
            jitter: JitterBuffer::new(config),
            decoder,
            sample_rate,
            frame_len,
            short_fade: (SHORT_FADE * frame_len / FRAME_SAMPLES).max(1),
            frame: Vec::with_capacity(frame_len * 2),
            extra: Vec::with_capacity(frame_len * 2),
            carry: Vec::with_capacity(frame_len * 7),
            carry_kind: FrameKind::Idle,
            decoded: Vec::with_capacity(frame_len * 6),
            mean_energy: 0.0,
            shrink_wait: 0,
            decode_errors: 0,
        }
    }

    /// Inserts a received packet (see [`JitterBuffer::insert`]).
    pub fn insert(
        &mut self,
        now: Instant,
        seq: u64,
        timestamp: u32,
        payload: Vec<u8>,
        marker: bool,
    ) -> InsertOutcome {
        self.jitter.insert(now, seq, timestamp, payload, marker)
    }

    /// The PCM rate of the frames it plays (the decoder's).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples in each frame it plays (20 ms at [`Playout::sample_rate`]).
    pub fn frame_samples(&self) -> usize {
        self.frame_len
    }

    /// The jitter buffer's counters.
    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// Payloads the decoder rejected (each concealed instead).
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors
    }

    /// The jitter buffer.
    pub fn jitter(&self) -> &JitterBuffer {
        &self.jitter
    }

    /// Forgets the stream (new SSRC): packets and measurements, not the decoder state.
    pub fn reset(&mut self) {
        self.jitter.reset();
    }

    /// The next 20 ms frame. Call every 20 ms from the playout clock.
    pub fn pop(&mut self, now: Instant) -> PlayoutFrame<'_> {
        let mut frame = std::mem::take(&mut self.frame);
        let kind = self.fill(Some(now), &mut frame);
        if self.jitter.wants_shrink() && kind != FrameKind::Idle {
            self.shrink(&mut frame, kind);
        } else {
            self.shrink_wait = 0;
        }
        let energy = mean_square(&frame);
        if matches!(kind, FrameKind::Decoded | FrameKind::Fec) {
            self.mean_energy = 0.95 * self.mean_energy + 0.05 * energy;
        }
        self.frame = frame;
        PlayoutFrame {
            kind,
            pcm: &self.frame,
        }
    }

    /// Fills `frame` with exactly one frame: from the carry, then from as many slots as
    /// it takes (packets of 10 ms need two; one of 30 ms leaves 10 ms for the next frame).
    /// With `now`, the first slot is a regular pop; without, it is the extra slot of a
    /// shrink ([`JitterBuffer::pop_extra`]).
    fn fill(&mut self, now: Option<Instant>, frame: &mut Vec<i16>) -> FrameKind {
        frame.clear();
        if self.carry.len() >= self.frame_len {
            frame.extend(self.carry.drain(..self.frame_len));
            return self.carry_kind;
        }
        let mut kind = self.carry_kind;
        let mut first = true;
        while self.carry.len() < self.frame_len {
            let slot = match (first, now) {
                (true, Some(now)) => self.jitter.pop(now),
                (true, None) => self.jitter.pop_extra(),
                (false, _) => self.jitter.pop_continue(),
            };
            first = false;
            let mut decoded = std::mem::take(&mut self.decoded);
            let is_packet = matches!(slot, Slot::Packet { .. });
            kind = self.render(slot, &mut decoded);
            if is_packet && kind == FrameKind::Decoded {
                let rate = u64::from(self.jitter.config().clock_rate);
                let units = decoded.len() as u64 * rate / u64::from(self.sample_rate);
                self.jitter.set_packet_duration(units as u32);
            }
            if decoded.is_empty() || kind == FrameKind::Idle {
                decoded.resize(self.frame_len, 0);
            }
            self.carry.extend_from_slice(&decoded);
            self.decoded = decoded;
            if !matches!(kind, FrameKind::Decoded) {
                break;
            }
        }
        self.carry_kind = kind;
        let n = self.carry.len().min(self.frame_len);
        frame.extend(self.carry.drain(..n));
        frame.resize(self.frame_len, 0);
        kind
    }

    fn shrink(&mut self, frame: &mut [i16], kind: FrameKind) {
        let quiet = !matches!(kind, FrameKind::Decoded | FrameKind::Fec)
            || mean_square(frame) < 0.1 * self.mean_energy
            || mean_square(frame) < 100.0 * 100.0;
        if !quiet && self.shrink_wait < QUIET_WAIT {
            self.shrink_wait += 1;
            return;
        }
        let mut extra = std::mem::take(&mut self.extra);
        if self.carry.len() >= self.frame_len {
            // A long packet left a frame behind: that is the one to drop into.
            extra.clear();
            extra.extend(self.carry.drain(..self.frame_len));
            self.jitter.note_shrink();
        } else {
            self.fill(None, &mut extra);
        }
        // Quiet: play the next frame, its start faded in from the dropped one (2.5 ms).
        // Loud: cross-fade the whole frame from the dropped one to the next.
        let fade = if quiet {
            self.short_fade
        } else {
            self.frame_len
        };
        for i in 0..self.frame_len {
            let w = if i < fade {
                (i as f32 + 0.5) / fade as f32
            } else {
                1.0
            };
            let v = f32::from(frame[i]) * (1.0 - w) + f32::from(extra[i]) * w;
            frame[i] = v as i16;
        }
        self.extra = extra;
        self.shrink_wait = 0;
    }

    /// Decodes a slot: a packet gives its own duration, everything else one frame.
    fn render(&mut self, slot: Slot, out: &mut Vec<i16>) -> FrameKind {
        out.clear();
        let kind = match slot {
            Slot::Idle => FrameKind::Idle,
            Slot::Packet { payload, .. } => match self.decoder.decode(&payload, out) {
                Ok(_) => FrameKind::Decoded,
                Err(_) => {
                    self.decode_errors += 1;
                    out.clear();
                    let _ = self.decoder.conceal(out);
                    FrameKind::Concealed(ConcealReason::Loss)
                }
            },
            Slot::Fec { next_payload } => match self.decoder.decode_fec(&next_payload, out) {
                Ok(_) if self.decoder.has_fec() => FrameKind::Fec,
                Ok(_) => FrameKind::Concealed(ConcealReason::Loss),
                Err(_) => {
                    out.clear();
                    let _ = self.decoder.conceal(out);
                    FrameKind::Concealed(ConcealReason::Loss)
                }
            },
            Slot::Conceal(reason) => {
                let _ = self.decoder.conceal(out);
                FrameKind::Concealed(reason)
            }
            Slot::Silence => {
                let _ = self.decoder.conceal(out);
                FrameKind::Silence
            }
        };
        if kind != FrameKind::Decoded {
            out.resize(self.frame_len, 0);
        }
        kind
    }
}

fn mean_square(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64
}
