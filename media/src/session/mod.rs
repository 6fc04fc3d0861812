//! The media session: one audio stream's RTP/RTCP/SRTP, encoder, playout buffer, decoder and
//! statistics joined into one sans-IO state machine.
//!
//! Inputs: [`MediaSession::handle_packet`] (a datagram and where it came from),
//! [`MediaSession::send_frame`] (20 ms of captured PCM), [`MediaSession::send_dtmf`],
//! [`MediaSession::handle_timeout`]. Outputs: [`MediaSession::poll_transmit`] (datagrams to
//! send), [`MediaSession::playout`] (20 ms of PCM, pulled by the playout clock),
//! [`MediaSession::poll_timeout`] and [`MediaSession::poll_event`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_media::codec::{CodecKind, FRAME_SAMPLES};
//! use tincan_media::session::{MediaSession, SessionConfig};
//!
//! let now = Instant::now();
//! let a_addr = "127.0.0.1:4000".parse().unwrap();
//! let b_addr = "127.0.0.1:5000".parse().unwrap();
//! let mut a = MediaSession::new(SessionConfig::new(1, CodecKind::Pcmu, 0, b_addr), now).unwrap();
//! let mut b = MediaSession::new(SessionConfig::new(2, CodecKind::Pcmu, 0, a_addr), now).unwrap();
//! a.send_frame(now, &[1000; FRAME_SAMPLES]).unwrap();
//! let t = a.poll_transmit().expect("one rtp packet");
//! assert_eq!(t.to, b_addr);
//! b.handle_packet(now, a_addr, t.kind, &t.bytes);
//! assert_eq!(b.stats().packets_received, 1);
//! # let _ = Duration::ZERO;
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

use crate::codec::opus::OpusConfig;
use crate::codec::telephone_event::{ReceivedEvent, TelephoneEventReceiver, TelephoneEventSender};
use crate::codec::{AudioEncoder, CodecError, CodecKind, frame_samples_at};
use crate::jitter::stream_playout::StreamPlayout;
use crate::rtcp::interval::{IntervalParams, rtcp_interval};
use crate::rtcp::{self, Report, SenderInfo};
use crate::rtp::{PortKind, ReceiveStream, RtpPacket, RtpSender, SequenceOutcome, is_rtcp};
use crate::srtp::{CryptoAttribute, SrtpError, SrtpSession};

pub use crate::jitter::PlayoutCounters;
pub use level::{LEVEL_FLOOR_DBFS, LEVEL_INTERVAL, Level, LevelMeter};

mod level;

/// What a muted session encodes instead of the captured frame: a 20 ms frame of silence at the
/// highest PCM rate (48 kHz), sliced to the frame's length.
static SILENCE: [i16; crate::codec::FRAME_SAMPLES] = [0; crate::codec::FRAME_SAMPLES];

/// RFC 3551 §4.1 / common practice: declare the remote silent after this long without RTP.
pub const DEFAULT_RTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A call, held or not, ends after this long without RTP or RTCP from the peer: RTCP goes
/// on during hold (RFC 3264 §8.4), so a peer that sends neither is gone.
/// Five minutes, Asterisk's usual `rtpholdtimeout`: peers that send no RTCP at all are rare,
/// and a hold may well last longer than [`DEFAULT_RTP_TIMEOUT`].
pub const DEFAULT_HOLD_TIMEOUT: Duration = Duration::from_secs(300);

/// A new SSRC replaces a live one only after two packets in sequence; after this long
/// without RTP from the current source, its first packet suffices.
pub const SSRC_SWITCH_SILENCE: Duration = Duration::from_secs(1);

/// Latching probation: consecutive packets a new source address must send, with none from
/// the current source in between, before its packets are taken as the peer's (and, with
/// symmetric RTP, before our media goes there). PJSIP's `PJMEDIA_RTP_NAT_PROBATION_CNT`.
pub const DEFAULT_LATCH_PACKETS: u32 = 10;

/// Latching probation: the probation packets must span at least this much time per packet
/// after the first (90 ms for 10 packets), 10 ms being the shortest packet time in use
/// (RFC 3551 §4.2 frames). A burst from a stranger squeezed between two of the peer's
/// packets cannot pass probation however fast it is sent.
pub const LATCH_PACKET_SPACING: Duration = Duration::from_millis(10);

/// Latching: once packets came from the current source, a new source is taken only after
/// the current one has been silent this long (50 packet times at 20 ms; Opus DTX still
/// sends a packet every 400 ms). A live peer is never replaced; a peer whose NAT binding
/// changed loses about this much of our audio.
pub const LATCH_SILENCE: Duration = Duration::from_secs(1);

/// RTP keep-alive, RFC 6263: when no RTP went out for this long (on hold, Opus DTX
/// silence), one keep-alive packet goes from the RTP port so that a NAT keeps its mapping
/// (and the peer's latching its address). RFC 6263 §5: at most 15 s.
pub const RTP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// How often a [`MediaEvent::Stats`] is emitted (besides one per RTCP report received).
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The SDP media direction (RFC 3264 §5.1, §8.4 for hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive.
    #[default]
    SendRecv,
    /// Send only (we hold the peer: we keep sending, e.g. music on hold).
    SendOnly,
    /// Receive only (the peer holds us).
    RecvOnly,
    /// Neither (both on hold). RTCP continues.
    Inactive,
}

