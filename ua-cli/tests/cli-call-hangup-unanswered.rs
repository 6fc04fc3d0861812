//! B2/B3: `tincan call` to a silent target (a UDP socket that reads and never answers), and
//! Ctrl-C (SIGINT) while the INVITE has no answer: the call ends `local_hangup` at once (no
//! CANCEL may go before a provisional, RFC 3261 §9.1: the INVITE is stopped), and no INVITE
//! is sent after the end (the trace shows every INVITE before the `ended` line).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn ctrl_c_ends_an_unanswered_call_at_once_and_stops_the_invite() {
    let dir = std::env::temp_dir().join(format!("tincan-hangup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.log");
    let _ = std::fs::remove_file(&trace);
    let silent = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    let target = silent.local_addr().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .env("XDG_CONFIG_HOME", &dir)
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env_remove("TINCAN_CONFIG")
        .arg("--sip-trace")
        .arg(&trace)
        .args(["call", &format!("sip:x@{target}"), "--no-audio", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tincan call runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let calling = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("\"calling\""))
        .expect("a calling line");
    assert!(calling.contains(&target.to_string()), "{calling}");
    // Let Timer A retransmit once or twice, then Ctrl-C.
    std::thread::sleep(Duration::from_millis(800));
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let ended: serde_json::Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .find(|v: &serde_json::Value| v["event"] == "ended")
        .expect("an ended line");
    let status = child.wait().unwrap();
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    assert_eq!(ended["answered"], false, "{ended}");
    assert_eq!(status.code(), Some(1));
    // Nothing was sent after the hang-up: the last INVITE went out before Ctrl-C, and there
    // is no CANCEL (no provisional came).
    let text = std::fs::read_to_string(&trace).expect("the trace");
    let invites = text.matches("\nINVITE sip:x@").count();
    assert!((1..=3).contains(&invites), "{invites} INVITEs:\n{text}");
    assert!(!text.contains("\nCANCEL "), "{text}");
    drop(silent);
    let _ = std::fs::remove_dir_all(&dir);
}
