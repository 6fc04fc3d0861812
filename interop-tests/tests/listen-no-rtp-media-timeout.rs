//! Issue 19, finding 3: a call that never receives a single RTP packet ends too. sipp's
//! built-in `uac` scenario calls `tincan listen --auto-answer --rtp-timeout 2`, sends no RTP
//! and would send its BYE only after 10 s (`-d 10000`): Tincan hangs up by itself 2 s after
//! the answer, the call ends `media_timeout`, and `listen` exits (1: not a hang-up) after `--max-calls 1`.

use std::time::Duration;

use tincan_interop_tests::{Sipp, TincanProcess, free_port, require_peer, tincan_binary};

#[test]
fn a_call_without_any_rtp_is_hung_up_after_the_rtp_timeout() {
    if !require_peer("sipp") {
        return;
    }
    tincan_binary();
    let port = free_port();
    let mut listener = TincanProcess::new("listen-no-rtp")
        .expect("scratch dir")
        .spawn([
            "listen",
            "--auto-answer",
            "--max-calls",
            "1",
            "--rtp-timeout",
            "2",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--no-audio",
            "--json",
        ])
        .expect("tincan listen starts");
    listener
        .wait_event("listening", Duration::from_secs(10))
        .expect("tincan listens");
    let uac = Sipp::builtin("uac")
        .remote(format!("127.0.0.1:{port}").parse().expect("an address"))
        .calls(1)
        .limit(1)
        .arg("-d")
        .arg("10000")
        .timeout(Duration::from_secs(30))
        .trace_msg()
        .spawn()
        .expect("sipp uac runs");
    let answered = listener
        .wait_event("answered", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", listener.log()));
    assert_eq!(answered["codec"], "pcmu", "{answered}");
    let ended = listener
        .wait_event("ended", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", listener.log()));
    assert_eq!(ended["reason"], "media_timeout", "{ended}");
    assert_eq!(ended["answered"], true, "{ended}");
    // Answered at 0, hung up at the 2 s RTP timeout: well before sipp's BYE at 10 s.
    let duration = ended["duration_s"].as_f64().expect("a duration");
    assert!((1.9..10.0).contains(&duration), "{ended}");
    let code = listener
        .wait_exit(Duration::from_secs(15))
        .expect("tincan listen exits after --max-calls");
    // 1: a call that did not end by a hang-up (docs/calls.md, exit status).
    assert_eq!(code, Some(1), "{}", listener.log());
    let messages = uac.messages();
    assert!(
        messages.contains("BYE sip:"),
        "sipp got Tincan's BYE:\n{messages}"
    );
    uac.stop();
}
