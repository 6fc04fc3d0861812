//! One module per `tincan` subcommand.

pub mod parse;
pub mod ping;
