//! A conference from the command line, three real `tincan` processes on loopback: Alice and
//! Carol each `tincan call` Bob's `tincan listen --auto-answer`; Bob types `conference` and
//! both his calls report `conference` joined, then `split` and both report it ended; the two
//! calls go on until the callers hang up. (The mixed audio is checked by
//! `phone-driver-conference.rs`.)

#[path = "util/cli.rs"]
mod cli;

use cli::{Proc, is, listener};

#[test]
fn bob_joins_his_two_calls_and_splits_them() {
    let dir = std::env::temp_dir().join(format!("tincan-cli-conference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut bob, bob_addr) = listener("bob", &dir);
    let caller = |name| {
        Proc::spawn(
            name,
            &dir,
            &[
                "call",
                &format!("sip:bob@{bob_addr}"),
                "--no-audio",
                "--json",
            ],
        )
    };
    let mut alice = caller("alice");
    alice.wait("answered", |v| is(v, "answered"));
    bob.wait("quality", |v| is(v, "quality"));
    let mut carol = caller("carol");
    carol.wait("answered", |v| is(v, "answered"));
    // Both of Bob's calls are up once each reported quality.
    let first = bob.wait("quality of call 1", |v| is(v, "quality"))["call"].clone();
    bob.wait("quality of the other call", |v| {
        is(v, "quality") && v["call"] != first
    });

    bob.type_line("conference");
    let a = bob.wait("conference", |v| is(v, "conference"));
    let b = bob.wait("conference", |v| is(v, "conference"));
    assert_eq!(a["joined"], true, "{a}");
    assert_eq!(b["joined"], true, "{b}");
    assert_ne!(a["call"], b["call"], "one event per call: {a} {b}");

    bob.type_line("split");
    let a = bob.wait("conference ended", |v| is(v, "conference"));
    let b = bob.wait("conference ended", |v| is(v, "conference"));
    assert_eq!(a["joined"], false, "{a}");
    assert_eq!(b["joined"], false, "{b}");

    for mut p in [alice, carol] {
        p.type_line("hangup");
        let ended = p.wait("ended", |v| is(v, "ended"));
        assert_eq!(ended["answered"], true, "{ended}");
        let status = p.child.wait().expect("the caller exits");
        assert!(status.success(), "{status:?}");
    }
    bob.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
