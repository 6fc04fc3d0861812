//! A local three-way conference on real loopback sockets: alice has calls with bob (who sends
//! 440 Hz) and carol (880 Hz) and her own microphone sends 660 Hz. Joined, bob hears 660 and
//! 880 but not himself, carol hears 660 and 440, alice's speaker plays 440 and 880 but not her
//! own voice. Split, each call is a normal call again: bob hears alice alone.
//!
//! Windows are counted in frames played, never in wall-clock time: a loaded machine only
//! makes the test slower.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, CallId, PhoneEvent};
use tincan_media::device::{AudioSink, AudioSource, DeviceError, NullSink, NullSource, ToneSource};
use tincan_media::tones::goertzel_power;

/// Each tone peaks at -20 dBFS: a Goertzel power of about 0.0025.
const TONE_DBFS: f64 = -20.0;
/// A tone counts as heard above this power...
const HEARD: f64 = 0.0003;
/// ...and as absent under this one.
const ABSENT: f64 = 0.00003;
/// Frames skipped after a change (the jitter buffer and the rings), then frames checked.
const SETTLE: usize = 40;
const WINDOW: usize = 50;

/// Keeps every sample played.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<i16>>>);

impl AudioSink for Capture {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(frame);
        Ok(())
    }
}

impl Capture {
    fn frames(&self) -> usize {
        self.0.lock().expect("not poisoned").len() / 960
    }

