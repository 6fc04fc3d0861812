//! Audio codecs behind one pair of traits, [`AudioEncoder`] and [`AudioDecoder`].
//!
//! Every codec takes and gives 20 ms frames of mono `i16` PCM at its PCM rate
//! ([`AudioEncoder::sample_rate`], [`AudioDecoder::sample_rate`]): the pipeline rate
//! ([`crate::SAMPLE_RATE`], 48 kHz, frames of [`FRAME_SAMPLES`]) unless it was built for
//! another device or mixer rate (Opus takes 8, 12, 16, 24 or 48 kHz, see
//! [`opus::OpusConfig::sample_rate`]; G.711 and G.722 resample from any rate). The PCM rate
//! is independent of the RTP clock rate: the G.711 wrappers resample to and from 8 kHz
//! inside, G.722 to and from 16 kHz but its timestamps count at 8 kHz (RFC 3551 §4.5.2), and
//! Opus timestamps count at 48 kHz whatever its PCM rate (RFC 7587 §4.1). The rest of the
//! pipeline is codec-agnostic.
//!
//! - [`opus`]: Opus (RFC 6716, RFC 7587) through libopus, with in-band FEC, DTX and PLC.
//! - [`g722`]: G.722 (ITU-T G.722, 7 kHz wideband, 64 kbit/s) in pure Rust, with RFC 3551's
//!   8000 Hz RTP clock.
//! - [`g711`]: PCMU and PCMA (ITU-T G.711) in pure Rust.
//! - [`telephone_event`]: RFC 4733 DTMF events (not audio: a payload format of its own).
//! - [`comfort_noise`]: RFC 3389 comfort noise, received.
//! - [`ogg`]: an Ogg Opus file writer (RFC 7845), for recordings and interop checks.
//!
//! ```
//! use tincan_media::codec::{CodecKind, FRAME_SAMPLES};
//!
//! let kind = CodecKind::Pcmu;
//! let mut encoder = kind.encoder().expect("pcmu needs no setup");
//! let mut decoder = kind.decoder().expect("pcmu needs no setup");
//! let pcm = vec![0i16; FRAME_SAMPLES];
//! let mut payload = Vec::new();
//! assert_eq!(encoder.encode(&pcm, &mut payload).unwrap(), 160); // 20 ms at 8 kHz
//! let mut out = Vec::new();
//! assert_eq!(decoder.decode(&payload, &mut out).unwrap(), FRAME_SAMPLES);
//! assert_eq!(kind.rtpmap(), "PCMU/8000");
//! ```

pub mod comfort_noise;
pub mod g711;
pub mod g722;
pub mod ogg;
pub mod opus;
mod plc;
pub mod telephone_event;

use crate::SAMPLE_RATE;

/// Samples in one 20 ms frame at the pipeline rate (48 kHz): the unit every encoder takes
/// and every decoder gives.
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE as usize) / 50;

/// The frame duration of the pipeline, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Samples in one 20 ms frame of PCM at `sample_rate` (960 at 48 kHz, 320 at 16 kHz).
pub const fn frame_samples_at(sample_rate: u32) -> usize {
    (sample_rate / (1000 / FRAME_MS)) as usize
}

/// Why a codec could not encode, decode or be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The caller gave a frame of the wrong length (caller misuse).
    #[error("frame has {got} samples, the codec takes {expected}")]
    FrameSize {
        /// What the codec takes.
        expected: usize,
        /// What it was given.
        got: usize,
    },
    /// The peer's payload could not be decoded (malformed peer input).
    #[error("malformed {codec} payload: {reason}")]
    Malformed {
        /// The codec's name.
        codec: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The codec cannot take or give PCM at this rate (caller misuse).
    #[error("{codec} does not support a pcm rate of {rate} Hz")]
    SampleRate {
        /// The codec's name.
        codec: &'static str,
        /// The rate asked for.
        rate: u32,
    },
    /// libopus reported an error.
    #[error("opus {function} failed: {description}")]
    Opus {
        /// The libopus function that failed.
        function: &'static str,
        /// libopus' description of the error.
        description: &'static str,
    },
}

impl From<::opus::Error> for CodecError {
    fn from(e: ::opus::Error) -> Self {
        CodecError::Opus {
            function: e.function(),
            description: e.description(),
        }
    }
}

/// An audio encoder: 20 ms of mono PCM (at [`AudioEncoder::sample_rate`]) in, one RTP
/// payload out.
pub trait AudioEncoder: Send {
    /// Encodes one 20 ms frame ([`frame_samples_at`] its [`AudioEncoder::sample_rate`]:
    /// [`FRAME_SAMPLES`] at 48 kHz), appending the payload to `out`.
    ///
    /// Returns the number of bytes appended. For Opus with DTX on, a payload of 2 bytes or
    /// fewer is a DTX frame that the caller need not send.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError>;

    /// The RTP clock rate of the payload format (48000 for Opus, 8000 for G.711 and G.722).
    fn clock_rate(&self) -> u32;

