//! Subscribing to `message-summary` (RFC 3842, RFC 6665) against a real notifier: `tincan
//! listen` with an `mwi = true` account registers at a sipp playing the PBX, then sends it
//! its SUBSCRIBE: sipp answers 200 and sends a NOTIFY in the new dialog, which is answered
//! 200 and printed as a `message_waiting` event with the counts.

use std::time::Duration;

use tincan_interop_tests::{JsonCommand, Sipp, WorkDir, require_peer, tincan_binary};

#[test]
fn subscribed_mwi_notify_from_sipp() {
    if !require_peer("sipp") {
        return;
    }
    let pbx = Sipp::lab_scenario("mwi_subscribe_uas.xml")
        .calls(2)
        .timeout(Duration::from_secs(40))
        .trace_msg()
        .spawn()
        .expect("sipp starts");
    let dir = WorkDir::new("mwi-subscribe").unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"vm\"\n\
             aor = \"sip:alice@example.test\"\npassword = \"secret\"\ntransport = \"udp\"\n\
             registrars = [\"sip:{}\"]\noutbound = false\nmwi = true\n",
            pbx.addr()
        ),
    )
    .unwrap();
    tincan_binary();
    let tincan = JsonCommand::spawn(
        &[
            "listen",
            "--account",
            "vm",
            "--json",
            "--no-audio",
            "--no-history",
        ],
        &cfg,
    );
    let waiting = tincan
        .wait_for(Duration::from_secs(30), |v| v["event"] == "message_waiting")
        .unwrap_or_else(|| panic!("no message_waiting; sipp saw:\n{}", pbx.messages()));
    assert_eq!(waiting["waiting"], true, "{waiting}");
    assert_eq!(waiting["new"], 3, "{waiting}");
    assert_eq!(waiting["old"], 5, "{waiting}");
    assert_eq!(waiting["account"], "vm", "{waiting}");
    let outcome = pbx.wait(Duration::from_secs(20));
    assert_eq!(
        (outcome.successful, outcome.failed),
        (2, 0),
        "{}",
        outcome.summary()
    );
    drop(tincan);
}
