//! `register_mode = "all"` with two kamailio registrars: one is killed and restarted; the
//! account stays registered through the other and comes back on the first.

use std::io::Write;
use std::time::{Duration, Instant};

use tincan_interop_tests::{JsonCommand, Kamailio, WorkDir, require_peers};

#[test]
fn stays_registered_through_the_other_registrar_and_comes_back() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let a = Kamailio::builder()
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio A");
    let mut b = Kamailio::builder()
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio B");
    let a_port = a.port();
    let dir = WorkDir::new("all-mode").unwrap();
    let cfg = dir.path().join("config.toml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    write!(
        f,
        "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"uat\"\naor = \"sip:uat@example.test\"\npassword = \"uatpw\"\ntransport = \"tcp\"\nregister_mode = \"all\"\nexpires = 10\nregistrars = [\"sip:{};transport=tcp\", \"sip:{};transport=tcp\"]\n",
        a.addr(),
        b.addr()
    )
    .unwrap();
    let tincan = JsonCommand::spawn(&["register", "--json"], &cfg);
    let a_addr = a.addr().to_string();
    let b_addr = b.addr().to_string();
    let at = |addr: &str, v: &serde_json::Value| {
        v["event"] == "registered" && v["registrar"].as_str().is_some_and(|r| r.contains(addr))
    };
    assert!(
        tincan
            .wait_for(Duration::from_secs(15), |v| at(&a_addr, v))
            .is_some(),
        "registered at A"
    );
    assert!(
        b.wait_registered("uat", Duration::from_secs(15)).is_ok(),
        "registered at B"
    );

    // A dies: the account stays registered at B (its refreshes keep succeeding).
    a.stop();
    let killed = Instant::now();
    let failed = tincan.wait_for(Duration::from_secs(20), |v| {
        v["event"] == "failed" && v["registrar"].as_str().is_some_and(|r| r.contains(&a_addr))
    });
    assert!(failed.is_some(), "the refresh to A fails");
    println!("A's loss noticed after {} ms", killed.elapsed().as_millis());
    assert!(
        tincan
            .wait_for(Duration::from_secs(15), |v| at(&b_addr, v))
            .is_some(),
        "B keeps refreshing"
    );
    assert!(
        !b.contacts("uat").unwrap().is_empty(),
        "still reachable through B"
    );

    // A comes back on the same port: the account registers there again.
    let a2 = Kamailio::builder()
        .secondary(false)
        .ipv6(false)
        .port(a_port)
        .start()
        .expect("kamailio A again");
    let restarted = Instant::now();
    assert!(
        tincan
            .wait_for(Duration::from_secs(60), |v| at(&a_addr, v))
            .is_some(),
        "registered at A again"
    );
    println!(
        "time to fail back to A: {} ms",
        restarted.elapsed().as_millis()
    );
    assert!(!a2.contacts("uat").unwrap().is_empty());
    drop(tincan);
}
