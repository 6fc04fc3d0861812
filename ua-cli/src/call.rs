//! Calls: a [`Phone`] places and takes calls, joining the SIP INVITE session
//! ([`tincan_sip::dialog`]) with SDP offer/answer and the media engine ([`tincan_media`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tincan::call::{CallEvent, CallOptions, Phone, PhoneConfig};
//!
//! let mut phone = Phone::start(PhoneConfig::default()).await?;
//! let mut call = phone.call("sip:bob@example.com", CallOptions::default()).await?;
//! while let Some(event) = call.next_event().await {
//!     println!("{}", serde_json::to_string(&event)?);
//!     if let CallEvent::Ended { .. } = event {
//!         break;
//!     }
//! }
//! phone.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Each call is one task that owns its [`InviteSession`] and its media session; a dispatcher
//! task hands it the requests of its dialog. Requests go where RFC 3263 says for their next
//! hop, trying the resolved targets in the order of the shared health table: an INVITE that
//! gets no answer from a proxy within the interactive budget, or a 503, moves on to the next.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::Rng;
use tokio::sync::{mpsc, watch};

use tincan_media::codec::CodecKind;
use tincan_media::device::{AudioSink, AudioSource, NullSink, NullSource};
use tincan_media::driver::{MediaHandle, MediaPorts, PortRange, spawn};
use tincan_media::quality::StreamStats;
use tincan_media::sdp::{self, LocalMedia, Negotiated, SessionDescription, SrtpPolicy};
use tincan_media::session::{Direction, MediaEvent, SessionStats};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};
use tincan_sip::auth::{ChallengeKind, Credentials, DigestClient, DigestRequest};
use tincan_sip::dialog::{
    EndReason, InviteConfig, InviteSession, Output, RequestOutcome, SessionEvent, SessionState,
};
use tincan_sip::driver::dns::HickoryBackend;
use tincan_sip::driver::{
    Driver, DriverConfig, Handle, Incoming, IncomingEvent, OsRng, ServerRequest, TxError,
};
use tincan_sip::message::typed::NameAddr;
use tincan_sip::message::{HeaderName, Message, Method, Uri, response_to};
use tincan_sip::resolve::health::{FailureCause, TargetKey};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{Target, Transport};

use crate::account::{AccountContext, contact_uri, host_literal, lock, send_target, targets_for};

/// How a [`Phone`] is set up.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// The SIP address to bind (UDP, and TCP on the same port when it is not 0).
    pub bind: SocketAddr,
    /// Our user name (From and Contact user part).
    pub user: String,
    /// Our display name.
    pub display_name: Option<String>,
    /// The domain of our From URI; `None`: the local address.
    pub domain: Option<String>,
    /// Codecs in order of preference.
    pub codecs: Vec<CodecKind>,
    /// SRTP policy.
    pub srtp: SrtpPolicy,
    /// A DNS server to ask instead of the system's (tests use dnsmasq on loopback).
    pub dns_server: Option<SocketAddr>,
    /// Force a transport for outgoing requests.
    pub transport: Option<Transport>,
    /// An outbound proxy (`sip:proxy.example.com`) every call goes through.
    pub outbound_proxy: Option<String>,
    /// Digest credentials for challenges (username, password).
    pub credentials: Option<(String, String)>,
    /// Media port range.
    pub media_ports: PortRange,
    /// Offer and accept RFC 4733 telephone-event; without it DTMF goes in SIP INFO.
    pub telephone_event: bool,
    /// Hang up when no RTP arrives for this long while neither side holds the call (as
    /// Linphone's `nortp_timeout`): the peer is gone, e.g. its BYE could not reach us through a
    /// dead proxy. `None`: only warn.
    pub rtp_timeout_hangup: Option<Duration>,
    /// Sees every SIP message the phone sends or receives ([`crate::trace::to_path`] writes
    /// them to a file); `None` traces nothing.
    pub sip_trace: Option<tincan_sip::driver::Tracer>,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            user: "tincan".into(),
            display_name: None,
            domain: None,
            codecs: CodecKind::ALL.to_vec(),
            srtp: SrtpPolicy::Optional,
            dns_server: None,
            transport: None,
            outbound_proxy: None,
            credentials: None,
            media_ports: PortRange::Any,
            telephone_event: true,
            rtp_timeout_hangup: Some(Duration::from_secs(30)),
            sip_trace: None,
        }
    }
}

/// Why a call could not be placed or the phone could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The SIP driver failed.
    #[error(transparent)]
    Driver(#[from] tincan_sip::driver::DriverError),
    /// DNS could not be set up.
    #[error("dns: {0}")]
    Dns(String),
    /// The URI is not a SIP URI we can call.
    #[error("cannot call {uri}: {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// No server found for the next hop.
    #[error("cannot reach {uri}: {reason}")]
    Unreachable {
        /// What was resolved.
        uri: String,
        /// What was tried.
        reason: String,
    },
    /// Media ports could not be bound.
    #[error("media: {0}")]
    Media(String),
}

/// What to do with a call's audio, and how it starts.
pub struct CallOptions {
    /// What we send.
    pub source: Box<dyn AudioSource>,
    /// Where received audio goes.
    pub sink: Box<dyn AudioSink>,
    /// Codecs for this call (overrides the phone's).
    pub codecs: Option<Vec<CodecKind>>,
    /// SRTP policy for this call (overrides the phone's).
    pub srtp: Option<SrtpPolicy>,
    /// Send no offer in the INVITE (the callee offers in its 2xx, we answer in the ACK).
    pub late_offer: bool,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            source: Box::new(NullSource::new()),
            sink: Box::new(NullSink::new()),
            codecs: None,
            srtp: None,
            late_offer: false,
        }
    }
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("codecs", &self.codecs)
            .field("srtp", &self.srtp)
            .field("late_offer", &self.late_offer)
            .finish_non_exhaustive()
    }
}

/// Quality figures of a call, as shown live and in the summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Quality {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets lost from the peer's stream.
    pub packets_lost: i64,
    /// Loss percentage of the peer's stream.
    pub loss_percent: f64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time, milliseconds, once RTCP measured it.
    pub rtt_ms: Option<f64>,
    /// Concealed share of played frames, percent.
    pub concealed_percent: f64,
    /// E-model MOS estimate (1-4.5).
    pub mos: f64,
    /// SRTP packets refused.
    pub srtp_rejected: u64,
}

impl Quality {
    fn of(stats: &SessionStats, codec: CodecKind) -> Quality {
        let q: StreamStats = stats.to_quality_stats(codec);
        let est = q.quality();
        let expected = stats.packets_received as i64 + stats.packets_lost.max(0);
        Quality {
            packets_sent: stats.packets_sent,
            packets_received: stats.packets_received,
            packets_lost: stats.packets_lost,
            loss_percent: if expected > 0 {
                100.0 * stats.packets_lost.max(0) as f64 / expected as f64
            } else {
                0.0
            },
            jitter_ms: stats.jitter.as_secs_f64() * 1000.0,
            rtt_ms: stats.rtt.map(|d| d.as_secs_f64() * 1000.0),
            concealed_percent: 100.0 * stats.concealment_ratio(),
            mos: (est.mos * 100.0).round() / 100.0,
            srtp_rejected: stats.srtp_rejected,
        }
    }
}

