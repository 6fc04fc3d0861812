//! A lost ACK (RFC 3261 §13.3.1.4): the UAS core retransmits its 2xx at T1, 2*T1 ... T2
//! until the ACK comes, the UAC ACKs every copy, and the call gets confirmed; when no ACK
//! ever arrives the UAS gives up after 64*T1 and ends the call with a BYE.

mod util;

use std::time::Duration;

use tincan_sip::dialog::{EndReason, SessionEvent, SessionState};
use util::NetConfig;
use util::ua::{OnInvite, alice_and_bob, connected, header, run, sdp, secs, sent};

/// The 2xx retransmission schedule from the first send, in ms: T1 doubling up to T2.
const SCHEDULE_MS: [u64; 11] = [
    0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
];

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

/// Times (ms) of the messages node `node` sent starting with `prefix` and with this CSeq.
fn times_ms(sim: &util::Sim, node: usize, prefix: &str, cseq: &str) -> Vec<u64> {
    sent(sim, node, prefix)
        .iter()
        .filter(|(_, m)| header(m, "CSeq") == Some(cseq))
        .map(|(t, _)| ms(*t))
        .collect()
}

fn deliveries(sim: &util::Sim, edge: &str) -> usize {
    sim.trace.iter().filter(|l| l.contains(edge)).count()
}

#[test]
fn lossy_udp_call_gets_confirmed() {
    let loss = NetConfig {
        loss: 0.3,
        ..NetConfig::perfect()
    };
    // Seed 55 loses two INVITEs, two ACKs and five copies of the 2xx.
    let (mut sim, mut phones) = alice_and_bob(55, loss);
    let (a, b) = connected(&mut sim, &mut phones, secs(40.0));
    assert_eq!(deliveries(&sim, "0->1 lost INVITE"), 2);
    assert_eq!(deliveries(&sim, "0->1 lost ACK"), 2);
    assert_eq!(deliveries(&sim, "1->0 lost SIP/2.0 200"), 5);

    let oks = times_ms(&sim, 1, "SIP/2.0 200", "1 INVITE");
    let acks = times_ms(&sim, 0, "ACK", "1 ACK");
    assert!(
        oks.len() >= 2 && acks.len() >= 2,
        "the seed must lose an ACK: {oks:?} {acks:?}"
    );
    // The 2xx went out on the RFC schedule from the first send, and stopped with the ACK.
    let first = oks[0];
    let offsets: Vec<u64> = oks.iter().map(|t| t - first).collect();
    assert_eq!(offsets, SCHEDULE_MS[..oks.len()], "{:#?}", sim.trace);
    let confirmed: Vec<f64> = phones[1]
        .events_of(b)
        .into_iter()
        .filter(|(_, e)| matches!(e, SessionEvent::Confirmed { .. }))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(confirmed.len(), 1);
    let confirmed = ms(confirmed[0]);
    assert!(*oks.last().unwrap() < confirmed);
    assert!(
        confirmed <= first + SCHEDULE_MS[oks.len()],
        "no 2xx after the ACK"
    );
    // Every 2xx that reached Alice was ACKed, each at once; the call was answered once.
    assert_eq!(acks.len(), deliveries(&sim, "1->0 SIP/2.0 200"));
    let delivered: Vec<u64> = sim
        .trace
        .iter()
        .filter(|l| l.contains("1->0 SIP/2.0 200"))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .map(|t| ms(parse_duration(&t).as_secs_f64()))
        .collect();
    assert_eq!(acks, delivered);
    let answered = phones[0]
        .events_of(a)
        .iter()
        .filter(|(_, e)| matches!(e, SessionEvent::Answered { .. }))
        .count();
    assert_eq!(answered, 1);
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    assert!(phones[0].errors.is_empty() && phones[1].errors.is_empty());
}

/// Reads a `Debug`-printed Duration of the trace (`1.51s`, `20ms`).
fn parse_duration(s: &str) -> Duration {
    if let Some(v) = s.strip_suffix("ms") {
        Duration::from_secs_f64(v.parse::<f64>().unwrap() / 1000.0)
    } else if let Some(v) = s.strip_suffix("µs") {
        Duration::from_secs_f64(v.parse::<f64>().unwrap() / 1e6)
    } else if let Some(v) = s.strip_suffix("ns") {
        Duration::from_secs_f64(v.parse::<f64>().unwrap() / 1e9)
    } else {
        Duration::from_secs_f64(s.strip_suffix('s').unwrap().parse().unwrap())
    }
}

