//! A PBX's unsolicited message-waiting NOTIFY (RFC 3842), played by sipp against `tincan
//! listen`: answered 200 and printed as a `message_waiting` event with the voicemail count;
//! a NOTIFY for a subscription that does not exist is answered 481; a page-mode MESSAGE is
//! answered 200 and printed.

use std::time::Duration;

use tincan_interop_tests::{Sipp, TincanProcess, free_port, require_peer, tincan_binary};

#[test]
fn unsolicited_mwi_notify_and_message_from_sipp() {
    if !require_peer("sipp") {
        return;
    }
    tincan_binary();
    let port = free_port();
    let mut listener = TincanProcess::new("listen-mwi")
        .expect("scratch dir")
        .spawn([
            "listen".to_owned(),
            "--bind".to_owned(),
            format!("127.0.0.1:{port}"),
            "--no-audio".to_owned(),
            "--no-history".to_owned(),
            "--json".to_owned(),
        ])
        .expect("tincan listen starts");
    listener
        .wait_event("listening", Duration::from_secs(10))
        .expect("tincan listens");

    let pbx = Sipp::lab_scenario("mwi_notify_uac.xml")
        .remote(format!("127.0.0.1:{port}").parse().expect("an address"))
        .service("bob")
        .calls(1)
        .timeout(Duration::from_secs(30))
        .trace_msg()
        .run()
        .expect("sipp runs");
    assert_eq!(
        (pbx.successful, pbx.failed),
        (1, 0),
        "{}\n{}",
        pbx.summary(),
        listener.log()
    );
    let waiting = listener
        .wait_event("message_waiting", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", listener.log()));
    assert_eq!(waiting["waiting"], true, "{waiting}");
    assert_eq!(waiting["new"], 2, "{waiting}");
    assert_eq!(waiting["old"], 4, "{waiting}");
    assert_eq!(waiting["urgent_new"], 1, "{waiting}");
    let message = listener
        .wait_event("message", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", listener.log()));
    assert_eq!(
        message["text"].as_str().map(str::trim),
        Some("You have 2 new voice messages."),
        "{message}"
    );
}
