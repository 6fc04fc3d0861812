//! Call history and contacts, kept in a SQLite database (bundled SQLite, through rusqlite).
//!
//! The database lives in the XDG data directory: `$XDG_DATA_HOME/tincan/history.sqlite3`, or
//! `~/.local/share/tincan/history.sqlite3` ([`default_path`]); tests and programs may open any
//! path. It runs in WAL mode (a reader never waits for the writer) with a busy timeout
//! ([`DEFAULT_BUSY_TIMEOUT`]): a database another program holds locked makes a write fail
//! with [`HistoryError::Locked`] after the timeout, never hang. The schema's version is
//! SQLite's `PRAGMA user_version`; [`MIGRATIONS`] are applied in order on open, and a database
//! of a newer version than this build knows is refused ([`HistoryError::TooNew`]).
//!
//! History is optional to a phone: a database that cannot be opened (corrupt, locked, no
//! data directory) is reported and the calls go on without it.
//!
//! ```
//! use std::time::Duration;
//! use tincan::history::{CallRecord, Direction, History};
//!
//! let dir = std::env::temp_dir().join(format!("tincan-history-doc-{}", std::process::id()));
//! let mut history = History::open(&dir.join("history.sqlite3")).expect("a new database");
//! history
//!     .record_call(&CallRecord {
//!         direction: Direction::Outgoing,
//!         peer_uri: "sip:bob@example.com".into(),
//!         peer_name: Some("Bob".into()),
//!         account: Some("work".into()),
//!         start_unix_ms: 1_765_000_000_000,
//!         answered: true,
//!         duration: Duration::from_secs(42),
//!         end_reason: "local_hangup".into(),
//!         status: None,
//!         codec: Some("opus".into()),
//!         mos: Some(4.3),
//!     })
//!     .expect("recorded");
//! history.add_contact("Bob", "sip:bob@example.com").expect("added");
//! let completions = history.complete("bo").expect("read");
//! assert_eq!(completions[0].uri, "sip:bob@example.com");
//! assert_eq!(history.recent(10).expect("read")[0].duration, Duration::from_secs(42));
//! # drop(history);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, params};

/// The file name inside `<data directory>/tincan/`.
pub const FILE_NAME: &str = "history.sqlite3";

/// How long a write waits for another connection's lock before it fails with
/// [`HistoryError::Locked`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The schema, one migration per version: `MIGRATIONS[i]` takes a database from version `i`
/// to version `i + 1` (`PRAGMA user_version`). Appended to, never edited.
pub const MIGRATIONS: &[&str] = &[
    // Version 1: calls and contacts.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        peer_uri TEXT NOT NULL,
        peer_name TEXT,
        account TEXT,
        start_ms INTEGER NOT NULL,
        answered INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        end_reason TEXT NOT NULL,
        status INTEGER,
        codec TEXT,
        mos REAL
    );
    CREATE INDEX calls_by_start ON calls (start_ms);
    CREATE INDEX calls_by_peer ON calls (peer_uri);
    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        uri TEXT NOT NULL UNIQUE
    );",
    // Version 2: page-mode messages (RFC 3428), both ways, with their delivery status.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        peer_uri TEXT NOT NULL,
        peer_name TEXT,
        account TEXT,
        time_ms INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        body BLOB NOT NULL,
        delivery TEXT NOT NULL
            CHECK (delivery IN ('received', 'sending', 'delivered', 'failed')),
        status INTEGER,
        reason TEXT
    );
    CREATE INDEX messages_by_peer ON messages (peer_uri, time_ms);",
];

/// The schema version this build writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The default database path: `$XDG_DATA_HOME/tincan/history.sqlite3` (when set to an
/// absolute path), else `$HOME/.local/share/tincan/history.sqlite3`; `None` without either.
pub fn default_path() -> Option<PathBuf> {
    path_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

/// [`default_path`] from the values of `XDG_DATA_HOME` and `HOME`.
fn path_from(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let data = match xdg_data_home.map(PathBuf::from) {
        // The XDG spec: a relative path is invalid and ignored.
        Some(p) if p.is_absolute() => p,
        _ => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".local/share"),
    };
    Some(data.join("tincan").join(FILE_NAME))
}

