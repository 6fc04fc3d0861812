//! The `tincan` library's examples (`ua-cli/examples`) run against a real kamailio, each
//! with arguments that bound its run, and must exit 0:
//!
//! - `register_and_call` registers alice and calls bob (a phone of the test, registered with
//!   the same kamailio), which hears its 440 Hz tone; it hangs up after 2 s and unregisters;
//! - `answer_and_play` registers bob and answers the call alice (a phone of the test) places,
//!   playing the WAV the test wrote (660 Hz), which alice hears; it exits after that one call
//!   and unregisters;
//! - `two_accounts` registers alice with one kamailio and carol with another (each only with
//!   its own), calls bob through carol's account (so through the second kamailio), takes a
//!   call for alice and one for carol, naming the account of each, and exits after the three.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{
    AccountConfig, AccountEvent, CallEnd, CallEvent, CallId, EndReason, PhoneEvent,
};
use tincan_interop_tests::{Kamailio, Peer, WorkDir, audio, require_peers, tincan_example};
use tincan_media::device::{NullSink, NullSource, WavSink};

const WAIT: Duration = Duration::from_secs(30);

/// Starts the example `name` with `args` in its own scratch directory (log `<name>.log`).
fn spawn_example(name: &str, dir: WorkDir, args: &[String]) -> Peer {
    Peer::builder(name, tincan_example(name))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .lifetime(Duration::from_secs(90))
        .stop_grace(Duration::from_secs(2))
        .spawn_in(dir)
        .expect("the example starts")
}

/// Waits (without stalling the phones of the test) for the example to exit by itself with 0.
fn exits_zero(example: &mut Peer, within: Duration) {
    let status = tokio::task::block_in_place(|| example.wait(within)).expect("the example exits");
    assert_eq!(status.code(), Some(0), "{}", example.log());
}

/// A phone of the test registered with `kamailio` as `user`.
async fn registered_phone(kamailio: &Kamailio, user: &str) -> Phone {
    let mut account = AccountConfig::new(
        user,
        format!("sip:{user}@{}", kamailio.domain()),
        user,
        kamailio.password(user).expect("a lab user"),
    );
    account.registrars = vec![format!("sip:{}", kamailio.addr())];
    account.expires = 60;
    let mut phone = Phone::builder()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .account(account)
        .start()
        .await
        .expect("the phone starts");
    wait_for(&mut phone, &format!("{user} registered"), |e| {
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
    phone
}

/// Waits for an event of `phone` that `want` accepts.
async fn wait_for<T>(
    phone: &mut Phone,
    what: &str,
    mut want: impl FnMut(&PhoneEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} in {WAIT:?}"))
            .expect("the phone runs");
        eprintln!("{what}? {event:?}");
        if let Some(v) = want(&event) {
            return v;
        }
    }
}

async fn answered(phone: &mut Phone, what: &str) {
    wait_for(phone, what, |e| {
        matches!(
            e,
            PhoneEvent::Call {
                event: CallEvent::Answered { .. },
                ..
            }
        )
        .then_some(())
    })
    .await;
}

async fn ended(phone: &mut Phone, what: &str) -> CallEnd {
    wait_for(phone, what, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Ended(end),
            ..
        } => Some(end.clone()),
        _ => None,
    })
    .await
}

/// Takes the next incoming call (recording it to `record`, if given); returns it and its
/// From.
async fn take_call(phone: &mut Phone, record: Option<&Path>) -> (CallId, String) {
    let (call, from) = wait_for(phone, "an incoming call", |e| match e {
        PhoneEvent::Incoming(i) => Some((i.call, i.from.clone())),
        _ => None,
    })
    .await;
    let sink: Box<dyn tincan_media::device::AudioSink> = match record {
        Some(path) => Box::new(WavSink::create(path).expect("recording created")),
        None => Box::new(NullSink::new()),
    };
    phone
        .accept(call, Box::new(NullSource::new()), sink)
        .await
        .expect("accept");
    answered(phone, "the answer").await;
    (call, from)
}

