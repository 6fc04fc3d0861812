//! Stream connections (TCP, TLS): a reader task that only frames, a writer task that only
//! writes, both ending when the connection does.
//!
//! The limits that keep a listener usable under attack (issue 19) live here too:
//! - at most [`Limits::max_connections`] accepted connections at once (a semaphore permit per
//!   connection, held until its socket is closed, TLS handshakes in progress included). When
//!   they are all taken, a new connection takes the place of the slowest one: the accepted
//!   connection in the middle of a message (or still owing its first) whose deadline comes
//!   first, a connection that would be closed soonest anyway. When none is slow, the new
//!   connection is refused (closed at once): connections that work (idle between messages,
//!   as flows and calls keep them) are never evicted for a newcomer, so that a flood of new
//!   connections cannot tear them down (kamailio's `tcp_max_connections` refuses too);
//! - a message must arrive whole within [`Limits::message_timeout`] of its first byte, and an
//!   accepted connection must bring its first frame within that time of being accepted
//!   (slowloris): a connection between messages, with nothing partial buffered, is idle, not
//!   slow, and has no deadline here (CRLF keep-alives of RFC 5626 flows keep working);
//! - a message we send must be written whole within the same time (a peer that never reads
//!   would otherwise hold the writer and the socket for ever);
//! - a TLS handshake must finish within [`Limits::handshake_timeout`];
//! - `accept` failing (out of file descriptors: `EMFILE`, `ENFILE`) backs off briefly and
//!   goes on; the listener never ends while the driver lives.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::transports::NetEvent;
use crate::message::framing::{Frame, StreamFramer};
use crate::transport::{ConnectionId, Transport};

/// How long a new connection waits for the place of a slow connection evicted for it.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// How long `accept` waits before trying again after an error (out of file descriptors, a
/// connection reset before it was accepted): the listener stays readable while the error
/// lasts, so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a connection's reader (or writer) reports.
pub(crate) enum StreamEvent {
    Message(Bytes),
    Ping,
    Pong,
    /// The reader ended; nothing more will be read.
    ReadEnded(ReadEnd),
    /// Writing failed: the connection is dead both ways.
    WriteFailed,
}

/// Why a connection's reader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// The peer closed its side (FIN; maybe only a half-close, `shutdown(SHUT_WR)`): what we
    /// owe it can still be written.
    Eof,
    /// Bytes that cannot be framed followed (RFC 3261 §18.3: the stream cannot be
    /// resynchronized). The whole messages before them were delivered and may be answered.
    Malformed,
    /// A message did not arrive whole within the message deadline (or a new connection sent
    /// nothing in time).
    Timeout,
    /// A read error (reset).
    Error,
}

/// The limits of stream connections (see the [module documentation](self)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub message_timeout: Duration,
    pub handshake_timeout: Duration,
}

/// The cap on accepted connections, shared by every listener.
#[derive(Clone)]
pub(crate) struct Cap {
    pub limits: Limits,
    /// `limits.max_connections` permits; an accepted connection holds one until its socket
    /// is closed.
    pub permits: Arc<Semaphore>,
    /// Connections refused because no permit was left.
    pub refused: Arc<AtomicU64>,
    /// What [`NewConnection::slow_since`] counts from.
    pub epoch: Instant,
}

/// Milliseconds from `epoch` to `at`, plus 1 (0 means "not slow").
fn stamp(epoch: Instant, at: Option<Instant>) -> u64 {
    at.map_or(0, |at| {
        u64::try_from(at.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX - 1) + 1
    })
}

/// What bounds a connection's reader and writer.
struct IoLimits {
    message_timeout: Duration,
    /// The deadline of an accepted connection's first frame.
    first_frame_by: Option<Instant>,
    /// Its place under the connection cap, given back when both tasks have ended (the
    /// socket is closed then).
    permit: Option<OwnedSemaphorePermit>,
    /// What `slow_since` counts from.
    epoch: Instant,
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
    /// The deadline of the message being received (or of an accepted connection's first
    /// frame) in milliseconds from the cap's epoch, plus 1; 0 when none is under way. Kept
    /// by the reader; the connection with the lowest non-zero value is the one a new
    /// connection replaces when the cap is reached.
    pub slow_since: Arc<AtomicU64>,
    /// Accepted (it holds a place under the cap), not opened by us.
    pub accepted: bool,
}

