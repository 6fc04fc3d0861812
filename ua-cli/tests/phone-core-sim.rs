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
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    assert_eq!(sim.dns_queries_asked(alice), 0);
    assert_eq!(sim.dns_queries_asked(bob), 0);
    assert_eq!(sim.core(alice).calls().count(), 0);
    assert_eq!(sim.core(bob).calls().count(), 0);
    sim.run_for(secs(40.0));
    assert!(sim.core(alice).is_idle(), "alice idle");
    assert!(sim.core(bob).is_idle(), "bob idle");
}

#[test]
fn register_with_digest_then_call_through_the_proxy_hold_and_hang_up() {
    let mut sim = Sim::new(2, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let proxy = sim.add_proxy(P1);
    sim.add_account(alice, account("alice", &[P1]));
    sim.add_account(bob, account("bob", &[P1]));
    sim.run_for(secs(2.0));
    assert_eq!(registered(&sim, alice), 1, "alice registered");
    assert_eq!(registered(&sim, bob), 1, "bob registered");

    let a = call(&mut sim, alice, "bob");
    let b = wait_incoming(&mut sim, bob, 2.0);
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a), "alice answered");
    assert!(sim.answered(bob, b), "bob answered");
    // One INVITE challenged (407), one forwarded.
    let invites = sim
        .proxy(proxy)
        .received
        .iter()
        .filter(|(_, m)| m == "INVITE")
        .count();
    assert_eq!(invites, 2, "the INVITE and its retry with credentials");

    // A re-INVITE through the proxy (it record-routes): hold, then resume.
    sim.act(alice, |c, now| c.hold(now, a)).expect("hold");
    sim.run_for(secs(1.0));
    sim.act(alice, |c, now| c.resume(now, a)).expect("resume");
    sim.run_for(secs(1.0));
    assert_eq!(holds(&sim, alice), vec![(true, false), (false, false)]);
    assert_eq!(holds(&sim, bob), vec![(true, true), (false, true)]);

    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(1.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    assert_eq!(sim.core(alice).calls().count(), 0);
    assert_eq!(sim.core(bob).calls().count(), 0);

    // Shutting down removes the bindings.
    sim.act(alice, |c, now| c.shutdown(now));
    sim.act(bob, |c, now| c.shutdown(now));
    sim.run_for(secs(40.0));
    for node in [alice, bob] {
        let unregistered = sim.phone(node).events.iter().any(|(_, e)| {
            matches!(
                e,
                PhoneEvent::Account {
                    event: AccountEvent::Unregistered { .. },
                    ..
                }
            )
        });
        assert!(unregistered, "node {node} unregistered");
        assert!(sim.core(node).is_idle(), "node {node} idle");
    }
    assert!(
        sim.locations.is_empty(),
        "bindings left: {:?}",
        sim.locations
    );
}

#[test]
fn caller_cancels_a_ringing_call_and_callee_rejects_the_next() {
    let mut sim = Sim::new(8, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let a = call(&mut sim, alice, &format!("sip:bob@{BOB}"));
    let b = wait_incoming(&mut sim, bob, 1.0);
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    sim.run_for(secs(1.0));
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(1.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    assert_eq!(sim.sent(alice, "CANCEL").len(), 1);

    let a2 = call(&mut sim, alice, &format!("sip:bob@{BOB}"));
    sim.run_for(secs(1.0));
    let b2 = *sim.incoming(bob).last().expect("a second call");
    assert_ne!(b2, b);
    sim.act(bob, |c, now| c.reject(now, b2, 486))
        .expect("rejected");
    sim.run_for(secs(1.0));
    let end = sim
        .call_events(alice)
        .into_iter()
        .find_map(|(_, c, e)| match e {
            CallEvent::Ended(end) if c == a2 => Some(end),
            _ => None,
        })
        .expect("the second call ended");
    assert_eq!((end.reason, end.status), (EndReason::Rejected, Some(486)));
    // The callee's end says it declined, and with what (the phone's line and history).
    let declined = sim
        .call_events(bob)
        .into_iter()
        .find_map(|(_, c, e)| match e {
            CallEvent::Ended(end) if c == b2 => Some(end),
            _ => None,
        })
        .expect("the declined call ended");
    assert_eq!(
        (declined.reason, declined.status),
        (EndReason::Declined, Some(486))
    );
    sim.run_for(secs(40.0));
    assert!(sim.core(alice).is_idle() && sim.core(bob).is_idle());
}

/// A call over a network that loses 30 % of the datagrams: direct, or through the proxy
/// after both registered.
fn lossy_call(seed: u64, through_proxy: bool) -> usize {
    let mut sim = Sim::new(seed, NetConfig::lossy(0.3));
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let a = if through_proxy {
        sim.add_proxy(P1);
        sim.add_account(alice, account("alice", &[P1]));
        sim.add_account(bob, account("bob", &[P1]));
        let limit = sim.elapsed() + secs(120.0);
        let both = sim.run_until_with(limit, |s| {
            registered(s, alice) > 0 && registered(s, bob) > 0
        });
        assert!(both, "seed {seed}: both registered");
        call(&mut sim, alice, "bob")
    } else {
        call(&mut sim, alice, &format!("sip:bob@{BOB}"))
    };
    let b = wait_incoming(&mut sim, bob, 40.0);
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    let limit = sim.elapsed() + secs(40.0);
    let both = sim.run_until_with(limit, |s| s.answered(alice, a) && s.answered(bob, b));
    assert!(both, "seed {seed}: both answered");
    sim.run_for(secs(5.0));
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(64.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup),
        "seed {seed}"
    );
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup),
        "seed {seed}"
    );
    assert_eq!(sim.core(alice).calls().count(), 0, "seed {seed}");
    assert_eq!(sim.core(bob).calls().count(), 0, "seed {seed}");
    sim.trace.iter().filter(|l| l.contains(" lost ")).count()
}

