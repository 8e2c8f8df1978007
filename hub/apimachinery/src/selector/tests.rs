#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};

use super::*;

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn label_selector_matching() {
    let web =
        labels(json!({"app": "web", "tier": "frontend", "version": "3", "example.com/team": "a"}));
    let none = Map::new();
    let cases: &[(&str, bool, bool)] = &[
        // selector, matches web, matches an object without labels
        ("", true, true),
        ("app=web", true, false),
        ("app==web", true, false),
        ("app = web", true, false),
        ("app!=web", false, true),
        ("app!=db", true, true),
        ("app in (web, db)", true, false),
        ("app in (db)", false, false),
        ("app notin (db)", true, true),
        ("app notin (web,db)", false, true),
        ("app", true, false),
        ("!app", false, true),
        ("! app", false, true),
        ("missing", false, false),
        ("!missing", true, true),
        ("app=web,tier=frontend", true, false),
        ("app=web,tier=backend", false, false),
        ("app=web, !missing, tier in (frontend)", true, false),
        ("version>2", true, false),
        ("version>3", false, false),
        ("version<4", true, false),
        ("example.com/team=a", true, false),
        ("app=", false, false),
        ("app in (web,)", true, false),
    ];
    for (selector, want_web, want_none) in cases {
        let s = LabelSelector::parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
        assert_eq!(s.matches(&web), *want_web, "{selector:?} on web");
        assert_eq!(s.matches(&none), *want_none, "{selector:?} on no labels");
    }
    assert!(LabelSelector::parse("  ").unwrap().is_empty());
    assert!(!LabelSelector::parse("a").unwrap().is_empty());
}

#[test]
fn empty_label_value_matches_empty_label() {
    let s = LabelSelector::parse("a=").unwrap();
    assert!(s.matches(&labels(json!({"a": ""}))));
    assert!(!s.matches(&labels(json!({"a": "x"}))));
}

#[test]
fn label_selector_errors() {
    for bad in [
        "app=web,",
        ",",
        "app in web",
        "app in (web",
        "app in (web db)",
        "=web",
        "app=web=x",
        "app>x",
        "!",
        "app web",
        "-bad=x",
        "app=-bad",
        "a/b/c=x",
        "UPPER.example.com/x=y",
        "app==",
        "app!",
        "(app)",
    ] {
        let got = LabelSelector::parse(bad);
        // `app==` parses as app equals "" in Kubernetes too; everything else is an error.
        if bad == "app==" {
            assert!(got.is_ok(), "{bad:?}");
            continue;
        }
        let e = got.expect_err(bad);
        assert!(!e.message().is_empty());
    }
}

#[test]
fn label_selector_from_json() {
    let web = labels(json!({"app": "web", "tier": "frontend"}));
    let cases: Vec<(Value, bool)> = vec![
        (json!(null), true),
        (json!({}), true),
        (json!({"matchLabels": {"app": "web"}}), true),
        (json!({"matchLabels": {"app": "db"}}), false),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "x"]}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist", "values": []}]}),
            false,
        ),
        (
            json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
            true,
        ),
    ];
    for (selector, want) in cases {
        let s = LabelSelector::from_label_selector_json(&selector)
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
        assert_eq!(s.matches(&web), want, "{selector}");
    }
    for bad in [
        json!([]),
        json!("app=web"),
        json!({"matchLabels": []}),
        json!({"matchLabels": {"app": 1}}),
        json!({"matchExpressions": {}}),
        json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        json!({"matchExpressions": [{"operator": "Exists"}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
    ] {
        assert!(
            LabelSelector::from_label_selector_json(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn field_selector_matching() {
    let pod = json!({
        "metadata": {"name": "web-1", "namespace": "prod"},
        "spec": {"nodeName": "node-a", "hostNetwork": false, "priority": 5},
        "status": {"phase": "Running"}
    });
    let unscheduled = json!({"metadata": {"name": "web-2", "namespace": "dev"}, "spec": {}});
    let cases: &[(&str, bool, bool)] = &[
        ("", true, true),
        ("metadata.name=web-1", true, false),
        ("metadata.name==web-1", true, false),
        ("metadata.name!=web-1", false, true),
        ("metadata.namespace=prod,status.phase=Running", true, false),
        ("metadata.namespace!=prod", false, true),
        ("spec.nodeName=", false, true),
        ("spec.nodeName!=", true, false),
        ("spec.hostNetwork=false", true, false),
        ("spec.priority=5", true, false),
        ("status.phase!=Pending", true, true),
        (" metadata.name = web-1 ", true, false),
        ("spec=x", false, false),
    ];
    for (selector, want_pod, want_unscheduled) in cases {
        let s = FieldSelector::parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
        assert_eq!(s.matches(&pod), *want_pod, "{selector:?} on pod");
        assert_eq!(
            s.matches(&unscheduled),
            *want_unscheduled,
            "{selector:?} on unscheduled"
        );
    }
}

#[test]
fn field_selector_escapes_and_exact_name() {
    let s = FieldSelector::parse(r"metadata.name=a\,b\=c").unwrap();
    assert!(s.matches(&json!({"metadata": {"name": "a,b=c"}})));
    assert_eq!(s.exact_name(), Some("a,b=c"));

    let s = FieldSelector::parse("metadata.namespace=x,metadata.name=web").unwrap();
    assert_eq!(s.exact_name(), Some("web"));
    assert_eq!(
        FieldSelector::parse("metadata.name!=web")
            .unwrap()
            .exact_name(),
        None
    );
    assert!(FieldSelector::parse("").unwrap().is_empty());

    for bad in [
        "metadata.name",
        "=x",
        r"metadata.name=a\q",
        r"metadata.name=a\",
        "!=x",
    ] {
        assert!(FieldSelector::parse(bad).is_err(), "{bad:?}");
    }
}
