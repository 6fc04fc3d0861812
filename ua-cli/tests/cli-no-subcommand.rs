//! `tincan` with no subcommand and no terminal (a script, a pipe) prints the usage and exits 2,
//! as it did before the full-screen phone existed; the phone is also `tincan phone`.

use std::process::{Command, Stdio};

#[test]
fn without_a_terminal_tincan_alone_prints_the_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .stdin(Stdio::null())
        .output()
        .expect("the tincan binary runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: tincan"), "{err}");
    assert!(err.contains("not a terminal"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_help_lists_the_phone() {
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .arg("--help")
        .output()
        .expect("the tincan binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("phone"), "{text}");
    assert!(text.contains("call"), "{text}");
}
