//! `tincan call` to an IPv6 peer without `--bind`: the caller's default IPv4 wildcard bind
//! comes with an IPv6 socket too (as `tincan register` has), so a direct call to
//! `sip:bob@[::1]:port` connects. (Before, it failed with "no local udp socket".)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn tincan(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    // No config file of the machine's user: an empty config home.
    c.env("XDG_CONFIG_HOME", dir)
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir);
    c
}

#[test]
fn direct_call_to_an_ipv6_peer_without_bind() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("\n!!!!!! SKIP: no IPv6 loopback on this machine !!!!!!\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tincan-call-ipv6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut listener = tincan(&dir)
        .args([
            "listen",
            "--bind",
            "[::1]:0",
            "--auto-answer",
            "--max-calls",
            "1",
            "--duration",
            "3",
            "--no-audio",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tincan listen runs");
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let listening: serde_json::Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .find(|v: &serde_json::Value| v["event"] == "listening")
        .expect("a listening event");
    let address = listening["address"].as_str().unwrap().to_owned();

    let out = tincan(&dir)
        .args([
            "call",
            &format!("sip:bob@{address}"),
            "--duration",
            "1",
            "--no-audio",
            "--json",
        ])
        .output()
        .expect("tincan call runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = listener.kill();
    let _ = listener.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "tincan call to {address} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answered: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "answered")
        .unwrap_or_else(|| panic!("no answered event:\n{stdout}"));
    assert!(
        answered["remote_rtp"]
            .as_str()
            .unwrap_or("")
            .starts_with("[::1]:"),
        "{answered}"
    );
}
