//! The operator CLI (built in a later step).
fn main() {}
