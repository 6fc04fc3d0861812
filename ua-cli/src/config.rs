//! Tincan's configuration file (TOML): the network settings and the accounts.
//!
//! Where the file is found, first match wins:
//!
//! 1. the path given to [`Config::load`] (the `tincan --config FILE` option);
//! 2. the `TINCAN_CONFIG` environment variable (when set and not empty);
//! 3. `$XDG_CONFIG_HOME/tincan/config.toml`, or `~/.config/tincan/config.toml`.
//!
//! A file named by 1 or 2 must exist; the default file may be missing, which gives an empty
//! configuration (no accounts, system DNS). Every key is documented in `docs/config.md`.
//!
//! ```
//! use tincan::config::{Config, RegisterMode, TransportChoice};
//!
//! let text = r#"
//! [network]
//! dns_server = "127.0.0.1:5353"
//!
//! [[account]]
//! name = "work"
//! aor = "sip:alice@example.com"
//! password_env = "TINCAN_WORK_PASSWORD"
//! registrars = ["sip:reg1.example.com;transport=tcp", "sip:reg2.example.com"]
//! register_mode = "all"
//! "#;
//! let config = Config::from_str_named(text, "example.toml").expect("a valid file");
//! assert_eq!(config.network.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
//! let work = config.account("work").expect("declared above");
//! assert_eq!(work.username, "alice");
//! assert_eq!(work.transport, TransportChoice::Auto);
//! assert_eq!(work.register_mode, RegisterMode::All);
//! assert_eq!(work.expires, 3600);
//! assert!(work.instance_id.starts_with("urn:uuid:"));
//!
//! // Errors give the place and the key.
//! let err = Config::from_str_named("[network]\ndns_sever = \"x\"\n", "bad.toml").unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml:2:1: "), "{err}");
//! assert!(err.to_string().contains("dns_sever"), "{err}");
//! ```
//!
//! Passwords are [`Secret`]s: their `Debug` and `Display` print `<redacted>`, so a config or
//! an account can be logged. `password_env` and `password_command` are read only when
//! [`Account::password`] is called; a `password_command` gets [`PASSWORD_COMMAND_TIMEOUT`] and
//! its errors never show its arguments. [`Config::load`] lists what is usable but unwise in
//! [`Config::warnings`] (a `password` in a file other users can read).

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tincan_media::codec::CodecKind;
use tincan_media::sdp::SrtpPolicy;
use tincan_sip::message::{SipUri, Uri};
use tincan_sip::transport::Transport;

use crate::phone::TransferPolicy;
use toml::Spanned;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "TINCAN_CONFIG";

/// How long a `password_command` may run before it is killed and the password counts as
/// unreadable.
pub const PASSWORD_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Default registration lifetime in seconds (RFC 3261 §10.2.1.1 suggests 3600).
pub const DEFAULT_EXPIRES: u32 = 3600;

/// A loaded, validated configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The file it was read from (`None` for the empty default configuration).
    pub path: Option<PathBuf>,
    /// `[network]`.
    pub network: Network,
    /// `[audio]`.
    pub audio: Audio,
    /// `[[account]]` tables, in file order.
    pub accounts: Vec<Account>,
    /// What is usable but unwise (printed by the commands, never fatal).
    pub warnings: Vec<ConfigWarning>,
}

/// A configuration Tincan uses, but should not have to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// The file holds a `password` and other users may read it (as ssh and fetchmail warn).
    PasswordFileReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::PasswordFileReadable { path, mode } => write!(
                f,
                "{p} holds a password and other users can read it (mode {mode:04o}): \
                 run `chmod 600 {p}`",
                p = path.display()
            ),
        }
    }
}

/// The `[network]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Network {
    /// `dns_server`: the DNS server (ADDR:PORT) for RFC 3263 lookups; `None` uses the
    /// system's resolver.
    pub dns_server: Option<SocketAddr>,
    /// `bind`: the local address (ADDR:PORT) for SIP sockets; `None` lets the system choose.
    pub bind: Option<SocketAddr>,
    /// `keepalive_interval`: seconds between RFC 5626 keep-alive pings on TCP/TLS flows of
    /// outbound accounts when the registrar sends no `Flow-Timer`; `None` means the RFC's
    /// 120 s, `Some(0)` turns keep-alives off.
    pub keepalive_interval: Option<u32>,
    /// `udp_keepalive_interval`: seconds between RFC 5626 STUN keep-alives on UDP flows of
    /// outbound accounts when the registrar sends no `Flow-Timer`; `None` means the RFC's
    /// 24 s, `Some(0)` turns them off.
    pub udp_keepalive_interval: Option<u32>,
    /// `stun_rto_ms`: the initial retransmission timeout of a STUN keep-alive in
    /// milliseconds (RFC 5389 §7.2.1); the transaction fails after 79 times it. `None` means
    /// 500 ms (39.5 s).
    pub stun_rto_ms: Option<u32>,
    /// `call_limit`: most calls the phone carries at once; a new incoming call over it is
    /// refused 503 with Retry-After. `None` means
    /// [`DEFAULT_CALL_LIMIT`](crate::phone::config::DEFAULT_CALL_LIMIT), `Some(0)` no limit.
    pub call_limit: Option<u32>,
    /// `udp_buffer_size`: the receive and send buffer of the SIP UDP sockets in bytes
    /// (`SO_RCVBUF`, `SO_SNDBUF`, capped by the system's `net.core.rmem_max`); `None` means
    /// [`UDP_BUFFER_SIZE`](crate::phone::driver::UDP_BUFFER_SIZE) (4 MiB), `Some(0)` the
    /// system's default.
    pub udp_buffer_size: Option<u32>,
    /// `stun_server`: a STUN server (`host:port`, RFC 8489) that tells the public address
    /// behind a NAT; `tincan nat` asks it when no `--stun-server` is given. Kept as written
    /// (a host name is resolved when it is used).
    pub stun_server: Option<String>,
    /// `session_expires`: the session interval of calls in seconds (RFC 4028
    /// `Session-Expires`): asked for in our INVITEs, granted to a caller that asks for none;
    /// calls are refreshed at half of it and hung up when the peer's refresh is late. At
    /// least 90 (`Min-SE`); `None` means 1800, `Some(0)` turns session timers off.
    pub session_expires: Option<u32>,
    /// `accept_transfer`: what a REFER from a peer (a transfer, RFC 3515) does: `"ask"`
    /// (the default: the application, `tincan call`/`listen` ask the person), `"always"`
    /// or `"never"` (603 Decline).
    pub accept_transfer: Option<TransferPolicy>,
    /// `prack`: reliable provisional responses (RFC 3262): `"supported"` (the default: our
    /// INVITEs list `Supported: 100rel`), `"required"` (they carry `Require: 100rel`, and an
    /// incoming call whose caller supports it rings reliably) or `"off"`. A caller that
    /// requires `100rel` is served reliably whatever this says.
    pub prack: Option<tincan_sip::dialog::PrackPolicy>,
}

