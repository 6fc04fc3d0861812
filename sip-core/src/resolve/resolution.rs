//! The RFC 3263 §4 client procedure as a sans-IO state machine.
//!
//! Stages: (1) transport and shortcuts: an IP literal needs no DNS; an explicit port or a
//! `transport=` parameter skips NAPTR (§4.1, §4.2); (2) NAPTR of the domain, usable records by
//! order and preference; without usable NAPTR records, SRV for each supported transport;
//! (3) SRV, ordered by priority and RFC 2782 weighted random selection; without any SRV record,
//! A/AAAA of the domain with the default port; (4) A and AAAA of every SRV target. All the
//! queries of a stage are asked at once so a driver can run them in parallel.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand_core::Rng;

use crate::rng::XorShiftRng;
use rand_core::SeedableRng;

use super::dns::{DnsAnswer, DnsQuery, DnsRecord, RecordData, RecordType};
use super::select::{NaptrStep, SrvStep, order_srv, select_naptr};
use super::{Destination, Transport};

/// Which address families to use and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum AddressFamily {
    /// A then AAAA addresses for each host (the default: most SIP services are IPv4-first and
    /// a broken IPv6 path costs a failover budget per target).
    #[default]
    Ipv4First,
    /// AAAA then A.
    Ipv6First,
    /// A only.
    Ipv4Only,
    /// AAAA only.
    Ipv6Only,
}

impl AddressFamily {
    fn queries(self) -> &'static [RecordType] {
        match self {
            AddressFamily::Ipv4First => &[RecordType::A, RecordType::Aaaa],
            AddressFamily::Ipv6First => &[RecordType::Aaaa, RecordType::A],
            AddressFamily::Ipv4Only => &[RecordType::A],
            AddressFamily::Ipv6Only => &[RecordType::Aaaa],
        }
    }
}

/// Resolution settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolveConfig {
    /// The transports we support, in our order of preference for the SRV queries made when a
    /// domain has no NAPTR records. Default: UDP, TCP, TLS.
    pub transports: Vec<Transport>,
    /// Address families and their order.
    pub family: AddressFamily,
}

impl Default for ResolveConfig {
    fn default() -> Self {
        ResolveConfig {
            transports: vec![Transport::Udp, Transport::Tcp, Transport::Tls],
            family: AddressFamily::default(),
        }
    }
}

impl ResolveConfig {
    /// With this list of supported transports (in preference order).
    pub fn with_transports(mut self, transports: Vec<Transport>) -> Self {
        self.transports = transports;
        self
    }

    /// With these address families.
    pub fn with_family(mut self, family: AddressFamily) -> Self {
        self.family = family;
        self
    }
}

/// How a target's address was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum AddressStep {
    /// The URI host was an IP literal.
    Literal,
    /// An A or AAAA lookup of `name`.
    Lookup {
        /// The name looked up.
        name: String,
        /// A or AAAA.
        rtype: RecordType,
    },
}

/// The chain of records a target came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TargetSource {
    /// The NAPTR record used, if any.
    pub naptr: Option<NaptrStep>,
    /// The SRV record used, if any.
    pub srv: Option<SrvStep>,
    /// How the address was found.
    pub address: AddressStep,
}

/// One place to send a request, in the order to try.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ResolvedTarget {
    /// The transport.
    pub transport: Transport,
    /// The address and port.
    pub addr: SocketAddr,
    /// The server identity for TLS (SNI and certificate check): the URI's domain, not the SRV
    /// target (RFC 5922 §4).
    pub host: String,
    /// SRV priority (0 without SRV).
    pub priority: u16,
    /// SRV weight (0 without SRV).
    pub weight: u16,
    /// Where it came from.
    pub source: TargetSource,
}

impl fmt::Display for ResolvedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} priority {} weight {}",
            self.transport, self.addr, self.priority, self.weight
        )?;
        if let Some(srv) = &self.source.srv {
            write!(f, " via {} -> {}", srv.name, srv.target)?;
        }
        Ok(())
    }
}

/// One DNS question asked during a resolution and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Lookup {
    /// The question.
    pub query: DnsQuery,
    /// The answer.
    pub answer: DnsAnswer,
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.query)?;
        match &self.answer {
            Ok(r) if r.is_empty() => f.write_str("none"),
            Ok(r) => write!(
                f,
                "{} record{}",
                r.len(),
                if r.len() == 1 { "" } else { "s" }
            ),
            Err(e) => write!(f, "{e}"),
        }
    }
}

/// The lookups of a failed resolution, printed as `NAPTR example.com: none; SRV ...: NXDOMAIN`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TriedLookups(pub Vec<Lookup>);

