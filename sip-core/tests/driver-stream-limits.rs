//! Limits that keep the TCP and TLS listeners usable under attack (issue 19, finding 7):
//! - at most `max_connections` accepted connections at once: beyond the cap a new
//!   connection takes the place of the slowest one (a message begun and not finished), so a
//!   fresh request is answered while slow connections fill the cap; when none is slow, the
//!   newest is refused and the connections that work are kept;
//! - a message must arrive whole within `message_timeout` of its first byte (slowloris: a
//!   byte every 500 ms is closed), and a new connection must bring a first message within
//!   that time; a connection idle between messages is not slow (CRLF keep-alives work);
//! - a TLS handshake must finish within `handshake_timeout`; the message deadline holds
//!   inside TLS too.
//!
//! Durations are bounded above generously (a loaded CI machine); what is checked is the
//! event: closed, kept, answered.
#![cfg(feature = "tokio")] // the tokio driver is what this tests
#![allow(clippy::disallowed_methods)] // a driver loop reads the clock

mod stream_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use stream_server::{Answer, PATIENCE, Read, closed_within, config, options, read_response, serve};
use tincan_sip::driver::TlsSettings;
use tincan_sip::transport::Transport;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The cap of these tests.
const CAP: usize = 16;
/// The message deadline of these tests.
const DEADLINE: Duration = Duration::from_secs(2);
/// How late past the deadline a close may come on a loaded machine.
const MARGIN: Duration = Duration::from_secs(6);

#[tokio::test]
async fn the_connection_cap_holds_and_a_fresh_connection_takes_the_place_of_a_slow_one() {
    let mut c = config();
    c.max_connections = CAP;
    // Long enough that only the cap acts here.
    c.message_timeout = Duration::from_secs(120);
    let server = serve(c, Answer::Now).await;
    let addr = server.addr(Transport::Tcp);

    // 40 slow connections, each with a message begun and never finished: each one beyond
    // the cap takes the place of the slowest (the oldest), 24 are closed, 16 kept.
    let mut conns = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).await.expect("connects");
        s.write_all(b"OPTIONS sip:").await.expect("writes");
        conns.push(s);
    }
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel(64);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut watchers = Vec::new();
    for (i, mut s) in conns.into_iter().enumerate() {
        let closed_tx = closed_tx.clone();
        let mut stop = stop_rx.clone();
        watchers.push(tokio::spawn(async move {
            tokio::select! {
                closed = closed_within(&mut s, PATIENCE) => {
                    if closed {
                        let _ = closed_tx.send(i).await;
                        return None;
                    }
                }
                _ = stop.changed() => {}
            }
            Some(s)
        }));
    }
    drop(closed_tx);
    let mut closed = 0;
    while closed < 40 - CAP {
        let got = tokio::time::timeout(PATIENCE, closed_rx.recv()).await;
        assert!(
            matches!(got, Ok(Some(_))),
            "only {closed} of the 40 connections were closed; want {} beyond the cap of {CAP}",
            40 - CAP
        );
        closed += 1;
    }

    // A whole request on a fresh connection is answered at once: it too takes the place of
    // a slow connection (a 25th is closed).
    let mut fresh = TcpStream::connect(addr).await.expect("connects");
    let me = fresh.local_addr().expect("bound");
    fresh
        .write_all(options(1, me).as_bytes())
        .await
        .expect("writes");
    assert_eq!(read_response(&mut fresh, PATIENCE).await, Read::Status(200));
    let got = tokio::time::timeout(PATIENCE, closed_rx.recv()).await;
    assert!(matches!(got, Ok(Some(_))), "a slow connection made room");

    stop_tx.send(true).expect("watchers listen");
    let mut kept = Vec::new();
    for w in watchers {
        if let Some(s) = w.await.expect("watcher") {
            kept.push(s);
        }
    }
    assert_eq!(kept.len(), CAP - 1, "the others are kept");
    assert!(closed_rx.recv().await.is_none(), "no more were closed");
}

