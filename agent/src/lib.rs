//! The Flotilla agent: runs next to a member cluster, pulls that cluster's Work from the hub
//! over one gRPC stream, applies it with server-side apply and reports status back.

pub mod autoscaling;
pub mod config;
pub mod connect;
pub mod credentials;
pub mod discovery;
pub mod engine;
pub mod fake;
pub mod guard;
pub mod health;
pub mod kube_member;
pub mod measure;
pub mod member;
pub mod metrics;
pub mod proxy;
pub mod quantity;
pub mod rotation;
