//! Session timers (RFC 4028) against a real peer: a sipp UAS answers `tincan call` with
//! `Session-Expires: 90;refresher=uac` and waits for two refreshes (UPDATE, each within 60 s)
//! before it hangs up. Tincan must send one every 45 s: not earlier (the call lasts at least
//! 90 s), and in time (sipp's waits would fail the scenario).

use std::time::{Duration, Instant};

use tincan_interop_tests::{Sipp, TincanProcess, require_peer, tincan_binary};

#[test]
fn tincan_refreshes_a_session_every_half_interval() {
    if !require_peer("sipp") {
        return;
    }
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    let uas = Sipp::lab_scenario("uas_session_timer.xml")
        .calls(1)
        .trace_msg()
        .timeout(Duration::from_secs(180))
        .spawn()
        .expect("sipp uas starts");
    let started = Instant::now();
    let target = format!("sip:service@{}", uas.addr());
    // sipp sends no RTP: only warn about it, the call must live on its refreshes.
    let mut caller = TincanProcess::new("session-timer")
        .expect("scratch dir")
        .lifetime(Duration::from_secs(170))
        .spawn([
            "call",
            target.as_str(),
            "--no-audio",
            "--json",
            "--rtp-timeout",
            "0",
        ])
        .expect("tincan starts");
    let code = caller
        .wait_exit(Duration::from_secs(170))
        .expect("tincan call ends by itself");
    let lasted = started.elapsed();
    assert_eq!(code, Some(0), "{}", caller.log());
    let ended = caller.events_named("ended");
    assert_eq!(ended.len(), 1, "{}", caller.log());
    assert_eq!(ended[0]["reason"], "remote_hangup", "{}", ended[0]);

    let sipp = uas.wait(Duration::from_secs(20));
    assert_eq!((sipp.successful, sipp.failed), (1, 0), "{}", sipp.summary());
    let messages = sipp.messages();
    let updates = messages.matches("UPDATE sip:").count();
    eprintln!("{updates} UPDATE(s) received by sipp in {lasted:?}");
    assert!(updates >= 2, "{messages}");
    // Two refreshes, 45 s apart from the answer: never before 90 s.
    assert!(
        lasted >= Duration::from_secs(89),
        "refreshed early: {lasted:?}"
    );
}
