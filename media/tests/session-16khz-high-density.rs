//! A media session at 16 kHz PCM (`SessionConfig::with_opus(OpusConfig::high_density())`, a
//! mixer's or bridge's rate): frames in and out are 320 samples, RTP timestamps still count at
//! 48 kHz (RFC 7587 §4.1) so the peer can be an ordinary 48 kHz session; G.711 works at the
//! same rate; with DTX the pauses are not sent and the receiver counts them as silence.
#![allow(clippy::disallowed_methods)] // the virtual clock starts at the real now

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_media::codec::opus::OpusConfig;
use tincan_media::codec::{CodecError, CodecKind};
use tincan_media::rtp::{PortKind, RtpPacket};
use tincan_media::session::{MediaSession, SessionConfig, SessionError};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// `frames` 20 ms frames of a 1 kHz tone at `rate`, silent where `talk(frame)` is false.
fn tone(rate: u32, frames: usize, talk: impl Fn(usize) -> bool) -> Vec<Vec<i16>> {
    let n = (rate / 50) as usize;
    (0..frames)
        .map(|k| {
            (0..n)
                .map(|i| {
                    let t = (k * n + i) as f64 / f64::from(rate);
                    let a = if talk(k) { 8000.0 } else { 0.0 };
                    (a * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
                })
                .collect()
        })
        .collect()
}

/// Frequency from the zero crossings, and RMS, of `pcm` at `rate`.
fn frequency_and_rms(pcm: &[i16], rate: u32) -> (f64, f64) {
    let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    (
        crossings as f64 / 2.0 * f64::from(rate) / pcm.len() as f64,
        rms,
    )
}

/// Sends A's frames to B over a clean in-process network, B playing every 20 ms; returns
/// B's playout and A's RTP packets (no SRTP, so they can be read).
fn call(
    a_config: SessionConfig,
    b_config: SessionConfig,
    frames: &[Vec<i16>],
) -> (Vec<i16>, Vec<RtpPacket>, MediaSession) {
    let t0 = Instant::now();
    let mut a = MediaSession::new(a_config, t0).expect("session a");
    let mut b = MediaSession::new(b_config, t0).expect("session b");
    let (mut played, mut sent) = (Vec::new(), Vec::new());
    for (k, f) in frames.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * k as u64);
        a.send_frame(now, f).expect("frame of the session's size");
        while let Some(t) = a.poll_transmit() {
            if t.kind == PortKind::Rtp
                && let Ok(p) = RtpPacket::parse(&t.bytes)
            {
                sent.push(p);
            }
            b.handle_packet(now, addr("127.0.0.1:4000"), t.kind, &t.bytes);
        }
        played.extend(b.playout(now + Duration::from_millis(5)));
    }
    (played, sent, b)
}

fn configs(codec: CodecKind) -> (SessionConfig, SessionConfig) {
    let pt = codec.default_payload_type();
    let mut a = SessionConfig::new(0xA, codec, pt, addr("127.0.0.1:5000"));
    let mut b = SessionConfig::new(0xB, codec, pt, addr("127.0.0.1:4000"));
    a.rtcp_mux = true;
    b.rtcp_mux = true;
    (a, b)
}

#[test]
fn sixteen_khz_session_plays_320_sample_frames_with_48_khz_timestamps() {
    let (a, b) = configs(CodecKind::Opus);
    let (a, b) = (
        a.with_opus(OpusConfig::high_density()),
        b.with_opus(OpusConfig::high_density()),
    );
    assert_eq!((a.sample_rate, a.frame_samples()), (16_000, 320));
    let (played, sent, mut b) = call(a, b, &tone(16_000, 100, |_| true));
    assert_eq!(b.sample_rate(), 16_000);
    assert_eq!(played.len(), 100 * 320);
    assert!(sent.len() >= 99, "{} packets", sent.len());
    for w in sent.windows(2) {
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 960);
    }
    let (hz, rms) = frequency_and_rms(&played[320 * 20..], 16_000);
    assert!((hz - 1000.0).abs() < 15.0, "{hz} Hz");
    assert!(rms > 4000.0, "rms {rms}");
    let counters = b.stats().playout;
    assert_eq!(counters.concealed, 0, "{counters:?}");
}

#[test]
fn a_16_khz_end_talks_to_a_48_khz_end() {
    let (a, b) = configs(CodecKind::Opus);
    let a = a.with_opus(OpusConfig::high_density());
    let (played, _, _) = call(a, b, &tone(16_000, 100, |_| true));
    assert_eq!(played.len(), 100 * 960);
    let (hz, rms) = frequency_and_rms(&played[960 * 20..], 48_000);
    assert!((hz - 1000.0).abs() < 15.0, "{hz} Hz");
    assert!(rms > 4000.0, "rms {rms}");
}

#[test]
fn g711_works_at_the_session_rate() {
    let (mut a, mut b) = configs(CodecKind::Pcmu);
    a.sample_rate = 16_000;
    b.sample_rate = 16_000;
    let (played, sent, _) = call(a, b, &tone(16_000, 50, |_| true));
    assert_eq!(played.len(), 50 * 320);
    assert!(sent.iter().all(|p| p.payload.len() == 160));
    let (hz, _) = frequency_and_rms(&played[320 * 10..], 16_000);
    assert!((hz - 1000.0).abs() < 15.0, "{hz} Hz");
}

#[test]
fn wrong_frame_size_and_rate_are_refused() {
    let (a, _) = configs(CodecKind::Opus);
    let mut s = MediaSession::new(
        a.clone().with_opus(OpusConfig::high_density()),
        Instant::now(),
    )
    .expect("session");
    assert_eq!(
        s.send_frame(Instant::now(), &[0; 960]),
        Err(SessionError::Codec(CodecError::FrameSize {
            expected: 320,
            got: 960
        }))
    );
    let mut odd = a;
    odd.sample_rate = 44_100;
    assert!(matches!(
        MediaSession::new(odd, Instant::now()),
        Err(SessionError::Codec(CodecError::SampleRate {
            rate: 44_100,
            ..
        }))
    ));
}

/// DTX: a tone with pauses; the pauses are not sent, the receiver counts them as silence (no
/// concealment) and its delay does not grow across them.
#[test]
fn dtx_pauses_are_not_sent_and_not_concealed() {
    let (a, b) = configs(CodecKind::Opus);
    let opus = OpusConfig {
        dtx: true,
        ..OpusConfig::high_density()
    };
    let (a, b) = (a.with_opus(opus.clone()), b.with_opus(opus));
    // 1 s of tone, 1 s of silence, 1 s of tone.
    let frames = tone(16_000, 150, |k| !(50..100).contains(&k));
    let (played, sent, mut b) = call(a, b, &frames);
    assert!(sent.len() < 130, "{} packets for 150 frames", sent.len());
    let stats = b.stats();
    assert_eq!(stats.playout.concealed, 0, "{:?}", stats.playout);
    assert!(
        stats.playout_delay <= Duration::from_millis(40),
        "{stats:?}"
    );
    let (hz, rms) = frequency_and_rms(&played[320 * 110..], 16_000);
    assert!((hz - 1000.0).abs() < 15.0, "{hz} Hz");
    assert!(rms > 4000.0, "rms {rms}");
}
