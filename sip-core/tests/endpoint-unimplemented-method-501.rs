//! `Allow:` only what is handled, 501 for what is not implemented (RFC 3261 §8.2.1, §21.5.2):
//! a SUBSCRIBE, MESSAGE or PUBLISH reaching a Tincan user agent
//! gets 501 Not Implemented from the endpoint, with an `Allow` that lists exactly the methods
//! the UA handles (`dialog::invite::METHODS`, the same list as the `Allow` of its 200 to
//! OPTIONS and 2xx to INVITE); REGISTER, a method of RFC 3261 itself that a UA understands
//! but does not serve, gets 405; the handled methods reach the transaction user.

// Virtual time starts at one real instant.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::dialog::invite::{ALLOW, METHODS};
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{HeaderName, Message, Method};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{Received, Transport};

const LOCAL: &str = "192.0.2.1:5060";
const PEER: &str = "192.0.2.7:5060";

/// An out-of-dialog request (no To tag).
fn request(method: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:bob@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-{method}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@192.0.2.7>;tag=a1\r\n\
         To: <sip:bob@192.0.2.1>\r\n\
         Call-ID: {method}-1@192.0.2.7\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@192.0.2.7>\r\n\
         Event: presence\r\n\
         Refer-To: <sip:carol@192.0.2.9>\r\n\
         RAck: 1 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// What the endpoint sends and tells its user after one request from the peer.
fn receive(method: &str) -> (Vec<Message>, Vec<Event>) {
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
            payload: request(method),
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
fn the_default_method_list_is_what_the_ua_handles() {
    assert_eq!(
        EndpointConfig::default().methods,
        [
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Bye,
            Method::Options,
            Method::Info,
            Method::Update,
            Method::Prack,
            Method::Refer,
            Method::Notify
        ]
    );
    assert_eq!(EndpointConfig::default().methods, METHODS);
    assert_eq!(
        ALLOW,
        "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY"
    );
}

#[test]
fn unimplemented_methods_get_501_with_allow() {
    for method in ["SUBSCRIBE", "MESSAGE", "PUBLISH", "FROBNICATE"] {
        let (sent, events) = receive(method);
        assert!(events.is_empty(), "{method} reached the UA: {events:?}");
        assert_eq!(sent.len(), 1, "{method}");
        assert_eq!(sent[0].status(), Some(501), "{method}");
        assert_eq!(sent[0].header(HeaderName::Allow), Some(ALLOW), "{method}");
    }
}

#[test]
fn register_at_a_ua_gets_405_with_allow() {
    let (sent, events) = receive("REGISTER");
    assert!(events.is_empty());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some(405));
    assert_eq!(sent[0].header(HeaderName::Allow), Some(ALLOW));
}

#[test]
fn handled_methods_reach_the_transaction_user() {
    for method in [
        "INVITE", "BYE", "OPTIONS", "INFO", "UPDATE", "PRACK", "REFER", "NOTIFY",
    ] {
        let (sent, events) = receive(method);
        assert!(sent.is_empty(), "{method} answered statelessly: {sent:?}");
        assert!(
            matches!(events.as_slice(), [Event::Request { request, .. }] if request.method().map(Method::as_str) == Some(method)),
            "{method}: {events:?}"
        );
    }
}
