//! A DNS answer cache keyed by (name, type), honouring record TTLs, with `now` injected.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::dns::{DnsAnswer, DnsError, DnsQuery};

/// Cache tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// How long "no such name" and "no records of that type" are remembered (negative caching,
    /// RFC 2308). We do not see the zone's SOA minimum, so a short fixed time: 30 s.
    pub negative_ttl: Duration,
    /// How long timeouts and server failures are remembered, so a burst of requests does not
    /// each wait for a dead DNS server: 5 s (RFC 2308 §7 allows up to 5 minutes).
    pub failure_ttl: Duration,
    /// Upper bound for positive TTLs (a huge TTL must not pin a stale answer): 1 day.
    pub max_ttl: Duration,
    /// Maximum entries; the one closest to expiry is evicted first: 1024.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            negative_ttl: Duration::from_secs(30),
            failure_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(86_400),
            max_entries: 1024,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    answer: DnsAnswer,
    stored: Instant,
    expires: Instant,
}

/// Cached DNS answers. A plain struct the driver owns and shares between resolutions.
#[derive(Debug, Clone, Default)]
pub struct DnsCache {
    config: CacheConfig,
    entries: HashMap<DnsQuery, Entry>,
}

impl DnsCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        DnsCache {
            config,
            entries: HashMap::new(),
        }
    }

    /// The cached answer for `query` if still fresh; record TTLs are reduced by the time spent
    /// in the cache. Expired entries are dropped.
    pub fn get(&mut self, now: Instant, query: &DnsQuery) -> Option<DnsAnswer> {
        let entry = self.entries.get(query)?;
        if now >= entry.expires {
            self.entries.remove(query);
            return None;
        }
        let elapsed = u32::try_from(now.saturating_duration_since(entry.stored).as_secs())
            .unwrap_or(u32::MAX);
        Some(entry.answer.clone().map(|records| {
            records
                .into_iter()
                .map(|mut r| {
                    r.ttl = r.ttl.saturating_sub(elapsed);
                    r
                })
                .collect()
        }))
    }

    /// Remember an answer: records for their smallest TTL (capped), empty answers and NXDOMAIN
    /// for the negative TTL, other failures for the failure TTL. A TTL of 0 is not cached.
    pub fn insert(&mut self, now: Instant, query: DnsQuery, answer: DnsAnswer) {
        let ttl = match &answer {
            Ok(records) if records.is_empty() => self.config.negative_ttl,
            Ok(records) => records
                .iter()
                .map(|r| Duration::from_secs(u64::from(r.ttl)))
                .min()
                .unwrap_or_default()
                .min(self.config.max_ttl),
            Err(DnsError::NxDomain) => self.config.negative_ttl,
            Err(_) => self.config.failure_ttl,
        };
        if ttl.is_zero() {
            self.entries.remove(&query);
            return;
        }
        if self.entries.len() >= self.config.max_entries && !self.entries.contains_key(&query) {
            self.purge_expired(now);
            if self.entries.len() >= self.config.max_entries
                && let Some(victim) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(q, _)| q.clone())
            {
                self.entries.remove(&victim);
            }
        }
        if self.config.max_entries == 0 {
            return;
        }
        self.entries.insert(
            query,
            Entry {
                answer,
                stored: now,
                expires: now + ttl,
            },
        );
    }

    /// Drop every expired entry.
    pub fn purge_expired(&mut self, now: Instant) {
        self.entries.retain(|_, e| now < e.expires);
    }

    /// Drop everything (e.g. after a network change).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of entries (fresh or not yet purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::dns::{DnsRecord, RecordData, RecordType};
    use std::net::Ipv4Addr;

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs a base instant; the code under test does not read the clock
    fn evicts_the_entry_closest_to_expiry_when_full() {
        let now = Instant::now();
        let mut c = DnsCache::new(CacheConfig {
            max_entries: 2,
            ..CacheConfig::default()
        });
        for (i, ttl) in [(1, 100), (2, 10), (3, 50)] {
            c.insert(
                now,
                DnsQuery::new(&format!("h{i}.test"), RecordType::A),
                Ok(vec![DnsRecord::new(
                    ttl,
                    RecordData::A(Ipv4Addr::LOCALHOST),
                )]),
            );
        }
        assert_eq!(c.len(), 2);
        assert!(
            c.get(now, &DnsQuery::new("h2.test", RecordType::A))
                .is_none()
        );
        assert!(
            c.get(now, &DnsQuery::new("h1.test", RecordType::A))
                .is_some()
        );
    }
}
