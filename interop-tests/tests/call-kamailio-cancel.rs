//! Tincan (alice, config-file account) calls baresip (bob) through kamailio, driven from
//! `tincan call`'s standard input:
//!
//! - bob does not answer (`answermode=manual`) and alice types `hangup` while it rings:
//!   Tincan sends CANCEL, kamailio relays it to baresip, baresip closes the call
//!   (`CALL_CLOSED` "Connection reset by peer": baresip 1.0's words for a CANCEL) and answers
//!   the INVITE with 487, which kamailio relays back. Tincan ends `local_hangup` with
//!   `answered: false` and status 487, and exits 1 (a call that was not answered, see
//!   docs/calls.md).
//! - bob answers and alice types `hold`, then `resume`: Tincan reports `hold` / `resumed` with
//!   `by_peer: false`, baresip receives both re-INVITEs (`CALL_REMOTE_SDP`), stops sending
//!   while held (it answers the `sendonly` offer with `recvonly`) and its audio comes back
//!   after the resume: 2 s of packets more, and a recording that holds its tone in nearly
//!   every 20 ms frame from then to the hang-up.

use std::time::{Duration, Instant};

use serde_json::Value;
use tincan_interop_tests::tincan::json_events;
use tincan_interop_tests::{
    Baresip, BaresipControl, Kamailio, Tincan, TincanProcess, audio, require_peers, tincan_binary,
};

/// The tone Tincan sends.
const TINCAN_HZ: f64 = 440.0;
/// The tone baresip sends.
const BARESIP_HZ: u32 = 880;
const WAIT: Duration = Duration::from_secs(10);
/// How many packets must arrive after the resume: 2 s of 20 ms packets.
const RESUMED_PACKETS: u64 = 100;
/// A generous upper bound for them to arrive on a loaded machine (not what is checked).
const RESUMED_WAIT: Duration = Duration::from_secs(30);