impl Direction {
    /// Whether RTP is sent.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether RTP is expected and played.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// Everything the session needs from SDP offer/answer and the caller.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our SSRC (random, from the caller's RNG).
    pub local_ssrc: u32,
    /// The negotiated audio codec.
    pub codec: CodecKind,
    /// Its negotiated payload type.
    pub payload_type: u8,
    /// Packet duration we send (SDP `a=ptime`, RFC 4566 §6). G.711 packs any multiple of
    /// 10 ms (20, 30, 40, 60...); Opus always sends 20 ms packets. Received packets may have
    /// any duration whatever this says.
    pub ptime: Duration,
    /// The negotiated `telephone-event` payload type (RFC 4733), if any.
    pub telephone_event_payload_type: Option<u8>,
    /// The negotiated comfort-noise payload type (RFC 3389, usually 13), if any.
    pub comfort_noise_payload_type: Option<u8>,
    /// Where to send RTP (SDP `c=`/`m=`), until latching says otherwise.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP without rtcp-mux: SDP `a=rtcp` (RFC 3605), default RTP port + 1.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP on one port (RFC 5761), when both sides offered `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Symmetric RTP (RFC 4961) with latching: send to where the peer's packets come from,
    /// once that source passed probation (see [`SessionConfig::latch_packets`]).
    pub symmetric_rtp: bool,
    /// Latching probation: RTP from an address other than the current source (at first the
    /// signalled one) is dropped until that address sent this many packets of one SSRC in a
    /// row, spaced [`LATCH_PACKET_SPACING`] apart on average, with no packet from the current
    /// source in between; and, once the current source was heard, until it has been silent
    /// for [`LATCH_SILENCE`]. No new source is taken while we do not receive (hold). Then
    /// the new address is the peer's (and, with [`SessionConfig::symmetric_rtp`], where our
    /// media goes). [`DEFAULT_LATCH_PACKETS`] unless set; 0 counts as 1.
    pub latch_packets: u32,
    /// SRTP keys: ours (to protect) and the peer's (to unprotect), from `a=crypto`.
    pub srtp: Option<(CryptoAttribute, CryptoAttribute)>,
    /// The media direction.
    pub direction: Direction,
    /// Raise [`MediaEvent::Timeout`] after this long without RTP while receiving.
    pub rtp_timeout: Duration,
    /// Raise [`MediaEvent::Timeout`] (with `hold_timeout`) after this long without RTP or
    /// RTCP, whatever the direction: the deadline of held calls, whose RTP stops by design
    /// (RFC 3264 §8.4). [`DEFAULT_HOLD_TIMEOUT`] unless set.
    pub hold_timeout: Duration,
    /// Our RTCP CNAME (RFC 3550 §6.5.1; RFC 7022 recommends a random one per session).
    pub cname: String,
    /// Seed of the session's deterministic generator (an `rand_xorshift::XorShiftRng`, the
    /// type the SIP core uses too): initial sequence number and timestamp, RTCP intervals,
    /// comfort noise. The application draws it from the operating system's generator; tests
    /// fix it.
    pub seed: u64,
    /// Our NTP time (RFC 3550 §4, 32.32 fixed point) at the `now` given to
    /// [`MediaSession::new`]: the driver takes it from the wall clock; tests use any value.
    pub ntp_at_start: u64,
    /// Session bandwidth in bits per second (RTCP gets 5 %, RFC 3550 §6.2).
    pub session_bandwidth: u32,
    /// The PCM rate of [`MediaSession::send_frame`] and [`MediaSession::playout`]: the
    /// device or mixer rate, 48 kHz ([`crate::SAMPLE_RATE`]) by default. With Opus one of
    /// [`crate::codec::opus::SAMPLE_RATES`] (a 16 kHz bridge spares libopus its resamplers);
    /// G.711 resamples from and to it. RTP timestamps keep the codec's clock rate.
    pub sample_rate: u32,
    /// The Opus encoder settings when the codec is Opus (its `sample_rate` is replaced by
    /// [`SessionConfig::sample_rate`]); [`OpusConfig::default`] unless set, see
    /// [`SessionConfig::with_opus`].
    pub opus: OpusConfig,
    /// Meter the captured and played audio and report [`MediaEvent::Levels`] every
    /// [`LEVEL_INTERVAL`] of playout, for an application that shows level meters. Off by
    /// default: a server with no meters to show pays nothing for them.
    pub levels: bool,
    /// Capture processing (echo cancellation, noise suppression, gain control,
    /// [`crate::dsp`]) the [`driver`](crate::driver) runs on the microphone before
    /// [`MediaSession::send_frame`]; the session itself does not use it. Off by default:
    /// processing belongs to a real microphone and loudspeaker, not to the tones, files and
    /// loopbacks of tests and servers. A phone switches it on (the terminal phone does).
    pub processing: crate::dsp::ProcessingConfig,
}

impl SessionConfig {
    /// A configuration with defaults: rtcp-mux off (RTCP to RTP port + 1), symmetric RTP on
    /// with a 10-packet latching probation, no SRTP, no telephone-event, sendrecv, 30 s RTP
    /// timeout, 5 min hold timeout.
    pub fn new(
        local_ssrc: u32,
        codec: CodecKind,
        payload_type: u8,
        remote_rtp: SocketAddr,
    ) -> Self {
        Self {
            local_ssrc,
            codec,
            payload_type,
            ptime: Duration::from_millis(20),
            telephone_event_payload_type: None,
            comfort_noise_payload_type: None,
            remote_rtp,
            remote_rtcp: None,
            rtcp_mux: false,
            symmetric_rtp: true,
            latch_packets: DEFAULT_LATCH_PACKETS,
            srtp: None,
            direction: Direction::SendRecv,
            rtp_timeout: DEFAULT_RTP_TIMEOUT,
            hold_timeout: DEFAULT_HOLD_TIMEOUT,
            cname: format!("tincan-{local_ssrc:08x}"),
            seed: u64::from(local_ssrc),
            ntp_at_start: 0,
            session_bandwidth: 64_000,
            sample_rate: crate::SAMPLE_RATE,
            opus: OpusConfig::default(),
            levels: false,
            processing: crate::dsp::ProcessingConfig::OFF,
        }
    }

    /// Uses these Opus settings, and their PCM rate as the session's
    /// ([`SessionConfig::sample_rate`]): `with_opus(OpusConfig::high_density())` makes a
    /// 16 kHz high-density session.
    pub fn with_opus(mut self, opus: OpusConfig) -> Self {
        self.sample_rate = opus.sample_rate;
        self.opus = opus;
        self
    }

    /// Samples in one 20 ms frame at [`SessionConfig::sample_rate`].
    pub fn frame_samples(&self) -> usize {
        frame_samples_at(self.sample_rate)
    }
}

/// Why a session could not be created or a frame could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The codec could not be set up or refused the frame.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The SRTP keys were refused, or protecting failed.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
    /// Not a DTMF key, or no telephone-event payload type was negotiated.
    #[error("cannot send dtmf: {0}")]
    Dtmf(String),
}