/// What happens to a call, for the application (and `--json`, one object per line).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallEvent {
    /// The INVITE went out to a server.
    Calling {
        /// The Call-ID.
        call_id: String,
        /// The callee.
        uri: String,
        /// Where it was sent (`udp:127.0.0.1:5060`).
        target: String,
    },
    /// A provisional response.
    Progress {
        /// 180, 183...
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The call is up, media flowing.
    Answered {
        /// Milliseconds from the INVITE to the answer.
        setup_ms: u64,
        /// The codec.
        codec: String,
        /// Whether media is SRTP.
        srtp: bool,
        /// Where our RTP goes.
        remote_rtp: String,
    },
    /// Live quality, every second.
    Quality(Quality),
    /// A DTMF key from the peer.
    Dtmf {
        /// The key.
        digit: char,
        /// `rfc4733` or `info`.
        via: &'static str,
    },
    /// The call was put on hold (`by_peer`: the peer held us).
    Hold {
        /// Whether the peer did it.
        by_peer: bool,
    },
    /// The call was resumed.
    Resumed {
        /// Whether the peer did it.
        by_peer: bool,
    },
    /// A re-INVITE changed the codec (or the SRTP keys); media goes on with the new one.
    CodecChanged {
        /// The new codec.
        codec: String,
        /// Whether media is SRTP.
        srtp: bool,
    },
    /// Something went wrong without ending the call.
    Warning {
        /// What.
        message: String,
    },
    /// The call is over.
    Ended {
        /// `local_hangup`, `remote_hangup`, `rejected`, `timeout`, `unreachable`,
        /// `ack_timeout`, `dialog_gone`, `media_timeout` (no RTP for
        /// [`PhoneConfig::rtp_timeout_hangup`]).
        reason: String,
        /// The final SIP status when the call did not connect.
        status: Option<u16>,
        /// The reason phrase of that status.
        status_text: Option<String>,
        /// Whether the call was answered.
        answered: bool,
        /// Seconds from answer to end.
        duration_s: f64,
        /// The codec, if the call was answered.
        codec: Option<String>,
        /// Final quality figures.
        quality: Quality,
    },
}

/// What a call task receives.
enum CallInput {
    Request(ServerRequest),
    Ack(Message),
    Cancelled,
    AckTimeout,
    Response(Message),
    InviteTx(TransactionId),
    InviteSentTo(Target),
    Failure {
        method: Method,
        initial: bool,
        /// What was tried and how each failed.
        tried: Vec<String>,
    },
    Command(Command),
    Accept {
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    },
}

/// What the application asks of a call.
#[derive(Debug)]
enum Command {
    Hangup,
    Dtmf(String),
    Hold,
    Resume,
    Reject(u16),
    Ring,
    Codec(CodecKind),
}

/// A call in progress; events come from [`next_event`](Self::next_event).
#[derive(Debug)]
pub struct Call {
    call_id: String,
    input: mpsc::UnboundedSender<CallInput>,
    events: mpsc::UnboundedReceiver<CallEvent>,
}

impl Call {
    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The next event; `None` after [`CallEvent::Ended`].
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    /// Hangs up (CANCEL, BYE, or 603 for an unanswered incoming call).
    pub fn hangup(&self) {
        let _ = self.input.send(CallInput::Command(Command::Hangup));
    }

    /// Sends DTMF keys (RFC 4733 when negotiated, SIP INFO otherwise).
    pub fn send_dtmf(&self, digits: &str) {
        let _ = self
            .input
            .send(CallInput::Command(Command::Dtmf(digits.to_owned())));
    }

    /// Puts the call on hold (re-INVITE with sendonly).
    pub fn hold(&self) {
        let _ = self.input.send(CallInput::Command(Command::Hold));
    }

    /// Resumes a held call.
    pub fn resume(&self) {
        let _ = self.input.send(CallInput::Command(Command::Resume));
    }

    /// Offers `codec` first in a re-INVITE; [`CallEvent::CodecChanged`] follows when the peer
    /// takes it.
    pub fn change_codec(&self, codec: CodecKind) {
        let _ = self.input.send(CallInput::Command(Command::Codec(codec)));
    }
}

/// A call waiting for [`accept`](Self::accept) or [`reject`](Self::reject).
#[derive(Debug)]
pub struct IncomingCall {
    /// The caller (From).
    pub from: String,
    /// The callee (To).
    pub to: String,
    /// The call; its events start now.
    pub call: Call,
}

impl IncomingCall {
    /// Sends 180 Ringing.
    pub fn ring(&self) {
        let _ = self.call.input.send(CallInput::Command(Command::Ring));
    }

    /// Answers with these audio devices.
    pub fn accept(self, source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) -> Call {
        let _ = self.call.input.send(CallInput::Accept { source, sink });
        self.call
    }

    /// Refuses the call (486 Busy Here, 603 Decline...).
    pub fn reject(self, status: u16) {
        let _ = self
            .call
            .input
            .send(CallInput::Command(Command::Reject(status)));
    }
}

enum Dispatch {
    Register(String, mpsc::UnboundedSender<CallInput>),
    Unregister(String),
}

/// Shared by the calls of a phone.
#[derive(Clone)]
struct Shared {
    ctx: AccountContext,
    config: Arc<PhoneConfig>,
    dispatch: mpsc::UnboundedSender<Dispatch>,
    /// Requests of calls not yet handed to the driver (their next hop is being resolved).
    pending: Arc<watch::Sender<usize>>,
}

/// One request of a call on its way to the driver; [`Phone::shutdown`] waits for these, so
/// that the BYE of a hang-up just before it is not lost.
struct PendingRequest(Arc<watch::Sender<usize>>);

impl PendingRequest {
    fn new(shared: &Shared) -> Self {
        shared.pending.send_modify(|n| *n += 1);
        Self(shared.pending.clone())
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A SIP user agent that places and answers calls.
pub struct Phone {
    shared: Shared,
    incoming: mpsc::UnboundedReceiver<IncomingCall>,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("local", &self.shared.ctx.sip.local_addresses())
            .finish_non_exhaustive()
    }
}

/// The Request-URI [`Phone::call`] sends to for what a user typed: `sip:`/`sips:` URIs as
/// they are, `bob@example.com` or `example.com` as `sip:` URIs. Callers can check a target
/// before they open devices or start anything.
pub fn request_uri(uri: &str) -> Result<Uri<'static>, CallError> {
    let text = if uri.contains(':') && !uri.contains('@') || uri.starts_with("sip") {
        uri.to_owned()
    } else {
        format!("sip:{uri}")
    };
    let request_uri = Uri::parse(&text)
        .map_err(|e| CallError::BadUri {
            uri: uri.to_owned(),
            reason: e.to_string(),
        })?
        .into_owned();
    if request_uri.as_sip().is_none() {
        return Err(CallError::BadUri {
            uri: uri.to_owned(),
            reason: "only sip: and sips: URIs can be called".into(),
        });
    }
    Ok(request_uri)
}

