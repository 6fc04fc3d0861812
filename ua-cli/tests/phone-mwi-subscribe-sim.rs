//! Subscribing to an account's `message-summary` (RFC 3842 over RFC 6665) in virtual time:
//! the SUBSCRIBE after the account registers (its 407 answered), the NOTIFY reported as
//! `MessageWaiting`, the refresh before expiry inside the dialog, the un-SUBSCRIBE when the
//! account unregisters; a NOTIFY lost at 30 % loss and retransmitted; a NOTIFY before the
//! 200; a termination with `retry-after` subscribed again later; 489 Bad Event stops; an
//! expiry with the notifier unreachable starts a new subscription.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{MwiNotifier, NetConfig, P1, Sim, account};
use tincan::phone::{AccountId, PhoneEvent};

const ALICE: &str = "127.0.0.1:5061";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A phone with an `mwi` account registering at P1, which is also a notifier granting
/// `grant` seconds.
fn setup(seed: u64, net: NetConfig, notifier: MwiNotifier) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, net);
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    sim.proxy_mut(p1).mwi = Some(notifier);
    let mut a = account("alice", &[P1]);
    a.mwi = true;
    sim.add_account(alice, a);
    (sim, alice, p1)
}

/// The (time, new voice messages) of each `MessageWaiting` of account 0.
fn waiting(sim: &Sim, node: usize) -> Vec<(Duration, u32)> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            PhoneEvent::MessageWaiting(m) if m.account == Some(AccountId(0)) => {
                Some((*t, m.summary.voice().map_or(0, |v| v.new)))
            }
            _ => None,
        })
        .collect()
}

fn notifier(sim: &Sim, p: usize) -> &MwiNotifier {
    sim.proxy(p).mwi.as_ref().expect("a notifier")
}

fn wait_waiting(sim: &mut Sim, node: usize, count: usize, limit: f64) {
    let limit = sim.elapsed() + secs(limit);
    let ok = sim.run_until_with(limit, |s| waiting(s, node).len() >= count);
    assert!(
        ok,
        "{count} MessageWaiting expected, got {:?}; trace:\n{}",
        waiting(sim, node),
        sim.trace.join("\n")
    );
}

#[test]
fn subscribes_after_registering_refreshes_and_unsubscribes() {
    let (mut sim, alice, p1) = setup(1, NetConfig::perfect(), MwiNotifier::new(120));
    wait_waiting(&mut sim, alice, 1, 10.0);
    sim.run_for(secs(1.0));
    assert_eq!(waiting(&sim, alice)[0].1, 2, "two new voice messages");
    assert!(sim.core_ref(alice).mwi_subscribed(AccountId(0)));
    let n = notifier(&sim, p1);
    assert_eq!(n.subscribes.len(), 1, "{:?}", n.subscribes);
    assert_eq!(n.subscribes[0].1, 3600, "asks an hour");
    assert!(!n.subscribes[0].2, "outside any dialog");
    assert_eq!(
        n.notify_answers.iter().map(|a| a.1).collect::<Vec<_>>(),
        [200]
    );
    // Granted 120 s: refreshed at 120 - 32 = 88 s after, inside the dialog, twice in 200 s.
    let t0 = n.subscribes[0].0;
    sim.run_for(secs(200.0));
    let n = notifier(&sim, p1);
    let refreshes: Vec<_> = n.subscribes[1..].iter().collect();
    assert!(refreshes.len() >= 2, "{:?}", n.subscribes);
    for (t, expires, in_dialog) in &refreshes {
        assert!(*in_dialog && *expires == 3600, "{refreshes:?}");
        let since = t.saturating_sub(t0).as_secs_f64();
        assert!(since > 80.0, "refreshed at {since} s");
    }
    let first = refreshes[0].0.saturating_sub(t0).as_secs_f64();
    assert!(
        (87.0..90.0).contains(&first),
        "first refresh {first} s after"
    );
    assert!(
        waiting(&sim, alice).len() >= 3,
        "each refresh brings a NOTIFY"
    );
    // Unregistering ends it: an un-SUBSCRIBE in the dialog.
    sim.act(alice, |c, now| c.unregister(now, AccountId(0)));
    sim.run_for(secs(5.0));
    let last = *notifier(&sim, p1).subscribes.last().expect("a SUBSCRIBE");
    assert_eq!((last.1, last.2), (0, true), "un-SUBSCRIBE: {last:?}");
    assert!(!sim.core_ref(alice).mwi_subscribed(AccountId(0)));
}

