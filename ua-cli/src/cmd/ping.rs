//! `tincan ping [--json] [--count N] [--transport udp|tcp|tls] URI`: OPTIONS pings, like
//! sipsak.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use tincan_sip::driver::dns::{self, HickoryBackend};
use tincan_sip::driver::{Driver, DriverConfig, TlsSettings};
use tincan_sip::message::{HeaderName, Method, RequestBuilder, Uri};
use tincan_sip::resolve::{CacheConfig, Destination, DnsCache, ResolveConfig};
use tincan_sip::transport::{Target, Transport};

/// Arguments of `tincan ping`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SIP URI to ping (`sip:host`, `sip:user@domain:port;transport=tcp`, `sips:...`).
    uri: String,
    /// One JSON object per attempt.
    #[arg(long)]
    json: bool,
    /// Number of OPTIONS to send.
    #[arg(long, short = 'c', default_value_t = 1)]
    count: u32,
    /// Force a transport (otherwise RFC 3263 chooses).
    #[arg(long, short = 't')]
    transport: Option<Transport>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Seconds between attempts.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// DNS server (ADDR:PORT) instead of the config's `[network] dns_server` or the system's
    /// resolver.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// Extra CA certificate (PEM) to trust for TLS.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

#[derive(Serialize)]
struct Attempt<'a> {
    seq: u32,
    target: String,
    status: Option<u16>,
    reason: Option<String>,
    rtt_ms: Option<f64>,
    error: Option<&'a str>,
}

/// Runs the command with the config file named by `--config` (if any; only its
/// `[network] dns_server` is used); returns the exit status.
pub fn run(args: &Args, config_path: Option<&Path>) -> ExitCode {
    let (config, rt) = match super::setup("ping", config_path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    rt.block_on(ping(args, config.network.dns_server))
}

async fn ping(args: &Args, config_dns: Option<SocketAddr>) -> ExitCode {
    let uri = match Uri::parse(&args.uri) {
        Ok(u @ Uri::Sip(_)) => u.into_owned(),
        _ => {
            eprintln!("tincan ping: {:?} is not a sip: or sips: URI", args.uri);
            return ExitCode::from(2);
        }
    };
    let mut dest = match Destination::parse(&args.uri) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan ping: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(t) = args.transport {
        dest.transport = Some(t.as_str().to_owned());
    }
    let backend = match args.dns_server.or(config_dns) {
        Some(s) => HickoryBackend::with_server(s),
        None => HickoryBackend::system(),
    };
    let backend = match backend {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tincan ping: DNS: {e}");
            return ExitCode::from(1);
        }
    };
    let mut rng = tincan_sip::driver::OsRng;
    let mut cache = DnsCache::new(CacheConfig::default());
    let resolved = match dns::resolve(
        dest,
        ResolveConfig::default(),
        &backend,
        &mut cache,
        &mut rng,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tincan ping: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(first) = resolved.targets.first() else {
        eprintln!("tincan ping: no target for {}", args.uri);
        return ExitCode::from(1);
    };
    let mut target = Target::new(first.transport, first.addr);
    if first.host.parse::<std::net::IpAddr>().is_err() {
        target.server_name = Some(first.host.clone());
    }
    let any: SocketAddr = if target.addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal address")
    } else {
        "[::]:0".parse().expect("literal address")
    };
    let mut config = DriverConfig::udp(any);
    if target.transport != Transport::Udp {
        config.tcp = vec![any];
    }
    let mut tls = TlsSettings::system();
    if let Some(ca) = &args.ca_file {
        tls.ca_files.push(ca.clone());
    }
    config.tls = tls;
    config.shutdown_grace = Duration::from_millis(100);
    config.trace = super::sip_trace();
    let (handle, _incoming) = match Driver::start(config).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("tincan ping: {e}");
            return ExitCode::from(1);
        }
    };
    let tag = handle.token(10).await.unwrap_or_default();
    // The From host: our address when it is a real one, in URI form (IPv6 in brackets).
    let from_host = match handle.local_address(Transport::Udp).map(|a| a.ip()) {
        Some(ip) if ip.is_unspecified() => "tincan.invalid".to_owned(),
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
        None => "tincan.invalid".to_owned(),
    };
    let mut any_final = false;
    for seq in 1..=args.count.max(1) {
        let request = RequestBuilder::new(Method::Options, &uri)
            .header(
                HeaderName::From,
                &format!("<sip:ping@{from_host}>;tag={tag}"),
            )
            .header(HeaderName::To, &format!("<{uri}>"))
            .call_id(&handle.new_call_id())
            .cseq(seq)
            .header(HeaderName::Accept, "application/sdp")
            .build();
        let started = Instant::now();
        let outcome = match handle.request(request, target.clone()).await {
            Ok(mut tx) => {
                let wait = Duration::from_secs_f64(args.timeout.max(0.001));
                match tokio::time::timeout(wait, tx.final_response()).await {
                    Ok(Ok(resp)) => Ok(resp),
                    Ok(Err(e)) => Err(match e {
                        tincan_sip::driver::TxError::TransportError => "transport error",
                        _ => "timeout",
                    }),
                    Err(_) => Err("timeout"),
                }
            }
            Err(_) => Err("cannot send"),
        };
        let rtt = started.elapsed().as_secs_f64() * 1000.0;
        let (status, reason, error) = match &outcome {
            Ok(r) => (r.status(), r.reason().map(|s| s.into_owned()), None),
            Err(e) => (None, None, Some(*e)),
        };
        if status.is_some() {
            any_final = true;
        }
        let a = Attempt {
            seq,
            target: target.to_string(),
            status,
            reason: reason.clone(),
            rtt_ms: status.map(|_| (rtt * 1000.0).round() / 1000.0),
            error,
        };
        if args.json {
            println!("{}", serde_json::to_string(&a).expect("attempts serialize"));
        } else if let Some(s) = status {
            println!(
                "{seq}: {s} {} from {} in {rtt:.2} ms",
                reason.unwrap_or_default(),
                target
            );
        } else {
            println!(
                "{seq}: no answer from {} ({})",
                target,
                error.unwrap_or("error")
            );
        }
        if seq < args.count {
            tokio::time::sleep(Duration::from_secs_f64(args.interval.max(0.0))).await;
        }
    }
    handle.shutdown().await;
    if any_final {
        ExitCode::SUCCESS
    } else {
        if !args.json {
            eprintln!("tincan ping: no final response from {target}");
        }
        ExitCode::from(1)
    }
}
