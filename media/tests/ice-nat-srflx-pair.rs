//! Two full ICE agents agree on one pair over a seeded lossy network in virtual time: directly
//! (host pair), and each behind its own NAT (endpoint-independent mapping, address-and-port
//! dependent filtering), where host pairs cannot work and the server-reflexive pair does
//! (hole punching by the checks of both sides). With no STUN server behind two NATs, every
//! pair fails (RFC 8445 §8.1.2) after the 39.5 s STUN transaction timeout.

#[path = "ice-util/mod.rs"]
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use tincan_media::ice::{CandidateKind, Event, Role, State};
use util::{Nat, Sim};

#[test]
fn public_hosts_select_the_host_pair() {
    for seed in 0..10 {
        let mut sim = Sim::new(seed, 0.05);
        sim.add_peer("198.51.100.10:5000", Role::Controlling, 7, seed * 2 + 1);
        sim.add_peer("198.51.100.20:6000", Role::Controlled, 3, seed * 2 + 2);
        sim.exchange();
        assert!(
            sim.run_until(Duration::from_secs(60), Sim::both_selected),
            "seed {seed}: no pair selected"
        );
        let (_, a_local, a_remote) = sim.peers[0].selected_event().unwrap();
        let (_, b_local, b_remote) = sim.peers[1].selected_event().unwrap();
        assert_eq!(a_local, "198.51.100.10:5000".parse().unwrap());
        assert_eq!((a_local, a_remote), (b_remote, b_local), "seed {seed}");
        assert_eq!(sim.peers[0].agent.state(), State::Completed);
        assert_eq!(sim.peers[1].agent.selected(), Some((b_local, b_remote)));
        // No role conflict in a normal offer/answer.
        assert!(!sim.peers[0].has(|e| matches!(e, Event::RoleChanged(_))));
    }
}

#[test]
fn behind_two_nats_the_server_reflexive_pair_is_selected() {
    for seed in 0..10 {
        let mut sim = Sim::new(100 + seed, 0.05);
        sim.nats.push(Nat::new([10, 0, 0], "192.0.2.1"));
        sim.nats.push(Nat::new([10, 1, 0], "192.0.2.2"));
        sim.add_peer("10.0.0.5:5000", Role::Controlling, 7, seed * 2 + 1);
        sim.add_peer("10.1.0.5:6000", Role::Controlled, 3, seed * 2 + 2);
        sim.gather_and_exchange();
        // Each learnt its NAT's mapping from the STUN server.
        let srflx = |i: usize| -> SocketAddr {
            sim.peers[i]
                .agent
                .local_candidates()
                .into_iter()
                .find(|c| c.kind == CandidateKind::ServerReflexive)
                .map(|c| c.address)
                .expect("a server-reflexive candidate")
        };
        let (a_public, b_public) = (srflx(0), srflx(1));
        assert_eq!(
            a_public.ip(),
            "192.0.2.1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            sim.peers[0].agent.default_candidate().unwrap().address,
            a_public
        );
        assert!(
            sim.run_until(Duration::from_secs(60), Sim::both_selected),
            "seed {seed}: no pair selected"
        );
        let (_, a_local, a_remote) = sim.peers[0].selected_event().unwrap();
        let (_, b_local, b_remote) = sim.peers[1].selected_event().unwrap();
        // Media goes from each host socket to the other's NAT mapping.
        assert_eq!(
            (a_local, a_remote),
            ("10.0.0.5:5000".parse().unwrap(), b_public)
        );
        assert_eq!(
            (b_local, b_remote),
            ("10.1.0.5:6000".parse().unwrap(), a_public)
        );
    }
}

#[test]
fn behind_two_nats_without_stun_every_pair_fails() {
    let mut sim = Sim::new(7, 0.0);
    sim.nats.push(Nat::new([10, 0, 0], "192.0.2.1"));
    sim.nats.push(Nat::new([10, 1, 0], "192.0.2.2"));
    sim.add_peer("10.0.0.5:5000", Role::Controlling, 7, 1);
    sim.add_peer("10.1.0.5:6000", Role::Controlled, 3, 2);
    sim.exchange();
    let failed = sim.run_until(Duration::from_secs(120), |sim| {
        sim.peers.iter().all(|p| p.has(|e| *e == Event::Failed))
    });
    assert!(failed, "both check lists fail");
    // The single host pair's check was sent at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and
    // timed out 8 s after the last one.
    assert_eq!(sim.elapsed(), Duration::from_millis(39_500));
    assert!(!sim.both_selected());
}

#[test]
fn a_peer_behind_a_nat_without_stun_is_found_peer_reflexive() {
    // B has only its private host candidate; A learns B's NAT mapping from B's checks
    // (a peer-reflexive candidate, RFC 8445 §7.3.1.3) and checks back to it (triggered check).
    for seed in 0..10 {
        let mut sim = Sim::new(200 + seed, 0.05);
        sim.nats.push(Nat::new([10, 1, 0], "192.0.2.2"));
        sim.add_peer("198.51.100.10:5000", Role::Controlling, 7, seed * 2 + 1);
        sim.add_peer("10.1.0.5:6000", Role::Controlled, 3, seed * 2 + 2);
        sim.exchange();
        assert!(
            sim.run_until(Duration::from_secs(60), Sim::both_selected),
            "seed {seed}: no pair selected"
        );
        let (_, a_local, a_remote) = sim.peers[0].selected_event().unwrap();
        let (_, b_local, b_remote) = sim.peers[1].selected_event().unwrap();
        assert_eq!(
            a_remote.ip(),
            "192.0.2.2".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(b_local, "10.1.0.5:6000".parse().unwrap());
        assert_eq!(b_remote, a_local);
    }
}

#[test]
fn checks_that_arrive_before_the_answer_are_kept() {
    // B (the answerer, behind a NAT, no STUN) starts checking as soon as it has the offer;
    // A gets the answer 2 s later. A answered B's early checks (so B sends them no more) and
    // remembered where they came from: B's NAT mapping, the only address of B that works.
    for seed in 0..10 {
        let mut sim = Sim::new(300 + seed, 0.05);
        sim.nats.push(Nat::new([10, 1, 0], "192.0.2.2"));
        sim.add_peer("198.51.100.10:5000", Role::Controlling, 7, seed * 2 + 1);
        sim.add_peer("10.1.0.5:6000", Role::Controlled, 3, seed * 2 + 2);
        let offer = sim.peers[0].remote_description();
        let answer = sim.peers[1].remote_description();
        let now = sim.now;
        sim.peers[1].agent.set_remote(offer, now);
        sim.run_until(Duration::from_secs(2), |_| false);
        let answered = sim
            .delivered
            .iter()
            .filter(|d| d.from == "198.51.100.10:5000".parse().unwrap())
            .count();
        assert!(answered >= 1, "seed {seed}: A answered B's early checks");
        let now = sim.now;
        sim.peers[0].agent.set_remote(answer, now);
        assert!(
            sim.run_until(Duration::from_secs(60), Sim::both_selected),
            "seed {seed}: no pair selected"
        );
    }
}
