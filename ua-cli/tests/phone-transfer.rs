//! Call transfer (RFC 3515 REFER, RFC 3892 Referred-By, RFC 3891 Replaces, RFC 4488) in the
//! phone core, with three phones in one virtual-time simulation: Alice calls Bob, Bob
//! transfers Alice to Carol (blind, or attended with Replaces), Alice ends up talking to
//! Carol and Bob's calls end; a refused REFER leaves the call up; a lost NOTIFY is sent again.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, P1, Sim, account};
use tincan::phone::{CallEvent, CallId, CallParams, PhoneConfig, TransferPolicy};
use tincan_sip::message::{HeaderName, Message};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";
const CAROL: &str = "127.0.0.1:5063";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn phone(sim: &mut Sim, addr: &str, user: &str, policy: TransferPolicy) -> usize {
    let config = PhoneConfig {
        user: user.to_owned(),
        accept_transfer: policy,
        ..PhoneConfig::default()
    };
    sim.add_phone_with(addr, config)
}

/// `from` calls `user` at `addr`, who answers: (caller's call, callee's call).
fn connect(sim: &mut Sim, from: usize, to: usize, user: &str, addr: &str) -> (CallId, CallId) {
    let before = sim.incoming(to).len();
    let a = sim
        .act(from, |c, now| {
            c.call(now, &format!("sip:{user}@{addr}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| s.incoming(to).len() > before));
    let b = sim.incoming(to)[before];
    sim.act(to, |c, now| c.accept(now, b)).expect("accepted");
    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| s.answered(from, a) && s.answered(to, b)));
    // The callee's call is up once the ACK is in.
    sim.run_for(secs(0.5));
    (a, b)
}

/// The whole messages a node sent whose first line starts with `prefix`.
fn messages(sim: &Sim, node: usize, prefix: &str) -> Vec<(Duration, Message)> {
    sim.nodes[node]
        .sent_messages
        .iter()
        .filter(|(_, _, b)| b.starts_with(prefix.as_bytes()))
        .map(|(t, _, b)| {
            (
                *t,
                Message::parse(b.clone()).expect("our own messages parse"),
            )
        })
        .collect()
}

/// The transfer events of one call of a node, in order.
fn transfer_events(sim: &Sim, node: usize, call: CallId) -> Vec<CallEvent> {
    sim.call_events(node)
        .into_iter()
        .filter(|(_, c, e)| {
            *c == call
                && matches!(
                    e,
                    CallEvent::TransferRequested { .. }
                        | CallEvent::TransferStarted { .. }
                        | CallEvent::TransferProgress { .. }
                        | CallEvent::TransferSucceeded { .. }
                        | CallEvent::TransferFailed { .. }
                        | CallEvent::Replaced { .. }
                )
        })
        .map(|(_, _, e)| e)
        .collect()
}

/// The call Alice placed for the transfer (her `TransferStarted`).
fn started(sim: &Sim, node: usize, call: CallId) -> Option<CallId> {
    transfer_events(sim, node, call)
        .into_iter()
        .find_map(|e| match e {
            CallEvent::TransferStarted { new_call } => Some(new_call),
            _ => None,
        })
}

fn succeeded(sim: &Sim, node: usize, call: CallId) -> bool {
    transfer_events(sim, node, call)
        .iter()
        .any(|e| matches!(e, CallEvent::TransferSucceeded { status: 200 }))
}

/// Carol answers the transferred call: Alice's new call and Carol's call.
fn carol_answers(sim: &mut Sim, alice: usize, carol: usize, a: CallId) -> (CallId, CallId) {
    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(carol).is_empty()));
    let c = sim.incoming(carol)[0];
    let a2 = started(sim, alice, a).expect("alice placed the new call");
    sim.act(carol, |core, now| core.accept(now, c))
        .expect("accepted");
    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| s.answered(alice, a2) && s.answered(carol, c)));
    (a2, c)
}

