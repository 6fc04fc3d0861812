//! Reliable provisional responses (RFC 3262) between two sessions on the seeded Sim network,
//! in virtual time: an INVITE with `Require: 100rel` rings (no 420); a reliable 183 with SDP
//! lost twice is sent again at T1, 2*T1 and PRACKed once; a lost PRACK is retransmitted by
//! its transaction while the 183's copies are ignored (no second PRACK, no second event)
//! and the 2xx waits for it; without any PRACK the callee gives up after 64*T1 with 500;
//! two reliable provisionals are PRACKed in RSeq order; lossy networks still connect.

mod util;

use tincan_sip::dialog::invite::PrackPolicy;
use tincan_sip::dialog::{EndReason, SessionEvent, SessionState};
use util::NetConfig;
use util::ua::{OnInvite, alice_and_bob, header, run, sdp, secs, sent};

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

/// Times (ms) of the messages node `node` sent starting with `prefix`.
fn times_ms(sim: &util::Sim, node: usize, prefix: &str) -> Vec<u64> {
    sent(sim, node, prefix)
        .iter()
        .map(|(t, _)| ms(*t))
        .collect()
}

fn progress(events: &[(f64, SessionEvent)]) -> Vec<(u64, u16, bool)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            SessionEvent::Progress { status, body, .. } => Some((ms(*t), *status, body.is_some())),
            _ => None,
        })
        .collect()
}

#[test]
fn invite_requiring_100rel_rings_instead_of_420() {
    let (mut sim, mut phones) = alice_and_bob(1, NetConfig::perfect());
    phones[0].prack = PrackPolicy::Required;
    phones[1].on_invite = OnInvite::Accept(Some(sdp("bob", 1, "sendrecv")));
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(2.0));

    let invite = &sent(&sim, 0, "INVITE ")[0].1;
    assert_eq!(header(invite, "Require"), Some("100rel"), "{invite}");
    assert!(sent(&sim, 1, "SIP/2.0 420").is_empty());
    let ringing = &sent(&sim, 1, "SIP/2.0 180")[0].1;
    assert_eq!(header(ringing, "Require"), Some("100rel"), "{ringing}");
    let rseq: u32 = header(ringing, "RSeq")
        .and_then(|v| v.parse().ok())
        .expect("an RSeq");
    let pracks = sent(&sim, 0, "PRACK ");
    assert_eq!(pracks.len(), 1);
    assert_eq!(
        header(&pracks[0].1, "RAck"),
        Some(format!("{rseq} 1 INVITE").as_str())
    );
    assert!(
        sent(&sim, 1, "SIP/2.0 200")
            .iter()
            .any(|(_, m)| header(m, "CSeq") == Some("2 PRACK"))
    );
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    assert_eq!(phones[1].session(0).state(), SessionState::Confirmed);
    assert!(phones[1].session(0).reliable_provisionals());
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn supported_100rel_is_advertised_and_provisionals_stay_unreliable() {
    let (mut sim, mut phones) = alice_and_bob(2, NetConfig::perfect());
    phones[1].on_invite = OnInvite::Accept(Some(sdp("bob", 1, "sendrecv")));
    phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(2.0));
    let invite = &sent(&sim, 0, "INVITE ")[0].1;
    assert_eq!(
        header(invite, "Supported"),
        Some("100rel, replaces"),
        "{invite}"
    );
    assert_eq!(header(invite, "Require"), None);
    let ringing = &sent(&sim, 1, "SIP/2.0 180")[0].1;
    assert_eq!(header(ringing, "RSeq"), None);
    assert!(sent(&sim, 0, "PRACK ").is_empty());
}

