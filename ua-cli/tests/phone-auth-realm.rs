//! An account's password answers only its digest realms (issue 19, finding 4), in virtual
//! time: the first challenge pins the realm; a later 401 to a REGISTER or a 407 of a
//! downstream proxy to an INVITE for another realm is refused (no hash of the password goes
//! out), reported, and the request fails with that challenge (a re-INVITE too); a
//! configured list of realms is
//! honoured; `realm = "*"` answers any realm.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, P1, REALM, Sim, account};
use tincan::phone::{
    AccountEvent, CallEvent, CallParams, CallWarning, EndReason, PhoneEvent, RealmPolicy,
    RefusedChallenge,
};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";
/// A proxy behind P1 (bob's "contact"), in another realm.
const DOWNSTREAM: &str = "127.0.0.12:5060";
const EVIL: &str = "evil.example";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn account_events(sim: &Sim, node: usize) -> Vec<AccountEvent> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Account { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn registrations(sim: &Sim, node: usize) -> usize {
    account_events(sim, node)
        .iter()
        .filter(|e| matches!(e, AccountEvent::Registered { .. }))
        .count()
}

/// The challenges the phone refused to answer for REGISTER.
fn refused_registers(sim: &Sim, node: usize) -> Vec<RefusedChallenge> {
    account_events(sim, node)
        .into_iter()
        .filter_map(|e| match e {
            AccountEvent::ChallengeRefused { challenge, .. } => Some(challenge),
            _ => None,
        })
        .collect()
}

/// Whether any credentials for `realm` reached the proxy.
fn got_credentials_for(sim: &Sim, proxy: usize, realm: &str) -> bool {
    let needle = format!("realm=\"{realm}\"");
    sim.proxy(proxy)
        .credentials
        .iter()
        .any(|c| c.contains(&needle))
}

/// Alice's phone with `config`, P1 as her registrar and proxy.
fn setup(config: tincan::phone::AccountConfig) -> (Sim, usize, usize) {
    let mut sim = Sim::new(19, NetConfig::perfect());
    let p1 = sim.add_proxy(P1);
    let alice = sim.add_phone(ALICE, "alice");
    sim.add_account(alice, config);
    (sim, p1, alice)
}

#[test]
fn a_register_challenge_of_another_realm_after_the_pin_is_refused() {
    let (mut sim, p1, alice) = setup(account("alice", &[P1]));
    assert!(sim.run_until_with(secs(5), |s| registrations(s, alice) == 1));
    // The registrar's first challenge pinned example.test. Now P1 (or whoever answers in
    // its name) challenges the refresh for another realm.
    sim.proxy_mut(p1).realm = EVIL.into();
    assert!(
        sim.run_until_with(secs(700), |s| !refused_registers(s, alice).is_empty()),
        "the refresh's 401 of another realm is reported: {:?}",
        account_events(&sim, alice)
    );
    assert_eq!(
        refused_registers(&sim, alice)[0],
        RefusedChallenge {
            method: "REGISTER".into(),
            status: 401,
            realm: EVIL.into(),
            allowed: vec![REALM.into()],
        }
    );
    assert!(
        !got_credentials_for(&sim, p1, EVIL),
        "no answer to the evil realm: {:?}",
        sim.proxy(p1).credentials
    );
    let text = refused_registers(&sim, alice)[0].to_string();
    assert!(
        text.contains("\"evil.example\"") && text.contains("REGISTER") && text.contains("realm"),
        "{text}"
    );
    // Later attempts are refused the same way; never answered.
    sim.run_until(secs(900));
    assert!(!got_credentials_for(&sim, p1, EVIL));
    assert_eq!(registrations(&sim, alice), 1);
}

/// Alice calls bob, whom P1 forwards to a downstream proxy that challenges (407) for
/// another realm; returns the call's refused challenges and how it ended.
fn call_through_a_downstream_proxy(
    sim: &mut Sim,
    p1: usize,
    alice: usize,
) -> (Vec<RefusedChallenge>, Option<(EndReason, Option<u16>)>) {
    let downstream = sim.add_proxy(DOWNSTREAM);
    sim.proxy_mut(downstream).realm = EVIL.into();
    sim.locations
        .insert("bob".into(), DOWNSTREAM.parse().expect("an address"));
    let call = sim
        .act(alice, |c, now| {
            c.call(now, "sip:bob@example.test", CallParams::default())
        })
        .expect("a call");
    sim.run_until_with(sim.elapsed() + secs(40), |s| s.ended(alice, call).is_some());
    // (P1 passes no Proxy-Authorization on: the phone's answer would stop there.)
    assert!(
        !got_credentials_for(sim, p1, EVIL) && !got_credentials_for(sim, downstream, EVIL),
        "no answer to the downstream realm: {:?}",
        sim.proxy(p1).credentials
    );
    let events = sim.call_events(alice);
    let refused = events
        .iter()
        .filter(|(_, c, _)| *c == call)
        .filter_map(|(_, _, e)| match e {
            CallEvent::Warning(CallWarning::ChallengeRefused(r)) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let end = events.iter().find_map(|(_, c, e)| match e {
        CallEvent::Ended(end) if *c == call => Some((end.reason, end.status)),
        _ => None,
    });
    (refused, end)
}

#[test]
fn an_invite_challenge_of_a_downstream_proxy_is_refused() {
    let (mut sim, p1, alice) = setup(account("alice", &[P1]));
    assert!(sim.run_until_with(secs(5), |s| registrations(s, alice) == 1));
    let (refused, end) = call_through_a_downstream_proxy(&mut sim, p1, alice);
    assert!(
        got_credentials_for(&sim, p1, REALM),
        "P1's own 407 was answered"
    );
    assert_eq!(
        refused,
        [RefusedChallenge {
            method: "INVITE".into(),
            status: 407,
            realm: EVIL.into(),
            allowed: vec![REALM.into()],
        }]
    );
    assert_eq!(end, Some((EndReason::Rejected, Some(407))));
}

#[test]
fn an_account_without_registration_pins_its_first_challenge() {
    // No REGISTER: P1's 407 to the first INVITE (the account's own proxy) pins its realm.
    let mut a = account("alice", &[P1]);
    a.register = false;
    let (mut sim, p1, alice) = setup(a);
    let (refused, end) = call_through_a_downstream_proxy(&mut sim, p1, alice);
    assert!(got_credentials_for(&sim, p1, REALM));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].realm, EVIL);
    assert_eq!(refused[0].allowed, [REALM]);
    assert_eq!(end, Some((EndReason::Rejected, Some(407))));
}

#[test]
fn a_configured_realm_list_is_honoured() {
    // Both realms of the list are answered, whichever came first.
    let mut a = account("alice", &[P1]);
    a.realm = RealmPolicy::Only(vec!["other.test".into(), REALM.into()]);
    let (mut sim, p1, alice) = setup(a);
    assert!(sim.run_until_with(secs(5), |s| registrations(s, alice) == 1));
    sim.proxy_mut(p1).realm = "other.test".into();
    assert!(sim.run_until_with(secs(700), |s| registrations(s, alice) == 2));
    assert!(got_credentials_for(&sim, p1, "other.test"));
    assert!(refused_registers(&sim, alice).is_empty());

    // A list without the registrar's realm: the first REGISTER's 401 is refused at once.
    let mut a = account("alice", &[P1]);
    a.realm = RealmPolicy::Only(vec!["other.test".into()]);
    let (mut sim, p1, alice) = setup(a);
    assert!(sim.run_until_with(secs(5), |s| !refused_registers(s, alice).is_empty()));
    assert_eq!(refused_registers(&sim, alice)[0].realm, REALM);
    assert_eq!(refused_registers(&sim, alice)[0].allowed, ["other.test"]);
    assert!(
        sim.proxy(p1).credentials.is_empty(),
        "no credentials went: {:?}",
        sim.proxy(p1).credentials
    );
    assert_eq!(registrations(&sim, alice), 0);
}

#[test]
fn realm_star_answers_any_realm() {
    let mut a = account("alice", &[P1]);
    a.realm = RealmPolicy::Any;
    let (mut sim, p1, alice) = setup(a);
    assert!(sim.run_until_with(secs(5), |s| registrations(s, alice) == 1));
    sim.proxy_mut(p1).realm = EVIL.into();
    assert!(sim.run_until_with(secs(700), |s| registrations(s, alice) == 2));
    assert!(got_credentials_for(&sim, p1, EVIL), "the opt-out answers");
    assert!(refused_registers(&sim, alice).is_empty());
}

#[test]
fn an_in_dialog_challenge_of_another_realm_is_refused() {
    let (mut sim, p1, alice) = setup(account("alice", &[P1]));
    let bob = sim.add_phone(BOB, "bob");
    sim.add_account(bob, account("bob", &[P1]));
    assert!(sim.run_until_with(secs(5), |s| registrations(s, alice) == 1
        && registrations(s, bob) == 1));
    let a = sim
        .act(alice, |c, now| c.call(now, "bob", CallParams::default()))
        .expect("a call");
    assert!(sim.run_until_with(secs(10), |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    assert!(sim.run_until_with(secs(15), |s| s.answered(alice, a)));

    // From now on the proxy challenges in-dialog requests, for another realm: the hold's
    // re-INVITE is refused with its 407, and the call goes on.
    sim.proxy_mut(p1).realm = EVIL.into();
    sim.proxy_mut(p1).challenge_in_dialog = true;
    sim.act(alice, |c, now| c.hold(now, a)).expect("hold");
    sim.run_for(secs(2));
    let events: Vec<CallEvent> = sim
        .call_events(alice)
        .into_iter()
        .filter(|(_, c, _)| *c == a)
        .map(|(_, _, e)| e)
        .collect();
    let refused: Vec<&RefusedChallenge> = events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Warning(CallWarning::ChallengeRefused(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [&RefusedChallenge {
            method: "INVITE".into(),
            status: 407,
            realm: EVIL.into(),
            allowed: vec![REALM.into()],
        }],
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            CallEvent::Warning(CallWarning::ReinviteRefused { status: 407 })
        )),
        "{events:?}"
    );
    assert!(sim.ended(alice, a).is_none(), "the call goes on");
    assert!(
        !got_credentials_for(&sim, p1, EVIL),
        "{:?}",
        sim.proxy(p1).credentials
    );
}

/// A BYE challenged after the call ended on our side is still answered: the hang-up reaches
/// the callee (the call is gone from the phone by then, its account's credentials are not).
#[test]
fn a_bye_challenged_after_the_hangup_is_answered() {
    let (mut sim, p1, alice) = setup(account("alice", &[P1]));
    let bob = sim.add_phone(BOB, "bob");
    sim.add_account(bob, account("bob", &[P1]));
    assert!(sim.run_until_with(secs(5), |s| registrations(s, alice) == 1
        && registrations(s, bob) == 1));
    let a = sim
        .act(alice, |c, now| c.call(now, "bob", CallParams::default()))
        .expect("a call");
    assert!(sim.run_until_with(secs(10), |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    assert!(sim.run_until_with(secs(15), |s| s.answered(alice, a)));

    sim.proxy_mut(p1).challenge_in_dialog = true;
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hang-up");
    assert!(
        sim.run_until_with(secs(20), |s| s.ended(bob, b).is_some()),
        "bob's call never ended: the challenged BYE was not sent again; proxy saw {:?}",
        sim.proxy(p1).received
    );
    assert_eq!(
        sim.ended(bob, b).map(|(_, r)| r),
        Some(EndReason::RemoteHangup)
    );
    assert_eq!(
        sim.ended(alice, a).map(|(_, r)| r),
        Some(EndReason::LocalHangup)
    );
}
