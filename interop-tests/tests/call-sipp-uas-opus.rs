//! `tincan call --codec opus` against a sipp UAS that answers with Opus (`m=audio ... RTP/AVP
//! 96`, `a=rtpmap:96 opus/48000/2`, no SRTP) and echoes every RTP packet back (`-rtp_echo`):
//! Tincan hears its own tone, encoded by its Opus encoder, echoed by sipp and decoded by its
//! Opus decoder, and hangs up after `--duration` (the scenario waits for the BYE). The same
//! with a PCMA answer.

use std::time::Duration;

use serde_json::Value;
use tincan_interop_tests::{
    Sipp, TincanProcess, WorkDir, audio, lab_file, require_peer, tincan_binary,
};

/// The tone Tincan sends (and hears back).
const TONE_HZ: f64 = 440.0;
/// `--duration`.
const SECONDS: u64 = 4;

/// A copy of `uas_echo_wait_bye_template.xml` answering `rtpmap` on payload type `pt`, as a
/// sipp UAS with `-rtp_echo`, started.
fn echo_uas(dir: &WorkDir, pt: u8, rtpmap: &str) -> tincan_interop_tests::SippPeer {
    let xml = std::fs::read_to_string(lab_file("sipp/uas_echo_wait_bye_template.xml"))
        .expect("the lab template exists")
        .replace("@PT@", &pt.to_string())
        .replace("@RTPMAP@", rtpmap);
    let path = dir
        .write("uas_echo_wait_bye.xml", xml)
        .expect("scratch dir is writable");
    Sipp::scenario(path)
        .rtp_echo()
        .calls(1)
        .timeout(Duration::from_secs(30))
        .spawn()
        .expect("sipp uas starts")
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name:?} event in {events:#?}"))
}

/// Tincan calls the echoing UAS with `--codec codec` for [`SECONDS`]; checks the events, the
/// exit code, sipp's verdict and the tone in the recording.
fn call_the_echo(name: &str, pt: u8, rtpmap: &str, codec: &str) {
    if !require_peer("sipp") {
        return;
    }
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    let scratch = WorkDir::new(name).expect("scratch dir");
    let uas = echo_uas(&scratch, pt, rtpmap);
    let caller = TincanProcess::new(name).expect("scratch dir");
    let tone = caller.path("tone.wav");
    audio::write_tone_wav(&tone, TONE_HZ, Duration::from_secs(20), 48_000, 12_000)
        .expect("tone written");
    let out = caller.path("out.wav");
    let mut caller = caller
        .spawn([
            "call".as_ref(),
            format!("sip:service@{}", uas.addr()).as_ref(),
            "--codec".as_ref(),
            codec.as_ref(),
            "--play".as_ref(),
            tone.as_os_str(),
            "--record".as_ref(),
            out.as_os_str(),
            "--duration".as_ref(),
            SECONDS.to_string().as_ref(),
            "--json".as_ref(),
            "--bind".as_ref(),
            "127.0.0.1:0".as_ref(),
        ])
        .expect("tincan starts");
    let code = caller
        .wait_exit(Duration::from_secs(25))
        .expect("tincan call hangs up after --duration");
    let events = caller.events();
    assert_eq!(code, Some(0), "{}", caller.log());
    let answered = event(&events, "answered");
    assert_eq!(answered["codec"], codec, "{answered}");
    assert_eq!(answered["srtp"], false, "{answered}");
    let ended = event(&events, "ended");
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    assert_eq!(ended["codec"], codec, "{ended}");
    let sent = ended["quality"]["packets_sent"].as_u64().unwrap_or(0);
    let received = ended["quality"]["packets_received"].as_u64().unwrap_or(0);
    eprintln!("{codec}: sent {sent}, received {received} (echoed)");
    assert!(
        received >= 100 && received * 10 >= sent * 8,
        "sipp echoes what it gets: sent {sent}, received {received}: {ended}"
    );
    // the BYE reached sipp and was answered: its scenario completed
    let sipp = uas.wait(Duration::from_secs(10));
    assert_eq!((sipp.successful, sipp.failed), (1, 0), "{}", sipp.summary());

    let wav = audio::read_wav(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let report = wav.analyse(Duration::from_millis(500));
    let sound = audio::active_duration(&wav, 1_000.0);
    eprintln!("{codec}: recorded {report:?}, {sound:?} of sound");
    assert!(
        (report.frequency - TONE_HZ).abs() < 10.0,
        "the echo of a {TONE_HZ} Hz tone: {report:?}"
    );
    assert!(report.rms > 2_000.0, "the echo is too quiet: {report:?}");
    assert!(
        sound >= Duration::from_millis(2_500),
        "{sound:?} of the {SECONDS} s call echoed: {report:?}"
    );
}

#[test]
fn tincan_hears_its_own_opus_echoed_by_sipp() {
    call_the_echo("opus-echo", 96, "opus/48000/2", "opus");
}

#[test]
fn tincan_hears_its_own_pcma_echoed_by_sipp() {
    call_the_echo("pcma-echo", 8, "PCMA/8000", "pcma");
}