    /// Waits (at most 60 s) for the window after `mark` and returns the power of each of
    /// `frequencies` in it.
    async fn powers_after(&self, mark: usize, frequencies: &[f64]) -> Vec<f64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let (from, to) = ((mark + SETTLE) * 960, (mark + SETTLE + WINDOW) * 960);
        loop {
            {
                let samples = self.0.lock().expect("not poisoned");
                if samples.len() >= to {
                    let window = &samples[from..to];
                    return frequencies
                        .iter()
                        .map(|f| goertzel_power(window, *f))
                        .collect();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} frames played",
                self.frames()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for an event of `phone` that `want` accepts (at most 30 s: a loaded machine).
async fn wait_for<T>(phone: &mut Phone, mut want: impl FnMut(&PhoneEvent) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .expect("the event came in time")
            .expect("the phone runs");
        if let Some(v) = want(&ev) {
            return v;
        }
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

/// `from` calls `to`, who answers with `source` and `sink`; returns the caller's call.
async fn connect(
    from: &mut Phone,
    options: CallOptions,
    to: &mut Phone,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
) -> CallId {
    let call = from
        .call(&format!("sip:peer@{}", udp_addr(to)), options)
        .await
        .unwrap();
    let incoming = wait_for(to, |e| match e {
        PhoneEvent::Incoming(i) => Some(i.call),
        _ => None,
    })
    .await;
    to.accept(incoming, source, sink).await.unwrap();
    wait_for(from, |e| match e {
        PhoneEvent::Call {
            call: c,
            event: CallEvent::Answered { .. },
        } if *c == call => Some(()),
        _ => None,
    })
    .await;
    call
}

/// Asserts which of 440, 660 and 880 Hz `who` hears.
fn assert_hears(who: &str, powers: &[f64], heard: [bool; 3]) {
    for ((f, p), h) in [440, 660, 880].iter().zip(powers).zip(heard) {
        if h {
            assert!(*p > HEARD, "{who} should hear {f} Hz: power {p:.6}");
        } else {
            assert!(*p < ABSENT, "{who} should not hear {f} Hz: power {p:.6}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_party_hears_the_two_others_until_split() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut alice = Phone::builder().bind(bind).start().await.unwrap();
    let mut bob = Phone::builder().bind(bind).start().await.unwrap();
    let mut carol = Phone::builder().bind(bind).start().await.unwrap();
    let (alice_hears, bob_hears, carol_hears) =
        (Capture::default(), Capture::default(), Capture::default());
    let to_bob = connect(
        &mut alice,
        CallOptions {
            source: Box::new(ToneSource::new(660.0, TONE_DBFS)),
            sink: Box::new(alice_hears.clone()),
            ..CallOptions::default()
        },
        &mut bob,
        Box::new(ToneSource::new(440.0, TONE_DBFS)),
        Box::new(bob_hears.clone()),
    )
    .await;
    // The second call's own devices are silent: all alice says goes through the first's.
    let to_carol = connect(
        &mut alice,
        CallOptions::default(),
        &mut carol,
        Box::new(ToneSource::new(880.0, TONE_DBFS)),
        Box::new(carol_hears.clone()),
    )
    .await;
    // alice holds bob while she talks to carol (call waiting), then joins them: bob is resumed.
    alice.hold(to_bob).await.unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Hold { by_peer: false },
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    let freqs = [440.0, 660.0, 880.0];
    let before = bob_hears.frames();
    // Held (sendonly), bob still hears alice but not carol.
    let b = bob_hears.powers_after(before, &freqs).await;
    assert_hears("bob before", &b, [false, true, false]);

    assert!(alice.conference(to_bob, to_bob).await.is_err());
    alice.conference(to_bob, to_carol).await.unwrap();
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let j = wait_for(&mut alice, |e| match e {
            PhoneEvent::Call {
                call,
                event: CallEvent::Conference { with: Some(with) },
            } => Some((*call, *with)),
            _ => None,
        })
        .await;
        joined.push(j);
    }
    joined.sort_by_key(|(c, _)| c.0);
    let mut want = vec![(to_bob, to_carol), (to_carol, to_bob)];
    want.sort_by_key(|(c, _)| c.0);
    assert_eq!(joined, want);
    assert!(
        alice.conference(to_bob, to_carol).await.is_err(),
        "one at a time"
    );

    let marks = [
        alice_hears.frames(),
        bob_hears.frames(),
        carol_hears.frames(),
    ];
    let a = alice_hears.powers_after(marks[0], &freqs).await;
    let b = bob_hears.powers_after(marks[1], &freqs).await;
    let c = carol_hears.powers_after(marks[2], &freqs).await;
    println!("alice {a:?}\nbob {b:?}\ncarol {c:?}");
    assert_hears("alice", &a, [true, false, true]);
    assert_hears("bob", &b, [false, true, true]);
    assert_hears("carol", &c, [true, true, false]);

    alice.split(to_carol).await.unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Conference { with: None },
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    assert!(alice.split(to_bob).await.is_err(), "already split");
    let marks = [
        alice_hears.frames(),
        bob_hears.frames(),
        carol_hears.frames(),
    ];
    let a = alice_hears.powers_after(marks[0], &freqs).await;
    let b = bob_hears.powers_after(marks[1], &freqs).await;
    let c = carol_hears.powers_after(marks[2], &freqs).await;
    println!("split: alice {a:?}\nbob {b:?}\ncarol {c:?}");
    assert_hears("alice after split", &a, [true, false, false]);
    assert_hears("bob after split", &b, [false, true, false]);
    assert_hears("carol after split", &c, [false, false, false]);

    alice.shutdown().await;
    bob.shutdown().await;
    carol.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_one_call_leaves_the_other_a_normal_call() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut alice = Phone::builder().bind(bind).start().await.unwrap();
    let mut bob = Phone::builder().bind(bind).start().await.unwrap();
    let mut carol = Phone::builder().bind(bind).start().await.unwrap();
    let bob_hears = Capture::default();
    let to_bob = connect(
        &mut alice,
        CallOptions {
            source: Box::new(ToneSource::new(660.0, TONE_DBFS)),
            sink: Box::new(NullSink::new()),
            ..CallOptions::default()
        },
        &mut bob,
        Box::new(NullSource::new()),
        Box::new(bob_hears.clone()),
    )
    .await;
    let to_carol = connect(
        &mut alice,
        CallOptions::default(),
        &mut carol,
        Box::new(ToneSource::new(880.0, TONE_DBFS)),
        Box::new(NullSink::new()),
    )
    .await;
    alice.conference(to_bob, to_carol).await.unwrap();
    let freqs = [440.0, 660.0, 880.0];
    let b = bob_hears.powers_after(bob_hears.frames(), &freqs).await;
    assert_hears("bob", &b, [false, true, true]);
    alice.hangup(to_carol).await.unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            call,
            event: CallEvent::Conference { with: None },
        } if *call == to_bob => Some(()),
        _ => None,
    })
    .await;
    let b = bob_hears.powers_after(bob_hears.frames(), &freqs).await;
    assert_hears("bob after carol left", &b, [false, true, false]);
    // A new conference is allowed again (and refused for a call that ended).
    assert!(alice.conference(to_bob, to_carol).await.is_err());
    alice.shutdown().await;
    bob.shutdown().await;
    carol.shutdown().await;
}
