//! Patch metadata of the built-in kinds: which lists merge, and by which key.
//!
//! These tables mirror the `patchStrategy`/`patchMergeKey` tags (strategic merge
//! patch) and the `listType`/`listMapKeys` markers (server-side apply) of the
//! Kubernetes API types.

/// How a list field merges in a strategic merge patch, and how server-side apply
/// tracks its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the whole list; atomic for server-side apply.
    Replace,
    /// A list of objects merged item by item, matching items on `key`.
    Merge {
        /// The field identifying an item, such as `name` for containers.
        key: String,
    },
    /// A list of scalars with set semantics, such as `metadata.finalizers`.
    MergePrimitives,
}

/// Where lists merge by key and by which strategy, for one kind.
pub trait PatchSchema: Send + Sync {
    /// The strategy of the list at `path`: field names from the object root, where
    /// list items add no segment (`["spec", "template", "spec", "containers"]`).
    fn list_strategy(&self, path: &[&str]) -> ListStrategy;

    /// The fields identifying an item of the associative list at `path` for
    /// server-side apply (`x-kubernetes-list-map-keys`); by default the merge key.
    fn list_map_keys(&self, path: &[&str]) -> Vec<String> {
        match self.list_strategy(path) {
            ListStrategy::Merge { key } => vec![key],
            _ => Vec::new(),
        }
    }

    /// Whether the map at `path` is atomic for server-side apply (`+mapType=atomic`,
    /// `+structType=atomic`): owned, compared and replaced as a whole.
    fn is_atomic_map(&self, _path: &[&str]) -> bool {
        false
    }

    /// Whether the field at `path` is present in the typed zero value of its parent, as
    /// kube-apiserver encodes an unset Go field that is a struct or has no `omitempty`
    /// (`spec`, `template`, `strategy`, `containers`): such a field is never new, so an
    /// update that fills it does not own the field itself (no `"."` in `FieldsV1`).
    fn present_when_unset(&self, _path: &[&str]) -> bool {
        false
    }
}

/// One table entry's strategy, in a form that fits in a `static`.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Merge by this key; server-side apply keys on the same single field.
    Merge(&'static str),
    /// Merge by the first field; server-side apply keys on all of them.
    MergeKeys(&'static str, &'static [&'static str]),
    /// Scalars with set semantics.
    Set,
}

impl Rule {
    fn strategy(self) -> ListStrategy {
        match self {
            Rule::Merge(key) | Rule::MergeKeys(key, _) => ListStrategy::Merge {
                key: key.to_string(),
            },
            Rule::Set => ListStrategy::MergePrimitives,
        }
    }

    fn map_keys(self) -> Vec<String> {
        match self {
            Rule::Merge(key) => vec![key.to_string()],
            Rule::MergeKeys(_, keys) => keys.iter().map(|k| k.to_string()).collect(),
            Rule::Set => Vec::new(),
        }
    }
}

type Path = &'static [&'static str];

/// The patch metadata of one built-in kind.
#[derive(Debug)]
struct BuiltinSchema {
    /// Where a PodSpec sits in this kind (a Pod's `spec`, a Deployment's `spec.template.spec`).
    pod_specs: &'static [Path],
    /// Kind-specific lists, by exact path.
    lists: &'static [(Path, Rule)],
}

impl BuiltinSchema {
    fn rule(&self, path: &[&str]) -> Option<Rule> {
        if let Some(rule) = object_meta_rule(path) {
            return Some(rule);
        }
        for root in self.pod_specs {
            if path.len() > root.len() && path[..root.len()] == root[..] {
                return pod_spec_rule(&path[root.len()..]);
            }
        }
        if let Some((_, rule)) = self.lists.iter().find(|(p, _)| *p == path) {
            return Some(*rule);
        }
        match path {
            ["status", "conditions"] => Some(Rule::Merge("type")),
            _ => None,
        }
    }
}

impl PatchSchema for BuiltinSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        self.rule(path)
            .map_or(ListStrategy::Replace, Rule::strategy)
    }

    fn list_map_keys(&self, path: &[&str]) -> Vec<String> {
        self.rule(path).map(Rule::map_keys).unwrap_or_default()
    }

    /// Label selectors and RBAC role references (`+structType=atomic`) and the selector
    /// maps of Services, ReplicationControllers and pod specs (`+mapType=atomic`), wherever
    /// they appear.
    fn is_atomic_map(&self, path: &[&str]) -> bool {
        matches!(
            path.last(),
            Some(
                &("selector"
                    | "roleRef"
                    | "podSelector"
                    | "namespaceSelector"
                    | "labelSelector"
                    | "nodeSelector"
                    | "objectSelector")
            )
        )
    }

    /// Struct-valued fields and fields without `omitempty` of the built-in types.
    fn present_when_unset(&self, path: &[&str]) -> bool {
        matches!(
            path.last(),
            Some(
                &("spec"
                    | "status"
                    | "template"
                    | "strategy"
                    | "updateStrategy"
                    | "jobTemplate"
                    | "roleRef"
                    | "scaleTargetRef"
                    | "describedObject"
                    | "metric"
                    | "target"
                    | "containers"
                    | "selector"
                    | "resources"
                    | "port")
            )
        )
    }
}

