//! `tincan call URI` and `tincan listen`: place or take calls from the terminal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tincan::account::{AccountContext, AccountEvent, run_account};
use tincan::call::{Call, CallEvent, CallOptions, Phone, PhoneConfig};
use tincan::config::Config;
use tincan_media::codec::CodecKind;
use tincan_media::device::{AudioSink, AudioSource, NullSink, NullSource, WavSink, WavSource};
#[cfg(feature = "cpal")]
use tincan_media::device::{CpalSink, CpalSource, DeviceSelector};
use tincan_media::sdp::SrtpPolicy;
use tincan_sip::driver::dns::HickoryBackend;
use tokio::sync::{mpsc, watch};

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

/// A started phone, with its account registration if any.
struct Setup {
    phone: Phone,
    stop_account: Option<watch::Sender<bool>>,
    account_task: Option<tokio::task::JoinHandle<()>>,
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
        dns_server: common.dns_server.or(config.network.dns_server),
        ..PhoneConfig::default()
    };
    if let Some(c) = common.codec {
        let first = match c {
            CodecArg::Opus => CodecKind::Opus,
            CodecArg::Pcmu => CodecKind::Pcmu,
            CodecArg::Pcma => CodecKind::Pcma,
        };
        // The user's choice: offered alone, and the only one accepted in answers.
        pc.codecs = vec![first];
    }
    let mut spec = None;
    if let Some(name) = &common.account {
        let Some(a) = config.accounts.iter().find(|a| a.name == *name) else {
            return Err(fail(format!("no account named {name:?} in the config"), 2));
        };
        let a_spec = super::account_spec(a).map_err(|e| fail(e.to_string(), 2))?;
        pc.user = a.aor.user.as_deref().unwrap_or("tincan").to_owned();
        pc.domain = Some(a.aor.host.to_string());
        pc.credentials = Some((a_spec.username.clone(), a_spec.password.clone()));
        pc.outbound_proxy = a_spec.registrars.first().cloned();
        pc.transport = a_spec.transport;
        spec = Some(a_spec);
    }
    let bind = common
        .bind
        .or(config.network.bind)
        .unwrap_or_else(|| default_bind(command, spec.is_some()));
    pc.bind = bind;
    // TCP too (on an ephemeral port when none is chosen): calls over TCP need a local TCP
    // address for their Via and Contact.
    let (sip, incoming) = super::start_driver(bind, true)
        .await
        .map_err(|e| fail(e.to_string(), 1))?;
    let dns = match pc.dns_server {
        Some(s) => HickoryBackend::with_server(s),
        None => HickoryBackend::system(),
    }
    .map_err(|e| fail(format!("DNS: {e}"), 1))?;
    let phone = Phone::with_driver(pc, sip, incoming, dns);
    let Some(spec) = spec else {
        return Ok(Setup {
            phone,
            stop_account: None,
            account_task: None,
        });
    };
    let mut ctx: AccountContext = phone.context().clone();
    super::apply_keepalives(&config.network, &mut ctx);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run_account(ctx, spec, ev_tx, stop_rx));
    // Wait for the first registration result.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let ev = tokio::select! {
            ev = ev_rx.recv() => ev,
            () = tokio::time::sleep_until(deadline) => None,
        };
        match ev {
            Some(AccountEvent::Registered {
                account, registrar, ..
            }) => {
                if common.json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "registered", "account": account, "registrar": registrar})
                    );
                } else {
                    println!("{account}: registered at {registrar}");
                }
                break;
            }
            Some(AccountEvent::Unavailable { account, tried }) => {
                eprintln!(
                    "tincan {command}: {account} is not registered (tried {})",
                    tried.join("; ")
                );
                break;
            }
            Some(_) => continue,
            None => {
                eprintln!("tincan {command}: no registration result in 40 s");
                break;
            }
        }
    }
    // Keep draining account events in the background.
    tokio::spawn(async move { while ev_rx.recv().await.is_some() {} });
    Ok(Setup {
        phone,
        stop_account: Some(stop_tx),
        account_task: Some(task),
    })
}

