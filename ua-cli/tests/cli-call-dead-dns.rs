//! `tincan call` with a DNS server that never answers: the call ends `unreachable` after the
//! DNS budget (4 s, not the resolver's 18 s of silence), naming every lookup that timed out.

use std::process::Command;

#[test]
fn a_dead_dns_server_ends_the_call_naming_what_was_asked() {
    let dir = std::env::temp_dir().join(format!("tincan-dead-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A UDP socket that reads nothing: DNS questions to it are never answered.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .env("XDG_CONFIG_HOME", &dir)
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env_remove("TINCAN_CONFIG")
        .args([
            "call",
            "sip:someone@example.test",
            "--dns-server",
            &silent.local_addr().unwrap().to_string(),
            "--no-audio",
            "--json",
        ])
        .output()
        .expect("tincan call runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let ended: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "ended")
        .unwrap_or_else(|| panic!("no ended event:\n{stdout}"));
    assert_eq!(ended["reason"], "unreachable", "{ended}");
    let errors = ended["errors"].to_string();
    assert!(
        errors.contains("NAPTR example.test: timeout")
            && errors.contains("A example.test: timeout"),
        "{ended}"
    );
}