impl fmt::Display for TriedLookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no lookups");
        }
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Why no target could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The URI could not be read.
    #[error("invalid SIP URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// The `transport=` parameter names a transport we do not support (e.g. `sctp`, `ws`),
    /// or one the configuration disabled.
    #[error("unsupported transport {transport:?}")]
    UnsupportedTransport {
        /// The parameter value.
        transport: String,
    },
    /// A `sips:` URI with a transport other than TLS (RFC 3261 §26.2.2).
    #[error("sips: URI with insecure transport {transport:?}")]
    InsecureTransport {
        /// The parameter value.
        transport: String,
    },
    /// DNS gave no usable target; every lookup tried is listed.
    #[error("no SIP servers for {domain}: {tried}")]
    NoServers {
        /// The domain resolved.
        domain: String,
        /// The lookups tried and their outcome.
        tried: TriedLookups,
    },
}

/// A finished resolution: the ordered targets and the whole lookup chain (for display).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Resolved {
    /// What was resolved.
    pub destination: Destination,
    /// Every query asked, in the order the answers came, with its answer.
    pub lookups: Vec<Lookup>,
    /// The targets, best first.
    pub targets: Vec<ResolvedTarget>,
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.destination)?;
        for l in &self.lookups {
            writeln!(f, "  {l}")?;
            if let Ok(records) = &l.answer {
                for r in records {
                    writeln!(f, "    {r}")?;
                }
            }
        }
        writeln!(f, "targets:")?;
        for (i, t) in self.targets.iter().enumerate() {
            writeln!(f, "  {}. {t}", i + 1)?;
        }
        Ok(())
    }
}

/// A planned SRV lookup: which name, for which transport, from which NAPTR record.
#[derive(Debug, Clone)]
struct SrvPlan {
    name: String,
    transport: Transport,
    naptr: Option<NaptrStep>,
}

/// A host whose addresses are needed.
#[derive(Debug, Clone)]
struct HostPlan {
    name: String,
    port: u16,
    transport: Transport,
    priority: u16,
    weight: u16,
    naptr: Option<NaptrStep>,
    srv: Option<SrvStep>,
}

#[derive(Debug)]
enum Stage {
    Naptr,
    Srv(Vec<SrvPlan>),
    Address(Vec<HostPlan>),
    Done,
}

/// The RFC 3263 resolution of one destination (see the module docs for an example).
#[derive(Debug)]
pub struct Resolution {
    destination: Destination,
    domain: String,
    config: ResolveConfig,
    /// The transport when it is fixed by the URI (`transport=`) or by `sips:`-without-NAPTR.
    default_transport: Transport,
    stage: Stage,
    pending: VecDeque<DnsQuery>,
    outstanding: Vec<DnsQuery>,
    answers: HashMap<DnsQuery, DnsAnswer>,
    lookups: Vec<Lookup>,
    rng: XorShiftRng,
    result: Option<Result<Resolved, ResolveError>>,
}

impl Resolution {
    /// Start resolving `destination`. `rng` seeds the RFC 2782 weighted selection, so the
    /// same seed gives the same order. Invalid input is reported by
    /// [`poll_result`](Self::poll_result) right away.
    pub fn new<R: Rng + ?Sized>(
        destination: Destination,
        config: ResolveConfig,
        rng: &mut R,
    ) -> Self {
        let domain = super::dns::normalize_name(
            destination
                .host
                .trim_start_matches('[')
                .trim_end_matches(']'),
        );
        let mut r = Resolution {
            domain,
            config,
            default_transport: Transport::Udp,
            stage: Stage::Done,
            pending: VecDeque::new(),
            outstanding: Vec::new(),
            answers: HashMap::new(),
            lookups: Vec::new(),
            rng: XorShiftRng::seed_from_u64(rng.next_u64()),
            result: None,
            destination,
        };
        r.start();
        r
    }

    /// The next DNS question to ask, if any. Ask all of them (in parallel if you like) and
    /// feed each answer to [`handle_answer`](Self::handle_answer).
    pub fn poll_query(&mut self) -> Option<DnsQuery> {
        let q = self.pending.pop_front()?;
        self.outstanding.push(q.clone());
        Some(q)
    }

