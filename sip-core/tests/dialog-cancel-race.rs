//! The CANCEL/200 race (RFC 3261 §9.1, §15): the callee answers at the instant the caller
//! hangs up. The CANCEL finds the INVITE answered (200 for the CANCEL, no 487); the caller
//! takes the 2xx, ACKs it and ends that dialog with a BYE. Both sides end and every
//! transaction is gone once its timers ran.

mod util;

use tincan_sip::dialog::{EndReason, SessionEvent, SessionState};
use util::NetConfig;
use util::ua::{OnInvite, alice_and_bob, header, run, sdp, secs, sent};

#[test]
fn answer_crossing_cancel_is_acked_and_byed() {
    let (mut sim, mut phones) = alice_and_bob(1, NetConfig::perfect());
    phones[1].on_invite = OnInvite::Ring;
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    let b = 0;
    assert_eq!(phones[0].session(a).state(), SessionState::Early);
    assert_eq!(phones[1].session(b).state(), SessionState::Incoming);

    // The same virtual instant: Bob answers, Alice hangs up.
    phones[1].act(&mut sim, b, |s| s.accept(Some(sdp("bob", 1, "sendrecv"))));
    phones[0].act(&mut sim, a, |s| s.hangup());
    run(&mut sim, &mut phones, secs(2.0));

    // On the wire (10 ms one way): CANCEL and 200 cross; Bob answers the CANCEL 200 and
    // keeps his 2xx; Alice ACKs the 2xx and sends BYE.
    let times =
        |node, prefix| -> Vec<f64> { sent(&sim, node, prefix).iter().map(|m| m.0).collect() };
    assert_eq!(times(0, "CANCEL"), [1.0]);
    assert_eq!(
        times(1, "SIP/2.0 200"),
        [1.0, 1.01, 1.02],
        "INVITE 200, CANCEL 200, BYE 200"
    );
    let bob_200s: Vec<String> = sent(&sim, 1, "SIP/2.0 200")
        .into_iter()
        .map(|(_, m)| header(&m, "CSeq").unwrap().to_owned())
        .collect();
    assert_eq!(bob_200s, ["1 INVITE", "1 CANCEL", "2 BYE"]);
    assert!(
        sent(&sim, 1, "SIP/2.0 487").is_empty(),
        "an answered INVITE gets no 487"
    );
    assert_eq!(times(0, "ACK"), [1.01]);
    assert_eq!(times(0, "BYE"), [1.01]);
    let ack = &sent(&sim, 0, "ACK")[0].1;
    assert_eq!(header(ack, "CSeq"), Some("1 ACK"));
    assert!(header(ack, "To").unwrap().contains(";tag=bob-1"), "{ack}");

    // Alice: ringing, then the end; the 2xx is not reported as an answer.
    let alice = phones[0].events_of(a);
    assert!(matches!(alice[0], (t, SessionEvent::Progress { status: 180, .. }) if t == 0.02));
    assert!(
        !alice
            .iter()
            .any(|(_, e)| matches!(e, SessionEvent::Answered { .. }))
    );
    assert_eq!(phones[0].ends(a), [(1.01, EndReason::LocalHangup)]);
    // Bob: the ACK confirms his call, the BYE ends it.
    let bob = phones[1].events_of(b);
    assert_eq!(
        bob,
        [
            (1.02, SessionEvent::Confirmed { body: None }),
            (1.02, SessionEvent::Ended(EndReason::RemoteHangup)),
        ]
    );

    // No transaction outlives its timers: Timer M/L at 1 + 32 s, K and J sooner.
    run(&mut sim, &mut phones, secs(40.0));
    assert_eq!(sim.nodes[0].ep.transaction_count(), 0);
    assert_eq!(sim.nodes[1].ep.transaction_count(), 0);
    assert_eq!(phones[0].ends(a).len(), 1);
    assert_eq!(phones[1].ends(b).len(), 1);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.glue_responses.is_empty(), "{:?}", p.glue_responses);
    }
}
