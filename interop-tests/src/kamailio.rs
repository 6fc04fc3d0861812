//! kamailio 5.6 as registrar and stateful proxy with digest auth (realm `example.test`),
//! templated from `interop-tests/lab/kamailio/kamailio.cfg` onto free ports.
//!
//! Each instance listens on UDP+TCP `127.0.0.1:P` and `[::1]:P`, and (unless disabled) on
//! UDP+TCP `127.0.0.2:Q` (a second SRV target for DNS failover tests). Several instances run
//! side by side. The cfg's safety net stays: it forwards only to loopback IP literals, and
//! it never asks the system resolver for anything.
//!
//! [`KamailioBuilder::presence`] starts the presence server variant
//! (`lab/kamailio/kamailio-presence.cfg`: PUBLISH, SUBSCRIBE/NOTIFY for `presence` and
//! `dialog`) with an sqlite database made from kamailio's schema files
//! ([`PRESENCE_SCHEMA`]); it needs the Debian packages `kamailio-presence-modules`,
//! `kamailio-sqlite-modules` and `sqlite3` ([`presence_available`] says whether they are
//! there).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::peer::{Peer, PeerError, WorkDir};
use crate::ports::{self, Protocols, V4, V6};

/// The realm and domain the lab cfg serves.
pub const DOMAIN: &str = "example.test";

/// The secondary listen address (second SRV target).
pub const SECONDARY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The lab's users (user name, password).
pub const LAB_USERS: [(&str, &str); 4] = [
    ("alice", "alicepw"),
    ("bob", "bobpw"),
    ("carol", "carolpw"),
    ("uat", "uatpw"),
];

/// The schema files the presence database is made from (Debian `kamailio-sqlite-modules`).
pub const PRESENCE_SCHEMA: [&str; 2] = [
    "/usr/share/kamailio/db_sqlite/standard-create.sql",
    "/usr/share/kamailio/db_sqlite/presence-create.sql",
];

/// The presence modules of kamailio (Debian `kamailio-presence-modules`, and `db_sqlite.so`
/// of `kamailio-sqlite-modules`).
const PRESENCE_MODULES: [&str; 4] = [
    "presence.so",
    "presence_xml.so",
    "presence_dialoginfo.so",
    "db_sqlite.so",
];

/// Why the presence server cannot start here (a missing module, schema file or `sqlite3`),
/// or `None` when it can.
pub fn presence_available() -> Option<String> {
    let dirs = [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/lib64/kamailio/modules",
    ];
    for module in PRESENCE_MODULES {
        if !dirs
            .iter()
            .any(|d| std::path::Path::new(d).join(module).exists())
        {
            return Some(format!(
                "kamailio module {module} missing (apt-get install kamailio-presence-modules kamailio-sqlite-modules)"
            ));
        }
    }
    if let Some(f) = PRESENCE_SCHEMA
        .iter()
        .find(|f| !std::path::Path::new(f).exists())
    {
        return Some(format!("{f} missing (kamailio-sqlite-modules)"));
    }
    if crate::find_program("sqlite3").is_none() {
        return Some("sqlite3 not installed".to_owned());
    }
    None
}

/// How to start kamailio; see [`Kamailio::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct KamailioBuilder {
    users: Vec<(String, String)>,
    secondary: bool,
    ipv6: bool,
    debug: u8,
    port: Option<u16>,
    template: String,
    dispatcher: Option<Vec<SocketAddr>>,
    shared_memory_mb: u32,
    /// UDP worker processes (`-n`).
    workers: u8,
}

impl KamailioBuilder {
    /// Another cfg of `interop-tests/lab/kamailio/` as the template (default
    /// `kamailio.cfg`), e.g. `kamailio-no-record-route.cfg`; it needs the same markers.
    pub fn template(mut self, file: &str) -> Self {
        file.clone_into(&mut self.template);
        self
    }

    /// The presence server variant (`kamailio-presence.cfg`) with a fresh sqlite database
    /// in the scratch dir.
    ///
    /// One UDP worker: kamailio's db_sqlite has no busy timeout, and two workers writing the
    /// presence tables at once fail with "database is locked".
    pub fn presence(mut self) -> Self {
        self.workers = 1;
        self.template("kamailio-presence.cfg")
    }

    /// Listen on this port (UDP and TCP) instead of a free one: to restart a registrar where
    /// it was.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Adds a user (or changes the password of a lab user).
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.retain(|(n, _)| n != name);
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Whether to listen on `127.0.0.2:Q` too (default: yes).
    pub fn secondary(mut self, on: bool) -> Self {
        self.secondary = on;
        self
    }

