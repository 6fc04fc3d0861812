//! The README's run command, `tincan demo`, runs headless (no sound card, no provider) and
//! reports that the audio arrived intact both ways.

use std::process::Command;

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
