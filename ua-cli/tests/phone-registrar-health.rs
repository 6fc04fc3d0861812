//! The registrars of an account and their health, as the phone reports them
//! (`PhoneCore::registrar_health`, `Phone::registrar_health`): in virtual time, an account with two
//! registrars whose first is down is bound to the second and reports the first down; once the
//! first answers again the account fails back and reports it bound, the second up.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, P1, P2, Sim, account};
use tincan::phone::AccountId;
use tincan::phone::event::RegistrarState;
use tincan_sip::resolve::TargetStatus;

const ALICE: &str = "127.0.0.1:5061";

/// (address, bound, up) of each registrar, in order.
fn registrars(sim: &mut Sim, node: usize) -> Vec<(String, bool, bool)> {
    let states: Vec<RegistrarState> = sim.act(node, |c, now| c.registrar_health(now, AccountId(0)));
    states
        .into_iter()
        .map(|r| {
            (
                r.target.addr.to_string(),
                r.bound,
                matches!(r.health, TargetStatus::Up),
            )
        })
        .collect()
}

#[test]
fn the_account_reports_which_registrar_it_is_bound_to_and_which_are_down() {
    let mut sim = Sim::new(11, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.nodes[p1].online = false;
    sim.add_account(alice, account("alice", &[P1, P2]));
    sim.run_for(Duration::from_secs(5));
    assert_eq!(
        registrars(&mut sim, alice),
        [(P1.to_owned(), false, false), (P2.to_owned(), true, true)]
    );

    // The first registrar comes back: the account fails back to it.
    sim.nodes[p1].online = true;
    let back = sim.run_until_with(Duration::from_secs(600), |s| {
        s.core_ref(alice)
            .registrar_health(s.now, AccountId(0))
            .first()
            .is_some_and(|r| r.bound)
    });
    assert!(back, "no fail-back: {:?}", registrars(&mut sim, alice));
    assert_eq!(
        registrars(&mut sim, alice),
        [(P1.to_owned(), true, true), (P2.to_owned(), false, true)]
    );
}

#[test]
fn an_unknown_account_has_no_registrars() {
    let mut sim = Sim::new(1, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let none: Vec<RegistrarState> = sim.act(alice, |c, now| c.registrar_health(now, AccountId(7)));
    assert!(none.is_empty());
}