/// An error of SQLite, as the history reports it (the library's own type stays private).
#[derive(Debug)]
pub struct DatabaseError(rusqlite::Error);

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What went wrong with the history database. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// Neither `XDG_DATA_HOME` nor `HOME` is set: there is no default place.
    #[error("no data directory for the history: set XDG_DATA_HOME or HOME")]
    NoDataDirectory,
    /// The directory of the database could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a SQLite database, or a damaged one.
    #[error("{} is not a usable history database (corrupt, or another kind of file): {source}; move it away to start a new history", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: DatabaseError,
    },
    /// The database was written by a newer Tincan (its schema version is higher than ours).
    #[error("{} has history schema version {found}, newer than this tincan knows ({known}): use a newer tincan", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        known: i64,
    },
    /// Another connection held the database locked for longer than the busy timeout.
    #[error("{} is locked by another program (waited {} ms)", path.display(), waited.as_millis())]
    Locked {
        /// The file.
        path: PathBuf,
        /// The busy timeout that ran out.
        waited: Duration,
    },
    /// Any other failure of SQLite (disk full, permission denied...).
    #[error("history database {}: {source}", path.display())]
    Database {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: DatabaseError,
    },
}

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A call we took.
    #[serde(rename = "in")]
    Incoming,
    /// A call we placed.
    #[serde(rename = "out")]
    Outgoing,
}

impl Direction {
    /// `in` or `out`, as stored and printed by `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
        }
    }
}

/// One call of the history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallRecord {
    /// Which way it went.
    pub direction: Direction,
    /// The peer's URI (`sip:bob@example.com`).
    pub peer_uri: String,
    /// The peer's display name, if it gave one.
    pub peer_name: Option<String>,
    /// The account's name, when the call went through one.
    pub account: Option<String>,
    /// When the call began (placed, or arrived), Unix time in milliseconds.
    pub start_unix_ms: i64,
    /// Whether it was answered.
    pub answered: bool,
    /// From the answer to the end (zero when not answered).
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// Why it ended (`local_hangup`, `remote_hangup`, `rejected`...: the phone's
    /// `EndReason::as_str`).
    pub end_reason: String,
    /// The final SIP status when the call did not connect.
    pub status: Option<u16>,
    /// The codec (`opus`, `g722`, `pcmu`, `pcma`), if answered.
    pub codec: Option<String>,
    /// The mean MOS estimate; `None` when no RTP was received.
    pub mos: Option<f64>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl CallRecord {
    /// The record of an ended call. `peer` is the peer's name-addr as in a From or To header
    /// (`"Bob" <sip:bob@example.com>;tag=x`) or a bare URI; the tag is not kept. The MOS is
    /// left out when no RTP arrived (an estimate of nothing is not a 4.4).
    pub fn from_end(
        direction: Direction,
        peer: &str,
        account: Option<String>,
        start_unix_ms: i64,
        end: &crate::phone::CallEnd,
    ) -> CallRecord {
        let (peer_uri, peer_name) = split_name_addr(peer);
        CallRecord {
            direction,
            peer_uri,
            peer_name,
            account,
            start_unix_ms,
            answered: end.answered,
            duration: end.duration,
            end_reason: end.reason.as_str().to_owned(),
            status: end.status,
            codec: end.codec.map(|c| c.name().to_ascii_lowercase()),
            mos: end.quality.mos,
        }
    }
}

/// Where a message stands ([`MessageRecord::delivery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// A message that came to us.
    Received,
    /// Sent, no final response yet (or the program stopped before one came).
    Sending,
    /// A 2xx came back.
    Delivered,
    /// Refused, or no server answered.
    Failed,
}

impl Delivery {
    /// As stored and printed: `received`, `sending`, `delivered`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Received => "received",
            Delivery::Sending => "sending",
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Delivery {
        match text {
            "received" => Delivery::Received,
            "delivered" => Delivery::Delivered,
            "failed" => Delivery::Failed,
            _ => Delivery::Sending,
        }
    }
}

