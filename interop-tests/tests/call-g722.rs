//! G.722 calls with wideband tones (5 and 6 kHz, which G.711's 8 kHz sampling cannot carry):
//! `tincan call --codec g722` to a `tincan listen` on loopback, Tincan to baresip's `g722`
//! module (spandsp's codec) and baresip to `tincan listen`. Each side records what it hears;
//! the tone must arrive at its frequency and level, and the SDP must say `a=rtpmap:9
//! G722/8000` (RFC 3551's 8000 Hz clock).

use std::time::Duration;

use tincan_interop_tests::{
    Baresip, Tincan, TincanProcess, audio, free_port, require_peers, tincan_binary,
};

const WAIT: Duration = Duration::from_secs(10);
/// The tone Tincan callers send: above G.711's 4 kHz band, inside G.722's 7 kHz.
const CALLER_HZ: f64 = 6000.0;
/// The tone the called side sends.
const CALLED_HZ: f64 = 5000.0;

fn with_tone(name: &str, hz: f64) -> TincanProcess {
    let p = TincanProcess::new(name).expect("scratch dir");
    audio::write_tone_wav(
        p.path("tone.wav"),
        hz,
        Duration::from_secs(20),
        48_000,
        12_000,
    )
    .expect("tone written");
    p
}

fn spawn(p: TincanProcess, args: &[&str]) -> Tincan {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend([
        "--play".to_owned(),
        p.path("tone.wav").display().to_string(),
        "--record".to_owned(),
        p.path("rec.wav").display().to_string(),
        "--json".to_owned(),
    ]);
    p.spawn(all).expect("tincan starts")
}

/// A wideband tone: one clean tone, so the zero-crossing estimate holds (the Goertzel scan
/// of [`audio::ToneReport::frequency`] stops at 4 kHz).
fn assert_wideband_tone(path: &std::path::Path, hz: f64, who: &str) {
    let report = audio::analyse_file(path)
        .unwrap_or_else(|e| panic!("{who}'s recording {}: {e}", path.display()));
    eprintln!("{who} heard {report:?}");
    assert!(
        (report.zero_crossing_frequency - hz).abs() < hz * 0.02,
        "{who} should hear {hz} Hz: {report:?}"
    );
    assert!(report.rms > 1_000.0, "{who}: {report:?}");
    assert!(
        report.duration >= Duration::from_secs(2),
        "{who}: {report:?}"
    );
}

fn assert_g722_answered(t: &mut Tincan, who: &str) {
    let answered = t.wait_event("answered", WAIT).expect("answered");
    assert_eq!(answered["codec"], "g722", "{who}: {answered}");
}

fn exits(t: &mut Tincan, reason: &str) {
    let code = t.wait_exit(Duration::from_secs(20)).expect("tincan exits");
    assert_eq!(code, Some(0), "{}", t.log());
    let ended = t.events_named("ended").pop().expect("an ended event");
    assert_eq!(ended["reason"], reason, "{ended}");
    assert_eq!(ended["codec"], "g722", "{ended}");
}

#[test]
fn tincan_calls_tincan_with_codec_g722() {
    tincan_binary();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    // The listener offers nothing itself: it answers G.722 because the caller offers only it.
    let mut bob = spawn(
        with_tone("g722-bob-listens", CALLED_HZ),
        &[
            "listen",
            "--bind",
            &bind,
            "--auto-answer",
            "--max-calls",
            "1",
        ],
    );
    bob.wait_event("listening", WAIT).expect("tincan listens");
    let target = format!("sip:bob@{bind}");
    let mut alice = spawn(
        with_tone("g722-alice-calls", CALLER_HZ),
        &[
            "call",
            &target,
            "--codec",
            "g722",
            "--duration",
            "3",
            "--bind",
            "127.0.0.1:0",
        ],
    );
    assert_g722_answered(&mut alice, "alice");
    assert_g722_answered(&mut bob, "bob");
    exits(&mut alice, "local_hangup");
    exits(&mut bob, "remote_hangup");

    let trace = std::fs::read_to_string(alice.path("sip-trace.log")).expect("a SIP trace");
    assert!(
        trace.contains("m=audio") && trace.contains("a=rtpmap:9 G722/8000"),
        "{trace}"
    );
    let offers: Vec<&str> = trace.lines().filter(|l| l.starts_with("m=audio")).collect();
    assert!(
        offers.iter().all(|m| m.contains(" RTP/AVP 9 ")),
        "G.722 alone, payload type 9: {offers:?}"
    );
    assert_wideband_tone(&alice.path("rec.wav"), CALLED_HZ, "alice");
    assert_wideband_tone(&bob.path("rec.wav"), CALLER_HZ, "bob");
}

fn baresip_g722() -> Option<Baresip> {
    if !require_peers(&["baresip"]) {
        return None;
    }
    tincan_binary();
    Some(
        Baresip::builder("bob", "bobpw")
            .register(false)
            .tone(CALLED_HZ as u32)
            // baresip names a codec by its sampling rate: G.722 is `G722/16000/1` there.
            .codecs("G722/16000/1")
            .start()
            .expect("baresip starts"),
    )
}

#[test]
fn tincan_calls_baresip_g722() {
    let Some(bob) = baresip_g722() else {
        return;
    };
    let target = format!("sip:bob@{}", bob.sip_addr());
    // Tincan offers its defaults (Opus, G.722, G.711); baresip answers with G.722 alone.
    let mut alice = spawn(
        with_tone("g722-to-baresip", CALLER_HZ),
        &["call", &target, "--duration", "3", "--bind", "127.0.0.1:0"],
    );
    assert_g722_answered(&mut alice, "alice");
    exits(&mut alice, "local_hangup");
    let trace = std::fs::read_to_string(alice.path("sip-trace.log")).expect("a SIP trace");
    assert!(trace.contains("a=rtpmap:9 G722/8000"), "{trace}");

    assert_wideband_tone(&alice.path("rec.wav"), CALLED_HZ, "tincan");
    let heard = bob.decoded_recordings();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_wideband_tone(&heard[0], CALLER_HZ, "baresip");
}

#[test]
fn baresip_calls_tincan_listen_g722() {
    let Some(bob) = baresip_g722() else {
        return;
    };
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut alice = spawn(
        with_tone("g722-from-baresip", CALLER_HZ),
        &[
            "listen",
            "--bind",
            &bind,
            "--auto-answer",
            "--max-calls",
            "1",
            "--duration",
            "3",
        ],
    );
    alice.wait_event("listening", WAIT).expect("tincan listens");
    let mut ctl = bob.control().expect("ctrl_tcp connects");
    ctl.dial(&format!("sip:alice@{bind}"))
        .expect("dial accepted");
    ctl.wait_event("CALL_ESTABLISHED", WAIT)
        .expect("tincan answers");
    assert_g722_answered(&mut alice, "alice");
    ctl.wait_event("CALL_CLOSED", Duration::from_secs(15))
        .expect("tincan's BYE closes baresip's call");
    exits(&mut alice, "local_hangup");

    assert_wideband_tone(&alice.path("rec.wav"), CALLED_HZ, "tincan");
    let heard = bob.decoded_recordings();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_wideband_tone(&heard[0], CALLER_HZ, "baresip");
}
