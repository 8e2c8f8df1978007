//! Guard rails: what the member's owners allow the hub to do in this cluster. They are set
//! where the agent is installed (the chart's `guardRails` values, passed as JSON in
//! `--guard-rails`), never by the hub, so a compromised hub can do no more than this. The
//! agent's own namespace is always denied.
//!
//! The defaults allow namespaced objects outside the system namespaces, and namespaces
//! themselves (namespace propagation needs them); cluster-scoped objects, RBAC objects,
//! admission webhooks and CustomResourceDefinitions are refused, and existing objects not
//! created by Flotilla are never taken over, whatever the Work says.

use serde::{Deserialize, Serialize};

/// Namespaces refused by default: Kubernetes' own.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// What the hub may apply here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardRails {
    /// Namespaces objects may be applied in; empty means any not denied.
    pub allowed_namespaces: Vec<String>,
    /// Namespaces objects may never be applied in (also refused as Namespace objects).
    pub denied_namespaces: Vec<String>,
    /// Kinds that may be applied, as `Kind` (core group) or `Kind.group`; empty means any
    /// allowed by the other rules.
    pub allowed_kinds: Vec<String>,
    /// Whether cluster-scoped objects other than Namespaces may be applied.
    pub cluster_scoped: bool,
    /// Whether RBAC objects (Roles, ClusterRoles and their bindings) may be applied.
    pub rbac: bool,
    /// Whether admission webhook configurations may be applied.
    pub admission_webhooks: bool,
    /// Whether CustomResourceDefinitions may be applied.
    pub crds: bool,
    /// Whether an existing object not created by Flotilla may be taken over when the Work
    /// asks for it (`conflictResolution: Overwrite`).
    pub take_over: bool,
    /// What the hub's cluster proxy may do here.
    pub proxy: ProxyRails,
}

/// What the cluster proxy may do in this member. Requests run as the hub user, impersonated
/// as `flotilla:<user>` with groups `flotilla:<group>`, so the member's RBAC decides too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyRails {
    /// Whether the proxy forwards anything.
    pub enabled: bool,
    /// Request categories forwarded: `read`, `write`, `logs`, `exec` (exec and attach),
    /// `port-forward`.
    pub allow: Vec<String>,
}

impl Default for ProxyRails {
    fn default() -> Self {
        Self {
            enabled: true,
            allow: flotilla_proto::proxy::Category::DEFAULT_ALLOWED
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
        }
    }
}

impl ProxyRails {
    /// The policy announced to the hub and enforced here.
    pub fn policy(&self) -> flotilla_proto::v1::ProxyPolicy {
        flotilla_proto::v1::ProxyPolicy {
            enabled: self.enabled,
            allow: self.allow.clone(),
        }
    }
}

impl Default for GuardRails {
    fn default() -> Self {
        Self {
            allowed_namespaces: vec![],
            denied_namespaces: SYSTEM_NAMESPACES.iter().map(|s| (*s).to_owned()).collect(),
            allowed_kinds: vec![],
            cluster_scoped: false,
            rbac: false,
            admission_webhooks: false,
            crds: false,
            take_over: false,
            proxy: ProxyRails::default(),
        }
    }
}

/// An object refused by a guard rail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} ({rule}): {what}; the member's owners can allow it in the agent's guardRails values",
    flotilla_proto::GUARD_RAIL_REFUSAL
)]
pub struct Refusal {
    /// The rule that refused it (the values key).
    pub rule: &'static str,
    /// What was refused.
    pub what: String,
}

/// The object being applied, as the member resolved it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// API group (empty for core).
    pub group: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Namespace; empty for cluster-scoped kinds.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
}

impl Target<'_> {
    fn describe(&self) -> String {
        let kind = if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        };
        if self.namespace.is_empty() {
            format!("{kind} {}", self.name)
        } else {
            format!("{kind} {}/{}", self.namespace, self.name)
        }
    }
}

