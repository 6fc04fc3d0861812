//! Calls through kamailio (digest auth on INVITE) between Tincan, registered as alice from a
//! config file's `[[account]]`, and baresip registered as bob: both directions, PCMU and Opus,
//! tones at known frequencies checked in both recordings, DTMF both ways, hold and resume by
//! baresip, hang-up from either side.

use std::path::Path;
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
/// baresip's default offer: Opus first.
const ALL_CODECS: &str = "opus/48000/2,PCMU/8000/1,PCMA/8000/1";
const WAIT: Duration = Duration::from_secs(10);
/// How many packets must arrive after a resume: 2 s of 20 ms packets.
const RESUMED_PACKETS: u64 = 100;
/// A generous upper bound for them to arrive on a loaded machine (not what is checked).
const RESUMED_WAIT: Duration = Duration::from_secs(30);

/// kamailio and baresip bob (auto-answer, an 880 Hz tone, `codecs` as its `audio_codecs`)
/// registered with it.
fn lab(codecs: &str) -> Option<(Kamailio, Baresip, BaresipControl)> {
    if !require_peers(&["kamailio", "baresip"]) {
        return None;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .tone(BARESIP_HZ)
        .codecs(codecs)
        .start()
        .expect("baresip bob starts");
    bob.wait_registered(WAIT).expect("bob registers");
    let ctl = bob.control().expect("ctrl_tcp connects");
    Some((kamailio, bob, ctl))
}

/// A scratch dir for Tincan with `config.toml` (account alice at `kamailio`) and a 440 Hz
/// `tone.wav` of 20 s.
fn tincan_alice(name: &str, kamailio: &Kamailio) -> TincanProcess {
    TincanProcess::new(name)
        .expect("scratch dir")
        .kamailio_account(
            "alice",
            "alicepw",
            kamailio.addr(),
            TINCAN_HZ,
            Duration::from_secs(20),
        )
}

/// alice's `tincan <command> extra...` ([`TincanProcess::spawn_phone`]).
fn spawn(process: TincanProcess, command: &str, extra: &[&str]) -> Tincan {
    process.spawn_phone("alice", command, extra)
}

fn codec_is(event: &Value, codec: &str) -> bool {
    event["codec"]
        .as_str()
        .is_some_and(|c| c.eq_ignore_ascii_case(codec))
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

/// Asserts that the recording at `path` holds a tone of `hz`.
fn assert_tone(path: &Path, hz: f64, who: &str) {
    let report = audio::analyse_file(path)
        .unwrap_or_else(|e| panic!("{who}'s recording {}: {e}", path.display()));
    eprintln!("{who} heard {report:?}");
    assert!(
        (report.frequency - hz).abs() < 20.0,
        "{who} should hear {hz} Hz: {report:?}"
    );
    assert!(
        report.rms > 1_000.0,
        "{who}'s recording is too quiet: {report:?}"
    );
    assert!(
        report.duration >= Duration::from_millis(1_500),
        "{who}'s recording is too short: {report:?}"
    );
}

/// baresip's recording of what it received in its only call.
fn baresip_heard(bob: &Baresip) -> std::path::PathBuf {
    let files = bob.decoded_recordings();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Waits for baresip's next `CALL_DTMF_START` events and returns their keys.
fn baresip_keys(ctl: &mut BaresipControl, count: usize) -> String {
    (0..count)
        .map(|_| {
            let e = ctl
                .wait_event("CALL_DTMF_START", WAIT)
                .expect("baresip receives a DTMF key");
            e.field("param").unwrap_or("?").to_owned()
        })
        .collect()
}

/// Waits (up to `within`) for tincan to exit by itself with status 0 (`why`: what should have
/// ended it) and returns its `ended` event, whose reason must be `reason`.
fn exits_after_call(alice: &mut Tincan, within: Duration, why: &str, reason: &str) -> Value {
    let code = alice.wait_exit(within).expect(why);
    assert_eq!(code, Some(0), "{}", alice.log());
    let ended = alice.events_named("ended").pop().expect("an ended event");
    assert_eq!(ended["reason"], reason, "{ended}");
    ended
}

#[test]
fn tincan_calls_baresip_pcmu_sends_dtmf_and_hangs_up() {
    let Some((kamailio, bob, mut bob_ctl)) = lab(ALL_CODECS) else {
        return;
    };
    let process = tincan_alice("alice-calls-pcmu", &kamailio);
    let mut alice = spawn(
        process,
        "call",
        &[
            "sip:bob@example.test",
            "--codec",
            "pcmu",
            "--dtmf",
            "123",
            "--duration",
            "4",
        ],
    );
    alice
        .wait_event("registered", WAIT)
        .expect("tincan registers as alice");
    let answered = alice.wait_event("answered", WAIT).expect("baresip answers");
    assert!(codec_is(&answered, "PCMU"), "{answered}");
    assert_eq!(answered["srtp"], false, "{answered}");
    bob_ctl
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("bob's call is up");
    assert_eq!(baresip_keys(&mut bob_ctl, 3), "123");

    exits_after_call(
        &mut alice,
        Duration::from_secs(15),
        "tincan hangs up after --duration",
        "local_hangup",
    );
    bob_ctl
        .wait_event("CALL_CLOSED", WAIT)
        .expect("bob's call is closed by tincan's BYE");

    assert_tone(&alice.path("rec.wav"), f64::from(BARESIP_HZ), "tincan");
    assert_tone(&baresip_heard(&bob), TINCAN_HZ, "baresip");
    drop(bob);
    drop(kamailio);
}

#[test]
fn tincan_calls_baresip_opus_held_resumed_and_hung_up_by_baresip() {
    let Some((kamailio, bob, mut bob_ctl)) = lab(ALL_CODECS) else {
        return;
    };
    let process = tincan_alice("alice-calls-opus", &kamailio);
    let mut alice = spawn(
        process,
        "call",
        &["sip:bob@example.test", "--codec", "opus"],
    );
    let answered = alice.wait_event("answered", WAIT).expect("baresip answers");
    assert!(codec_is(&answered, "opus"), "{answered}");
    bob_ctl
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("bob's call is up");
    // baresip restarts its player on hold; its sndfile recording stops there
    std::thread::sleep(Duration::from_secs(3));

    bob_ctl.hold().expect("hold accepted");
    let hold = alice
        .wait_event("hold", WAIT)
        .expect("tincan sees the hold");
    assert_eq!(hold["by_peer"], true, "{hold}");
    bob_ctl
        .wait_event("CALL_REMOTE_SDP", WAIT)
        .expect("bob gets the answer to the hold");
    bob_ctl.resume().expect("resume accepted");
    let resumed = alice
        .wait_event("resumed", WAIT)
        .expect("tincan sees the resume");
    assert_eq!(resumed["by_peer"], true, "{resumed}");
    // baresip's audio flows again: packets after the first quality event after the resume,
    // then 2 s of packets more (waited for, however slow the machine)
    let n = alice.events_named("quality").len();
    let back_from = alice
        .wait_event_count("quality", n + 1, WAIT)
        .expect("a quality event after the resume")["packets_received"]
        .as_u64()
        .unwrap_or(0);
    let (flowing_at, flowing) = wait_received(&mut alice, back_from + 1);
    wait_received(&mut alice, flowing + RESUMED_PACKETS);

    let hangup_at = Instant::now();
    bob_ctl.hangup().expect("hangup accepted");
    let ended = exits_after_call(
        &mut alice,
        WAIT,
        "tincan ends the call on baresip's BYE",
        "remote_hangup",
    );
    assert!(codec_is(&ended, "opus"), "{ended}");

    assert_tone(&alice.path("rec.wav"), f64::from(BARESIP_HZ), "tincan");
    // the audio came back after the resume, steadily: from when the test saw it flow again
    // to the hang-up (200 ms in at each edge), nearly every 20 ms frame of tincan's recording
    // (which ends at baresip's BYE) holds baresip's tone
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
    assert_tone(&baresip_heard(&bob), TINCAN_HZ, "baresip");
    drop(bob);
    drop(kamailio);
}

#[test]
fn baresip_calls_tincan_listen_sends_dtmf_and_tincan_hangs_up() {
    let Some((kamailio, bob, mut bob_ctl)) = lab(ALL_CODECS) else {
        return;
    };
    let process = tincan_alice("alice-listens", &kamailio);
    let mut alice = spawn(
        process,
        "listen",
        &["--auto-answer", "--max-calls", "1", "--duration", "5"],
    );
    alice
        .wait_event("registered", WAIT)
        .expect("tincan registers as alice");
    kamailio_has_alice(&kamailio);

    bob_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    bob_ctl
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("tincan answers");
    let incoming = alice
        .wait_event("incoming", WAIT)
        .expect("an incoming event");
    assert!(
        incoming["from"].as_str().is_some_and(|f| f.contains("bob")),
        "{incoming}"
    );
    let answered = alice.wait_event("answered", WAIT).expect("answered");
    assert!(
        codec_is(&answered, "opus"),
        "baresip offers opus first: {answered}"
    );
    std::thread::sleep(Duration::from_millis(500));
    bob_ctl.send_dtmf("45#").expect("sndcode accepted");
    alice
        .wait_event_count("dtmf", 3, WAIT)
        .expect("tincan reports three keys");
    let keys: String = alice
        .events_named("dtmf")
        .iter()
        .filter_map(|e| e["digit"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(keys, "45#", "{}", alice.log());

    // --duration 5: tincan hangs up, listen exits after its one call
    bob_ctl
        .wait_event("CALL_CLOSED", Duration::from_secs(15))
        .expect("tincan's BYE closes bob's call");
    exits_after_call(
        &mut alice,
        WAIT,
        "listen exits after --max-calls 1",
        "local_hangup",
    );

    assert_tone(&alice.path("rec.wav"), f64::from(BARESIP_HZ), "tincan");
    assert_tone(&baresip_heard(&bob), TINCAN_HZ, "baresip");
    drop(bob);
    drop(kamailio);
}

#[test]
fn baresip_calls_tincan_listen_pcmu_only_and_hangs_up() {
    let Some((kamailio, bob, mut bob_ctl)) = lab("PCMU/8000/1") else {
        return;
    };
    let process = tincan_alice("alice-listens-pcmu", &kamailio);
    let mut alice = spawn(process, "listen", &["--auto-answer", "--max-calls", "1"]);
    alice
        .wait_event("registered", WAIT)
        .expect("tincan registers as alice");
    kamailio_has_alice(&kamailio);
    bob_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    bob_ctl
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("tincan answers");
    let answered = alice.wait_event("answered", WAIT).expect("answered");
    assert!(codec_is(&answered, "PCMU"), "{answered}");
    std::thread::sleep(Duration::from_secs(3));
    bob_ctl.hangup().expect("hangup accepted");
    exits_after_call(
        &mut alice,
        WAIT,
        "listen exits after --max-calls 1",
        "remote_hangup",
    );

    assert_tone(&alice.path("rec.wav"), f64::from(BARESIP_HZ), "tincan");
    assert_tone(&baresip_heard(&bob), TINCAN_HZ, "baresip");
    drop(bob);
    drop(kamailio);
}

fn kamailio_has_alice(kamailio: &Kamailio) {
    let contacts = kamailio.contacts("alice").expect("kamcmd works");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(contacts[0].contains("127.0.0.1"), "{contacts:?}");
}
