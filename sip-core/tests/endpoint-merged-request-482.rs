//! A merged request gets 482 Loop Detected (RFC 3261 §8.2.2.2): a request without a To tag
//! whose From tag, Call-ID and CSeq match those of an ongoing server transaction, but which
//! does not match that transaction (another branch: the same request forked by a proxy and
//! arriving twice, by two paths). The endpoint answers the second copy 482 itself, in a
//! server transaction of its own that absorbs its retransmissions (and, for an INVITE, the
//! ACK of the 482); the transaction user sees only the first copy. Before, the second copy
//! reached the transaction user, whose call of that Call-ID answered it 481.

// Virtual time starts at one real instant.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{Message, response_to};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{Received, Transport};

const LOCAL: &str = "192.0.2.1:5060";
/// The two proxies the forked request came through.
const PROXY_A: &str = "192.0.2.7:5060";
const PROXY_B: &str = "192.0.2.8:5060";

/// The request as a proxy at `via_host` forwards it: its own Via (with `branch`) on top of the
/// caller's; `to_tag` for an in-dialog request.
fn request(method: &str, via_host: &str, branch: &str, cseq: u32, to_tag: Option<&str>) -> Bytes {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let cseq_method = if method == "ACK" { "INVITE" } else { method };
    Bytes::from(format!(
        "{method} sip:bob@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {via_host};branch=z9hG4bK-{branch}\r\n\
         Via: SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bK-caller\r\n\
         Max-Forwards: 69\r\n\
         From: <sip:alice@198.51.100.9>;tag=a1\r\n\
         To: <sip:bob@192.0.2.1>{to_tag}\r\n\
         Call-ID: merged-1@198.51.100.9\r\n\
         CSeq: {cseq} {cseq_method}\r\n\
         Contact: <sip:alice@198.51.100.9>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

struct Uas {
    ep: Endpoint,
    now: Instant,
}

impl Uas {
    fn new() -> Uas {
        let mut ep = Endpoint::new(
            EndpointConfig::default(),
            Box::new(XorShiftRng::seed_from_u64(1)),
        );
        ep.add_local_address(Transport::Udp, LOCAL.parse().expect("literal address"));
        Uas {
            ep,
            now: Instant::now(),
        }
    }

    /// Feeds one datagram from `from`; what the endpoint sent and the events it raised.
    fn receive(&mut self, from: &str, payload: Bytes) -> (Vec<(SocketAddr, Message)>, Vec<Event>) {
        self.ep.handle_received(
            self.now,
            Received {
                transport: Transport::Udp,
                source: from.parse().expect("literal address"),
                local: LOCAL.parse().expect("literal address"),
                connection: None,
                payload,
                arrived: None,
            },
        );
        self.drain()
    }

    fn drain(&mut self) -> (Vec<(SocketAddr, Message)>, Vec<Event>) {
        let sent = std::iter::from_fn(|| self.ep.poll_transmit())
            .map(|t| {
                let m = Message::parse(t.payload).expect("our messages parse");
                (t.target.addr, m)
            })
            .collect();
        let events = std::iter::from_fn(|| self.ep.poll_event()).collect();
        (sent, events)
    }
}

fn requests(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Request { .. }))
        .count()
}

#[test]
fn an_invite_arriving_by_a_second_path_gets_482() {
    let mut uas = Uas::new();
    let (sent, events) = uas.receive(PROXY_A, request("INVITE", PROXY_A, "a", 1, None));
    assert!(sent.is_empty());
    assert_eq!(requests(&events), 1, "the first copy reaches the UA");

    let (sent, events) = uas.receive(PROXY_B, request("INVITE", PROXY_B, "b", 1, None));
    assert_eq!(
        requests(&events),
        0,
        "the merged copy is not the UA's: {events:?}"
    );
    let [(to, response)] = sent.as_slice() else {
        panic!("want one response to the merged copy, sent {sent:?}");
    };
    assert_eq!(response.status(), Some(482));
    assert_eq!(*to, PROXY_B.parse::<SocketAddr>().expect("literal address"));
    assert!(
        response
            .to()
            .and_then(Result::ok)
            .and_then(|t| t.tag().map(str::to_owned))
            .is_some(),
        "a 482 tags its To (§8.2.6.2)"
    );

    // Its retransmission is absorbed by the 482's transaction (the 482 again, §17.2.1), and
    // the ACK of the 482 never reaches the UA.
    let (sent, events) = uas.receive(PROXY_B, request("INVITE", PROXY_B, "b", 1, None));
    assert_eq!(requests(&events), 0, "{events:?}");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.status(), Some(482));
    let tag = response
        .to()
        .and_then(Result::ok)
        .and_then(|t| t.tag().map(str::to_owned));
    let (sent, events) = uas.receive(PROXY_B, request("ACK", PROXY_B, "b", 1, tag.as_deref()));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(
        requests(&events),
        0,
        "the ACK of the 482 reached the UA: {events:?}"
    );

    // The first copy's transaction is untouched: the UA answers it.
    let first = uas.receive(PROXY_A, request("INVITE", PROXY_A, "a", 1, None));
    assert_eq!(
        requests(&first.1),
        0,
        "a retransmission of the first copy is absorbed"
    );
}