    /// RTP timestamp units one frame advances (960 for Opus, 160 for G.711 and G.722).
    fn frame_samples(&self) -> usize;

    /// The rate of the PCM it takes, in Hz: the pipeline rate ([`crate::SAMPLE_RATE`]) unless
    /// it was built for another.
    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    /// Tells the encoder the packet loss percentage the receiver sees (0 to 100), so that it
    /// can spend bits on redundancy. Codecs without in-band FEC ignore it.
    fn set_packet_loss(&mut self, percent: u8) {
        let _ = percent;
    }

    /// Sets the target bitrate in bits per second. Fixed-rate codecs ignore it.
    fn set_bitrate(&mut self, bps: u32) {
        let _ = bps;
    }
}

/// An audio decoder: RTP payloads in, mono PCM (at [`AudioDecoder::sample_rate`]) out, with
/// loss concealment.
pub trait AudioDecoder: Send {
    /// Decodes one payload, appending the PCM (mono, at [`AudioDecoder::sample_rate`]) to
    /// `out`; returns the number of samples appended ([`FRAME_SAMPLES`] for a 20 ms payload
    /// at 48 kHz).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Generates one 20 ms frame of concealment for a lost packet (packet loss concealment,
    /// PLC), appending it to `out`; returns the number of samples appended.
    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Recovers the lost frame that precedes `next_payload` from the in-band forward error
    /// correction the next packet carries, appending one frame to `out`.
    ///
    /// Codecs without FEC conceal instead (the default). The caller still decodes
    /// `next_payload` normally afterwards.
    fn decode_fec(&mut self, next_payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let _ = next_payload;
        self.conceal(out)
    }

    /// Whether [`AudioDecoder::decode_fec`] really uses redundancy (true for Opus).
    fn has_fec(&self) -> bool {
        false
    }

    /// The rate of the PCM it gives, in Hz: the pipeline rate ([`crate::SAMPLE_RATE`]) unless
    /// it was built for another.
    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }
}

/// The audio codecs Tincan speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecKind {
    /// Opus (RFC 6716), RTP payload format RFC 7587: `opus/48000/2`, dynamic payload type.
    Opus,
    /// G.722 (ITU-T G.722, 64 kbit/s), static payload type 9 (RFC 3551): `G722/8000`, an
    /// 8000 Hz RTP clock although it samples at 16 kHz (RFC 3551 §4.5.2).
    G722,
    /// G.711 µ-law, static payload type 0 (RFC 3551).
    Pcmu,
    /// G.711 A-law, static payload type 8 (RFC 3551).
    Pcma,
}

impl CodecKind {
    /// All codecs, in Tincan's default order of preference.
    pub const ALL: [CodecKind; 4] = [
        CodecKind::Opus,
        CodecKind::G722,
        CodecKind::Pcmu,
        CodecKind::Pcma,
    ];

    /// The encoding name as SDP `a=rtpmap` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Opus => "opus",
            CodecKind::G722 => "G722",
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate (8000 for G.722, whose PCM is 16 kHz: RFC 3551 §4.5.2).
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Opus => 48_000,
            CodecKind::G722 | CodecKind::Pcmu | CodecKind::Pcma => 8_000,
        }
    }

    /// The channel count `a=rtpmap` declares (RFC 7587 §7: Opus always says 2).
    pub fn rtpmap_channels(self) -> Option<u8> {
        match self {
            CodecKind::Opus => Some(2),
            CodecKind::G722 | CodecKind::Pcmu | CodecKind::Pcma => None,
        }
    }

    /// The payload type to offer: static 0 and 8 for G.711 and 9 for G.722 (RFC 3551
    /// table 4), a dynamic one (111, as common practice) for Opus.
    pub fn default_payload_type(self) -> u8 {
        match self {
            CodecKind::Opus => 111,
            CodecKind::G722 => 9,
            CodecKind::Pcmu => 0,
            CodecKind::Pcma => 8,
        }
    }

    /// RTP timestamp units per 20 ms frame (160 for G.722: its 8000 Hz clock).
    pub fn frame_samples(self) -> usize {
        (self.clock_rate() / 50) as usize
    }

    /// The `a=rtpmap` value after the payload type: `opus/48000/2`, `PCMU/8000`.
    pub fn rtpmap(self) -> String {
        match self.rtpmap_channels() {
            Some(ch) => format!("{}/{}/{}", self.name(), self.clock_rate(), ch),
            None => format!("{}/{}", self.name(), self.clock_rate()),
        }
    }

    /// The `a=fmtp` parameters Tincan offers, if any.
    pub fn fmtp(self) -> Option<&'static str> {
        match self {
            CodecKind::Opus => Some("minptime=10;useinbandfec=1"),
            CodecKind::G722 | CodecKind::Pcmu | CodecKind::Pcma => None,
        }
    }

    /// Finds a codec by its `a=rtpmap` encoding name and clock rate (name case-insensitive).
    pub fn from_rtpmap(name: &str, clock_rate: u32) -> Option<CodecKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name) && k.clock_rate() == clock_rate)
    }

    /// A new encoder with Tincan's defaults for this codec.
    pub fn encoder(self) -> Result<Box<dyn AudioEncoder>, CodecError> {
        self.encoder_with(&opus::OpusConfig::default())
    }

    /// A new decoder for this codec (48 kHz PCM).
    pub fn decoder(self) -> Result<Box<dyn AudioDecoder>, CodecError> {
        self.decoder_at(SAMPLE_RATE)
    }

    /// A new encoder taking PCM at `opus.sample_rate`: Opus with these settings, G.711 and
    /// G.722 resampling from that rate.
    pub fn encoder_with(
        self,
        opus: &opus::OpusConfig,
    ) -> Result<Box<dyn AudioEncoder>, CodecError> {
        Ok(match self {
            CodecKind::Opus => Box::new(opus::OpusEncoder::new(opus.clone())?),
            CodecKind::G722 => Box::new(g722::G722Encoder::with_sample_rate(opus.sample_rate)?),
            CodecKind::Pcmu => Box::new(g711::G711Encoder::with_sample_rate(
                g711::Law::Mu,
                opus.sample_rate,
            )?),
            CodecKind::Pcma => Box::new(g711::G711Encoder::with_sample_rate(
                g711::Law::A,
                opus.sample_rate,
            )?),
        })
    }

    /// A new decoder giving PCM at `sample_rate` (for Opus one of 8, 12, 16, 24 or 48 kHz).
    pub fn decoder_at(self, sample_rate: u32) -> Result<Box<dyn AudioDecoder>, CodecError> {
        Ok(match self {
            CodecKind::Opus => Box::new(opus::OpusDecoder::with_sample_rate(sample_rate)?),
            CodecKind::G722 => Box::new(g722::G722Decoder::with_sample_rate(sample_rate)?),
            CodecKind::Pcmu => Box::new(g711::G711Decoder::with_sample_rate(
                g711::Law::Mu,
                sample_rate,
            )?),
            CodecKind::Pcma => Box::new(g711::G711Decoder::with_sample_rate(
                g711::Law::A,
                sample_rate,
            )?),
        })
    }
}

