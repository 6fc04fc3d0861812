//! Mute and the level meters on the full-screen phone in a real terminal (tmux, issue 14):
//! during a call the quality box shows the jitter buffer's delay and the `in`/`out` meters;
//! `m` mutes the selected call (its line and its input meter say `muted`), `m` again unmutes
//! it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

#[path = "util/screen.rs"]
mod screen;

use screen::{Killed, Tmux, phone_command, scratch, tincan};

#[test]
fn m_mutes_the_call_and_the_meters_show() {
    let dir = scratch("mute");
    std::fs::write(dir.join("config.toml"), "").unwrap();
    let mut listener = Killed(
        tincan(&dir)
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
    let mut lines = BufReader::new(listener.0.stdout.take().unwrap()).lines();
    let listening: Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .find(|v: &Value| v["event"] == "listening")
        .expect("a listening event");
    std::thread::spawn(move || lines.for_each(drop));
    let address = listening["address"].as_str().unwrap().to_owned();
    let uri = format!("sip:bob@{address}");
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --no-history --bind 127.0.0.1:0"),
    ) else {
        return;
    };
    tmux.wait_for(&["no accounts", "listening on udp:127.0.0.1:"]);
    tmux.keys(&["d"]);
    tmux.type_text(&uri);
    tmux.keys(&["Enter"]);
    // Silence both ways (--no-audio): empty bars at -inf.
    tmux.wait_for(&["talking", "in  ", "out ", "-inf dB", "buffer "]);
    tmux.keys(&["m"]);
    let screen = tmux.wait_for(&["rtp  muted", "-inf dB  muted"]);
    assert!(screen.contains("talking"), "{screen}");
    tmux.keys(&["m"]);
    tmux.wait_gone("muted");
    tmux.keys(&["h"]);
    tmux.wait_for(&[&format!("call with {uri} ended: local hangup")]);
    tmux.wait_gone("-inf dB");
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
    // The tmux server is stopped through its socket, which lives in `dir`.
    drop(tmux);
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
