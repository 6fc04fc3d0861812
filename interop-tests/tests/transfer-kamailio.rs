//! Transfers through the lab kamailio (registrar with digest auth, record-routing proxy):
//! every party registers, every request goes through kamailio, and the final leg of each
//! transfer carries audio both ways (a tone in, its frequency found in the other side's
//! recording).
//!
//! - Tincan blind-transfers baresip: `tincan call sip:bob@example.test`, `transfer carol`
//!   typed; the REFER and baresip's NOTIFYs go through kamailio in the dialog, baresip calls
//!   `sip:carol@example.test` (challenged by kamailio) and reaches the `tincan listen`
//!   registered as carol.
//! - Tincan's attended transfer: alice (the library's `Phone`) calls dave (a `tincan listen`
//!   with `accept_transfer = "always"`), holds him, calls carol (the consultation), then
//!   refers dave to carol with her dialog in `Replaces`; dave's INVITE with `Replaces` reaches
//!   carol through kamailio and takes over the consultation call; alice's two calls end.
//! - The same with baresip as the transferee: baresip 1.0 garbles the `Replaces` into its
//!   Request-URI, carol refuses it (400), the transfer fails and alice's calls go on.
//! - baresip transfers Tincan: baresip calls the `tincan listen` registered as alice (config
//!   `accept_transfer = "always"`) and `/transfer`s her to `sip:carol@example.test`; alice's
//!   new call goes through kamailio to carol's `tincan listen`.
//!
//! baresip 1.0 (Debian 12) has no attended transfer of its own: its menu offers `/transfer`
//! (blind) only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, CallId, EndReason, PhoneEvent};
use tincan_interop_tests::{
    Baresip, BaresipControl, Kamailio, Tincan, TincanProcess, audio, require_peers, tincan_binary,
};

/// Long enough for a loaded 2-core machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);
/// The tone baresip (bob) sends.
const BOB_HZ: u32 = 880;
/// The tone Tincan alice sends.
const ALICE_HZ: f64 = 440.0;
/// The tone Tincan carol sends.
const CAROL_HZ: f64 = 660.0;