    /// The answer to a question from [`poll_query`](Self::poll_query) (from the network or
    /// a [`DnsCache`](super::DnsCache)). Answers to questions not asked are ignored. `now` is
    /// taken for symmetry with the other state machines; the resolution itself has no timers
    /// (the backend reports timeouts as answers).
    pub fn handle_answer(&mut self, now: Instant, query: &DnsQuery, answer: DnsAnswer) {
        let _ = now;
        let Some(i) = self.outstanding.iter().position(|q| q == query) else {
            return;
        };
        self.outstanding.swap_remove(i);
        self.lookups.push(Lookup {
            query: query.clone(),
            answer: answer.clone(),
        });
        self.answers.insert(query.clone(), answer);
        if self.outstanding.is_empty() && self.pending.is_empty() {
            self.advance();
        }
    }

    /// Like [`poll_query`](Self::poll_query), but questions `cache` can answer are answered
    /// on the spot; only questions for the network come out. Put the network's answers into
    /// the cache ([`DnsCache::insert`](super::DnsCache::insert)) before handing them over.
    pub fn poll_query_cached(
        &mut self,
        now: Instant,
        cache: &mut super::DnsCache,
    ) -> Option<DnsQuery> {
        while let Some(q) = self.poll_query() {
            match cache.get(now, &q) {
                Some(answer) => self.handle_answer(now, &q, answer),
                None => return Some(q),
            }
        }
        None
    }

    /// Whether the resolution has finished (its result may already have been taken).
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    /// The result, once every question has been answered (returned once).
    pub fn poll_result(&mut self) -> Option<Result<Resolved, ResolveError>> {
        self.result.take()
    }

    fn start(&mut self) {
        let secure = self.destination.secure;
        let fixed = match &self.destination.transport {
            None => None,
            Some(p) => match Transport::from_param(p) {
                Some(t) if secure && t == Transport::Udp => {
                    return self.fail(ResolveError::InsecureTransport {
                        transport: p.clone(),
                    });
                }
                // sips: with transport=tcp means TLS over TCP.
                Some(Transport::Tcp) if secure => Some(Transport::Tls),
                Some(t) if self.config.transports.contains(&t) => Some(t),
                _ => {
                    return self.fail(ResolveError::UnsupportedTransport {
                        transport: p.clone(),
                    });
                }
            },
        };
        self.default_transport = fixed.unwrap_or(if secure {
            Transport::Tls
        } else {
            Transport::Udp
        });
        if fixed.is_none() && !self.config.transports.contains(&self.default_transport) {
            // e.g. a TLS-less configuration asked for sips:, or UDP disabled: take the first
            // allowed one that keeps the URI's security.
            match self
                .config
                .transports
                .iter()
                .copied()
                .find(|t| !secure || *t == Transport::Tls)
            {
                Some(t) => self.default_transport = t,
                None => {
                    return self.fail(ResolveError::UnsupportedTransport {
                        transport: self.default_transport.as_str().to_owned(),
                    });
                }
            }
        }
        if let Some(ip) = self.destination.ip() {
            // §4.2: a numeric IP needs no lookup.
            let t = self.default_transport;
            let port = self.destination.port.unwrap_or(t.default_port());
            let target = ResolvedTarget {
                transport: t,
                addr: SocketAddr::new(ip, port),
                host: ip.to_string(),
                priority: 0,
                weight: 0,
                source: TargetSource {
                    naptr: None,
                    srv: None,
                    address: AddressStep::Literal,
                },
            };
            return self.finish(vec![target]);
        }
        if self.domain.is_empty() {
            return self.fail(ResolveError::InvalidUri {
                uri: self.destination.to_string(),
                reason: "empty host".to_owned(),
            });
        }
        if let Some(port) = self.destination.port {
            // §4.2: explicit port: A/AAAA only.
            let t = self.default_transport;
            let plan = HostPlan {
                name: self.domain.clone(),
                port,
                transport: t,
                priority: 0,
                weight: 0,
                naptr: None,
                srv: None,
            };
            return self.enter_address(vec![plan]);
        }
        if let Some(t) = fixed {
            // §4.2: transport known, no port: SRV of that transport.
            let plan = SrvPlan {
                name: format!("{}.{}", t.srv_prefix(), self.domain),
                transport: t,
                naptr: None,
            };
            return self.enter_srv(vec![plan]);
        }
        self.stage = Stage::Naptr;
        self.pending
            .push_back(DnsQuery::new(&self.domain, RecordType::Naptr));
    }

