//! `tincan call URI` and `tincan listen`: place or take calls from the terminal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use tincan::config::Config;
use tincan::history::Direction;
use tincan::phone::driver::{CallOptions, Phone, StartError};
use tincan::phone::{
    AccountConfig, AccountEvent, AccountId, CallEnd, CallEvent, CallId, CallParams, CallWarning,
    EndReason, MessageEvent, PhoneConfig, PhoneEvent,
};
use tincan_media::codec::CodecKind;
use tincan_media::device::{AudioSink, AudioSource, NullSink, NullSource, WavSink, WavSource};
#[cfg(feature = "cpal")]
use tincan_media::device::{CpalSink, CpalSource, DeviceSelector};
use tincan_media::rtp::PortKind;
use tincan_media::sdp::SrtpPolicy;
use tincan_sip::transport::Target;
use tokio::sync::mpsc;

/// Codec choice on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CodecArg {
    /// Opus (48 kHz).
    Opus,
    /// G.722 (16 kHz wideband, 64 kbit/s).
    G722,
    /// G.711 mu-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

/// SRTP policy on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SrtpArg {
    /// Plain RTP.
    Off,
    /// SRTP when the peer agrees.
    Optional,
    /// SRTP or no call.
    Required,
}

/// What `call` and `listen` share.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Use this account of the config (register, call through its registrar).
    #[arg(long)]
    pub(crate) account: Option<String>,
    /// Send this WAV file instead of the microphone.
    #[arg(long)]
    pub(crate) play: Option<PathBuf>,
    /// Record what the peer sends to this WAV file instead of the speaker (`listen`: the
    /// second answered call to FILE-2.wav, the third to FILE-3.wav...).
    #[arg(long)]
    pub(crate) record: Option<PathBuf>,
    /// Use only this codec (default: the account's `codecs`, else Opus, then G.722, then
    /// PCMU, then PCMA; answers follow the caller's order).
    #[arg(long, value_enum)]
    codec: Option<CodecArg>,
    /// SRTP policy (default: the account's `srtp`, else optional).
    #[arg(long, value_enum)]
    srtp: Option<SrtpArg>,
    /// One JSON object per event per line.
    #[arg(long)]
    json: bool,
    /// Local SIP address to bind (default: the config's, else any address; port 5060 for
    /// `listen` without an account, so that direct calls find it, any port otherwise).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// DNS server (ADDR:PORT) instead of the config's or the system's.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// No audio devices: send silence, drop what arrives (unless --play/--record).
    #[arg(long)]
    pub(crate) no_audio: bool,
    /// The microphone, by the name `tincan devices` lists (default: the account's
    /// `input_device`, else `[audio] input_device`, else the system's default).
    #[arg(long, value_name = "NAME")]
    input_device: Option<String>,
    /// The speaker, by name (default: the account's `output_device`, else `[audio]
    /// output_device`, else the system's default).
    #[arg(long, value_name = "NAME")]
    output_device: Option<String>,
    /// Hang up a call after this many seconds without RTP from the peer, counted from the
    /// answer (a held call: after 300 s without RTP or RTCP); 0 only warns.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    rtp_timeout: u32,
    /// Do not record the calls in the history (`tincan history`).
    #[arg(long)]
    pub(crate) no_history: bool,
    /// No ring-back tone on the speaker while the callee rings (never with --record or
    /// --no-audio; the config's `[audio] ringback = false` does it too).
    #[arg(long)]
    no_ringback: bool,
}

/// Arguments of `tincan call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Who to call: a SIP URI (`sip:bob@example.com`) or `user@domain`.
    uri: String,
    /// Hang up after this many seconds of conversation.
    #[arg(long)]
    duration: Option<f64>,
    /// DTMF keys to send once the call is answered.
    #[arg(long)]
    dtmf: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `tincan listen`.
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// Answer every call at once (an account's `auto_answer = true` in the config does it
    /// for the calls to that account).
    #[arg(long)]
    auto_answer: bool,
    /// Exit after this many calls.
    #[arg(long)]
    max_calls: Option<u32>,
    /// Carry at most this many calls at once; a new call over it is refused 503 with
    /// Retry-After (default: the config's `call_limit`, else 100; 0: no limit).
    #[arg(long)]
    call_limit: Option<u32>,
    /// Hang up each call after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tincan: {e}");
            ExitCode::from(2)
        })
}

/// Runs `tincan call`.
pub fn run_call(args: &CallArgs, config_path: Option<&Path>) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan call: {e}");
            return ExitCode::from(2);
        }
    };
    super::print_config_warnings("call", &config);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(call(args, config))
}

/// Runs `tincan listen`.
pub fn run_listen(args: &ListenArgs, config_path: Option<&Path>) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan listen: {e}");
            return ExitCode::from(2);
        }
    };
    super::print_config_warnings("listen", &config);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(listen(args, config))
}