#[test]
fn ack_never_arrives_ends_with_bye_after_64_t1() {
    let (mut sim, mut phones) = alice_and_bob(12, NetConfig::perfect());
    sim.drop_if = Some(Box::new(|from, _, line| {
        from == 0 && line.starts_with("ACK ")
    }));
    phones[1].on_invite = OnInvite::Accept(Some(sdp("bob", 1, "sendrecv")));
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    run(&mut sim, &mut phones, secs(70.0));

    // Bob answered at 10 ms and resent the 2xx until Timer L, 64*T1 later.
    let oks = times_ms(&sim, 1, "SIP/2.0 200", "1 INVITE");
    let expected: Vec<u64> = SCHEDULE_MS.iter().map(|t| t + 10).collect();
    assert_eq!(oks, expected);
    // Alice ACKed every copy (the network lost them all) and reported one answer.
    let acks = times_ms(&sim, 0, "ACK", "1 ACK");
    let expected: Vec<u64> = SCHEDULE_MS.iter().map(|t| t + 20).collect();
    assert_eq!(acks, expected);
    assert!(matches!(
        &phones[0].events_of(a)[..],
        [(_, SessionEvent::Progress { .. }), (t, SessionEvent::Answered { .. }), ..] if ms(*t) == 20
    ));

    // At 32.01 s Bob gives up: AckTimeout and a BYE (§13.3.1.4).
    assert_eq!(phones[1].ends(0), [(32.01, EndReason::AckTimeout)]);
    assert!(
        !phones[1]
            .events_of(0)
            .iter()
            .any(|(_, e)| matches!(e, SessionEvent::Confirmed { .. }))
    );
    let byes = sent(&sim, 1, "BYE");
    assert_eq!(byes.len(), 1, "Alice answers the BYE at once");
    assert_eq!(ms(byes[0].0), 32_010);
    assert_eq!(header(&byes[0].1, "CSeq"), Some("1 BYE"));
    assert!(
        byes[0]
            .1
            .starts_with("BYE sip:alice@127.0.0.1:5060 SIP/2.0\r\n")
    );
    assert_eq!(phones[0].ends(a), [(32.02, EndReason::RemoteHangup)]);
    assert_eq!(times_ms(&sim, 0, "SIP/2.0 200", "1 BYE"), [32_020]);

    assert_eq!(sim.nodes[0].ep.transaction_count(), 0);
    assert_eq!(sim.nodes[1].ep.transaction_count(), 0);
    assert!(phones[0].errors.is_empty() && phones[1].errors.is_empty());
}

#[test]
fn reinvite_ack_never_arrives_ends_with_bye_after_64_t1() {
    let (mut sim, mut phones) = alice_and_bob(13, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    // From now on every ACK of Alice's is lost: those of her re-INVITE (the call's own ACK
    // got through while connecting).
    sim.drop_if = Some(Box::new(|from, _, line| {
        from == 0 && line.starts_with("ACK ")
    }));
    phones[1].answer_reinvites = Some(util::ua::answer_direction);
    phones[0]
        .act(&mut sim, a, |s| {
            s.reinvite(Some(sdp("alice", 2, "sendonly")))
        })
        .unwrap();
    run(&mut sim, &mut phones, secs(40.0));

    // Bob answered at 1.01 s and resent the 2xx on the §13.3.1.4 schedule until 64*T1
    // (§14.2: a re-INVITE's 2xx is retransmitted like the INVITE's).
    let oks = times_ms(&sim, 1, "SIP/2.0 200", "2 INVITE");
    let expected: Vec<u64> = SCHEDULE_MS.iter().map(|t| t + 1010).collect();
    assert_eq!(oks, expected);
    // Then Bob gives up on the call: a BYE, and the call ends with AckTimeout.
    assert_eq!(phones[1].ends(b), [(33.01, EndReason::AckTimeout)]);
    let byes = sent(&sim, 1, "BYE");
    assert_eq!(byes.len(), 1);
    assert_eq!(ms(byes[0].0), 33_010);
    assert_eq!(phones[0].ends(a), [(33.02, EndReason::RemoteHangup)]);
    assert!(phones[0].errors.is_empty() && phones[1].errors.is_empty());
}
