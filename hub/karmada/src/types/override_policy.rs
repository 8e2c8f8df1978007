//! `policy.karmada.io/v1alpha1` OverridePolicy and ClusterOverridePolicy.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{ClusterAffinity, ResourceSelector, null_default};
use super::policy::Metadata;

/// The spec shared by OverridePolicy and ClusterOverridePolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideSpec {
    /// Which resource templates are overridden; empty means all.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_selectors: Vec<ResourceSelector>,
    /// Rules applied in order to each matching target cluster.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub override_rules: Vec<RuleWithCluster>,
    /// Deprecated single-rule form: the target clusters (use `overrideRules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// Deprecated single-rule form: the overriders (use `overrideRules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overriders: Option<Overriders>,
}

impl OverrideSpec {
    /// The effective rules: `overrideRules`, or the legacy `targetCluster` + `overriders` pair.
    pub fn effective_rules(&self) -> Vec<RuleWithCluster> {
        if !self.override_rules.is_empty() {
            return self.override_rules.clone();
        }
        match &self.overriders {
            Some(o) => vec![RuleWithCluster {
                target_cluster: self.target_cluster.clone(),
                overriders: o.clone(),
            }],
            None => Vec::new(),
        }
    }
}

/// Overriders applied to the clusters matched by `targetCluster` (all when nil).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleWithCluster {
    /// Clusters the rule applies to; nil means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// What to change.
    #[serde(default)]
    pub overriders: Overriders,
}

/// The overriders of one rule, applied in a fixed order: image, command, args, labels,
/// annotations, field, plaintext.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overriders {
    /// RFC 6902 JSON patch operations on the whole object.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub plaintext: Vec<PlaintextOverrider>,
    /// Container image rewrites.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub image_overrider: Vec<ImageOverrider>,
    /// Container command edits.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub command_overrider: Vec<CommandArgsOverrider>,
    /// Container args edits.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args_overrider: Vec<CommandArgsOverrider>,
    /// Object label edits.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels_overrider: Vec<LabelAnnotationOverrider>,
    /// Object annotation edits.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub annotations_overrider: Vec<LabelAnnotationOverrider>,
    /// Patches inside a string field holding JSON or YAML.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub field_overrider: Vec<FieldOverrider>,
}

impl Overriders {
    /// Whether no overrider is set (Karmada's `EmptyOverrides`): Go clients always send
    /// `overriders: {}`.
    pub fn is_empty(&self) -> bool {
        self.plaintext.is_empty()
            && self.image_overrider.is_empty()
            && self.command_overrider.is_empty()
            && self.args_overrider.is_empty()
            && self.labels_overrider.is_empty()
            && self.annotations_overrider.is_empty()
            && self.field_overrider.is_empty()
    }
}

/// One JSON patch operation on the whole object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaintextOverrider {
    /// JSON pointer of the target field.
    #[serde(default)]
    pub path: String,
    /// `add`, `remove` or `replace`.
    #[serde(default)]
    #[schemars(extend("enum" = ["add", "remove", "replace"]))]
    pub operator: String,
    /// The value for `add`/`replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Rewrites one component of container images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageOverrider {
    /// Restricts the rewrite to the image at one path; without it all containers are rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<ImagePredicate>,
    /// `Registry`, `Repository` or `Tag`.
    #[serde(default)]
    #[schemars(extend("enum" = ["Registry", "Repository", "Tag"]))]
    pub component: String,
    /// `add`, `remove` or `replace`.
    #[serde(default)]
    #[schemars(extend("enum" = ["add", "remove", "replace"]))]
    pub operator: String,
    /// The value to add or replace with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// The image path an image overrider applies to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePredicate {
    /// JSON pointer of the image string, e.g. `/spec/template/spec/containers/0/image`.
    #[serde(default)]
    pub path: String,
}

/// Adds or removes items of a container's command or args.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandArgsOverrider {
    /// The container name.
    #[serde(default)]
    pub container_name: String,
    /// `add` or `remove`.
    #[serde(default)]
    #[schemars(extend("enum" = ["add", "remove"]))]
    pub operator: String,
    /// Items to append or remove.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub value: Vec<String>,
}

/// Adds, replaces or removes object labels or annotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelAnnotationOverrider {
    /// `add`, `remove` or `replace`.
    #[serde(default)]
    #[schemars(extend("enum" = ["add", "remove", "replace"]))]
    pub operator: String,
    /// Keys and values.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub value: BTreeMap<String, String>,
}

/// Patches a string field that holds a JSON or YAML document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldOverrider {
    /// JSON pointer of the string field, e.g. `/data/config.yaml`.
    #[serde(default)]
    pub field_path: String,
    /// Operations when the field holds JSON.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub json: Vec<FieldPatchOperation>,
    /// Operations when the field holds YAML.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub yaml: Vec<FieldPatchOperation>,
}

/// One patch operation inside an embedded document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldPatchOperation {
    /// JSON pointer inside the embedded document.
    #[serde(default)]
    pub sub_path: String,
    /// `add`, `remove` or `replace`.
    #[serde(default)]
    #[schemars(extend("enum" = ["add", "remove", "replace"]))]
    pub operator: String,
    /// The value for `add`/`replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// `policy.karmada.io/v1alpha1` OverridePolicy (namespaced).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverridePolicy {
    /// `policy.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `OverridePolicy`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The override rules.
    #[serde(default)]
    pub spec: OverrideSpec,
}

/// `policy.karmada.io/v1alpha1` ClusterOverridePolicy (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOverridePolicy {
    /// `policy.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ClusterOverridePolicy`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The override rules.
    #[serde(default)]
    pub spec: OverrideSpec,
}
