//! Reliable provisional responses (RFC 3262) against a real peer: a sipp UAS that requires
//! `100rel` answers `tincan call` with a reliable 183 (RSeq 1) carrying SDP, resent every
//! 500 ms until the PRACK; it checks the INVITE lists `Supported: 100rel` and the PRACK's
//! RAck, then plays a PCMU tone as early media, answers 200 a second later and hangs up 4 s
//! after the ACK. Tincan must PRACK once, connect, and record the tone.

use std::ffi::OsStr;
use std::time::Duration;

use tincan_interop_tests::{
    Sipp, TincanProcess, WorkDir, audio, lab_file, pcap, require_peer, tincan_binary,
};

#[test]
fn tincan_pracks_a_reliable_183_and_plays_its_early_media() {
    if !require_peer("sipp") {
        return;
    }
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    let scratch = WorkDir::new("sipp-100rel").expect("scratch dir");
    let tone = audio::sine(440.0, Duration::from_secs(3), 8_000, 12_000);
    let pcap_path = scratch.join("tone-440.pcap");
    pcap::write_pcmu_pcap(&pcap_path, &tone).expect("pcap written");
    let xml = std::fs::read_to_string(lab_file("sipp/uas_100rel_183_template.xml"))
        .expect("the lab template exists")
        .replace("@PCAP@", &pcap_path.display().to_string());
    let scenario = scratch
        .write("uas_100rel_183.xml", xml)
        .expect("scratch dir is writable");
    let uas = Sipp::scenario(scenario)
        .calls(1)
        .trace_msg()
        .timeout(Duration::from_secs(30))
        .spawn()
        .expect("sipp uas starts");

    let caller = TincanProcess::new("call-100rel").expect("scratch dir");
    let out = caller.path("out.wav");
    let target = format!("sip:service@{}", uas.addr());
    let args: Vec<&OsStr> = vec![
        "call".as_ref(),
        target.as_ref(),
        "--record".as_ref(),
        out.as_os_str(),
        "--no-audio".as_ref(),
        "--json".as_ref(),
    ];
    let mut caller = caller.spawn(args).expect("tincan starts");
    let code = caller
        .wait_exit(Duration::from_secs(25))
        .expect("tincan call ends by itself");
    assert_eq!(code, Some(0), "{}", caller.log());
    let events = caller.events();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "progress" && e["status"] == 183),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "answered"),
        "{events:#?}"
    );
    let ended = caller.events_named("ended");
    assert_eq!(ended.len(), 1, "{}", caller.log());
    assert_eq!(ended[0]["reason"], "remote_hangup", "{}", ended[0]);

    let sipp = uas.wait(Duration::from_secs(10));
    assert_eq!((sipp.successful, sipp.failed), (1, 0), "{}", sipp.summary());
    let messages = sipp.messages();
    assert_eq!(
        messages.matches("PRACK sip:").count(),
        1,
        "one PRACK: {messages}"
    );

    let wav = audio::read_wav(&out).expect("a recording");
    let heard = wav.analyse(Duration::from_millis(300));
    let sound = audio::active_duration(&wav, 300.0);
    eprintln!("recorded {heard:?}, {sound:?} of sound");
    assert!((heard.frequency - 440.0).abs() < 10.0, "{heard:?}");
    assert!(
        sound >= Duration::from_millis(2_000),
        "3 s of tone sent, {sound:?} recorded"
    );
}
