//! Table tests of override rendering.
#![allow(clippy::unwrap_used)]
