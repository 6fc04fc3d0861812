//! The phone driver's bounded event queue under a flood of refused calls (issue 19, finding
//! 2): an application that reads no events while thousands of INVITEs are refused by the
//! call limit does not make the phone hold them all, nor stop it answering: the `Refused`
//! events it has no room for are dropped and counted, and an OPTIONS sent after the flood is
//! still answered (503 with Retry-After: the phone is at its call limit, issue 20).

use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::PhoneConfig;
use tincan::phone::driver::Phone;
use tokio::net::UdpSocket;

/// More refused calls than the event queue holds.
const INVITES: usize = 3_000;

fn request(method: &str, n: usize, from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    format!(
        "{method} sip:bob@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-flood-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:flood@{from}>;tag=f{n}\r\n\
         To: <sip:bob@{to}>\r\n\
         Call-ID: flood-{n}@test\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:flood@{from}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_unread_by_the_application_is_dropped_and_counted() {
    let phone = Phone::builder()
        .config(PhoneConfig {
            call_limit: 0,
            ..PhoneConfig::default()
        })
        .bind("127.0.0.1:0".parse().expect("literal address"))
        .start()
        .await
        .expect("the phone starts");
    let to = phone
        .local_addresses()
        .iter()
        .find(|(t, _)| t.as_str() == "udp")
        .map(|(_, a)| *a)
        .expect("a udp socket");
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
    let from = client.local_addr().expect("bound");

    // Every INVITE is answered 503 (the limit is 0); a refusal is read back before the next
    // INVITE goes, so that none is lost to a full socket buffer on a slow machine.
    let mut buf = vec![0u8; 4096];
    for n in 0..INVITES {
        client
            .send_to(&request("INVITE", n, from, to), to)
            .await
            .expect("loopback send");
        let want = format!("Call-ID: flood-{n}@test");
        loop {
            let len = tokio::time::timeout(Duration::from_secs(20), client.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no 503 for INVITE {n}"))
                .expect("loopback recv");
            let text = String::from_utf8_lossy(&buf[..len]);
            if text.starts_with("SIP/2.0 503") && text.contains(&want) {
                break;
            }
        }
    }
    // The application read nothing: what did not fit was dropped, not held.
    let dropped = phone.refused_dropped();
    assert!(
        dropped >= (INVITES - 1024) as u64,
        "{dropped} refused events dropped of {INVITES}"
    );
    // And the phone still answers: 503, as it is full (a limit of 0).
    client
        .send_to(&request("OPTIONS", INVITES, from, to), to)
        .await
        .expect("loopback send");
    let want = format!("Call-ID: flood-{INVITES}@test");
    loop {
        let len = tokio::time::timeout(Duration::from_secs(20), client.recv(&mut buf))
            .await
            .expect("the OPTIONS is answered")
            .expect("loopback recv");
        let text = String::from_utf8_lossy(&buf[..len]);
        if text.contains(&want) {
            assert!(text.starts_with("SIP/2.0 503"), "{text}");
            assert!(text.contains("\r\nRetry-After: 5\r\n"), "{text}");
            break;
        }
    }
    phone.shutdown().await;
}
