//! SDP (RFC 8866) and the offer/answer model (RFC 3264) for one audio stream.
//!
//! - [`description`]: the data model, a tolerant parser and a printer ([`SessionDescription`]).
//! - [`ice`]: the ICE attributes (RFC 8839) for [`crate::ice`].
//! - [`offer_answer`]: [`offer`], [`answer`] and [`apply_answer`], which turn our
//!   [`LocalMedia`] and the peer's SDP into a [`Negotiated`] stream, and that into the
//!   [`SessionConfig`] a [`crate::session::MediaSession`] starts from.
//!
//! Pure functions: no clock, no randomness (the caller generates the SRTP keys and picks
//! the session id), no sockets.
//!
//! ```
//! use std::time::Duration;
//! use tincan_media::codec::CodecKind;
//! use tincan_media::sdp::{self, LocalMedia, SessionDescription};
//! use tincan_media::session::Direction;
//!
//! // sipp's default offer.
//! let offer = SessionDescription::parse(
//!     "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
//!      c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
//! )
//! .expect("valid sdp");
//! let local = LocalMedia::new("127.0.0.1".parse().unwrap(), 4000);
//! let (answer, negotiated) = sdp::answer(&offer, &local).expect("pcmu is common");
//! assert_eq!(negotiated.codec, CodecKind::Pcmu);
//! assert_eq!(negotiated.remote_rtp, "127.0.0.1:6000".parse().unwrap());
//! assert_eq!(negotiated.direction, Direction::SendRecv);
//! assert!(answer.to_string().contains("m=audio 4000 RTP/AVP 0\r\n"));
//! let config = negotiated.session_config(0x1234, 42);
//! assert_eq!(config.ptime, Duration::from_millis(20));
//! ```

pub mod description;
pub mod ice;
pub mod offer_answer;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::codec::CodecKind;
use crate::session::{Direction, SessionConfig};
use crate::srtp::CryptoAttribute;

pub use description::{Attribute, Connection, Line, MediaDescription, Origin, SessionDescription};
pub use offer_answer::{answer, apply_answer, offer};

/// The `telephone-event/8000` payload type we offer (RFC 4733; 101 by common practice).
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// The `telephone-event/48000` payload type we offer next to Opus, whose RTP clock is 48 kHz
/// (RFC 4733 §2.1: events use the clock of the audio they replace).
pub const TELEPHONE_EVENT_48K_PAYLOAD_TYPE: u8 = 102;

/// How we use SRTP with SDES keys (RFC 4568).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpPolicy {
    /// Plain RTP: offer `RTP/AVP` without `a=crypto`; refuse `RTP/SAVP` offers; ignore
    /// `a=crypto` in `RTP/AVP` offers.
    #[default]
    Off,
    /// Best effort: offer `RTP/AVP` with `a=crypto` (as baresip's `mediaenc=srtp`); use SRTP
    /// when the peer answers with a key, plain RTP otherwise. Answer `RTP/SAVP` offers too.
    Optional,
    /// SRTP or no call: offer `RTP/SAVP` with `a=crypto`; refuse offers without a usable key.
    Required,
}

/// What we can do, for building offers and answering them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The `c=` address: the address of the RTP socket as the peer should reach it (the
    /// caller picks it).
    pub address: IpAddr,
    /// Our RTP port (`m=`).
    pub rtp_port: u16,
    /// Our RTCP port without rtcp-mux; announced with `a=rtcp` (RFC 3605) when it is not
    /// `rtp_port + 1`. `None` when we have no separate RTCP socket.
    pub rtcp_port: Option<u16>,
    /// Our codecs, in order of preference (duplicates are ignored).
    pub codecs: Vec<CodecKind>,
    /// Offer and accept RFC 4733 `telephone-event` (DTMF).
    pub telephone_event: bool,
    /// The packet duration we would like to receive (`a=ptime`).
    pub ptime: Duration,
    /// Offer and accept `a=rtcp-mux` (RFC 5761).
    pub rtcp_mux: bool,
    /// How we use SRTP.
    pub srtp: SrtpPolicy,
    /// Our SRTP keys, one per suite we are willing to use, in order of preference; the
    /// caller generates them with a cryptographically secure RNG. Unused with
    /// [`SrtpPolicy::Off`].
    pub crypto: Vec<CryptoAttribute>,
    /// The direction we want: [`Direction::SendRecv`], or [`Direction::SendOnly`] to hold
    /// the peer (RFC 3264 §8.4), [`Direction::Inactive`] for both ways.
    pub direction: Direction,
    /// The `o=` session id (RFC 8866 §5.2), fixed for the dialog.
    pub session_id: u64,
    /// The `o=` session version: the caller bumps it for every new offer or changed answer.
    pub session_version: u64,
    /// The `o=` username (`-` when empty; whitespace is replaced).
    pub username: String,
}

impl LocalMedia {
    /// Defaults: every codec in Tincan's order, telephone-event, 20 ms, RTCP on
    /// `rtp_port + 1` with rtcp-mux offered, no SRTP, sendrecv, session id and version 0,
    /// username `tincan`.
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        Self {
            address,
            rtp_port,
            rtcp_port: rtp_port.checked_add(1),
            codecs: CodecKind::ALL.to_vec(),
            telephone_event: true,
            ptime: Duration::from_millis(20),
            rtcp_mux: true,
            srtp: SrtpPolicy::Off,
            crypto: Vec::new(),
            direction: Direction::SendRecv,
            session_id: 0,
            session_version: 0,
            username: "tincan".to_owned(),
        }
    }
}

