//! Smoke test of the baresip launcher: alice (finds the registrar through DNS SRV at the
//! dnsmasq) and bob (explicit outbound proxy) register with kamailio; alice calls bob, who
//! answers automatically; each hears the other's tone in the sndfile recordings.

use std::time::Duration;

use tincan_interop_tests::audio;
use tincan_interop_tests::{Baresip, DnsRecords, Dnsmasq, Kamailio, free_tcp_port, require_peers};

#[test]
fn baresip_calls_baresip_through_kamailio_with_tones() {
    if !require_peers(&["kamailio", "dnsmasq", "baresip"]) {
        return;
    }
    // Declared first, dropped last: the baresips un-REGISTER before kamailio stops.
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut dns = Dnsmasq::start(&DnsRecords::example_test(
        kamailio.port(),
        kamailio.secondary_addr().map(|a| a.port()),
        free_tcp_port(),
    ))
    .expect("dnsmasq starts");

    let mut alice = Baresip::builder("alice", "alicepw")
        .dns(dns.addr())
        .tone(440)
        .start()
        .expect("baresip alice starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .tone(880)
        .start()
        .expect("baresip bob starts");
    alice
        .wait_registered(Duration::from_secs(10))
        .expect("alice registers");
    bob.wait_registered(Duration::from_secs(10))
        .expect("bob registers");
    dns.peer()
        .wait_for_log(
            r"query\[SRV\] _sip\._udp\.example\.test",
            Duration::from_secs(1),
        )
        .expect("alice found the registrar with SRV");
    assert_eq!(kamailio.contacts("bob").expect("kamcmd works").len(), 1);

    let mut alice_ctl = alice.control().expect("ctrl_tcp connects");
    let mut bob_ctl = bob.control().expect("ctrl_tcp connects");
    alice_ctl
        .dial("sip:bob@example.test")
        .expect("dial accepted");
    let established = alice_ctl
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .expect("call established");
    assert!(
        established
            .field("peeruri")
            .is_some_and(|u| u.contains("bob"))
    );
    bob_ctl
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(5))
        .expect("bob answered");
    assert!(
        alice_ctl
            .listcalls()
            .expect("listcalls")
            .contains("ESTABLISHED")
    );

    std::thread::sleep(Duration::from_secs(3));
    alice_ctl.hangup().expect("hangup accepted");
    alice_ctl
        .wait_event("CALL_CLOSED", Duration::from_secs(5))
        .expect("alice's call closed");
    bob_ctl
        .wait_event("CALL_CLOSED", Duration::from_secs(5))
        .expect("bob's call closed");

    // sndfile closes the files when the call's audio stream ends
    let heard = |b: &Baresip| {
        let files = b.decoded_recordings();
        assert_eq!(files.len(), 1, "{files:?}");
        audio::analyse_file(&files[0]).expect("readable wav")
    };
    let alice_heard = heard(&alice);
    let bob_heard = heard(&bob);
    eprintln!("alice heard {alice_heard:?}\nbob heard {bob_heard:?}");
    assert!(
        (alice_heard.frequency - 880.0).abs() < 20.0,
        "alice heard {alice_heard:?}"
    );
    assert!(
        (bob_heard.frequency - 440.0).abs() < 20.0,
        "bob heard {bob_heard:?}"
    );
    assert!(
        alice_heard.rms > 1000.0 && bob_heard.rms > 1000.0,
        "{alice_heard:?} {bob_heard:?}"
    );
    assert!(
        alice_heard.duration >= Duration::from_secs(2),
        "{alice_heard:?}"
    );
}

