//! ClusterRole aggregation (kube's clusterrole-aggregation controller) and label selectors.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::PolicyRule;
use crate::policy::parse_rules;

/// A ClusterRole as the aggregation sees it.
struct Role {
    name: String,
    labels: BTreeMap<String, String>,
    rules: Vec<PolicyRule>,
    /// `Some` when the role has an aggregationRule: its selectors, or `None` if one is invalid.
    selectors: Option<Option<Vec<Selector>>>,
}

/// A parsed metav1.LabelSelector.
struct Selector {
    match_labels: BTreeMap<String, String>,
    expressions: Vec<Expression>,
}

enum Expression {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// Parses a label selector; `None` when it is invalid (unknown operator, `In`/`NotIn`
    /// without values, values with `Exists`/`DoesNotExist`), as metav1.LabelSelectorAsSelector.
    fn parse(value: &Value) -> Option<Selector> {
        let mut match_labels = BTreeMap::new();
        match value.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    match_labels.insert(k.clone(), v.as_str()?.to_owned());
                }
            }
            Some(_) => return None,
        }
        let mut expressions = Vec::new();
        match value.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let key = item.get("key").and_then(Value::as_str)?.to_owned();
                    let values: Vec<String> = match item.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vs)) => vs
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<_>>()?,
                        Some(_) => return None,
                    };
                    let op = item.get("operator").and_then(Value::as_str)?;
                    expressions.push(match op {
                        "In" if !values.is_empty() => Expression::In(key, values),
                        "NotIn" if !values.is_empty() => Expression::NotIn(key, values),
                        "Exists" if values.is_empty() => Expression::Exists(key),
                        "DoesNotExist" if values.is_empty() => Expression::DoesNotExist(key),
                        _ => return None,
                    });
                }
            }
            Some(_) => return None,
        }
        Some(Selector {
            match_labels,
            expressions,
        })
    }

    /// Whether the labels satisfy every requirement; an empty selector matches everything.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|e| match e {
                Expression::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
                Expression::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
                Expression::Exists(k) => labels.contains_key(k),
                Expression::DoesNotExist(k) => !labels.contains_key(k),
            })
    }
}

fn parse_role(obj: &Value) -> Option<Role> {
    if obj
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "ClusterRole")
    {
        return None;
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)?
        .to_owned();
    let labels = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let rules = parse_rules(obj, "ClusterRole").unwrap_or_default();
    let selectors = match obj.get("aggregationRule") {
        None | Some(Value::Null) => None,
        Some(rule) => Some(match rule.get("clusterRoleSelectors") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(Selector::parse).collect(),
            Some(_) => None,
        }),
    };
    Some(Role {
        name,
        labels,
        rules,
        selectors,
    })
}

/// The rules of every ClusterRole with an aggregationRule, computed from the ClusterRoles whose
/// labels match its clusterRoleSelectors (matchLabels and matchExpressions In/NotIn/Exists/
/// DoesNotExist), as kube's clusterrole-aggregation controller writes them into `.rules`.
///
/// For each selector in order, the matching ClusterRoles (sorted by name, the role itself left
/// out) contribute their rules; a rule already present is not added again. Aggregated roles
/// that match other aggregated roles (`edit` is labelled aggregate-to-admin) see those roles'
/// computed rules: the computation is repeated until it no longer changes, which is where the
/// controller converges. A role with an invalid selector keeps its stored rules, as the
/// controller leaves it alone. The result is sorted by role name; objects that are not
/// ClusterRoles are ignored.
pub fn aggregate(cluster_roles: &[Value]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut roles: Vec<Role> = cluster_roles.iter().filter_map(parse_role).collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    roles.dedup_by(|later, earlier| later.name == earlier.name);

    // Computed roles start empty and grow to the least fixed point.
    for role in &mut roles {
        if matches!(role.selectors, Some(Some(_))) {
            role.rules.clear();
        }
    }
    let rounds = roles.len() + 2;
    for _ in 0..rounds {
        let next: Vec<Option<Vec<PolicyRule>>> = roles
            .iter()
            .map(|role| match &role.selectors {
                Some(Some(selectors)) => Some(compute(role, selectors, &roles)),
                _ => None,
            })
            .collect();
        let mut changed = false;
        for (role, rules) in roles.iter_mut().zip(next) {
            if let Some(rules) = rules
                && rules != role.rules
            {
                role.rules = rules;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    roles
        .into_iter()
        .filter(|r| r.selectors.is_some())
        .map(|r| (r.name, r.rules))
        .collect()
}

fn compute(role: &Role, selectors: &[Selector], roles: &[Role]) -> Vec<PolicyRule> {
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in selectors {
        for other in roles {
            if other.name == role.name || !selector.matches(&other.labels) {
                continue;
            }
            for rule in &other.rules {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    rules
}
