//! The tokio driver: real UDP sockets and a real-time audio pump around a [`MediaSession`].
//!
//! One task, one `select!` loop over the RTP socket, the RTCP socket (without rtcp-mux), a
//! 20 ms tick that captures one frame from the [`AudioSource`] into the session and plays one
//! frame from the session into the [`AudioSink`] (the devices of [`crate::device`]), the session's own timer, and commands from
//! the [`MediaHandle`]. The loop ends on [`MediaHandle::stop`] (or when every handle is
//! dropped) and returns the final statistics.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tincan_media::codec::CodecKind;
//! use tincan_media::device::null::{NullSink, NullSource};
//! use tincan_media::driver::{MediaPorts, PortRange, spawn};
//! use tincan_media::session::SessionConfig;
//!
//! let ports = MediaPorts::bind("127.0.0.1".parse()?, PortRange::Any, false).await?;
//! println!("put m=audio {} in the SDP", ports.rtp_addr().port());
//! let config = SessionConfig::new(0x1234, CodecKind::Pcmu, 0, "127.0.0.1:40000".parse()?);
//! let mut call = spawn(ports, config, Box::new(NullSource::new()), Box::new(NullSink::new()))?;
//! call.send_dtmf('5', std::time::Duration::from_millis(100)).await?;
//! let stats = call.stop().await;
//! println!("{} packets sent", stats.packets_sent);
//! # Ok(()) }
//! ```

// The driver is the I/O edge: it reads the clock and hands `now` to the sans-IO core.
#![allow(clippy::disallowed_methods)]

pub mod player;

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::codec::FRAME_SAMPLES;
use crate::device::{AudioSink, AudioSource, SourceStatus};
use crate::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
use crate::ice::{self, Agent};
use crate::rtp::PortKind;
use crate::session::{
    Direction, MediaEvent, MediaSession, SessionConfig, SessionError, SessionStats,
};

/// The pipeline's frame period: one capture and one playout per tick.
pub const FRAME_PERIOD: Duration = Duration::from_millis(20);

/// Largest datagram we read (an RTP packet over Ethernet fits in 1500).
const MAX_DATAGRAM: usize = 2048;

/// Which local ports to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRange {
    /// Let the operating system choose (still an even RTP port with the next one free when
    /// rtcp-mux is off).
    Any,
    /// An inclusive range, e.g. 16384-32767; the RTP port is even (RFC 3550 §11).
    Range {
        /// Lowest port.
        first: u16,
        /// Highest port.
        last: u16,
    },
}

/// The bound RTP socket and, without rtcp-mux, the RTCP socket on the next port.
#[derive(Debug)]
pub struct MediaPorts {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
}