/// The `[audio]` section: the devices every account uses unless it names its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Audio {
    /// `input_device`: the microphone, by the name `tincan devices` lists; `None`: the
    /// system's default.
    pub input_device: Option<String>,
    /// `output_device`: the speaker, by name; `None`: the system's default.
    pub output_device: Option<String>,
    /// `ring_device`: where incoming calls ring, by name; `None`: the output device.
    pub ring_device: Option<String>,
    /// `ring_tone`: a WAV file to ring with instead of the built-in tone. Kept as written
    /// (a leading `~/` expanded); whether it can be read is checked when it is played.
    pub ring_tone: Option<PathBuf>,
    /// `ringback`: whether an outgoing call plays ring-back on its output device while the
    /// callee rings; `None` (not set): yes.
    pub ringback: Option<bool>,
    /// `echo_cancellation`: cancel the loudspeaker's echo in the microphone; `None`: yes.
    pub echo_cancellation: Option<bool>,
    /// `noise_suppression`: suppress steady background noise; `None`: yes.
    pub noise_suppression: Option<bool>,
    /// `auto_gain`: bring a quiet talker up to a common level; `None`: yes.
    pub auto_gain: Option<bool>,
}

impl Audio {
    /// The capture processing these keys ask for: each stage on unless switched off (as in
    /// WebRTC's and browsers' voice defaults; see docs/config.md).
    pub fn processing(&self) -> tincan_media::dsp::ProcessingConfig {
        tincan_media::dsp::ProcessingConfig {
            echo_cancellation: self.echo_cancellation.unwrap_or(true),
            noise_suppression: self.noise_suppression.unwrap_or(true),
            auto_gain: self.auto_gain.unwrap_or(true),
        }
    }
}

/// Which transport an account uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TransportChoice {
    /// RFC 3263 chooses (NAPTR, then SRV of every transport).
    #[default]
    Auto,
    /// UDP only.
    Udp,
    /// TCP only.
    Tcp,
    /// TLS only.
    Tls,
}

impl TransportChoice {
    /// The forced transport, or `None` for [`TransportChoice::Auto`].
    pub fn transport(self) -> Option<Transport> {
        match self {
            TransportChoice::Auto => None,
            TransportChoice::Udp => Some(Transport::Udp),
            TransportChoice::Tcp => Some(Transport::Tcp),
            TransportChoice::Tls => Some(Transport::Tls),
        }
    }
}

/// How an account with several registrars registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RegisterMode {
    /// One registrar at a time, in order: fail over to the next, fail back to the first.
    #[default]
    Failover,
    /// Registered with every registrar at the same time.
    All,
}

/// Which digest realms an account's password answers (`realm`). A 401/407 of any other realm
/// is not answered: the answer is a hash of the password that whoever sent the challenge
/// could attack offline (PJSIP answers only the realms of its credentials the same way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RealmPolicy {
    /// No `realm`: the first realm that challenges the account (normally its registrar's
    /// challenge to the first REGISTER) is pinned for the account's lifetime; later
    /// challenges of other realms are refused (trust on first use).
    #[default]
    FirstChallenge,
    /// `realm = "x"` or `realm = ["x", "y"]`: only these realms (compared exactly).
    Only(Vec<String>),
    /// `realm = "*"`: any realm. Whoever challenges a request of the account (a downstream
    /// proxy, a spoofed response) gets a hash of the password.
    Any,
}

/// A password or other secret: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that needs it (digest authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where an account's password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordSource {
    /// `password`: written in the file.
    Literal(Secret),
    /// `password_env`: the value of this environment variable.
    Env(String),
    /// `password_command`: the first line of this shell command's standard output
    /// (run with `sh -c`).
    Command(String),
}

