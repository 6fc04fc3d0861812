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

    /// Starts `tincan listen --auto-answer --json` on a free port of 127.0.0.1, playing a
    /// tone of `hz` (a minute of it, at a quarter of full scale) and recording each call it
    /// answers (`rec.wav`, then `rec-2.wav`...), and waits until it listens: a peer that
    /// answers and whose ears can be checked. Returns it and its port.
    pub fn tone_listener(self, hz: f64) -> Result<(Tincan, u16), PeerError> {
        let port = crate::free_port();
        crate::audio::write_tone_wav(
            self.path("tone.wav"),
            hz,
            Duration::from_secs(60),
            48_000,
            9_000,
        )
        .map_err(|e| PeerError::Io {
            what: "writing the tone".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let args = [
            "listen".to_owned(),
            "--auto-answer".to_owned(),
            "--play".to_owned(),
            self.path("tone.wav").display().to_string(),
            "--record".to_owned(),
            self.path("rec.wav").display().to_string(),
            "--json".to_owned(),
            "--bind".to_owned(),
            format!("127.0.0.1:{port}"),
        ];
        let mut listener = self.spawn(args)?;
        listener.wait_event("listening", Duration::from_secs(15))?;
        Ok((listener, port))
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

impl TincanProcess {
    /// Starts the full-screen phone (`tincan phone`) in `tmux`'s shell, with the account
    /// `account` of [`kamailio_account`](Self::kamailio_account)'s config, `tone.wav` as the
    /// microphone (`--play`), no audio device (`--no-audio`: what arrives is dropped, nothing
    /// rings on a device; no sound card needed), `--bind 127.0.0.1:<free>`, `--sip-trace sip-trace.log`, the call
    /// history in `data/` of the scratch dir (`XDG_DATA_HOME`) and standard error in
    /// `phone.err`; the script notes the time (`date +%s%N`) in `started.ns` just before it
    /// `exec`s the phone. Returns once the phone's PID is known (not once it is registered).
    pub fn spawn_in_tmux(
        self,
        tmux: &crate::tmux::Tmux,
        account: &str,
        extra: &[&str],
    ) -> Result<ScreenPhone, PeerError> {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let path = |file: &str| quote(&self.path(file).display().to_string());
        let mut command = vec![
            quote(&crate::tincan_binary().display().to_string()),
            "--sip-trace".into(),
            path("sip-trace.log"),
            "--config".into(),
            path("config.toml"),
            "phone".into(),
            "--account".into(),
            quote(account),
            "--play".into(),
            path("tone.wav"),
            "--no-audio".into(),
            "--bind".into(),
            format!("127.0.0.1:{}", crate::free_port()),
        ];
        command.extend(extra.iter().map(|s| quote(s)));
        let script = format!(
            "export XDG_DATA_HOME={data}\nexport RUST_BACKTRACE=1\necho $$ > {pid}\n\
             date +%s%N > {started}\nexec {command} 2>{err}\n",
            data = path("data"),
            pid = path("phone.pid"),
            started = path("started.ns"),
            err = path("phone.err"),
            command = command.join(" "),
        );
        let script = self.dir.write("phone.sh", script)?;
        let started = std::time::Instant::now();
        tmux.run_script(&script)?;
        let pid_file = self.path("phone.pid");
        let pid = loop {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            if let Some(pid) = pid {
                break pid;
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(PeerError::Timeout {
                    name: self.name.clone(),
                    after: Duration::from_secs(20),
                    waiting_for: "the phone's PID file".into(),
                    log_tail: tmux.capture().unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(ScreenPhone { dir: self.dir, pid })
    }
}

/// The full-screen phone running in a [`crate::tmux::Tmux`] (see
/// [`TincanProcess::spawn_in_tmux`]); SIGTERM, then SIGKILL, on drop if it still runs.
#[derive(Debug)]
pub struct ScreenPhone {
    dir: WorkDir,
    pid: u32,
}

impl ScreenPhone {
    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `dir()/file` of its scratch directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Its scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What it wrote to standard error.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("phone.err")).unwrap_or_default()
    }

    /// Whether the process is still there (not yet reaped by the shell).
    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Sends `signal` to it (if it still runs).
    pub fn signal(&self, signal: rustix::process::Signal) {
        if self.is_running()
            && let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32)
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// Waits until it has exited (and its shell reaped it), at most `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> Result<(), PeerError> {
        let deadline = std::time::Instant::now() + timeout;
        while self.is_running() {
            if std::time::Instant::now() >= deadline {
                return Err(PeerError::Timeout {
                    name: format!("tincan phone {}", self.pid),
                    after: timeout,
                    waiting_for: "it to exit".into(),
                    log_tail: self.stderr(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `tincan history ARGS...` with the phone's config and call history; its standard
    /// output (an error when it fails).
    pub fn history(&self, args: &[&str]) -> Result<String, PeerError> {
        let out = std::process::Command::new(crate::tincan_binary())
            .arg("--config")
            .arg(self.path("config.toml"))
            .arg("history")
            .args(args)
            .env("XDG_DATA_HOME", self.path("data"))
            .output()
            .map_err(|e| PeerError::io("running tincan history", e))?;
        if !out.status.success() {
            return Err(PeerError::io(
                "running tincan history",
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for ScreenPhone {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tincan phone {} stderr ---\n{}---",
                self.pid,
                self.stderr()
            );
            self.dir.keep();
        }
        self.signal(rustix::process::Signal::TERM);
        if self.wait_exit(Duration::from_secs(3)).is_err() {
            self.signal(rustix::process::Signal::KILL);
        }
    }
}