#[test]
fn reliable_183_lost_twice_is_resent_and_prack_ed_once() {
    let (mut sim, mut phones) = alice_and_bob(3, NetConfig::perfect());
    phones[0].prack = PrackPolicy::Required;
    let mut lost = 0;
    sim.drop_if = Some(Box::new(move |from, _, line| {
        let drop = from == 1 && line.starts_with("SIP/2.0 183") && lost < 2;
        lost += usize::from(drop);
        drop
    }));
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| {
        s.ring(now, Some(sdp("bob", 1, "sendrecv")));
    });
    run(&mut sim, &mut phones, secs(5.0));

    // Sent at 1.0 s, again at T1 and 2*T1 later; the third copy arrives 10 ms on.
    assert_eq!(times_ms(&sim, 1, "SIP/2.0 183"), [1000, 1500, 2500]);
    assert_eq!(times_ms(&sim, 0, "PRACK "), [2510]);
    assert_eq!(progress(&phones[0].events_of(a)), [(2510, 183, true)]);

    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| s.accept(Some(sdp("bob", 1, "sendrecv"))));
    let _ = now;
    run(&mut sim, &mut phones, secs(7.0));
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    assert_eq!(phones[1].session(0).state(), SessionState::Confirmed);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn lost_prack_is_retransmitted_and_the_2xx_waits_for_it() {
    let (mut sim, mut phones) = alice_and_bob(4, NetConfig::perfect());
    phones[0].prack = PrackPolicy::Required;
    let mut lost = 0;
    sim.drop_if = Some(Box::new(move |from, _, line| {
        let drop = from == 0 && line.starts_with("PRACK ") && lost < 2;
        lost += usize::from(drop);
        drop
    }));
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| {
        s.ring(now, Some(sdp("bob", 1, "sendrecv")));
        // Answered at once: the 2xx must wait for the 183's PRACK (RFC 3262 §3).
        s.accept(Some(sdp("bob", 1, "sendrecv")));
    });
    run(&mut sim, &mut phones, secs(6.0));

    // The 183 reached Alice at 1.01 s; her PRACK (Timer E: T1, 2*T1) got through the third
    // time at 2.51 s; Bob's 183 copies crossed it and were ignored.
    let pracks = sent(&sim, 0, "PRACK ");
    assert_eq!(times_ms(&sim, 0, "PRACK "), [1010, 1510, 2510]);
    assert!(
        pracks
            .iter()
            .all(|(_, m)| header(m, "CSeq") == Some("2 PRACK"))
    );
    assert_eq!(times_ms(&sim, 1, "SIP/2.0 183"), [1000, 1500, 2500]);
    assert_eq!(progress(&phones[0].events_of(a)), [(1010, 183, true)]);
    let invite_ok: Vec<u64> = sent(&sim, 1, "SIP/2.0 200")
        .iter()
        .filter(|(_, m)| header(m, "CSeq") == Some("1 INVITE"))
        .map(|(t, _)| ms(*t))
        .collect();
    assert_eq!(invite_ok.first(), Some(&2520), "{invite_ok:?}");
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    assert_eq!(phones[1].session(0).state(), SessionState::Confirmed);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn no_prack_in_64_t1_refuses_the_invite_with_500() {
    let (mut sim, mut phones) = alice_and_bob(5, NetConfig::perfect());
    phones[0].prack = PrackPolicy::Required;
    sim.drop_if = Some(Box::new(|from, _, line| {
        from == 0 && line.starts_with("PRACK ")
    }));
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| s.ring(now, None));
    run(&mut sim, &mut phones, secs(40.0));

    assert_eq!(
        times_ms(&sim, 1, "SIP/2.0 180"),
        [1000, 1500, 2500, 4500, 8500, 16500, 32500]
    );
    assert_eq!(times_ms(&sim, 1, "SIP/2.0 500"), [33000]);
    // One PRACK (with its own retransmissions); the 180's copies got none.
    assert!(
        sent(&sim, 0, "PRACK ")
            .iter()
            .all(|(_, m)| header(m, "CSeq") == Some("2 PRACK"))
    );
    assert_eq!(progress(&phones[0].events_of(a)).len(), 1);
    assert_eq!(phones[1].ends(0), [(33.0, EndReason::Timeout)]);
    assert!(matches!(
        phones[0].ends(a).as_slice(),
        [(_, EndReason::Rejected { status: 500, .. })]
    ));
}

