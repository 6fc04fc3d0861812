//! `tincan message URI TEXT` and `tincan listen` with text messages (RFC 3428 MESSAGE): a
//! message to a listening Tincan is delivered (exit 0, `--json` says `delivered` with 200),
//! printed by `listen` (`--json` too), and kept in both sides' history; a refusal prints its
//! status and exits 1.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tincan::history::{Delivery, Direction, History};

/// Long enough for a loaded 2-core CI machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(60);

fn tincan(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir);
    c
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tincan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `tincan listen --json` and its output lines (read on a thread).
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Listener {
    fn spawn(dir: &std::path::Path) -> Listener {
        Listener::run(
            dir,
            &["listen", "--bind", "127.0.0.1:0", "--no-audio", "--json"],
        )
    }

    /// Any `tincan` command with `--json` output and piped standard input.
    fn run(dir: &std::path::Path, args: &[&str]) -> Listener {
        let mut child = tincan(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tincan runs");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Listener { child, lines }
    }

    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{line}").expect("stdin open");
        stdin.flush().expect("stdin open");
    }

    fn wait(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {event} event within {WAIT:?}"));
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["event"] == event
            {
                return v;
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_message_to_a_listening_tincan_is_delivered_printed_and_kept() {
    let dir = temp_dir("message-listen");
    let mut listener = Listener::spawn(&dir);
    let address = listener.wait("listening")["address"]
        .as_str()
        .expect("an address")
        .to_owned();
    let out = tincan(&dir)
        .args([
            "message",
            &format!("sip:bob@{address}"),
            "hello \u{1F44B}",
            "--json",
            "--bind",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("tincan runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}: {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(report["event"], "delivered", "{report}");
    assert_eq!(report["status"], 200, "{report}");
    let got = listener.wait("message");
    assert_eq!(got["text"], "hello \u{1F44B}", "{got}");
    assert_eq!(got["content_type"], "text/plain;charset=UTF-8", "{got}");
    drop(listener);

    let history = History::open(&dir.join("data/tincan/history.sqlite3")).expect("a history");
    let messages = history.messages(None, 10).expect("readable");
    assert_eq!(messages.len(), 2, "{messages:?}");
    let sent = messages
        .iter()
        .find(|m| m.direction == Direction::Outgoing)
        .expect("the sent one");
    assert_eq!(sent.delivery, Delivery::Delivered);
    assert_eq!(sent.status, Some(200));
    assert_eq!(sent.peer_uri, format!("sip:bob@{address}"));
    let received = messages
        .iter()
        .find(|m| m.direction == Direction::Incoming)
        .expect("the received one");
    assert_eq!(received.delivery, Delivery::Received);
    assert_eq!(received.text(), Some("hello \u{1F44B}"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A peer that answers every request 486 Busy Here, from a thread; stops after one.
fn busy_peer() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let addr = socket.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_535];
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut response = String::from("SIP/2.0 486 Busy Here\r\n");
        for line in text.lines() {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
                response.push_str(line);
                response.push_str("\r\n");
            } else if name == "to" {
                response.push_str(line);
                response.push_str(";tag=busy\r\n");
            }
        }
        response.push_str("Content-Length: 0\r\n\r\n");
        let _ = socket.send_to(response.as_bytes(), from);
    });
    (addr, thread)
}

#[test]
fn a_refused_message_prints_its_status_and_exits_1() {
    let dir = temp_dir("message-refused");
    let (peer, thread) = busy_peer();
    let out = tincan(&dir)
        .args([
            "message",
            &format!("sip:bob@{peer}"),
            "anyone?",
            "--bind",
            "127.0.0.1:0",
            "--no-history",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("tincan runs");
    thread.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.trim(), "failed: 486 Busy Here");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PBX's unsolicited `message-summary` NOTIFY (RFC 3842) is answered 200 and `listen`
/// prints the voicemail count.
#[test]
fn listen_prints_the_voicemail_count_of_a_message_summary_notify() {
    let dir = temp_dir("message-mwi");
    let mut listener = Listener::spawn(&dir);
    let address = listener.wait("listening")["address"]
        .as_str()
        .expect("an address")
        .to_owned();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let me = socket.local_addr().unwrap();
    let body = "Messages-Waiting: yes\r\nVoice-Message: 2/5 (0/1)\r\n";
    let notify = format!(
        "NOTIFY sip:bob@{address} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-mwi1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@{me}>;tag=pbx\r\n\
         To: <sip:bob@{address}>\r\n\
         Call-ID: mwi1@pbx\r\n\
         CSeq: 1 NOTIFY\r\n\
         Event: message-summary\r\n\
         Content-Type: application/simple-message-summary\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.send_to(notify.as_bytes(), address.as_str()).unwrap();
    let mut buf = vec![0u8; 65_535];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let v = listener.wait("message_waiting");
    assert_eq!(v["waiting"], true, "{v}");
    assert_eq!(v["new"], 2, "{v}");
    assert_eq!(v["old"], 5, "{v}");
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `message TEXT` typed into `tincan call` sends a MESSAGE in the call's dialog: the
/// listening side prints it, the caller prints its delivery report.
#[test]
fn a_message_typed_in_a_call_goes_in_its_dialog() {
    let dir = temp_dir("message-in-call");
    let mut listener = Listener::run(
        &dir,
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--json",
            "--auto-answer",
            "--no-history",
        ],
    );
    let address = listener.wait("listening")["address"]
        .as_str()
        .expect("an address")
        .to_owned();
    let uri = format!("sip:bob@{address}");
    let mut caller = Listener::run(
        &dir,
        &[
            "call",
            &uri,
            "--bind",
            "127.0.0.1:0",
            "--no-audio",
            "--json",
            "--no-history",
        ],
    );
    caller.wait("answered");
    caller.type_line("message  hello in the call ");
    let got = listener.wait("message");
    assert_eq!(got["text"], "hello in the call", "{got}");
    let report = caller.wait("message_delivered");
    assert_eq!(report["status"], 200, "{report}");
    caller.type_line("hangup");
    caller.wait("ended");
    drop(caller);
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
