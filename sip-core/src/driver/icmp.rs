//! ICMP errors on the driver's unconnected UDP sockets.
//!
//! Linux reports an ICMP port or host unreachable to an unconnected UDP socket only when
//! `IP_RECVERR` / `IPV6_RECVERR` is set; the error is then queued on the socket's error queue
//! with the destination of the datagram that caused it. The driver sets the option at bind
//! time and drains the queue when a receive fails, so a refused UDP target fails its
//! transactions in milliseconds instead of after the per-target budget. Elsewhere these are
//! no-ops (the target then costs its budget, as before).
//!
//! The kernel also hands a pending ICMP error to the next `sendto` on the socket, whatever
//! its destination, and that datagram is then not sent. So every send goes through
//! [`send_to`], which reads the queued errors and sends again: a request to a live peer is
//! never lost to an earlier one to a dead server (a BYE straight to the peer's Contact just
//! after a REGISTER to the registrar that died).

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// Whether `e` (from a send or receive on an unconnected UDP socket) is an ICMP error
/// reported for an earlier datagram: port, host or network unreachable.
pub(crate) fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Sends `payload` to `dest` now (`WouldBlock` when the socket buffer is full). An ICMP
/// error of an earlier datagram that the send reports instead is read off the socket (its
/// destinations are added to `unreachable`) and the send is tried again, a few times at most.
pub(crate) fn send_to(
    sock: &UdpSocket,
    payload: &[u8],
    dest: SocketAddr,
    unreachable: &mut Vec<SocketAddr>,
) -> io::Result<usize> {
    let mut result = sock.try_send_to(payload, dest);
    for _ in 0..4 {
        match &result {
            Err(e) if is_icmp_error(e) => {
                unreachable.extend(drain(sock));
                result = sock.try_send_to(payload, dest);
            }
            _ => break,
        }
    }
    result
}

/// Asks the kernel to queue ICMP errors on `sock` (best effort).
#[cfg(target_os = "linux")]
pub(crate) fn enable(sock: &UdpSocket, ipv6: bool) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = if ipv6 {
        setsockopt(sock, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(sock, sockopt::Ipv4RecvErr, &true)
    };
}

/// The destinations reported unreachable by the ICMP errors queued on `sock` (drains the
/// queue without blocking).
#[cfg(target_os = "linux")]
pub(crate) fn drain(sock: &UdpSocket) -> Vec<SocketAddr> {
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};

    /// `SO_EE_ORIGIN_ICMP` and `SO_EE_ORIGIN_ICMP6` (linux/errqueue.h).
    const ORIGIN_ICMP: u8 = 2;
    const ORIGIN_ICMP6: u8 = 3;

    let mut out = Vec::new();
    // Bounded: the queue holds at most what the socket buffer allows.
    for _ in 0..64 {
        let mut data = [0u8; 512];
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let Ok(msg) =
            recvmsg::<SockaddrStorage>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)
        else {
            break;
        };
        let icmp = msg.cmsgs().into_iter().flatten().any(|c| match c {
            ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => {
                // Unreachable port, host or network; not "fragmentation needed" (EMSGSIZE).
                matches!(e.ee_origin, ORIGIN_ICMP | ORIGIN_ICMP6)
                    && [
                        nix::libc::ECONNREFUSED,
                        nix::libc::EHOSTUNREACH,
                        nix::libc::ENETUNREACH,
                    ]
                    .contains(&(e.ee_errno as i32))
            }
            _ => false,
        });
        // For ICMP errors the address is the destination of the datagram that failed.
        let dest = msg.address.and_then(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(SocketAddr::V4((*v4).into()))
            } else {
                a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
            }
        });
        if icmp && let Some(dest) = dest {
            out.push(dest);
        }
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable(_sock: &UdpSocket, _ipv6: bool) {}

#[cfg(not(target_os = "linux"))]
pub(crate) fn drain(_sock: &UdpSocket) -> Vec<SocketAddr> {
    Vec::new()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{Duration, Instant};

    use crate::driver::{Driver, DriverConfig, TxError};
    use crate::message::{HeaderName, Method, RequestBuilder, Uri};
    use crate::transport::{Target, Transport};

    /// A request to a closed UDP port on loopback fails with a transport error as soon as
    /// the ICMP port unreachable comes back, not after Timer F.
    #[tokio::test]
    async fn a_refused_udp_target_fails_fast() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let (handle, _incoming) = Driver::start(DriverConfig::udp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let text = format!("sip:bob@{addr}");
        let uri = Uri::parse(&text).unwrap();
        let options = RequestBuilder::new(Method::Options, &uri)
            .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=x1")
            .header(HeaderName::To, "<sip:bob@127.0.0.1>")
            .call_id(&handle.new_call_id())
            .cseq(1)
            .build();
        let started = Instant::now();
        let mut tx = handle
            .request(options, Target::new(Transport::Udp, addr))
            .await
            .unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), tx.final_response())
            .await
            .expect("a transport error, not a wait for Timer F (32 s)");
        assert_eq!(result.unwrap_err(), TxError::TransportError);
        eprintln!("refused UDP target failed after {:?}", started.elapsed());
        handle.shutdown().await;
    }

    fn options(
        handle: &crate::driver::Handle,
        to: std::net::SocketAddr,
    ) -> crate::message::Message {
        let text = format!("sip:bob@{to}");
        let uri = Uri::parse(&text).unwrap();
        RequestBuilder::new(Method::Options, &uri)
            .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=x1")
            .header(HeaderName::To, "<sip:bob@127.0.0.1>")
            .call_id(&handle.new_call_id())
            .cseq(1)
            .build()
    }

    /// A request to a dead server and one to a live peer, sent together. Linux hands the
    /// dead server's ICMP error to the next `sendto` on the socket, whatever its destination,
    /// and drops that datagram: the request to the live peer must still go out (a BYE
    /// straight to the peer's Contact was lost this way, sent just after a REGISTER to the
    /// registrar that had died), and the request to the dead server must still fail fast.
    #[tokio::test]
    async fn an_icmp_error_does_not_take_the_next_datagram_with_it() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let live = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        live.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (handle, _incoming) = Driver::start(DriverConfig::udp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        // Both at once: the driver sends the second before its reader can see the ICMP error
        // of the first (on a busy machine the reader loses that race now and then).
        let started = Instant::now();
        let live_addr = live.local_addr().unwrap();
        let (to_dead, to_live) = tokio::join!(
            handle.request(options(&handle, dead), Target::new(Transport::Udp, dead)),
            handle.request(
                options(&handle, live_addr),
                Target::new(Transport::Udp, live_addr)
            ),
        );
        let (mut to_dead, mut to_live) = (to_dead.unwrap(), to_live.unwrap());

        let result = tokio::time::timeout(Duration::from_secs(2), to_dead.final_response())
            .await
            .expect(
                "the dead server's ICMP error fails its request without waiting for a datagram",
            );
        assert_eq!(result.unwrap_err(), TxError::TransportError);
        eprintln!(
            "the dead server's request failed after {:?}",
            started.elapsed()
        );
        let live = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 2048];
            live.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec())
        })
        .await
        .unwrap()
        .expect("the live peer's request was sent");
        eprintln!("live got it after {:?}", started.elapsed());
        assert!(live.starts_with(b"OPTIONS sip:bob@"), "{live:?}");
        // ... and its transaction did not fail: it waits for the peer's answer
        let live_result =
            tokio::time::timeout(Duration::from_millis(100), to_live.final_response()).await;
        assert!(live_result.is_err(), "{live_result:?}");
        handle.shutdown().await;
    }
}
