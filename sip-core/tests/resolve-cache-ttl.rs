//! The DNS cache in virtual time: TTL expiry, remaining TTLs, negative caching, failures, TTL 0;
//! and the async driver answering a second resolution from the cache.
#![allow(clippy::disallowed_methods)] // tests pick a virtual epoch

#[path = "resolve-common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tincan_sip::resolve::{
    CacheConfig, DnsCache, DnsError, DnsQuery, DnsRecord, RecordData, RecordType,
};

fn a(ttl: u32) -> DnsRecord {
    DnsRecord::new(ttl, RecordData::A(Ipv4Addr::new(192, 0, 2, 1)))
}

#[test]
fn positive_answers_live_for_their_smallest_ttl() {
    let t0 = Instant::now();
    let mut c = DnsCache::default();
    let q = DnsQuery::new("Host.Example.", RecordType::A);
    c.insert(t0, q.clone(), Ok(vec![a(60), a(30)]));
    let q_norm = DnsQuery::new("host.example", RecordType::A);
    let hit = c
        .get(t0 + Duration::from_secs(10), &q_norm)
        .unwrap()
        .unwrap();
    assert_eq!(hit.iter().map(|r| r.ttl).collect::<Vec<_>>(), [50, 20]);
    assert!(c.get(t0 + Duration::from_secs(29), &q).is_some());
    assert!(c.get(t0 + Duration::from_secs(30), &q).is_none());
    assert!(c.is_empty(), "expired entries are dropped on access");
}

#[test]
fn negative_answers_and_failures_are_cached_briefly() {
    let t0 = Instant::now();
    let cfg = CacheConfig::default();
    let mut c = DnsCache::new(cfg.clone());
    let nx = DnsQuery::new("nx.test", RecordType::Srv);
    let nodata = DnsQuery::new("nodata.test", RecordType::Naptr);
    let timeout = DnsQuery::new("slow.test", RecordType::A);
    c.insert(t0, nx.clone(), Err(DnsError::NxDomain));
    c.insert(t0, nodata.clone(), Ok(vec![]));
    c.insert(t0, timeout.clone(), Err(DnsError::Timeout));
    let before = t0 + cfg.failure_ttl - Duration::from_millis(1);
    assert_eq!(c.get(before, &nx), Some(Err(DnsError::NxDomain)));
    assert_eq!(c.get(before, &nodata), Some(Ok(vec![])));
    assert_eq!(c.get(before, &timeout), Some(Err(DnsError::Timeout)));
    let later = t0 + cfg.failure_ttl;
    assert_eq!(c.get(later, &timeout), None);
    assert!(c.get(later, &nx).is_some());
    assert_eq!(c.get(t0 + cfg.negative_ttl, &nx), None);
    assert_eq!(c.get(t0 + cfg.negative_ttl, &nodata), None);
}

#[test]
fn ttl_zero_is_not_cached_and_huge_ttls_are_capped() {
    let t0 = Instant::now();
    let mut c = DnsCache::default();
    let q = DnsQuery::new("zero.test", RecordType::A);
    c.insert(t0, q.clone(), Ok(vec![a(0)]));
    assert!(c.get(t0, &q).is_none());
    c.insert(t0, q.clone(), Ok(vec![a(u32::MAX)]));
    assert!(c.get(t0 + Duration::from_secs(86_399), &q).is_some());
    assert!(c.get(t0 + Duration::from_secs(86_400), &q).is_none());
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "current_thread")]
async fn second_resolution_is_answered_from_the_cache() {
    use tincan_sip::resolve::{Destination, ResolveConfig, resolve};
    let mut dns = common::FakeDns::new();
    dns.srv("_sip._udp.cached.test", 10, 0, 5060, "a.cached.test")
        .a("a.cached.test", [192, 0, 2, 1]);
    let mut cache = DnsCache::default();
    let dest = Destination::parse("sip:cached.test").unwrap();
    let first = resolve(
        dest.clone(),
        ResolveConfig::default(),
        &dns,
        &mut cache,
        &mut common::rng(1),
    )
    .await
    .unwrap();
    let asked = dns.asked().len();
    assert!(asked >= 5, "NAPTR, 3 SRV, A, AAAA: {:?}", dns.asked());
    let second = resolve(
        dest,
        ResolveConfig::default(),
        &dns,
        &mut cache,
        &mut common::rng(1),
    )
    .await
    .unwrap();
    assert_eq!(dns.asked().len(), asked, "no new DNS traffic");
    assert_eq!(first.targets, second.targets);
}
