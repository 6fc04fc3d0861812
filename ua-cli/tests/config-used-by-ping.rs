//! `tincan ping` reads the config file: a bad file is a usage error, and `[network]
//! dns_server` is the DNS server when `--dns-server` is not given.

use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_file(name: &str, text: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tincan-config-ping-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create a temp dir");
    let f = d.join(name);
    std::fs::write(&f, text).expect("write the config");
    f
}

fn ping(config: &Path, uri: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "ping",
            "--timeout",
            "0.5",
            uri,
        ])
        .env_remove("TINCAN_CONFIG")
        .output()
        .expect("the tincan binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_config_is_a_usage_error() {
    let f = temp_file("bad.toml", "[network]\ndns_server = 53\n");
    let (code, err) = ping(&f, "sip:192.0.2.1");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:2:14: key `dns_server`"), "{err}");
}

#[test]
fn the_configured_dns_server_is_asked() {
    // A DNS server that never answers (discard port on loopback): every lookup times out, which
    // the system resolver would not do for a `.test` name.
    let f = temp_file("dead-dns.toml", "[network]\ndns_server = \"127.0.0.1:9\"\n");
    let (code, err) = ping(&f, "sip:example.test;transport=tcp");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SRV _sip._tcp.example.test: timeout"), "{err}");
    assert!(
        !err.contains("NXDOMAIN"),
        "asked the system resolver: {err}"
    );
}

#[test]
fn a_password_file_others_can_read_is_warned_about_but_used() {
    use std::os::unix::fs::PermissionsExt;
    let f = temp_file(
        "open.toml",
        "[network]\ndns_server = \"127.0.0.1:9\"\n\n[[account]]\nname = \"a\"\naor = \"sip:alice@example.test\"\npassword = \"hunter2\"\n",
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, err) = ping(&f, "sip:example.test;transport=tcp");
    assert!(
        err.contains("tincan ping: warning: ")
            && err.contains(&format!("chmod 600 {}", f.display())),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    // Not fatal: the file was used (its DNS server was asked).
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SRV _sip._tcp.example.test: timeout"), "{err}");
}