    /// Whether to listen on `[::1]:P` too (default: yes).
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// The destinations of dispatcher set 1, for a template with `#@dispatcher` markers
    /// (`kamailio-dispatcher.cfg`): the harness writes them to `dispatcher.list` in the
    /// scratch dir (`1 sip:ADDR` per line) and points the cfg's `list_file` at it.
    pub fn dispatcher(mut self, members: &[SocketAddr]) -> Self {
        self.dispatcher = Some(members.to_vec());
        self
    }

    /// Shared memory in MB (`-m`, default 64): transactions live there, so a load test of
    /// hundreds of calls per second needs more (64 MB ran out at 320 calls/s).
    pub fn shared_memory_mb(mut self, mb: u32) -> Self {
        self.shared_memory_mb = mb;
        self
    }

    /// kamailio's `debug` level (default 2 = info: one line per request and auth result).
    pub fn debug(mut self, level: u8) -> Self {
        self.debug = level;
        self
    }

    /// Writes the cfg, starts kamailio and waits until it answers OPTIONS on UDP and listens
    /// on TCP.
    pub fn start(self) -> Result<Kamailio, PeerError> {
        let dir = WorkDir::new("kamailio")?;
        let ips: &[IpAddr] = if self.ipv6 { &[V4, V6] } else { &[V4] };
        let port = self
            .port
            .unwrap_or_else(|| ports::free_port_block(ips, Protocols::Both, 1));
        let secondary_port = self
            .secondary
            .then(|| ports::free_port_block(&[SECONDARY_IP], Protocols::Both, 1));

        let template =
            std::fs::read_to_string(crate::lab_file(&format!("kamailio/{}", self.template)))
                .map_err(|e| PeerError::io(format!("reading lab/kamailio/{}", self.template), e))?;
        let mut listen = vec![
            format!("listen=udp:127.0.0.1:{port}"),
            format!("listen=tcp:127.0.0.1:{port}"),
        ];
        if let Some(q) = secondary_port {
            listen.push(format!("listen=udp:{SECONDARY_IP}:{q}"));
            listen.push(format!("listen=tcp:{SECONDARY_IP}:{q}"));
        }
        if self.ipv6 {
            listen.push(format!("listen=udp:[::1]:{port}"));
            listen.push(format!("listen=tcp:[::1]:{port}"));
        }
        let users: Vec<String> = self
            .users
            .iter()
            .map(|(n, p)| format!("\t$sht(users=>{n}) = \"{}\";", p.replace('"', "\\\"")))
            .collect();
        let dispatcher_list = match &self.dispatcher {
            Some(members) => {
                let list: String = members.iter().map(|m| format!("1 sip:{m}\n")).collect();
                Some(dir.write("dispatcher.list", list)?)
            }
            None => None,
        };
        // A template without users (the dispatcher's) has no @users markers.
        let has_users = template.contains("#@users-begin");
        let cfg = replace_between(
            &template,
            "#@listen-begin",
            "#@listen-end",
            &listen.join("\n"),
        )
        .and_then(|c| {
            if has_users {
                replace_between(&c, "#@users-begin", "#@users-end", &users.join("\n"))
            } else {
                Some(c)
            }
        })
        .and_then(|c| match &dispatcher_list {
            Some(path) => replace_between(
                &c,
                "#@dispatcher-begin",
                "#@dispatcher-end",
                &format!(
                    "modparam(\"dispatcher\", \"list_file\", \"{}\")",
                    path.display()
                ),
            ),
            None => Some(c),
        })
        .ok_or_else(|| PeerError::Protocol {
            name: "kamailio".to_owned(),
            message: format!(
                "lab/kamailio/{} lost its @listen/@users/@dispatcher markers",
                self.template
            ),
        })?
        .replacen("debug=2", &format!("debug={}", self.debug), 1);
        let cfg = if cfg.contains("#@db-begin") {
            let db = create_presence_db(&dir)?;
            replace_between(
                &cfg,
                "#@db-begin",
                "#@db-end",
                &format!("#!define DBURL \"sqlite:///{}\"", db.display()),
            )
            .unwrap_or(cfg)
        } else {
            cfg
        };
        let cfg_path = dir.write("kamailio.cfg", cfg)?;
        std::fs::create_dir_all(dir.join("run"))
            .map_err(|e| PeerError::io("creating run dir", e))?;

        let mut peer = Peer::builder("kamailio", crate::program("kamailio"))
            .arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-n"])
            .arg(self.workers.to_string())
            .arg("-m")
            .arg(self.shared_memory_mb.to_string())
            .args(["-M", "8", "-P"])
            .arg(dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.join("run"))
            .arg("-w")
            .arg(dir.path())
            .lifetime(Duration::from_secs(300))
            .spawn_in(dir)?;
        let addr = SocketAddr::new(V4, port);
        peer.wait_for_port(Protocols::Both, port, Duration::from_secs(15))?;
        let status = crate::sip_options_ping(addr, Duration::from_secs(10))?;
        if !status.starts_with("SIP/2.0 200") {
            return Err(PeerError::Protocol {
                name: "kamailio".to_owned(),
                message: format!("OPTIONS answered {status:?}"),
            });
        }
        Ok(Kamailio {
            peer,
            port,
            secondary_port,
            ipv6: self.ipv6,
            users: self.users,
        })
    }
}