impl Phone {
    /// Binds the SIP sockets and starts dispatching.
    pub async fn start(config: PhoneConfig) -> Result<Phone, CallError> {
        let mut dc = DriverConfig::udp(config.bind);
        if config.bind.port() != 0 {
            dc.tcp = vec![config.bind];
        }
        dc.trace = config.sip_trace.clone();
        let (sip, incoming) = Driver::start(dc).await?;
        let dns = match config.dns_server {
            Some(server) => HickoryBackend::with_server(server),
            None => HickoryBackend::system(),
        }
        .map_err(|e| CallError::Dns(e.to_string()))?;
        Ok(Self::with_driver(config, sip, incoming, dns))
    }

    /// A phone over a running driver (to share it with accounts).
    pub fn with_driver(
        config: PhoneConfig,
        sip: Handle,
        incoming: Incoming,
        dns: HickoryBackend,
    ) -> Phone {
        let ctx = AccountContext::new(sip, dns);
        let (dispatch, dispatch_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            ctx,
            config: Arc::new(config),
            dispatch,
            pending: Arc::new(watch::channel(0).0),
        };
        let dispatcher = tokio::spawn(dispatch_loop(
            shared.clone(),
            incoming,
            dispatch_rx,
            incoming_tx,
        ));
        Phone {
            shared,
            incoming: incoming_rx,
            dispatcher,
        }
    }

    /// The SIP driver handle.
    pub fn sip(&self) -> &Handle {
        &self.shared.ctx.sip
    }

    /// The account context (DNS, target health) shared with registrations.
    pub fn context(&self) -> &AccountContext {
        &self.shared.ctx
    }

    /// The bound UDP address.
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.shared.ctx.sip.local_address(Transport::Udp)
    }

    /// Every address the phone listens on, with its transport (UDP, TCP; IPv4 and IPv6).
    pub fn local_addresses(&self) -> Vec<(Transport, SocketAddr)> {
        self.shared.ctx.sip.local_addresses().to_vec()
    }

    /// The next incoming call; `None` when the phone stopped.
    pub async fn next_incoming(&mut self) -> Option<IncomingCall> {
        self.incoming.recv().await
    }

    /// Calls `uri` (a SIP URI, or `user@domain`): through the outbound proxy if one is set,
    /// otherwise straight to the callee's domain (RFC 3263).
    pub async fn call(&self, uri: &str, options: CallOptions) -> Result<Call, CallError> {
        let request_uri = request_uri(uri)?;
        let shared = &self.shared;
        let config = &shared.config;
        let (next_hop, routes) = match &config.outbound_proxy {
            Some(p) => {
                let proxy = Uri::parse(p)
                    .map_err(|e| CallError::BadUri {
                        uri: p.clone(),
                        reason: e.to_string(),
                    })?
                    .into_owned();
                let mut route = proxy.clone();
                if let Uri::Sip(u) = &mut route
                    && !u.params.contains("lr")
                {
                    u.params.set("lr", None);
                }
                (proxy, vec![format!("<{route}>")])
            }
            None => (request_uri.clone(), Vec::new()),
        };
        let targets = resolve_ordered(shared, &next_hop.to_string()).await?;
        let first = targets[0].clone();
        let local = shared
            .ctx
            .sip
            .local_address_for(first.transport, first.addr)
            .ok_or_else(|| CallError::Unreachable {
                uri: next_hop.to_string(),
                reason: format!("no local {} socket for {}", first.transport, first.addr),
            })?;
        let call_id = format!(
            "{}@{}",
            shared.ctx.sip.token(20).await?,
            host_literal(local.ip())
        );
        let local_tag = shared.ctx.sip.token(10).await?;
        let seed = OsRng.next_u64();
        let mut media = MediaPlan::new(
            config,
            local.ip(),
            options.codecs.clone(),
            options.srtp,
            seed,
        )
        .await?;
        let offer = (!options.late_offer).then(|| Bytes::from(media.offer().to_string()));
        let from_domain = config
            .domain
            .clone()
            .unwrap_or_else(|| host_literal(local.ip()));
        let local_uri = name_addr(
            config.display_name.as_deref(),
            &format!("sip:{}@{}", config.user, from_domain),
        );
        let to = NameAddr::new(request_uri.clone());
        let invite_config = InviteConfig {
            local_uri,
            local_tag,
            contact: contact(&config.user, local, first.transport),
            call_id: call_id.clone(),
            cseq: 1,
            seed,
            extra_headers: Vec::new(),
        };
        let session =
            InviteSession::outgoing(invite_config, request_uri.clone(), to, &routes, offer);
        let mut task = CallTask::new(shared, session, media, request_uri.to_string());
        task.source = Some(options.source);
        task.sink = Some(options.sink);
        task.initial_targets = Some(targets);
        task.digest = config
            .credentials
            .as_ref()
            .map(|(u, p)| DigestClient::new(u.clone(), p.clone()));
        let _ = shared
            .dispatch
            .send(Dispatch::Register(call_id.clone(), task.input.clone()));
        let (input, input_rx, events) = task.channels();
        tokio::spawn(task.run(input_rx));
        Ok(Call {
            call_id,
            input,
            events,
        })
    }

    /// Stops the dispatcher and the SIP driver (in-flight transactions get the grace period).
    pub async fn shutdown(self) {
        let mut pending = self.shared.pending.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(2), pending.wait_for(|n| *n == 0)).await;
        self.shared.ctx.sip.shutdown().await;
        self.dispatcher.abort();
    }
}

fn name_addr(display: Option<&str>, uri: &str) -> NameAddr<'static> {
    let mut n = NameAddr::new(Uri::parse(uri).map(Uri::into_owned).unwrap_or_else(|_| {
        Uri::parse("sip:tincan@invalid")
            .expect("a valid literal")
            .into_owned()
    }));
    if let Some(d) = display {
        n.display_name = Some(d.to_owned().into());
    }
    n
}

fn contact(user: &str, local: SocketAddr, transport: Transport) -> String {
    format!("<{}>", contact_uri(user, local, transport))
}

/// Resolves `uri` and orders the targets by the health table (known-down ones last).
async fn resolve_ordered(
    shared: &Shared,
    uri: &str,
) -> Result<Vec<tincan_sip::resolve::ResolvedTarget>, CallError> {
    let targets = targets_for(&shared.ctx, uri, shared.config.transport)
        .await
        .map_err(|reason| CallError::Unreachable {
            uri: uri.to_owned(),
            reason,
        })?;
    if targets.is_empty() {
        return Err(CallError::Unreachable {
            uri: uri.to_owned(),
            reason: "no servers found".into(),
        });
    }
    Ok(lock(&shared.ctx.health).order(&targets, Instant::now()))
}

/// The local side of the media: ports, keys, what we offer.
struct MediaPlan {
    ports: Option<MediaPorts>,
    local: LocalMedia,
}

