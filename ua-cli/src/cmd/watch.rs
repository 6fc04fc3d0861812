//! `tincan watch URI...`: registers an account, watches the contacts' busy lamps (RFC 4235
//! dialog event package, see docs/messaging.md) and prints each change until Ctrl-C or
//! `--duration`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use tincan::config::Config;
use tincan::phone::driver::Phone;
use tincan::phone::{PhoneConfig, PhoneEvent};

/// Arguments of `tincan watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The contacts to watch: SIP URIs (`sip:bob@example.com`), `user@domain`, or users of
    /// the account's domain.
    #[arg(required = true)]
    uris: Vec<String>,
    /// Watch through this account of the config (default: the first one). It registers
    /// first: the watches start once it is registered.
    #[arg(long)]
    account: Option<String>,
    /// One JSON object a line: `{"event": "lamp", "uri", "lamp"}`.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds (default: Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Local SIP address to bind (default: the config's, else any address and port).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// DNS server (ADDR:PORT) instead of the config's or the system's.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
}

/// Runs `tincan watch`: exit 0 after Ctrl-C or `--duration`, 1 when the phone could not
/// start, 2 on usage errors.
pub fn run(args: &WatchArgs, config_path: Option<&Path>) -> ExitCode {
    let (config, rt) = match super::setup("watch", config_path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    rt.block_on(watch(args, config))
}

async fn watch(args: &WatchArgs, config: Config) -> ExitCode {
    let fail = |msg: String, code: u8| {
        eprintln!("tincan watch: {msg}");
        ExitCode::from(code)
    };
    let chosen = match &args.account {
        Some(name) => match config.accounts.iter().position(|a| a.name == *name) {
            Some(i) => i,
            None => return fail(format!("no account named {name:?} in the config"), 2),
        },
        None if config.accounts.is_empty() => {
            return fail("the config has no [[account]] to watch through".into(), 2);
        }
        None => 0,
    };
    let mut pc = PhoneConfig::default();
    super::apply_keepalives(&config.network, &mut pc);
    let bind = args
        .bind
        .or(config.network.bind)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut builder = Phone::builder()
        .config(pc)
        .bind(bind)
        .tcp(true)
        .dual_stack(true)
        .ringback(None);
    if let Some(dns) = args.dns_server.or(config.network.dns_server) {
        builder = builder.dns_server(dns);
    }
    if let Some(t) = super::sip_trace() {
        builder = builder.sip_trace(t);
    }
    match super::account_config(&config.accounts[chosen]) {
        Ok(ac) => builder = builder.account(ac),
        Err(e) => return fail(e.to_string(), 2),
    }
    let mut phone = match builder.start().await {
        Ok(p) => p,
        Err(e) => return fail(e.to_string(), 1),
    };
    let Some(account) = phone.accounts().first().copied() else {
        phone.shutdown().await;
        return fail("the account did not start".into(), 1);
    };
    for uri in &args.uris {
        if let Err(e) = phone.watch_dialogs(account, uri).await {
            phone.shutdown().await;
            return fail(e.to_string(), 2);
        }
    }
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    loop {
        let event = tokio::select! {
            e = phone.next_event() => e,
            _ = tokio::signal::ctrl_c() => break,
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break,
        };
        let Some(event) = event else {
            break;
        };
        if let PhoneEvent::Account { event, .. } = &event {
            super::report_registration("watch", event);
        }
        if let PhoneEvent::Lamp(change) = event {
            if args.json {
                println!(
                    "{}",
                    json!({"event": "lamp", "uri": change.uri, "lamp": change.lamp})
                );
            } else {
                println!("{}: {}", change.uri, change.lamp);
            }
        }
    }
    phone.shutdown().await;
    ExitCode::SUCCESS
}