#[test]
fn two_reliable_provisionals_are_prack_ed_in_rseq_order() {
    let (mut sim, mut phones) = alice_and_bob(6, NetConfig::perfect());
    phones[0].prack = PrackPolicy::Required;
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(1.0));
    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| {
        s.ring(now, None);
        // Not before the 180's PRACK (RFC 3262 §3): ignored.
        s.ring(now, Some(sdp("bob", 1, "sendrecv")));
    });
    run(&mut sim, &mut phones, secs(2.0));
    assert!(sent(&sim, 1, "SIP/2.0 183").is_empty());
    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| {
        s.ring(now, Some(sdp("bob", 1, "sendrecv")))
    });
    run(&mut sim, &mut phones, secs(3.0));
    let rseq = |m: &str| -> u32 { header(m, "RSeq").and_then(|v| v.parse().ok()).unwrap() };
    let first = rseq(&sent(&sim, 1, "SIP/2.0 180")[0].1);
    let second = rseq(&sent(&sim, 1, "SIP/2.0 183")[0].1);
    assert_eq!(second, first + 1);
    let racks: Vec<String> = sent(&sim, 0, "PRACK ")
        .iter()
        .map(|(_, m)| header(m, "RAck").unwrap().to_owned())
        .collect();
    assert_eq!(
        racks,
        [format!("{first} 1 INVITE"), format!("{second} 1 INVITE")]
    );
    assert_eq!(
        progress(&phones[0].events_of(a)),
        [(1010, 180, false), (2010, 183, true)]
    );
}

#[test]
fn lossy_networks_connect_with_reliable_early_media() {
    for seed in 0..20 {
        let net = NetConfig {
            loss: 0.25,
            duplicate: 0.1,
            ..NetConfig::perfect()
        };
        let (mut sim, mut phones) = alice_and_bob(100 + seed, net);
        phones[0].prack = PrackPolicy::Required;
        let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
        run(&mut sim, &mut phones, secs(4.0));
        if phones[1].calls.is_empty() {
            // Every INVITE copy so far was lost: the caller keeps trying (Timer A).
            run(&mut sim, &mut phones, secs(10.0));
        }
        if phones[1].calls.is_empty() {
            continue;
        }
        let now = sim.now;
        phones[1].act(&mut sim, 0, |s| {
            s.ring(now, Some(sdp("bob", 1, "sendrecv")));
            s.accept(Some(sdp("bob", 1, "sendrecv")));
        });
        run(&mut sim, &mut phones, secs(40.0));
        let early: Vec<_> = progress(&phones[0].events_of(a))
            .into_iter()
            .filter(|(_, s, _)| *s == 183)
            .collect();
        if phones[1].session(0).state() == SessionState::Confirmed {
            assert_eq!(early.len(), 1, "seed {seed}: {early:?}");
            assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
        } else {
            // Losing every copy for 32 s is possible but must end both sides cleanly.
            assert_eq!(phones[1].session(0).state(), SessionState::Terminated);
        }
        for p in &phones {
            assert!(p.errors.is_empty(), "seed {seed}: {:?}", p.errors);
        }
    }
}

/// The SDP bodies of the messages node `node` sent starting with `prefix`, `None` when empty.
fn bodies(sim: &util::Sim, node: usize, prefix: &str) -> Vec<Option<String>> {
    sent(sim, node, prefix)
        .iter()
        .map(|(_, m)| {
            let body = m.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            (!body.is_empty()).then(|| body.to_owned())
        })
        .collect()
}