impl MediaPlan {
    async fn new(
        config: &PhoneConfig,
        ip: IpAddr,
        codecs: Option<Vec<CodecKind>>,
        srtp: Option<SrtpPolicy>,
        seed: u64,
    ) -> Result<MediaPlan, CallError> {
        let ports = MediaPorts::bind(ip, config.media_ports, false)
            .await
            .map_err(|e| CallError::Media(format!("cannot bind rtp on {ip}: {e}")))?;
        let rtp = ports.rtp_addr();
        let rtcp = ports.rtcp_addr();
        let mut local = LocalMedia::new(ip, rtp.port());
        local.rtcp_port = rtcp.map(|a| a.port());
        local.codecs = codecs.unwrap_or_else(|| config.codecs.clone());
        local.srtp = srtp.unwrap_or(config.srtp);
        local.telephone_event = config.telephone_event;
        local.session_id = seed >> 1 & 0x7fff_ffff_ffff;
        local.session_version = 1;
        if local.srtp != SrtpPolicy::Off {
            // SRTP master keys from the operating system's generator; if it fails, no call
            // (never a weaker key).
            let key = |tag, suite| {
                CryptoAttribute::try_generate(tag, suite, OsRng::try_fill)
                    .map_err(|e| CallError::Media(format!("no SRTP master key: {e}")))
            };
            local.crypto = vec![
                key(1, CryptoSuite::AesCm128HmacSha1_80)?,
                key(2, CryptoSuite::AesCm128HmacSha1_32)?,
            ];
        }
        Ok(MediaPlan {
            ports: Some(ports),
            local,
        })
    }

    fn offer(&mut self) -> SessionDescription {
        sdp::offer(&self.local)
    }

    fn bump(&mut self) {
        self.local.session_version += 1;
    }
}

struct CallTask {
    shared: Shared,
    session: InviteSession,
    input: mpsc::UnboundedSender<CallInput>,
    input_rx: Option<mpsc::UnboundedReceiver<CallInput>>,
    events: mpsc::UnboundedSender<CallEvent>,
    events_rx: Option<mpsc::UnboundedReceiver<CallEvent>>,
    media: MediaPlan,
    source: Option<Box<dyn AudioSource>>,
    sink: Option<Box<dyn AudioSink>>,
    handle: Option<MediaHandle>,
    negotiated: Option<Negotiated>,
    invite_tx: Option<TransactionId>,
    initial_targets: Option<Vec<tincan_sip::resolve::ResolvedTarget>>,
    /// Server transactions of the peer's re-INVITEs waiting for our answer.
    reinvite_tx: HashMap<u32, ServerRequest>,
    started: Instant,
    answered_at: Option<Instant>,
    held: bool,
    peer_held: bool,
    final_status: Option<(u16, String)>,
    last_stats: SessionStats,
    digest: Option<DigestClient>,
    auth_tries: u32,
    uri: String,
    cancel_pending: bool,
    reinvite_purpose: Option<Purpose>,
    /// Every target of the INVITE refused it (ICMP, connection refused).
    unreachable: bool,
    /// The target of the last `calling` event.
    announced: Option<Target>,
    /// We hung up because no RTP came.
    media_timeout: bool,
}

/// Why we sent the re-INVITE in flight.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Hold,
    Resume,
    Codec,
}

impl CallTask {
    /// A call task with nothing happened yet; the caller sets what differs.
    fn new(shared: &Shared, session: InviteSession, media: MediaPlan, uri: String) -> CallTask {
        let (input, input_rx) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        CallTask {
            shared: shared.clone(),
            session,
            input,
            input_rx: Some(input_rx),
            events,
            events_rx: Some(events_rx),
            media,
            source: None,
            sink: None,
            handle: None,
            negotiated: None,
            invite_tx: None,
            initial_targets: None,
            reinvite_tx: HashMap::new(),
            started: Instant::now(),
            answered_at: None,
            held: false,
            peer_held: false,
            final_status: None,
            last_stats: SessionStats::default(),
            digest: None,
            auth_tries: 0,
            uri,
            cancel_pending: false,
            reinvite_purpose: None,
            unreachable: false,
            announced: None,
            media_timeout: false,
        }
    }

    /// The application's ends of the task's channels, and its own input receiver.
    #[allow(clippy::type_complexity)]
    fn channels(
        &mut self,
    ) -> (
        mpsc::UnboundedSender<CallInput>,
        mpsc::UnboundedReceiver<CallInput>,
        mpsc::UnboundedReceiver<CallEvent>,
    ) {
        (
            self.input.clone(),
            self.input_rx.take().expect("channels are taken once"),
            self.events_rx.take().expect("channels are taken once"),
        )
    }

