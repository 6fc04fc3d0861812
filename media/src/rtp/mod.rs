//! RTP (RFC 3550): packets, the sending side of a stream and the per-SSRC receive state.
//!
//! The wire format is handled by the webrtc-rs `rtc-rtp` crate behind our own [`RtpPacket`];
//! sequence-number validation and extension (RFC 3550 Appendix A.1) and interarrival jitter
//! (Appendix A.8) are ours, in [`receive`].
//!
//! ```
//! use tincan_media::rtp::{RtpPacket, RtpSender};
//!
//! let mut sender = RtpSender::new(0x1234_5678, 100, 5000);
//! let packet = sender.packetize(0, true, 0, &[0xd5; 160]);
//! let bytes = packet.to_bytes();
//! let parsed = RtpPacket::parse(&bytes).expect("we just wrote it");
//! assert_eq!(parsed.sequence, 100);
//! assert_eq!(parsed.timestamp, 5000);
//! assert!(parsed.marker);
//! ```

mod packet;
pub mod receive;
mod sender;

pub use packet::{RtpError, RtpPacket};
pub use receive::{ReceiveStream, SequenceOutcome};
pub use sender::RtpSender;

/// Which of the two transport addresses of an RTP session a datagram used.
///
/// With rtcp-mux (RFC 5761) both RTP and RTCP arrive on the RTP port and are told apart by
/// [`is_rtcp`]; without it RTCP has its own port (RFC 3550 §11: the next, odd, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// The RTP port (even, RFC 3550 §11).
    Rtp,
    /// The separate RTCP port (RTP port + 1) when rtcp-mux is off.
    Rtcp,
}

/// RFC 5761 §4: a datagram on a multiplexed port is RTCP when its second octet (the RTCP
/// packet type, or the RTP marker bit and payload type) is in 192..=223, that is when the
/// RTP payload-type field would read 64..=95. Also checks the version bits (2).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_mux_demultiplexes_by_packet_type() {
        // SR (200), RR (201), SDES (202), BYE (203) are RTCP.
        for pt in [200u8, 201, 202, 203, 192, 223] {
            assert!(is_rtcp(&[0x80, pt, 0, 1]), "pt {pt}");
        }
        // RTP PT 0 (PCMU), 8, 96, 111 with and without marker are RTP.
        for second in [
            0u8,
            8,
            96,
            111,
            0x80,
            0x88,
            0x80 | 111,
            0x80 | 63,
            0x80 | 96,
        ] {
            assert!(!is_rtcp(&[0x80, second, 0, 1]), "second octet {second}");
        }
        // Wrong version or too short.
        assert!(!is_rtcp(&[0x40, 200]));
        assert!(!is_rtcp(&[0x80]));
    }
}