/// kamailio and baresip bob (an 880 Hz tone, answering by itself or not) registered with it.
fn lab(auto_answer: bool) -> Option<(Kamailio, Baresip, BaresipControl)> {
    if !require_peers(&["kamailio", "baresip"]) {
        return None;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .tone(BARESIP_HZ)
        .auto_answer(auto_answer)
        .start()
        .expect("baresip bob starts");
    bob.wait_registered(WAIT).expect("bob registers");
    let ctl = bob.control().expect("ctrl_tcp connects");
    Some((kamailio, bob, ctl))
}

/// `tincan call sip:bob@example.test extra...` as alice (account in `config.toml`, a 440 Hz
/// `tone.wav`, recording to `rec.wav`, `--json`), reading commands from a pipe.
fn alice_calls_bob(name: &str, kamailio: &Kamailio, extra: &[&str]) -> Tincan {
    TincanProcess::new(name)
        .expect("scratch dir")
        .with_stdin()
        .kamailio_account(
            "alice",
            "alicepw",
            kamailio.addr(),
            TINCAN_HZ,
            Duration::from_secs(30),
        )
        .spawn_phone(
            "alice",
            "call",
            &[&["sip:bob@example.test"], extra].concat(),
        )
}

fn last_event(phone: &Tincan, name: &str) -> Value {
    phone
        .events_named(name)
        .pop()
        .unwrap_or_else(|| panic!("no {name:?} event:\n{}", phone.log()))
}

/// `packets_received` of the last `quality` event so far.
fn received(phone: &Tincan) -> u64 {
    phone
        .events_named("quality")
        .last()
        .and_then(|q| q["packets_received"].as_u64())
        .unwrap_or(0)
}

/// Waits until a `quality` event counts `packets` received; returns when the test saw it
/// and its count.
fn wait_received(phone: &mut Tincan, packets: u64) -> (Instant, u64) {
    let what = || format!("a quality event with {packets} packets received");
    let event = phone
        .peer()
        .wait_until(RESUMED_WAIT, what, |peer| {
            json_events(&peer.log())
                .into_iter()
                .filter(|e| e["event"] == "quality")
                .find(|q| q["packets_received"].as_u64().is_some_and(|n| n >= packets))
        })
        .unwrap_or_else(|e| panic!("baresip's audio did not come back: {e}"));
    (
        Instant::now(),
        event["packets_received"].as_u64().unwrap_or(0),
    )
}

/// Waits for `n` more `quality` events than `after`; returns the last `packets_received`.
fn received_after(phone: &mut Tincan, after: usize, n: usize) -> u64 {
    phone
        .wait_event_count("quality", after + n, WAIT)
        .expect("quality events go on");
    received(phone)
}

#[test]
fn tincan_cancels_a_ringing_call_through_kamailio() {
    let Some((mut kamailio, bob, mut bob_ctl)) = lab(false) else {
        return;
    };
    let mut alice = alice_calls_bob("alice-cancels", &kamailio, &["--codec", "pcmu"]);
    alice
        .wait_event("registered", WAIT)
        .expect("alice registers");
    let incoming = bob_ctl
        .wait_event("CALL_INCOMING", WAIT)
        .expect("bob's phone rings");
    eprintln!("bob: {}", incoming.json);
    let ringing = alice
        .wait_event("progress", WAIT)
        .expect("alice hears the ringing");
    assert_eq!(ringing["status"], 180, "{ringing}");
    std::thread::sleep(Duration::from_millis(500));

    alice.command("hangup").expect("alice reads stdin");
    let closed = bob_ctl
        .wait_event("CALL_CLOSED", WAIT)
        .expect("the CANCEL closes bob's ringing call");
    eprintln!("bob: {}", closed.json);
    let code = alice
        .wait_exit(WAIT)
        .expect("alice exits once the INVITE is cancelled");
    let ended = last_event(&alice, "ended");
    eprintln!("alice: {ended}");
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    assert_eq!(ended["answered"], false, "{ended}");
    assert_eq!(ended["status"], 487, "{ended}");
    assert_eq!(code, Some(1), "not answered: exit 1\n{}", alice.log());
    assert!(alice.events_named("answered").is_empty(), "{}", alice.log());

    let kinds: Vec<String> = bob_ctl.seen().iter().map(|e| e.kind.clone()).collect();
    assert!(
        !kinds.iter().any(|k| k == "CALL_ESTABLISHED"),
        "bob never answered: {kinds:?}"
    );
    // kamailio relayed the CANCEL (its request log) and the 487 (its reply log)
    let log = kamailio.peer().log();
    assert!(
        log.lines().any(|l| l.contains("REQ CANCEL sip:bob")),
        "no CANCEL through kamailio:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("REPLY 487")),
        "no 487 through kamailio:\n{log}"
    );
    drop(bob);
    drop(kamailio);
}

#[test]
fn tincan_holds_and_resumes_baresip_from_stdin() {
    let Some((kamailio, bob, mut bob_ctl)) = lab(true) else {
        return;
    };
    let mut alice = alice_calls_bob("alice-holds", &kamailio, &["--codec", "opus"]);
    let answered = alice.wait_event("answered", WAIT).expect("baresip answers");
    assert_eq!(answered["codec"], "opus", "{answered}");
    bob_ctl
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("bob's call is up");
    alice
        .wait_event_count("quality", 2, WAIT)
        .expect("quality events");

    alice.command("hold").expect("alice reads stdin");
    let hold = alice.wait_event("hold", WAIT).expect("tincan holds");
    assert_eq!(hold["by_peer"], false, "{hold}");
    let offer = bob_ctl
        .wait_event("CALL_REMOTE_SDP", WAIT)
        .expect("bob gets the hold offer");
    eprintln!("bob, hold: {}", offer.json);
    // bob answered recvonly: nothing comes from him while he is held
    let n = alice.events_named("quality").len();
    let held_from = received_after(&mut alice, n, 1);
    let held_to = received_after(&mut alice, n, 3);
    eprintln!("received while held: {held_from} -> {held_to}");
    assert!(
        held_to <= held_from + 5,
        "baresip kept sending while held: {held_from} -> {held_to}\n{}",
        alice.log()
    );

    alice.command("resume").expect("alice reads stdin");
    let resumed = alice.wait_event("resumed", WAIT).expect("tincan resumes");
    assert_eq!(resumed["by_peer"], false, "{resumed}");
    let offer = bob_ctl
        .wait_event("CALL_REMOTE_SDP", WAIT)
        .expect("bob gets the resume offer");
    eprintln!("bob, resume: {}", offer.json);
    // Resumed means baresip's audio flows again: packets after the first quality event after
    // the resume, then 2 s of packets more (waited for, however slow the machine)...
    let n = alice.events_named("quality").len();
    let back_from = received_after(&mut alice, n, 1);
    let (flowing_at, flowing) = wait_received(&mut alice, back_from + 1);
    wait_received(&mut alice, flowing + RESUMED_PACKETS);
    eprintln!(
        "received after the resume: {back_from} -> {}",
        received(&alice)
    );
    let hangup_at = Instant::now();
    alice.command("hangup").expect("alice reads stdin");
    let code = alice.wait_exit(WAIT).expect("alice hangs up");
    assert_eq!(code, Some(0), "{}", alice.log());
    let ended = last_event(&alice, "ended");
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    bob_ctl
        .wait_event("CALL_CLOSED", WAIT)
        .expect("alice's BYE closes bob's call");
    // ... and steadily: from when the test saw it flow again to the hang-up (200 ms in at each
    // edge), nearly every 20 ms frame of tincan's recording (which ends at the hang-up) holds
    // baresip's tone.
    let wav = audio::read_wav(alice.path("rec.wav")).expect("readable wav");
    let samples = wav.first_channel();
    let rate = f64::from(wav.sample_rate);
    let since = (hangup_at - flowing_at).saturating_sub(Duration::from_millis(200));
    let start = samples
        .len()
        .saturating_sub((since.as_secs_f64() * rate) as usize);
    let end = samples.len().saturating_sub((0.2 * rate) as usize);
    let (with_tone, frames) = audio::tone_frames(
        &samples[start..end],
        wav.sample_rate,
        f64::from(BARESIP_HZ),
        1_000.0,
    );
    eprintln!("after the resume tincan heard {BARESIP_HZ} Hz in {with_tone} of {frames} frames");
    assert!(
        frames >= 75 && with_tone as f64 >= 0.9 * frames as f64,
        "after the resume tincan heard {BARESIP_HZ} Hz in only {with_tone} of {frames} 20 ms frames"
    );
    drop(bob);
    drop(kamailio);
}
