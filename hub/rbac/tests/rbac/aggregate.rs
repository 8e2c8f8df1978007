//! aggregate(): the clusterrole-aggregation controller.

use flotilla_rbac::{PolicyRule, aggregate};
use serde_json::{Value, json};

fn labelled(name: &str, labels: Value, verbs: &[&str], resource: &str) -> Value {
    json!({"kind": "ClusterRole", "metadata": {"name": name, "labels": labels},
           "rules": [{"apiGroups": [""], "resources": [resource], "verbs": verbs}]})
}

fn aggregated(name: &str, labels: Value, selectors: Value) -> Value {
    json!({"kind": "ClusterRole", "metadata": {"name": name, "labels": labels},
           "aggregationRule": {"clusterRoleSelectors": selectors}, "rules": []})
}

fn rule(verbs: &[&str], resource: &str) -> PolicyRule {
    PolicyRule::resource(verbs, &[""], &[resource])
}

fn rules_of(result: &[(String, Vec<PolicyRule>)], name: &str) -> Vec<PolicyRule> {
    result
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r.clone())
        .expect("role in the result")
}

#[test]
fn match_labels_sorted_by_name_and_deduplicated() {
    let roles = vec![
        labelled("b-pods", json!({"agg": "x"}), &["get"], "pods"),
        labelled("a-secrets", json!({"agg": "x"}), &["get"], "secrets"),
        labelled("c-pods-again", json!({"agg": "x"}), &["get"], "pods"),
        labelled("other", json!({"agg": "y"}), &["get"], "nodes"),
        aggregated(
            "target",
            json!({"agg": "x"}),
            json!([{"matchLabels": {"agg": "x"}}]),
        ),
    ];
    let result = aggregate(&roles);
    assert_eq!(
        result.len(),
        1,
        "only roles with an aggregationRule are returned"
    );
    assert_eq!(
        rules_of(&result, "target"),
        vec![rule(&["get"], "secrets"), rule(&["get"], "pods")],
        "by name, the duplicate once, the role itself left out"
    );
}

#[test]
fn match_expressions() {
    let sources = vec![
        labelled("tier-a", json!({"tier": "a", "team": "x"}), &["get"], "a"),
        labelled("tier-b", json!({"tier": "b"}), &["get"], "b"),
        labelled(
            "tier-c",
            json!({"tier": "c", "legacy": "yes"}),
            &["get"],
            "c",
        ),
        labelled("no-tier", json!({}), &["get"], "none"),
    ];
    let select = |selector: Value| {
        let mut roles = sources.clone();
        roles.push(aggregated("t", json!({"tier": "t"}), json!([selector])));
        let result = aggregate(&roles);
        rules_of(&result, "t")
    };
    let expr = |key: &str, op: &str, values: &[&str]| json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]});
    assert_eq!(
        select(expr("tier", "In", &["a", "b"])),
        vec![rule(&["get"], "a"), rule(&["get"], "b")]
    );
    assert_eq!(
        select(expr("tier", "NotIn", &["a", "b"])),
        vec![rule(&["get"], "none"), rule(&["get"], "c")],
        "NotIn also matches roles without the label"
    );
    assert_eq!(
        select(expr("legacy", "Exists", &[])),
        vec![rule(&["get"], "c")]
    );
    assert_eq!(
        select(expr("tier", "DoesNotExist", &[])),
        vec![rule(&["get"], "none")]
    );
    assert_eq!(
        select(
            json!({"matchLabels": {"team": "x"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "c"]}]})
        ),
        vec![rule(&["get"], "a")],
        "matchLabels and matchExpressions must all hold"
    );
}

#[test]
fn several_selectors_in_order_and_dedup() {
    let roles = vec![
        labelled("a", json!({"one": "true"}), &["get"], "pods"),
        labelled("b", json!({"two": "true"}), &["list"], "pods"),
        labelled(
            "c",
            json!({"one": "true", "two": "true"}),
            &["watch"],
            "pods",
        ),
        aggregated(
            "t",
            json!({}),
            json!([{"matchLabels": {"two": "true"}}, {"matchLabels": {"one": "true"}}]),
        ),
    ];
    assert_eq!(
        rules_of(&aggregate(&roles), "t"),
        vec![
            rule(&["list"], "pods"),
            rule(&["watch"], "pods"),
            rule(&["get"], "pods")
        ]
    );
}

#[test]
fn nested_aggregation_converges() {
    // As the defaults: view is aggregated into edit, edit into admin.
    let roles = vec![
        aggregated(
            "admin",
            json!({}),
            json!([{"matchLabels": {"to-admin": "true"}}]),
        ),
        aggregated(
            "edit",
            json!({"to-admin": "true"}),
            json!([{"matchLabels": {"to-edit": "true"}}]),
        ),
        aggregated(
            "view",
            json!({"to-edit": "true"}),
            json!([{"matchLabels": {"to-view": "true"}}]),
        ),
        labelled(
            "for-admin",
            json!({"to-admin": "true"}),
            &["create"],
            "roles",
        ),
        labelled("for-edit", json!({"to-edit": "true"}), &["create"], "pods"),
        labelled("for-view", json!({"to-view": "true"}), &["get"], "pods"),
    ];
    let result = aggregate(&roles);
    assert_eq!(rules_of(&result, "view"), vec![rule(&["get"], "pods")]);
    assert_eq!(
        rules_of(&result, "edit"),
        vec![rule(&["create"], "pods"), rule(&["get"], "pods")]
    );
    assert_eq!(
        rules_of(&result, "admin"),
        vec![
            rule(&["create"], "pods"),
            rule(&["get"], "pods"),
            rule(&["create"], "roles")
        ]
    );
}

#[test]
fn stale_rules_are_replaced_and_invalid_selectors_keep_them() {
    let mut stale = aggregated("t", json!({}), json!([{"matchLabels": {"x": "1"}}]));
    stale["rules"] = json!([{"apiGroups": [""], "resources": ["old"], "verbs": ["get"]}]);
    let mut invalid = aggregated(
        "u",
        json!({}),
        json!([{"matchExpressions": [{"key": "x", "operator": "In"}]}]),
    );
    invalid["rules"] = json!([{"apiGroups": [""], "resources": ["kept"], "verbs": ["get"]}]);
    let roles = vec![
        stale,
        invalid,
        labelled("src", json!({"x": "1"}), &["get"], "new"),
    ];
    let result = aggregate(&roles);
    assert_eq!(rules_of(&result, "t"), vec![rule(&["get"], "new")]);
    assert_eq!(rules_of(&result, "u"), vec![rule(&["get"], "kept")]);
}

#[test]
fn empty_selector_matches_every_other_role() {
    let roles = vec![
        labelled("a", json!({}), &["get"], "pods"),
        json!({"kind": "ClusterRole", "metadata": {"name": "b"}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}),
        aggregated("all", json!({}), json!([{}])),
        json!({"kind": "Role", "metadata": {"name": "ignored", "namespace": "ns"}}),
    ];
    assert_eq!(
        rules_of(&aggregate(&roles), "all"),
        vec![rule(&["get"], "pods"), rule(&["get"], "nodes")]
    );
}
