//! sipp (Debian `sip-tester`, 3.6.1): built-in and file scenarios, run to completion or in
//! the background.
//!
//! Every run gets free ports for SIP (`-p`), media (`-mp`, a block of 4: sipp binds the
//! port and the one two above it) and control (`-cp`: the default 8888..8897 would run out
//! with parallel tests), `-nostdin`, a global `-timeout` and `-trace_screen` so that the
//! "Successful call" / "Failed call" counters can be read after it exits.
//!
//! Exit codes of sipp: 0 = every call succeeded, 1 = at least one failed, 97 = exit on an
//! internal command, 99 = normal exit without calls, 255 = fatal error; 124 = it was still
//! running at the end of the harness's lifetime cap (the `timeout` wrapper).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::peer::{Peer, PeerError, WorkDir, describe};
use crate::ports::{self, Protocols, V4};

/// SIP transport of a sipp run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// `-t u1`: UDP, one socket.
    #[default]
    Udp,
    /// `-t t1`: TCP, one connection.
    Tcp,
}

impl Transport {
    fn flag(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }

    fn protocols(self) -> Protocols {
        match self {
            Transport::Udp => Protocols::Udp,
            Transport::Tcp => Protocols::Tcp,
        }
    }
}

#[derive(Debug, Clone)]
enum Scenario {
    Builtin(String),
    File(PathBuf),
}

/// A sipp invocation (builder). Finish with [`Sipp::run`] (run to completion) or
/// [`Sipp::spawn`] (background, e.g. a UAS).
#[derive(Debug, Clone)]
#[must_use]
pub struct Sipp {
    scenario: Scenario,
    remote: Option<SocketAddr>,
    local_ip: IpAddr,
    local_port: Option<u16>,
    media_port: Option<u16>,
    transport: Transport,
    calls: Option<u64>,
    rate: Option<f64>,
    limit: Option<u64>,
    timeout: Duration,
    injection: Option<Injection>,
    trace_msg: bool,
    trace_err: bool,
    trace_stat: bool,
    extra: Vec<String>,
    name: String,
}

#[derive(Debug, Clone)]
enum Injection {
    File(PathBuf),
    Rows(Vec<String>),
}

impl Sipp {
    /// A built-in scenario (`-sn uac`, `-sn uas`, `-sn regexp`, ...).
    pub fn builtin(name: &str) -> Self {
        Self::new(Scenario::Builtin(name.to_owned()), format!("sipp-{name}"))
    }

