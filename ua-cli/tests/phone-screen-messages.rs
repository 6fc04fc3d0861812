//! The full-screen phone's conversation pane in a real terminal (tmux, issue 17): `M` asks
//! whom to write to, a message written there reaches `tincan listen` and shows delivered;
//! messages from `tincan message` while another conversation is open are said on the status
//! line and counted (Tab opens them); received while the pane is closed they are counted on
//! the account lines and `M` opens their conversation, with the history's messages.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;

use serde_json::Value;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

#[path = "util/screen.rs"]
mod screen;

use screen::{Killed, PATIENCE, Tmux, phone_command, scratch, tincan};

/// `tincan message URI TEXT` from a process of its own; its delivery line.
fn message(dir: &Path, uri: &str, text: &str) -> String {
    let out = tincan(dir)
        .args([
            "message",
            uri,
            text,
            "--bind",
            "127.0.0.1:0",
            "--no-history",
        ])
        .output()
        .expect("tincan message runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_conversation_pane_sends_shows_delivery_and_receives() {
    let dir = scratch("messages");
    std::fs::write(dir.join("config.toml"), "").unwrap();
    let mut listener = Killed(
        tincan(&dir)
            .args([
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--no-audio",
                "--no-history",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tincan listen runs"),
    );
    let lines = BufReader::new(listener.0.stdout.take().unwrap()).lines();
    let (events_in, events) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = events_in.send(v);
            }
        }
    });
    let next = |event: &str| loop {
        let v = events
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no {event} event from tincan listen"));
        if v["event"] == event {
            break v;
        }
    };
    let address = next("listening")["address"].as_str().unwrap().to_owned();
    let bob = format!("sip:bob@{address}");

    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --bind 127.0.0.1:0"),
    ) else {
        return;
    };
    let screen = tmux.wait_for(&["no accounts", "listening on udp:127.0.0.1:"]);
    let port = screen
        .split("listening on udp:127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listening address on the screen")
        .to_owned();
    let alice = format!("sip:alice@127.0.0.1:{port}");

    // No one to write to yet: M asks whom, and opens an empty conversation.
    tmux.keys(&["M"]);
    tmux.wait_for(&["message to: _"]);
    tmux.type_text(&bob);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&[&format!("Messages with {bob}"), "no messages yet"]);

    // Written and sent: it shows delivered, and the listener got it.
    tmux.type_text("hello bob");
    tmux.wait_for(&["> hello bob_"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["> hello bob  [delivered (200)]"]);
    let got = next("message");
    assert_eq!(got["text"], "hello bob", "{got}");

    // A message from someone else while bob's conversation is open: said on the status line
    // and counted; the pane stays on bob until Tab.
    let line = message(&dir, &alice, "hi alice \u{1b}[2J");
    assert!(line.contains("delivered"), "{line}");
    let screen = tmux.wait_for(&["hi alice", "(Tab opens)", "1 new message from"]);
    assert!(screen.contains(&format!("Messages with {bob}")), "{screen}");
    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for(&["< hi alice \\u{1b}[2J"]);
    assert!(
        !screen.contains(&format!("Messages with {bob}")),
        "{screen}"
    );
    assert!(!screen.contains("new message"), "{screen}");

    // Closed: a message is counted on the account lines, and M opens its conversation with
    // the history's messages (the first one too).
    tmux.keys(&["Escape"]);
    tmux.wait_gone("Messages with");
    message(&dir, &alice, "again");
    tmux.wait_for(&["1 new message from", "again"]);
    tmux.keys(&["M"]);
    tmux.wait_for(&["< hi alice", "< again", "Messages with"]);
    tmux.wait_gone("new message from");
    tmux.keys(&["Escape"]);
    tmux.wait_gone("Messages with");

    // Bob's conversation, opened again from the history, keeps the delivery.
    tmux.keys(&["M"]);
    tmux.wait_for(&["Messages with"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
    let history =
        tincan::history::History::open(&dir.join("data").join("tincan").join("history.sqlite3"))
            .expect("the phone's history");
    let to_bob = history.messages(Some(&bob), 10).expect("bob's messages");
    assert_eq!(to_bob.len(), 1, "{to_bob:#?}");
    assert_eq!(to_bob[0].delivery, tincan::history::Delivery::Delivered);
    assert_eq!(to_bob[0].status, Some(200));
}