#[test]
fn notify_lost_at_30_percent_loss_is_retransmitted() {
    let (mut sim, alice, p1) = setup(7, NetConfig::lossy(0.3), MwiNotifier::new(3600));
    // The first NOTIFY is lost for sure; the rest of the way loses 30 %.
    sim.drop_next.push(("NOTIFY sip:".to_owned(), 1));
    wait_waiting(&mut sim, alice, 1, 120.0);
    let lost = sim
        .trace
        .iter()
        .filter(|l| l.contains("lost NOTIFY"))
        .count();
    assert!(lost >= 1, "a NOTIFY was lost");
    sim.run_for(secs(40.0));
    assert!(
        notifier(&sim, p1).notify_answers.iter().any(|a| a.1 == 200),
        "the retransmitted NOTIFY answered 200"
    );
    assert_eq!(waiting(&sim, alice)[0].1, 2);
}

#[test]
fn notify_before_the_200_creates_the_dialog() {
    let mut n = MwiNotifier::new(120);
    n.notify_first = true;
    let (mut sim, alice, p1) = setup(3, NetConfig::perfect(), n);
    wait_waiting(&mut sim, alice, 1, 10.0);
    sim.run_for(secs(100.0));
    let n = notifier(&sim, p1);
    assert_eq!(n.notify_answers[0].1, 200, "{:?}", n.notify_answers);
    assert!(n.subscribes.len() >= 2, "{:?}", n.subscribes);
    assert!(n.subscribes[1].2, "the refresh goes in the dialog");
}

#[test]
fn terminated_with_retry_after_subscribes_again_later() {
    let mut n = MwiNotifier::new(3600);
    n.next_state = Some("terminated;reason=probation;retry-after=30".to_owned());
    let (mut sim, alice, p1) = setup(4, NetConfig::perfect(), n);
    wait_waiting(&mut sim, alice, 1, 10.0);
    sim.run_for(secs(20.0));
    assert_eq!(notifier(&sim, p1).subscribes.len(), 1, "not before 30 s");
    wait_waiting(&mut sim, alice, 2, 30.0);
    let n = notifier(&sim, p1);
    assert_eq!(n.subscribes.len(), 2, "{:?}", n.subscribes);
    let gap = n.subscribes[1]
        .0
        .saturating_sub(n.subscribes[0].0)
        .as_secs_f64();
    assert!((29.0..32.0).contains(&gap), "again {gap} s later");
    assert!(!n.subscribes[1].2, "a new subscription, outside any dialog");
    assert!(sim.core_ref(alice).mwi_subscribed(AccountId(0)));
}

#[test]
fn bad_event_stops() {
    let mut n = MwiNotifier::new(3600);
    n.status = 489;
    let mut sim = Sim::new(5, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    sim.proxy_mut(p1).mwi = Some(n);
    let mut a = account("alice", &[P1]);
    a.mwi = true;
    // Registration refreshes every half minute or so: none of them asks again.
    a.expires = 60;
    sim.add_account(alice, a);
    sim.run_for(secs(400.0));
    let registered = sim
        .phone(alice)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                PhoneEvent::Account {
                    event: tincan::phone::AccountEvent::Registered { .. },
                    ..
                }
            )
        })
        .count();
    assert!(registered >= 2, "registered {registered} times");
    assert_eq!(notifier(&sim, p1).subscribes.len(), 1, "asked once");
    assert!(waiting(&sim, alice).is_empty());
    assert!(!sim.core_ref(alice).mwi_subscribed(AccountId(0)));
}

#[test]
fn expiry_with_the_notifier_gone_starts_a_new_subscription() {
    let (mut sim, alice, p1) = setup(6, NetConfig::perfect(), MwiNotifier::new(120));
    wait_waiting(&mut sim, alice, 1, 10.0);
    let t0 = notifier(&sim, p1).subscribes[0].0;
    // Gone from 50 s to 200 s: the refresh at 88 s fails, the subscription expires at 120 s.
    sim.run_until(t0 + secs(50.0));
    sim.nodes[p1].online = false;
    sim.run_until(t0 + secs(200.0));
    sim.nodes[p1].online = true;
    let before = waiting(&sim, alice).len();
    wait_waiting(&mut sim, alice, before + 1, 120.0);
    let n = notifier(&sim, p1);
    let fresh = n
        .subscribes
        .iter()
        .filter(|(t, _, in_dialog)| *t > t0 + secs(200.0) && !in_dialog)
        .count();
    assert!(fresh >= 1, "a new subscription: {:?}", n.subscribes);
}

#[test]
fn shutdown_unsubscribes() {
    let (mut sim, alice, p1) = setup(8, NetConfig::perfect(), MwiNotifier::new(3600));
    wait_waiting(&mut sim, alice, 1, 10.0);
    sim.act(alice, |c, now| c.shutdown(now));
    let limit = sim.elapsed() + secs(40.0);
    sim.run_until_with(limit, |s| s.core_ref(alice).is_idle());
    let last = *notifier(&sim, p1).subscribes.last().expect("a SUBSCRIBE");
    assert_eq!((last.1, last.2), (0, true), "un-SUBSCRIBE: {last:?}");
    assert!(sim.core_ref(alice).is_idle());
    assert!(!sim.core_ref(alice).mwi_subscribed(AccountId(0)));
}
