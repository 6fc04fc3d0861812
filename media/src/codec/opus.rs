//! Opus (RFC 6716) through libopus (the `opus` crate, bundled libopus 1.6.1), RTP payload
//! format RFC 7587: 48 kHz mono, 20 ms frames, VOIP application, in-band FEC, optional DTX.
//!
//! [`adapt_to_loss`] turns the loss a receiver reports in RTCP into an encoder setting
//! ([`OpusAdaptation`]); apply it with [`OpusEncoder::apply`].

use super::{AudioDecoder, AudioEncoder, CodecError, FRAME_SAMPLES, check_frame};

/// The Opus RTP clock rate (RFC 7587 §4.1: always 48000).
pub const CLOCK_RATE: u32 = 48_000;

/// The largest Opus packet (RFC 6716 §3.2.1: 1275 bytes per frame, up to 3 frames for 20 ms).
const MAX_PACKET: usize = 1275 * 3 + 7;

/// The longest duration one Opus packet can carry: 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;

/// Default target bitrate for wideband voice, bits per second.
pub const DEFAULT_BITRATE: u32 = 24_000;

/// Lowest bitrate the adaptation policy picks.
pub const MIN_BITRATE: u32 = 16_000;

/// Highest bitrate the adaptation policy picks.
pub const MAX_BITRATE: u32 = 40_000;

/// Encoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// In-band forward error correction (LBRR). Only spends bits when `packet_loss_percent` > 0.
    pub fec: bool,
    /// Discontinuous transmission: during silence the encoder produces 1-2 byte packets
    /// that need not be sent (one every 400 ms keeps the comfort noise going).
    pub dtx: bool,
    /// Expected packet loss percentage (0-100): how much redundancy FEC adds.
    pub packet_loss_percent: u8,
    /// Encoder complexity, 0 (fastest) to 10 (best).
    pub complexity: u8,
    /// The widest audio band the encoder may code.
    pub max_bandwidth: OpusBandwidth,
}

/// Audio bandwidths Opus codes (RFC 6716 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpusBandwidth {
    /// 4 kHz (8 kHz sampling).
    Narrowband,
    /// 6 kHz.
    Mediumband,
    /// 8 kHz (16 kHz sampling, "HD voice").
    Wideband,
    /// 12 kHz.
    SuperWideband,
    /// 20 kHz.
    Fullband,
}

impl OpusBandwidth {
    fn to_libopus(self) -> opus::Bandwidth {
        match self {
            OpusBandwidth::Narrowband => opus::Bandwidth::Narrowband,
            OpusBandwidth::Mediumband => opus::Bandwidth::Mediumband,
            OpusBandwidth::Wideband => opus::Bandwidth::Wideband,
            OpusBandwidth::SuperWideband => opus::Bandwidth::Superwideband,
            OpusBandwidth::Fullband => opus::Bandwidth::Fullband,
        }
    }
}

impl OpusConfig {
    /// Settings for many calls per core (a gateway or a load test rather than one
    /// softphone call): complexity 0 and wideband at most, under a quarter of the default's
    /// call CPU (docs/benchmarks-media.md: about 250 calls per core), still HD voice; the
    /// decoded waveform follows the input as closely as at complexity 9
    /// (media/tests/opus-high-density-quality.rs).
    pub fn high_density() -> OpusConfig {
        OpusConfig {
            complexity: 0,
            max_bandwidth: OpusBandwidth::Wideband,
            ..OpusConfig::default()
        }
    }
}

impl Default for OpusConfig {
    fn default() -> Self {
        OpusConfig {
            bitrate: DEFAULT_BITRATE,
            fec: true,
            dtx: false,
            packet_loss_percent: 0,
            complexity: 9,
            max_bandwidth: OpusBandwidth::Fullband,
        }
    }
}

/// An Opus encoder for 48 kHz mono 20 ms frames.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusConfig,
}

