//! Mute through the phone, on real loopback sockets: alice sends a tone, bob records what he
//! plays. Muted, bob hears silence while RTP keeps coming; still muted after hold, resume and
//! a codec change (a re-INVITE that restarts the media session); unmuted, the tone is back.
//! Both phones report level meters and the jitter-buffer delay on the way.
//!
//! Windows are counted in frames bob played, never in wall-clock time: a loaded machine only
//! makes the test slower.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, CallId, Levels, PhoneConfig, PhoneEvent, Quality};
use tincan_media::codec::CodecKind;
use tincan_media::device::{AudioSink, DeviceError, NullSource, ToneSource};

/// The tone's peak: -20 dBFS.
const TONE_DBFS: f64 = -20.0;
/// A frame whose peak is under this is silence (the tone peaks at 3277).
const SILENT_PEAK: u16 = 300;
/// A frame whose peak is above this is the tone.
const LOUD_PEAK: u16 = 1500;
/// Frames skipped after a change (what the jitter buffer held, 0.6 s), then frames checked.
const SETTLE: usize = 30;
const WINDOW: usize = 75;

/// Keeps the peak of every frame played.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u16>>>);

impl AudioSink for Recorder {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        let peak = frame.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        self.0.lock().expect("not poisoned").push(peak);
        Ok(())
    }
}

