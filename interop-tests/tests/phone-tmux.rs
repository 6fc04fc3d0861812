//! The full-screen phone in a real terminal: `tincan phone` runs in a private tmux server
//! (100x30), keys are typed with `send-keys` and the screen is read with `capture-pane`.
//! The phone registers as alice at the lab kamailio; baresip bob (and carol) are the peers
//! (auto-answer on, an 880 Hz tone). Every wait is on the screen or on baresip's events,
//! with generous timeouts: these tests hold on a loaded 2-core machine. After `q`, Ctrl-C
//! and SIGTERM the shell in the terminal must work again.
//!
//! Run: `cargo test -p tincan-interop-tests --test phone-tmux`
//! (needs tmux, kamailio and baresip: `scripts/install-deps.sh --test`).

use std::time::Duration;

use rustix::process::Signal;
use tincan_interop_tests::tmux::{line_with, shows_registered};
use tincan_interop_tests::{
    Baresip, BaresipControl, Kamailio, ScreenPhone, TincanProcess, Tmux, require_peers,
    tincan_binary,
};

/// The tone the phone sends (`--play tone.wav`).
const TINCAN_HZ: f64 = 440.0;
/// The tone baresip sends.
const BARESIP_HZ: u32 = 880;
/// How long a screen or a peer's event is waited for.
const WAIT: Duration = Duration::from_secs(30);
/// The terminal the phone runs in.
const COLUMNS: u16 = 100;
const ROWS: u16 = 30;

/// Whether the tests assert that `tincan history` lists the phone's calls (those ended by
/// `h`, `x`, `X`, and those hung up by `q`, Ctrl-C and SIGTERM); off, they only check that
/// `tincan history` runs on the phone's data directory.
const PHONE_WRITES_HISTORY: bool = true;

/// kamailio (when tmux, kamailio and baresip are installed).
fn lab() -> Option<Kamailio> {
    if !require_peers(&["tmux", "kamailio", "baresip"]) {
        return None;
    }
    tincan_binary();
    Some(Kamailio::start().expect("kamailio starts"))
}

/// baresip `user` registered at `kamailio` (auto-answer unless `auto_answer` is false, an
/// 880 Hz tone) and its control connection.
fn baresip(kamailio: &Kamailio, user: &str, auto_answer: bool) -> (Baresip, BaresipControl) {
    let password = kamailio.password(user).expect("a lab user").to_owned();
    let mut b = Baresip::builder(user, &password)
        .outbound(kamailio.addr())
        .tone(BARESIP_HZ)
        .auto_answer(auto_answer)
        .start()
        .expect("baresip starts");
    b.wait_registered(WAIT).expect("baresip registers");
    let ctl = b.control().expect("ctrl_tcp connects");
    (b, ctl)
}

/// A tmux window with the phone registered as alice at `kamailio`.
fn phone(name: &str, kamailio: &Kamailio) -> (Tmux, ScreenPhone) {
    let tmux = Tmux::start(name, COLUMNS, ROWS).expect("tmux starts");
    let phone = TincanProcess::new(name)
        .expect("scratch dir")
        .kamailio_account(
            "alice",
            "alicepw",
            kamailio.addr(),
            TINCAN_HZ,
            Duration::from_secs(60),
        )
        .spawn_in_tmux(&tmux, "alice", &[])
        .expect("the phone starts in tmux");
    // Whether the account registers before the screen opens or in the background behind
    // `registering...`: wait for a line saying `registered` (not `not registered`).
    let screen = tmux
        .wait_until(
            WAIT,
            "the account registered on the screen",
            shows_registered,
        )
        .expect("the phone shows alice registered");
    assert!(screen.contains("alice"), "{screen}");
    assert!(tmux.alternate_screen().expect("tmux answers"));
    (tmux, phone)
}

/// Waits for a line of the screen with all of `words`; returns it.
fn see(tmux: &Tmux, words: &[&str]) -> String {
    tmux.wait_for_line(words, WAIT)
        .unwrap_or_else(|e| panic!("the screen never showed {words:?}: {e}"))
}

/// Waits until no line of the screen has all of `words`.
fn gone(tmux: &Tmux, words: &[&str]) {
    tmux.wait_until(WAIT, &format!("no line with {words:?}"), |s| {
        line_with(s, words).is_none()
    })
    .unwrap_or_else(|e| panic!("{words:?} stayed on the screen: {e}"));
}

/// Waits for baresip's next `kind` event; returns its `param`.
fn baresip_event(ctl: &mut BaresipControl, kind: &str) -> String {
    ctl.wait_event(kind, WAIT)
        .unwrap_or_else(|e| panic!("baresip: no {kind}: {e}"))
        .field("param")
        .unwrap_or_default()
        .to_owned()
}

