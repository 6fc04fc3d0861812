//! `tincan call` against sipp UAS scenarios on loopback: the UAS answers, plays RTP from a
//! pcap (Debian's `g711a.pcap`, or a PCMU tone the test writes) and hangs up; or it waits and
//! Tincan hangs up after `--duration`. Tincan records what it receives; the recording must
//! hold the audio sipp sent, for about as long as it was sent.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tincan_interop_tests::{
    Sipp, Tincan, TincanProcess, WorkDir, audio, lab_file, pcap, require_peer, tincan_binary,
};

/// Debian's capture of PCMA RTP (236 packets, about 7 s of speech).
const G711A_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// Writes a copy of the lab scenario template `template` into `dir` with `@NAME@` replaced.
fn scenario_from_template(dir: &WorkDir, template: &str, values: &[(&str, String)]) -> Sipp {
    let mut xml = std::fs::read_to_string(lab_file(&format!("sipp/{template}")))
        .expect("the lab template exists");
    for (name, value) in values {
        xml = xml.replace(&format!("@{name}@"), value);
    }
    let path = dir
        .write(&template.replace("_template", ""), xml)
        .expect("scratch dir is writable");
    Sipp::scenario(path)
}

/// A mono 8 kHz 440 Hz tone of `seconds` as a PCMU pcap in `dir`.
fn tone_pcap(dir: &WorkDir, seconds: u64) -> std::path::PathBuf {
    let path = dir.join("tone-440.pcap");
    let tone = audio::sine(440.0, Duration::from_secs(seconds), 8_000, 12_000);
    pcap::write_pcmu_pcap(&path, &tone).expect("pcap written");
    path
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name:?} event in {events:#?}"))
}

/// Whether the event names `codec` (case-insensitive: `PCMU`, `pcmu`).
fn codec_is(event: &Value, codec: &str) -> bool {
    event["codec"]
        .as_str()
        .is_some_and(|c| c.eq_ignore_ascii_case(codec))
}

fn recording(path: &Path) -> audio::Wav {
    audio::read_wav(path).unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()))
}

