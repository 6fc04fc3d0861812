//! A third-party program started by a test: its scratch directory, its log, its PID, and
//! stopping it (also when the test panics).
//!
//! Every peer runs under coreutils `timeout` with a maximum lifetime, in a process group of
//! its own: even a test binary killed with SIGKILL leaves nothing running for longer than
//! that lifetime, and [`Peer::stop`] reaches the peer's children (kamailio forks workers)
//! through the group. Nothing is ever stopped by name.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use regex::Regex;
use rustix::process::{Pid, Signal};

use crate::ports::Protocols;

/// How often logs and process states are polled.
const POLL: Duration = Duration::from_millis(25);
/// Lines of each log printed when a test fails.
const TAIL_LINES: usize = 60;
/// Lines of a SIP trace shown for a failed test (its last dozen messages or so).
const TRACE_TAIL_LINES: usize = 200;

/// What went wrong with a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The program could not be started.
    #[error("cannot start {name}: {source}")]
    Spawn {
        /// The peer's name.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// A file of the scratch directory could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The peer exited while we were waiting for something.
    #[error("{name} exited ({status}) while waiting for {waiting_for}; log tail:\n{log_tail}")]
    Exited {
        /// The peer's name.
        name: String,
        /// How it exited.
        status: String,
        /// What we were waiting for.
        waiting_for: String,
        /// The end of its log.
        log_tail: String,
    },
    /// Something did not happen in time.
    #[error("{name}: timed out after {after:?} waiting for {waiting_for}; log tail:\n{log_tail}")]
    Timeout {
        /// The peer's name.
        name: String,
        /// How long we waited.
        after: Duration,
        /// What we were waiting for.
        waiting_for: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A log pattern is not a valid regular expression (a bug in the test).
    #[error("invalid log pattern: {0}")]
    Pattern(#[from] regex::Error),
    /// The peer answered something the harness did not expect.
    #[error("{name}: {message}")]
    Protocol {
        /// The peer's name.
        name: String,
        /// What was wrong.
        message: String,
    },
}

impl PeerError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// A scratch directory for one peer (configs, logs, recordings).
///
/// Removed on drop, except when the thread is panicking (a failed test) or the environment
/// variable `TINCAN_INTEROP_KEEP` is set: then it is kept, its path is printed to stderr,
/// and the tail of each of its `*.log` files is printed too.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

static WORKDIRS: AtomicU64 = AtomicU64::new(0);

impl WorkDir {
    /// Creates `$TMPDIR/tincan-interop/<name>-<pid>-<n>`.
    pub fn new(name: &str) -> Result<Self, PeerError> {
        let n = WORKDIRS.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join("tincan-interop")
            .join(format!("{name}-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| PeerError::io(format!("removing stale {}", path.display()), e))?;
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| PeerError::io(format!("creating {}", path.display()), e))?;
        Ok(Self {
            path,
            keep: std::env::var_os("TINCAN_INTEROP_KEEP").is_some(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()/name`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Keeps the directory after the test (its path is printed when dropped).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Writes `contents` to `path()/name`.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf, PeerError> {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| PeerError::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&path, contents)
            .map_err(|e| PeerError::io(format!("writing {}", path.display()), e))?;
        Ok(path)
    }

    /// Files of the directory (not recursive) whose names match `pattern`, sorted by name.
    pub fn files_matching(&self, pattern: &str) -> Vec<PathBuf> {
        files_matching(&self.path, pattern)
    }
}

/// Files of `dir` (not recursive) whose names match the regular expression `pattern`, sorted.
pub(crate) fn files_matching(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let re = Regex::new(pattern).expect("the harness passes only valid literal patterns");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|n| re.is_match(n))
        })
        .collect();
    out.sort();
    out
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed || self.keep {
            eprintln!(
                "interop: kept {} ({})",
                self.path.display(),
                if failed {
                    "test failed"
                } else {
                    "TINCAN_INTEROP_KEEP"
                }
            );
            if failed {
                for log in files_matching(&self.path, r"\.(log|out)$") {
                    // A SIP trace's last messages (a dozen or so) say more than 60 lines.
                    let lines = if log.ends_with("sip-trace.log") {
                        TRACE_TAIL_LINES
                    } else {
                        TAIL_LINES
                    };
                    eprintln!("----- {} (last {lines} lines)", log.display());
                    eprintln!("{}", tail(&log, lines));
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The last `lines` lines of a text file (lossy UTF-8), or a note when it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// How to start a peer; see [`Peer::builder`].
#[derive(Debug, Clone)]
pub struct PeerBuilder {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    lifetime: Duration,
    stop_grace: Duration,
    stdin: bool,
}

impl PeerBuilder {
    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the peer.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Maximum lifetime: after it, `timeout` sends SIGTERM, then SIGKILL 5 s later
    /// (default 120 s). A safety net only: tests stop their peers long before.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How long [`Peer::stop`] waits after each SIGTERM (default 3 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Gives the program a pipe as standard input (default: /dev/null), written with
    /// [`Peer::write_stdin`]; closed when the peer is dropped.
    pub fn stdin_piped(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// Starts the program in `dir` (its working directory), stdin from /dev/null (or a pipe,
    /// see [`PeerBuilder::stdin_piped`]), stdout and stderr appended to `dir/<name>.log`.
    pub fn spawn_in(self, dir: WorkDir) -> Result<Peer, PeerError> {
        // The program runs under `timeout`, which would only report a missing program as
        // exit code 127: check first.
        let found = if self.program.components().count() > 1 {
            self.program.is_file()
        } else {
            crate::find_program(&self.program.to_string_lossy()).is_some()
        };
        if !found {
            return Err(PeerError::Spawn {
                name: self.name,
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} not found", self.program.display()),
                ),
            });
        }
        let log_path = dir.join(format!("{}.log", self.name));
        let log = File::create(&log_path)
            .map_err(|e| PeerError::io(format!("creating {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| PeerError::io(format!("duplicating {}", log_path.display()), e))?;
        let mut cmd = Command::new("timeout");
        cmd.arg("--kill-after=5")
            .arg(format!("{}s", self.lifetime.as_secs().max(1)))
            .arg(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let child = cmd.spawn().map_err(|source| PeerError::Spawn {
            name: self.name.clone(),
            source,
        })?;
        Ok(Peer {
            name: self.name,
            pid: child.id(),
            child,
            status: None,
            log: log_path,
            stop_grace: self.stop_grace,
            dir,
        })
    }
}

/// A running third-party program, stopped by PID on [`Peer::stop`] or on drop.
#[derive(Debug)]
pub struct Peer {
    name: String,
    pid: u32,
    child: Child,
    status: Option<ExitStatus>,
    log: PathBuf,
    stop_grace: Duration,
    // Dropped after `Drop::drop` has stopped the process, so the logs printed on failure
    // are complete.
    dir: WorkDir,
}

impl Peer {
    /// Starts describing a peer named `name` (used for its log file and in messages).
    pub fn builder(name: &str, program: impl AsRef<Path>) -> PeerBuilder {
        PeerBuilder {
            name: name.to_owned(),
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            lifetime: Duration::from_secs(120),
            stop_grace: Duration::from_secs(3),
            stdin: false,
        }
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID the harness signals: that of the `timeout` wrapper, which is also the process
    /// group id of the program and its children.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The scratch directory (working directory of the program).
    pub fn dir(&self) -> &WorkDir {
        &self.dir
    }

    /// Mutable access to the scratch directory (e.g. to [`WorkDir::keep`] it).
    pub fn dir_mut(&mut self) -> &mut WorkDir {
        &mut self.dir
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything logged so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        tail(&self.log, TAIL_LINES)
    }

    /// Writes `line` and a newline to the program's standard input (started with
    /// [`PeerBuilder::stdin_piped`]).
    pub fn write_stdin(&mut self, line: &str) -> Result<(), PeerError> {
        use std::io::Write;
        let what = || format!("writing {line:?} to the stdin of {}", self.name);
        let Some(stdin) = self.child.stdin.as_mut() else {
            return Err(PeerError::io(
                what(),
                io::Error::new(io::ErrorKind::NotConnected, "stdin is not a pipe"),
            ));
        };
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| PeerError::io(what(), e))
    }

    /// Whether the program still runs.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits until a line of the log matches the regular expression `pattern`; returns that
    /// line. Fails when the program exits first or after `timeout`.
    pub fn wait_for_log(&mut self, pattern: &str, timeout: Duration) -> Result<String, PeerError> {
        self.wait_for_log_count(pattern, 1, timeout)
    }

    /// Waits until `count` lines of the log match `pattern`; returns the last of them.
    pub fn wait_for_log_count(
        &mut self,
        pattern: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<String, PeerError> {
        let re = Regex::new(pattern)?;
        let what = || format!("{count} log line(s) matching /{pattern}/");
        self.wait_until(timeout, what, |peer| {
            let log = peer.log();
            let matches: Vec<&str> = log.lines().filter(|l| re.is_match(l)).collect();
            (matches.len() >= count).then(|| matches[count - 1].to_owned())
        })
    }

    /// Waits until the program has a socket bound to `port` (UDP) or listening on it (TCP),
    /// on any address, as seen in `/proc/net`. For [`Protocols::Both`], both.
    pub fn wait_for_port(
        &mut self,
        protocols: Protocols,
        port: u16,
        timeout: Duration,
    ) -> Result<(), PeerError> {
        let what = || format!("port {port} ({protocols:?}) to be bound");
        self.wait_until(timeout, what, |_| {
            port_is_bound(protocols, port).then_some(())
        })
    }

    /// Polls `check` until it returns `Some`, failing when the program exits or on timeout.
    pub fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: impl Fn() -> String,
        mut check: impl FnMut(&mut Self) -> Option<T>,
    ) -> Result<T, PeerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return Ok(v);
            }
            if let Some(status) = self.try_status() {
                // One last look: the program may have written the line and exited.
                if let Some(v) = check(self) {
                    return Ok(v);
                }
                return Err(PeerError::Exited {
                    name: self.name.clone(),
                    status: describe(status),
                    waiting_for: what(),
                    log_tail: self.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(PeerError::Timeout {
                    name: self.name.clone(),
                    after: timeout,
                    waiting_for: what(),
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the program to exit by itself (e.g. sipp with `-m`), at most `timeout`.
    /// On timeout the program keeps running (drop or [`Peer::stop`] stops it).
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, PeerError> {
        let what = || "the program to exit".to_owned();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(PeerError::Timeout {
                    name: self.name.clone(),
                    after: timeout,
                    waiting_for: what(),
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends a signal to the program's PID (the `timeout` wrapper forwards it to the program
    /// and its process group).
    pub fn signal(&mut self, signal: Signal) {
        if self.try_status().is_none()
            && let Some(pid) = to_pid(self.pid)
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// Sends a signal to the program's whole process group (the `timeout` wrapper, the
    /// program and every worker it forked): e.g. SIGSTOP to freeze a multi-process server so
    /// that it black-holes its sockets (they stay bound, nothing answers), SIGCONT to thaw it.
    pub fn signal_group(&mut self, signal: Signal) {
        if self.try_status().is_none()
            && let Some(pgid) = to_pid(self.pid)
        {
            let _ = rustix::process::kill_process_group(pgid, signal);
        }
    }

    /// Stops the program: SIGTERM, wait up to the stop grace, SIGTERM again (baresip needs a
    /// second one when its registrar is gone), wait again, then SIGKILL; finally SIGKILL to
    /// whatever is left of its process group, so no child survives. Returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        let status = self.stop_inner();
        self.kill_group_leftovers();
        status
    }

    fn stop_inner(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            return status;
        }
        for _ in 0..2 {
            self.signal(Signal::TERM);
            if let Ok(status) = self.wait(self.stop_grace) {
                return status;
            }
        }
        if let Some(pid) = to_pid(self.pid) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        match self.child.wait() {
            Ok(status) => {
                self.status = Some(status);
                status
            }
            // Only possible if the child was already reaped; report it as killed.
            Err(_) => ExitStatus::from_raw(9),
        }
    }

    fn kill_group_leftovers(&self) {
        let Some(pgid) = to_pid(self.pid) else { return };
        let deadline = Instant::now() + Duration::from_secs(5);
        // Zombies (killed, not yet reaped by whoever inherited them) are gone for our purpose.
        while !live_group_members(self.pid).is_empty() {
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
            if Instant::now() >= deadline {
                eprintln!(
                    "interop: processes {:?} of {} survive SIGKILL",
                    live_group_members(self.pid),
                    self.name
                );
                return;
            }
            std::thread::sleep(POLL);
        }
    }
}

/// PIDs of the processes of process group `pgid` that are not zombies, from `/proc/*/stat`.
fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
            state != "Z" && state != "X" && pgrp == Some(pgid)
        })
        .collect()
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// "exit code 1", "signal 15".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

/// Whether some socket on this machine is bound to UDP `port` / listens on TCP `port` (any
/// address, IPv4 or IPv6), from `/proc/net/{udp,udp6,tcp,tcp6}`.
pub fn port_is_bound(protocols: Protocols, port: u16) -> bool {
    let udp = || proc_net_has(&["/proc/net/udp", "/proc/net/udp6"], port, None);
    // 0A = TCP_LISTEN
    let tcp = || proc_net_has(&["/proc/net/tcp", "/proc/net/tcp6"], port, Some("0A"));
    match protocols {
        Protocols::Udp => udp(),
        Protocols::Tcp => tcp(),
        Protocols::Both => udp() && tcp(),
    }
}

fn proc_net_has(files: &[&str], port: u16, state: Option<&str>) -> bool {
    let suffix = format!(":{port:04X}");
    files.iter().any(|f| {
        let Ok(text) = std::fs::read_to_string(f) else {
            return false;
        };
        text.lines().skip(1).any(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1).unwrap_or("");
            let st = cols.nth(1).unwrap_or("");
            local.ends_with(&suffix) && state.is_none_or(|s| s == st)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_last_lines() {
        let dir = WorkDir::new("tail-test").expect("temp dir is writable");
        let p = dir
            .write("a.log", "1\n2\n3\n4\n")
            .expect("temp dir is writable");
        assert_eq!(tail(&p, 2), "3\n4");
        assert_eq!(tail(&p, 10), "1\n2\n3\n4");
    }

    #[test]
    fn bound_udp_port_is_seen() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("loopback bind");
        let port = s.local_addr().expect("bound").port();
        assert!(port_is_bound(Protocols::Udp, port));
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback bind");
        let port = l.local_addr().expect("bound").port();
        assert!(port_is_bound(Protocols::Tcp, port));
    }
}