    async fn run(mut self, mut input: mpsc::UnboundedReceiver<CallInput>) {
        self.flush().await;
        loop {
            let timer = self.session.poll_timeout();
            let sleep = async {
                match timer {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = input.recv() => {
                    let Some(msg) = msg else { break };
                    self.on_input(msg).await;
                }
                ev = next_media_event(&mut self.handle) => {
                    match ev {
                        Some(ev) => self.on_media(ev),
                        None => self.handle = None,
                    }
                }
                () = sleep => self.session.handle_timeout(Instant::now()),
            }
            self.flush().await;
            if self.session.state() == SessionState::Terminated {
                break;
            }
        }
        let _ = self
            .shared
            .dispatch
            .send(Dispatch::Unregister(self.session.call_id().to_owned()));
        // Requests that reached the call after it ended are answered, not dropped: the
        // peer's BYE that crossed ours (both hung up at once) would otherwise be retransmitted
        // until its Timer F. From now on the dispatcher answers them itself.
        input.close();
        while let Some(msg) = input.recv().await {
            if let CallInput::Request(req) = msg {
                answer_after_end(req).await;
            }
        }
    }

    async fn on_input(&mut self, msg: CallInput) {
        let now = Instant::now();
        match msg {
            CallInput::Request(req) => self.on_request(now, req).await,
            CallInput::Ack(ack) => self.session.on_ack(now, &ack),
            CallInput::Cancelled => self.session.on_cancelled(),
            CallInput::AckTimeout => self.session.on_ack_timeout(),
            CallInput::Response(resp) => self.on_response(now, &resp),
            CallInput::InviteTx(id) => {
                self.invite_tx = Some(id);
                if std::mem::take(&mut self.cancel_pending) {
                    let _ = self.shared.ctx.sip.cancel(id).await;
                }
            }
            // Once per target: a retry with credentials goes to the same one.
            CallInput::InviteSentTo(target) if self.announced.as_ref() != Some(&target) => {
                let _ = self.events.send(CallEvent::Calling {
                    call_id: self.session.call_id().to_owned(),
                    uri: self.uri.clone(),
                    target: format!("{}:{}", target.transport.as_str(), target.addr),
                });
                self.announced = Some(target);
            }
            CallInput::InviteSentTo(_) => {}
            CallInput::Failure {
                method,
                initial,
                tried,
            } => {
                if !tried.is_empty() {
                    self.warn(format!("{method} failed: {}", tried.join("; ")));
                    if initial && tried.iter().all(|t| t.ends_with("transport error")) {
                        self.unreachable = true;
                    }
                }
                if initial {
                    self.session.on_invite_failure();
                } else {
                    self.session.on_request_failure(&method);
                }
            }
            CallInput::Command(c) => self.on_command(c).await,
            CallInput::Accept { source, sink } => {
                self.source = Some(source);
                self.sink = Some(sink);
                self.accept().await;
            }
        }
    }

    fn on_response(&mut self, now: Instant, resp: &Message) {
        let status = resp.status().unwrap_or(0);
        let cseq = resp.cseq().and_then(Result::ok);
        let initial = cseq
            .as_ref()
            .is_some_and(|c| c.method == Method::Invite && c.seq == self.session.invite_cseq().seq)
            && self.session.is_outgoing();
        if initial && matches!(status, 401 | 407) && self.retry_with_auth(resp) {
            return;
        }
        if initial && status >= 300 {
            self.final_status = Some((status, resp.reason().unwrap_or_default().into_owned()));
        }
        self.session.on_response(now, resp);
    }

    /// Answers a 401/407 to our INVITE with digest credentials (once per challenge).
    fn retry_with_auth(&mut self, resp: &Message) -> bool {
        let Some(digest) = &mut self.digest else {
            return false;
        };
        if self.auth_tries >= 2 {
            return false;
        }
        self.auth_tries += 1;
        let status = resp.status().unwrap_or(0);
        let Some(kind) = ChallengeKind::from_status(status) else {
            return false;
        };
        let values: Vec<&str> = resp
            .header_lines_named(kind.challenge_header())
            .filter_map(Result::ok)
            .collect();
        let invite = self.session.invite();
        let uri = invite.uri_text().unwrap_or("").to_owned();
        let previous: Vec<Credentials> = invite
            .header_lines_named(kind.credentials_header())
            .filter_map(Result::ok)
            .filter_map(|v| Credentials::parse(v).ok())
            .collect();
        let body = invite.body().clone();
        let mut rng = OsRng;
        let Ok(auths) = digest.respond_to_values(
            kind,
            &values,
            &DigestRequest {
                method: "INVITE",
                uri: &uri,
                body: &body,
            },
            &previous,
            &mut rng,
        ) else {
            return false;
        };
        let headers: Vec<(String, String)> = auths
            .iter()
            .map(|a| (a.header_name().to_owned(), a.credentials.to_string()))
            .collect();
        self.session.resend_invite_with(&headers)
    }

    async fn on_request(&mut self, now: Instant, req: ServerRequest) {
        match self.session.on_request(now, &req.request) {
            RequestOutcome::Respond(r) => {
                let _ = req.respond(r).await;
            }
            RequestOutcome::Deferred => {
                let seq = req.request.cseq().and_then(Result::ok).map_or(0, |c| c.seq);
                self.reinvite_tx.insert(seq, req);
            }
            _ => {}
        }
    }

    async fn on_command(&mut self, c: Command) {
        match c {
            Command::Hangup => self.session.hangup(),
            Command::Ring => self.session.ring(None),
            Command::Reject(status) => self.session.reject(status, None),
            Command::Dtmf(digits) => {
                let rfc4733 = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.telephone_event_payload_type.is_some());
                for d in digits.chars() {
                    if rfc4733 && let Some(h) = &self.handle {
                        if let Err(e) = h.send_dtmf(d, Duration::from_millis(120)).await {
                            self.warn(format!("dtmf {d}: {e}"));
                        }
                    } else if let Err(e) =
                        self.session.send_dtmf_info(d, Duration::from_millis(120))
                    {
                        self.warn(format!("dtmf {d}: {e}"));
                    }
                }
            }
            Command::Codec(codec) => {
                self.media.local.codecs.retain(|c| *c != codec);
                self.media.local.codecs.insert(0, codec);
                self.media.bump();
                let offer = Bytes::from(self.media.offer().to_string());
                match self.session.reinvite(Some(offer)) {
                    Ok(()) => self.reinvite_purpose = Some(Purpose::Codec),
                    Err(e) => self.warn(format!("cannot re-INVITE: {e}")),
                }
            }
            Command::Hold | Command::Resume => {
                let hold = matches!(c, Command::Hold);
                self.media.local.direction = if hold {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                self.media.bump();
                let offer = Bytes::from(self.media.offer().to_string());
                match self.session.reinvite(Some(offer)) {
                    Ok(()) => {
                        self.reinvite_purpose =
                            Some(if hold { Purpose::Hold } else { Purpose::Resume })
                    }
                    Err(e) => self.warn(format!("cannot re-INVITE: {e}")),
                }
            }
        }
    }

    fn warn(&self, message: String) {
        let _ = self.events.send(CallEvent::Warning { message });
    }

    /// UAS: answer the initial INVITE.
    async fn accept(&mut self) {
        if self.session.state() != SessionState::Incoming {
            return;
        }
        let offer = self.session.invite().body().clone();
        if offer.is_empty() {
            // Late offer: we offer in the 200, the answer comes in the ACK.
            let body = Bytes::from(self.media.offer().to_string());
            self.session.accept(Some(body));
            return;
        }
        match parse_sdp(&offer).and_then(|o| sdp::answer(&o, &self.media.local)) {
            Ok((answer, negotiated)) => {
                self.session.accept(Some(Bytes::from(answer.to_string())));
                self.start_media(negotiated).await;
            }
            Err(e) => {
                let warning = e
                    .warning()
                    .map(|(code, text)| format!("{code} tincan \"{text}\""));
                self.final_status = Some((e.status_code(), e.to_string()));
                self.session.reject(e.status_code(), warning.as_deref());
            }
        }
    }

    async fn start_media(&mut self, negotiated: Negotiated) {
        if let Some(h) = &self.handle {
            // Already running (early media, or a re-INVITE): follow the new description.
            let codec_changed = self.negotiated.as_ref().is_some_and(|n| {
                n.codec != negotiated.codec
                    || n.payload_type != negotiated.payload_type
                    || n.srtp != negotiated.srtp
                    || n.telephone_event_payload_type != negotiated.telephone_event_payload_type
            });
            if codec_changed {
                let ssrc = OsRng.next_u32();
                let config = self.session_config(&negotiated, ssrc);
                if let Err(e) = h.reconfigure(config).await {
                    self.warn(format!("cannot switch to {}: {e}", negotiated.codec.name()));
                    return;
                }
                let _ = self.events.send(CallEvent::CodecChanged {
                    codec: negotiated.codec.name().to_ascii_lowercase(),
                    srtp: negotiated.srtp.is_some(),
                });
            } else {
                h.set_remote(negotiated.remote_rtp, negotiated.remote_rtcp)
                    .await;
                h.set_direction(negotiated.direction).await;
            }
            self.negotiated = Some(negotiated);
            return;
        }
        let Some(ports) = self.media.ports.take() else {
            return;
        };
        let ssrc = OsRng.next_u32();
        let config = self.session_config(&negotiated, ssrc);
        let source = self
            .source
            .take()
            .unwrap_or_else(|| Box::new(NullSource::new()));
        let sink = self
            .sink
            .take()
            .unwrap_or_else(|| Box::new(NullSink::new()));
        match spawn(ports, config, source, sink) {
            Ok(h) => {
                self.handle = Some(h);
                self.answered_at.get_or_insert_with(Instant::now);
                let _ = self.events.send(CallEvent::Answered {
                    setup_ms: self.started.elapsed().as_millis() as u64,
                    codec: negotiated.codec.name().to_ascii_lowercase(),
                    srtp: negotiated.srtp.is_some(),
                    remote_rtp: negotiated.remote_rtp.to_string(),
                });
                self.negotiated = Some(negotiated);
            }
            Err(e) => {
                self.warn(format!("media failed: {e}"));
                self.session.hangup();
            }
        }
    }

    fn on_media(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::DtmfReceived { digit, .. } => {
                let _ = self.events.send(CallEvent::Dtmf {
                    digit,
                    via: "rfc4733",
                });
            }
            MediaEvent::Stats(s) => {
                self.last_stats = s;
                if let Some(n) = &self.negotiated {
                    let _ = self
                        .events
                        .send(CallEvent::Quality(Quality::of(&s, n.codec)));
                }
            }
            MediaEvent::DeviceError { message } => self.warn(message),
            MediaEvent::Timeout { silent_for } if !self.peer_held && !self.held => {
                self.warn(format!(
                    "no audio from the peer for {:.0} s",
                    silent_for.as_secs_f64()
                ));
                if self.shared.config.rtp_timeout_hangup.is_some()
                    && self.session.state() == SessionState::Confirmed
                {
                    self.media_timeout = true;
                    self.session.hangup();
                }
            }
            _ => {}
        }
    }

