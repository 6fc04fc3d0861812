//! `tincan resolve [--json] [--probe] [--dns-server ADDR:PORT] [--transport udp|tcp|tls] URI`:
//! the RFC 3263 chain (NAPTR, SRV, A/AAAA with TTLs) and the ordered targets; with `--probe`,
//! an OPTIONS to every target with its status and round-trip time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use tincan::config::Config;
use tincan_sip::driver::dns::{self, HickoryBackend};
use tincan_sip::driver::{Driver, DriverConfig, Handle, TlsSettings, TxError};
use tincan_sip::message::{HeaderName, Method, RequestBuilder, Uri};
use tincan_sip::resolve::{
    self, CacheConfig, Destination, DnsCache, DnsRecord, Lookup, RecordData, ResolveConfig,
    ResolveError, Resolved,
};
use tincan_sip::transport::{Target, Transport};

/// Arguments of `tincan resolve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SIP URI to resolve (`sip:example.com`, `sips:alice@example.com`,
    /// `sip:host:5070;transport=tcp`).
    uri: String,
    /// One JSON object: the lookups, the targets and (with --probe) the probes.
    #[arg(long)]
    json: bool,
    /// Send OPTIONS to every target and show its status and round-trip time.
    #[arg(long)]
    probe: bool,
    /// Only this transport (adds `transport=` to the URI, so NAPTR is skipped).
    #[arg(long, short = 't')]
    transport: Option<Transport>,
    /// DNS server (ADDR:PORT) instead of the config's `[network] dns_server` or the
    /// system's resolver.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// Seconds to wait for each probe's answer.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Extra CA certificate (PEM) to trust for TLS probes.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

/// The outcome of one probe.
#[derive(Debug, Serialize)]
struct Probe {
    target: String,
    transport: Transport,
    addr: SocketAddr,
    status: Option<u16>,
    reason: Option<String>,
    rtt_ms: Option<f64>,
    error: Option<String>,
}

/// The `--json` report: the chain as flat objects (`{"type": "SRV", "name": ..., "records":
/// [{"type": "SRV", "ttl": 60, "priority": 10, ...}], "error": null}`), then the targets.
#[derive(Serialize)]
struct Report<'a> {
    uri: &'a str,
    destination: &'a Destination,
    lookups: Vec<serde_json::Value>,
    targets: &'a [resolve::ResolvedTarget],
    #[serde(skip_serializing_if = "Option::is_none")]
    probes: Option<&'a [Probe]>,
}

#[derive(Serialize)]
struct Failure<'a> {
    uri: &'a str,
    error: String,
    lookups: Vec<serde_json::Value>,
}

