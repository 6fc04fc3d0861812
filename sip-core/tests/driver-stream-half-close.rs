//! A response owed on a TCP connection still goes out when the peer has stopped sending
//! (issue 19, finding 8): a client that half-closes (`shutdown(SHUT_WR)`) right after its
//! request still reads the response on its read half; a request followed by bytes that
//! cannot be framed (in the same read) is answered, and only then is the connection closed
//! (the framing is lost: RFC 3261 §18.3). The server here answers only after the connection
//! has reported `Closed` (a transaction user slower than the peer); before, the connection
//! was forgotten at once and the response was dropped.
#![cfg(feature = "tokio")] // the tokio driver is what this tests
#![allow(clippy::disallowed_methods)] // a driver loop reads the clock

mod stream_server;

use stream_server::{Answer, PATIENCE, Read, closed_within, config, options, read_response, serve};
use tincan_sip::transport::Transport;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn a_client_that_half_closes_still_gets_its_response() {
    let server = serve(config(), Answer::AfterClosed).await;
    let mut s = TcpStream::connect(server.addr(Transport::Tcp))
        .await
        .expect("connects");
    let me = s.local_addr().expect("bound");
    s.write_all(options(1, me).as_bytes())
        .await
        .expect("writes");
    s.shutdown().await.expect("half-closes");
    assert_eq!(read_response(&mut s, PATIENCE).await, Read::Status(200));
}

#[tokio::test]
async fn garbage_after_a_good_request_in_one_read_the_request_is_answered_then_closed() {
    let server = serve(config(), Answer::AfterClosed).await;
    let mut s = TcpStream::connect(server.addr(Transport::Tcp))
        .await
        .expect("connects");
    let me = s.local_addr().expect("bound");
    // No Content-Length: the stream cannot be framed past the good request.
    let bytes = format!("{}GARBAGE\r\nX: y\r\n\r\n", options(2, me));
    s.write_all(bytes.as_bytes()).await.expect("writes");
    assert_eq!(read_response(&mut s, PATIENCE).await, Read::Status(200));
    assert!(
        closed_within(&mut s, PATIENCE).await,
        "the connection whose framing is lost is closed after the answer"
    );
}

#[tokio::test]
async fn a_request_answered_at_once_on_a_connection_that_stays_open() {
    // The ordinary case is unchanged: a request, its response, and the connection stays.
    let server = serve(config(), Answer::Now).await;
    let mut s = TcpStream::connect(server.addr(Transport::Tcp))
        .await
        .expect("connects");
    let me = s.local_addr().expect("bound");
    for n in 10..13 {
        s.write_all(options(n, me).as_bytes())
            .await
            .expect("writes");
        assert_eq!(read_response(&mut s, PATIENCE).await, Read::Status(200));
    }
}
