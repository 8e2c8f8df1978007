//! The gRPC contract between the Flotilla hub and its agents.