/// The SIP address when neither `--bind` nor the config gives one: `listen` for direct calls
/// (no account) takes the standard SIP port, 5060, as pjsua and baresip do; everything else an
/// ephemeral port (a registration tells the registrar where we are).
fn default_bind(command: &str, account: bool) -> SocketAddr {
    let port = if command == "listen" && !account {
        5060
    } else {
        0
    };
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// A started phone, with the account the command uses.
pub(crate) struct Setup {
    pub(crate) phone: Phone,
    /// The account named by `--account` (registered), if any.
    pub(crate) account: Option<AccountId>,
}

/// The phone's accounts from the config: every account (so that a call to one of their
/// domains, or a bare user, goes through it), registering only the one named by `--account`
/// (every one with `register_all`, as the full-screen phone does).
fn accounts(
    config: &Config,
    chosen: Option<&str>,
    register_all: bool,
) -> Result<Vec<AccountConfig>, tincan::config::ConfigError> {
    let mut out = Vec::new();
    for a in &config.accounts {
        let mut ac = super::account_config(a)?;
        ac.register = register_all || chosen == Some(a.name.as_str());
        out.push(ac);
    }
    Ok(out)
}

/// `udp:127.0.0.1:5060`.
pub(crate) fn target_text(t: &Target) -> String {
    format!("{}:{}", t.transport.as_str(), t.addr)
}

/// Builds and starts the phone of `command` from the flags and the config, with every
/// account of the config (registering only `--account`'s, or every one with
/// `register_all`) and `tracer` for its SIP messages. Errors are printed.
pub(crate) async fn start(
    command: &str,
    common: &Common,
    config: &Config,
    register_all: bool,
    tracer: Option<tincan_sip::driver::Tracer>,
) -> Result<Phone, ExitCode> {
    let fail = |msg: String, code: u8| {
        eprintln!("tincan {command}: {msg}");
        ExitCode::from(code)
    };
    let srtp = common.srtp.map(|s| match s {
        SrtpArg::Off => SrtpPolicy::Off,
        SrtpArg::Optional => SrtpPolicy::Optional,
        SrtpArg::Required => SrtpPolicy::Required,
    });
    let mut pc = PhoneConfig {
        srtp: srtp.unwrap_or(SrtpPolicy::Optional),
        rtp_timeout_hangup: (common.rtp_timeout > 0)
            .then(|| Duration::from_secs(u64::from(common.rtp_timeout))),
        // The terminal phone shows level meters; the line modes do not.
        level_meters: command == "phone",
        // Echo cancellation, noise suppression and gain on the microphone (`[audio]`, on by
        // default); files and silence (`--play`, `--no-audio`) are sent as they are.
        processing: if common.play.is_none() && !common.no_audio {
            config.audio.processing()
        } else {
            tincan_media::dsp::ProcessingConfig::OFF
        },
        ..PhoneConfig::default()
    };
    super::apply_keepalives(&config.network, &mut pc);
    if let Some(c) = common.codec {
        let first = match c {
            CodecArg::Opus => CodecKind::Opus,
            CodecArg::G722 => CodecKind::G722,
            CodecArg::Pcmu => CodecKind::Pcmu,
            CodecArg::Pcma => CodecKind::Pcma,
        };
        // The user's choice: offered alone, and the only one accepted in answers.
        pc.codecs = vec![first];
    }
    if let Some(name) = &common.account
        && !config.accounts.iter().any(|a| a.name == *name)
    {
        return Err(fail(format!("no account named {name:?} in the config"), 2));
    }
    let mut accounts = accounts(config, common.account.as_deref(), register_all)
        .map_err(|e| fail(e.to_string(), 2))?;
    // The command line wins over the accounts' `codecs` and `srtp`, which win over the
    // phone's defaults (docs/config.md).
    for a in &mut accounts {
        if common.codec.is_some() {
            a.codecs = None;
        }
        if srtp.is_some() {
            a.srtp = None;
        }
    }
    let bind = common
        .bind
        .or(config.network.bind)
        .unwrap_or_else(|| default_bind(command, common.account.is_some()));
    // TCP too (on an ephemeral port when none is chosen): calls over TCP need a local TCP
    // address for their Via and Contact; IPv6 next to IPv4.
    let mut builder = Phone::builder()
        .config(pc)
        .bind(bind)
        .tcp(true)
        .dual_stack(true);
    if let Some(dns) = common.dns_server.or(config.network.dns_server) {
        builder = builder.dns_server(dns);
    }
    if let Some(bytes) = config.network.udp_buffer_size {
        builder = builder.udp_buffer_size((bytes > 0).then_some(bytes as usize));
    }
    if let Some(t) = tracer {
        builder = builder.sip_trace(t);
    }
    if let Some(stun) = &config.network.stun_server {
        builder = builder.stun_server(stun.clone());
    }
    if !ringback(common, config) {
        builder = builder.ringback(None);
    }
    for a in accounts {
        builder = builder.account(a);
    }
    builder.start().await.map_err(|e| match e {
        StartError::Account(e) => fail(e.to_string(), 2),
        e => fail(e.to_string(), 1),
    })
}

/// Starts the phone of `call`/`listen` and waits for the first registration result of the
/// `--account`, if one is named.
pub(crate) async fn setup(
    command: &str,
    common: &Common,
    config: &Config,
) -> Result<Setup, ExitCode> {
    let fail = |msg: String, code: u8| {
        eprintln!("tincan {command}: {msg}");
        ExitCode::from(code)
    };
    let mut phone = start(command, common, config, false, super::sip_trace()).await?;
    let account = common
        .account
        .as_deref()
        .and_then(|name| config.accounts.iter().position(|a| a.name == name))
        .and_then(|i| phone.accounts().get(i).copied());
    let Some(account) = account else {
        return Ok(Setup {
            phone,
            account: None,
        });
    };
    let name = common.account.clone().unwrap_or_default();
    // The first registration result decides: registered, or a clear error and no phone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    // A registrar that never answers is waited for as long as RFC 3261's Timer F (32 s): say
    // so once instead of staying silent.
    let mut still_waiting = Some(tokio::time::Instant::now() + Duration::from_secs(5));
    loop {
        let ev = tokio::select! {
            ev = phone.next_event() => ev,
            () = tokio::time::sleep_until(deadline) => None,
            () = async {
                match still_waiting {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                still_waiting = None;
                eprintln!(
                    "tincan {command}: {name}: no answer from the registrar yet, still trying \
                     (up to 32 s per registrar; Ctrl-C to stop)"
                );
                continue;
            }
            _ = tokio::signal::ctrl_c() => {
                let code = fail(format!("{name}: interrupted before the registration finished"), 130);
                phone.shutdown().await;
                return Err(code);
            }
        };
        let Some(PhoneEvent::Account { account: a, event }) = ev else {
            if ev.is_none() {
                let code = fail(format!("{name}: no registration result in 40 s"), 1);
                phone.shutdown().await;
                return Err(code);
            }
            continue;
        };
        if a != account {
            continue;
        }
        match event {
            AccountEvent::Registered { registrar, .. } => {
                let registrar = target_text(&registrar);
                if common.json {
                    println!(
                        "{}",
                        json!({"event": "registered", "account": name, "registrar": registrar})
                    );
                } else {
                    println!("{name}: registered at {registrar}");
                }
                return Ok(Setup {
                    phone,
                    account: Some(account),
                });
            }
            AccountEvent::AuthenticationFailed {
                registrar, status, ..
            } => {
                let code = fail(
                    format!(
                        "{name}: {} refused the credentials ({status}): check the username and password",
                        target_text(&registrar)
                    ),
                    1,
                );
                phone.shutdown().await;
                return Err(code);
            }
            AccountEvent::ChallengeRefused {
                registrar,
                challenge,
            } => {
                let code = fail(
                    format!("{name}: {}: {challenge}", target_text(&registrar)),
                    1,
                );
                phone.shutdown().await;
                return Err(code);
            }
            AccountEvent::Rejected {
                registrar,
                status,
                reason,
            } => {
                let code = fail(
                    format!(
                        "{name}: {} refused the registration: {status} {reason}",
                        target_text(&registrar)
                    ),
                    1,
                );
                phone.shutdown().await;
                return Err(code);
            }
            AccountEvent::Unavailable {
                tried,
                errors,
                retry_in,
            } => {
                let mut all: Vec<String> = tried.iter().map(ToString::to_string).collect();
                all.extend(errors);
                eprintln!(
                    "tincan {command}: {name} is not registered (tried {}); retrying in {} s",
                    all.join("; "),
                    retry_in.as_secs()
                );
                return Ok(Setup {
                    phone,
                    account: Some(account),
                });
            }
            _ => continue,
        }
    }
}

/// Whether outgoing calls play ring-back while the callee rings: for a person at the
/// speaker, so not into a `--record` file (it holds the peer's audio only, for scripts to
/// check) nor with `--no-audio`; not with `--no-ringback` or `[audio] ringback = false`.
fn ringback(common: &Common, config: &Config) -> bool {
    !common.no_ringback
        && common.record.is_none()
        && !common.no_audio
        && config.audio.ringback != Some(false)
}

/// A call's audio: what it sends, where what it receives goes.
pub(crate) type Devices = (Box<dyn AudioSource>, Box<dyn AudioSink>);

/// The audio devices a call uses, by name; `None`: the system's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeviceNames {
    /// The microphone.
    pub(crate) input: Option<String>,
    /// The speaker.
    pub(crate) output: Option<String>,
}

impl DeviceNames {
    /// The devices of a call of `account` (docs/config.md): the command line's
    /// (`--input-device`, `--output-device`), else the account's, else `[audio]`'s.
    pub(crate) fn of(
        common: &Common,
        config: &Config,
        account: Option<&tincan::config::Account>,
    ) -> Self {
        DeviceNames {
            input: first_named(
                common.input_device.as_deref(),
                account.and_then(|a| a.input_device.as_deref()),
                config.audio.input_device.as_deref(),
            ),
            output: first_named(
                common.output_device.as_deref(),
                account.and_then(|a| a.output_device.as_deref()),
                config.audio.output_device.as_deref(),
            ),
        }
    }
}

/// The device a call uses in one direction: the command line's, else the account's, else
/// `[audio]`'s; `None`: the system's default.
fn first_named(flag: Option<&str>, account: Option<&str>, audio: Option<&str>) -> Option<String> {
    flag.or(account).or(audio).map(str::to_owned)
}

/// The audio devices for the `n`th call of a run (`--record` names a file per call, see
/// [`record_path`]): the files of `--play`/`--record`, nothing with `--no-audio`, else the
/// devices `names` names (an error when one is missing), else the default ones.
pub(crate) fn devices(common: &Common, n: u32, names: &DeviceNames) -> Result<Devices, String> {
    let source: Box<dyn AudioSource> = match &common.play {
        Some(p) => {
            Box::new(WavSource::open(p).map_err(|e| format!("cannot play {}: {e}", p.display()))?)
        }
        None if common.no_audio => Box::new(NullSource::new()),
        None => microphone(names.input.as_deref())?,
    };
    let sink: Box<dyn AudioSink> = match &common.record {
        Some(p) => {
            let p = record_path(p, n);
            Box::new(
                WavSink::create(&p)
                    .map_err(|e| format!("cannot record to {}: {e}", p.display()))?,
            )
        }
        None if common.no_audio => Box::new(NullSink::new()),
        None => speaker(names.output.as_deref())?,
    };
    Ok((source, sink))
}

/// No audio: the devices of a call whose own could not be opened.
fn silence() -> Devices {
    (Box::new(NullSource::new()), Box::new(NullSink::new()))
}

/// Where a call to `account` rings (docs/config.md): the account's `ring_device`, else
/// `[audio] ring_device`, else the device the call's audio would play on (`--output-device`,
/// the account's `output_device`, `[audio]`'s, the system's default); `None` with
/// `--no-audio` (nothing rings). An error when the named device cannot be opened.
pub(crate) fn ring_sink(
    common: &Common,
    config: &Config,
    account: Option<&tincan::config::Account>,
) -> Result<Option<Box<dyn AudioSink>>, String> {
    if common.no_audio {
        return Ok(None);
    }
    let name = account
        .and_then(|a| a.ring_device.clone())
        .or_else(|| config.audio.ring_device.clone())
        .or_else(|| DeviceNames::of(common, config, account).output);
    speaker(name.as_deref()).map(Some)
}

/// Whether the missing microphone was reported (once per process, not once per call).
#[cfg(feature = "cpal")]
static SAID_NO_MICROPHONE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
/// Whether the missing speaker was reported.
#[cfg(feature = "cpal")]
static SAID_NO_SPEAKER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The microphone named `name` (an error when it cannot be found or opened); without a name
/// the default one, or silence when there is none.
#[cfg(feature = "cpal")]
fn microphone(name: Option<&str>) -> Result<Box<dyn AudioSource>, String> {
    if let Some(name) = name {
        let selector = named_device(name, true)?;
        return CpalSource::open(selector)
            .map(|s| Box::new(s) as Box<dyn AudioSource>)
            .map_err(|e| format!("cannot open the input device {name:?}: {e}"));
    }
    Ok(match CpalSource::open(DeviceSelector::Default) {
        Ok(s) => Box::new(s),
        Err(e) => {
            if !SAID_NO_MICROPHONE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("tincan: no microphone ({e}); sending silence");
            }
            Box::new(NullSource::new())
        }
    })
}

