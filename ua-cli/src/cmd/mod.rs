//! One module per `tincan` subcommand.

pub mod call;
pub mod demo;
pub mod devices;
pub mod parse;
pub mod ping;
pub mod register;
pub mod resolve;

/// The tracer of `--sip-trace`, once set.
static SIP_TRACE: std::sync::OnceLock<tincan_sip::driver::Tracer> = std::sync::OnceLock::new();

/// Opens the `--sip-trace` file (`-`: standard error) for the drivers this process starts.
pub fn set_sip_trace(path: &std::path::Path) -> std::io::Result<()> {
    let tracer = tincan::trace::to_path(path)?;
    let _ = SIP_TRACE.set(tracer);
    Ok(())
}

/// The tracer of `--sip-trace`, if given.
pub fn sip_trace() -> Option<tincan_sip::driver::Tracer> {
    SIP_TRACE.get().cloned()
}

/// What every network command starts with: the config file (named by `--config`, or the
/// default one) and a single-threaded tokio runtime. On failure the error is printed with the
/// command's name and the usage exit status (2) is returned.
pub fn setup(
    command: &str,
    config_path: Option<&std::path::Path>,
) -> Result<(tincan::config::Config, tokio::runtime::Runtime), std::process::ExitCode> {
    let config = tincan::config::Config::load(config_path).map_err(|e| {
        eprintln!("tincan {command}: {e}");
        std::process::ExitCode::from(2)
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tincan {command}: {e}");
            std::process::ExitCode::from(2)
        })?;
    Ok((config, rt))
}

/// What an `[[account]]` of the config registers (its password read from wherever the config
/// says).
pub fn account_spec(
    a: &tincan::config::Account,
) -> Result<tincan::account::AccountSpec, tincan::config::ConfigError> {
    let password = a.password()?;
    Ok(tincan::account::AccountSpec {
        name: a.name.clone(),
        aor: a.aor.to_string(),
        username: a.username.clone(),
        password: password.expose().to_owned(),
        transport: a.transport.transport(),
        registrars: a.registrar_uris().iter().map(ToString::to_string).collect(),
        mode: a.register_mode,
        expires: a.expires,
        instance_id: a.outbound.then(|| a.instance_id.clone()),
    })
}

/// The keep-alive settings of `[network]` (`keepalive_interval`, `udp_keepalive_interval`,
/// `stun_rto_ms`; 0 turns one off) applied to the accounts run with `ctx`.
pub fn apply_keepalives(
    network: &tincan::config::Network,
    ctx: &mut tincan::account::AccountContext,
) {
    use std::time::Duration;
    use tincan_sip::flow::KeepAliveConfig;
    ctx.keepalive = match network.keepalive_interval {
        Some(0) => None,
        Some(secs) => {
            let mut k = KeepAliveConfig::stream();
            k.interval = Duration::from_secs(u64::from(secs));
            Some(k)
        }
        None => Some(KeepAliveConfig::stream()),
    };
    ctx.udp_keepalive = match network.udp_keepalive_interval {
        Some(0) => None,
        secs => {
            let mut k = KeepAliveConfig::datagram();
            if let Some(secs) = secs {
                k.interval = Duration::from_secs(u64::from(secs));
            }
            if let Some(ms) = network.stun_rto_ms {
                k = k.with_stun_rto(Duration::from_millis(u64::from(ms)));
            }
            Some(k)
        }
    };
}

/// Starts the SIP driver on `bind` (UDP; TCP too when `tcp`), with a second, IPv6 socket when
/// `bind` is IPv4, so that IPv6 registrars and peers work too: on `bind`'s port (a `listen`
/// on 5060 is on `[::]:5060` too), else on any port when that one is taken, else (no IPv6 on
/// the machine) the IPv4 socket alone.
pub async fn start_driver(
    bind: std::net::SocketAddr,
    tcp: bool,
) -> Result<
    (tincan_sip::driver::Handle, tincan_sip::driver::Incoming),
    tincan_sip::driver::DriverError,
> {
    use tincan_sip::driver::{Driver, DriverConfig};
    let mut dc = DriverConfig::udp(bind);
    dc.trace = sip_trace();
    if tcp {
        dc.tcp = vec![bind];
    }
    if bind.is_ipv4() {
        let ports = if bind.port() == 0 {
            vec![0]
        } else {
            vec![bind.port(), 0]
        };
        for port in ports {
            let v6 = std::net::SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port);
            let mut both = dc.clone();
            both.udp.push(v6);
            if tcp {
                both.tcp.push(v6);
            }
            if let Ok(started) = Driver::start(both).await {
                return Ok(started);
            }
        }
    }
    Driver::start(dc).await
}
