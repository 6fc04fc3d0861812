//! Busy lamps (RFC 4235 dialog event package over RFC 6665) between phone cores in virtual
//! time: alice watches bob through the proxy (her SUBSCRIBE challenged 407 and answered),
//! bob's phone is the notifier of its own calls; carol calls bob: idle, ringing, busy, idle.
//! At 30 % loss the lamp still ends right. A SUBSCRIBE for another package gets 489, one
//! too brief 423; a flood of NOTIFYs for no subscription is answered 481 each.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use bytes::Bytes;
use phone_sim::{NetConfig, P1, Sim, account};
use tincan::phone::blf::Lamp;
use tincan::phone::{CallParams, PhoneEvent};
use tincan_sip::transport::{Received, Transport};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.2:5062";
const CAROL: &str = "127.0.0.3:5063";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The lamps node reported, in order.
fn lamps(sim: &Sim, node: usize) -> Vec<Lamp> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Lamp(l) => Some(l.lamp),
            _ => None,
        })
        .collect()
}

fn wait_lamp(sim: &mut Sim, node: usize, lamp: Lamp, limit: f64) {
    let limit = sim.elapsed() + secs(limit);
    let ok = sim.run_until_with(limit, |s| lamps(s, node).last() == Some(&lamp));
    assert!(
        ok,
        "lamp {lamp:?} expected, got {:?}; trace:\n{}",
        lamps(sim, node),
        sim.trace
            .iter()
            .filter(|l| l.contains("SUBSCRIBE") || l.contains("NOTIFY") || l.contains("REGISTER"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// alice (watching bob by config), bob and carol registered at P1.
fn setup(seed: u64, net: NetConfig) -> (Sim, usize, usize, usize) {
    let mut sim = Sim::new(seed, net);
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let carol = sim.add_phone(CAROL, "carol");
    sim.add_proxy(P1);
    let mut a = account("alice", &[P1]);
    a.blf = vec!["bob".to_owned()];
    sim.add_account(alice, a);
    sim.add_account(bob, account("bob", &[P1]));
    sim.add_account(carol, account("carol", &[P1]));
    (sim, alice, bob, carol)
}

/// carol calls bob; bob answers after ringing a while, then carol hangs up. alice's lamp of
/// bob goes ringing, busy, idle.
fn call_and_watch(sim: &mut Sim, alice: usize, bob: usize, carol: usize, limit: f64) {
    let c = sim
        .act(carol, |core, now| {
            core.call(now, "bob", CallParams::default())
        })
        .expect("a call");
    wait_lamp(sim, alice, Lamp::Ringing, limit);
    let b = sim
        .phone(bob)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            PhoneEvent::Incoming(i) => Some(i.call),
            _ => None,
        })
        .expect("bob's incoming call");
    sim.act(bob, |core, now| core.accept(now, b))
        .expect("accepted");
    wait_lamp(sim, alice, Lamp::Busy, limit);
    sim.run_for(secs(5.0));
    sim.act(carol, |core, now| core.hangup(now, c))
        .expect("hangup");
    wait_lamp(sim, alice, Lamp::Idle, limit);
}

#[test]
fn a_watched_phone_goes_idle_ringing_busy_idle() {
    let (mut sim, alice, bob, carol) = setup(1, NetConfig::perfect());
    wait_lamp(&mut sim, alice, Lamp::Idle, 10.0);
    assert_eq!(sim.core_ref(bob).dialog_subscribers(), 1);
    let watches = sim.core_ref(alice).watches();
    assert_eq!(watches.len(), 1);
    assert_eq!(watches[0].1, "sip:bob@example.test");
    // The SUBSCRIBE was challenged by the proxy and sent again with credentials.
    assert_eq!(sim.sent(alice, "SUBSCRIBE").len(), 2);
    call_and_watch(&mut sim, alice, bob, carol, 10.0);
    assert_eq!(
        lamps(&sim, alice),
        [Lamp::Idle, Lamp::Ringing, Lamp::Busy, Lamp::Idle]
    );
    // An hour later the subscription is still there, refreshed.
    sim.run_for(secs(3700.0));
    assert_eq!(sim.core_ref(bob).dialog_subscribers(), 1);
    assert_eq!(lamps(&sim, alice).last(), Some(&Lamp::Idle));
    assert!(sim.sent(alice, "SUBSCRIBE").len() >= 3, "refreshed");
    // Unwatching ends bob's notifier.
    let watch = sim.core_ref(alice).watches()[0].0;
    sim.act(alice, |core, now| core.unwatch_dialogs(now, watch));
    sim.run_for(secs(5.0));
    let tail: Vec<_> = sim.trace.iter().rev().take(12).rev().cloned().collect();
    assert_eq!(sim.core_ref(bob).dialog_subscribers(), 0, "{tail:#?}");
    assert!(sim.core_ref(alice).watches().is_empty());
}

#[test]
fn at_30_percent_loss_the_lamp_follows() {
    for seed in 1..=5 {
        let (mut sim, alice, bob, carol) = setup(seed, NetConfig::lossy(0.3));
        // A SUBSCRIBE that reaches the proxy before bob registered gets 404: again 60 s later.
        wait_lamp(&mut sim, alice, Lamp::Idle, 150.0);
        call_and_watch(&mut sim, alice, bob, carol, 60.0);
    }
}

/// Hands `raw` to a phone as if it came over UDP from `from`.
fn inject(sim: &mut Sim, node: usize, from: &str, raw: String) {
    let local = sim.nodes[node].addr;
    let received = Received {
        transport: Transport::Udp,
        source: from.parse().expect("an address"),
        local,
        connection: None,
        payload: Bytes::from(raw),
        arrived: None,
    };
    sim.act(node, |c, now| c.handle_received(now, received));
}

fn subscribe(n: usize, event: &str, expires: u32) -> String {
    format!(
        "SUBSCRIBE sip:bob@{BOB} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.99:5060;branch=z9hG4bKs{n}\r\n\
         From: <sip:x@example.test>;tag=x{n}\r\n\
         To: <sip:bob@example.test>\r\n\
         Call-ID: s{n}@x\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:x@127.0.0.99:5060>\r\n\
         Event: {event}\r\n\
         Expires: {expires}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn notify(n: usize) -> String {
    let body = "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"1\" state=\"full\" entity=\"sip:x@y\"/>";
    format!(
        "NOTIFY sip:bob@{BOB} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.99:5060;branch=z9hG4bKn{n}\r\n\
         From: <sip:x@example.test>;tag=x{n}\r\n\
         To: <sip:bob@example.test>;tag=nobody{n}\r\n\
         Call-ID: n{n}@x\r\n\
         CSeq: 1 NOTIFY\r\n\
         Contact: <sip:x@127.0.0.99:5060>\r\n\
         Event: dialog\r\n\
         Subscription-State: active;expires=600\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/dialog-info+xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The first lines of what node sent to `to`.
fn responses_to(sim: &Sim, node: usize, to: &str) -> Vec<String> {
    let to: std::net::SocketAddr = to.parse().expect("an address");
    sim.nodes[node]
        .sent
        .iter()
        .filter(|(_, a, l)| *a == to && l.starts_with("SIP/2.0"))
        .map(|(_, _, l)| l.clone())
        .collect()
}

#[test]
fn refusals_and_a_flood_of_unknown_notifies() {
    let (mut sim, _alice, bob, _carol) = setup(9, NetConfig::perfect());
    sim.run_for(secs(3.0));
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        subscribe(1, "presence", 600),
    );
    inject(&mut sim, bob, "127.0.0.99:5060", subscribe(2, "dialog", 5));
    let mut to_nobody = subscribe(3, "dialog", 600);
    to_nobody = to_nobody.replace("To: <sip:bob@", "To: <sip:nobody@");
    inject(&mut sim, bob, "127.0.0.99:5060", to_nobody);
    for n in 1..=2000 {
        inject(&mut sim, bob, "127.0.0.99:5060", notify(n));
    }
    let answers = responses_to(&sim, bob, "127.0.0.99:5060");
    assert_eq!(
        answers.len(),
        2003,
        "{:?}",
        &answers[..3.min(answers.len())]
    );
    assert!(answers[0].starts_with("SIP/2.0 489"), "{}", answers[0]);
    assert!(answers[1].starts_with("SIP/2.0 423"), "{}", answers[1]);
    assert!(answers[2].starts_with("SIP/2.0 404"), "{}", answers[2]);
    assert!(answers[3..].iter().all(|r| r.starts_with("SIP/2.0 481")));
    assert_eq!(sim.core_ref(bob).dialog_subscribers(), 1, "alice's only");
}