/// The speaker named `name` (an error when it cannot be found or opened); without a name the
/// default one, or nowhere when there is none.
#[cfg(feature = "cpal")]
fn speaker(name: Option<&str>) -> Result<Box<dyn AudioSink>, String> {
    if let Some(name) = name {
        let selector = named_device(name, false)?;
        return CpalSink::open(selector)
            .map(|s| Box::new(s) as Box<dyn AudioSink>)
            .map_err(|e| format!("cannot open the output device {name:?}: {e}"));
    }
    Ok(match CpalSink::open(DeviceSelector::Default) {
        Ok(s) => Box::new(s),
        Err(e) => {
            if !SAID_NO_SPEAKER.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("tincan: no speaker ({e}); dropping received audio");
            }
            Box::new(NullSink::new())
        }
    })
}

/// The device of the system named `name` for input (`input`) or output.
#[cfg(feature = "cpal")]
fn named_device(name: &str, input: bool) -> Result<DeviceSelector, String> {
    let direction = if input { "input" } else { "output" };
    let devices = tincan_media::device::list_devices().map_err(|e| {
        format!("cannot list the audio devices to find the {direction} device {name:?}: {e}")
    })?;
    let d = choose_device(&devices, name, input)?;
    Ok(if d.id.is_empty() {
        DeviceSelector::Name(d.name.clone())
    } else {
        DeviceSelector::Id(d.id.clone())
    })
}

/// The device called `name` among `devices` (as `tincan devices` lists them) that works for
/// input (`input`) or output: the first of that exact name, else of that id, else the first
/// whose name is the same without regard to case. The error names the device and lists the
/// devices there are.
#[cfg(feature = "cpal")]
fn choose_device<'a>(
    devices: &'a [tincan_media::device::DeviceInfo],
    name: &str,
    input: bool,
) -> Result<&'a tincan_media::device::DeviceInfo, String> {
    let usable: Vec<_> = devices
        .iter()
        .filter(|d| if input { d.input } else { d.output })
        .collect();
    let found = usable
        .iter()
        .find(|d| d.name == name)
        .or_else(|| usable.iter().find(|d| !d.id.is_empty() && d.id == name))
        .or_else(|| {
            usable
                .iter()
                .find(|d| d.name.to_lowercase() == name.to_lowercase())
        });
    if let Some(d) = found {
        return Ok(d);
    }
    let direction = if input { "input" } else { "output" };
    let mut names: Vec<String> = Vec::new();
    for d in &usable {
        let shown = format!("{:?}", d.name);
        if !names.contains(&shown) {
            names.push(shown);
        }
    }
    Err(if names.is_empty() {
        format!("no {direction} device named {name:?}: there are no {direction} devices")
    } else {
        format!(
            "no {direction} device named {name:?}: the {direction} devices are {}",
            names.join(", ")
        )
    })
}

/// Silence: this build has no audio devices.
#[cfg(not(feature = "cpal"))]
fn microphone(_name: Option<&str>) -> Result<Box<dyn AudioSource>, String> {
    eprintln!("tincan: built without audio devices (feature `cpal`); sending silence");
    Ok(Box::new(NullSource::new()))
}

/// Nowhere: this build has no audio devices.
#[cfg(not(feature = "cpal"))]
fn speaker(_name: Option<&str>) -> Result<Box<dyn AudioSink>, String> {
    eprintln!("tincan: built without audio devices (feature `cpal`); dropping received audio");
    Ok(Box::new(NullSink::new()))
}

/// The `--json` line of a call event (the format `tincan call` has always printed).
pub(crate) fn event_json(event: &CallEvent) -> Option<Value> {
    Some(match event {
        CallEvent::Calling {
            call_id,
            uri,
            target,
        } => {
            json!({"event": "calling", "call_id": call_id, "uri": uri, "target": target_text(target)})
        }
        CallEvent::Progress { status, reason } => {
            json!({"event": "progress", "status": status, "reason": reason})
        }
        CallEvent::Answered {
            setup,
            codec,
            srtp,
            remote_rtp,
        } => json!({
            "event": "answered",
            "setup_ms": setup.as_millis() as u64,
            "codec": codec.name().to_ascii_lowercase(),
            "srtp": srtp,
            "remote_rtp": remote_rtp.to_string(),
        }),
        CallEvent::Quality(q) => {
            let mut v = serde_json::to_value(q).expect("quality serializes");
            v["event"] = json!("quality");
            v
        }
        CallEvent::Dtmf { digit, via } => json!({"event": "dtmf", "digit": digit, "via": via}),
        CallEvent::Hold { by_peer } => json!({"event": "hold", "by_peer": by_peer}),
        CallEvent::Resumed { by_peer } => json!({"event": "resumed", "by_peer": by_peer}),
        CallEvent::Muted { muted } => json!({"event": "muted", "muted": muted}),
        CallEvent::CodecChanged { codec, srtp } => json!({
            "event": "codec_changed",
            "codec": codec.name().to_ascii_lowercase(),
            "srtp": srtp,
        }),
        CallEvent::Warning(w) => {
            let mut v = json!({"event": "warning", "message": w.to_string()});
            // A move of the media is worth its own fields: a NAT at the start, or a hijack.
            if let CallWarning::MediaMoved { kind, from, to } = w {
                v["warning"] = json!("media_moved");
                v["port"] = json!(match kind {
                    PortKind::Rtp => "rtp",
                    PortKind::Rtcp => "rtcp",
                });
                v["from"] = json!(from.to_string());
                v["to"] = json!(to.to_string());
            }
            v
        }
        CallEvent::TransferRequested { to, referred_by } => {
            json!({"event": "transfer_requested", "to": to, "referred_by": referred_by})
        }
        CallEvent::TransferStarted { .. } => json!({"event": "transfer_started"}),
        CallEvent::TransferProgress { status, reason } => {
            json!({"event": "transfer_progress", "status": status, "reason": reason})
        }
        CallEvent::TransferSucceeded { status } => {
            json!({"event": "transfer_succeeded", "status": status})
        }
        CallEvent::TransferFailed { status, reason } => {
            json!({"event": "transfer_failed", "status": status, "reason": reason})
        }
        CallEvent::Replaced { .. } => json!({"event": "replaced"}),
        CallEvent::Conference { with } => {
            json!({"event": "conference", "joined": with.is_some()})
        }
        CallEvent::Ended(end) => {
            let mut v = json!({
                "event": "ended",
                "reason": reason_text(end.reason),
                "status": end.status,
                "status_text": end.status_text,
                "answered": end.answered,
                "duration_s": (end.duration.as_secs_f64() * 10.0).round() / 10.0,
                "codec": end.codec.map(|c| c.name().to_ascii_lowercase()),
                "quality": end.quality,
            });
            if !end.tried.is_empty() || !end.errors.is_empty() {
                let tried: Vec<String> = end.tried.iter().map(ToString::to_string).collect();
                v["tried"] = json!(tried);
                v["errors"] = json!(end.errors);
            }
            v
        }
        _ => return None,
    })
}

