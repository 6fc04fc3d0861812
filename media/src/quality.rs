//! Per-stream quality figures and an estimated MOS from the ITU-T G.107 E-model.
//!
//! `R = 93.2 - Id - Ie_eff` (G.107 with its default values: `Ro - Is = 93.2`, `A = 0`):
//!
//! - `Id`, the delay impairment, from the one-way mouth-to-ear delay `Ta` in ms, with the
//!   usual simplification of G.107's `Idte + Idle + Idd` for default echo parameters
//!   (Cole & Rosenbluth, "Voice over IP performance monitoring", 2001):
//!   `Id = 0.024 Ta + 0.11 (Ta - 177.3) H(Ta - 177.3)`.
//! - `Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)` (G.107 §7.6), with the codec's
//!   equipment impairment `Ie` and packet-loss robustness `Bpl` ([`CodecImpairment`]),
//!   `Ppl` the percentage of frames lost after the jitter buffer, `BurstR` the burst ratio
//!   (1 for random loss).
//! - `MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6` for `0 < R < 100` (G.107 annex B).
//!
//! This is the narrowband E-model: its best MOS is 4.41 (G.711 without loss), and the
//! wideband gain of Opus is not represented.
//!
//! ```
//! use tincan_media::quality::{CodecImpairment, r_factor, mos_from_r};
//!
//! let r = r_factor(100.0, 2.0, 1.0, CodecImpairment::G711_PLC);
//! assert!((r - 83.789).abs() < 1e-3);
//! assert!((mos_from_r(r) - 4.1588).abs() < 1e-4);
//! ```

use std::time::Duration;

use crate::codec::CodecKind;

/// `Ro - Is` with G.107's default values.
pub const R_DEFAULT: f64 = 93.2;

/// A codec's E-model figures: equipment impairment and packet-loss robustness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor `Ie`.
    pub ie: f64,
    /// Packet-loss robustness factor `Bpl`.
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 without packet-loss concealment (ITU-T G.113 Appendix I: Ie 0, Bpl 4.3).
    pub const G711_NO_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 4.3 };
    /// G.711 with packet-loss concealment (ITU-T G.113 Appendix I: Ie 0, Bpl 25.1). Tincan's
    /// G.711 decoder conceals.
    pub const G711_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };
    /// Opus at voice bitrates (24 kbit/s and up) with its PLC: an estimate, as ITU-T
    /// publishes no Opus values. Ie 0: Opus is at least as clear as G.711 at these rates,
    /// and the narrowband model cannot show more; Bpl 25.1: its concealment is credited as
    /// G.711 Appendix I's, conservatively (FEC-recovered frames do not count as lost).
    pub const OPUS: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };
    /// G.722 at 64 kbit/s with Tincan's concealment: Ie 0, as the narrowband model cannot
    /// credit its wider band (G.113 lists it only on the wideband scale), and Bpl 25.1, as its
    /// concealment is G.711 Appendix I's pitch repetition.
    pub const G722: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };

    /// The figures Tincan uses for a codec.
    pub fn for_codec(kind: CodecKind) -> CodecImpairment {
        match kind {
            CodecKind::Opus => CodecImpairment::OPUS,
            CodecKind::G722 => CodecImpairment::G722,
            CodecKind::Pcmu | CodecKind::Pcma => CodecImpairment::G711_PLC,
        }
    }
}

/// The delay impairment `Id` for a one-way delay in milliseconds.
pub fn delay_impairment(one_way_ms: f64) -> f64 {
    let ta = one_way_ms.max(0.0);
    let mut id = 0.024 * ta;
    if ta > 177.3 {
        id += 0.11 * (ta - 177.3);
    }
    id
}

/// The effective equipment impairment `Ie_eff` for `loss_percent` (0-100) lost frames.
pub fn effective_equipment_impairment(
    loss_percent: f64,
    burst_ratio: f64,
    codec: CodecImpairment,
) -> f64 {
    let ppl = loss_percent.clamp(0.0, 100.0);
    let burst = if burst_ratio > 0.0 { burst_ratio } else { 1.0 };
    if ppl == 0.0 {
        return codec.ie;
    }
    codec.ie + (95.0 - codec.ie) * ppl / (ppl / burst + codec.bpl)
}

/// The transmission rating `R`.
pub fn r_factor(
    one_way_ms: f64,
    loss_percent: f64,
    burst_ratio: f64,
    codec: CodecImpairment,
) -> f64 {
    R_DEFAULT
        - delay_impairment(one_way_ms)
        - effective_equipment_impairment(loss_percent, burst_ratio, codec)
}

/// The estimated mean opinion score (1.0 to 4.5) for a rating `R`.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// The figures of one media stream, as the UI draws them. The session fills it from the
/// RTP/RTCP state and the jitter buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// The codec in use, if known.
    pub codec: Option<CodecKind>,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// RTP payload bytes received.
    pub bytes_received: u64,
    /// Cumulative packets lost on the way to us (RFC 3550 A.3; negative with duplicates).
    pub packets_lost: i64,
    /// Fraction of packets lost in the last report interval, 0.0 to 1.0.
    pub fraction_lost: f64,
    /// Interarrival jitter (RFC 3550 A.8).
    pub jitter: Duration,
    /// Round-trip time from RTCP (RFC 3550 §6.4.1), once known.
    pub rtt: Option<Duration>,
    /// The jitter buffer's current delay.
    pub jitter_buffer_delay: Duration,
    /// Share of played frames that the decoder concealed (PLC), 0.0 to 1.0.
    pub concealment_ratio: f64,
    /// Share of played frames recovered through FEC, 0.0 to 1.0.
    pub fec_ratio: f64,
    /// Burst ratio of the losses (1.0 for random loss, as G.107 defines it).
    pub burst_ratio: f64,
}

