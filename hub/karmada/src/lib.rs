//! Karmada-compatible API types and the pure algorithms behind propagation.
//!
//! Nothing here does I/O: the hub's API server calls [`validation`] and [`openapi`], its
//! controllers call the algorithm modules with plain data.

pub mod autoscaling;
pub mod defaults;
pub mod discovery;
pub mod failover;
pub mod health;
pub mod interpreter;
pub mod matching;
pub mod openapi;
pub mod overrides;
pub mod protection;
pub mod quantity;
pub mod scheduler;
pub mod selectors;
pub mod status;
pub mod types;
pub mod validation;

pub use openapi::openapi_schemas;
pub use validation::{
    FieldError, FieldErrorReason, KindInfo, ValidationErrors, served_kinds, validate,
};