/// The reason as `tincan call` prints it (a shutdown is our hang-up).
fn reason_text(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Shutdown => "local_hangup",
        r => r.as_str(),
    }
}

/// The MOS as the human lines print it: `-` when no RTP came (nothing to rate).
pub(crate) fn mos_text(mos: Option<f64>) -> String {
    mos.map_or_else(|| "-".to_owned(), |m| format!("{m:.2}"))
}

/// The human lines of an event (none for the events a person needs not see).
fn human_lines(event: &CallEvent) -> Vec<String> {
    let line = match event {
        CallEvent::Calling { uri, target, .. } => {
            format!("calling {uri} via {}", target_text(target))
        }
        CallEvent::Progress { status, reason } => format!("{status} {reason}"),
        CallEvent::Answered {
            setup,
            codec,
            srtp,
            remote_rtp,
        } => format!(
            "answered in {} ms: {}{} to {remote_rtp}",
            setup.as_millis(),
            codec.name().to_ascii_lowercase(),
            if *srtp { " over SRTP" } else { "" }
        ),
        CallEvent::Quality(q) => format!(
            "rtp sent {} received {} lost {:.1}% jitter {:.1} ms buffer {:.0} ms{} MOS {}",
            q.packets_sent,
            q.packets_received,
            q.loss_percent,
            q.jitter_ms,
            q.jitter_buffer_ms,
            q.rtt_ms
                .map(|r| format!(" rtt {r:.0} ms"))
                .unwrap_or_default(),
            mos_text(q.mos)
        ),
        CallEvent::Dtmf { digit, via } => format!(
            "dtmf {digit} ({})",
            match via {
                tincan::phone::DtmfVia::Rfc4733 => "rfc4733",
                _ => "info",
            }
        ),
        CallEvent::Hold { by_peer } => {
            format!("on hold{}", if *by_peer { " (by the peer)" } else { "" })
        }
        CallEvent::Resumed { by_peer } => {
            format!("resumed{}", if *by_peer { " (by the peer)" } else { "" })
        }
        CallEvent::Muted { muted } => if *muted { "muted" } else { "unmuted" }.to_owned(),
        CallEvent::CodecChanged { codec, srtp } => format!(
            "codec now {}{}",
            codec.name().to_ascii_lowercase(),
            if *srtp { " over SRTP" } else { "" }
        ),
        CallEvent::Warning(w) => format!("warning: {w}"),
        CallEvent::TransferRequested { to, referred_by } => format!(
            "the peer asks to transfer this call to {to}{}: type accept-transfer or reject-transfer",
            referred_by
                .as_deref()
                .map(|b| format!(" (referred by {})", caller_text(b)))
                .unwrap_or_default()
        ),
        CallEvent::TransferStarted { .. } => {
            "transferred by the peer: calling the new party".into()
        }
        CallEvent::TransferProgress { status, reason } => format!("transfer: {status} {reason}"),
        CallEvent::TransferSucceeded { status } => format!("transfer done ({status})"),
        CallEvent::TransferFailed { status, reason } => {
            format!("transfer failed: {status} {reason}")
        }
        CallEvent::Replaced { .. } => "replaced by a new call (attended transfer)".into(),
        CallEvent::Conference { with: Some(_) } => "in a conference with the other call".into(),
        CallEvent::Conference { with: None } => "conference ended: a normal call again".into(),
        CallEvent::Ended(end) => {
            let status = end
                .status
                .map(|s| format!(" ({s} {})", end.status_text.clone().unwrap_or_default()))
                .unwrap_or_default();
            let mut lines = vec![format!(
                "call ended: {}{status} after {:.1} s; sent {} received {} lost {:.1}% MOS {}",
                reason_text(end.reason),
                end.duration.as_secs_f64(),
                end.quality.packets_sent,
                end.quality.packets_received,
                end.quality.loss_percent,
                mos_text(end.quality.mos)
            )];
            lines.extend(end.tried.iter().map(|t| format!("  tried {t}")));
            lines.extend(end.errors.iter().map(|e| format!("  {e}")));
            return lines;
        }
        _ => return Vec::new(),
    };
    vec![line]
}

/// Which call a line is about, when a command follows several (`tincan listen`).
#[derive(Debug, Clone, Copy, Default)]
struct Label {
    /// The call's number in this run (1, 2...): `call` in `--json`.
    number: Option<u32>,
    /// Whether human lines start with `[number]` (more than one call exists).
    prefix: bool,
}

impl Label {
    /// `[2] ` when the human lines need it, else nothing.
    fn human(self) -> String {
        match self.number {
            Some(n) if self.prefix => format!("[{n}] "),
            _ => String::new(),
        }
    }
}

/// Prints an event; returns the exit code when it ends the call.
fn show(event: &CallEvent, json: bool, label: Label) -> Option<ExitCode> {
    if json {
        if let Some(mut v) = event_json(event) {
            if let Some(n) = label.number {
                v["call"] = json!(n);
            }
            println!("{v}");
        }
    } else {
        let prefix = label.human();
        for line in human_lines(event) {
            println!("{prefix}{line}");
        }
    }
    match event {
        CallEvent::Ended(end) => Some(exit_code(end)),
        _ => None,
    }
}

/// 0 for a call that was answered and hung up by either side, 1 otherwise.
fn exit_code(end: &CallEnd) -> ExitCode {
    if end.answered
        && matches!(
            end.reason,
            EndReason::LocalHangup | EndReason::RemoteHangup | EndReason::Shutdown
        )
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What `follow` calls back: at the end of the call, and for the devices of the call that
/// takes its place (a transfer).
struct Hooks<'a> {
    on_end: &'a mut dyn FnMut(&CallEnd),
    more_devices: &'a mut dyn FnMut() -> Result<Devices, String>,
}

