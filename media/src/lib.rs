//! Tincan's media engine: RTP/RTCP, SRTP, codecs, the jitter buffer and audio devices.
//!
//! The engine is a sans-IO core: packets and `now` go in, packets, PCM frames and timeouts
//! come out. It knows nothing of SIP transactions; the `tincan` crate joins it to calls.
//!
//! - [`rtp`], [`rtcp`]: RTP sessions (RFC 3550 sequence and jitter state, SR/RR, RTT),
//!   rtcp-mux (RFC 5761), on the webrtc-rs `rtc-rtp`/`rtc-rtcp` data types.
//! - [`srtp`]: SDES keys (`a=crypto`, RFC 4568) and SRTP/SRTCP through `rtc-srtp`.
//! - [`codec`]: Opus (libopus), G.722, G.711 PCMU/PCMA, RFC 4733 telephone-event, RFC 3389
//!   comfort noise; [`resample`] between device and codec rates.
//! - [`jitter`]: the adaptive jitter buffer with FEC and concealment.
//! - [`device`]: audio sources and sinks (cpal with the default `cpal` feature, WAV, tone,
//!   voice-like, null, loopback).
//! - [`dsp`]: capture processing: echo cancellation, noise suppression, gain control.
//! - [`ice`]: a sans-IO ICE agent (RFC 8445: host and server-reflexive candidates, checks,
//!   nomination, RFC 7675 consent); its SDP attributes (RFC 8839) are in [`sdp::ice`].
//! - [`quality`]: per-stream statistics and the ITU-T G.107 E-model MOS.
//! - [`tones`]: ring and ring-back tones (cadences of tones and pauses).
//! - [`session`]: the sans-IO `MediaSession` joining them; [`driver`]: its tokio driver.
//!
//! ```
//! use tincan_media::codec::CodecKind;
//! assert_eq!(tincan_media::SAMPLE_RATE, 48_000);
//! let mut enc = CodecKind::Pcmu.encoder().unwrap();
//! let mut payload = Vec::new();
//! enc.encode(&[0i16; 960], &mut payload).unwrap();
//! assert_eq!(payload.len(), 160); // 20 ms of G.711 at 8 kHz
//! ```
// One reasoned exception, `dsp::CaptureProcessor`'s `Send` (see there); nothing else.
#![deny(unsafe_code)]

/// The internal pipeline sample rate in Hz (Opus' native rate).
pub const SAMPLE_RATE: u32 = 48_000;

pub mod rtcp;
pub mod rtp;
pub mod srtp;

pub mod codec;
pub mod conference;
pub mod device;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod dsp;
pub mod ice;
pub mod jitter;
pub mod quality;
pub mod resample;
pub mod sdp;
pub mod session;
pub mod tones;
