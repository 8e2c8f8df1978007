//! Karmada-compatible API types and the pure algorithms behind propagation.
