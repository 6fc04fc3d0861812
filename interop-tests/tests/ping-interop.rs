//! `tincan ping` (the binary users run) against real SIP servers on loopback: a sipp UAS
//! answering OPTIONS (`lab/sipp/options_uas.xml`) over UDP and TCP, kamailio over UDP, TCP and
//! IPv6; a closed port; `--json` output.
//!
//! The test builds the `tincan` binary once (`cargo build -p tincan --bin tincan`, the target
//! directory of this test) and runs it as a child process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use tincan_interop_tests::{Kamailio, Sipp, Transport, free_udp_port, ipv6_loopback, require_peer};

/// The `tincan` binary, built once per test process.
fn tincan() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/ping_interop-<hash>.
        let exe = std::env::current_exe().expect("the test knows its own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test binary lives in <target>/<profile>/deps");
        let target_dir = profile_dir
            .parent()
            .expect("the profile directory is inside the target directory");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("interop-tests is a workspace member");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            .args(["build", "-p", "tincan", "--bin", "tincan"])
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p tincan failed: {status}");
        let bin = profile_dir.join("tincan");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// Runs `tincan ping ARGS`, bounded by its own `--timeout`.
fn ping(args: &[&str]) -> Output {
    Command::new(tincan())
        .arg("ping")
        .args(args)
        .output()
        .expect("tincan runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One ping that must get a 200: exit 0, and the line names the status and the target.
fn ping_ok(uri: &str, transport: &str, addr: SocketAddr) -> Output {
    let out = ping(&["--transport", transport, "--timeout", "5", uri]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{uri} over {transport}: {all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": 200 "), "{all}");
    assert!(
        stdout.contains(&format!("{transport}:{addr}")),
        "the line names the target: {all}"
    );
    out
}

/// A sipp answering OPTIONS. The `tincan` binary is built first: sipp's lifetime must not
/// run out while cargo builds.
fn sipp_options_uas(transport: Transport) -> tincan_interop_tests::SippPeer {
    tincan();
    Sipp::lab_scenario("options_uas.xml")
        .transport(transport)
        .timeout(Duration::from_secs(30))
        .spawn()
        .expect("sipp OPTIONS responder starts")
}

#[test]
fn ping_sipp_over_udp() {
    if !require_peer("sipp") {
        return;
    }
    let uas = sipp_options_uas(Transport::Udp);
    let addr = uas.addr();
    ping_ok(&format!("sip:{addr}"), "udp", addr);
    let outcome = uas.stop();
    assert!(outcome.successful >= 1, "{}", outcome.summary());
}

#[test]
fn ping_sipp_over_tcp() {
    if !require_peer("sipp") {
        return;
    }
    let uas = sipp_options_uas(Transport::Tcp);
    let addr = uas.addr();
    ping_ok(&format!("sip:{addr}"), "tcp", addr);
    let outcome = uas.stop();
    assert!(outcome.successful >= 1, "{}", outcome.summary());
}

#[test]
fn ping_kamailio_over_udp_tcp_and_ipv6() {
    if !require_peer("kamailio") {
        return;
    }
    tincan();
    let ipv6 = ipv6_loopback();
    let kamailio = Kamailio::builder()
        .ipv6(ipv6)
        .secondary(false)
        .start()
        .expect("kamailio starts");
    let addr = kamailio.addr();
    ping_ok(&format!("sip:{addr}"), "udp", addr);
    ping_ok(&format!("sip:{addr}"), "tcp", addr);
    // without an IPv6 loopback ipv6_loopback() reported the skip of the IPv6 part
    if let Some(v6) = kamailio.addr_v6() {
        let uri = format!("sip:[::1]:{}", v6.port());
        ping_ok(&uri, "udp", v6);
        ping_ok(&uri, "tcp", v6);
    }
}

#[test]
fn ping_to_a_closed_port_fails_and_names_the_address() {
    let port = free_udp_port();
    let uri = format!("sip:127.0.0.1:{port}");
    let out = ping(&["--transport", "udp", "--timeout", "1", &uri]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(&format!("127.0.0.1:{port}")), "{all}");

    let out = ping(&["--json", "--transport", "udp", "--timeout", "1", &uri]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{}", text(&out));
    assert!(lines[0]["status"].is_null(), "{}", lines[0]);
    assert!(
        lines[0]["target"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("127.0.0.1:{port}"))),
        "{}",
        lines[0]
    );
    assert!(lines[0]["error"].is_string(), "{}", lines[0]);
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

#[test]
fn json_output_parses() {
    if !require_peer("sipp") {
        return;
    }
    let uas = sipp_options_uas(Transport::Udp);
    let addr = uas.addr();
    let uri = format!("sip:{addr}");
    let out = ping(&[
        "--json",
        "--count",
        "3",
        "--interval",
        "0.1",
        "--transport",
        "udp",
        "--timeout",
        "5",
        &uri,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines(&out);
    let attempts: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("seq").is_some()).collect();
    assert_eq!(attempts.len(), 3, "{}", text(&out));
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["seq"], i as u64 + 1, "{a}");
        assert_eq!(a["status"], 200, "{a}");
        assert_eq!(a["target"], format!("udp:{addr}"), "{a}");
        assert!(a["rtt_ms"].as_f64().is_some_and(|r| r >= 0.0), "{a}");
        assert!(a["error"].is_null(), "{a}");
    }
    let outcome = uas.stop();
    assert!(outcome.successful >= 3, "{}", outcome.summary());
}