/// Runs `tincan call sip:service@<uas> --record out.wav --no-audio --json [extra...]` until it
/// exits by itself within `within`; returns its exit code, its JSON events, the recording's
/// path and the process (which keeps the scratch directory, and the recording, alive).
fn call_recording(
    uas: SocketAddr,
    name: &str,
    extra: &[&str],
    within: Duration,
) -> (Option<i32>, Vec<Value>, PathBuf, Tincan) {
    let caller = TincanProcess::new(name).expect("scratch dir");
    let out = caller.path("out.wav");
    let target = format!("sip:service@{uas}");
    let mut args: Vec<&OsStr> = vec![
        "call".as_ref(),
        target.as_ref(),
        "--record".as_ref(),
        out.as_os_str(),
        "--no-audio".as_ref(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(|a| OsStr::new(*a)));
    let mut caller = caller.spawn(args).expect("tincan starts");
    let code = caller
        .wait_exit(within)
        .expect("tincan call ends by itself");
    (code, caller.events(), out, caller)
}

#[test]
fn tincan_records_the_g711a_pcap_and_sipp_hangs_up() {
    if !require_peer("sipp") {
        return;
    }
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    assert!(
        Path::new(G711A_PCAP).exists(),
        "{G711A_PCAP} missing (Debian sip-tester ships it)"
    );
    let uas = Sipp::lab_scenario("uas_play_pcap.xml")
        .calls(1)
        .timeout(Duration::from_secs(40))
        .spawn()
        .expect("sipp uas starts");
    let (code, events, out, caller) =
        call_recording(uas.addr(), "call-g711a", &[], Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", caller.log());
    let answered = event(&events, "answered");
    assert!(codec_is(answered, "PCMA"), "{answered}");
    assert_eq!(answered["srtp"], false, "{answered}");
    let ended = event(&events, "ended");
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    assert_eq!(ended["answered"], true, "{ended}");
    let received = ended["quality"]["packets_received"].as_u64().unwrap_or(0);
    assert!(
        received >= 230,
        "236 packets sent, {received} received: {ended}"
    );

    let sipp = uas.wait(Duration::from_secs(10));
    assert_eq!((sipp.successful, sipp.failed), (1, 0), "{}", sipp.summary());

    // sipp plays about 7 s of speech, then waits 8 s after the ACK before its BYE.
    let wav = recording(&out);
    let speech = audio::active_duration(&wav, 300.0);
    let level = audio::rms(&wav.first_channel());
    eprintln!(
        "recorded {:?} at {} Hz, {speech:?} of sound, rms {level:.0}",
        wav.duration(),
        wav.sample_rate
    );
    assert!(
        wav.duration() >= Duration::from_millis(7_500) && wav.duration() <= Duration::from_secs(10),
        "recording of {:?}",
        wav.duration()
    );
    assert!(
        speech >= Duration::from_secs(4) && speech <= Duration::from_millis(7_600),
        "{speech:?} of sound in the recording"
    );
    assert!(level > 300.0, "recording too quiet: rms {level:.0}");
}

#[test]
fn tincan_records_a_pcmu_tone_and_sipp_hangs_up() {
    if !require_peer("sipp") {
        return;
    }
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    let scratch = WorkDir::new("pcmu-tone").expect("scratch dir");
    let pcap = tone_pcap(&scratch, 3);
    let uas = scenario_from_template(
        &scratch,
        "uas_pcmu_play_pcap_template.xml",
        &[
            ("PCAP", pcap.display().to_string()),
            ("PAUSE_MS", "4000".to_owned()),
        ],
    )
    .calls(1)
    .timeout(Duration::from_secs(30))
    .spawn()
    .expect("sipp uas starts");
    let (code, events, out, caller) =
        call_recording(uas.addr(), "call-pcmu", &[], Duration::from_secs(25));
    assert_eq!(code, Some(0), "{}", caller.log());
    let answered = event(&events, "answered");
    assert!(codec_is(answered, "PCMU"), "{answered}");
    let ended = event(&events, "ended");
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    let sipp = uas.wait(Duration::from_secs(10));
    assert_eq!((sipp.successful, sipp.failed), (1, 0), "{}", sipp.summary());

    let wav = recording(&out);
    let tone = wav.analyse(Duration::from_millis(300));
    let sound = audio::active_duration(&wav, 300.0);
    eprintln!("recorded {tone:?}, {sound:?} of sound");
    assert!((tone.frequency - 440.0).abs() < 10.0, "{tone:?}");
    assert!(
        sound >= Duration::from_millis(2_500) && sound <= Duration::from_millis(3_500),
        "3 s of tone sent, {sound:?} recorded"
    );
    assert!(
        wav.duration() >= Duration::from_millis(3_500) && wav.duration() <= Duration::from_secs(6),
        "recording of {:?} for a call of 4 s",
        wav.duration()
    );
}

#[test]
fn tincan_hangs_up_after_its_duration() {
    if !require_peer("sipp") {
        return;
    }
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    let scratch = WorkDir::new("pcmu-wait").expect("scratch dir");
    let pcap = tone_pcap(&scratch, 5);
    let uas = scenario_from_template(
        &scratch,
        "uas_pcmu_wait_bye_template.xml",
        &[("PCAP", pcap.display().to_string())],
    )
    .calls(1)
    .timeout(Duration::from_secs(30))
    .spawn()
    .expect("sipp uas starts");
    let (code, events, out, caller) = call_recording(
        uas.addr(),
        "call-duration",
        &["--duration", "2", "--bind", "127.0.0.1:0"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "{}", caller.log());
    let ended = event(&events, "ended");
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    let seconds = ended["duration_s"].as_f64().unwrap_or(0.0);
    assert!(
        (1.8..=3.0).contains(&seconds),
        "call of {seconds} s: {ended}"
    );
    // the BYE reached sipp and was answered: its scenario completed
    let sipp = uas.wait(Duration::from_secs(10));
    assert_eq!((sipp.successful, sipp.failed), (1, 0), "{}", sipp.summary());

    let wav = recording(&out);
    let tone = wav.analyse(Duration::from_millis(300));
    eprintln!("recorded {tone:?}");
    assert!((tone.frequency - 440.0).abs() < 10.0, "{tone:?}");
    assert!(
        tone.duration >= Duration::from_millis(1_500) && tone.duration <= Duration::from_secs(3),
        "{tone:?}"
    );
}