impl OpusEncoder {
    /// A new encoder (VOIP application, mono).
    pub fn new(config: OpusConfig) -> Result<OpusEncoder, CodecError> {
        let mut inner =
            opus::Encoder::new(CLOCK_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_bitrate(opus::Bitrate::Bits(config.bitrate as i32))?;
        inner.set_inband_fec(config.fec)?;
        inner.set_dtx(config.dtx)?;
        inner.set_packet_loss_perc(i32::from(config.packet_loss_percent.min(100)))?;
        inner.set_complexity(i32::from(config.complexity.min(10)))?;
        inner.set_signal(opus::Signal::Voice)?;
        inner.set_max_bandwidth(config.max_bandwidth.to_libopus())?;
        Ok(OpusEncoder { inner, config })
    }

    /// The settings in force.
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// Applies the result of [`adapt_to_loss`].
    pub fn apply(&mut self, adaptation: OpusAdaptation) -> Result<(), CodecError> {
        self.inner
            .set_bitrate(opus::Bitrate::Bits(adaptation.bitrate as i32))?;
        self.inner
            .set_packet_loss_perc(i32::from(adaptation.packet_loss_percent))?;
        self.config.bitrate = adaptation.bitrate;
        self.config.packet_loss_percent = adaptation.packet_loss_percent;
        Ok(())
    }

    /// Turns DTX on or off.
    pub fn set_dtx(&mut self, on: bool) -> Result<(), CodecError> {
        self.inner.set_dtx(on)?;
        self.config.dtx = on;
        Ok(())
    }
}

impl AudioEncoder for OpusEncoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        check_frame(pcm)?;
        let start = out.len();
        out.resize(start + MAX_PACKET, 0);
        match self.inner.encode(pcm, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(n)
            }
            Err(e) => {
                out.truncate(start);
                Err(e.into())
            }
        }
    }

    fn clock_rate(&self) -> u32 {
        CLOCK_RATE
    }

    fn frame_samples(&self) -> usize {
        FRAME_SAMPLES
    }

    fn set_packet_loss(&mut self, percent: u8) {
        let percent = percent.min(100);
        if self.inner.set_packet_loss_perc(i32::from(percent)).is_ok() {
            self.config.packet_loss_percent = percent;
        }
    }

    fn set_bitrate(&mut self, bps: u32) {
        let bps = bps.clamp(6_000, 510_000);
        if self
            .inner
            .set_bitrate(opus::Bitrate::Bits(bps as i32))
            .is_ok()
        {
            self.config.bitrate = bps;
        }
    }
}

/// An Opus decoder producing 48 kHz mono.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: opus::Decoder,
    scratch: Vec<i16>,
}

impl OpusDecoder {
    /// A new decoder.
    pub fn new() -> Result<OpusDecoder, CodecError> {
        Ok(OpusDecoder {
            inner: opus::Decoder::new(CLOCK_RATE, opus::Channels::Mono)?,
            scratch: vec![0; MAX_PACKET_SAMPLES],
        })
    }

    fn run(
        &mut self,
        payload: &[u8],
        fec: bool,
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let n = self
            .inner
            .decode(payload, &mut self.scratch[..samples], fec)
            .map_err(|e| match e.code() {
                opus::ErrorCode::InvalidPacket | opus::ErrorCode::BufferTooSmall => {
                    CodecError::Malformed {
                        codec: "opus",
                        reason: e.description(),
                    }
                }
                _ => e.into(),
            })?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }
}

impl AudioDecoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Malformed {
                codec: "opus",
                reason: "empty payload",
            });
        }
        self.run(payload, false, MAX_PACKET_SAMPLES, out)
    }

    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        self.run(&[], false, FRAME_SAMPLES, out)
    }

    fn decode_fec(&mut self, next_payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if next_payload.is_empty() {
            return self.conceal(out);
        }
        // With fec = true libopus decodes the LBRR copy of the previous frame carried in
        // `next_payload`, or conceals when there is none.
        self.run(next_payload, true, FRAME_SAMPLES, out)
    }

    fn has_fec(&self) -> bool {
        true
    }
}

/// Encoder settings chosen for a reported loss rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusAdaptation {
    /// Target bitrate, bits per second.
    pub bitrate: u32,
    /// Packet loss percentage to tell the encoder (drives FEC strength).
    pub packet_loss_percent: u8,
}

