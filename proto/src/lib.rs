//! The gRPC contract between the Flotilla hub and its agents.
//!
//! The protocol is documented in `proto/flotilla/agent/v1/agent.proto`.

/// Generated messages and services of `flotilla.agent.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("flotilla.agent.v1");
}

use sha2::{Digest, Sha256};

/// Largest message either side sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Label on every member object the agent manages (Karmada's).
pub const MANAGED_LABEL: &str = "karmada.io/managed";

/// Label naming the Work a member object belongs to (shortened with a hash when too long).
pub const WORK_LABEL: &str = "flotilla.io/work";

/// Annotation with the full Work name on member objects.
pub const WORK_NAME_ANNOTATION: &str = "work.karmada.io/name";

/// Annotation with the Work namespace on member objects.
pub const WORK_NAMESPACE_ANNOTATION: &str = "work.karmada.io/namespace";

/// Annotation with the hash of the manifest last applied, so unchanged objects are not re-applied.
pub const MANIFEST_HASH_ANNOTATION: &str = "flotilla.io/manifest-hash";

/// Conflict resolution annotation (`overwrite` or `abort`), on the Work or the manifest.
pub const CONFLICT_RESOLUTION_ANNOTATION: &str = "work.karmada.io/conflict-resolution";

/// The namespace holding a cluster's Works.
pub fn execution_namespace(cluster: &str) -> String {
    format!("karmada-es-{cluster}")
}

/// The CA hash format both sides use: `sha256:` and the hex SHA-256 of the certificate DER.
pub fn ca_hash_of_der(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// A label value naming `work`: the name itself when it is a valid label value, otherwise a
/// prefix plus a hash so it stays unique and within 63 characters.
pub fn work_label_value(work: &str) -> String {
    let valid = !work.is_empty()
        && work.len() <= 63
        && work
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && work.starts_with(|c: char| c.is_ascii_alphanumeric())
        && work.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        return work.to_owned();
    }
    let hash = hex::encode(&Sha256::digest(work.as_bytes())[..8]);
    let prefix: String = work
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        format!("w-{hash}")
    } else {
        format!("{prefix}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_label_values() {
        let long = "a".repeat(80);
        let cases: &[(&str, Option<&str>)] = &[
            ("web-deployment", Some("web-deployment")),
            ("a", Some("a")),
            (&long, None),
            ("-bad", None),
            ("ns/x", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = work_label_value(input);
            assert!(got.len() <= 63, "{input}: {got}");
            assert!(
                got.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{input}: {got}"
            );
            if let Some(w) = want {
                assert_eq!(&got, w);
            } else {
                assert_ne!(got, *input);
            }
        }
        assert_ne!(
            work_label_value(&"a".repeat(70)),
            work_label_value(&"a".repeat(71))
        );
    }

    #[test]
    fn ca_hash_format() {
        let h = ca_hash_of_der(b"x");
        assert!(h.starts_with("sha256:"));
        assert_eq!(h.len(), 7 + 64);
    }
}