#[test]
fn a_non_invite_arriving_twice_gets_482_and_the_first_is_answered_by_the_ua() {
    let mut uas = Uas::new();
    let (_, events) = uas.receive(PROXY_A, request("OPTIONS", PROXY_A, "a", 7, None));
    let Some(Event::Request {
        transaction: Some(first),
        request: first_request,
        ..
    }) = events
        .into_iter()
        .find(|e| matches!(e, Event::Request { .. }))
    else {
        panic!("the first copy reaches the UA");
    };
    let (sent, events) = uas.receive(PROXY_B, request("OPTIONS", PROXY_B, "b", 7, None));
    assert_eq!(requests(&events), 0, "{events:?}");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.status(), Some(482));

    uas.ep
        .send_response(uas.now, first, response_to(&first_request, 200, None))
        .expect("the first copy's transaction is there");
    let (sent, _) = uas.drain();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.status(), Some(200));
    assert_eq!(
        sent[0].0,
        PROXY_A.parse::<SocketAddr>().expect("literal address")
    );
}

#[test]
fn what_is_not_a_merged_request_is_not_refused() {
    let mut uas = Uas::new();
    let (_, events) = uas.receive(PROXY_A, request("INVITE", PROXY_A, "a", 1, None));
    assert_eq!(requests(&events), 1);
    // Another CSeq (a new request of the caller), an in-dialog request (To tag) and a
    // CANCEL (same CSeq number, another method) are not merged copies.
    let (sent, events) = uas.receive(PROXY_B, request("OPTIONS", PROXY_B, "c", 2, None));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(requests(&events), 1);
    let (sent, events) = uas.receive(PROXY_B, request("BYE", PROXY_B, "d", 3, Some("b1")));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(requests(&events), 1);
    let (sent, _) = uas.receive(PROXY_A, request("CANCEL", PROXY_A, "a", 1, None));
    assert!(
        sent.iter().all(|(_, m)| m.status() != Some(482)),
        "{sent:?}"
    );

    // Once the first transaction is over, the same From tag, Call-ID and CSeq is no longer
    // merged with anything (a late copy is the UA's business).
    let mut uas = Uas::new();
    let (_, events) = uas.receive(PROXY_A, request("OPTIONS", PROXY_A, "a", 9, None));
    let Some(Event::Request {
        transaction: Some(first),
        request: first_request,
        ..
    }) = events
        .into_iter()
        .find(|e| matches!(e, Event::Request { .. }))
    else {
        panic!("the first copy reaches the UA");
    };
    uas.ep
        .send_response(uas.now, first, response_to(&first_request, 200, None))
        .expect("the transaction is there");
    uas.now += Duration::from_secs(40);
    uas.ep.handle_timeout(uas.now);
    let _ = uas.drain();
    let (sent, events) = uas.receive(PROXY_B, request("OPTIONS", PROXY_B, "b", 9, None));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(requests(&events), 1);
}
