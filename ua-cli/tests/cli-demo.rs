//! The README's run command, `tincan demo`, runs headless (no sound card, no provider) and
//! reports that the audio arrived intact both ways.

use std::process::Command;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

#[test]
fn demo_reports_intact_audio_both_ways() {
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(["demo", "--json", "--seconds", "3"])
        .output()
        .expect("tincan runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tincan demo failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["codec"], "opus");
    assert_eq!(summary["srtp"], true);
    for dir in ["caller_to_callee", "callee_to_caller"] {
        assert_eq!(summary[dir]["intact"], true, "{dir}: {summary}");
    }
    assert!(summary["caller"]["packets_received"].as_u64().unwrap_or(0) > 100);
    // The live events came before the summary: the answer and quality figures.
    assert!(stdout.contains("\"event\":\"answered\""));
    assert!(stdout.contains("\"event\":\"quality\""));
}

/// `tincan demo --audio` through the PulseAudio null sink `.ci/run` starts (the sink's
/// monitor is the default source, so what is played comes back): the echo call connects and
/// media flows. Outside CI (no `TINCAN_CI_PULSE_SERVER`) it says so and passes.
#[test]
fn demo_audio_echo_through_the_ci_null_sink() {
    let Some(server) = std::env::var_os("TINCAN_CI_PULSE_SERVER") else {
        skip::skip("demo --audio: TINCAN_CI_PULSE_SERVER unset (.ci/run starts the null sink)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("tincan-demo-audio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(["demo", "--audio", "--seconds", "3"])
        .env("PULSE_SERVER", &server)
        .env("HOME", &dir)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .expect("tincan runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tincan demo --audio failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Quality lines report received packets.
    let received: u64 = stdout
        .lines()
        .filter_map(|l| l.split(" received ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(received > 50, "{stdout}");
}
