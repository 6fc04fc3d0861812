//! Interop with real RTP from outside: the captures that ship with sipp (Debian
//! `sip-tester`, `/usr/share/sip-tester/`).
//!
//! - `g711a.pcap` (PCMA, payload type 8): our A-law expansion equals sox's, sample for
//!   sample, and the G.711 decoder turns the stream into 48 kHz audio.
//! - `dtmf_2833_<key>.pcap` (RFC 4733 telephone events): our receiver reports each key once.
//!
//! Without the captures (or sox) the tests skip (`skip::skip`; a failure under `CI=true`);
//! CI installs them.

use std::path::Path;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};
use tincan_media::codec::g711::{G711Decoder, Law};
use tincan_media::codec::telephone_event::{ReceivedEvent, TelephoneEventReceiver};

use tincan_media::codec::{AudioDecoder, CodecKind, FRAME_SAMPLES};
use tincan_media::jitter::JitterConfig;
use tincan_media::jitter::playout::{FrameKind, Playout};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

const DIR: &str = "/usr/share/sip-tester";

/// One RTP packet: payload type, sequence number, timestamp, marker, payload.
struct Rtp {
    pt: u8,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
}

/// Reads the RTP packets of a classic pcap file (Ethernet or Linux cooked capture, IPv4,
/// UDP). A tiny reader: enough for these captures.
fn read_pcap(path: &Path) -> Vec<Rtp> {
    let data = std::fs::read(path).expect("capture readable");
    assert!(data.len() >= 24, "pcap header");
    let magic = u32::from_le_bytes(data[0..4].try_into().expect("4 bytes"));
    let le = match magic {
        0xa1b2_c3d4 => true,
        0xd4c3_b2a1 => false,
        other => panic!("not a classic pcap file: magic {other:#x}"),
    };
    let u32_at = |b: &[u8]| {
        let a: [u8; 4] = b[..4].try_into().expect("4 bytes");
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32_at(&data[20..]);
    let link_len = match link {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked
        0 => 4,    // BSD loopback
        other => panic!("link type {other}"),
    };
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let incl = u32_at(&data[pos + 8..]) as usize;
        let frame = &data[pos + 16..(pos + 16 + incl).min(data.len())];
        pos += 16 + incl;
        if frame.len() < link_len + 20 {
            continue;
        }
        let ip = &frame[link_len..];
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue; // IPv4 UDP only
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let udp = &ip[ihl..];
        if udp.len() < 8 + 12 {
            continue;
        }
        let rtp = &udp[8..];
        if rtp[0] >> 6 != 2 {
            continue;
        }
        let cc = usize::from(rtp[0] & 0x0f);
        let mut start = 12 + 4 * cc;
        if rtp[0] & 0x10 != 0 && rtp.len() >= start + 4 {
            let words = usize::from(u16::from_be_bytes([rtp[start + 2], rtp[start + 3]]));
            start += 4 + 4 * words;
        }
        let mut end = rtp.len();
        if rtp[0] & 0x20 != 0 {
            end -= usize::from(rtp[end - 1]);
        }
        out.push(Rtp {
            pt: rtp[1] & 0x7f,
            seq: u16::from_be_bytes([rtp[2], rtp[3]]),
            ts: u32::from_be_bytes(rtp[4..8].try_into().expect("4 bytes")),
            payload: rtp[start..end].to_vec(),
        });
    }
    out
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| Path::new(&p).join(bin).is_file())
    })
}

