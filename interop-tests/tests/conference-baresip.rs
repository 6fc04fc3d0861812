//! A three-way call with two real peers (issue 16): two baresip phones, each sending its own
//! tone, call one `tincan listen --auto-answer` that plays a third tone; Tincan types
//! `conference`, and from then on each party hears the other two: each baresip's received
//! audio holds Tincan's tone and the other baresip's, and Tincan's recording holds both
//! baresip tones.

use std::path::Path;
use std::time::Duration;

use tincan_interop_tests::{Baresip, TincanProcess, audio, require_peers, tincan_binary};

const WAIT: Duration = Duration::from_secs(20);
const TINCAN_HZ: f64 = 440.0;
const BOB_HZ: u32 = 700;
const CAROL_HZ: u32 = 1100;
/// How long the conference runs before the recordings are read.
const TALK: Duration = Duration::from_secs(8);
/// How much of a recording must hold both tones at once: well inside the conference.
const TOGETHER: Duration = Duration::from_millis(1500);

/// The Goertzel power of `hz` within 10 Hz either side, at its strongest: the peers'
/// resamplers need not put a tone exactly on its nominal frequency.
fn peak_power(window: &[i16], rate: u32, hz: f64) -> f64 {
    (-5..=5)
        .map(|step| audio::goertzel_power(window, rate, hz + f64::from(step) * 2.0))
        .fold(0.0, f64::max)
}

/// How long `path` holds all of `tones` at once: the 100 ms windows in which each of them
/// holds at least 6 % of the window's power (a Goertzel filter holds half of a sine's power:
/// two equal tones each give a quarter, an absent tone next to nothing).
fn together(path: &Path, tones: &[f64]) -> Duration {
    let wav = audio::read_wav(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let samples = wav.first_channel();
    let windows = samples
        .chunks_exact(wav.sample_rate as usize / 10)
        .filter(|w| {
            let level = audio::rms(w);
            level > 200.0
                && tones
                    .iter()
                    .all(|&hz| peak_power(w, wav.sample_rate, hz) >= 0.03 * level * level)
        })
        .count();
    Duration::from_millis(100 * windows as u64)
}

fn assert_hears(path: &Path, who: &str, tones: [(f64, &str); 2], own: f64) {
    let heard = together(path, &[tones[0].0, tones[1].0]);
    eprintln!("{who} hears {tones:?} together for {heard:?}");
    assert!(
        heard >= TOGETHER,
        "{who} should hear {tones:?} together in the conference for {TOGETHER:?}, not {heard:?} ({})",
        path.display()
    );
    let echo = together(path, &[own]);
    assert!(
        echo <= Duration::from_millis(300),
        "{who} should not hear their own {own} Hz: {echo:?} of it in {}",
        path.display()
    );
}

fn baresip(user: &str, hz: u32) -> Baresip {
    Baresip::builder(user, "secret")
        .register(false)
        .auto_answer(false)
        .tone(hz)
        .codecs("PCMU/8000/1")
        .start()
        .unwrap_or_else(|e| panic!("baresip {user} starts: {e}"))
}

#[test]
fn two_baresip_phones_and_tincan_each_hear_the_other_two() {
    if !require_peers(&["baresip"]) {
        return;
    }
    tincan_binary();
    let bob = baresip("bob", BOB_HZ);
    let carol = baresip("carol", CAROL_HZ);

    let (mut host, port) = TincanProcess::new("conference-host")
        .map(TincanProcess::with_stdin)
        .and_then(|p| p.tone_listener(TINCAN_HZ))
        .expect("tincan listens");

    let target = format!("sip:alice@127.0.0.1:{port}");
    let mut bob_ctl = bob.control().expect("bob's control socket");
    bob_ctl.dial(&target).expect("bob dials");
    host.wait_event("answered", WAIT)
        .expect("bob's call answered");
    let mut carol_ctl = carol.control().expect("carol's control socket");
    carol_ctl.dial(&target).expect("carol dials");
    host.wait_event_count("answered", 2, WAIT)
        .expect("carol's call answered");
    // Both calls carry audio before they are joined.
    host.wait_event_count("quality", 2, WAIT)
        .expect("both calls report quality");

    host.command("conference").expect("stdin open");
    host.wait_event_count("conference", 2, WAIT)
        .expect("both calls joined");
    let joined = host.events_named("conference");
    assert!(
        joined.iter().all(|e| e["joined"] == true),
        "{joined:?}\n{}",
        host.log()
    );
    std::thread::sleep(TALK);

    // Both hang up at once; sndfile closes its files when a call's audio ends.
    bob_ctl.hangup().expect("bob hangs up");
    carol_ctl.hangup().expect("carol hangs up");
    for (ctl, who) in [(&mut bob_ctl, "bob"), (&mut carol_ctl, "carol")] {
        ctl.wait_event("CALL_CLOSED", WAIT)
            .unwrap_or_else(|e| panic!("{who}'s call closes: {e}"));
    }
    host.wait_event_count("ended", 2, WAIT)
        .expect("both of Tincan's calls end");

    let bob_rec = bob.decoded_recordings();
    let carol_rec = carol.decoded_recordings();
    assert_eq!(bob_rec.len(), 1, "bob records his one call: {bob_rec:?}");
    assert_eq!(
        carol_rec.len(),
        1,
        "carol records her one call: {carol_rec:?}"
    );
    assert_hears(
        &bob_rec[0],
        "bob",
        [(TINCAN_HZ, "tincan"), (f64::from(CAROL_HZ), "carol")],
        f64::from(BOB_HZ),
    );
    assert_hears(
        &carol_rec[0],
        "carol",
        [(TINCAN_HZ, "tincan"), (f64::from(BOB_HZ), "bob")],
        f64::from(CAROL_HZ),
    );
    // The call answered last keeps Tincan's devices: its recording is the conference's.
    assert_hears(
        &host.path("rec-2.wav"),
        "tincan",
        [(f64::from(BOB_HZ), "bob"), (f64::from(CAROL_HZ), "carol")],
        TINCAN_HZ,
    );
    bob.stop();
    carol.stop();
}
