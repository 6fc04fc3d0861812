//! Two tokio drivers over real loopback UDP, SRTP (AES_CM_128_HMAC_SHA1_80) and Opus, for
//! about two and a half seconds of a tone each way: the received audio has the tone's
//! frequency and level, DTMF gets through, and the final statistics add up. Bounded: 2.5 s
//! of wall time.
#![cfg(feature = "tokio")]
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan_media::codec::CodecKind;
use tincan_media::device::{AudioSink, AudioSource, DeviceError, SourceStatus};
use tincan_media::driver::{MediaPorts, PortRange, spawn};
use tincan_media::session::{MediaEvent, SessionConfig};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};
use util::{Tone, db, rms, tone_purity};

struct ToneSource(Tone);

impl AudioSource for ToneSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        frame.copy_from_slice(&self.0.frame());
        Ok(SourceStatus::Audio)
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<i16>>>);

impl AudioSink for Recorder {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(frame);
        Ok(())
    }
}

fn key(fill: u8) -> CryptoAttribute {
    CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(fill))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_talk_srtp_opus_over_loopback() {
    let ip = "127.0.0.1".parse().unwrap();
    let ports_a = MediaPorts::bind(ip, PortRange::Any, false).await.unwrap();
    let ports_b = MediaPorts::bind(ip, PortRange::Any, true).await.unwrap();
    assert_eq!(ports_a.rtp_addr().port() % 2, 0, "even rtp port");
    assert_eq!(
        ports_a.rtcp_addr().unwrap().port(),
        ports_a.rtp_addr().port() + 1
    );
    let (a_rtp, a_rtcp, b_rtp) = (ports_a.rtp_addr(), ports_a.rtcp_addr(), ports_b.rtp_addr());
    // A without rtcp-mux, B with it: each is told the other's addresses as SDP would.
    let mut ca = SessionConfig::new(0xA, CodecKind::Opus, 111, b_rtp);
    ca.srtp = Some((key(1), key(2)));
    ca.remote_rtcp = Some(b_rtp);
    ca.telephone_event_payload_type = Some(101);
    let mut cb = SessionConfig::new(0xB, CodecKind::Opus, 111, a_rtp);
    cb.srtp = Some((key(2), key(1)));
    cb.rtcp_mux = true;
    cb.telephone_event_payload_type = Some(101);
    // B muxes: it sends RTCP to A's RTP port, which A demultiplexes by packet type
    // (RFC 5761 §4); A sends its RTCP from its own RTCP port to B's RTP port.
    assert!(a_rtcp.is_some());
    let (rec_a, rec_b) = (Recorder::default(), Recorder::default());
    let a = spawn(
        ports_a,
        ca,
        Box::new(ToneSource(Tone::new(1000.0, 8000.0))),
        Box::new(rec_a.clone()),
    )
    .unwrap();
    let mut b = spawn(
        ports_b,
        cb,
        Box::new(ToneSource(Tone::new(440.0, 8000.0))),
        Box::new(rec_b.clone()),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.send_dtmf('7', Duration::from_millis(100)).await.unwrap();
    assert!(a.send_dtmf('x', Duration::from_millis(100)).await.is_err());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let stats_a = a.stop().await;
    let mut dtmf = Vec::new();
    while let Some(e) = b.try_event() {
        if let MediaEvent::DtmfReceived { digit, .. } = e {
            dtmf.push(digit);
        }
    }
    let stats_b = b.stop().await;
    println!("a: {stats_a:?}\nb: {stats_b:?}");
    assert_eq!(dtmf, vec!['7']);
    assert!(stats_a.packets_sent > 80, "{}", stats_a.packets_sent);
    assert!(stats_b.packets_received > 80);
    assert_eq!(stats_a.srtp_rejected + stats_b.srtp_rejected, 0);

    for (label, rec, f) in [("a->b", &rec_b, 1000.0), ("b->a", &rec_a, 440.0)] {
        let played = rec.0.lock().unwrap().clone();
        // 1.7 s to 2.3 s of playout: after start-up (a loaded machine's real-time ticks make
        // the jitter buffer grow at first) and after the DTMF that replaced A's audio.
        assert!(played.len() > 110_400, "{label}: {} samples", played.len());
        let steady = &played[81_600..110_400];
        // Real-time ticks on a shared machine jitter; the jitter buffer adapts (stretches,
        // cross-fades) now and then. Judge the typical 100 ms block, not the worst one.
        let mut purities: Vec<f64> = steady
            .chunks(4800)
            .map(|b| tone_purity(b, f, 48_000.0))
            .collect();
        purities.sort_by(f64::total_cmp);
        let median = purities[purities.len() / 2];
        let level = db(rms(steady) / (8000.0 / 2f64.sqrt()));
        println!("{label}: block purities {purities:.3?}, level {level:+.2} dB");
        assert!(median > 0.9, "{label}: median purity {median}");
        assert!(level.abs() < 3.0, "{label}: level {level}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ports_come_from_the_range_in_even_pairs() {
    let ip = "127.0.0.1".parse().unwrap();
    let p = MediaPorts::bind(
        ip,
        PortRange::Range {
            first: 41_001,
            last: 41_099,
        },
        false,
    )
    .await
    .unwrap();
    let rtp = p.rtp_addr().port();
    assert!(rtp % 2 == 0 && (41_002..=41_098).contains(&rtp), "{rtp}");
    assert_eq!(p.rtcp_addr().unwrap().port(), rtp + 1);
    // The same pair cannot be bound twice: a second binding picks another pair.
    let q = MediaPorts::bind(
        ip,
        PortRange::Range {
            first: 41_001,
            last: 41_099,
        },
        false,
    )
    .await
    .unwrap();
    assert_ne!(q.rtp_addr().port(), rtp);
}
