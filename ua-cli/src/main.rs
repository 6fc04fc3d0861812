//! The `tincan` terminal user agent: a thin shell over the `tincan` library.

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod tui;

/// Tincan: a resilient, open-standards SIP softphone.
#[derive(Debug, Parser)]
#[command(name = "tincan", version, about, long_about = None)]
struct Cli {
    /// The config file (default: $TINCAN_CONFIG, else $XDG_CONFIG_HOME/tincan/config.toml
    /// or ~/.config/tincan/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Append every SIP message sent or received to FILE (`-`: standard error), each with a
    /// time stamp, the transport and both addresses (call, listen, register, ping, resolve,
    /// demo; phone: a file only, the messages also in its SIP log pane).
    #[arg(long, global = true, value_name = "FILE")]
    sip_trace: Option<PathBuf>,
    /// None: the full-screen phone on a terminal, else the usage.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read files as SIP datagrams and print the verdict a Tincan user agent gives each:
    /// `accept`, `reject <status> <reason>` or `drop`.
    ///
    /// Exit status: 0 when every file is accepted, 1 when any is rejected or dropped, 2 on
    /// usage or I/O errors.
    Parse(cmd::parse::Args),
    /// Send SIP OPTIONS to a URI and print each answer's status and round-trip time.
    ///
    /// Exit status: 0 when a final response arrived, 1 on timeout or transport error, 2 on
    /// usage errors.
    Ping(cmd::ping::Args),
    /// Ask a STUN server which public address it sees (behind a NAT) and whether the NAT's
    /// mapping is endpoint-independent (RFC 5780: a second --stun-server, or the server's
    /// OTHER-ADDRESS).
    ///
    /// Exit status: 0 when the public address is known and the mapping is
    /// endpoint-independent or could not be tested, 3 when it is endpoint-dependent (a
    /// symmetric NAT), 1 when the server did not answer, 2 on usage errors.
    Nat(cmd::nat::Args),
    /// Resolve a SIP URI by RFC 3263 and print the chain (NAPTR, SRV, addresses with TTLs)
    /// and the ordered targets; with --probe, send OPTIONS to each target.
    ///
    /// Exit status: 0 when there are targets (with --probe: one answered), 1 otherwise, 2 on
    /// usage errors.
    Resolve(cmd::resolve::Args),
    /// Register the configured accounts and report each registrar's result, binding and time;
    /// with --once, unregister and exit (0 when every registration succeeded).
    Register(cmd::register::Args),
    /// List the audio devices (id, name, input/output, defaults).
    Devices(cmd::devices::Args),
    /// Call a SIP URI: through an account's registrar, or straight to the callee's domain
    /// (RFC 3263). Hangs up on Ctrl-C or after --duration.
    ///
    /// Exit status: 0 when the call was answered and ended normally, 1 otherwise (the final
    /// SIP status is printed), 2 on usage errors.
    #[command(after_help = cmd::call::CALL_KEYS)]
    Call(cmd::call::CallArgs),
    /// Send a text message (SIP MESSAGE, RFC 3428) to a URI: through an account, or straight
    /// to the recipient's domain (RFC 3263); print its delivery report.
    ///
    /// Exit status: 0 when it was delivered (a 2xx), 1 when it was refused or no server
    /// answered (the status is printed), 2 on usage errors.
    Message(cmd::message::MessageArgs),
    /// Publish your presence (`set available|away|busy|offline`, RFC 3903 PUBLISH) or watch
    /// contacts' (`watch URI...`, RFC 3856 SUBSCRIBE) through an account, until Ctrl-C.
    ///
    /// Exit status: 0 when published (set) or watched (watch), 1 when the server refused or
    /// never answered, 2 on usage errors.
    Presence(cmd::presence::PresenceArgs),
    /// Watch contacts' busy lamps (RFC 4235 dialog event package) through a registered
    /// account and print each change (idle, ringing, busy, unknown) until Ctrl-C.
    Watch(cmd::watch::WatchArgs),
    /// Wait for calls (and print the text messages that arrive): registered with an account,
    /// or on --bind for direct calls.
    #[command(after_help = cmd::call::LISTEN_KEYS)]
    Listen(cmd::call::ListenArgs),
    /// Two Tincan phones call each other on loopback (SRTP, Opus, voice both ways) and check
    /// that the audio arrives intact: no provider and no sound card needed. --audio: an echo
    /// test through the default sound devices.
    ///
    /// Exit status: 0 when the audio arrived intact both ways, 1 otherwise.
    Demo(cmd::demo::Args),
    /// Print the last calls (newest first) from the call history that `call` and `listen`
    /// keep in $XDG_DATA_HOME/tincan/history.sqlite3 (or ~/.local/share/tincan/).
    History(cmd::history::HistoryArgs),
    /// Add, list or remove contacts (names for URIs, kept with the call history).
    Contacts(cmd::history::ContactsArgs),
    /// The full-screen phone (what `tincan` alone opens on a terminal): the accounts, the
    /// calls and their quality, driven by keys (docs/phone.md).
    Phone(tui::PhoneArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.sip_trace
        && let Err(e) = cmd::set_sip_trace(path)
    {
        eprintln!(
            "tincan: cannot write the SIP trace to {}: {e}",
            path.display()
        );
        return ExitCode::from(2);
    }
    let command = match cli.command {
        Some(c) => c,
        // No subcommand: the phone on a terminal; for scripts (no terminal), the usage as before.
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            Command::Phone(tui::PhoneArgs::default())
        }
        None => Cli::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a subcommand is needed when standard input or output is not a terminal",
            )
            .exit(),
    };
    match command {
        Command::Parse(args) => cmd::parse::run(&args),
        Command::Ping(args) => cmd::ping::run(&args, cli.config.as_deref()),
        Command::Nat(args) => cmd::nat::run(&args, cli.config.as_deref()),
        Command::Resolve(args) => cmd::resolve::run(&args, cli.config.as_deref()),
        Command::Register(args) => cmd::register::run(&args, cli.config.as_deref()),
        Command::Devices(args) => cmd::devices::run(&args),
        Command::Call(args) => cmd::call::run_call(&args, cli.config.as_deref()),
        Command::Listen(args) => cmd::call::run_listen(&args, cli.config.as_deref()),
        Command::Message(args) => cmd::message::run(&args, cli.config.as_deref()),
        Command::Presence(args) => cmd::presence::run(&args, cli.config.as_deref()),
        Command::Watch(args) => cmd::watch::run(&args, cli.config.as_deref()),
        Command::Demo(args) => cmd::demo::run(&args),
        Command::History(args) => cmd::history::run_history(&args),
        Command::Contacts(args) => cmd::history::run_contacts(&args),
        Command::Phone(args) => tui::run(&args, cli.config.as_deref(), cli.sip_trace.as_deref()),
    }
}
