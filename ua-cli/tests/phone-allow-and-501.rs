//! A Tincan phone says only what is true: its 200 to OPTIONS lists in `Allow` exactly the
//! methods it handles (MESSAGE among them, answered 200); a method it does not implement
//! (PUBLISH) gets 501 with that `Allow`, not 481 or 405; a SUBSCRIBE for a package other than
//! `dialog` gets 489 Bad Event with `Allow-Events`; a REFER outside a call gets 481
//! (the phone takes transfers inside calls only); an INVITE whose `Replaces` names no call
//! of the phone gets 481 and rings nothing (RFC 3891 §3); 481 is kept for an in-dialog request
//! (To tag) of a handled method whose dialog the phone does not have (RFC 3261 §12.2.2).
//! Every one of those responses tags its To (§8.2.6.2).

use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::driver::Phone;
use tincan::phone::{PhoneConfig, PhoneEvent};
use tokio::net::UdpSocket;

/// Sends `method` to the phone from `socket` and returns the first line and headers of the
/// final response.
async fn ask(socket: &UdpSocket, phone: SocketAddr, method: &str, extra: &str) -> String {
    let me = socket.local_addr().unwrap();
    let request = format!(
        "{method} sip:bob@{phone} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{method}-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{me}>;tag=p1\r\n\
         {extra}\
         Call-ID: {method}-{n}@{me}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:probe@{me}>\r\n\
         Content-Length: 0\r\n\r\n",
        n = extra.len(),
    );
    socket.send_to(request.as_bytes(), phone).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within 5 s"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        // Skip provisional responses (100 Trying to an INVITE).
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_allow_501_and_481() {
    let mut bob = Phone::builder()
        .config(PhoneConfig {
            user: "bob".into(),
            ..PhoneConfig::default()
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let phone = bob.local_addresses()[0].1;
    let allow = tincan::phone::allow_header();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = format!("To: <sip:bob@{phone}>\r\n");

    let ok = ask(&socket, phone, "OPTIONS", &to).await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert_eq!(header(&ok, "Allow"), Some(allow), "{ok}");
    // RFC 3261 §8.2.6.2: every response but a 100 tags the To.
    assert!(
        header(&ok, "To").is_some_and(|t| t.contains(";tag=")),
        "{ok}"
    );
    assert_eq!(
        allow,
        "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, MESSAGE, SUBSCRIBE"
    );
    let names: Vec<&str> = tincan::phone::ALLOWED_METHODS
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(names.join(", "), allow);
    // The dialog layer's methods, then the phone's own (MESSAGE).
    assert!(tincan::phone::ALLOWED_METHODS.starts_with(tincan_sip::dialog::invite::METHODS));

    let r = ask(&socket, phone, "MESSAGE", &to).await;
    assert!(r.starts_with("SIP/2.0 200"), "MESSAGE: {r}");
    assert!(header(&r, "To").is_some_and(|t| t.contains(";tag=")), "{r}");

    let r = ask(&socket, phone, "REFER", &to).await;
    assert!(r.starts_with("SIP/2.0 481"), "{r}");

    let r = ask(
        &socket,
        phone,
        "SUBSCRIBE",
        &format!("{to}Event: presence\r\n"),
    )
    .await;
    assert!(r.starts_with("SIP/2.0 489"), "SUBSCRIBE: {r}");
    assert_eq!(header(&r, "Allow-Events"), Some("dialog"), "{r}");
    assert!(header(&r, "To").is_some_and(|t| t.contains(";tag=")), "{r}");

    for method in ["PUBLISH"] {
        let r = ask(&socket, phone, method, &to).await;
        assert!(r.starts_with("SIP/2.0 501"), "{method}: {r}");
        assert_eq!(header(&r, "Allow"), Some(allow), "{method}: {r}");
        assert!(
            header(&r, "To").is_some_and(|t| t.contains(";tag=")),
            "{method}: {r}"
        );
    }

    let r = ask(
        &socket,
        phone,
        "INVITE",
        &format!("{to}Require: replaces\r\nReplaces: abc@192.0.2.9;to-tag=1;from-tag=2\r\n"),
    )
    .await;
    assert!(r.starts_with("SIP/2.0 481"), "{r}");
    assert!(header(&r, "To").is_some_and(|t| t.contains(";tag=")), "{r}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Some(PhoneEvent::Incoming(_)) = bob.next_event().await {
                    return;
                }
            }
        })
        .await
        .is_err(),
        "the INVITE replacing no call must not ring"
    );

    let r = ask(
        &socket,
        phone,
        "BYE",
        &format!("To: <sip:bob@{phone}>;tag=gone\r\n"),
    )
    .await;
    assert!(r.starts_with("SIP/2.0 481"), "{r}");

    bob.shutdown().await;
}
