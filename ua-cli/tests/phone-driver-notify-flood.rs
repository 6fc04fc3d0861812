//! A flood of NOTIFYs for subscriptions the phone does not have (RFC 6665 §4.1.3), through the
//! real UDP driver: 5,000 `Event: dialog` NOTIFYs, each answered 481, and the phone still
//! answers an OPTIONS afterwards. Sent with a window of 200 unanswered at a time (loopback
//! UDP buffers hold a few hundred datagrams; what the phone does with each is the test, not
//! the kernel's drops). The rate is printed (`--nocapture`), not asserted.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tincan::phone::PhoneConfig;
use tincan::phone::driver::Phone;
use tokio::net::UdpSocket;

const FLOOD: usize = 5_000;
const WINDOW: usize = 200;

fn notify(phone: SocketAddr, me: SocketAddr, n: usize) -> String {
    let body = "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"1\" \
                state=\"full\" entity=\"sip:x@y\"/>";
    format!(
        "NOTIFY sip:bob@{phone} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-flood-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:x@{me}>;tag=x{n}\r\n\
         To: <sip:bob@{phone}>;tag=nobody{n}\r\n\
         Call-ID: flood-{n}@{me}\r\n\
         CSeq: 1 NOTIFY\r\n\
         Contact: <sip:x@{me}>\r\n\
         Event: dialog\r\n\
         Subscription-State: active;expires=600\r\n\
         Content-Type: application/dialog-info+xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_unknown_notifies_each_get_481() {
    let phone = Phone::builder()
        .config(PhoneConfig {
            user: "bob".into(),
            ..PhoneConfig::default()
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let addr = phone.local_addresses()[0].1;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let mut answered: HashSet<usize> = HashSet::new();
    let mut other = Vec::new();
    let mut next = 0usize;
    let mut buf = vec![0u8; 65_535];
    #[allow(clippy::disallowed_methods)] // a test measuring its own run
    let started = std::time::Instant::now();
    // The next one not yet answered is sent again after a quiet second (a datagram the
    // kernel dropped); the 481s of retransmissions are the server transaction's.
    while answered.len() < FLOOD {
        while next < FLOOD && next - answered.len() < WINDOW {
            let text = notify(addr, me, next);
            socket.send_to(text.as_bytes(), addr).await.unwrap();
            next += 1;
        }
        match tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await {
            Ok(r) => {
                let (n, _) = r.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: flood-"))
                    .and_then(|l| l.split('@').next())
                    .and_then(|n| n.parse::<usize>().ok());
                match id {
                    Some(id) if text.starts_with("SIP/2.0 481") => {
                        answered.insert(id);
                    }
                    _ => other.push(text.lines().next().unwrap_or("").to_owned()),
                }
            }
            Err(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(300),
                    "{} of {FLOOD} answered in 300 s",
                    answered.len()
                );
                for n in (0..next).filter(|n| !answered.contains(n)) {
                    let text = notify(addr, me, n);
                    socket.send_to(text.as_bytes(), addr).await.unwrap();
                }
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{FLOOD} unknown NOTIFYs answered 481 in {:.2} s: {:.0} NOTIFYs/s",
        elapsed.as_secs_f64(),
        FLOOD as f64 / elapsed.as_secs_f64()
    );
    assert!(
        other.is_empty(),
        "only 481s: {:?}",
        &other[..other.len().min(3)]
    );

    // Still responsive.
    let options = format!(
        "OPTIONS sip:bob@{addr} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-after\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:x@{me}>;tag=o1\r\n\
         To: <sip:bob@{addr}>\r\n\
         Call-ID: after@{me}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), addr).await.unwrap();
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
            .await
            .expect("an answer to OPTIONS after the flood")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.contains("Call-ID: after@") {
            assert!(text.starts_with("SIP/2.0 200"), "{text}");
            break;
        }
    }
    phone.shutdown().await;
}
