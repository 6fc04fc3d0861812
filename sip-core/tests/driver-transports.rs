//! `Transports` under an `Endpoint` the test owns, without the `Driver`: a tiny select loop
//! per node on loopback. An OPTIONS gets its 200 from a second node over UDP, and a request
//! to a closed UDP port is reported by the ICMP error it causes, well before Timer F.
#![cfg(feature = "tokio")] // the tokio driver is what this tests
#![allow(clippy::disallowed_methods)] // a driver loop reads the clock

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use tincan_sip::driver::transports::{NetInput, Transports, TransportsConfig};
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, Uri, response_to};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{Target, Transport};

const WAIT: Duration = Duration::from_secs(5);

/// An endpoint and the sockets it sends through.
struct Node {
    ep: Endpoint,
    net: Transports,
}

impl Node {
    async fn bind(seed: u64) -> Node {
        let net = Transports::bind(TransportsConfig::udp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let mut ep = Endpoint::new(
            EndpointConfig::default(),
            Box::new(XorShiftRng::seed_from_u64(seed)),
        );
        for (transport, addr) in net.local_addresses() {
            ep.add_local_address(*transport, *addr);
        }
        Node { ep, net }
    }

    fn addr(&self) -> SocketAddr {
        self.net.local_addresses()[0].1
    }

    /// Sends what the endpoint has to send and feeds back what sending produced; then the
    /// endpoint's events.
    async fn flush(&mut self) -> Vec<Event> {
        loop {
            while let Some(transmit) = self.ep.poll_transmit() {
                self.net.send(transmit).await;
            }
            let Some(input) = self.net.poll_ready() else {
                break;
            };
            self.input(input);
        }
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    fn input(&mut self, input: NetInput) {
        let now = Instant::now();
        match input {
            NetInput::Received(received) => self.ep.handle_received(now, received),
            NetInput::TransportError(tx) => self.ep.handle_transport_error(now, tx),
            NetInput::Unreachable(dest) => self.ep.handle_unreachable(now, dest),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// One turn of the loop: flush, then wait for the network or the next timer.
    async fn turn(&mut self) -> Vec<Event> {
        let events = self.flush().await;
        if !events.is_empty() {
            return events;
        }
        let deadline = self
            .ep
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + WAIT);
        tokio::select! {
            Some(input) = self.net.next() => self.input(input),
            _ = tokio::time::sleep_until(deadline.into()) => self.ep.handle_timeout(Instant::now()),
        }
        self.flush().await
    }
}

fn options(to: SocketAddr) -> Message {
    let text = format!("sip:bob@{to}");
    let uri = Uri::parse(&text).unwrap();
    RequestBuilder::new(Method::Options, &uri)
        .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=t1")
        .header(HeaderName::To, "<sip:bob@127.0.0.1>")
        .call_id("transports-1@127.0.0.1")
        .cseq(1)
        .build()
}

/// The final response, or the way `transaction` failed, as one node's events say.
fn outcome(events: Vec<Event>, transaction: TransactionId) -> Option<Result<u16, String>> {
    events.into_iter().find_map(|event| match event {
        Event::Response {
            transaction: t,
            response,
        } if t == transaction && response.status().unwrap_or(0) >= 200 => {
            Some(Ok(response.status().unwrap()))
        }
        Event::TransportError { transaction: t } if t == transaction => {
            Some(Err("transport error".into()))
        }
        Event::Timeout { transaction: t } if t == transaction => Some(Err("timeout".into())),
        _ => None,
    })
}

/// Answers every request with a 200, for ever (a node's loop in its own task).
async fn answer_200(mut node: Node) {
    loop {
        for event in node.turn().await {
            if let Event::Request {
                transaction: Some(server),
                request,
                ..
            } = event
            {
                let ok = response_to(&request, 200, None);
                node.ep.send_response(Instant::now(), server, ok).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn an_options_over_udp_gets_its_200() {
    let mut alice = Node::bind(1).await;
    let bob = Node::bind(2).await;
    let bob_addr = bob.addr();
    let bob_loop = tokio::spawn(answer_200(bob));
    let transaction = alice
        .ep
        .send_request(
            Instant::now(),
            options(bob_addr),
            Target::new(Transport::Udp, bob_addr),
        )
        .unwrap();
    let result = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(result) = outcome(alice.turn().await, transaction) {
                return result;
            }
        }
    })
    .await
    .expect("the 200 within 5 s");
    assert_eq!(result, Ok(200));
    bob_loop.abort();
}

/// Linux only: elsewhere no ICMP error reaches an unconnected UDP socket.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_request_to_a_closed_udp_port_is_reported_unreachable() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let mut alice = Node::bind(3).await;
    let transaction = alice
        .ep
        .send_request(
            Instant::now(),
            options(dead),
            Target::new(Transport::Udp, dead),
        )
        .unwrap();
    assert!(alice.flush().await.is_empty());
    // The ICMP port unreachable comes back as an input of its own (or, had a send come across
    // it first, as a transport error).
    let input = tokio::time::timeout(WAIT, alice.net.next())
        .await
        .expect("the ICMP error within 5 s, not Timer F's 32 s")
        .unwrap();
    match &input {
        NetInput::Unreachable(addr) => assert_eq!(*addr, dead),
        NetInput::TransportError(tx) => assert_eq!(*tx, transaction),
        other => panic!("unexpected {other:?}"),
    }
    alice.input(input);
    let events = alice.flush().await;
    assert_eq!(
        outcome(events, transaction),
        Some(Err("transport error".into()))
    );
}
