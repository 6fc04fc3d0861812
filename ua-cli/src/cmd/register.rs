//! `tincan register [--account NAME] [--once] [--json]`: register the configured accounts and
//! report, per registrar, the result, the binding and the time it took.
//!
//! The accounts run in the phone core ([`tincan::phone::driver::Phone`]): failover over the
//! registrars, fail-back to a preferred one, and RFC 5626 flow keep-alives (the `[network]`
//! keep-alive settings) with a new flow and a new REGISTER when one fails.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tincan::config::Config;
use tincan::phone::driver::{Phone, StartError};
use tincan::phone::{AccountEvent, AccountId, PhoneConfig, PhoneEvent};
use tincan_sip::resolve::failover::{AttemptFailure, FailedAttempt};
use tincan_sip::transport::Target;

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

/// What `tincan register` prints for each account event (`--json`: one object a line).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    /// Registered with a registrar.
    Registered {
        account: String,
        /// `udp:127.0.0.1:5060`.
        registrar: String,
        /// Granted expiry, seconds.
        expires: u64,
        bindings: Vec<String>,
        elapsed_ms: u64,
    },
    /// A registrar failed; in failover mode the next one is tried.
    Failed {
        account: String,
        registrar: String,
        error: String,
        elapsed_ms: u64,
    },
    /// The account could not register anywhere.
    Unavailable { account: String, tried: Vec<String> },
    /// The binding was removed.
    Unregistered { account: String, registrar: String },
    /// The flow of a registration died; the account registers again at once.
    FlowFailed {
        account: String,
        registrar: String,
        reason: String,
    },
    /// Registered again over a new flow.
    FlowRecovered {
        account: String,
        registrar: String,
        expires: u64,
        elapsed_ms: u64,
    },
    /// The registrar saw us at another address (a NAT): the Contact was rewritten.
    ContactRewritten {
        account: String,
        registrar: String,
        from: String,
        to: String,
    },
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
    super::print_config_warnings("register", &config);
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
    let chosen: Vec<_> = config
        .accounts
        .iter()
        .filter(|a| args.account.as_ref().is_none_or(|n| *n == a.name))
        .collect();
    if chosen.is_empty() {
        match &args.account {
            Some(n) => eprintln!("tincan register: no account named {n:?} in the config"),
            None => eprintln!("tincan register: the config has no [[account]]"),
        }
        return ExitCode::from(2);
    }
    let mut accounts = Vec::new();
    for a in &chosen {
        match super::account_config(a) {
            Ok(ac) => accounts.push(ac),
            Err(e) => {
                eprintln!("tincan register: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut pc = PhoneConfig::default();
    super::apply_keepalives(&config.network, &mut pc);
    let bind = config
        .network
        .bind
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut builder = Phone::builder()
        .config(pc)
        .bind(bind)
        .tcp(true)
        .dual_stack(true);
    if let Some(dns) = args.dns_server.or(config.network.dns_server) {
        builder = builder.dns_server(dns);
    }
    if let Some(bytes) = config.network.udp_buffer_size {
        builder = builder.udp_buffer_size((bytes > 0).then_some(bytes as usize));
    }
    if let Some(t) = super::sip_trace() {
        builder = builder.sip_trace(t);
    }
    let names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
    for a in accounts {
        builder = builder.account(a);
    }
    let mut phone = match builder.start().await {
        Ok(p) => p,
        Err(StartError::Dns(e)) => {
            eprintln!("tincan register: DNS: {e}");
            return ExitCode::from(1);
        }
        Err(StartError::Account(e)) => {
            eprintln!("tincan register: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("tincan register: {e}");
            return ExitCode::from(1);
        }
    };
    // The phone's accounts are the builder's, in order.
    let name_of: Vec<(AccountId, String)> = phone
        .accounts()
        .iter()
        .copied()
        .zip(names.iter().cloned())
        .collect();
    let wanted = names.len();
    let mut registered = HashSet::new();
    let mut given_up = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    let mut stopping = false;
    // When each account's last event came: a refusal is timed from there.
    let mut since: std::collections::HashMap<String, tokio::time::Instant> = names
        .iter()
        .map(|n| (n.clone(), tokio::time::Instant::now()))
        .collect();
    loop {
        let next = tokio::select! {
            ev = phone.next_event() => ev,
            _ = tokio::signal::ctrl_c(), if !stopping => {
                stopping = true;
                phone.begin_shutdown();
                continue;
            }
            _ = tokio::time::sleep_until(deadline), if args.once && !stopping => {
                stopping = true;
                phone.begin_shutdown();
                continue;
            }
        };
        let Some(ev) = next else {
            break;
        };
        let PhoneEvent::Account { account, event } = ev else {
            continue;
        };
        let Some(name) = name_of
            .iter()
            .find(|(id, _)| *id == account)
            .map(|(_, n)| n.clone())
        else {
            continue;
        };
        let now = tokio::time::Instant::now();
        let waited = since
            .insert(name.clone(), now)
            .map_or(Duration::ZERO, |t| now.duration_since(t));
        for line in lines(&name, &event, waited) {
            print_line(&line, args.json);
        }
        match &event {
            AccountEvent::Registered { .. } => {
                registered.insert(name);
            }
            AccountEvent::Unavailable { .. }
            | AccountEvent::AuthenticationFailed { .. }
            | AccountEvent::ChallengeRefused { .. }
            | AccountEvent::Rejected { .. } => {
                given_up.insert(name);
            }
            _ => {}
        }
        if args.once && !stopping && registered.len() + given_up.len() >= wanted {
            stopping = true;
            phone.begin_shutdown();
        }
    }
    phone.shutdown().await;
    if names.iter().all(|n| registered.contains(n)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The registrar as `tincan register` has always printed it: `udp:127.0.0.1:5060`.
fn registrar(t: &Target) -> String {
    format!("{}:{}", t.transport.as_str(), t.addr)
}

/// What went wrong at a registrar, in the words of a failed REGISTER.
fn error_text(why: &AttemptFailure) -> String {
    match why {
        AttemptFailure::NoResponse { .. } | AttemptFailure::Timeout => {
            "no response from the registrar".into()
        }
        AttemptFailure::TransportError | AttemptFailure::Unreachable => "transport error".into(),
        AttemptFailure::ServiceUnavailable { .. } => {
            "registrar answered 503 Service Unavailable".into()
        }
        other => other.to_string(),
    }
}

fn attempt_text(a: &FailedAttempt) -> String {
    format!(
        "{}:{}: {}",
        a.target.transport.as_str(),
        a.target.addr,
        error_text(&a.why)
    )
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The lines an account event prints; `waited`: since the account's previous event (the
/// time a refusal took).
fn lines(account: &str, event: &AccountEvent, waited: Duration) -> Vec<Line> {
    let account = account.to_owned();
    match event {
        AccountEvent::Registered {
            registrar: r,
            expires,
            bindings,
            elapsed,
        } => vec![Line::Registered {
            account,
            registrar: registrar(r),
            expires: expires.as_secs(),
            bindings: bindings.clone(),
            elapsed_ms: ms(*elapsed),
        }],
        AccountEvent::Failed { attempt, elapsed } => vec![Line::Failed {
            account,
            registrar: format!(
                "{}:{}",
                attempt.target.transport.as_str(),
                attempt.target.addr
            ),
            error: error_text(&attempt.why),
            elapsed_ms: ms(*elapsed),
        }],
        // A registrar that refuses: the next one would say the same.
        AccountEvent::AuthenticationFailed {
            registrar: r,
            reason,
            ..
        }
        | AccountEvent::Rejected {
            registrar: r,
            reason,
            ..
        } => vec![
            Line::Failed {
                account: account.clone(),
                registrar: registrar(r),
                error: reason.clone(),
                elapsed_ms: ms(waited),
            },
            Line::Unavailable {
                account,
                tried: vec![format!("{}: {reason}", registrar(r))],
            },
        ],
        // We refused the challenge (its realm): the next registrar would get the same answer.
        AccountEvent::ChallengeRefused {
            registrar: r,
            challenge,
        } => vec![
            Line::Failed {
                account: account.clone(),
                registrar: registrar(r),
                error: challenge.to_string(),
                elapsed_ms: ms(waited),
            },
            Line::Unavailable {
                account,
                tried: vec![format!("{}: {challenge}", registrar(r))],
            },
        ],
        AccountEvent::Unavailable { tried, errors, .. } => {
            let mut all: Vec<String> = tried.iter().map(attempt_text).collect();
            all.extend(errors.iter().cloned());
            vec![Line::Unavailable {
                account,
                tried: all,
            }]
        }
        AccountEvent::Unregistered { registrar: r } => vec![Line::Unregistered {
            account,
            registrar: registrar(r),
        }],
        AccountEvent::FlowFailed {
            registrar: r,
            reason,
        } => vec![Line::FlowFailed {
            account,
            registrar: registrar(r),
            reason: reason.to_string(),
        }],
        AccountEvent::FlowRecovered {
            registrar: r,
            expires,
            elapsed,
        } => vec![Line::FlowRecovered {
            account,
            registrar: registrar(r),
            expires: expires.as_secs(),
            elapsed_ms: ms(*elapsed),
        }],
        AccountEvent::ContactRewritten {
            registrar: r,
            from,
            to,
        } => vec![Line::ContactRewritten {
            account,
            registrar: registrar(r),
            from: from.to_string(),
            to: to.to_string(),
        }],
        _ => Vec::new(),
    }
}

fn print_line(line: &Line, json: bool) {
    if json {
        println!("{}", serde_json::to_string(line).expect("events serialize"));
        return;
    }
    match line {
        Line::Registered {
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
        Line::Failed {
            account,
            registrar,
            error,
            elapsed_ms,
        } => println!("{account}: {registrar} failed after {elapsed_ms} ms: {error}"),
        Line::Unavailable { account, tried } => {
            println!("{account}: not registered; tried: {}", tried.join("; "))
        }
        Line::Unregistered { account, registrar } => {
            println!("{account}: unregistered from {registrar}")
        }
        Line::FlowFailed {
            account,
            registrar,
            reason,
        } => println!("{account}: flow to {registrar} failed ({reason}); registering again"),
        Line::FlowRecovered {
            account,
            registrar,
            expires,
            elapsed_ms,
        } => println!(
            "{account}: registered again at {registrar} over a new flow for {expires} s in {elapsed_ms} ms"
        ),
        Line::ContactRewritten {
            account,
            registrar,
            from,
            to,
        } => println!(
            "{account}: {registrar} sees us at {to}, not {from} (a NAT): registering that contact"
        ),
    }
}
