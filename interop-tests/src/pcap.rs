//! RTP captures for sipp's `play_pcap_audio`: a pcap file (Ethernet, IPv4, UDP) of G.711
//! mu-law RTP packets made from PCM samples, so that a sipp UAS can send a tone of a known
//! frequency.
//!
//! sipp replays the packets' UDP payload (the RTP header and payload as written) at the
//! capture's timing, to the address and port of the caller's SDP.

use std::path::Path;

use crate::peer::PeerError;

/// Samples per RTP packet at 8 kHz for a 20 ms ptime.
const SAMPLES_PER_PACKET: usize = 160;

/// G.711 mu-law encoding of one 16-bit sample (ITU-T G.711, the usual biased segment search).
pub fn mulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    let byte = !(sign | (exponent << 4) | mantissa);
    u8::try_from(byte & 0xFF).expect("masked to one byte")
}

/// Writes `samples` (mono, 8 kHz) as PCMU RTP (payload type 0, 20 ms packets, SSRC
/// `0x7469_6e63`) in a pcap file, timestamps 20 ms apart. A last partial packet is dropped.
pub fn write_pcmu_pcap(path: impl AsRef<Path>, samples: &[i16]) -> Result<(), PeerError> {
    let path = path.as_ref();
    let mut out = Vec::new();
    // pcap global header: magic, version 2.4, GMT offset, accuracy, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (n, chunk) in samples.chunks_exact(SAMPLES_PER_PACKET).enumerate() {
        let n32 = u32::try_from(n).expect("fewer than 2^32 packets");
        let mut rtp = vec![0x80, 0x00];
        rtp.extend_from_slice(&(n32 as u16).to_be_bytes());
        rtp.extend_from_slice(&(n32 * SAMPLES_PER_PACKET as u32).to_be_bytes());
        rtp.extend_from_slice(&0x7469_6e63u32.to_be_bytes());
        rtp.extend(chunk.iter().map(|&s| mulaw_encode(s)));
        let udp_len = u16::try_from(8 + rtp.len()).expect("small packet");
        let mut udp = Vec::with_capacity(usize::from(udp_len));
        udp.extend_from_slice(&6000u16.to_be_bytes());
        udp.extend_from_slice(&6002u16.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&0u16.to_be_bytes()); // no checksum
        udp.extend_from_slice(&rtp);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        ip.extend_from_slice(&udp);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        let micros = u64::from(n32) * 20_000;
        let len = u32::try_from(frame.len()).expect("small frame");
        out.extend_from_slice(
            &u32::try_from(micros / 1_000_000)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).map_err(|e| PeerError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_matches_g711_reference_points() {
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_encode(-1), 0x7F);
        assert_eq!(mulaw_encode(32_767), 0x80);
        assert_eq!(mulaw_encode(-32_768), 0x00);
    }

    #[test]
    fn pcap_has_one_record_per_packet() {
        let dir = crate::WorkDir::new("pcap-test").expect("temp dir is writable");
        let p = dir.join("tone.pcap");
        write_pcmu_pcap(&p, &[0i16; 8000]).expect("writable");
        let bytes = std::fs::read(&p).expect("just written");
        // 24-byte header + 50 records of (16 + 14 + 20 + 8 + 12 + 160)
        assert_eq!(bytes.len(), 24 + 50 * 230);
    }
}
