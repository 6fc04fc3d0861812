//! A tiny classic-pcap reader (libpcap format, microsecond or nanosecond timestamps, either
//! byte order), Ethernet (optionally 802.1Q-tagged) / IPv4 / UDP only.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// One UDP datagram from a capture.
#[derive(Debug, Clone)]
pub struct UdpRecord {
    /// Capture time relative to the first record.
    pub at: Duration,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

/// Parses a capture; non-UDP/IPv4 frames are skipped. `None` if it is not classic pcap
/// with Ethernet link type.
pub fn udp_records(file: &[u8]) -> Option<Vec<UdpRecord>> {
    let magic = file.get(..4)?;
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return None,
    };
    let u32_at = |b: &[u8], i: usize| -> Option<u32> {
        let w: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        })
    };
    let link_type = u32_at(file, 20)?;
    if link_type != 1 {
        return None;
    }
    let mut out = Vec::new();
    let mut offset = 24;
    let mut first: Option<Duration> = None;
    while offset + 16 <= file.len() {
        let secs = u32_at(file, offset)?;
        let frac = u32_at(file, offset + 4)?;
        let incl = u32_at(file, offset + 8)? as usize;
        let frame = file.get(offset + 16..offset + 16 + incl)?;
        offset += 16 + incl;
        let ts = Duration::from_secs(u64::from(secs))
            + if nanos {
                Duration::from_nanos(u64::from(frac))
            } else {
                Duration::from_micros(u64::from(frac))
            };
        let Some((from, to, payload)) = ethernet_ipv4_udp(frame) else {
            continue;
        };
        let start = *first.get_or_insert(ts);
        out.push(UdpRecord {
            at: ts.saturating_sub(start),
            from,
            to,
            payload: payload.to_vec(),
        });
    }
    Some(out)
}

fn ethernet_ipv4_udp(frame: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut ip_start = 14;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        ip_start = 18;
    }
    if ethertype != 0x0800 {
        return None;
    }
    let ip = frame.get(ip_start..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ip.first()? >> 4 != 4 || ihl < 20 || *ip.get(9)? != 17 {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = ip.get(ihl..total_len.min(ip.len()))?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let ulen = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let payload = udp.get(8..ulen.min(udp.len()))?;
    Some((
        SocketAddr::V4(SocketAddrV4::new(src, sport)),
        SocketAddr::V4(SocketAddrV4::new(dst, dport)),
        payload,
    ))
}
