//! Kubernetes object machinery over plain JSON: patches, server-side apply, selectors.
