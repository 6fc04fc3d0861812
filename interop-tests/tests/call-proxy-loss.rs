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
/// How long the call goes on after kamailio is gone.
const AFTER_KILL: Duration = Duration::from_millis(2_500);

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

/// Asserts that `samples` (of a recording at `rate`) hold a tone of `hz`.
fn assert_tone(samples: &[i16], rate: u32, hz: f64, what: &str) {
    let found = audio::dominant_frequency(samples, rate);
    let level = audio::rms(samples);
    eprintln!(
        "{what}: {found:.0} Hz at rms {level:.0} over {:.2} s",
        samples.len() as f64 / f64::from(rate)
    );
    assert!(
        (found - hz).abs() < 20.0 && level > 1_000.0,
        "{what}: expected {hz} Hz, got {found:.0} Hz at rms {level:.0}"
    );
}

/// The first channel of the recording at `path` between `from` and `to` (from its start).
fn window(path: &Path, from: Duration, to: Duration) -> (Vec<i16>, u32) {
    let wav = audio::read_wav(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rate = wav.sample_rate;
    let at = |d: Duration| (d.as_secs_f64() * f64::from(rate)) as usize;
    let all = wav.first_channel();
    let end = at(to).min(all.len());
    let start = at(from).min(end);
    (all[start..end].to_vec(), rate)
}

/// Alice calls bob through `kamailio`, both answer; `kamailio` is stopped by PID mid-call;
/// both keep receiving RTP for [`AFTER_KILL`]; alice hangs up (stdin `hangup`) and ends
/// `local_hangup`, exit 0.
fn call_and_kill_the_proxy(
    kamailio: Kamailio,
    alice: TincanProcess,
    bob: &mut Tincan,
) -> (Tincan, Duration) {
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
    let at_kill = [quality_count(&alice), quality_count(bob)];

    // RTP keeps coming on both sides for AFTER_KILL and longer: at least three more quality
    // events (one a second; on a busy machine they come late) with growing packet counts
    std::thread::sleep(AFTER_KILL);
    for (phone, n) in [(&mut alice, at_kill[0]), (&mut *bob, at_kill[1])] {
        phone
            .wait_event_count("quality", n + 3, WAIT)
            .expect("quality events go on");
        let counts: Vec<u64> = phone
            .events_named("quality")
            .iter()
            .skip(n.saturating_sub(1))
            .map(|q| q["packets_received"].as_u64().unwrap_or(0))
            .collect();
        eprintln!(
            "{}: packets received from the kill on: {counts:?} ({:?} after the kill)",
            phone.peer().name(),
            killed_at.elapsed()
        );
        assert!(
            // Quality events come every second and also when an RTCP report arrives, so two
            // in a row may carry the same count: never less, and 50 more packets in the end.
            counts.windows(2).all(|w| w[1] >= w[0]) && counts[counts.len() - 1] >= counts[0] + 50,
            "RTP stopped after the proxy died: {counts:?}"
        );
    }
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
    // alice's recording ends at the hang-up: its last 2 s are after the kill
    let wav = audio::read_wav(alice.path("rec.wav")).expect("alice's recording");
    let last = wav.after(wav.duration().saturating_sub(Duration::from_secs(2)));
    assert_tone(&last, wav.sample_rate, BOB_HZ, "alice after the kill");
    (alice, killed_at - bob_answered_at)
}

/// Asserts that bob's finished recording holds alice's tone in the 1.7 s after the kill
/// (`kill_offset` after bob's answer, where his recording starts).
fn assert_bob_heard_alice_after_the_kill(bob: &Tincan, kill_offset: Duration) {
    let (heard, rate) = window(
        &bob.path("rec.wav"),
        kill_offset + Duration::from_millis(300),
        kill_offset + Duration::from_millis(2_000),
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
    let (_alice, kill_offset) = call_and_kill_the_proxy(kamailio, alice, &mut bob);

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
    assert_bob_heard_alice_after_the_kill(&bob, kill_offset);
}

#[test]
fn call_without_record_route_survives_the_proxy_and_the_bye_goes_to_the_contact() {
    let Some((kamailio, mut bob, alice)) = lab("kamailio-no-record-route.cfg") else {
        return;
    };
    let (_alice, kill_offset) = call_and_kill_the_proxy(kamailio, alice, &mut bob);

    let code = bob
        .wait_exit(WAIT)
        .expect("alice's BYE reaches bob directly: listen --max-calls 1 exits");
    assert_eq!(code, Some(0), "{}", bob.log());
    let end = ended(&bob);
    assert_eq!(end["reason"], "remote_hangup", "{end}");
    assert_eq!(end["answered"], true, "{end}");
    assert_bob_heard_alice_after_the_kill(&bob, kill_offset);
}
