//! `Require:` only what is implemented (RFC 3261 §8.2.2.3): an INVITE that requires
//! `replaces` (RFC 3891, implemented by the phone's transfer) reaches the user agent, as do the
//! other extensions a Tincan UA implements (`outbound`, `path`); an unknown one gets 420 Bad
//! Extension with `Unsupported:`.

// Virtual time starts at one real instant.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{HeaderName, Message, SUPPORTED_EXTENSIONS};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{Received, Transport};

const LOCAL: &str = "192.0.2.1:5060";
const PEER: &str = "192.0.2.7:5060";

fn invite(require: &str) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:bob@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-repl1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@192.0.2.7>;tag=a1\r\n\
         To: <sip:bob@192.0.2.1>\r\n\
         Call-ID: replaces-1@192.0.2.7\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@192.0.2.7>\r\n\
         Require: {require}\r\n\
         Replaces: 12345@192.0.2.9;to-tag=b2;from-tag=c3\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// What the endpoint sends and tells its user after one datagram from the peer.
fn receive(payload: Bytes) -> (Vec<Message>, Vec<Event>) {
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        Box::new(XorShiftRng::seed_from_u64(1)),
    );
    let local: SocketAddr = LOCAL.parse().expect("literal address");
    ep.add_local_address(Transport::Udp, local);
    ep.handle_received(
        Instant::now(),
        Received {
            transport: Transport::Udp,
            source: PEER.parse().expect("literal address"),
            local,
            connection: None,
            payload,
            arrived: None,
        },
    );
    let sent = std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| Message::parse(t.payload).expect("our responses parse"))
        .collect();
    let events = std::iter::from_fn(|| ep.poll_event()).collect();
    (sent, events)
}

#[test]
fn an_invite_requiring_an_unknown_extension_gets_420() {
    let (sent, events) = receive(invite("replaces, x-frobnicate"));
    assert!(events.is_empty(), "no call reaches the UA: {events:?}");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some(420));
    assert_eq!(
        sent[0].header(HeaderName::Unsupported),
        Some("x-frobnicate")
    );
}

#[test]
fn replaces_and_norefersub_are_listed_as_supported() {
    assert!(SUPPORTED_EXTENSIONS.contains(&"replaces"));
    assert!(SUPPORTED_EXTENSIONS.contains(&"norefersub"));
    assert_eq!(
        EndpointConfig::default().supported,
        SUPPORTED_EXTENSIONS.to_vec()
    );
}

#[test]
fn implemented_extensions_pass() {
    let (sent, events) = receive(invite("outbound, path, replaces"));
    assert!(sent.is_empty(), "nothing answered statelessly: {sent:?}");
    assert!(
        matches!(events.as_slice(), [Event::Request { request, .. }] if request.method() == Some(&tincan_sip::message::Method::Invite)),
        "{events:?}"
    );
}