#[tokio::test]
async fn at_the_cap_with_nobody_slow_the_newest_connection_is_refused() {
    let mut c = config();
    c.max_connections = CAP;
    let server = serve(c, Answer::Now).await;
    let addr = server.addr(Transport::Tcp);
    // 16 connections that work: a request answered, then idle.
    let mut idle = Vec::new();
    for n in 0..CAP {
        let mut s = TcpStream::connect(addr).await.expect("connects");
        let me = s.local_addr().expect("bound");
        s.write_all(options(n as u32, me).as_bytes())
            .await
            .expect("writes");
        assert_eq!(read_response(&mut s, PATIENCE).await, Read::Status(200));
        idle.push(s);
    }
    // The 17th is refused; none of the 16 is evicted for it.
    let mut extra = TcpStream::connect(addr).await.expect("connects");
    let me = extra.local_addr().expect("bound");
    extra
        .write_all(options(99, me).as_bytes())
        .await
        .expect("writes");
    assert_eq!(read_response(&mut extra, PATIENCE).await, Read::Closed);
    for (n, s) in idle.iter_mut().enumerate() {
        let me = s.local_addr().expect("bound");
        s.write_all(options(100 + n as u32, me).as_bytes())
            .await
            .expect("writes");
        assert_eq!(
            read_response(s, PATIENCE).await,
            Read::Status(200),
            "connection {n} still works"
        );
    }
    // Once one closes, a fresh connection is served.
    drop(idle.pop());
    assert_eq!(request_on_a_fresh_connection(addr).await, Read::Status(200));
}