/// Follows the call to its end: hangs up on Ctrl-C or after `duration`, sends `dtmf` once up,
/// runs the commands typed on standard input. Calls to us meanwhile are refused (486).
async fn follow(
    phone: &mut Phone,
    mut call: CallId,
    json: bool,
    duration: Option<f64>,
    dtmf: Option<&str>,
    mut keys: Option<mpsc::UnboundedReceiver<String>>,
    hooks: Hooks<'_>,
) -> ExitCode {
    let Hooks {
        on_end,
        more_devices,
    } = hooks;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let mut hung_up = false;
    loop {
        let ev = tokio::select! {
            ev = phone.next_event() => ev,
            line = async {
                match keys.as_mut() {
                    Some(k) => k.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match line {
                    Some(line) => match command(phone, call, &line, json, Label::default()).await {
                        Typed::HungUp => hung_up = true,
                        Typed::Unknown => eprintln!("{CALL_KEYS}"),
                        Typed::Done => {}
                    },
                    None => keys = None,
                }
                continue;
            }
            _ = tokio::signal::ctrl_c(), if !hung_up => {
                hung_up = true;
                let _ = phone.hangup(call).await;
                continue;
            }
            () = async {
                match hangup_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }, if !hung_up => {
                hung_up = true;
                let _ = phone.hangup(call).await;
                continue;
            }
        };
        let Some(ev) = ev else {
            return ExitCode::from(1);
        };
        let ev = match ev {
            PhoneEvent::Call { call: c, event } if c == call => event,
            PhoneEvent::Incoming(other) => {
                let _ = phone.reject(other.call, 486).await;
                continue;
            }
            PhoneEvent::Message(m) => {
                if let Some(line) = super::message::event_line(&m, json) {
                    println!("{line}");
                }
                continue;
            }
            _ => continue,
        };
        if let CallEvent::Ended(end) = &ev {
            on_end(end);
        }
        if let Some(code) = show(&ev, json, Label::default()) {
            return code;
        }
        if let CallEvent::TransferStarted { new_call: next } | CallEvent::Replaced { by: next } = ev
        {
            // The call goes on with the new party: follow the new call, with audio.
            let (source, sink) = more_devices().unwrap_or_else(|e| {
                eprintln!("tincan call: {e}");
                silence()
            });
            phone.attach_devices(next, source, sink).await;
            call = next;
            continue;
        }
        if let CallEvent::Answered { .. } = ev {
            if let Some(d) = duration {
                hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
            }
            if let Some(digits) = dtmf {
                match phone.send_dtmf(call, digits).await {
                    Ok(()) if !json => println!("sent dtmf {digits}"),
                    Ok(()) => {}
                    Err(e) => eprintln!("tincan call: {e}"),
                }
            }
        }
    }
}

async fn call(args: &CallArgs, config: Config) -> ExitCode {
    // A target that cannot be called is reported before any device is opened.
    let default_domain = args
        .common
        .account
        .as_deref()
        .and_then(|n| config.accounts.iter().find(|a| a.name == n))
        .or_else(|| (config.accounts.len() == 1).then(|| &config.accounts[0]))
        .map(|a| a.aor.host.to_string());
    let peer = match tincan::phone::call::request_uri(&args.uri, default_domain.as_deref()) {
        Ok(uri) => uri.to_string(),
        Err(e) => {
            eprintln!("tincan call: {e}");
            return ExitCode::from(2);
        }
    };
    // The call's account (as the phone chooses it): --account, else the one of the callee's
    // domain, else the only one; its devices, else [audio]'s.
    let callee_host = tincan::phone::call::request_uri(&peer, None)
        .ok()
        .and_then(|u| u.as_sip().map(|s| s.host.to_string()));
    let call_account = args
        .common
        .account
        .as_deref()
        .and_then(|n| config.accounts.iter().find(|a| a.name == n))
        .or_else(|| {
            config.accounts.iter().find(|a| {
                callee_host
                    .as_deref()
                    .is_some_and(|h| a.aor.host.to_string().eq_ignore_ascii_case(h))
            })
        })
        .or_else(|| (config.accounts.len() == 1).then(|| &config.accounts[0]));
    let names = DeviceNames::of(&args.common, &config, call_account);
    let (source, sink) = match devices(&args.common, 1, &names) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan call: {e}");
            return ExitCode::from(2);
        }
    };
    let Setup { mut phone, account } = match setup("call", &args.common, &config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = CallOptions {
        source,
        sink,
        params: CallParams {
            account,
            ..CallParams::default()
        },
    };
    let mut history = super::history::Recorder::open("call", args.common.no_history);
    let started = super::history::unix_ms_now();
    let code = match phone.call(&args.uri, options).await {
        Ok(call) => {
            if !args.common.json {
                eprintln!("{CALL_KEYS}");
            }
            let keys = Some(stdin_lines());
            follow(
                &mut phone,
                call,
                args.common.json,
                args.duration,
                args.dtmf.as_deref(),
                keys,
                Hooks {
                    on_end: &mut |end| {
                        history.record(
                            Direction::Outgoing,
                            &peer,
                            args.common.account.clone(),
                            started,
                            end,
                        )
                    },
                    more_devices: &mut || devices(&args.common, 2, &names),
                },
            )
            .await
        }
        Err(e) => {
            eprintln!("tincan call: {e}");
            ExitCode::from(1)
        }
    };
    phone.shutdown().await;
    code
}

/// The Retry-After of the 503 that `tincan listen` answers new calls and OPTIONS with once
/// SIGTERM started its drain: a dispatcher asks again (or a caller retries) after this.
const LISTEN_DRAIN_RETRY_AFTER: Duration = Duration::from_secs(30);

