//! `tincan presence set STATUS` and `tincan presence watch URI...`: publish the user's
//! presence (RFC 3903 PUBLISH) and watch contacts' (RFC 3856 SUBSCRIBE) through an account
//! of the config, until Ctrl-C or `--duration` (see docs/messaging.md).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use tincan::config::Config;
use tincan::phone::driver::Phone;
use tincan::phone::presence::{Presence, PresenceEvent, PresenceStatus};
use tincan::phone::{PhoneConfig, PhoneEvent};

/// Arguments of `tincan presence`.
#[derive(Debug, clap::Args)]
pub struct PresenceArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Publish a status (available, away, busy, offline) and keep it published (refreshed)
    /// until Ctrl-C or --duration; it is removed then.
    Set(SetArgs),
    /// Watch contacts' presence (the account registers) and print each change until Ctrl-C
    /// or --duration.
    Watch(WatchArgs),
}

/// What both actions take.
#[derive(Debug, clap::Args)]
struct Common {
    /// The account of the config to use (default: the only one).
    #[arg(long)]
    account: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long)]
    duration: Option<u64>,
    /// Local SIP address to bind (default: the config's, else any address and port).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// DNS server (ADDR:PORT) instead of the config's or the system's.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
}

#[derive(Debug, clap::Args)]
struct SetArgs {
    /// available, away, busy or offline.
    status: String,
    /// A note shown with the status.
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// The contacts: SIP URIs, or users of the account's domain.
    #[arg(required = true)]
    uris: Vec<String>,
    #[command(flatten)]
    common: Common,
}

/// Runs `tincan presence`: exit 0 when the status was published (`set`) or the watch ran
/// (`watch`), 1 when the server refused or never answered, 2 on usage errors.
pub fn run(args: &PresenceArgs, config_path: Option<&Path>) -> ExitCode {
    let (config, rt) = match super::setup("presence", config_path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    rt.block_on(async {
        match &args.action {
            Action::Set(a) => set(a, config).await,
            Action::Watch(a) => watch(a, config).await,
        }
    })
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("tincan presence: {msg}");
    ExitCode::from(code)
}

/// Starts a phone with the chosen account (registering or not).
async fn start(common: &Common, config: &Config, register: bool) -> Result<Phone, ExitCode> {
    let index = match &common.account {
        Some(name) => config
            .accounts
            .iter()
            .position(|a| a.name == *name)
            .ok_or_else(|| fail(&format!("no account named {name:?} in the config"), 2))?,
        None if config.accounts.len() == 1 => 0,
        None if config.accounts.is_empty() => {
            return Err(fail("presence needs an [[account]] in the config", 2));
        }
        None => return Err(fail("several accounts: choose one with --account", 2)),
    };
    let mut account =
        super::account_config(&config.accounts[index]).map_err(|e| fail(&e.to_string(), 2))?;
    account.register = register;
    // Only what the command asks: no automatic status, no configured watches.
    account.presence = false;
    account.watch.clear();
    let mut pc = PhoneConfig::default();
    super::apply_keepalives(&config.network, &mut pc);
    let bind = common
        .bind
        .or(config.network.bind)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut builder = Phone::builder()
        .config(pc)
        .bind(bind)
        .tcp(true)
        .dual_stack(true)
        .ringback(None)
        .account(account);
    if let Some(dns) = common.dns_server.or(config.network.dns_server) {
        builder = builder.dns_server(dns);
    }
    if let Some(t) = super::sip_trace() {
        builder = builder.sip_trace(t);
    }
    builder.start().await.map_err(|e| fail(&e.to_string(), 1))
}

/// Until Ctrl-C or the duration: the next event, or `None` when it is time to stop.
async fn next(phone: &mut Phone, deadline: Option<tokio::time::Instant>) -> Option<PhoneEvent> {
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        ev = phone.next_event() => ev,
        _ = tokio::signal::ctrl_c() => None,
        () = sleep => None,
    }
}

fn deadline(common: &Common) -> Option<tokio::time::Instant> {
    common
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s))
}