#[test]
fn baresip_control_accept_dtmf_hold_resume() {
    if !require_peers(&["kamailio", "baresip"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut carol = Baresip::builder("carol", "carolpw")
        .outbound(kamailio.addr())
        .start()
        .expect("baresip carol starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .auto_answer(false)
        .start()
        .expect("baresip bob starts");
    carol
        .wait_registered(Duration::from_secs(10))
        .expect("carol registers");
    bob.wait_registered(Duration::from_secs(10))
        .expect("bob registers");
    let mut carol_ctl = carol.control().expect("ctrl_tcp connects");
    let mut bob_ctl = bob.control().expect("ctrl_tcp connects");
    assert!(bob_ctl.reginfo().expect("reginfo").contains("OK"));

    carol_ctl
        .dial("sip:bob@example.test")
        .expect("dial accepted");
    bob_ctl
        .wait_event("CALL_INCOMING", Duration::from_secs(10))
        .expect("bob's phone rings");
    bob_ctl.accept().expect("accept accepted");
    carol_ctl
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(5))
        .expect("call established");

    carol_ctl.send_dtmf("1#").expect("sndcode accepted");
    let first = bob_ctl
        .wait_event("CALL_DTMF_START", Duration::from_secs(5))
        .expect("bob receives a DTMF event");
    assert_eq!(first.field("param"), Some("1"), "{:?}", first.json);
    let second = bob_ctl
        .wait_event("CALL_DTMF_START", Duration::from_secs(5))
        .expect("bob receives a second DTMF event");
    assert_eq!(second.field("param"), Some("#"), "{:?}", second.json);

    // hold and resume are re-INVITEs: wait for each to reach bob and be answered before
    // the next (baresip does nothing with a resume while the hold is pending)
    carol_ctl.hold().expect("hold accepted");
    let offer = bob_ctl
        .wait_event("CALL_REMOTE_SDP", Duration::from_secs(5))
        .expect("bob gets the hold offer");
    carol_ctl
        .wait_event("CALL_REMOTE_SDP", Duration::from_secs(5))
        .expect("carol gets the answer");
    carol_ctl.resume().expect("resume accepted");
    bob_ctl
        .wait_event("CALL_REMOTE_SDP", Duration::from_secs(5))
        .expect("bob gets the resume offer");
    carol_ctl
        .wait_event("CALL_REMOTE_SDP", Duration::from_secs(5))
        .expect("carol gets the answer");
    eprintln!("hold offer event: {}", offer.json);

    bob_ctl.hangup().expect("hangup accepted");
    carol_ctl
        .wait_event("CALL_CLOSED", Duration::from_secs(5))
        .expect("carol's call closed");
    let kinds: Vec<String> = bob_ctl.seen().iter().map(|e| e.kind.clone()).collect();
    eprintln!("bob's events: {kinds:?}");
}

#[test]
fn baresip_sends_a_wav_file() {
    if !require_peers(&["kamailio", "baresip"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let wav_dir = tincan_interop_tests::WorkDir::new("wav-source").expect("temp dir is writable");
    let wav = wav_dir.join("1000hz.wav");
    let tone = audio::sine(1000.0, Duration::from_secs(4), 48_000, 12_000);
    audio::write_wav(&wav, 48_000, 2, &audio::to_stereo(&tone)).expect("wav written");

    let mut alice = Baresip::builder("alice", "alicepw")
        .outbound(kamailio.addr())
        .source_wav(&wav)
        .codecs("PCMU/8000/1")
        .start()
        .expect("baresip alice starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .start()
        .expect("baresip bob starts");
    alice
        .wait_registered(Duration::from_secs(10))
        .expect("alice registers");
    bob.wait_registered(Duration::from_secs(10))
        .expect("bob registers");
    let mut alice_ctl = alice.control().expect("ctrl_tcp connects");
    let mut bob_ctl = bob.control().expect("ctrl_tcp connects");
    alice_ctl
        .dial("sip:bob@example.test")
        .expect("dial accepted");
    alice_ctl
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .expect("call established");
    std::thread::sleep(Duration::from_secs(2));
    alice_ctl.hangup().expect("hangup accepted");
    // bob's recording is complete once his side of the call is closed
    bob_ctl
        .wait_event("CALL_CLOSED", Duration::from_secs(5))
        .expect("call closed");
    let files = bob.decoded_recordings();
    assert_eq!(files.len(), 1, "{files:?}");
    let heard = audio::analyse_file(&files[0]).expect("readable wav");
    eprintln!("bob heard the file as {heard:?}");
    assert!((heard.frequency - 1000.0).abs() < 20.0, "{heard:?}");
}
