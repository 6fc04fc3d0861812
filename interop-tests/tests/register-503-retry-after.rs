//! Failover on a 503 with Retry-After from a real peer: a sipp UAS answers REGISTER with
//! `503 Service Unavailable` + `Retry-After: 8` as the first registrar, kamailio is the
//! second. The account registers at kamailio at once, and the first registrar is left alone
//! for the Retry-After time: the next thing it hears from Tincan (the fail-back probe) comes
//! no earlier. Prints the measured times.

use std::time::{Duration, Instant};

use tincan_interop_tests::{JsonCommand, Kamailio, Sipp, WorkDir, require_peers, tincan_binary};

/// The Retry-After the sipp registrar sends, seconds.
const RETRY_AFTER: u64 = 8;

/// SIP requests sipp has received so far (its `-trace_msg` log).
fn received(sipp: &tincan_interop_tests::SippPeer, method: &str) -> usize {
    sipp.messages()
        .lines()
        .filter(|l| l.starts_with(&format!("{method} sip:")))
        .count()
}

#[test]
fn a_503_with_retry_after_moves_to_the_next_registrar_and_keeps_away_for_that_long() {
    if !require_peers(&["kamailio", "kamcmd", "sipp"]) {
        return;
    }
    let kamailio = Kamailio::builder()
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio starts");
    let sipp = Sipp::lab_scenario("register_503_uas.xml")
        .arg("-key")
        .arg("retry_after")
        .arg(RETRY_AFTER.to_string())
        .trace_msg()
        .timeout(Duration::from_secs(50))
        .spawn()
        .expect("sipp starts");
    let dir = WorkDir::new("register-503").unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"uat\"\naor = \"sip:uat@example.test\"\npassword = \"uatpw\"\ntransport = \"udp\"\nexpires = 300\nregistrars = [\"sip:{}\", \"sip:{}\"]\n",
            sipp.addr(),
            kamailio.addr()
        ),
    )
    .unwrap();
    // Built before the clock starts (the first call of a run compiles it).
    tincan_binary();
    let started = Instant::now();
    let tincan = JsonCommand::spawn(&["register", "--json"], &cfg);
    let sipp_target = format!("udp:{}", sipp.addr());
    let kamailio_target = format!("udp:{}", kamailio.addr());
    let failed = tincan
        .wait_for(Duration::from_secs(15), |v| {
            v["event"] == "failed" && v["registrar"] == sipp_target.as_str()
        })
        .expect("the 503 registrar fails");
    let refused_at = Instant::now();
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("503"), "{error}");
    let registered = tincan
        .wait_for(Duration::from_secs(10), |v| v["event"] == "registered")
        .expect("registered at the second registrar");
    assert_eq!(registered["registrar"], kamailio_target.as_str());
    println!(
        "503 + Retry-After: {RETRY_AFTER}: first registrar answered in {} ms, registered at the \
         second {} ms later; {} ms from start",
        failed["elapsed_ms"],
        registered["elapsed_ms"],
        started.elapsed().as_millis()
    );
    assert!(!kamailio.contacts("uat").unwrap().is_empty());
    assert_eq!(
        received(&sipp, "REGISTER"),
        1,
        "one REGISTER to the 503 registrar"
    );

    // The first registrar is down for Retry-After: nothing reaches it before, then the
    // fail-back probe (OPTIONS, every 5 s while on a lower-priority registrar) does.
    let mut heard_after = None;
    while refused_at.elapsed() < Duration::from_secs(RETRY_AFTER + 12) {
        if received(&sipp, "OPTIONS") + received(&sipp, "REGISTER") > 1 {
            heard_after = Some(refused_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let heard_after = heard_after.expect("the first registrar is probed after its Retry-After");
    println!(
        "the 503 registrar was left alone for {} ms (Retry-After {RETRY_AFTER} s; probes run \
         every 5 s)",
        heard_after.as_millis()
    );
    assert!(
        heard_after >= Duration::from_secs(RETRY_AFTER) - Duration::from_millis(200),
        "contacted again after {heard_after:?}, before Retry-After"
    );
    drop(sipp);
}
