//! `tincan call --srtp optional` to a baresip that requires SRTP (`mediaenc=srtp-mand`):
//! baresip refuses the RTP/AVP offer with 488 Not Acceptable Here; Tincan places the call
//! again once with an RTP/SAVP offer (SDES keys, as baresip's `mediaenc` and Linphone do),
//! says so in a `warning` line, and the call is answered over SRTP with tones crossing both
//! ways.

use std::time::Duration;

use tincan_interop_tests::{Baresip, TincanProcess, audio, require_peers, tincan_binary};

const WAIT: Duration = Duration::from_secs(10);
/// The tone Tincan sends.
const TINCAN_HZ: f64 = 440.0;
/// The tone baresip sends.
const BARESIP_HZ: u32 = 880;

/// Asserts that the recording at `path` holds about `hz`.
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
fn optional_srtp_retries_with_savp_after_488_from_a_peer_that_requires_it() {
    if !require_peers(&["baresip"]) {
        return;
    }
    tincan_binary();
    let mut bob = Baresip::builder("bob", "bobpw")
        .register(false)
        .tone(BARESIP_HZ)
        .codecs("PCMU/8000/1")
        .config_line("module\t\t\tsrtp.so")
        .account_param("mediaenc=srtp-mand")
        .start()
        .expect("baresip bob starts");
    bob.peer()
        .wait_for_log("Using media encryption 'srtp-mand'", WAIT)
        .expect("baresip requires SRTP");

    let process = TincanProcess::new("srtp-retry").expect("scratch dir");
    audio::write_tone_wav(
        process.path("tone.wav"),
        TINCAN_HZ,
        Duration::from_secs(20),
        48_000,
        12_000,
    )
    .expect("tone written");
    let args = [
        "call".to_owned(),
        format!("sip:bob@{}", bob.sip_addr()),
        "--srtp".to_owned(),
        "optional".to_owned(),
        "--duration".to_owned(),
        "3".to_owned(),
        "--play".to_owned(),
        process.path("tone.wav").display().to_string(),
        "--record".to_owned(),
        process.path("rec.wav").display().to_string(),
        "--json".to_owned(),
        "--bind".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let mut alice = process.spawn(args).expect("tincan starts");

    let answered = alice.wait_event("answered", WAIT).expect("baresip answers");
    assert_eq!(answered["srtp"], true, "{answered}");
    let warnings = alice.events_named("warning");
    assert!(
        warnings.iter().any(|w| w["message"]
            .as_str()
            .is_some_and(|m| m.contains("requires SRTP"))),
        "no warning about SRTP being required in {warnings:?}"
    );
    assert_eq!(
        alice
            .wait_exit(Duration::from_secs(15))
            .expect("tincan exits"),
        Some(0),
        "{}",
        alice.log()
    );
    let ended = alice.events_named("ended").pop().expect("an ended event");
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    // Not asserted: baresip 1.0 (libre) opens its RTCP flow with a plain 16-byte RTCP APP
    // packet named "PINGPONG" (`80 cc 00 03 <ssrc> PINGPONG`), which is no SRTCP packet and
    // is rightly refused: `srtp_rejected` is 1 in every call with it (also with
    // `--srtp required` and no retry), and no more later. The tones below cross both ways.
    println!(
        "MEASURED: srtp_rejected {} with baresip (packets_received {})",
        ended["quality"]["srtp_rejected"], ended["quality"]["packets_received"]
    );

    // On the wire: an RTP/AVP offer refused with 488, then an RTP/SAVP offer answered.
    let trace = std::fs::read_to_string(alice.path("sip-trace.log")).expect("a SIP trace");
    let offers: Vec<&str> = trace.lines().filter(|l| l.starts_with("m=audio")).collect();
    assert!(
        offers.first().is_some_and(|m| m.contains(" RTP/AVP ")),
        "the first offer is RTP/AVP: {offers:?}"
    );
    let refused = trace.find("SIP/2.0 488").expect("baresip's 488");
    let savp = trace.find(" RTP/SAVP ").expect("an RTP/SAVP offer");
    assert!(
        refused < savp,
        "the RTP/SAVP offer follows the 488:\n{trace}"
    );
    assert_eq!(warnings.len(), 1, "one retry: {warnings:?}");

    assert_tone(&alice.path("rec.wav"), f64::from(BARESIP_HZ), "tincan");
    let heard = bob.decoded_recordings();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_tone(&heard[0], TINCAN_HZ, "baresip");
}