/// A datagram for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Which local socket to send from.
    pub kind: PortKind,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// Per-stream quality figures, emitted as [`MediaEvent::Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP payload octets sent.
    pub bytes_sent: u64,
    /// RTP packets received (all, including duplicates and late ones).
    pub packets_received: u64,
    /// RTP payload octets received.
    pub bytes_received: u64,
    /// Cumulative packets lost from the remote stream (RFC 3550 A.3; negative with duplicates).
    pub packets_lost: i64,
    /// Loss fraction (0-1) of the remote stream over the last RTCP interval we reported.
    pub fraction_lost: f64,
    /// Loss fraction (0-1) the peer reported for our stream in its last RTCP report.
    pub remote_fraction_lost: f64,
    /// Interarrival jitter of the remote stream (RFC 3550 A.8).
    pub jitter: Duration,
    /// Round-trip time from the last RTCP report block about us (RFC 3550 §6.4.1).
    pub rtt: Option<Duration>,
    /// Media buffered for playout right now (the jitter buffer's current delay).
    pub playout_delay: Duration,
    /// The playout buffer's current target delay.
    pub playout_target: Duration,
    /// Receive-pipeline counters (decoded, FEC-recovered, concealed, late frames).
    pub playout: PlayoutCounters,
    /// Packets refused by SRTP (authentication or replay).
    pub srtp_rejected: u64,
    /// RTP packets with a payload type we did not negotiate.
    pub unknown_payload_type: u64,
    /// RTP packets from another SSRC, dropped while the current source was alive and the
    /// new one had not yet sent two packets in sequence.
    pub unknown_ssrc: u64,
    /// Packets from an address that is not the peer's, dropped: RTP from a source on
    /// latching probation ([`SessionConfig::latch_packets`]), RTCP from another host than
    /// the current RTP source's.
    pub unknown_source: u64,
}

impl SessionStats {
    /// The figures as the quality model and the UI take them ([`crate::quality`]: MOS
    /// estimate, one-way delay).
    pub fn to_quality_stats(&self, codec: CodecKind) -> crate::quality::StreamStats {
        let p = self.playout;
        let slots = (p.decoded + p.fec_recovered + p.concealed) as f64;
        let ratio = |n: u64| if slots == 0.0 { 0.0 } else { n as f64 / slots };
        crate::quality::StreamStats {
            codec: Some(codec),
            packets_sent: self.packets_sent,
            bytes_sent: self.bytes_sent,
            packets_received: self.packets_received,
            bytes_received: self.bytes_received,
            packets_lost: self.packets_lost,
            fraction_lost: self.fraction_lost,
            jitter: self.jitter,
            rtt: self.rtt,
            jitter_buffer_delay: self.playout_delay,
            concealment_ratio: ratio(p.concealed),
            fec_ratio: ratio(p.fec_recovered),
            burst_ratio: 1.0,
        }
    }

    /// Share of played frames that were concealed (0-1).
    pub fn concealment_ratio(&self) -> f64 {
        let p = self.playout;
        let total = p.decoded + p.fec_recovered + p.concealed;
        if total == 0 {
            0.0
        } else {
            p.concealed as f64 / total as f64
        }
    }
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A DTMF key was received (RFC 4733), reported when it ended.
    DtmfReceived {
        /// The key: 0-9, *, #, A-D.
        digit: char,
        /// How long it was held.
        duration: Duration,
    },
    /// The remote stream's SSRC appeared or changed (reset of the receive state).
    SsrcChanged {
        /// The previous SSRC, if any.
        old: Option<u32>,
        /// The new one.
        new: u32,
    },
    /// The remote stream restarted (sequence numbers jumped, RFC 3550 A.1).
    StreamRestarted {
        /// Its SSRC.
        ssrc: u32,
    },
    /// Symmetric RTP: we now send RTP (or RTCP) to where the peer's packets come from. For
    /// RTP, that source passed latching probation ([`SessionConfig::latch_packets`]): a NAT
    /// between us and the peer, or (after `previous` fell silent) a peer that moved, or a
    /// stranger who got there first (plain RTP cannot tell; SRTP can).
    RemoteLatched {
        /// Which of our ports the new address is for.
        kind: PortKind,
        /// The address we sent to until now.
        previous: SocketAddr,
        /// The address we now send to.
        address: SocketAddr,
    },
    /// Quality statistics: every [`STATS_INTERVAL`] and when an RTCP report arrives.
    Stats(SessionStats),
    /// No RTP for [`SessionConfig::rtp_timeout`] while receiving; or (`hold_timeout`)
    /// neither RTP nor RTCP for [`SessionConfig::hold_timeout`], whatever the direction. The
    /// silence clocks start at the session's start (and again at a change of direction): a
    /// peer that never sends is silent too. Each is reported once per silence.
    Timeout {
        /// Time since the last packet (or since the start, or the change of direction).
        silent_for: Duration,
        /// Whether this is the hold timeout (RTCP counted as life too), which ends held
        /// calls as well.
        hold_timeout: bool,
    },
    /// What the call's ICE agent said (emitted by the driver when it runs one,
    /// [`crate::driver::spawn_with_ice`]): on [`crate::ice::Event::Selected`] the driver
    /// already sends RTP and RTCP to the selected remote; on
    /// [`crate::ice::Event::ConsentLost`] the owner should stop the call's media (RFC 7675).
    Ice(crate::ice::Event),
    /// An audio device failed (emitted by the driver, [`crate::driver`]); the device tries
    /// to reopen and the call goes on (silence meanwhile).
    DeviceError {
        /// What the device said.
        message: String,
    },
    /// The peer sent an RTCP BYE for its stream.
    RemoteBye {
        /// The SSRC that left.
        ssrc: u32,
    },
    /// The levels of the audio captured (given to [`MediaSession::send_frame`], before
    /// encoding, and before muting: a muted microphone still shows that someone speaks) and
    /// played out ([`MediaSession::playout`]) over the last [`LEVEL_INTERVAL`], reported at
    /// the end of each such stretch of playout when [`SessionConfig::levels`] is on.
    Levels {
        /// The captured audio.
        input: Level,
        /// The audio played out.
        output: Level,
    },
}

/// Uniform in [0, 1) from the session's generator (53 random bits).
fn unit(rng: &mut XorShiftRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A source address on latching probation.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: SocketAddr,
    ssrc: u32,
    packets: u32,
    first_at: Instant,
}

