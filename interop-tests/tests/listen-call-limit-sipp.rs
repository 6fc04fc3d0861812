//! Admission control against a real caller (issue 19, finding 2): sipp's built-in `uac`
//! places 20 calls of 10 s at 20 calls/s on `tincan listen --auto-answer --call-limit 5`.
//! The first 5 are answered and last; every call over the limit is refused at once with
//! 503 Service Unavailable and Retry-After (counted by `listen` as `refused` events); once
//! sipp has hung up, every admitted call has ended: none is left up.

use std::time::Duration;

use tincan_interop_tests::{Sipp, TincanProcess, free_port, require_peer, tincan_binary};

/// Calls sipp places.
const CALLS: u64 = 20;
/// The call limit of `listen`.
const LIMIT: u64 = 5;

#[test]
fn calls_over_the_limit_get_503_and_every_admitted_call_ends() {
    if !require_peer("sipp") {
        return;
    }
    tincan_binary();
    let port = free_port();
    let mut listener = TincanProcess::new("listen-limit")
        .expect("scratch dir")
        .spawn([
            "listen".to_owned(),
            "--auto-answer".to_owned(),
            "--call-limit".to_owned(),
            LIMIT.to_string(),
            "--bind".to_owned(),
            format!("127.0.0.1:{port}"),
            "--no-audio".to_owned(),
            "--json".to_owned(),
        ])
        .expect("tincan listen starts");
    listener
        .wait_event("listening", Duration::from_secs(10))
        .expect("tincan listens");

    // -d 10000: each admitted call lasts 10 s, far longer than sipp needs to send all 20
    // INVITEs (1 s at 20/s), so exactly LIMIT are up when the others come.
    let uac = Sipp::builtin("uac")
        .remote(format!("127.0.0.1:{port}").parse().expect("an address"))
        .calls(CALLS)
        .rate(20.0)
        .limit(CALLS)
        .arg("-d")
        .arg("10000")
        .timeout(Duration::from_secs(60))
        .trace_msg()
        .run()
        .expect("sipp uac runs");
    assert_eq!(
        (uac.successful, uac.failed),
        (LIMIT, CALLS - LIMIT),
        "{}\n{}",
        uac.summary(),
        listener.log()
    );
    let messages = uac.messages();
    assert!(
        messages.contains("SIP/2.0 503 Service Unavailable"),
        "sipp saw no 503"
    );
    assert!(
        messages.contains("Retry-After: 5"),
        "the 503 has no Retry-After"
    );

    // Every refused call reported as such, every admitted one ended by sipp's BYE.
    let refused = listener
        .wait_event_count("refused", (CALLS - LIMIT) as usize, Duration::from_secs(10))
        .map(|_| listener.events_named("refused"))
        .unwrap_or_else(|e| panic!("{e}\n{}", listener.log()));
    assert_eq!(refused.len(), (CALLS - LIMIT) as usize);
    assert!(refused.iter().all(|r| r["status"] == 503), "{refused:?}");
    listener
        .wait_event_count("ended", LIMIT as usize, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", listener.log()));
    let incoming = listener.events_named("incoming");
    let ended = listener.events_named("ended");
    assert_eq!(incoming.len(), LIMIT as usize, "{}", listener.log());
    assert_eq!(
        ended.len(),
        incoming.len(),
        "calls left up:\n{}",
        listener.log()
    );
    for e in &ended {
        assert_eq!(e["reason"], "remote_hangup", "{e}");
    }
}
