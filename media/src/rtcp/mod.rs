//! RTCP (RFC 3550 §6): sender and receiver reports, SDES CNAME, BYE, round-trip time and the
//! transmission interval.
//!
//! The wire format goes through the webrtc-rs `rtc-rtcp` crate; what we exchange with the
//! rest of the engine are our own [`Report`] and [`ReportBlock`] types.
//!
//! ```
//! use tincan_media::rtcp::{self, Report, SenderInfo};
//!
//! let report = Report {
//!     ssrc: 0x1111,
//!     sender_info: Some(SenderInfo { ntp_time: 1 << 32, rtp_time: 160, packet_count: 1, octet_count: 160 }),
//!     blocks: vec![],
//! };
//! let bytes = rtcp::build_compound(&report, "alice@example.test");
//! let parsed = rtcp::parse_compound(&bytes).expect("we just wrote it");
//! assert_eq!(parsed.reports[0], report);
//! ```

pub mod interval;

use std::time::Duration;

use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};

pub use crate::rtp::receive::ReportBlock;

/// Why a datagram is not RTCP we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Not a well-formed (compound) RTCP packet.
    #[error("malformed rtcp packet: {0}")]
    Malformed(String),
}

/// The sender-info section of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point, seconds since 1900) when the report was sent.
    pub ntp_time: u64,
    /// The RTP timestamp corresponding to `ntp_time`.
    pub rtp_time: u32,
    /// Packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
}

/// One SR (with sender info) or RR (without) from `ssrc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The reporter's SSRC.
    pub ssrc: u32,
    /// Present for a sender report.
    pub sender_info: Option<SenderInfo>,
    /// Reception report blocks, one per source heard.
    pub blocks: Vec<ReportBlock>,
}

/// What a received compound RTCP packet told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compound {
    /// SRs and RRs, in order.
    pub reports: Vec<Report>,
    /// SSRCs that said goodbye (RFC 3550 §6.6).
    pub goodbyes: Vec<u32>,
    /// (SSRC, CNAME) pairs from SDES.
    pub cnames: Vec<(u32, String)>,
}

fn to_reception_report(b: &ReportBlock) -> ReceptionReport {
    ReceptionReport {
        ssrc: b.ssrc,
        fraction_lost: b.fraction_lost,
        // 24-bit two's complement (RFC 3550 §6.4.1 "cumulative number of packets lost").
        total_lost: (b.cumulative_lost as u32) & 0x00ff_ffff,
        last_sequence_number: b.extended_highest_sequence,
        jitter: b.jitter,
        last_sender_report: b.last_sr,
        delay: b.delay_since_last_sr,
    }
}

fn from_reception_report(r: &ReceptionReport) -> ReportBlock {
    let raw = r.total_lost & 0x00ff_ffff;
    // Sign-extend the 24-bit field.
    let cumulative_lost = ((raw << 8) as i32) >> 8;
    ReportBlock {
        ssrc: r.ssrc,
        fraction_lost: r.fraction_lost,
        cumulative_lost,
        extended_highest_sequence: r.last_sequence_number,
        jitter: r.jitter,
        last_sr: r.last_sender_report,
        delay_since_last_sr: r.delay,
    }
}

/// Builds a compound RTCP packet (RFC 3550 §6.1): SR or RR first, then SDES with our CNAME.
///
/// At most 31 report blocks fit one SR/RR; extra blocks are left out (a voice session has one).
pub fn build_compound(report: &Report, cname: &str) -> Vec<u8> {
    let blocks: Vec<ReceptionReport> = report
        .blocks
        .iter()
        .take(31)
        .map(to_reception_report)
        .collect();
    let first: Box<dyn rtc_rtcp::Packet> = match report.sender_info {
        Some(info) => Box::new(SenderReport {
            ssrc: report.ssrc,
            ntp_time: info.ntp_time,
            rtp_time: info.rtp_time,
            packet_count: info.packet_count,
            octet_count: info.octet_count,
            reports: blocks,
            ..Default::default()
        }),
        None => Box::new(ReceiverReport {
            ssrc: report.ssrc,
            reports: blocks,
            ..Default::default()
        }),
    };
    let sdes = Box::new(sdes_cname(report.ssrc, cname));
    marshal(&[first, sdes])
}

fn sdes_cname(ssrc: u32, cname: &str) -> SourceDescription {
    // RFC 3550 §6.5: an item is at most 255 octets.
    let text = &cname.as_bytes()[..cname.len().min(255)];
    SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: bytes::Bytes::copy_from_slice(text),
            }],
        }],
    }
}

/// Builds a compound RTCP BYE (RFC 3550 §6.6): an empty RR, SDES CNAME, then BYE.
pub fn build_bye(ssrc: u32, cname: &str) -> Vec<u8> {
    let rr: Box<dyn rtc_rtcp::Packet> = Box::new(ReceiverReport {
        ssrc,
        ..Default::default()
    });
    let sdes = Box::new(sdes_cname(ssrc, cname));
    let bye = Box::new(Goodbye {
        sources: vec![ssrc],
        reason: bytes::Bytes::new(),
    });
    marshal(&[rr, sdes, bye])
}