fn lookup_json(l: &Lookup) -> serde_json::Value {
    let (records, error) = match &l.answer {
        Ok(r) => (r.iter().map(record_json).collect(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    serde_json::json!({
        "type": l.query.rtype.as_str(),
        "name": l.query.name,
        "records": records,
        "error": error,
    })
}

fn record_json(r: &DnsRecord) -> serde_json::Value {
    match &r.data {
        RecordData::Naptr {
            order,
            preference,
            flags,
            services,
            regexp,
            replacement,
        } => serde_json::json!({
            "type": "NAPTR", "ttl": r.ttl, "order": order, "preference": preference,
            "flags": flags, "services": services, "regexp": regexp, "replacement": replacement,
        }),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => serde_json::json!({
            "type": "SRV", "ttl": r.ttl, "priority": priority, "weight": weight,
            "port": port, "target": target,
        }),
        RecordData::A(a) => serde_json::json!({"type": "A", "ttl": r.ttl, "address": a}),
        RecordData::Aaaa(a) => serde_json::json!({"type": "AAAA", "ttl": r.ttl, "address": a}),
        _ => serde_json::json!({"ttl": r.ttl, "text": r.to_string()}),
    }
}

/// Runs the command with the config file named by `--config` (if any); returns the exit
/// status: 0 when there are targets (and, with `--probe`, one answered), 1 when there are
/// none (or none answered), 2 on usage errors (bad URI, bad config file).
pub fn run(args: &Args, config_path: Option<&Path>) -> ExitCode {
    let (config, rt) = match super::setup("resolve", config_path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    rt.block_on(resolve_and_probe(args, &config))
}

async fn resolve_and_probe(args: &Args, config: &Config) -> ExitCode {
    let mut dest = match Destination::parse(&args.uri) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan resolve: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(t) = args.transport {
        dest.transport = Some(t.as_str().to_owned());
    }
    let backend = match args.dns_server.or(config.network.dns_server) {
        Some(s) => HickoryBackend::with_server(s),
        None => HickoryBackend::system(),
    };
    let backend = match backend {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tincan resolve: DNS: {e}");
            return ExitCode::from(1);
        }
    };
    let mut rng = tincan_sip::driver::OsRng;
    let mut cache = DnsCache::new(CacheConfig::default());
    let resolved = dns::resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await;
    let resolved = match resolved {
        Ok(r) => r,
        Err(e) => {
            let (code, lookups) = match &e {
                ResolveError::NoServers { tried, .. } => (1, tried.0.as_slice()),
                _ => (2, &[][..]),
            };
            if args.json {
                let f = Failure {
                    uri: &args.uri,
                    error: e.to_string(),
                    lookups: lookups.iter().map(lookup_json).collect(),
                };
                println!(
                    "{}",
                    serde_json::to_string(&f).expect("a failure serializes")
                );
            }
            eprintln!("tincan resolve: {e}");
            return ExitCode::from(code);
        }
    };
    let probes = if args.probe && !resolved.targets.is_empty() {
        match probe_all(args, config, &resolved).await {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("tincan resolve: cannot start the SIP driver: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };

    if args.json {
        let report = Report {
            uri: &args.uri,
            destination: &resolved.destination,
            lookups: resolved.lookups.iter().map(lookup_json).collect(),
            targets: &resolved.targets,
            probes: probes.as_deref(),
        };
        println!(
            "{}",
            serde_json::to_string(&report).expect("a resolution serializes")
        );
    } else {
        print!("{resolved}");
        if let Some(probes) = &probes {
            println!("probes:");
            for (i, p) in probes.iter().enumerate() {
                match (p.status, p.rtt_ms) {
                    (Some(s), Some(rtt)) => println!(
                        "  {}. {}: {s} {} in {rtt:.2} ms",
                        i + 1,
                        p.target,
                        p.reason.as_deref().unwrap_or_default()
                    ),
                    _ => println!(
                        "  {}. {}: no answer ({})",
                        i + 1,
                        p.target,
                        p.error.as_deref().unwrap_or("error")
                    ),
                }
            }
        }
    }

    if resolved.targets.is_empty() {
        eprintln!("tincan resolve: no targets for {}", args.uri);
        return ExitCode::from(1);
    }
    match &probes {
        Some(p) if !p.iter().any(|p| p.status.is_some()) => {
            eprintln!("tincan resolve: no target answered OPTIONS");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Sends one OPTIONS to every target at once; results in target order.
async fn probe_all(
    args: &Args,
    config: &Config,
    resolved: &Resolved,
) -> Result<Vec<Probe>, tincan_sip::driver::DriverError> {
    let uri = match Uri::parse(&args.uri) {
        Ok(u @ Uri::Sip(_)) => u.into_owned(),
        // `Destination::parse` also takes a bare `host:port`; probe it as `sip:host:port`.
        _ => Uri::parse(&format!("sip:{}", args.uri.trim()))
            .map(Uri::into_owned)
            .unwrap_or_else(|_| {
                let t = &resolved.targets[0];
                Uri::parse(&format!("sip:{}", t.addr))
                    .expect("a socket address makes a valid SIP URI")
                    .into_owned()
            }),
    };
    let handle = start_driver(args, config, resolved).await?;
    let tag = handle.token(10).await.unwrap_or_default();
    // The From host: our address when it is a real one, in URI form (IPv6 in brackets).
    let from_host = match handle.local_address(Transport::Udp).map(|a| a.ip()) {
        Some(ip) if ip.is_unspecified() => "tincan.invalid".to_owned(),
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
        None => "tincan.invalid".to_owned(),
    };
    let wait = Duration::from_secs_f64(args.timeout.clamp(0.001, 3600.0));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in resolved.targets.iter().enumerate() {
        let mut target = Target::new(t.transport, t.addr);
        if t.host.parse::<IpAddr>().is_err() {
            target.server_name = Some(t.host.clone());
        }
        let request = RequestBuilder::new(Method::Options, &uri)
            .header(
                HeaderName::From,
                &format!("<sip:probe@{from_host}>;tag={tag}"),
            )
            .header(HeaderName::To, &format!("<{uri}>"))
            .call_id(&handle.new_call_id())
            .cseq(1)
            .header(HeaderName::Accept, "application/sdp")
            .build();
        let handle = handle.clone();
        tasks.spawn(async move { (i, probe_one(&handle, request, target, wait).await) });
    }
    let mut probes: Vec<Option<Probe>> = resolved.targets.iter().map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, p)) = done {
            probes[i] = Some(p);
        }
    }
    handle.shutdown().await;
    Ok(probes
        .into_iter()
        .zip(&resolved.targets)
        .map(|(p, t)| {
            p.unwrap_or_else(|| Probe {
                target: format!("{} {}", t.transport, t.addr),
                transport: t.transport,
                addr: t.addr,
                status: None,
                reason: None,
                rtt_ms: None,
                error: Some("probe task failed".into()),
            })
        })
        .collect())
}

async fn probe_one(
    handle: &Handle,
    request: tincan_sip::message::Message,
    target: Target,
    wait: Duration,
) -> Probe {
    let started = Instant::now();
    let outcome = match handle.request(request, target.clone()).await {
        Ok(mut tx) => match tokio::time::timeout(wait, tx.final_response()).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(TxError::TransportError)) => Err("transport error".to_owned()),
            Ok(Err(TxError::Timeout)) | Err(_) => Err("timeout".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
        },
        Err(e) => Err(format!("cannot send: {e}")),
    };
    let rtt = started.elapsed().as_secs_f64() * 1000.0;
    let (status, reason, error) = match outcome {
        Ok(r) => (r.status(), r.reason().map(|s| s.into_owned()), None),
        Err(e) => (None, None, Some(e)),
    };
    Probe {
        target: format!("{} {}", target.transport, target.addr),
        transport: target.transport,
        addr: target.addr,
        status,
        reason,
        rtt_ms: status.map(|_| (rtt * 1000.0).round() / 1000.0),
        error,
    }
}

/// A driver with sockets of every family the targets need (on the config's `bind` address
/// when it has that family).
async fn start_driver(
    args: &Args,
    config: &Config,
    resolved: &Resolved,
) -> Result<Handle, tincan_sip::driver::DriverError> {
    let local = |v4: bool| -> SocketAddr {
        match config.network.bind {
            Some(b) if b.is_ipv4() == v4 => SocketAddr::new(b.ip(), 0),
            _ if v4 => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            _ => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        }
    };
    let mut addrs = Vec::new();
    if resolved.targets.iter().any(|t| t.addr.is_ipv4()) {
        addrs.push(local(true));
    }
    if resolved.targets.iter().any(|t| t.addr.is_ipv6()) {
        addrs.push(local(false));
    }
    let streams = resolved
        .targets
        .iter()
        .any(|t| t.transport != Transport::Udp);
    let mut tls = TlsSettings::system();
    if let Some(ca) = &args.ca_file {
        tls.ca_files.push(ca.clone());
    }
    let mut last_err = None;
    // With both families, retry with IPv4 alone if IPv6 cannot be bound (no IPv6 on this host).
    for n in (1..=addrs.len()).rev() {
        let use_addrs = &addrs[..n];
        let mut dc = DriverConfig::udp(use_addrs[0]);
        dc.udp = use_addrs.to_vec();
        if streams {
            dc.tcp = use_addrs.to_vec();
        }
        dc.tls = tls.clone();
        dc.shutdown_grace = Duration::from_millis(100);
        dc.trace = super::sip_trace();
        match Driver::start(dc).await {
            Ok((handle, _incoming)) => return Ok(handle),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.expect("at least one address family is tried, targets being non-empty"))
}
