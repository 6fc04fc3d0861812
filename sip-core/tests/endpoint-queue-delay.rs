//! How long a message waited in the driver's queues (`Received::arrived`) decides what the
//! endpoint still does with it (issue 19, finding 2; RFC 6357 §5.1 load shedding):
//! - a new INVITE that waited longer than `max_queue_delay` is refused 503 with Retry-After,
//!   statelessly, while a re-INVITE, a BYE or an OPTIONS that waited as long reaches the
//!   transaction user;
//! - any request that waited longer than 64*T1 (its sender's Timer B or F ran out) is
//!   dropped unanswered;
//! - a response is never dropped for its age (its client transaction decides).

// Virtual time starts at one real instant.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{Message, Method};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{Received, Transport};

const LOCAL: &str = "192.0.2.1:5060";
const PEER: &str = "192.0.2.7:5060";

fn request(method: &str, n: u32, to_tag: bool) -> Bytes {
    let tag = if to_tag { ";tag=b1" } else { "" };
    Bytes::from(format!(
        "{method} sip:bob@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-{method}-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@192.0.2.7>;tag=a1\r\n\
         To: <sip:bob@192.0.2.1>{tag}\r\n\
         Call-ID: queue-{n}@192.0.2.7\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@192.0.2.7>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// What the endpoint sends (first lines) and how many requests it hands its user, for one
/// message that waited `waited` before it was handled.
fn receive(payload: Bytes, waited: Duration) -> (Vec<String>, Vec<Method>, Endpoint) {
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        Box::new(XorShiftRng::seed_from_u64(1)),
    );
    let local: SocketAddr = LOCAL.parse().expect("literal address");
    ep.add_local_address(Transport::Udp, local);
    let now = Instant::now() + Duration::from_secs(100);
    ep.handle_received(
        now,
        Received {
            transport: Transport::Udp,
            source: PEER.parse().expect("literal address"),
            local,
            connection: None,
            payload,
            arrived: Some(now - waited),
        },
    );
    let sent = std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| {
            let m = Message::parse(t.payload).expect("our responses parse");
            let retry = m
                .header(tincan_sip::message::HeaderName::RetryAfter)
                .map(|r| format!(" (Retry-After: {r})"))
                .unwrap_or_default();
            format!("{}{retry}", m.status().unwrap_or(0))
        })
        .collect();
    let requests = std::iter::from_fn(|| ep.poll_event())
        .filter_map(|e| match e {
            Event::Request { request, .. } => request.method().cloned(),
            _ => None,
        })
        .collect();
    (sent, requests, ep)
}

#[test]
fn a_new_invite_behind_the_queue_is_shed_503_and_the_rest_goes_through() {
    let behind = Duration::from_secs(2);
    let (sent, requests, ep) = receive(request("INVITE", 1, false), behind);
    assert_eq!(sent, vec!["503 (Retry-After: 5)".to_owned()]);
    assert!(requests.is_empty());
    assert_eq!(ep.stats().overloaded, 1);

    for (method, to_tag) in [("INVITE", true), ("BYE", true), ("OPTIONS", false)] {
        let (sent, requests, _) = receive(request(method, 2, to_tag), behind);
        assert!(sent.iter().all(|s| s == "100"), "{method}: {sent:?}");
        assert_eq!(requests.len(), 1, "{method} reaches the user");
    }
    // Not behind: a new INVITE is taken.
    let (_, requests, _) = receive(request("INVITE", 3, false), Duration::from_millis(900));
    assert_eq!(requests, vec![Method::Invite]);
}

#[test]
fn a_request_older_than_its_senders_timeout_is_dropped_unanswered() {
    let stale = Duration::from_millis(32_001);
    for (method, to_tag) in [("INVITE", false), ("BYE", true), ("OPTIONS", false)] {
        let (sent, requests, ep) = receive(request(method, 4, to_tag), stale);
        assert!(sent.is_empty(), "{method}: {sent:?}");
        assert!(requests.is_empty(), "{method}");
        assert_eq!(ep.stats().stale, 1);
    }
    // At 32 s exactly the sender still waits.
    let (_, requests, _) = receive(request("BYE", 5, true), Duration::from_secs(32));
    assert_eq!(requests, vec![Method::Bye]);
}
