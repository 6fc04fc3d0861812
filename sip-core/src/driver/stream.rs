//! Stream connections (TCP, TLS): a reader task that only frames, a writer task that only
//! writes, both ending when the connection does.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::transports::NetEvent;
use crate::message::framing::{Frame, StreamFramer};
use crate::transport::{ConnectionId, Transport};

/// What a connection's reader reports.
pub(crate) enum StreamEvent {
    Message(Bytes),
    Ping,
    Pong,
    Closed,
}

/// A connection ready for use.
pub(crate) struct NewConnection {
    pub id: ConnectionId,
    pub transport: Transport,
    pub peer: SocketAddr,
    pub writer: mpsc::Sender<Bytes>,
    /// Set by the driver before it writes a keep-alive ping: the reader then takes a lone
    /// CRLF as its pong at once (RFC 5626 §4.4.1).
    pub ping_sent: Arc<AtomicBool>,
    /// Ends the reader (a connection closed by us whose peer went silent).
    pub reader: tokio::task::AbortHandle,
}

/// Starts the reader and writer tasks of a connection.
fn spawn_io<S>(
    id: ConnectionId,
    transport: Transport,
    peer: SocketAddr,
    stream: S,
    net: mpsc::Sender<NetEvent>,
) -> NewConnection
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (writer, mut writes) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        while let Some(b) = writes.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let ping_sent = Arc::new(AtomicBool::new(false));
    let pinged = Arc::clone(&ping_sent);
    let reader = tokio::spawn(async move {
        let mut framer = StreamFramer::default();
        let mut buf = vec![0u8; 16 * 1024];
        'read: loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if pinged.swap(false, Ordering::AcqRel) {
                framer.ping_sent();
            }
            framer.push(&buf[..n]);
            loop {
                let ev = match framer.next_frame() {
                    Ok(Some(Frame::Message(m))) => StreamEvent::Message(m),
                    Ok(Some(Frame::Ping)) => StreamEvent::Ping,
                    Ok(Some(Frame::Pong)) => StreamEvent::Pong,
                    Ok(None) => break,
                    // Malformed framing cannot be resynchronized: close (RFC 3261 §18.3).
                    Err(_) => break 'read,
                };
                if net.send(NetEvent::Stream(id, ev)).await.is_err() {
                    return;
                }
            }
        }
        let _ = net.send(NetEvent::Stream(id, StreamEvent::Closed)).await;
    });
    NewConnection {
        id,
        transport,
        peer,
        writer,
        ping_sent,
        reader: reader.abort_handle(),
    }
}

/// Accepts connections on a TCP or TLS listener.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    tls: Option<tokio_rustls::TlsAcceptor>,
    net: mpsc::Sender<NetEvent>,
    next_id: Arc<AtomicU64>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if net.is_closed() {
                    return;
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let id = ConnectionId(next_id.fetch_add(1, Ordering::Relaxed));
        let net = net.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let nc = match tls {
                None => spawn_io(id, transport, peer, tcp, net.clone()),
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(s)) => spawn_io(id, transport, peer, s, net.clone()),
                        _ => return,
                    }
                }
            };
            let _ = net.send(NetEvent::Accepted(nc)).await;
        });
    }
}

/// Opens a connection to a target, reporting the result to the driver.
pub(crate) async fn connect(
    id: ConnectionId,
    key: (Transport, SocketAddr),
    server_name: Option<String>,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    net: mpsc::Sender<NetEvent>,
) {
    let (transport, addr) = key;
    let result = tokio::time::timeout(timeout, async {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        match transport {
            Transport::Tls => {
                let name = server_name.unwrap_or_else(|| addr.ip().to_string());
                let name = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let s = tls.connect(name, tcp).await?;
                Ok(spawn_io(id, transport, addr, s, net.clone()))
            }
            _ => Ok(spawn_io(id, transport, addr, tcp, net.clone())),
        }
    })
    .await
    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")));
    let _ = net.send(NetEvent::Connected { key, result }).await;
}