/// kamailio and baresip bob (auto-answer, PCMU, an 880 Hz tone) registered with it, and
/// bob's control connection.
fn lab() -> Option<(Kamailio, Baresip, BaresipControl)> {
    if !require_peers(&["kamailio", "baresip"]) {
        return None;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .tone(BOB_HZ)
        .codecs("PCMU/8000/1")
        .start()
        .expect("baresip bob starts");
    bob.wait_registered(WAIT).expect("bob registers");
    let control = bob.control().expect("ctrl_tcp connects");
    Some((kamailio, bob, control))
}

/// A scratch dir for Tincan `user` registered at `kamailio`, sending `hz`.
fn tincan(name: &str, user: &str, kamailio: &Kamailio, hz: f64) -> TincanProcess {
    TincanProcess::new(name)
        .expect("scratch dir")
        .lifetime(Duration::from_secs(120))
        .kamailio_account(
            user,
            kamailio.password(user).expect("a lab user"),
            kamailio.addr(),
            hz,
            Duration::from_secs(60),
        )
}

/// `tincan listen --auto-answer` registered as `user` (recording each call to `rec.wav`,
/// `rec-2.wav`...), once kamailio has its contact.
fn listener(process: TincanProcess, user: &str, kamailio: &mut Kamailio) -> Tincan {
    let mut p = process.spawn_phone(user, "listen", &["--auto-answer"]);
    p.wait_event("registered", WAIT)
        .unwrap_or_else(|e| panic!("{user} registers: {e}\n{}", p.log()));
    kamailio
        .wait_registered(user, WAIT)
        .expect("kamailio has the contact");
    p
}

/// Asserts that the recording at `path` holds a tone of `hz`, loud and long enough.
fn assert_tone(path: &Path, hz: f64, who: &str) {
    let report = audio::analyse_file(path)
        .unwrap_or_else(|e| panic!("{who}'s recording {}: {e}", path.display()));
    eprintln!("{who} heard {report:?}");
    assert!(
        (report.frequency - hz).abs() < 20.0 && report.rms > 1_000.0,
        "{who} should hear {hz} Hz: {report:?}"
    );
    assert!(
        report.duration >= Duration::from_millis(1_500),
        "{who}'s recording is too short: {report:?}"
    );
}

/// baresip's recording of what it received in its last call (complete once it ended).
fn baresip_heard_last(bob: &Baresip) -> PathBuf {
    bob.decoded_recordings()
        .pop()
        .expect("baresip recorded its calls")
}

/// Whether kamailio's log shows it routed a `method` request.
fn kamailio_routed(kamailio: &mut Kamailio, method: &str) -> bool {
    kamailio.peer().log().contains(&format!("REQ {method} "))
}

/// The final leg (baresip bob with a Tincan that plays `hz` and records to `recording`)
/// carries audio both ways for a while; then bob hangs up and both recordings are checked.
fn final_leg_has_audio(
    bob: &Baresip,
    control: &mut BaresipControl,
    tincan: &mut Tincan,
    recording: &str,
    hz: f64,
    who: &str,
) {
    std::thread::sleep(Duration::from_secs(3));
    // Counted before the hang-up: its `ended` may be printed at once.
    let ended = tincan.events_named("ended").len();
    control.hangup().expect("bob hangs up");
    tincan
        .wait_event_count("ended", ended + 1, WAIT)
        .unwrap_or_else(|e| panic!("{who}'s last call ends: {e}\n{}", tincan.log()));
    control
        .wait_event("CALL_CLOSED", WAIT)
        .expect("bob's last call is closed");
    assert_tone(&tincan.path(recording), f64::from(BOB_HZ), who);
    assert_tone(&baresip_heard_last(bob), hz, "baresip");
}

#[test]
fn tincan_blind_transfers_baresip_to_another_tincan_through_kamailio() {
    let Some((mut kamailio, bob, mut control)) = lab() else {
        return;
    };
    let mut carol = listener(
        tincan("kam-blind-carol", "carol", &kamailio, CAROL_HZ),
        "carol",
        &mut kamailio,
    );
    let mut alice = tincan("kam-blind-alice", "alice", &kamailio, ALICE_HZ)
        .with_stdin()
        .spawn_phone("alice", "call", &["sip:bob@example.test"]);
    alice
        .wait_event("answered", WAIT)
        .unwrap_or_else(|e| panic!("bob answers: {e}\n{}", alice.log()));
    control
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("bob's call is up");
    std::thread::sleep(Duration::from_secs(1));

    // A bare user: carol in alice's account's domain.
    alice.command("transfer carol").expect("stdin open");
    let done = alice
        .wait_event("transfer_succeeded", WAIT)
        .unwrap_or_else(|e| panic!("bob's NOTIFY says it worked: {e}\n{}", alice.log()));
    assert_eq!(done["status"], 200, "{done}");
    assert_eq!(
        alice.wait_exit(WAIT).expect("tincan call exits"),
        Some(0),
        "{}",
        alice.log()
    );
    let progress = alice.events_named("transfer_progress");
    assert!(
        progress.first().is_some_and(|p| p["status"] == 202),
        "{progress:?}"
    );
    let incoming = carol
        .wait_event("incoming", WAIT)
        .expect("bob's INVITE reaches carol");
    assert!(
        incoming["from"].as_str().is_some_and(|f| f.contains("bob")),
        "{incoming}"
    );
    carol.wait_event("answered", WAIT).expect("carol answers");
    let trace = std::fs::read_to_string(alice.path("sip-trace.log")).expect("alice's SIP trace");
    assert!(
        trace.contains("Refer-To: <sip:carol@example.test>"),
        "the REFER names carol's AOR"
    );
    assert!(
        kamailio_routed(&mut kamailio, "REFER"),
        "REFER via kamailio"
    );
    assert!(
        kamailio_routed(&mut kamailio, "NOTIFY"),
        "NOTIFY via kamailio"
    );

    final_leg_has_audio(&bob, &mut control, &mut carol, "rec.wav", CAROL_HZ, "carol");
    bob.stop();
    drop(kamailio);
}

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

/// `call` was answered.
fn answered(call: CallId) -> impl FnMut(&PhoneEvent) -> Option<()> {
    move |e| {
        matches!(
            e,
            PhoneEvent::Call { call: c, event: CallEvent::Answered { .. } } if *c == call
        )
        .then_some(())
    }
}

/// The library's phone registered as alice at `kamailio`.
async fn alice_phone(kamailio: &Kamailio) -> Phone {
    let mut account = AccountConfig::new(
        "alice",
        format!("sip:alice@{}", kamailio.domain()),
        "alice",
        kamailio.password("alice").expect("a lab user"),
    );
    account.registrars = vec![format!("sip:{}", kamailio.addr())];
    account.expires = 60;
    let mut alice = Phone::builder()
        .bind("127.0.0.1:0".parse().expect("an address"))
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
    alice
}

/// Alice calls `transferee` (a user at kamailio), holds the call, calls carol (the
/// consultation) and refers the transferee to carol with `Replaces`: (the transferee's
/// call, carol's call).
async fn consult_and_transfer(
    alice: &mut Phone,
    transferee: &str,
    carol: &mut Tincan,
) -> (CallId, CallId) {
    let held = alice
        .call(transferee, CallOptions::default())
        .await
        .expect("the first call starts");
    wait_for(alice, "the first call answered", answered(held)).await;
    alice.hold(held).await.expect("held");
    wait_for(alice, "the first call held", |e| {
        matches!(
            e,
            PhoneEvent::Call { call, event: CallEvent::Hold { by_peer: false } } if *call == held
        )
        .then_some(())
    })
    .await;
    let consult = alice
        .call("carol", CallOptions::default())
        .await
        .expect("the consultation call starts");
    wait_for(alice, "carol answered", answered(consult)).await;
    tokio::task::block_in_place(|| carol.wait_event("answered", WAIT))
        .expect("carol answered the consultation");
    alice
        .transfer_attended(held, consult)
        .await
        .expect("the REFER with Replaces goes out");
    (held, consult)
}

/// Whether `tincan`'s SIP trace shows an INVITE with a `Replaces` header that came through
/// `kamailio` (its Record-Route).
fn got_replaces_through(tincan: &Tincan, kamailio: &Kamailio) -> bool {
    let trace = std::fs::read_to_string(tincan.path("sip-trace.log")).expect("a SIP trace");
    let record_route = format!("Record-Route: <sip:127.0.0.1:{};", kamailio.port());
    trace
        .split("INVITE sip:")
        .any(|m| m.contains("\r\nReplaces: ") && m.contains(&record_route))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tincan_attended_transfer_through_kamailio_replaces_the_consultation_call() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    tincan_binary();
    let mut kamailio = Kamailio::builder()
        .user("dave", "davepw")
        .start()
        .expect("kamailio starts");
    let (mut carol, mut dave) = tokio::task::block_in_place(|| {
        let carol = listener(
            tincan("kam-attended-carol", "carol", &kamailio, CAROL_HZ),
            "carol",
            &mut kamailio,
        );
        let process = tincan("kam-attended-dave", "dave", &kamailio, ALICE_HZ).with_stdin();
        let config = process.path("config.toml");
        let mut text = std::fs::read_to_string(&config).expect("config written");
        text.push_str("\n[network]\naccept_transfer = \"always\"\n");
        std::fs::write(&config, text).expect("config written");
        (carol, listener(process, "dave", &mut kamailio))
    });
    let mut alice = alice_phone(&kamailio).await;
    let (held, consult) = consult_and_transfer(&mut alice, "dave", &mut carol).await;

    // The transfer succeeds and both of alice's calls end: dave's by her BYE after the
    // NOTIFY 200, carol's by carol's BYE once dave's INVITE with Replaces took it over.
    let (mut succeeded, mut held_end, mut consult_end) = (None, None, None);
    while held_end.is_none() || consult_end.is_none() {
        let (call, event) = wait_for(&mut alice, "the transfer's end", |e| match e {
            PhoneEvent::Call { call, event } => Some((*call, event.clone())),
            _ => None,
        })
        .await;
        match event {
            CallEvent::TransferSucceeded { status } if call == held => succeeded = Some(status),
            CallEvent::TransferFailed { status, reason } => {
                panic!("the transfer failed: {status} {reason}")
            }
            CallEvent::Ended(end) if call == held => held_end = Some(end),
            CallEvent::Ended(end) if call == consult => consult_end = Some(end),
            _ => {}
        }
    }
    assert_eq!(succeeded, Some(200), "dave's NOTIFY reported 200");
    assert_eq!(held_end.map(|e| e.reason), Some(EndReason::LocalHangup));
    assert_eq!(consult_end.map(|e| e.reason), Some(EndReason::RemoteHangup));
    alice.shutdown().await;

    tokio::task::block_in_place(|| {
        dave.wait_event("transfer_started", WAIT)
            .expect("dave accepted the REFER");
        carol
            .wait_event("replaced", WAIT)
            .expect("dave's call replaced the consultation");
        carol
            .wait_event_count("answered", 2, WAIT)
            .expect("carol's call with dave is up");
        dave.wait_event_count("answered", 2, WAIT)
            .expect("dave's call with carol is up");
        assert!(
            got_replaces_through(&carol, &kamailio),
            "dave's INVITE with Replaces came to carol through kamailio"
        );
        assert!(
            kamailio_routed(&mut kamailio, "REFER"),
            "REFER via kamailio"
        );
        assert!(
            kamailio_routed(&mut kamailio, "NOTIFY"),
            "NOTIFY via kamailio"
        );

        // The final leg carries audio both ways.
        std::thread::sleep(Duration::from_secs(3));
        dave.command("hangup").expect("stdin open");
        carol
            .wait_event_count("ended", 2, WAIT)
            .expect("carol's call with dave ends");
        dave.wait_event_count("ended", 2, WAIT)
            .expect("dave's calls ended");
        assert_tone(&carol.path("rec-2.wav"), ALICE_HZ, "carol");
        assert_tone(&dave.path("rec-2.wav"), CAROL_HZ, "dave");
    });
    drop(kamailio);
}

/// baresip 1.0 accepts a REFER whose `Refer-To` carries `Replaces` but does not send the
/// header: it puts `?Replaces=...` (its escapes garbled) into the Request-URI and To of its
/// INVITE. Tincan at the target refuses that Request-URI (400) instead of taking it for a new
/// call, baresip's NOTIFY reports the failure, and the transferor's two calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_1_0_garbles_replaces_and_the_attended_transfer_fails_cleanly() {
    let Some((mut kamailio, bob, control)) = lab() else {
        return;
    };
    let mut carol = tokio::task::block_in_place(|| {
        listener(
            tincan("kam-attended-bob-carol", "carol", &kamailio, CAROL_HZ),
            "carol",
            &mut kamailio,
        )
    });
    let mut alice = alice_phone(&kamailio).await;
    let (held, consult) = consult_and_transfer(&mut alice, "bob", &mut carol).await;
    let failed = wait_for(&mut alice, "the transfer's end", |e| match e {
        PhoneEvent::Call { call, event } if *call == held => match event {
            CallEvent::TransferFailed { status, .. } => Some(Ok(*status)),
            CallEvent::TransferSucceeded { status } => Some(Err(*status)),
            CallEvent::Ended(end) => panic!("the held call ended: {end:?}"),
            _ => None,
        },
        PhoneEvent::Call {
            call,
            event: CallEvent::Ended(end),
        } if *call == consult => panic!("the consultation call ended: {end:?}"),
        _ => None,
    })
    .await;
    assert_eq!(failed, Ok(400), "carol refused baresip's Request-URI");
    // Both calls go on; alice hangs them up.
    for call in [held, consult] {
        alice.hangup(call).await.expect("the call is still up");
    }
    for _ in 0..2 {
        let end = wait_for(&mut alice, "a call's end", |e| match e {
            PhoneEvent::Call {
                event: CallEvent::Ended(end),
                ..
            } => Some(end.clone()),
            _ => None,
        })
        .await;
        assert_eq!(end.reason, EndReason::LocalHangup, "{end:?}");
    }
    alice.shutdown().await;
    tokio::task::block_in_place(|| {
        let trace = std::fs::read_to_string(carol.path("sip-trace.log")).expect("a SIP trace");
        assert!(
            trace.contains("?Replaces=") && trace.contains("SIP/2.0 400"),
            "baresip's INVITE with ?Replaces= in its Request-URI, refused"
        );
        assert!(
            carol.events_named("replaced").is_empty(),
            "nothing replaced"
        );
    });
    drop(control);
    bob.stop();
    drop(kamailio);
}

