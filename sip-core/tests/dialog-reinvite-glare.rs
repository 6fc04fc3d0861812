//! Re-INVITE glare (RFC 3261 §14.1, §14.2): both sides send a re-INVITE at the same instant,
//! each answers the other's 491, and each retries after a random wait: the owner of the
//! Call-ID (the caller) 2.1 to 4 s, the other side 0 to 2 s. The callee's retry goes first and
//! wins; the caller's comes after it is over, so there is no second 491.

mod util;

use tincan_sip::dialog::{SessionEvent, SessionState};
use util::NetConfig;
use util::ua::{alice_and_bob, answer_direction, connected, header, run, sdp, secs, sent};

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

/// (time in ms, CSeq) of the re-INVITEs node `node` sent (its initial INVITE left out).
fn reinvites(sim: &util::Sim, node: usize) -> Vec<(u64, String)> {
    sent(sim, node, "INVITE")
        .into_iter()
        .filter(|(_, m)| header(m, "To").is_some_and(|t| t.contains(";tag=")))
        .map(|(t, m)| (ms(t), header(&m, "CSeq").unwrap().to_owned()))
        .collect()
}

fn count(events: &[(f64, SessionEvent)], f: impl Fn(&SessionEvent) -> bool) -> usize {
    events.iter().filter(|(_, e)| f(e)).count()
}

#[test]
fn glare_resolves_in_one_round() {
    let mut bob_waits = Vec::new();
    let mut alice_waits = Vec::new();
    for seed in 0..24 {
        let (mut sim, mut phones) = alice_and_bob(20 + seed, NetConfig::perfect());
        for p in &mut phones {
            p.seed = seed * 7919;
            p.answer_reinvites = Some(answer_direction);
        }
        let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
        // The same instant: Alice holds, Bob holds.
        phones[0]
            .act(&mut sim, a, |s| {
                s.reinvite(Some(sdp("alice", 2, "sendonly")))
            })
            .unwrap();
        phones[1]
            .act(&mut sim, b, |s| s.reinvite(Some(sdp("bob", 2, "sendonly"))))
            .unwrap();
        run(&mut sim, &mut phones, secs(10.0));

        // Each answered the other 491 at 1.01 s and learnt of its own at 1.02 s.
        let r491: Vec<(u64, usize)> = [0, 1]
            .iter()
            .flat_map(|&n| {
                sent(&sim, n, "SIP/2.0 491")
                    .into_iter()
                    .map(move |(t, _)| (ms(t), n))
            })
            .collect();
        assert_eq!(
            r491,
            [(1010, 0), (1010, 1)],
            "seed {seed}: exactly one 491 each"
        );
        let alice = phones[0].events_of(a);
        let bob = phones[1].events_of(b);
        for events in [&alice, &bob] {
            assert!(events.contains(&(1.02, SessionEvent::ReinviteRejected { status: 491 })));
        }

        // Bob (not the Call-ID owner) retries 0-2 s after the 491, Alice 2.1-4 s after it.
        let bob_sent = reinvites(&sim, 1);
        let alice_sent = reinvites(&sim, 0);
        assert_eq!(bob_sent.len(), 2, "seed {seed}: {bob_sent:?}");
        assert_eq!(alice_sent.len(), 2, "seed {seed}: {alice_sent:?}");
        assert_eq!((bob_sent[0].0, bob_sent[1].1.as_str()), (1000, "2 INVITE"));
        assert_eq!(
            (alice_sent[0].0, alice_sent[1].1.as_str()),
            (1000, "3 INVITE")
        );
        let bob_wait = bob_sent[1].0 - 1020;
        let alice_wait = alice_sent[1].0 - 1020;
        assert!(bob_wait <= 2000, "seed {seed}: Bob waited {bob_wait} ms");
        assert!(
            (2100..=4000).contains(&alice_wait),
            "seed {seed}: Alice waited {alice_wait} ms"
        );
        assert_eq!(bob_wait % 10, 0);
        assert_eq!(alice_wait % 10, 0);
        bob_waits.push(bob_wait);
        alice_waits.push(alice_wait);

        // Bob's offer won first, then Alice's went through: each accepted once, each ACKed.
        let accepted = |e: &SessionEvent| matches!(e, SessionEvent::ReinviteAccepted { .. });
        let confirmed = |e: &SessionEvent| matches!(e, SessionEvent::ReinviteConfirmed { .. });
        assert_eq!(count(&bob, accepted), 1, "seed {seed}: {bob:?}");
        assert_eq!(count(&alice, accepted), 1, "seed {seed}: {alice:?}");
        assert_eq!(count(&alice, confirmed), 1, "seed {seed}: {alice:?}");
        assert_eq!(count(&bob, confirmed), 1, "seed {seed}: {bob:?}");
        let bob_won = bob.iter().find(|(_, e)| accepted(e)).unwrap().0;
        let alice_won = alice.iter().find(|(_, e)| accepted(e)).unwrap().0;
        assert_eq!(ms(bob_won), bob_sent[1].0 + 20);
        assert_eq!(ms(alice_won), alice_sent[1].0 + 20);
        assert!(bob_won < alice_won);
        for p in &phones {
            assert!(p.errors.is_empty(), "{:?}", p.errors);
        }
        assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
        assert_eq!(phones[1].session(b).state(), SessionState::Confirmed);
    }
    // The waits are random: not all the same.
    bob_waits.dedup();
    alice_waits.sort_unstable();
    alice_waits.dedup();
    assert!(bob_waits.len() > 1 && alice_waits.len() > 1);
}

#[test]
fn retry_waits_for_the_answer_to_the_peers_offer() {
    // §14.1: no new INVITE transaction while another is in progress in either direction.
    // Alice's application sits on Bob's retried offer until 6 s, past her own retry time:
    // her retry must go after her answer, not into a second 491.
    let (mut sim, mut phones) = alice_and_bob(30, NetConfig::perfect());
    phones[1].answer_reinvites = Some(answer_direction);
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    phones[0]
        .act(&mut sim, a, |s| {
            s.reinvite(Some(sdp("alice", 2, "sendonly")))
        })
        .unwrap();
    phones[1]
        .act(&mut sim, b, |s| s.reinvite(Some(sdp("bob", 2, "sendonly"))))
        .unwrap();
    run(&mut sim, &mut phones, secs(6.0));
    assert_eq!(reinvites(&sim, 0).len(), 1, "Alice holds her retry");
    assert!(matches!(
        phones[0].events_of(a).last(),
        Some((_, SessionEvent::Reinvite { .. }))
    ));
    phones[0].answer_reinvite(&mut sim, a, 200, answer_direction(None));
    run(&mut sim, &mut phones, secs(10.0));
    let alice_sent = reinvites(&sim, 0);
    assert_eq!(alice_sent.len(), 2);
    assert_eq!(alice_sent[1], (6000, "3 INVITE".to_owned()));
    assert_eq!(sent(&sim, 0, "SIP/2.0 491").len(), 1);
    assert_eq!(sent(&sim, 1, "SIP/2.0 491").len(), 1);
    assert!(phones[0].events_of(a).contains(&(
        6.02,
        SessionEvent::ReinviteAccepted {
            body: answer_direction(Some(&sdp("alice", 2, "sendonly")))
        }
    )));
}
