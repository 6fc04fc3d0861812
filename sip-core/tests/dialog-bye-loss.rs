//! BYE over a lossy UDP network (RFC 3261 §15, §17.1.2): the BYE is retransmitted by Timer
//! E until its 200 arrives; the callee ends once, its server transaction answers every
//! retransmission with the same 200, and the caller takes one final answer.

mod util;

use tincan_sip::dialog::{EndReason, SessionEvent};
use tincan_sip::endpoint::Event;
use util::NetConfig;
use util::ua::{alice_and_bob, connected, header, run, secs, sent};

/// Timer E from the first send, in ms (non-INVITE: T1 doubling up to T2).
const TIMER_E_MS: [u64; 11] = [
    0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
];

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

fn lines(sim: &util::Sim, needle: &str) -> usize {
    sim.trace.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn lossy_bye_is_retransmitted_and_answered_once() {
    let (mut sim, mut phones) = alice_and_bob(SEED, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    sim.net.loss = 0.3;
    phones[0].act(&mut sim, a, |s| s.hangup());
    run(&mut sim, &mut phones, secs(60.0));

    // Seed 347 loses the first BYE and the 200s to the next two: four BYEs on Timer E.
    let first_bye = sim.trace.iter().find(|l| l.contains("BYE")).unwrap();
    assert!(first_bye.contains("0->1 lost BYE"), "{:#?}", sim.trace);
    assert_eq!(lines(&sim, "0->1 lost BYE"), 1, "{:#?}", sim.trace);
    assert_eq!(lines(&sim, "1->0 lost SIP/2.0 200"), 2, "{:#?}", sim.trace);
    let byes: Vec<u64> = sent(&sim, 0, "BYE")
        .iter()
        .map(|(t, _)| ms(*t) - 1000)
        .collect();
    assert_eq!(byes, TIMER_E_MS[..4]);
    for (_, bye) in sent(&sim, 0, "BYE") {
        assert_eq!(header(&bye, "CSeq"), Some("2 BYE"));
    }
    // Bob answered every BYE that reached him (the first by the session, the others by his
    // server transaction) and ended once, at the first.
    let delivered = lines(&sim, "0->1 BYE");
    let oks: Vec<u64> = sent(&sim, 1, "SIP/2.0 200")
        .iter()
        .filter(|(_, m)| header(m, "CSeq") == Some("2 BYE"))
        .map(|(t, _)| ms(*t))
        .collect();
    assert_eq!(delivered, 3);
    assert_eq!(oks, [1510, 2510, 4510]);
    assert_eq!(sim.nodes[1].ep.stats().retransmissions_absorbed, 2);
    assert_eq!(phones[1].ends(b), [(1.51, EndReason::RemoteHangup)]);
    // Alice ended when she hung up; the 200s that came back changed nothing.
    assert_eq!(phones[0].ends(a), [(1.0, EndReason::LocalHangup)]);
    assert_eq!(
        lines(&sim, "1->0 SIP/2.0 200"),
        2,
        "the INVITE's 200 and one BYE 200"
    );
    assert!(
        !phones[0]
            .unclaimed
            .iter()
            .any(|(_, e)| matches!(e, Event::Timeout { .. }))
    );
    assert_eq!(
        phones[0]
            .events_of(a)
            .iter()
            .filter(|(_, e)| matches!(e, SessionEvent::Ended(_)))
            .count(),
        1
    );
    assert_eq!(sim.nodes[0].ep.transaction_count(), 0);
    assert_eq!(sim.nodes[1].ep.transaction_count(), 0);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

const SEED: u64 = 347;

#[test]
fn unanswered_bye_times_out_without_a_second_end() {
    let (mut sim, mut phones) = alice_and_bob(2, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    sim.nodes[0].online = false;
    phones[0].act(&mut sim, a, |s| s.hangup());
    run(&mut sim, &mut phones, secs(60.0));
    let byes: Vec<u64> = sent(&sim, 0, "BYE")
        .iter()
        .map(|(t, _)| ms(*t) - 1000)
        .collect();
    assert_eq!(byes, TIMER_E_MS);
    // Timer F at 33 s: the BYE transaction gives up; the call had ended at the hangup.
    assert_eq!(phones[0].ends(a), [(1.0, EndReason::LocalHangup)]);
    assert!(phones[1].ends(b).is_empty(), "Bob never heard of it");
    assert_eq!(sim.nodes[0].ep.transaction_count(), 0);
}
