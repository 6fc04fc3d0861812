//! A fleet (issue 20): several SIP servers ("members") on loopback behind kamailio's
//! `dispatcher` module, templated from `interop-tests/lab/kamailio/kamailio-dispatcher.cfg`.
//!
//! kamailio probes every member with OPTIONS every second, marks one down after two probes
//! without an answer (or on any answer but 200), sends new calls round-robin to the members
//! that are up and fails a call over to the next member when its member times out or answers
//! 408/500/503. It logs one line per decision (`DISPATCH`, `REDISPATCH`, `ENDED`,
//! `MARK-DOWN`, `DST-DOWN`, `DST-UP`, with the Call-ID, the member and the Unix time), which
//! [`FleetLog`] reads back:
//! which member got which call and when, which calls a member held at a given moment, when it
//! was marked down.
//!
//! What a member is lives in one place, [`fleet_member`].
//!
//! ```no_run
//! use std::time::Duration;
//! use tincan_interop_tests::fleet::Fleet;
//! use tincan_interop_tests::Sipp;
//!
//! let fleet = Fleet::start(3, Duration::from_secs(120)).expect("the fleet starts");
//! let run = Sipp::lab_scenario("fleet_uac.xml")
//!     .remote(fleet.addr())
//!     .service("ivr")
//!     .calls(30)
//!     .rate(10.0)
//!     .timeout(Duration::from_secs(60))
//!     .run()
//!     .expect("sipp runs");
//! assert_eq!(run.failed, 0);
//! let log = fleet.log();
//! assert!(fleet.members().iter().all(|m| !log.dispatched_to(&m.uri()).is_empty()));
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;

use crate::kamailio::Kamailio;
use crate::peer::{Peer, PeerError, WorkDir};
use crate::ports::V4;

/// The command that runs one fleet member answering on `127.0.0.1:port` (UDP): the IVR
/// example of the library (`ua-cli/examples/ivr.rs`: welcome prompt, a prompt per digit,
/// OPTIONS 200 or 503 when full or draining, SIGTERM drains), at most [`MEMBER_CALLS`] calls
/// at once. `TINCAN_IVR` names its binary (the benchmark passes a release build), else the
/// debug example is built ([`crate::tincan_example`]). The working directory is set by the
/// caller; `XDG_CONFIG_HOME`/`XDG_DATA_HOME` point into it (no user config, no history).
pub fn fleet_member(port: u16) -> Command {
    let bin = std::env::var_os("TINCAN_IVR")
        .map_or_else(|| crate::tincan_example("ivr"), std::path::PathBuf::from);
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--max-calls",
        &MEMBER_CALLS.to_string(),
    ])
    .env("XDG_CONFIG_HOME", "config")
    .env("XDG_DATA_HOME", "data");
    cmd
}

/// The calls one member takes at once (`ivr --max-calls`): beyond, INVITEs and the
/// dispatcher's OPTIONS get 503 and calls go to the other members.
pub const MEMBER_CALLS: usize = 200;

/// The current Unix time in seconds, to compare with the times of the [`FleetLog`].
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One running member of a fleet, stopped by PID on drop.
#[derive(Debug)]
pub struct FleetMember {
    peer: Peer,
    addr: SocketAddr,
}

