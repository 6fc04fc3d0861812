//! One module per `tincan` subcommand.

pub mod parse;
