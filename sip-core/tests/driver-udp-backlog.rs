//! The UDP reader of `Transports` when its owner is behind (issue 19, finding 2): with the
//! queue to the owner full, new INVITEs are dropped by the reader, unread, and the reader
//! keeps emptying the socket, so that the BYEs that come after a flood of INVITEs are not
//! lost in a full socket buffer; every datagram it hands on carries the instant it was read.
#![cfg(feature = "tokio")] // the tokio driver is what this tests
#![allow(clippy::disallowed_methods)] // a driver test reads the clock

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_sip::driver::transports::{NET_QUEUE, NetInput, Transports, TransportsConfig};
use tokio::net::UdpSocket;

/// A small receive buffer: a reader that stops reading loses what comes next at once.
const SOCKET_BUFFER: usize = 64 * 1024;
/// INVITEs past the queue: more than the socket buffer holds many times over.
const EXTRA_INVITES: usize = 2_000;
const BYES: usize = 20;
/// How long the test waits for the reader to empty the socket after each burst.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

fn datagram(method: &str, n: usize) -> Vec<u8> {
    format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{n}\r\n\
         Call-ID: backlog-{n}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Datagrams waiting in the kernel on the UDP socket bound to 127.0.0.1:`port` (the
/// `rx_queue` of /proc/net/udp, in bytes); `None` off Linux.
fn queued(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str())).then(|| {
            let queues = fields.get(4)?;
            let (_, rx) = queues.split_once(':')?;
            u64::from_str_radix(rx, 16).ok()
        })?
    })
}

/// Sends `payloads` in bursts of 16, each once the socket is empty again: the reader keeps
/// up, however slow the machine. A reader that stopped reading is waited for once, for
/// `DRAIN_WAIT`; the rest is sent without waiting.
async fn send_paced(client: &UdpSocket, to: SocketAddr, payloads: impl Iterator<Item = Vec<u8>>) {
    let payloads: Vec<Vec<u8>> = payloads.collect();
    let mut stuck = false;
    for burst in payloads.chunks(16) {
        for p in burst {
            client.send_to(p, to).await.expect("loopback send");
        }
        let deadline = Instant::now() + DRAIN_WAIT;
        while !stuck && queued(to.port()).is_some_and(|q| q > 0) {
            stuck = Instant::now() >= deadline;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_full_queue_invites_are_shed_and_every_bye_gets_through() {
    if std::fs::metadata("/proc/net/udp").is_err() {
        eprintln!("SKIPPED: no /proc/net/udp to pace the sender by");
        return;
    }
    let mut config = TransportsConfig::udp("127.0.0.1:0".parse().expect("literal address"));
    config.udp_buffer_size = Some(SOCKET_BUFFER);
    let mut net = Transports::bind(config).await.expect("binds");
    let to = net.local_addresses()[0].1;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("binds");

    // The owner reads nothing while the queue fills and overflows with INVITEs...
    let sent_at = Instant::now();
    send_paced(
        &client,
        to,
        (0..NET_QUEUE + EXTRA_INVITES).map(|n| datagram("INVITE", n)),
    )
    .await;
    assert!(
        net.invites_shed() > 0,
        "the reader dropped no INVITE though its queue is full"
    );
    // ... then the BYEs of calls up come (the socket buffer has room for them all; the
    // reader waits for room in the queue for the first).
    for n in 0..BYES {
        client
            .send_to(&datagram("BYE", n), to)
            .await
            .expect("loopback send");
    }

    // The owner catches up: every BYE is there, each stamped when it was read.
    let mut byes = 0;
    let mut invites = 0;
    let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
    while byes < BYES {
        let input = tokio::time::timeout_at(deadline, net.next())
            .await
            .unwrap_or_else(|_| {
                panic!("{byes} of {BYES} BYEs after {invites} INVITEs; the rest were lost")
            });
        let Some(NetInput::Received(r)) = input else {
            continue;
        };
        let arrived = r.arrived.expect("a datagram is stamped by its reader");
        assert!(arrived >= sent_at && arrived <= Instant::now());
        if r.payload.starts_with(b"BYE ") {
            byes += 1;
        } else {
            invites += 1;
        }
    }
    assert_eq!(byes, BYES);
    assert!(invites <= NET_QUEUE, "{invites} INVITEs handed on");
}
