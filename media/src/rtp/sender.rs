//! The sending side of one RTP stream (RFC 3550 §5.1, §6.4.1 sender info).

use bytes::Bytes;

use super::RtpPacket;

/// Numbers outgoing packets of one SSRC and counts them for the RTCP sender report.
///
/// The initial sequence number and timestamp should be random (RFC 3550 §5.1); the caller
/// draws them from its injected RNG.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    timestamp_base: u32,
    packets: u32,
    octets: u32,
    last_timestamp: Option<u32>,
}

impl RtpSender {
    /// A sender for `ssrc` starting at `first_sequence` and media time `timestamp_base`.
    pub fn new(ssrc: u32, first_sequence: u16, timestamp_base: u32) -> Self {
        Self {
            ssrc,
            next_sequence: first_sequence,
            timestamp_base,
            packets: 0,
            octets: 0,
            last_timestamp: None,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Builds the next packet: `media_time` is the media clock offset (in the payload's clock
    /// rate) from the start of the stream; the sequence number advances by one.
    pub fn packetize(
        &mut self,
        payload_type: u8,
        marker: bool,
        media_time: u32,
        payload: &[u8],
    ) -> RtpPacket {
        let timestamp = self.timestamp_base.wrapping_add(media_time);
        let packet = RtpPacket {
            payload_type,
            marker,
            sequence: self.next_sequence,
            timestamp,
            ssrc: self.ssrc,
            payload: Bytes::copy_from_slice(payload),
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        // RFC 3550 §6.4.1: the octet count is payload octets only, wrapping.
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        self.last_timestamp = Some(timestamp);
        packet
    }

    /// The RTP timestamp corresponding to `media_time` (for the SR's RTP timestamp).
    pub fn timestamp_at(&self, media_time: u32) -> u32 {
        self.timestamp_base.wrapping_add(media_time)
    }

    /// Packets sent so far (RFC 3550 §6.4.1 sender's packet count, wrapping).
    pub fn packet_count(&self) -> u32 {
        self.packets
    }

    /// Payload octets sent so far (RFC 3550 §6.4.1 sender's octet count, wrapping).
    pub fn octet_count(&self) -> u32 {
        self.octets
    }

    /// Whether any packet was sent yet.
    pub fn has_sent(&self) -> bool {
        self.last_timestamp.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut s = RtpSender::new(7, 65_535, u32::MAX - 100);
        let a = s.packetize(0, true, 0, &[1; 160]);
        let b = s.packetize(0, false, 160, &[1; 160]);
        assert_eq!(a.sequence, 65_535);
        assert_eq!(b.sequence, 0);
        assert_eq!(a.timestamp, u32::MAX - 100);
        assert_eq!(b.timestamp, 59);
        assert_eq!(s.packet_count(), 2);
        assert_eq!(s.octet_count(), 320);
    }
}