/// Dials baresip `user` at the lab domain with `d`, the URI and Enter, and waits until the
/// call is `talking` on the screen and established at baresip (auto-answer).
fn talk_to(tmux: &Tmux, user: &str, ctl: &mut BaresipControl) {
    let uri = format!("sip:{user}@example.test");
    tmux.send_keys(&["d"]).expect("d typed");
    tmux.type_text(&uri).expect("URI typed");
    tmux.send_keys(&["Enter"]).expect("Enter typed");
    see(tmux, &[&format!("to {uri}"), "talking"]);
    baresip_event(ctl, "CALL_ESTABLISHED");
}

/// Quits the phone with `q` and waits for it to exit.
fn quit(tmux: &Tmux, phone: &ScreenPhone) {
    tmux.send_keys(&["q"]).expect("q typed");
    phone.wait_exit(WAIT).expect("q ends the phone");
}

/// The phone has given the terminal back: the alternate screen is left, the shell's prompt
/// is back, it echoes what is typed and runs it, and the terminal is in cooked mode again
/// (echo and canonical input on).
fn shell_usable(tmux: &Tmux) {
    tmux.wait_until(WAIT, "the main screen", |_| {
        !tmux.alternate_screen().unwrap_or(true)
    })
    .expect("the phone leaves the alternate screen");
    tmux.type_line("echo ok-$((40+2))").expect("typed");
    let screen = tmux
        .wait_until(WAIT, "ok-42 printed by the shell", |s| {
            s.lines().any(|l| l.trim_end() == "ok-42")
        })
        .expect("the shell runs a command after the phone");
    assert!(
        screen.contains("echo ok-$((40+2))"),
        "what is typed is echoed:\n{screen}"
    );
    tmux.type_line(
        "stty -a | tr -s ' ;' '\\n\\n' | grep -c -x -e -echo -e -icanon | sed 's/^/raw-flags-/'",
    )
    .expect("typed");
    tmux.wait_until(WAIT, "stty's answer", |s| {
        s.lines().any(|l| l.trim_end() == "raw-flags-0")
    })
    .expect("echo and icanon are on again after the phone");
}

/// `tincan history` on the phone's data directory lists `count` calls with each `(peer,
/// count)` of `calls` (checked when [`PHONE_WRITES_HISTORY`] is on).
fn history_lists(phone: &ScreenPhone, calls: &[(&str, usize)]) {
    let history = phone.history(&[]).expect("tincan history runs");
    eprintln!("tincan history:\n{history}");
    if !PHONE_WRITES_HISTORY {
        return;
    }
    for (peer, count) in calls {
        let listed = history.lines().filter(|l| l.contains(peer)).count();
        assert_eq!(
            listed, *count,
            "calls with {peer} in the history:\n{history}"
        );
    }
}