#[test]
fn calls_connect_and_end_at_30_percent_loss() {
    let lost: usize = (0..24).map(|seed| lossy_call(1000 + seed, false)).sum();
    assert!(lost > 24, "{lost} datagrams lost over 24 calls");
}

#[test]
fn calls_through_the_proxy_connect_and_end_at_30_percent_loss() {
    let lost: usize = (0..24).map(|seed| lossy_call(2000 + seed, true)).sum();
    assert!(lost > 24, "{lost} datagrams lost over 24 calls");
}

#[test]
fn black_holed_first_proxy_is_passed_in_a_second() {
    let mut sim = Sim::new(4, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.nodes[p1].online = false;
    sim.add_account(bob, account("bob", &[P2]));
    let mut alice_account = account("alice", &[]);
    alice_account.register = false;
    sim.add_account(alice, alice_account);
    sim.run_for(secs(2.0));
    assert_eq!(registered(&sim, bob), 1, "bob registered");

    let started = sim.elapsed();
    let a = call(&mut sim, alice, "bob");
    let asked = sim.dns_queries_asked(alice);
    assert!(asked > 0, "the domain was resolved");
    let b = wait_incoming(&mut sim, bob, 5.0);
    let targets = calling(&sim, alice, a);
    assert_eq!(targets.len(), 2, "two targets: {targets:?}");
    assert_eq!(targets[0].1, P1.parse().unwrap());
    assert_eq!(targets[1].1, P2.parse().unwrap());
    assert_eq!(targets[0].0, started);
    // The INVITE to the black-holed proxy stopped when the call moved on.
    let p1: std::net::SocketAddr = P1.parse().unwrap();
    let to_p1 = sim.sent(alice, "INVITE");
    let to_p1: Vec<_> = to_p1.iter().filter(|(_, to)| *to == p1).collect();
    assert!(
        to_p1.iter().all(|(t, _)| *t < targets[1].0),
        "INVITEs to p1: {to_p1:?}"
    );
    assert!(
        targets[1].0 - targets[0].0 <= secs(1.0) + Duration::from_millis(1),
        "moved on after {:?}",
        targets[1].0 - targets[0].0
    );
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a), "alice answered");
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(2.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    let p2: std::net::SocketAddr = P2.parse().unwrap();
    let acks = sim.sent(alice, "ACK");
    let byes = sim.sent(alice, "BYE");
    assert!(!acks.is_empty() && !byes.is_empty());
    assert!(acks.iter().all(|(_, to)| *to == p2), "ACKs: {acks:?}");
    assert!(byes.iter().all(|(_, to)| *to == p2), "BYEs: {byes:?}");
    assert_eq!(
        sim.dns_queries_asked(alice),
        asked,
        "no DNS after the INVITE's"
    );
}

