//! The `tincan` binary under test, run as a peer: its own scratch directory (config, WAV files,
//! recordings), its log (stdout and stderr) and its `--json` events read back from the log.
//!
//! ```no_run
//! use std::time::Duration;
//! use tincan_interop_tests::TincanProcess;
//!
//! let mut call = TincanProcess::new("caller")
//!     .expect("scratch dir")
//!     .spawn(["call", "sip:service@127.0.0.1:5070", "--no-audio", "--json"])
//!     .expect("tincan starts");
//! call.wait_event("answered", Duration::from_secs(10)).expect("answered");
//! assert_eq!(call.wait_exit(Duration::from_secs(20)).expect("exits"), Some(0));
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::peer::{Peer, PeerError, WorkDir};

/// A `tincan` process about to be started: write its files into [`TincanProcess::dir`] first.
#[derive(Debug)]
pub struct TincanProcess {
    name: String,
    dir: WorkDir,
    lifetime: Duration,
    stdin: bool,
}

impl TincanProcess {
    /// A scratch directory for a `tincan` run named `name` (log `<name>.log`).
    pub fn new(name: &str) -> Result<Self, PeerError> {
        Ok(Self {
            name: name.to_owned(),
            dir: WorkDir::new(&format!("tincan-{name}"))?,
            lifetime: Duration::from_secs(60),
            stdin: false,
        })
    }

    /// The scratch directory (the process's working directory).
    pub fn dir(&self) -> &WorkDir {
        &self.dir
    }

    /// `dir()/file`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Maximum lifetime (default 60 s): a safety net, tests end their calls long before.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Gives the process a pipe as standard input, for [`Tincan::command`] (`tincan call`
    /// reads `hold`, `resume`, `dtmf 123`, `codec pcmu`, `hangup` from it).
    pub fn with_stdin(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// A phone registered at `registrar` as `user@example.test` (the lab kamailio's domain):
    /// writes `config.toml` with that `[[account]]` (UDP, 300 s, no outbound) and `tone.wav`,
    /// `tone_hz` for `tone_len`, for [`spawn_phone`](Self::spawn_phone).
    pub fn kamailio_account(
        self,
        user: &str,
        password: &str,
        registrar: std::net::SocketAddr,
        tone_hz: f64,
        tone_len: Duration,
    ) -> Self {
        let config = format!(
            "[[account]]\nname = \"{user}\"\naor = \"sip:{user}@example.test\"\n\
             password = \"{password}\"\ntransport = \"udp\"\nregistrars = [\"sip:{registrar}\"]\n\
             expires = 300\noutbound = false\n"
        );
        self.dir
            .write("config.toml", config)
            .expect("config written");
        crate::audio::write_tone_wav(self.path("tone.wav"), tone_hz, tone_len, 48_000, 12_000)
            .expect("tone written");
        self
    }

    /// `tincan --config config.toml <command> extra... --account <account> --play tone.wav
    /// --record rec.wav --json --bind 127.0.0.1:<free>` (after
    /// [`kamailio_account`](Self::kamailio_account)).
    pub fn spawn_phone(self, account: &str, command: &str, extra: &[&str]) -> Tincan {
        let mut args: Vec<String> = vec![
            "--config".into(),
            self.path("config.toml").display().to_string(),
            command.into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend([
            "--account".into(),
            account.into(),
            "--play".into(),
            self.path("tone.wav").display().to_string(),
            "--record".into(),
            self.path("rec.wav").display().to_string(),
            "--json".into(),
            "--bind".into(),
            format!("127.0.0.1:{}", crate::free_port()),
        ]);
        self.spawn(args).expect("tincan starts")
    }

    /// Starts `tincan args...` (the binary of this workspace, see [`crate::tincan_binary`]).
    pub fn spawn<I, S>(self, args: I) -> Result<Tincan, PeerError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        // Every SIP message of the run, for the failure report (`sip-trace.log` in the kept
        // scratch dir, its tail printed with the other logs).
        let trace = self.path("sip-trace.log");
        let mut builder = Peer::builder(&self.name, crate::tincan_binary())
            .arg("--sip-trace")
            .arg(trace)
            .args(args)
            .env("RUST_BACKTRACE", "1")
            // The call history in the scratch dir, not the user's data directory.
            .env("XDG_DATA_HOME", self.path("data"))
            .lifetime(self.lifetime)
            .stop_grace(Duration::from_secs(2));
        if self.stdin {
            builder = builder.stdin_piped();
        }
        let peer = builder.spawn_in(self.dir)?;
        Ok(Tincan { peer })
    }
}

/// A running `tincan`; stopped by PID on drop.
#[derive(Debug)]
pub struct Tincan {
    peer: Peer,
}

impl Tincan {
    /// The process guard (log, scratch dir, PID).
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// `dir()/file` of its scratch directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.peer.dir().join(file)
    }

    /// Its scratch directory.
    pub fn dir(&self) -> &Path {
        self.peer.dir().path()
    }

    /// Sends one command line to its standard input (see [`TincanProcess::with_stdin`]).
    pub fn command(&mut self, line: &str) -> Result<(), PeerError> {
        self.peer.write_stdin(line)
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        self.peer.log()
    }

    /// The `--json` events printed so far (lines of the log that parse as JSON objects with an
    /// `event` field), in order.
    pub fn events(&self) -> Vec<Value> {
        json_events(&self.peer.log())
    }

    /// The events named `name` (`"answered"`, `"dtmf"`, ...) printed so far.
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == name)
            .collect()
    }

    /// Waits for the first event named `name`; returns it.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<Value, PeerError> {
        self.wait_event_count(name, 1, timeout)
    }

    /// Waits until `count` events named `name` were printed; returns the last of them.
    pub fn wait_event_count(
        &mut self,
        name: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Value, PeerError> {
        let what = || format!("{count} json event(s) {name:?}");
        self.peer.wait_until(timeout, what, |peer| {
            json_events(&peer.log())
                .into_iter()
                .filter(|e| e["event"] == name)
                .nth(count - 1)
        })
    }

    /// Waits for it to exit by itself; its exit code (`None`: killed by a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>, PeerError> {
        self.peer.wait(timeout).map(|s| s.code())
    }
}

/// The JSON objects with an `event` field among the lines of `log`.
pub fn json_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

/// A `tincan` command run with a config file (`TINCAN_CONFIG`) whose `--json` lines arrive on
/// a channel as they are printed (echoed to the test's output); killed by PID on drop. For the
/// register tests, which follow the events live instead of from a log.
#[derive(Debug)]
pub struct JsonCommand {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<Value>,
}

impl JsonCommand {
    /// Starts `tincan ARGS` with `TINCAN_CONFIG=config` (stderr discarded).
    pub fn spawn(args: &[&str], config: &Path) -> JsonCommand {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(crate::tincan_binary())
            .args(args)
            .env("TINCAN_CONFIG", config)
            // The call history beside the config, not in the user's data directory.
            .env(
                "XDG_DATA_HOME",
                config.parent().unwrap_or(Path::new(".")).join("data"),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tincan runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    println!("{line}");
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        JsonCommand { child, rx }
    }

    /// The next event `what` accepts within `timeout` (events before it are passed over).
    pub fn wait_for(&self, timeout: Duration, what: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = std::time::Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(v) if what(&v) => return Some(v),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for JsonCommand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
