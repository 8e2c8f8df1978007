//! The escalation check: you cannot grant what you do not have (kube's validation.Covers).

use crate::PolicyRule;
use crate::rule::{ALL, url_covers};

/// Whether `owner` rules cover every rule in `requested` (kube's escalation check,
/// validation.Covers / ConfirmNoEscalation), for RBAC's "you cannot grant what you do not have".
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> bool {
    requested
        .iter()
        .flat_map(breakdown)
        .all(|sub| owner.iter().any(|o| rule_covers(o, &sub)))
}

/// The pieces of `requested` that `owner` does not cover, each with at most one api group,
/// resource, resource name (or non-resource URL) and verb, in `requested` order.
pub fn uncovered(owner: &[PolicyRule], requested: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    for sub in requested.iter().flat_map(breakdown) {
        if !owner.iter().any(|o| rule_covers(o, &sub)) && !out.contains(&sub) {
            out.push(sub);
        }
    }
    out
}

/// kube's `BreakdownRule`: one rule per (group, resource, verb[, name]) and per (url, verb).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..PolicyRule::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(base);
                } else {
                    for name in &rule.resource_names {
                        out.push(PolicyRule {
                            resource_names: one(name),
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

/// kube's `resourceCoversAll`: `*`, exact names, or `*/subresource` for `resource/subresource`.
fn resources_cover(owner: &[String], requested: &[String]) -> bool {
    if has(owner, ALL) {
        return true;
    }
    requested.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// kube's `ruleCovers`: whether one owner rule covers a broken-down rule.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resources_cover(&owner.resources, &sub.resources);
    let urls = sub
        .non_resource_urls
        .iter()
        .all(|path| owner.non_resource_urls.iter().any(|o| url_covers(o, path)));
    let names = owner.resource_names.is_empty()
        || (!sub.resource_names.is_empty() && has_all(&owner.resource_names, &sub.resource_names));
    verbs && groups && resources && urls && names
}