impl MediaPorts {
    /// Binds an even RTP port (and RTP + 1 for RTCP unless `rtcp_mux`) on `ip`.
    ///
    /// # Errors
    ///
    /// The last bind error when no pair in the range could be bound.
    pub async fn bind(ip: IpAddr, range: PortRange, rtcp_mux: bool) -> io::Result<Self> {
        let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no free port pair");
        match range {
            PortRange::Any => {
                for _ in 0..64 {
                    let rtp = match UdpSocket::bind(SocketAddr::new(ip, 0)).await {
                        Ok(s) => s,
                        Err(e) => {
                            last_error = e;
                            continue;
                        }
                    };
                    let port = rtp.local_addr()?.port();
                    if port % 2 != 0 || port == u16::MAX {
                        continue;
                    }
                    match Self::with_rtcp(rtp, ip, port, rtcp_mux).await {
                        Ok(p) => return Ok(p),
                        Err(e) => last_error = e,
                    }
                }
            }
            PortRange::Range { first, last } => {
                let first = first + first % 2;
                if first >= last {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "port range holds no even port pair",
                    ));
                }
                let pairs = u32::from((last - first) / 2 + 1);
                // Start at a random pair (the operating system's generator) so two calls don't
                // race for the same one. Not key material: if the OS refuses, start at the first.
                let seed = getrandom::u32().unwrap_or(0);
                for i in 0..pairs {
                    let port = first + (((seed.wrapping_add(i)) % pairs) * 2) as u16;
                    if !rtcp_mux && port >= last {
                        continue;
                    }
                    let rtp = match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                        Ok(s) => s,
                        Err(e) => {
                            last_error = e;
                            continue;
                        }
                    };
                    match Self::with_rtcp(rtp, ip, port, rtcp_mux).await {
                        Ok(p) => return Ok(p),
                        Err(e) => last_error = e,
                    }
                }
            }
        }
        Err(last_error)
    }

    async fn with_rtcp(rtp: UdpSocket, ip: IpAddr, port: u16, rtcp_mux: bool) -> io::Result<Self> {
        let rtcp = if rtcp_mux {
            None
        } else {
            Some(UdpSocket::bind(SocketAddr::new(ip, port + 1)).await?)
        };
        Ok(Self { rtp, rtcp })
    }

    /// The RTP socket's address (for SDP `m=` and `c=`).
    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp
            .local_addr()
            .expect("a bound udp socket has a local address")
    }

    /// The RTP socket itself, before the session takes it: for a STUN Binding request from
    /// the RTP port (the public address behind a NAT, for the SDP), say.
    pub fn rtp_socket(&self) -> &UdpSocket {
        &self.rtp
    }

    /// The RTCP socket's address, without rtcp-mux.
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        self.rtcp.as_ref().map(|s| {
            s.local_addr()
                .expect("a bound udp socket has a local address")
        })
    }
}

/// Commands from the handle to the driver task.
#[derive(Debug)]
enum Command {
    SetRemote(SocketAddr, Option<SocketAddr>),
    Dtmf(char, Duration, oneshot::Sender<Result<(), SessionError>>),
    Direction(Direction),
    Mute(bool),
    Processing(ProcessingConfig),
    Reconfigure(
        Box<SessionConfig>,
        oneshot::Sender<Result<(), SessionError>>,
    ),
    Stop(oneshot::Sender<()>),
    Devices(SwapDevices),
}

/// New devices for a running session, and where the old ones go.
struct SwapDevices {
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    reply: oneshot::Sender<(Box<dyn AudioSource>, Box<dyn AudioSink>)>,
}

impl std::fmt::Debug for SwapDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SwapDevices")
    }
}

/// Controls a running media session.
#[derive(Debug)]
pub struct MediaHandle {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<MediaEvent>,
    task: Option<JoinHandle<SessionStats>>,
    rtp_addr: SocketAddr,
    rtcp_addr: Option<SocketAddr>,
}