#[test]
fn hangup_of_an_unanswered_invite_ends_at_once() {
    let mut sim = Sim::new(5, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    sim.nodes[bob].online = false;
    let a = call(&mut sim, alice, &format!("sip:bob@{BOB}"));
    sim.run_for(secs(0.3));
    let at = sim.elapsed();
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    assert_eq!(sim.ended(alice, a), Some((at, EndReason::LocalHangup)));
    sim.run_for(secs(40.0));
    let invites = sim.sent(alice, "INVITE");
    assert!(!invites.is_empty());
    assert!(
        invites.iter().all(|(t, _)| *t <= at),
        "INVITE after the hangup: {invites:?}"
    );
    assert_eq!(sim.core(alice).calls().count(), 0);
    assert!(sim.core(alice).is_idle(), "alice idle");
}

#[test]
fn cancel_racing_the_200() {
    let mut sim = Sim::new(6, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let a = call(&mut sim, alice, &format!("sip:bob@{BOB}"));
    let b = wait_incoming(&mut sim, bob, 1.0);
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    let limit = sim.elapsed() + secs(1.0);
    let rang = sim.run_until_with(limit, |s| {
        s.call_events(alice)
            .iter()
            .any(|(_, _, e)| matches!(e, CallEvent::Progress { status: 180, .. }))
    });
    assert!(rang, "alice saw the 180");
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(40.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    assert!(sim.answered(bob, b), "bob answered");
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    assert!(
        !sim.sent(alice, "BYE").is_empty(),
        "alice BYEd the late 2xx"
    );
    assert_eq!(sim.core(alice).calls().count(), 0);
    assert_eq!(sim.core(bob).calls().count(), 0);
}

#[test]
fn failover_registrars_next_call_goes_to_the_second() {
    let mut sim = Sim::new(7, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.add_account(alice, account("alice", &[P1, P2]));
    sim.add_account(bob, account("bob", &[P2]));
    sim.run_for(secs(2.0));
    assert_eq!(registered(&sim, alice), 1, "alice registered");
    assert_eq!(registered(&sim, bob), 1, "bob registered");
    sim.nodes[p1].online = false;
    sim.run_for(secs(10.0));

    let started = sim.elapsed();
    let a = call(&mut sim, alice, "bob");
    let b = wait_incoming(&mut sim, bob, 5.0);
    let p2: std::net::SocketAddr = P2.parse().unwrap();
    let to_p2 = sim
        .sent(alice, "INVITE")
        .into_iter()
        .find(|(_, to)| *to == p2)
        .expect("an INVITE to the second registrar");
    assert!(
        to_p2.0 - started <= secs(1.0) + Duration::from_millis(1),
        "INVITE to the second after {:?}",
        to_p2.0 - started
    );
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a), "alice answered");
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(2.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
}

#[test]
fn registration_refresh_moves_to_the_second_registrar_when_the_first_dies() {
    let mut sim = Sim::new(9, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.add_account(alice, account("alice", &[P1, P2]));
    sim.run_for(secs(2.0));
    sim.nodes[p1].online = false;
    sim.run_for(secs(700.0));
    let registrars: Vec<std::net::SocketAddr> = sim
        .phone(alice)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Account {
                event: AccountEvent::Registered { registrar, .. },
                ..
            } => Some(registrar.addr),
            _ => None,
        })
        .collect();
    let (p1, p2) = (P1.parse().unwrap(), P2.parse().unwrap());
    assert_eq!(registrars.first(), Some(&p1), "{registrars:?}");
    assert_eq!(registrars.last(), Some(&p2), "{registrars:?}");
    assert!(sim.core(alice).is_registered(tincan::phone::AccountId(0)));
}

/// The INVITE is stopped before any provisional (alice hangs up at once), but it had already
/// left: bob answers a call alice no longer has. Alice acknowledges the stray 2xx and ends
/// its dialog with a BYE (RFC 3261 §13.2.2.4), so bob's call does not stay up.
#[test]
fn a_2xx_after_the_call_ended_is_acked_and_byed() {
    let mut sim = Sim::new(8, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("the call starts");
    sim.settle();
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.settle();
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::LocalHangup)
    );
    let b = wait_incoming(&mut sim, bob, 1.0);
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(40.0));
    assert!(sim.answered(bob, b), "bob answered");
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    assert!(
        !sim.sent(alice, "ACK").is_empty(),
        "alice ACKed the late 2xx"
    );
    assert!(!sim.sent(alice, "BYE").is_empty(), "alice BYEd it");
    assert_eq!(sim.core(bob).calls().count(), 0);
}