impl std::fmt::Display for CodecKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks that `pcm` is exactly one 20 ms frame at `sample_rate`.
pub(crate) fn check_frame(pcm: &[i16], sample_rate: u32) -> Result<(), CodecError> {
    let expected = frame_samples_at(sample_rate);
    if pcm.len() == expected {
        Ok(())
    } else {
        Err(CodecError::FrameSize {
            expected,
            got: pcm.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpmap_strings() {
        assert_eq!(CodecKind::Opus.rtpmap(), "opus/48000/2");
        assert_eq!(CodecKind::Pcma.rtpmap(), "PCMA/8000");
        assert_eq!(CodecKind::from_rtpmap("OPUS", 48000), Some(CodecKind::Opus));
        assert_eq!(CodecKind::from_rtpmap("pcmu", 8000), Some(CodecKind::Pcmu));
        assert_eq!(CodecKind::from_rtpmap("PCMU", 16000), None);
        assert_eq!(CodecKind::Pcmu.frame_samples(), 160);
        assert_eq!(CodecKind::G722.rtpmap(), "G722/8000");
        assert_eq!(CodecKind::from_rtpmap("g722", 8000), Some(CodecKind::G722));
        assert_eq!(CodecKind::from_rtpmap("G722", 16000), None);
        assert_eq!(CodecKind::G722.default_payload_type(), 9);
        assert_eq!(CodecKind::G722.fmtp(), None);
    }

    #[test]
    fn g722_advances_the_timestamp_160_per_frame() {
        // RFC 3551 §4.5.2: 16 kHz sampling, an 8000 Hz RTP clock, one octet per sample pair.
        assert_eq!(CodecKind::G722.clock_rate(), 8000);
        assert_eq!(CodecKind::G722.frame_samples(), 160);
        let mut enc = CodecKind::G722.encoder().unwrap();
        assert_eq!((enc.clock_rate(), enc.frame_samples()), (8000, 160));
        let mut payload = Vec::new();
        assert_eq!(enc.encode(&[0; FRAME_SAMPLES], &mut payload).unwrap(), 160);
        let mut out = Vec::new();
        let mut dec = CodecKind::G722.decoder().unwrap();
        assert_eq!(dec.decode(&payload, &mut out).unwrap(), FRAME_SAMPLES);
    }

    #[test]
    fn default_order_offers_g722_after_opus_before_g711() {
        assert_eq!(
            CodecKind::ALL,
            [
                CodecKind::Opus,
                CodecKind::G722,
                CodecKind::Pcmu,
                CodecKind::Pcma
            ]
        );
    }

    #[test]
    fn wrong_frame_size_is_an_error() {
        let mut enc = CodecKind::Pcma.encoder().unwrap();
        let err = enc.encode(&[0; 100], &mut Vec::new()).unwrap_err();
        assert_eq!(
            err,
            CodecError::FrameSize {
                expected: 960,
                got: 100
            }
        );
    }
}