    /// A scenario file (`-sf path`).
    pub fn scenario(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_owned());
        Self::new(Scenario::File(path), format!("sipp-{stem}"))
    }

    /// One of the harness's scenario files, `interop-tests/lab/sipp/<file>`:
    /// `uac_call.xml`, `uas_pcmu_opus_bye.xml`, `uas_play_pcap.xml`,
    /// `register_auth_uac.xml`, `registrar_auth_uas.xml`.
    pub fn lab_scenario(file: &str) -> Self {
        Self::scenario(crate::lab_file(&format!("sipp/{file}")))
    }

    fn new(scenario: Scenario, name: String) -> Self {
        Self {
            scenario,
            remote: None,
            local_ip: V4,
            local_port: None,
            media_port: None,
            transport: Transport::Udp,
            calls: None,
            rate: None,
            limit: None,
            timeout: Duration::from_secs(30),
            injection: None,
            trace_msg: false,
            trace_err: false,
            trace_stat: false,
            extra: Vec::new(),
            name,
        }
    }

    /// The remote host (UAC: where to send), e.g. `127.0.0.1:5060` or `[::1]:5060`.
    pub fn remote(mut self, addr: SocketAddr) -> Self {
        self.remote = Some(addr);
        self
    }

    /// Local address (`-i`, default 127.0.0.1; `::1` for IPv6). Also used as media address.
    pub fn local_ip(mut self, ip: IpAddr) -> Self {
        self.local_ip = ip;
        self
    }

    /// Local SIP port (`-p`); default: a free port.
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = Some(port);
        self
    }

    /// Local media port (`-mp`); default: a free block of 4 ports.
    pub fn media_port(mut self, port: u16) -> Self {
        self.media_port = Some(port);
        self
    }

    /// Transport (`-t u1` / `-t t1`).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Stop after this many calls (`-m`).
    pub fn calls(mut self, n: u64) -> Self {
        self.calls = Some(n);
        self
    }

    /// Call rate in calls per second (`-r`).
    pub fn rate(mut self, cps: f64) -> Self {
        self.rate = Some(cps);
        self
    }

    /// Maximum simultaneous calls (`-l`).
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Global timeout (`-timeout`, default 30 s). Always set: every run is bounded.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Injection file (`-inf`), e.g. `lab_file("sipp/users_call.csv")`.
    pub fn inf(mut self, path: impl Into<PathBuf>) -> Self {
        self.injection = Some(Injection::File(path.into()));
        self
    }

    /// Injection rows written to a `SEQUENTIAL` CSV in the scratch dir (see
    /// [`Sipp::auth_row`]).
    pub fn inf_rows<I, S>(mut self, rows: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.injection = Some(Injection::Rows(rows.into_iter().map(Into::into).collect()));
        self
    }

    /// An injection row for the lab scenarios: `user;domain;[authentication username=user
    /// password=password];callee;`. The whole `[authentication ...]` keyword is a field
    /// because sipp 3.6.1 does not expand `[fieldN]` inside it.
    pub fn auth_row(user: &str, domain: &str, password: &str, callee: Option<&str>) -> String {
        format!(
            "{user};{domain};[authentication username={user} password={password}];{}",
            callee.map(|c| format!("{c};")).unwrap_or_default()
        )
    }

    /// `-trace_msg`: every message to `<scenario>_<pid>_messages.log`.
    pub fn trace_msg(mut self) -> Self {
        self.trace_msg = true;
        self
    }

    /// `-trace_err`: unexpected messages to `<scenario>_<pid>_errors.log`.
    pub fn trace_err(mut self) -> Self {
        self.trace_err = true;
        self
    }

    /// `-trace_stat`: statistics to `<scenario>_<pid>_.csv`.
    pub fn trace_stat(mut self) -> Self {
        self.trace_stat = true;
        self
    }

    /// The user part of the Request-URI of the built-in scenarios (`-s`, default `service`),
    /// e.g. the user a Tincan UAS answers as.
    pub fn service(self, user: &str) -> Self {
        self.arg("-s").arg(user)
    }

    /// `-rtp_echo`: echo RTP received on the media port back to its sender.
    pub fn rtp_echo(self) -> Self {
        self.arg("-rtp_echo")
    }

    /// Any other sipp argument(s), appended as given.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// Name of the peer (log file `<name>.log`); default `sipp-<scenario>`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    fn prepare(&self) -> Result<(WorkDir, Vec<String>, SocketAddr), PeerError> {
        let dir = WorkDir::new(&self.name)?;
        let ips = [self.local_ip];
        let port = self
            .local_port
            .unwrap_or_else(|| ports::free_port_block(&ips, self.transport.protocols(), 1));
        let media = self
            .media_port
            .unwrap_or_else(|| ports::free_port_block(&ips, Protocols::Udp, 4));
        let control = ports::free_port_block(&[V4], Protocols::Udp, 1);
        let ip = self.local_ip.to_string();
        let mut args: Vec<String> = Vec::new();
        match &self.scenario {
            Scenario::Builtin(name) => args.extend(["-sn".to_owned(), name.clone()]),
            Scenario::File(path) => args.extend(["-sf".to_owned(), path.display().to_string()]),
        }
        if let Some(remote) = self.remote {
            args.push(remote.to_string());
        }
        args.extend(
            [
                "-i",
                &ip,
                "-mi",
                &ip,
                "-p",
                &port.to_string(),
                "-mp",
                &media.to_string(),
                "-cp",
                &control.to_string(),
                "-t",
                self.transport.flag(),
                "-nostdin",
                "-trace_screen",
                "-timeout",
            ]
            .map(str::to_owned),
        );
        args.push(format!("{}s", self.timeout.as_secs().max(1)));
        if let Some(n) = self.calls {
            args.extend(["-m".to_owned(), n.to_string()]);
        }
        if let Some(r) = self.rate {
            args.extend(["-r".to_owned(), r.to_string()]);
        }
        if let Some(l) = self.limit {
            args.extend(["-l".to_owned(), l.to_string()]);
        }
        match &self.injection {
            Some(Injection::File(p)) => args.extend(["-inf".to_owned(), p.display().to_string()]),
            Some(Injection::Rows(rows)) => {
                let mut csv = String::from("SEQUENTIAL\n");
                for row in rows {
                    csv.push_str(row);
                    csv.push('\n');
                }
                let p = dir.write("injection.csv", csv)?;
                args.extend(["-inf".to_owned(), p.display().to_string()]);
            }
            None => {}
        }
        for (on, flag) in [
            (self.trace_msg, "-trace_msg"),
            (self.trace_err, "-trace_err"),
            (self.trace_stat, "-trace_stat"),
        ] {
            if on {
                args.push(flag.to_owned());
            }
        }
        args.extend(self.extra.iter().cloned());
        Ok((dir, args, SocketAddr::new(self.local_ip, port)))
    }

    /// Runs sipp to completion (bounded by its `-timeout` plus 15 s) and returns its exit
    /// code and call counters.
    pub fn run(self) -> Result<SippOutcome, PeerError> {
        let (dir, args, _) = self.prepare()?;
        let mut peer = Peer::builder(&self.name, crate::program("sipp"))
            .args(&args)
            .lifetime(self.timeout + Duration::from_secs(20))
            .spawn_in(dir)?;
        let status = match peer.wait(self.timeout + Duration::from_secs(15)) {
            Ok(status) => status,
            Err(_) => peer.stop(),
        };
        Ok(SippOutcome::collect(peer, status))
    }

    /// Starts sipp in the background and waits until its SIP port is bound.
    pub fn spawn(self) -> Result<SippPeer, PeerError> {
        let (dir, args, addr) = self.prepare()?;
        let mut peer = Peer::builder(&self.name, crate::program("sipp"))
            .args(&args)
            .lifetime(self.timeout + Duration::from_secs(20))
            .stop_grace(Duration::from_secs(6))
            .spawn_in(dir)?;
        peer.wait_for_port(
            self.transport.protocols(),
            addr.port(),
            Duration::from_secs(10),
        )?;
        Ok(SippPeer {
            peer,
            addr,
            transport: self.transport,
        })
    }
}

