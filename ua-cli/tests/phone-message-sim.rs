//! Page-mode messages (RFC 3428 MESSAGE) between phone cores in virtual time: through a
//! digest-challenging proxy (407 answered), directly at 30 % loss (Timer E retransmissions),
//! past a black-holed first server (RFC 3263 failover), refused (a 404 as the delivery
//! report), and received: answered 200 and reported, a body over 32 KiB answered 413,
//! binary bodies reported as bytes.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use phone_sim::{NetConfig, P1, P2, Sim, account};
use tincan::phone::message::{MAX_MESSAGE_BODY, TEXT_PLAIN};
use tincan::phone::{
    AccountEvent, AccountId, IncomingMessage, MessageEvent, MessageId, PhoneError, PhoneEvent,
    UsageError,
};
use tincan_sip::transport::{Received, Transport};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn send(sim: &mut Sim, node: usize, uri: &str, text: &str) -> MessageId {
    let body = Bytes::copy_from_slice(text.as_bytes());
    sim.act(node, |c, now| {
        c.send_message(now, uri, TEXT_PLAIN, body, None)
    })
    .expect("a reachable uri")
}

/// The delivery report of a message, if it came.
fn report(sim: &Sim, node: usize, id: MessageId) -> Option<MessageEvent> {
    sim.phone(node).events.iter().find_map(|(_, e)| match e {
        PhoneEvent::Message(
            r @ (MessageEvent::Delivered { message, .. } | MessageEvent::Failed { message, .. }),
        ) if *message == id => Some(r.clone()),
        _ => None,
    })
}

/// Waits (in virtual time) for the delivery report of a message.
fn wait_report(sim: &mut Sim, node: usize, id: MessageId, limit: f64) -> MessageEvent {
    let limit = sim.elapsed() + secs(limit);
    sim.run_until_with(limit, |s| report(s, node, id).is_some());
    report(sim, node, id).unwrap_or_else(|| {
        panic!(
            "no delivery report for {id}; trace:\n{}",
            sim.trace.join("\n")
        )
    })
}

fn received(sim: &Sim, node: usize) -> Vec<IncomingMessage> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Message(MessageEvent::Received(m)) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn registered(sim: &Sim, node: usize) -> usize {
    sim.phone(node)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                PhoneEvent::Account {
                    event: AccountEvent::Registered { .. },
                    ..
                }
            )
        })
        .count()
}