async fn listen(args: &ListenArgs, mut config: Config) -> ExitCode {
    if args.call_limit.is_some() {
        config.network.call_limit = args.call_limit;
    }
    let Setup { mut phone, .. } = match setup("listen", &args.common, &config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    // SIGTERM drains: no new call (503 with Retry-After), the calls go on, then the exit.
    // Caught before `listening` is printed: a SIGTERM right after it drains as well.
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("tincan listen: cannot catch SIGTERM: {e}");
                None
            }
        };
    let local = phone.local_addresses().to_vec();
    let addr = local
        .iter()
        .find(|(t, _)| t.as_str() == "udp")
        .map(|(_, a)| *a);
    // Every socket, e.g. udp:0.0.0.0:5060 and udp:[::]:5060 (both families on the port).
    let all: Vec<String> = local
        .iter()
        .map(|(t, a)| format!("{}:{a}", t.as_str()))
        .collect();
    if args.common.json {
        println!(
            "{}",
            json!({
                "event": "listening",
                "address": addr.map(|a| a.to_string()),
                "addresses": all,
            })
        );
    } else if addr.is_some() {
        println!("listening on {}", all.join(", "));
    }
    let json = args.common.json;
    let mut taken = 0u32;
    let mut code = ExitCode::SUCCESS;
    // Calls taken and not ended, oldest first.
    let mut calls: BTreeMap<CallId, Taken> = BTreeMap::new();
    // How many calls were answered: orders them, so that commands go to the latest.
    let mut answers = 0u64;
    let mut stopping = false;
    let mut history = super::history::Recorder::open("listen", args.common.no_history);
    // Calls taken, for the history: when each arrived, from whom, to which account.
    let mut arrived: HashMap<CallId, (i64, String, Option<String>)> = HashMap::new();
    // What the person types, read as it is typed (never kept for a call to come).
    let mut keys = Some(stdin_lines());
    let mut ringer = ListenRinger::new(&args.common, &config);
    let mut draining = false;
    loop {
        // A call waiting for the person to answer it rings (the oldest one's account's ring
        // device).
        let waiting = calls
            .iter()
            .find(|(_, t)| t.ringing)
            .map(|(c, _)| arrived.get(c).and_then(|a| a.2.as_deref()));
        ringer.update(waiting, &args.common, &config);
        if args.max_calls.is_some_and(|m| taken >= m) && calls.is_empty()
            || stopping && calls.is_empty()
        {
            break;
        }
        let next_hangup = calls.values().filter_map(|c| c.hangup_at).min();
        let ev = tokio::select! {
            ev = phone.next_event() => ev,
            line = async {
                match keys.as_mut() {
                    Some(k) => k.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match line {
                    Some(line) => {
                        typed(&phone, &mut calls, &mut answers, &line, &args.common).await;
                    }
                    None => keys = None,
                }
                continue;
            }
            _ = tokio::signal::ctrl_c(), if !stopping => {
                stopping = true;
                for c in calls.keys() {
                    let _ = phone.hangup(*c).await;
                }
                continue;
            }
            Some(()) = async {
                match terminate.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            }, if !draining => {
                draining = true;
                phone.drain(LISTEN_DRAIN_RETRY_AFTER).await;
                if json {
                    println!("{}", json!({"event": "draining", "calls": calls.len()}));
                } else {
                    println!("draining: {} call(s) left, new calls refused 503", calls.len());
                }
                continue;
            }
            () = async {
                match next_hangup {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = tokio::time::Instant::now();
                for (c, taken) in calls.iter_mut() {
                    if taken.hangup_at.is_some_and(|t| t <= now) {
                        taken.hangup_at = None;
                        let _ = phone.hangup(*c).await;
                    }
                }
                continue;
            }
        };
        let Some(ev) = ev else { break };
        match ev {
            PhoneEvent::Incoming(incoming) => {
                if stopping || args.max_calls.is_some_and(|m| taken >= m) {
                    let _ = phone.reject(incoming.call, 486).await;
                    continue;
                }
                taken += 1;
                let account = incoming.account.and_then(|a| {
                    let i = phone.accounts().iter().position(|x| *x == a)?;
                    config.accounts.get(i)
                });
                // `--auto-answer` answers every call; an account's `auto_answer` its own.
                let auto_answer = args.auto_answer || account.is_some_and(|a| a.auto_answer);
                let devices = DeviceNames::of(&args.common, &config, account);
                let account = account.map(|a| a.name.clone());
                arrived.insert(
                    incoming.call,
                    (
                        super::history::unix_ms_now(),
                        incoming.from.clone(),
                        account,
                    ),
                );
                calls.insert(
                    incoming.call,
                    Taken {
                        number: taken,
                        ringing: true,
                        answered: None,
                        hangup_at: None,
                        devices,
                    },
                );
                let label = label_of(&calls, incoming.call);
                let from = caller_text(&incoming.from);
                if json {
                    println!(
                        "{}",
                        json!({"event": "incoming", "from": from, "to": incoming.to, "call": taken})
                    );
                } else {
                    println!("{}incoming call from {from}", label.human());
                }
                let _ = phone.ring(incoming.call).await;
                if auto_answer {
                    answer(
                        &phone,
                        &mut calls,
                        &mut answers,
                        incoming.call,
                        &args.common,
                    )
                    .await;
                } else if !json {
                    println!("{}answer (Enter) or decline?", label.human());
                }
            }
            PhoneEvent::Refused(refused) => {
                let from = caller_text(&refused.from);
                if json {
                    println!(
                        "{}",
                        json!({"event": "refused", "from": from, "status": refused.status})
                    );
                } else {
                    println!("refused call from {from}: {}", refused.status);
                }
            }
            PhoneEvent::MessageWaiting(waiting) => {
                let account = waiting.account.and_then(|a| {
                    let i = phone.accounts().iter().position(|x| *x == a)?;
                    config.accounts.get(i).map(|a| a.name.as_str())
                });
                println!("{}", super::message::waiting_line(&waiting, account, json));
            }
            PhoneEvent::Drained => {
                if json {
                    println!("{}", json!({"event": "drained"}));
                } else {
                    println!("drained");
                }
                break;
            }
            // `[[account]] watch`: the watched contacts' presence.
            PhoneEvent::Presence(ev) => {
                if let Some(line) = super::presence::watch_line(&ev, json) {
                    println!("{line}");
                }
            }
            PhoneEvent::Message(
                report @ (MessageEvent::Delivered { .. } | MessageEvent::Failed { .. }),
            ) => {
                if let Some(line) = super::message::event_line(&report, json) {
                    println!("{line}");
                }
            }
            PhoneEvent::Message(MessageEvent::Received(message)) => {
                // Kept in the history before it is printed: whoever reads the line may stop
                // the listener at once, and the message must not be lost then.
                let account = message.account.and_then(|a| {
                    let i = phone.accounts().iter().position(|x| *x == a)?;
                    config.accounts.get(i).map(|a| a.name.clone())
                });
                history.record_message(&super::message::received_record(&message, account));
                println!("{}", super::message::received_line(&message, json));
            }
            PhoneEvent::Call { call, event } => {
                if !calls.contains_key(&call) {
                    continue;
                }
                if let CallEvent::TransferStarted { new_call: next }
                | CallEvent::Replaced { by: next } = &event
                    && let Some(names) = calls.get(&call).map(|t| t.devices.clone())
                {
                    // The new call takes this one's place (and its audio devices' names).
                    taken += 1;
                    answers += 1;
                    let n = u32::try_from(answers).unwrap_or(u32::MAX);
                    let (source, sink) = devices(&args.common, n, &names).unwrap_or_else(|e| {
                        eprintln!("tincan listen: {e}");
                        silence()
                    });
                    phone.attach_devices(*next, source, sink).await;
                    calls.insert(
                        *next,
                        Taken {
                            number: taken,
                            ringing: false,
                            answered: Some(answers),
                            hangup_at: None,
                            devices: names,
                        },
                    );
                }
                if let CallEvent::Answered { .. } = event
                    && let Some(d) = args.duration
                    && let Some(taken) = calls.get_mut(&call)
                {
                    taken.hangup_at =
                        Some(tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
                }
                if let CallEvent::Ended(end) = &event
                    && let Some((started, from, account)) = arrived.remove(&call)
                {
                    history.record(Direction::Incoming, &from, account, started, end);
                }
                if let Some(c) = show(&event, json, label_of(&calls, call)) {
                    calls.remove(&call);
                    if c != ExitCode::SUCCESS {
                        code = c;
                    }
                }
            }
            _ => {}
        }
    }
    phone.shutdown().await;
    code
}

/// `tincan listen` rings while a call waits to be answered by hand, when a person is there to
/// hear it: standard input is a terminal, and the audio goes to a device (not `--record`,
/// `--no-audio`, `--json`). The ring tone and device are the phone's (docs/phone.md).
struct ListenRinger {
    /// Whether this run rings at all.
    on: bool,
    /// The ring playing.
    playing: Option<tincan_media::driver::player::TonePlayer>,
}

impl ListenRinger {
    fn new(common: &Common, config: &Config) -> ListenRinger {
        use std::io::IsTerminal;
        let on = Self::rings(common, std::io::stdin().is_terminal());
        if on
            && let (_, Some(warning)) =
                crate::tui::ring::ring_tone(config.audio.ring_tone.as_deref())
        {
            eprintln!("tincan listen: {warning}; ringing with the built-in tone");
        }
        ListenRinger { on, playing: None }
    }

    /// Whether a run rings: a person at the terminal, audio to a device.
    fn rings(common: &Common, terminal: bool) -> bool {
        terminal && common.record.is_none() && !common.no_audio && !common.json
    }

    /// `waiting`: a call waits to be answered, to this account (by name) or none.
    fn update(&mut self, waiting: Option<Option<&str>>, common: &Common, config: &Config) {
        match (waiting, self.playing.is_some()) {
            (None, true) => self.playing = None,
            (Some(account), false) if self.on => {
                let account = account.and_then(|n| config.accounts.iter().find(|a| a.name == n));
                match ring_sink(common, config, account) {
                    Ok(Some(sink)) => {
                        let (tone, _) =
                            crate::tui::ring::ring_tone(config.audio.ring_tone.as_deref());
                        self.playing =
                            Some(tincan_media::driver::player::TonePlayer::spawn(tone, sink));
                    }
                    Ok(None) => self.on = false,
                    Err(e) => {
                        eprintln!("tincan listen: cannot ring: {e}");
                        self.on = false;
                    }
                }
            }
            _ => {}
        }
    }
}

/// A call `tincan listen` took, until it ends.
struct Taken {
    /// Its number in this run (1, 2...): the label of its lines.
    number: u32,
    /// Whether it rings (not answered, declined or cancelled yet).
    ringing: bool,
    /// When it was answered, in the order of answers (commands go to the latest).
    answered: Option<u64>,
    /// When to hang it up (`--duration`).
    hangup_at: Option<tokio::time::Instant>,
    /// The devices it is answered with (its account's, else `[audio]`'s).
    devices: DeviceNames,
}

/// The label of `call`'s lines: its number, shown in human lines while other calls exist.
fn label_of(calls: &BTreeMap<CallId, Taken>, call: CallId) -> Label {
    Label {
        number: calls.get(&call).map(|t| t.number),
        prefix: calls.len() > 1,
    }
}

/// Answers `call`, opening its audio devices now (none is held while a call rings; with
/// `--record FILE`, the `n`th answered call records to [`record_path`]`(FILE, n)`); refuses
/// it with 500 when they cannot be opened.
async fn answer(
    phone: &Phone,
    calls: &mut BTreeMap<CallId, Taken>,
    answers: &mut u64,
    call: CallId,
    common: &Common,
) {
    let Some(taken) = calls.get_mut(&call).filter(|t| t.ringing) else {
        return;
    };
    taken.ringing = false;
    let n = u32::try_from(*answers + 1).unwrap_or(u32::MAX);
    let (source, sink) = match devices(common, n, &taken.devices) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan listen: {e}");
            let _ = phone.reject(call, 500).await;
            return;
        }
    };
    *answers += 1;
    taken.answered = Some(*answers);
    if let Err(e) = phone.accept(call, source, sink).await {
        eprintln!("tincan listen: {e}");
    }
}

