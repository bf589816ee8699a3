//! The local Mackerel stand-in (built in the next step).
fn main() {}
