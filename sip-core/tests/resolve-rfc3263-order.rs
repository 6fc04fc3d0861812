//! RFC 3263 §4 ordering through the sans-IO `Resolution` with a fake DNS: NAPTR -> SRV ->
//! A/AAAA, the shortcuts, the fallbacks and the errors.

#[path = "resolve-common/mod.rs"]
mod common;

use common::{FakeDns, rng, run, summary};
use tincan_sip::resolve::{
    AddressFamily, Destination, DnsError, RecordType, Resolution, ResolveConfig, ResolveError,
    Transport,
};

fn resolve(dns: &FakeDns, uri: &str) -> Result<tincan_sip::resolve::Resolved, ResolveError> {
    let dest = Destination::parse(uri).expect("test URI");
    run(
        Resolution::new(dest, ResolveConfig::default(), &mut rng(1)),
        dns,
    )
}

fn example() -> FakeDns {
    let mut d = FakeDns::new();
    d.naptr(
        "example.com",
        30,
        10,
        "S",
        "SIP+D2U",
        "_sip._udp.example.com",
    )
    .naptr(
        "example.com",
        10,
        20,
        "s",
        "SIP+D2T",
        "_sip._tcp.example.com.",
    )
    .naptr(
        "example.com",
        10,
        10,
        "S",
        "SIPS+D2T",
        "_sips._tcp.example.com",
    )
    .naptr(
        "example.com",
        5,
        10,
        "S",
        "SIP+D2S",
        "_sip._sctp.example.com",
    )
    .naptr("example.com", 5, 10, "U", "E2U+sip", "!^.*$!sip:x@y!")
    .naptr("example.com", 5, 10, "A", "SIP+D2U", "sip9.example.com")
    .srv("_sips._tcp.example.com", 10, 0, 5061, "sip1.example.com")
    .srv("_sip._tcp.example.com", 20, 0, 5060, "sip2.example.com")
    .srv("_sip._tcp.example.com", 10, 0, 5060, "sip1.example.com")
    .srv("_sip._udp.example.com", 10, 0, 5060, "sip1.example.com")
    .a("sip1.example.com", [192, 0, 2, 1])
    .aaaa("sip1.example.com", "2001:db8::1")
    .a("sip2.example.com", [192, 0, 2, 2]);
    d.set("sip2.example.com", RecordType::Aaaa, Ok(vec![]));
    d
}

#[test]
fn naptr_order_then_preference_then_srv_priority_then_addresses() {
    let dns = example();
    let r = resolve(&dns, "sip:alice@example.com").unwrap();
    assert_eq!(
        summary(&r),
        [
            "tls 192.0.2.1:5061",
            "tls [2001:db8::1]:5061",
            "tcp 192.0.2.1:5060",
            "tcp [2001:db8::1]:5060",
            "tcp 192.0.2.2:5060",
            "udp 192.0.2.1:5060",
            "udp [2001:db8::1]:5060",
        ]
    );
    let t = &r.targets[4];
    assert_eq!((t.priority, t.weight), (20, 0));
    assert_eq!(
        t.host, "example.com",
        "TLS identity is the URI domain (RFC 5922)"
    );
    let srv = t.source.srv.as_ref().unwrap();
    assert_eq!(
        (srv.name.as_str(), srv.target.as_str()),
        ("_sip._tcp.example.com", "sip2.example.com")
    );
    assert_eq!(t.source.naptr.as_ref().unwrap().service, "SIP+D2T");
    // One NAPTR question, then the SRV questions of the usable services, then addresses.
    let asked = dns.asked();
    assert_eq!(asked[0], "NAPTR example.com");
    assert!(
        !asked
            .iter()
            .any(|q| q.contains("sctp") || q.contains("sip9")),
        "{asked:?}"
    );
    // The chain is kept for display.
    let shown = r.to_string();
    assert!(shown.contains("NAPTR 10 10 \"S\" \"SIPS+D2T\""), "{shown}");
    assert!(
        shown.contains("1. tls 192.0.2.1:5061 priority 10 weight 0"),
        "{shown}"
    );
}

#[test]
fn sips_uses_only_sips_d2t() {
    let dns = example();
    let r = resolve(&dns, "sips:alice@example.com").unwrap();
    assert_eq!(
        summary(&r),
        ["tls 192.0.2.1:5061", "tls [2001:db8::1]:5061"]
    );
}

#[test]
fn ipv6_first_and_ipv4_only_preferences() {
    let dns = example();
    let dest = Destination::parse("sip:example.com;transport=udp").unwrap();
    let cfg = ResolveConfig::default().with_family(AddressFamily::Ipv6First);
    let r = run(Resolution::new(dest.clone(), cfg, &mut rng(1)), &dns).unwrap();
    assert_eq!(
        summary(&r),
        ["udp [2001:db8::1]:5060", "udp 192.0.2.1:5060"]
    );
    let cfg = ResolveConfig::default().with_family(AddressFamily::Ipv4Only);
    let r = run(Resolution::new(dest, cfg, &mut rng(1)), &dns).unwrap();
    assert_eq!(summary(&r), ["udp 192.0.2.1:5060"]);
}

