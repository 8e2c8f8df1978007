//! Storage for the Flotilla hub: an etcd-like [`Store`] trait and its sled implementation.
