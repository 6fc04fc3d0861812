//! `tincan listen` typed at by a person (issue 14, "found tried as a new user would"): a line
//! typed while no call rings answers nothing; `decline` refuses (486, `decline 603`); a
//! caller's CANCEL is printed as it happens, with nobody typing; after `answer` the in-call
//! commands of `tincan call` work; with two calls up, `--json` names the call of each event.
//! Also `call --help` and `listen --help` list the commands, and an account's `auto_answer`
//! answers the calls to that account.

use std::process::Stdio;

use serde_json::Value;

#[path = "util/cli.rs"]
mod cli;

use cli::{Proc, is, tincan};

/// A caller to `address` that hangs up when told (`hangup` on its stdin).
fn caller(dir: &std::path::Path, address: &str) -> Proc {
    Proc::spawn(
        "caller",
        dir,
        &[
            "call",
            &format!("sip:bob@{address}"),
            "--no-audio",
            "--json",
        ],
    )
}

#[test]
fn listen_answers_only_when_told_and_follows_each_call() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record = dir.join("rec.wav");
    let mut listener = Proc::spawn(
        "listener",
        &dir,
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--json",
            "--record",
            record.to_str().unwrap(),
        ],
    );
    let listening = listener.wait("listening", |v| is(v, "listening"));
    let address = listening["address"].as_str().unwrap().to_owned();

    // 1. A line typed while nothing rings is not kept for the next call; `decline` refuses.
    listener.type_line("clear");
    listener.type_line("");
    // Both lines are read (and dropped) before the call comes: else, on a loaded machine, the
    // empty line could be read after the INVITE and answer it, as a person's Enter would.
    listener.wait_line("the empty line dropped", |l| {
        l.contains("no call to answer")
    });
    let mut a = caller(&dir, &address);
    listener.wait("incoming", |v| is(v, "incoming"));
    a.wait("ringing", |v| is(v, "progress") && v["status"] == 180);
    listener.type_line("decline");
    let ended = a.wait("ended", |v| is(v, "ended"));
    assert_eq!(ended["status"], 486, "{ended}");
    assert!(
        !a.seen.iter().any(|v| is(v, "answered")),
        "answered by a line typed before the call: {:?}",
        &a.seen[..a.seen.len().min(4)]
    );
    a.stop();

    // 2. The caller's CANCEL is shown while nobody types.
    let mut b = caller(&dir, &address);
    listener.wait("incoming", |v| is(v, "incoming"));
    b.wait("ringing", |v| is(v, "progress") && v["status"] == 180);
    b.type_line("hangup");
    let ended = listener.wait("the cancelled call's end", |v| is(v, "ended"));
    assert_eq!(ended["answered"], false, "{ended}");
    b.wait("ended", |v| is(v, "ended"));
    b.stop();

    // 3. `decline 603`.
    let mut c = caller(&dir, &address);
    listener.wait("incoming", |v| is(v, "incoming"));
    c.wait("ringing", |v| is(v, "progress") && v["status"] == 180);
    listener.type_line("decline 603");
    let ended = c.wait("ended", |v| is(v, "ended"));
    assert_eq!(ended["status"], 603, "{ended}");
    c.stop();

    // 4. `answer`, then the in-call commands; a second call while the first is up.
    let mut d = caller(&dir, &address);
    listener.wait("incoming", |v| is(v, "incoming"));
    listener.type_line("answer");
    let first = listener.wait("answered", |v| is(v, "answered"));
    d.wait("answered", |v| is(v, "answered"));
    // Media (and its quality events) starts with the ACK: the call is up for a re-INVITE.
    listener.wait("quality", |v| is(v, "quality"));
    listener.type_line("hold");
    listener.wait("hold", |v| is(v, "hold") && v["by_peer"] == false);
    d.wait("held", |v| is(v, "hold") && v["by_peer"] == true);
    listener.type_line("resume");
    listener.wait("resumed", |v| is(v, "resumed") && v["by_peer"] == false);
    listener.type_line("mute");
    listener.wait("muted", |v| is(v, "muted") && v["muted"] == true);
    listener.type_line("u");
    listener.wait("unmuted", |v| is(v, "muted") && v["muted"] == false);
    // The quality lines carry the jitter buffer's delay.
    let q = listener.wait("quality", |v| is(v, "quality"));
    assert!(q["jitter_buffer_ms"].is_number(), "{q}");

    let mut e = caller(&dir, &address);
    let incoming = listener.wait("second incoming", |v| is(v, "incoming"));
    assert_ne!(incoming["call"], Value::Null, "{incoming}");
    assert_ne!(incoming["call"], first["call"], "{incoming} {first}");
    listener.type_line("a");
    let second = listener.wait("second answered", |v| is(v, "answered"));
    assert_eq!(second["call"], incoming["call"], "{second} {incoming}");
    e.wait("answered", |v| is(v, "answered"));
    // `hangup` ends the call answered last, then the other one.
    listener.type_line("hangup");
    let end = listener.wait("an end", |v| is(v, "ended"));
    assert_eq!(end["call"], second["call"], "{end}");
    assert_eq!(end["reason"], "local_hangup", "{end}");
    e.wait("ended", |v| is(v, "ended"));
    listener.type_line("hangup");
    let end = listener.wait("an end", |v| is(v, "ended"));
    assert_eq!(end["call"], first["call"], "{end}");
    d.wait("ended", |v| is(v, "ended"));
    d.stop();
    e.stop();
    listener.stop();
    // A recording for each answered call, none for the calls declined or cancelled.
    let mut recordings: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("rec"))
        .collect();
    recordings.sort();
    assert_eq!(recordings, ["rec-2.wav", "rec.wav"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Human lines: a codec change and sent DTMF are printed; with two calls, each line says
/// which call it is about; the caller is its name and URI, without the From tag.
#[test]
fn human_lines_say_what_was_done_and_for_which_call() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-human-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut listener = Proc::spawn(
        "listener",
        &dir,
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--auto-answer",
        ],
    );
    let listening = listener.wait_line("listening", |l| l.starts_with("listening on "));
    // listening on udp:127.0.0.1:PORT, tcp:...
    let address = listening
        .trim_start_matches("listening on udp:")
        .split(',')
        .next()
        .unwrap()
        .to_owned();

    let mut first = caller(&dir, &address);
    let incoming = listener.wait_line("incoming", |l| l.contains("incoming call from"));
    assert!(!incoming.contains("tag="), "{incoming}");
    assert!(incoming.contains("sip:"), "{incoming}");
    listener.wait_line("answered", |l| l.starts_with("answered in"));
    first.wait("answered", |v| is(v, "answered"));
    // Media (and its quality lines) starts with the ACK: the call is up for a re-INVITE.
    listener.wait_line("quality", |l| l.starts_with("rtp sent"));
    listener.type_line("codec pcmu");
    listener.wait_line("the codec change", |l| l.starts_with("codec now pcmu"));
    listener.type_line("dtmf 12");
    listener.wait_line("the dtmf sent", |l| l == "sent dtmf 12");
    listener.type_line("mute");
    listener.wait_line("muted", |l| l == "muted");
    listener.type_line("unmute");
    listener.wait_line("unmuted", |l| l == "unmuted");
    let q = listener.wait_line("quality", |l| l.starts_with("rtp sent"));
    assert!(q.contains(" buffer "), "{q}");

    let mut second = caller(&dir, &address);
    let incoming = listener.wait_line("second incoming", |l| l.contains("incoming call from"));
    assert!(incoming.starts_with("[2] "), "{incoming}");
    listener.wait_line("second answered", |l| l.starts_with("[2] answered in"));
    second.wait("answered", |v| is(v, "answered"));
    listener.type_line("hangup");
    listener.wait_line("second ended", |l| l.starts_with("[2] call ended"));
    listener.type_line("hangup");
    listener.wait_line("first ended", |l| l.starts_with("call ended"));
    first.wait("ended", |v| is(v, "ended"));
    second.wait("ended", |v| is(v, "ended"));
    first.stop();
    second.stop();
    listener.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `listen --record FILE` keeps every call: FILE, then FILE-2 (before the extension).
#[test]
fn listen_records_each_call_to_its_own_file() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record = dir.join("rec.wav");
    let mut listener = Proc::spawn(
        "listener",
        &dir,
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--auto-answer",
            "--max-calls",
            "2",
            "--json",
            "--record",
            record.to_str().unwrap(),
        ],
    );
    let listening = listener.wait("listening", |v| is(v, "listening"));
    let address = listening["address"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let out = tincan(&dir)
            .args([
                "call",
                &format!("sip:bob@{address}"),
                "--duration",
                "0.5",
                "--no-audio",
                "--json",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("tincan call runs");
        assert!(out.status.success(), "{out:?}");
        listener.wait("ended", |v| is(v, "ended"));
    }
    let status = listener.child.wait().expect("listen exits after two calls");
    assert!(status.success(), "{status}");
    for file in ["rec.wav", "rec-2.wav"] {
        let len = std::fs::metadata(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .len();
        assert!(len > 44, "{file}: {len} bytes");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tincan call --dtmf KEYS` says that it sent them (human mode).
#[test]
fn call_says_it_sent_its_dtmf() {
    let dir = std::env::temp_dir().join(format!("tincan-call-dtmf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut listener = Proc::spawn(
        "listener",
        &dir,
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--auto-answer",
            "--max-calls",
            "1",
            "--json",
        ],
    );
    let listening = listener.wait("listening", |v| is(v, "listening"));
    let address = listening["address"].as_str().unwrap().to_owned();
    let out = tincan(&dir)
        .args([
            "call",
            &format!("sip:bob@{address}"),
            "--dtmf",
            "12",
            "--duration",
            "1",
            "--no-audio",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("tincan call runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.lines().any(|l| l == "sent dtmf 12"), "{text}");
    listener.wait("ended", |v| is(v, "ended"));
    listener.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_the_commands_typed_during_a_call() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-help-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (command, words) in [
        (
            "call",
            &[
                "hold", "resume", "mute", "unmute", "dtmf", "codec", "hangup",
            ][..],
        ),
        (
            "listen",
            &[
                "answer", "decline", "hold", "resume", "mute", "dtmf", "codec", "hangup",
            ][..],
        ),
    ] {
        let out = tincan(&dir)
            .args([command, "--help"])
            .output()
            .expect("tincan runs");
        let text = String::from_utf8_lossy(&out.stdout);
        for w in words {
            assert!(
                text.lines().any(|l| l.trim_start().starts_with(w)),
                "{command} --help lists no {w}:\n{text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An account's `auto_answer = true` makes `listen` answer the calls to it by itself (as
/// `--auto-answer` does for every call); the calls to another account still wait for a
/// person.
#[test]
fn listen_answers_the_calls_of_an_auto_answer_account() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-auto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("listen.toml");
    std::fs::write(
        &config,
        "[[account]]\nname = \"bob\"\naor = \"sip:bob@example.com\"\npassword = \"x\"\n\
         auto_answer = true\n\n\
         [[account]]\nname = \"carol\"\naor = \"sip:carol@example.com\"\npassword = \"x\"\n",
    )
    .unwrap();
    let mut listener = Proc::spawn(
        "listener",
        &dir,
        &[
            "listen",
            "--config",
            config.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--json",
        ],
    );
    let listening = listener.wait("listening", |v| is(v, "listening"));
    let address = listening["address"].as_str().unwrap().to_owned();

    // To carol: it rings and waits for a person; the caller gives up.
    let mut to_carol = Proc::spawn(
        "caller of carol",
        &dir,
        &[
            "call",
            &format!("sip:carol@{address}"),
            "--no-audio",
            "--json",
        ],
    );
    to_carol.wait("ringing", |v| is(v, "progress") && v["status"] == 180);
    listener.wait("incoming (carol)", |v| is(v, "incoming"));
    to_carol.type_line("hangup");
    listener.wait("carol's call ended", |v| is(v, "ended"));
    assert!(
        !listener.seen.iter().any(|v| is(v, "answered")),
        "carol's call was not answered: {:#?}",
        listener.seen
    );
    to_carol.stop();

    // To bob: answered with nobody typing.
    let mut to_bob = caller(&dir, &address);
    to_bob.wait("answered", |v| is(v, "answered"));
    to_bob.type_line("hangup");
    to_bob.wait("ended", |v| is(v, "ended"));
    to_bob.stop();
    listener.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
