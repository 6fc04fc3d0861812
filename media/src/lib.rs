//! Tincan's media engine: RTP/RTCP, SRTP, codecs, the jitter buffer and audio devices.
//!
//! The engine is a sans-IO core: packets and `now` go in, packets, PCM frames and timeouts
//! come out. It knows nothing of SIP transactions; the `tincan` crate joins it to calls.
//!
//! This crate is a skeleton for now: the media engine is being built (issue 5).
//!
//! ```
//! assert_eq!(tincan_media::SAMPLE_RATE, 48_000);
//! ```
#![forbid(unsafe_code)]

/// The internal pipeline sample rate in Hz (Opus' native rate).
pub const SAMPLE_RATE: u32 = 48_000;

pub mod rtcp;
pub mod rtp;
pub mod srtp;

pub mod codec;
pub mod device;
pub mod jitter;
pub mod quality;
pub mod resample;
pub mod session;
#[cfg(feature = "tokio")]
pub mod driver;