#[test]
fn blind_transfer_puts_alice_through_to_carol_and_ends_bobs_call() {
    let mut sim = Sim::new(21, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", TransferPolicy::Ask);
    let bob = phone(&mut sim, BOB, "bob", TransferPolicy::Ask);
    let carol = phone(&mut sim, CAROL, "carol", TransferPolicy::Ask);
    let (a, b) = connect(&mut sim, alice, bob, "bob", BOB);

    sim.act(bob, |c, now| {
        c.transfer(now, b, &format!("sip:carol@{CAROL}"))
    })
    .expect("the call is up");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !transfer_events(s, alice, a).is_empty()));
    let asked = transfer_events(&sim, alice, a);
    let [CallEvent::TransferRequested { to, referred_by }] = asked.as_slice() else {
        panic!("{asked:?}");
    };
    assert_eq!(to, &format!("sip:carol@{CAROL}"));
    assert!(
        referred_by.as_deref().is_some_and(|r| r.contains("bob@")),
        "{referred_by:?}"
    );
    let refer = &messages(&sim, bob, "REFER")[0].1;
    assert_eq!(
        refer.header(HeaderName::ReferTo),
        Some(format!("<sip:carol@{CAROL}>").as_str())
    );

    sim.act(alice, |c, now| c.accept_transfer(now, a))
        .expect("a REFER waits");
    let (a2, c) = carol_answers(&mut sim, alice, carol, a);
    // RFC 3892: the new INVITE says who referred Alice.
    let invite = &messages(&sim, alice, "INVITE sip:carol")[0].1;
    assert!(
        invite
            .header(HeaderName::ReferredBy)
            .is_some_and(|r| r.contains("bob@")),
        "{invite:?}"
    );

    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| s.ended(bob, b).is_some()
        && s.ended(alice, a).is_some()));
    // Bob saw the REFER accepted, Carol's call trying, then answered.
    let seen = transfer_events(&sim, bob, b);
    assert!(
        matches!(
            seen.as_slice(),
            [
                CallEvent::TransferProgress { status: 202, .. },
                CallEvent::TransferProgress { status: 100, .. },
                ..,
                CallEvent::TransferSucceeded { status: 200 }
            ]
        ),
        "{seen:?}"
    );
    // The NOTIFYs carry sipfrag status lines, the last one ends the subscription.
    let notifies = messages(&sim, alice, "NOTIFY");
    let last = &notifies.last().expect("notifies sent").1;
    assert_eq!(last.body().as_ref(), b"SIP/2.0 200 OK\r\n");
    assert!(
        last.header(HeaderName::SubscriptionState)
            .is_some_and(|s| s.starts_with("terminated"))
    );
    assert_eq!(last.header(HeaderName::Event), Some("refer"));
    // Alice and Carol talk on.
    sim.run_for(secs(5.0));
    assert!(sim.ended(alice, a2).is_none() && sim.ended(carol, c).is_none());
}

#[test]
fn a_refer_is_refused_by_policy_or_by_the_application_and_the_call_goes_on() {
    let mut sim = Sim::new(22, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", TransferPolicy::Never);
    let bob = phone(&mut sim, BOB, "bob", TransferPolicy::Ask);
    let carol = phone(&mut sim, CAROL, "carol", TransferPolicy::Ask);
    let (a, b) = connect(&mut sim, alice, bob, "bob", BOB);
    sim.act(bob, |c, now| {
        c.transfer(now, b, &format!("sip:carol@{CAROL}"))
    })
    .expect("the call is up");
    sim.run_for(secs(2.0));
    let seen = transfer_events(&sim, bob, b);
    assert!(
        matches!(
            seen.as_slice(),
            [CallEvent::TransferFailed { status: 603, .. }]
        ),
        "{seen:?}"
    );
    assert!(transfer_events(&sim, alice, a).is_empty());
    assert!(sim.incoming(carol).is_empty());

    // Bob asks again, Carol (asked) refuses: 603 too.
    let (c, b2) = connect(&mut sim, carol, bob, "bob", BOB);
    sim.act(bob, |core, now| {
        core.transfer(now, b2, "sip:dave@127.0.0.1:5070")
    })
    .expect("the call is up");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !transfer_events(s, carol, c).is_empty()));
    sim.act(carol, |core, now| core.reject_transfer(now, c))
        .expect("a REFER waits");
    sim.run_for(secs(2.0));
    let seen = transfer_events(&sim, bob, b2);
    assert!(
        matches!(
            seen.as_slice(),
            [CallEvent::TransferFailed { status: 603, .. }]
        ),
        "{seen:?}"
    );
    // Nothing to accept any more.
    assert!(
        sim.act(carol, |core, now| core.accept_transfer(now, c))
            .is_err()
    );
    assert!(sim.ended(bob, b).is_none() && sim.ended(bob, b2).is_none());
    assert!(sim.ended(alice, a).is_none() && sim.ended(carol, c).is_none());
}

