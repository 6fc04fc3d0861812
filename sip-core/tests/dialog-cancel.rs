//! CANCEL before the answer (RFC 3261 §9): the callee's endpoint answers the CANCEL 200 and
//! the INVITE 487; the caller ends with LocalHangup, the callee with RemoteHangup.

mod util;

use tincan_sip::dialog::{EndReason, SessionEvent, SessionState};
use util::NetConfig;
use util::ua::{OnInvite, alice_and_bob, header, run, sdp, secs, sent};

fn times(sim: &util::Sim, node: usize, prefix: &str) -> Vec<f64> {
    sent(sim, node, prefix).iter().map(|m| m.0).collect()
}

#[test]
fn cancel_while_ringing() {
    let (mut sim, mut phones) = alice_and_bob(2, NetConfig::perfect());
    phones[1].on_invite = OnInvite::Ring;
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    assert_eq!(phones[0].session(a).state(), SessionState::Early);
    phones[0].act(&mut sim, a, |s| s.hangup());
    run(&mut sim, &mut phones, secs(2.0));

    assert_eq!(times(&sim, 0, "CANCEL"), [1.0]);
    let cancel = &sent(&sim, 0, "CANCEL")[0].1;
    let invite = &sent(&sim, 0, "INVITE")[0].1;
    // §9.1: the CANCEL copies the INVITE's Request-URI, Call-ID, From, To, CSeq number, Via.
    assert_eq!(
        cancel.lines().next().unwrap(),
        "CANCEL sip:bob@127.0.0.1:5070 SIP/2.0"
    );
    for h in ["Via", "Call-ID", "From", "To"] {
        assert_eq!(header(cancel, h), header(invite, h), "{h}");
    }
    assert_eq!(header(cancel, "CSeq"), Some("1 CANCEL"));
    assert_eq!(times(&sim, 1, "SIP/2.0 200"), [1.01]);
    assert_eq!(times(&sim, 1, "SIP/2.0 487"), [1.01]);
    // The 487 is acknowledged by the INVITE transaction itself (same branch, §17.1.1.3).
    let ack = &sent(&sim, 0, "ACK")[0];
    assert_eq!(ack.0, 1.02);
    assert_eq!(header(&ack.1, "Via"), header(invite, "Via"));
    assert_eq!(header(&ack.1, "CSeq"), Some("1 ACK"));

    assert_eq!(phones[0].ends(a), [(1.02, EndReason::LocalHangup)]);
    assert_eq!(phones[1].ends(0), [(1.01, EndReason::RemoteHangup)]);
    assert!(
        !phones[1]
            .events_of(0)
            .iter()
            .any(|(_, e)| matches!(e, SessionEvent::Confirmed { .. }))
    );
    // A late accept does nothing: the call is over.
    phones[1].act(&mut sim, 0, |s| s.accept(None));
    run(&mut sim, &mut phones, secs(40.0));
    assert_eq!(times(&sim, 1, "SIP/2.0 200"), [1.01]);
    assert_eq!(sim.nodes[0].ep.transaction_count(), 0);
    assert_eq!(sim.nodes[1].ep.transaction_count(), 0);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    // §9.1: a CANCEL must not be sent before a provisional response; the endpoint holds it
    // until the 100 Trying the UAS sends after 200 ms.
    let (mut sim, mut phones) = alice_and_bob(3, NetConfig::perfect());
    let a = phones[0].dial(&mut sim, 1, "bob", None);
    phones[0].act(&mut sim, a, |s| s.hangup());
    run(&mut sim, &mut phones, secs(5.0));
    assert_eq!(times(&sim, 1, "SIP/2.0 100"), [0.21]);
    assert_eq!(times(&sim, 0, "CANCEL"), [0.22]);
    assert_eq!(times(&sim, 1, "SIP/2.0 487"), [0.23]);
    assert_eq!(phones[0].ends(a), [(0.24, EndReason::LocalHangup)]);
    assert_eq!(phones[1].ends(0), [(0.23, EndReason::RemoteHangup)]);
    assert!(phones[0].errors.is_empty(), "{:?}", phones[0].errors);
}

#[test]
fn the_487_keeps_the_provisional_to_tag() {
    // RFC 3261 §8.2.6.2: every response to a request (but 100) carries the same To tag.
    let (mut sim, mut phones) = alice_and_bob(2, NetConfig::perfect());
    phones[1].on_invite = OnInvite::Ring;
    let a = phones[0].dial(&mut sim, 1, "bob", None);
    run(&mut sim, &mut phones, secs(1.0));
    phones[0].act(&mut sim, a, |s| s.hangup());
    run(&mut sim, &mut phones, secs(2.0));
    let ringing = &sent(&sim, 1, "SIP/2.0 180")[0].1;
    let terminated = &sent(&sim, 1, "SIP/2.0 487")[0].1;
    assert_eq!(header(terminated, "To"), header(ringing, "To"));
}
