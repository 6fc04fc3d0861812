//! Session timers (RFC 4028) against a real peer that enforces them: a sipp UAS
//! (`uas_session_timer_drop.xml`) answers `tincan call` with `Session-Expires: 90;refresher=uac`
//! and waits 60 s for each refresh (the interval minus min(32 s, interval/3), RFC 4028 §10);
//! when none comes it sends BYE, as a PBX or trunk drops a call that is not refreshed.
//!
//! - With its default session timers Tincan refreshes (UPDATE) every 45 s: sipp gets two
//!   refreshes and hangs up only after the 90 s interval; the call ends by that BYE.
//! - With session timers off (`[network] session_expires = 0`) Tincan never refreshes: sipp
//!   drops the call at 60 s and `tincan call` reports the peer's hang-up cleanly.

use std::time::{Duration, Instant};

use tincan_interop_tests::{Sipp, TincanProcess, require_peer, tincan_binary};

/// A `tincan call` (no audio, `--json`, no RTP timeout: sipp sends none) to the dropping UAS;
/// `config` is written as its `config.toml` when given. Returns how long the call lasted
/// from the start of sipp, the `ended` event, the exit code and sipp's message trace.
fn call_the_dropping_uas(
    name: &str,
    config: Option<&str>,
) -> (Duration, serde_json::Value, Option<i32>, String) {
    // Built before any peer starts: a first build can outlast a peer's timeout.
    tincan_binary();
    let uas = Sipp::lab_scenario("uas_session_timer_drop.xml")
        .calls(1)
        .trace_msg()
        .timeout(Duration::from_secs(150))
        .spawn()
        .expect("sipp uas starts");
    let started = Instant::now();
    let target = format!("sip:service@{}", uas.addr());
    let process = TincanProcess::new(name)
        .expect("scratch dir")
        .lifetime(Duration::from_secs(140));
    let mut args: Vec<String> = Vec::new();
    if let Some(config) = config {
        process
            .dir()
            .write("config.toml", config)
            .expect("config written");
        args.extend([
            "--config".to_owned(),
            process.path("config.toml").display().to_string(),
        ]);
    }
    args.extend(
        [
            "call",
            &target,
            "--no-audio",
            "--json",
            "--rtp-timeout",
            "0",
        ]
        .map(str::to_owned),
    );
    let mut caller = process.spawn(&args).expect("tincan starts");
    let code = caller
        .wait_exit(Duration::from_secs(140))
        .expect("tincan call ends by itself");
    let lasted = started.elapsed();
    let ended = caller.events_named("ended");
    assert_eq!(ended.len(), 1, "{}", caller.log());
    let sipp = uas.wait(Duration::from_secs(20));
    assert_eq!(
        (sipp.successful, sipp.failed),
        (1, 0),
        "{}\n{}",
        sipp.summary(),
        caller.log()
    );
    (lasted, ended[0].clone(), code, sipp.messages())
}

/// The requests of one method sipp received: it sends none but its BYE, so the request
/// lines of `method` in its trace are all the caller's.
fn received(messages: &str, method: &str) -> usize {
    messages.matches(&format!("{method} sip:")).count()
}

#[test]
fn refreshed_call_outlives_the_interval_and_ends_by_the_peers_bye() {
    if !require_peer("sipp") {
        return;
    }
    let (lasted, ended, code, messages) = call_the_dropping_uas("session-drop-refreshed", None);
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    assert_eq!(ended["answered"], true, "{ended}");
    assert_eq!(code, Some(0), "{ended}");
    let updates = received(&messages, "UPDATE");
    eprintln!("{updates} refresh(es) received by sipp; the call lasted {lasted:?}");
    assert_eq!(updates, 2, "{messages}");
    // sipp hangs up 2 s after the second refresh (90 s after the answer): past the
    // interval, where an unrefreshed call would have been dropped at 60 s.
    assert!(lasted >= Duration::from_secs(90), "ended early: {lasted:?}");
}

#[test]
fn unrefreshed_call_is_dropped_at_the_expiry_and_reported_cleanly() {
    if !require_peer("sipp") {
        return;
    }
    let (lasted, ended, code, messages) =
        call_the_dropping_uas("session-drop-off", Some("[network]\nsession_expires = 0\n"));
    assert_eq!(received(&messages, "UPDATE"), 0, "{messages}");
    assert_eq!(received(&messages, "INVITE"), 1, "{messages}");
    // The peer's BYE at its 60 s expiry ends the call like any hang-up of the peer.
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    assert_eq!(ended["answered"], true, "{ended}");
    assert_eq!(code, Some(0), "{ended}");
    eprintln!("dropped by the peer after {lasted:?}");
    assert!(
        lasted >= Duration::from_secs(59) && lasted < Duration::from_secs(90),
        "dropped at {lasted:?}"
    );
}