/// Hands `raw` to a phone as if it came over UDP from `from`.
fn inject(sim: &mut Sim, node: usize, from: &str, raw: Vec<u8>) {
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

fn raw_message(to: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let ct = content_type.map_or(String::new(), |c| format!("Content-Type: {c}\r\n"));
    let mut raw = format!(
        "MESSAGE sip:bob@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.99:5060;branch=z9hG4bK-m{len}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carol@127.0.0.99>;tag=c1\r\n\
         To: <sip:bob@{to}>\r\n\
         Call-ID: m{len}@carol\r\n\
         CSeq: 1 MESSAGE\r\n\
         {ct}\
         Content-Length: {len}\r\n\r\n",
        len = body.len(),
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// The first lines of the responses a node sent to `to`.
fn responses_to(sim: &Sim, node: usize, to: &str) -> Vec<String> {
    let to: SocketAddr = to.parse().expect("an address");
    sim.nodes[node]
        .sent
        .iter()
        .filter(|(_, a, l)| *a == to && l.starts_with("SIP/2.0"))
        .map(|(_, _, l)| l.clone())
        .collect()
}

#[test]
fn message_through_the_proxy_answers_its_407_and_is_delivered() {
    let mut sim = Sim::new(11, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let p1 = sim.add_proxy(P1);
    sim.add_account(alice, account("alice", &[P1]));
    sim.add_account(bob, account("bob", &[P1]));
    sim.run_for(secs(2.0));
    assert_eq!(registered(&sim, alice), 1, "alice registered");
    assert_eq!(registered(&sim, bob), 1, "bob registered");

    let id = send(&mut sim, alice, "bob", "hello bob");
    let report = wait_report(&mut sim, alice, id, 5.0);
    assert!(
        matches!(report, MessageEvent::Delivered { status: 200, .. }),
        "{report:?}"
    );
    let proxy = sim.proxy(p1);
    let messages = proxy
        .received
        .iter()
        .filter(|(_, m)| m == "MESSAGE")
        .count();
    assert_eq!(messages, 2, "challenged, then sent with credentials");
    assert!(
        proxy
            .credentials
            .iter()
            .any(|c| c.contains("uri=\"sip:bob@example.test\"")),
        "credentials: {:?}",
        proxy.credentials
    );
    let got = received(&sim, bob);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].text.as_deref(), Some("hello bob"));
    assert_eq!(got[0].content_type, TEXT_PLAIN);
    assert!(
        got[0].from.contains("sip:alice@example.test"),
        "{:?}",
        got[0]
    );
    assert_eq!(got[0].account, Some(AccountId(0)));
    assert_eq!(got[0].call, None);
    sim.run_for(secs(40.0));
    let sizes = sim.core(alice).table_sizes();
    for (name, size) in sizes {
        if ["messages", "routes", "transactions"].contains(&name) {
            assert_eq!(size, 0, "{name} left behind");
        }
    }
}

#[test]
fn a_refusal_is_the_delivery_report() {
    let mut sim = Sim::new(12, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let _p1 = sim.add_proxy(P1);
    sim.add_account(alice, account("alice", &[P1]));
    sim.run_for(secs(2.0));
    // Nobody registered as carol: the proxy answers 404 after the credentials.
    let id = send(&mut sim, alice, "carol", "are you there?");
    let report = wait_report(&mut sim, alice, id, 5.0);
    assert!(
        matches!(
            report,
            MessageEvent::Failed {
                status: Some(404),
                ..
            }
        ),
        "{report:?}"
    );
}

/// One direct message at `loss`; (delivered, MESSAGEs sent, times bob reported it).
fn lossy_message(seed: u64, loss: f64) -> (bool, usize, usize) {
    let mut sim = Sim::new(seed, NetConfig::lossy(loss));
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let id = send(
        &mut sim,
        alice,
        &format!("sip:bob@{BOB}"),
        "through the noise",
    );
    let report = wait_report(&mut sim, alice, id, 40.0);
    let delivered = matches!(report, MessageEvent::Delivered { status: 200, .. });
    let sent = sim.sent(alice, "MESSAGE").len();
    (delivered, sent, received(&sim, bob).len())
}

#[test]
fn a_message_lost_at_30_percent_loss_is_retransmitted_and_delivered_once() {
    let mut retransmitted = 0;
    for seed in 1..=20 {
        let (delivered, sent, reports) = lossy_message(seed, 0.3);
        assert!(delivered, "seed {seed}: not delivered ({sent} sent)");
        assert_eq!(reports, 1, "seed {seed}: reported {reports} times");
        if sent > 1 {
            retransmitted += 1;
        }
    }
    assert!(retransmitted > 0, "no seed lost anything");
}

#[test]
fn a_message_fails_over_to_the_second_server_when_the_first_is_down() {
    let mut sim = Sim::new(13, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.nodes[p1].online = false;
    sim.add_account(bob, account("bob", &[P2]));
    // Alice does not register: her messages go to her domain's servers (SRV: p1, then p2).
    let mut alice_account = account("alice", &[]);
    alice_account.register = false;
    sim.add_account(alice, alice_account);
    sim.run_for(secs(2.0));
    assert_eq!(registered(&sim, bob), 1, "bob registered");

    let started = sim.elapsed();
    let id = send(&mut sim, alice, "bob", "over the second");
    let report = wait_report(&mut sim, alice, id, 10.0);
    assert!(
        matches!(report, MessageEvent::Delivered { status: 200, .. }),
        "{report:?}"
    );
    let p2: SocketAddr = P2.parse().unwrap();
    let p1: SocketAddr = P1.parse().unwrap();
    let sent = sim.sent(alice, "MESSAGE");
    assert_eq!(sent.first().map(|s| s.1), Some(p1), "{sent:?}");
    let to_p2 = sent.iter().find(|(_, to)| *to == p2).expect("one to p2");
    // A non-INVITE's budget at a server of unknown round-trip time is two seconds (a proxy
    // may forward it before answering).
    assert!(
        to_p2.0 - started <= secs(2.0) + Duration::from_millis(1),
        "moved on after {:?}",
        to_p2.0 - started
    );
    assert_eq!(received(&sim, bob).len(), 1);
}

#[test]
fn a_message_nobody_answers_fails_without_a_status() {
    let mut sim = Sim::new(14, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    let p2 = sim.add_proxy(P2);
    sim.nodes[p1].online = false;
    sim.nodes[p2].online = false;
    let mut alice_account = account("alice", &[]);
    alice_account.register = false;
    sim.add_account(alice, alice_account);
    let id = send(&mut sim, alice, "bob", "anyone?");
    let report = wait_report(&mut sim, alice, id, 40.0);
    assert!(
        matches!(report, MessageEvent::Failed { status: None, .. }),
        "{report:?}"
    );
}

#[test]
fn an_incoming_message_is_answered_200_and_reported() {
    let mut sim = Sim::new(15, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_message(
            BOB,
            Some("text/plain;charset=UTF-8"),
            "grüß dich".as_bytes(),
        ),
    );
    assert_eq!(
        responses_to(&sim, bob, "127.0.0.99:5060"),
        vec!["SIP/2.0 200 OK".to_owned()]
    );
    let got = received(&sim, bob);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text.as_deref(), Some("grüß dich"));
    assert!(got[0].from.contains("sip:carol@127.0.0.99"));
    assert_eq!(got[0].content_type, "text/plain;charset=UTF-8");
}

#[test]
fn binary_and_unknown_bodies_are_reported_as_bytes() {
    let mut sim = Sim::new(16, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    let binary = [0u8, 0xff, 0xfe, 0x80, b'\r', b'\n'];
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_message(BOB, Some("application/octet-stream"), &binary),
    );
    // text/plain that is not UTF-8.
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_message(BOB, Some("text/plain"), &[0xc3, 0x28, 0xa0]),
    );
    // A body with no Content-Type.
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_message(BOB, None, b"??"),
    );
    assert_eq!(responses_to(&sim, bob, "127.0.0.99:5060").len(), 3);
    let got = received(&sim, bob);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].text, None);
    assert_eq!(&got[0].body[..], &binary);
    assert_eq!(got[1].text, None);
    assert_eq!(got[1].body.len(), 3);
    assert_eq!(got[2].content_type, "application/octet-stream");
    assert_eq!(got[2].text, None);
}

