//! Free loopback ports for peers, safe against tests running in parallel.
//!
//! Ports are picked at random from a range below the kernel's ephemeral range (so that an
//! outgoing connection of another program cannot take a port between the moment it is handed
//! out and the moment the peer binds it), checked by binding them, and then reserved twice:
//!
//! - in a process-wide set, so two threads of one test binary never get the same port;
//! - with an advisory lock on `$TMPDIR/tincan-interop-ports/<port>.lock`, held until the process
//!   exits, so two test binaries (or two engineers) running at the same time do not collide.
//!
//! A port is never handed out twice in one process.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lowest port handed out.
const RANGE_START: u16 = 20_000;
/// Highest port handed out, unless the kernel's ephemeral range starts lower.
const RANGE_END: u16 = 32_000;
/// How many random candidates are tried before giving up.
const ATTEMPTS: usize = 4_000;

/// Ports handed out by this process, with the lock file that reserves each one.
static RESERVED: Mutex<BTreeMap<u16, Option<File>>> = Mutex::new(BTreeMap::new());
/// Mixed into the random seed so that successive calls differ.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Which sockets a reserved port (or block of ports) must be free for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocols {
    /// UDP only.
    Udp,
    /// TCP only.
    Tcp,
    /// Both UDP and TCP (SIP servers listen on both).
    Both,
}

/// `127.0.0.1`.
pub const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// `::1`.
pub const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    free_port_block(&[V4], Protocols::Udp, 1)
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    free_port_block(&[V4], Protocols::Tcp, 1)
}

/// A port free for both UDP and TCP on 127.0.0.1 (a SIP listener).
pub fn free_port() -> u16 {
    free_port_block(&[V4], Protocols::Both, 1)
}

/// A free UDP port on ::1.
pub fn free_udp_port_v6() -> u16 {
    free_port_block(&[V6], Protocols::Udp, 1)
}

/// A free TCP port on ::1.
pub fn free_tcp_port_v6() -> u16 {
    free_port_block(&[V6], Protocols::Tcp, 1)
}

/// A port free for UDP and TCP on both 127.0.0.1 and ::1 (a dual-stack SIP listener).
pub fn free_port_dual_stack() -> u16 {
    free_port_block(&[V4, V6], Protocols::Both, 1)
}

/// Two consecutive free UDP ports on 127.0.0.1, the first one even: an RTP/RTCP pair
/// (RFC 3550 §11).
pub fn free_port_pair() -> (u16, u16) {
    let rtp = free_port_block(&[V4], Protocols::Udp, 2);
    (rtp, rtp + 1)
}

/// Two consecutive free UDP ports on ::1, the first one even.
pub fn free_port_pair_v6() -> (u16, u16) {
    let rtp = free_port_block(&[V6], Protocols::Udp, 2);
    (rtp, rtp + 1)
}

/// `count` consecutive ports, the first one even, free for `protocols` on every address of
/// `ips`; returns the first port. All of them are reserved.
///
/// # Panics
///
/// When no such block is found after thousands of attempts (the machine is out of ports, or
/// an address of `ips`, such as ::1, does not exist here).
pub fn free_port_block(ips: &[IpAddr], protocols: Protocols, count: u16) -> u16 {
    assert!(count > 0, "free_port_block: count must be at least 1");
    let end = range_end();
    let span = u64::from(end - RANGE_START - count);
    let mut reserved = RESERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..ATTEMPTS {
        let offset = (random() % span) & !1;
        let first = RANGE_START + u16::try_from(offset).expect("offset < span, which fits in u16");
        let ports = first..first + count;
        if ports.clone().any(|p| reserved.contains_key(&p)) {
            continue;
        }
        if !ports.clone().all(|p| bindable(ips, protocols, p)) {
            continue;
        }
        let mut locks = Vec::with_capacity(usize::from(count));
        for p in ports.clone() {
            match lock_port(p) {
                Some(lock) => locks.push(lock),
                None => break,
            }
        }
        if locks.len() != usize::from(count) {
            // Another process holds one of them; its locks are released with `locks`.
            continue;
        }
        for (p, lock) in ports.zip(locks) {
            reserved.insert(p, lock);
        }
        return first;
    }
    panic!(
        "no block of {count} free port(s) for {protocols:?} on {ips:?} in {RANGE_START}..{end} \
         after {ATTEMPTS} attempts"
    );
}

/// Upper end of the range: below the kernel's ephemeral ports.
fn range_end() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(u16::MAX);
    RANGE_END
        .min(ephemeral_start.saturating_sub(1))
        .max(RANGE_START + 1_000)
}

fn bindable(ips: &[IpAddr], protocols: Protocols, port: u16) -> bool {
    ips.iter().all(|&ip| {
        let udp = matches!(protocols, Protocols::Udp | Protocols::Both);
        let tcp = matches!(protocols, Protocols::Tcp | Protocols::Both);
        (!udp || UdpSocket::bind((ip, port)).is_ok())
            && (!tcp || TcpListener::bind((ip, port)).is_ok())
    })
}

/// Takes the cross-process lock of `port`. `Some(None)` when locking is not possible here
/// (no writable temp dir): the in-process set still protects this process's tests.
fn lock_port(port: u16) -> Option<Option<File>> {
    let dir = std::env::temp_dir().join("tincan-interop-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return Some(None);
    }
    let Ok(file) = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{port}.lock")))
    else {
        return Some(None);
    };
    match file.try_lock() {
        Ok(()) => Some(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => None,
        Err(std::fs::TryLockError::Error(_)) => Some(None),
    }
}

fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_are_unique_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..20).map(|_| free_port()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for p in h.join().expect("the thread does not panic") {
                assert!(seen.insert(p), "port {p} handed out twice");
            }
        }
    }

    #[test]
    fn pair_is_even_and_consecutive() {
        let (rtp, rtcp) = free_port_pair();
        assert_eq!(rtp % 2, 0);
        assert_eq!(rtcp, rtp + 1);
        assert!(UdpSocket::bind((V4, rtp)).is_ok());
    }

    #[test]
    fn block_ports_are_bindable() {
        let first = free_port_block(&[V4], Protocols::Both, 4);
        for p in first..first + 4 {
            assert!(UdpSocket::bind((V4, p)).is_ok());
            assert!(TcpListener::bind((V4, p)).is_ok());
        }
    }
}
