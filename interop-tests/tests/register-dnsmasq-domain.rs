//! `tincan register` through a domain served by a real dnsmasq: NAPTR (SIP+D2U) -> SRV with
//! two priorities -> A. The priority-10 target is refused (a closed UDP port: ICMP port
//! unreachable) or black-holed (a UDP socket that reads and never answers); the priority-20
//! target is kamailio, where the account registers. Prints the time to fail over.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use tincan_interop_tests::{DnsRecords, Dnsmasq, Kamailio, WorkDir, require_peers, tincan_binary};

/// The test zone: `example.test` (kamailio's realm) with the priority-10 SRV target at
/// `dead.example.test:dead_port` and the priority-20 one at kamailio's secondary address.
fn zone(dead_port: u16, kamailio: SocketAddr) -> DnsRecords {
    DnsRecords::new()
        .naptr("example.test", 10, 10, "SIP+D2U", "_sip._udp.example.test")
        .srv(
            "_sip._udp.example.test",
            "dead.example.test",
            dead_port,
            10,
            100,
        )
        .srv(
            "_sip._udp.example.test",
            "sip2.example.test",
            kamailio.port(),
            20,
            100,
        )
        .a("dead.example.test", Ipv4Addr::LOCALHOST)
        .a(
            "sip2.example.test",
            match kamailio.ip() {
                std::net::IpAddr::V4(v4) => v4,
                std::net::IpAddr::V6(_) => unreachable!("the secondary address is IPv4"),
            },
        )
}

/// Runs `tincan register --once --json --dns-server ... --config ...`; returns the exit code,
/// the events and the wall time.
fn register(name: &str, dns: SocketAddr) -> (i32, Vec<serde_json::Value>, String, Duration) {
    let dir = WorkDir::new(name).expect("scratch dir");
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"uat\"\n\
         aor = \"sip:uat@example.test\"\npassword = \"uatpw\"\nexpires = 300\n",
    )
    .unwrap();
    let bin = tincan_binary();
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["register", "--once", "--json", "--wait", "20"])
        .arg("--dns-server")
        .arg(dns.to_string())
        .arg("--config")
        .arg(&path)
        .output()
        .expect("tincan runs");
    let took = started.elapsed();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        events,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    )
}

/// Checks the run: the dead target failed first, then registered at kamailio; returns the
/// milliseconds spent on the dead target.
fn check(
    label: &str,
    run: (i32, Vec<serde_json::Value>, String, Duration),
    dead: SocketAddr,
    kamailio: SocketAddr,
) -> u64 {
    let (code, events, stderr, took) = run;
    assert_eq!(code, 0, "{label}: {events:?} {stderr}");
    let failed = events
        .iter()
        .find(|e| e["event"] == "failed")
        .unwrap_or_else(|| panic!("{label}: the priority-10 target fails: {events:?}"));
    assert_eq!(failed["registrar"], format!("udp:{dead}"), "{label}");
    let registered = events
        .iter()
        .find(|e| e["event"] == "registered")
        .unwrap_or_else(|| panic!("{label}: registered: {events:?}"));
    assert_eq!(
        registered["registrar"],
        format!("udp:{kamailio}"),
        "{label}"
    );
    let failover_ms = failed["elapsed_ms"].as_u64().unwrap();
    println!(
        "{label}: priority-10 target given up after {failover_ms} ms, registered at the \
         priority-20 target in {} ms more; whole run (DNS, REGISTER, un-REGISTER) {} ms",
        registered["elapsed_ms"],
        took.as_millis()
    );
    failover_ms
}

#[test]
fn registers_through_the_second_srv_priority_when_the_first_is_refused_or_black_holed() {
    if !require_peers(&["kamailio", "kamcmd", "dnsmasq"]) {
        return;
    }
    let kamailio = Kamailio::builder()
        .ipv6(false)
        .start()
        .expect("kamailio starts");
    let backup = kamailio.secondary_addr().expect("secondary listener");

    // Refused: nothing listens on the priority-10 port.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dns = Dnsmasq::start(&zone(closed.port(), backup)).expect("dnsmasq starts");
    let refused_ms = check(
        "refused (ICMP port unreachable)",
        register("dns-refused", dns.addr()),
        closed,
        backup,
    );
    // A transport error, not the 4 s per-target budget.
    assert!(refused_ms < 4_000, "{refused_ms} ms");
    drop(dns);

    // Black-holed: a socket that reads and never answers.
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let dns = Dnsmasq::start(&zone(hole_addr.port(), backup)).expect("dnsmasq starts");
    let hole_ms = check(
        "black-holed",
        register("dns-blackhole", dns.addr()),
        hole_addr,
        backup,
    );
    // The per-target budget (4 s), not Timer F (32 s). (The whole run is ~4 s longer: on
    // exit the driver gives the abandoned REGISTER to the hole its shutdown grace.)
    assert!(hole_ms < 10_000, "{hole_ms} ms");
    drop(hole);
}
