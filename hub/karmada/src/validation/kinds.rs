//! The Karmada kinds Flotilla serves, with their discovery and table metadata.

/// A column of `kubectl get` output, in CRD `additionalPrinterColumns` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrinterColumn {
    /// Column header, e.g. `PRIORITY`.
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `date`.
    pub type_: &'static str,
    /// JSONPath of the value (`.metadata.creationTimestamp` for AGE).
    pub json_path: &'static str,
    /// Column description.
    pub description: &'static str,
    /// 0 = always shown, >0 = only with `-o wide`.
    pub priority: i32,
}

/// One served Karmada kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// API group, e.g. `policy.karmada.io`.
    pub group: &'static str,
    /// Version, e.g. `v1alpha1`.
    pub version: &'static str,
    /// Kind, e.g. `PropagationPolicy`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `propagationpolicies`.
    pub plural: &'static str,
    /// Singular resource name, e.g. `propagationpolicy`.
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names, e.g. `pp`.
    pub short_names: &'static [&'static str],
    /// Categories for `kubectl get <category>`.
    pub categories: &'static [&'static str],
    /// Whether a `status` subresource exists.
    pub status_subresource: bool,
    /// Table columns besides NAME.
    pub printer_columns: &'static [PrinterColumn],
    /// Name of the OpenAPI schema in [`crate::openapi::openapi_schemas`].
    pub schema_name: &'static str,
}

const AGE: PrinterColumn = PrinterColumn {
    name: "AGE",
    type_: "date",
    json_path: ".metadata.creationTimestamp",
    description: "Time since creation.",
    priority: 0,
};

const POLICY_COLUMNS: &[PrinterColumn] = &[
    PrinterColumn {
        name: "CONFLICT-RESOLUTION",
        type_: "string",
        json_path: ".spec.conflictResolution",
        description: "What to do when the member already has the resource.",
        priority: 0,
    },
    PrinterColumn {
        name: "PRIORITY",
        type_: "integer",
        json_path: ".spec.priority",
        description: "Explicit priority of the policy.",
        priority: 0,
    },
    AGE,
];

const BINDING_COLUMNS: &[PrinterColumn] = &[
    PrinterColumn {
        name: "SCHEDULED",
        type_: "string",
        json_path: ".status.conditions[?(@.type==\"Scheduled\")].status",
        description: "Whether the binding is scheduled.",
        priority: 0,
    },
    PrinterColumn {
        name: "FULLYAPPLIED",
        type_: "string",
        json_path: ".status.conditions[?(@.type==\"FullyApplied\")].status",
        description: "Whether every cluster applied the resource.",
        priority: 0,
    },
    AGE,
];

const CLUSTER_COLUMNS: &[PrinterColumn] = &[
    PrinterColumn {
        name: "VERSION",
        type_: "string",
        json_path: ".status.kubernetesVersion",
        description: "Kubernetes version of the member.",
        priority: 0,
    },
    PrinterColumn {
        name: "MODE",
        type_: "string",
        json_path: ".spec.syncMode",
        description: "Push or Pull.",
        priority: 0,
    },
    PrinterColumn {
        name: "READY",
        type_: "string",
        json_path: ".status.conditions[?(@.type==\"Ready\")].status",
        description: "Ready condition status; Unknown when absent.",
        priority: 0,
    },
    AGE,
    PrinterColumn {
        name: "ZONES",
        type_: "string",
        json_path: ".spec.zones",
        description: "Failure zones.",
        priority: 1,
    },
    PrinterColumn {
        name: "REGION",
        type_: "string",
        json_path: ".spec.region",
        description: "Region.",
        priority: 1,
    },
    PrinterColumn {
        name: "PROVIDER",
        type_: "string",
        json_path: ".spec.provider",
        description: "Provider.",
        priority: 1,
    },
    PrinterColumn {
        name: "API-ENDPOINT",
        type_: "string",
        json_path: ".spec.apiEndpoint",
        description: "Member API server.",
        priority: 1,
    },
    PrinterColumn {
        name: "PROXY-URL",
        type_: "string",
        json_path: ".spec.proxyURL",
        description: "Proxy to the member.",
        priority: 1,
    },
];

const WORK_COLUMNS: &[PrinterColumn] = &[
    PrinterColumn {
        name: "WORKLOAD-KIND",
        type_: "string",
        json_path: ".spec.workload.manifests[*].kind",
        description: "Kind of the manifest.",
        priority: 0,
    },
    PrinterColumn {
        name: "APPLIED",
        type_: "string",
        json_path: ".status.conditions[?(@.type==\"Applied\")].status",
        description: "Whether the manifest was applied.",
        priority: 0,
    },
    AGE,
];