    fn advance(&mut self) {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Naptr => {
                let q = DnsQuery::new(&self.domain, RecordType::Naptr);
                let records = ok_records(self.answers.get(&q));
                let steps = select_naptr(
                    &self.domain,
                    records,
                    self.destination.secure,
                    &self.config.transports,
                );
                let plans: Vec<SrvPlan> = if steps.is_empty() {
                    // §4.1: no (usable) NAPTR records: SRV for each transport we support.
                    self.config
                        .transports
                        .iter()
                        .filter(|t| !self.destination.secure || **t == Transport::Tls)
                        .map(|t| SrvPlan {
                            name: format!("{}.{}", t.srv_prefix(), self.domain),
                            transport: *t,
                            naptr: None,
                        })
                        .collect()
                } else {
                    steps
                        .into_iter()
                        .map(|s| SrvPlan {
                            name: s.replacement.clone(),
                            transport: s.transport,
                            naptr: Some(s),
                        })
                        .collect()
                };
                self.enter_srv(plans);
            }
            Stage::Srv(plans) => {
                let mut hosts = Vec::new();
                for plan in &plans {
                    let q = DnsQuery::new(&plan.name, RecordType::Srv);
                    let records = ok_records(self.answers.get(&q)).to_vec();
                    for srv in order_srv(&plan.name, &records, &mut self.rng) {
                        hosts.push(HostPlan {
                            name: srv.target.clone(),
                            port: srv.port,
                            transport: plan.transport,
                            priority: srv.priority,
                            weight: srv.weight,
                            naptr: plan.naptr.clone(),
                            srv: Some(srv),
                        });
                    }
                }
                if hosts.is_empty() {
                    // §4.2: no SRV records: A/AAAA of the domain, default port.
                    let t = plans
                        .iter()
                        .find(|p| p.naptr.is_some())
                        .map_or(self.default_transport, |p| p.transport);
                    hosts.push(HostPlan {
                        name: self.domain.clone(),
                        port: t.default_port(),
                        transport: t,
                        priority: 0,
                        weight: 0,
                        naptr: None,
                        srv: None,
                    });
                }
                self.enter_address(hosts);
            }
            Stage::Address(hosts) => {
                let mut targets: Vec<ResolvedTarget> = Vec::new();
                for h in &hosts {
                    for rtype in self.config.family.queries() {
                        let q = DnsQuery::new(&h.name, *rtype);
                        for r in ok_records(self.answers.get(&q)) {
                            let ip: IpAddr = match r.data {
                                RecordData::A(a) if *rtype == RecordType::A => a.into(),
                                RecordData::Aaaa(a) if *rtype == RecordType::Aaaa => a.into(),
                                _ => continue,
                            };
                            let addr = SocketAddr::new(ip, h.port);
                            if targets
                                .iter()
                                .any(|t| t.addr == addr && t.transport == h.transport)
                            {
                                continue;
                            }
                            targets.push(ResolvedTarget {
                                transport: h.transport,
                                addr,
                                host: self.domain.clone(),
                                priority: h.priority,
                                weight: h.weight,
                                source: TargetSource {
                                    naptr: h.naptr.clone(),
                                    srv: h.srv.clone(),
                                    address: AddressStep::Lookup {
                                        name: h.name.clone(),
                                        rtype: *rtype,
                                    },
                                },
                            });
                        }
                    }
                }
                if targets.is_empty() {
                    let e = ResolveError::NoServers {
                        domain: self.domain.clone(),
                        tried: TriedLookups(self.lookups.clone()),
                    };
                    self.fail(e);
                } else {
                    self.finish(targets);
                }
            }
            Stage::Done => {}
        }
    }

    fn enter_srv(&mut self, plans: Vec<SrvPlan>) {
        for p in &plans {
            self.ask(DnsQuery::new(&p.name, RecordType::Srv));
        }
        self.stage = Stage::Srv(plans);
        if self.pending.is_empty() {
            self.advance();
        }
    }

    fn enter_address(&mut self, hosts: Vec<HostPlan>) {
        for h in &hosts {
            for rtype in self.config.family.queries() {
                self.ask(DnsQuery::new(&h.name, *rtype));
            }
        }
        self.stage = Stage::Address(hosts);
        if self.pending.is_empty() {
            self.advance();
        }
    }

    /// Queue a question unless it was already asked in this resolution.
    fn ask(&mut self, q: DnsQuery) {
        if !self.answers.contains_key(&q) && !self.pending.contains(&q) {
            self.pending.push_back(q);
        }
    }

    fn fail(&mut self, e: ResolveError) {
        self.stage = Stage::Done;
        self.pending.clear();
        self.result = Some(Err(e));
    }

    fn finish(&mut self, targets: Vec<ResolvedTarget>) {
        self.stage = Stage::Done;
        self.result = Some(Ok(Resolved {
            destination: self.destination.clone(),
            lookups: std::mem::take(&mut self.lookups),
            targets,
        }));
    }
}

fn ok_records(a: Option<&DnsAnswer>) -> &[DnsRecord] {
    match a {
        Some(Ok(r)) => r,
        _ => &[],
    }
}