fn marshal(packets: &[Box<dyn rtc_rtcp::Packet>]) -> Vec<u8> {
    // Our packets are built from in-range fields (≤ 31 blocks, 24-bit loss, ≤ 255-octet
    // CNAME), which the marshaller always accepts.
    rtc_rtcp::packet::marshal(packets)
        .expect("report fields are within rtcp limits by construction")
        .to_vec()
}

/// Parses a (compound) RTCP datagram, keeping SR, RR, SDES CNAME and BYE; other packet
/// types (feedback, XR, APP) are skipped.
///
/// # Errors
///
/// [`RtcpError::Malformed`] if the datagram is not valid RTCP.
pub fn parse_compound(datagram: &[u8]) -> Result<Compound, RtcpError> {
    let mut buf = datagram;
    let packets = rtc_rtcp::packet::unmarshal(&mut buf)
        .map_err(|e| RtcpError::Malformed(e.to_string().to_lowercase()))?;
    let mut out = Compound::default();
    for p in &packets {
        let any = p.as_any();
        if let Some(sr) = any.downcast_ref::<SenderReport>() {
            out.reports.push(Report {
                ssrc: sr.ssrc,
                sender_info: Some(SenderInfo {
                    ntp_time: sr.ntp_time,
                    rtp_time: sr.rtp_time,
                    packet_count: sr.packet_count,
                    octet_count: sr.octet_count,
                }),
                blocks: sr.reports.iter().map(from_reception_report).collect(),
            });
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            out.reports.push(Report {
                ssrc: rr.ssrc,
                sender_info: None,
                blocks: rr.reports.iter().map(from_reception_report).collect(),
            });
        } else if let Some(sdes) = any.downcast_ref::<SourceDescription>() {
            for chunk in &sdes.chunks {
                for item in &chunk.items {
                    if item.sdes_type == SdesType::SdesCname {
                        out.cnames.push((
                            chunk.source,
                            String::from_utf8_lossy(&item.text).into_owned(),
                        ));
                    }
                }
            }
        } else if let Some(bye) = any.downcast_ref::<Goodbye>() {
            out.goodbyes.extend(&bye.sources);
        }
    }
    Ok(out)
}

/// Seconds between the NTP era 0 (1900-01-01) and the Unix epoch.
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Adds a duration to a 64-bit NTP timestamp (32.32 fixed point).
pub fn ntp_add(ntp: u64, d: Duration) -> u64 {
    let frac = (u128::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ntp.wrapping_add(d.as_secs() << 32)
        .wrapping_add(frac as u64)
}

/// The middle 32 bits of a 64-bit NTP timestamp (the LSR format, RFC 3550 §6.4.1).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1, Figure 2):
/// `A - LSR - DLSR`, all in 1/65536 s; `arrival_ntp` is our NTP time when the report came.
///
/// `None` when the peer has not received an SR from us yet (LSR 0) or the result is
/// negative (clock arithmetic gone wrong, e.g. a forged report).
pub fn round_trip_time(arrival_ntp: u64, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let a = ntp_middle(arrival_ntp);
    let rtt = a
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(Duration::from_nanos(
        u64::from(rtt) * 1_000_000_000 / 65_536,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc: 0xabcd,
            fraction_lost: 64,
            cumulative_lost: lost,
            extended_highest_sequence: 0x0001_0005,
            jitter: 123,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65_536,
        }
    }

    #[test]
    fn sr_and_rr_round_trip_with_negative_loss() {
        for info in [
            None,
            Some(SenderInfo {
                ntp_time: 0x0102_0304_0506_0708,
                rtp_time: 9,
                packet_count: 10,
                octet_count: 1600,
            }),
        ] {
            let r = Report {
                ssrc: 7,
                sender_info: info,
                blocks: vec![block(-3), block(0x7f_ffff)],
            };
            let bytes = build_compound(&r, "x@y");
            let c = parse_compound(&bytes).expect("valid");
            assert_eq!(c.reports, vec![r]);
            assert_eq!(c.cnames, vec![(7, "x@y".to_owned())]);
        }
    }

    #[test]
    fn bye_parses() {
        let c = parse_compound(&build_bye(42, "me")).expect("valid");
        assert_eq!(c.goodbyes, vec![42]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_compound(&[0x80, 200, 0, 50, 1, 2]).is_err());
        assert!(parse_compound(&[]).is_err());
    }

    #[test]
    fn rtt_hand_computed() {
        // RFC 3550 Figure 2 example: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000
        // (46853.125 s), DLSR = 0x0005:4000 (5.250 s) -> RTT = 0x0006:2000 = 6.125 s.
        let b = ReportBlock {
            last_sr: 0xb705_2000,
            delay_since_last_sr: 0x0005_4000,
            ..block(0)
        };
        let arrival = 0x0000_b710_8000_0000u64;
        assert_eq!(
            round_trip_time(arrival, &b),
            Some(Duration::from_millis(6125))
        );
        assert_eq!(
            round_trip_time(arrival, &ReportBlock { last_sr: 0, ..b }),
            None
        );
    }

    #[test]
    fn ntp_arithmetic() {
        let t = ntp_add(5 << 32, Duration::from_millis(1500));
        assert_eq!(t, (6 << 32) | 0x8000_0000);
        assert_eq!(ntp_middle(t), 0x0006_8000);
    }
}
