//! G.722: bit-exact against sippy's libg722 (C, from spandsp's codec, which baresip uses),
//! a 1 kHz sine through the 48 kHz pipeline above 20 dB SNR, a 6 kHz tone carried (which G.711
//! cannot), and two media sessions sending 160-octet payloads, payload type 9, whose RTP
//! timestamps advance 160 per 20 ms (RFC 3551's 8000 Hz clock), played at the right pitch.
//!
//! The vectors in `tests/data/g722/` were made with sippy's libg722 (the C code of the PyPI
//! package `g722` 1.2.8, mode 1, 64 kbit/s, unpacked, 16 kHz): `chirp-noise-16k.pcm` (1 s of a
//! 100 Hz to 7.5 kHz chirp with noise and a clipped burst, s16le) encodes to
//! `chirp-noise.g722`, which decodes to `chirp-noise-decoded-16k.pcm`; `random.g722` (4000
//! pseudo-random octets) decodes to `random-decoded-16k.pcm`, each in 20 ms calls from reset.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_media::codec::g722::{G722Decoder, G722Encoder};
use tincan_media::codec::{AudioDecoder, AudioEncoder, CodecKind, FRAME_SAMPLES};
use tincan_media::rtp::{PortKind, RtpPacket};
use tincan_media::sdp::{self, SessionDescription};
use tincan_media::session::{MediaSession, SessionConfig};
use util::{Tone, db, rms, tone_purity, zero_crossing_frequency};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/g722/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pcm(name: &str) -> Vec<i16> {
    data(name)
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn first_difference<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T]) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("length {} != {}", got.len(), want.len()));
    }
    let i = got.iter().zip(want).position(|(a, b)| a != b)?;
    Some(format!("at {i}: {:?} != {:?}", got[i], want[i]))
}

#[test]
fn encoder_is_bit_exact_with_libg722() {
    let input = pcm("chirp-noise-16k.pcm");
    let want = data("chirp-noise.g722");
    let mut enc = G722Encoder::with_sample_rate(16_000).expect("16 kHz");
    let mut got = Vec::new();
    for frame in input.chunks(320) {
        assert_eq!(enc.encode(frame, &mut got).unwrap(), 160);
    }
    assert_eq!(first_difference(&got, &want), None);
}

#[test]
fn decoder_is_bit_exact_with_libg722() {
    for (coded, decoded) in [
        ("chirp-noise.g722", "chirp-noise-decoded-16k.pcm"),
        ("random.g722", "random-decoded-16k.pcm"),
    ] {
        let mut dec = G722Decoder::with_sample_rate(16_000).expect("16 kHz");
        let mut got = Vec::new();
        for payload in data(coded).chunks(160) {
            assert_eq!(dec.decode(payload, &mut got).unwrap(), 320);
        }
        assert_eq!(first_difference(&got, &pcm(decoded)), None, "{coded}");
    }
}

/// Encodes and decodes `seconds` of a tone through the 48 kHz pipeline; returns what came
/// out after the first 100 ms (filter and ADPCM warm-up).
fn round_trip(kind: CodecKind, hz: f64, amplitude: f64, seconds: usize) -> Vec<i16> {
    let mut enc = kind.encoder().expect("encoder");
    let mut dec = kind.decoder().expect("decoder");
    let mut tone = Tone::new(hz, amplitude);
    let mut out = Vec::new();
    for _ in 0..seconds * 50 {
        let mut payload = Vec::new();
        enc.encode(&tone.frame(), &mut payload).unwrap();
        dec.decode(&payload, &mut out).unwrap();
    }
    out.split_off(FRAME_SAMPLES * 5)
}

/// Signal-to-noise ratio of a tone at `hz`: its power against everything else, in dB.
fn snr_db(x: &[i16], hz: f64) -> f64 {
    let share = tone_purity(x, hz, 48_000.0).min(1.0 - 1e-12);
    10.0 * (share / (1.0 - share)).log10()
}

