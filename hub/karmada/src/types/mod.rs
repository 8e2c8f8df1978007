//! Serde types of the Karmada kinds Flotilla serves.
//!
//! Optional fields default so that admission can report missing ones as field errors rather than
//! decode failures; `null` is accepted wherever Kubernetes accepts it. Unknown fields are found by
//! [`crate::validation`], which walks the JSON against these types.

mod autoscaling;
mod binding;
mod cluster;
mod common;
mod networking;
mod override_policy;
mod policy;
mod rebalancer;
mod taint_policy;

pub use autoscaling::*;
pub use binding::*;
pub use cluster::*;
pub use common::{
    ClusterAffinity, Condition, FieldSelector, FieldSelectorRequirement, LabelSelector,
    LabelSelectorRequirement, Quantity, ResourceSelector, Taint, Toleration,
};
pub use networking::*;
pub use override_policy::*;
pub use policy::*;
pub use rebalancer::*;
pub use taint_policy::*;
