//! `tincan watch` refuses what it cannot do with exit 2 and a reason: no account in the config,
//! an unknown `--account`, no URI; and it says when its account cannot register.

#[path = "util/cli.rs"]
mod cli;

use cli::tincan;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tincan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tincan")).unwrap();
    dir
}

#[test]
fn usage_errors_exit_2() {
    let dir = scratch("cli-watch");
    let out = tincan(&dir)
        .args(["watch", "sip:bob@example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no [[account]]"), "{err}");

    std::fs::write(
        dir.join("tincan/config.toml"),
        "[[account]]\nname = \"w\"\naor = \"sip:alice@example.com\"\npassword = \"x\"\n",
    )
    .unwrap();
    let out = tincan(&dir)
        .args(["watch", "--account", "nope", "bob"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no account named \"nope\""), "{err}");

    let out = tincan(&dir).args(["watch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a URI is required");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A registrar that cannot be reached is said on stderr (what was tried, when it is tried
/// again) instead of `tincan watch` waiting in silence for lamps that never come.
#[test]
fn an_unreachable_registrar_is_said() {
    let dir = scratch("cli-watch-unreachable");
    // A UDP port nobody listens on: the REGISTER gets an ICMP port unreachable.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("tincan/config.toml"),
        format!(
            "[[account]]\nname = \"w\"\naor = \"sip:alice@127.0.0.1\"\npassword = \"x\"\n\
             registrars = [\"sip:127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let out = tincan(&dir)
        .args(["watch", "bob", "--duration", "20", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "tincan watch: not registered (tried udp:127.0.0.1:{port}"
        )),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