#[test]
fn baresip_blind_transfers_tincan_to_another_tincan_through_kamailio() {
    let Some((mut kamailio, bob, mut control)) = lab() else {
        return;
    };
    let mut carol = listener(
        tincan("kam-transferee-carol", "carol", &kamailio, CAROL_HZ),
        "carol",
        &mut kamailio,
    );
    let alice_process = tincan("kam-transferee-alice", "alice", &kamailio, ALICE_HZ).with_stdin();
    let config = alice_process.path("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config written");
    text.push_str("\n[network]\naccept_transfer = \"always\"\n");
    std::fs::write(&config, text).expect("config written");
    let mut alice = listener(alice_process, "alice", &mut kamailio);

    control
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    control
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("alice answers");
    alice.wait_event("answered", WAIT).expect("alice answered");
    std::thread::sleep(Duration::from_secs(1));
    control
        .command("transfer", "sip:carol@example.test")
        .expect("baresip transfers");
    alice
        .wait_event("transfer_started", WAIT)
        .unwrap_or_else(|e| panic!("alice accepts the REFER: {e}\n{}", alice.log()));
    alice
        .wait_event_count("answered", 2, WAIT)
        .unwrap_or_else(|e| panic!("carol answers alice's new call: {e}\n{}", alice.log()));
    let incoming = carol
        .wait_event("incoming", WAIT)
        .expect("alice's INVITE reaches carol");
    assert!(
        incoming["from"]
            .as_str()
            .is_some_and(|f| f.contains("alice")),
        "{incoming}"
    );
    carol.wait_event("answered", WAIT).expect("carol answered");
    let trace = std::fs::read_to_string(alice.path("sip-trace.log")).expect("a SIP trace");
    assert!(trace.contains("SIP/2.0 202"), "the REFER was accepted");
    assert!(trace.contains("Event: refer"), "NOTIFYs to baresip");
    assert!(
        kamailio_routed(&mut kamailio, "REFER"),
        "REFER via kamailio"
    );
    // bob's leg ends once alice's NOTIFY 200 is answered.
    control
        .wait_event("CALL_CLOSED", WAIT)
        .expect("bob's call ends after the transfer");

    // The final leg, alice and carol (Tincan and Tincan), carries audio both ways.
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup").expect("stdin open");
    carol
        .wait_event("ended", WAIT)
        .expect("carol's call ends on alice's BYE");
    alice
        .wait_event_count("ended", 2, WAIT)
        .expect("alice's two calls ended");
    assert_tone(&alice.path("rec-2.wav"), CAROL_HZ, "alice");
    assert_tone(&carol.path("rec.wav"), ALICE_HZ, "carol");
    bob.stop();
    drop(kamailio);
}
