//! Tincan's SIP stack.
//!
//! `tincan-sip` holds the SIP protocol as sans-IO state machines: messages, transports
//! (framing and addressing), transactions, RFC 3263 resolution, registration and dialogs. The
//! core owns no sockets, reads no clock and spawns no tasks: time and randomness are injected,
//! output is drained with `poll_*` methods. A thin tokio driver gives it real sockets.
#![forbid(unsafe_code)]

pub mod auth;
pub mod capacity;
pub mod dialog;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod endpoint;
pub mod flow;
pub mod message;
pub mod pidf;
pub mod publication;
pub mod register;
pub mod resolve;
pub mod rng;
pub mod stun;
pub mod transaction;
pub mod transport;
