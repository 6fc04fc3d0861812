//! The screens of the full-screen phone at 80x24 and at 200x50 with a registered account
//! and a call up (to baresip bob through the lab kamailio), and the help overlay at 80x24:
//! each fits its terminal and shows the account, the call and its quality. The window is
//! resized from 80x24 to 200x50 under the running phone, so the redraw on a resize is
//! checked too.
//!
//! With `TINCAN_PHONE_SCREENS=DIR` the captures are written to `DIR/80x24.txt`,
//! `DIR/80x24-help.txt` and `DIR/200x50.txt` (`scripts/phone-screens.sh` does that; the
//! text blocks of docs/phone.md come from there).
//!
//! Run: `cargo test -p tincan-interop-tests --test phone-tmux-screens`

use std::time::Duration;

use tincan_interop_tests::tmux::{line_with, shows_registered};
use tincan_interop_tests::{Baresip, Kamailio, TincanProcess, Tmux, require_peers, tincan_binary};

const WAIT: Duration = Duration::from_secs(30);

/// Whether a line of `screen` shows a MOS figure (`MOS 4.17`, not `MOS -`).
fn shows_mos(screen: &str) -> bool {
    screen.lines().any(|l| {
        l.split("MOS ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Asserts that `screen` fills a `columns` x `rows` terminal and no more, and writes it to
/// `$TINCAN_PHONE_SCREENS/<name>.txt` when that is set.
fn keep(name: &str, screen: &str, columns: u16, rows: u16) {
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(lines.len(), usize::from(rows), "{name}:\n{screen}");
    let widest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    assert_eq!(widest, usize::from(columns), "{name}:\n{screen}");
    eprintln!("{name}:\n{screen}");
    if let Some(dir) = std::env::var_os("TINCAN_PHONE_SCREENS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("the screens' directory");
        std::fs::write(dir.join(format!("{name}.txt")), screen).expect("the screen written");
    }
}

#[test]
fn phone_screens_at_80x24_and_200x50_show_the_account_the_call_and_its_quality() {
    if !require_peers(&["tmux", "kamailio", "baresip"]) {
        return;
    }
    tincan_binary();
    let kamailio = Kamailio::start().expect("kamailio starts");
    let mut bob = Baresip::builder("bob", "bobpw")
        .outbound(kamailio.addr())
        .tone(880)
        .start()
        .expect("baresip bob starts");
    bob.wait_registered(WAIT).expect("bob registers");
    let mut bob_ctl = bob.control().expect("ctrl_tcp connects");
    let mut tmux = Tmux::start("phone-screens", 80, 24).expect("tmux starts");
    let phone = TincanProcess::new("phone-screens")
        .expect("scratch dir")
        .kamailio_account(
            "alice",
            "alicepw",
            kamailio.addr(),
            440.0,
            Duration::from_secs(60),
        )
        .spawn_in_tmux(&tmux, "alice", &[])
        .expect("the phone starts in tmux");
    tmux.wait_until(WAIT, "alice registered", shows_registered)
        .expect("the phone registers");

    tmux.send_keys(&["d"]).expect("d typed");
    tmux.type_text("bob").expect("a bare name typed");
    tmux.wait_for_text("dial: bob", WAIT).expect("the prompt");
    tmux.send_keys(&["Enter"]).expect("Enter typed");
    bob_ctl
        .wait_event("CALL_ESTABLISHED", WAIT)
        .expect("bob answers");
    let screen = tmux
        .wait_until(WAIT, "the call talking with a MOS", |s| {
            line_with(s, &["to", "bob", "talking"]).is_some() && shows_mos(s)
        })
        .expect("the call and its quality on the screen");
    assert!(shows_registered(&screen), "{screen}");
    keep("80x24", &screen, 80, 24);

    tmux.send_keys(&["?"]).expect("? typed");
    let help = tmux
        .wait_for_text("Keys (? closes)", WAIT)
        .expect("the help overlay");
    keep("80x24-help", &help, 80, 24);
    tmux.send_keys(&["?"]).expect("? typed");
    tmux.wait_until(WAIT, "the help closed", |s| !s.contains("Keys (? closes)"))
        .expect("? closes the help");

    tmux.resize(200, 50).expect("tmux resizes");
    let big = tmux
        .wait_until(WAIT, "the screen redrawn at 200x50", |s| {
            s.lines().count() == 50
                && s.lines().any(|l| l.chars().count() == 200)
                && line_with(s, &["to", "bob", "talking"]).is_some()
                && shows_mos(s)
        })
        .expect("the phone redraws on a resize");
    keep("200x50", &big, 200, 50);

    tmux.send_keys(&["q"]).expect("q typed");
    phone.wait_exit(WAIT).expect("q ends the phone");
    bob_ctl
        .wait_event("CALL_CLOSED", WAIT)
        .expect("q hangs the call up");
    drop(phone);
    drop(tmux);
    drop(bob);
    drop(kamailio);
}
