//! Admission control of the phone core in virtual time: with `call_limit` calls up, a new
//! incoming call is refused 503 with Retry-After on its server transaction alone (no call,
//! no media port); an account's own limit refuses its calls 486 Busy Here while the phone
//! still takes calls for others. Issue 19, finding 2.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use phone_sim::{NetConfig, Sim};
use tincan::phone::{AccountConfig, CallParams, EndReason, PhoneConfig, PhoneEvent, RefusedCall};
use tincan_sip::transport::{Received, Transport};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";
/// A caller that is not a phone of the simulation: its INVITEs are written by hand.
const CALLER: &str = "127.0.0.1:5070";

/// An out-of-dialog INVITE from [`CALLER`] to `user` at Bob, without an offer.
fn invite(user: &str, n: u32) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:{user}@{BOB} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-limit-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@{CALLER}>;tag=from-{n}\r\n\
         To: <sip:{user}@{BOB}>\r\n\
         Call-ID: limit-{n}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{CALLER}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// What Bob sends and asks of the media side when `payload` arrives from [`CALLER`] now:
/// (the responses, the media commands).
fn deliver(sim: &mut Sim, bob: usize, payload: Bytes) -> (Vec<String>, usize) {
    sim.act(bob, |c, now| {
        c.handle_received(
            now,
            Received {
                transport: Transport::Udp,
                source: CALLER.parse::<SocketAddr>().expect("literal address"),
                local: BOB.parse().expect("literal address"),
                connection: None,
                payload,
                arrived: Some(now),
            },
        );
        let sent = std::iter::from_fn(|| c.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.payload).into_owned())
            .collect();
        (sent, std::iter::from_fn(|| c.poll_media()).count())
    })
}

fn refused(sim: &Sim, node: usize) -> Vec<RefusedCall> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Refused(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_call_over_the_phone_limit_is_refused_503_with_retry_after_and_no_media() {
    let mut sim = Sim::new(19, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone_with(
        BOB,
        PhoneConfig {
            user: "bob".into(),
            call_limit: 2,
            ..PhoneConfig::default()
        },
    );
    // Two calls answered: Bob is at his limit.
    let mut placed = Vec::new();
    for _ in 0..2 {
        placed.push(
            sim.act(alice, |c, now| {
                c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
            })
            .expect("a callable uri"),
        );
        sim.run_for(Duration::from_millis(100));
    }
    let taken = sim.incoming(bob);
    assert_eq!(taken.len(), 2, "both calls offered");
    for b in &taken {
        sim.act(bob, |c, now| c.accept(now, *b)).expect("accepted");
    }
    sim.run_for(Duration::from_secs(1));
    assert!(placed.iter().all(|a| sim.answered(alice, *a)), "both up");

    // The third: 503 with Retry-After at once, no call, no media, reported as refused.
    let (sent, media) = deliver(&mut sim, bob, invite("bob", 3));
    let refusal = sent
        .iter()
        .find(|m| !m.starts_with("SIP/2.0 100"))
        .unwrap_or_else(|| panic!("a final response; sent {sent:?}"));
    assert!(refusal.starts_with("SIP/2.0 503 "), "{refusal}");
    assert!(refusal.contains("\r\nRetry-After: 5\r\n"), "{refusal}");
    assert_eq!(media, 0, "no media command for a refused call");
    assert_eq!(sim.core_ref(bob).calls().count(), 2, "no call state");
    assert_eq!(sim.incoming(bob).len(), 2, "not offered to the application");
    let r = refused(&sim, bob);
    assert_eq!(r.len(), 1, "reported once");
    assert_eq!((r[0].status, r[0].call_id.as_str()), (503, "limit-3@test"));

    // An outgoing third call over the limit the same way: Alice's ends rejected 503.
    let a3 = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.ended(alice, a3).map(|e| e.1), Some(EndReason::Rejected));
    assert_eq!(sim.incoming(bob).len(), 2);

    // Once a call ends there is room again.
    sim.act(alice, |c, now| c.hangup(now, placed[0]))
        .expect("hangup");
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.core_ref(bob).calls().count(), 1);
    let (sent, _) = deliver(&mut sim, bob, invite("bob", 4));
    assert!(
        sent.iter().all(|m| m.starts_with("SIP/2.0 100")),
        "taken: {sent:?}"
    );
    assert_eq!(sim.incoming(bob).len(), 3);
}

#[test]
fn an_account_at_its_limit_is_busy_486_while_the_phone_takes_other_calls() {
    let mut sim = Sim::new(20, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    let mut account = AccountConfig::new("bob", "sip:bob@example.test", "bob", "secret");
    account.register = false;
    account.call_limit = Some(1);
    sim.add_account(bob, account);

    let (sent, _) = deliver(&mut sim, bob, invite("bob", 1));
    assert!(
        sent.iter().all(|m| m.starts_with("SIP/2.0 100")),
        "{sent:?}"
    );
    assert_eq!(sim.incoming(bob).len(), 1, "the account's first call");

    let (sent, media) = deliver(&mut sim, bob, invite("bob", 2));
    let refusal = sent
        .iter()
        .find(|m| !m.starts_with("SIP/2.0 100"))
        .unwrap_or_else(|| panic!("a final response; sent {sent:?}"));
    assert!(refusal.starts_with("SIP/2.0 486 "), "{refusal}");
    assert!(!refusal.contains("Retry-After"), "{refusal}");
    assert_eq!(media, 0);
    assert_eq!(sim.incoming(bob).len(), 1, "the second is not offered");
    let r = refused(&sim, bob);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 486);
    assert!(r[0].account.is_some(), "refused for the account");

    // A call for another user of the phone is still taken.
    let (sent, _) = deliver(&mut sim, bob, invite("carol", 3));
    assert!(
        sent.iter().all(|m| m.starts_with("SIP/2.0 100")),
        "{sent:?}"
    );
    assert_eq!(sim.incoming(bob).len(), 2);
}

/// No media port can be bound (ports or file descriptors exhausted): the call is refused as
/// overload, 503, not 500 (RFC 3261 §21.5.4: a proxy may then try the user elsewhere).
#[test]
fn a_call_without_a_media_port_is_refused_503() {
    let mut sim = Sim::new(5, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    sim.phone_mut(bob).no_media_ports = true;
    let uri = format!("sip:bob@{BOB}");
    let a = sim
        .act(alice, |c, now| c.call(now, &uri, CallParams::default()))
        .expect("a callable uri");
    assert!(sim.run_until_with(Duration::from_secs(5), |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    assert!(sim.run_until_with(Duration::from_secs(10), |s| s.ended(alice, a).is_some()));
    let end = sim
        .call_events(alice)
        .into_iter()
        .find_map(|(_, c, e)| match e {
            tincan::phone::CallEvent::Ended(end) if c == a => Some(end),
            _ => None,
        })
        .expect("ended");
    assert_eq!(end.reason, EndReason::Rejected, "{end:?}");
    assert_eq!(end.status, Some(503), "{end:?}");
}
