//! Test support for Flotilla's end-to-end tests: real member clusters, a real hub, real kubectl.
pub mod clusters;
pub mod kubectls;