    /// The media session's configuration for what was negotiated.
    fn session_config(
        &self,
        negotiated: &Negotiated,
        ssrc: u32,
    ) -> tincan_media::session::SessionConfig {
        let mut config = negotiated.session_config(ssrc, OsRng.next_u64());
        if let Some(t) = self.shared.config.rtp_timeout_hangup {
            config.rtp_timeout = t;
        }
        config
    }

    async fn apply_answer(&mut self, body: &Bytes) {
        match parse_sdp(body).and_then(|a| sdp::apply_answer(&self.media.local, &a)) {
            Ok(n) => self.start_media(n).await,
            Err(e) => {
                self.warn(format!("the answer is unusable: {e}"));
                self.session.hangup();
            }
        }
    }

    /// Drains the session: its outputs to the network, its events to the application.
    async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.session.poll_output() {
                progressed = true;
                self.send(out).await;
            }
            while let Some(ev) = self.session.poll_event() {
                progressed = true;
                self.on_session_event(ev).await;
            }
            if !progressed {
                break;
            }
        }
    }

    async fn on_session_event(&mut self, ev: SessionEvent) {
        match ev {
            SessionEvent::Progress {
                status,
                reason,
                body,
            } => {
                let _ = self.events.send(CallEvent::Progress { status, reason });
                if let Some(b) = body
                    && self.handle.is_none()
                    && !self.session.invite().body().is_empty()
                    && let Ok(n) =
                        parse_sdp(&b).and_then(|a| sdp::apply_answer(&self.media.local, &a))
                {
                    // Early media (183 with SDP).
                    self.start_media(n).await;
                }
            }
            SessionEvent::Answered { body, offer } => match (body, offer) {
                (Some(b), true) => {
                    match parse_sdp(&b).and_then(|o| sdp::answer(&o, &self.media.local)) {
                        Ok((answer, n)) => {
                            self.session
                                .ack_with_answer(Some(Bytes::from(answer.to_string())));
                            self.start_media(n).await;
                        }
                        Err(e) => {
                            self.warn(format!("the 2xx offer is unusable: {e}"));
                            self.session.ack_with_answer(None);
                            self.session.hangup();
                        }
                    }
                }
                (Some(b), false) => self.apply_answer(&b).await,
                (None, _) => {
                    if self.handle.is_none() {
                        self.warn("the answer has no SDP".into());
                        self.session.hangup();
                    }
                }
            },
            SessionEvent::Confirmed { body: Some(b) } => self.apply_answer(&b).await,
            SessionEvent::Reinvite { body } => self.on_reinvite(body).await,
            SessionEvent::ReinviteAccepted { body } => {
                if let Some(b) = body {
                    self.apply_answer(&b).await;
                }
                match self.reinvite_purpose.take() {
                    Some(Purpose::Hold) => {
                        self.held = true;
                        let _ = self.events.send(CallEvent::Hold { by_peer: false });
                    }
                    Some(Purpose::Resume) => {
                        self.held = false;
                        let _ = self.events.send(CallEvent::Resumed { by_peer: false });
                    }
                    _ => {}
                }
            }
            // 491: the session retries after the glare back-off.
            SessionEvent::ReinviteRejected { status } if status != 491 => {
                // Refused: the session stays as it was.
                if self.reinvite_purpose.take().is_some() {
                    self.media.local.direction = if self.held {
                        Direction::SendOnly
                    } else {
                        Direction::SendRecv
                    };
                }
                self.warn(format!("re-INVITE refused with {status}"));
            }
            SessionEvent::ReinviteConfirmed { body: Some(b) } => self.apply_answer(&b).await,
            SessionEvent::Dtmf { digit, .. } => {
                let _ = self.events.send(CallEvent::Dtmf { digit, via: "info" });
            }
            SessionEvent::Ended(reason) => self.end(reason).await,
            _ => {}
        }
    }

    async fn on_reinvite(&mut self, body: Option<Bytes>) {
        let Some(seq) = self.reinvite_tx.keys().max().copied() else {
            return;
        };
        let Some(req) = self.reinvite_tx.remove(&seq) else {
            return;
        };
        self.media.bump();
        let response = match body {
            None => {
                let offer = Bytes::from(self.media.offer().to_string());
                self.session.answer_reinvite(200, Some(offer))
            }
            Some(b) => match parse_sdp(&b).and_then(|o| sdp::answer(&o, &self.media.local)) {
                Ok((answer, n)) => {
                    let was = self.peer_held;
                    self.peer_held = n.remote_on_hold;
                    if was != self.peer_held {
                        let by_peer = true;
                        let _ = self.events.send(if self.peer_held {
                            CallEvent::Hold { by_peer }
                        } else {
                            CallEvent::Resumed { by_peer }
                        });
                    }
                    let r = self
                        .session
                        .answer_reinvite(200, Some(Bytes::from(answer.to_string())));
                    self.start_media(n).await;
                    r
                }
                Err(e) => self.session.answer_reinvite(e.status_code(), None),
            },
        };
        if let Some(r) = response {
            let _ = req.respond(r).await;
        }
    }

    async fn end(&mut self, reason: EndReason) {
        let stats = match self.handle.take() {
            Some(h) => h.stop().await,
            None => self.last_stats,
        };
        let (reason, status, status_text) = match reason {
            EndReason::LocalHangup if self.media_timeout => ("media_timeout", None, None),
            EndReason::LocalHangup => ("local_hangup", None, None),
            EndReason::RemoteHangup => ("remote_hangup", None, None),
            EndReason::Rejected { status, reason } => ("rejected", Some(status), Some(reason)),
            EndReason::Timeout if self.unreachable => ("unreachable", None, None),
            EndReason::Timeout => ("timeout", self.final_status.as_ref().map(|s| s.0), None),
            EndReason::AckTimeout => ("ack_timeout", None, None),
            EndReason::DialogGone { status } => ("dialog_gone", Some(status), None),
            _ => ("ended", None, None),
        };
        let (status, status_text) = match (status, &self.final_status) {
            (None, Some((s, t))) if self.answered_at.is_none() => (Some(*s), Some(t.clone())),
            (s, _) => (s, status_text),
        };
        let codec = self.negotiated.as_ref().map(|n| n.codec);
        let _ = self.events.send(CallEvent::Ended {
            reason: reason.to_owned(),
            status,
            status_text,
            answered: self.answered_at.is_some(),
            duration_s: self
                .answered_at
                .map_or(0.0, |t| (t.elapsed().as_secs_f64() * 10.0).round() / 10.0),
            codec: codec.map(|c| c.name().to_ascii_lowercase()),
            quality: codec.map(|c| Quality::of(&stats, c)).unwrap_or_default(),
        });
    }

    async fn send(&mut self, out: Output) {
        let sip = self.shared.ctx.sip.clone();
        match out {
            Output::Request { request, next_hop } => {
                let initial = request.method() == Some(&Method::Invite)
                    && self.session.is_outgoing()
                    && self.session.state() != SessionState::Confirmed
                    && self.session.state() != SessionState::Terminated;
                let targets = if initial {
                    self.initial_targets.clone()
                } else {
                    None
                };
                let shared = self.shared.clone();
                let input = self.input.clone();
                let pending = PendingRequest::new(&shared);
                tokio::spawn(send_request(
                    shared, request, next_hop, targets, initial, input, pending,
                ));
            }
            Output::Ack { ack, next_hop } => {
                let shared = self.shared.clone();
                let pending = PendingRequest::new(&shared);
                tokio::spawn(async move {
                    if let Ok(targets) = resolve_ordered(&shared, &next_hop.to_string()).await {
                        let _ = sip.send_ack(ack, send_target(&targets[0])).await;
                    }
                    drop(pending);
                });
            }
            Output::Cancel => {
                match self.invite_tx {
                    Some(id) => {
                        let _ = sip.cancel(id).await;
                    }
                    // The INVITE is still being sent: cancel when its transaction is known.
                    None => self.cancel_pending = true,
                }
            }
            Output::Respond(response) => {
                if let Some(id) = self.invite_tx {
                    let _ = sip.respond(id, response).await;
                }
            }
            _ => {}
        }
    }
}