#[test]
fn one_khz_sine_round_trip_snr_above_20_db() {
    for amplitude in [16_000.0, 2_000.0] {
        let out = round_trip(CodecKind::G722, 1000.0, amplitude, 2);
        let snr = snr_db(&out, 1000.0);
        let level = db(rms(&out) / (amplitude / 2f64.sqrt()));
        println!("g722 1 kHz at {amplitude}: snr {snr:.1} dB, level {level:+.2} dB");
        assert!(snr > 20.0, "snr {snr:.1} dB at amplitude {amplitude}");
        assert!(level.abs() < 1.0, "level {level:+.2} dB");
    }
}

#[test]
fn six_khz_survives_g722_but_not_g711() {
    let amplitude = 8000.0;
    let out = round_trip(CodecKind::G722, 6000.0, amplitude, 2);
    let snr = snr_db(&out, 6000.0);
    let level = db(rms(&out) / (amplitude / 2f64.sqrt()));
    let zc = zero_crossing_frequency(&out, 48_000.0);
    println!("g722 6 kHz: snr {snr:.1} dB, level {level:+.2} dB, zero-crossing {zc:.0} Hz");
    assert!(snr > 15.0, "6 kHz snr {snr:.1} dB");
    assert!(level.abs() < 2.0, "6 kHz level {level:+.2} dB");
    assert!((zc - 6000.0).abs() < 300.0, "zero-crossing {zc:.0} Hz");
    // The same tone through PCMU: the 8 kHz resampler's filter removes it.
    let narrow = round_trip(CodecKind::Pcmu, 6000.0, amplitude, 1);
    let narrow_level = db(rms(&narrow) / (amplitude / 2f64.sqrt()));
    println!("pcmu 6 kHz: level {narrow_level:+.2} dB");
    assert!(
        narrow_level < -30.0,
        "pcmu carried 6 kHz: {narrow_level:+.2} dB"
    );
}

#[test]
fn session_sends_payload_type_9_with_timestamps_160_apart_and_plays_wideband() {
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:4000".parse().unwrap(),
        "127.0.0.1:5000".parse().unwrap(),
    );
    let codec = CodecKind::G722;
    let pt = codec.default_payload_type();
    let mut a = MediaSession::new(SessionConfig::new(0xA, codec, pt, b_addr), t0).unwrap();
    let mut b = MediaSession::new(SessionConfig::new(0xB, codec, pt, a_addr), t0).unwrap();
    let amplitude = 8000.0;
    let mut tone = Tone::new(6000.0, amplitude);
    let mut packets = Vec::new();
    let mut played = Vec::new();
    for k in 0..150u64 {
        let now = t0 + Duration::from_millis(20 * k);
        a.send_frame(now, &tone.frame()).unwrap();
        while let Some(t) = a.poll_transmit() {
            if t.kind == PortKind::Rtp {
                packets.push(RtpPacket::parse(&t.bytes).expect("rtp"));
            }
            b.handle_packet(now, a_addr, t.kind, &t.bytes);
        }
        while b.poll_transmit().is_some() {}
        played.extend(b.playout(now));
    }
    assert_eq!(packets.len(), 150);
    for p in &packets {
        assert_eq!(p.payload_type, 9);
        assert_eq!(p.payload.len(), 160, "20 ms of G.722 is 160 octets");
    }
    for w in packets.windows(2) {
        assert_eq!(
            w[1].timestamp.wrapping_sub(w[0].timestamp),
            160,
            "an 8000 Hz clock: 160 units per 20 ms"
        );
    }
    // 3 s sent, 3 s (less the playout delay) played, no concealment: the playout reads the
    // timestamps at 8000 Hz.
    let stats = b.stats();
    assert_eq!(stats.playout.concealed, 0, "{:?}", stats.playout);
    let steady = &played[24_000..];
    let level = db(rms(steady) / (amplitude / 2f64.sqrt()));
    let zc = zero_crossing_frequency(steady, 48_000.0);
    println!("session 6 kHz: level {level:+.2} dB, zero-crossing {zc:.0} Hz");
    assert!(level.abs() < 2.0, "level {level:+.2} dB");
    assert!((zc - 6000.0).abs() < 300.0, "zero-crossing {zc:.0} Hz");
}

/// A G.722 desk phone's offer (Polycom/Yealink style: G.722 first, then G.711).
const DESK_PHONE_OFFER: &str = "v=0\r\n\
o=- 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn local_media() -> sdp::LocalMedia {
    let mut l = sdp::LocalMedia::new("127.0.0.1".parse().unwrap(), 4000);
    l.session_id = 7;
    l.session_version = 1;
    l
}

