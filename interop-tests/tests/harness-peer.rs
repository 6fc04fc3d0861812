//! The process guard itself: peers and their children are stopped by PID when a test
//! panics, waiting for a log line fails fast when the program exits, and a missing peer
//! program is a loud skip (or a panic in CI).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use tincan_interop_tests::{Peer, PeerError, WorkDir, require_peer, skip};

/// Whether `pid` is gone (or a zombie waiting for its parent).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: u32) -> bool {
    (0..100).any(|_| {
        let g = gone(pid);
        if !g {
            std::thread::sleep(Duration::from_millis(20));
        }
        g
    })
}

#[test]
fn a_panicking_test_stops_its_peer_and_the_peers_children() {
    let mut pids = (0u32, 0u32);
    let mut kept = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let dir = WorkDir::new("guard-test").expect("temp dir is writable");
        kept = Some(dir.path().to_owned());
        let mut peer = Peer::builder("sh", "/bin/sh")
            .args(["-c", "sleep 60 & echo child=$!; echo main=$$; wait"])
            .stop_grace(Duration::from_millis(500))
            .spawn_in(dir)
            .expect("sh starts");
        let child = peer
            .wait_for_log(r"^child=\d+$", Duration::from_secs(5))
            .expect("sh prints");
        let main = peer
            .wait_for_log(r"^main=\d+$", Duration::from_secs(5))
            .expect("sh prints");
        pids = (
            child["child=".len()..].parse().expect("a pid"),
            main["main=".len()..].parse().expect("a pid"),
        );
        assert!(!gone(pids.0) && !gone(pids.1));
        panic!("the test fails while the peer runs");
    }));
    assert!(result.is_err());
    assert!(wait_gone(pids.1), "sh {} survived the panic", pids.1);
    assert!(
        wait_gone(pids.0),
        "sh's child {} survived the panic",
        pids.0
    );
    // a failed test keeps its scratch dir; this failure was on purpose
    let kept = kept.expect("the closure ran");
    assert!(kept.join("sh.log").exists());
    std::fs::remove_dir_all(kept).expect("removable");
}

#[test]
fn wait_for_log_fails_fast_when_the_program_exits() {
    let dir = WorkDir::new("exit-test").expect("temp dir is writable");
    let log_dir = dir.path().to_owned();
    let mut peer = Peer::builder("sh", "/bin/sh")
        .args(["-c", "echo starting; exit 3"])
        .spawn_in(dir)
        .expect("sh starts");
    let err = peer
        .wait_for_log("never printed", Duration::from_secs(20))
        .expect_err("sh exits first");
    match err {
        PeerError::Exited {
            status, log_tail, ..
        } => {
            assert_eq!(status, "exit code 3");
            assert!(log_tail.contains("starting"), "{log_tail}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(peer.stop().code(), Some(3));
    drop(peer);
    assert!(
        !Path::new(&log_dir).exists(),
        "scratch dir removed after a passing test"
    );
}

#[test]
fn stop_escalates_to_sigkill() {
    let dir = WorkDir::new("kill-test").expect("temp dir is writable");
    let mut peer = Peer::builder("sh", "/bin/sh")
        .args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
        .stop_grace(Duration::from_millis(300))
        .spawn_in(dir)
        .expect("sh starts");
    peer.wait_for_log("ready", Duration::from_secs(5))
        .expect("sh prints");
    let status = peer.stop();
    assert!(
        status.code().is_none() || status.code() == Some(137),
        "{status:?}"
    );
    assert!(!peer.is_running());
}

#[test]
fn missing_peer_is_a_loud_skip_or_a_ci_failure() {
    // In CI a missing peer is a failure (skip() panics under CI=true).
    if skip::in_ci() {
        let result = catch_unwind(|| require_peer("no-such-sip-peer-program"));
        assert!(
            result.is_err(),
            "CI=true must turn a missing peer into a failure"
        );
    }
    assert!(require_peer("sh"));
}

/// A skip panics under CI; elsewhere it is appended to the skip log scripts/test.sh lists.
#[test]
fn a_skip_is_a_ci_failure_or_a_line_in_the_skip_log() {
    let ci = catch_unwind(|| skip::report_skip("a reason", true, None));
    assert!(ci.is_err(), "CI=true must turn a skip into a failure");

    let dir = WorkDir::new("skip-log").expect("temp dir is writable");
    let log = dir.join("skips.txt");
    skip::report_skip("first reason", false, Some(log.clone()));
    skip::report_skip("second reason", false, Some(log.clone()));
    let text = std::fs::read_to_string(&log).expect("the skip log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(
            "TINCAN-SKIP: harness_peer::a_skip_is_a_ci_failure_or_a_line_in_the_skip_log: "
        ) && lines[0].ends_with(": first reason"),
        "{text}"
    );
    assert!(lines[1].ends_with(": second reason"), "{text}");
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let dir = WorkDir::new("missing-test").expect("temp dir is writable");
    let err = Peer::builder("nope", "no-such-sip-peer-program")
        .spawn_in(dir)
        .expect_err("not installed");
    assert!(matches!(err, PeerError::Spawn { .. }), "{err}");
}
