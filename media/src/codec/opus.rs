//! Opus (RFC 6716) through libopus (the `opus` crate, bundled libopus 1.6.1), RTP payload
//! format RFC 7587: mono, 20 ms frames, VOIP application, in-band FEC, optional DTX.
//!
//! The encoder takes and the decoder gives PCM at 48 kHz by default, or at 8, 12, 16 or
//! 24 kHz ([`OpusConfig::sample_rate`], [`OpusDecoder::with_sample_rate`]): a mixer or PBX
//! that works at 16 kHz spares libopus its internal resamplers (with a wideband cap SILK codes
//! at 16 kHz anyway). RTP timestamps count at 48 kHz whatever the PCM rate (RFC 7587 §4.1).
//!
//! [`adapt_to_loss`] turns the loss a receiver reports in RTCP into an encoder setting
//! ([`OpusAdaptation`]); apply it with [`OpusEncoder::apply`].

use super::{AudioDecoder, AudioEncoder, CodecError, FRAME_SAMPLES, check_frame, frame_samples_at};

/// The Opus RTP clock rate (RFC 7587 §4.1: always 48000).
pub const CLOCK_RATE: u32 = 48_000;

/// The largest Opus packet (RFC 6716 §3.2.1: 1275 bytes per frame, up to 3 frames for 20 ms).
const MAX_PACKET: usize = 1275 * 3 + 7;

/// The longest duration one Opus packet can carry: 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;

/// The PCM rates libopus encodes from and decodes to (RFC 6716 §2, `opus_encoder_create`).
pub const SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// The PCM rate of [`OpusConfig::high_density`]: SILK's internal rate for wideband.
pub const HIGH_DENSITY_SAMPLE_RATE: u32 = 16_000;

fn check_rate(rate: u32) -> Result<u32, CodecError> {
    if SAMPLE_RATES.contains(&rate) {
        Ok(rate)
    } else {
        Err(CodecError::SampleRate {
            codec: "opus",
            rate,
        })
    }
}

/// Default target bitrate for voice, bits per second. 32 kbit/s rather than 24: speech coded
/// at 24 kbit/s scores PESQ-WB 3.8-3.9, at 32 kbit/s 4.2 (issue 18, docs/benchmarks-media.md
/// "Speech quality (PESQ)"); 8 kbit/s more is still a small share of a call's ~60 kbit/s of
/// RTP/UDP/IP overhead and payload.
pub const DEFAULT_BITRATE: u32 = 32_000;

/// Lowest bitrate the adaptation policy picks.
pub const MIN_BITRATE: u32 = 16_000;

/// Highest bitrate the adaptation policy picks.
pub const MAX_BITRATE: u32 = 48_000;

/// The loss the encoder expects before the first RTCP report says what the network does
/// (percent): in-band FEC protects the first seconds of a call (the first report comes 2-4 s
/// in); a report of no loss turns it off ([`adapt_to_loss`]).
pub const INITIAL_PACKET_LOSS_PERCENT: u8 = 10;

/// Reported loss (percent) above which [`adapt_to_loss`] takes the network for congested
/// rather than lossy. Above 20 % of the random loss, not at it: the loss of one RTCP
/// interval (~250 packets) spreads by ±3 points around the real rate.
pub const CONGESTION_PERCENT: u32 = 25;

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
    /// The rate of the PCM the encoder takes (one of [`SAMPLE_RATES`]): 48 kHz, the
    /// pipeline rate, by default. Frames are 20 ms at this rate (320 samples at 16 kHz). The
    /// RTP clock stays 48 kHz (RFC 7587 §4.1); a decoder may give another rate than the
    /// peer's encoder took.
    pub sample_rate: u32,
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
    /// Settings for many calls per core (a conference bridge, a PBX or a load test rather
    /// than one softphone call): complexity 0, wideband at most, and PCM at 16 kHz
    /// ([`HIGH_DENSITY_SAMPLE_RATE`]: the caller's device or mixer rate; SILK codes wideband
    /// at 16 kHz, so libopus resamples nothing). Still HD voice; the decoded waveform follows
    /// the input as closely as at complexity 9 (media/tests/opus-high-density-quality.rs);
    /// CPU per call and calls per core are in docs/benchmarks-media.md. Pair it with
    /// [`OpusDecoder::with_sample_rate`]`(HIGH_DENSITY_SAMPLE_RATE)` (a
    /// [`crate::session::SessionConfig`] with this `opus` setting does).
    pub fn high_density() -> OpusConfig {
        OpusConfig {
            complexity: 0,
            max_bandwidth: OpusBandwidth::Wideband,
            sample_rate: HIGH_DENSITY_SAMPLE_RATE,
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
            packet_loss_percent: INITIAL_PACKET_LOSS_PERCENT,
            complexity: 9,
            max_bandwidth: OpusBandwidth::Fullband,
            sample_rate: CLOCK_RATE,
        }
    }
}

