//! One module per `tincan` subcommand.

pub mod devices;
pub mod parse;
pub mod ping;
pub mod register;
pub mod resolve;
