//! The phone driver on real loopback sockets: two phones call each other by address, with
//! media through null devices; the call is answered, held, resumed and hung up.

use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, EndReason, PhoneEvent};
use tincan_media::device::{NullSink, NullSource};

/// Waits for an event of `phone` that `want` accepts (at most 20 s: a loaded machine).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_call_hold_resume_and_hang_up() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut alice = Phone::builder().bind(bind).start().await.unwrap();
    let mut bob = Phone::builder().bind(bind).start().await.unwrap();
    let bob_addr = udp_addr(&bob);
    let call = alice
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
    alice.hold(call).await.unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Hold { by_peer: false },
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    alice.resume(call).await.unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Resumed { by_peer: false },
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    alice.hangup(call).await.unwrap();
    let mine = wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Ended(end),
            ..
        } => Some(end.clone()),
        _ => None,
    })
    .await;
    assert_eq!(mine.reason, EndReason::LocalHangup);
    assert!(mine.answered);
    let theirs = wait_for(&mut bob, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Ended(end),
            ..
        } => Some(end.clone()),
        _ => None,
    })
    .await;
    assert_eq!(theirs.reason, EndReason::RemoteHangup);
    alice.shutdown().await;
    bob.shutdown().await;
}