impl Setup {
    async fn finish(self) {
        if let Some(stop) = self.stop_account {
            let _ = stop.send(true);
        }
        if let Some(task) = self.account_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.phone.shutdown().await;
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

/// The default microphone, or silence when there is none.
#[cfg(feature = "cpal")]
fn microphone() -> Box<dyn AudioSource> {
    match CpalSource::open(DeviceSelector::Default) {
        Ok(s) => Box::new(s),
        Err(e) => {
            eprintln!("tincan: no microphone ({e}); sending silence");
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
            eprintln!("tincan: no speaker ({e}); dropping received audio");
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

/// Prints an event; returns the exit code when it ends the call.
fn show(event: &CallEvent, json: bool) -> Option<ExitCode> {
    if json {
        println!(
            "{}",
            serde_json::to_string(event).expect("call events serialize")
        );
    } else {
        match event {
            CallEvent::Calling { uri, target, .. } => println!("calling {uri} via {target}"),
            CallEvent::Progress { status, reason } => println!("{status} {reason}"),
            CallEvent::Answered {
                setup_ms,
                codec,
                srtp,
                remote_rtp,
            } => println!(
                "answered in {setup_ms} ms: {codec}{} to {remote_rtp}",
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
            CallEvent::Dtmf { digit, via } => println!("dtmf {digit} ({via})"),
            CallEvent::Hold { by_peer } => {
                println!("on hold{}", if *by_peer { " (by the peer)" } else { "" })
            }
            CallEvent::Resumed { by_peer } => {
                println!("resumed{}", if *by_peer { " (by the peer)" } else { "" })
            }
            CallEvent::Warning { message } => println!("warning: {message}"),
            CallEvent::Ended {
                reason,
                status,
                status_text,
                duration_s,
                quality,
                ..
            } => {
                let status = status
                    .map(|s| format!(" ({s} {})", status_text.clone().unwrap_or_default()))
                    .unwrap_or_default();
                println!(
                    "call ended: {reason}{status} after {duration_s:.1} s; sent {} received {} lost {:.1}% MOS {:.2}",
                    quality.packets_sent,
                    quality.packets_received,
                    quality.loss_percent,
                    quality.mos
                );
            }
            _ => {}
        }
    }
    match event {
        CallEvent::Ended {
            answered, reason, ..
        } => Some(
            if *answered && matches!(reason.as_str(), "local_hangup" | "remote_hangup") {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            },
        ),
        _ => None,
    }
}

/// Follows a call to its end: hangs up on Ctrl-C or after `duration`, sends `dtmf` once up.
async fn follow(
    mut call: Call,
    json: bool,
    duration: Option<f64>,
    dtmf: Option<&str>,
    mut keys: Option<mpsc::UnboundedReceiver<String>>,
) -> ExitCode {
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let mut hung_up = false;
    loop {
        let ev = tokio::select! {
            ev = call.next_event() => ev,
            line = async {
                match keys.as_mut() {
                    Some(k) => k.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match line {
                    Some(line) => {
                        if command(&call, &line) {
                            hung_up = true;
                        }
                    }
                    None => keys = None,
                }
                continue;
            }
            _ = tokio::signal::ctrl_c(), if !hung_up => {
                hung_up = true;
                call.hangup();
                continue;
            }
            () = async {
                match hangup_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }, if !hung_up => {
                hung_up = true;
                call.hangup();
                continue;
            }
        };
        let Some(ev) = ev else {
            return ExitCode::from(1);
        };
        if let CallEvent::Answered { .. } = ev {
            if let Some(d) = duration {
                hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
            }
            if let Some(digits) = dtmf {
                call.send_dtmf(digits);
            }
        }
        if let Some(code) = show(&ev, json) {
            return code;
        }
    }
}

async fn call(args: &CallArgs, config: Config) -> ExitCode {
    // A target that cannot be called is reported before any device is opened.
    if let Err(e) = tincan::call::request_uri(&args.uri) {
        eprintln!("tincan call: {e}");
        return ExitCode::from(2);
    }
    let (source, sink) = match devices(&args.common) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan call: {e}");
            return ExitCode::from(2);
        }
    };
    let setup = match setup("call", &args.common, &config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = CallOptions {
        source,
        sink,
        ..CallOptions::default()
    };
    let code = match setup.phone.call(&args.uri, options).await {
        Ok(call) => {
            if !args.common.json {
                eprintln!("{KEYS_HELP}");
            }
            let keys = Some(stdin_lines());
            follow(
                call,
                args.common.json,
                args.duration,
                args.dtmf.as_deref(),
                keys,
            )
            .await
        }
        Err(e) => {
            eprintln!("tincan call: {e}");
            ExitCode::from(1)
        }
    };
    setup.finish().await;
    code
}

async fn listen(args: &ListenArgs, config: Config) -> ExitCode {
    let mut setup = match setup("listen", &args.common, &config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let addr = setup.phone.local_address();
    // Every socket, e.g. udp:0.0.0.0:5060 and udp:[::]:5060 (both families on the port).
    let all: Vec<String> = setup
        .phone
        .local_addresses()
        .iter()
        .map(|(t, a)| format!("{}:{a}", t.as_str()))
        .collect();
    if args.common.json {
        println!(
            "{}",
            serde_json::json!({
                "event": "listening",
                "address": addr.map(|a| a.to_string()),
                "addresses": all,
            })
        );
    } else if addr.is_some() {
        println!("listening on {}", all.join(", "));
    }
    let mut taken = 0u32;
    let mut code = ExitCode::SUCCESS;
    let mut calls = tokio::task::JoinSet::new();
    loop {
        if args.max_calls.is_some_and(|m| taken >= m) {
            break;
        }
        let incoming = tokio::select! {
            c = setup.phone.next_incoming() => c,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(incoming) = incoming else { break };
        taken += 1;
        if args.common.json {
            println!(
                "{}",
                serde_json::json!({"event": "incoming", "from": incoming.from, "to": incoming.to})
            );
        } else {
            println!("incoming call from {}", incoming.from);
        }
        let (source, sink) = match devices(&args.common) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("tincan listen: {e}");
                incoming.reject(500);
                continue;
            }
        };
        incoming.ring();
        if !args.auto_answer {
            println!("press Enter to answer");
            let mut line = String::new();
            let _ =
                tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
        }
        let call = incoming.accept(source, sink);
        let json = args.common.json;
        let duration = args.duration;
        calls.spawn(async move { follow(call, json, duration, None, None).await });
    }
    while let Some(r) = calls.join_next().await {
        if let Ok(c) = r
            && c != ExitCode::SUCCESS
        {
            code = c;
        }
    }
    setup.finish().await;
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
fn command(call: &Call, line: &str) -> bool {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return false;
    };
    match verb.to_ascii_lowercase().as_str() {
        "h" | "hold" => call.hold(),
        "r" | "resume" | "unhold" => call.resume(),
        "q" | "hangup" | "bye" => {
            call.hangup();
            return true;
        }
        "d" | "dtmf" => call.send_dtmf(&words.collect::<String>()),
        "c" | "codec" => match words.next().map(str::to_ascii_lowercase).as_deref() {
            Some("opus") => call.change_codec(CodecKind::Opus),
            Some("pcmu") => call.change_codec(CodecKind::Pcmu),
            Some("pcma") => call.change_codec(CodecKind::Pcma),
            _ => eprintln!("{KEYS_HELP}"),
        },
        digits
            if digits
                .chars()
                .all(|c| matches!(c, '0'..='9' | '*' | '#' | 'a'..='d')) =>
        {
            call.send_dtmf(&digits.to_ascii_uppercase())
        }
        _ => eprintln!("{KEYS_HELP}"),
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
}