/// ObjectMeta lists, at the root and in embedded templates (`spec.template.metadata`).
fn object_meta_rule(path: &[&str]) -> Option<Rule> {
    match path {
        [.., "metadata", "finalizers"] => Some(Rule::Set),
        [.., "metadata", "ownerReferences"] => Some(Rule::Merge("uid")),
        _ => None,
    }
}

/// PodSpec lists, relative to the PodSpec.
fn pod_spec_rule(rest: &[&str]) -> Option<Rule> {
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rest {
        [c] if CONTAINERS.contains(c) => Some(Rule::Merge("name")),
        [c, "ports"] if CONTAINERS.contains(c) => Some(Rule::MergeKeys(
            "containerPort",
            &["containerPort", "protocol"],
        )),
        [c, "env"] if CONTAINERS.contains(c) => Some(Rule::Merge("name")),
        [c, "volumeMounts"] if CONTAINERS.contains(c) => Some(Rule::Merge("mountPath")),
        [c, "volumeDevices"] if CONTAINERS.contains(c) => Some(Rule::Merge("devicePath")),
        ["volumes"] | ["imagePullSecrets"] | ["schedulingGates"] | ["resourceClaims"] => {
            Some(Rule::Merge("name"))
        }
        ["hostAliases"] => Some(Rule::Merge("ip")),
        ["topologySpreadConstraints"] => Some(Rule::MergeKeys(
            "topologyKey",
            &["topologyKey", "whenUnsatisfiable"],
        )),
        _ => None,
    }
}

const TEMPLATE_POD_SPEC: &[Path] = &[&["spec", "template", "spec"]];

static PLAIN: BuiltinSchema = BuiltinSchema {
    pod_specs: &[],
    lists: &[],
};

static POD: BuiltinSchema = BuiltinSchema {
    pod_specs: &[&["spec"]],
    lists: &[
        (&["status", "podIPs"], Rule::Merge("ip")),
        (&["status", "hostIPs"], Rule::Merge("ip")),
    ],
};

static POD_TEMPLATE: BuiltinSchema = BuiltinSchema {
    pod_specs: &[&["template", "spec"]],
    lists: &[],
};

static WORKLOAD: BuiltinSchema = BuiltinSchema {
    pod_specs: TEMPLATE_POD_SPEC,
    lists: &[],
};

static CRON_JOB: BuiltinSchema = BuiltinSchema {
    pod_specs: &[&["spec", "jobTemplate", "spec", "template", "spec"]],
    lists: &[],
};

static SERVICE: BuiltinSchema = BuiltinSchema {
    pod_specs: &[],
    lists: &[(
        &["spec", "ports"],
        Rule::MergeKeys("port", &["port", "protocol"]),
    )],
};

static SERVICE_ACCOUNT: BuiltinSchema = BuiltinSchema {
    pod_specs: &[],
    lists: &[(&["secrets"], Rule::Merge("name"))],
};

static NODE: BuiltinSchema = BuiltinSchema {
    pod_specs: &[],
    lists: &[
        (&["spec", "podCIDRs"], Rule::Set),
        (&["status", "addresses"], Rule::Merge("type")),
    ],
};

/// The built-in kinds by group and kind. Versions are not distinguished: every
/// served version of these kinds shares the same list metadata.
static KINDS: &[(&str, &str, &BuiltinSchema)] = &[
    ("", "Pod", &POD),
    ("", "PodTemplate", &POD_TEMPLATE),
    ("", "ReplicationController", &WORKLOAD),
    ("", "Service", &SERVICE),
    ("", "ServiceAccount", &SERVICE_ACCOUNT),
    ("", "Node", &NODE),
    ("", "Namespace", &PLAIN),
    ("", "ConfigMap", &PLAIN),
    ("", "Secret", &PLAIN),
    ("", "PersistentVolumeClaim", &PLAIN),
    ("", "PersistentVolume", &PLAIN),
    ("", "Endpoints", &PLAIN),
    ("", "Event", &PLAIN),
    ("", "LimitRange", &PLAIN),
    ("", "ResourceQuota", &PLAIN),
    ("apps", "Deployment", &WORKLOAD),
    ("apps", "StatefulSet", &WORKLOAD),
    ("apps", "DaemonSet", &WORKLOAD),
    ("apps", "ReplicaSet", &WORKLOAD),
    ("apps", "ControllerRevision", &PLAIN),
    ("batch", "Job", &WORKLOAD),
    ("batch", "CronJob", &CRON_JOB),
    ("networking.k8s.io", "Ingress", &PLAIN),
    ("networking.k8s.io", "IngressClass", &PLAIN),
    ("networking.k8s.io", "NetworkPolicy", &PLAIN),
    ("rbac.authorization.k8s.io", "Role", &PLAIN),
    ("rbac.authorization.k8s.io", "RoleBinding", &PLAIN),
    ("rbac.authorization.k8s.io", "ClusterRole", &PLAIN),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", &PLAIN),
    ("autoscaling", "HorizontalPodAutoscaler", &PLAIN),
    ("autoscaling", "Scale", &PLAIN),
    ("policy", "PodDisruptionBudget", &PLAIN),
    ("apiextensions.k8s.io", "CustomResourceDefinition", &PLAIN),
    ("discovery.k8s.io", "EndpointSlice", &PLAIN),
    ("coordination.k8s.io", "Lease", &PLAIN),
    ("storage.k8s.io", "StorageClass", &PLAIN),
    ("scheduling.k8s.io", "PriorityClass", &PLAIN),
    ("events.k8s.io", "Event", &PLAIN),
];

