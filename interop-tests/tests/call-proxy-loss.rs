//! A call between two Tincans registered with kamailio survives the loss of the proxy that set
//! it up: media flows directly between the phones, so both keep receiving RTP (and the tones)
//! after kamailio is killed mid-call. Whether the dialog itself survives depends on the route
//! set (RFC 3261 §12.2.1.1, §16.6 step 4):
//!
//! - kamailio record-routes the INVITE (the lab cfg): every in-dialog request must go
//!   through it. Alice's `hangup` sends the BYE to the dead proxy; the loopback answers with
//!   ICMP port unreachable, the BYE's transaction fails at once and alice ends `local_hangup`
//!   and exits 0 right away (a BYE that cannot be delivered still ends the call locally, RFC
//!   3261 §15.1.1). Bob never hears of it: he stays in the call (his media only warns after
//!   30 s of silence, `rtp_timeout`), until his user hangs up (Ctrl-C, SIGINT): his BYE fails
//!   the same way and he ends `local_hangup`, exit 0.
//! - kamailio does not record-route (`lab/kamailio/kamailio-no-record-route.cfg`): the route
//!   set is empty, alice's BYE goes straight to bob's Contact and bob ends `remote_hangup`.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;
use tincan_interop_tests::{Kamailio, Tincan, TincanProcess, audio, require_peer, tincan_binary};

/// The tone alice sends.
const ALICE_HZ: f64 = 440.0;
/// The tone bob sends.
const BOB_HZ: f64 = 880.0;
const WAIT: Duration = Duration::from_secs(10);
/// How much audio must arrive after kamailio is gone: 2.5 s of 20 ms packets.
const AFTER_KILL_PACKETS: u64 = 125;
/// A generous upper bound for [`AFTER_KILL_PACKETS`] to arrive (2.5 s of audio), for a
/// loaded machine; the test waits for the packets, not for this.
const AFTER_KILL_WAIT: Duration = Duration::from_secs(30);
/// At most this many of the peer's packets may go missing after the kill (by RTP sequence
/// number): none are expected on loopback.
const MAX_LOST_AFTER_KILL: i64 = 3;
/// The share of 20 ms frames after the kill that must hold the peer's tone (the rest: the
/// window's edges, a concealed late packet on a loaded machine).
const TONE_SHARE: f64 = 0.9;

/// A scratch dir with `config.toml` (account `user` at `kamailio`) and a `hz` `tone.wav`.
fn phone(name: &str, user: &str, password: &str, hz: f64, kamailio: &Kamailio) -> TincanProcess {
    TincanProcess::new(name)
        .expect("scratch dir")
        .kamailio_account(user, password, kamailio.addr(), hz, Duration::from_secs(30))
}

/// `user`'s `tincan <command> extra...` ([`TincanProcess::spawn_phone`]).
fn spawn(process: TincanProcess, user: &str, command: &str, extra: &[&str]) -> Tincan {
    process.spawn_phone(user, command, extra)
}

/// How many `quality` events it printed so far.
fn quality_count(phone: &Tincan) -> usize {
    phone.events_named("quality").len()
}

/// The `ended` event, once there.
fn ended(phone: &Tincan) -> Value {
    phone
        .events_named("ended")
        .pop()
        .unwrap_or_else(|| panic!("no ended event:\n{}", phone.log()))
}

/// Asserts that `samples` (of a recording at `rate`) hold a tone of `hz` all along: at least
/// [`TONE_SHARE`] of their 20 ms frames, and at least 1 s of them.
fn assert_tone(samples: &[i16], rate: u32, hz: f64, what: &str) {
    let (with_tone, frames) = audio::tone_frames(samples, rate, hz, 1_000.0);
    eprintln!("{what}: {with_tone} of {frames} 20 ms frames hold {hz} Hz");
    assert!(frames >= 50, "{what}: only {frames} frames of recording");
    assert!(
        with_tone as f64 >= TONE_SHARE * frames as f64,
        "{what}: only {with_tone} of {frames} 20 ms frames hold {hz} Hz"
    );
}