#[test]
fn phone_calls_baresip_holds_resumes_sends_dtmf_and_hangs_up() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (tmux, phone) = phone("phone-calls", &kamailio);

    tmux.send_keys(&["d"]).expect("d typed");
    see(&tmux, &["dial:"]);
    tmux.type_text("sip:bob@example.test").expect("URI typed");
    see(&tmux, &["dial: sip:bob@example.test"]);
    tmux.send_keys(&["Enter"]).expect("Enter typed");
    let talking = see(&tmux, &["to sip:bob@example.test", "talking"]);
    eprintln!("{talking}");
    baresip_event(&mut bob_ctl, "CALL_ESTABLISHED");
    // the quality of the call: a MOS figure from the first report
    let screen = tmux
        .wait_until(WAIT, "a MOS figure", |s| {
            s.lines().any(|l| {
                l.split("MOS ")
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
        })
        .expect("the quality line shows a MOS");
    eprintln!("{screen}");

    tmux.send_keys(&["o"]).expect("o typed");
    see(&tmux, &["sip:bob@example.test", "on hold"]);
    tmux.send_keys(&["o"]).expect("o typed");
    see(&tmux, &["sip:bob@example.test", "talking"]);

    for digit in ["1", "2", "#"] {
        tmux.type_text(digit).expect("digit typed");
        see(&tmux, &[&format!("sent DTMF {digit}")]);
        assert_eq!(
            baresip_event(&mut bob_ctl, "CALL_DTMF_START"),
            digit,
            "baresip receives the digit"
        );
    }

    tmux.send_keys(&["h"]).expect("h typed");
    see(&tmux, &["call with sip:bob@example.test ended"]);
    gone(&tmux, &["to sip:bob@example.test"]);
    baresip_event(&mut bob_ctl, "CALL_CLOSED");

    quit(&tmux, &phone);
    shell_usable(&tmux);
    history_lists(&phone, &[("bob", 1)]);
    drop(phone);
    drop(tmux);
    drop(bob);
    drop(kamailio);
}

#[test]
fn phone_answers_with_a_and_declines_with_x_486_and_shift_x_603() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (tmux, phone) = phone("phone-answers", &kamailio);

    // answered with `a`, hung up with `h`
    bob_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    see(&tmux, &["from", "bob", "ringing"]);
    see(&tmux, &["incoming call from", "bob"]);
    tmux.send_keys(&["a"]).expect("a typed");
    see(&tmux, &["from", "bob", "talking"]);
    baresip_event(&mut bob_ctl, "CALL_ESTABLISHED");
    tmux.send_keys(&["h"]).expect("h typed");
    baresip_event(&mut bob_ctl, "CALL_CLOSED");
    gone(&tmux, &["from", "bob"]);

    // declined with `x`: 486 Busy Here
    bob_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    see(&tmux, &["from", "bob", "ringing"]);
    tmux.send_keys(&["x"]).expect("x typed");
    let closed = baresip_event(&mut bob_ctl, "CALL_CLOSED");
    assert!(closed.contains("486"), "baresip should see 486: {closed:?}");
    gone(&tmux, &["from", "bob"]);

    // declined with `X`: 603 Decline
    bob_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    see(&tmux, &["from", "bob", "ringing"]);
    tmux.send_keys(&["X"]).expect("X typed");
    let closed = baresip_event(&mut bob_ctl, "CALL_CLOSED");
    assert!(closed.contains("603"), "baresip should see 603: {closed:?}");
    gone(&tmux, &["from", "bob"]);

    quit(&tmux, &phone);
    history_lists(&phone, &[("bob", 3)]);
    drop(phone);
    drop(tmux);
    drop(bob);
    drop(kamailio);
}

#[test]
fn phone_call_waiting_answers_the_second_caller_holds_the_first_and_tab_switches() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (carol, mut carol_ctl) = baresip(&kamailio, "carol", true);
    let (tmux, phone) = phone("phone-waiting", &kamailio);

    bob_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    see(&tmux, &["from", "bob", "ringing"]);
    tmux.send_keys(&["a"]).expect("a typed");
    see(&tmux, &["from", "bob", "talking"]);
    baresip_event(&mut bob_ctl, "CALL_ESTABLISHED");

    // the second call rings beside the first, which stays selected and talking
    carol_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    see(&tmux, &["from", "carol", "ringing"]);
    see(&tmux, &["> from", "bob", "talking"]);
    tmux.send_keys(&["a"]).expect("a typed");
    see(&tmux, &["> from", "carol", "talking"]);
    see(&tmux, &["from", "bob", "on hold"]);
    baresip_event(&mut carol_ctl, "CALL_ESTABLISHED");

    // Tab selects the other call; `o` then resumes bob's
    tmux.send_keys(&["Tab"]).expect("Tab typed");
    see(&tmux, &["> from", "bob", "on hold"]);
    tmux.send_keys(&["Tab"]).expect("Tab typed");
    see(&tmux, &["> from", "carol", "talking"]);

    // quitting hangs both up
    quit(&tmux, &phone);
    baresip_event(&mut bob_ctl, "CALL_CLOSED");
    baresip_event(&mut carol_ctl, "CALL_CLOSED");
    history_lists(&phone, &[("bob", 1), ("carol", 1)]);
    drop(phone);
    drop(tmux);
    drop(carol);
    drop(bob);
    drop(kamailio);
}

#[test]
fn sigterm_hangs_up_and_restores_the_terminal() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (tmux, phone) = phone("phone-sigterm", &kamailio);
    tmux.send_keys(&["d"]).expect("d typed");
    tmux.type_text("sip:bob@example.test").expect("URI typed");
    see(&tmux, &["dial: sip:bob@example.test"]);
    tmux.send_keys(&["Enter"]).expect("Enter typed");
    see(&tmux, &["to sip:bob@example.test", "talking"]);
    baresip_event(&mut bob_ctl, "CALL_ESTABLISHED");

    phone.signal(Signal::TERM);
    phone.wait_exit(WAIT).expect("SIGTERM ends the phone");
    baresip_event(&mut bob_ctl, "CALL_CLOSED");

    shell_usable(&tmux);
    history_lists(&phone, &[("bob", 1)]);
    drop(phone);
    drop(tmux);
    drop(bob);
    drop(kamailio);
}

