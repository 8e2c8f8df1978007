//! One PolicyRule and how it matches a request (kube's `RuleAllows` and the evaluation helpers).

use serde::{Deserialize, Deserializer, Serialize};

use crate::Request;

/// The wildcard of verbs, apiGroups, resources and nonResourceURLs.
pub(crate) const ALL: &str = "*";

/// One RBAC PolicyRule, in the Kubernetes JSON form (`verbs`, `apiGroups`, `resources`,
/// `resourceNames`, `nonResourceURLs`; missing or null lists are empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs, `*` for all.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub verbs: Vec<String>,
    /// API groups, `""` for the core group, `*` for all.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub api_groups: Vec<String>,
    /// Resources: `pods`, `pods/exec`, `*/scale`, `*` for all.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<String>,
    /// Object names; empty means all names.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
    /// Non-resource paths: exact, or a prefix ending in `*`.
    #[serde(
        default,
        rename = "nonResourceURLs",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl PolicyRule {
    /// A resource rule: `verbs` on `resources` in `api_groups`, all names.
    pub fn resource(verbs: &[&str], api_groups: &[&str], resources: &[&str]) -> Self {
        PolicyRule {
            verbs: strings(verbs),
            api_groups: strings(api_groups),
            resources: strings(resources),
            ..PolicyRule::default()
        }
    }

    /// A non-resource rule: `verbs` on `urls`.
    pub fn non_resource(verbs: &[&str], urls: &[&str]) -> Self {
        PolicyRule {
            verbs: strings(verbs),
            non_resource_urls: strings(urls),
            ..PolicyRule::default()
        }
    }

    /// The same rule restricted to the named objects.
    pub fn with_names(mut self, names: &[&str]) -> Self {
        self.resource_names = strings(names);
        self
    }

    /// Whether this rule allows the request (kube's `RuleAllows`).
    pub fn allows(&self, req: &Request) -> bool {
        match req {
            Request::Resource {
                verb,
                api_group,
                resource,
                subresource,
                name,
                ..
            } => {
                let sub = subresource.as_deref().unwrap_or("");
                let combined = if sub.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{sub}")
                };
                self.verb_matches(verb)
                    && self.api_group_matches(api_group)
                    && self.resource_matches(&combined, sub)
                    && self.resource_name_matches(name.as_deref().unwrap_or(""))
            }
            Request::NonResource { verb, path } => {
                self.verb_matches(verb) && self.non_resource_url_matches(path)
            }
        }
    }

    /// Whether the rule names `verb` or `*`.
    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == ALL || v == verb)
    }

    /// Whether the rule names `group` or `*`.
    pub fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == ALL || g == group)
    }

    /// Whether the rule covers `combined` (`resource` or `resource/subresource`): `*`, an exact
    /// match, or `*/subresource` when the request has that subresource. As in kube, a rule
    /// `resource/*` is not a wildcard: it only matches the literal resource name `resource/*`.
    pub fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == ALL
                || r == combined
                || (!subresource.is_empty()
                    && r.strip_prefix("*/").is_some_and(|s| s == subresource))
        })
    }

    /// Whether the rule allows the object `name`: a rule without resourceNames allows every name;
    /// a rule with resourceNames never matches a request without a name (list, create).
    pub fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    /// Whether the rule covers `path`: `*`, an exact match, or a prefix ending in `*`.
    pub fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| url_covers(u, path))
    }

    /// kube's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |label: &str, items: &[String]| {
            if !items.is_empty() {
                let quoted: Vec<String> =
                    items.iter().map(|s| crate::message::go_quote(s)).collect();
                parts.push(format!("{label}:[{}]", quoted.join(" ")));
            }
        };
        push("APIGroups", &self.api_groups);
        push("Resources", &self.resources);
        push("NonResourceURLs", &self.non_resource_urls);
        push("ResourceNames", &self.resource_names);
        push("Verbs", &self.verbs);
        format!("{{{}}}", parts.join(", "))
    }
}

/// Whether the owner URL pattern covers `path` (exact, or `prefix*`; `*` covers everything).
pub(crate) fn url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}
