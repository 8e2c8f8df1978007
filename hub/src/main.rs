//! The flotilla-hub binary.

fn main() {}