async fn set(args: &SetArgs, config: Config) -> ExitCode {
    let Some(status) = PresenceStatus::from_name(&args.status) else {
        return fail(
            &format!(
                "unknown status {:?}: available, away, busy or offline",
                args.status
            ),
            2,
        );
    };
    let mut phone = match start(&args.common, &config, false).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(&account) = phone.accounts().first() else {
        phone.shutdown().await;
        return fail("no account", 2);
    };
    let mut presence = Presence::new(status);
    presence.note.clone_from(&args.note);
    if let Err(e) = phone.set_presence(account, presence).await {
        phone.shutdown().await;
        return fail(&e.to_string(), 2);
    }
    let until = deadline(&args.common);
    let mut published = false;
    while let Some(ev) = next(&mut phone, until).await {
        if let PhoneEvent::Account { event, .. } = &ev {
            super::report_registration("presence", event);
        }
        let PhoneEvent::Presence(ev) = ev else {
            continue;
        };
        match ev {
            PresenceEvent::Published { status, .. } if !published => {
                published = true;
                if args.common.json {
                    println!(
                        "{}",
                        json!({"event": "published", "status": status.as_str()})
                    );
                } else {
                    println!("published: {status}");
                }
            }
            PresenceEvent::PublishFailed { reason, .. } => {
                if args.common.json {
                    println!("{}", json!({"event": "publish_failed", "reason": reason}));
                } else {
                    println!("publish failed: {reason}");
                }
            }
            _ => {}
        }
    }
    phone.shutdown().await;
    if published {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn watch(args: &WatchArgs, config: Config) -> ExitCode {
    let mut phone = match start(&args.common, &config, true).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(&account) = phone.accounts().first() else {
        phone.shutdown().await;
        return fail("no account", 2);
    };
    for uri in &args.uris {
        if let Err(e) = phone.watch_presence(account, uri).await {
            phone.shutdown().await;
            return fail(&e.to_string(), 2);
        }
    }
    let until = deadline(&args.common);
    while let Some(ev) = next(&mut phone, until).await {
        if let PhoneEvent::Account { event, .. } = &ev {
            super::report_registration("presence", event);
        }
        let PhoneEvent::Presence(ev) = ev else {
            continue;
        };
        if let Some(line) = watch_line(&ev, args.common.json) {
            println!("{line}");
        }
    }
    phone.shutdown().await;
    ExitCode::SUCCESS
}

/// The line `tincan presence watch` (and `tincan listen`) prints for an event (control
/// characters of the note escaped, so a peer cannot drive the terminal).
pub(crate) fn watch_line(ev: &PresenceEvent, json: bool) -> Option<String> {
    let clean = |s: &str| s.escape_default().to_string();
    match ev {
        PresenceEvent::Changed {
            uri, status, note, ..
        } => Some(if json {
            json!({"event": "presence", "uri": uri, "status": status.as_str(), "note": note})
                .to_string()
        } else {
            match note {
                Some(n) => format!("{}: {status} ({})", clean(uri), clean(n)),
                None => format!("{}: {status}", clean(uri)),
            }
        }),
        PresenceEvent::WatchEnded { uri, reason, .. } => Some(if json {
            json!({"event": "watch_ended", "uri": uri, "reason": reason}).to_string()
        } else {
            format!("{}: watch ended ({})", clean(uri), clean(reason))
        }),
        PresenceEvent::Unreadable { reason, .. } => Some(if json {
            json!({"event": "presence_unreadable", "reason": reason}).to_string()
        } else {
            format!("unreadable presence document: {}", clean(reason))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan::phone::AccountId;
    use tincan::phone::presence::WatchId;

    #[test]
    fn watch_lines() {
        let ev = PresenceEvent::Changed {
            watch: WatchId(1),
            account: AccountId(0),
            uri: "bob".to_owned(),
            status: PresenceStatus::Away,
            note: Some("lunch\u{1b}[2J".to_owned()),
        };
        assert_eq!(
            watch_line(&ev, false).as_deref(),
            Some("bob: away (lunch\\u{1b}[2J)")
        );
        let json: serde_json::Value =
            serde_json::from_str(&watch_line(&ev, true).unwrap()).unwrap();
        assert_eq!(json["status"], "away");
        assert_eq!(json["uri"], "bob");
    }
}