/// An Opus encoder for mono 20 ms frames at [`OpusConfig::sample_rate`] (48 kHz by default).
#[derive(Debug)]
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusConfig,
    /// Where libopus writes a packet ([`MAX_PACKET`] bytes, zeroed once, not per frame).
    scratch: Vec<u8>,
}

impl OpusEncoder {
    /// A new encoder (VOIP application, mono).
    ///
    /// # Errors
    ///
    /// [`CodecError::SampleRate`] if `config.sample_rate` is not one of [`SAMPLE_RATES`];
    /// [`CodecError::Opus`] if libopus refuses a setting.
    pub fn new(config: OpusConfig) -> Result<OpusEncoder, CodecError> {
        let rate = check_rate(config.sample_rate)?;
        let mut inner = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_bitrate(opus::Bitrate::Bits(config.bitrate as i32))?;
        inner.set_inband_fec(config.fec)?;
        inner.set_dtx(config.dtx)?;
        inner.set_packet_loss_perc(i32::from(config.packet_loss_percent.min(100)))?;
        inner.set_complexity(i32::from(config.complexity.min(10)))?;
        inner.set_signal(opus::Signal::Voice)?;
        inner.set_max_bandwidth(config.max_bandwidth.to_libopus())?;
        Ok(OpusEncoder {
            inner,
            config,
            scratch: vec![0; MAX_PACKET],
        })
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
        check_frame(pcm, self.config.sample_rate)?;
        let n = self.inner.encode(pcm, &mut self.scratch)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    fn clock_rate(&self) -> u32 {
        CLOCK_RATE
    }

    fn frame_samples(&self) -> usize {
        FRAME_SAMPLES
    }

    fn sample_rate(&self) -> u32 {
        self.config.sample_rate
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

/// An Opus decoder producing mono PCM at 48 kHz, or at the rate it was built for.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: opus::Decoder,
    sample_rate: u32,
    /// Samples in 20 ms at `sample_rate`.
    frame: usize,
    scratch: Vec<i16>,
}

impl OpusDecoder {
    /// A new decoder giving 48 kHz PCM.
    pub fn new() -> Result<OpusDecoder, CodecError> {
        OpusDecoder::with_sample_rate(CLOCK_RATE)
    }

    /// A new decoder giving PCM at `sample_rate` (one of [`SAMPLE_RATES`]). It decodes any
    /// Opus packet, whatever rate and bandwidth the peer's encoder used.
    ///
    /// # Errors
    ///
    /// [`CodecError::SampleRate`] for another rate.
    pub fn with_sample_rate(sample_rate: u32) -> Result<OpusDecoder, CodecError> {
        let rate = check_rate(sample_rate)?;
        Ok(OpusDecoder {
            inner: opus::Decoder::new(rate, opus::Channels::Mono)?,
            sample_rate: rate,
            frame: frame_samples_at(rate),
            // 120 ms, the longest packet, at this rate.
            scratch: vec![0; MAX_PACKET_SAMPLES * rate as usize / CLOCK_RATE as usize],
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
        let max = self.scratch.len();
        self.run(payload, false, max, out)
    }

    fn conceal(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        self.run(&[], false, self.frame, out)
    }

    fn decode_fec(&mut self, next_payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if next_payload.is_empty() {
            return self.conceal(out);
        }
        // With fec = true libopus decodes the LBRR copy of the previous frame carried in
        // `next_payload`, or conceals when there is none.
        self.run(next_payload, true, self.frame, out)
    }

    fn has_fec(&self) -> bool {
        true
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
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
/// - Above [`CONGESTION_PERCENT`] (25 %) loss the network is assumed to be congested rather
///   than lossy: sending more would add to the congestion, so the bitrate drops to
///   [`MIN_BITRATE`] and the FEC stays at its maximum.
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
    let bitrate = if percent > CONGESTION_PERCENT {
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
                bitrate: 32_000,
                packet_loss_percent: 0
            }
        );
        // 13/256 = 5.08% -> 6% -> plp 7, 32k + 3k.
        assert_eq!(
            adapt_to_loss(13),
            OpusAdaptation {
                bitrate: 35_000,
                packet_loss_percent: 7
            }
        );
        // 1/256 = 0.39% -> 1%.
        assert_eq!(adapt_to_loss(1).packet_loss_percent, 2);
        // 51/256 = 19.9% -> 20%: still lossy, not congested.
        assert_eq!(
            adapt_to_loss(51),
            OpusAdaptation {
                bitrate: 42_000,
                packet_loss_percent: 21
            }
        );
        // 60/256 = 23.4% -> 24%: a random 20 % loss measured over one RTCP interval can
        // read this high; still lossy.
        assert_eq!(
            adapt_to_loss(60),
            OpusAdaptation {
                bitrate: 44_000,
                packet_loss_percent: 25
            }
        );
        // 67/256 = 26.2%: congestion.
        assert_eq!(
            adapt_to_loss(67),
            OpusAdaptation {
                bitrate: 16_000,
                packet_loss_percent: 28
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

    /// Issue 18: FEC from the first packet. The default encoder expects
    /// [`INITIAL_PACKET_LOSS_PERCENT`] loss until RTCP says otherwise, so its very first
    /// packets already carry LBRR: a frame lost at the start of a call is rebuilt from the
    /// next packet (libopus conceals instead when the packet has no LBRR, so equal outputs
    /// would mean no redundancy).
    #[test]
    fn default_encoder_protects_the_first_packets() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        let packets: Vec<Vec<u8>> = tone(FRAME_SAMPLES * 4)
            .chunks(FRAME_SAMPLES)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect();
        let (mut a, mut b) = (OpusDecoder::new().unwrap(), OpusDecoder::new().unwrap());
        let mut sink = Vec::new();
        a.decode(&packets[0], &mut sink).unwrap();
        b.decode(&packets[0], &mut sink).unwrap();
        let (mut fec, mut plc) = (Vec::new(), Vec::new());
        a.decode_fec(&packets[2], &mut fec).unwrap();
        b.conceal(&mut plc).unwrap();
        assert_ne!(fec, plc, "packet 2 carries frame 1's redundancy");
    }

    /// At 16 kHz the encoder takes 320-sample frames and still stamps 960 RTP units; a
    /// 16 kHz decoder gives 320 samples per packet (also for PLC and FEC), a 48 kHz one 960
    /// from the same packets: the rates of the two ends are independent.
    #[test]
    fn sixteen_khz_pcm_with_48_khz_rtp_clock() {
        let config = OpusConfig::high_density();
        assert_eq!(config.sample_rate, 16_000);
        let mut enc = OpusEncoder::new(OpusConfig {
            packet_loss_percent: 10,
            ..config
        })
        .unwrap();
        assert_eq!(enc.sample_rate(), 16_000);
        assert_eq!(enc.clock_rate(), 48_000);
        assert_eq!(enc.frame_samples(), 960);
        assert!(matches!(
            enc.encode(&[0; FRAME_SAMPLES], &mut Vec::new()),
            Err(CodecError::FrameSize {
                expected: 320,
                got: 960
            })
        ));
        let tone16: Vec<i16> = tone(FRAME_SAMPLES * 10).into_iter().step_by(3).collect();
        let packets: Vec<Vec<u8>> = tone16
            .chunks(320)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect();
        assert_eq!(
            ::opus::packet::get_nb_samples(&packets[0], 48_000).unwrap(),
            960
        );
        let mut narrow = OpusDecoder::with_sample_rate(16_000).unwrap();
        let mut wide = OpusDecoder::new().unwrap();
        assert_eq!(narrow.sample_rate(), 16_000);
        let mut out = Vec::new();
        for p in &packets[..5] {
            assert_eq!(narrow.decode(p, &mut out).unwrap(), 320);
            assert_eq!(wide.decode(p, &mut Vec::new()).unwrap(), 960);
        }
        assert_eq!(narrow.decode_fec(&packets[6], &mut out).unwrap(), 320);
        assert_eq!(narrow.conceal(&mut out).unwrap(), 320);
        // The 440 Hz tone comes back at 16 kHz: the decoded signal is not silence.
        let rms = (out[960..1600]
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / 640.0)
            .sqrt();
        assert!(rms > 2000.0, "rms {rms}");
    }

    #[test]
    fn unsupported_rates_are_refused() {
        for rate in [0, 11_025, 22_050, 44_100, 96_000] {
            assert_eq!(
                OpusEncoder::new(OpusConfig {
                    sample_rate: rate,
                    ..OpusConfig::default()
                })
                .unwrap_err(),
                CodecError::SampleRate {
                    codec: "opus",
                    rate
                }
            );
            assert!(OpusDecoder::with_sample_rate(rate).is_err());
        }
        for rate in SAMPLE_RATES {
            let config = OpusConfig {
                sample_rate: rate,
                ..OpusConfig::default()
            };
            assert_eq!(OpusEncoder::new(config).unwrap().sample_rate(), rate);
        }
    }

    #[test]
    fn default_profile_is_unchanged() {
        let d = OpusConfig::default();
        assert_eq!(
            (d.complexity, d.max_bandwidth, d.sample_rate, d.fec, d.dtx),
            (9, OpusBandwidth::Fullband, 48_000, true, false)
        );
        // FEC from the first packet, at the expected loss, until RTCP says otherwise.
        assert_eq!(
            (d.bitrate, d.packet_loss_percent),
            (32_000, INITIAL_PACKET_LOSS_PERCENT)
        );
        let h = OpusConfig::high_density();
        assert_eq!(
            (h.complexity, h.max_bandwidth, h.sample_rate, h.bitrate),
            (0, OpusBandwidth::Wideband, 16_000, DEFAULT_BITRATE)
        );
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
