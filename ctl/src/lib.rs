//! flotillactl: enrolls member clusters and puts manifests into their Work, through the hub's
//! Kubernetes API only.

pub mod cli;
pub mod describe;
pub mod endpoints;
pub mod hub;
pub mod members;
pub mod rebalance;
pub mod register;
pub mod user;
pub mod work;
