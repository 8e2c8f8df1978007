//! The Flotilla hub: a Kubernetes-compatible API server over an embedded store.
