//! The RTP packet (RFC 3550 §5.1): our type over `rtc_rtp::Packet`.

use bytes::Bytes;
use rtc_shared::marshal::{Marshal, MarshalSize, Unmarshal};

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the fixed header, bad version, truncated CSRC list or extension, bad padding.
    #[error("malformed rtp packet: {0}")]
    Malformed(String),
}

/// One RTP packet: the header fields a voice session uses, and the payload.
///
/// CSRCs and header extensions of received packets are parsed over but not kept; packets we
/// send carry neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Payload type (RFC 3551 static, or dynamic 96-127 as negotiated in SDP).
    pub payload_type: u8,
    /// The marker bit: for audio, the first packet of a talk spurt (RFC 3551 §4.1).
    pub marker: bool,
    /// The 16-bit sequence number.
    pub sequence: u16,
    /// The media timestamp, in the payload type's clock rate.
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
    /// The payload, padding removed.
    pub payload: Bytes,
}

impl RtpPacket {
    /// Parses one RTP packet from a datagram.
    ///
    /// # Errors
    ///
    /// [`RtpError::Malformed`] if the datagram is not a well-formed RTP version 2 packet.
    pub fn parse(datagram: &[u8]) -> Result<Self, RtpError> {
        if datagram.len() < 12 || datagram[0] >> 6 != 2 {
            return Err(RtpError::Malformed("not an rtp version 2 header".into()));
        }
        let mut buf = datagram;
        let packet = rtc_rtp::Packet::unmarshal(&mut buf)
            .map_err(|e| RtpError::Malformed(e.to_string().to_lowercase()))?;
        Ok(Self {
            payload_type: packet.header.payload_type,
            marker: packet.header.marker,
            sequence: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            ssrc: packet.header.ssrc,
            payload: packet.payload,
        })
    }

    /// The webrtc-rs header for this packet (version 2, no CSRC, no extension).
    pub(crate) fn header(&self) -> rtc_rtp::Header {
        rtc_rtp::Header {
            version: 2,
            marker: self.marker,
            payload_type: self.payload_type,
            sequence_number: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        }
    }

    /// The header length on the wire (always 12: we send no CSRC and no extension).
    pub fn header_len(&self) -> usize {
        self.header().marshal_size()
    }

    /// Serializes the packet.
    pub fn to_bytes(&self) -> Vec<u8> {
        let packet = rtc_rtp::Packet {
            header: self.header(),
            payload: self.payload.clone(),
        };
        let mut out = vec![0u8; packet.marshal_size()];
        // A version-2 header without CSRC or extension always fits its own marshal_size.
        let written = packet
            .marshal_to(&mut out)
            .expect("buffer sized by marshal_size for a plain header");
        out.truncate(written);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_written_packet() {
        // V=2, no padding, no extension, CC=0; M=1, PT=8; seq 0x1234; ts 0xdeadbeef; ssrc 1.
        let raw = [
            0x80, 0x88, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 0xaa, 0xbb,
        ];
        let p = RtpPacket::parse(&raw).expect("valid packet");
        assert_eq!(p.payload_type, 8);
        assert!(p.marker);
        assert_eq!(p.sequence, 0x1234);
        assert_eq!(p.timestamp, 0xdead_beef);
        assert_eq!(p.ssrc, 1);
        assert_eq!(&p.payload[..], &[0xaa, 0xbb]);
        assert_eq!(p.to_bytes(), raw);
    }

    #[test]
    fn skips_csrc_and_extension() {
        // CC=1, X=1 with a one-byte-profile extension of one word.
        let raw = [
            0x91, 0x00, 0, 7, 0, 0, 0, 9, 0, 0, 0, 2, // header, PT 0, seq 7, ts 9, ssrc 2
            0, 0, 0, 3, // csrc
            0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, // extension: id 1 len 1, padding
            0x55,
        ];
        let p = RtpPacket::parse(&raw).expect("valid packet");
        assert_eq!(p.sequence, 7);
        assert_eq!(&p.payload[..], &[0x55]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(RtpPacket::parse(&[]).is_err());
        assert!(RtpPacket::parse(&[0x80, 0, 0]).is_err());
        assert!(RtpPacket::parse(&[0x40; 20]).is_err());
        // CC=15 but no room for the CSRCs.
        assert!(RtpPacket::parse(&[0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
