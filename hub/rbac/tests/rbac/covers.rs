//! covers() and uncovered(): the escalation check (cases after kube's policy_comparator_test.go).

use flotilla_rbac::{PolicyRule, covers, uncovered};

fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, groups, resources)
}

fn u(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule::non_resource(verbs, urls)
}

#[test]
fn covers_table() {
    let cases: Vec<(&str, Vec<PolicyRule>, Vec<PolicyRule>, bool)> = vec![
        (
            "exact match",
            vec![r(&["get"], &[""], &["pods"])],
            vec![r(&["get"], &[""], &["pods"])],
            true,
        ),
        ("nothing requested", vec![], vec![], true),
        (
            "no owner rules",
            vec![],
            vec![r(&["get"], &[""], &["pods"])],
            false,
        ),
        (
            "more verbs than owned",
            vec![r(&["get"], &[""], &["pods"])],
            vec![r(&["get", "delete"], &[""], &["pods"])],
            false,
        ),
        (
            "verb * covers all verbs",
            vec![r(&["*"], &[""], &["pods"])],
            vec![r(&["get", "escalate"], &[""], &["pods"])],
            true,
        ),
        (
            "group * covers all groups",
            vec![r(&["get"], &["*"], &["pods"])],
            vec![r(&["get"], &["", "metrics.k8s.io"], &["pods"])],
            true,
        ),
        (
            "resource * covers all resources",
            vec![r(&["get"], &[""], &["*"])],
            vec![r(&["get"], &[""], &["pods", "secrets"])],
            true,
        ),
        (
            "another group is not covered",
            vec![r(&["get"], &["apps"], &["deployments"])],
            vec![r(&["get"], &["extensions"], &["deployments"])],
            false,
        ),
        (
            "requested * is not covered by names",
            vec![r(&["get", "list"], &[""], &["pods"])],
            vec![r(&["*"], &[""], &["pods"])],
            false,
        ),
        (
            "requested group * is not covered by one group",
            vec![r(&["get"], &[""], &["pods"])],
            vec![r(&["get"], &["*"], &["pods"])],
            false,
        ),
        (
            "split across owner rules",
            vec![
                r(&["get"], &[""], &["pods"]),
                r(&["list"], &[""], &["pods"]),
                r(&["get", "list"], &["apps"], &["deployments"]),
            ],
            vec![r(&["get", "list"], &["", "apps"], &["pods", "deployments"])],
            false,
        ),
        (
            "split across owner rules, all covered",
            vec![
                r(&["get"], &[""], &["pods"]),
                r(&["list"], &[""], &["pods"]),
            ],
            vec![r(&["get", "list"], &[""], &["pods"])],
            true,
        ),
        (
            "resource does not cover its subresource",
            vec![r(&["get"], &[""], &["pods"])],
            vec![r(&["get"], &[""], &["pods/log"])],
            false,
        ),
        (
            "subresource covers itself",
            vec![r(&["create"], &[""], &["pods/exec"])],
            vec![r(&["create"], &[""], &["pods/exec"])],
            true,
        ),
        (
            "*/subresource covers resource/subresource",
            vec![r(&["get"], &["*"], &["*/scale"])],
            vec![r(
                &["get"],
                &["apps"],
                &["deployments/scale", "statefulsets/scale"],
            )],
            true,
        ),
        (
            "*/subresource does not cover another subresource",
            vec![r(&["get"], &["*"], &["*/scale"])],
            vec![r(&["get"], &["apps"], &["deployments/status"])],
            false,
        ),
        (
            "*/subresource does not cover the resource",
            vec![r(&["get"], &["*"], &["*/scale"])],
            vec![r(&["get"], &["apps"], &["deployments"])],
            false,
        ),
        (
            "resource * covers subresources",
            vec![r(&["get"], &[""], &["*"])],
            vec![r(&["get"], &[""], &["pods/exec"])],
            true,
        ),
        (
            "owner without names covers named",
            vec![r(&["get"], &[""], &["configmaps"])],
            vec![r(&["get"], &[""], &["configmaps"]).with_names(&["a", "b"])],
            true,
        ),
        (
            "owner names cover a subset",
            vec![r(&["get"], &[""], &["configmaps"]).with_names(&["a", "b", "c"])],
            vec![r(&["get"], &[""], &["configmaps"]).with_names(&["a", "c"])],
            true,
        ),
        (
            "owner names do not cover another name",
            vec![r(&["get"], &[""], &["configmaps"]).with_names(&["a"])],
            vec![r(&["get"], &[""], &["configmaps"]).with_names(&["a", "b"])],
            false,
        ),
        (
            "owner names do not cover all names",
            vec![r(&["get"], &[""], &["configmaps"]).with_names(&["a"])],
            vec![r(&["get"], &[""], &["configmaps"])],
            false,
        ),
        (
            "exact URL",
            vec![u(&["get"], &["/healthz"])],
            vec![u(&["get"], &["/healthz"])],
            true,
        ),
        (
            "URL prefix covers below",
            vec![u(&["get"], &["/api/*"])],
            vec![u(&["get"], &["/api/v1", "/api/"])],
            true,
        ),
        (
            "URL prefix does not cover the bare path",
            vec![u(&["get"], &["/api/*"])],
            vec![u(&["get"], &["/api"])],
            false,
        ),
        (
            "URL without * is not a prefix",
            vec![u(&["get"], &["/api"])],
            vec![u(&["get"], &["/api/v1"])],
            false,
        ),
        (
            "URL * covers all paths",
            vec![u(&["*"], &["*"])],
            vec![u(&["get", "post"], &["/metrics", "/logs/x"])],
            true,
        ),
        (
            "URL verb not owned",
            vec![u(&["get"], &["*"])],
            vec![u(&["post"], &["/metrics"])],
            false,
        ),
        (
            "resource rules do not cover URLs",
            vec![r(&["*"], &["*"], &["*"])],
            vec![u(&["get"], &["/metrics"])],
            false,
        ),
        (
            "URL rules do not cover resources",
            vec![u(&["*"], &["*"])],
            vec![r(&["get"], &[""], &["pods"])],
            false,
        ),
        (
            "cluster-admin covers everything",
            vec![r(&["*"], &["*"], &["*"]), u(&["*"], &["*"])],
            vec![
                r(
                    &["escalate", "bind"],
                    &["rbac.authorization.k8s.io"],
                    &["clusterroles"],
                ),
                u(&["get"], &["/metrics"]),
            ],
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, owner, requested, want) in &cases {
        if covers(owner, requested) != *want {
            failures.push(format!("{name}: want covers={want}"));
        }
        assert_eq!(
            uncovered(owner, requested).is_empty(),
            *want,
            "{name}: uncovered agrees"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn uncovered_lists_the_missing_pieces() {
    let owner = vec![r(&["get"], &[""], &["pods"])];
    let requested = vec![r(&["get", "delete"], &[""], &["pods", "pods/log"]).with_names(&["p"])];
    let missing = uncovered(&owner, &requested);
    assert_eq!(
        missing,
        vec![
            r(&["delete"], &[""], &["pods"]).with_names(&["p"]),
            r(&["get"], &[""], &["pods/log"]).with_names(&["p"]),
            r(&["delete"], &[""], &["pods/log"]).with_names(&["p"]),
        ]
    );
    assert_eq!(
        missing[0].compact_string(),
        r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["p"], Verbs:["delete"]}"#
    );
}