impl Recorder {
    fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }

    /// Waits until `len` frames were played (at most 30 s), and returns them.
    async fn until(&self, len: usize) -> Vec<u16> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let frames = self.0.lock().expect("not poisoned").clone();
            if frames.len() >= len {
                return frames;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} frames played",
                frames.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that the frames played after `mark` (once settled) are silent.
    async fn silent_after(&self, mark: usize, what: &str) {
        let frames = self.until(mark + SETTLE + WINDOW).await;
        let window = &frames[mark + SETTLE..mark + SETTLE + WINDOW];
        let loudest = window.iter().max().copied().unwrap_or(0);
        assert!(loudest < SILENT_PEAK, "{what}: a frame peaked at {loudest}");
    }

    /// Waits (at most 30 s) for ten loud frames in a row after `mark`.
    async fn tone_after(&self, mark: usize, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let frames = self.0.lock().expect("not poisoned").clone();
            let run = frames
                .get(mark..)
                .unwrap_or_default()
                .windows(10)
                .any(|w| w.iter().all(|p| *p > LOUD_PEAK));
            if run {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: no tone");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What a phone reported on the way, besides what a step waits for.
#[derive(Default)]
struct Seen {
    levels: Vec<Levels>,
    quality: Vec<Quality>,
}

/// Waits for an event of `phone` that `want` accepts (at most 30 s: a loaded machine), noting
/// levels and quality reports.
async fn wait_for<T>(
    phone: &mut Phone,
    seen: &mut Seen,
    mut want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .expect("the event came in time")
            .expect("the phone runs");
        match &ev {
            PhoneEvent::Call {
                event: CallEvent::Levels(l),
                ..
            } => seen.levels.push(*l),
            PhoneEvent::Call {
                event: CallEvent::Quality(q),
                ..
            } => seen.quality.push(q.clone()),
            _ => {}
        }
        if let Some(v) = want(&ev) {
            return v;
        }
    }
}

fn call_event(call: CallId, want: fn(&CallEvent) -> bool) -> impl FnMut(&PhoneEvent) -> Option<()> {
    move |e| match e {
        PhoneEvent::Call { call: c, event } if *c == call && want(event) => Some(()),
        _ => None,
    }
}

fn udp_addr(phone: &Phone) -> SocketAddr {
    phone
        .local_addresses()
        .iter()
        .find(|(t, _)| t.as_str() == "udp")
        .map(|(_, a)| *a)
        .expect("a udp socket")
}

/// Waits until bob has received `more` RTP packets beyond what his last report said.
async fn rtp_keeps_coming(bob: &mut Phone, seen: &mut Seen, more: u64) {
    let before = seen.quality.last().map_or(0, |q| q.packets_received);
    wait_for(bob, seen, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Quality(q),
            ..
        } if q.packets_received >= before + more => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_call_sends_silence_through_hold_resume_and_codec_change() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let meters = || PhoneConfig {
        level_meters: true,
        ..PhoneConfig::default()
    };
    let mut alice = Phone::builder()
        .bind(bind)
        .config(meters())
        .start()
        .await
        .unwrap();
    let mut bob = Phone::builder()
        .bind(bind)
        .config(meters())
        .start()
        .await
        .unwrap();
    let (mut seen_a, mut seen_b) = (Seen::default(), Seen::default());
    let bob_addr = udp_addr(&bob);
    let options = CallOptions {
        source: Box::new(ToneSource::new(1000.0, TONE_DBFS)),
        ..CallOptions::default()
    };
    let call = alice
        .call(&format!("sip:bob@{bob_addr}"), options)
        .await
        .unwrap();
    let incoming = wait_for(&mut bob, &mut seen_b, |e| match e {
        PhoneEvent::Incoming(i) => Some(i.call),
        _ => None,
    })
    .await;
    let recorder = Recorder::default();
    bob.accept(
        incoming,
        Box::new(NullSource::new()),
        Box::new(recorder.clone()),
    )
    .await
    .unwrap();
    wait_for(
        &mut alice,
        &mut seen_a,
        call_event(call, |e| matches!(e, CallEvent::Answered { .. })),
    )
    .await;
    recorder.tone_after(0, "before muting").await;

    // Muted: silence, and RTP goes on.
    alice.mute(call, true).await.unwrap();
    wait_for(
        &mut alice,
        &mut seen_a,
        call_event(call, |e| matches!(e, CallEvent::Muted { muted: true })),
    )
    .await;
    recorder.silent_after(recorder.len(), "muted").await;
    rtp_keeps_coming(&mut bob, &mut seen_b, 50).await;
    // Muting again changes nothing and says nothing.
    alice.mute(call, true).await.unwrap();

    // Hold and resume: still muted.
    alice.hold(call).await.unwrap();
    wait_for(
        &mut alice,
        &mut seen_a,
        call_event(call, |e| matches!(e, CallEvent::Hold { by_peer: false })),
    )
    .await;
    alice.resume(call).await.unwrap();
    wait_for(
        &mut alice,
        &mut seen_a,
        call_event(call, |e| matches!(e, CallEvent::Resumed { by_peer: false })),
    )
    .await;
    recorder
        .silent_after(recorder.len(), "muted after resume")
        .await;

    // A codec change restarts the media session: still muted.
    alice.change_codec(call, CodecKind::Pcma).await.unwrap();
    wait_for(
        &mut alice,
        &mut seen_a,
        call_event(call, |e| {
            matches!(
                e,
                CallEvent::CodecChanged {
                    codec: CodecKind::Pcma,
                    ..
                }
            )
        }),
    )
    .await;
    recorder
        .silent_after(recorder.len(), "muted after the codec change")
        .await;
    rtp_keeps_coming(&mut bob, &mut seen_b, 50).await;

    // Unmuted: the tone is back.
    alice.mute(call, false).await.unwrap();
    wait_for(&mut alice, &mut seen_a, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Muted { muted },
            ..
        } => {
            assert!(!muted, "muting twice said nothing");
            Some(())
        }
        _ => None,
    })
    .await;
    recorder.tone_after(recorder.len(), "unmuted").await;
    // Levels came all along: alice's microphone shows the tone (muted or not; a -20 dBFS
    // sine has an RMS of -23 dBFS), bob's output showed it too.
    rtp_keeps_coming(&mut bob, &mut seen_b, 50).await;
    assert!(seen_a.levels.len() >= 10, "{} levels", seen_a.levels.len());
    assert!(
        seen_a
            .levels
            .iter()
            .skip(1)
            .all(|l| (l.input_rms_dbfs - -23.0).abs() < 1.0),
        "{:?}",
        seen_a.levels
    );
    assert!(
        seen_b.levels.iter().any(|l| l.output_rms_dbfs > -26.0),
        "{:?}",
        seen_b.levels
    );
    assert!(
        seen_b.levels.iter().any(|l| l.output_rms_dbfs < -90.0),
        "muted is silence at bob"
    );
    // The jitter buffer holds some audio.
    assert!(
        seen_b.quality.iter().any(|q| q.jitter_buffer_ms > 0.0),
        "{:?}",
        seen_b.quality
    );
    alice.hangup(call).await.unwrap();
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Unknown calls cannot be muted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_an_unknown_call_is_an_error() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let alice = Phone::builder().bind(bind).start().await.unwrap();
    assert!(alice.mute(CallId(42), true).await.is_err());
    alice.shutdown().await;
}
