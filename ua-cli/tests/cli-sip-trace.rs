//! `tincan --sip-trace FILE`: every SIP message sent and received, with a time stamp, the
//! transport and both addresses, appended to FILE.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;

use tincan_sip::message::{HeaderName, Message, Method, response_to};

fn tincan(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    // No config file of the machine's user: an empty config home.
    c.env("XDG_CONFIG_HOME", dir)
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir);
    c
}

/// A scratch directory of this test process (`tag` tells the tests apart), and the path of a
/// trace file in it that does not exist yet.
fn scratch(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("tincan-sip-trace-{tag}{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.log");
    let _ = std::fs::remove_file(&trace);
    (dir, trace)
}

/// A server on loopback that answers one OPTIONS with 200.
fn answer_one_options() -> (u16, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let (n, from) = sock.recv_from(&mut buf).expect("an OPTIONS");
        let request = Message::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
        let ok = response_to(&request, 200, None);
        sock.send_to(ok.to_string().as_bytes(), from).unwrap();
    });
    (port, server)
}

#[test]
fn ping_with_a_sip_trace_writes_the_options_and_the_200() {
    let (dir, trace) = scratch("");
    let (port, server) = answer_one_options();
    let out = tincan(&dir)
        .arg("--sip-trace")
        .arg(&trace)
        .args(["ping", &format!("sip:127.0.0.1:{port}")])
        .output()
        .expect("tincan ping runs");
    server.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&trace).expect("the trace file");
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" bytes)") && l.ends_with(')'))
        .collect();
    assert_eq!(headers.len(), 2, "{text}");
    let server = format!("127.0.0.1:{port}");
    // 2026-11-27T19:30:01.123Z sent udp 0.0.0.0:40000 -> 127.0.0.1:5060 (412 bytes)
    let sent: Vec<&str> = headers[0].split(' ').collect();
    assert_eq!(sent[0].len(), "2026-11-27T19:30:01.123Z".len(), "{text}");
    assert!(sent[0].ends_with('Z'), "{text}");
    assert_eq!(&sent[1..3], ["sent", "udp"], "{text}");
    assert_eq!(&sent[4..6], ["->", server.as_str()], "{text}");
    let received: Vec<&str> = headers[1].split(' ').collect();
    assert_eq!(&received[1..3], ["received", "udp"], "{text}");
    assert_eq!(received[3], server, "{text}");
    let after = |header: &str| {
        let at = text.find(header).unwrap() + header.len() + 1;
        text[at..].lines().next().unwrap_or_default().to_owned()
    };
    assert!(
        after(headers[0]).starts_with(&format!("OPTIONS sip:127.0.0.1:{port} SIP/2.0")),
        "{text}"
    );
    assert_eq!(after(headers[1]), "SIP/2.0 200 OK", "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_trace_file_is_a_usage_error() {
    let (dir, _) = scratch("bad-");
    let out = tincan(&dir)
        .args([
            "--sip-trace",
            "/nonexistent-dir/trace.log",
            "ping",
            "sip:127.0.0.1:9",
        ])
        .output()
        .expect("tincan runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the SIP trace to /nonexistent-dir/trace.log"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo's two phones share the trace: every message is there twice, sent by one and
/// received by the other: INVITE, its 200 (same Via branch and CSeq), ACK, BYE and its 200,
/// in that order each way. The demo's callee answers at once: no 180, and no 100 (the answer
/// comes well within 200 ms, RFC 3261 §17.2.1).
#[test]
fn the_demo_traces_both_phones() {
    let (dir, trace) = scratch("demo-");
    let out = tincan(&dir)
        .arg("--sip-trace")
        .arg(&trace)
        .args(["demo", "--json", "--seconds", "1"])
        .output()
        .expect("tincan demo runs");
    // The call must have run to its summary; whether one second of audio was judged intact
    // (exit 1 when not, which a loaded machine can cause) is not what this test is about.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && stdout.contains("\"event\":\"summary\""),
        "{out:?}"
    );
    let text = std::fs::read_to_string(&trace).expect("the trace file");
    let messages = trace_records(&text);
    // The call: the first INVITE sent, its transaction (top Via branch) and its CSeq number.
    let (_, caller, invite) = messages
        .iter()
        .find(|(d, _, m)| d == "sent" && m.method() == Some(&Method::Invite))
        .unwrap_or_else(|| panic!("no INVITE sent:\n{text}"));
    let call_id = invite.header(HeaderName::CallId).unwrap().to_owned();
    let invite_branch = branch(invite);
    let seq = invite.cseq().unwrap().unwrap().seq;
    let callee = messages
        .iter()
        .find(|(d, _, m)| d == "received" && m.method() == Some(&Method::Invite))
        .map(|(_, local, _)| local.clone())
        .unwrap_or_else(|| panic!("no INVITE received:\n{text}"));
    // Each phone's own records are in the order it sent and received them (the two phones'
    // records interleave in any order).
    for (phone, expected) in [
        (
            caller,
            [
                "sent INVITE",
                "received 200 INVITE",
                "sent ACK",
                "sent BYE",
                "received 200 BYE",
            ],
        ),
        (
            &callee,
            [
                "received INVITE",
                "sent 200 INVITE",
                "received ACK",
                "received BYE",
                "sent 200 BYE",
            ],
        ),
    ] {
        // Requests by method, responses as "<status> <method>" of the transaction they
        // answer; a retransmission once.
        let mut flow: Vec<String> = Vec::new();
        for (direction, _, m) in messages.iter().filter(|(_, local, m)| {
            local == phone && m.header(HeaderName::CallId) == Some(&call_id)
        }) {
            let cseq = m.cseq().unwrap().unwrap();
            let step = match m.status() {
                None => format!("{direction} {}", m.method().unwrap()),
                Some(status) => {
                    if cseq.method == Method::Invite {
                        assert_eq!(
                            branch(m),
                            invite_branch,
                            "a response to another INVITE:\n{text}"
                        );
                        assert_eq!(cseq.seq, seq, "a response to another INVITE:\n{text}");
                    }
                    format!("{direction} {status} {}", cseq.method)
                }
            };
            if flow.last() != Some(&step) {
                flow.push(step);
            }
        }
        assert_eq!(flow, expected, "{phone}:\n{text}");
    }
    let sent = messages.iter().filter(|(d, _, _)| d == "sent").count();
    assert_eq!(sent * 2, messages.len(), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records of a trace file: (direction, the phone's local address, message), in order. Each is a header line ending
/// `(N bytes)`, the N bytes of the message and a blank line (`ua-cli/src/trace.rs`).
fn trace_records(text: &str) -> Vec<(String, String, Message)> {
    let mut records = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find('\n') {
        let header = &rest[..end];
        let n: usize = header
            .rsplit_once(" (")
            .and_then(|(_, n)| n.strip_suffix(" bytes)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a record header: {header:?}\n{text}"));
        // `<time> sent <transport> <local> -> <remote>` or `<time> received <transport>
        // <remote> -> <local>`
        let fields: Vec<&str> = header.split(' ').collect();
        let direction = fields[1].to_owned();
        let local = if direction == "sent" {
            fields[3]
        } else {
            fields[5]
        }
        .to_owned();
        let payload = &rest[end + 1..end + 1 + n];
        let message = Message::parse(bytes::Bytes::copy_from_slice(payload.as_bytes()))
            .unwrap_or_else(|e| panic!("{e}: {payload}"));
        records.push((direction, local, message));
        rest = rest[end + 1 + n..].trim_start_matches(['\r', '\n']);
    }
    records
}

/// The branch of the top Via.
fn branch(m: &Message) -> String {
    m.top_via()
        .and_then(Result::ok)
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}
