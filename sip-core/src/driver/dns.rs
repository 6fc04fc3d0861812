//! DNS for the driver: the [`DnsBackend`] seam, the hickory-resolver 0.26 backend
//! ([`HickoryBackend`]) and [`resolve`], which drives a sans-IO [`Resolution`] with a backend
//! and a [`DnsCache`].
//!
//! The RFC 3263 procedure itself (which questions, in which order, what the answers mean) is
//! the sans-IO [`crate::resolve`] module; this is the I/O around it: it asks real DNS servers
//! and reads the clock for the cache.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType as HickoryType};

use crate::resolve::{
    Destination, DnsAnswer, DnsCache, DnsError, DnsQuery, DnsRecord, RecordData, RecordType,
    Resolution, ResolveConfig, ResolveError, Resolved, TriedLookups,
};

/// Something that answers DNS questions: hickory-resolver ([`HickoryBackend`]), a table in
/// tests.
///
/// Report NODATA as `Ok(vec![])`, a missing name as [`DnsError::NxDomain`], and give
/// up on a question after the backend's own timeout with [`DnsError::Timeout`].
pub trait DnsBackend {
    /// Ask one question.
    fn query(&self, query: &DnsQuery) -> impl Future<Output = DnsAnswer> + Send;
}

/// Resolve `destination` with `backend`, answering from and filling `cache`. The questions of
/// each RFC 3263 stage run concurrently. This is driver code: it reads the clock for the
/// cache.
pub async fn resolve<B, R>(
    destination: Destination,
    config: ResolveConfig,
    backend: &B,
    cache: &mut DnsCache,
    rng: &mut R,
) -> Result<Resolved, ResolveError>
where
    B: DnsBackend + ?Sized,
    R: rand_core::Rng + ?Sized,
{
    let domain = destination.host.clone();
    let mut res = Resolution::new(destination, config, rng);
    loop {
        let mut batch = Vec::new();
        while let Some(q) = res.poll_query_cached(Instant::now(), cache) {
            batch.push(q);
        }
        if batch.is_empty() {
            return res.poll_result().unwrap_or_else(|| {
                // Unreachable by construction: a resolution with nothing to ask is done.
                Err(ResolveError::NoServers {
                    domain,
                    tried: TriedLookups::default(),
                })
            });
        }
        let answers = join_all(batch.iter().map(|q| backend.query(q)).collect()).await;
        let now = Instant::now();
        for (q, answer) in batch.into_iter().zip(answers) {
            cache.insert(now, q.clone(), answer.clone());
            res.handle_answer(now, &q, answer);
        }
    }
}

/// Run futures concurrently on the current task and collect their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("poll_fn returns only when every future is ready"))
        .collect()
}

/// The DNS backend could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The system resolver configuration (resolv.conf) could not be read.
    #[error("cannot read the system DNS configuration: {0}")]
    SystemConfig(String),
    /// The resolver could not be built.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// Backend settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HickoryConfig {
    /// DNS servers (address and port; UDP with TCP fallback). Empty: the system's
    /// resolv.conf.
    pub servers: Vec<SocketAddr>,
    /// Timeout of one query attempt: 2 s.
    pub timeout: Duration,
    /// Attempts per query: 2.
    pub attempts: usize,
}

impl Default for HickoryConfig {
    fn default() -> Self {
        HickoryConfig {
            servers: Vec::new(),
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

impl HickoryConfig {
    /// Use this DNS server (e.g. `--dns-server 127.0.0.1:5353`).
    pub fn with_server(mut self, server: SocketAddr) -> Self {
        self.servers.push(server);
        self
    }
}

/// DNS through hickory-resolver. Its own cache is off: [`DnsCache`] caches.
#[derive(Clone)]
pub struct HickoryBackend {
    resolver: TokioResolver,
}

impl std::fmt::Debug for HickoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryBackend").finish_non_exhaustive()
    }
}

impl HickoryBackend {
    /// A backend from settings. Must be called inside a tokio runtime.
    pub fn new(config: &HickoryConfig) -> Result<Self, BackendError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if config.servers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|e| BackendError::SystemConfig(e.to_string()))?
        } else {
            let servers = config
                .servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = config.timeout;
        opts.attempts = config.attempts;
        let resolver = builder
            .build()
            .map_err(|e| BackendError::Build(e.to_string()))?;
        Ok(HickoryBackend { resolver })
    }

    /// The system's resolv.conf servers with default settings.
    pub fn system() -> Result<Self, BackendError> {
        Self::new(&HickoryConfig::default())
    }

    /// One DNS server (address and port) with default settings.
    pub fn with_server(server: SocketAddr) -> Result<Self, BackendError> {
        Self::new(&HickoryConfig::default().with_server(server))
    }
}

impl DnsBackend for HickoryBackend {
    async fn query(&self, query: &DnsQuery) -> DnsAnswer {
        let rtype = match query.rtype {
            RecordType::Naptr => HickoryType::NAPTR,
            RecordType::Srv => HickoryType::SRV,
            RecordType::A => HickoryType::A,
            RecordType::Aaaa => HickoryType::AAAA,
        };
        // A trailing dot: the name is absolute, no search domains are appended.
        let name = format!("{}.", query.name);
        match self.resolver.lookup(name.as_str(), rtype).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| {
                    let data = match &r.data {
                        RData::NAPTR(n) if query.rtype == RecordType::Naptr => RecordData::Naptr {
                            order: n.order,
                            preference: n.preference,
                            flags: String::from_utf8_lossy(&n.flags).into_owned(),
                            services: String::from_utf8_lossy(&n.services).into_owned(),
                            regexp: String::from_utf8_lossy(&n.regexp).into_owned(),
                            replacement: n.replacement.to_string(),
                        },
                        RData::SRV(s) if query.rtype == RecordType::Srv => RecordData::Srv {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_string(),
                        },
                        RData::A(a) if query.rtype == RecordType::A => RecordData::A(a.0),
                        RData::AAAA(a) if query.rtype == RecordType::Aaaa => RecordData::Aaaa(a.0),
                        _ => return None,
                    };
                    Some(DnsRecord::new(r.ttl, data))
                })
                .collect()),
            Err(e) => map_error(&e),
        }
    }
}

fn map_error(e: &NetError) -> DnsAnswer {
    match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => {
            if nr.response_code == ResponseCode::NXDomain {
                Err(DnsError::NxDomain)
            } else {
                Ok(Vec::new())
            }
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused)) => {
            Err(DnsError::Refused)
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)) => {
            Err(DnsError::ServerFailure)
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::NXDomain)) => {
            Err(DnsError::NxDomain)
        }
        NetError::Timeout => Err(DnsError::Timeout),
        other => Err(DnsError::Other(other.to_string())),
    }
}
