//! The call history of the CLI (issue 14, point 4): a real loopback call between `tincan
//! listen` and `tincan call` is recorded by both, and `tincan history --json` lists it (the
//! caller's side as `out`, the callee's as `in`); `--no-history` records nothing; a corrupt
//! database is one warning line and the call still goes on; contacts are added, listed and
//! removed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A fresh directory that is the config home, the home and the data home of the processes.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tincan-cli-history-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tincan(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("HOME", dir)
        .env_remove("TINCAN_CONFIG");
    c
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A call from `tincan call` to `tincan listen` (auto-answer, one call) lasting about a
/// second, both with `extra` arguments; returns the caller's output once the listener has
/// exited (after recording its side).
fn loopback_call(dir: &Path, extra: &[&str]) -> Output {
    loopback_call_with(dir, extra, &|_| {})
}

/// [`loopback_call`] with the environment of both processes changed by `tweak`.
fn loopback_call_with(dir: &Path, extra: &[&str], tweak: &dyn Fn(&mut Command)) -> Output {
    let mut listen = tincan(dir);
    tweak(&mut listen);
    let mut listener = listen
        .args([
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--auto-answer",
            "--max-calls",
            "1",
            "--no-audio",
            "--json",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tincan listen runs");
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let listening: Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .find(|v: &Value| v["event"] == "listening")
        .expect("a listening event");
    let address = listening["address"].as_str().unwrap().to_owned();
    let mut call = tincan(dir);
    tweak(&mut call);
    let out = call
        .args([
            "call",
            &format!("sip:bob@{address}"),
            "--duration",
            "1",
            "--no-audio",
            "--json",
        ])
        .args(extra)
        .output()
        .expect("tincan call runs");
    if !out.status.success() {
        let _ = listener.kill();
    }
    // The listener exits by itself after its one call: its end of output is the end.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = listener.wait().expect("the listener is waited for");
    assert!(
        out.status.success(),
        "tincan call failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success(), "listener: {status}\n{}", rest.join("\n"));
    out
}

fn history_json(dir: &Path) -> Vec<Value> {
    let out = tincan(dir)
        .args(["history", "--json"])
        .output()
        .expect("tincan history runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

#[test]
fn a_loopback_call_is_in_both_histories() {
    let dir = scratch("call");
    let out = loopback_call(&dir, &[]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = history_json(&dir);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let outgoing = calls
        .iter()
        .find(|c| c["direction"] == "out")
        .unwrap_or_else(|| panic!("no outgoing call: {calls:?}"));
    let incoming = calls
        .iter()
        .find(|c| c["direction"] == "in")
        .unwrap_or_else(|| panic!("no incoming call: {calls:?}"));
    assert!(
        outgoing["peer_uri"]
            .as_str()
            .unwrap()
            .starts_with("sip:bob@127.0.0.1:"),
        "{outgoing}"
    );
    assert_eq!(outgoing["end_reason"], "local_hangup", "{outgoing}");
    assert_eq!(incoming["end_reason"], "remote_hangup", "{incoming}");
    for c in [outgoing, incoming] {
        assert_eq!(c["answered"], true, "{c}");
        assert!(c["duration_ms"].as_u64().unwrap() > 0, "{c}");
        assert_eq!(c["codec"], "opus", "{c}");
        assert!(c["start"].as_str().unwrap().ends_with('Z'), "{c}");
        assert!(c["start_unix_ms"].as_i64().unwrap() > 0, "{c}");
    }
    // The caller's From has no display name; the callee stores the caller's URI, no tag.
    assert!(
        !incoming["peer_uri"].as_str().unwrap().contains("tag"),
        "{incoming}"
    );
    // The human listing: one line per call.
    let out = tincan(&dir)
        .args(["history", "--limit", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("hangup"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_history_records_nothing() {
    let dir = scratch("off");
    loopback_call(&dir, &["--no-history"]);
    assert!(history_json(&dir).is_empty());
    // Neither the calls nor `tincan history` made a database.
    assert!(!dir.join("data/tincan/history.sqlite3").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database that is not one: the call goes on, with one warning line naming the file, and
/// `tincan history` fails with the same clear error.
#[test]
fn a_corrupt_database_is_a_warning_and_the_call_goes_on() {
    let dir = scratch("corrupt");
    let db = dir.join("data/tincan/history.sqlite3");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, vec![0x42; 4096]).unwrap();
    let out = loopback_call(&dir, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("history")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains(&db.display().to_string()), "{stderr}");
    assert!(warnings[0].contains("warning"), "{stderr}");
    let out = tincan(&dir).args(["history"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&db.display().to_string()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// No writable data directory (HOME is a file, XDG_DATA_HOME unset): a warning, and the
/// call goes on.
#[test]
fn an_unwritable_home_is_a_warning_and_the_call_goes_on() {
    let dir = scratch("unwritable");
    let home = dir.join("not-a-directory");
    std::fs::write(&home, b"").unwrap();
    let out = loopback_call_with(&dir, &[], &|c| {
        c.env("HOME", &home).env_remove("XDG_DATA_HOME");
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("history")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("cannot create"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn contacts_are_added_listed_and_removed() {
    let dir = scratch("contacts");
    let run = |args: &[&str]| tincan(&dir).args(args).output().unwrap();
    assert!(
        run(&["contacts", "add", "Bob", "bob@example.com"])
            .status
            .success()
    );
    assert!(
        run(&["contacts", "add", "Alice", "sip:alice@example.com"])
            .status
            .success()
    );
    let list = json_lines(&run(&["contacts", "list", "--json"]).stdout);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["name"], "Alice");
    assert_eq!(list[1]["uri"], "sip:bob@example.com");
    assert!(
        run(&["contacts", "remove", "sip:bob@example.com"])
            .status
            .success()
    );
    assert_eq!(
        run(&["contacts", "remove", "sip:bob@example.com"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&["contacts", "add", "X", "tel:+1555"]).status.code(),
        Some(2)
    );
    let text = String::from_utf8_lossy(&run(&["contacts", "list"]).stdout).into_owned();
    assert_eq!(text.trim(), "Alice  sip:alice@example.com");
    let _ = std::fs::remove_dir_all(&dir);
}
