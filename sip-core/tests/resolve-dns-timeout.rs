//! A DNS server that never answers (a UDP socket that reads and drops everything): the hickory
//! backend reports timeouts, and the resolution fails with an error naming them, in bounded
//! time; the failures are cached, so an immediate retry sends no query at all.
#![cfg(feature = "tokio")]
#![allow(clippy::disallowed_methods)] // driver-side test: real sockets and clock

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use tincan_sip::driver::dns::{HickoryBackend, HickoryConfig, resolve};
use tincan_sip::resolve::{Destination, DnsCache, DnsError, ResolveConfig, ResolveError};

#[tokio::test(flavor = "current_thread")]
async fn black_holed_dns_server_gives_timeouts_naming_each_record() {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
    sink.set_nonblocking(true)
        .expect("a non-blocking socket, to count the queries it holds");
    let mut cfg = HickoryConfig::default().with_server(sink.local_addr().unwrap());
    cfg.timeout = Duration::from_millis(200);
    cfg.attempts = 1;
    let backend = HickoryBackend::new(&cfg).expect("build the backend");
    let mut cache = DnsCache::default();
    let mut rng = rand_xorshift::XorShiftRng::seed_from_u64(1);
    let t0 = Instant::now();
    let err = resolve(
        Destination::parse("sip:alice@example.test;transport=udp").unwrap(),
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .unwrap_err();
    eprintln!("after {:?}: {err}", t0.elapsed());
    let ResolveError::NoServers { tried, .. } = &err else {
        panic!("unexpected error {err}");
    };
    // SRV, then A and AAAA of the domain; every one failed without an answer.
    assert_eq!(tried.0.len(), 3, "{err}");
    assert!(tried.0.iter().all(|l| l.answer.is_err()), "{err}");
    assert!(
        tried.0.iter().any(|l| l.answer == Err(DnsError::Timeout)),
        "at least the UDP attempts time out: {err}"
    );
    assert!(
        err.to_string().contains("SRV _sip._udp.example.test: "),
        "{err}"
    );
    // Every query reached the black hole (and waits in its receive buffer, unanswered).
    let queries = drain(&sink);
    eprintln!("{queries} queries reached the black-holed server");
    assert!(
        queries >= 3,
        "SRV, A and AAAA were asked: {queries} queries"
    );

    // The failures are cached briefly: an immediate retry asks nothing (so it does not wait
    // for the timeouts again) and fails the same way.
    let t1 = Instant::now();
    let again = resolve(
        Destination::parse("sip:alice@example.test;transport=udp").unwrap(),
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .unwrap_err();
    assert_eq!(again, err);
    eprintln!("cached retry took {:?}", t1.elapsed());
    assert_eq!(
        drain(&sink),
        0,
        "the retry asked the server again instead of using the cached failures"
    );
    drop(sink);
}

/// How many datagrams are waiting in `socket` (non-blocking); reads them all.
fn drain(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; 1500];
    let mut n = 0;
    loop {
        match socket.recv(&mut buf) {
            Ok(_) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return n,
            Err(e) => panic!("reading the black-holed server's socket: {e}"),
        }
    }
}
