//! The tokio driver on real loopback sockets: OPTIONS and INVITE/ACK between two endpoints
//! over UDP, TCP, TLS (with a test CA) and IPv6.
#![cfg(feature = "tokio")] // the tokio driver is what this tests

use std::net::SocketAddr;
use std::time::Duration;

use tincan_sip::driver::{Driver, DriverConfig, Handle, Incoming, IncomingEvent, TlsSettings};
use tincan_sip::message::{HeaderName, Method, RequestBuilder, Uri, response_to};
use tincan_sip::transport::{Target, Transport};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

fn config(ip: &str, tls: Option<TlsSettings>) -> DriverConfig {
    let any: SocketAddr = format!("{ip}:0").parse().unwrap();
    let mut c = DriverConfig::udp(any);
    c.tcp = vec![any];
    if let Some(t) = tls {
        if t.server_cert_der.is_some() {
            c.tls_listen = vec![any];
        }
        c.tls = t;
    }
    c.seed = Some(1);
    c
}

/// Answers every request with 200 (INVITE: 180 then 200), until the driver stops.
fn answer_all(mut incoming: Incoming) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(ev) = incoming.next().await {
            match ev {
                IncomingEvent::Request(req) => {
                    seen.push(req.request.method().unwrap().to_string());
                    if req.request.method() == Some(&Method::Invite) {
                        let mut ringing = response_to(&req.request, 180, None);
                        ringing.set_to_tag("callee");
                        req.respond(ringing).await.unwrap();
                    }
                    let mut ok = response_to(&req.request, 200, None);
                    ok.set_to_tag("callee");
                    req.respond(ok).await.unwrap();
                }
                IncomingEvent::Ack { .. } => seen.push("ACK".into()),
                _ => {}
            }
        }
        seen
    })
}

fn request(method: Method, to: SocketAddr, handle: &Handle) -> tincan_sip::message::Message {
    let uri_text = format!("sip:bob@{to}");
    let uri = Uri::parse(&uri_text).unwrap();
    RequestBuilder::new(method, &uri)
        .header(HeaderName::From, "<sip:alice@example.test>;tag=caller")
        .header(HeaderName::To, "<sip:bob@example.test>")
        .call_id(&handle.new_call_id())
        .cseq(1)
        .header(HeaderName::Contact, "<sip:alice@example.test>")
        .build()
}

/// Sends OPTIONS from `a` to `target` and returns the final status (panics after 5 s).
async fn options_status(a: &Handle, target: Target) -> u16 {
    let mut tx = a
        .request(request(Method::Options, target.addr, a), target.clone())
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), tx.final_response())
        .await
        .unwrap_or_else(|_| panic!("{} {}: no answer", target.transport, target.addr))
        .unwrap();
    resp.status().unwrap()
}

async fn exchange(
    transport: Transport,
    ip: &str,
    tls_server: Option<TlsSettings>,
    tls_client: Option<TlsSettings>,
) {
    let (b, b_in) = Driver::start(config(ip, tls_server)).await.unwrap();
    let answering = answer_all(b_in);
    let (a, _a_in) = Driver::start(config(ip, tls_client)).await.unwrap();
    let b_addr = b.local_address(transport).unwrap();
    let mut target = Target::new(transport, b_addr);
    if transport == Transport::Tls {
        target.server_name = Some("localhost".into());
    }
    assert_eq!(options_status(&a, target.clone()).await, 200);

    let invite = request(Method::Invite, b_addr, &a);
    let mut tx = a.request(invite.clone(), target.clone()).await.unwrap();
    let mut statuses = Vec::new();
    // Up to the final response (after a 2xx the transaction itself lives on for 64*T1, for
    // 2xx retransmissions and other forks: RFC 6026).
    while let Some(r) = tokio::time::timeout(Duration::from_secs(5), tx.next())
        .await
        .unwrap()
    {
        let status = r.unwrap().status().unwrap();
        statuses.push(status);
        if status >= 200 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    let mut ack = invite.clone();
    ack.set_method(Method::Ack);
    ack.remove_header(HeaderName::Via);
    ack.set_header(HeaderName::CSeq, "1 ACK");
    ack.set_header(HeaderName::To, "<sip:bob@example.test>;tag=callee");
    a.send_ack(ack, target).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.shutdown().await;
    b.shutdown().await;
    let seen = answering.await.unwrap();
    assert_eq!(seen, ["OPTIONS", "INVITE", "ACK"], "{transport}");
}

#[tokio::test]
async fn udp_v4() {
    exchange(Transport::Udp, "127.0.0.1", None, None).await;
}

#[tokio::test]
async fn tcp_v4() {
    exchange(Transport::Tcp, "127.0.0.1", None, None).await;
}

#[tokio::test]
async fn udp_and_tcp_v6() {
    if !skip::ipv6_loopback() {
        return;
    }
    exchange(Transport::Udp, "[::1]", None, None).await;
    exchange(Transport::Tcp, "[::1]", None, None).await;
}

#[tokio::test]
async fn tls_with_a_test_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let server = TlsSettings {
        server_cert_der: Some((vec![leaf.der().to_vec()], leaf_key.serialize_der())),
        ..TlsSettings::default()
    };
    let client = TlsSettings {
        ca_certs: vec![ca_cert.der().to_vec()],
        ..TlsSettings::default()
    };
    exchange(Transport::Tls, "127.0.0.1", Some(server), Some(client)).await;
}

