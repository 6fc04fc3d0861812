//! Interop: RFC 3263 resolution through the hickory backend against a real dnsmasq serving
//! NAPTR, SRV (two priorities), A and AAAA records on a free loopback port.
//!
//! dnsmasq (Debian `dnsmasq-base`) is started by the test and stopped by its PID (also on
//! panic, via Drop). Without the binary the test skips (`skip::skip`: a failure under
//! `CI=true`).
#![cfg(feature = "tokio")]
#![allow(clippy::disallowed_methods)] // driver-side test: real clock for process start-up

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use rand_xorshift::XorShiftRng;
use tincan_sip::driver::dns::{HickoryBackend, HickoryConfig, resolve};
use tincan_sip::resolve::{
    Destination, DnsCache, DnsError, DnsQuery, RecordType, ResolveConfig, ResolveError,
};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

/// A dnsmasq child process, killed (by PID) and reaped on drop.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_dnsmasq() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
}

/// A port free for both UDP and TCP on 127.0.0.1 (dnsmasq serves both).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        let port = udp
            .local_addr()
            .expect("bound socket has an address")
            .port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn start(bin: &Path) -> Dnsmasq {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dns/dnsmasq.conf");
    for attempt in 0..5 {
        let dir = std::env::temp_dir().join(format!(
            "tincan-resolve-dnsmasq-{}-{attempt}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create a temp dir");
        let port = free_port();
        let log = fs::File::create(dir.join("dnsmasq.log")).expect("create the log file");
        let child = Command::new(bin)
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!("--port={port}"))
            .arg("--listen-address=127.0.0.1")
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg("--log-facility=-")
            .arg("--log-queries")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dnsmasq");
        let mut d = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        // Wait (bounded) for "started" in the log, or for the process to die.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let log = fs::read_to_string(d.dir.join("dnsmasq.log")).unwrap_or_default();
            if log.contains("started, version") {
                eprintln!("dnsmasq pid {} on {}", d.child.id(), d.addr);
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                eprintln!("dnsmasq exited ({status}) on port {port}: {log}");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(d.child.kill());
    }
    panic!("dnsmasq did not start after 5 attempts");
}

fn summary(r: &tincan_sip::resolve::Resolved) -> Vec<String> {
    r.targets
        .iter()
        .map(|t| format!("{} {} p{}", t.transport, t.addr, t.priority))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn resolves_naptr_srv_and_addresses_from_dnsmasq() {
    let Some(bin) = find_dnsmasq() else {
        skip::skip(
            "dnsmasq not installed (Debian dnsmasq-base; run scripts/install-deps.sh --test)",
        );
        return;
    };
    let dns = start(&bin);
    let cfg = HickoryConfig::default().with_server(dns.addr);
    let backend = HickoryBackend::new(&cfg).expect("build the hickory backend");
    let mut cache = DnsCache::default();
    let mut rng = XorShiftRng::seed_from_u64(1);

    // NAPTR (TLS, TCP, UDP by order; the E2U record ignored) -> SRV priorities -> A/AAAA.
    let t0 = Instant::now();
    let dest = Destination::parse("sip:alice@example.test").unwrap();
    let r = resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .expect("example.test resolves");
    eprintln!("resolved in {:?}:\n{r}", t0.elapsed());
    assert_eq!(
        summary(&r),
        [
            "tls 127.0.0.1:5061 p10",
            "tls [::1]:5061 p10",
            "tls 127.0.0.2:5063 p20",
            "tcp 127.0.0.1:5060 p10",
            "tcp [::1]:5060 p10",
            "tcp 127.0.0.2:5062 p20",
            "udp 127.0.0.1:5060 p10",
            "udp [::1]:5060 p10",
            "udp 127.0.0.2:5062 p20",
        ]
    );
    assert_eq!(
        r.lookups[0].query,
        DnsQuery::new("example.test", RecordType::Naptr)
    );
    let naptr = r.lookups[0].answer.as_ref().expect("NAPTR answer");
    assert_eq!(
        naptr.len(),
        4,
        "all four NAPTR records come back, E2U included"
    );
    assert!(naptr.iter().all(|rec| rec.ttl > 0 && rec.ttl <= 60));

    // The answers are cached with dnsmasq's TTL (60 s).
    let hit = cache
        .get(
            Instant::now(),
            &DnsQuery::new("_sip._udp.example.test", RecordType::Srv),
        )
        .expect("SRV cached")
        .expect("positive answer");
    assert_eq!(hit.len(), 2);

    // transport=udp: SRV only, priority 10 before 20.
    let dest = Destination::parse("sip:alice@example.test;transport=udp").unwrap();
    let r = resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(
        summary(&r),
        [
            "udp 127.0.0.1:5060 p10",
            "udp [::1]:5060 p10",
            "udp 127.0.0.2:5062 p20"
        ]
    );

    // sips: only the SIPS+D2T branch.
    let dest = Destination::parse("sips:alice@example.test").unwrap();
    let r = resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .unwrap();
    assert!(r.targets.iter().all(|t| t.transport.as_str() == "tls"));
    assert_eq!(r.targets[0].host, "example.test");

    // No NAPTR (NXDOMAIN for that type under a local domain): SRV fallback per transport.
    let dest = Destination::parse("sip:bob@failover.test").unwrap();
    let r = resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(
        summary(&r),
        ["udp 127.0.0.3:5060 p10", "udp 127.0.0.2:5062 p20"]
    );

    // A name that does not exist: the error lists what was tried.
    let dest = Destination::parse("sip:nobody@missing.example.test").unwrap();
    let err = resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    .unwrap_err();
    eprintln!("expected error: {err}");
    let ResolveError::NoServers { tried, .. } = &err else {
        panic!("unexpected error {err}");
    };
    assert!(tried.0.iter().any(|l| l.answer == Err(DnsError::NxDomain)));
    assert!(
        err.to_string()
            .contains("NAPTR missing.example.test: NXDOMAIN"),
        "{err}"
    );

    let log = fs::read_to_string(dns.dir.join("dnsmasq.log")).unwrap_or_default();
    assert!(
        log.contains("query[NAPTR] example.test"),
        "dnsmasq saw our queries: {log}"
    );
}
