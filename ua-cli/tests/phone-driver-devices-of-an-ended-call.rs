//! Audio devices handed to `Phone::accept` for a call that is already over (the caller
//! cancelled, or the call was refused, before the application answered) are let go at once,
//! not kept by the driver for the life of the phone (issue 19, finding 5: with real devices,
//! an open sound stream per such call).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tincan::phone::PhoneEvent;
use tincan::phone::driver::{CallOptions, Phone};
use tincan_media::device::{AudioSink, DeviceError, NullSource};

/// A sink that says when it is dropped.
struct Watched(Arc<AtomicBool>);

impl AudioSink for Watched {
    fn write_frame(&mut self, _frame: &[i16]) -> Result<(), DeviceError> {
        Ok(())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
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
async fn devices_given_to_a_call_that_is_over_are_dropped() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let alice = Phone::builder().bind(bind).start().await.unwrap();
    let mut bob = Phone::builder().bind(bind).start().await.unwrap();
    let bob_addr = udp_addr(&bob);
    alice
        .call(&format!("sip:bob@{bob_addr}"), CallOptions::default())
        .await
        .unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(PhoneEvent::Incoming(i)) = bob.next_event().await {
                return i.call;
            }
        }
    })
    .await
    .expect("the call reached bob");
    bob.reject(incoming, 486).await.unwrap();

    let dropped = Arc::new(AtomicBool::new(false));
    let accepted = bob
        .accept(
            incoming,
            Box::new(NullSource::new()),
            Box::new(Watched(Arc::clone(&dropped))),
        )
        .await;
    assert!(accepted.is_err(), "a refused call cannot be answered");
    // The driver lets the devices go right after its answer; give it a moment to get there.
    for _ in 0..100 {
        if dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the driver still holds the devices of a call that is over"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}
