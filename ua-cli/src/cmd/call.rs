//! `tincan call URI` and `tincan listen`: place or take calls from the terminal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use std::collections::HashMap;

use serde_json::{Value, json};
use tincan::config::Config;
use tincan::history::Direction;
use tincan::phone::driver::{CallOptions, Phone, StartError};
use tincan::phone::{
    AccountConfig, AccountEvent, AccountId, CallEnd, CallEvent, CallId, CallParams, CallWarning,
    EndReason, PhoneConfig, PhoneEvent,
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
    account: Option<String>,
    /// Send this WAV file instead of the microphone.
    #[arg(long)]
    play: Option<PathBuf>,
    /// Record what the peer sends to this WAV file instead of the speaker.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Use only this codec (default: Opus, then PCMU, then PCMA; answers follow the caller's
    /// order).
    #[arg(long, value_enum)]
    codec: Option<CodecArg>,
    /// SRTP policy.
    #[arg(long, value_enum, default_value = "optional")]
    srtp: SrtpArg,
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
    no_audio: bool,
    /// Hang up a call after this many seconds without RTP from the peer, counted from the
    /// answer (a held call: after 300 s without RTP or RTCP); 0 only warns.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    rtp_timeout: u32,
    /// Do not record the calls in the history (`tincan history`).
    #[arg(long)]
    no_history: bool,
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
    /// Answer every call at once.
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

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
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
struct Setup {
    phone: Phone,
    /// The account named by `--account` (registered), if any.
    account: Option<AccountId>,
}

/// The phone's accounts from the config: every account (so that a call to one of their
/// domains, or a bare user, goes through it), registering only the one named by `--account`.
fn accounts(
    config: &Config,
    chosen: Option<&str>,
) -> Result<Vec<AccountConfig>, tincan::config::ConfigError> {
    let mut out = Vec::new();
    for a in &config.accounts {
        let mut ac = super::account_config(a)?;
        ac.register = chosen == Some(a.name.as_str());
        out.push(ac);
    }
    Ok(out)
}

/// `udp:127.0.0.1:5060`.
pub(crate) fn target_text(t: &Target) -> String {
    format!("{}:{}", t.transport.as_str(), t.addr)
}

async fn setup(command: &str, common: &Common, config: &Config) -> Result<Setup, ExitCode> {
    let fail = |msg: String, code: u8| {
        eprintln!("tincan {command}: {msg}");
        ExitCode::from(code)
    };
    let mut pc = PhoneConfig {
        srtp: match common.srtp {
            SrtpArg::Off => SrtpPolicy::Off,
            SrtpArg::Optional => SrtpPolicy::Optional,
            SrtpArg::Required => SrtpPolicy::Required,
        },
        rtp_timeout_hangup: (common.rtp_timeout > 0)
            .then(|| Duration::from_secs(u64::from(common.rtp_timeout))),
        ..PhoneConfig::default()
    };
    super::apply_keepalives(&config.network, &mut pc);
    if let Some(c) = common.codec {
        let first = match c {
            CodecArg::Opus => CodecKind::Opus,
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
    let accounts =
        accounts(config, common.account.as_deref()).map_err(|e| fail(e.to_string(), 2))?;
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
    if let Some(t) = super::sip_trace() {
        builder = builder.sip_trace(t);
    }
    for a in accounts {
        builder = builder.account(a);
    }
    let mut phone = builder.start().await.map_err(|e| match e {
        StartError::Account(e) => fail(e.to_string(), 2),
        e => fail(e.to_string(), 1),
    })?;
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

/// A call's audio: what it sends, where what it receives goes.
pub(super) type Devices = (Box<dyn AudioSource>, Box<dyn AudioSink>);

/// The audio devices for a call.
fn devices(common: &Common) -> Result<Devices, String> {
    let source: Box<dyn AudioSource> = match &common.play {
        Some(p) => {
            Box::new(WavSource::open(p).map_err(|e| format!("cannot play {}: {e}", p.display()))?)
        }
        None if common.no_audio => Box::new(NullSource::new()),
        None => microphone(),
    };
    let sink: Box<dyn AudioSink> = match &common.record {
        Some(p) => Box::new(
            WavSink::create(p).map_err(|e| format!("cannot record to {}: {e}", p.display()))?,
        ),
        None if common.no_audio => Box::new(NullSink::new()),
        None => speaker(),
    };
    Ok((source, sink))
}

/// Whether the missing microphone was reported (once per process, not once per call).
#[cfg(feature = "cpal")]
static SAID_NO_MICROPHONE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
/// Whether the missing speaker was reported.
#[cfg(feature = "cpal")]
static SAID_NO_SPEAKER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The default microphone, or silence when there is none.
#[cfg(feature = "cpal")]
fn microphone() -> Box<dyn AudioSource> {
    match CpalSource::open(DeviceSelector::Default) {
        Ok(s) => Box::new(s),
        Err(e) => {
            if !SAID_NO_MICROPHONE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("tincan: no microphone ({e}); sending silence");
            }
            Box::new(NullSource::new())
        }
    }
}

/// The default speaker, or nowhere when there is none.
#[cfg(feature = "cpal")]
fn speaker() -> Box<dyn AudioSink> {
    match CpalSink::open(DeviceSelector::Default) {
        Ok(s) => Box::new(s),
        Err(e) => {
            if !SAID_NO_SPEAKER.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("tincan: no speaker ({e}); dropping received audio");
            }
            Box::new(NullSink::new())
        }
    }
}

/// Silence: this build has no audio devices.
#[cfg(not(feature = "cpal"))]
fn microphone() -> Box<dyn AudioSource> {
    eprintln!("tincan: built without audio devices (feature `cpal`); sending silence");
    Box::new(NullSource::new())
}

/// Nowhere: this build has no audio devices.
#[cfg(not(feature = "cpal"))]
fn speaker() -> Box<dyn AudioSink> {
    eprintln!("tincan: built without audio devices (feature `cpal`); dropping received audio");
    Box::new(NullSink::new())
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

/// Prints an event; returns the exit code when it ends the call.
fn show(event: &CallEvent, json: bool) -> Option<ExitCode> {
    if json {
        if let Some(v) = event_json(event) {
            println!("{v}");
        }
    } else {
        match event {
            CallEvent::Calling { uri, target, .. } => {
                println!("calling {uri} via {}", target_text(target))
            }
            CallEvent::Progress { status, reason } => println!("{status} {reason}"),
            CallEvent::Answered {
                setup,
                codec,
                srtp,
                remote_rtp,
            } => println!(
                "answered in {} ms: {}{} to {remote_rtp}",
                setup.as_millis(),
                codec.name().to_ascii_lowercase(),
                if *srtp { " over SRTP" } else { "" }
            ),
            CallEvent::Quality(q) => println!(
                "rtp sent {} received {} lost {:.1}% jitter {:.1} ms{} MOS {:.2}",
                q.packets_sent,
                q.packets_received,
                q.loss_percent,
                q.jitter_ms,
                q.rtt_ms
                    .map(|r| format!(" rtt {r:.0} ms"))
                    .unwrap_or_default(),
                q.mos
            ),
            CallEvent::Dtmf { digit, via } => println!(
                "dtmf {digit} ({})",
                match via {
                    tincan::phone::DtmfVia::Rfc4733 => "rfc4733",
                    _ => "info",
                }
            ),
            CallEvent::Hold { by_peer } => {
                println!("on hold{}", if *by_peer { " (by the peer)" } else { "" })
            }
            CallEvent::Resumed { by_peer } => {
                println!("resumed{}", if *by_peer { " (by the peer)" } else { "" })
            }
            CallEvent::Warning(w) => println!("warning: {w}"),
            CallEvent::Ended(end) => {
                let status = end
                    .status
                    .map(|s| format!(" ({s} {})", end.status_text.clone().unwrap_or_default()))
                    .unwrap_or_default();
                println!(
                    "call ended: {}{status} after {:.1} s; sent {} received {} lost {:.1}% MOS {:.2}",
                    reason_text(end.reason),
                    end.duration.as_secs_f64(),
                    end.quality.packets_sent,
                    end.quality.packets_received,
                    end.quality.loss_percent,
                    end.quality.mos
                );
                for t in &end.tried {
                    println!("  tried {t}");
                }
                for e in &end.errors {
                    println!("  {e}");
                }
            }
            _ => {}
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

/// Follows the call to its end: hangs up on Ctrl-C or after `duration`, sends `dtmf` once up,
/// runs the commands typed on standard input. Calls to us meanwhile are refused (486).
async fn follow(
    phone: &mut Phone,
    call: CallId,
    json: bool,
    duration: Option<f64>,
    dtmf: Option<&str>,
    mut keys: Option<mpsc::UnboundedReceiver<String>>,
    on_end: &mut dyn FnMut(&CallEnd),
) -> ExitCode {
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
                    Some(line) => {
                        if command(phone, call, &line).await {
                            hung_up = true;
                        }
                    }
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
            _ => continue,
        };
        if let CallEvent::Answered { .. } = ev {
            if let Some(d) = duration {
                hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
            }
            if let Some(digits) = dtmf {
                let _ = phone.send_dtmf(call, digits).await;
            }
        }
        if let CallEvent::Ended(end) = &ev {
            on_end(end);
        }
        if let Some(code) = show(&ev, json) {
            return code;
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
    let (source, sink) = match devices(&args.common) {
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
                eprintln!("{KEYS_HELP}");
            }
            let keys = Some(stdin_lines());
            follow(
                &mut phone,
                call,
                args.common.json,
                args.duration,
                args.dtmf.as_deref(),
                keys,
                &mut |end| {
                    history.record(
                        Direction::Outgoing,
                        &peer,
                        args.common.account.clone(),
                        started,
                        end,
                    )
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

async fn listen(args: &ListenArgs, mut config: Config) -> ExitCode {
    if args.call_limit.is_some() {
        config.network.call_limit = args.call_limit;
    }
    let Setup { mut phone, .. } = match setup("listen", &args.common, &config).await {
        Ok(s) => s,
        Err(code) => return code,
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
    // Calls taken and not ended, with when to hang each up.
    let mut calls: HashMap<CallId, Option<tokio::time::Instant>> = HashMap::new();
    let mut stopping = false;
    let mut history = super::history::Recorder::open("listen", args.common.no_history);
    // Calls taken, for the history: when each arrived, from whom, to which account.
    let mut arrived: HashMap<CallId, (i64, String, Option<String>)> = HashMap::new();
    loop {
        if args.max_calls.is_some_and(|m| taken >= m) && calls.is_empty()
            || stopping && calls.is_empty()
        {
            break;
        }
        let next_hangup = calls.values().flatten().min().copied();
        let ev = tokio::select! {
            ev = phone.next_event() => ev,
            _ = tokio::signal::ctrl_c(), if !stopping => {
                stopping = true;
                for c in calls.keys() {
                    let _ = phone.hangup(*c).await;
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
                for (c, at) in calls.iter_mut() {
                    if at.is_some_and(|t| t <= now) {
                        *at = None;
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
                    Some(config.accounts.get(i)?.name.clone())
                });
                arrived.insert(
                    incoming.call,
                    (
                        super::history::unix_ms_now(),
                        incoming.from.clone(),
                        account,
                    ),
                );
                if json {
                    println!(
                        "{}",
                        json!({"event": "incoming", "from": incoming.from, "to": incoming.to})
                    );
                } else {
                    println!("incoming call from {}", incoming.from);
                }
                let (source, sink) = match devices(&args.common) {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("tincan listen: {e}");
                        arrived.remove(&incoming.call);
                        let _ = phone.reject(incoming.call, 500).await;
                        continue;
                    }
                };
                let _ = phone.ring(incoming.call).await;
                if !args.auto_answer {
                    println!("press Enter to answer");
                    let mut line = String::new();
                    let _ =
                        tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line))
                            .await;
                }
                calls.insert(incoming.call, None);
                if let Err(e) = phone.accept(incoming.call, source, sink).await {
                    eprintln!("tincan listen: {e}");
                }
            }
            PhoneEvent::Refused(refused) => {
                if json {
                    println!(
                        "{}",
                        json!({"event": "refused", "from": refused.from, "status": refused.status})
                    );
                } else {
                    println!("refused call from {}: {}", refused.from, refused.status);
                }
            }
            PhoneEvent::Call { call, event } => {
                if !calls.contains_key(&call) {
                    continue;
                }
                if let CallEvent::Answered { .. } = event
                    && let Some(d) = args.duration
                {
                    calls.insert(
                        call,
                        Some(tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0))),
                    );
                }
                if let CallEvent::Ended(end) = &event
                    && let Some((started, from, account)) = arrived.remove(&call)
                {
                    history.record(Direction::Incoming, &from, account, started, end);
                }
                if let Some(c) = show(&event, json) {
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

/// The commands `tincan call` reads from its standard input, one per line.
const KEYS_HELP: &str =
    "commands: hold | resume | dtmf DIGITS (or just the digits) | codec opus|pcmu|pcma | hangup";

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

/// Runs one command line on the call; true when it hung up.
async fn command(phone: &Phone, call: CallId, line: &str) -> bool {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return false;
    };
    let result = match verb.to_ascii_lowercase().as_str() {
        "h" | "hold" => phone.hold(call).await,
        "r" | "resume" | "unhold" => phone.resume(call).await,
        "q" | "hangup" | "bye" => {
            let _ = phone.hangup(call).await;
            return true;
        }
        "d" | "dtmf" => phone.send_dtmf(call, &words.collect::<String>()).await,
        "c" | "codec" => match words.next().map(str::to_ascii_lowercase).as_deref() {
            Some("opus") => phone.change_codec(call, CodecKind::Opus).await,
            Some("pcmu") => phone.change_codec(call, CodecKind::Pcmu).await,
            Some("pcma") => phone.change_codec(call, CodecKind::Pcma).await,
            _ => {
                eprintln!("{KEYS_HELP}");
                Ok(())
            }
        },
        digits
            if digits
                .chars()
                .all(|c| matches!(c, '0'..='9' | '*' | '#' | 'a'..='d')) =>
        {
            phone.send_dtmf(call, &digits.to_ascii_uppercase()).await
        }
        _ => {
            eprintln!("{KEYS_HELP}");
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("tincan call: {e}");
    }
    false
}

#[cfg(test)]
mod tests {
    use super::default_bind;

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
}
