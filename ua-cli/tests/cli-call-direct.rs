//! Direct calls from `tincan call` without `--bind` to a `tincan listen`: to an IPv6 peer (the
//! caller's default IPv4 wildcard comes with an IPv6 socket too, as `tincan register` has),
//! and over TCP (`;transport=tcp`: the caller has a TCP socket on an ephemeral port). Before,
//! both failed with "no local udp/tcp socket".

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

fn tincan(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    // No config file of the machine's user: an empty config home.
    c.env("XDG_CONFIG_HOME", dir)
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir)
        // The call history in the test's directory too.
        .env("XDG_DATA_HOME", dir);
    c
}

/// Starts `tincan listen --bind <bind>` (auto-answer, one call), calls
/// `sip:bob@<its address><uri_params>` without `--bind`, and returns the caller's `answered`
/// event.
fn direct_call(name: &str, bind: &str, uri_params: &str) -> serde_json::Value {
    direct_call_to(name, bind, None, uri_params).1
}

/// [`direct_call`] to `call_address` (instead of the one the listener prints); returns the
/// listener's `listening` event too.
fn direct_call_to(
    name: &str,
    bind: &str,
    call_address: Option<&str>,
    uri_params: &str,
) -> (serde_json::Value, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("tincan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut listener = tincan(&dir)
        .args([
            "listen",
            "--bind",
            bind,
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
    // Kept open until the end: the listener writes its events there.
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let listening: serde_json::Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .find(|v: &serde_json::Value| v["event"] == "listening")
        .expect("a listening event");
    let address = call_address.map_or_else(
        || listening["address"].as_str().unwrap().to_owned(),
        str::to_owned,
    );

    let out = tincan(&dir)
        .args([
            "call",
            &format!("sip:bob@{address}{uri_params}"),
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
    drop(lines);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "tincan call to {address}{uri_params} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answered = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "answered")
        .unwrap_or_else(|| panic!("no answered event:\n{stdout}"));
    (listening, answered)
}

#[test]
fn to_an_ipv6_peer_without_bind() {
    if !skip::ipv6_loopback() {
        return;
    }
    assert_media_over_ipv6(&direct_call("call-ipv6", "[::1]:0", ""));
}

/// The `answered` event's media peer is on `::1`.
fn assert_media_over_ipv6(answered: &serde_json::Value) {
    assert!(
        answered["remote_rtp"]
            .as_str()
            .unwrap_or("")
            .starts_with("[::1]:"),
        "{answered}"
    );
}

/// `listen --bind 0.0.0.0:P` listens on `[::]:P` too (the IPv6 socket is IPv6-only so that
/// both can have the port): a caller that found the listener's IPv6 address (AAAA) reaches it
/// on the same port, as pjsua and baresip listen on 5060 in both families.
#[test]
fn a_listener_on_an_ipv4_wildcard_answers_on_the_same_port_over_ipv6() {
    if !skip::ipv6_loopback() {
        return;
    }
    // A port free in both families (each bound alone: [::] would also take the IPv4 port).
    let port = (0..100)
        .map(|_| {
            std::net::UdpSocket::bind("0.0.0.0:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .find(|&p| {
            std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
                && std::net::UdpSocket::bind(("::", p)).is_ok()
                && std::net::TcpListener::bind(("::", p)).is_ok()
        })
        .expect("a port free in both families");
    let (listening, answered) = direct_call_to(
        "call-v4-listener-over-v6",
        &format!("0.0.0.0:{port}"),
        Some(&format!("[::1]:{port}")),
        "",
    );
    assert_media_over_ipv6(&answered);
    let addresses = &listening["addresses"];
    for a in [format!("udp:0.0.0.0:{port}"), format!("udp:[::]:{port}")] {
        assert!(
            addresses.as_array().unwrap().iter().any(|x| *x == *a),
            "{listening}"
        );
    }
}

#[test]
fn over_tcp_without_bind() {
    // A fixed port for the listener: `listen` opens its TCP socket on a chosen port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let answered = direct_call("call-tcp", &format!("127.0.0.1:{port}"), ";transport=tcp");
    assert_eq!(answered["codec"], "opus", "{answered}");
}

/// A target that cannot be called is refused before any audio device is opened or any
/// socket bound (`--play` names a file that does not exist: opening it would fail first).
#[test]
fn a_bad_target_is_refused_before_the_devices() {
    let dir = std::env::temp_dir().join(format!("tincan-badtarget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for target in ["tel:+15551234", "sip:bob@[::1"] {
        let out = tincan(&dir)
            .args(["call", target, "--play", "/nonexistent/tone.wav"])
            .output()
            .expect("tincan call runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains(target), "{target}: {stderr}");
        assert!(!stderr.contains("tone.wav"), "{target}: {stderr}");
    }
}

/// A named address is bound alone (issue 19, finding 6): `listen --bind 127.0.0.1:0` listens
/// on 127.0.0.1 only, over UDP and TCP, and on no IPv6 socket.
#[test]
fn a_named_bind_address_is_bound_alone() {
    let dir = std::env::temp_dir().join(format!("tincan-named-bind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut listener = tincan(&dir)
        .args([
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--auto-answer",
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
    let _ = listener.kill();
    let _ = listener.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let addresses: Vec<&str> = listening["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(!addresses.is_empty(), "{listening}");
    assert!(
        addresses.iter().all(|a| a.contains("127.0.0.1:")),
        "{listening}"
    );
}