#[test]
fn late_offer_in_a_reliable_183_is_answered_in_the_prack() {
    let mut connected = 0;
    for seed in 0..20 {
        let net = if seed == 0 {
            NetConfig::perfect()
        } else {
            NetConfig {
                loss: 0.2,
                duplicate: 0.1,
                ..NetConfig::perfect()
            }
        };
        let (mut sim, mut phones) = alice_and_bob(200 + seed, net);
        phones[0].prack = PrackPolicy::Required;
        // An INVITE without SDP: Bob's first reliable 18x must offer (RFC 3262 §5).
        let a = phones[0].dial(&mut sim, 1, "bob", None);
        run(&mut sim, &mut phones, secs(4.0));
        if phones[1].calls.is_empty() {
            run(&mut sim, &mut phones, secs(10.0));
        }
        if phones[1].calls.is_empty() {
            continue;
        }
        let now = sim.now;
        phones[1].act(&mut sim, 0, |s| {
            // Without an offer nothing goes; with one, a reliable 183 carrying it.
            s.ring(now, None);
            s.ring(now, Some(sdp("bob", 1, "sendrecv")));
            // Answered at once: the 2xx waits for the PRACK (and its answer).
            s.accept(Some(sdp("bob", 1, "sendrecv")));
        });
        let offered = |phones: &[util::ua::Phone]| -> Vec<f64> {
            phones[0]
                .events_of(a)
                .into_iter()
                .filter_map(|(t, e)| match e {
                    SessionEvent::Progress {
                        status: 183,
                        offer: true,
                        ..
                    } => Some(t),
                    _ => None,
                })
                .collect()
        };
        // Until the offer reaches Alice (the 183 comes again at T1, 2*T1...), 25 s at most.
        let start = sim.elapsed().as_secs_f64();
        let mut t = start;
        while offered(&phones).is_empty() && t < start + 25.0 {
            t += 0.5;
            run(&mut sim, &mut phones, secs(t));
        }
        if offered(&phones).is_empty() {
            continue;
        }
        // Alice takes a second to answer; the 183's copies meanwhile are not PRACKed.
        t += 1.0;
        run(&mut sim, &mut phones, secs(t));
        assert_eq!(offered(&phones).len(), 1, "seed {seed}");
        // Not PRACKed until Alice answers: the 183 comes again meanwhile (ignored).
        assert!(sent(&sim, 0, "PRACK ").is_empty(), "seed {seed}");
        assert_eq!(phones[1].session(0).state(), SessionState::Answered);
        let answer = sdp("alice", 1, "sendrecv");
        phones[0].act(&mut sim, a, |s| s.prack_with_answer(Some(answer.clone())));
        let t = sim.elapsed().as_secs_f64();
        run(&mut sim, &mut phones, secs(t + 40.0));

        let pracks = bodies(&sim, 0, "PRACK ");
        assert!(!pracks.is_empty(), "seed {seed}");
        let text = std::str::from_utf8(&answer).expect("ascii");
        assert!(
            pracks.iter().all(|b| b.as_deref() == Some(text)),
            "seed {seed}: every PRACK copy carries the answer: {pracks:?}"
        );
        if phones[1].session(0).state() == SessionState::Terminated {
            // Every PRACK copy lost for 32 s: ended cleanly (500 to the INVITE).
            continue;
        }
        let answers: Vec<_> = phones[1]
            .events_of(0)
            .into_iter()
            .filter_map(|(_, e)| match e {
                SessionEvent::PrackAnswer { body } => Some(body),
                _ => None,
            })
            .collect();
        assert_eq!(answers, [Some(answer.clone())], "seed {seed}");
        assert_eq!(phones[1].session(0).state(), SessionState::Confirmed);
        assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
        // The 2xx repeats Bob's SDP and offers nothing: Alice's ACK carries no SDP.
        assert!(
            phones[0]
                .events_of(a)
                .iter()
                .any(|(_, e)| matches!(e, SessionEvent::Answered { offer: false, .. })),
            "seed {seed}"
        );
        assert!(bodies(&sim, 0, "ACK ").iter().all(Option::is_none));
        for p in &phones {
            assert!(p.errors.is_empty(), "seed {seed}: {:?}", p.errors);
        }
        connected += 1;
    }
    eprintln!("{connected} of 20 calls connected");
    assert!(connected >= 15, "{connected} of 20");
}

