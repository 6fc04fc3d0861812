//! Role conflicts (RFC 8445 §7.3.1.1, §7.2.5.1): when both agents think they control (or
//! both that they are controlled), the tie-breakers decide, through a 487 (Role Conflict)
//! answer or a switch on receipt; the agent with the larger tie-breaker ends controlling and
//! both select the same pair.

#[path = "ice-util/mod.rs"]
mod util;

use std::time::Duration;

use tincan_media::ice::{Event, Role};
use util::Sim;

fn run(role: Role, seed: u64) -> Sim {
    let mut sim = Sim::new(seed, 0.05);
    sim.add_peer(
        "198.51.100.10:5000",
        role,
        0xF000_0000_0000_0007,
        seed * 2 + 1,
    );
    sim.add_peer(
        "198.51.100.20:6000",
        role,
        0x0000_0000_0000_0003,
        seed * 2 + 2,
    );
    sim.exchange();
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::both_selected),
        "seed {seed}: no pair selected"
    );
    let (_, a_local, a_remote) = sim.peers[0].selected_event().unwrap();
    let (_, b_local, b_remote) = sim.peers[1].selected_event().unwrap();
    assert_eq!((a_local, a_remote), (b_remote, b_local), "seed {seed}");
    // The larger tie-breaker controls.
    assert_eq!(sim.peers[0].agent.role(), Role::Controlling, "seed {seed}");
    assert_eq!(sim.peers[1].agent.role(), Role::Controlled, "seed {seed}");
    sim
}

#[test]
fn both_controlling_the_smaller_tie_breaker_yields() {
    for seed in 0..10 {
        let sim = run(Role::Controlling, seed);
        assert!(sim.peers[1].has(|e| *e == Event::RoleChanged(Role::Controlled)));
        assert!(!sim.peers[0].has(|e| matches!(e, Event::RoleChanged(_))));
    }
}

#[test]
fn both_controlled_the_larger_tie_breaker_takes_control() {
    for seed in 0..10 {
        let sim = run(Role::Controlled, 50 + seed);
        assert!(sim.peers[0].has(|e| *e == Event::RoleChanged(Role::Controlling)));
        assert!(!sim.peers[1].has(|e| matches!(e, Event::RoleChanged(_))));
    }
}

#[test]
fn the_conflict_is_answered_with_487() {
    // Both controlling, no loss: whichever check arrives first at the larger tie-breaker's
    // agent is answered 487 (RFC 8445 §7.3.1.1), unless the smaller one already yielded.
    let mut sim = Sim::new(1, 0.0);
    sim.add_peer("198.51.100.10:5000", Role::Controlling, 9, 1);
    sim.add_peer("198.51.100.20:6000", Role::Controlling, 1, 2);
    sim.exchange();
    assert!(sim.run_until(Duration::from_secs(10), Sim::both_selected));
    let conflicts = sim
        .delivered
        .iter()
        .filter_map(|d| tincan_media::ice::stun::Message::parse(&d.payload).ok())
        .filter(|m| m.error_code == Some(487))
        .count();
    assert!(conflicts >= 1, "a 487 answer was sent");
    assert_eq!(sim.peers[1].agent.role(), Role::Controlled);
}