/// Starts the reader and writer tasks of a connection.
fn spawn_io<S>(
    id: ConnectionId,
    transport: Transport,
    peer: SocketAddr,
    stream: S,
    net: mpsc::Sender<NetEvent>,
    limits: IoLimits,
) -> NewConnection
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let IoLimits {
        message_timeout,
        first_frame_by,
        permit,
        epoch,
    } = limits;
    let accepted = permit.is_some();
    let slow_since = Arc::new(AtomicU64::new(stamp(epoch, first_frame_by)));
    let slow = Arc::clone(&slow_since);
    let permit = permit.map(Arc::new);
    let (writer, mut writes) = mpsc::channel::<Bytes>(256);
    let writer_net = net.clone();
    let writer_permit = permit.clone();
    tokio::spawn(async move {
        let _permit = writer_permit;
        while let Some(b) = writes.recv().await {
            // A peer that does not read what we write (its window stays shut) would hold the
            // writer, the socket and its place under the cap for ever: a message must be
            // written whole within the message deadline too.
            let written = tokio::time::timeout(message_timeout, wr.write_all(&b)).await;
            if !matches!(written, Ok(Ok(()))) {
                let _ = writer_net
                    .send(NetEvent::Stream(id, StreamEvent::WriteFailed))
                    .await;
                return;
            }
        }
        let _ = tokio::time::timeout(message_timeout, wr.shutdown()).await;
    });
    let ping_sent = Arc::new(AtomicBool::new(false));
    let pinged = Arc::clone(&ping_sent);
    let reader = tokio::spawn(async move {
        let _permit = permit;
        let mut framer = StreamFramer::default();
        let mut buf = vec![0u8; 16 * 1024];
        // When the message being received (or the first frame) must be whole.
        let mut deadline = first_frame_by;
        // An accepted connection's first frame is due by then, whatever came before it (line
        // ends are no frame).
        let mut first_frame_by = first_frame_by;
        let end = 'read: loop {
            let read = rd.read(&mut buf);
            let result = match deadline {
                Some(at) => match tokio::time::timeout_at(at, read).await {
                    Ok(r) => r,
                    Err(_) => break ReadEnd::Timeout,
                },
                None => read.await,
            };
            let n = match result {
                Ok(0) => break ReadEnd::Eof,
                Err(_) => break ReadEnd::Error,
                Ok(n) => n,
            };
            if pinged.swap(false, Ordering::AcqRel) {
                framer.ping_sent();
            }
            let was_empty = framer.only_line_ends();
            framer.push(&buf[..n]);
            let mut framed = false;
            loop {
                let ev = match framer.next_frame() {
                    Ok(Some(Frame::Message(m))) => StreamEvent::Message(m),
                    Ok(Some(Frame::Ping)) => StreamEvent::Ping,
                    Ok(Some(Frame::Pong)) => StreamEvent::Pong,
                    Ok(None) => break,
                    // Malformed framing cannot be resynchronized (RFC 3261 §18.3).
                    Err(_) => break 'read ReadEnd::Malformed,
                };
                framed = true;
                if net.send(NetEvent::Stream(id, ev)).await.is_err() {
                    return;
                }
            }
            let now = Instant::now();
            if framed {
                first_frame_by = None;
            }
            deadline = if framer.only_line_ends() {
                // Nothing, or line ends only (a keep-alive in progress, or a lone CRLF some
                // clients send): idle, not slow; but a new connection still owes its first
                // frame.
                first_frame_by
            } else if framed {
                // A new message began after the ones just framed: its clock starts now.
                Some(now + message_timeout)
            } else if was_empty {
                // A message began with these bytes (no later than the first frame's deadline
                // of a new connection).
                Some(first_frame_by.map_or(now + message_timeout, |d| d.min(now + message_timeout)))
            } else {
                deadline.or(Some(now + message_timeout))
            };
            slow.store(stamp(epoch, deadline), Ordering::Relaxed);
        };
        let _ = net
            .send(NetEvent::Stream(id, StreamEvent::ReadEnded(end)))
            .await;
    });
    NewConnection {
        id,
        transport,
        peer,
        writer,
        ping_sent,
        reader: reader.abort_handle(),
        slow_since,
        accepted,
    }
}

