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

/// The phone account of a config `[[account]]` (its password read from wherever the config
/// says), registering.
pub fn account_config(
    a: &tincan::config::Account,
) -> Result<tincan::phone::AccountConfig, tincan::config::ConfigError> {
    let password = a.password()?;
    let mut ac = tincan::phone::AccountConfig::new(
        a.name.clone(),
        a.aor.to_string(),
        a.username.clone(),
        password.expose().to_owned(),
    );
    ac.transport = a.transport.transport();
    ac.registrars = a.registrar_uris().iter().map(ToString::to_string).collect();
    ac.mode = a.register_mode;
    ac.expires = a.expires;
    ac.instance_id = a.outbound.then(|| a.instance_id.clone());
    Ok(ac)
}

/// The keep-alive settings of `[network]` (`keepalive_interval`, `udp_keepalive_interval`,
/// `stun_rto_ms`; 0 turns one off) in the phone's configuration (the flows of outbound
/// accounts).
pub fn apply_keepalives(
    network: &tincan::config::Network,
    config: &mut tincan::phone::PhoneConfig,
) {
    use std::time::Duration;
    use tincan_sip::flow::KeepAliveConfig;
    config.keepalive = match network.keepalive_interval {
        Some(0) => None,
        Some(secs) => {
            let mut k = KeepAliveConfig::stream();
            k.interval = Duration::from_secs(u64::from(secs));
            Some(k)
        }
        None => Some(KeepAliveConfig::stream()),
    };
    config.udp_keepalive = match network.udp_keepalive_interval {
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