impl MediaHandle {
    /// Our RTP address.
    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp_addr
    }

    /// Gives the session new audio devices from its next 20 ms tick on (a conference's
    /// adapters, see [`crate::conference`], or the call's own devices again) and returns the
    /// ones it had; `None` once the session has stopped (the new devices are then dropped).
    pub async fn swap_devices(
        &self,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Option<(Box<dyn AudioSource>, Box<dyn AudioSink>)> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Devices(SwapDevices {
                source,
                sink,
                reply,
            }))
            .ok()?;
        rx.await.ok()
    }

    /// Our RTCP address (without rtcp-mux).
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        self.rtcp_addr
    }

    /// Points the session at new remote addresses (re-INVITE).
    pub async fn set_remote(&self, rtp: SocketAddr, rtcp: Option<SocketAddr>) {
        let _ = self.commands.send(Command::SetRemote(rtp, rtcp));
    }

    /// Sends a DTMF key (RFC 4733) for `duration`; keys queue up behind each other.
    ///
    /// # Errors
    ///
    /// [`SessionError::Dtmf`] if `digit` is not a DTMF key, no telephone-event payload type
    /// was negotiated, or the session has stopped.
    pub async fn send_dtmf(&self, digit: char, duration: Duration) -> Result<(), SessionError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || SessionError::Dtmf("media session has stopped".into());
        self.commands
            .send(Command::Dtmf(digit, duration, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Changes the direction (hold/resume).
    pub async fn set_direction(&self, direction: Direction) {
        let _ = self.commands.send(Command::Direction(direction));
    }

    /// Mutes or unmutes the microphone ([`MediaSession::set_muted`]: silence is sent in its
    /// place, RTP keeps flowing). It lasts across hold, resume and
    /// [`reconfigure`](Self::reconfigure).
    pub async fn set_muted(&self, muted: bool) {
        let _ = self.commands.send(Command::Mute(muted));
    }

    /// Switches capture processing (echo cancellation, noise suppression, gain control, see
    /// [`crate::dsp`]) from the next 20 ms tick on. It lasts across hold, resume and
    /// [`reconfigure`](Self::reconfigure) (the new configuration's
    /// [`SessionConfig::processing`] replaces it).
    pub async fn set_processing(&self, processing: ProcessingConfig) {
        let _ = self.commands.send(Command::Processing(processing));
    }

    /// Switches to a new negotiated configuration (a re-INVITE changed the codec, payload
    /// types or keys) on the same ports and devices. The stream restarts with a new SSRC, as
    /// RFC 3550 allows; the statistics start again; a muted microphone stays muted.
    ///
    /// # Errors
    ///
    /// [`SessionError`] if the new session cannot be created (the old one keeps running).
    pub async fn reconfigure(&self, config: SessionConfig) -> Result<(), SessionError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || SessionError::Dtmf("media session has stopped".into());
        self.commands
            .send(Command::Reconfigure(Box::new(config), tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The next event (DTMF, SSRC change, latching, stats every second, levels 5 times a second, timeout, BYE);
    /// `None` once the session has stopped.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        self.events.recv().await
    }

    /// Takes the event stream out of the handle, for a driver that forwards the events of
    /// many sessions into one place; [`next_event`](Self::next_event) then returns `None`.
    pub fn take_events(&mut self) -> mpsc::Receiver<MediaEvent> {
        let (_, closed) = mpsc::channel(1);
        std::mem::replace(&mut self.events, closed)
    }

    /// An event if one is waiting.
    pub fn try_event(&mut self) -> Option<MediaEvent> {
        self.events.try_recv().ok()
    }

    /// Stops the session (sends RTCP BYE) and returns its final statistics.
    pub async fn stop(mut self) -> SessionStats {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => SessionStats::default(),
        }
    }
}

/// Starts the driver task on the current tokio runtime.
///
/// The audio devices exchange 48 kHz frames ([`crate::SAMPLE_RATE`]): the driver runs the
/// session at that rate whatever [`SessionConfig::sample_rate`] says (the codec settings,
/// [`SessionConfig::opus`], are kept). Other PCM rates are for callers that drive
/// [`MediaSession`] themselves, such as a 16 kHz mixer.
///
/// # Errors
///
/// [`SessionError`] if the session cannot be created (codec, SRTP keys).
pub fn spawn(
    ports: MediaPorts,
    config: SessionConfig,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
) -> Result<MediaHandle, SessionError> {
    spawn_inner(ports, config, source, sink, None)
}

/// [`spawn`] with an ICE agent (RFC 8445) on the RTP socket (use rtcp-mux: the agent runs one
/// component). The agent's host candidate must be [`MediaPorts::rtp_addr`]; give it the
/// remote description ([`Agent::set_remote`]) before or after. STUN on the RTP socket goes to
/// the agent, everything else to the session; the agent's datagrams leave from the RTP socket;
/// its events arrive as [`MediaEvent::Ice`]. When a pair is selected the session sends to its
/// remote address ([`MediaSession::set_remote`]).
///
/// # Errors
///
/// [`SessionError`] if the session cannot be created (codec, SRTP keys).
pub fn spawn_with_ice(
    ports: MediaPorts,
    config: SessionConfig,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    agent: Agent,
) -> Result<MediaHandle, SessionError> {
    spawn_inner(ports, config, source, sink, Some(agent))
}

fn spawn_inner(
    ports: MediaPorts,
    mut config: SessionConfig,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    agent: Option<Agent>,
) -> Result<MediaHandle, SessionError> {
    let rtp_addr = ports.rtp_addr();
    let rtcp_addr = ports.rtcp_addr();
    if config.ntp_at_start == 0 {
        config.ntp_at_start = ntp_now();
    }
    config.sample_rate = crate::SAMPLE_RATE;
    let processing = Processing::new(config.processing);
    let session = MediaSession::new(config, Instant::now())?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
    let devices = Devices {
        source,
        sink,
        processing,
    };
    let task = tokio::spawn(run(session, agent, ports, devices, command_rx, event_tx));
    Ok(MediaHandle {
        commands,
        events,
        task: Some(task),
        rtp_addr,
        rtcp_addr,
    })
}

/// The wall clock as a 64-bit NTP timestamp (RFC 3550 §4).
fn ntp_now() -> u64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::rtcp::ntp_add(crate::rtcp::NTP_UNIX_OFFSET_SECS << 32, since_unix)
}

