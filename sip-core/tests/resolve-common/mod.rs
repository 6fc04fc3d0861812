//! Shared helpers for the resolve tests: a table-driven fake DNS and a synchronous driver.
#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use tincan_sip::resolve::{
    DnsAnswer, DnsError, DnsQuery, DnsRecord, RecordData, RecordType, Resolution, ResolveError,
    Resolved,
};

/// A fake DNS: answers from a table; unknown names are NXDOMAIN. Records every question.
#[derive(Default)]
pub struct FakeDns {
    table: HashMap<DnsQuery, DnsAnswer>,
    pub asked: Mutex<Vec<DnsQuery>>,
}

impl FakeDns {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: &str, rtype: RecordType, answer: DnsAnswer) -> &mut Self {
        self.table.insert(DnsQuery::new(name, rtype), answer);
        self
    }

    pub fn naptr(
        &mut self,
        name: &str,
        order: u16,
        pref: u16,
        flags: &str,
        service: &str,
        repl: &str,
    ) -> &mut Self {
        self.push(
            name,
            RecordType::Naptr,
            RecordData::Naptr {
                order,
                preference: pref,
                flags: flags.into(),
                services: service.into(),
                regexp: String::new(),
                replacement: repl.into(),
            },
        )
    }

    pub fn srv(
        &mut self,
        name: &str,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> &mut Self {
        self.push(
            name,
            RecordType::Srv,
            RecordData::Srv {
                priority,
                weight,
                port,
                target: target.into(),
            },
        )
    }

    pub fn a(&mut self, name: &str, ip: [u8; 4]) -> &mut Self {
        self.push(name, RecordType::A, RecordData::A(Ipv4Addr::from(ip)))
    }

    pub fn aaaa(&mut self, name: &str, ip: &str) -> &mut Self {
        let ip: Ipv6Addr = ip.parse().expect("test IPv6 literal");
        self.push(name, RecordType::Aaaa, RecordData::Aaaa(ip))
    }

    fn push(&mut self, name: &str, rtype: RecordType, data: RecordData) -> &mut Self {
        let e = self
            .table
            .entry(DnsQuery::new(name, rtype))
            .or_insert_with(|| Ok(Vec::new()));
        if let Ok(v) = e {
            v.push(DnsRecord::new(300, data));
        }
        self
    }

    pub fn answer(&self, q: &DnsQuery) -> DnsAnswer {
        self.asked.lock().expect("test mutex").push(q.clone());
        self.table
            .get(q)
            .cloned()
            .unwrap_or(Err(DnsError::NxDomain))
    }

    pub fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .expect("test mutex")
            .iter()
            .map(|q| q.to_string())
            .collect()
    }
}

#[cfg(feature = "tokio")]
impl tincan_sip::driver::dns::DnsBackend for FakeDns {
    async fn query(&self, query: &DnsQuery) -> DnsAnswer {
        self.answer(query)
    }
}

/// Drive a resolution synchronously against the fake.
pub fn run(mut res: Resolution, dns: &FakeDns) -> Result<Resolved, ResolveError> {
    let now = Instant::now();
    loop {
        let mut batch = Vec::new();
        while let Some(q) = res.poll_query() {
            batch.push(q);
        }
        for q in batch {
            let a = dns.answer(&q);
            res.handle_answer(now, &q, a);
        }
        if let Some(r) = res.poll_result() {
            return r;
        }
    }
}

/// `transport addr` of every target.
pub fn summary(r: &Resolved) -> Vec<String> {
    r.targets
        .iter()
        .map(|t| format!("{} {}", t.transport, t.addr))
        .collect()
}

pub fn rng(seed: u64) -> rand_xorshift::XorShiftRng {
    use rand_core::SeedableRng;
    rand_xorshift::XorShiftRng::seed_from_u64(seed)
}
