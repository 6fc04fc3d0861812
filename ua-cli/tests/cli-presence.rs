//! `tincan presence set|watch`: a status published to a scripted presence server on loopback
//! (the PUBLISH's PIDF says busy with the note, `published: busy` printed, the state removed
//! with `Expires: 0` and `SIP-If-Match` when it stops, exit 0); usage errors exit 2.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

/// Long enough for a loaded 2-core CI machine; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(60);

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tincan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tincan(dir: &std::path::Path, config: &str) -> Command {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("TINCAN_CONFIG")
        .env("HOME", dir)
        .arg("--config")
        .arg(&path);
    c
}

fn account(registrar: &str) -> String {
    format!(
        "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"home\"\n\
         aor = \"sip:alice@example.test\"\npassword = \"pw\"\nregistrars = [\"sip:{registrar}\"]\n"
    )
}

/// The value of header `name` in a request's text.
fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A 200 to a request's text, with `extra` header lines.
fn ok(request: &str, extra: &str) -> String {
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for l in request.lines() {
            if l.split(':')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
            {
                r.push_str(l.trim_end());
                r.push_str("\r\n");
            }
        }
    }
    let to = header(request, "To").unwrap_or("<sip:x@x>");
    r.push_str(&format!(
        "To: {to};tag=ps1\r\n{extra}Content-Length: 0\r\n\r\n"
    ));
    r
}

#[test]
fn set_publishes_and_removes_on_stop() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let dir = temp_dir("presence-set");
    let mut child = tincan(&dir, &account(&addr.to_string()))
        .args(["presence", "set", "busy", "--note", "in a meeting"])
        .args(["--duration", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tincan runs");
    let deadline = Instant::now() + WAIT;
    let mut publishes = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, from)) = server.recv_from(&mut buf) else {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("PUBLISH ") {
            continue;
        }
        let removal = header(&text, "Expires") == Some("0");
        let reply = if removal {
            ok(&text, "Expires: 0\r\n")
        } else {
            ok(&text, "SIP-ETag: e1\r\nExpires: 3600\r\n")
        };
        server.send_to(reply.as_bytes(), from).unwrap();
        publishes.push(text);
        if removal {
            break;
        }
    }
    let out = child.wait_with_output().expect("tincan ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("published: busy"), "{stdout}");
    let first = publishes.first().expect("a PUBLISH");
    assert_eq!(header(first, "Event"), Some("presence"));
    assert!(first.contains("<rpid:busy/>"), "{first}");
    assert!(first.contains("in a meeting"), "{first}");
    assert_eq!(header(first, "SIP-If-Match"), None);
    let last = publishes.last().expect("a PUBLISH");
    assert_eq!(header(last, "Expires"), Some("0"), "{publishes:?}");
    assert_eq!(header(last, "SIP-If-Match"), Some("e1"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    let dir = temp_dir("presence-usage");
    let out = tincan(&dir, &account("127.0.0.1:9"))
        .args(["presence", "set", "sleepy"])
        .output()
        .expect("tincan runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown status \"sleepy\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tincan(&dir, "")
        .args(["presence", "watch", "bob"])
        .output()
        .expect("tincan runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs an [[account]]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tincan(&dir, &account("127.0.0.1:9"))
        .args(["presence", "watch", "bob", "--account", "work"])
        .output()
        .expect("tincan runs");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The address of the first `sip:user@ip:port` in a header value.
fn contact_addr(value: &str) -> Option<std::net::SocketAddr> {
    let start = value.find('@')? + 1;
    let rest = &value[start..];
    let end = rest.find(['>', ';']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn watch_prints_the_contacts_presence() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let dir = temp_dir("presence-watch");
    let mut child = tincan(&dir, &account(&addr.to_string()))
        .args(["presence", "watch", "bob", "--json", "--duration", "4"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tincan runs");
    let body = "<presence xmlns='urn:ietf:params:xml:ns:pidf' \
                xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' \
                xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='sip:bob@example.test'>\
                <tuple id='t'><status><basic>open</basic></status></tuple>\
                <dm:person id='p'><rpid:activities><rpid:away/></rpid:activities>\
                <dm:note>lunch</dm:note></dm:person></presence>";
    let deadline = Instant::now() + WAIT;
    let mut subscribe = None;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, from)) = server.recv_from(&mut buf) else {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("REGISTER ") {
            let contact = header(&text, "Contact").unwrap_or("");
            let reply = ok(
                &text,
                &format!("Contact: {contact};expires=60\r\nExpires: 60\r\n"),
            );
            server.send_to(reply.as_bytes(), from).unwrap();
        } else if text.starts_with("SUBSCRIBE ") {
            let reply = ok(
                &text,
                &format!("Expires: 60\r\nContact: <sip:presence@{addr}>\r\n"),
            );
            server.send_to(reply.as_bytes(), from).unwrap();
            if subscribe.is_none() && header(&text, "Expires") != Some("0") {
                let target = header(&text, "Contact")
                    .and_then(contact_addr)
                    .expect("a Contact");
                let notify = format!(
                    "NOTIFY sip:alice@{target} SIP/2.0\r\n\
                     Via: SIP/2.0/UDP {addr};branch=z9hG4bKnotify1\r\n\
                     From: {};tag=ps1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 NOTIFY\r\n\
                     Contact: <sip:presence@{addr}>\r\nEvent: presence\r\n\
                     Subscription-State: active;expires=60\r\n\
                     Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
                    header(&text, "To").unwrap_or(""),
                    header(&text, "From").unwrap_or(""),
                    header(&text, "Call-ID").unwrap_or(""),
                    body.len()
                );
                server.send_to(notify.as_bytes(), target).unwrap();
                subscribe = Some(text);
            }
        }
    }
    let out = child.wait_with_output().expect("tincan ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let subscribe = subscribe.expect("a SUBSCRIBE");
    assert_eq!(header(&subscribe, "Event"), Some("presence"));
    assert_eq!(header(&subscribe, "Accept"), Some("application/pidf+xml"));
    let line: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("a JSON line: {stdout}"));
    assert_eq!(line["event"], "presence");
    assert_eq!(line["uri"], "bob");
    assert_eq!(line["status"], "away");
    assert_eq!(line["note"], "lunch");
    let _ = std::fs::remove_dir_all(&dir);
}