async fn recv_opt(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The capture chain of a running session: built on first use (its buffers are allocated
/// once, when a stage is first switched on), at 48 kHz whatever the codec (the 16 kHz chain
/// costs more, docs/benchmarks-media.md).
struct Processing {
    config: ProcessingConfig,
    chain: Option<CaptureProcessor>,
}

impl Processing {
    fn new(config: ProcessingConfig) -> Processing {
        let mut p = Processing {
            config,
            chain: None,
        };
        p.set(config);
        p
    }

    fn set(&mut self, config: ProcessingConfig) {
        self.config = config;
        match &mut self.chain {
            Some(chain) => chain.set_config(config),
            None if config.any() => {
                self.chain = Some(CaptureProcessor::new(config, ProcessingRate::Full));
            }
            None => {}
        }
    }

    /// What the loudspeaker plays this tick: the echo canceller's reference.
    fn played(&mut self, frame: &[i16]) {
        if let Some(chain) = &mut self.chain {
            chain.analyze_render(frame);
        }
    }

    /// What the microphone captured this tick, processed in place.
    fn captured(&mut self, frame: &mut [i16]) {
        if let Some(chain) = &mut self.chain {
            chain.process_capture(frame);
        }
    }
}

/// The session's audio devices and the capture chain between the microphone and the
/// encoder.
struct Devices {
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    processing: Processing,
}

async fn run(
    mut session: MediaSession,
    mut agent: Option<Agent>,
    ports: MediaPorts,
    devices: Devices,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MediaEvent>,
) -> SessionStats {
    let Devices {
        mut source,
        mut sink,
        mut processing,
    } = devices;
    let mut events = EventQueue {
        sender: events,
        held: VecDeque::new(),
    };
    let mut tick = tokio::time::interval(FRAME_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut rtp_buf = vec![0u8; MAX_DATAGRAM];
    let mut rtcp_buf = vec![0u8; MAX_DATAGRAM];
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut source_live = true;
    let (mut last_source_error, mut last_sink_error) = (None, None);
    let mut stopped: Option<oneshot::Sender<()>> = None;
    let rtp_addr = ports.rtp_addr();
    loop {
        let wake = session
            .poll_timeout()
            .into_iter()
            .chain(agent.as_ref().and_then(Agent::poll_timeout))
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = ports.rtp.recv_from(&mut rtp_buf) => {
                if let Ok((n, from)) = r {
                    let now = Instant::now();
                    let stun = agent
                        .as_mut()
                        .is_some_and(|a| a.handle_packet(now, rtp_addr, from, &rtp_buf[..n]));
                    if !stun {
                        session.handle_packet(now, from, PortKind::Rtp, &rtp_buf[..n]);
                    }
                }
            }
            r = recv_opt(ports.rtcp.as_ref(), &mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    session.handle_packet(Instant::now(), from, PortKind::Rtcp, &rtcp_buf[..n]);
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if source_live {
                    match source.read_frame(&mut frame) {
                        Ok(SourceStatus::Audio | SourceStatus::Underrun) => {
                            processing.captured(&mut frame);
                            // Our frame is FRAME_SAMPLES long: the codec cannot refuse it.
                            let _ = session.send_frame(now, &frame);
                        }
                        Ok(SourceStatus::Ended) => source_live = false,
                        Err(e) => {
                            // The device reopens itself on the next calls; send silence.
                            device_error(&mut events, &mut last_source_error, e.to_string());
                            frame.fill(0);
                            let _ = session.send_frame(now, &frame);
                        }
                    }
                }
                let out = session.playout(now);
                if let Err(e) = sink.write_frame(&out) {
                    device_error(&mut events, &mut last_sink_error, e.to_string());
                }
                // The echo canceller's reference. Its echo reaches the microphone a device
                // latency later (at least a frame), so after this tick's capture is in time.
                processing.played(&out);
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if let Some(agent) = agent.as_mut().filter(|a| a.poll_timeout().is_some_and(|t| t <= now)) {
                    agent.handle_timeout(now);
                }
                if session.poll_timeout().is_none_or(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
            cmd = commands.recv() => {
                let now = Instant::now();
                match cmd {
                    Some(Command::SetRemote(rtp, rtcp)) => session.set_remote(rtp, rtcp),
                    Some(Command::Dtmf(digit, duration, reply)) => {
                        let _ = reply.send(session.send_dtmf(now, digit, duration));
                    }
                    Some(Command::Direction(d)) => session.set_direction(d),
                    Some(Command::Mute(muted)) => session.set_muted(muted),
                    Some(Command::Processing(config)) => processing.set(config),
                    Some(Command::Reconfigure(mut config, reply)) => {
                        if config.ntp_at_start == 0 {
                            config.ntp_at_start = ntp_now();
                        }
                        // The devices' rate, as in `spawn`.
                        config.sample_rate = crate::SAMPLE_RATE;
                        processing.set(config.processing);
                        let result = MediaSession::new(*config, now).map(|mut next| {
                            next.set_muted(session.is_muted());
                            // Say goodbye on the old stream (RTCP BYE), then switch.
                            session.stop(now);
                            while let Some(t) = session.poll_transmit() {
                                let socket = match (t.kind, ports.rtcp.as_ref()) {
                                    (PortKind::Rtcp, Some(rtcp)) => rtcp,
                                    _ => &ports.rtp,
                                };
                                let _ = socket.try_send_to(&t.bytes, t.to);
                            }
                            std::mem::swap(&mut session, &mut next);
                        });
                        let _ = reply.send(result);
                    }
                    Some(Command::Devices(swap)) => {
                        let old_source = std::mem::replace(&mut source, swap.source);
                        let old_sink = std::mem::replace(&mut sink, swap.sink);
                        source_live = true;
                        let _ = swap.reply.send((old_source, old_sink));
                    }
                    Some(Command::Stop(done)) => {
                        session.stop(now);
                        stopped = Some(done);
                    }
                    None => {
                        session.stop(now);
                        stopped = Some(oneshot::channel().0);
                    }
                }
            }
        }
        while let Some(t) = session.poll_transmit() {
            let socket = match (t.kind, ports.rtcp.as_ref()) {
                (PortKind::Rtcp, Some(rtcp)) => rtcp,
                _ => &ports.rtp,
            };
            // UDP send errors (ICMP unreachable from a previous send, full buffers) are not
            // fatal for media: the packet is lost like any other.
            let _ = socket.send_to(&t.bytes, t.to).await;
        }
        if let Some(agent) = agent.as_mut() {
            while let Some(t) = agent.poll_transmit() {
                let _ = ports.rtp.send_to(&t.payload, t.destination).await;
            }
            while let Some(e) = agent.poll_event() {
                if let ice::Event::Selected { remote, .. } = e {
                    session.set_remote(remote, None);
                }
                events.send(MediaEvent::Ice(e));
            }
        }
        events.flush();
        while let Some(e) = session.poll_event() {
            events.send(e);
        }
        if let Some(done) = stopped.take() {
            if let Err(e) = sink.finish() {
                events.send(MediaEvent::DeviceError {
                    message: e.to_string(),
                });
            }
            let stats = session.stats();
            let _ = done.send(());
            return stats;
        }
    }
}

/// Reports a device error once (until a different one happens), not every 20 ms.
fn device_error(events: &mut EventQueue, last: &mut Option<String>, message: String) {
    if last.as_deref() != Some(message.as_str()) {
        *last = Some(message.clone());
        events.send(MediaEvent::DeviceError { message });
    }
}

/// How many events a session's task queues for its owner ([`MediaHandle::next_event`]) before
/// it drops the ones that can be lost: a peer flooding DTMF or SSRC changes must not grow the
/// queue of an owner that reads slowly.
pub const EVENT_QUEUE: usize = 256;

/// The task's side of the event queue: bounded, never waited on (the task keeps the audio
/// going). When the queue is full, events that only inform (DTMF, SSRC changes, figures,
/// device errors) are dropped; those the call depends on (a timeout, the peer's RTCP BYE, a
/// latch) are held here, a handful at most, and sent first when there is room again.
struct EventQueue {
    sender: mpsc::Sender<MediaEvent>,
    held: VecDeque<MediaEvent>,
}

impl EventQueue {
    fn send(&mut self, event: MediaEvent) {
        if !self.held.is_empty() {
            self.flush();
        }
        if !self.held.is_empty() {
            if must_arrive(&event) {
                self.held.push_back(event);
            }
            return;
        }
        match self.sender.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                if must_arrive(&event) {
                    self.held.push_back(event);
                }
            }
        }
    }

    /// Sends the held events while there is room.
    fn flush(&mut self) {
        while let Some(event) = self.held.pop_front() {
            match self.sender.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => self.held.clear(),
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.held.push_front(event);
                    return;
                }
            }
        }
    }
}