/// The adaptation policy: from the RTCP "fraction lost" the peer reports (RFC 3550 §6.4.1,
/// an 8-bit fixed-point fraction, 256 = 100%) to a bitrate and FEC strength.
///
/// - The packet-loss percentage given to libopus is the reported loss rounded up plus one
///   point of margin (capped at 30%): libopus sizes its redundancy (LBRR) on it, and FEC
///   costs nothing while the network is clean (0 when nothing is lost).
/// - Redundancy costs bits, so the bitrate rises with loss to keep the primary encoding's
///   quality: [`DEFAULT_BITRATE`] + 0.5 kbit/s per point of loss, up to [`MAX_BITRATE`].
/// - Above 20% loss the network is assumed to be congested rather than lossy: sending more
///   would add to the congestion, so the bitrate drops to [`MIN_BITRATE`] and the FEC stays
///   at its maximum.
///
/// Callers should smooth the reports (RTCP arrives every ~5 s) or apply each one directly.
pub fn adapt_to_loss(fraction_lost: u8) -> OpusAdaptation {
    let percent = (u32::from(fraction_lost) * 100).div_ceil(256);
    if percent == 0 {
        return OpusAdaptation {
            bitrate: DEFAULT_BITRATE,
            packet_loss_percent: 0,
        };
    }
    let plp = (percent + 1).min(30) as u8;
    let bitrate = if percent > 20 {
        MIN_BITRATE
    } else {
        (DEFAULT_BITRATE + 500 * percent).min(MAX_BITRATE)
    };
    OpusAdaptation {
        bitrate,
        packet_loss_percent: plp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 48_000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn adaptation_policy() {
        assert_eq!(
            adapt_to_loss(0),
            OpusAdaptation {
                bitrate: 24_000,
                packet_loss_percent: 0
            }
        );
        // 13/256 = 5.08% -> 6% -> plp 7, 24k + 3k.
        assert_eq!(
            adapt_to_loss(13),
            OpusAdaptation {
                bitrate: 27_000,
                packet_loss_percent: 7
            }
        );
        // 1/256 = 0.39% -> 1%.
        assert_eq!(adapt_to_loss(1).packet_loss_percent, 2);
        // 51/256 = 19.9% -> 20%: still lossy, not congested.
        assert_eq!(
            adapt_to_loss(51),
            OpusAdaptation {
                bitrate: 34_000,
                packet_loss_percent: 21
            }
        );
        // 64/256 = 25%: congestion.
        assert_eq!(
            adapt_to_loss(64),
            OpusAdaptation {
                bitrate: 16_000,
                packet_loss_percent: 26
            }
        );
        assert_eq!(adapt_to_loss(255).packet_loss_percent, 30);
    }

    #[test]
    fn encode_decode_fec_and_plc() {
        let mut enc = OpusEncoder::new(OpusConfig {
            packet_loss_percent: 10,
            ..OpusConfig::default()
        })
        .unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let pcm = tone(FRAME_SAMPLES * 10);
        let mut out = Vec::new();
        let mut packets = Vec::new();
        for frame in pcm.chunks(FRAME_SAMPLES) {
            let mut p = Vec::new();
            let n = enc.encode(frame, &mut p).unwrap();
            assert!(n > 2 && n < 400, "packet of {n} bytes");
            packets.push(p);
        }
        for p in &packets[..5] {
            assert_eq!(dec.decode(p, &mut out).unwrap(), FRAME_SAMPLES);
        }
        assert_eq!(
            dec.decode_fec(&packets[6], &mut out).unwrap(),
            FRAME_SAMPLES
        );
        assert_eq!(dec.decode(&packets[6], &mut out).unwrap(), FRAME_SAMPLES);
        assert_eq!(dec.conceal(&mut out).unwrap(), FRAME_SAMPLES);
        assert!(dec.decode(&[], &mut out).is_err());
        // A garbage packet is a peer fault, not a panic.
        assert!(dec.decode(&[0xff, 0xff, 0xff], &mut out).is_err());
    }

    /// With a loss percentage set, packets carry LBRR: recovering a lost frame from the
    /// next packet gives other audio than concealing it (libopus conceals when a packet
    /// has no LBRR, so equal outputs would mean no redundancy).
    #[test]
    fn fec_carries_real_redundancy() {
        let mut enc = OpusEncoder::new(OpusConfig {
            packet_loss_percent: 10,
            ..OpusConfig::default()
        })
        .unwrap();
        let packets: Vec<Vec<u8>> = tone(FRAME_SAMPLES * 20)
            .chunks(FRAME_SAMPLES)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect();
        let (mut a, mut b) = (OpusDecoder::new().unwrap(), OpusDecoder::new().unwrap());
        let mut sink = Vec::new();
        for p in &packets[..10] {
            a.decode(p, &mut sink).unwrap();
            b.decode(p, &mut sink).unwrap();
        }
        let (mut fec, mut plc) = (Vec::new(), Vec::new());
        a.decode_fec(&packets[11], &mut fec).unwrap();
        b.conceal(&mut plc).unwrap();
        assert_ne!(fec, plc);
    }

    #[test]
    fn wrong_frame_size_rejected() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        assert!(matches!(
            enc.encode(&[0; 480], &mut Vec::new()),
            Err(CodecError::FrameSize { .. })
        ));
    }
}