/// One `[[account]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// `name`: unique among the accounts (`tincan register --account NAME`).
    pub name: String,
    /// `aor`: the address of record, a `sip:` or `sips:` URI.
    pub aor: SipUri<'static>,
    /// `username`: the digest authentication user (default: the aor's user part).
    pub username: String,
    /// `password` | `password_env` | `password_command`.
    pub password_source: PasswordSource,
    /// `realm`: the digest realms the password answers (default:
    /// [`RealmPolicy::FirstChallenge`]).
    pub realm: RealmPolicy,
    /// `transport`: default [`TransportChoice::Auto`].
    pub transport: TransportChoice,
    /// `registrars`: explicit registrars / outbound proxies in order; empty means "resolve
    /// the aor's domain by RFC 3263".
    pub registrars: Vec<SipUri<'static>>,
    /// `register_mode`: default [`RegisterMode::Failover`].
    pub register_mode: RegisterMode,
    /// `expires`: the registration lifetime asked for, in seconds (default 3600).
    pub expires: u32,
    /// `outbound`: RFC 5626 (`+sip.instance`, `reg-id`, keep-alives); default true.
    pub outbound: bool,
    /// `instance_id`: the `+sip.instance` value, `urn:uuid:...` (default: derived from the
    /// aor, see [`derive_instance_id`]).
    pub instance_id: String,
    /// `call_limit`: most calls of this account at once; a new incoming call to it over the
    /// bound is refused 486 Busy Here. `None`: only the phone's `[network] call_limit`.
    pub call_limit: Option<usize>,
    /// `display_name`: the name shown with our address (`"Alice" <sip:alice@...>`) in the
    /// From of calls and in REGISTER.
    pub display_name: Option<String>,
    /// `codecs`: the codecs of this account's calls, in order of preference; `None`: the
    /// phone's (Opus, G.722, PCMU, PCMA). `--codec` wins over it.
    pub codecs: Option<Vec<CodecKind>>,
    /// `srtp`: the SRTP policy of this account's calls; `None`: the phone's (optional).
    /// `--srtp` wins over it.
    pub srtp: Option<SrtpPolicy>,
    /// `accept_transfer`: what a REFER in this account's calls does (`"ask"`, `"always"`,
    /// `"never"`); `None`: the phone's (`[network] accept_transfer`).
    pub accept_transfer: Option<TransferPolicy>,
    /// `auto_answer`: `tincan listen` answers calls to this account by itself (as
    /// `--auto-answer` does for every call).
    pub auto_answer: bool,
    /// `mwi`: subscribe to the account's `message-summary` (RFC 3842) once it registers, for
    /// the voicemail count; default false (unsolicited message-summary NOTIFYs are taken
    /// either way).
    pub mwi: bool,
    /// `presence`: publish the account's presence (RFC 3903 PUBLISH) once it registers:
    /// available, busy while on a call; default false.
    pub presence: bool,
    /// `watch`: contacts (URIs or user names of the account's domain) whose presence the
    /// account watches (RFC 3856 SUBSCRIBE) once it registers; default none.
    pub watch: Vec<String>,
    /// `blf`: contacts whose busy lamps (RFC 4235 dialog event package) the account watches
    /// once it registers: SIP URIs, `user@domain` or users of the account's domain.
    pub blf: Vec<String>,
    /// `input_device`: this account's microphone (else `[audio] input_device`).
    pub input_device: Option<String>,
    /// `output_device`: this account's speaker (else `[audio] output_device`).
    pub output_device: Option<String>,
    /// `ring_device`: where calls to this account ring (else `[audio] ring_device`).
    pub ring_device: Option<String>,
}

impl Account {
    /// The password, read from its source now (`password_env` and `password_command` are
    /// read each time this is called, so a changed secret is picked up).
    pub fn password(&self) -> Result<Secret, ConfigError> {
        match &self.password_source {
            PasswordSource::Literal(s) => Ok(s.clone()),
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) => Ok(Secret(v)),
                Err(e) => Err(ConfigError::PasswordEnv {
                    account: self.name.clone(),
                    variable: var.clone(),
                    reason: match e {
                        std::env::VarError::NotPresent => "is not set",
                        std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
                    },
                }),
            },
            PasswordSource::Command(cmd) => {
                run_password_command(&self.name, cmd, PASSWORD_COMMAND_TIMEOUT)
            }
        }
    }

    /// [`Account::password`] with `timeout` for a `password_command` instead of
    /// [`PASSWORD_COMMAND_TIMEOUT`].
    pub fn password_within(&self, timeout: Duration) -> Result<Secret, ConfigError> {
        match &self.password_source {
            PasswordSource::Command(cmd) => run_password_command(&self.name, cmd, timeout),
            _ => self.password(),
        }
    }

    /// The RFC 3263 destinations to register with: the registrars, or the aor's domain
    /// (without its user part) when there are none.
    pub fn registrar_uris(&self) -> Vec<SipUri<'static>> {
        if !self.registrars.is_empty() {
            return self.registrars.clone();
        }
        let mut domain = SipUri::new(self.aor.secure, self.aor.host.clone());
        domain.port = self.aor.port;
        vec![domain]
    }
}

/// Runs a `password_command` (`sh -c`, in its own process group) for at most `timeout`: the
/// first line of its standard output is the password. A command that does not finish in time
/// is killed with its whole process group. Errors name the program (the command's first word
/// that is not a `VAR=value` assignment), never the rest of the command line, which may hold
/// a secret.
fn run_password_command(
    account: &str,
    command: &str,
    timeout: Duration,
) -> Result<Secret, ConfigError> {
    let err = |reason: String| ConfigError::PasswordCommand {
        account: account.to_owned(),
        program: program_name(command),
        reason,
    };
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut sh, 0);
    let mut child = sh
        .spawn()
        .map_err(|e| err(format!("could not be started: {e}")))?;
    let deadline = std::time::Instant::now() + timeout;
    // Its output is read, and its exit awaited, on helper threads; this one waits on the
    // results until the deadline.
    let stdout = read_to_end(child.stdout.take());
    let stderr = read_to_end(child.stderr.take());
    let pid = child.id();
    let (exited, status) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let left = || deadline.saturating_duration_since(std::time::Instant::now());
    let finished = status.recv_timeout(left()).ok().and_then(|s| {
        let out = stdout.recv_timeout(left()).ok()?;
        let err = stderr.recv_timeout(left()).ok()?;
        Some((s, out, err))
    });
    let Some((status, out, stderr)) = finished else {
        kill_group(pid);
        // Reaped by the waiting thread once killed.
        let _ = status.recv_timeout(Duration::from_secs(1));
        return Err(err(format!(
            "did not finish within {} s: killed",
            timeout.as_secs_f64()
        )));
    };
    let status = status.map_err(|e| err(format!("could not be waited for: {e}")))?;
    if !status.success() {
        let said = String::from_utf8_lossy(&stderr)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        return Err(err(format!("failed ({status}){said}")));
    }
    let text =
        String::from_utf8(out).map_err(|_| err("printed something that is not UTF-8".into()))?;
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        return Err(err("printed nothing on its first line".into()));
    }
    Ok(Secret(first.to_owned()))
}