/// One page-mode message of the history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageRecord {
    /// Which way it went.
    pub direction: Direction,
    /// The peer's URI (the sender of a received message, the recipient of a sent one).
    pub peer_uri: String,
    /// The peer's display name, if it gave one.
    pub peer_name: Option<String>,
    /// The account's name, when it went through (or came to) one.
    pub account: Option<String>,
    /// When it was sent or received, Unix time in milliseconds.
    pub time_unix_ms: i64,
    /// Its Content-Type (`text/plain;charset=UTF-8`).
    pub content_type: String,
    /// Its body, as it went or came (text is UTF-8).
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Where it stands.
    pub delivery: Delivery,
    /// The final SIP status of a sent message, once it came.
    pub status: Option<u16>,
    /// The reason of a failure (the reason phrase, or what went wrong with each server).
    pub reason: Option<String>,
}

impl MessageRecord {
    /// A message with `peer` as a name-addr (a From or To value, tag dropped) or a bare URI.
    pub fn new(
        direction: Direction,
        peer: &str,
        account: Option<String>,
        time_unix_ms: i64,
        content_type: &str,
        body: &[u8],
    ) -> MessageRecord {
        let (peer_uri, peer_name) = split_name_addr(peer);
        MessageRecord {
            direction,
            peer_uri,
            peer_name,
            account,
            time_unix_ms,
            content_type: content_type.to_owned(),
            body: body.to_vec(),
            delivery: match direction {
                Direction::Incoming => Delivery::Received,
                Direction::Outgoing => Delivery::Sending,
            },
            status: None,
            reason: None,
        }
    }

    /// The body as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// The URI and display name of a name-addr (or the text itself when it does not parse).
fn split_name_addr(value: &str) -> (String, Option<String>) {
    use tincan_sip::message::{HeaderName, typed::NameAddr};
    match NameAddr::parse_as(HeaderName::From, value.trim()) {
        Ok(a) => (
            a.uri_str().to_owned(),
            a.display_name
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty()),
        ),
        Err(_) => (value.trim().to_owned(), None),
    }
}

/// A contact: a name for a URI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contact {
    /// The name shown and completed.
    pub name: String,
    /// The URI dialled; unique among contacts.
    pub uri: String,
}

/// Where a completion comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompletionSource {
    /// A contact.
    Contact,
    /// A peer of a past call.
    History,
}

/// A candidate for what is being dialled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Completion {
    /// The name (a contact's, or the peer's display name), if any.
    pub name: Option<String>,
    /// The URI to dial.
    pub uri: String,
    /// Where it comes from.
    pub source: CompletionSource,
}

/// The history database, open.
#[derive(Debug)]
pub struct History {
    connection: Connection,
    path: PathBuf,
    busy_timeout: Duration,
}

