//! Binding the driver's sockets. An IPv6 socket next to an IPv4 one of the same driver is
//! IPv6-only (`IPV6_V6ONLY`), so both families can listen on the same port (5060 for a
//! `tincan listen`): by default Linux gives `[::]:5060` the IPv4 port too, and the second bind
//! fails. A driver with only an IPv6 socket keeps the system's default (dual-stack).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};

/// A UDP socket bound to `addr`, IPv6-only when `v6_only` (and `addr` is IPv6).
pub(crate) async fn udp(addr: SocketAddr, v6_only: bool) -> io::Result<UdpSocket> {
    #[cfg(target_os = "linux")]
    if v6_only && addr.is_ipv6() {
        let sock = std::net::UdpSocket::from(v6_only_socket(addr, false)?);
        sock.set_nonblocking(true)?;
        return UdpSocket::from_std(sock);
    }
    let _ = v6_only;
    UdpSocket::bind(addr).await
}

/// A TCP listener bound to `addr`, IPv6-only when `v6_only` (and `addr` is IPv6).
pub(crate) async fn tcp(addr: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    #[cfg(target_os = "linux")]
    if v6_only && addr.is_ipv6() {
        let listener = std::net::TcpListener::from(v6_only_socket(addr, true)?);
        listener.set_nonblocking(true)?;
        return TcpListener::from_std(listener);
    }
    let _ = v6_only;
    TcpListener::bind(addr).await
}

/// An IPv6-only socket bound to `addr` (listening, for a stream socket).
#[cfg(target_os = "linux")]
fn v6_only_socket(addr: SocketAddr, stream: bool) -> io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn6, bind, listen, setsockopt, socket,
        sockopt,
    };
    let SocketAddr::V6(v6) = addr else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let kind = if stream {
        SockType::Stream
    } else {
        SockType::Datagram
    };
    let fd = socket(AddressFamily::Inet6, kind, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    if stream {
        // As tokio's TcpListener::bind: a restarted listener need not wait out TIME_WAIT.
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn6::from(v6))?;
    if stream {
        listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    }
    Ok(fd)
}