impl FleetMember {
    /// Starts [`fleet_member`] on a free port and waits (at most `ready`) until it answers
    /// OPTIONS. `lifetime` caps how long it may run.
    pub fn start(name: &str, lifetime: Duration, ready: Duration) -> Result<Self, PeerError> {
        let port = crate::free_port();
        let cmd = fleet_member(port);
        let dir = WorkDir::new(name)?;
        let mut builder = Peer::builder(name, cmd.get_program())
            .args(cmd.get_args())
            .lifetime(lifetime)
            .stop_grace(Duration::from_secs(3));
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                builder = builder.env(key, value);
            }
        }
        let mut peer = builder.spawn_in(dir)?;
        let addr = SocketAddr::new(V4, port);
        peer.wait_for_port(crate::ports::Protocols::Udp, port, ready)?;
        let status = crate::sip_options_ping(addr, ready)?;
        if !status.starts_with("SIP/2.0 200") {
            return Err(PeerError::Protocol {
                name: name.to_owned(),
                message: format!("OPTIONS answered {status:?}"),
            });
        }
        Ok(Self { peer, addr })
    }

    /// Its SIP address (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URI as kamailio's dispatcher names it (`sip:127.0.0.1:PORT`).
    pub fn uri(&self) -> String {
        format!("sip:{}", self.addr)
    }

    /// SIGKILL to the member and everything it started: it dies holding its calls.
    pub fn kill(&mut self) {
        self.peer.signal_group(Signal::KILL);
    }

    /// SIGTERM to the member: it drains (refuses new calls, ends when its calls have ended).
    pub fn terminate(&mut self) {
        self.peer.signal(Signal::TERM);
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.peer.is_running()
    }

    /// The process guard (log, scratch dir, PID).
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

/// kamailio with the dispatcher in front of `n` members.
#[derive(Debug)]
pub struct Fleet {
    // Declared first: dropped (stopped) before the members, so it probes no dead member.
    kamailio: Kamailio,
    members: Vec<FleetMember>,
}

impl Fleet {
    /// Starts `n` members ([`fleet_member`]), then kamailio with them as dispatcher set 1;
    /// everything is capped at `lifetime`.
    pub fn start(n: usize, lifetime: Duration) -> Result<Self, PeerError> {
        Self::start_with(n, lifetime, Kamailio::builder())
    }