/// The recording at `path` holds a tone of about `hz`, once it is complete.
async fn assert_tone(path: &Path, hz: f64) {
    // The media task closes the file just after the call's end.
    let mut report = None;
    for _ in 0..40 {
        if let Ok(r) = audio::analyse_file(path)
            && r.duration >= Duration::from_millis(1_000)
        {
            report = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = report.unwrap_or_else(|| panic!("{} not recorded", path.display()));
    assert!(
        (report.frequency - hz).abs() < 20.0 && report.rms > 500.0,
        "heard {report:?}, not {hz} Hz"
    );
}

fn registrar(kamailio: &Kamailio) -> String {
    format!("sip:{}", kamailio.addr())
}

/// `dir/file` as a string argument.
fn arg(dir: &WorkDir, file: &str) -> String {
    dir.join(file).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_call_registers_alice_and_calls_bob() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut bob = registered_phone(&kamailio, "bob").await;
    let dir = WorkDir::new("example-register-and-call").expect("scratch dir");
    let recording = dir.join("bob-heard.wav");
    let args = ["sip:alice@example.test", "alice", "alicepw", "bob", "2"]
        .map(String::from)
        .into_iter()
        .chain([registrar(&kamailio)])
        .collect::<Vec<_>>();
    let mut example = spawn_example("register_and_call", dir, &args);

    let (_, from) = take_call(&mut bob, Some(&recording)).await;
    assert!(from.contains("sip:alice@example.test"), "{from}");
    let end = ended(&mut bob, "the example's hang-up").await;
    assert_eq!(end.reason, EndReason::RemoteHangup, "{end:?}");
    exits_zero(&mut example, WAIT);
    let log = example.log();
    assert!(log.contains("registered at"), "{log}");
    assert!(log.contains("ended: local_hangup"), "{log}");
    assert_tone(&recording, 440.0).await;
    // The example unregistered on its way out.
    let contacts = kamailio.contacts("alice").expect("kamcmd answers");
    assert!(contacts.is_empty(), "alice still has {contacts:?}");
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_and_play_answers_a_call_and_plays_the_wav() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    let mut kamailio = Kamailio::start().expect("kamailio starts");
    let dir = WorkDir::new("example-answer-and-play").expect("scratch dir");
    let wav = arg(&dir, "greeting.wav");
    audio::write_tone_wav(&wav, 660.0, Duration::from_secs(10), 48_000, 12_000)
        .expect("greeting written");
    let args = ["sip:bob@example.test", "bob", "bobpw", &wav, "1"]
        .map(String::from)
        .into_iter()
        .chain([registrar(&kamailio)])
        .collect::<Vec<_>>();
    let mut example = spawn_example("answer_and_play", dir, &args);
    tokio::task::block_in_place(|| kamailio.wait_registered("bob", WAIT))
        .expect("the example registers bob");

    let mut alice = registered_phone(&kamailio, "alice").await;
    let heard = WorkDir::new("example-answer-and-play-alice").expect("scratch dir");
    let recording: PathBuf = heard.join("alice-heard.wav");
    let options = CallOptions {
        sink: Box::new(WavSink::create(&recording).expect("recording created")),
        ..CallOptions::default()
    };
    let call = alice.call("bob", options).await.expect("the call starts");
    answered(&mut alice, "the example's answer").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    alice.hangup(call).await.expect("hang up");
    let end = ended(&mut alice, "the call's end").await;
    assert_eq!(end.reason, EndReason::LocalHangup, "{end:?}");
    exits_zero(&mut example, WAIT);
    let log = example.log();
    assert!(log.contains("call from"), "{log}");
    assert!(log.contains("ended, remote_hangup"), "{log}");
    assert_tone(&recording, 660.0).await;
    let contacts = kamailio.contacts("bob").expect("kamcmd answers");
    assert!(contacts.is_empty(), "bob still has {contacts:?}");
    alice.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_register_with_their_own_registrars_and_take_and_place_calls() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    let start = || {
        Kamailio::builder()
            .secondary(false)
            .ipv6(false)
            .start()
            .expect("kamailio starts")
    };
    let (mut home, mut work) = (start(), start());
    // bob is on both: the example calls him through its second account (the work
    // kamailio), and he calls each of its accounts through the registrar it uses.
    let mut bob_home = registered_phone(&home, "bob").await;
    let mut bob_work = registered_phone(&work, "bob").await;
    let args = [
        "sip:alice@example.test".to_owned(),
        "alicepw".to_owned(),
        registrar(&home),
        "sip:carol@example.test".to_owned(),
        "carolpw".to_owned(),
        registrar(&work),
        "3".to_owned(),
        "2".to_owned(),
        "bob".to_owned(),
    ];
    let dir = WorkDir::new("example-two-accounts").expect("scratch dir");
    let mut example = spawn_example("two_accounts", dir, &args);
    tokio::task::block_in_place(|| {
        home.wait_registered("alice", WAIT)
            .expect("alice registers at home");
        work.wait_registered("carol", WAIT)
            .expect("carol registers at work");
    });
    // Each account registered only with its own registrar.
    assert_eq!(
        home.contacts("carol").expect("kamcmd answers"),
        Vec::<String>::new()
    );
    assert_eq!(
        work.contacts("alice").expect("kamcmd answers"),
        Vec::<String>::new()
    );

    // The example's call through its second account.
    let (call, from) = take_call(&mut bob_work, None).await;
    assert!(from.contains("sip:carol@example.test"), "{from}");
    hang_up(&mut bob_work, call).await;
    // A call for each account, through the registrar it registered with.
    for (bob, user) in [(&mut bob_home, "alice"), (&mut bob_work, "carol")] {
        let call = bob
            .call(user, CallOptions::default())
            .await
            .expect("the call starts");
        answered(bob, &format!("{user}'s answer")).await;
        hang_up(bob, call).await;
    }
    exits_zero(&mut example, WAIT);
    let log = example.log();
    for line in [
        "sip:alice@example.test registered at",
        "sip:carol@example.test registered at",
        "calling bob as sip:carol@example.test",
        "for sip:alice@example.test",
        "for sip:carol@example.test",
    ] {
        assert!(log.contains(line), "no {line:?} in\n{log}");
    }
    assert_eq!(log.matches(": ended, ").count(), 3, "{log}");
    for (kamailio, user) in [(&home, "alice"), (&work, "carol")] {
        let contacts = kamailio.contacts(user).expect("kamcmd answers");
        assert!(contacts.is_empty(), "{user} still has {contacts:?}");
    }
    bob_home.shutdown().await;
    bob_work.shutdown().await;
}

/// Hangs up `call` and waits for its end.
async fn hang_up(phone: &mut Phone, call: CallId) {
    phone.hangup(call).await.expect("hang up");
    let end = ended(phone, "the call's end").await;
    assert_eq!(end.reason, EndReason::LocalHangup, "{end:?}");
}