/// An OPTIONS on a new connection, tried again while connections are refused (the server
/// hears of closed ones a little later), until answered or `PATIENCE` is over.
async fn request_on_a_fresh_connection(addr: std::net::SocketAddr) -> Read {
    let until = Instant::now() + PATIENCE;
    let mut n = 100;
    loop {
        n += 1;
        let mut s = TcpStream::connect(addr).await.expect("connects");
        let me = s.local_addr().expect("bound");
        s.write_all(options(n, me).as_bytes())
            .await
            .expect("writes");
        let read = read_response(&mut s, PATIENCE).await;
        if read != Read::Closed || Instant::now() > until {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `bytes` one byte every 500 ms until done or the connection fails.
async fn trickle<W: AsyncWrite + Unpin>(mut w: W, bytes: Vec<u8>) {
    for b in bytes {
        if w.write_all(&[b]).await.is_err() || w.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends a message a byte every 500 ms on `s` and returns how long after its first byte the
/// server closed the connection (`None`: not within the deadline and the margin).
async fn slowloris<S>(s: S, message: String) -> Option<Duration>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(s);
    let started = Instant::now();
    let writer = tokio::spawn(trickle(wr, message.into_bytes()));
    let closed = closed_within(&mut rd, DEADLINE + MARGIN).await;
    writer.abort();
    closed.then(|| started.elapsed())
}

fn limits_config() -> tincan_sip::driver::transports::TransportsConfig {
    let mut c = config();
    c.message_timeout = DEADLINE;
    c.handshake_timeout = DEADLINE;
    c
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_while_a_whole_message_is_answered() {
    let server = serve(limits_config(), Answer::Now).await;
    let addr = server.addr(Transport::Tcp);
    let slow = TcpStream::connect(addr).await.expect("connects");
    let me = slow.local_addr().expect("bound");
    let slow = tokio::spawn(slowloris(slow, options(1, me)));

    let mut good = TcpStream::connect(addr).await.expect("connects");
    let me = good.local_addr().expect("bound");
    good.write_all(options(2, me).as_bytes())
        .await
        .expect("writes");
    assert_eq!(read_response(&mut good, PATIENCE).await, Read::Status(200));

    let closed_after = slow.await.expect("slowloris task");
    let closed_after = closed_after.expect("the slow connection is closed");
    eprintln!("the slow connection was closed {closed_after:?} after its first byte");
    assert!(
        closed_after >= DEADLINE - Duration::from_millis(50),
        "closed after {closed_after:?}, before the deadline"
    );
}

#[tokio::test]
async fn a_silent_new_connection_is_closed_an_idle_one_between_messages_is_not() {
    let server = serve(limits_config(), Answer::Now).await;
    let addr = server.addr(Transport::Tcp);
    let mut silent = TcpStream::connect(addr).await.expect("connects");
    // Line ends are no message: a connection that sends only those is as silent.
    let mut blank = TcpStream::connect(addr).await.expect("connects");
    blank.write_all(b"\r\n").await.expect("writes");

    let mut idle = TcpStream::connect(addr).await.expect("connects");
    let me = idle.local_addr().expect("bound");
    idle.write_all(options(1, me).as_bytes())
        .await
        .expect("writes");
    assert_eq!(read_response(&mut idle, PATIENCE).await, Read::Status(200));

    assert!(
        closed_within(&mut silent, DEADLINE + MARGIN).await,
        "a connection that never sends is closed"
    );
    assert!(
        closed_within(&mut blank, DEADLINE + MARGIN).await,
        "a connection that sends only a line end is closed"
    );
    // Well past the deadline, the idle connection is still open: a keep-alive ping gets its
    // pong (RFC 5626 §4.4.1) and a request its answer.
    tokio::time::sleep(DEADLINE + Duration::from_millis(500)).await;
    idle.write_all(b"\r\n\r\n").await.expect("writes");
    let mut pong = [0u8; 2];
    let read = tokio::time::timeout(
        PATIENCE,
        tokio::io::AsyncReadExt::read_exact(&mut idle, &mut pong),
    )
    .await;
    assert!(matches!(read, Ok(Ok(_))), "no pong: {read:?}");
    assert_eq!(&pong, b"\r\n");
    idle.write_all(options(2, me).as_bytes())
        .await
        .expect("writes");
    assert_eq!(read_response(&mut idle, PATIENCE).await, Read::Status(200));
}

/// A server certificate for `localhost` and a client configuration that trusts it.
fn tls_pair() -> (TlsSettings, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("generates a certificate");
    let server = TlsSettings {
        server_cert_der: Some((
            vec![cert.cert.der().to_vec()],
            cert.signing_key.serialize_der(),
        )),
        ..TlsSettings::default()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.cert.der().clone())
        .expect("a valid certificate");
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    (server, Arc::new(client))
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    client: &Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a DNS name");
    tokio_rustls::TlsConnector::from(Arc::clone(client))
        .connect(name, tcp)
        .await
        .expect("handshakes")
}

#[tokio::test]
async fn tls_a_stalled_handshake_and_a_slow_message_are_closed_a_whole_message_is_answered() {
    let (server_tls, client) = tls_pair();
    let mut c = limits_config();
    c.tls = server_tls;
    c.tls_listen = c.tcp.clone();
    let server = serve(c, Answer::Now).await;
    let addr = server.addr(Transport::Tls);

    // A TCP connection that never starts its handshake.
    let mut stalled = TcpStream::connect(addr).await.expect("connects");
    let started = Instant::now();
    assert!(
        closed_within(&mut stalled, DEADLINE + MARGIN).await,
        "a handshake that never finishes is given up"
    );
    assert!(started.elapsed() >= DEADLINE - Duration::from_millis(50));

    // A handshake, then a message a byte every 500 ms.
    let slow = tls_connect(addr, &client).await;
    let me = slow.get_ref().0.local_addr().expect("bound");
    let slow = tokio::spawn(slowloris(slow, options(1, me)));

    // A whole message is answered.
    let mut good = tls_connect(addr, &client).await;
    let me = good.get_ref().0.local_addr().expect("bound");
    good.write_all(options(2, me).as_bytes())
        .await
        .expect("writes");
    good.flush().await.expect("flushes");
    assert_eq!(read_response(&mut good, PATIENCE).await, Read::Status(200));

    let closed_after = slow.await.expect("slowloris task");
    assert!(closed_after.is_some(), "the slow TLS connection is closed");
}

#[tokio::test]
async fn a_peer_that_never_reads_its_responses_is_closed() {
    // Requests keep coming, the responses are never read: once the server's writes have
    // stalled for the message deadline it gives up the connection (else its writer would
    // wait for ever, and the connection's descriptor and place under the cap with it).
    let server = serve(limits_config(), Answer::Now).await;
    let addr = server.addr(Transport::Tcp);
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("sets SO_RCVBUF");
    let s = socket.connect(addr).await.expect("connects");
    let me = s.local_addr().expect("bound");
    let (_rd, mut wr) = s.into_split();
    let until = Instant::now() + PATIENCE;
    let mut n = 0;
    let closed = loop {
        n += 1;
        if wr.write_all(options(n, me).as_bytes()).await.is_err() {
            break true;
        }
        if Instant::now() > until {
            break false;
        }
        if n % 64 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    assert!(closed, "{n} requests sent, the connection is still open");
}
