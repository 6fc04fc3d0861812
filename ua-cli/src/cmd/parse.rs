//! `tincan parse [--json] FILE...`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use tincan_sip::message::{Verdict, diagnose};

/// Arguments of `tincan parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per file: {"file", "verdict", "status", "reason", "detail"}.
    #[arg(long)]
    json: bool,
    /// Also print what is wrong with a rejected or dropped message.
    #[arg(long, short)]
    verbose: bool,
    /// Files, each read as one datagram.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    verdict: &'static str,
    status: Option<u16>,
    reason: Option<String>,
    detail: Option<String>,
}

/// Runs the command; returns the exit status.
pub fn run(args: &Args) -> ExitCode {
    let mut all_accepted = true;
    let mut io_error = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("tincan parse: cannot read {name}: {e}");
                io_error = true;
                continue;
            }
        };
        let (verdict, error) = diagnose(&bytes);
        if verdict != Verdict::Accept {
            all_accepted = false;
        }
        let detail = error.map(|e| e.to_string());
        let written = if args.json {
            let (status, reason) = match &verdict {
                Verdict::Reject { status, reason } => (Some(*status), Some(reason.to_string())),
                Verdict::Drop => (None, detail.clone()),
                Verdict::Accept => (None, None),
            };
            let report = Report {
                file: &name,
                verdict: verdict.as_str(),
                status,
                reason,
                detail,
            };
            let line = serde_json::to_string(&report).expect("a report always serializes");
            writeln!(out, "{line}")
        } else if args.verbose && detail.is_some() {
            writeln!(out, "{name}: {verdict} ({})", detail.unwrap_or_default())
        } else {
            writeln!(out, "{name}: {verdict}")
        };
        if written.is_err() {
            // stdout closed (e.g. piped into `head`): nothing more to say.
            return ExitCode::from(2);
        }
    }
    if io_error {
        ExitCode::from(2)
    } else if all_accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
