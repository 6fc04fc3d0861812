//! `tincan --sip-trace FILE`: every SIP message sent and received, with a time stamp, the
//! transport and both addresses, appended to FILE.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;

use tincan_sip::message::{Message, response_to};

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
/// received by the other (INVITE, its 100/180/200, ACK, BYE and its 200).
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
    // (direction, first line of the message)
    let mut messages = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.ends_with(" bytes)") {
            let direction = line.split(' ').nth(1).unwrap_or_default().to_owned();
            messages.push((direction, lines.next().unwrap_or_default().to_owned()));
        }
    }
    for start in ["INVITE sip:", "ACK sip:", "BYE sip:", "SIP/2.0 200 OK"] {
        for direction in ["sent", "received"] {
            assert!(
                messages
                    .iter()
                    .any(|(d, l)| d == direction && l.starts_with(start)),
                "no {direction} {start}:\n{text}"
            );
        }
    }
    let sent = messages.iter().filter(|(d, _)| d == "sent").count();
    assert_eq!(sent * 2, messages.len(), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
