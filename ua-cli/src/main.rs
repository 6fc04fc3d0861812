//! The `tincan` terminal user agent.
fn main() {}
