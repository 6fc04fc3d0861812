//! Smoke tests of the dnsmasq launcher: declared NAPTR/SRV/A/AAAA records are served on
//! 127.0.0.1 and ::1 (UDP and TCP), nothing else is answered.

use std::net::{Ipv4Addr, Ipv6Addr};

use tincan_interop_tests::{DnsRecords, Dnsmasq, require_peers};

#[test]
fn lab_zone_answers_srv_naptr_a_and_aaaa() {
    if !require_peers(&["dnsmasq", "dig"]) {
        return;
    }
    let dns = Dnsmasq::start(&DnsRecords::example_test(15060, Some(15062), 15061))
        .expect("dnsmasq starts");

    let mut srv = dns.dig("SRV", "_sip._udp.example.test").expect("dig runs");
    srv.sort();
    assert_eq!(
        srv,
        [
            "10 100 15060 sip1.example.test.",
            "20 100 15062 sip2.example.test."
        ]
    );
    let naptr = dns.dig("NAPTR", "example.test").expect("dig runs");
    assert_eq!(naptr.len(), 3, "{naptr:?}");
    assert!(
        naptr.contains(&r#"30 10 "S" "SIP+D2U" "" _sip._udp.example.test."#.to_owned()),
        "{naptr:?}"
    );
    assert_eq!(
        dns.dig("A", "sip2.example.test").expect("dig runs"),
        ["127.0.0.2"]
    );
    assert_eq!(
        dns.dig("AAAA", "sip1.example.test").expect("dig runs"),
        ["::1"]
    );
    // TCP and IPv6 too
    let tcp_v6 = dns
        .dig_raw(&["+tcp", "@::1", "SRV", "_sips._tcp.example.test", "+short"])
        .expect("dig runs");
    assert_eq!(tcp_v6.trim(), "10 100 15061 sip1.example.test.");

    assert_eq!(
        dns.dig_status("A", "nonexist.example.test")
            .expect("dig runs"),
        "NXDOMAIN"
    );
    assert_eq!(
        dns.dig_status("A", "debian.org").expect("dig runs"),
        "REFUSED"
    );
}

#[test]
fn custom_records_for_a_failover_domain() {
    if !require_peers(&["dnsmasq", "dig"]) {
        return;
    }
    let records = DnsRecords::new()
        .a("dead.failover.test", Ipv4Addr::new(127, 0, 0, 3))
        .a("alive.failover.test", Ipv4Addr::new(127, 0, 0, 2))
        .aaaa("alive.failover.test", Ipv6Addr::LOCALHOST)
        .naptr(
            "failover.test",
            10,
            10,
            "SIP+D2U",
            "_sip._udp.failover.test",
        )
        .srv(
            "_sip._udp.failover.test",
            "dead.failover.test",
            5060,
            10,
            100,
        )
        .srv(
            "_sip._udp.failover.test",
            "alive.failover.test",
            5062,
            20,
            100,
        );
    let dns = Dnsmasq::start(&records).expect("dnsmasq starts");
    let mut a = dns.dig("A", "alive.failover.test").expect("dig runs");
    a.extend(dns.dig("AAAA", "alive.failover.test").expect("dig runs"));
    assert_eq!(a, ["127.0.0.2", "::1"]);
    assert_eq!(
        dns.dig("SRV", "_sip._udp.failover.test")
            .expect("dig runs")
            .len(),
        2
    );
    assert_eq!(
        dns.dig("NAPTR", "failover.test").expect("dig runs"),
        [r#"10 10 "S" "SIP+D2U" "" _sip._udp.failover.test."#]
    );
    // the query log is there for tests that check what a client asked
    let mut dns = dns;
    dns.peer()
        .wait_for_log(
            r"query\[SRV\] _sip\._udp\.failover\.test from 127\.0\.0\.1",
            std::time::Duration::from_secs(2),
        )
        .expect("dnsmasq logs queries");
}
