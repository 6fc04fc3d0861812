//! A small Ogg Opus file writer (RFC 3533 Ogg pages, RFC 7845 Opus mapping): for recording
//! calls and for checking our Opus packets with libopus' reference `opusdec`.
//!
//! ```
//! use tincan_media::codec::ogg::OggOpusWriter;
//!
//! let mut w = OggOpusWriter::new(Vec::new(), 0x1234, 312).unwrap();
//! w.write_packet(&[0xF8, 0xFF, 0xFE], 960).unwrap(); // a 20 ms packet
//! let file = w.finish().unwrap();
//! assert_eq!(&file[..4], b"OggS");
//! ```

use std::io::{self, Write};

/// Header type flag: this page continues a packet from the previous page.
const CONTINUED: u8 = 0x01;
/// Header type flag: first page of the stream.
const BOS: u8 = 0x02;
/// Header type flag: last page of the stream.
const EOS: u8 = 0x04;

/// Audio packets gathered on one page at most (one second of 20 ms packets).
const PACKETS_PER_PAGE: usize = 50;

/// The Ogg CRC-32 (RFC 3533 §6: polynomial 0x04C11DB7, initial value 0, not reflected, no
/// final XOR), over a page with its CRC field zeroed.
pub fn ogg_crc(data: &[u8]) -> u32 {
    static TABLE: [u32; 256] = crc_table();
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from(((crc >> 24) as u8) ^ b)]
    })
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            k += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// Writes one mono 48 kHz Opus stream into an Ogg file.
#[derive(Debug)]
pub struct OggOpusWriter<W: Write> {
    out: W,
    serial: u32,
    sequence: u32,
    /// Samples (48 kHz) of all packets written, plus the pre-skip.
    granule: u64,
    /// Packets waiting for the current page.
    pending: Vec<Vec<u8>>,
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: writes the OpusHead and OpusTags pages. `pre_skip` is the number of
    /// 48 kHz samples the decoder drops at the start (the encoder's look-ahead, 312 for
    /// libopus' VOIP mode at 48 kHz).
    pub fn new(out: W, serial: u32, pre_skip: u16) -> io::Result<OggOpusWriter<W>> {
        let mut w = OggOpusWriter {
            out,
            serial,
            sequence: 0,
            granule: u64::from(pre_skip),
            pending: Vec::new(),
        };
        // RFC 7845 §5.1: identification header.
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono/stereo
        w.write_page(&[head], BOS, 0)?;
        // RFC 7845 §5.2: comment header.
        let vendor = b"tincan";
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        w.write_page(&[tags], 0, 0)?;
        Ok(w)
    }

    /// Adds one Opus packet carrying `samples` samples at 48 kHz (960 for 20 ms).
    pub fn write_packet(&mut self, packet: &[u8], samples: u32) -> io::Result<()> {
        self.granule += u64::from(samples);
        self.pending.push(packet.to_vec());
        let segments: usize = self.pending.iter().map(|p| p.len() / 255 + 1).sum();
        if self.pending.len() >= PACKETS_PER_PAGE || segments > 200 {
            self.flush_page(0)?;
        }
        Ok(())
    }

    fn flush_page(&mut self, flags: u8) -> io::Result<()> {
        let packets = std::mem::take(&mut self.pending);
        let granule = self.granule;
        self.write_page(&packets, flags, granule)
    }

    /// Ends the stream (the last page carries the end-of-stream flag) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_page(EOS)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes packets that fit in one page (at most 255 lacing values). Larger packets
    /// (more than 64 kB, never for voice) are split over continued pages.
    fn write_page(&mut self, packets: &[Vec<u8>], flags: u8, granule: u64) -> io::Result<()> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut left = p.len();
            while left >= 255 {
                lacing.push(255u8);
                left -= 255;
            }
            lacing.push(left as u8);
            body.extend_from_slice(p);
        }
        // Split when over 255 segments (only for oversized input).
        let mut start_seg = 0;
        let mut start_byte = 0;
        let mut continued = false;
        loop {
            let end_seg = (start_seg + 255).min(lacing.len());
            let segs = &lacing[start_seg..end_seg];
            let bytes: usize = segs.iter().map(|&l| usize::from(l)).sum();
            let last = end_seg == lacing.len();
            let mut header_type = if continued { CONTINUED } else { 0 };
            if start_seg == 0 {
                header_type |= flags & BOS;
            }
            if last {
                header_type |= flags & EOS;
            }
            // A page where no packet ends has granule position -1 (RFC 3533 §6).
            let page_granule = if last { granule } else { u64::MAX };
            let mut page = Vec::with_capacity(27 + segs.len() + bytes);
            page.extend_from_slice(b"OggS");
            page.push(0); // version
            page.push(header_type);
            page.extend_from_slice(&page_granule.to_le_bytes());
            page.extend_from_slice(&self.serial.to_le_bytes());
            page.extend_from_slice(&self.sequence.to_le_bytes());
            page.extend_from_slice(&[0; 4]); // CRC, filled below
            page.push(segs.len() as u8);
            page.extend_from_slice(segs);
            page.extend_from_slice(&body[start_byte..start_byte + bytes]);
            let crc = ogg_crc(&page);
            page[22..26].copy_from_slice(&crc.to_le_bytes());
            self.out.write_all(&page)?;
            self.sequence += 1;
            if last {
                return Ok(());
            }
            continued = segs.last() == Some(&255);
            start_seg = end_seg;
            start_byte += bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // CRC-32 with polynomial 0x04C11DB7, init 0, no reflection, no final XOR: the check
        // value of "123456789" is CRC-32/CKSUM's (0x765E7680) without its final inversion.
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn pages_are_well_formed() {
        let mut w = OggOpusWriter::new(Vec::new(), 7, 312).unwrap();
        for _ in 0..60 {
            w.write_packet(&[0x78; 300], 960).unwrap();
        }
        let file = w.finish().unwrap();
        let mut pos = 0;
        let mut pages = Vec::new();
        while pos < file.len() {
            assert_eq!(&file[pos..pos + 4], b"OggS");
            let nseg = usize::from(file[pos + 26]);
            let body: usize = file[pos + 27..pos + 27 + nseg]
                .iter()
                .map(|&l| usize::from(l))
                .sum();
            let len = 27 + nseg + body;
            let mut page = file[pos..pos + len].to_vec();
            let crc = u32::from_le_bytes(page[22..26].try_into().unwrap());
            page[22..26].fill(0);
            assert_eq!(ogg_crc(&page), crc);
            let granule = u64::from_le_bytes(file[pos + 6..pos + 14].try_into().unwrap());
            pages.push((file[pos + 5], granule));
            pos += len;
        }
        assert_eq!(pages[0], (BOS, 0));
        assert_eq!(pages[1], (0, 0));
        let (flags, granule) = *pages.last().unwrap();
        assert_eq!(flags & EOS, EOS);
        assert_eq!(granule, 312 + 60 * 960);
        assert_eq!(&file[28..36], b"OpusHead");
    }
}