/// A pipe of a child read to its end on a thread of its own.
fn read_to_end(pipe: Option<impl io::Read + Send + 'static>) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Kills the process group `pid` leads (a `password_command` and whatever it started).
fn kill_group(pid: u32) {
    #[cfg(unix)]
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// The permission bits of `path` when its group or other users may read it.
fn readable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The program a shell command runs: its first word that is not a `VAR=value` assignment
/// (the rest may be secret).
fn program_name(command: &str) -> String {
    command
        .split_whitespace()
        .find(|w| !w.contains('='))
        .map(|w| w.trim_end_matches(';').to_owned())
        .unwrap_or_else(|| "sh".to_owned())
}

/// The default RFC 5626 instance id for an aor: a UUID made from the SHA-256 of the aor
/// (RFC 9562 version 8, "custom"), so it is the same on every run. Two devices sharing an
/// account should set `instance_id` explicitly on one of them.
pub fn derive_instance_id(aor: &SipUri<'_>) -> String {
    let digest = Sha256::digest(format!("tincan +sip.instance {aor}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10 (RFC 9562 §4.1)
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Why a configuration could not be loaded, or a password read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value is wrong.
    #[error("{origin}:{line}:{column}: {message}\n{excerpt}")]
    Invalid {
        /// The file name (or the name given to [`Config::from_str_named`]).
        origin: String,
        /// Line, from 1.
        line: usize,
        /// Column (in characters), from 1.
        column: usize,
        /// The key at fault, when known.
        key: Option<String>,
        /// What is wrong, naming the key and its section.
        message: String,
        /// The offending line with a caret under the column.
        excerpt: String,
    },
    /// `password_env` names a variable that is missing.
    #[error("account {account:?}: password_env variable {variable} {reason}")]
    PasswordEnv {
        /// The account.
        account: String,
        /// The variable.
        variable: String,
        /// `is not set`, `is not valid UTF-8`.
        reason: &'static str,
    },
    /// `password_command` failed, or did not finish within [`PASSWORD_COMMAND_TIMEOUT`].
    #[error("account {account:?}: password_command {program:?} {reason}")]
    PasswordCommand {
        /// The account.
        account: String,
        /// The program the command runs (its first word): the rest of the command line may
        /// hold a secret and is never shown.
        program: String,
        /// What went wrong.
        reason: String,
    },
}

// ----- raw file layout (serde), validated into the public types -----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    audio: RawAudio,
    #[serde(default)]
    account: Vec<RawAccount>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    dns_server: Option<Spanned<String>>,
    bind: Option<Spanned<String>>,
    keepalive_interval: Option<u32>,
    udp_keepalive_interval: Option<u32>,
    stun_rto_ms: Option<u32>,
    call_limit: Option<u32>,
    udp_buffer_size: Option<u32>,
    stun_server: Option<Spanned<String>>,
    session_expires: Option<Spanned<u32>>,
    accept_transfer: Option<Spanned<String>>,
    prack: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudio {
    input_device: Option<Spanned<String>>,
    output_device: Option<Spanned<String>>,
    ring_device: Option<Spanned<String>>,
    ring_tone: Option<Spanned<String>>,
    ringback: Option<bool>,
    echo_cancellation: Option<bool>,
    noise_suppression: Option<bool>,
    auto_gain: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Spanned<String>,
    aor: Spanned<String>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<Secret>>,
    password_env: Option<Spanned<String>>,
    password_command: Option<Spanned<String>>,
    realm: Option<Spanned<toml::Value>>,
    #[serde(default)]
    transport: TransportChoice,
    registrars: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    register_mode: RegisterMode,
    expires: Option<Spanned<u32>>,
    outbound: Option<bool>,
    instance_id: Option<Spanned<String>>,
    call_limit: Option<u32>,
    display_name: Option<Spanned<String>>,
    codecs: Option<Spanned<Vec<Spanned<String>>>>,
    srtp: Option<Spanned<String>>,
    accept_transfer: Option<Spanned<String>>,
    auto_answer: Option<bool>,
    mwi: Option<bool>,
    presence: Option<bool>,
    watch: Option<Vec<String>>,
    blf: Option<Vec<String>>,
    input_device: Option<Spanned<String>>,
    output_device: Option<Spanned<String>>,
    ring_device: Option<Spanned<String>>,
}

impl Config {
    /// Loads the configuration: from `path_override` (the `--config` option) if given, else
    /// from the file named by `TINCAN_CONFIG`, else from the default path (see
    /// [`Config::default_path`]). A missing default file gives [`Config::default`]; a missing
    /// file named explicitly is an error.
    pub fn load(path_override: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, explicit) = match Config::locate(
            path_override,
            std::env::var_os(CONFIG_ENV),
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        ) {
            Some(x) => x,
            None => return Ok(Config::default()),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut c = Config::from_str_named(&text, &path.display().to_string())?;
                if c.accounts
                    .iter()
                    .any(|a| matches!(a.password_source, PasswordSource::Literal(_)))
                    && let Some(mode) = readable_by_others(&path)
                {
                    c.warnings.push(ConfigWarning::PasswordFileReadable {
                        path: path.clone(),
                        mode,
                    });
                }
                c.path = Some(path);
                Ok(c)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Which file to read, and whether it was named explicitly (override or
    /// `TINCAN_CONFIG`), given the override and the values of `TINCAN_CONFIG`,
    /// `XDG_CONFIG_HOME` and `HOME`. `None` when there is no way to find a file.
    pub fn locate(
        path_override: Option<&Path>,
        tincan_config: Option<OsString>,
        xdg_config_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Option<(PathBuf, bool)> {
        if let Some(p) = path_override {
            return Some((p.to_owned(), true));
        }
        if let Some(p) = tincan_config.filter(|p| !p.is_empty()) {
            return Some((PathBuf::from(p), true));
        }
        Config::default_path(xdg_config_home, home).map(|p| (p, false))
    }

    /// `$XDG_CONFIG_HOME/tincan/config.toml` (an empty or relative `XDG_CONFIG_HOME` is
    /// ignored, as the XDG spec says), else `$HOME/.config/tincan/config.toml`.
    pub fn default_path(
        xdg_config_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Option<PathBuf> {
        let base = match xdg_config_home
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
        {
            Some(x) => x,
            None => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".config"),
        };
        Some(base.join("tincan").join("config.toml"))
    }

    /// Parses and validates a configuration's text; `origin` names it in error messages.
    pub fn from_str_named(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim_end().to_owned();
            Located::new(text, origin, span).error(None, None, message)
        })?;
        let invalid = |span: Range<usize>, key: &str, context: Option<&str>, message: String| {
            Located::new(text, origin, span).error(Some(key), context, message)
        };

        let mut network = Network::default();
        if let Some(s) = &raw.network.dns_server {
            network.dns_server = Some(
                parse_socket_addr(s.get_ref())
                    .map_err(|m| invalid(s.span(), "dns_server", None, m))?,
            );
        }
        if let Some(s) = &raw.network.bind {
            network.bind = Some(
                parse_socket_addr(s.get_ref()).map_err(|m| invalid(s.span(), "bind", None, m))?,
            );
        }
        network.keepalive_interval = raw.network.keepalive_interval;
        network.udp_keepalive_interval = raw.network.udp_keepalive_interval;
        network.stun_rto_ms = raw.network.stun_rto_ms;
        network.call_limit = raw.network.call_limit;
        network.udp_buffer_size = raw.network.udp_buffer_size;
        if let Some(s) = &raw.network.stun_server {
            network.stun_server = Some(
                check_host_port(s.get_ref())
                    .map_err(|m| invalid(s.span(), "stun_server", None, m))?,
            );
        }
        if let Some(s) = &raw.network.session_expires {
            let secs = *s.get_ref();
            if (1..tincan_sip::dialog::invite::MIN_SE).contains(&secs) {
                return Err(invalid(
                    s.span(),
                    "session_expires",
                    None,
                    format!(
                        "{secs} is below the smallest session interval, {} seconds (RFC 4028 Min-SE); 0 turns session timers off",
                        tincan_sip::dialog::invite::MIN_SE
                    ),
                ));
            }
            network.session_expires = Some(secs);
        }
        if let Some(p) = &raw.network.accept_transfer {
            let policy = parse_transfer_policy(p.get_ref())
                .map_err(|m| invalid(p.span(), "accept_transfer", None, m))?;
            network.accept_transfer = Some(policy);
        }
        if let Some(s) = &raw.network.prack {
            use tincan_sip::dialog::PrackPolicy;
            network.prack = Some(match s.get_ref().trim().to_ascii_lowercase().as_str() {
                "supported" => PrackPolicy::Supported,
                "required" => PrackPolicy::Required,
                "off" => PrackPolicy::Off,
                other => {
                    return Err(invalid(
                        s.span(),
                        "prack",
                        None,
                        format!("\"{other}\" is not one of \"supported\", \"required\", \"off\""),
                    ));
                }
            });
        }

        let device = |d: Option<Spanned<String>>, key: &str, context: Option<&str>| {
            d.map(|d| match d.get_ref().trim() {
                "" => Err(invalid(
                    d.span(),
                    key,
                    context,
                    "empty device name: leave the key out for the system's default".into(),
                )),
                name => Ok(name.to_owned()),
            })
            .transpose()
        };
        let audio = Audio {
            input_device: device(raw.audio.input_device, "input_device", None)?,
            output_device: device(raw.audio.output_device, "output_device", None)?,
            ring_device: device(raw.audio.ring_device, "ring_device", None)?,
            ring_tone: match raw.audio.ring_tone {
                Some(t) if t.get_ref().trim().is_empty() => {
                    return Err(invalid(
                        t.span(),
                        "ring_tone",
                        None,
                        "empty path: leave the key out for the built-in tone".into(),
                    ));
                }
                Some(t) => Some(expand_home(t.get_ref().trim())),
                None => None,
            },
            ringback: raw.audio.ringback,
            echo_cancellation: raw.audio.echo_cancellation,
            noise_suppression: raw.audio.noise_suppression,
            auto_gain: raw.audio.auto_gain,
        };

        let mut accounts: Vec<Account> = Vec::with_capacity(raw.account.len());
        for a in raw.account {
            let name = a.name.get_ref().trim().to_owned();
            let ctx = format!("in account {name:?}");
            let bad = |span: Range<usize>, key: &str, message: String| {
                invalid(span, key, Some(&ctx), message)
            };
            if name.is_empty() {
                return Err(bad(a.name.span(), "name", "empty account name".into()));
            }
            if accounts.iter().any(|x| x.name == name) {
                return Err(bad(
                    a.name.span(),
                    "name",
                    "a second account has this name (names must be unique)".into(),
                ));
            }
            let aor = parse_sip_uri(a.aor.get_ref()).map_err(|m| bad(a.aor.span(), "aor", m))?;
            let username = match &a.username {
                Some(u) if u.get_ref().is_empty() => {
                    return Err(bad(u.span(), "username", "empty username".into()));
                }
                Some(u) => u.get_ref().clone(),
                None => match aor.user_decoded() {
                    Some(u) if !u.is_empty() => String::from_utf8_lossy(&u).into_owned(),
                    _ => {
                        return Err(bad(
                            a.aor.span(),
                            "aor",
                            "the aor has no user part; set `username`".into(),
                        ));
                    }
                },
            };
            let mut sources = Vec::new();
            if let Some(p) = a.password {
                sources.push((p.span(), PasswordSource::Literal(p.into_inner())));
            }
            if let Some(p) = a.password_env {
                if p.get_ref().is_empty() || p.get_ref().contains(['=', '\0']) {
                    return Err(bad(
                        p.span(),
                        "password_env",
                        "not a valid environment variable name".into(),
                    ));
                }
                sources.push((p.span(), PasswordSource::Env(p.into_inner())));
            }
            if let Some(p) = a.password_command {
                if p.get_ref().trim().is_empty() {
                    return Err(bad(p.span(), "password_command", "empty command".into()));
                }
                sources.push((p.span(), PasswordSource::Command(p.into_inner())));
            }
            let password_source = match sources.len() {
                1 => sources.pop().expect("length checked to be 1").1,
                0 => {
                    return Err(bad(
                        a.name.span(),
                        "password",
                        "no password: set one of `password`, `password_env`, \
                             `password_command`"
                            .into(),
                    ));
                }
                _ => {
                    return Err(bad(
                        sources[1].0.clone(),
                        "password",
                        "more than one of `password`, `password_env`, \
                             `password_command`: keep one"
                            .into(),
                    ));
                }
            };
            let realm = match &a.realm {
                Some(r) => parse_realm(r.get_ref()).map_err(|m| bad(r.span(), "realm", m))?,
                None => RealmPolicy::FirstChallenge,
            };
            let mut registrars = Vec::new();
            for r in a.registrars.unwrap_or_default() {
                registrars
                    .push(parse_sip_uri(r.get_ref()).map_err(|m| bad(r.span(), "registrars", m))?);
            }
            let expires = match a.expires {
                Some(e) if *e.get_ref() == 0 => {
                    return Err(bad(
                        e.span(),
                        "expires",
                        "must be at least 1 second (0 would unregister)".into(),
                    ));
                }
                Some(e) => e.into_inner(),
                None => DEFAULT_EXPIRES,
            };
            let instance_id = match a.instance_id {
                Some(i) => {
                    let v = i.get_ref().trim();
                    if !is_urn_uuid(v) {
                        return Err(bad(
                            i.span(),
                            "instance_id",
                            "not a urn:uuid: \
                                 (urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
                                .into(),
                        ));
                    }
                    v.to_ascii_lowercase()
                }
                None => derive_instance_id(&aor),
            };
            let codecs = match a.codecs {
                Some(list) => {
                    Some(parse_codecs(&list).map_err(|(span, m)| bad(span, "codecs", m))?)
                }
                None => None,
            };
            let srtp = match a.srtp {
                Some(p) => Some(parse_srtp(p.get_ref()).map_err(|m| bad(p.span(), "srtp", m))?),
                None => None,
            };
            let accept_transfer = match a.accept_transfer {
                Some(p) => Some(
                    parse_transfer_policy(p.get_ref())
                        .map_err(|m| bad(p.span(), "accept_transfer", m))?,
                ),
                None => None,
            };
            let display_name = match a.display_name {
                Some(d) if d.get_ref().contains(['\r', '\n']) => {
                    return Err(bad(
                        d.span(),
                        "display_name",
                        "a display name is one line".into(),
                    ));
                }
                Some(d) => Some(d.into_inner()).filter(|d| !d.trim().is_empty()),
                None => None,
            };
            let input_device = device(a.input_device, "input_device", Some(&ctx))?;
            let output_device = device(a.output_device, "output_device", Some(&ctx))?;
            let ring_device = device(a.ring_device, "ring_device", Some(&ctx))?;
            accounts.push(Account {
                name,
                aor,
                username,
                password_source,
                realm,
                transport: a.transport,
                registrars,
                register_mode: a.register_mode,
                expires,
                outbound: a.outbound.unwrap_or(true),
                instance_id,
                call_limit: a.call_limit.map(|n| n as usize),
                display_name,
                codecs,
                srtp,
                accept_transfer,
                auto_answer: a.auto_answer.unwrap_or(false),
                mwi: a.mwi.unwrap_or(false),
                presence: a.presence.unwrap_or(false),
                watch: a.watch.clone().unwrap_or_default(),
                blf: a.blf.unwrap_or_default(),
                input_device,
                output_device,
                ring_device,
            });
        }
        Ok(Config {
            path: None,
            network,
            audio,
            accounts,
            warnings: Vec::new(),
        })
    }

    /// The account with this name.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

impl std::str::FromStr for Config {
    type Err = ConfigError;

    /// Same as [`Config::from_str_named`] with origin `config`.
    fn from_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_named(text, "config")
    }
}

/// A `host:port` (a name, an IPv4 address or a bracketed IPv6 one, and a port), trimmed.
pub fn check_host_port(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = || format!("expected \"host:port\", got {text:?}");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || !port.parse::<u16>().is_ok_and(|p| p != 0) {
        return Err(bad());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad());
    }
    Ok(text.to_owned())
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!("{s:?} is not an ADDR:PORT socket address (e.g. \"127.0.0.1:53\", \"[::1]:53\")")
    })
}

fn parse_sip_uri(s: &str) -> Result<SipUri<'static>, String> {
    match Uri::parse(s.trim()) {
        Ok(Uri::Sip(u)) => Ok(u.into_owned()),
        Ok(other) => Err(format!(
            "{s:?} is a {}: URI, not a sip: or sips: URI",
            other.scheme()
        )),
        Err(e) => Err(format!("{s:?} is not a valid SIP URI ({e})")),
    }
}

/// `realm`: a realm, `"*"`, or a list of realms.
fn parse_realm(v: &toml::Value) -> Result<RealmPolicy, String> {
    let one = |r: &str| -> Result<String, String> {
        match r {
            "" => Err("empty realm".into()),
            "*" => Err("`*` (any realm) stands alone: write `realm = \"*\"`".into()),
            r => Ok(r.to_owned()),
        }
    };
    match v {
        toml::Value::String(r) if r == "*" => Ok(RealmPolicy::Any),
        toml::Value::String(r) => Ok(RealmPolicy::Only(vec![one(r)?])),
        toml::Value::Array(list) if list.is_empty() => Err(
            "an empty list: name at least one realm, or leave `realm` out to pin the \
             registrar's"
                .into(),
        ),
        toml::Value::Array(list) => list
            .iter()
            .map(|r| match r {
                toml::Value::String(r) => one(r),
                other => Err(format!("{other} is not a realm string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(RealmPolicy::Only),
        other => Err(format!(
            "{other} is not a realm: give a string (\"example.com\", \"*\") or a list of strings"
        )),
    }
}

/// `codecs`: a non-empty list of codec names (`opus`, `g722`, `pcmu`, `pcma`, any case), each
/// once.
fn parse_codecs(
    list: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<CodecKind>, (Range<usize>, String)> {
    if list.get_ref().is_empty() {
        return Err((
            list.span(),
            "an empty list: name at least one codec (opus, g722, pcmu, pcma), or leave `codecs` \
             out for all of them"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for name in list.get_ref() {
        let codec = CodecKind::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.get_ref().trim()))
            .ok_or_else(|| {
                (
                    name.span(),
                    format!(
                        "unknown codec {:?}: the codecs are opus, g722, pcmu, pcma",
                        name.get_ref()
                    ),
                )
            })?;
        if out.contains(&codec) {
            return Err((name.span(), format!("{:?} is listed twice", name.get_ref())));
        }
        out.push(codec);
    }
    Ok(out)
}

/// `srtp`: `off`, `optional` or `required` (as `--srtp`).
fn parse_srtp(s: &str) -> Result<SrtpPolicy, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(SrtpPolicy::Off),
        "optional" => Ok(SrtpPolicy::Optional),
        "required" => Ok(SrtpPolicy::Required),
        _ => Err(format!(
            "{s:?} is not an SRTP policy: use \"off\", \"optional\" or \"required\""
        )),
    }
}

/// `accept_transfer`: `ask`, `always` or `never`.
fn parse_transfer_policy(s: &str) -> Result<TransferPolicy, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "ask" => Ok(TransferPolicy::Ask),
        "always" => Ok(TransferPolicy::Always),
        "never" => Ok(TransferPolicy::Never),
        _ => Err(format!(
            "{s:?} is not a transfer policy: use \"ask\", \"always\" or \"never\""
        )),
    }
}

/// A path with a leading `~/` made relative to `$HOME`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if !home.is_empty() => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn is_urn_uuid(s: &str) -> bool {
    let Some(u) = s
        .get(..9)
        .filter(|p| p.eq_ignore_ascii_case("urn:uuid:"))
        .map(|_| &s[9..])
    else {
        return false;
    };
    u.len() == 36
        && u.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A byte span of the text turned into line, column, the key written there and an excerpt.
struct Located<'a> {
    text: &'a str,
    origin: &'a str,
    start: usize,
}

impl<'a> Located<'a> {
    fn new(text: &'a str, origin: &'a str, span: Range<usize>) -> Located<'a> {
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        Located {
            text,
            origin,
            start,
        }
    }

    /// The error at this place; `context` (e.g. `in account "work"`) replaces the section
    /// read from the file.
    fn error(&self, key: Option<&str>, context: Option<&str>, message: String) -> ConfigError {
        let line_start = self.text[..self.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[self.start..]
            .find('\n')
            .map_or(self.text.len(), |i| self.start + i);
        let line_text = self.text[line_start..line_end].trim_end_matches('\r');
        let line = self.text[..line_start].matches('\n').count() + 1;
        let column = self.text[line_start..self.start].chars().count() + 1;
        // The key: given, or the `key =` written on the line of the error.
        let key = key.map(str::to_owned).or_else(|| {
            let (k, _) = line_text.split_once('=')?;
            let k = k.trim().trim_matches(['"', '\'']);
            (!k.is_empty() && !k.starts_with('[') && !k.starts_with('#')).then(|| k.to_owned())
        });
        let context = context
            .map(str::to_owned)
            .or_else(|| self.section(line_start).map(|s| format!("in {s}")));
        let full = match (&key, context) {
            (Some(k), Some(c)) => format!("key `{k}` {c}: {message}"),
            (Some(k), None) => format!("key `{k}`: {message}"),
            (None, Some(c)) => format!("{c}: {message}"),
            (None, None) => message,
        };
        let gutter = line.to_string().len();
        let excerpt = format!(
            "{:gutter$} |\n{line} | {line_text}\n{:gutter$} | {:>col$}",
            "",
            "",
            "^",
            col = column
        );
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line,
            column,
            key,
            message: full,
            excerpt,
        }
    }

    /// The table header (`[network]`, `[[account]] #2`) before this line, if any.
    fn section(&self, line_start: usize) -> Option<String> {
        let before = &self.text[..line_start];
        let mut header = None;
        for l in before.lines().rev() {
            let l = l.trim();
            if l.starts_with('[') {
                header = Some(l.split('#').next().unwrap_or(l).trim().to_owned());
                break;
            }
        }
        let header = header?;
        if header.starts_with("[[") {
            let n = before
                .lines()
                .filter(|l| l.trim().split('#').next().unwrap_or("").trim() == header)
                .count();
            Some(format!("{header} #{n}"))
        } else {
            Some(header)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_id_is_a_stable_v8_uuid() {
        let aor = parse_sip_uri("sip:alice@example.com").unwrap();
        let a = derive_instance_id(&aor);
        assert_eq!(a, derive_instance_id(&aor));
        assert!(is_urn_uuid(&a), "{a}");
        assert_eq!(&a[9 + 14..9 + 15], "8", "{a}");
        let other = parse_sip_uri("sip:bob@example.com").unwrap();
        assert_ne!(a, derive_instance_id(&other));
    }

    #[test]
    fn keepalive_keys() {
        let c = Config::from_str_named(
            "[network]\nkeepalive_interval = 30\nudp_keepalive_interval = 2\nstun_rto_ms = 50\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.network.keepalive_interval, Some(30));
        assert_eq!(c.network.udp_keepalive_interval, Some(2));
        assert_eq!(c.network.stun_rto_ms, Some(50));
        let d = Config::from_str_named("", "t.toml").unwrap();
        assert_eq!(
            (d.network.udp_keepalive_interval, d.network.stun_rto_ms),
            (None, None)
        );
    }

    #[test]
    fn presence_and_watch_keys() {
        let text = "[[account]]\nname = \"w\"\naor = \"sip:alice@example.com\"\n\
                    password_env = \"X\"\npresence = true\nwatch = [\"bob\", \"sip:carol@example.net\"]\n\n\
                    [[account]]\nname = \"h\"\naor = \"sip:alice@example.net\"\npassword_env = \"X\"\n";
        let c = Config::from_str_named(text, "t.toml").unwrap();
        let w = c.account("w").unwrap();
        assert!(w.presence);
        assert_eq!(w.watch, vec!["bob", "sip:carol@example.net"]);
        let h = c.account("h").unwrap();
        assert!(!h.presence, "off by default");
        assert!(h.watch.is_empty());
        assert!(
            Config::from_str_named(&text.replace("presence = true", "presence = 1"), "t.toml")
                .is_err()
        );
    }

    #[test]
    fn mwi_key() {
        let text = "[[account]]\nname = \"w\"\naor = \"sip:alice@example.com\"\n\
                    password_env = \"X\"\nmwi = true\n\n[[account]]\nname = \"h\"\n\
                    aor = \"sip:alice@example.net\"\npassword_env = \"X\"\n";
        let c = Config::from_str_named(text, "t.toml").unwrap();
        assert!(c.account("w").unwrap().mwi);
        assert!(!c.account("h").unwrap().mwi, "off by default");
        let e = Config::from_str_named(&text.replace("mwi = true", "mwi = \"yes\""), "t.toml");
        assert!(e.is_err());
    }

    #[test]
    fn blf_key() {
        let text = "[[account]]\nname = \"w\"\naor = \"sip:alice@example.com\"\n\
                    password_env = \"X\"\nblf = [\"bob\", \"sip:carol@example.org\"]\n";
        let c = Config::from_str_named(text, "t.toml").unwrap();
        assert_eq!(
            c.account("w").unwrap().blf,
            ["bob", "sip:carol@example.org"]
        );
        let e = Config::from_str_named(&text.replace("blf = [", "blf = 1 #["), "t.toml");
        assert!(e.is_err());
    }

    #[test]
    fn accept_transfer_keys() {
        use crate::phone::TransferPolicy;
        let text = "[network]\naccept_transfer = \"never\"\n\n[[account]]\nname = \"w\"\n\
                    aor = \"sip:alice@example.com\"\npassword_env = \"X\"\n\
                    accept_transfer = \"Always\"\n";
        let c = Config::from_str_named(text, "t.toml").unwrap();
        assert_eq!(c.network.accept_transfer, Some(TransferPolicy::Never));
        assert_eq!(
            c.account("w").unwrap().accept_transfer,
            Some(TransferPolicy::Always)
        );
        let mut phone = crate::phone::PhoneConfig::default();
        assert_eq!(phone.accept_transfer, TransferPolicy::Ask);
        phone.apply_network(&c.network);
        assert_eq!(phone.accept_transfer, TransferPolicy::Never);
        let e = Config::from_str_named("[network]\naccept_transfer = \"maybe\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("accept_transfer") && e.contains("\"ask\""),
            "{e}"
        );
    }

    #[test]
    fn prack_key() {
        use tincan_sip::dialog::PrackPolicy;
        let c = Config::from_str_named("[network]\nprack = \"required\"\n", "t.toml").unwrap();
        assert_eq!(c.network.prack, Some(PrackPolicy::Required));
        let mut phone = crate::phone::PhoneConfig::default();
        assert_eq!(phone.prack, PrackPolicy::Supported);
        phone.apply_network(&c.network);
        assert_eq!(phone.prack, PrackPolicy::Required);
        let off = Config::from_str_named("[network]\nprack = \"off\"\n", "t.toml").unwrap();
        assert_eq!(off.network.prack, Some(PrackPolicy::Off));
        let bad = Config::from_str_named("[network]\nprack = \"always\"\n", "t.toml");
        let e = bad.expect_err("an unknown prack value").to_string();
        assert!(e.contains("prack"), "{e}");
    }

    #[test]
    fn session_expires_key() {
        let c = Config::from_str_named("[network]\nsession_expires = 600\n", "t.toml").unwrap();
        assert_eq!(c.network.session_expires, Some(600));
        let mut phone = crate::phone::PhoneConfig::default();
        phone.apply_network(&c.network);
        assert_eq!(
            phone.session_timer.map(|t| (t.interval, t.min_se)),
            Some((600, 90))
        );
        let off = Config::from_str_named("[network]\nsession_expires = 0\n", "t.toml").unwrap();
        phone.apply_network(&off.network);
        assert_eq!(phone.session_timer, None);
        let default = Config::from_str_named("", "t.toml").unwrap();
        phone.apply_network(&default.network);
        assert_eq!(phone.session_timer.map(|t| t.interval), Some(1800));
        let e = Config::from_str_named("[network]\nsession_expires = 30\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:2:19: "), "{e}");
        assert!(e.contains("session_expires") && e.contains("90"), "{e}");
    }

    #[test]
    fn urn_uuid_check() {
        assert!(is_urn_uuid("urn:uuid:00000000-0000-1000-8000-000000000000"));
        assert!(is_urn_uuid("URN:UUID:ABCDEF00-0000-1000-8000-000000000000"));
        assert!(!is_urn_uuid("urn:uuid:00000000-0000-1000-8000-00000000000"));
        assert!(!is_urn_uuid("uuid:00000000-0000-1000-8000-000000000000"));
        assert!(!is_urn_uuid(
            "urn:uuid:0000000000-00-1000-8000-000000000000"
        ));
        assert!(!is_urn_uuid("urn:uu"));
    }

    #[test]
    fn location_of_a_span() {
        let text = "a = 1\n[network]\nbind = \"x\"\n";
        let start = text.find("\"x\"").unwrap();
        let e = Located::new(text, "f.toml", start..start + 3).error(None, None, "bad".into());
        let ConfigError::Invalid {
            line,
            column,
            key,
            message,
            ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((*line, *column), (3, 8));
        assert_eq!(key.as_deref(), Some("bind"));
        assert_eq!(message, "key `bind` in [network]: bad");
        assert!(
            e.to_string().contains("3 | bind = \"x\"\n  |        ^"),
            "{e}"
        );
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }
}
