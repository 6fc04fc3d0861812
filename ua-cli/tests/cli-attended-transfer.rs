//! Attended transfer from the command line, three real `tincan` processes on loopback: Alice
//! and then Carol each `tincan call` Bob's `tincan listen --auto-answer`; Bob types
//! `atransfer`: Alice (answered first) is referred to Carol with Bob's dialog with Carol in
//! `Replaces`; she types `accept-transfer`, her INVITE with Replaces takes over Carol's call
//! (Carol's `tincan call` reports `replaced` and follows the new call), and both of Bob's
//! calls end: Alice's after her NOTIFY 200, Carol's by Carol's BYE.

#[path = "util/cli.rs"]
mod cli;

use cli::{Proc, is, listener};

#[test]
fn bob_puts_alice_through_to_carol_with_replaces() {
    let dir = std::env::temp_dir().join(format!(
        "tincan-cli-attended-transfer-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut bob, bob_addr) = listener("bob", &dir);
    let caller = |name| {
        Proc::spawn(
            name,
            &dir,
            &[
                "call",
                &format!("sip:bob@{bob_addr}"),
                "--bind",
                "127.0.0.1:0",
                "--no-audio",
                "--json",
            ],
        )
    };
    let mut alice = caller("alice");
    alice.wait("answered", |v| is(v, "answered"));
    let first = bob.wait("quality", |v| is(v, "quality"))["call"].clone();
    let mut carol = caller("carol");
    carol.wait("answered", |v| is(v, "answered"));
    bob.wait("quality of the other call", |v| {
        is(v, "quality") && v["call"] != first
    });

    bob.type_line("atransfer");
    alice.wait("transfer_requested", |v| is(v, "transfer_requested"));
    alice.type_line("accept-transfer");
    alice.wait("transfer_started", |v| is(v, "transfer_started"));
    carol.wait("replaced", |v| is(v, "replaced"));
    alice.wait("answered by carol", |v| is(v, "answered"));

    // Bob's calls both end, in either order: Alice's once the transfer worked (after the
    // NOTIFY 200), Carol's by her BYE.
    let (mut done, mut ends) = (None, Vec::new());
    while done.is_none() || ends.len() < 2 {
        let v = bob.wait("transfer_succeeded and both ends", |v| {
            is(v, "transfer_succeeded") || is(v, "ended")
        });
        if is(&v, "ended") {
            ends.push(v);
        } else {
            done = Some(v);
        }
    }
    let done = done.expect("the loop ends with it");
    assert_eq!(done["status"], 200, "{done}");
    assert_eq!(done["call"], first, "the transfer of alice's call: {done}");
    let reason_of = |call_is_first: bool| {
        ends.iter()
            .find(|e| (e["call"] == first) == call_is_first)
            .map(|e| e["reason"].clone())
    };
    assert_eq!(reason_of(true), Some("local_hangup".into()), "{ends:?}");
    assert_eq!(reason_of(false), Some("remote_hangup".into()), "{ends:?}");

    // Alice and Carol talk until Alice hangs up; both callers exit well.
    alice.type_line("hangup");
    alice.wait("ended", |v| is(v, "ended"));
    carol.wait("ended by alice", |v| {
        is(v, "ended") && v["reason"] == "remote_hangup"
    });
    for mut p in [alice, carol] {
        let status = p.child.wait().expect("the caller exits");
        assert!(status.success(), "{}: {status:?}", p.name);
    }
    bob.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
