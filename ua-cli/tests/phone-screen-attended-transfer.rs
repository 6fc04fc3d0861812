//! The full-screen phone's attended transfer (`T`) in a real terminal (tmux): the phone calls
//! Alice (a `tincan listen` that accepts transfers), holds her (`o`), calls Carol (the
//! consultation call); with Carol's call selected the key line offers `T attended`; `T`
//! refers Alice to Carol with the phone's dialog with Carol in `Replaces`: Alice's INVITE
//! takes over Carol's call and both of the phone's calls end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

#[path = "util/screen.rs"]
mod screen;

use screen::{Killed, PATIENCE, Tmux, phone_command, scratch, tincan};

/// A `tincan listen --auto-answer` with `config`: the process, its address and its `--json`
/// events (read on a thread).
fn listener(dir: &Path, name: &str, config: &str) -> (Killed, String, mpsc::Receiver<Value>) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let mut child = Killed(
        tincan(dir)
            .arg("--config")
            .arg(&path)
            .args([
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--auto-answer",
                "--no-audio",
                "--no-history",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tincan listen runs"),
    );
    let (tx, events) = mpsc::channel();
    let stdout = child.0.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let listening = wait_event(&events, name, "listening");
    let address = listening["address"].as_str().unwrap().to_owned();
    (child, address, events)
}

/// The next event named `event` of `who`.
fn wait_event(events: &mpsc::Receiver<Value>, who: &str, event: &str) -> Value {
    loop {
        let v = events
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{who}: no {event} event within {PATIENCE:?}"));
        if v["event"] == event {
            return v;
        }
    }
}

#[test]
fn t_puts_the_held_call_through_to_the_selected_one() {
    let dir = scratch("attended-transfer");
    std::fs::write(dir.join("config.toml"), "").unwrap();
    let (_alice, alice_addr, alice) =
        listener(&dir, "alice", "[network]\naccept_transfer = \"always\"\n");
    let (_carol, carol_addr, carol) = listener(&dir, "carol", "");
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --bind 127.0.0.1:0 --no-history"),
    ) else {
        return;
    };
    tmux.wait_for(&["listening on udp:127.0.0.1:"]);

    tmux.keys(&["d"]);
    tmux.type_text(&format!("sip:alice@{alice_addr}"));
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["talking"]);
    wait_event(&alice, "alice", "answered");
    // Alice on hold (`o`), then the consultation call to Carol.
    tmux.keys(&["o"]);
    tmux.wait_for(&["on hold"]);
    tmux.keys(&["d"]);
    tmux.type_text(&format!("sip:carol@{carol_addr}"));
    tmux.keys(&["Enter"]);
    wait_event(&carol, "carol", "answered");
    let screen = tmux.wait_for(&["on hold", "talking", "T attended"]);
    let key_line = screen
        .lines()
        .find(|l| l.contains("T attended"))
        .expect("the key line");
    assert!(key_line.trim_end().len() <= 80, "{key_line}");

    tmux.keys(&["T"]);
    wait_event(&alice, "alice", "transfer_started");
    wait_event(&carol, "carol", "replaced");
    wait_event(&alice, "alice", "answered");
    // Both calls end: Alice's after her NOTIFY 200, Carol's by Carol's BYE.
    tmux.wait_gone("talking");
    tmux.wait_gone("on hold");
    std::thread::sleep(Duration::from_millis(200));
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
}
