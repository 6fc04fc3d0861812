//! Hold and resume with re-INVITE (RFC 3261 §14, RFC 3264 §8.4): the offer's direction
//! (`a=sendonly` to hold, `a=sendrecv` to resume) goes in a re-INVITE; the peer answers 200
//! with its SDP and the ACK ends the exchange. SDP is opaque bytes to the session.

mod util;

use tincan_sip::dialog::{SessionEvent, SessionState};
use util::NetConfig;
use util::ua::{
    alice_and_bob, answer_direction, connected, direction, header, run, sdp, secs, sent,
};

fn body_direction(e: &SessionEvent) -> Option<&str> {
    match e {
        SessionEvent::Reinvite { body }
        | SessionEvent::ReinviteAccepted { body }
        | SessionEvent::ReinviteConfirmed { body } => body.as_deref().and_then(direction),
        _ => None,
    }
}

#[test]
fn caller_holds_and_resumes() {
    let (mut sim, mut phones) = alice_and_bob(5, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));

    // Hold: Alice offers sendonly; Bob answers (by hand, half a second later) recvonly.
    phones[0]
        .act(&mut sim, a, |s| {
            s.reinvite(Some(sdp("alice", 2, "sendonly")))
        })
        .unwrap();
    run(&mut sim, &mut phones, secs(1.5));
    let bob_events = phones[1].events_of(b);
    let (t, offer) = bob_events.last().unwrap();
    assert_eq!(*t, 1.01);
    assert!(matches!(offer, SessionEvent::Reinvite { .. }), "{offer:?}");
    assert_eq!(body_direction(offer), Some("sendonly"));
    assert_eq!(phones[1].session(b).state(), SessionState::Confirmed);
    phones[1].answer_reinvite(&mut sim, b, 200, Some(sdp("bob", 2, "recvonly")));
    run(&mut sim, &mut phones, secs(2.0));

    let invites = sent(&sim, 0, "INVITE");
    assert_eq!(invites.len(), 2);
    let (t, hold) = &invites[1];
    assert_eq!(*t, 1.0);
    assert_eq!(header(hold, "CSeq"), Some("2 INVITE"));
    assert_eq!(header(hold, "Content-Type"), Some("application/sdp"));
    assert!(hold.contains("\r\n\r\nv=0\r\n") && hold.contains("a=sendonly\r\n"));
    assert!(header(hold, "To").unwrap().ends_with(";tag=bob-1"));
    assert!(
        hold.starts_with("INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n"),
        "to Bob's Contact"
    );
    let oks = sent(&sim, 1, "SIP/2.0 200");
    let (t, ok) = oks.last().unwrap();
    assert_eq!((*t, header(ok, "CSeq")), (1.5, Some("2 INVITE")));
    assert!(ok.contains("a=recvonly\r\n"));
    let (t, ack) = sent(&sim, 0, "ACK").last().cloned().unwrap();
    assert_eq!((t, header(&ack, "CSeq")), (1.51, Some("2 ACK")));

    let alice_last = phones[0].events_of(a).last().cloned().unwrap();
    assert_eq!(alice_last.0, 1.51);
    assert!(matches!(
        alice_last.1,
        SessionEvent::ReinviteAccepted { .. }
    ));
    assert_eq!(body_direction(&alice_last.1), Some("recvonly"));
    assert_eq!(
        phones[1].events_of(b).last().cloned().unwrap(),
        (1.52, SessionEvent::ReinviteConfirmed { body: None })
    );

    // Resume at 3 s, Bob answering at once this time.
    phones[1].answer_reinvites = Some(answer_direction);
    phones[0]
        .act(&mut sim, a, |s| {
            s.reinvite(Some(sdp("alice", 3, "sendrecv")))
        })
        .unwrap();
    // A second re-INVITE while this one is pending is refused locally.
    assert!(phones[0].act(&mut sim, a, |s| s.reinvite(None)).is_err());
    run(&mut sim, &mut phones, secs(4.0));
    let resume = &sent(&sim, 0, "INVITE")[2].1;
    assert_eq!(header(resume, "CSeq"), Some("3 INVITE"));
    assert!(resume.contains("a=sendrecv\r\n"));
    let alice_last = phones[0].events_of(a).last().cloned().unwrap();
    assert_eq!(alice_last.0, 2.02);
    assert_eq!(body_direction(&alice_last.1), Some("sendrecv"));
    let bob_tail: Vec<(f64, SessionEvent)> = phones[1].events_of(b).split_off(3);
    assert!(
        matches!(&bob_tail[..], [
        (t1, SessionEvent::Reinvite { .. }),
        (t2, SessionEvent::ReinviteConfirmed { body: None }),
    ] if *t1 == 2.01 && *t2 == 2.03),
        "{bob_tail:?}"
    );

    // Each 2xx went once (the ACK came before T1); both calls are still up.
    assert_eq!(sent(&sim, 1, "SIP/2.0 200").len(), 3);
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    assert_eq!(phones[1].session(b).state(), SessionState::Confirmed);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.ends(0).is_empty());
    }
}

#[test]
fn callee_holds_with_its_own_cseq() {
    // Bob's first request in the dialog has CSeq 1, the same number as Alice's INVITE: the
    // ACK of Bob's re-INVITE must still be taken as that re-INVITE's ACK.
    let (mut sim, mut phones) = alice_and_bob(6, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    phones[0].answer_reinvites = Some(answer_direction);
    phones[1]
        .act(&mut sim, b, |s| s.reinvite(Some(sdp("bob", 2, "sendonly"))))
        .unwrap();
    run(&mut sim, &mut phones, secs(2.0));

    let (t, hold) = sent(&sim, 1, "INVITE")[0].clone();
    assert_eq!(t, 1.0);
    assert_eq!(header(&hold, "CSeq"), Some("1 INVITE"));
    assert!(hold.starts_with("INVITE sip:alice@127.0.0.1:5060 SIP/2.0\r\n"));
    let (t, ack) = sent(&sim, 1, "ACK")[0].clone();
    assert_eq!((t, header(&ack, "CSeq")), (1.02, Some("1 ACK")));

    let alice: Vec<(f64, SessionEvent)> = phones[0].events_of(a).split_off(2);
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert_eq!(alice[0].0, 1.01);
    assert_eq!(body_direction(&alice[0].1), Some("sendonly"));
    assert_eq!(
        alice[1],
        (1.03, SessionEvent::ReinviteConfirmed { body: None })
    );
    let bob = phones[1].events_of(b).last().cloned().unwrap();
    assert_eq!(bob.0, 1.02);
    assert_eq!(body_direction(&bob.1), Some("recvonly"));
    assert_eq!(
        sent(&sim, 0, "SIP/2.0 200").len(),
        1,
        "no 2xx retransmission"
    );
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}