/// The outcome of offer/answer for the audio stream: what the media session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec we send and expect.
    pub codec: CodecKind,
    /// Its payload type: the offerer's number when we answer, the answer's when we offered.
    pub payload_type: u8,
    /// The packet duration we send: the peer's `a=ptime` for G.711 when it is a multiple of
    /// 10 ms (10-200 ms, at most its `a=maxptime`), else 20 ms. Opus always sends 20 ms.
    pub ptime: Duration,
    /// The `telephone-event` payload type, when both sides have it at the codec's clock
    /// rate (for Opus, `telephone-event/8000` is accepted too, as baresip offers it; the
    /// session stamps events on the codec's clock either way, as baresip does).
    pub telephone_event_payload_type: Option<u8>,
    /// Where to send RTP (`c=` and `m=`); `0.0.0.0` while the peer holds us old-style.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP without rtcp-mux: `a=rtcp` (RFC 3605), else RTP port + 1; `None`
    /// with rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP on one port (both sides said `a=rtcp-mux`).
    pub rtcp_mux: bool,
    /// SRTP keys: ours (with the tag of the peer's line) and the peer's.
    pub srtp: Option<(CryptoAttribute, CryptoAttribute)>,
    /// Our resulting direction (RFC 3264 §6.1): the peer's reversed, within what we want.
    pub direction: Direction,
    /// The peer's direction as it takes effect: its attribute, without receiving when its
    /// address is `0.0.0.0` (RFC 2543 hold).
    pub remote_direction: Direction,
    /// The peer holds the call: it said `sendonly` or `inactive`, or `c=0.0.0.0`.
    pub remote_on_hold: bool,
}

impl Negotiated {
    /// The media session configuration for this stream, with SessionConfig's defaults for the
    /// rest (symmetric RTP, 30 s RTP timeout, no comfort noise).
    pub fn session_config(&self, local_ssrc: u32, seed: u64) -> SessionConfig {
        let mut config =
            SessionConfig::new(local_ssrc, self.codec, self.payload_type, self.remote_rtp);
        config.ptime = self.ptime;
        config.telephone_event_payload_type = self.telephone_event_payload_type;
        config.remote_rtcp = self.remote_rtcp;
        config.rtcp_mux = self.rtcp_mux;
        config.srtp = self.srtp.clone();
        config.direction = self.direction;
        config.seed = seed;
        config
    }
}

/// Why an SDP could not be parsed or offer/answer failed.
///
/// When answering an offer, [`SdpError::status_code`] and [`SdpError::warning`] give the SIP
/// response to send (RFC 3261 §21.4.26 488 with a §20.43 Warning). When applying an answer
/// to our offer, the call cannot go on with media: the caller ends it (ACK then BYE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The text is not usable SDP (malformed peer input). `line` is 1-based, 0 when the
    /// problem is the whole document.
    #[error("malformed sdp at line {line}: {reason}")]
    Malformed {
        /// The line, 1-based; 0 for the whole document.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// No audio stream with a port (or none that was usable for another reason).
    #[error("no audio stream offered")]
    NoAudioStream,
    /// The audio stream uses a transport we do not speak (e.g. `UDP/TLS/RTP/SAVPF`).
    #[error("unsupported transport {0}")]
    UnsupportedTransport(String),
    /// The audio stream has no `c=` line, or its address is not an IP address.
    #[error("no usable connection address for the audio stream")]
    NoConnectionAddress,
    /// None of the peer's codecs is one of ours.
    #[error("no common codec")]
    NoCommonCodec,
    /// Our policy requires SRTP and the peer offered plain RTP without `a=crypto`.
    #[error("srtp required but not offered")]
    SrtpRequired,
    /// The peer requires SRTP (`RTP/SAVP`) and our policy is off.
    #[error("srtp offered but turned off")]
    SrtpOff,
    /// The peer's `a=crypto` lines have no suite we support and hold a key for.
    #[error("no common srtp crypto suite")]
    NoCommonCryptoSuite,
    /// The answer's `a=crypto` tag or suite matches none of the lines we offered.
    #[error("answer crypto attribute matches no offered one")]
    CryptoMismatch,
    /// Caller misuse: SRTP is to be used but [`LocalMedia::crypto`] has no key.
    #[error("no local srtp key")]
    MissingLocalKey,
    /// The peer answered our audio stream with port 0.
    #[error("the audio stream was rejected")]
    Rejected,
}

impl SdpError {
    /// The SIP status for a refused offer: 400 for malformed SDP, 500 for caller misuse, 488
    /// (Not Acceptable Here) for everything else.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Malformed { .. } => 400,
            Self::MissingLocalKey => 500,
            _ => 488,
        }
    }

    /// The RFC 3261 §20.43 Warning code and text to put in a 488, when one fits.
    pub fn warning(&self) -> Option<(u16, &'static str)> {
        match self {
            Self::NoAudioStream => Some((304, "Media type not available")),
            Self::UnsupportedTransport(_) | Self::SrtpRequired | Self::SrtpOff => {
                Some((302, "Incompatible transport protocol"))
            }
            Self::NoConnectionAddress => Some((301, "Incompatible network address formats")),
            Self::NoCommonCodec | Self::NoCommonCryptoSuite => {
                Some((305, "Incompatible media format"))
            }
            _ => None,
        }
    }
}
