//! sipp's built-in `uac` scenario calling `tincan listen --auto-answer`: every call is
//! answered (180, 200 with SDP), the ACK taken, sipp's BYE answered; sipp counts no failed
//! call and `listen` exits 0 after `--max-calls`.

use std::time::Duration;

use tincan_interop_tests::{Sipp, TincanProcess, free_port, require_peer, tincan_binary};

/// Calls sipp places.
const CALLS: u64 = 5;

#[test]
fn sipp_uac_calls_complete_against_tincan_listen() {
    if !require_peer("sipp") {
        return;
    }
    tincan_binary();
    let port = free_port();
    let mut listener = TincanProcess::new("listen")
        .expect("scratch dir")
        .spawn([
            "listen".to_owned(),
            "--auto-answer".to_owned(),
            "--max-calls".to_owned(),
            CALLS.to_string(),
            "--bind".to_owned(),
            format!("127.0.0.1:{port}"),
            "--no-audio".to_owned(),
            "--json".to_owned(),
        ])
        .expect("tincan listen starts");
    let listening = listener
        .wait_event("listening", Duration::from_secs(10))
        .expect("tincan listens");
    assert_eq!(
        listening["address"],
        format!("127.0.0.1:{port}"),
        "{listening}"
    );

    // -d 1000: each call lasts 1 s between sipp's ACK and its BYE.
    let uac = Sipp::builtin("uac")
        .remote(format!("127.0.0.1:{port}").parse().expect("an address"))
        .calls(CALLS)
        .rate(5.0)
        .limit(CALLS)
        .arg("-d")
        .arg("1000")
        .timeout(Duration::from_secs(25))
        .trace_msg()
        .run()
        .expect("sipp uac runs");
    assert_eq!(
        uac.exit_code,
        Some(0),
        "{}\n{}",
        uac.summary(),
        listener.log()
    );
    assert_eq!(
        (uac.successful, uac.failed),
        (CALLS, 0),
        "{}",
        uac.summary()
    );
    let messages = uac.messages();
    assert!(
        messages.contains("SIP/2.0 180"),
        "no 180 Ringing seen by sipp"
    );

    let code = listener
        .wait_exit(Duration::from_secs(15))
        .expect("tincan listen exits after --max-calls");
    assert_eq!(code, Some(0), "{}", listener.log());
    let incoming = listener.events_named("incoming");
    let ended = listener.events_named("ended");
    assert_eq!(incoming.len(), CALLS as usize, "{}", listener.log());
    assert_eq!(ended.len(), CALLS as usize, "{}", listener.log());
    for e in &ended {
        assert_eq!(e["reason"], "remote_hangup", "{e}");
        assert_eq!(e["answered"], true, "{e}");
        assert!(
            e["codec"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case("PCMU")),
            "sipp's uac offers PCMU only: {e}"
        );
    }
}