impl History {
    /// Opens (creating it and its directory when missing) the database at `path`, migrates
    /// it to [`SCHEMA_VERSION`], and sets WAL mode and the [`DEFAULT_BUSY_TIMEOUT`].
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        History::open_with_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`History::open`] at [`default_path`].
    pub fn open_default() -> Result<History, HistoryError> {
        History::open(&default_path().ok_or(HistoryError::NoDataDirectory)?)
    }

    /// [`History::open`] with another busy timeout.
    pub fn open_with_timeout(path: &Path, busy_timeout: Duration) -> Result<History, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Directory {
                path: dir.to_owned(),
                source,
            })?;
        }
        let connection = Connection::open(path).map_err(|e| error(path, busy_timeout, e))?;
        let mut history = History {
            connection,
            path: path.to_owned(),
            busy_timeout,
        };
        history.prepare().map_err(|e| history.error(e))?;
        history.migrate()?;
        Ok(history)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&self) -> rusqlite::Result<()> {
        self.connection.busy_timeout(self.busy_timeout)?;
        // Reading the schema first makes a file that is not a database fail here.
        self.connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        // The mode SQLite settled on is not checked: a file system without shared memory
        // keeps its rollback journal, which works too.
        let _mode: String =
            self.connection
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        self.connection
            .pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), HistoryError> {
        let seen = self.user_version().map_err(|e| self.error(e))?;
        self.migrate_from(seen)
    }

    /// Applies the migrations a database at version `seen` needs. Two programs may open a new
    /// database at once (`tincan listen` and `tincan call` on one machine): the version is
    /// read again inside a write transaction, so the second finds the work done.
    fn migrate_from(&mut self, seen: i64) -> Result<(), HistoryError> {
        if seen > SCHEMA_VERSION {
            return Err(self.too_new(seen));
        }
        if seen == SCHEMA_VERSION {
            return Ok(());
        }
        let t = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| error(&self.path, self.busy_timeout, e))?;
        let step = |t: &rusqlite::Transaction<'_>| -> rusqlite::Result<Option<i64>> {
            let found: i64 = t.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if found > SCHEMA_VERSION {
                return Ok(Some(found));
            }
            for (from, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
                t.execute_batch(sql)?;
                t.pragma_update(None, "user_version", from as i64 + 1)?;
            }
            Ok(None)
        };
        match step(&t) {
            Ok(None) => t
                .commit()
                .map_err(|e| error(&self.path, self.busy_timeout, e)),
            Ok(Some(found)) => {
                drop(t);
                Err(self.too_new(found))
            }
            Err(e) => Err(error(&self.path, self.busy_timeout, e)),
        }
    }

    fn user_version(&self) -> rusqlite::Result<i64> {
        self.connection
            .pragma_query_value(None, "user_version", |r| r.get(0))
    }

    fn too_new(&self, found: i64) -> HistoryError {
        HistoryError::TooNew {
            path: self.path.clone(),
            found,
            known: SCHEMA_VERSION,
        }
    }

    fn error(&self, e: rusqlite::Error) -> HistoryError {
        error(&self.path, self.busy_timeout, e)
    }

    /// Adds a call.
    pub fn record_call(&mut self, call: &CallRecord) -> Result<(), HistoryError> {
        self.connection
            .execute(
                "INSERT INTO calls (direction, peer_uri, peer_name, account, start_ms, answered,
                    duration_ms, end_reason, status, codec, mos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    call.direction.as_str(),
                    call.peer_uri,
                    call.peer_name,
                    call.account,
                    call.start_unix_ms,
                    call.answered,
                    i64::try_from(call.duration.as_millis()).unwrap_or(i64::MAX),
                    call.end_reason,
                    call.status,
                    call.codec,
                    call.mos,
                ],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The last `limit` calls, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<CallRecord>, HistoryError> {
        let run = || -> rusqlite::Result<Vec<CallRecord>> {
            let mut statement = self.connection.prepare(
                "SELECT direction, peer_uri, peer_name, account, start_ms, answered, duration_ms,
                    end_reason, status, codec, mos
                 FROM calls ORDER BY start_ms DESC, id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                let direction: String = r.get(0)?;
                let duration_ms: i64 = r.get(6)?;
                Ok(CallRecord {
                    direction: if direction == "in" {
                        Direction::Incoming
                    } else {
                        Direction::Outgoing
                    },
                    peer_uri: r.get(1)?,
                    peer_name: r.get(2)?,
                    account: r.get(3)?,
                    start_unix_ms: r.get(4)?,
                    answered: r.get(5)?,
                    duration: Duration::from_millis(duration_ms.max(0) as u64),
                    end_reason: r.get(7)?,
                    status: r.get(8)?,
                    codec: r.get(9)?,
                    mos: r.get(10)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.error(e))
    }

    /// Adds a message; returns its row id (for [`set_delivery`](Self::set_delivery)).
    pub fn record_message(&mut self, message: &MessageRecord) -> Result<i64, HistoryError> {
        self.connection
            .execute(
                "INSERT INTO messages (direction, peer_uri, peer_name, account, time_ms,
                    content_type, body, delivery, status, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    message.direction.as_str(),
                    message.peer_uri,
                    message.peer_name,
                    message.account,
                    message.time_unix_ms,
                    message.content_type,
                    message.body,
                    message.delivery.as_str(),
                    message.status,
                    message.reason,
                ],
            )
            .map_err(|e| self.error(e))?;
        Ok(self.connection.last_insert_rowid())
    }

    /// Records the delivery report of a sent message.
    pub fn set_delivery(
        &mut self,
        id: i64,
        delivery: Delivery,
        status: Option<u16>,
        reason: Option<&str>,
    ) -> Result<(), HistoryError> {
        self.connection
            .execute(
                "UPDATE messages SET delivery = ?2, status = ?3, reason = ?4 WHERE id = ?1",
                params![id, delivery.as_str(), status, reason],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The last `limit` messages exchanged with `peer_uri` (every peer: `None`), oldest
    /// first: a conversation.
    pub fn messages(
        &self,
        peer_uri: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, HistoryError> {
        let run = || -> rusqlite::Result<Vec<MessageRecord>> {
            let mut statement = self.connection.prepare(
                "SELECT direction, peer_uri, peer_name, account, time_ms, content_type, body,
                    delivery, status, reason
                 FROM messages WHERE ?1 IS NULL OR peer_uri = ?1
                 ORDER BY time_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(
                params![peer_uri, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    let direction: String = r.get(0)?;
                    let delivery: String = r.get(7)?;
                    Ok(MessageRecord {
                        direction: if direction == "in" {
                            Direction::Incoming
                        } else {
                            Direction::Outgoing
                        },
                        peer_uri: r.get(1)?,
                        peer_name: r.get(2)?,
                        account: r.get(3)?,
                        time_unix_ms: r.get(4)?,
                        content_type: r.get(5)?,
                        body: r.get(6)?,
                        delivery: Delivery::parse(&delivery),
                        status: r.get(8)?,
                        reason: r.get(9)?,
                    })
                },
            )?;
            let mut out: Vec<MessageRecord> = rows.collect::<rusqlite::Result<_>>()?;
            out.reverse();
            Ok(out)
        };
        run().map_err(|e| self.error(e))
    }

    /// Every contact, by name.
    pub fn contacts(&self) -> Result<Vec<Contact>, HistoryError> {
        let run = || -> rusqlite::Result<Vec<Contact>> {
            let mut statement = self
                .connection
                .prepare("SELECT name, uri FROM contacts ORDER BY name COLLATE NOCASE, uri")?;
            let rows = statement.query_map([], |r| {
                Ok(Contact {
                    name: r.get(0)?,
                    uri: r.get(1)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.error(e))
    }

    /// Adds a contact, or renames the contact that has this URI.
    pub fn add_contact(&mut self, name: &str, uri: &str) -> Result<(), HistoryError> {
        self.connection
            .execute(
                "INSERT INTO contacts (name, uri) VALUES (?1, ?2)
                 ON CONFLICT (uri) DO UPDATE SET name = excluded.name",
                params![name, uri],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Removes the contact with this URI; false when there was none.
    pub fn remove_contact(&mut self, uri: &str) -> Result<bool, HistoryError> {
        let n = self
            .connection
            .execute("DELETE FROM contacts WHERE uri = ?1", [uri])
            .map_err(|e| self.error(e))?;
        Ok(n > 0)
    }

    /// What `prefix` may be completed to: contacts whose name or URI starts with it
    /// (case-insensitive; a URI also without its `sip:`/`sips:` scheme), the most recently
    /// called first, then the peers of past calls that match, most recent first. Each URI
    /// comes once.
    pub fn complete(&self, prefix: &str) -> Result<Vec<Completion>, HistoryError> {
        let run = || -> rusqlite::Result<Vec<Completion>> {
            let mut out: Vec<Completion> = Vec::new();
            let mut contacts = self.connection.prepare(
                "SELECT c.name, c.uri FROM contacts c
                 LEFT JOIN (SELECT peer_uri, MAX(start_ms) AS last FROM calls GROUP BY peer_uri) h
                   ON h.peer_uri = c.uri
                 ORDER BY h.last IS NULL, h.last DESC, c.name COLLATE NOCASE",
            )?;
            let rows =
                contacts.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (name, uri) = row?;
                if matches(prefix, Some(&name), &uri) {
                    out.push(Completion {
                        name: Some(name),
                        uri,
                        source: CompletionSource::Contact,
                    });
                }
            }
            let mut peers = self.connection.prepare(
                "SELECT peer_uri, peer_name FROM calls c
                 WHERE id = (SELECT id FROM calls WHERE peer_uri = c.peer_uri
                             ORDER BY start_ms DESC, id DESC LIMIT 1)
                 ORDER BY start_ms DESC, id DESC",
            )?;
            let rows = peers.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (uri, name) = row?;
                if matches(prefix, name.as_deref(), &uri) && !out.iter().any(|c| c.uri == uri) {
                    out.push(Completion {
                        name,
                        uri,
                        source: CompletionSource::History,
                    });
                }
            }
            Ok(out)
        };
        run().map_err(|e| self.error(e))
    }
}

/// Whether a name or URI starts with `prefix`, ignoring case (and the URI's scheme).
fn matches(prefix: &str, name: Option<&str>, uri: &str) -> bool {
    let prefix = prefix.to_lowercase();
    let starts = |s: &str| s.to_lowercase().starts_with(&prefix);
    let bare = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    name.is_some_and(starts) || starts(uri) || starts(bare)
}

/// Our error for a SQLite error on the database at `path`.
fn error(path: &Path, busy_timeout: Duration, e: rusqlite::Error) -> HistoryError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => HistoryError::Corrupt {
            path: path.to_owned(),
            source: DatabaseError(e),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => HistoryError::Locked {
            path: path.to_owned(),
            waited: busy_timeout,
        },
        _ => HistoryError::Database {
            path: path.to_owned(),
            source: DatabaseError(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tincan-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp directory is writable");
        dir
    }

    fn call(peer: &str, start: i64) -> CallRecord {
        CallRecord {
            direction: Direction::Outgoing,
            peer_uri: peer.to_owned(),
            peer_name: None,
            account: None,
            start_unix_ms: start,
            answered: true,
            duration: Duration::from_millis(1500),
            end_reason: "local_hangup".into(),
            status: None,
            codec: Some("pcmu".into()),
            mos: Some(4.1),
        }
    }

    #[test]
    fn the_default_path_follows_xdg() {
        assert_eq!(
            path_from(Some("/data".into()), Some("/home/a".into())),
            Some(PathBuf::from("/data/tincan/history.sqlite3"))
        );
        assert_eq!(
            path_from(Some("relative".into()), Some("/home/a".into())),
            Some(PathBuf::from("/home/a/.local/share/tincan/history.sqlite3"))
        );
        assert_eq!(
            path_from(None, Some("/home/a".into())),
            Some(PathBuf::from("/home/a/.local/share/tincan/history.sqlite3"))
        );
        assert_eq!(path_from(None, None), None);
    }

    #[test]
    fn a_new_database_is_at_the_current_version_in_wal_mode() {
        let dir = temp_dir("new");
        let path = dir.join("sub/history.sqlite3");
        let h = History::open(&path).expect("created with its directory");
        let version: i64 = h
            .connection
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("readable");
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = h
            .connection
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("readable");
        assert_eq!(mode, "wal");
        drop(h);
        // Opening again migrates nothing and keeps the data.
        let mut h = History::open(&path).expect("reopened");
        h.record_call(&call("sip:a@x", 1)).expect("recorded");
        drop(h);
        assert_eq!(History::open(&path).unwrap().recent(5).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Two programs opening a new database at once both read version 0; the second to
    /// migrate finds the tables made (before: "table calls already exists", and the second
    /// program had no history).
    #[test]
    fn a_migration_seen_from_a_stale_version_finds_the_work_done() {
        let dir = temp_dir("race");
        let path = dir.join("history.sqlite3");
        let mut first = History::open(&path).expect("created");
        first.migrate_from(0).expect("nothing left to do");
        assert_eq!(first.user_version().unwrap(), SCHEMA_VERSION);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A version 1 database (calls only) gains the messages table and keeps its calls.
    #[test]
    fn a_version_1_database_is_migrated_to_messages() {
        let dir = temp_dir("v1");
        let path = dir.join("history.sqlite3");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute(
                "INSERT INTO calls (direction, peer_uri, start_ms, answered, duration_ms,
                    end_reason) VALUES ('out', 'sip:a@x', 1, 1, 10, 'local_hangup')",
                [],
            )
            .unwrap();
        }
        let mut h = History::open(&path).expect("migrated");
        assert_eq!(h.user_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(h.recent(5).unwrap().len(), 1);
        let sent = MessageRecord::new(
            Direction::Outgoing,
            "sip:bob@example.com",
            Some("work".into()),
            5,
            "text/plain",
            b"hi",
        );
        let id = h.record_message(&sent).unwrap();
        h.set_delivery(id, Delivery::Failed, Some(404), Some("Not Found"))
            .unwrap();
        let got = MessageRecord::new(
            Direction::Incoming,
            "\"Bob\" <sip:bob@example.com>;tag=9",
            None,
            6,
            "application/octet-stream",
            &[0, 0xff],
        );
        h.record_message(&got).unwrap();
        h.record_message(&MessageRecord::new(
            Direction::Incoming,
            "sip:carol@example.com",
            None,
            7,
            "text/plain",
            b"other",
        ))
        .unwrap();
        let conversation = h.messages(Some("sip:bob@example.com"), 10).unwrap();
        assert_eq!(conversation.len(), 2);
        assert_eq!(conversation[0].text(), Some("hi"));
        assert_eq!(conversation[0].delivery, Delivery::Failed);
        assert_eq!(conversation[0].status, Some(404));
        assert_eq!(conversation[1].peer_name.as_deref(), Some("Bob"));
        assert_eq!(conversation[1].body, vec![0, 0xff]);
        assert_eq!(conversation[1].delivery, Delivery::Received);
        assert_eq!(h.messages(None, 10).unwrap().len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_database_of_a_newer_version_is_refused() {
        let dir = temp_dir("too-new");
        let path = dir.join("history.sqlite3");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let e = History::open(&path).expect_err("a newer schema");
        assert!(
            matches!(e, HistoryError::TooNew { found, known, .. } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("newer"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_garbage_file_is_reported_as_corrupt_with_its_path() {
        let dir = temp_dir("garbage");
        let path = dir.join("history.sqlite3");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let e = History::open(&path).expect_err("not a database");
        assert!(matches!(e, HistoryError::Corrupt { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("not a usable history database"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Another connection holding the write lock makes a write fail after the busy timeout,
    /// with the path and the wait in the message, instead of hanging.
    #[test]
    fn a_locked_database_fails_a_write_after_the_busy_timeout() {
        let dir = temp_dir("locked");
        let path = dir.join("history.sqlite3");
        let mut h = History::open_with_timeout(&path, Duration::from_millis(100)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let e = h.record_call(&call("sip:a@x", 1)).expect_err("locked");
        assert!(matches!(e, HistoryError::Locked { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("locked"), "{text}");
        // Reading still works in WAL mode, and writing once the lock is gone.
        assert!(h.recent(5).unwrap().is_empty());
        other.execute_batch("COMMIT").unwrap();
        h.record_call(&call("sip:a@x", 1)).expect("unlocked");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recent_calls_come_newest_first_with_every_field() {
        let dir = temp_dir("recent");
        let mut h = History::open(&dir.join("h.sqlite3")).unwrap();
        let mut first = call("sip:a@x", 1_000);
        first.direction = Direction::Incoming;
        first.peer_name = Some("A".into());
        first.account = Some("work".into());
        let mut second = call("sip:b@x", 2_000);
        second.answered = false;
        second.duration = Duration::ZERO;
        second.end_reason = "rejected".into();
        second.status = Some(486);
        second.codec = None;
        second.mos = None;
        h.record_call(&first).unwrap();
        h.record_call(&second).unwrap();
        h.record_call(&call("sip:c@x", 3_000)).unwrap();
        let recent = h.recent(2).unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].peer_uri, "sip:c@x");
        assert_eq!(recent[1], second);
        assert_eq!(h.recent(10).unwrap()[2], first);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn contacts_are_added_renamed_and_removed_by_uri() {
        let dir = temp_dir("contacts");
        let mut h = History::open(&dir.join("h.sqlite3")).unwrap();
        h.add_contact("Bob", "sip:bob@x").unwrap();
        h.add_contact("alice", "sip:alice@x").unwrap();
        h.add_contact("Robert", "sip:bob@x").unwrap();
        let names: Vec<String> = h.contacts().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["alice", "Robert"]);
        assert!(h.remove_contact("sip:bob@x").unwrap());
        assert!(!h.remove_contact("sip:bob@x").unwrap());
        assert_eq!(h.contacts().unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Contacts first (the most recently called first), then history peers, most recent
    /// first, each URI once; names, URIs and URIs without their scheme match, in any case.
    #[test]
    fn completion_puts_contacts_first_then_recent_peers_once_each() {
        let dir = temp_dir("complete");
        let mut h = History::open(&dir.join("h.sqlite3")).unwrap();
        h.add_contact("Bart", "sip:bart@x").unwrap();
        h.add_contact("Bob", "sip:bob@x").unwrap();
        h.add_contact("Carol", "sip:carol@x").unwrap();
        h.record_call(&call("sip:bob@x", 100)).unwrap();
        h.record_call(&call("sip:bea@x", 200)).unwrap();
        let mut named = call("sip:b2@y", 300);
        named.peer_name = Some("Zed".into());
        h.record_call(&named).unwrap();
        h.record_call(&call("sip:bea@x", 50)).unwrap();
        h.record_call(&call("sip:other@x", 400)).unwrap();
        let list = h.complete("B").unwrap();
        let got: Vec<(&str, CompletionSource)> =
            list.iter().map(|c| (c.uri.as_str(), c.source)).collect();
        assert_eq!(
            got,
            [
                ("sip:bob@x", CompletionSource::Contact),
                ("sip:bart@x", CompletionSource::Contact),
                ("sip:b2@y", CompletionSource::History),
                ("sip:bea@x", CompletionSource::History),
            ]
        );
        assert_eq!(list[2].name.as_deref(), Some("Zed"));
        // By display name, and by the whole URI.
        assert_eq!(h.complete("ze").unwrap()[0].uri, "sip:b2@y");
        assert_eq!(h.complete("sip:car").unwrap()[0].uri, "sip:carol@x");
        assert!(h.complete("nobody").unwrap().is_empty());
        assert_eq!(h.complete("").unwrap().len(), 6);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A call that received no RTP has no MOS (`Quality::of` says so) and is recorded
    /// without one; a rated call keeps its MOS.
    #[test]
    fn a_call_without_received_rtp_has_no_mos() {
        use crate::phone::{CallEnd, EndReason, Quality};
        let mut end = CallEnd {
            reason: EndReason::RemoteHangup,
            status: None,
            status_text: None,
            answered: true,
            duration: Duration::from_secs(3),
            codec: Some(tincan_media::codec::CodecKind::Pcma),
            quality: Quality {
                packets_sent: 150,
                mos: None,
                ..Quality::default()
            },
            tried: Vec::new(),
            errors: Vec::new(),
        };
        let peer = "Bob <sip:bob@x>;tag=9";
        let r = CallRecord::from_end(Direction::Incoming, peer, None, 7, &end);
        assert_eq!(r.mos, None);
        assert_eq!(r.codec.as_deref(), Some("pcma"));
        assert_eq!(r.end_reason, "remote_hangup");
        assert_eq!(r.peer_name.as_deref(), Some("Bob"));
        end.quality.packets_received = 140;
        end.quality.mos = Some(4.4);
        let r = CallRecord::from_end(Direction::Incoming, peer, None, 7, &end);
        assert_eq!(r.mos, Some(4.4));
    }

    #[test]
    fn a_peer_name_addr_is_split_and_its_tag_dropped() {
        assert_eq!(
            split_name_addr("\"Alice A\" <sip:alice@example.com>;tag=abc"),
            (
                "sip:alice@example.com".to_owned(),
                Some("Alice A".to_owned())
            )
        );
        assert_eq!(
            split_name_addr("<sip:bob@x>;tag=1"),
            ("sip:bob@x".to_owned(), None)
        );
        assert_eq!(split_name_addr("sip:bob@x"), ("sip:bob@x".to_owned(), None));
    }
}