    /// [`Fleet::start`] with kamailio started from `kamailio` (e.g. more shared memory); the
    /// fleet sets its template, listeners and dispatcher list.
    pub fn start_with(
        n: usize,
        lifetime: Duration,
        kamailio: crate::kamailio::KamailioBuilder,
    ) -> Result<Self, PeerError> {
        let members = (0..n)
            .map(|i| {
                FleetMember::start(
                    &format!("fleet-member-{i}"),
                    lifetime,
                    Duration::from_secs(30),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = members.iter().map(FleetMember::addr).collect();
        let kamailio = kamailio
            .template("kamailio-dispatcher.cfg")
            .secondary(false)
            .ipv6(false)
            .dispatcher(&addrs)
            .start()?;
        Ok(Self { kamailio, members })
    }

    /// Where callers send their INVITEs (kamailio, UDP on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.kamailio.addr()
    }

    /// The members, in the order of the dispatcher list.
    pub fn members(&self) -> &[FleetMember] {
        &self.members
    }

    /// Member `i`.
    pub fn member(&mut self, i: usize) -> &mut FleetMember {
        &mut self.members[i]
    }

    /// The dispatcher proxy.
    pub fn kamailio(&mut self) -> &mut Kamailio {
        &mut self.kamailio
    }

    /// What kamailio has decided so far.
    pub fn log(&self) -> FleetLog {
        FleetLog::parse(&self.kamailio_log())
    }

    fn kamailio_log(&self) -> String {
        std::fs::read(self.kamailio.dir().join("kamailio.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until kamailio has dispatched `count` new calls.
    pub fn wait_dispatched(&mut self, count: usize, timeout: Duration) -> Result<(), PeerError> {
        self.kamailio
            .peer()
            .wait_for_log_count(r" DISPATCH \S+ sip:", count, timeout)
            .map(drop)
    }

    /// Waits until kamailio has marked `member` down after `since` (Unix time); returns when.
    pub fn wait_down(
        &mut self,
        member: &str,
        since: f64,
        timeout: Duration,
    ) -> Result<f64, PeerError> {
        let what = || format!("kamailio to mark {member} down");
        self.kamailio.peer().wait_until(timeout, what, |peer| {
            let log = std::fs::read(peer.log_path()).ok()?;
            FleetLog::parse(&String::from_utf8_lossy(&log)).down_after(member, since)
        })
    }
}

/// One decision of the dispatcher proxy, from its log.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FleetEntry {
    /// What happened.
    pub what: FleetWhat,
    /// The call's Call-ID (`None` for a member's state change).
    pub call_id: Option<String>,
    /// The member (`sip:127.0.0.1:PORT`).
    pub member: String,
    /// When, in Unix seconds (kamailio's clock, the machine's).
    pub at: f64,
}

/// The kinds of [`FleetEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetWhat {
    /// A new call sent to a member.
    Dispatch,
    /// A call failed over to another member (its member timed out or refused it).
    Redispatch,
    /// A member answered a BYE 200: the call has ended there.
    Ended,
    /// A member was marked down: probes unanswered or refused (`DST-DOWN`), or a call timed
    /// out or was refused there (`MARK-DOWN`).
    Down,
    /// A member was marked up again.
    Up,
}

/// kamailio's decisions, in the order of its log.
#[derive(Debug, Clone, Default)]
pub struct FleetLog {
    /// Every decision, oldest first.
    pub entries: Vec<FleetEntry>,
}

impl FleetLog {
    /// Reads the `DISPATCH`/`REDISPATCH`/`ENDED <Call-ID> <member> <time>` and
    /// `DST-DOWN`/`MARK-DOWN`/`DST-UP <member> <time>` lines of `kamailio-dispatcher.cfg`; other lines
    /// and malformed ones are skipped.
    pub fn parse(log: &str) -> Self {
        Self {
            entries: log.lines().filter_map(parse_line).collect(),
        }
    }

    /// The Call-IDs of every call kamailio dispatched (first dispatch), in order.
    pub fn calls(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.entries
            .iter()
            .filter(|e| e.what == FleetWhat::Dispatch)
            .filter_map(|e| e.call_id.as_deref())
            .filter(|c| seen.insert(*c))
            .collect()
    }

    /// Every dispatch and failover to `member`.
    pub fn dispatched_to(&self, member: &str) -> Vec<&FleetEntry> {
        self.entries
            .iter()
            .filter(|e| {
                matches!(e.what, FleetWhat::Dispatch | FleetWhat::Redispatch) && e.member == member
            })
            .collect()
    }

    /// How many calls `member` held at time `at`: the calls whose latest (re)dispatch up to
    /// `at` went to it and that it had not ended (BYE answered 200) by then.
    pub fn held_at(&self, member: &str, at: f64) -> usize {
        self.calls_held_at(member, at).len()
    }

    /// The Call-IDs of the calls `member` held at `at` (see [`FleetLog::held_at`]).
    pub fn calls_held_at(&self, member: &str, at: f64) -> HashSet<String> {
        let mut holder: HashMap<&str, &str> = HashMap::new();
        for e in self.entries.iter().filter(|e| e.at <= at) {
            let Some(call) = e.call_id.as_deref() else {
                continue;
            };
            match e.what {
                FleetWhat::Dispatch | FleetWhat::Redispatch => {
                    holder.insert(call, &e.member);
                }
                FleetWhat::Ended => {
                    holder.remove(call);
                }
                FleetWhat::Down | FleetWhat::Up => {}
            }
        }
        holder
            .into_iter()
            .filter(|(_, m)| *m == member)
            .map(|(c, _)| c.to_owned())
            .collect()
    }

    /// When `member` was first marked down at or after `since`.
    pub fn down_after(&self, member: &str, since: f64) -> Option<f64> {
        self.entries
            .iter()
            .find(|e| e.what == FleetWhat::Down && e.member == member && e.at >= since)
            .map(|e| e.at)
    }

    /// Calls each member received (dispatches and failovers) in `[from, to]`.
    pub fn load_between(&self, from: f64, to: f64) -> HashMap<&str, usize> {
        let mut load = HashMap::new();
        for e in &self.entries {
            if matches!(e.what, FleetWhat::Dispatch | FleetWhat::Redispatch)
                && (from..=to).contains(&e.at)
            {
                *load.entry(e.member.as_str()).or_insert(0) += 1;
            }
        }
        load
    }
}

/// One line of the cfg's: "... <KEYWORD> [<Call-ID>] <member> <time>".
fn parse_line(line: &str) -> Option<FleetEntry> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let what_of = |word: &str| match word {
        "DISPATCH" => Some(FleetWhat::Dispatch),
        "REDISPATCH" => Some(FleetWhat::Redispatch),
        "ENDED" => Some(FleetWhat::Ended),
        "DST-DOWN" | "MARK-DOWN" => Some(FleetWhat::Down),
        "DST-UP" => Some(FleetWhat::Up),
        _ => None,
    };
    let i = words.iter().rposition(|w| what_of(w).is_some())?;
    let what = what_of(words[i])?;
    let (call_id, member, at) = match (what, &words[i + 1..]) {
        (FleetWhat::Down | FleetWhat::Up, [member, at]) => (None, member, at),
        (FleetWhat::Dispatch | FleetWhat::Redispatch | FleetWhat::Ended, [call, member, at]) => {
            (Some((*call).to_owned()), member, at)
        }
        _ => return None,
    };
    if !member.starts_with("sip:") {
        return None;
    }
    Some(FleetEntry {
        what,
        call_id,
        member: (*member).to_owned(),
        at: at.parse().ok()?,
    })
}

/// The Call-IDs sipp logged as completed with the `fleet_uac.xml` scenario's `OK <Call-ID>`
/// lines (`-trace_logs`).
pub fn completed_calls(sipp_logs: &str) -> HashSet<String> {
    sipp_logs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("OK "))
        .map(|c| c.trim().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = " 0(12) NOTICE: {1 1 INVITE 1-9@127.0.0.1} <script>: DISPATCH 1-9@127.0.0.1 sip:127.0.0.1:5071 100.5
 0(12) NOTICE: {1 1 INVITE 2-9@127.0.0.1} <script>: DISPATCH 2-9@127.0.0.1 sip:127.0.0.1:5072 100.6
 0(13) NOTICE: {2 3 BYE 1-9@127.0.0.1} <script>: ENDED 1-9@127.0.0.1 sip:127.0.0.1:5071 101.5
 0(13) NOTICE: {1 1 INVITE 2-9@127.0.0.1} <script>: MEMBER-FAILED 2-9@127.0.0.1 sip:127.0.0.1:5072 408
 0(13) NOTICE: {1 1 INVITE 2-9@127.0.0.1} <script>: MARK-DOWN sip:127.0.0.1:5072 102.0
 0(13) NOTICE: {1 1 INVITE 2-9@127.0.0.1} <script>: REDISPATCH 2-9@127.0.0.1 sip:127.0.0.1:5071 102.6
 garbage line DISPATCH
 0(13) NOTICE: <script>: DISPATCH x sip:127.0.0.1:5071 not-a-time
";

    #[test]
    fn the_dispatcher_log_is_read_back() {
        let log = FleetLog::parse(LOG);
        assert_eq!(log.entries.len(), 5);
        assert_eq!(log.calls(), vec!["1-9@127.0.0.1", "2-9@127.0.0.1"]);
        assert_eq!(log.dispatched_to("sip:127.0.0.1:5071").len(), 2);
        assert_eq!(log.held_at("sip:127.0.0.1:5071", 101.0), 1);
        assert_eq!(log.held_at("sip:127.0.0.1:5071", 101.6), 0);
        assert_eq!(log.held_at("sip:127.0.0.1:5072", 101.6), 1);
        assert_eq!(log.held_at("sip:127.0.0.1:5071", 103.0), 1);
        assert_eq!(log.down_after("sip:127.0.0.1:5072", 101.0), Some(102.0));
        assert_eq!(log.down_after("sip:127.0.0.1:5072", 102.5), None);
        let load = log.load_between(100.0, 101.0);
        assert_eq!(load.get("sip:127.0.0.1:5071"), Some(&1));
        assert_eq!(load.get("sip:127.0.0.1:5072"), Some(&1));
    }

    #[test]
    fn completed_calls_are_the_ok_lines() {
        let done = completed_calls("OK 1-9@127.0.0.1\nsomething else\nOK 3-9@127.0.0.1\n");
        assert_eq!(done.len(), 2);
        assert!(done.contains("3-9@127.0.0.1"));
    }
}
