//! Busy lamp between real peers (RFC 4235 dialog event package): `tincan watch` as alice
//! watches bob through the lab kamailio (which challenges the SUBSCRIBE, record-routes it and
//! routes it to bob's registered contact); bob is a `tincan listen` whose phone is the
//! notifier; baresip (carol) calls bob, bob answers, then hangs up. alice prints bob's lamp:
//! idle, ringing, busy, idle.

use std::time::Duration;

use serde_json::Value;
use tincan_interop_tests::tincan::json_events;
use tincan_interop_tests::{
    Baresip, Kamailio, Tincan, TincanProcess, free_port, require_peers, tincan_binary,
};

/// Generous for a loaded 2-core machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);

/// Waits for alice's next `lamp` event with `lamp` = `want`, after the `seen` ones.
fn wait_lamp(alice: &mut Tincan, want: &str, seen: usize) -> usize {
    let what = || format!("lamp {want} after {seen} lamp events");
    #[allow(clippy::disallowed_methods)] // a test's own timing, printed
    let started = std::time::Instant::now();
    let seen = alice
        .peer()
        .wait_until(WAIT, what, |peer| {
            let lamps: Vec<Value> = json_events(&peer.log())
                .into_iter()
                .filter(|e| e["event"] == "lamp")
                .collect();
            lamps
                .iter()
                .enumerate()
                .skip(seen)
                .find(|(_, e)| e["lamp"] == want)
                .map(|(i, _)| i + 1)
        })
        .unwrap_or_else(|e| panic!("alice's lamp of bob: {e}"));
    eprintln!("lamp {want} after {:?}", started.elapsed());
    seen
}

#[test]
fn tincan_watches_tincan_talking_to_baresip() {
    if !require_peers(&["kamailio", "baresip"]) {
        return;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut carol = Baresip::builder("carol", "carolpw")
        .outbound(kamailio.addr())
        .start()
        .expect("baresip carol starts");
    carol.wait_registered(WAIT).expect("carol registers");
    let mut carol_ctl = carol.control().expect("ctrl_tcp connects");

    let mut bob = TincanProcess::new("blf-bob")
        .expect("scratch dir")
        .lifetime(Duration::from_secs(120))
        .with_stdin()
        .kamailio_account(
            "bob",
            "bobpw",
            kamailio.addr(),
            440.0,
            Duration::from_secs(20),
        )
        .spawn_phone("bob", "listen", &[]);
    bob.wait_event("registered", WAIT).expect("bob registers");

    let alice_process = TincanProcess::new("blf-alice")
        .expect("scratch dir")
        .lifetime(Duration::from_secs(120))
        .kamailio_account(
            "alice",
            "alicepw",
            kamailio.addr(),
            440.0,
            Duration::from_secs(1),
        );
    let config = alice_process.path("config.toml").display().to_string();
    let bind = format!("127.0.0.1:{}", free_port());
    let mut alice = alice_process
        .spawn([
            "--config",
            &config,
            "watch",
            "bob",
            "--account",
            "alice",
            "--json",
            "--duration",
            "100",
            "--bind",
            &bind,
        ])
        .expect("tincan watch starts");

    let seen = wait_lamp(&mut alice, "idle", 0);
    carol_ctl
        .dial("sip:bob@example.test")
        .expect("dial accepted");
    bob.wait_event("incoming", WAIT).expect("bob rings");
    let seen = wait_lamp(&mut alice, "ringing", seen);
    bob.command("answer").expect("answer typed");
    let seen = wait_lamp(&mut alice, "busy", seen);
    std::thread::sleep(Duration::from_secs(1));
    bob.command("hangup").expect("hangup typed");
    wait_lamp(&mut alice, "idle", seen);
}