const SCALE_TARGET_COLUMNS: [PrinterColumn; 2] = [
    PrinterColumn {
        name: "REFERENCE-KIND",
        type_: "string",
        json_path: ".spec.scaleTargetRef.kind",
        description: "Kind of the scaled object.",
        priority: 0,
    },
    PrinterColumn {
        name: "REFERENCE-NAME",
        type_: "string",
        json_path: ".spec.scaleTargetRef.name",
        description: "Name of the scaled object.",
        priority: 0,
    },
];

const FHPA_COLUMNS: &[PrinterColumn] = &[
    SCALE_TARGET_COLUMNS[0],
    SCALE_TARGET_COLUMNS[1],
    PrinterColumn {
        name: "MINPODS",
        type_: "integer",
        json_path: ".spec.minReplicas",
        description: "Lower limit of the replicas.",
        priority: 0,
    },
    PrinterColumn {
        name: "MAXPODS",
        type_: "integer",
        json_path: ".spec.maxReplicas",
        description: "Upper limit of the replicas.",
        priority: 0,
    },
    PrinterColumn {
        name: "REPLICAS",
        type_: "integer",
        json_path: ".status.currentReplicas",
        description: "Replicas of the target as last seen.",
        priority: 0,
    },
    PrinterColumn {
        name: "DESIRED",
        type_: "integer",
        json_path: ".status.desiredReplicas",
        description: "Replicas the autoscaler last computed.",
        priority: 0,
    },
    AGE,
];

const CRON_FHPA_COLUMNS: &[PrinterColumn] =
    &[SCALE_TARGET_COLUMNS[0], SCALE_TARGET_COLUMNS[1], AGE];

const MCS_COLUMNS: &[PrinterColumn] = &[
    PrinterColumn {
        name: "TYPES",
        type_: "string",
        json_path: ".spec.types",
        description: "How the Service is exposed.",
        priority: 0,
    },
    PrinterColumn {
        name: "DISPATCHED",
        type_: "string",
        json_path: ".status.conditions[?(@.type==\"EndpointSliceDispatched\")].status",
        description: "Whether every consumer received the providers' endpoints.",
        priority: 0,
    },
    AGE,
];

const IMPORT_COLUMNS: &[PrinterColumn] = &[
    PrinterColumn {
        name: "TYPE",
        type_: "string",
        json_path: ".spec.type",
        description: "ClusterSetIP or Headless.",
        priority: 0,
    },
    PrinterColumn {
        name: "IP",
        type_: "string",
        json_path: ".spec.ips",
        description: "The cluster-set IP.",
        priority: 0,
    },
    AGE,
];

const CATEGORIES: &[&str] = &["karmada-io"];

