//! Page-mode messages (RFC 3428 MESSAGE) between the `tincan` library's phone and baresip
//! (its `contact` module's `message` command, its core answering MESSAGE 200): both ways
//! directly, and both ways through the lab kamailio (digest 407 answered with the account's
//! credentials, the message routed to the registered contact).

use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::driver::Phone;
use tincan::phone::{AccountConfig, AccountEvent, IncomingMessage, MessageEvent, PhoneEvent};
use tincan_interop_tests::{Baresip, Kamailio, require_peers};

/// Long enough for a loaded 2-core machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);

/// Waits for an event of `phone` that `want` accepts.
async fn wait_for<T>(
    phone: &mut Phone,
    what: &str,
    mut want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} in {WAIT:?}"))
            .expect("the phone runs");
        eprintln!("{what}? {ev:?}");
        if let Some(v) = want(&ev) {
            return v;
        }
    }
}

fn received(e: &PhoneEvent) -> Option<IncomingMessage> {
    match e {
        PhoneEvent::Message(MessageEvent::Received(m)) => Some(m.clone()),
        _ => None,
    }
}

/// The delivery report of any message: `Some(status)` for a 2xx, `None` for a failure.
fn report(e: &PhoneEvent) -> Option<Result<u16, String>> {
    match e {
        PhoneEvent::Message(MessageEvent::Delivered { status, .. }) => Some(Ok(*status)),
        PhoneEvent::Message(MessageEvent::Failed { status, reason, .. }) => {
            Some(Err(format!("{status:?} {reason}")))
        }
        _ => None,
    }
}

/// Has baresip send `text` to its current contact (the first of its contacts file).
fn baresip_sends(bob: &Baresip, text: &str) {
    let mut ctl = bob.control().expect("ctrl_tcp connects");
    // Listing the contacts makes the first one current.
    ctl.command("contacts", "").expect("contacts listed");
    ctl.command("message", text).expect("message accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_both_ways_with_baresip_directly() {
    if !require_peers(&["baresip"]) {
        return;
    }
    let mut alice = Phone::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .start()
        .await
        .expect("alice starts");
    let alice_addr = alice.local_addresses()[0].1;
    let mut bob = Baresip::builder("bob", "bobpw")
        .register(false)
        .sip_trace(true)
        .contact(&format!("\"Alice\" <sip:alice@{alice_addr}>"))
        .start()
        .expect("baresip starts");

    let text = "hello baresip, from tincan";
    alice
        .send_message(&format!("sip:bob@{}", bob.sip_addr()), text, None)
        .await
        .expect("sent");
    let status = wait_for(&mut alice, "delivery report", report).await;
    assert_eq!(status, Ok(200));
    bob.peer()
        .wait_for_log(&regex::escape(text), WAIT)
        .expect("baresip shows the message");

    baresip_sends(&bob, "hello tincan, from baresip");
    let m = wait_for(&mut alice, "a message", received).await;
    assert_eq!(m.text.as_deref(), Some("hello tincan, from baresip"));
    assert!(m.content_type.starts_with("text/plain"), "{m:?}");
    assert!(m.from.contains("sip:bob@"), "{m:?}");
    alice.shutdown().await;
    bob.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_both_ways_with_baresip_through_kamailio() {
    if !require_peers(&["kamailio", "baresip"]) {
        return;
    }
    // Declared first, dropped last: baresip un-REGISTERs before kamailio stops.
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut account = AccountConfig::new(
        "alice",
        format!("sip:alice@{}", kamailio.domain()),
        "alice",
        kamailio.password("alice").expect("a lab user"),
    );
    account.registrars = vec![format!("sip:{}", kamailio.addr())];
    account.expires = 60;
    let mut alice = Phone::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .account(account)
        .start()
        .await
        .expect("alice starts");
    wait_for(&mut alice, "alice registered", |e| {
        matches!(
            e,
            PhoneEvent::Account {
                event: AccountEvent::Registered { .. },
                ..
            }
        )
        .then_some(())
    })
    .await;
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .sip_trace(true)
        .contact(&format!("\"Alice\" <sip:alice@{}>", kamailio.domain()))
        .start()
        .expect("baresip starts");
    bob.wait_registered(WAIT).expect("bob registers");

    // A bare user: the account's domain, through its registrar (kamailio challenges 407).
    let text = "through the proxy, to baresip";
    alice.send_message("bob", text, None).await.expect("sent");
    let status = wait_for(&mut alice, "delivery report", report).await;
    assert_eq!(status, Ok(200));
    bob.peer()
        .wait_for_log(&regex::escape(text), WAIT)
        .expect("baresip shows the message");

    baresip_sends(&bob, "through the proxy, to tincan");
    let m = wait_for(&mut alice, "a message", received).await;
    assert_eq!(m.text.as_deref(), Some("through the proxy, to tincan"));
    assert_eq!(m.account, Some(tincan::phone::AccountId(0)));
    bob.stop();
    alice.shutdown().await;
}