#[test]
fn ctrl_c_while_ringing_and_talking_hangs_up_both_and_restores_the_terminal() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (carol, mut carol_ctl) = baresip(&kamailio, "carol", true);
    let (tmux, phone) = phone("phone-ctrl-c", &kamailio);
    tmux.send_keys(&["d"]).expect("d typed");
    tmux.type_text("sip:bob@example.test").expect("URI typed");
    see(&tmux, &["dial: sip:bob@example.test"]);
    tmux.send_keys(&["Enter"]).expect("Enter typed");
    see(&tmux, &["to sip:bob@example.test", "talking"]);
    baresip_event(&mut bob_ctl, "CALL_ESTABLISHED");
    carol_ctl
        .dial("sip:alice@example.test")
        .expect("dial accepted");
    see(&tmux, &["from", "carol", "ringing"]);

    tmux.send_keys(&["C-c"]).expect("Ctrl-C typed");
    phone.wait_exit(WAIT).expect("Ctrl-C ends the phone");
    baresip_event(&mut bob_ctl, "CALL_CLOSED");
    let closed = baresip_event(&mut carol_ctl, "CALL_CLOSED");
    assert!(
        closed.contains("486"),
        "the ringing call is declined 486: {closed:?}"
    );
    shell_usable(&tmux);
    history_lists(&phone, &[("bob", 1), ("carol", 1)]);
    drop(phone);
    drop(tmux);
    drop(carol);
    drop(bob);
    drop(kamailio);
}

#[test]
fn t_transfers_the_call_to_carol_and_the_phone_shows_it_done() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (carol, mut carol_ctl) = baresip(&kamailio, "carol", true);
    let (tmux, phone) = phone("phone-transfer", &kamailio);

    talk_to(&tmux, "bob", &mut bob_ctl);

    tmux.send_keys(&["t"]).expect("t typed");
    see(&tmux, &["transfer to:"]);
    tmux.type_text("sip:carol@example.test").expect("URI typed");
    see(&tmux, &["transfer to: sip:carol@example.test"]);
    tmux.send_keys(&["Enter"]).expect("Enter typed");
    // bob follows the REFER and calls carol; the phone's call ends once bob's NOTIFY says so.
    baresip_event(&mut carol_ctl, "CALL_ESTABLISHED");
    see(&tmux, &["sip:bob@example.test", "transferred"]);
    gone(&tmux, &["to sip:bob@example.test"]);

    quit(&tmux, &phone);
    shell_usable(&tmux);
    drop(phone);
    drop(tmux);
    drop(carol);
    drop(bob);
    drop(kamailio);
}

#[test]
fn y_accepts_the_transfer_bob_asks_for_and_the_phone_calls_carol() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (carol, mut carol_ctl) = baresip(&kamailio, "carol", true);
    let (tmux, phone) = phone("phone-transferred", &kamailio);

    talk_to(&tmux, "bob", &mut bob_ctl);

    bob_ctl
        .command("transfer", "sip:carol@example.test")
        .expect("baresip transfers");
    see(&tmux, &["asks to transfer you to", "carol", "y accepts"]);
    tmux.send_keys(&["y"]).expect("y typed");
    baresip_event(&mut carol_ctl, "CALL_ESTABLISHED");
    see(&tmux, &["to sip:carol@example.test", "talking"]);
    gone(&tmux, &["to sip:bob@example.test"]);

    quit(&tmux, &phone);
    shell_usable(&tmux);
    drop(phone);
    drop(tmux);
    drop(carol);
    drop(bob);
    drop(kamailio);
}

#[test]
fn c_joins_two_calls_in_a_conference_and_splits_it() {
    let Some(kamailio) = lab() else {
        return;
    };
    let (bob, mut bob_ctl) = baresip(&kamailio, "bob", true);
    let (carol, mut carol_ctl) = baresip(&kamailio, "carol", true);
    let (tmux, phone) = phone("phone-conference", &kamailio);

    for (user, ctl) in [("bob", &mut bob_ctl), ("carol", &mut carol_ctl)] {
        talk_to(&tmux, user, ctl);
        if user == "bob" {
            // The second call is dialled with the first on hold, as a person would.
            tmux.send_keys(&["o"]).expect("o typed");
            see(&tmux, &["sip:bob@example.test", "on hold"]);
        }
    }
    tmux.send_keys(&["c"]).expect("c typed");
    see(&tmux, &["sip:bob@example.test", "talking", "conference"]);
    see(&tmux, &["sip:carol@example.test", "conference"]);
    tmux.send_keys(&["c"]).expect("c typed");
    see(&tmux, &["conference ended"]);
    gone(&tmux, &["sip:bob@example.test", "conference"]);

    quit(&tmux, &phone);
    shell_usable(&tmux);
    drop(phone);
    drop(tmux);
    drop(carol);
    drop(bob);
    drop(kamailio);
}