static KINDS: &[KindInfo] = &[
    KindInfo {
        group: "policy.karmada.io",
        version: "v1alpha1",
        kind: "PropagationPolicy",
        plural: "propagationpolicies",
        singular: "propagationpolicy",
        namespaced: true,
        short_names: &["pp"],
        categories: CATEGORIES,
        status_subresource: false,
        printer_columns: POLICY_COLUMNS,
        schema_name: "io.karmada.policy.v1alpha1.PropagationPolicy",
    },
    KindInfo {
        group: "policy.karmada.io",
        version: "v1alpha1",
        kind: "ClusterPropagationPolicy",
        plural: "clusterpropagationpolicies",
        singular: "clusterpropagationpolicy",
        namespaced: false,
        short_names: &["cpp"],
        categories: CATEGORIES,
        status_subresource: false,
        printer_columns: POLICY_COLUMNS,
        schema_name: "io.karmada.policy.v1alpha1.ClusterPropagationPolicy",
    },
    KindInfo {
        group: "policy.karmada.io",
        version: "v1alpha1",
        kind: "OverridePolicy",
        plural: "overridepolicies",
        singular: "overridepolicy",
        namespaced: true,
        short_names: &["op"],
        categories: CATEGORIES,
        status_subresource: false,
        printer_columns: &[AGE],
        schema_name: "io.karmada.policy.v1alpha1.OverridePolicy",
    },
    KindInfo {
        group: "policy.karmada.io",
        version: "v1alpha1",
        kind: "ClusterOverridePolicy",
        plural: "clusteroverridepolicies",
        singular: "clusteroverridepolicy",
        namespaced: false,
        short_names: &["cop"],
        categories: CATEGORIES,
        status_subresource: false,
        printer_columns: &[AGE],
        schema_name: "io.karmada.policy.v1alpha1.ClusterOverridePolicy",
    },
    KindInfo {
        group: "policy.karmada.io",
        version: "v1alpha1",
        kind: "ClusterTaintPolicy",
        plural: "clustertaintpolicies",
        singular: "clustertaintpolicy",
        namespaced: false,
        short_names: &[],
        categories: CATEGORIES,
        status_subresource: false,
        printer_columns: &[AGE],
        schema_name: "io.karmada.policy.v1alpha1.ClusterTaintPolicy",
    },
    KindInfo {
        group: "apps.karmada.io",
        version: "v1alpha1",
        kind: "WorkloadRebalancer",
        plural: "workloadrebalancers",
        singular: "workloadrebalancer",
        namespaced: false,
        short_names: &[],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: &[AGE],
        schema_name: "io.karmada.apps.v1alpha1.WorkloadRebalancer",
    },
    KindInfo {
        group: "autoscaling.karmada.io",
        version: "v1alpha1",
        kind: "FederatedHPA",
        plural: "federatedhpas",
        singular: "federatedhpa",
        namespaced: true,
        short_names: &["fhpa"],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: FHPA_COLUMNS,
        schema_name: "io.karmada.autoscaling.v1alpha1.FederatedHPA",
    },
    KindInfo {
        group: "autoscaling.karmada.io",
        version: "v1alpha1",
        kind: "CronFederatedHPA",
        plural: "cronfederatedhpas",
        singular: "cronfederatedhpa",
        namespaced: true,
        short_names: &["cronfhpa"],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: CRON_FHPA_COLUMNS,
        schema_name: "io.karmada.autoscaling.v1alpha1.CronFederatedHPA",
    },
    KindInfo {
        group: "networking.karmada.io",
        version: "v1alpha1",
        kind: "MultiClusterService",
        plural: "multiclusterservices",
        singular: "multiclusterservice",
        namespaced: true,
        short_names: &["mcs"],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: MCS_COLUMNS,
        schema_name: "io.karmada.networking.v1alpha1.MultiClusterService",
    },
    KindInfo {
        group: "multicluster.x-k8s.io",
        version: "v1alpha1",
        kind: "ServiceExport",
        plural: "serviceexports",
        singular: "serviceexport",
        namespaced: true,
        short_names: &["svcex"],
        categories: &[],
        status_subresource: true,
        printer_columns: &[AGE],
        schema_name: "io.x-k8s.multicluster.v1alpha1.ServiceExport",
    },
    KindInfo {
        group: "multicluster.x-k8s.io",
        version: "v1alpha1",
        kind: "ServiceImport",
        plural: "serviceimports",
        singular: "serviceimport",
        namespaced: true,
        short_names: &["svcim"],
        categories: &[],
        status_subresource: true,
        printer_columns: IMPORT_COLUMNS,
        schema_name: "io.x-k8s.multicluster.v1alpha1.ServiceImport",
    },
    KindInfo {
        group: "cluster.karmada.io",
        version: "v1alpha1",
        kind: "Cluster",
        plural: "clusters",
        singular: "cluster",
        namespaced: false,
        short_names: &[],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: CLUSTER_COLUMNS,
        schema_name: "io.karmada.cluster.v1alpha1.Cluster",
    },
    KindInfo {
        group: "work.karmada.io",
        version: "v1alpha2",
        kind: "ResourceBinding",
        plural: "resourcebindings",
        singular: "resourcebinding",
        namespaced: true,
        short_names: &["rb"],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: BINDING_COLUMNS,
        schema_name: "io.karmada.work.v1alpha2.ResourceBinding",
    },
    KindInfo {
        group: "work.karmada.io",
        version: "v1alpha2",
        kind: "ClusterResourceBinding",
        plural: "clusterresourcebindings",
        singular: "clusterresourcebinding",
        namespaced: false,
        short_names: &["crb"],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: BINDING_COLUMNS,
        schema_name: "io.karmada.work.v1alpha2.ClusterResourceBinding",
    },
    KindInfo {
        group: "work.karmada.io",
        version: "v1alpha1",
        kind: "Work",
        plural: "works",
        singular: "work",
        namespaced: true,
        short_names: &["wk"],
        categories: CATEGORIES,
        status_subresource: true,
        printer_columns: WORK_COLUMNS,
        schema_name: "io.karmada.work.v1alpha1.Work",
    },
];

/// Which served Karmada kinds exist.
pub fn served_kinds() -> &'static [KindInfo] {
    KINDS
}

/// Looks a served kind up by its kind name.
pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}