#[tokio::test]
async fn tls_rejects_an_untrusted_certificate() {
    use rcgen::generate_simple_self_signed;
    let cert = generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let server = TlsSettings {
        server_cert_der: Some((
            vec![cert.cert.der().to_vec()],
            cert.signing_key.serialize_der(),
        )),
        ..TlsSettings::default()
    };
    let (b, _b_in) = Driver::start(config("127.0.0.1", Some(server)))
        .await
        .unwrap();
    let (a, _a_in) = Driver::start(config("127.0.0.1", Some(TlsSettings::default())))
        .await
        .unwrap();
    let b_addr = b.local_address(Transport::Tls).unwrap();
    let mut target = Target::new(Transport::Tls, b_addr);
    target.server_name = Some("localhost".into());
    let mut tx = a
        .request(request(Method::Options, b_addr, &a), target)
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), tx.final_response())
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), tincan_sip::driver::TxError::TransportError);
}

#[tokio::test]
async fn refused_tcp_is_a_transport_error() {
    let (a, _a_in) = Driver::start(config("127.0.0.1", None)).await.unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = Target::new(Transport::Tcp, closed);
    let mut tx = a
        .request(request(Method::Options, closed, &a), target)
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), tx.final_response())
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), tincan_sip::driver::TxError::TransportError);
}

/// A graceful shutdown waits for the requests somebody still waits for, not for those the
/// TU gave up on (dropped `ClientTransaction`, as a failover does after its budget): those
/// are abandoned instead of holding the shutdown back for the whole grace period.
#[tokio::test]
#[allow(clippy::disallowed_methods)] // driver-side test: the real clock of a real shutdown
async fn shutdown_waits_only_for_wanted_requests() {
    // A socket that reads and never answers.
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap();
    let target = Target::new(Transport::Udp, addr);

    let mut c = config("127.0.0.1", None);
    c.shutdown_grace = Duration::from_secs(60);
    let (a, _a_in) = Driver::start(c).await.unwrap();
    let tx = a
        .request(request(Method::Options, addr, &a), target.clone())
        .await
        .unwrap();
    drop(tx);
    tokio::time::timeout(Duration::from_secs(20), a.shutdown())
        .await
        .expect("the shutdown does not wait for an abandoned request");

    let mut c = config("127.0.0.1", None);
    c.shutdown_grace = Duration::from_millis(800);
    let (b, _b_in) = Driver::start(c).await.unwrap();
    let _wanted = b
        .request(request(Method::Options, addr, &b), target)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    b.shutdown().await;
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "a request still waited for holds the shutdown for its grace period ({:?})",
        started.elapsed()
    );
}