/// Whether losing `event` would change the call: held when the queue is full, never dropped.
fn must_arrive(event: &MediaEvent) -> bool {
    matches!(
        event,
        MediaEvent::Timeout { .. }
            | MediaEvent::Ice(_)
            | MediaEvent::RemoteBye { .. }
            | MediaEvent::RemoteLatched { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dtmf() -> MediaEvent {
        MediaEvent::DtmfReceived {
            digit: '5',
            duration: Duration::from_millis(100),
        }
    }

    /// A peer flooding DTMF while the owner reads nothing: the queue stays at its bound, and
    /// the timeout that ends the call still arrives once the owner reads again.
    #[test]
    fn a_flood_is_bounded_and_a_timeout_is_never_lost() {
        let (sender, mut rx) = mpsc::channel(EVENT_QUEUE);
        let mut q = EventQueue {
            sender,
            held: VecDeque::new(),
        };
        for _ in 0..EVENT_QUEUE * 10 {
            q.send(dtmf());
        }
        q.send(MediaEvent::Timeout {
            silent_for: Duration::from_secs(30),
            hold_timeout: false,
        });
        for _ in 0..EVENT_QUEUE * 10 {
            q.send(dtmf());
        }
        assert_eq!(rx.len(), EVENT_QUEUE);
        assert_eq!(q.held.len(), 1, "only the timeout is held");
        let mut seen = 0;
        while let Ok(e) = rx.try_recv() {
            assert!(matches!(e, MediaEvent::DtmfReceived { .. }));
            seen += 1;
        }
        assert_eq!(seen, EVENT_QUEUE);
        q.flush();
        assert!(matches!(rx.try_recv(), Ok(MediaEvent::Timeout { .. })));
    }
}
