//! The phone core ([`PhoneCore`]) in virtual time: calls between phones, directly and
//! through a digest-challenging proxy, over a lossy network and past a black-holed proxy.
//!
//! [`PhoneCore`]: tincan::phone::PhoneCore

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, P1, P2, Sim, account};
use tincan::phone::{AccountEvent, CallEvent, CallId, CallParams, EndReason, PhoneEvent};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn call(sim: &mut Sim, node: usize, uri: &str) -> CallId {
    sim.act(node, |c, now| c.call(now, uri, CallParams::default()))
        .expect("a callable uri")
}

/// Waits for the one incoming call of `node`.
fn wait_incoming(sim: &mut Sim, node: usize, limit: f64) -> CallId {
    let limit = sim.elapsed() + secs(limit);
    assert!(
        sim.run_until_with(limit, |s| !s.incoming(node).is_empty()),
        "no incoming call at node {node}; trace:\n{}",
        sim.trace.join("\n")
    );
    let incoming = sim.incoming(node);
    assert_eq!(incoming.len(), 1, "one incoming call");
    incoming[0]
}

fn registered(sim: &Sim, node: usize) -> usize {
    sim.phone(node)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                PhoneEvent::Account {
                    event: AccountEvent::Registered { .. },
                    ..
                }
            )
        })
        .count()
}

fn holds(sim: &Sim, node: usize) -> Vec<(bool, bool)> {
    sim.call_events(node)
        .into_iter()
        .filter_map(|(_, _, e)| match e {
            CallEvent::Hold { by_peer } => Some((true, by_peer)),
            CallEvent::Resumed { by_peer } => Some((false, by_peer)),
            _ => None,
        })
        .collect()
}

/// Calling events of a call: (time, target address).
fn calling(sim: &Sim, node: usize, call: CallId) -> Vec<(Duration, std::net::SocketAddr)> {
    sim.call_events(node)
        .into_iter()
        .filter_map(|(t, c, e)| match e {
            CallEvent::Calling { target, .. } if c == call => Some((t, target.addr)),
            _ => None,
        })
        .collect()
}

#[test]
fn direct_call_hold_resume_hangup() {
    let mut sim = Sim::new(1, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let a = call(&mut sim, alice, &format!("sip:bob@{BOB}"));
    let b = wait_incoming(&mut sim, bob, 1.0);
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a), "alice answered");
    assert!(sim.answered(bob, b), "bob answered");

    sim.act(alice, |c, now| c.hold(now, a)).expect("hold");
    sim.run_for(secs(1.0));
    sim.act(alice, |c, now| c.resume(now, a)).expect("resume");
    sim.run_for(secs(1.0));
    assert_eq!(holds(&sim, alice), vec![(true, false), (false, false)]);
    assert_eq!(holds(&sim, bob), vec![(true, true), (false, true)]);

    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(1.0));
    assert_eq!(sim.ended(alice, a).map(|e| e.1), Some(EndReason::LocalHangup));
    assert_eq!(sim.ended(bob, b).map(|e| e.1), Some(EndReason::RemoteHangup));
    assert_eq!(sim.dns_queries_asked(alice), 0);
    assert_eq!(sim.dns_queries_asked(bob), 0);
    assert_eq!(sim.core(alice).calls().count(), 0);
    assert_eq!(sim.core(bob).calls().count(), 0);
    sim.run_for(secs(40.0));
    assert!(sim.core(alice).is_idle(), "alice idle");
    assert!(sim.core(bob).is_idle(), "bob idle");
}