async fn next_media_event(handle: &mut Option<MediaHandle>) -> Option<MediaEvent> {
    match handle {
        Some(h) => h.next_event().await,
        None => std::future::pending().await,
    }
}

fn parse_sdp(body: &Bytes) -> Result<SessionDescription, sdp::SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| sdp::SdpError::Malformed {
        line: 0,
        reason: "not utf-8",
    })?;
    SessionDescription::parse(text)
}

/// Sends one request of a call, trying the resolved targets in order, and feeds the
/// responses back to the call.
async fn send_request(
    shared: Shared,
    request: Message,
    next_hop: Uri<'static>,
    targets: Option<Vec<tincan_sip::resolve::ResolvedTarget>>,
    initial: bool,
    input: mpsc::UnboundedSender<CallInput>,
    pending: PendingRequest,
) {
    let mut pending = Some(pending);
    let method = request.method().cloned().unwrap_or(Method::Options);
    let targets = match targets {
        Some(t) => t,
        None => match resolve_ordered(&shared, &next_hop.to_string()).await {
            Ok(t) => t,
            Err(e) => {
                let tried = vec![e.to_string()];
                let _ = input.send(CallInput::Failure {
                    method,
                    initial,
                    tried,
                });
                return;
            }
        },
    };
    let mut tried = Vec::new();
    let budget = shared.ctx.policy.budget(true);
    let count = targets.len();
    for (i, t) in targets.iter().enumerate() {
        let last = i + 1 == count;
        let target = send_target(t);
        let key = TargetKey::of(t);
        let name = format!("{}:{}", t.transport.as_str(), t.addr);
        let mut tx = match shared
            .ctx
            .sip
            .request(request.clone(), target.clone())
            .await
        {
            Ok(tx) => tx,
            Err(e) => {
                tried.push(format!("{name}: {e}"));
                continue;
            }
        };
        // The driver has it now: its shutdown gives it the grace period.
        drop(pending.take());
        if initial {
            let _ = input.send(CallInput::InviteTx(tx.id));
            let _ = input.send(CallInput::InviteSentTo(target.clone()));
        }
        // The first response must come within the budget, or the next target is tried. A
        // live server answers an INVITE with 100 Trying within 200 ms (RFC 3261 §17.2.1), so
        // an INVITE with no answer at all from the last target fails after the budget too,
        // instead of Timer B's 32 s; other requests get the whole transaction time there.
        let first = if last && !initial {
            Ok(tx.next().await)
        } else {
            tokio::time::timeout(budget, tx.next()).await
        };
        let mut next = match first {
            Ok(r) => r,
            Err(_) => {
                mark(&shared, key, FailureCause::Timeout);
                tried.push(format!("{name}: no response in {} ms", budget.as_millis()));
                continue;
            }
        };
        loop {
            match next {
                Some(Ok(resp)) => {
                    let status = resp.status().unwrap_or(0);
                    if status == 503 && !last {
                        mark(
                            &shared,
                            key,
                            FailureCause::ServiceUnavailable { retry_after: None },
                        );
                        break;
                    }
                    mark_ok(&shared, key);
                    let _ = input.send(CallInput::Response(resp));
                }
                Some(Err(e)) => {
                    tried.push(format!("{name}: {e}"));
                    if !last && !matches!(e, TxError::Stopped) {
                        mark(&shared, key, FailureCause::Timeout);
                        break;
                    }
                    let _ = input.send(CallInput::Failure {
                        method,
                        initial,
                        tried,
                    });
                    return;
                }
                None => return,
            }
            next = tx.next().await;
            if next.is_none() {
                return;
            }
        }
    }
    let _ = input.send(CallInput::Failure {
        method,
        initial,
        tried,
    });
}

fn mark(shared: &Shared, key: TargetKey, cause: FailureCause) {
    lock(&shared.ctx.health).mark_failed(Instant::now(), key, cause);
}

fn mark_ok(shared: &Shared, key: TargetKey) {
    lock(&shared.ctx.health).mark_ok(key);
}