#[test]
fn without_naptr_every_supported_transport_is_tried_by_srv() {
    let mut dns = FakeDns::new();
    dns.set("plain.test", RecordType::Naptr, Ok(vec![]))
        .srv("_sip._tcp.plain.test", 10, 0, 5070, "a.plain.test")
        .srv("_sip._udp.plain.test", 10, 0, 5080, "a.plain.test")
        .a("a.plain.test", [192, 0, 2, 9]);
    let r = resolve(&dns, "sip:plain.test").unwrap();
    assert_eq!(summary(&r), ["udp 192.0.2.9:5080", "tcp 192.0.2.9:5070"]);
    let asked = dns.asked();
    for q in [
        "SRV _sip._udp.plain.test",
        "SRV _sip._tcp.plain.test",
        "SRV _sips._tcp.plain.test",
    ] {
        assert!(asked.iter().any(|a| a == q), "{q} not asked: {asked:?}");
    }
    // A UDP-less configuration does not ask for _sip._udp.
    let dns2 = {
        let mut d = FakeDns::new();
        d.srv("_sip._tcp.plain.test", 10, 0, 5070, "a.plain.test")
            .a("a.plain.test", [192, 0, 2, 9]);
        d
    };
    let cfg = ResolveConfig::default().with_transports(vec![Transport::Tcp]);
    let r = run(
        Resolution::new(Destination::sip("plain.test"), cfg, &mut rng(1)),
        &dns2,
    )
    .unwrap();
    assert_eq!(summary(&r), ["tcp 192.0.2.9:5070"]);
    assert!(!dns2.asked().iter().any(|q| q.contains("_udp")));
}

#[test]
fn without_srv_the_domain_itself_with_the_default_port() {
    let mut dns = FakeDns::new();
    dns.a("bare.test", [192, 0, 2, 5]);
    assert_eq!(
        summary(&resolve(&dns, "sip:bare.test").unwrap()),
        ["udp 192.0.2.5:5060"]
    );
    assert_eq!(
        summary(&resolve(&dns, "sips:bare.test").unwrap()),
        ["tls 192.0.2.5:5061"]
    );
    assert_eq!(
        summary(&resolve(&dns, "sip:bare.test;transport=tcp").unwrap()),
        ["tcp 192.0.2.5:5060"]
    );
}

#[test]
fn numeric_hosts_need_no_dns() {
    let dns = FakeDns::new();
    assert_eq!(
        summary(&resolve(&dns, "sip:192.0.2.1").unwrap()),
        ["udp 192.0.2.1:5060"]
    );
    assert_eq!(
        summary(&resolve(&dns, "sips:[2001:db8::5]").unwrap()),
        ["tls [2001:db8::5]:5061"]
    );
    assert_eq!(
        summary(&resolve(&dns, "sip:bob@[::1]:5080;transport=TCP").unwrap()),
        ["tcp [::1]:5080"]
    );
    assert!(dns.asked().is_empty());
}

#[test]
fn explicit_port_skips_naptr_and_srv() {
    let dns = example();
    let r = resolve(&dns, "sip:alice@sip1.example.com:5090").unwrap();
    assert_eq!(
        summary(&r),
        ["udp 192.0.2.1:5090", "udp [2001:db8::1]:5090"]
    );
    assert_eq!(dns.asked(), ["A sip1.example.com", "AAAA sip1.example.com"]);
}

#[test]
fn transport_parameter_skips_naptr() {
    let dns = example();
    let r = resolve(&dns, "sip:alice@example.com;transport=tcp").unwrap();
    assert_eq!(r.targets[0].transport, Transport::Tcp);
    assert_eq!(dns.asked()[0], "SRV _sip._tcp.example.com");
    assert!(!dns.asked().iter().any(|q| q.starts_with("NAPTR")));
}

#[test]
fn srv_dot_target_means_no_service() {
    let mut dns = FakeDns::new();
    dns.srv("_sip._udp.dot.test", 0, 0, 0, ".")
        .a("dot.test", [192, 0, 2, 3]);
    let r = resolve(&dns, "sip:dot.test;transport=udp").unwrap();
    assert_eq!(summary(&r), ["udp 192.0.2.3:5060"]);
}

#[test]
fn errors_name_every_record_tried() {
    let mut dns = FakeDns::new();
    dns.set("example.com", RecordType::Naptr, Ok(vec![]))
        .set(
            "_sip._tcp.example.com",
            RecordType::Srv,
            Err(DnsError::Timeout),
        )
        .set("example.com", RecordType::A, Err(DnsError::Timeout));
    let err = resolve(&dns, "sip:example.com").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("no SIP servers for example.com: NAPTR example.com: none; "),
        "{msg}"
    );
    for part in [
        "SRV _sip._udp.example.com: NXDOMAIN",
        "SRV _sip._tcp.example.com: timeout",
        "SRV _sips._tcp.example.com: NXDOMAIN",
        "A example.com: timeout",
        "AAAA example.com: NXDOMAIN",
    ] {
        assert!(msg.contains(part), "{part:?} missing in {msg}");
    }
    assert!(matches!(err, ResolveError::NoServers { .. }));
}

#[test]
fn invalid_transport_combinations_are_errors() {
    let dns = FakeDns::new();
    assert!(matches!(
        resolve(&dns, "sips:example.com;transport=udp"),
        Err(ResolveError::InsecureTransport { .. })
    ));
    assert!(matches!(
        resolve(&dns, "sip:example.com;transport=sctp"),
        Err(ResolveError::UnsupportedTransport { .. })
    ));
    // sips + transport=tcp means TLS.
    let r = resolve(&dns, "sips:192.0.2.1;transport=tcp").unwrap();
    assert_eq!(summary(&r), ["tls 192.0.2.1:5061"]);
}

#[test]
fn duplicate_targets_are_listed_once() {
    let mut dns = FakeDns::new();
    dns.srv("_sip._udp.dup.test", 10, 0, 5060, "a.dup.test")
        .srv("_sip._udp.dup.test", 20, 0, 5060, "b.dup.test")
        .a("a.dup.test", [192, 0, 2, 1])
        .a("b.dup.test", [192, 0, 2, 1]);
    let r = resolve(&dns, "sip:dup.test;transport=udp").unwrap();
    assert_eq!(summary(&r), ["udp 192.0.2.1:5060"]);
}