/// One audio media stream.
pub struct MediaSession {
    config: SessionConfig,
    start: Instant,
    /// The session's deterministic generator (RTCP interval jitter), seeded from
    /// [`SessionConfig::seed`]: the same type as the SIP core's (docs/decisions.md).
    rng: XorShiftRng,
    encoder: Box<dyn AudioEncoder>,
    clock_rate: u32,
    frame_units: u32,
    /// PCM samples per 20 ms frame at the session's rate.
    frame_len: usize,
    sender: RtpSender,
    /// Media time of the next frame to send, in RTP units from the start.
    media_time: u32,
    /// Set the marker bit on the next audio packet (start of a talk spurt).
    marker_next: bool,
    /// G.711 or G.722 octets (one per timestamp unit) encoded but not yet sent, and the media time of the
    /// first, for a ptime other than 20 ms.
    pending_audio: Vec<u8>,
    pending_start: u32,
    /// Payload octets per packet for G.711 and G.722 (ptime x 8 kHz); `None` sends each frame.
    packet_octets: Option<usize>,
    dtmf_sender: Option<TelephoneEventSender>,
    dtmf_receiver: TelephoneEventReceiver,
    srtp: Option<SrtpSession>,
    remote: Option<ReceiveStream>,
    /// A new SSRC seen once while the current one is alive: (ssrc, sequence).
    pending_ssrc: Option<(u32, u16)>,
    playout: StreamPlayout,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    /// Where the peer's RTP comes from: the signalled address until a source passes latching
    /// probation. RTP from anywhere else is dropped.
    rtp_source: SocketAddr,
    /// When the last packet from `rtp_source` came (`None`: never heard).
    source_heard_at: Option<Instant>,
    /// A source on latching probation.
    candidate: Option<Candidate>,
    /// When the last RTP or RTCP packet accepted as the peer's came (the hold timeout).
    last_peer_packet_at: Option<Instant>,
    last_rtp_at: Option<Instant>,
    /// Where the current silence started when no RTP has come since: the session's start,
    /// or the moment receiving resumed (hold ended), so that a resume is not taken for a
    /// silence as long as the call.
    silent_since: Option<Instant>,
    /// The RTP timeout was reported for the current silence.
    timed_out: bool,
    /// The hold timeout was reported for the current silence.
    hold_timed_out: bool,
    next_rtcp: Instant,
    rtcp_initial: bool,
    sent_since_report: bool,
    avg_rtcp_size: f64,
    next_stats: Instant,
    /// When an RTP keep-alive is due ([`RTP_KEEPALIVE_INTERVAL`] after the last RTP sent).
    next_keepalive: Instant,
    /// `stats.packets_sent` when the keep-alive timer last looked.
    keepalive_seen: u64,
    stats: SessionStats,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
    stopped: bool,
    /// Send silence instead of the captured audio ([`MediaSession::set_muted`]).
    muted: bool,
    /// The captured audio's level since the last [`MediaEvent::Levels`].
    input_level: LevelMeter,
    /// The played audio's level since the last [`MediaEvent::Levels`].
    output_level: LevelMeter,
    /// Frames played since the last [`MediaEvent::Levels`].
    level_frames: u32,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("local_ssrc", &self.config.local_ssrc)
            .field("codec", &self.config.codec)
            .field("remote_rtp", &self.remote_rtp)
            .field("remote_rtcp", &self.remote_rtcp)
            .field("direction", &self.config.direction)
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// Creates the session at `now`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Codec`] if the codec cannot be created, [`SessionError::Srtp`] if the
    /// keys are refused.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Self, SessionError> {
        let mut rng = XorShiftRng::seed_from_u64(config.seed);
        let encoder = config.codec.encoder_with(&OpusConfig {
            sample_rate: config.sample_rate,
            ..config.opus.clone()
        })?;
        let decoder = config.codec.decoder_at(config.sample_rate)?;
        let clock_rate = config.codec.clock_rate();
        let frame_units = config.codec.frame_samples() as u32;
        // RFC 3550 §5.1: random initial sequence number and timestamp.
        let first_seq = rng.next_u64() as u16;
        let ts_base = rng.next_u64() as u32;
        let sender = RtpSender::new(config.local_ssrc, first_seq, ts_base);
        let srtp = match &config.srtp {
            Some((local, remote)) => Some(SrtpSession::new(local, remote)?),
            None => None,
        };
        let dtmf_sender = config
            .telephone_event_payload_type
            .map(|_| TelephoneEventSender::new(clock_rate));
        let remote_rtcp = if config.rtcp_mux {
            config.remote_rtp
        } else {
            config.remote_rtcp.unwrap_or_else(|| {
                let mut a = config.remote_rtp;
                a.set_port(a.port().wrapping_add(1));
                a
            })
        };
        let params = IntervalParams {
            members: 2,
            senders: 2,
            session_bandwidth: f64::from(config.session_bandwidth) / 8.0,
            avg_rtcp_size: 100.0,
            we_sent: config.direction.sends(),
            initial: true,
        };
        let first_rtcp = rtcp_interval(&params, unit(&mut rng));
        let playout_seed = rng.next_u64();
        // G.711 is one octet per sample, G.722 one per timestamp unit (a 16 kHz sample pair):
        // any multiple of 10 ms packs exactly.
        let ptime_ms = config.ptime.as_millis();
        let packet_octets = match config.codec {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722
                if ptime_ms != 20
                    && (10..=200).contains(&ptime_ms)
                    && ptime_ms.is_multiple_of(10) =>
            {
                Some(ptime_ms as usize * clock_rate as usize / 1000)
            }
            _ => None,
        };
        Ok(Self {
            remote_rtp: config.remote_rtp,
            remote_rtcp,
            start: now,
            encoder,
            clock_rate,
            frame_units,
            frame_len: config.frame_samples(),
            sender,
            media_time: 0,
            marker_next: true,
            pending_audio: Vec::new(),
            pending_start: 0,
            packet_octets,
            dtmf_sender,
            dtmf_receiver: TelephoneEventReceiver::new(),
            srtp,
            remote: None,
            pending_ssrc: None,
            playout: StreamPlayout::new(config.codec, decoder, playout_seed),
            rtp_source: config.remote_rtp,
            source_heard_at: None,
            candidate: None,
            last_peer_packet_at: None,
            last_rtp_at: None,
            silent_since: Some(now),
            timed_out: false,
            hold_timed_out: false,
            next_rtcp: now + first_rtcp,
            rtcp_initial: true,
            sent_since_report: false,
            avg_rtcp_size: 100.0,
            next_stats: now + STATS_INTERVAL,
            next_keepalive: now + RTP_KEEPALIVE_INTERVAL,
            keepalive_seen: 0,
            stats: SessionStats::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stopped: false,
            muted: false,
            input_level: LevelMeter::default(),
            output_level: LevelMeter::default(),
            level_frames: 0,
            rng,
            config,
        })
    }

    /// Our SSRC.
    pub fn local_ssrc(&self) -> u32 {
        self.config.local_ssrc
    }

    /// The remote stream's SSRC, once a packet arrived.
    pub fn remote_ssrc(&self) -> Option<u32> {
        self.remote.as_ref().map(ReceiveStream::ssrc)
    }

    /// Where RTP goes now (configured or latched).
    pub fn remote_rtp(&self) -> SocketAddr {
        self.remote_rtp
    }

    /// Where RTCP goes now (configured or latched).
    pub fn remote_rtcp(&self) -> SocketAddr {
        self.remote_rtcp
    }

    /// The current direction.
    pub fn direction(&self) -> Direction {
        self.config.direction
    }

    /// Changes the direction (hold and resume, RFC 3264 §8.4).
    pub fn set_direction(&mut self, direction: Direction) {
        if direction.sends() && !self.config.direction.sends() {
            self.marker_next = true;
        }
        if direction.receives() != self.config.direction.receives() {
            if direction.receives() {
                self.playout.reset();
                self.last_rtp_at = None;
            }
            // The silence clocks start again at the next timer run (the direction changes
            // without a clock reading).
            self.timed_out = false;
            self.hold_timed_out = false;
            self.silent_since = None;
        }
        self.config.direction = direction;
    }

    /// Mutes or unmutes the microphone: while muted, [`MediaSession::send_frame`] encodes
    /// silence in place of the captured frame, so RTP keeps flowing at the same pace (the
    /// peer's RTP timeout and the NAT bindings on the way stay alive, as with PJSIP's and
    /// baresip's mute); Opus with DTX sends its silence as DTX. The direction (hold) is
    /// independent of it: a muted call held and resumed is still muted.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Whether the microphone is muted ([`MediaSession::set_muted`]).
    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// Points the session at new remote addresses (a re-INVITE changed `c=`/`m=`); latching
    /// starts over. The same addresses again (a re-INVITE for hold or resume) keep the
    /// latched ones.
    pub fn set_remote(&mut self, rtp: SocketAddr, rtcp: Option<SocketAddr>) {
        if self.config.remote_rtp == rtp && self.config.remote_rtcp == rtcp {
            return;
        }
        self.config.remote_rtp = rtp;
        self.config.remote_rtcp = rtcp;
        self.remote_rtp = rtp;
        self.remote_rtcp = if self.config.rtcp_mux {
            rtp
        } else {
            rtcp.unwrap_or_else(|| {
                let mut a = rtp;
                a.set_port(a.port().wrapping_add(1));
                a
            })
        };
        self.rtp_source = rtp;
        self.source_heard_at = None;
        self.candidate = None;
    }

    /// Encodes and sends one 20 ms frame of captured audio ([`SessionConfig::frame_samples`]
    /// at [`SessionConfig::sample_rate`]: [`crate::codec::FRAME_SAMPLES`] at 48 kHz).
    ///
    /// Call it every 20 ms of capture whatever the direction: media time advances; nothing is
    /// sent while not sending. While a DTMF event is being sent, it replaces the audio
    /// (RFC 4733 §2.5.1.2). While muted ([`MediaSession::set_muted`]) silence is encoded
    /// instead of `pcm` (whose level is still metered, [`MediaEvent::Levels`]).
    ///
    /// # Errors
    ///
    /// [`SessionError::Codec`] if the frame has the wrong size or the encoder fails;
    /// [`SessionError::Srtp`] if protecting fails.
    pub fn send_frame(&mut self, now: Instant, pcm: &[i16]) -> Result<(), SessionError> {
        let _ = now;
        let media_time = self.media_time;
        self.media_time = self.media_time.wrapping_add(self.frame_units);
        if self.config.levels {
            self.input_level.add(pcm);
        }
        // A muted frame is silence of the same length (a wrong length is refused as before).
        let pcm = match SILENCE.get(..pcm.len()) {
            Some(silence) if self.muted => silence,
            _ => pcm,
        };
        if self.stopped || !self.config.direction.sends() {
            self.marker_next = true;
            self.pending_audio.clear();
            return Ok(());
        }
        if let (Some(pt), Some(dtmf)) = (
            self.config.telephone_event_payload_type,
            self.dtmf_sender.as_mut(),
        ) && dtmf.is_active()
        {
            let timestamp = self.sender.timestamp_at(media_time);
            self.pending_audio.clear();
            if let Some(ev) = dtmf.poll(timestamp) {
                // The event's timestamp is its start; our sender adds the base itself.
                let offset = ev.timestamp.wrapping_sub(self.sender.timestamp_at(0));
                let packet = self.sender.packetize(pt, ev.marker, offset, &ev.payload);
                self.marker_next = true;
                return self.queue_rtp(&packet);
            }
        }
        if let Some(octets) = self.packet_octets {
            if self.pending_audio.is_empty() {
                self.pending_start = media_time;
            }
            self.encoder.encode(pcm, &mut self.pending_audio)?;
            while self.pending_audio.len() >= octets {
                let payload: Vec<u8> = self.pending_audio.drain(..octets).collect();
                let marker = std::mem::take(&mut self.marker_next);
                let packet = self.sender.packetize(
                    self.config.payload_type,
                    marker,
                    self.pending_start,
                    &payload,
                );
                self.pending_start = self.pending_start.wrapping_add(octets as u32);
                self.queue_rtp(&packet)?;
            }
            return Ok(());
        }
        let mut payload = Vec::with_capacity(256);
        let n = self.encoder.encode(pcm, &mut payload)?;
        if self.config.codec == CodecKind::Opus && n <= 2 {
            // Opus DTX frame: nothing to send; the next real packet starts a talk spurt.
            self.marker_next = true;
            return Ok(());
        }
        let marker = std::mem::take(&mut self.marker_next);
        let packet = self
            .sender
            .packetize(self.config.payload_type, marker, media_time, &payload);
        self.queue_rtp(&packet)
    }

    fn queue_rtp(&mut self, packet: &RtpPacket) -> Result<(), SessionError> {
        let mut bytes = packet.to_bytes();
        if let Some(srtp) = self.srtp.as_mut() {
            bytes = srtp.protect_rtp(&bytes)?;
        }
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += packet.payload.len() as u64;
        self.sent_since_report = true;
        self.transmits.push_back(Transmit {
            to: self.remote_rtp,
            kind: PortKind::Rtp,
            bytes,
        });
        Ok(())
    }

    /// Starts sending a DTMF key as RFC 4733 telephone-events, for `duration` (at least 40 ms).
    /// Keys queue up behind each other.
    ///
    /// # Errors
    ///
    /// [`SessionError::Dtmf`] if `digit` is not a DTMF key or no telephone-event payload
    /// type was negotiated.
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        digit: char,
        duration: Duration,
    ) -> Result<(), SessionError> {
        let _ = now;
        let sender = self
            .dtmf_sender
            .as_mut()
            .ok_or_else(|| SessionError::Dtmf("no telephone-event payload type".into()))?;
        sender
            .start(digit, duration.as_millis().min(u128::from(u32::MAX)) as u32)
            .map_err(|e| SessionError::Dtmf(e.to_string()))
    }

    /// Handles a datagram that arrived on our RTP or RTCP port from `from`.
    ///
    /// Malformed, unauthenticated, replayed or unexpected datagrams are counted and dropped:
    /// this never fails.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, port: PortKind, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        // RFC 5761 §4: demultiplex by packet type; a separate RTCP port only carries RTCP.
        if is_rtcp(bytes) {
            self.handle_rtcp(now, from, port, bytes);
        } else if port == PortKind::Rtp {
            self.handle_rtp(now, from, bytes);
        }
    }

    fn handle_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let plain;
        let bytes = match self.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtp(bytes) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(_) => {
                    self.stats.srtp_rejected += 1;
                    return;
                }
            },
            None => bytes,
        };
        let Ok(packet) = RtpPacket::parse(bytes) else {
            return;
        };
        let pt = packet.payload_type;
        let is_audio = pt == self.config.payload_type;
        let is_event = Some(pt) == self.config.telephone_event_payload_type;
        let is_cn = Some(pt) == self.config.comfort_noise_payload_type;
        if !(is_audio || is_event || is_cn) {
            self.stats.unknown_payload_type += 1;
            return;
        }
        // Latching with probation: RTP from another address than the peer's is dropped (it
        // neither plays nor disturbs the peer's stream) until that address passes probation.
        let moved = from != self.rtp_source;
        if !moved {
            self.candidate = None;
        } else if !self.probation(now, from, packet.ssrc) {
            self.stats.unknown_source += 1;
            return;
        }
        self.source_heard_at = Some(now);
        self.last_peer_packet_at = Some(now);
        // A new or changed SSRC resets the receive state (RFC 3550 §8.2 for a change). While
        // the current source is alive, a new one must first send two packets in sequence
        // (RFC 3550 A.1's probation): a stray or injected packet does not tear down the call.
        let old = self.remote.as_ref().map(ReceiveStream::ssrc);
        if old.is_some() && old != Some(packet.ssrc) {
            let current_alive = self
                .last_rtp_at
                .is_some_and(|at| now.saturating_duration_since(at) < SSRC_SWITCH_SILENCE);
            let confirmed = self.pending_ssrc.is_some_and(|(ssrc, seq)| {
                ssrc == packet.ssrc && packet.sequence == seq.wrapping_add(1)
            });
            if current_alive && !confirmed {
                self.pending_ssrc = Some((packet.ssrc, packet.sequence));
                self.stats.unknown_ssrc += 1;
                return;
            }
        }
        self.pending_ssrc = None;
        // A new source is a new stream even with the same SSRC: its probation packets were
        // dropped, so its timing starts afresh.
        if old != Some(packet.ssrc) || moved {
            self.remote = Some(ReceiveStream::new(
                packet.ssrc,
                packet.sequence,
                self.clock_rate,
                self.start,
            ));
            self.playout.reset();
            self.dtmf_receiver = TelephoneEventReceiver::new();
            if old != Some(packet.ssrc) {
                self.events.push_back(MediaEvent::SsrcChanged {
                    old,
                    new: packet.ssrc,
                });
            }
        }
        let remote = self.remote.as_mut().expect("set just above when absent");
        let outcome = remote.update(packet.sequence, packet.timestamp, packet.payload.len(), now);
        self.stats.packets_received += 1;
        self.stats.bytes_received += packet.payload.len() as u64;
        if outcome == SequenceOutcome::Restarted {
            self.playout.reset();
            self.events
                .push_back(MediaEvent::StreamRestarted { ssrc: packet.ssrc });
        }
        if !outcome.is_playable() {
            return;
        }
        self.last_rtp_at = Some(now);
        self.timed_out = false;
        self.hold_timed_out = false;
        if !self.config.direction.receives() {
            return;
        }
        if is_event {
            if let Ok(events) = self.dtmf_receiver.handle(packet.timestamp, &packet.payload) {
                for ev in events {
                    if let ReceivedEvent::Ended {
                        digit, duration, ..
                    } = ev
                    {
                        let duration = Duration::from_nanos(
                            u64::from(duration) * 1_000_000_000 / u64::from(self.clock_rate),
                        );
                        self.events
                            .push_back(MediaEvent::DtmfReceived { digit, duration });
                    }
                }
            }
        } else if is_cn {
            self.playout
                .push_comfort_noise(packet.timestamp, &packet.payload);
        } else {
            let seq = self
                .remote
                .as_ref()
                .map_or(0, |r| u64::from(r.extended_sequence(packet.sequence)));
            self.playout
                .push_audio(now, seq, packet.timestamp, &packet.payload, packet.marker);
        }
    }

    /// Counts a packet from `from` (not the current source) towards its latching probation;
    /// true when `from` passed it and is now the peer's source (and, with symmetric RTP,
    /// where our RTP goes).
    fn probation(&mut self, now: Instant, from: SocketAddr, ssrc: u32) -> bool {
        let candidate = match &mut self.candidate {
            Some(c) if c.from == from && c.ssrc == ssrc => {
                c.packets = c.packets.saturating_add(1);
                *c
            }
            // A new address, or another SSRC from it: probation starts over.
            _ => *self.candidate.insert(Candidate {
                from,
                ssrc,
                packets: 1,
                first_at: now,
            }),
        };
        let needed = self.config.latch_packets.max(1);
        let span = now.saturating_duration_since(candidate.first_at);
        let current_silent = self
            .source_heard_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LATCH_SILENCE);
        if candidate.packets < needed
            || span < LATCH_PACKET_SPACING * (needed - 1)
            || !current_silent
            || !self.config.direction.receives()
        {
            return false;
        }
        self.candidate = None;
        self.rtp_source = from;
        // Symmetric RTP (RFC 4961): the peer's packets tell us where it really is.
        if self.config.symmetric_rtp && from != self.remote_rtp {
            let previous = self.remote_rtp;
            self.remote_rtp = from;
            self.events.push_back(MediaEvent::RemoteLatched {
                kind: PortKind::Rtp,
                previous,
                address: from,
            });
            if self.config.rtcp_mux {
                self.remote_rtcp = from;
            }
        }
        true
    }

    fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, port: PortKind, bytes: &[u8]) {
        let plain;
        let bytes = match self.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtcp(bytes) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(_) => {
                    self.stats.srtp_rejected += 1;
                    return;
                }
            },
            None => bytes,
        };
        let Ok(compound) = rtcp::parse_compound(bytes) else {
            return;
        };
        // RTCP counts only from the peer: its RTCP address, or the host whose RTP passed
        // latching probation (a NAT maps its RTCP port elsewhere). A stranger's reports
        // would steer the Opus bitrate and keep a held call alive.
        if from != self.remote_rtcp && from.ip() != self.rtp_source.ip() {
            self.stats.unknown_source += 1;
            return;
        }
        self.last_peer_packet_at = Some(now);
        self.hold_timed_out = false;
        self.avg_rtcp_size = (bytes.len() as f64 + 28.0) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
        let remote_ssrc = self.remote_ssrc();
        let arrival_ntp = self.ntp_at(now);
        let mut about_us = None;
        let mut from_peer = false;
        for report in &compound.reports {
            if Some(report.ssrc) == remote_ssrc
                && let (Some(info), Some(remote)) = (report.sender_info, self.remote.as_mut())
            {
                remote.record_sender_report(info.ntp_time, now);
            }
            if report.ssrc != self.config.local_ssrc {
                from_peer = true;
            }
            if let Some(block) = report
                .blocks
                .iter()
                .find(|b| b.ssrc == self.config.local_ssrc)
            {
                about_us = Some(*block);
            }
        }
        if let Some(block) = about_us {
            if let Some(rtt) = rtcp::round_trip_time(arrival_ntp, &block) {
                self.stats.rtt = Some(rtt);
            }
            self.stats.remote_fraction_lost = f64::from(block.fraction_lost) / 256.0;
            // Opus: bitrate and FEC strength follow the loss the peer sees (media-a's policy).
            let adaptation = crate::codec::opus::adapt_to_loss(block.fraction_lost);
            self.encoder.set_bitrate(adaptation.bitrate);
            self.encoder.set_packet_loss(adaptation.packet_loss_percent);
        }
        if port == PortKind::Rtcp
            && !self.config.rtcp_mux
            && self.config.symmetric_rtp
            && from_peer
            && from != self.remote_rtcp
        {
            let previous = self.remote_rtcp;
            self.remote_rtcp = from;
            self.events.push_back(MediaEvent::RemoteLatched {
                kind: PortKind::Rtcp,
                previous,
                address: from,
            });
        }
        for ssrc in compound.goodbyes {
            if Some(ssrc) == remote_ssrc {
                self.events.push_back(MediaEvent::RemoteBye { ssrc });
            }
        }
        if about_us.is_some() || !compound.reports.is_empty() {
            self.refresh_stats();
            self.events.push_back(MediaEvent::Stats(self.stats));
        }
    }

    /// Our NTP time at `now`.
    fn ntp_at(&self, now: Instant) -> u64 {
        rtcp::ntp_add(
            self.config.ntp_at_start,
            now.saturating_duration_since(self.start),
        )
    }

    /// Pulls one 20 ms frame for the loudspeaker ([`SessionConfig::frame_samples`] at
    /// [`SessionConfig::sample_rate`]: [`crate::codec::FRAME_SAMPLES`] at 48 kHz): decoded
    /// audio, FEC-recovered or concealed audio, comfort noise, or silence.
    pub fn playout(&mut self, now: Instant) -> Vec<i16> {
        let mut out = Vec::with_capacity(self.frame_len);
        self.playout_into(now, &mut out);
        out
    }

    /// [`MediaSession::playout`] into a caller's buffer (cleared first), so that a server
    /// running many sessions allocates nothing per frame.
    pub fn playout_into(&mut self, now: Instant, out: &mut Vec<i16>) {
        out.clear();
        if self.config.direction.receives() {
            self.playout.play(now, out);
        }
        out.resize(self.frame_len, 0);
        if self.config.levels && !self.stopped {
            self.meter_output(out);
        }
    }

    /// Meters a played frame; every [`LEVEL_INTERVAL`] of frames, reports both levels.
    fn meter_output(&mut self, out: &[i16]) {
        self.output_level.add(out);
        self.level_frames += 1;
        // Every frame is 20 ms, whatever the rate.
        if self.level_frames >= (LEVEL_INTERVAL.as_millis() / 20) as u32 {
            self.level_frames = 0;
            self.events.push_back(MediaEvent::Levels {
                input: self.input_level.take(),
                output: self.output_level.take(),
            });
        }
    }

    /// The PCM rate of [`MediaSession::send_frame`] and [`MediaSession::playout`].
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }

    /// Samples in one 20 ms frame at [`MediaSession::sample_rate`].
    pub fn frame_samples(&self) -> usize {
        self.frame_len
    }

    /// Drives timers: RTCP reports (RFC 3550 §6.2), statistics, the RTP timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if now >= self.next_rtcp {
            self.send_report(now);
            let params = IntervalParams {
                members: 2,
                senders: if self.remote.is_some() { 2 } else { 1 },
                session_bandwidth: f64::from(self.config.session_bandwidth) / 8.0,
                avg_rtcp_size: self.avg_rtcp_size,
                we_sent: self.sent_since_report,
                initial: false,
            };
            self.rtcp_initial = false;
            self.sent_since_report = false;
            self.next_rtcp = now + rtcp_interval(&params, unit(&mut self.rng));
        }
        self.rtp_keepalive(now);
        if now >= self.next_stats {
            self.refresh_stats();
            self.events.push_back(MediaEvent::Stats(self.stats));
            while self.next_stats <= now {
                self.next_stats += STATS_INTERVAL;
            }
        }
        let start = *self.silent_since.get_or_insert(now);
        if self.rtp_deadline(start).is_some_and(|at| now >= at) {
            self.timed_out = true;
            let since = self.last_rtp_at.map_or(start, |t| t.max(start));
            self.events.push_back(MediaEvent::Timeout {
                silent_for: now.saturating_duration_since(since),
                hold_timeout: false,
            });
        }
        if self.hold_deadline(start).is_some_and(|at| now >= at) {
            self.hold_timed_out = true;
            let since = self.last_peer_packet_at.map_or(start, |t| t.max(start));
            self.events.push_back(MediaEvent::Timeout {
                silent_for: now.saturating_duration_since(since),
                hold_timeout: true,
            });
        }
    }

    /// Sends an RTP keep-alive (RFC 6263) when no RTP went out for
    /// [`RTP_KEEPALIVE_INTERVAL`]: a comfort-noise packet (§4.2, silence: -127 dBov) when CN
    /// was negotiated, else an empty packet of a dynamic payload type the session does not
    /// use (§4.3: the peer drops it, the NAT and the peer's latching see it). Not with
    /// rtcp-mux: RTCP reports on the RTP port keep it open (§4.6). Not counted as media in
    /// the statistics.
    fn rtp_keepalive(&mut self, now: Instant) {
        if self.config.rtcp_mux {
            return;
        }
        if self.stats.packets_sent != self.keepalive_seen {
            self.keepalive_seen = self.stats.packets_sent;
            self.next_keepalive = now + RTP_KEEPALIVE_INTERVAL;
            return;
        }
        if now < self.next_keepalive {
            return;
        }
        self.next_keepalive = now + RTP_KEEPALIVE_INTERVAL;
        let used = [
            Some(self.config.payload_type),
            self.config.telephone_event_payload_type,
            self.config.comfort_noise_payload_type,
        ];
        let (pt, payload) = match self.config.comfort_noise_payload_type {
            Some(cn) => (cn, vec![127u8]),
            None => {
                let Some(unused) = (96..=127u8).find(|pt| !used.contains(&Some(*pt))) else {
                    return;
                };
                (unused, Vec::new())
            }
        };
        let packet = self.sender.packetize(pt, false, self.media_time, &payload);
        let mut bytes = packet.to_bytes();
        if let Some(srtp) = self.srtp.as_mut() {
            match srtp.protect_rtp(&bytes) {
                Ok(b) => bytes = b,
                Err(_) => return,
            }
        }
        self.transmits.push_back(Transmit {
            to: self.remote_rtp,
            kind: PortKind::Rtp,
            bytes,
        });
    }

    /// When the RTP timeout falls due: only while receiving, once per silence. The silence
    /// starts at `start` (the session's start or the change of direction) or at the last RTP
    /// packet, whichever is later.
    fn rtp_deadline(&self, start: Instant) -> Option<Instant> {
        if self.timed_out || !self.config.direction.receives() {
            return None;
        }
        Some(self.last_rtp_at.map_or(start, |t| t.max(start)) + self.config.rtp_timeout)
    }

    /// When the hold timeout falls due: neither RTP nor RTCP since `start` (or since the last
    /// packet), once per silence.
    fn hold_deadline(&self, start: Instant) -> Option<Instant> {
        if self.hold_timed_out {
            return None;
        }
        Some(self.last_peer_packet_at.map_or(start, |t| t.max(start)) + self.config.hold_timeout)
    }

    fn report(&mut self, now: Instant) -> Report {
        let sender_info = self.sender.has_sent().then(|| {
            let elapsed = now.saturating_duration_since(self.start);
            let units = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
            SenderInfo {
                ntp_time: self.ntp_at(now),
                rtp_time: self.sender.timestamp_at(units),
                packet_count: self.sender.packet_count(),
                octet_count: self.sender.octet_count(),
            }
        });
        let blocks = match self.remote.as_mut() {
            Some(remote) => {
                let block = remote.report_block(now);
                self.stats.fraction_lost = f64::from(block.fraction_lost) / 256.0;
                vec![block]
            }
            None => vec![],
        };
        Report {
            ssrc: self.config.local_ssrc,
            sender_info,
            blocks,
        }
    }

    fn send_report(&mut self, now: Instant) {
        let report = self.report(now);
        let bytes = rtcp::build_compound(&report, &self.config.cname);
        self.queue_rtcp(bytes);
    }

    fn queue_rtcp(&mut self, bytes: Vec<u8>) {
        let bytes = match self.srtp.as_mut() {
            Some(srtp) => match srtp.protect_rtcp(&bytes) {
                Ok(b) => b,
                Err(_) => return,
            },
            None => bytes,
        };
        self.avg_rtcp_size = (bytes.len() as f64 + 28.0) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
        let kind = if self.config.rtcp_mux {
            PortKind::Rtp
        } else {
            PortKind::Rtcp
        };
        self.transmits.push_back(Transmit {
            to: self.remote_rtcp,
            kind,
            bytes,
        });
    }

    fn refresh_stats(&mut self) {
        if let Some(remote) = &self.remote {
            self.stats.packets_lost = remote.cumulative_lost();
            self.stats.jitter = remote.jitter_duration();
        }
        self.stats.playout = self.playout.counters();
        self.stats.playout_delay = self.playout.current_delay();
        self.stats.playout_target = self.playout.target_delay();
    }

    /// The statistics so far.
    pub fn stats(&mut self) -> SessionStats {
        self.refresh_stats();
        self.stats
    }

    /// The statistics as the quality model and the UI take them (MOS estimate, one-way
    /// delay: [`crate::quality::StreamStats::quality`]).
    pub fn quality_stats(&mut self) -> crate::quality::StreamStats {
        let codec = self.config.codec;
        self.stats().to_quality_stats(codec)
    }

    /// Frames buffered for playout right now.
    pub fn playout_depth(&self) -> usize {
        self.playout.depth()
    }

    /// Ends the session: queues an RTCP BYE (RFC 3550 §6.6) and returns the final statistics.
    pub fn stop(&mut self, now: Instant) -> SessionStats {
        if !self.stopped {
            let report = self.report(now);
            let mut bytes = rtcp::build_compound(&report, &self.config.cname);
            let bye = rtcp::build_bye(self.config.local_ssrc, &self.config.cname);
            // build_bye starts with an empty RR + SDES; keep only its BYE part after our report.
            if let Ok(parsed_len) = bye_offset(&bye) {
                bytes.extend_from_slice(&bye[parsed_len..]);
            } else {
                bytes = bye;
            }
            self.queue_rtcp(bytes);
            self.stopped = true;
        }
        self.stats()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`MediaSession::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let mut t = self.next_rtcp.min(self.next_stats);
        if !self.config.rtcp_mux {
            t = t.min(self.next_keepalive);
        }
        // A change of direction not yet seen by a timer run starts its silence at that run
        // (the RTCP and stats timers bring one within a second).
        if let Some(start) = self.silent_since {
            for deadline in [self.rtp_deadline(start), self.hold_deadline(start)] {
                t = deadline.map_or(t, |d| t.min(d));
            }
        }
        Some(t)
    }
}

/// Offset of the BYE packet inside a compound built by [`rtcp::build_bye`]: after the RR
/// and the SDES, each of which says its length in its header (RFC 3550 §6.4.2).
fn bye_offset(compound: &[u8]) -> Result<usize, ()> {
    let mut offset = 0;
    for _ in 0..2 {
        let header = compound.get(offset..offset + 4).ok_or(())?;
        let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
        offset += (words + 1) * 4;
    }
    if offset < compound.len() {
        Ok(offset)
    } else {
        Err(())
    }
}
