//! Presence in virtual time (RFC 3903 PUBLISH, RFC 3856 SUBSCRIBE): an account with
//! `presence` publishes once it registers (its 407 answered), refreshes before expiry with
//! `SIP-If-Match` and no body, publishes afresh after a 412, shows busy "on the phone"
//! while a call is up and available again after, and removes its state when it
//! unregisters; a watch subscribes with `Event: presence` and `Accept:
//! application/pidf+xml` and reports the NOTIFY's document, or that it could not be read.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, P1, PresenceAgent, Sim, account};
use tincan::phone::presence::{Presence, PresenceEvent, PresenceStatus};
use tincan::phone::{AccountId, CallParams, PhoneEvent};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A phone with an account (automatic presence when `automatic`) registering at P1, which
/// is also a presence server granting `grant` seconds.
fn setup(seed: u64, automatic: bool, grant: u32) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    sim.proxy_mut(p1).presence = Some(PresenceAgent::new(grant));
    let mut a = account("alice", &[P1]);
    a.presence = automatic;
    sim.add_account(alice, a);
    (sim, alice, p1)
}

fn agent(sim: &Sim, p: usize) -> &PresenceAgent {
    sim.proxy(p).presence.as_ref().expect("a presence server")
}

fn presence_events(sim: &Sim, node: usize) -> Vec<PresenceEvent> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Presence(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// Runs until the server took `count` PUBLISHes.
fn wait_publishes(sim: &mut Sim, p: usize, count: usize, limit: f64) {
    let limit = sim.elapsed() + secs(limit);
    let ok = sim.run_until_with(limit, |s| agent(s, p).publishes.len() >= count);
    assert!(
        ok,
        "{count} PUBLISHes expected, got {:?}; trace:\n{}",
        agent(sim, p).publishes,
        sim.trace.join("\n")
    );
}

#[test]
fn publishes_after_registering_refreshes_with_sip_if_match_and_recovers_from_412() {
    let (mut sim, alice, p1) = setup(1, true, 120);
    wait_publishes(&mut sim, p1, 1, 10.0);
    sim.run_for(secs(1.0));
    let a = agent(&sim, p1);
    let (t0, expires, if_match, body) = a.publishes[0].clone();
    assert_eq!(expires, 3600, "asks an hour");
    assert_eq!(if_match, None, "the initial PUBLISH has no SIP-If-Match");
    assert!(body.contains("<basic>open</basic>"), "{body}");
    assert_eq!(a.publish_answers[0].1, 200);
    assert!(
        presence_events(&sim, alice).contains(&PresenceEvent::Published {
            account: AccountId(0),
            status: PresenceStatus::Available
        })
    );

    // Granted 120 s: refreshed 88 s later with the entity-tag and no body, twice in 200 s.
    sim.run_for(secs(200.0));
    let a = agent(&sim, p1);
    assert!(a.publishes.len() >= 3, "{:?}", a.publishes);
    for (i, (t, expires, if_match, body)) in a.publishes[1..3].iter().enumerate() {
        let since = t.saturating_sub(t0).as_secs_f64();
        let want = 88.0 * (i + 1) as f64;
        assert!(
            (want - 1.0..want + 1.0).contains(&since),
            "refresh {i} {since} s after"
        );
        assert_eq!(*expires, 3600);
        assert_eq!(if_match.as_deref(), Some(format!("etag{}", i + 1).as_str()));
        assert!(body.is_empty(), "a refresh has no body: {body}");
    }

    // The server loses the state: the next refresh gets 412, and a fresh PUBLISH with the
    // body follows at once.
    sim.proxy_mut(p1).presence.as_mut().unwrap().lose_state = true;
    let before = agent(&sim, p1).publishes.len();
    wait_publishes(&mut sim, p1, before + 2, 100.0);
    let a = agent(&sim, p1);
    let refused = &a.publishes[before];
    let fresh = &a.publishes[before + 1];
    assert_eq!(a.publish_answers[before].1, 412);
    assert!(refused.2.is_some() && refused.3.is_empty(), "{refused:?}");
    assert_eq!(fresh.2, None, "afresh: no SIP-If-Match");
    assert!(fresh.3.contains("<basic>open</basic>"), "{fresh:?}");
    assert!(
        fresh.0.saturating_sub(refused.0) < secs(1.0),
        "at once: {refused:?} {fresh:?}"
    );
    assert_eq!(a.publish_answers[before + 1].1, 200);
}

#[test]
fn chosen_status_modifies_and_unregister_removes() {
    let (mut sim, alice, p1) = setup(2, false, 3600);
    sim.run_for(secs(5.0));
    assert!(
        agent(&sim, p1).publishes.is_empty(),
        "no automatic presence"
    );
    sim.act(alice, |c, now| {
        c.set_presence(
            now,
            AccountId(0),
            Presence::new(PresenceStatus::Away).with_note("back at 3"),
        )
    })
    .expect("an account");
    wait_publishes(&mut sim, p1, 1, 10.0);
    sim.run_for(secs(1.0));
    let first = agent(&sim, p1).publishes[0].clone();
    assert!(first.3.contains("<rpid:away/>"), "{first:?}");
    assert!(first.3.contains("back at 3"), "{first:?}");
    // A change: SIP-If-Match and the new body.
    sim.act(alice, |c, now| {
        c.set_presence(now, AccountId(0), Presence::new(PresenceStatus::Busy))
    })
    .expect("an account");
    wait_publishes(&mut sim, p1, 2, 10.0);
    let modify = agent(&sim, p1).publishes[1].clone();
    assert_eq!(modify.2.as_deref(), Some("etag1"));
    assert!(modify.3.contains("<rpid:busy/>"), "{modify:?}");
    // Unregistering removes it: Expires 0 with the entity-tag.
    sim.run_for(secs(1.0));
    sim.act(alice, |c, now| c.unregister(now, AccountId(0)));
    wait_publishes(&mut sim, p1, 3, 10.0);
    let remove = agent(&sim, p1).publishes[2].clone();
    assert_eq!((remove.1, remove.2.as_deref()), (0, Some("etag2")));
    assert!(remove.3.is_empty());
    assert_eq!(
        sim.act(alice, |c, now| c.set_presence(
            now,
            AccountId(7),
            Presence::new(PresenceStatus::Away)
        ))
        .map_err(|e| e.to_string()),
        Err("no account 7".to_owned())
    );
}

#[test]
fn busy_on_the_phone_while_a_call_is_up() {
    let (mut sim, alice, p1) = setup(3, true, 3600);
    let bob = sim.add_phone(BOB, "bob");
    sim.add_account(bob, account("bob", &[P1]));
    wait_publishes(&mut sim, p1, 1, 10.0);
    sim.run_for(secs(1.0));
    let call = sim
        .act(alice, |c, now| c.call(now, "bob", CallParams::default()))
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    wait_publishes(&mut sim, p1, 2, 10.0);
    let busy = agent(&sim, p1).publishes[1].clone();
    assert_eq!(busy.2.as_deref(), Some("etag1"), "a modification");
    assert!(busy.3.contains("<rpid:on-the-phone/>"), "{busy:?}");
    assert!(busy.3.contains("On the phone"), "{busy:?}");
    sim.run_for(secs(2.0));
    assert_eq!(agent(&sim, p1).publishes.len(), 2, "once per change");
    sim.act(alice, |c, now| c.hangup(now, call))
        .expect("hangup");
    wait_publishes(&mut sim, p1, 3, 10.0);
    let back = agent(&sim, p1).publishes[2].clone();
    assert_eq!(back.2.as_deref(), Some("etag2"));
    assert!(!back.3.contains("rpid:"), "available again: {back:?}");
    assert!(back.3.contains("<basic>open</basic>"), "{back:?}");
}

#[test]
fn watch_reports_the_document_and_unreadable_ones() {
    let (mut sim, alice, p1) = setup(4, false, 3600);
    sim.proxy_mut(p1).presence.as_mut().unwrap().document =
        "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' \
         xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' \
         xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='sip:bob@example.test'>\
         <tuple id='t'><status><basic>open</basic></status></tuple>\
         <dm:person id='p'><rpid:activities><rpid:away/></rpid:activities>\
         <dm:note>lunch</dm:note></dm:person></presence>"
            .to_owned();
    // Asked before the account registered: it starts once it has.
    let watch = sim
        .act(alice, |c, now| c.watch_presence(now, AccountId(0), "bob"))
        .expect("a watch");
    let limit = sim.elapsed() + secs(10.0);
    let changed = |s: &Sim| {
        presence_events(s, alice)
            .into_iter()
            .filter(|e| matches!(e, PresenceEvent::Changed { .. }))
            .count()
    };
    assert!(
        sim.run_until_with(limit, |s| changed(s) >= 1),
        "trace:\n{}",
        sim.trace.join("\n")
    );
    let a = agent(&sim, p1);
    assert_eq!(
        a.subscribes[0].3.as_deref(),
        Some("application/pidf+xml"),
        "{:?}",
        a.subscribes
    );
    assert!(
        presence_events(&sim, alice).contains(&PresenceEvent::Changed {
            watch,
            account: AccountId(0),
            uri: "bob".to_owned(),
            status: PresenceStatus::Away,
            note: Some("lunch".to_owned()),
        })
    );
    // A document that is not well-formed: answered 200, reported unreadable.
    sim.proxy_mut(p1).presence.as_mut().unwrap().document =
        "<presence><tuple></presence>".to_owned();
    sim.act(alice, |c, now| c.unwatch_presence(now, watch));
    let again = sim
        .act(alice, |c, now| c.watch_presence(now, AccountId(0), "bob"))
        .expect("a watch");
    let limit = sim.elapsed() + secs(10.0);
    assert!(sim.run_until_with(limit, |s| {
        presence_events(s, alice)
            .iter()
            .any(|e| matches!(e, PresenceEvent::Unreadable { watch, .. } if *watch == again))
    }));
    sim.run_for(secs(1.0));
    // (The final NOTIFY of the ended watch may come after the 200 to its un-SUBSCRIBE
    // ended it: 481.)
    let answers = &agent(&sim, p1).notify_answers;
    assert_eq!(answers.last().map(|a| a.1), Some(200), "{answers:?}");
    assert!(
        answers.iter().all(|a| a.1 == 200 || a.1 == 481),
        "{answers:?}"
    );
    assert!(
        presence_events(&sim, alice)
            .iter()
            .any(|e| matches!(e, PresenceEvent::WatchEnded { watch: w, .. } if *w == watch)),
        "the first watch ended"
    );
    let unsubscribed = agent(&sim, p1)
        .subscribes
        .iter()
        .any(|(_, expires, in_dialog, _)| *expires == 0 && *in_dialog);
    assert!(unsubscribed, "{:?}", agent(&sim, p1).subscribes);
}