/// Creates `presence.db` in `dir` from [`PRESENCE_SCHEMA`] with the `sqlite3` shell.
fn create_presence_db(dir: &WorkDir) -> Result<PathBuf, PeerError> {
    let db = dir.join("presence.db");
    let mut sql = String::new();
    for f in PRESENCE_SCHEMA {
        sql.push_str(
            &std::fs::read_to_string(f).map_err(|e| PeerError::io(format!("reading {f}"), e))?,
        );
        sql.push('\n');
    }
    // Persistent in the file: readers do not wait for (nor fail on) kamailio's other
    // processes writing.
    sql.push_str("PRAGMA journal_mode=WAL;\n");
    let sql_path = dir.write("presence-create.sql", sql)?;
    let sqlite = crate::find_program("sqlite3").ok_or_else(|| PeerError::Protocol {
        name: "sqlite3".to_owned(),
        message: "sqlite3 not installed (needed for the presence database)".to_owned(),
    })?;
    let input =
        std::fs::File::open(&sql_path).map_err(|e| PeerError::io("opening the schema", e))?;
    let out = Command::new(sqlite)
        .arg(&db)
        .stdin(input)
        .output()
        .map_err(|e| PeerError::io("running sqlite3", e))?;
    if !out.status.success() {
        return Err(PeerError::Protocol {
            name: "sqlite3".to_owned(),
            message: format!(
                "creating the presence database failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(db)
}

fn replace_between(text: &str, begin: &str, end: &str, with: &str) -> Option<String> {
    let b = text.find(begin)? + begin.len();
    let e = b + text[b..].find(end)?;
    // keep the indentation that precedes the end marker
    let indent_start = text[..e].rfind('\n').map_or(e, |i| i + 1);
    Some(format!(
        "{}\n{}\n{}",
        &text[..b],
        with,
        &text[indent_start..]
    ))
}

/// A running kamailio; stopped (with all its worker processes) on drop.
#[derive(Debug)]
pub struct Kamailio {
    peer: Peer,
    port: u16,
    secondary_port: Option<u16>,
    ipv6: bool,
    users: Vec<(String, String)>,
}

impl Kamailio {
    /// Lab users (alice/alicepw, bob/bobpw, carol/carolpw, uat/uatpw), all listeners.
    pub fn builder() -> KamailioBuilder {
        KamailioBuilder {
            users: LAB_USERS
                .iter()
                .map(|(n, p)| ((*n).to_owned(), (*p).to_owned()))
                .collect(),
            secondary: true,
            ipv6: true,
            debug: 2,
            port: None,
            template: "kamailio.cfg".to_owned(),
            dispatcher: None,
            shared_memory_mb: 64,
            workers: 2,
        }
    }

    /// Starts an instance with the defaults of [`Kamailio::builder`].
    pub fn start() -> Result<Self, PeerError> {
        Self::builder().start()
    }

    /// UDP and TCP address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(V4, self.port)
    }

    /// UDP and TCP address on ::1 (`None` when started without IPv6).
    pub fn addr_v6(&self) -> Option<SocketAddr> {
        self.ipv6.then(|| SocketAddr::new(V6, self.port))
    }

    /// UDP and TCP address on 127.0.0.2 (`None` when started without it).
    pub fn secondary_addr(&self) -> Option<SocketAddr> {
        self.secondary_port
            .map(|q| SocketAddr::new(SECONDARY_IP, q))
    }

    /// The port on 127.0.0.1 and ::1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The domain/realm (`example.test`).
    pub fn domain(&self) -> &'static str {
        DOMAIN
    }

    /// The password of `user`, if it is configured.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(n, _)| n == user)
            .map(|(_, p)| p.as_str())
    }

    /// The process guard (log, scratch dir, PID).
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// The ctl socket for `kamcmd -s`.
    pub fn ctl_socket(&self) -> String {
        format!(
            "unix:{}",
            self.peer.dir().join("run/kamailio_ctl").display()
        )
    }

    /// Runs `kamcmd -s <ctl socket> args...` (bounded to 10 s) and returns its stdout.
    pub fn kamcmd(&self, args: &[&str]) -> Result<String, PeerError> {
        kamcmd_at(&self.ctl_socket(), args)
    }

    /// Contact URIs registered for `user` (empty when none), from `ul.dump`.
    pub fn contacts(&self, user: &str) -> Result<Vec<String>, PeerError> {
        let dump = self.kamcmd(&["ul.dump"])?;
        Ok(parse_contacts(&dump, user))
    }

    /// Adds a user (or changes a password) while kamailio runs (`kamcmd htable.sets`).
    pub fn add_user(&mut self, name: &str, password: &str) -> Result<(), PeerError> {
        self.kamcmd(&["htable.sets", "users", name, password])?;
        self.users.retain(|(n, _)| n != name);
        self.users.push((name.to_owned(), password.to_owned()));
        Ok(())
    }

    /// Waits until `user` has at least one registered contact; returns the contacts.
    pub fn wait_registered(
        &mut self,
        user: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, PeerError> {
        let what = || format!("a registration of {user}");
        let mut last_error = None;
        let result = self.peer.wait_until(timeout, what, |peer| {
            let socket = format!("unix:{}", peer.dir().join("run/kamailio_ctl").display());
            match kamcmd_at(&socket, &["ul.dump"]) {
                Ok(dump) => Some(parse_contacts(&dump, user)).filter(|c| !c.is_empty()),
                Err(e) => {
                    last_error = Some(e);
                    None
                }
            }
        });
        match (result, last_error) {
            (Err(PeerError::Timeout { .. }), Some(e)) => Err(e),
            (result, _) => result,
        }
    }

    /// Removes every binding of `user`.
    pub fn unregister(&self, user: &str) -> Result<(), PeerError> {
        self.kamcmd(&["ul.rm", "location", user]).map(drop)
    }

    /// The scratch dir of this instance.
    pub fn dir(&self) -> PathBuf {
        self.peer.dir().path().to_owned()
    }

    /// Freezes kamailio and all its workers (SIGSTOP to its process group): its sockets stay
    /// bound and nothing answers, as a black-holed server. [`resume`](Self::resume) thaws
    /// it; stopping a frozen instance works too.
    pub fn pause(&mut self) {
        self.peer.signal_group(rustix::process::Signal::STOP);
    }

    /// Thaws an instance frozen by [`pause`](Self::pause).
    pub fn resume(&mut self) {
        self.peer.signal_group(rustix::process::Signal::CONT);
    }

    /// Stops kamailio and its workers.
    pub fn stop(mut self) {
        self.peer.stop();
    }
}

/// Runs `kamcmd -s socket args...` under `timeout 10`.
fn kamcmd_at(socket: &str, args: &[&str]) -> Result<String, PeerError> {
    let out = Command::new("timeout")
        .arg("10")
        .arg(crate::program("kamcmd"))
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .map_err(|e| PeerError::io("running kamcmd", e))?;
    if !out.status.success() {
        return Err(PeerError::Protocol {
            name: "kamcmd".to_owned(),
            message: format!(
                "{args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Contacts of one AoR in `kamcmd ul.dump` output:
/// ```text
/// AoR: alice
///     ...
///     Contact: {
///         Address: sip:alice@127.0.0.1:5093;transport=TCP
/// ```
fn parse_contacts(dump: &str, user: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_aor = false;
    for line in dump.lines() {
        let line = line.trim();
        if let Some(aor) = line.strip_prefix("AoR:") {
            let aor = aor.trim();
            in_aor = aor == user || aor.split('@').next() == Some(user);
        } else if in_aor && let Some(addr) = line.strip_prefix("Address:") {
            out.push(addr.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_replaced_and_kept() {
        let t = "a\n#@x-begin\nold1\nold2\n\t#@x-end\nb\n";
        assert_eq!(
            replace_between(t, "#@x-begin", "#@x-end", "new").as_deref(),
            Some("a\n#@x-begin\nnew\n\t#@x-end\nb\n")
        );
        assert_eq!(replace_between(t, "#@y-begin", "#@y-end", "new"), None);
    }

    #[test]
    fn contacts_are_parsed_per_aor() {
        let dump = "Domain: location\n\tAoRs: {\n\t\tAoR: alice\n\t\t\tContact: {\n\t\t\t\tAddress: \
                    sip:alice@127.0.0.1:5093;transport=TCP\n\t\tAoR: bob\n\t\t\tContact: {\n\t\t\t\t\
                    Address: sip:bob@127.0.0.1:5070\n";
        assert_eq!(
            parse_contacts(dump, "alice"),
            vec!["sip:alice@127.0.0.1:5093;transport=TCP"]
        );
        assert_eq!(parse_contacts(dump, "bob"), vec!["sip:bob@127.0.0.1:5070"]);
        assert!(parse_contacts(dump, "carol").is_empty());
    }
}
