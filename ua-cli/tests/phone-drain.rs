//! Graceful drain and OPTIONS availability of the phone core in virtual time (issue 20): a
//! draining phone refuses new INVITEs and answers out-of-dialog OPTIONS 503 with the drain's
//! Retry-After while its calls go on (re-INVITEs, BYE), and reports `PhoneEvent::Drained`
//! once the last call ends; a full phone (at `call_limit`) answers OPTIONS 503 as well, so a
//! dispatcher probing with OPTIONS stops sending, and 200 again when a slot frees.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallParams, PhoneConfig, PhoneEvent};
use tincan_sip::transport::{Received, Transport};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";
/// A dispatcher or caller that is not a phone of the simulation: its requests are written
/// by hand.
const PROBER: &str = "127.0.0.1:5070";

/// An out-of-dialog `method` (INVITE without an offer, or OPTIONS) from [`PROBER`] to Bob.
fn request(method: &str, n: u32) -> Bytes {
    Bytes::from(format!(
        "{method} sip:bob@{BOB} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PROBER};branch=z9hG4bK-drain-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:prober@{PROBER}>;tag=from-{n}\r\n\
         To: <sip:bob@{BOB}>\r\n\
         Call-ID: drain-{n}@test\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:prober@{PROBER}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// Bob's final response to `payload` from [`PROBER`], delivered now (`None`: only a 100).
fn final_response(sim: &mut Sim, bob: usize, payload: Bytes) -> Option<String> {
    sim.act(bob, |c, now| {
        c.handle_received(
            now,
            Received {
                transport: Transport::Udp,
                source: PROBER.parse::<SocketAddr>().expect("literal address"),
                local: BOB.parse().expect("literal address"),
                connection: None,
                payload,
                arrived: Some(now),
            },
        );
        std::iter::from_fn(|| c.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.payload).into_owned())
            .find(|m| !m.starts_with("SIP/2.0 100"))
    })
}

fn drained(sim: &Sim, node: usize) -> usize {
    sim.phone(node)
        .events
        .iter()
        .filter(|(_, e)| matches!(e, PhoneEvent::Drained))
        .count()
}

#[test]
fn a_draining_phone_refuses_new_calls_and_options_503_while_its_calls_go_on() {
    let mut sim = Sim::new(20, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    assert!(sim.run_until_with(Duration::from_secs(5), |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    assert!(sim.run_until_with(Duration::from_secs(5), |s| s.answered(alice, a)));

    let ok = final_response(&mut sim, bob, request("OPTIONS", 1)).expect("an answer");
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");

    sim.act(bob, |c, now| c.drain(now, Duration::from_millis(29_500)));
    assert!(sim.core_ref(bob).is_draining());
    sim.run_for(Duration::from_millis(100));
    assert_eq!(drained(&sim, bob), 0, "a call is still up");

    // New INVITEs and OPTIONS: 503 with the drain's Retry-After (rounded up), no call.
    let refusal = final_response(&mut sim, bob, request("INVITE", 2)).expect("a refusal");
    assert!(refusal.starts_with("SIP/2.0 503 "), "{refusal}");
    assert!(refusal.contains("\r\nRetry-After: 30\r\n"), "{refusal}");
    assert_eq!(sim.incoming(bob).len(), 1, "not offered");
    assert_eq!(sim.core_ref(bob).calls().count(), 1);
    let busy = final_response(&mut sim, bob, request("OPTIONS", 3)).expect("an answer");
    assert!(busy.starts_with("SIP/2.0 503 "), "{busy}");
    assert!(busy.contains("\r\nRetry-After: 30\r\n"), "{busy}");

    // The call goes on: a hold (re-INVITE) from Alice still works in the dialog.
    sim.act(alice, |c, now| c.hold(now, a)).expect("hold");
    sim.run_for(Duration::from_secs(1));
    assert!(
        sim.call_events(bob)
            .iter()
            .any(|(_, c, e)| *c == b && matches!(e, tincan::phone::CallEvent::Hold { .. })),
        "the re-INVITE is taken while draining"
    );
    assert_eq!(drained(&sim, bob), 0);

    // The last call ends: drained, once; still 503 afterwards.
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    assert!(sim.run_until_with(Duration::from_secs(5), |s| drained(s, bob) == 1));
    let ended_at = sim.ended(bob, b).expect("Bob's call ended").0;
    let drained_at = sim
        .phone(bob)
        .events
        .iter()
        .find(|(_, e)| matches!(e, PhoneEvent::Drained))
        .map(|(t, _)| *t)
        .expect("drained");
    assert!(drained_at >= ended_at, "after the last call's end");
    sim.run_for(Duration::from_secs(1));
    assert_eq!(drained(&sim, bob), 1, "once");
    let busy = final_response(&mut sim, bob, request("OPTIONS", 4)).expect("an answer");
    assert!(busy.starts_with("SIP/2.0 503 "), "{busy}");
}

#[test]
fn an_idle_phone_is_drained_at_once() {
    let mut sim = Sim::new(21, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    sim.act(bob, |c, now| c.drain(now, Duration::from_secs(60)));
    sim.run_for(Duration::from_millis(10));
    assert_eq!(drained(&sim, bob), 1);
    let refusal = final_response(&mut sim, bob, request("INVITE", 1)).expect("a refusal");
    assert!(refusal.starts_with("SIP/2.0 503 "), "{refusal}");
    assert!(refusal.contains("\r\nRetry-After: 60\r\n"), "{refusal}");
    let refused: Vec<u16> = sim
        .phone(bob)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Refused(r) => Some(r.status),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec![503], "reported as refused");
}

#[test]
fn a_full_phone_answers_options_503_until_a_slot_frees() {
    let mut sim = Sim::new(22, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone_with(
        BOB,
        PhoneConfig {
            user: "bob".into(),
            call_limit: 1,
            ..PhoneConfig::default()
        },
    );
    let ok = final_response(&mut sim, bob, request("OPTIONS", 1)).expect("an answer");
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    assert!(ok.contains("\r\nAllow: "), "{ok}");

    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    assert!(sim.run_until_with(Duration::from_secs(5), |s| !s.incoming(bob).is_empty()));
    // Full: the overload Retry-After (the endpoint's, 5 s).
    let busy = final_response(&mut sim, bob, request("OPTIONS", 2)).expect("an answer");
    assert!(busy.starts_with("SIP/2.0 503 "), "{busy}");
    assert!(busy.contains("\r\nRetry-After: 5\r\n"), "{busy}");

    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.reject(now, b, 486))
        .expect("declined");
    assert!(sim.run_until_with(Duration::from_secs(5), |s| s.ended(alice, a).is_some()));
    assert!(sim.run_until_with(Duration::from_secs(5), |s| {
        s.core_ref(bob).calls().next().is_none()
    }));
    let ok = final_response(&mut sim, bob, request("OPTIONS", 3)).expect("an answer");
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    assert_eq!(drained(&sim, bob), 0, "not draining");
}