/// The patch metadata of a built-in kind, or None when the kind has none (custom
/// resources, Karmada kinds): the API then answers 415 to strategic merge patches.
pub fn builtin_patch_schema(
    group: &str,
    _version: &str,
    kind: &str,
) -> Option<&'static dyn PatchSchema> {
    KINDS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, schema)| *schema as &'static dyn PatchSchema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(key: &str) -> ListStrategy {
        ListStrategy::Merge {
            key: key.to_string(),
        }
    }

    #[test]
    fn table_lookups() {
        let cases: &[(&str, &str, &[&str], ListStrategy)] = &[
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers"],
                merge("name"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "ports"],
                merge("containerPort"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "initContainers", "env"],
                merge("name"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "volumeMounts"],
                merge("mountPath"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "args"],
                ListStrategy::Replace,
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "tolerations"],
                ListStrategy::Replace,
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "volumes"],
                merge("name"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "hostAliases"],
                merge("ip"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "spec", "topologySpreadConstraints"],
                merge("topologyKey"),
            ),
            (
                "apps",
                "Deployment",
                &["spec", "template", "metadata", "finalizers"],
                ListStrategy::MergePrimitives,
            ),
            (
                "apps",
                "Deployment",
                &["status", "conditions"],
                merge("type"),
            ),
            (
                "apps",
                "StatefulSet",
                &["spec", "volumeClaimTemplates"],
                ListStrategy::Replace,
            ),
            ("", "Pod", &["spec", "containers"], merge("name")),
            ("", "Pod", &["spec", "ephemeralContainers"], merge("name")),
            (
                "",
                "Pod",
                &["metadata", "finalizers"],
                ListStrategy::MergePrimitives,
            ),
            ("", "Pod", &["metadata", "ownerReferences"], merge("uid")),
            ("", "Service", &["spec", "ports"], merge("port")),
            (
                "",
                "ConfigMap",
                &["metadata", "finalizers"],
                ListStrategy::MergePrimitives,
            ),
            (
                "batch",
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                merge("name"),
            ),
            (
                "batch",
                "CronJob",
                &["spec", "template", "spec", "containers"],
                ListStrategy::Replace,
            ),
            (
                "batch",
                "Job",
                &["spec", "template", "spec", "imagePullSecrets"],
                merge("name"),
            ),
            (
                "rbac.authorization.k8s.io",
                "ClusterRole",
                &["rules"],
                ListStrategy::Replace,
            ),
            (
                "networking.k8s.io",
                "NetworkPolicy",
                &["spec", "ingress"],
                ListStrategy::Replace,
            ),
            (
                "autoscaling",
                "HorizontalPodAutoscaler",
                &["status", "conditions"],
                merge("type"),
            ),
        ];
        for (group, kind, path, want) in cases {
            let schema = builtin_patch_schema(group, "v1", kind).expect("built-in kind");
            assert_eq!(&schema.list_strategy(path), want, "{group}/{kind} {path:?}");
        }
    }

    #[test]
    fn apply_keys_can_be_compound() {
        let schema = builtin_patch_schema("", "v1", "Service").expect("service");
        assert_eq!(
            schema.list_map_keys(&["spec", "ports"]),
            ["port", "protocol"]
        );
        let schema = builtin_patch_schema("apps", "v1", "Deployment").expect("deployment");
        assert_eq!(
            schema.list_map_keys(&["spec", "template", "spec", "containers"]),
            ["name"]
        );
        assert!(
            schema
                .list_map_keys(&["spec", "template", "spec", "tolerations"])
                .is_empty()
        );
    }

    #[test]
    fn custom_kinds_have_no_schema() {
        assert!(
            builtin_patch_schema("policy.karmada.io", "v1alpha1", "PropagationPolicy").is_none()
        );
        assert!(builtin_patch_schema("example.com", "v1", "Widget").is_none());
        assert!(builtin_patch_schema("", "v1", "Widget").is_none());
        assert!(
            builtin_patch_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
                .is_some()
        );
    }
}
