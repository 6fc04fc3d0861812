//! Reliable provisional responses (RFC 3262) in the phone core, in virtual time on the seeded
//! Sim network: a caller configured with `prack = "required"` sends `Require: 100rel`; the
//! callee's phone rings with a reliable 180 (RSeq, `Require: 100rel`) instead of refusing
//! with 420, the caller PRACKs it once, and the call connects when the callee answers late;
//! on a lossy network the calls still connect.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallParams, PhoneConfig};
use tincan_sip::dialog::PrackPolicy;
use tincan_sip::message::{HeaderName, Message};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn phone(sim: &mut Sim, addr: &str, user: &str, prack: PrackPolicy) -> usize {
    let config = PhoneConfig {
        user: user.to_owned(),
        prack,
        ..PhoneConfig::default()
    };
    sim.add_phone_with(addr, config)
}

/// The whole messages a node sent whose first line starts with `prefix`.
fn messages(sim: &Sim, node: usize, prefix: &str) -> Vec<(Duration, Message)> {
    sim.nodes[node]
        .sent_messages
        .iter()
        .filter(|(_, _, b)| b.starts_with(prefix.as_bytes()))
        .map(|(t, _, b)| {
            (
                *t,
                Message::parse(b.clone()).expect("our own messages parse"),
            )
        })
        .collect()
}

#[test]
fn a_caller_requiring_100rel_gets_a_reliable_180_and_the_late_answer_connects() {
    let mut sim = Sim::new(3, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Required);
    let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Supported);
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let invite = &messages(&sim, alice, "INVITE")[0].1;
    assert_eq!(invite.header(HeaderName::Require), Some("100rel"));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    sim.run_for(secs(3.0));

    assert!(messages(&sim, bob, "SIP/2.0 420").is_empty());
    let ringing = messages(&sim, bob, "SIP/2.0 180");
    assert_eq!(ringing.len(), 1, "PRACKed before any copy");
    assert_eq!(ringing[0].1.header(HeaderName::Require), Some("100rel"));
    let rseq = ringing[0].1.header(HeaderName::RSeq).expect("an RSeq");
    let pracks = messages(&sim, alice, "PRACK");
    assert_eq!(pracks.len(), 1);
    assert_eq!(
        pracks[0].1.header(HeaderName::RAck),
        Some(format!("{rseq} 1 INVITE").as_str())
    );
    assert!(
        sim.call_events(alice)
            .iter()
            .any(|(_, c, e)| *c == a && matches!(e, CallEvent::Progress { status: 180, .. }))
    );

    // Answered three seconds later: the call comes up.
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(2.0));
    assert!(sim.answered(alice, a) && sim.answered(bob, b));
    assert_eq!(messages(&sim, bob, "SIP/2.0 180").len(), 1);
}

#[test]
fn reliable_ringing_connects_over_a_lossy_network() {
    let mut connected = 0;
    for seed in 0..8 {
        let mut sim = Sim::new(40 + seed, NetConfig::lossy(0.2));
        let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Required);
        let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Required);
        let a = sim
            .act(alice, |c, now| {
                c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
            })
            .expect("a callable uri");
        let limit = sim.elapsed() + secs(20.0);
        if !sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()) {
            continue;
        }
        let b = sim.incoming(bob)[0];
        sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
        sim.run_for(secs(2.0));
        let _ = sim.act(bob, |c, now| c.accept(now, b));
        sim.run_for(secs(40.0));
        if sim.answered(alice, a) && sim.answered(bob, b) {
            connected += 1;
        } else {
            // Every copy of something lost for 32 s: both sides must have ended cleanly.
            assert!(
                sim.ended(bob, b).is_some(),
                "seed {seed}: {:?}",
                sim.call_events(bob)
            );
        }
    }
    assert!(connected >= 6, "{connected} of 8 calls connected");
}
