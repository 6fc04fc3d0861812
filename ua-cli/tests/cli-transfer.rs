//! Transfer from the command line, three real `tincan` processes on loopback: Alice's
//! `tincan call` to Bob's `tincan listen`; Bob types `transfer sip:carol@...`; Alice (config
//! `accept_transfer` left at "ask") is asked and types `accept-transfer`; her `tincan call`
//! follows the new call to Carol's `tincan listen`, and Bob's call ends as a success.

#[path = "util/cli.rs"]
mod cli;

use cli::{Proc, is, listener};

#[test]
fn bob_transfers_alice_to_carol_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("tincan-cli-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut bob, bob_addr) = listener("bob", &dir);
    let (mut carol, carol_addr) = listener("carol", &dir);
    let mut alice = Proc::spawn(
        "alice",
        &dir,
        &[
            "call",
            &format!("sip:bob@{bob_addr}"),
            "--no-audio",
            "--json",
        ],
    );
    alice.wait("answered", |v| is(v, "answered"));
    // Bob's call is up once the ACK is in (its media reports quality then).
    bob.wait("quality", |v| is(v, "quality"));

    bob.type_line(&format!("transfer sip:carol@{carol_addr}"));
    let asked = alice.wait("transfer_requested", |v| is(v, "transfer_requested"));
    assert_eq!(asked["to"], format!("sip:carol@{carol_addr}"), "{asked}");
    alice.type_line("accept-transfer");
    alice.wait("transfer_started", |v| is(v, "transfer_started"));
    // Alice's `tincan call` now follows the call to Carol.
    alice.wait("answered by carol", |v| is(v, "answered"));
    carol.wait("incoming", |v| is(v, "incoming"));
    carol.wait("answered", |v| is(v, "answered"));
    let done = bob.wait("transfer_succeeded", |v| is(v, "transfer_succeeded"));
    assert_eq!(done["status"], 200, "{done}");
    let ended = bob.wait("ended", |v| is(v, "ended"));
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    assert!(
        bob.seen
            .iter()
            .any(|v| is(v, "transfer_progress") && v["status"] == 202),
        "{:?}",
        bob.seen
    );

    // Alice and Carol talk until Alice hangs up; her call ended well.
    alice.type_line("hangup");
    let ended = alice.wait("ended", |v| is(v, "ended"));
    assert_eq!(ended["answered"], true, "{ended}");
    carol.wait("ended", |v| is(v, "ended"));
    let status = alice.child.wait().expect("alice exits");
    assert!(status.success(), "{status:?}");
    bob.stop();
    carol.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
