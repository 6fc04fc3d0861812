//! Work too old to matter, in virtual time: a request that waited in the driver's queue
//! longer than its sender's own timeout (64*T1: Timer B for an INVITE, F for the rest) is
//! dropped unanswered, and while the queue says the phone is behind (a wait over
//! `max_queue_delay`) a new INVITE is shed 503 while the BYE of a call already up and an
//! OPTIONS are still answered. Issue 19, finding 2.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallId, EndReason, MediaCommand};
use tincan_sip::transport::{Received, Transport};

const BOB: &str = "127.0.0.1:5062";
const CALLER: &str = "127.0.0.1:5070";

fn request(method: &str, n: u32, to_tag: Option<&str>, cseq: u32) -> Bytes {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    Bytes::from(format!(
        "{method} sip:bob@{BOB} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-stale-{n}-{method};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@{CALLER}>;tag=from-{n}\r\n\
         To: <sip:bob@{BOB}>{to_tag}\r\n\
         Call-ID: stale-{n}@test\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:caller@{CALLER}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// Hands Bob `payload` as read off the socket `waited` ago; returns the first lines he
/// sends at once.
fn deliver(sim: &mut Sim, bob: usize, payload: Bytes, waited: Duration) -> Vec<String> {
    sim.act(bob, |c, now| {
        let arrived: Instant = now.checked_sub(waited).expect("the epoch is long past");
        c.handle_received(
            now,
            Received {
                transport: Transport::Udp,
                source: CALLER.parse::<SocketAddr>().expect("literal address"),
                local: BOB.parse().expect("literal address"),
                connection: None,
                payload,
                arrived: Some(arrived),
            },
        );
        std::iter::from_fn(|| c.poll_transmit())
            .map(|t| {
                String::from_utf8_lossy(&t.payload)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    })
}

#[test]
fn requests_older_than_their_senders_timeout_are_dropped_unanswered() {
    let mut sim = Sim::new(21, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    // The caller's Timer B (32 s) ran out while it waited: no answer, no call.
    let sent = deliver(
        &mut sim,
        bob,
        request("INVITE", 1, None, 1),
        Duration::from_secs(33),
    );
    assert!(sent.is_empty(), "{sent:?}");
    assert!(sim.incoming(bob).is_empty(), "no call");
    assert_eq!(sim.core_ref(bob).calls().count(), 0);
    // Timer F likewise for an OPTIONS.
    let sent = deliver(
        &mut sim,
        bob,
        request("OPTIONS", 2, None, 1),
        Duration::from_secs(33),
    );
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(sim.core_ref(bob).endpoint().stats().stale, 2);
    // The same requests fresh are answered.
    let sent = deliver(
        &mut sim,
        bob,
        request("OPTIONS", 3, None, 1),
        Duration::ZERO,
    );
    assert_eq!(sent, vec!["SIP/2.0 200 OK".to_owned()]);
    deliver(&mut sim, bob, request("INVITE", 4, None, 1), Duration::ZERO);
    assert_eq!(sim.incoming(bob).len(), 1);
}

#[test]
fn behind_a_backlog_a_new_invite_is_shed_503_and_the_bye_of_a_call_up_is_answered() {
    let mut sim = Sim::new(22, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    // A call up.
    deliver(&mut sim, bob, request("INVITE", 1, None, 1), Duration::ZERO);
    let call = sim.incoming(bob)[0];
    let local_tag = answer(&mut sim, bob, call);
    deliver(
        &mut sim,
        bob,
        request("ACK", 1, Some(&local_tag), 1),
        Duration::ZERO,
    );

    // Then a backlog: everything waited 2 s in the queue (past max_queue_delay, within
    // the senders' timeouts). The new INVITEs are shed; the BYE and the OPTIONS are not.
    let waited = Duration::from_secs(2);
    for n in 10..14 {
        let sent = deliver(&mut sim, bob, request("INVITE", n, None, 1), waited);
        assert_eq!(sent, vec!["SIP/2.0 503 Service Unavailable".to_owned()]);
    }
    let sent = deliver(&mut sim, bob, request("OPTIONS", 20, None, 1), waited);
    assert_eq!(sent, vec!["SIP/2.0 200 OK".to_owned()]);
    let sent = deliver(
        &mut sim,
        bob,
        request("BYE", 1, Some(&local_tag), 2),
        waited,
    );
    assert!(
        sent.iter().any(|l| l == "SIP/2.0 200 OK"),
        "the BYE is answered: {sent:?}"
    );
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.ended(bob, call).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    assert_eq!(sim.incoming(bob).len(), 1, "no shed INVITE became a call");
    assert_eq!(sim.core_ref(bob).calls().count(), 0, "nothing left up");
    assert_eq!(sim.core_ref(bob).endpoint().stats().overloaded, 4);
}

/// Answers `call` at Bob (the harness's part of the driver done by hand, so that the 200
/// can be read): Bob's tag in the To of his 200.
fn answer(sim: &mut Sim, bob: usize, call: CallId) -> String {
    sim.act(bob, |c, now| {
        c.accept(now, call).expect("an incoming call");
        while let Some(m) = c.poll_media() {
            if let MediaCommand::Bind { call, .. } = m {
                c.handle_media_bound(now, call, Ok((40_000, Some(40_001))));
            }
        }
        let ok = std::iter::from_fn(|| c.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.payload).into_owned())
            .find(|m| m.starts_with("SIP/2.0 200"))
            .expect("the 200 goes out once the ports are bound");
        let to = ok
            .lines()
            .find(|l| l.starts_with("To:"))
            .expect("a To header");
        to.split(";tag=")
            .nth(1)
            .expect("a To tag")
            .trim()
            .to_owned()
    })
}
