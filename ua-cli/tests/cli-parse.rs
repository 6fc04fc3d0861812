//! `tincan parse`: verdicts, JSON output and exit codes.

use std::path::PathBuf;
use std::process::Command;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sip-core/tests/data")
        .join(p)
}

fn tincan(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(args)
        .output()
        .expect("the tincan binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn accepts_a_good_invite() {
    let f = data("samples/invite.sip");
    let (code, out) = tincan(&["parse", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with(": accept"), "{out}");
}

#[test]
fn rejects_bad_version_with_505() {
    let f = data("rfc4475/badvers.dat");
    let (code, out) = tincan(&["parse", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("reject 505 Version Not Supported"), "{out}");
}

#[test]
fn json_has_one_object_per_file() {
    let good = data("samples/invite.sip");
    let bad = data("rfc4475/ncl.dat");
    let (code, out) = tincan(&[
        "parse",
        "--json",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "accept");
    assert_eq!(lines[0]["status"], serde_json::Value::Null);
    assert_eq!(lines[1]["verdict"], "reject");
    assert_eq!(lines[1]["status"], 400);
    assert!(lines[1]["reason"].is_string());
    assert!(lines[1]["file"].as_str().unwrap().ends_with("ncl.dat"));
}

#[test]
fn drops_a_bad_response() {
    let dir = std::env::temp_dir().join(format!("tincan-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bigcode.sip");
    std::fs::write(&f, b"SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\nCall-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\r\nCSeq: 353494 INVITE\r\nFrom: <sip:user@example.com>;tag=39ansfi3\r\nTo: <sip:user@example.edu>;tag=902jndnke3\r\nContent-Length: 0\r\n\r\n").unwrap();
    let (code, out) = tincan(&["parse", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.trim_end().ends_with(": drop"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn io_and_usage_errors_exit_2() {
    let (code, _) = tincan(&["parse", "/nonexistent/file.sip"]);
    assert_eq!(code, 2);
    let (code, _) = tincan(&["parse"]);
    assert_eq!(code, 2);
}
