//! `tincan listen --account` and `tincan call --account` with a password kamailio refuses:
//! each ends with a clear message naming the registrar and status 1, instead of sitting on a
//! port nobody can reach while claiming to listen (or calling without its registration).

use std::time::Duration;

use tincan_interop_tests::{Kamailio, TincanProcess, require_peers, tincan_binary};

#[test]
fn a_refused_password_ends_listen_and_call_with_a_clear_error() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    for command in ["listen", "call"] {
        let extra: &[&str] = if command == "call" {
            &["sip:bob@example.test"]
        } else {
            &[]
        };
        let mut phone = TincanProcess::new(&format!("wrong-password-{command}"))
            .expect("scratch dir")
            .kamailio_account(
                "alice",
                "not-the-password",
                kamailio.addr(),
                440.0,
                Duration::from_secs(1),
            )
            .spawn_phone("alice", command, extra);
        let code = phone
            .wait_exit(Duration::from_secs(30))
            .expect("tincan runs")
            .unwrap_or_else(|| panic!("tincan {command} did not exit:\n{}", phone.log()));
        let log = phone.log();
        assert_eq!(code, 1, "{command}:\n{log}");
        assert!(
            log.contains("refused the credentials")
                && log.contains("check the username and password"),
            "{command}:\n{log}"
        );
        assert!(!log.contains("\"listening\""), "{command}:\n{log}");
    }
}
