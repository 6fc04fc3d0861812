//! A conference from the command line, three real `tincan` processes on loopback: Alice and
//! Carol each `tincan call` Bob's `tincan listen --auto-answer`; Bob types `conference` and
//! both his calls report `conference` joined, then `split` and both report it ended; the two
//! calls go on until the callers hang up. (The mixed audio is checked by
//! `phone-driver-conference.rs`.)

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Long enough for a loaded 2-core CI machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);

fn tincan(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir);
    c
}

/// A running `tincan` with its standard input and its output lines (read on a thread).
struct Proc {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The `--json` events read so far.
    seen: Vec<Value>,
    /// The lines read so far.
    text: Vec<String>,
}

impl Proc {
    fn spawn(name: &'static str, dir: &std::path::Path, args: &[&str]) -> Proc {
        let mut child = tincan(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tincan runs");
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name,
            child,
            stdin,
            lines,
            seen: Vec::new(),
            text: Vec::new(),
        }
    }

    fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("stdin open");
        self.stdin.flush().expect("stdin open");
    }

    /// The next line, before `deadline`; fails the test after it.
    fn next_line(&mut self, what: &str, deadline: std::time::Instant) -> String {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
            let skip = self.text.len().saturating_sub(8);
            panic!(
                "{}: no {what} within {WAIT:?}; the last lines: {:#?}",
                self.name,
                &self.text[skip..]
            )
        });
        self.text.push(line.clone());
        line
    }

    /// The next `--json` event `want` accepts (earlier ones are kept in `seen`).
    fn wait(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let line = self.next_line(what, deadline);
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            self.seen.push(v.clone());
            if want(&v) {
                return v;
            }
        }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is(v: &Value, event: &str) -> bool {
    v["event"] == event
}

fn listener(name: &'static str, dir: &std::path::Path) -> (Proc, String) {
    let mut p = Proc::spawn(
        name,
        dir,
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--json",
            "--auto-answer",
        ],
    );
    let listening = p.wait("listening", |v| is(v, "listening"));
    let address = listening["address"].as_str().unwrap().to_owned();
    (p, address)
}

#[test]
fn bob_joins_his_two_calls_and_splits_them() {
    let dir = std::env::temp_dir().join(format!("tincan-cli-conference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut bob, bob_addr) = listener("bob", &dir);
    let caller = |name| {
        Proc::spawn(
            name,
            &dir,
            &[
                "call",
                &format!("sip:bob@{bob_addr}"),
                "--no-audio",
                "--json",
            ],
        )
    };
    let mut alice = caller("alice");
    alice.wait("answered", |v| is(v, "answered"));
    bob.wait("quality", |v| is(v, "quality"));
    let mut carol = caller("carol");
    carol.wait("answered", |v| is(v, "answered"));
    // Both of Bob's calls are up once each reported quality.
    let first = bob.wait("quality of call 1", |v| is(v, "quality"))["call"].clone();
    bob.wait("quality of the other call", |v| {
        is(v, "quality") && v["call"] != first
    });

    bob.type_line("conference");
    let a = bob.wait("conference", |v| is(v, "conference"));
    let b = bob.wait("conference", |v| is(v, "conference"));
    assert_eq!(a["joined"], true, "{a}");
    assert_eq!(b["joined"], true, "{b}");
    assert_ne!(a["call"], b["call"], "one event per call: {a} {b}");

    bob.type_line("split");
    let a = bob.wait("conference ended", |v| is(v, "conference"));
    let b = bob.wait("conference ended", |v| is(v, "conference"));
    assert_eq!(a["joined"], false, "{a}");
    assert_eq!(b["joined"], false, "{b}");

    for mut p in [alice, carol] {
        p.type_line("hangup");
        let ended = p.wait("ended", |v| is(v, "ended"));
        assert_eq!(ended["answered"], true, "{ended}");
        let status = p.child.wait().expect("the caller exits");
        assert!(status.success(), "{status:?}");
    }
    bob.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