/// A traced driver sees each SIP message it sends and receives once, with its transport,
/// peer and bytes (UDP and TCP); the answering driver's own trace mirrors it.
#[tokio::test]
async fn the_trace_sees_every_message_both_ways() {
    use std::sync::{Arc, Mutex};
    use tincan_sip::driver::{Direction, Tracer};

    type Seen = Arc<Mutex<Vec<(Direction, Transport, SocketAddr, String)>>>;
    fn traced(seen: &Seen) -> DriverConfig {
        let mut c = config("127.0.0.1", None);
        let seen = seen.clone();
        c.trace = Some(Tracer::new(move |r| {
            let first_line = String::from_utf8_lossy(r.payload)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            seen.lock()
                .unwrap()
                .push((r.direction, r.transport, r.remote, first_line));
        }));
        c
    }
    let (a_seen, b_seen) = (Seen::default(), Seen::default());
    let (b, b_in) = Driver::start(traced(&b_seen)).await.unwrap();
    let answering = answer_all(b_in);
    let (a, _a_in) = Driver::start(traced(&a_seen)).await.unwrap();
    for transport in [Transport::Udp, Transport::Tcp] {
        let b_addr = b.local_address(transport).unwrap();
        assert_eq!(
            options_status(&a, Target::new(transport, b_addr)).await,
            200
        );
    }
    a.shutdown().await;
    b.shutdown().await;
    answering.await.unwrap();

    let a_seen = a_seen.lock().unwrap().clone();
    let summary: Vec<_> = a_seen
        .iter()
        .map(|(d, t, _, line)| (*d, *t, line.split(' ').next().unwrap().to_owned()))
        .collect();
    assert_eq!(
        summary,
        [
            (Direction::Sent, Transport::Udp, "OPTIONS".to_owned()),
            (Direction::Received, Transport::Udp, "SIP/2.0".to_owned()),
            (Direction::Sent, Transport::Tcp, "OPTIONS".to_owned()),
            (Direction::Received, Transport::Tcp, "SIP/2.0".to_owned()),
        ],
        "{a_seen:?}"
    );
    assert_eq!(a_seen[0].2, b.local_address(Transport::Udp).unwrap());
    assert_eq!(a_seen[2].2, b.local_address(Transport::Tcp).unwrap());
    assert!(a_seen[1].3.starts_with("SIP/2.0 200"), "{a_seen:?}");
    // b received what a sent and sent what a received
    let b_seen = b_seen.lock().unwrap().clone();
    let b_summary: Vec<_> = b_seen
        .iter()
        .map(|(d, t, _, l)| (*d, *t, l.clone()))
        .collect();
    let mirrored: Vec<_> = a_seen
        .iter()
        .map(|(d, t, _, l)| {
            let d = match d {
                Direction::Sent => Direction::Received,
                Direction::Received => Direction::Sent,
            };
            (d, *t, l.clone())
        })
        .collect();
    assert_eq!(b_summary, mirrored);
}

/// A free port on both 0.0.0.0 and [::] for UDP and TCP (best effort: checked by binding).
fn free_dual_stack_port() -> u16 {
    for _ in 0..100 {
        let port = std::net::UdpSocket::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // One at a time: a dual-stack [::] socket would collide with a 0.0.0.0 one.
        let free = std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::UdpSocket::bind(("::", port)).is_ok()
            && std::net::TcpListener::bind(("::", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no port free on both families")
}

/// `0.0.0.0:P` and `[::]:P` in one driver (UDP and TCP): the IPv6 sockets are IPv6-only, so
/// both families listen on the same port (a `tincan listen` on 5060), and each answers.
#[tokio::test]
async fn ipv4_and_ipv6_on_the_same_port() {
    if !skip::ipv6_loopback() {
        return;
    }
    let port = free_dual_stack_port();
    let v4: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::]:{port}").parse().unwrap();
    let mut c = DriverConfig::udp(v4);
    c.udp.push(v6);
    c.tcp = vec![v4, v6];
    let (b, b_in) = Driver::start(c).await.expect("both families on one port");
    let answering = answer_all(b_in);
    for (ip, transport) in [
        ("127.0.0.1", Transport::Udp),
        ("[::1]", Transport::Udp),
        ("127.0.0.1", Transport::Tcp),
        ("[::1]", Transport::Tcp),
    ] {
        let (a, _a_in) = Driver::start(config(ip, None)).await.unwrap();
        let to: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let status = options_status(&a, Target::new(transport, to)).await;
        assert_eq!(status, 200, "{transport} {to}");
        a.shutdown().await;
    }
    b.shutdown().await;
    answering.await.unwrap();
}

/// A start that fails on one of its addresses leaves none of the others bound: the caller can
/// retry with fewer (the CLI retries without its IPv6 socket).
#[tokio::test]
async fn a_failed_start_leaves_no_socket_behind() {
    let port = free_dual_stack_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = DriverConfig::udp(addr);
    c.tcp = vec![addr, taken.local_addr().unwrap()];
    assert!(Driver::start(c).await.is_err());
    let mut c = DriverConfig::udp(addr);
    c.tcp = vec![addr];
    let (handle, _incoming) = Driver::start(c)
        .await
        .expect("the failed start released its sockets");
    handle.shutdown().await;
}