#[test]
fn a_lost_notify_is_sent_again_and_the_transfer_completes() {
    let mut sim = Sim::new(23, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", TransferPolicy::Always);
    let bob = phone(&mut sim, BOB, "bob", TransferPolicy::Ask);
    let carol = phone(&mut sim, CAROL, "carol", TransferPolicy::Ask);
    let (a, b) = connect(&mut sim, alice, bob, "bob", BOB);
    // The first copy of the final NOTIFY (Carol answered) is lost.
    sim.drop_next
        .push(("Subscription-State: terminated".to_owned(), 1));
    sim.act(bob, |c, now| {
        c.transfer(now, b, &format!("sip:carol@{CAROL}"))
    })
    .expect("the call is up");
    let (_a2, _c) = carol_answers(&mut sim, alice, carol, a);
    let limit = sim.elapsed() + secs(10.0);
    assert!(sim.run_until_with(limit, |s| s.ended(bob, b).is_some()
        && s.ended(alice, a).is_some()));
    assert!(succeeded(&sim, bob, b));
    // The final NOTIFY went twice: lost, then again after Timer E (500 ms).
    let finals: Vec<Duration> = messages(&sim, alice, "NOTIFY")
        .into_iter()
        .filter(|(_, m)| m.body().starts_with(b"SIP/2.0 200"))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(finals.len(), 2, "{finals:?}");
    let gap = finals[1] - finals[0];
    assert!(gap >= secs(0.45) && gap < secs(0.6), "{finals:?}");
    // Alice hung up her old call only after the final NOTIFY got its answer.
    let (ended_at, _) = sim.ended(alice, a).expect("ended");
    assert!(ended_at > finals[1], "{ended_at:?} {finals:?}");
}

#[test]
fn attended_transfer_replaces_the_consultation_call() {
    let mut sim = Sim::new(24, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", TransferPolicy::Always);
    let bob = phone(&mut sim, BOB, "bob", TransferPolicy::Ask);
    let carol = phone(&mut sim, CAROL, "carol", TransferPolicy::Ask);
    let (a, b) = connect(&mut sim, alice, bob, "bob", BOB);
    // Bob consults Carol, then transfers Alice to her.
    let (b2, c) = connect(&mut sim, bob, carol, "carol", CAROL);
    sim.act(bob, |core, now| core.transfer_attended(now, b, b2))
        .expect("both calls are up");
    let limit = sim.elapsed() + secs(5.0);
    assert!(sim.run_until_with(limit, |s| {
        s.ended(bob, b).is_some() && s.ended(bob, b2).is_some() && s.ended(carol, c).is_some()
    }));
    assert!(succeeded(&sim, bob, b));
    // Carol's new call took the consultation call's place without ringing.
    assert!(sim.incoming(carol).len() == 1, "no second ring");
    let replaced = transfer_events(&sim, carol, c);
    let [CallEvent::Replaced { by }] = replaced.as_slice() else {
        panic!("{replaced:?}");
    };
    assert!(sim.answered(carol, *by));
    let invite = &messages(&sim, alice, "INVITE sip:carol")[0].1;
    assert!(invite.header(HeaderName::Replaces).is_some(), "{invite:?}");
    let a2 = started(&sim, alice, a).expect("alice placed the new call");
    sim.run_for(secs(5.0));
    assert!(sim.answered(alice, a2));
    assert!(sim.ended(alice, a2).is_none() && sim.ended(carol, *by).is_none());
}

#[test]
fn an_invite_with_an_unknown_replaces_gets_481() {
    let mut sim = Sim::new(25, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", TransferPolicy::Ask);
    let bob = phone(&mut sim, BOB, "bob", TransferPolicy::Ask);
    let (_a, _b) = connect(&mut sim, alice, bob, "bob", BOB);
    let invite = format!(
        "INVITE sip:bob@{BOB} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ALICE};branch=z9hG4bK-repl-x\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@{ALICE}>;tag=x1\r\n\
         To: <sip:bob@{BOB}>\r\n\
         Call-ID: replaces-unknown@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{ALICE}>\r\n\
         Replaces: nosuchcall@test;to-tag=1;from-tag=2\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sim.inject(alice, BOB.parse().expect("literal"), invite.into());
    sim.run_for(secs(1.0));
    // (The 481 is retransmitted until the ACK, which nobody sends here.)
    assert!(!sim.sent(bob, "SIP/2.0 481").is_empty());
    assert!(
        sim.sent(bob, "SIP/2.0 200").len() == 1,
        "only the first call's 200"
    );
    assert_eq!(sim.incoming(bob).len(), 1, "no new call");
}

#[test]
fn a_refer_challenged_by_the_proxy_is_sent_again_with_credentials() {
    let mut sim = Sim::new(26, NetConfig::perfect());
    let p1 = sim.add_proxy(P1);
    let alice = phone(&mut sim, ALICE, "alice", TransferPolicy::Ask);
    let bob = phone(&mut sim, BOB, "bob", TransferPolicy::Always);
    let carol = phone(&mut sim, CAROL, "carol", TransferPolicy::Ask);
    for (node, user) in [(alice, "alice"), (bob, "bob"), (carol, "carol")] {
        sim.add_account(node, account(user, &[P1]));
    }
    sim.run_for(secs(5.0));
    let a = sim
        .act(alice, |c, now| c.call(now, "bob", CallParams::default()))
        .expect("a call");
    let limit = sim.elapsed() + secs(10.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    let limit = sim.elapsed() + secs(10.0);
    assert!(sim.run_until_with(limit, |s| s.answered(alice, a)));
    sim.run_for(secs(1.0));

    // The proxy challenges in-dialog requests from now on: Alice's REFER gets a 407 and goes
    // again with her credentials (and the next CSeq).
    sim.proxy_mut(p1).challenge_in_dialog = true;
    sim.act(alice, |c, now| c.transfer(now, a, "carol"))
        .expect("the call is up");
    let limit = sim.elapsed() + secs(10.0);
    assert!(sim.run_until_with(limit, |s| {
        transfer_events(s, alice, a)
            .iter()
            .any(|e| matches!(e, CallEvent::TransferProgress { status: 202, .. }))
    }));
    let refers = messages(&sim, alice, "REFER");
    assert_eq!(refers.len(), 2, "{refers:?}");
    assert!(refers[1].1.header(HeaderName::ProxyAuthorization).is_some());
    let seqs: Vec<u32> = refers
        .iter()
        .map(|(_, m)| m.cseq().unwrap().unwrap().seq)
        .collect();
    assert_eq!(seqs[1], seqs[0] + 1, "{seqs:?}");

    // Bob's NOTIFYs are challenged and answered the same way; Carol answers; done.
    let limit = sim.elapsed() + secs(10.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(carol).is_empty()));
    let c = sim.incoming(carol)[0];
    sim.act(carol, |core, now| core.accept(now, c))
        .expect("accepted");
    let limit = sim.elapsed() + secs(20.0);
    assert!(
        sim.run_until_with(limit, |s| succeeded(s, alice, a)
            && s.ended(bob, b).is_some()),
        "{:?}",
        transfer_events(&sim, alice, a)
    );
}
