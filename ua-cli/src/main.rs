//! The `tincan` terminal user agent: a thin shell over the `tincan` library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Tincan: a resilient, open-standards SIP softphone.
#[derive(Debug, Parser)]
#[command(name = "tincan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Parse(args) => cmd::parse::run(&args),
        Command::Ping(args) => cmd::ping::run(&args),
    }
}
