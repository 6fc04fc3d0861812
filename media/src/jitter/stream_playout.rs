//! The playout of one received stream, as a media session uses it: the adaptive jitter buffer
//! and decoder ([`super::playout::Playout`]) for 20 ms packets, the timestamp-driven fallback
//! ([`super::timestamp_playout::TimestampPlayout`]) for other packet durations, and RFC 3389
//! comfort noise.

use std::time::{Duration, Instant};

use crate::codec::comfort_noise::ComfortNoiseGenerator;
use crate::codec::{AudioDecoder, CodecKind, FRAME_SAMPLES, frame_samples_at};

use super::playout::{FrameKind, Playout};
use super::timestamp_playout::TimestampPlayout;
use super::{ConcealReason, InsertOutcome, JitterConfig, PlayoutCounters};

/// The playout of one received stream: picks the adaptive or the timestamp-driven playout
/// by packet duration and fills DTX gaps with comfort noise.
pub(crate) struct StreamPlayout {
    codec: CodecKind,
    /// The PCM rate played (the session's), and its samples per 20 ms frame.
    sample_rate: u32,
    frame_len: usize,
    adaptive: Playout,
    /// Built on the first packet that is not 20 ms long; used from then on.
    fallback: Option<TimestampPlayout>,
    seed: u64,
    comfort_noise: ComfortNoiseGenerator,
    /// A CN packet came after the last audio packet: gaps are filled with comfort noise.
    in_comfort_noise: bool,
    comfort_noise_frames: u64,
}

impl StreamPlayout {
    pub(crate) fn new(codec: CodecKind, decoder: Box<dyn AudioDecoder>, seed: u64) -> Self {
        let sample_rate = decoder.sample_rate();
        Self {
            codec,
            sample_rate,
            frame_len: frame_samples_at(sample_rate),
            adaptive: Playout::new(JitterConfig::for_codec(codec), decoder),
            fallback: None,
            seed,
            comfort_noise: ComfortNoiseGenerator::new(seed ^ 0x5eed),
            in_comfort_noise: false,
            comfort_noise_frames: 0,
        }
    }

    /// Forgets the stream (SSRC change, restart, resume); keeps decoders and counters.
    pub(crate) fn reset(&mut self) {
        self.adaptive.reset();
        if let Some(f) = self.fallback.as_mut() {
            f.reset();
        }
        self.in_comfort_noise = false;
    }

    /// Whether a payload holds exactly one 20 ms frame of this codec.
    fn is_one_frame(&self, payload: &[u8]) -> bool {
        match self.codec {
            // One octet per timestamp unit: 160 octets are 20 ms (G.722 too, at its 8 kHz clock).
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => {
                payload.len() == self.codec.frame_samples()
            }
            CodecKind::Opus => {
                // Opus DTX packets (1-2 bytes) are 20 ms too; the TOC says the duration.
                payload.len() <= 2
                    || ::opus::packet::get_nb_samples(payload, 48_000)
                        .is_ok_and(|n| n == FRAME_SAMPLES)
            }
        }
    }

    /// Files an audio packet; `seq` is its extended sequence number.
    pub(crate) fn push_audio(
        &mut self,
        now: Instant,
        seq: u64,
        timestamp: u32,
        payload: &[u8],
        marker: bool,
    ) -> Option<InsertOutcome> {
        self.in_comfort_noise = false;
        if self.fallback.is_none() && !self.is_one_frame(payload) {
            // From now on the timestamp-driven playout handles this stream.
            match self.codec.decoder_at(self.sample_rate) {
                Ok(decoder) => {
                    self.fallback = Some(TimestampPlayout::new(
                        decoder,
                        self.codec.clock_rate(),
                        self.seed,
                    ));
                }
                Err(_) => return None,
            }
        }
        match self.fallback.as_mut() {
            Some(f) => {
                f.push_audio(timestamp, payload);
                None
            }
            None => Some(
                self.adaptive
                    .insert(now, seq, timestamp, payload.to_vec(), marker),
            ),
        }
    }

    /// Takes a comfort-noise packet (RFC 3389): its level is used until audio resumes.
    pub(crate) fn push_comfort_noise(&mut self, timestamp: u32, payload: &[u8]) {
        match self.fallback.as_mut() {
            Some(f) => f.push_comfort_noise(timestamp, payload),
            None => {
                if self.comfort_noise.update(payload).is_ok() {
                    self.in_comfort_noise = true;
                }
            }
        }
    }

    /// Plays one 20 ms frame (mono, at the session's PCM rate), appending exactly one frame.
    pub(crate) fn play(&mut self, now: Instant, out: &mut Vec<i16>) {
        let start = out.len();
        if let Some(f) = self.fallback.as_mut() {
            f.play(out);
        } else {
            let frame = self.adaptive.pop(now);
            let silent = matches!(
                frame.kind,
                FrameKind::Silence | FrameKind::Concealed(ConcealReason::Underrun)
            );
            if self.in_comfort_noise && silent {
                self.comfort_noise.generate_samples(self.frame_len, out);
                self.comfort_noise_frames += 1;
            } else {
                out.extend_from_slice(frame.pcm);
            }
        }
        out.resize(start + self.frame_len, 0);
    }

    pub(crate) fn counters(&self) -> PlayoutCounters {
        let j = self.adaptive.stats();
        let mut c = PlayoutCounters {
            decoded: j.played,
            fec_recovered: j.fec_recovered,
            concealed: j.concealed,
            comfort_noise: self.comfort_noise_frames,
            late: j.late,
            duplicates: j.duplicate,
            skipped: j.shrunk + j.silence_skipped,
        };
        if self.codec != CodecKind::Opus {
            // The jitter buffer counts FEC slots; without in-band FEC (G.711) the decoder
            // concealed them.
            c.concealed += c.fec_recovered;
            c.fec_recovered = 0;
        }
        if let Some(f) = &self.fallback {
            let k = f.counters();
            c.decoded += k.decoded;
            c.fec_recovered += k.fec_recovered;
            c.concealed += k.concealed;
            c.comfort_noise += k.comfort_noise;
            c.late += k.late;
            c.duplicates += k.duplicates;
            c.skipped += k.skipped;
        }
        c
    }

    /// Media buffered ahead of the playout point.
    pub(crate) fn current_delay(&self) -> Duration {
        match &self.fallback {
            Some(f) => f.current_delay(),
            None => self.adaptive.stats().current_delay,
        }
    }

    /// The delay the buffer steers toward.
    pub(crate) fn target_delay(&self) -> Duration {
        match &self.fallback {
            Some(f) => Duration::from_millis(20 * u64::from(f.target_frames())),
            None => self.adaptive.stats().target_delay,
        }
    }

    /// Frames (or packets) buffered.
    pub(crate) fn depth(&self) -> usize {
        match &self.fallback {
            Some(f) => f.depth(),
            None => (self.adaptive.stats().current_delay.as_millis() / 20) as usize,
        }
    }
}