/// Accepts connections on a TCP or TLS listener, at most `cap.limits.max_connections` of
/// them open at once (all listeners together).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    tls: Option<tokio_rustls::TlsAcceptor>,
    net: mpsc::Sender<NetEvent>,
    next_id: Arc<AtomicU64>,
    cap: Cap,
) {
    let limits = cap.limits;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors (EMFILE, ENFILE) or a connection gone before it was
                // accepted: the pending connection stays in the backlog until fds free up.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                if net.is_closed() {
                    return;
                }
                continue;
            }
        };
        let permit = match Arc::clone(&cap.permits).try_acquire_owned() {
            Ok(permit) => Some(permit),
            // At the cap: the slowest connection makes room, if there is one.
            Err(_) => evict_for_new(&cap, &net).await,
        };
        let Some(permit) = permit else {
            // Nobody slow: the newest connection is refused (closed at once).
            cap.refused.fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let id = ConnectionId(next_id.fetch_add(1, Ordering::Relaxed));
        let net = net.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let accepted = Instant::now();
            let nc = match tls {
                None => spawn_io(
                    id,
                    transport,
                    peer,
                    tcp,
                    net.clone(),
                    IoLimits {
                        message_timeout: limits.message_timeout,
                        first_frame_by: Some(accepted + limits.message_timeout),
                        permit: Some(permit),
                        epoch: cap.epoch,
                    },
                ),
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(s)) => spawn_io(
                            id,
                            transport,
                            peer,
                            s,
                            net.clone(),
                            IoLimits {
                                message_timeout: limits.message_timeout,
                                first_frame_by: Some(Instant::now() + limits.message_timeout),
                                permit: Some(permit),
                                epoch: cap.epoch,
                            },
                        ),
                        // A handshake that failed or took too long: the socket (and its
                        // permit) are dropped here.
                        _ => return,
                    }
                }
            };
            let _ = net.send(NetEvent::Accepted(nc)).await;
        });
    }
}

/// At the cap: asks the driver to close the slowest accepted connection and waits for its
/// place. `None` when no connection was slow (or its place did not come free in time).
async fn evict_for_new(cap: &Cap, net: &mpsc::Sender<NetEvent>) -> Option<OwnedSemaphorePermit> {
    let (reply, evicted) = tokio::sync::oneshot::channel();
    net.send(NetEvent::CapReached(reply)).await.ok()?;
    let evicted = tokio::time::timeout(EVICTION_WAIT, evicted).await;
    if !matches!(evicted, Ok(Ok(true))) {
        return None;
    }
    tokio::time::timeout(EVICTION_WAIT, Arc::clone(&cap.permits).acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Opens a connection to a target, reporting the result to the driver.
pub(crate) async fn connect(
    id: ConnectionId,
    key: (Transport, SocketAddr),
    server_name: Option<String>,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    message_timeout: Duration,
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
                Ok(spawn_io(
                    id,
                    transport,
                    addr,
                    s,
                    net.clone(),
                    IoLimits {
                        message_timeout,
                        first_frame_by: None,
                        permit: None,
                        epoch: Instant::now(),
                    },
                ))
            }
            _ => Ok(spawn_io(
                id,
                transport,
                addr,
                tcp,
                net.clone(),
                IoLimits {
                    message_timeout,
                    first_frame_by: None,
                    permit: None,
                    epoch: Instant::now(),
                },
            )),
        }
    })
    .await
    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")));
    let _ = net.send(NetEvent::Connected { key, result }).await;
}