/// A sipp running in the background.
#[derive(Debug)]
pub struct SippPeer {
    peer: Peer,
    addr: SocketAddr,
    transport: Transport,
}

impl SippPeer {
    /// Its SIP address (`-i`:`-p`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The process guard.
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// What `-trace_msg` has written so far (`*_messages.log`), while sipp runs.
    pub fn messages(&self) -> String {
        read_all(self.peer.dir(), r"_messages\.log$")
    }

    /// Waits (at most `timeout`) for sipp to exit by itself (`-m` reached), else stops it.
    pub fn wait(mut self, timeout: Duration) -> SippOutcome {
        let status = match self.peer.wait(timeout) {
            Ok(status) => status,
            Err(_) => self.peer.stop(),
        };
        SippOutcome::collect(self.peer, status)
    }

    /// Stops sipp (SIGTERM: it finishes open calls and exits within a few seconds).
    pub fn stop(mut self) -> SippOutcome {
        let status = self.peer.stop();
        SippOutcome::collect(self.peer, status)
    }
}

/// How a sipp run ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct SippOutcome {
    /// sipp's exit code (`None` when it was killed by a signal).
    pub exit_code: Option<i32>,
    /// "Successful call" (cumulative) from the final screen.
    pub successful: u64,
    /// "Failed call" (cumulative) from the final screen.
    pub failed: u64,
    /// How it exited, in words.
    pub status: String,
    /// The final statistics screen (`-trace_screen`), empty if sipp did not write one.
    pub screen: String,
    // Holds the scratch dir (kept and printed if the test then fails).
    peer: Peer,
}

impl SippOutcome {
    fn collect(peer: Peer, status: ExitStatus) -> Self {
        let screen = peer
            .dir()
            .files_matching(r"_screen\.log$")
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        // Fall back to the stdout log when the screen file is empty or has no statistics
        // (a sipp stopped by a signal may leave it empty).
        let log = peer.log();
        let counter = |label: &str| {
            last_counter(&screen, label)
                .or_else(|| last_counter(&log, label))
                .unwrap_or(0)
        };
        Self {
            exit_code: status.code(),
            successful: counter("Successful call"),
            failed: counter("Failed call"),
            status: describe(status),
            screen,
            peer,
        }
    }

    /// The scratch directory (trace files are there).
    pub fn dir(&self) -> &WorkDir {
        self.peer.dir()
    }

    /// sipp's stdout/stderr.
    pub fn log(&self) -> String {
        self.peer.log()
    }

    /// Everything of `-trace_msg` (`*_messages.log`), empty without it.
    pub fn messages(&self) -> String {
        self.read_all(r"_messages\.log$")
    }

    /// Everything of `-trace_logs` (`*_logs.log`: the scenario's `<log>` actions).
    pub fn logs(&self) -> String {
        self.read_all(r"_logs\.log$")
    }

    /// Everything of `-trace_err` (`*_errors.log`).
    pub fn errors(&self) -> String {
        self.read_all(r"_errors\.log$")
    }

    fn read_all(&self, pattern: &str) -> String {
        read_all(self.dir(), pattern)
    }

    /// A one-line summary for assertion messages.
    pub fn summary(&self) -> String {
        format!(
            "{} ({}), {} successful, {} failed, dir {}",
            self.peer.name(),
            self.status,
            self.successful,
            self.failed,
            self.dir().path().display()
        )
    }
}

/// The contents of the files of `dir` whose names match `pattern`, concatenated.
fn read_all(dir: &WorkDir, pattern: &str) -> String {
    dir.files_matching(pattern)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cumulative (last) column of the last line starting with `label` in a sipp screen:
/// `  Successful call        |        0                  |      200`.
fn last_counter(screen: &str, label: &str) -> Option<u64> {
    screen
        .lines()
        .filter(|l| l.trim_start().starts_with(label))
        .filter_map(|l| l.rsplit('|').next()?.trim().parse().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_the_last_screen() {
        let screen = "\
  Successful call        |        0                  |       10
  Failed call            |        0                  |        1
----
  Successful call        |        0                  |      200
  Failed call            |        0                  |        0
";
        assert_eq!(last_counter(screen, "Successful call"), Some(200));
        assert_eq!(last_counter(screen, "Failed call"), Some(0));
        assert_eq!(last_counter(screen, "Nope"), None);
    }

    #[test]
    fn auth_row_has_the_whole_keyword_in_one_field() {
        assert_eq!(
            Sipp::auth_row("alice", "example.test", "pw", Some("bob")),
            "alice;example.test;[authentication username=alice password=pw];bob;"
        );
        assert_eq!(
            Sipp::auth_row("alice", "example.test", "pw", None),
            "alice;example.test;[authentication username=alice password=pw];"
        );
    }
}
