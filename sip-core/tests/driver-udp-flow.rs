//! The driver's UDP flows (RFC 5626 §4.4.2): STUN Binding requests go out on the SIP socket,
//! responses are matched by transaction id and reported to the flow's watcher, STUN never
//! reaches the SIP parser, peers' Binding requests are answered, and an ICMP unreachable
//! for the target is reported.
#![cfg(feature = "tokio")] // the tokio driver is what this tests

use std::net::SocketAddr;
use std::time::Duration;

use rand_core::SeedableRng;
use tincan_sip::driver::{Driver, DriverConfig, FlowSignal};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::stun::{self, Class, Message, TransactionId};
use tincan_sip::transport::{Target, Transport};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

#[tokio::test]
async fn binding_requests_and_responses_on_a_udp_flow() {
    let registrar = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let registrar_addr = registrar.local_addr().unwrap();
    let (handle, mut incoming) = Driver::start(DriverConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let sip_addr = handle.local_address(Transport::Udp).unwrap();
    let mut flow = handle
        .flow(&Target::new(Transport::Udp, registrar_addr))
        .await
        .unwrap()
        .expect("a UDP flow needs no open connection");
    assert!(flow.is_datagram());
    assert_eq!(flow.connection(), None);

    // A Binding request from the SIP socket, with FINGERPRINT.
    let mut rng = XorShiftRng::seed_from_u64(1);
    let id = TransactionId::random(&mut rng);
    assert!(flow.send_binding(id).await.unwrap());
    let (request, from) = recv(&registrar).await;
    assert_eq!(from, sip_addr, "same 5-tuple as SIP");
    let parsed = Message::parse(&request).unwrap();
    assert_eq!(
        (parsed.class, parsed.transaction, parsed.fingerprint),
        (Class::Request, id, true)
    );

    // A response to a transaction nobody sent is dropped; the right one is reported with
    // the mapped address.
    let stray = stun::binding_success(TransactionId([9; 12]), from, false);
    registrar.send_to(&stray, from).await.unwrap();
    let answer = stun::binding_success(id, from, false);
    registrar.send_to(&answer, from).await.unwrap();
    let signal = timeout(WAIT, flow.next()).await.unwrap();
    assert_eq!(
        signal,
        FlowSignal::BindingResponse {
            transaction: id,
            mapped: Some(sip_addr),
            error: None
        }
    );

    // A peer keeping its own flow to us alive gets its mapped address back.
    let peer_id = TransactionId::random(&mut rng);
    registrar
        .send_to(&stun::binding_request(peer_id, false), sip_addr)
        .await
        .unwrap();
    let (response, _) = recv(&registrar).await;
    let parsed = Message::parse(&response).unwrap();
    assert_eq!(parsed.class, Class::SuccessResponse);
    assert_eq!(parsed.transaction, peer_id);
    assert_eq!(parsed.mapped_address(), Some(registrar_addr));

    // None of this reached the SIP layer.
    assert!(
        timeout(Duration::from_millis(200), incoming.next())
            .await
            .is_err(),
        "STUN must not be parsed as SIP"
    );

    // Flow::ping on a UDP flow is a Binding request with a fresh id.
    assert!(flow.ping().await.unwrap());
    let (request, _) = recv(&registrar).await;
    let ping = Message::parse(&request).unwrap();
    assert_ne!(ping.transaction, id);
    registrar
        .send_to(
            &stun::binding_success(ping.transaction, sip_addr, true),
            sip_addr,
        )
        .await
        .unwrap();
    assert!(matches!(
        timeout(WAIT, flow.next()).await.unwrap(),
        FlowSignal::BindingResponse { transaction, .. } if transaction == ping.transaction
    ));
    handle.shutdown().await;
}

/// A Binding request to a closed port: the ICMP port unreachable reaches the flow's
/// watcher at once (Linux, IP_RECVERR).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_unreachable_udp_target_is_reported_to_its_flow() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (handle, _incoming) = Driver::start(DriverConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let mut flow = handle
        .flow(&Target::new(Transport::Udp, addr))
        .await
        .unwrap()
        .unwrap();
    let id = TransactionId::random(&mut XorShiftRng::seed_from_u64(2));
    assert!(flow.send_binding(id).await.unwrap());
    assert_eq!(
        timeout(WAIT, flow.next())
            .await
            .expect("the ICMP error in time"),
        FlowSignal::Unreachable
    );
    handle.shutdown().await;
}
