//! Transfer from the command line, three real `tincan` processes on loopback: Alice's
//! `tincan call` to Bob's `tincan listen`; Bob types `transfer sip:carol@...`; Alice (config
//! `accept_transfer` left at "ask") is asked and types `accept-transfer`; her `tincan call`
//! follows the new call to Carol's `tincan listen`, and Bob's call ends as a success.

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
fn bob_transfers_alice_to_carol_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("tincan-cli-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut bob, bob_addr) = listener("bob", &dir);
    let (mut carol, carol_addr) = listener("carol", &dir);
    let mut alice = Proc::spawn(
        "alice",
        &dir,
        &[
            "call",
            &format!("sip:bob@{bob_addr}"),
            "--no-audio",
            "--json",
        ],
    );
    alice.wait("answered", |v| is(v, "answered"));
    // Bob's call is up once the ACK is in (its media reports quality then).
    bob.wait("quality", |v| is(v, "quality"));

    bob.type_line(&format!("transfer sip:carol@{carol_addr}"));
    let asked = alice.wait("transfer_requested", |v| is(v, "transfer_requested"));
    assert_eq!(asked["to"], format!("sip:carol@{carol_addr}"), "{asked}");
    alice.type_line("accept-transfer");
    alice.wait("transfer_started", |v| is(v, "transfer_started"));
    // Alice's `tincan call` now follows the call to Carol.
    alice.wait("answered by carol", |v| is(v, "answered"));
    carol.wait("incoming", |v| is(v, "incoming"));
    carol.wait("answered", |v| is(v, "answered"));
    let done = bob.wait("transfer_succeeded", |v| is(v, "transfer_succeeded"));
    assert_eq!(done["status"], 200, "{done}");
    let ended = bob.wait("ended", |v| is(v, "ended"));
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    assert!(
        bob.seen
            .iter()
            .any(|v| is(v, "transfer_progress") && v["status"] == 202),
        "{:?}",
        bob.seen
    );

    // Alice and Carol talk until Alice hangs up; her call ended well.
    alice.type_line("hangup");
    let ended = alice.wait("ended", |v| is(v, "ended"));
    assert_eq!(ended["answered"], true, "{ended}");
    carol.wait("ended", |v| is(v, "ended"));
    let status = alice.child.wait().expect("alice exits");
    assert!(status.success(), "{status:?}");
    bob.stop();
    carol.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
