//! The hickory-resolver 0.26 DNS backend (tokio feature).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType as HickoryType};

use super::backend::DnsBackend;
use super::dns::{DnsAnswer, DnsError, DnsQuery, DnsRecord, RecordData, RecordType};

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

/// DNS through hickory-resolver. Its own cache is off: [`super::DnsCache`] caches.
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
