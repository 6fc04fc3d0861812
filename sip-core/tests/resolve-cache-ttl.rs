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
    use tincan_sip::driver::dns::resolve;
    use tincan_sip::resolve::{Destination, ResolveConfig};
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

/// Drive a resolution in virtual time through the cache; returns how many questions went to
/// the (fake) network.
fn resolve_at(
    now: Instant,
    dns: &common::FakeDns,
    cache: &mut DnsCache,
) -> (tincan_sip::resolve::Resolved, usize) {
    use tincan_sip::resolve::{Destination, Resolution, ResolveConfig};
    let mut res = Resolution::new(
        Destination::sip("ttl.test").with_transport("udp"),
        ResolveConfig::default(),
        &mut common::rng(1),
    );
    let mut network = 0;
    loop {
        let mut batch = Vec::new();
        while let Some(q) = res.poll_query_cached(now, cache) {
            batch.push(q);
        }
        for q in batch {
            network += 1;
            let a = dns.answer(&q);
            cache.insert(now, q.clone(), a.clone());
            res.handle_answer(now, &q, a);
        }
        if let Some(r) = res.poll_result() {
            return (r.expect("ttl.test resolves"), network);
        }
    }
}

#[test]
fn resolutions_reuse_answers_until_their_ttl_expires() {
    let t0 = Instant::now();
    let mut dns = common::FakeDns::new();
    // The fake gives every record a TTL of 300 s; AAAA is NODATA (negative TTL 30 s).
    dns.srv("_sip._udp.ttl.test", 10, 0, 5060, "a.ttl.test")
        .a("a.ttl.test", [192, 0, 2, 1])
        .set("a.ttl.test", RecordType::Aaaa, Ok(vec![]));
    let mut cache = DnsCache::default();
    let (first, n) = resolve_at(t0, &dns, &mut cache);
    assert_eq!(n, 3, "SRV, A, AAAA");
    let (second, n) = resolve_at(t0 + Duration::from_secs(29), &dns, &mut cache);
    assert_eq!((n, &second.targets), (0, &first.targets));
    // The negative AAAA answer expired at 30 s; the positive ones live until 300 s.
    let (_, n) = resolve_at(t0 + Duration::from_secs(31), &dns, &mut cache);
    assert_eq!(n, 1);
    let (_, n) = resolve_at(t0 + Duration::from_secs(300), &dns, &mut cache);
    assert_eq!(n, 3);
}