/// Algorithmic delay of the codecs and resamplers, in ms: Opus' 6.5 ms look-ahead; the
/// G.711 resampling filters (2 x about 2.3 ms); G.722's QMF pair (23 samples at 16 kHz,
/// 1.4 ms) and its resampling filters (2 x about 1.15 ms).
fn codec_delay_ms(codec: Option<CodecKind>) -> f64 {
    match codec {
        Some(CodecKind::Opus) => 6.5,
        Some(CodecKind::G722) => 3.7,
        Some(CodecKind::Pcmu | CodecKind::Pcma) => 4.6,
        None => 0.0,
    }
}

/// The quality estimate for the UI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityEstimate {
    /// Estimated mouth-to-ear delay (network half RTT + frame + codec + jitter buffer).
    pub one_way_delay: Duration,
    /// Loss percentage after the jitter buffer, as the E-model takes it.
    pub loss_percent: f64,
    /// The E-model rating.
    pub r: f64,
    /// The estimated MOS.
    pub mos: f64,
}

impl StreamStats {
    /// The estimated one-way mouth-to-ear delay: half the RTT (when known), one frame of
    /// packetization, the codec's algorithmic delay and the jitter buffer. Audio device
    /// buffers are not included.
    pub fn one_way_delay(&self) -> Duration {
        let network = self.rtt.map_or(Duration::ZERO, |rtt| rtt / 2);
        let codec = Duration::from_secs_f64(codec_delay_ms(self.codec) / 1000.0);
        network
            + Duration::from_millis(u64::from(crate::codec::FRAME_MS))
            + codec
            + self.jitter_buffer_delay
    }

    /// The E-model estimate. The loss is the concealment ratio after the jitter buffer
    /// (late packets count as lost, FEC-recovered ones do not) once playout has begun, the
    /// network's fraction lost before.
    pub fn quality(&self) -> QualityEstimate {
        let codec = self
            .codec
            .map_or(CodecImpairment::G711_PLC, CodecImpairment::for_codec);
        let loss = if self.concealment_ratio > 0.0 || self.packets_received > 0 {
            self.concealment_ratio
        } else {
            self.fraction_lost
        };
        let loss_percent = loss * 100.0;
        let delay = self.one_way_delay();
        let r = r_factor(
            delay.as_secs_f64() * 1000.0,
            loss_percent,
            self.burst_ratio,
            codec,
        );
        QualityEstimate {
            one_way_delay: delay,
            loss_percent,
            r,
            mos: mos_from_r(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn hand_computed_values() {
        // Ta 0, no loss: R = 93.2, MOS = 1 + 3.262 + 93.2 * 33.2 * 6.8 * 7e-6.
        assert!(close(
            r_factor(0.0, 0.0, 1.0, CodecImpairment::G711_PLC),
            93.2
        ));
        assert!(close(mos_from_r(93.2), 4.409285824));
        // Ta 100 ms, 2% random loss, G.711 PLC: Id 2.4, Ie_eff 95 * 2 / 27.1 = 7.01107.
        assert!(close(delay_impairment(100.0), 2.4));
        assert!(close(
            effective_equipment_impairment(2.0, 1.0, CodecImpairment::G711_PLC),
            190.0 / 27.1
        ));
        assert!(close(
            mos_from_r(r_factor(100.0, 2.0, 1.0, CodecImpairment::G711_PLC)),
            4.158801438710712
        ));
        // Ta 200 ms, 5% loss, G.711 without PLC: Id 4.8 + 0.11 * 22.7, Ie_eff 95 * 5 / 9.3.
        assert!(close(delay_impairment(200.0), 7.297));
        let r = r_factor(200.0, 5.0, 1.0, CodecImpairment::G711_NO_PLC);
        assert!(close(r, 34.82773118279571));
        assert!(close(mos_from_r(r), 1.8190180830305693));
        // Bursty: Ta 300 ms, 10% loss, BurstR 2.
        let r = r_factor(300.0, 10.0, 2.0, CodecImpairment::G711_PLC);
        assert!(close(r, 40.941538205980066));
        assert!(close(mos_from_r(r), 2.110377747790086));
    }

    #[test]
    fn mos_limits() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
    }

    #[test]
    fn stream_estimate_uses_delay_and_concealment() {
        let stats = StreamStats {
            codec: Some(CodecKind::Pcmu),
            packets_received: 1000,
            rtt: Some(Duration::from_millis(200)),
            jitter_buffer_delay: Duration::from_millis(40),
            concealment_ratio: 0.01,
            burst_ratio: 1.0,
            ..StreamStats::default()
        };
        let q = stats.quality();
        // 100 + 20 + 4.6 + 40 ms.
        assert!((q.one_way_delay.as_secs_f64() * 1000.0 - 164.6).abs() < 1e-6);
        assert!(close(q.loss_percent, 1.0));
        let expected = 93.2 - 0.024 * 164.6 - 95.0 * 1.0 / 26.1;
        assert!((q.r - expected).abs() < 1e-6);
        assert!(q.mos > 4.0 && q.mos < 4.41);
    }
}