impl GuardRails {
    /// Reads guard rails from JSON (missing fields keep their defaults); the agent's own
    /// namespace is added to the denied ones.
    pub fn from_json(text: &str, own_namespace: &str) -> Result<Self, String> {
        let mut g: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_json::from_str(text).map_err(|e| format!("invalid --guard-rails: {e}"))?
        };
        if let Some(bad) = g
            .proxy
            .allow
            .iter()
            .find(|a| flotilla_proto::proxy::Category::parse(a).is_none())
        {
            let known: Vec<&str> = flotilla_proto::proxy::Category::ALL
                .iter()
                .map(|c| c.name())
                .collect();
            return Err(format!(
                "invalid --guard-rails: proxy.allow: unknown category {bad:?} (known: {})",
                known.join(", ")
            ));
        }
        if !g.denied_namespaces.iter().any(|n| n == own_namespace) {
            g.denied_namespaces.push(own_namespace.to_owned());
        }
        Ok(g)
    }

    fn namespace_allowed(&self, ns: &str) -> bool {
        !self.denied_namespaces.iter().any(|d| d == ns)
            && (self.allowed_namespaces.is_empty()
                || self.allowed_namespaces.iter().any(|a| a == ns))
    }

    /// Whether `t` may be applied.
    pub fn check(&self, t: Target<'_>) -> Result<(), Refusal> {
        let refuse = |rule: &'static str| {
            Err(Refusal {
                rule,
                what: t.describe(),
            })
        };
        let is_namespace = t.group.is_empty() && t.kind == "Namespace";
        if !self.allowed_kinds.is_empty() && !is_namespace {
            let qualified = if t.group.is_empty() {
                t.kind.to_owned()
            } else {
                format!("{}.{}", t.kind, t.group)
            };
            if !self.allowed_kinds.contains(&qualified) {
                return refuse("allowedKinds");
            }
        }
        if t.group == "rbac.authorization.k8s.io" && !self.rbac {
            return refuse("rbac");
        }
        if t.group == "admissionregistration.k8s.io" && !self.admission_webhooks {
            return refuse("admissionWebhooks");
        }
        if t.group == "apiextensions.k8s.io" && t.kind == "CustomResourceDefinition" && !self.crds {
            return refuse("crds");
        }
        if is_namespace {
            if !self.namespace_allowed(t.name) {
                return refuse("deniedNamespaces/allowedNamespaces");
            }
            return Ok(());
        }
        if t.namespace.is_empty() {
            if !self.cluster_scoped {
                return refuse("clusterScoped");
            }
            return Ok(());
        }
        if !self.namespace_allowed(t.namespace) {
            return refuse("deniedNamespaces/allowedNamespaces");
        }
        Ok(())
    }

    /// Whether the Work's request to take over an existing object is honoured.
    pub fn may_take_over(&self, requested: bool) -> bool {
        requested && self.take_over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(group: &'a str, kind: &'a str, namespace: &'a str, name: &'a str) -> Target<'a> {
        Target {
            group,
            kind,
            namespace,
            name,
        }
    }

    #[test]
    fn defaults() {
        let g = GuardRails::default();
        let ok = [
            t("apps", "Deployment", "shop", "web"),
            t("", "ConfigMap", "shop", "cfg"),
            t("", "Namespace", "", "shop"),
        ];
        for target in ok {
            assert_eq!(g.check(target), Ok(()), "{target:?}");
        }
        let refused = [
            (
                t("apps", "Deployment", "kube-system", "x"),
                "deniedNamespaces/allowedNamespaces",
            ),
            (
                t("", "Namespace", "", "kube-system"),
                "deniedNamespaces/allowedNamespaces",
            ),
            (
                t("rbac.authorization.k8s.io", "ClusterRole", "", "admin2"),
                "rbac",
            ),
            (
                t("rbac.authorization.k8s.io", "RoleBinding", "shop", "rb"),
                "rbac",
            ),
            (
                t(
                    "admissionregistration.k8s.io",
                    "ValidatingWebhookConfiguration",
                    "",
                    "w",
                ),
                "admissionWebhooks",
            ),
            (
                t(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    "",
                    "x.example.com",
                ),
                "crds",
            ),
            (
                t("storage.k8s.io", "StorageClass", "", "fast"),
                "clusterScoped",
            ),
        ];
        for (target, rule) in refused {
            assert_eq!(g.check(target).map_err(|r| r.rule), Err(rule), "{target:?}");
        }
        assert!(!g.may_take_over(true));
    }

    #[test]
    fn values_widen_and_narrow() {
        let g = GuardRails::from_json(
            r#"{"allowedNamespaces": ["shop"], "allowedKinds": ["Deployment.apps", "ConfigMap"],
                "rbac": true, "clusterScoped": true, "takeOver": true}"#,
            "flotilla-system",
        )
        .unwrap_or_default();
        assert_eq!(g.check(t("apps", "Deployment", "shop", "web")), Ok(()));
        assert_eq!(g.check(t("", "ConfigMap", "shop", "c")), Ok(()));
        assert_eq!(
            g.check(t("", "Secret", "shop", "s")).map_err(|r| r.rule),
            Err("allowedKinds")
        );
        assert_eq!(
            g.check(t("apps", "Deployment", "other", "web"))
                .map_err(|r| r.rule),
            Err("deniedNamespaces/allowedNamespaces")
        );
        // Denied system namespaces stay denied unless the list is replaced.
        assert!(g.denied_namespaces.iter().any(|n| n == "kube-system"));
        assert!(g.may_take_over(true) && !g.may_take_over(false));
        assert!(GuardRails::from_json(r#"{"unknownRule": true}"#, "a").is_err());
        let own = GuardRails::from_json("", "flotilla-system").unwrap_or_default();
        // The proxy: read and logs by default, categories checked.
        assert_eq!(own.proxy.policy().allow, ["read", "logs"]);
        assert!(own.proxy.enabled);
        let p = GuardRails::from_json(r#"{"proxy": {"allow": ["read", "exec"]}}"#, "a")
            .unwrap_or_default();
        assert_eq!(p.proxy.allow, ["read", "exec"]);
        assert!(GuardRails::from_json(r#"{"proxy": {"allow": ["root"]}}"#, "a").is_err());
        let own = GuardRails::from_json("", "flotilla-system").unwrap_or_default();
        assert_eq!(
            own.check(t("", "ConfigMap", "flotilla-system", "x"))
                .map_err(|r| r.rule),
            Err("deniedNamespaces/allowedNamespaces")
        );
    }
}
