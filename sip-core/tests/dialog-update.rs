//! UPDATE (RFC 3311) between two sessions on the seeded Sim network, in virtual time: an
//! offer in a confirmed call, glare (both offer at once: 491 each, retried after the random
//! wait of RFC 3261 §14.1 as for re-INVITE), an offer while the peer's own offer waits (500
//! with Retry-After), and UPDATE in the callee's early dialog.

mod util;

use bytes::Bytes;
use tincan_sip::dialog::{Dialog, SessionEvent, SessionState};
use tincan_sip::message::{Message, Method};
use util::NetConfig;
use util::ua::{
    OnInvite, alice_and_bob, answer_direction, connected, header, run, sdp, secs, sent,
};

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

fn count(events: &[(f64, SessionEvent)], f: impl Fn(&SessionEvent) -> bool) -> usize {
    events.iter().filter(|(_, e)| f(e)).count()
}

fn parse(text: &str) -> Message {
    Message::parse(Bytes::from(text.to_owned())).expect("a message the test saw on the wire")
}

#[test]
fn an_offer_in_update_is_answered_in_its_200() {
    let (mut sim, mut phones) = alice_and_bob(50, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    let offer = sdp("alice", 2, "sendonly");
    phones[0]
        .act(&mut sim, a, |s| s.update(Some(offer.clone())))
        .unwrap();
    run(&mut sim, &mut phones, secs(2.0));
    assert!(phones[1].events_of(b).contains(&(
        1.01,
        SessionEvent::Update {
            body: offer.clone()
        }
    )));
    let answer = sdp("bob", 2, "recvonly");
    phones[1].answer_update(&mut sim, b, 200, Some(answer.clone()));
    run(&mut sim, &mut phones, secs(3.0));
    let ok = sent(&sim, 1, "SIP/2.0 200")
        .into_iter()
        .find(|(_, m)| header(m, "CSeq") == Some("2 UPDATE"))
        .expect("the UPDATE's 200");
    assert!(header(&ok.1, "Contact").is_some());
    assert!(
        phones[0]
            .events_of(a)
            .contains(&(2.01, SessionEvent::UpdateAccepted { body: Some(answer) }))
    );
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn update_glare_gets_491_on_both_sides_and_each_retries() {
    for seed in 0..12 {
        let (mut sim, mut phones) = alice_and_bob(60 + seed, NetConfig::perfect());
        for p in &mut phones {
            p.seed = seed * 7919;
            p.answer_reinvites = Some(answer_direction);
        }
        let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
        phones[0]
            .act(&mut sim, a, |s| s.update(Some(sdp("alice", 2, "sendonly"))))
            .unwrap();
        phones[1]
            .act(&mut sim, b, |s| s.update(Some(sdp("bob", 2, "sendonly"))))
            .unwrap();
        run(&mut sim, &mut phones, secs(10.0));

        // Each answered the other's crossing offer 491 at 1.01 s.
        for node in [0, 1] {
            let r491: Vec<u64> = sent(&sim, node, "SIP/2.0 491")
                .iter()
                .map(|(t, _)| ms(*t))
                .collect();
            assert_eq!(r491, [1010], "seed {seed}: node {node}");
        }
        let alice = phones[0].events_of(a);
        let bob = phones[1].events_of(b);
        for events in [&alice, &bob] {
            assert!(events.contains(&(1.02, SessionEvent::UpdateRejected { status: 491 })));
        }
        // Bob (not the Call-ID owner) retries within 0-2 s, Alice within 2.1-4 s.
        let updates = |node| -> Vec<u64> {
            sent(&sim, node, "UPDATE")
                .iter()
                .map(|(t, _)| ms(*t))
                .collect()
        };
        let (alice_sent, bob_sent) = (updates(0), updates(1));
        assert_eq!(alice_sent.len(), 2, "seed {seed}: {alice_sent:?}");
        assert_eq!(bob_sent.len(), 2, "seed {seed}: {bob_sent:?}");
        assert!(bob_sent[1] - 1020 <= 2000, "seed {seed}: {bob_sent:?}");
        assert!(
            (2100..=4000).contains(&(alice_sent[1] - 1020)),
            "seed {seed}: {alice_sent:?}"
        );
        // Both offers went through in the end, once each.
        let accepted = |e: &SessionEvent| matches!(e, SessionEvent::UpdateAccepted { .. });
        let offered = |e: &SessionEvent| matches!(e, SessionEvent::Update { .. });
        assert_eq!(count(&alice, accepted), 1, "seed {seed}: {alice:?}");
        assert_eq!(count(&bob, accepted), 1, "seed {seed}: {bob:?}");
        assert_eq!(count(&alice, offered), 1, "seed {seed}: {alice:?}");
        assert_eq!(count(&bob, offered), 1, "seed {seed}: {bob:?}");
        for p in &phones {
            assert!(p.errors.is_empty(), "{:?}", p.errors);
        }
        assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    }
}

#[test]
fn an_offer_while_the_peers_offer_waits_gets_500_with_retry_after() {
    let (mut sim, mut phones) = alice_and_bob(51, NetConfig::perfect());
    let (a, _b) = connected(&mut sim, &mut phones, secs(1.0));
    // Alice's re-INVITE offer waits at Bob (his application has not answered).
    phones[0]
        .act(&mut sim, a, |s| {
            s.reinvite(Some(sdp("alice", 2, "sendonly")))
        })
        .unwrap();
    run(&mut sim, &mut phones, secs(1.5));
    // Her session refuses a second offer itself...
    assert!(
        phones[0]
            .act(&mut sim, a, |s| s.update(Some(sdp("alice", 3, "sendrecv"))))
            .is_err()
    );
    // ... and an UPDATE with an offer sent anyway gets 500 with Retry-After (RFC 3311 §5.2).
    let mut dialog: Dialog = phones[0].session(a).dialog().unwrap().clone();
    let mut update = dialog.request(Method::Update);
    update.set_body(Some("application/sdp"), sdp("alice", 3, "sendrecv"));
    let target = sim.target(1);
    sim.nodes[0]
        .ep
        .send_request(sim.now, update, target.clone())
        .unwrap();
    run(&mut sim, &mut phones, secs(2.0));
    let r500 = sent(&sim, 1, "SIP/2.0 500");
    assert_eq!(r500.len(), 1);
    let wait: u32 = header(&r500[0].1, "Retry-After").unwrap().parse().unwrap();
    assert!(wait < 10);
    // An UPDATE without an offer is a refresh, answered 200 even now.
    let refresh = dialog.request(Method::Update);
    sim.nodes[0]
        .ep
        .send_request(sim.now, refresh, target)
        .unwrap();
    run(&mut sim, &mut phones, secs(2.5));
    assert!(
        sent(&sim, 1, "SIP/2.0 200")
            .iter()
            .any(|(_, m)| header(m, "CSeq") == Some("4 UPDATE"))
    );
}

#[test]
fn update_in_the_callees_early_dialog() {
    let (mut sim, mut phones) = alice_and_bob(52, NetConfig::perfect());
    phones[1].on_invite = OnInvite::Ring;
    phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    let invite = parse(&sent(&sim, 0, "INVITE")[0].1);
    let ringing = parse(&sent(&sim, 1, "SIP/2.0 180")[0].1);
    let mut early = Dialog::uac(&invite, &ringing).unwrap();
    let target = sim.target(1);

    // Without SDP: 200 (a target or session refresh needs no offer/answer).
    let update = early.request(Method::Update);
    sim.nodes[0]
        .ep
        .send_request(sim.now, update, target.clone())
        .unwrap();
    run(&mut sim, &mut phones, secs(1.5));
    assert!(
        sent(&sim, 1, "SIP/2.0 200")
            .iter()
            .any(|(_, m)| header(m, "CSeq") == Some("2 UPDATE"))
    );
    // With an offer while the INVITE's offer is still unanswered: 500 with Retry-After.
    let mut update = early.request(Method::Update);
    update.set_body(Some("application/sdp"), sdp("alice", 2, "sendrecv"));
    sim.nodes[0]
        .ep
        .send_request(sim.now, update, target)
        .unwrap();
    run(&mut sim, &mut phones, secs(2.0));
    let r500 = sent(&sim, 1, "SIP/2.0 500");
    assert_eq!(r500.len(), 1);
    assert_eq!(header(&r500[0].1, "CSeq"), Some("3 UPDATE"));
    assert!(header(&r500[0].1, "Retry-After").is_some());
    assert_eq!(phones[1].session(0).state(), SessionState::Incoming);
}

#[test]
fn update_in_the_callers_early_dialog() {
    let (mut sim, mut phones) = alice_and_bob(53, NetConfig::perfect());
    phones[1].on_invite = OnInvite::Ring;
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    assert_eq!(phones[0].session(a).state(), SessionState::Early);
    // Bob's side of his early dialog sends Alice an UPDATE.
    let mut early: Dialog = phones[1].session(0).dialog().unwrap().clone();
    let target = sim.target(0);
    let update = early.request(Method::Update);
    sim.nodes[1]
        .ep
        .send_request(sim.now, update, target.clone())
        .unwrap();
    run(&mut sim, &mut phones, secs(1.5));
    let ok = sent(&sim, 0, "SIP/2.0 200");
    assert_eq!(ok.len(), 1);
    assert!(header(&ok[0].1, "CSeq").is_some_and(|c| c.ends_with("UPDATE")));
    // An offer while Alice's own (in the INVITE) is unanswered: 491.
    let mut update = early.request(Method::Update);
    update.set_body(Some("application/sdp"), sdp("bob", 1, "sendrecv"));
    sim.nodes[1]
        .ep
        .send_request(sim.now, update, target)
        .unwrap();
    run(&mut sim, &mut phones, secs(2.0));
    assert_eq!(sent(&sim, 0, "SIP/2.0 491").len(), 1);
    assert_eq!(phones[0].session(a).state(), SessionState::Early);
}
