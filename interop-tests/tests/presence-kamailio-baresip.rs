//! Presence through kamailio's presence server (modules presence + presence_xml on sqlite,
//! `lab/kamailio/kamailio-presence.cfg`) between the `tincan` library's phone and baresip
//! (its `presence` module), both ways:
//! - Tincan publishes (RFC 3903 PUBLISH, its 407 answered) and baresip watches it (a
//!   contact with `;presence=p2p`): baresip's `contacts` list shows Tincan online, busy
//!   (`set_presence` busy, the status a call shows), then online again.
//! - Tincan watches baresip (RFC 3856 SUBSCRIBE, `[[account]] watch`): baresip publishes
//!   (account `pubint`), `presence_offline` / `presence_online` change what Tincan's
//!   `PhoneEvent::Presence` says. baresip 1.0's publisher sends only `open`/`closed` (no
//!   activities), so away and busy cannot be seen from its side.

use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::driver::Phone;
use tincan::phone::presence::{Presence, PresenceEvent, PresenceStatus};
use tincan::phone::{AccountConfig, AccountEvent, AccountId, PhoneEvent};
use tincan_interop_tests::{Baresip, Kamailio, require_peers, skip};

/// Long enough for a loaded 2-core machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(40);

/// How often baresip publishes, in seconds (its `pubint`, also the `Expires` it asks).
const PUBINT: u64 = 20;

/// Waits for an event of `phone` that `want` accepts.
async fn wait_for<T>(
    phone: &mut Phone,
    what: &str,
    want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    wait_within(phone, what, WAIT, want).await
}

/// Waits up to `limit` for an event of `phone` that `want` accepts.
async fn wait_within<T>(
    phone: &mut Phone,
    what: &str,
    limit: Duration,
    mut want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} in {limit:?}"))
            .expect("the phone runs");
        eprintln!("{what}? {ev:?}");
        if let Some(v) = want(&ev) {
            return v;
        }
    }
}

/// Waits until baresip's `contacts` list shows alice with `status` (`online`, `busy`,
/// `offline`): baresip logs only changes from a known status, its list shows them all.
async fn baresip_sees(bob: &Baresip, status: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        let mut ctl = bob.control().expect("ctrl_tcp connects");
        last = ctl.command("contacts", "").expect("contacts listed").data;
        let shown = last
            .lines()
            .any(|l| l.contains("alice") && l.to_ascii_lowercase().contains(status));
        if shown {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("baresip does not show alice {status} in {WAIT:?}; its contacts:\n{last}");
}

/// The status of a watched contact's presence event.
fn changed(e: &PhoneEvent) -> Option<PresenceStatus> {
    match e {
        PhoneEvent::Presence(PresenceEvent::Changed { status, .. }) => Some(*status),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_both_ways_between_tincan_and_baresip_through_kamailio() {
    if !require_peers(&["kamailio", "baresip"]) {
        return;
    }
    if let Some(why) = tincan_interop_tests::kamailio::presence_available() {
        skip(&why);
        return;
    }
    // Declared first, dropped last: baresip un-REGISTERs before kamailio stops.
    let kamailio = Kamailio::builder()
        .presence()
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .sip_trace(true)
        .config_line("module_app\t\tpresence.so")
        // Publishes its own presence (at once, then every PUBINT seconds).
        .account_param(&format!("pubint={PUBINT}"))
        .contact(&format!(
            "\"Alice\" <sip:alice@{}>;presence=p2p",
            kamailio.domain()
        ))
        .start()
        .expect("baresip starts");
    bob.wait_registered(WAIT).expect("bob registers");
    bob.peer()
        .wait_for_log("PUBLISH|publish", WAIT)
        .expect("baresip publishes");

    let mut account = AccountConfig::new(
        "alice",
        format!("sip:alice@{}", kamailio.domain()),
        "alice",
        kamailio.password("alice").expect("a lab user"),
    );
    account.registrars = vec![format!("sip:{}", kamailio.addr())];
    account.expires = 60;
    account.presence = true;
    account.watch = vec!["bob".to_owned()];
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

    // Tincan watches baresip: online as published.
    wait_for(&mut alice, "bob available", |e| {
        (changed(e) == Some(PresenceStatus::Available)).then_some(())
    })
    .await;

    // Tincan publishes; baresip (watching alice) sees it online.
    baresip_sees(&bob, "online").await;

    // Busy (what a call shows), then online again.
    alice
        .set_presence(
            AccountId(0),
            Presence::new(PresenceStatus::Busy).with_note("in a meeting"),
        )
        .await
        .expect("an account");
    baresip_sees(&bob, "busy").await;
    alice
        .set_presence(AccountId(0), Presence::new(PresenceStatus::Available))
        .await
        .expect("an account");
    baresip_sees(&bob, "online").await;

    // baresip changes its status; Tincan's events follow.
    let mut ctl = bob.control().expect("ctrl_tcp connects");
    ctl.command("presence_offline", "")
        .expect("presence_offline accepted");
    // baresip 1.0 starts two publications (one `unknown`, one `open`) and changes only one:
    // its `open` tuple stays in kamailio's aggregated document until it expires (PUBINT
    // seconds, then kamailio's clean_period of 30 s).
    let limit = WAIT + Duration::from_secs(PUBINT + 30);
    wait_within(&mut alice, "bob offline", limit, |e| {
        (changed(e) == Some(PresenceStatus::Offline)).then_some(())
    })
    .await;
    ctl.command("presence_online", "")
        .expect("presence_online accepted");
    wait_for(&mut alice, "bob available again", |e| {
        (changed(e) == Some(PresenceStatus::Available)).then_some(())
    })
    .await;

    alice.shutdown().await;
    bob.stop();
    drop(kamailio);
}
