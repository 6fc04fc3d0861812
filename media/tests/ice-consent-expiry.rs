//! Consent freshness (RFC 7675): on the selected pair a check goes out every 4-6 s; when the
//! peer stops answering, consent is lost exactly 30 s after the last answer, the agent says
//! so (`Event::ConsentLost`), forgets the pair and stops sending.

#[path = "ice-util/mod.rs"]
mod util;

use std::time::Duration;

use tincan_media::ice::stun::{Class, Message};
use tincan_media::ice::{CONSENT_TIMEOUT, Event, Role, State};
use util::Sim;

#[test]
fn consent_checks_every_five_seconds_and_lost_thirty_after_the_last_answer() {
    for seed in 0..5 {
        let mut sim = Sim::new(seed, 0.0);
        sim.add_peer("198.51.100.10:5000", Role::Controlling, 7, seed * 2 + 1);
        sim.add_peer("198.51.100.20:6000", Role::Controlled, 3, seed * 2 + 2);
        let a = "198.51.100.10:5000".parse().unwrap();
        let b = "198.51.100.20:6000".parse().unwrap();
        sim.exchange();
        assert!(sim.run_until(Duration::from_secs(30), Sim::both_selected));
        let (selected_at, _, _) = sim.peers[0].selected_event().unwrap();
        // A minute of a healthy call.
        sim.run_until(Duration::from_secs(60), |_| false);
        let requests: Vec<_> = sim
            .delivered
            .iter()
            .filter(|d| d.from == a && d.at > selected_at)
            .filter(|d| Message::parse(&d.payload).unwrap().class == Some(Class::Request))
            .map(|d| d.at)
            .collect();
        assert!(requests.len() >= 10, "seed {seed}: {}", requests.len());
        for gap in requests.windows(2).map(|w| w[1] - w[0]) {
            assert!(
                gap >= Duration::from_millis(3_990) && gap <= Duration::from_millis(6_010),
                "seed {seed}: consent gap {gap:?}"
            );
        }
        assert!(!sim.peers[0].has(|e| matches!(e, Event::ConsentLost { .. })));

        // B goes away.
        sim.peers[1].silent = true;
        sim.run_until(Duration::from_secs(60), |sim| {
            sim.peers[0].has(|e| matches!(e, Event::ConsentLost { .. }))
        });
        let lost_at = sim.peers[0]
            .events
            .iter()
            .find_map(|(at, e)| {
                matches!(e, Event::ConsentLost { remote } if *remote == b).then_some(*at)
            })
            .expect("consent lost");
        let last_answer = sim
            .delivered
            .iter()
            .filter(|d| d.to == a)
            .filter(|d| Message::parse(&d.payload).unwrap().class == Some(Class::Success))
            .map(|d| d.at)
            .max()
            .unwrap();
        assert_eq!(lost_at - last_answer, CONSENT_TIMEOUT, "seed {seed}");
        assert_eq!(sim.peers[0].agent.selected(), None);
        assert_eq!(sim.peers[0].agent.state(), State::Failed);
        // Nothing more goes to B.
        sim.run_until(Duration::from_secs(60), |_| false);
        assert!(
            !sim.delivered.iter().any(|d| d.from == a && d.at > lost_at),
            "seed {seed}: still sending after consent was lost"
        );
    }
}
