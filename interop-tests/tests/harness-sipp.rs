//! Smoke tests of the sipp launcher: built-in uac -> uas, and the lab's registrar scenario
//! (digest auth) with a right and a wrong password.

use std::time::Duration;

use tincan_interop_tests::{Sipp, lab_file, require_peer};

#[test]
fn builtin_uac_calls_builtin_uas() {
    if !require_peer("sipp") {
        return;
    }
    let uas = Sipp::builtin("uas")
        .calls(20)
        .timeout(Duration::from_secs(30))
        .spawn()
        .expect("sipp uas starts");
    let uac = Sipp::builtin("uac")
        .remote(uas.addr())
        .calls(20)
        .rate(20.0)
        .limit(10)
        .timeout(Duration::from_secs(20))
        .trace_stat()
        .run()
        .expect("sipp uac runs");
    assert_eq!(uac.exit_code, Some(0), "{}", uac.summary());
    assert_eq!((uac.successful, uac.failed), (20, 0), "{}", uac.summary());
    // -m 20: the uas exits by itself once its 20 calls are over (4 s timewait each)
    let uas = uas.wait(Duration::from_secs(15));
    assert_eq!(uas.exit_code, Some(0), "{}", uas.summary());
    assert_eq!(uas.successful, 20, "{}", uas.summary());
}

#[test]
fn registrar_scenario_accepts_the_right_password_only() {
    if !require_peer("sipp") {
        return;
    }
    let registrar = Sipp::lab_scenario("registrar_auth_uas.xml")
        .calls(2)
        .timeout(Duration::from_secs(30))
        .spawn()
        .expect("sipp registrar starts");
    let good = Sipp::lab_scenario("register_auth_uac.xml")
        .remote(registrar.addr())
        .inf(lab_file("sipp/users_alice.csv"))
        .calls(1)
        .timeout(Duration::from_secs(10))
        .trace_msg()
        .run()
        .expect("sipp register runs");
    assert_eq!(good.exit_code, Some(0), "{}", good.summary());
    assert!(
        good.messages().contains("401 Unauthorized"),
        "{}",
        good.messages()
    );

    let bad = Sipp::lab_scenario("register_auth_uac.xml")
        .remote(registrar.addr())
        .inf_rows([Sipp::auth_row("alice", "example.test", "wrongpw", None)])
        .calls(1)
        .timeout(Duration::from_secs(10))
        .trace_msg()
        .run()
        .expect("sipp register runs");
    assert_eq!(bad.exit_code, Some(1), "{}", bad.summary());
    assert_eq!((bad.successful, bad.failed), (0, 1), "{}", bad.summary());
    assert!(
        bad.messages().contains("403 Forbidden"),
        "{}",
        bad.messages()
    );

    // -m 2: the registrar exits by itself after its 2 s timewait
    let registrar = registrar.wait(Duration::from_secs(10));
    assert_eq!(
        registrar.successful + registrar.failed,
        2,
        "{}",
        registrar.summary()
    );
}
