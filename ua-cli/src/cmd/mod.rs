//! One module per `tincan` subcommand.

pub mod call;
pub mod demo;
pub mod devices;
pub mod history;
pub mod message;
pub mod nat;
pub mod parse;
pub mod ping;
pub mod presence;
pub mod register;
pub mod resolve;
pub mod watch;

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
    print_config_warnings(command, &config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tincan {command}: {e}");
            std::process::ExitCode::from(2)
        })?;
    Ok((config, rt))
}

/// Says on stderr how the registration of a command's only account went (`registered at`,
/// or why not), for the commands whose output is something else (`watch`, `presence watch`):
/// without it a wrong password or a dead registrar leaves them silent.
pub fn report_registration(command: &str, event: &tincan::phone::AccountEvent) {
    use tincan::phone::AccountEvent;
    let line = match event {
        AccountEvent::Registered { registrar, .. } => {
            format!("registered at {}", call::target_text(registrar))
        }
        AccountEvent::AuthenticationFailed {
            registrar, status, ..
        } => format!(
            "{} refused the credentials ({status}): check the username and password",
            call::target_text(registrar)
        ),
        AccountEvent::ChallengeRefused {
            registrar,
            challenge,
        } => format!("{}: {challenge}", call::target_text(registrar)),
        AccountEvent::Rejected {
            registrar,
            status,
            reason,
        } => format!(
            "{} refused the registration: {status} {reason}",
            call::target_text(registrar)
        ),
        AccountEvent::Unavailable {
            tried,
            errors,
            retry_in,
        } => {
            let mut all: Vec<String> = tried.iter().map(ToString::to_string).collect();
            all.extend(errors.iter().cloned());
            format!(
                "not registered (tried {}); retrying in {} s",
                all.join("; "),
                retry_in.as_secs()
            )
        }
        _ => return,
    };
    eprintln!("tincan {command}: {line}");
}

/// Prints what is unwise in the config file (a password others can read), once, on stderr.
pub fn print_config_warnings(command: &str, config: &tincan::config::Config) {
    for w in &config.warnings {
        eprintln!("tincan {command}: warning: {w}");
    }
}

/// The phone account of a config `[[account]]` (see
/// [`AccountConfig::from_config`](tincan::phone::AccountConfig::from_config)).
pub fn account_config(
    a: &tincan::config::Account,
) -> Result<tincan::phone::AccountConfig, tincan::config::ConfigError> {
    tincan::phone::AccountConfig::from_config(a)
}

/// The `[network]` keep-alive settings in the phone's configuration (see
/// [`PhoneConfig::apply_network`](tincan::phone::PhoneConfig::apply_network)).
pub fn apply_keepalives(
    network: &tincan::config::Network,
    config: &mut tincan::phone::PhoneConfig,
) {
    config.apply_network(network);
}
