//! Mute in the phone core, in virtual time: a call muted before it is answered starts its
//! media session muted; muting a running call tells its session at once; hold and resume
//! leave the mute alone; `CallEvent::Muted` says each change once; an ended call cannot be
//! muted.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallId, CallParams, MediaCommand};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

/// The media commands a phone gave for a call, by name (`set-mute true`...).
fn media_of(sim: &Sim, node: usize, call: CallId) -> Vec<String> {
    sim.phone(node)
        .media
        .iter()
        .filter_map(|(_, m)| {
            let (c, name) = match m {
                MediaCommand::Start { call, .. } => (call, "start".to_owned()),
                MediaCommand::SetMute { call, muted } => (call, format!("set-mute {muted}")),
                MediaCommand::SetDirection { call, .. } => (call, "set-direction".to_owned()),
                _ => return None,
            };
            (*c == call).then_some(name)
        })
        .collect()
}

/// The `Muted` events of a call.
fn muted_events(sim: &Sim, node: usize, call: CallId) -> Vec<bool> {
    sim.call_events(node)
        .into_iter()
        .filter_map(|(_, c, e)| match e {
            CallEvent::Muted { muted } if c == call => Some(muted),
            _ => None,
        })
        .collect()
}

#[test]
fn mute_before_the_answer_starts_the_media_muted_and_survives_hold() {
    let mut sim = Sim::new(5, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let uri = format!("sip:bob@{BOB}");
    let a = sim
        .act(alice, |c, now| c.call(now, &uri, CallParams::default()))
        .expect("a callable uri");
    // Muted while it rings: nothing to tell a session yet.
    sim.act(alice, |c, now| c.mute(now, a, true))
        .expect("a ringing call can be muted");
    assert!(
        sim.run_until_with(Duration::from_secs(1), |s| !s.incoming(bob).is_empty()),
        "the INVITE reached bob"
    );
    assert!(media_of(&sim, alice, a).is_empty());
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    assert!(sim.run_until_with(Duration::from_secs(2), |s| s.answered(alice, a)));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(media_of(&sim, alice, a), ["start", "set-mute true"]);

    // Hold and resume change the direction only.
    sim.act(alice, |c, now| c.hold(now, a)).expect("held");
    sim.run_for(Duration::from_secs(1));
    sim.act(alice, |c, now| c.resume(now, a)).expect("resumed");
    sim.run_for(Duration::from_secs(1));
    let media = media_of(&sim, alice, a);
    assert!(
        media
            .iter()
            .filter(|m| m.starts_with("set-mute"))
            .eq(["set-mute true"].iter()),
        "{media:?}"
    );

    // Unmuted once, however many times asked.
    sim.act(alice, |c, now| c.mute(now, a, false)).unwrap();
    sim.act(alice, |c, now| c.mute(now, a, false)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        media_of(&sim, alice, a).last().map(String::as_str),
        Some("set-mute false")
    );
    assert_eq!(muted_events(&sim, alice, a), [true, false]);
    // Bob's side never heard of it.
    assert!(muted_events(&sim, bob, b).is_empty());

    // An ended call is no call.
    sim.act(alice, |c, now| c.hangup(now, a)).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert!(sim.ended(alice, a).is_some());
    assert!(sim.act(alice, |c, now| c.mute(now, a, true)).is_err());
}
