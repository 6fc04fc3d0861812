//! An ICE-lite peer (RFC 8445 §2.5): it only answers checks. The full agent controls
//! whatever its offer/answer role (RFC 8445 §6.1.1), nominates the pair with USE-CANDIDATE
//! (regular nomination) and keeps consent (RFC 7675) through the lite peer's answers.

#[path = "ice-util/mod.rs"]
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use tincan_media::ice::stun::{self, Builder, Class, Message};
use tincan_media::ice::{Candidate, Credentials, Event, RemoteIce, Role, State};
use util::Sim;

const LITE: &str = "198.51.100.20:6000";

/// Answers the checks in the lite peer's inbox; returns how many carried USE-CANDIDATE.
fn answer(sim: &mut Sim, credentials: &Credentials) -> (usize, usize) {
    let lite: SocketAddr = LITE.parse().unwrap();
    let inbox = std::mem::take(sim.inboxes.get_mut(&lite).unwrap());
    let (mut requests, mut nominations) = (0, 0);
    for d in inbox {
        let Ok(m) = Message::parse(&d.payload) else {
            continue;
        };
        let ours = m
            .username
            .as_deref()
            .is_some_and(|u| u.starts_with(&format!("{}:", credentials.ufrag)));
        if m.class != Some(Class::Request)
            || !ours
            || !m.verify_integrity(&d.payload, credentials.pwd.as_bytes())
        {
            continue;
        }
        requests += 1;
        nominations += usize::from(m.use_candidate);
        let response = Builder::new(Class::Success, stun::BINDING, m.transaction)
            .xor_mapped_address(d.from)
            .finish(Some(credentials.pwd.as_bytes()));
        sim.send(lite, d.from, response);
    }
    (requests, nominations)
}

#[test]
fn the_full_agent_controls_nominates_and_keeps_consent() {
    for seed in 0..5 {
        let mut sim = Sim::new(seed, 0.05);
        let lite: SocketAddr = LITE.parse().unwrap();
        sim.inboxes.insert(lite, Vec::new());
        // We answered the lite peer's offer: controlled by offer/answer, controlling by ICE.
        sim.add_peer("198.51.100.10:5000", Role::Controlled, 1, seed + 1);
        let credentials = Credentials::new("lite", "litelitelitelitelitelite").unwrap();
        let now = sim.now;
        sim.peers[0].agent.set_remote(
            RemoteIce {
                credentials: credentials.clone(),
                lite: true,
                candidates: vec![Candidate::host(lite, 65535)],
            },
            now,
        );
        assert_eq!(sim.peers[0].agent.role(), Role::Controlling);
        let mut nominations = 0;
        let mut consent_checks = 0;
        let mut selected_at = None;
        while sim.elapsed() < Duration::from_secs(180) {
            sim.run_until(Duration::from_millis(10), |_| false);
            let (requests, nominated) = answer(&mut sim, &credentials);
            nominations += nominated;
            if selected_at.is_some() {
                consent_checks += requests;
            }
            if selected_at.is_none() && sim.peers[0].selected_event().is_some() {
                selected_at = Some(sim.elapsed());
            }
        }
        let (_, local, remote) = sim.peers[0].selected_event().expect("a pair selected");
        assert_eq!(
            (local, remote),
            ("198.51.100.10:5000".parse().unwrap(), lite)
        );
        assert!(nominations >= 1, "USE-CANDIDATE was sent");
        assert!(sim.peers[0].has(|e| *e == Event::RoleChanged(Role::Controlling)));
        // Within about 1 s (one round trip plus the nomination).
        assert!(selected_at.unwrap() < Duration::from_secs(5), "seed {seed}");
        // Consent: a check every 4-6 s for the rest of the 3 minutes, and it held.
        assert!(
            consent_checks >= 25,
            "seed {seed}: {consent_checks} consent checks"
        );
        assert_eq!(sim.peers[0].agent.state(), State::Completed);
        assert!(!sim.peers[0].has(|e| matches!(e, Event::ConsentLost { .. })));
    }
}
