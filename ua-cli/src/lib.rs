//! Tincan: accounts, calls and events over `tincan-sip` and `tincan-media`.
//!
//! A program links this crate to place and take calls; the `tincan` binary is a thin shell
//! over this API. The heart is [`phone::PhoneCore`], one sans-IO state machine that owns the
//! accounts and the calls; [`phone::driver::Phone`] runs it on tokio with real sockets,
//! DNS and audio. Two phones on loopback, one calling the other:
//!
//! ```
//! use tincan::phone::driver::{CallOptions, Phone};
//! use tincan::phone::{CallEvent, PhoneEvent};
//! use tincan_media::device::{NullSink, NullSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bind = "127.0.0.1:0".parse()?;
//! let alice = Phone::builder().bind(bind).start().await?;
//! let mut bob = Phone::builder().bind(bind).start().await?;
//! let (_, bob_addr) = bob.local_addresses()[0];
//!
//! let call = alice.call(&format!("sip:bob@{bob_addr}"), CallOptions::default()).await?;
//! // bob answers whatever rings, with silence as his microphone.
//! while let Some(event) = bob.next_event().await {
//!     match event {
//!         PhoneEvent::Incoming(incoming) => {
//!             bob.accept(incoming.call, Box::new(NullSource::new()), Box::new(NullSink::new()))
//!                 .await?;
//!         }
//!         PhoneEvent::Call { event: CallEvent::Answered { codec, .. }, .. } => {
//!             println!("talking, {codec}");
//!             break;
//!         }
//!         _ => {}
//!     }
//! }
//! alice.hangup(call).await?;
//! alice.shutdown().await;
//! bob.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See docs/library.md for the shape of the API, its events and errors, and how the driver
//! runs the core.
#![forbid(unsafe_code)]
pub mod config;
pub mod history;

pub mod phone;
pub mod trace;
