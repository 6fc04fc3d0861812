//! `tincan register [--account NAME] [--once] [--json]`: register the configured accounts and
//! report, per registrar, the result, the binding and the time it took.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tincan::account::{AccountContext, AccountEvent, run_account};
use tincan::config::Config;
use tincan_sip::driver::dns::HickoryBackend;
use tokio::sync::{mpsc, watch};

/// Arguments of `tincan register`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this account (default: every account of the config file).
    #[arg(long)]
    account: Option<String>,
    /// Register, report, unregister and exit: 0 when every wanted registration succeeded.
    #[arg(long)]
    once: bool,
    /// One JSON object per event.
    #[arg(long)]
    json: bool,
    /// DNS server (ADDR:PORT) instead of the config's or the system's.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// With --once, seconds to wait for every account to settle.
    #[arg(long, default_value_t = 30)]
    wait: u64,
}

/// Runs the command.
pub fn run(args: &Args, config_path: Option<&Path>) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan register: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tincan register: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(register(args, config))
}

async fn register(args: &Args, config: Config) -> ExitCode {
    let accounts: Vec<_> = config
        .accounts
        .iter()
        .filter(|a| args.account.as_ref().is_none_or(|n| *n == a.name))
        .collect();
    if accounts.is_empty() {
        match &args.account {
            Some(n) => eprintln!("tincan register: no account named {n:?} in the config"),
            None => eprintln!("tincan register: the config has no [[account]]"),
        }
        return ExitCode::from(2);
    }
    let mut specs = Vec::new();
    for a in &accounts {
        match super::account_spec(a) {
            Ok(spec) => specs.push(spec),
            Err(e) => {
                eprintln!("tincan register: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let dns = match args.dns_server.or(config.network.dns_server) {
        Some(s) => HickoryBackend::with_server(s),
        None => HickoryBackend::system(),
    };
    let dns = match dns {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan register: DNS: {e}");
            return ExitCode::from(1);
        }
    };
    let bind = config
        .network
        .bind
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let started = super::start_driver(bind, true).await;
    let (sip, _incoming) = match started {
        Ok(x) => x,
        Err(e) => {
            eprintln!("tincan register: {e}");
            return ExitCode::from(1);
        }
    };
    let mut ctx = AccountContext::new(sip.clone(), dns);
    super::apply_keepalives(&config.network, &mut ctx);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for spec in specs.clone() {
        tasks.push(tokio::spawn(run_account(
            ctx.clone(),
            spec,
            ev_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ev_tx);
    let wanted = specs.len();
    let mut registered = std::collections::HashSet::new();
    let mut given_up = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    let mut stopping = false;
    loop {
        let next = tokio::select! {
            ev = ev_rx.recv() => ev,
            _ = tokio::signal::ctrl_c(), if !stopping => {
                stopping = true;
                let _ = stop_tx.send(true);
                continue;
            }
            _ = tokio::time::sleep_until(deadline), if args.once && !stopping => {
                stopping = true;
                let _ = stop_tx.send(true);
                continue;
            }
        };
        let Some(ev) = next else {
            break;
        };
        print_event(&ev, args.json);
        match &ev {
            AccountEvent::Registered { account, .. } => {
                registered.insert(account.clone());
            }
            AccountEvent::Unavailable { account, .. } => {
                given_up.insert(account.clone());
            }
            AccountEvent::Failed { error, account, .. }
                if error.contains("wrong username or password") =>
            {
                given_up.insert(account.clone());
            }
            _ => {}
        }
        if args.once && !stopping && registered.len() + given_up.len() >= wanted {
            stopping = true;
            let _ = stop_tx.send(true);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    sip.shutdown().await;
    let ok = specs.iter().all(|s| registered.contains(&s.name));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_event(ev: &AccountEvent, json: bool) {
    if json {
        println!("{}", serde_json::to_string(ev).expect("events serialize"));
        return;
    }
    match ev {
        AccountEvent::Registered {
            account,
            registrar,
            expires,
            bindings,
            elapsed_ms,
        } => {
            println!("{account}: registered at {registrar} for {expires} s in {elapsed_ms} ms");
            for b in bindings {
                println!("  binding {b}");
            }
        }
        AccountEvent::Failed {
            account,
            registrar,
            error,
            elapsed_ms,
        } => println!("{account}: {registrar} failed after {elapsed_ms} ms: {error}"),
        AccountEvent::Unavailable { account, tried } => {
            println!("{account}: not registered; tried: {}", tried.join("; "))
        }
        AccountEvent::Unregistered { account, registrar } => {
            println!("{account}: unregistered from {registrar}")
        }
        AccountEvent::FlowFailed {
            account,
            registrar,
            reason,
        } => println!("{account}: flow to {registrar} failed ({reason}); registering again"),
        AccountEvent::FlowRecovered {
            account,
            registrar,
            expires,
            elapsed_ms,
        } => println!(
            "{account}: registered again at {registrar} over a new flow for {expires} s in {elapsed_ms} ms"
        ),
    }
}