/// Answers a request for a call that has ended: a BYE (one that crossed ours, both sides
/// hanging up at once) with 200, since the dialog it ends is gone either way; anything else
/// with 481 (RFC 3261 §12.2.2).
async fn answer_after_end(req: ServerRequest) {
    let status = if req.request.method() == Some(&Method::Bye) {
        200
    } else {
        481
    };
    let _ = req.respond(response_to(&req.request, status, None)).await;
}

/// Routes incoming requests to their calls; new INVITEs become [`IncomingCall`]s.
async fn dispatch_loop(
    shared: Shared,
    mut incoming: Incoming,
    mut commands: mpsc::UnboundedReceiver<Dispatch>,
    new_calls: mpsc::UnboundedSender<IncomingCall>,
) {
    let mut calls: HashMap<String, mpsc::UnboundedSender<CallInput>> = HashMap::new();
    // INVITE transactions of incoming calls, for CANCEL and ACK timeouts.
    let mut invites: HashMap<TransactionId, String> = HashMap::new();
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Dispatch::Register(id, tx)) => { calls.insert(id, tx); }
                Some(Dispatch::Unregister(id)) => {
                    calls.remove(&id);
                    invites.retain(|_, c| *c != id);
                }
                None => return,
            },
            ev = incoming.next() => {
                let Some(ev) = ev else { return };
                match ev {
                    IncomingEvent::Request(req) => {
                        let call_id = req
                            .request
                            .call_id()
                            .and_then(Result::ok)
                            .map(|c| c.as_str().to_owned())
                            .unwrap_or_default();
                        if let Some(call) = calls.get(&call_id) {
                            let transaction = req.transaction;
                            let invite = req.request.method() == Some(&Method::Invite);
                            match call.send(CallInput::Request(req)) {
                                Ok(()) => {
                                    if invite {
                                        // A re-INVITE: its ACK timeout (§14.2) ends this call too.
                                        invites.insert(transaction, call_id);
                                    }
                                }
                                Err(mpsc::error::SendError(input)) => {
                                    // The call has just ended (its Unregister is on its way).
                                    calls.remove(&call_id);
                                    if let CallInput::Request(req) = input {
                                        answer_after_end(req).await;
                                    }
                                }
                            }
                            continue;
                        }
                        let method = req.request.method().cloned();
                        let to_tag = req.request.to().and_then(Result::ok).and_then(|t| t.tag().map(str::to_owned));
                        match (method, to_tag) {
                            (Some(Method::Invite), None) => {
                                if let Some(call) = new_incoming(&shared, req, &mut invites).await {
                                    calls.insert(call.call.call_id.clone(), call.call.input.clone());
                                    if new_calls.send(call).is_err() {
                                        // Nobody takes calls: the call task is dropped.
                                    }
                                }
                            }
                            (Some(Method::Options), None) => {
                                let mut r = response_to(&req.request, 200, None);
                                r.push_header(HeaderName::Allow, tincan_sip::dialog::invite::ALLOW);
                                r.push_header(HeaderName::Accept, "application/sdp");
                                let _ = req.respond(r).await;
                            }
                            (Some(method), _)
                                if !tincan_sip::dialog::invite::METHODS.contains(&method) =>
                            {
                                // A method we do not implement (the endpoint answers those
                                // unless its method list was widened): 501 (§21.5.2), not 481.
                                let status = tincan_sip::endpoint::unhandled_method_status(&method);
                                let mut r = response_to(&req.request, status, None);
                                r.push_header(HeaderName::Allow, tincan_sip::dialog::invite::ALLOW);
                                let _ = req.respond(r).await;
                            }
                            _ => {
                                // §12.2.2: an in-dialog request (BYE, INFO, a re-INVITE...)
                                // for a dialog we do not have.
                                let _ = req.respond(response_to(&req.request, 481, None)).await;
                            }
                        }
                    }
                    IncomingEvent::Ack { request, .. } => {
                        let call_id = request.call_id().and_then(Result::ok).map(|c| c.as_str().to_owned()).unwrap_or_default();
                        if let Some(call) = calls.get(&call_id) {
                            let _ = call.send(CallInput::Ack(request));
                        }
                    }
                    IncomingEvent::Cancelled(tx) => {
                        if let Some(call) = invites.get(&tx).and_then(|id| calls.get(id)) {
                            let _ = call.send(CallInput::Cancelled);
                        }
                    }
                    IncomingEvent::AckTimeout(tx) => {
                        if let Some(call) = invites.get(&tx).and_then(|id| calls.get(id)) {
                            let _ = call.send(CallInput::AckTimeout);
                        }
                    }
                    IncomingEvent::StrayResponse { response, .. } => {
                        let call_id = response.call_id().and_then(Result::ok).map(|c| c.as_str().to_owned()).unwrap_or_default();
                        if let Some(call) = calls.get(&call_id) {
                            let _ = call.send(CallInput::Response(response));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn new_incoming(
    shared: &Shared,
    req: ServerRequest,
    invites: &mut HashMap<TransactionId, String>,
) -> Option<IncomingCall> {
    let config = &shared.config;
    let local = req.source.local;
    let local_ip = if local.ip().is_unspecified() {
        shared
            .ctx
            .sip
            .local_address_for(req.source.transport, req.source.addr)
            .map_or(local.ip(), |a| a.ip())
    } else {
        local.ip()
    };
    let local = SocketAddr::new(local_ip, local.port());
    let local_tag = shared.ctx.sip.token(10).await.ok()?;
    let seed = OsRng.next_u64();
    let call_id = req
        .request
        .call_id()
        .and_then(Result::ok)
        .map(|c| c.as_str().to_owned())?;
    let invite_config = InviteConfig {
        local_uri: req.request.to().and_then(Result::ok)?.0.into_owned(),
        local_tag,
        contact: contact(&config.user, local, req.source.transport),
        call_id: call_id.clone(),
        cseq: 1,
        seed,
        extra_headers: Vec::new(),
    };
    let session = match InviteSession::incoming(invite_config, &req.request) {
        Ok(s) => s,
        Err(response) => {
            let _ = req.respond(response).await;
            return None;
        }
    };
    let media = match MediaPlan::new(config, local_ip, None, None, seed).await {
        Ok(m) => m,
        Err(_) => {
            let _ = req.respond(response_to(&req.request, 500, None)).await;
            return None;
        }
    };
    invites.insert(req.transaction, call_id.clone());
    let from = req
        .request
        .header(HeaderName::From)
        .unwrap_or("")
        .to_owned();
    let to = req.request.header(HeaderName::To).unwrap_or("").to_owned();
    let uri = req.request.uri_text().unwrap_or("").to_owned();
    let mut task = CallTask::new(shared, session, media, uri);
    task.invite_tx = Some(req.transaction);
    let (input, input_rx, events) = task.channels();
    tokio::spawn(task.run(input_rx));
    Some(IncomingCall {
        from,
        to,
        call: Call {
            call_id,
            input,
            events,
        },
    })
}
