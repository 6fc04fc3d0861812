//! `tincan` processes driven through standard input, for the command-line tests
//! (`cli-listen-line-mode.rs`, `cli-transfer.rs`, `cli-conference.rs`): their output lines (both
//! streams) read on threads, `--json` events waited for with a deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Long enough for a loaded 2-core CI machine; only a failure waits this long.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn tincan(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir);
    c
}

/// A running `tincan` with its standard input and its output lines (read on a thread).
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub stdin: ChildStdin,
    pub lines: mpsc::Receiver<String>,
    /// The `--json` events read so far.
    pub seen: Vec<Value>,
    /// The lines read so far.
    pub text: Vec<String>,
}

impl Proc {
    pub fn spawn(name: &'static str, dir: &std::path::Path, args: &[&str]) -> Proc {
        let mut child = tincan(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tincan runs");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let stdin = child.stdin.take().expect("piped");
        // Standard output and error in one stream of lines: a test can wait for what listen
        // says on standard error (`no call to answer`) to know a typed line was read.
        let (tx, lines) = mpsc::channel();
        let err_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if err_tx.send(line).is_err() {
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

    pub fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("stdin open");
        self.stdin.flush().expect("stdin open");
    }

    /// The next line, before `deadline`; fails the test after it.
    pub fn next_line(&mut self, what: &str, deadline: std::time::Instant) -> String {
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

    /// The next line `want` accepts (earlier ones are kept in `text`).
    pub fn wait_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let line = self.next_line(what, deadline);
            if want(&line) {
                return line;
            }
        }
    }

    /// The next `--json` event `want` accepts (earlier ones are kept in `seen`).
    pub fn wait(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
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

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is(v: &Value, event: &str) -> bool {
    v["event"] == event
}

pub fn listener(name: &'static str, dir: &std::path::Path) -> (Proc, String) {
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
