//! The phone driver with a STUN server (`PhoneBuilder::stun_server`): before a call's offer,
//! one Binding request from the RTP port; the SDP names the address the server saw. A server
//! that does not answer costs a bounded wait, and the SDP names the local address.
//! The STUN servers are threads of the test on loopback; one pretends a NAT (it answers with
//! a documentation address).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, PhoneEvent};
use tincan_media::device::{NullSink, NullSource};
use tincan_sip::stun::{self, Class, Message};

/// The public address the pretend NAT gives every port.
const PUBLIC_IP: &str = "192.0.2.77";

async fn wait_for<T>(phone: &mut Phone, mut want: impl FnMut(&PhoneEvent) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .expect("the event came in time")
            .expect("the phone runs");
        if let Some(v) = want(&ev) {
            return v;
        }
    }
}

fn udp_addr(phone: &Phone) -> SocketAddr {
    phone
        .local_addresses()
        .iter()
        .find(|(t, _)| t.as_str() == "udp")
        .map(|(_, a)| *a)
        .expect("a udp socket")
}

/// A STUN server thread on loopback: answers (with `PUBLIC_IP` and the source port) when
/// `answers`, else stays silent. Stops when the flag is set.
fn stun_server(answers: bool) -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback port");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("a read timeout");
    let addr = socket.local_addr().expect("bound");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !flag.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = Message::parse(&buf[..n]) else {
                continue;
            };
            if m.class != Class::Request || !answers {
                continue;
            }
            let mapped = SocketAddr::new(PUBLIC_IP.parse().expect("an ip"), from.port());
            let _ = socket.send_to(&stun::binding_success(m.transaction, mapped, true), from);
        }
    });
    (addr, stop, thread)
}

/// Alice (with the STUN server) calls Bob; returns Alice's SIP trace once Bob answered.
async fn call_and_trace(stun: SocketAddr, name: &str) -> String {
    let trace = std::env::temp_dir().join(format!("tincan-{name}-{}.trace", std::process::id()));
    let _ = std::fs::remove_file(&trace);
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut alice = Phone::builder()
        .bind(bind)
        .stun_server(stun.to_string())
        .sip_trace(tincan::trace::to_path(&trace).expect("a trace file"))
        .start()
        .await
        .unwrap();
    let mut bob = Phone::builder().bind(bind).start().await.unwrap();
    let bob_addr = udp_addr(&bob);
    alice
        .call(&format!("sip:bob@{bob_addr}"), CallOptions::default())
        .await
        .unwrap();
    let incoming = wait_for(&mut bob, |e| match e {
        PhoneEvent::Incoming(i) => Some(i.call),
        _ => None,
    })
    .await;
    bob.accept(
        incoming,
        Box::new(NullSource::new()),
        Box::new(NullSink::new()),
    )
    .await
    .unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Answered { .. },
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
    let text = std::fs::read_to_string(&trace).expect("the trace");
    let _ = std::fs::remove_file(&trace);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_names_the_address_the_stun_server_saw() {
    let (stun, stop, thread) = stun_server(true);
    let trace = call_and_trace(stun, "media-stun").await;
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
    assert!(
        trace.contains(&format!("c=IN IP4 {PUBLIC_IP}")),
        "the offer names the public address:\n{trace}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stun_server_leaves_the_local_address_in_the_offer() {
    let (stun, stop, thread) = stun_server(false);
    let trace = call_and_trace(stun, "media-stun-silent").await;
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
    assert!(trace.contains("c=IN IP4 127.0.0.1"), "{trace}");
    assert!(!trace.contains(PUBLIC_IP), "{trace}");
}