#[test]
fn g711a_capture_decodes_like_sox() {
    let path = Path::new(DIR).join("g711a.pcap");
    if !path.exists() || !on_path("sox") {
        skip::skip(&format!(
            "{} or sox missing (Debian sip-tester, sox)",
            path.display()
        ));
        return;
    }
    let mut packets = read_pcap(&path);
    packets.retain(|p| p.pt == 8);
    packets.sort_by_key(|p| p.seq);
    assert!(packets.len() >= 200, "{} PCMA packets", packets.len());
    let alaw: Vec<u8> = packets
        .iter()
        .flat_map(|p| p.payload.iter().copied())
        .collect();

    // sox decodes the raw A-law bytes to signed 16-bit.
    let mut child = Command::new("sox")
        .args([
            "-t",
            "al",
            "-r",
            "8000",
            "-c",
            "1",
            "-",
            "-t",
            "s16",
            "-e",
            "signed-integer",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sox runs");
    let mut stdin = child.stdin.take().expect("piped");
    let bytes = alaw.clone();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&bytes).expect("sox reads");
    });
    let out = child.wait_with_output().expect("sox finishes");
    feeder.join().expect("feeder");
    assert!(out.status.success());
    let reference: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let ours: Vec<i16> = alaw.iter().map(|&b| Law::A.decode_sample(b)).collect();
    assert_eq!(ours.len(), reference.len());
    let differ = ours.iter().zip(&reference).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} samples differ from sox");

    // The decoder gives 48 kHz audio for packets of any length (this capture mixes 20 and
    // 30 ms packets), and the playout turns them into steady 20 ms frames.
    let mut dec = G711Decoder::new(Law::A);
    let mut pcm = Vec::new();
    for p in &packets {
        assert_eq!(
            dec.decode(&p.payload, &mut pcm).expect("decodes"),
            p.payload.len() * 6
        );
    }
    let mut playout = Playout::new(
        JitterConfig::for_codec(CodecKind::Pcma),
        CodecKind::Pcma.decoder().expect("pcma"),
    );
    #[allow(clippy::disallowed_methods)] // the virtual clock starts at the real now
    let t0 = Instant::now();
    let base_ts = packets[0].ts;
    let mut played = 0usize;
    let mut it = packets.iter().peekable();
    for k in 0..packets.len() * 3 {
        let now = t0 + Duration::from_millis(20 * k as u64 + 30);
        // Each packet arrives when its audio has been captured.
        while let Some(p) =
            it.next_if(|p| u64::from(p.ts.wrapping_sub(base_ts)) / 8 <= 20 * k as u64)
        {
            playout.insert(now, u64::from(p.seq), p.ts, p.payload.clone(), false);
        }
        if it.peek().is_none() && playout.jitter().buffered() == 0 {
            break;
        }
        let f = playout.pop(now);
        assert_eq!(f.pcm.len(), FRAME_SAMPLES);
        let kind = f.kind;
        if kind == FrameKind::Decoded {
            played += 1;
        }
    }
    let st = playout.stats();
    println!("g711a.pcap through the playout: {played} frames decoded, {st:?}");
    assert_eq!(st.played as usize, packets.len(), "every packet played");
    assert_eq!((st.lost, st.late), (0, 0));
    assert!(
        played * FRAME_SAMPLES + 2 * FRAME_SAMPLES >= alaw.len() * 6,
        "all audio played"
    );
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    println!(
        "g711a.pcap: {} packets, {} samples at 48 kHz, rms {rms:.0}",
        packets.len(),
        pcm.len()
    );
    assert!(rms > 100.0);
}

#[test]
fn rfc4733_captures_give_their_keys() {
    let keys = [
        ("0", '0'),
        ("1", '1'),
        ("5", '5'),
        ("9", '9'),
        ("pound", '#'),
        ("star", '*'),
    ];
    if !Path::new(DIR).join("dtmf_2833_0.pcap").exists() {
        skip::skip(&format!(
            "{DIR}/dtmf_2833_*.pcap missing (Debian sip-tester)"
        ));
        return;
    }
    for (name, key) in keys {
        let packets = read_pcap(&Path::new(DIR).join(format!("dtmf_2833_{name}.pcap")));
        assert!(!packets.is_empty(), "{name}: packets");
        let mut rx = TelephoneEventReceiver::new();
        let mut events = Vec::new();
        for p in &packets {
            events.extend(rx.handle(p.ts, &p.payload).expect("valid events"));
        }
        println!(
            "dtmf_2833_{name}.pcap: {} packets (pt {}), {events:?}",
            packets.len(),
            packets[0].pt
        );
        assert!(
            matches!(events.first(), Some(ReceivedEvent::Started { digit, .. }) if *digit == key),
            "{name}: {events:?}"
        );
        assert!(
            matches!(events.last(), Some(ReceivedEvent::Ended { digit, .. }) if *digit == key),
            "{name}: {events:?}"
        );
        assert_eq!(events.len(), 2, "{name}: one key press");
    }
}