#[test]
fn a_huge_message_is_answered_413_and_not_reported() {
    let mut sim = Sim::new(17, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    let huge = vec![b'x'; MAX_MESSAGE_BODY + 1];
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_message(BOB, Some("text/plain"), &huge),
    );
    let responses = responses_to(&sim, bob, "127.0.0.99:5060");
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert!(responses[0].starts_with("SIP/2.0 413"), "{responses:?}");
    assert!(received(&sim, bob).is_empty());
    // Over the parser's 64 KiB: dropped unread, nothing reported, nothing breaks.
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_message(BOB, Some("text/plain"), &vec![b'y'; 70_000]),
    );
    assert_eq!(responses_to(&sim, bob, "127.0.0.99:5060").len(), 1);
    assert!(received(&sim, bob).is_empty());
    // The phone does not send one either.
    let alice = sim.add_phone(ALICE, "alice");
    let err = sim.act(alice, |c, now| {
        c.send_message(
            now,
            "sip:bob@127.0.0.1:5062",
            "text/plain",
            Bytes::from(huge),
            None,
        )
    });
    assert!(
        matches!(
            err,
            Err(PhoneError::Usage(UsageError::MessageTooLarge { .. }))
        ),
        "{err:?}"
    );
}

fn raw_notify(to: &str, n: usize, event: &str, body: &str) -> Vec<u8> {
    format!(
        "NOTIFY sip:bob@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.99:5060;branch=z9hG4bK-n{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@127.0.0.99>;tag=pbx\r\n\
         To: <sip:bob@{to}>\r\n\
         Call-ID: n{n}@pbx\r\n\
         CSeq: {n} NOTIFY\r\n\
         Event: {event}\r\n\
         Subscription-State: active\r\n\
         Content-Type: application/simple-message-summary\r\n\
         Content-Length: {len}\r\n\r\n{body}",
        len = body.len(),
    )
    .into_bytes()
}

/// An unsolicited `message-summary` NOTIFY, as PBXs send registered phones (RFC 3842):
/// answered 200 (it used to be 501) and the count reported for the account it names.
#[test]
fn an_unsolicited_message_summary_notify_is_answered_200_and_reported() {
    let mut sim = Sim::new(18, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    let mut bob_account = account("bob", &[]);
    bob_account.register = false;
    sim.add_account(bob, bob_account);
    let body = "Messages-Waiting: yes\r\nMessage-Account: sip:*97@example.test\r\nVoice-Message: 3/7 (1/0)\r\n";
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_notify(BOB, 1, "message-summary", body),
    );
    assert_eq!(
        responses_to(&sim, bob, "127.0.0.99:5060"),
        vec!["SIP/2.0 200 OK".to_owned()]
    );
    let waiting: Vec<_> = sim
        .phone(bob)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::MessageWaiting(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].account, Some(AccountId(0)));
    assert!(waiting[0].summary.waiting);
    let voice = waiting[0].summary.voice().expect("voice counts");
    assert_eq!((voice.new, voice.old, voice.urgent_new), (3, 7, 1));
}

