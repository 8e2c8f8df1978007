//! Table tests of flotilla-rbac against Kubernetes' documented RBAC behaviour.

mod aggregate;
mod authorize;
mod common;
mod covers;
mod defaults;
mod message;
