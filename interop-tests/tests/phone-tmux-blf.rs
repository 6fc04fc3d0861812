//! The busy lamps on the full-screen phone's account line (issue 17): `tincan phone` runs
//! in a private tmux server registered as alice at the lab kamailio, with `blf = ["bob"]`;
//! bob is a `tincan listen` registered there (the notifier), baresip carol calls bob, bob
//! answers, then hangs up. The account line shows bob's lamp: idle, ringing, busy, idle.
//! Every wait is on the screen or on a peer's events, with generous timeouts.
//!
//! Run: `cargo test -p tincan-interop-tests --test phone-tmux-blf`
//! (needs tmux, kamailio and baresip: `scripts/install-deps.sh --test`).

use std::time::Duration;

use tincan_interop_tests::{Baresip, Kamailio, TincanProcess, Tmux, require_peers, tincan_binary};

/// How long a screen or a peer's event is waited for.
const WAIT: Duration = Duration::from_secs(30);

/// Waits for a line of the screen with all of `words`; returns it.
fn see(tmux: &Tmux, words: &[&str]) -> String {
    tmux.wait_for_line(words, WAIT)
        .unwrap_or_else(|e| panic!("the screen never showed {words:?}: {e}"))
}

#[test]
fn the_account_line_shows_the_busy_lamp_of_a_watched_contact() {
    if !require_peers(&["tmux", "kamailio", "baresip"]) {
        return;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut carol = Baresip::builder("carol", "carolpw")
        .outbound(kamailio.addr())
        .start()
        .expect("baresip carol starts");
    carol.wait_registered(WAIT).expect("carol registers");
    let mut carol_ctl = carol.control().expect("ctrl_tcp connects");

    let mut bob = TincanProcess::new("phone-blf-bob")
        .expect("scratch dir")
        .lifetime(Duration::from_secs(120))
        .with_stdin()
        .kamailio_account(
            "bob",
            "bobpw",
            kamailio.addr(),
            440.0,
            Duration::from_secs(20),
        )
        .spawn_phone("bob", "listen", &[]);
    bob.wait_event("registered", WAIT).expect("bob registers");

    let tmux = Tmux::start("phone-blf", 100, 30).expect("tmux starts");
    let alice = TincanProcess::new("phone-blf-alice")
        .expect("scratch dir")
        .kamailio_account(
            "alice",
            "alicepw",
            kamailio.addr(),
            440.0,
            Duration::from_secs(1),
        );
    let config = std::fs::read_to_string(alice.path("config.toml")).expect("the config");
    alice
        .dir()
        .write("config.toml", format!("{config}blf = [\"bob\"]\n"))
        .expect("config written");
    let phone = alice
        .spawn_in_tmux(&tmux, "alice", &[])
        .expect("the phone starts in tmux");

    see(
        &tmux,
        &["alice", "registered at", "sip:bob@example.test [idle]"],
    );
    carol_ctl
        .dial("sip:bob@example.test")
        .expect("dial accepted");
    bob.wait_event("incoming", WAIT).expect("bob rings");
    see(&tmux, &["alice", "sip:bob@example.test [ringing]"]);
    bob.command("answer").expect("answer typed");
    see(&tmux, &["alice", "sip:bob@example.test [busy]"]);
    bob.command("hangup").expect("hangup typed");
    see(&tmux, &["alice", "sip:bob@example.test [idle]"]);

    tmux.send_keys(&["q"]).expect("q typed");
    phone.wait_exit(WAIT).expect("q ends the phone");
}