/// NOTIFYs of no subscription (another event package) are answered 481, each, and a
/// `message-summary` one whose body says nothing 400; nothing is reported.
#[test]
fn a_flood_of_notifies_for_unknown_subscriptions_is_answered_481() {
    let mut sim = Sim::new(19, NetConfig::perfect());
    let bob = sim.add_phone(BOB, "bob");
    for n in 1..=500 {
        inject(
            &mut sim,
            bob,
            "127.0.0.99:5060",
            raw_notify(BOB, n, "presence", "<presence/>"),
        );
    }
    inject(
        &mut sim,
        bob,
        "127.0.0.99:5060",
        raw_notify(BOB, 501, "message-summary", "\u{0}\u{1}garbage"),
    );
    let responses = responses_to(&sim, bob, "127.0.0.99:5060");
    assert_eq!(responses.len(), 501);
    assert!(
        responses[..500]
            .iter()
            .all(|r| r.starts_with("SIP/2.0 481")),
        "{:?}",
        &responses[..3]
    );
    assert!(
        responses[500].starts_with("SIP/2.0 400"),
        "{}",
        responses[500]
    );
    assert!(
        !sim.phone(bob)
            .events
            .iter()
            .any(|(_, e)| matches!(e, PhoneEvent::MessageWaiting(_)))
    );
}

/// A MESSAGE inside a call's dialog (RFC 3428 §4) goes along the route set (the proxy
/// record-routes), its 407 is answered with the dialog's next CSeq, and the peer reports it
/// with its call; the call goes on and its BYE takes a CSeq above the MESSAGE's.
#[test]
fn a_message_inside_a_call_goes_along_the_dialog_and_is_delivered() {
    let mut sim = Sim::new(20, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let proxy = sim.add_proxy(P1);
    sim.proxy_mut(proxy).challenge_in_dialog = true;
    sim.add_account(alice, account("alice", &[P1]));
    sim.add_account(bob, account("bob", &[P1]));
    sim.run_for(secs(2.0));
    let a = sim
        .act(alice, |c, now| {
            c.call(now, "bob", tincan::phone::CallParams::default())
        })
        .expect("a call");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| {
        s.phone(bob)
            .events
            .iter()
            .any(|(_, e)| matches!(e, PhoneEvent::Incoming(_)))
    }));
    let b = sim
        .phone(bob)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            PhoneEvent::Incoming(i) => Some(i.call),
            _ => None,
        })
        .expect("an incoming call");
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a), "alice answered");

    let id = sim
        .act(alice, |c, now| {
            c.send_message_in_call(now, a, TEXT_PLAIN, Bytes::from_static(b"in the call"))
        })
        .expect("the call is up");
    let report = wait_report(&mut sim, alice, id, 5.0);
    assert!(
        matches!(report, MessageEvent::Delivered { status: 200, .. }),
        "{report:?}"
    );
    let got = received(&sim, bob);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].text.as_deref(), Some("in the call"));
    assert_eq!(got[0].call, Some(b));
    // Challenged once, then with credentials: both went to the proxy, along the route set.
    let p1: SocketAddr = P1.parse().unwrap();
    let messages = sim.sent(alice, "MESSAGE");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().all(|(_, to)| *to == p1), "{messages:?}");

    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(2.0));
    assert!(
        sim.call_events(bob)
            .iter()
            .any(|(_, c, e)| *c == b && matches!(e, tincan::phone::CallEvent::Ended(_))),
        "bob's call ended"
    );
    let cseq_of = |method: &str| -> Vec<u32> {
        sim.nodes[alice]
            .sent_messages
            .iter()
            .filter_map(|(_, _, bytes)| {
                let text = String::from_utf8_lossy(bytes).into_owned();
                if !text.starts_with(method) {
                    return None;
                }
                let line = text.lines().find(|l| l.starts_with("CSeq:"))?;
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .collect()
    };
    let (messages, byes) = (cseq_of("MESSAGE"), cseq_of("BYE"));
    assert!(messages[1] > messages[0], "the retry's CSeq: {messages:?}");
    assert!(
        byes.iter().all(|b| *b > messages[1]),
        "BYE {byes:?} after MESSAGE {messages:?}"
    );
    // Not up any more: refused at once.
    let err = sim.act(alice, |c, now| {
        c.send_message_in_call(now, a, TEXT_PLAIN, Bytes::from_static(b"late"))
    });
    assert!(matches!(err, Err(PhoneError::Usage(_))), "{err:?}");
}
