//! Kubernetes object machinery over plain JSON: patches, server-side apply, selectors.
//!
//! Everything here is pure: functions take `serde_json::Value`s and return new ones.

pub mod apply;
pub mod patch;
pub mod selector;
mod value;

pub use value::{exceeds_depth, serialized_len};