#[test]
fn default_offer_lists_g722_after_opus_before_g711() {
    let offer = sdp::offer(&local_media()).to_string();
    assert!(
        offer.contains("m=audio 4000 RTP/AVP 111 9 0 8 101"),
        "{offer}"
    );
    assert!(offer.contains("a=rtpmap:9 G722/8000\r\n"), "{offer}");
}

#[test]
fn answer_picks_g722_when_both_offer_it() {
    let offer = SessionDescription::parse(DESK_PHONE_OFFER).unwrap();
    let (answer, n) = sdp::answer(&offer, &local_media()).expect("acceptable");
    assert_eq!((n.codec, n.payload_type), (CodecKind::G722, 9));
    let text = answer.to_string();
    assert!(text.contains("m=audio 4000 RTP/AVP 9 101\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:9 G722/8000\r\n"), "{text}");
    // The session the answer makes runs the 8000 Hz clock.
    let config = n.session_config(1, 2);
    assert_eq!(config.codec, CodecKind::G722);
    assert!(MediaSession::new(config, Instant::now()).is_ok());

    // Our offer of Opus, G.722, G.711 answered by a peer without Opus: G.722 wins.
    let local = local_media();
    let peer_answer = SessionDescription::parse(&DESK_PHONE_OFFER.replace(
        "m=audio 20000 RTP/AVP 9 0 8 101",
        "m=audio 20000 RTP/AVP 9 101",
    ))
    .unwrap();
    let n = sdp::apply_answer(&local, &peer_answer).expect("acceptable answer");
    assert_eq!((n.codec, n.payload_type), (CodecKind::G722, 9));

    // A peer without G.722 still gets G.711.
    let narrow = SessionDescription::parse(
        &DESK_PHONE_OFFER.replace("RTP/AVP 9 0 8 101", "RTP/AVP 0 8 101"),
    )
    .unwrap();
    let (_, n) = sdp::answer(&narrow, &local_media()).unwrap();
    assert_eq!(n.codec, CodecKind::Pcmu);
}

#[test]
fn five_percent_loss_with_jitter_is_concealed_and_the_tone_goes_on() {
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:4000".parse().unwrap(),
        "127.0.0.1:5000".parse().unwrap(),
    );
    let codec = CodecKind::G722;
    let mut a = MediaSession::new(SessionConfig::new(0xA, codec, 9, b_addr), t0).unwrap();
    let mut b = MediaSession::new(SessionConfig::new(0xB, codec, 9, a_addr), t0).unwrap();
    let mut net = util::Network::new(
        11,
        util::Impairment {
            loss: 0.05,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(20),
        },
    );
    let amplitude = 8000.0;
    let mut tone = Tone::new(1000.0, amplitude);
    let mut played = Vec::new();
    for ms in 0..6_000u64 {
        let now = t0 + Duration::from_millis(ms);
        while let Some(p) = net.deliver(now) {
            b.handle_packet(now, p.from, p.kind, &p.bytes);
        }
        if ms.is_multiple_of(20) {
            a.send_frame(now, &tone.frame()).unwrap();
            played.extend(b.playout(now));
        }
        while let Some(t) = a.poll_transmit() {
            if t.kind == PortKind::Rtp {
                net.send(now, a_addr, t.to, t.bytes);
            }
        }
        while b.poll_transmit().is_some() {}
    }
    let stats = b.stats();
    println!("g722 5 % loss: {:?}", stats.playout);
    assert!(stats.playout.concealed > 0, "losses were concealed");
    let steady = &played[24_000..];
    let purity = tone_purity(steady, 1000.0, 48_000.0);
    let level = db(rms(steady) / (amplitude / 2f64.sqrt()));
    let zc = zero_crossing_frequency(steady, 48_000.0);
    println!("g722 5 % loss: purity {purity:.3}, level {level:+.2} dB, zero-crossing {zc:.0}");
    assert!(purity > 0.9, "purity {purity:.3}");
    assert!(level.abs() < 3.0, "level {level:+.2} dB");
    assert!((zc - 1000.0).abs() < 100.0, "zero-crossing {zc:.0} Hz");
}
