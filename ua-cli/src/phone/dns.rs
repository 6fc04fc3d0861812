//! The phone's DNS: every RFC 3263 resolution of the phone goes through one cache that
//! honours the records' TTLs, and each question is asked once however many resolutions wait
//! for it. Questions go out ([`Dns::poll_query`]), answers come in ([`Dns::handle_answer`]);
//! a question with no answer within the interactive budget counts as timed out, so a dead DNS
//! server costs seconds, not the resolver's 18.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand_core::Rng;
use tincan_sip::capacity::give_back;
use tincan_sip::resolve::{
    CacheConfig, Destination, DnsAnswer, DnsCache, DnsError, DnsQuery, Resolution, ResolveConfig,
    ResolveError, Resolved,
};

/// A resolution of the phone, named by the phone.
pub(crate) type ResolutionId = u64;

struct Pending {
    resolution: Resolution,
    /// Questions the network still owes this resolution.
    asked: Vec<DnsQuery>,
    deadline: Instant,
}

/// Resolutions in progress over one cache.
pub(crate) struct Dns {
    cache: DnsCache,
    config: ResolveConfig,
    /// Longest wait for one answer.
    budget: Duration,
    pending: HashMap<ResolutionId, Pending>,
    /// Questions asked of the network, with the resolutions waiting for each.
    outstanding: HashMap<DnsQuery, Vec<ResolutionId>>,
    queries: VecDeque<DnsQuery>,
    done: VecDeque<(ResolutionId, Result<Resolved, ResolveError>)>,
    next: ResolutionId,
    /// Questions asked of the network since the start (for tests and statistics).
    pub(crate) asked_total: u64,
}

impl Dns {
    pub(crate) fn new(config: ResolveConfig, budget: Duration) -> Dns {
        Dns {
            cache: DnsCache::new(CacheConfig::default()),
            config,
            budget,
            pending: HashMap::new(),
            outstanding: HashMap::new(),
            queries: VecDeque::new(),
            done: VecDeque::new(),
            next: 1,
            asked_total: 0,
        }
    }

    /// The number of entries of each table, by name (see `PhoneCore::table_sizes`).
    pub(crate) fn table_sizes(&self) -> [(&'static str, usize); 5] {
        [
            ("dns.cache", self.cache.len()),
            ("dns.pending", self.pending.len()),
            ("dns.outstanding", self.outstanding.len()),
            ("dns.queries", self.queries.len()),
            ("dns.done", self.done.len()),
        ]
    }

    /// Shrinks the tables a burst of resolutions grew, once they are mostly empty again.
    pub(crate) fn give_back_capacity(&mut self) {
        give_back(&mut self.pending, 0);
        give_back(&mut self.outstanding, 0);
        give_back(&mut self.queries, 0);
        give_back(&mut self.done, 0);
    }

    /// Starts resolving `destination`; its result comes out of [`poll_done`](Self::poll_done)
    /// (at once when the cache or an IP literal answers everything).
    pub(crate) fn start(
        &mut self,
        now: Instant,
        destination: Destination,
        rng: &mut dyn Rng,
    ) -> ResolutionId {
        let id = self.next;
        self.next += 1;
        let resolution = Resolution::new(destination, self.config.clone(), rng);
        self.pending.insert(
            id,
            Pending {
                resolution,
                asked: Vec::new(),
                deadline: now + self.budget,
            },
        );
        self.advance(now, id);
        id
    }

    /// Forgets a resolution nobody waits for any more.
    pub(crate) fn cancel(&mut self, id: ResolutionId) {
        if let Some(p) = self.pending.remove(&id) {
            for q in p.asked {
                if let Some(w) = self.outstanding.get_mut(&q) {
                    w.retain(|r| *r != id);
                }
            }
        }
    }

    /// The next question for the network.
    pub(crate) fn poll_query(&mut self) -> Option<DnsQuery> {
        self.queries.pop_front()
    }

    /// A finished resolution.
    pub(crate) fn poll_done(&mut self) -> Option<(ResolutionId, Result<Resolved, ResolveError>)> {
        self.done.pop_front()
    }

    /// The earliest deadline of a resolution still waiting for the network.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter(|p| !p.asked.is_empty())
            .map(|p| p.deadline)
            .min()
    }

    /// Questions unanswered past the budget are answered with a timeout.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let late: Vec<DnsQuery> = self
            .pending
            .values()
            .filter(|p| p.deadline <= now)
            .flat_map(|p| p.asked.iter().cloned())
            .collect();
        for q in late {
            self.handle_answer(now, &q, Err(DnsError::Timeout));
        }
    }

    /// The network's answer to a question from [`poll_query`](Self::poll_query).
    pub(crate) fn handle_answer(&mut self, now: Instant, query: &DnsQuery, answer: DnsAnswer) {
        let Some(waiting) = self.outstanding.remove(query) else {
            return;
        };
        self.cache.insert(now, query.clone(), answer.clone());
        for id in waiting {
            if let Some(p) = self.pending.get_mut(&id) {
                p.asked.retain(|q| q != query);
                p.resolution.handle_answer(now, query, answer.clone());
                self.advance(now, id);
            }
        }
    }

    fn advance(&mut self, now: Instant, id: ResolutionId) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        while let Some(q) = p.resolution.poll_query_cached(now, &mut self.cache) {
            p.asked.push(q.clone());
            let waiting = self.outstanding.entry(q.clone()).or_default();
            if waiting.is_empty() {
                self.queries.push_back(q);
                self.asked_total += 1;
            }
            waiting.push(id);
        }
        if let Some(result) = p.resolution.poll_result() {
            self.pending.remove(&id);
            self.done.push_back((id, result));
        }
    }
}
