//! Tincan: accounts, calls and events over `tincan-sip` and `tincan-media`.
//!
//! A program links this crate to place and take calls; the `tincan` binary is a thin shell
//! over this API.
#![forbid(unsafe_code)]
pub mod config;

pub mod account;
pub mod call;
pub mod trace;
