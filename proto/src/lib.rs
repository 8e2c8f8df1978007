//! The gRPC contract between the Flotilla hub and its agents.
//!
//! The protocol is documented in `proto/flotilla/agent/v1/agent.proto`.

/// Generated messages and services of `flotilla.agent.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("flotilla.agent.v1");
}

pub mod proxy;

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

/// Annotation on a Work whose workload the hub autoscales: the JSON list of the
/// FederatedHPAs' `spec.metrics` (autoscaling/v2 MetricSpec) the agent measures and reports.
pub const METRICS_ANNOTATION: &str = "autoscaling.flotilla.io/metrics";

/// Annotation on the Work of a Service a member exports (`"true"`): the agent reports the
/// Service's shape and EndpointSlices.
pub const EXPORT_ANNOTATION: &str = "discovery.flotilla.io/export";

/// How often an agent reads exported Services' endpoints where it cannot watch them.
pub const ENDPOINTS_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Label on a workload template (and so on its member copies) whose replicas the members'
/// own HorizontalPodAutoscalers own: the agent keeps each member's replicas (Karmada's name).
pub const RETAIN_REPLICAS_LABEL: &str = "resourcetemplate.karmada.io/retain-replicas";

/// Annotation on a binding: the last scaling decision of the FederatedHPA scaling its
/// template, with its inputs (JSON).
pub const SCALE_DECISION_ANNOTATION: &str = "autoscaling.flotilla.io/last-scale";

/// The shortest time between two metrics reports of an agent.
pub const METRICS_PERIOD: std::time::Duration = std::time::Duration::from_secs(15);

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

/// The name of the Work holding one manifest: `<namespace>-<name>-<kind>` (without the
/// namespace for cluster-scoped objects), lowercased, with other characters replaced by `-`,
/// and shortened with a hash beyond 253 characters.
pub fn work_name_for(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let raw = match namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}-{name}-{kind}"),
        None => format!("{name}-{kind}"),
    };
    let mut out: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.len() > 253 {
        let hash = hex::encode(&Sha256::digest(raw.as_bytes())[..8]);
        out.truncate(236);
        out = format!("{}-{hash}", out.trim_end_matches(['-', '.']));
    }
    out.trim_matches(['-', '.']).to_owned()
}

/// How an agent's report of an object its guard rails refused begins (the hub records an
/// Event for each).
pub const GUARD_RAIL_REFUSAL: &str = "refused by this member's guard rails";

/// Where bootstrap tokens and hub information live in the hub API.
pub mod enrollment {
    use sha2::{Digest, Sha256};

    /// Namespace of bootstrap token Secrets and the hub information ConfigMap.
    pub const NAMESPACE: &str = "flotilla-system";
    /// Name of the ConfigMap where the hub publishes `agentAddress`, `caHash` and `caCert`.
    pub const HUB_INFO_CONFIGMAP: &str = "flotilla-hub-info";
    /// Type of bootstrap token Secrets.
    pub const TOKEN_SECRET_TYPE: &str = "flotilla.io/bootstrap-token";
    /// Prefix of bootstrap token Secret names; the token id follows.
    pub const TOKEN_SECRET_PREFIX: &str = "bootstrap-token-";
    /// Secret key: the cluster the token enrolls.
    pub const KEY_CLUSTER: &str = "cluster";
    /// Secret key: hex SHA-256 of the token secret.
    pub const KEY_SECRET_HASH: &str = "secret-hash";
    /// Secret key: RFC 3339 expiry.
    pub const KEY_EXPIRATION: &str = "expiration";
    /// Secret key: set to the time of use once the token has been exchanged.
    pub const KEY_USED_AT: &str = "used-at";
    /// Cluster annotation: the generation of the cluster's agent credentials. Certificates
    /// carry it as their organizational unit; raising it (`flotillactl revoke cluster`, or
    /// registering the cluster again) revokes every certificate issued before.
    pub const CREDENTIAL_GENERATION_ANNOTATION: &str = "agent.flotilla.io/credential-generation";

    /// The credential generation an annotation value (or a certificate's organizational
    /// unit) says; absent or unreadable is 0, the first.
    pub fn credential_generation(value: Option<&str>) -> u64 {
        value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    /// A parsed bootstrap token `<id>.<secret>`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Token {
        /// Public id (6 lowercase alphanumerics), names the Secret.
        pub id: String,
        /// The secret part (16 lowercase alphanumerics).
        pub secret: String,
    }

    impl Token {
        /// Parses `<id>.<secret>`; `None` when malformed.
        pub fn parse(s: &str) -> Option<Self> {
            let (id, secret) = s.trim().split_once('.')?;
            let ok = |p: &str, n: usize| {
                p.len() == n
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            };
            (ok(id, 6) && ok(secret, 16)).then(|| Self {
                id: id.to_owned(),
                secret: secret.to_owned(),
            })
        }

        /// Name of the Secret holding this token.
        pub fn secret_name(&self) -> String {
            format!("{TOKEN_SECRET_PREFIX}{}", self.id)
        }

        /// The hash stored in place of the secret.
        pub fn secret_hash(&self) -> String {
            hex::encode(Sha256::digest(self.secret.as_bytes()))
        }
    }

    impl std::fmt::Display for Token {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}.{}", self.id, self.secret)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_tokens() {
            let cases = [
                ("abcdef.0123456789abcdef", true),
                (" abcdef.0123456789abcdef\n", true),
                ("abcde.0123456789abcdef", false),
                ("ABCDEF.0123456789abcdef", false),
                ("abcdef0123456789abcdef", false),
                ("abcdef.0123456789abcde", false),
                ("abcdef.0123456789abcdef.x", false),
                ("", false),
            ];
            for (s, ok) in cases {
                assert_eq!(Token::parse(s).is_some(), ok, "{s:?}");
            }
            let t = Token::parse("abcdef.0123456789abcdef").expect("valid");
            assert_eq!(t.secret_name(), "bootstrap-token-abcdef");
            assert_eq!(t.to_string(), "abcdef.0123456789abcdef");
            assert_eq!(t.secret_hash().len(), 64);
        }
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
    fn work_names() {
        assert_eq!(
            work_name_for("Deployment", Some("default"), "web"),
            "default-web-deployment"
        );
        assert_eq!(
            work_name_for("ClusterRole", None, "system:x"),
            "system-x-clusterrole"
        );
        assert_eq!(work_name_for("ConfigMap", Some(""), "c"), "c-configmap");
        let long = work_name_for("ConfigMap", Some("n"), &"x".repeat(300));
        assert!(long.len() <= 253);
        assert_ne!(
            long,
            work_name_for("ConfigMap", Some("n"), &"x".repeat(301))
        );
    }

    #[test]
    fn ca_hash_format() {
        let h = ca_hash_of_der(b"x");
        assert!(h.starts_with("sha256:"));
        assert_eq!(h.len(), 7 + 64);
    }
}