/// Runs a line typed at `tincan listen`: `answer` (or Enter) and `decline [STATUS]` for the
/// oldest ringing call; the in-call commands of `tincan call` for the call answered last.
async fn typed(
    phone: &Phone,
    calls: &mut BTreeMap<CallId, Taken>,
    answers: &mut u64,
    line: &str,
    common: &Common,
) {
    let json = common.json;
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or("").to_ascii_lowercase();
    let ringing = calls.iter().find(|(_, t)| t.ringing).map(|(c, _)| *c);
    match (verb.as_str(), ringing) {
        ("" | "a" | "answer", Some(call)) => answer(phone, calls, answers, call, common).await,
        ("" | "a" | "answer", None) => {
            if verb.is_empty() && calls.values().any(|t| t.answered.is_some()) {
                // Enter during a call: nothing to do.
                return;
            }
            eprintln!("no call to answer");
        }
        ("d" | "decline", Some(call)) => {
            let status = match words.next().map(str::parse::<u16>) {
                None => 486,
                Some(Ok(s)) if (400..=699).contains(&s) => s,
                Some(_) => {
                    eprintln!("decline takes a status 400-699 (486 Busy Here, 603 Decline)");
                    return;
                }
            };
            if let Some(t) = calls.get_mut(&call) {
                t.ringing = false;
            }
            if let Err(e) = phone.reject(call, status).await {
                eprintln!("tincan listen: {e}");
            }
        }
        ("d" | "decline", None) => eprintln!("no call to decline"),
        ("conference" | "conf" | "split", _) => {
            // The two calls answered last: the latest keeps the person's devices.
            let up = answered_in_order(calls);
            let result = match (verb.as_str(), up.as_slice()) {
                ("split", [.., last]) => phone.split(*last).await,
                (_, [.., other, last]) => phone.conference(*last, *other).await,
                _ => {
                    eprintln!("a conference needs two calls up");
                    return;
                }
            };
            if let Err(e) = result {
                eprintln!("tincan listen: {e}");
            }
        }
        ("atransfer" | "transfer-to-call", _) => {
            // The peer of the call answered before the last (usually held) is put through to
            // the peer of the last one, which its INVITE with Replaces takes over.
            let up = answered_in_order(calls);
            let [.., other, last] = up.as_slice() else {
                eprintln!("an attended transfer needs two calls up");
                return;
            };
            match phone.transfer_attended(*other, *last).await {
                Ok(()) if !json => {
                    let number = |c: &CallId| calls.get(c).map_or(0, |t| t.number);
                    println!(
                        "transferring [{}] to [{}] (attended)",
                        number(other),
                        number(last)
                    );
                }
                Ok(()) => {}
                Err(e) => eprintln!("tincan listen: {e}"),
            }
        }
        _ => {
            let current = calls
                .iter()
                .filter_map(|(c, t)| t.answered.map(|n| (n, *c)))
                .max()
                .map(|(_, c)| c);
            let Some(call) = current else {
                if is_command(&verb) {
                    eprintln!("no call up");
                } else {
                    eprintln!("{LISTEN_KEYS}");
                }
                return;
            };
            if let Typed::Unknown = command(phone, call, line, json, label_of(calls, call)).await {
                eprintln!("{LISTEN_KEYS}");
            }
        }
    }
}

/// The calls answered so far and still here, the first answered first.
fn answered_in_order(calls: &BTreeMap<CallId, Taken>) -> Vec<CallId> {
    let mut up: Vec<(u64, CallId)> = calls
        .iter()
        .filter_map(|(c, t)| t.answered.map(|n| (n, *c)))
        .collect();
    up.sort();
    up.into_iter().map(|(_, c)| c).collect()
}

/// The in-call commands of `tincan call`, one per line (also `--help`).
pub(crate) const CALL_KEYS: &str = "\
Commands (one per line on standard input, while the call is up):
  hold (h)                  put the call on hold
  resume (r)                take it off hold
  mute (m)                  mute the microphone (silence is sent; lasts through hold)
  unmute (u)                unmute it
  dtmf DIGITS (d), DIGITS   send DTMF keys (0-9 * # A-D)
  codec opus|g722|pcmu|pcma (c)
                            change the codec (a re-INVITE offering it first)
  message TEXT (msg)        send a text message in the call (SIP MESSAGE)
  transfer URI (t)          transfer the peer to URI (REFER); the call ends when it worked
  accept-transfer           let the peer transfer us (when it asks; see accept_transfer in
  reject-transfer           the config, \"ask\" by default) or refuse it (603)
  hangup (q)                hang up";

/// The commands of `tincan listen`, one per line (also `--help`).
pub(crate) const LISTEN_KEYS: &str = "\
Commands (one per line on standard input):
  answer (a, or Enter)      answer the ringing call (the oldest, when several ring)
  decline [STATUS] (d)      refuse it: 486 Busy Here, or e.g. `decline 603` (603 Decline)
then, for the call answered last:
  hold (h)                  put the call on hold
  resume (r)                take it off hold
  mute (m), unmute (u)      mute / unmute the microphone (silence is sent)
  dtmf DIGITS, DIGITS       send DTMF keys (0-9 * # A-D; `a` and `d` alone answer and
                            decline here: type `dtmf A`)
  codec opus|g722|pcmu|pcma (c)
                            change the codec (a re-INVITE offering it first)
  message TEXT (msg)        send a text message in the call (SIP MESSAGE)
  transfer URI (t)          transfer the peer to URI (REFER); the call ends when it worked
  accept-transfer           let the peer transfer us (when it asks; see accept_transfer in
  reject-transfer           the config, \"ask\" by default) or refuse it (603)
  hangup (q)                hang up
  conference (conf)         join the two calls answered last: each hears the other and you
  split                     end the conference: two normal calls again
  atransfer (transfer-to-call)
                            attended transfer: put the peer of the call answered before the
                            last through to the peer of the last (REFER with Replaces); both
                            calls end when it worked
A line typed while no call rings answers nothing; with more than one call, lines start with
the call's number ([1], [2]) and --json events carry it as `call`.";

/// Lines of standard input, read on their own thread (reading stdin blocks).
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What a typed command did.
enum Typed {
    /// Carried out (or reported its error).
    Done,
    /// Hung the call up.
    HungUp,
    /// Not a command.
    Unknown,
}

/// Whether `verb` is an in-call command.
fn is_command(verb: &str) -> bool {
    matches!(
        verb,
        "h" | "hold"
            | "r"
            | "resume"
            | "unhold"
            | "m"
            | "mute"
            | "u"
            | "unmute"
            | "q"
            | "hangup"
            | "bye"
            | "d"
            | "dtmf"
            | "c"
            | "codec"
            | "t"
            | "transfer"
            | "accept-transfer"
            | "reject-transfer"
            | "atransfer"
            | "transfer-to-call"
            | "msg"
            | "message"
    ) || is_digits(verb)
}

/// DTMF keys typed alone.
fn is_digits(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| matches!(c, '0'..='9' | '*' | '#' | 'a'..='d' | 'A'..='D'))
}

/// Runs one in-call command line on the call; says what it did.
async fn command(phone: &Phone, call: CallId, line: &str, json: bool, label: Label) -> Typed {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Typed::Done;
    };
    let say = |what: String| {
        if !json {
            println!("{}{what}", label.human());
        }
    };
    let result = match verb.to_ascii_lowercase().as_str() {
        "h" | "hold" => phone.hold(call).await,
        "r" | "resume" | "unhold" => phone.resume(call).await,
        "m" | "mute" => phone.mute(call, true).await,
        "u" | "unmute" => phone.mute(call, false).await,
        "q" | "hangup" | "bye" => {
            let _ = phone.hangup(call).await;
            return Typed::HungUp;
        }
        "d" | "dtmf" => {
            let digits = words.collect::<String>().to_ascii_uppercase();
            let r = phone.send_dtmf(call, &digits).await;
            if r.is_ok() {
                say(format!("sent dtmf {digits}"));
            }
            r
        }
        "t" | "transfer" => {
            let Some(uri) = words.next() else {
                return Typed::Unknown;
            };
            let r = phone.transfer(call, uri).await;
            if r.is_ok() {
                say(format!("transferring to {uri}"));
            }
            r
        }
        "atransfer" | "transfer-to-call" => {
            eprintln!("an attended transfer needs two calls up (tincan listen or tincan phone)");
            return Typed::Done;
        }
        "accept-transfer" => phone.accept_transfer(call).await,
        "reject-transfer" => phone.reject_transfer(call).await,
        "c" | "codec" => {
            let codec = match words.next().map(str::to_ascii_lowercase).as_deref() {
                Some("opus") => CodecKind::Opus,
                Some("g722") => CodecKind::G722,
                Some("pcmu") => CodecKind::Pcmu,
                Some("pcma") => CodecKind::Pcma,
                _ => return Typed::Unknown,
            };
            let r = phone.change_codec(call, codec).await;
            if r.is_ok() {
                say(format!(
                    "asking for codec {}",
                    codec.name().to_ascii_lowercase()
                ));
            }
            r
        }
        "msg" | "message" => {
            let text = line.trim_start()[verb.len()..].trim();
            if text.is_empty() {
                return Typed::Unknown;
            }
            let r = phone.send_message_in_call(call, text).await;
            if r.is_ok() {
                say("sent message".to_owned());
            }
            r.map(|_| ())
        }
        digits if is_digits(digits) => {
            let digits = digits.to_ascii_uppercase();
            let r = phone.send_dtmf(call, &digits).await;
            if r.is_ok() {
                say(format!("sent dtmf {digits}"));
            }
            r
        }
        _ => return Typed::Unknown,
    };
    if let Err(e) = result {
        eprintln!("tincan: {e}");
    }
    Typed::Done
}

/// The caller as a person reads it: the display name (quoted) and the URI of a From value,
/// without its header parameters (the tag); the value as it is when it does not parse.
pub(crate) fn caller_text(from: &str) -> String {
    use tincan_sip::message::HeaderName;
    use tincan_sip::message::typed::NameAddr;
    match NameAddr::parse_as(HeaderName::From, from) {
        Ok(a) => match a.display_name.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => format!(
                "\"{}\" <{}>",
                d.replace('\\', "\\\\").replace('"', "\\\""),
                a.uri_str()
            ),
            None => a.uri_str().to_owned(),
        },
        Err(_) => from.to_owned(),
    }
}

