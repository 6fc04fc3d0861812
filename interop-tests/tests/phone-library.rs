//! The `tincan` library's phone (`tincan::phone::driver::Phone`) against real peers:
//!
//! - two phones with accounts register with kamailio (digest) and alice calls `bob` (a bare
//!   user in her account's domain) through her registrar, answering kamailio's challenge to
//!   the INVITE with the account's credentials (given once); bob answers; alice hangs up;
//! - B1: a call straight to a domain whose NAPTR lists SIPS first (the lab dnsmasq's
//!   example.test, nothing listening for TLS) moves on to TCP/UDP and reaches the phone
//!   listening there, instead of failing on the first target; the ACK, the BYE and a second
//!   call within the records' TTL ask dnsmasq nothing more (one resolution per dialog target,
//!   one cache per phone).

use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, EndReason, PhoneEvent};
use tincan_interop_tests::{DnsRecords, Dnsmasq, Kamailio, free_tcp_port, require_peers};
use tincan_media::device::{NullSink, NullSource};

/// Waits for an event of `phone` that `want` accepts (at most 30 s: a loaded machine).
async fn wait_for<T>(
    phone: &mut Phone,
    what: &str,
    mut want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} in 30 s"))
            .expect("the phone runs");
        eprintln!("{what}? {ev:?}");
        if let Some(v) = want(&ev) {
            return v;
        }
    }
}

fn answered(e: &PhoneEvent) -> Option<()> {
    matches!(
        e,
        PhoneEvent::Call {
            event: CallEvent::Answered { .. },
            ..
        }
    )
    .then_some(())
}

fn ended(e: &PhoneEvent) -> Option<tincan::phone::CallEnd> {
    match e {
        PhoneEvent::Call {
            event: CallEvent::Ended(end),
            ..
        } => Some(end.clone()),
        _ => None,
    }
}

fn registered(e: &PhoneEvent) -> Option<()> {
    matches!(
        e,
        PhoneEvent::Account {
            event: AccountEvent::Registered { .. },
            ..
        }
    )
    .then_some(())
}

async fn answer_next(phone: &mut Phone) {
    let call = wait_for(phone, "incoming", |e| match e {
        PhoneEvent::Incoming(i) => Some(i.call),
        _ => None,
    })
    .await;
    phone
        .accept(call, Box::new(NullSource::new()), Box::new(NullSink::new()))
        .await
        .expect("accept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_register_and_call_through_kamailio_with_digest() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let registrar = format!("sip:{}", kamailio.addr());
    let account = |user: &str| {
        let mut a = AccountConfig::new(
            user,
            format!("sip:{user}@{}", kamailio.domain()),
            user,
            kamailio.password(user).expect("a lab user"),
        );
        a.registrars = vec![registrar.clone()];
        a.expires = 60;
        a
    };
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut alice = Phone::builder()
        .bind(bind)
        .account(account("alice"))
        .start()
        .await
        .expect("alice starts");
    let mut bob = Phone::builder()
        .bind(bind)
        .account(account("bob"))
        .start()
        .await
        .expect("bob starts");
    wait_for(&mut alice, "alice registered", registered).await;
    wait_for(&mut bob, "bob registered", registered).await;
    let call = alice
        .call("bob", CallOptions::default())
        .await
        .expect("the call starts");
    answer_next(&mut bob).await;
    wait_for(&mut alice, "alice answered", answered).await;
    alice.hangup(call).await.expect("hang up");
    let end = wait_for(&mut alice, "alice ended", ended).await;
    assert_eq!(end.reason, EndReason::LocalHangup);
    assert!(end.answered);
    let end = wait_for(&mut bob, "bob ended", ended).await;
    assert_eq!(end.reason, EndReason::RemoteHangup);
    alice.shutdown().await;
    bob.shutdown().await;
    // Both unregistered on shutdown.
    for user in ["alice", "bob"] {
        let contacts = kamailio.contacts(user).unwrap_or_default();
        assert!(contacts.is_empty(), "{user} still has {contacts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_domain_whose_first_target_is_tls_moves_on() {
    if !require_peers(&["dnsmasq"]) {
        return;
    }
    // bob listens on UDP and TCP on one port; nothing listens for TLS.
    let port = free_tcp_port();
    let bind: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut bob = Phone::builder()
        .bind(bind)
        .tcp(true)
        .start()
        .await
        .expect("bob starts");
    let mut dns = Dnsmasq::start(&DnsRecords::example_test(port, None, free_tcp_port()))
        .expect("dnsmasq starts");
    let mut alice = Phone::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .dns_server(dns.addr())
        .start()
        .await
        .expect("alice starts");
    let queries = |dns: &mut Dnsmasq| dns.peer().log().matches("query[").count();
    let before = queries(&mut dns);
    let call = alice
        .call("sip:someone@example.test", CallOptions::default())
        .await
        .expect("the call starts");
    answer_next(&mut bob).await;
    wait_for(&mut alice, "alice answered", answered).await;
    let resolved = queries(&mut dns);
    assert!(resolved > before, "the domain was resolved");
    alice.hangup(call).await.expect("hang up");
    let end = wait_for(&mut alice, "alice ended", ended).await;
    assert_eq!(end.reason, EndReason::LocalHangup);
    wait_for(&mut bob, "bob ended", ended).await;
    // The ACK and the BYE went where the dialog knew: no DNS query after the INVITE's.
    assert_eq!(queries(&mut dns), resolved, "{}", dns.peer().log());
    // A second call to the domain within the records' TTL asks nothing either (one cache
    // per phone).
    let call = alice
        .call("sip:someone@example.test", CallOptions::default())
        .await
        .expect("the second call starts");
    answer_next(&mut bob).await;
    wait_for(&mut alice, "alice answered again", answered).await;
    alice.hangup(call).await.expect("hang up");
    wait_for(&mut alice, "alice ended again", ended).await;
    assert_eq!(queries(&mut dns), resolved, "{}", dns.peer().log());
    println!(
        "MEASURED: {} DNS queries for two calls to example.test (NAPTR, SRV, A/AAAA once)",
        resolved - before
    );
    alice.shutdown().await;
    bob.shutdown().await;
}
