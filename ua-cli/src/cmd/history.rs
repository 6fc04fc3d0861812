//! `tincan history` and `tincan contacts`, and the recording of ended calls by `call` and
//! `listen` (see docs/history.md).

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tincan::history::{CallRecord, Delivery, Direction, History, MessageRecord};
use tincan::phone::CallEnd;

/// Arguments of `tincan history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// How many calls to print, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// One JSON object per call per line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `tincan contacts`.
#[derive(Debug, clap::Args)]
pub struct ContactsArgs {
    #[command(subcommand)]
    action: ContactsAction,
}

#[derive(Debug, clap::Subcommand)]
enum ContactsAction {
    /// Add a contact (or rename the one with this URI).
    Add {
        /// The name.
        name: String,
        /// The URI (`sip:bob@example.com` or `bob@example.com`).
        uri: String,
    },
    /// List the contacts by name.
    List {
        /// One JSON object per contact per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove the contact with this URI.
    Remove {
        /// The URI.
        uri: String,
    },
}

/// The current Unix time in milliseconds (0 before 1970).
pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where `call` and `listen` record the calls that end: the history database, or nothing
/// when `--no-history` was given or the database could not be opened or written (said once,
/// on standard error; the calls go on).
pub struct Recorder {
    history: Option<History>,
    command: &'static str,
}

impl Recorder {
    /// Opens the history at its default place, unless `disabled`.
    pub fn open(command: &'static str, disabled: bool) -> Recorder {
        let history = if disabled {
            None
        } else {
            History::open_default()
                .map_err(|e| eprintln!("tincan {command}: warning: no call history: {e}"))
                .ok()
        };
        Recorder { history, command }
    }

    /// Records an ended call with `peer` (a URI or a From header's value).
    pub fn record(
        &mut self,
        direction: Direction,
        peer: &str,
        account: Option<String>,
        started_unix_ms: i64,
        end: &CallEnd,
    ) {
        let Some(history) = self.history.as_mut() else {
            return;
        };
        let record = CallRecord::from_end(direction, peer, account, started_unix_ms, end);
        if let Err(e) = history.record_call(&record) {
            eprintln!(
                "tincan {}: warning: the call is not in the history: {e}",
                self.command
            );
            self.history = None;
        }
    }
}

impl Recorder {
    /// Records a message sent or received; its row id, to record its delivery report with
    /// [`set_delivery`](Self::set_delivery).
    pub fn record_message(&mut self, record: &MessageRecord) -> Option<i64> {
        let history = self.history.as_mut()?;
        match history.record_message(record) {
            Ok(id) => Some(id),
            Err(e) => {
                eprintln!(
                    "tincan {}: warning: the message is not in the history: {e}",
                    self.command
                );
                self.history = None;
                None
            }
        }
    }

    /// Records the delivery report of a message recorded as `id`.
    pub fn set_delivery(
        &mut self,
        id: i64,
        delivery: Delivery,
        status: Option<u16>,
        reason: Option<&str>,
    ) {
        let Some(history) = self.history.as_mut() else {
            return;
        };
        if let Err(e) = history.set_delivery(id, delivery, status, reason) {
            eprintln!(
                "tincan {}: warning: the delivery report is not in the history: {e}",
                self.command
            );
            self.history = None;
        }
    }
}

fn open(command: &str) -> Result<History, ExitCode> {
    History::open_default().map_err(|e| {
        eprintln!("tincan {command}: {e}");
        ExitCode::from(1)
    })
}

/// Runs `tincan history`.
pub fn run_history(args: &HistoryArgs) -> ExitCode {
    // Reading makes no database where there was none.
    if let Some(path) = tincan::history::default_path()
        && !path.exists()
    {
        if !args.json {
            eprintln!("no calls in {}", path.display());
        }
        return ExitCode::SUCCESS;
    }
    let history = match open("history") {
        Ok(h) => h,
        Err(code) => return code,
    };
    let calls = match history.recent(args.limit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan history: {e}");
            return ExitCode::from(1);
        }
    };
    for c in &calls {
        if args.json {
            let mut v = serde_json::to_value(c).expect("a call record serializes");
            v["start"] = json!(iso_utc(c.start_unix_ms));
            println!("{v}");
        } else {
            println!("{}", line(c));
        }
    }
    if calls.is_empty() && !args.json {
        eprintln!("no calls in {}", history.path().display());
    }
    ExitCode::SUCCESS
}

/// One call as `tincan history` prints it.
fn line(c: &CallRecord) -> String {
    let arrow = match c.direction {
        Direction::Incoming => "<-",
        Direction::Outgoing => "->",
    };
    let peer = match &c.peer_name {
        Some(name) => format!("{name} <{}>", c.peer_uri),
        None => c.peer_uri.clone(),
    };
    let status = c.status.map(|s| format!(" {s}")).unwrap_or_default();
    format!(
        "{} {arrow} {peer}  {}  {:.1} s  {}{status}  {}  MOS {}",
        iso_utc(c.start_unix_ms),
        c.account.as_deref().unwrap_or("-"),
        c.duration.as_secs_f64(),
        c.end_reason,
        c.codec.as_deref().unwrap_or("-"),
        c.mos.map_or_else(|| "-".to_owned(), |m| format!("{m:.2}")),
    )
}

/// Runs `tincan contacts`.
pub fn run_contacts(args: &ContactsArgs) -> ExitCode {
    let mut history = match open("contacts") {
        Ok(h) => h,
        Err(code) => return code,
    };
    let result = match &args.action {
        ContactsAction::Add { name, uri } => {
            let uri = match tincan::phone::call::request_uri(uri, None) {
                Ok(u) => u.to_string(),
                Err(e) => {
                    eprintln!("tincan contacts: {e}");
                    return ExitCode::from(2);
                }
            };
            history.add_contact(name, &uri)
        }
        ContactsAction::List { json } => history.contacts().map(|list| {
            for c in list {
                if *json {
                    println!("{}", json!({"name": c.name, "uri": c.uri}));
                } else {
                    println!("{}  {}", c.name, c.uri);
                }
            }
        }),
        ContactsAction::Remove { uri } => match history.remove_contact(uri) {
            Ok(true) => Ok(()),
            Ok(false) => {
                eprintln!("tincan contacts: no contact with the URI {uri}");
                return ExitCode::from(1);
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tincan contacts: {e}");
            ExitCode::from(1)
        }
    }
}

/// `2026-12-07T20:03:24Z` for a Unix time in milliseconds.
fn iso_utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_iso_utc() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_796_673_804_999), "2026-12-07T20:03:24Z");
    }

    #[test]
    fn a_line_has_every_field() {
        let c = CallRecord {
            direction: Direction::Incoming,
            peer_uri: "sip:alice@x".into(),
            peer_name: Some("Alice".into()),
            account: Some("work".into()),
            start_unix_ms: 0,
            answered: false,
            duration: Duration::ZERO,
            end_reason: "rejected".into(),
            status: Some(486),
            codec: None,
            mos: None,
        };
        assert_eq!(
            line(&c),
            "1970-01-01T00:00:00Z <- Alice <sip:alice@x>  work  0.0 s  rejected 486  -  MOS -"
        );
    }
}
