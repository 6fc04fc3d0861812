//! Bytes without a Via get no answer (RFC 3261 §18.2.2, §18.3): a response goes where the
//! top Via says and copies the Vias, so a request without any has nowhere to be answered;
//! it is dropped and counted, never answered 400 to its source address. A malformed request
//! with a Via still gets its 400, also when that Via itself is malformed (RFC 4475 §3.1.2.1
//! `badinv01`; the torture answers: `tests/endpoint-torture-answers.rs`).

// Virtual time starts at one real instant.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig};
use tincan_sip::message::Message;
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{ConnectionId, Received, Transport};

const LOCAL: &str = "192.0.2.1:5060";
const PEER: &str = "192.0.2.7:5060";

fn endpoint() -> Endpoint {
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        Box::new(XorShiftRng::seed_from_u64(1)),
    );
    ep.add_local_address(Transport::Udp, LOCAL.parse().expect("literal address"));
    ep.add_local_address(Transport::Tcp, LOCAL.parse().expect("literal address"));
    ep
}

/// The statuses the endpoint sent back to `payload` received over `transport`.
fn answers(transport: Transport, payload: &str) -> (Vec<u16>, u64) {
    let mut ep = endpoint();
    ep.handle_received(
        Instant::now(),
        Received {
            transport,
            source: PEER.parse().expect("literal address"),
            local: LOCAL.parse().expect("literal address"),
            connection: (transport == Transport::Tcp).then_some(ConnectionId(1)),
            payload: Bytes::from(payload.to_owned()),
            arrived: None,
        },
    );
    let sent = std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| {
            Message::parse(t.payload)
                .expect("our responses parse")
                .status()
                .expect("a response")
        })
        .collect();
    (sent, ep.stats().dropped)
}

const NO_VIA: &str = "OPTIONS sip:bob@192.0.2.1 SIP/2.0\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:alice@192.0.2.7>;tag=a1\r\n\
    To: <sip:bob@192.0.2.1>\r\n\
    Call-ID: novia-1@192.0.2.7\r\n\
    CSeq: 1 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

const BAD_VIA: &str = "OPTIONS sip:bob@192.0.2.1 SIP/2.0\r\n\
    Via: garbage\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:alice@192.0.2.7>;tag=a1\r\n\
    To: <sip:bob@192.0.2.1>\r\n\
    Call-ID: badvia-1@192.0.2.7\r\n\
    CSeq: 1 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

/// Malformed (no CSeq), but with a Via to answer to.
const NO_CSEQ: &str = "OPTIONS sip:bob@192.0.2.1 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-nocseq\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:alice@192.0.2.7>;tag=a1\r\n\
    To: <sip:bob@192.0.2.1>\r\n\
    Call-ID: nocseq-1@192.0.2.7\r\n\
    Content-Length: 0\r\n\r\n";

#[test]
fn a_request_without_a_via_is_dropped_not_answered() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let (sent, dropped) = answers(transport, NO_VIA);
        assert!(sent.is_empty(), "{transport}: answered {sent:?}");
        assert_eq!(dropped, 1, "{transport}: counted as dropped");
    }
}

#[test]
fn a_request_whose_via_is_malformed_still_gets_400() {
    let (sent, _) = answers(Transport::Udp, BAD_VIA);
    assert_eq!(sent, [400]);
}

#[test]
fn a_malformed_request_with_a_via_still_gets_400() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let (sent, _) = answers(transport, NO_CSEQ);
        assert_eq!(sent, [400], "{transport}");
    }
}
