//! The full-screen phone in a real terminal (tmux, issue 14): it opens at once while its
//! accounts register in the background and shows why one is not registered and the health of
//! its registrars; it places a call, writes it to the history, lists it in the recent pane
//! (`r`, Enter calls it again), completes it in the dial prompt (Tab), shows the SIP messages
//! in the log pane (`l`) while `--sip-trace FILE` is written too; a call declined with `x`
//! says `declined (486)`. A corrupt history database is said on the status line and the phone
//! goes on. `--sip-trace -` is refused (it would write over the screen).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

#[path = "util/screen.rs"]
mod screen;

use screen::{Killed, Tmux, phone_command, scratch, tincan};

/// A config file in `dir` with `body`, readable by us alone.
fn config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// A UDP port on loopback that nothing listens on (a registrar that answers with ICMP).
fn dead_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

#[test]
fn the_screen_opens_at_once_and_shows_the_background_registration_and_the_registrars() {
    let dir = scratch("register");
    let (a, b) = (dead_port(), dead_port());
    config(
        &dir,
        &format!(
            "[[account]]\nname = \"work\"\naor = \"sip:alice@127.0.0.1\"\npassword = \"x\"\n\
             registrars = [\"sip:127.0.0.1:{a}\", \"sip:127.0.0.1:{b}\"]\n"
        ),
    );
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --bind 127.0.0.1:0 --no-history"),
    ) else {
        return;
    };
    // Both registrars refuse (ICMP): the account is not registered, says when it retries,
    // and that both of its registrars are down; the screen shows where it listens.
    let screen = tmux.wait_for(&[
        "work  not registered: unavailable, retrying in",
        "(2 others: 0 up, 2 down)",
        "listening on udp:127.0.0.1:",
    ]);
    assert!(!screen.contains("registered at"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
}

#[test]
fn a_dialled_call_goes_to_the_history_the_recent_pane_completion_and_the_sip_log() {
    let dir = scratch("history");
    config(&dir, "");
    let mut listener = Killed(
        tincan(&dir)
            .args([
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--auto-answer",
                "--no-audio",
                "--no-history",
                "--duration",
                "1",
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
    // The listener's output is read to its end: it must not find its standard output closed.
    std::thread::spawn(move || lines.for_each(drop));
    let address = listening["address"].as_str().unwrap().to_owned();
    let uri = format!("sip:bob@{address}");
    let trace = dir.join("trace.txt");
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(
            &dir,
            &format!(
                "--sip-trace {} phone --no-audio --bind 127.0.0.1:0",
                trace.display()
            ),
        ),
    ) else {
        return;
    };
    tmux.wait_for(&["no accounts", "listening on udp:127.0.0.1:"]);

    // Dial: the call is answered, the listener hangs up after a second.
    tmux.keys(&["d"]);
    tmux.type_text(&uri);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["talking"]);
    tmux.wait_for(&[&format!("call with {uri} ended: remote hangup, after 0:0")]);

    // The SIP log pane follows the newest message (the 200 to the BYE); Page Up selects the
    // first, the INVITE, and shows it whole.
    tmux.keys(&["l"]);
    tmux.wait_for(&["SIP log", "> ", "sent 200 OK (BYE)"]);
    tmux.keys(&["PageUp"]);
    tmux.wait_for(&[
        &format!("sent INVITE {uri} -> udp:{address}"),
        &format!("INVITE {uri} SIP/2.0"),
    ]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone("SIP log");

    // The recent pane lists the call; Enter calls it again.
    tmux.keys(&["r"]);
    tmux.wait_for(&[&format!("> out {uri}"), "remote hangup"]);
    tmux.keys(&["Enter"]);
    tmux.wait_gone("Recent calls");
    tmux.wait_for(&["talking"]);
    tmux.wait_gone("talking");

    // Tab completes the peer in the dial prompt.
    tmux.keys(&["d"]);
    tmux.type_text("sip:b");
    tmux.keys(&["Tab"]);
    tmux.wait_for(&[&format!("dial: {uri}_"), "1 match"]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone("dial:");

    // A call to the phone declined with x: the screen says so, the caller gets 486.
    let screen = tmux.screen();
    let port = screen
        .split("listening on udp:127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listening address on the screen")
        .to_owned();
    let mut caller = Killed(
        tincan(&dir)
            .args([
                "call",
                &format!("sip:alice@127.0.0.1:{port}"),
                "--no-audio",
                "--no-history",
                "--bind",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tincan call runs"),
    );
    tmux.wait_for(&["ringing", "incoming call from"]);
    tmux.keys(&["x"]);
    tmux.wait_for(&["ended: declined (486)"]);
    let status = caller.0.wait().expect("the caller ends");
    assert_eq!(status.code(), Some(1));

    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);

    // The history holds the two calls placed and the one declined.
    let out = tincan(&dir)
        .args(["history", "--json"])
        .output()
        .expect("tincan history runs");
    let calls: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let out_calls = calls
        .iter()
        .filter(|c| c["direction"] == "out" && c["peer_uri"] == uri.as_str())
        .count();
    assert_eq!(out_calls, 2, "{calls:#?}");
    assert!(
        calls
            .iter()
            .any(|c| c["direction"] == "in" && c["answered"] == false),
        "{calls:#?}"
    );
    // --sip-trace FILE was written as well.
    let written = std::fs::read_to_string(&trace).expect("the trace file");
    assert!(written.contains(&format!("INVITE {uri} SIP/2.0")));
}

#[test]
fn a_corrupt_history_is_said_on_the_status_line_and_the_phone_goes_on() {
    let dir = scratch("corrupt");
    config(&dir, "");
    let db = dir.join("data").join("tincan");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("history.sqlite3"), vec![0x5a_u8; 8192]).unwrap();
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --bind 127.0.0.1:0"),
    ) else {
        return;
    };
    tmux.wait_for(&["no call history:", "listening on udp:127.0.0.1:"]);
    // The phone works: the recent pane says why it is empty, the dial prompt opens.
    tmux.keys(&["r"]);
    tmux.wait_for(&["no history: the history could not be opened"]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone("Recent calls");
    tmux.keys(&["d"]);
    tmux.wait_for(&["dial: _"]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone("dial:");
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
}

#[test]
fn sip_trace_to_standard_error_is_refused_by_the_phone() {
    let dir = scratch("trace-stderr");
    config(&dir, "");
    let out = tincan(&dir)
        .args(["--sip-trace", "-", "phone"])
        .stdin(Stdio::null())
        .output()
        .expect("tincan runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("would write over the screen"), "{err}");
}

#[test]
fn an_account_with_auto_answer_answers_its_calls_by_itself() {
    let dir = scratch("auto-answer");
    config(
        &dir,
        &format!(
            "[[account]]\nname = \"work\"\naor = \"sip:alice@127.0.0.1\"\npassword = \"x\"\n\
             registrars = [\"sip:127.0.0.1:{}\"]\nauto_answer = true\n",
            dead_port()
        ),
    );
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --bind 127.0.0.1:0 --no-history"),
    ) else {
        return;
    };
    let screen = tmux.wait_for(&["listening on udp:127.0.0.1:"]);
    let port = screen
        .split("listening on udp:127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listening address on the screen")
        .to_owned();
    let mut caller = Killed(
        tincan(&dir)
            .args([
                "call",
                &format!("sip:alice@127.0.0.1:{port}"),
                "--no-audio",
                "--no-history",
                "--bind",
                "127.0.0.1:0",
                "--duration",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tincan call runs"),
    );
    // Nobody presses a key: the call is answered, then the caller hangs up.
    tmux.wait_for(&["from sip:", "talking"]);
    let status = caller.0.wait().expect("the caller ends");
    assert_eq!(status.code(), Some(0), "the caller's call was answered");
    tmux.wait_gone("talking");
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
}