/// The first channel of the recording at `path` between `from` and `to` (from its start,
/// both clamped to its end).
fn window(path: &Path, from: Duration, to: Duration) -> (Vec<i16>, u32) {
    let wav = audio::read_wav(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rate = wav.sample_rate;
    let at = |d: Duration| (d.as_secs_f64() * f64::from(rate)) as usize;
    let all = wav.first_channel();
    let end = at(to).min(all.len());
    let start = at(from).min(end);
    (all[start..end].to_vec(), rate)
}

/// `(packets_received, packets_lost)` of a `quality` event.
fn counts(quality: &Value) -> (u64, i64) {
    (
        quality["packets_received"].as_u64().unwrap_or(0),
        quality["packets_lost"].as_i64().unwrap_or(0),
    )
}

/// Waits until `phone` has received [`AFTER_KILL_PACKETS`] more RTP packets than in its
/// first `quality` event printed after the kill (its index `after_kill`: every packet
/// counted from there on came after the kill), and asserts that the stream went on without
/// a gap: its sequence numbers show at most [`MAX_LOST_AFTER_KILL`] more packets lost.
fn assert_rtp_goes_on(phone: &mut Tincan, after_kill: usize, killed_at: Instant) {
    let first = phone
        .wait_event_count("quality", after_kill + 1, WAIT)
        .expect("a quality event after the kill");
    let (from, lost_from) = counts(&first);
    let what = || {
        format!(
            "{AFTER_KILL_PACKETS} more RTP packets than {from} in a quality event after the kill"
        )
    };
    let last = phone
        .peer()
        .wait_until(AFTER_KILL_WAIT, what, |peer| {
            tincan_interop_tests::tincan::json_events(&peer.log())
                .into_iter()
                .filter(|e| e["event"] == "quality")
                .find(|q| counts(q).0 >= from + AFTER_KILL_PACKETS)
        })
        .unwrap_or_else(|e| panic!("RTP stopped after the proxy died: {e}"));
    let (to, lost_to) = counts(&last);
    eprintln!(
        "{}: received {from} -> {to}, lost {lost_from} -> {lost_to} ({:?} after the kill)",
        phone.peer().name(),
        killed_at.elapsed()
    );
    assert!(
        lost_to - lost_from <= MAX_LOST_AFTER_KILL,
        "the RTP stream has a gap after the proxy died: lost {lost_from} -> {lost_to}\n{}",
        phone.log()
    );
}

/// Alice calls bob through `kamailio`, both answer; `kamailio` is stopped by PID mid-call;
/// both keep receiving RTP ([`AFTER_KILL_PACKETS`] more, without a gap); alice hangs up
/// (stdin `hangup`) and ends `local_hangup`, exit 0. Returns alice and the kill's and the
/// hang-up's offsets from bob's answer.
fn call_and_kill_the_proxy(
    kamailio: Kamailio,
    alice: TincanProcess,
    bob: &mut Tincan,
) -> (Tincan, Duration, Duration) {
    let mut alice = spawn(
        alice.with_stdin(),
        "alice",
        "call",
        &["sip:bob@example.test", "--codec", "pcmu"],
    );
    alice
        .wait_event("registered", WAIT)
        .expect("alice registers");
    let answered = alice.wait_event("answered", WAIT).expect("bob answers");
    assert_eq!(answered["codec"], "pcmu", "{answered}");
    bob.wait_event("answered", WAIT).expect("bob's call is up");
    let bob_answered_at = Instant::now();
    // a few quality reports with audio on both sides
    alice
        .wait_event_count("quality", 2, WAIT)
        .expect("alice reports quality");
    bob.wait_event_count("quality", 2, WAIT)
        .expect("bob reports quality");

    let pid = {
        let mut kamailio = kamailio;
        let pid = kamailio.peer().pid();
        kamailio.stop();
        pid
    };
    let killed_at = Instant::now();
    eprintln!("kamailio (pid {pid}) stopped");
    let after_kill = [quality_count(&alice), quality_count(bob)];

    // RTP keeps coming on both sides: 2.5 s of packets more, without a gap in the sequence
    // numbers (waited for, however slow a loaded machine is)
    assert_rtp_goes_on(&mut alice, after_kill[0], killed_at);
    assert_rtp_goes_on(bob, after_kill[1], killed_at);
    assert!(alice.events_named("ended").is_empty(), "{}", alice.log());
    assert!(bob.events_named("ended").is_empty(), "{}", bob.log());

    let hangup_at = Instant::now();
    alice.command("hangup").expect("alice reads stdin");
    let code = alice
        .wait_exit(WAIT)
        .expect("alice ends the call without the proxy");
    eprintln!(
        "alice exited {code:?} {:?} after hangup",
        hangup_at.elapsed()
    );
    assert_eq!(code, Some(0), "{}", alice.log());
    let end = ended(&alice);
    assert_eq!(end["reason"], "local_hangup", "{end}");
    assert_eq!(end["answered"], true, "{end}");
    // alice's recording ends at the hang-up: everything from the kill to its end (all but
    // 200 ms at each edge) holds bob's tone
    let wav = audio::read_wav(alice.path("rec.wav")).expect("alice's recording");
    let samples = wav.first_channel();
    let after_the_kill = (hangup_at - killed_at).saturating_sub(Duration::from_millis(200));
    let edge = (0.2 * f64::from(wav.sample_rate)) as usize;
    let since_kill = (after_the_kill.as_secs_f64() * f64::from(wav.sample_rate)) as usize;
    let last =
        &samples[samples.len().saturating_sub(since_kill)..samples.len().saturating_sub(edge)];
    assert_tone(last, wav.sample_rate, BOB_HZ, "alice after the kill");
    (
        alice,
        killed_at - bob_answered_at,
        hangup_at - bob_answered_at,
    )
}

/// Asserts that bob's finished recording holds alice's tone from the kill to alice's
/// hang-up (`kill_offset` and `hangup_offset` after bob's answer, where his recording
/// starts; both measured by polling, so 300 ms inside at each edge).
fn assert_bob_heard_alice_after_the_kill(
    bob: &Tincan,
    kill_offset: Duration,
    hangup_offset: Duration,
) {
    let (heard, rate) = window(
        &bob.path("rec.wav"),
        kill_offset + Duration::from_millis(300),
        hangup_offset.saturating_sub(Duration::from_millis(300)),
    );
    assert_tone(&heard, rate, ALICE_HZ, "bob after the kill");
}

/// kamailio (with the cfg `template`), bob registered with it and listening, alice's
/// scratch dir.
fn lab(template: &str) -> Option<(Kamailio, Tincan, TincanProcess)> {
    if !require_peer("kamailio") {
        return None;
    }
    tincan_binary();
    let mut kamailio = Kamailio::builder()
        .template(template)
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio starts");
    let bob = phone("bob-listens", "bob", "bobpw", BOB_HZ, &kamailio);
    let mut bob = spawn(bob, "bob", "listen", &["--auto-answer", "--max-calls", "1"]);
    bob.wait_event("registered", WAIT).expect("bob registers");
    kamailio
        .wait_registered("bob", WAIT)
        .expect("kamailio has bob");
    let alice = phone("alice-calls", "alice", "alicepw", ALICE_HZ, &kamailio);
    Some((kamailio, bob, alice))
}

#[test]
fn record_routed_call_keeps_its_audio_and_alice_hangs_up_without_the_proxy() {
    let Some((kamailio, mut bob, alice)) = lab("kamailio.cfg") else {
        return;
    };
    let (_alice, kill_offset, hangup_offset) = call_and_kill_the_proxy(kamailio, alice, &mut bob);

    // alice's BYE went to the record-routed proxy, which is gone: bob is still in the call
    std::thread::sleep(Duration::from_secs(2));
    assert!(bob.peer().is_running(), "{}", bob.log());
    assert!(bob.events_named("ended").is_empty(), "{}", bob.log());
    // ... until his user hangs up: Ctrl-C
    bob.peer().signal(Signal::INT);
    let code = bob.wait_exit(WAIT).expect("bob hangs up on Ctrl-C");
    assert_eq!(code, Some(0), "{}", bob.log());
    let end = ended(&bob);
    assert_eq!(end["reason"], "local_hangup", "{end}");
    assert_eq!(end["answered"], true, "{end}");
    assert_bob_heard_alice_after_the_kill(&bob, kill_offset, hangup_offset);
}

#[test]
fn call_without_record_route_survives_the_proxy_and_the_bye_goes_to_the_contact() {
    let Some((kamailio, mut bob, alice)) = lab("kamailio-no-record-route.cfg") else {
        return;
    };
    let (_alice, kill_offset, hangup_offset) = call_and_kill_the_proxy(kamailio, alice, &mut bob);

    let code = bob
        .wait_exit(WAIT)
        .expect("alice's BYE reaches bob directly: listen --max-calls 1 exits");
    assert_eq!(code, Some(0), "{}", bob.log());
    let end = ended(&bob);
    assert_eq!(end["reason"], "remote_hangup", "{end}");
    assert_eq!(end["answered"], true, "{end}");
    assert_bob_heard_alice_after_the_kill(&bob, kill_offset, hangup_offset);
}
