//! An answered incoming call starts its media session when the ACK arrives, not with the
//! 2xx (`Answered` still comes with the 2xx): an INVITE that is never acknowledged sends no
//! RTP to the `c=` address it named and holds no running session, only its bound ports, until
//! Timer H (32 s) ends it.
//!
//! Issue 19, findings 5 and 8: 5,000 unacknowledged INVITEs cost 453 MB, and each sent 32 s
//! of media to its `c=` address.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallId, CallParams, EndReason, MediaCommand};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

/// The media commands a phone gave for a call: (time, name).
fn media_of(sim: &Sim, node: usize, call: CallId) -> Vec<(Duration, &'static str)> {
    sim.phone(node)
        .media
        .iter()
        .filter_map(|(t, m)| {
            let (c, name) = match m {
                MediaCommand::Bind { call, .. } => (call, "bind"),
                MediaCommand::Start { call, .. } => (call, "start"),
                MediaCommand::Stop { call } => (call, "stop"),
                MediaCommand::SetRemote { call, .. } => (call, "set-remote"),
                MediaCommand::SetDirection { call, .. } => (call, "set-direction"),
                MediaCommand::Reconfigure { call, .. } => (call, "reconfigure"),
                MediaCommand::SendDtmf { call, .. } => (call, "dtmf"),
                _ => return None,
            };
            (*c == call).then_some((*t, name))
        })
        .collect()
}

/// Alice calls Bob; returns Bob's call, offered and not yet answered.
fn incoming(sim: &mut Sim, alice: usize, bob: usize) -> CallId {
    let uri = format!("sip:bob@{BOB}");
    sim.act(alice, |c, now| c.call(now, &uri, CallParams::default()))
        .expect("a callable uri");
    assert!(
        sim.run_until_with(Duration::from_secs(1), |s| !s.incoming(bob).is_empty()),
        "the INVITE reached bob"
    );
    sim.incoming(bob)[0]
}

#[test]
fn an_invite_never_acked_starts_no_media_and_frees_its_ports_at_timer_h() {
    let mut sim = Sim::new(11, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let b = incoming(&mut sim, alice, bob);
    let answered_at = sim.elapsed();
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    // The caller vanishes: Bob's 200 and its retransmissions reach nobody, no ACK comes.
    sim.nodes[alice].online = false;
    sim.run_for(Duration::from_secs(40));

    assert!(
        sim.sent(bob, "SIP/2.0 200").len() > 1,
        "bob sent his 200 again and again (Timer G)"
    );
    let (ended_at, reason) = sim.ended(bob, b).expect("bob's call ended");
    assert_eq!(reason, EndReason::AckTimeout);
    assert_eq!(
        ended_at - answered_at,
        Duration::from_secs(32),
        "Timer H, 64*T1"
    );
    let media = media_of(&sim, bob, b);
    let names: Vec<&str> = media.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        names,
        vec!["bind", "stop"],
        "ports bound for the answer and freed at Timer H, no media session in between"
    );
    assert_eq!(
        media[1].0, ended_at,
        "the ports are freed when the call ends"
    );
    assert!(sim.answered(bob, b), "bob answered (his 200 went out)");
    assert_eq!(sim.core(bob).calls().count(), 0);
}

#[test]
fn an_answered_call_starts_its_media_when_the_ack_arrives() {
    let mut sim = Sim::new(12, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let b = incoming(&mut sim, alice, bob);
    let accepted_at = sim.elapsed();
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(Duration::from_secs(1));

    let acks = sim.sent(alice, "ACK");
    assert_eq!(acks.len(), 1, "alice acknowledged the 200 once");
    let ack_arrived = acks[0].0 + NetConfig::perfect().delay;
    let starts: Vec<Duration> = media_of(&sim, bob, b)
        .into_iter()
        .filter(|(_, n)| *n == "start")
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        starts,
        vec![ack_arrived],
        "bob's media starts when the ACK arrives (the 200 went at {accepted_at:?})"
    );
    let answered: Vec<Duration> = sim
        .call_events(bob)
        .into_iter()
        .filter(|(_, c, e)| *c == b && matches!(e, CallEvent::Answered { .. }))
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(
        answered,
        vec![accepted_at],
        "bob's call is answered with his 200 (ports bound at once)"
    );
}