/// Where the `n`th call of a run records (`--record FILE`): FILE for the first, then
/// FILE with `-2`, `-3`... before the extension (`rec.wav`, `rec-2.wav`, `rec-3.wav`).
fn record_path(path: &Path, n: u32) -> PathBuf {
    if n <= 1 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::default_bind;

    /// `incoming call from` names the caller, never the From header's parameters.
    #[test]
    fn the_caller_is_its_name_and_uri_without_the_tag() {
        use super::caller_text;
        assert_eq!(
            caller_text("\"Bob\" <sip:bob@example.com>;tag=a1b2"),
            "\"Bob\" <sip:bob@example.com>"
        );
        assert_eq!(
            caller_text("Bob Smith <sip:bob@example.com;transport=tcp>;tag=x"),
            "\"Bob Smith\" <sip:bob@example.com;transport=tcp>"
        );
        assert_eq!(
            caller_text("<sip:tincan@127.0.0.1>;tag=2Mgy8WuMwn"),
            "sip:tincan@127.0.0.1"
        );
        assert_eq!(caller_text("sip:a@b;tag=1"), "sip:a@b");
        assert_eq!(caller_text("not a from <"), "not a from <");
    }

    /// `listen --record FILE`: one file per call, the first one FILE.
    #[test]
    fn each_call_records_to_its_own_file() {
        use super::record_path;
        use std::path::Path;
        let p = Path::new("/tmp/rec.wav");
        assert_eq!(record_path(p, 1), Path::new("/tmp/rec.wav"));
        assert_eq!(record_path(p, 2), Path::new("/tmp/rec-2.wav"));
        assert_eq!(record_path(p, 13), Path::new("/tmp/rec-13.wav"));
        assert_eq!(record_path(Path::new("out"), 3), Path::new("out-3"));
        assert_eq!(
            record_path(Path::new("a.b/c.tar.wav"), 2),
            Path::new("a.b/c.tar-2.wav")
        );
    }

    #[test]
    fn listen_without_an_account_takes_the_sip_port() {
        assert_eq!(default_bind("listen", false).to_string(), "0.0.0.0:5060");
        assert_eq!(default_bind("listen", true).to_string(), "0.0.0.0:0");
        assert_eq!(default_bind("call", false).to_string(), "0.0.0.0:0");
    }

    /// A move of the media is a warning with its own fields, so that scripts can tell a NAT
    /// at the start of a call from a move later on.
    #[test]
    fn a_media_move_is_a_warning_with_its_addresses() {
        use super::{CallEvent, CallWarning, PortKind, event_json};
        let w = CallWarning::MediaMoved {
            kind: PortKind::Rtp,
            from: "127.0.0.1:5000".parse().expect("literal"),
            to: "127.0.0.9:7000".parse().expect("literal"),
        };
        let v = event_json(&CallEvent::Warning(w)).expect("a json line");
        assert_eq!(v["event"], "warning");
        assert_eq!(v["warning"], "media_moved");
        assert_eq!(v["port"], "rtp");
        assert_eq!(v["from"], "127.0.0.1:5000");
        assert_eq!(v["to"], "127.0.0.9:7000");
        assert_eq!(
            v["message"],
            "rtp now goes to 127.0.0.9:7000 (was 127.0.0.1:5000): the peer's packets come from there"
        );
    }

    /// A device named on the command line wins over the account's, which wins over
    /// `[audio]`'s; nothing named: the system's default.
    #[test]
    fn the_device_named_first_wins() {
        use super::first_named;
        assert_eq!(
            first_named(Some("flag"), Some("account"), Some("audio")).as_deref(),
            Some("flag")
        );
        assert_eq!(
            first_named(None, Some("account"), Some("audio")).as_deref(),
            Some("account")
        );
        assert_eq!(
            first_named(None, None, Some("audio")).as_deref(),
            Some("audio")
        );
        assert_eq!(first_named(None, None, None), None);
    }

    #[cfg(feature = "cpal")]
    fn device(id: &str, name: &str, input: bool, output: bool) -> tincan_media::device::DeviceInfo {
        tincan_media::device::DeviceInfo {
            id: id.into(),
            name: name.into(),
            input,
            output,
            default_input: false,
            default_output: false,
        }
    }

    /// A named device is found by its exact name, its id, or its name in another case, among
    /// the devices of its direction only.
    #[cfg(feature = "cpal")]
    #[test]
    fn a_named_device_is_chosen_from_the_list() {
        use super::choose_device;
        let list = [
            device("alsa:default", "default", true, true),
            device("alsa:hw:1,0", "USB Headset", true, true),
            device("alsa:hw:0,3", "HDMI", false, true),
            device("alsa:hw:2,0", "usb headset", false, true),
        ];
        assert_eq!(
            choose_device(&list, "USB Headset", true).unwrap().id,
            "alsa:hw:1,0"
        );
        assert_eq!(
            choose_device(&list, "usb headset", false).unwrap().id,
            "alsa:hw:2,0"
        );
        assert_eq!(
            choose_device(&list, "usb headset", true).unwrap().id,
            "alsa:hw:1,0"
        );
        assert_eq!(
            choose_device(&list, "alsa:hw:0,3", false).unwrap().name,
            "HDMI"
        );
        assert_eq!(
            choose_device(&list, "hdmi", false).unwrap().id,
            "alsa:hw:0,3"
        );
    }

    /// A device that is not there is an error naming it and the devices there are.
    #[cfg(feature = "cpal")]
    #[test]
    fn a_missing_device_is_named_with_the_ones_there_are() {
        use super::choose_device;
        let list = [
            device("alsa:default", "default", true, true),
            device("alsa:hw:0,3", "HDMI", false, true),
            device("alsa:hw:0,4", "HDMI", false, true),
        ];
        assert_eq!(
            choose_device(&list, "HDMI", true).unwrap_err(),
            "no input device named \"HDMI\": the input devices are \"default\""
        );
        assert_eq!(
            choose_device(&list, "Jabra", false).unwrap_err(),
            "no output device named \"Jabra\": the output devices are \"default\", \"HDMI\""
        );
        assert_eq!(
            choose_device(&[], "Jabra", true).unwrap_err(),
            "no input device named \"Jabra\": there are no input devices"
        );
    }

    /// Ring-back is for a person at the speaker: not into a recording, not without audio,
    /// not when turned off by flag or config.
    #[test]
    fn ringback_plays_only_to_a_person() {
        use super::{Common, ringback};
        use tincan::config::Config;
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            common: Common,
        }
        let common = |args: &[&str]| {
            let all = std::iter::once("tincan").chain(args.iter().copied());
            <Args as clap::Parser>::parse_from(all).common
        };
        let plain = Config::from_str_named("", "empty.toml").expect("an empty config is valid");
        let off = Config::from_str_named("[audio]\nringback = false\n", "off.toml")
            .expect("a valid config");
        assert!(ringback(&common(&[]), &plain));
        assert!(!ringback(&common(&["--no-ringback"]), &plain));
        assert!(!ringback(&common(&["--record", "x.wav"]), &plain));
        assert!(!ringback(&common(&["--no-audio"]), &plain));
        assert!(!ringback(&common(&[]), &off));
    }

    /// `listen` rings only for a person at a terminal whose audio goes to a device.
    #[test]
    fn listen_rings_only_for_a_person() {
        use super::{Common, ListenRinger};
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            common: Common,
        }
        let common = |args: &[&str]| {
            let all = std::iter::once("tincan").chain(args.iter().copied());
            <Args as clap::Parser>::parse_from(all).common
        };
        assert!(ListenRinger::rings(&common(&[]), true));
        assert!(!ListenRinger::rings(&common(&[]), false));
        assert!(!ListenRinger::rings(&common(&["--record", "x.wav"]), true));
        assert!(!ListenRinger::rings(&common(&["--no-audio"]), true));
        assert!(!ListenRinger::rings(&common(&["--json"]), true));
    }
}