#[test]
fn prack_with_an_offer_gets_the_answer_in_its_200() {
    let mut connected = 0;
    for seed in 0..20 {
        let net = if seed == 0 {
            NetConfig::perfect()
        } else {
            NetConfig {
                loss: 0.2,
                duplicate: 0.1,
                ..NetConfig::perfect()
            }
        };
        let (mut sim, mut phones) = alice_and_bob(300 + seed, net);
        phones[0].prack = PrackPolicy::Required;
        // Bob answers every offer at once, in the direction RFC 3264 asks.
        phones[1].answer_reinvites = Some(util::ua::answer_direction);
        let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
        // The PRACK of the 183 that answers the INVITE offers anew (RFC 3262 §5): hold.
        phones[0]
            .act(&mut sim, a, |s| {
                s.offer_in_prack(sdp("alice", 2, "sendonly"))
            })
            .expect("early enough");
        run(&mut sim, &mut phones, secs(4.0));
        if phones[1].calls.is_empty() {
            run(&mut sim, &mut phones, secs(10.0));
        }
        if phones[1].calls.is_empty() {
            continue;
        }
        let now = sim.now;
        phones[1].act(&mut sim, 0, |s| {
            s.ring(now, Some(sdp("bob", 1, "sendrecv")));
            s.accept(Some(sdp("bob", 1, "sendrecv")));
        });
        let t = sim.elapsed().as_secs_f64();
        run(&mut sim, &mut phones, secs(t + 40.0));
        if phones[1].session(0).state() != SessionState::Confirmed {
            assert_eq!(phones[1].session(0).state(), SessionState::Terminated);
            continue;
        }
        connected += 1;
        let pracks = bodies(&sim, 0, "PRACK ");
        assert!(
            pracks
                .iter()
                .all(|b| b.as_deref().is_some_and(|b| b.contains("a=sendonly"))),
            "seed {seed}: {pracks:?}"
        );
        let offers: Vec<_> = phones[1]
            .events_of(0)
            .into_iter()
            .filter(|(_, e)| matches!(e, SessionEvent::PrackOffer { .. }))
            .collect();
        assert_eq!(offers.len(), 1, "seed {seed}: {offers:?}");
        let answers: Vec<_> = phones[0]
            .events_of(a)
            .into_iter()
            .filter_map(|(_, e)| match e {
                SessionEvent::PrackAnswer { body } => Some(body),
                _ => None,
            })
            .collect();
        assert_eq!(answers.len(), 1, "seed {seed}");
        assert_eq!(
            answers[0].as_deref().and_then(util::ua::direction),
            Some("recvonly"),
            "seed {seed}"
        );
        // The INVITE's 200 went only after the PRACK's answer.
        let prack_ok = sent(&sim, 1, "SIP/2.0 200")
            .iter()
            .find(|(_, m)| header(m, "CSeq").is_some_and(|c| c.ends_with("PRACK")))
            .map(|(t, _)| *t)
            .expect("a 200 to the PRACK");
        let invite_ok = sent(&sim, 1, "SIP/2.0 200")
            .iter()
            .find(|(_, m)| header(m, "CSeq") == Some("1 INVITE"))
            .map(|(t, _)| *t)
            .expect("a 200 to the INVITE");
        assert!(invite_ok >= prack_ok, "seed {seed}");
        assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
        for p in &phones {
            assert!(p.errors.is_empty(), "seed {seed}: {:?}", p.errors);
        }
    }
    assert!(connected >= 15, "{connected} of 20");
}

#[test]
fn late_offer_requiring_100rel_gets_the_offer_in_the_2xx_and_answers_in_the_ack() {
    let (mut sim, mut phones) = alice_and_bob(7, NetConfig::perfect());
    phones[0].prack = PrackPolicy::Required;
    let a = phones[0].dial(&mut sim, 1, "bob", None);
    run(&mut sim, &mut phones, secs(1.0));
    let now = sim.now;
    phones[1].act(&mut sim, 0, |s| {
        // No offer to ring with: no reliable 180 (RFC 3262 §5); the 2xx offers.
        s.ring(now, None);
        s.accept(Some(sdp("bob", 1, "sendrecv")));
    });
    run(&mut sim, &mut phones, secs(2.0));
    assert!(sent(&sim, 1, "SIP/2.0 180").is_empty());
    assert!(
        phones[0]
            .events_of(a)
            .iter()
            .any(|(_, e)| matches!(e, SessionEvent::Answered { offer: true, .. }))
    );
    let answer = sdp("alice", 1, "sendrecv");
    phones[0].act(&mut sim, a, |s| s.ack_with_answer(Some(answer.clone())));
    run(&mut sim, &mut phones, secs(3.0));
    assert!(phones[1].events_of(0).iter().any(|(_, e)| *e
        == SessionEvent::Confirmed {
            body: Some(answer.clone())
        }));
    assert_eq!(phones[1].session(0).state(), SessionState::Confirmed);
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
}
