//! Blind transfer with a real peer, both ways.
//!
//! - baresip transfers Tincan: `tincan call` (config `accept_transfer = "always"`) calls
//!   baresip, baresip's `/transfer` sends a REFER to another `tincan listen`; Tincan answers
//!   202, calls the target, reports the progress in NOTIFYs, and its `tincan call` follows
//!   the new call: the two Tincans hear each other's tones on the final leg.
//! - Tincan transfers baresip: `tincan call` to baresip, `transfer sip:carol@...` typed;
//!   baresip calls the other `tincan listen`, Tincan sees `transfer_succeeded` and hangs up,
//!   and Carol hears baresip's tone.

use std::time::Duration;

use tincan_interop_tests::{
    Baresip, TincanProcess, audio, free_port, require_peers, tincan_binary,
};

const WAIT: Duration = Duration::from_secs(15);
const ALICE_HZ: f64 = 440.0;
const CAROL_HZ: f64 = 660.0;

fn assert_tone(path: &std::path::Path, hz: f64, who: &str) {
    let report = audio::analyse_file(path)
        .unwrap_or_else(|e| panic!("{who}'s recording {}: {e}", path.display()));
    eprintln!("{who} heard {report:?}");
    assert!(
        (report.frequency - hz).abs() < 20.0 && report.rms > 1_000.0,
        "{who} should hear {hz} Hz: {report:?}"
    );
}

#[test]
fn baresip_transfers_a_tincan_call_to_another_tincan() {
    if !require_peers(&["baresip"]) {
        return;
    }
    tincan_binary();
    let bob = Baresip::builder("bob", "bobpw")
        .register(false)
        .auto_answer(true)
        .codecs("PCMU/8000/1")
        .start()
        .expect("baresip bob starts");

    let (mut carol, carol_port) = TincanProcess::new("transfer-carol")
        .and_then(|p| p.tone_listener(CAROL_HZ))
        .expect("carol listens");

    let alice_dir = TincanProcess::new("transfer-alice")
        .expect("scratch dir")
        .with_stdin();
    alice_dir
        .dir()
        .write("config.toml", "[network]\naccept_transfer = \"always\"\n")
        .expect("config written");
    audio::write_tone_wav(
        alice_dir.path("tone.wav"),
        ALICE_HZ,
        Duration::from_secs(30),
        48_000,
        12_000,
    )
    .expect("tone written");
    let alice_args = [
        "--config".to_owned(),
        alice_dir.path("config.toml").display().to_string(),
        "call".to_owned(),
        format!("sip:bob@{}", bob.sip_addr()),
        "--play".to_owned(),
        alice_dir.path("tone.wav").display().to_string(),
        "--record".to_owned(),
        alice_dir.path("rec.wav").display().to_string(),
        "--json".to_owned(),
        "--bind".to_owned(),
        format!("127.0.0.1:{}", free_port()),
    ];
    let mut alice = alice_dir.spawn(alice_args).expect("tincan call starts");
    alice.wait_event("answered", WAIT).expect("baresip answers");
    std::thread::sleep(Duration::from_secs(1));

    let mut control = bob.control().expect("baresip's control socket");
    control
        .command("transfer", &format!("sip:carol@127.0.0.1:{carol_port}"))
        .expect("baresip transfers");
    alice
        .wait_event("transfer_started", WAIT)
        .expect("alice accepts the REFER");
    alice
        .wait_event_count("answered", 2, WAIT)
        .expect("carol answers alice's new call");
    carol.wait_event("answered", WAIT).expect("carol answered");
    // The final leg carries audio both ways for a while.
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup").expect("stdin open");
    assert_eq!(
        alice.wait_exit(WAIT).expect("tincan call exits"),
        Some(0),
        "{}",
        alice.log()
    );
    carol.wait_event("ended", WAIT).expect("carol's call ends");

    // On the wire: 202 to the REFER, NOTIFYs with sipfrag bodies.
    let trace = std::fs::read_to_string(alice.path("sip-trace.log")).expect("a SIP trace");
    assert!(trace.contains("SIP/2.0 202"), "the REFER was accepted");
    assert!(
        trace.contains("Event: refer") && trace.contains("SIP/2.0 200 OK\r\n"),
        "NOTIFYs with sipfrag"
    );
    assert_tone(&alice.path("rec-2.wav"), CAROL_HZ, "alice");
    assert_tone(&carol.path("rec.wav"), ALICE_HZ, "carol");
    bob.stop();
}

#[test]
fn tincan_transfers_baresip_to_another_tincan() {
    if !require_peers(&["baresip"]) {
        return;
    }
    tincan_binary();
    const BARESIP_HZ: u32 = 880;
    let bob = Baresip::builder("bob", "bobpw")
        .register(false)
        .auto_answer(true)
        .tone(BARESIP_HZ)
        .codecs("PCMU/8000/1")
        .start()
        .expect("baresip bob starts");
    let (mut carol, carol_port) = TincanProcess::new("transfer-target")
        .and_then(|p| p.tone_listener(CAROL_HZ))
        .expect("carol listens");

    let dir = TincanProcess::new("transferor")
        .expect("scratch dir")
        .with_stdin();
    let args = [
        "call".to_owned(),
        format!("sip:bob@{}", bob.sip_addr()),
        "--no-audio".to_owned(),
        "--json".to_owned(),
        "--bind".to_owned(),
        format!("127.0.0.1:{}", free_port()),
    ];
    let mut alice = dir.spawn(args).expect("tincan call starts");
    alice.wait_event("answered", WAIT).expect("baresip answers");
    std::thread::sleep(Duration::from_secs(1));
    alice
        .command(&format!("transfer sip:carol@127.0.0.1:{carol_port}"))
        .expect("stdin open");
    let done = alice
        .wait_event("transfer_succeeded", WAIT)
        .expect("baresip's NOTIFY says the transfer worked");
    assert_eq!(done["status"], 200, "{done}");
    assert_eq!(
        alice.wait_exit(WAIT).expect("tincan call exits"),
        Some(0),
        "{}",
        alice.log()
    );
    let progress = alice.events_named("transfer_progress");
    assert!(
        progress.first().is_some_and(|p| p["status"] == 202),
        "{progress:?}"
    );
    carol
        .wait_event("answered", WAIT)
        .expect("carol answers baresip");
    std::thread::sleep(Duration::from_secs(3));
    bob.stop();
    carol.wait_event("ended", WAIT).expect("carol's call ends");
    assert_tone(&carol.path("rec.wav"), f64::from(BARESIP_HZ), "carol");
}
