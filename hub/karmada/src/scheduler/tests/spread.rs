#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::scheduler::*;

#[test]
fn spread_constraints() {
    let dup = |sc: Value| input(json!({"spreadConstraints": sc}), 2);
    let mut four = fixture();
    four.push(info(
        "m4",
        &[("env", "prod")],
        "aws",
        "us-east",
        "us-east-1b",
    ));
    let caps = with_free(
        vec![
            info("A", &[], "", "", ""),
            info("B", &[], "", "", ""),
            info("C", &[], "", "", ""),
            info("D", &[], "", "", ""),
        ],
        &[10, 5, 20, 1],
    );
    let mut worked = input(
        json!({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 2, "maxGroups": 3}],
        "replicaScheduling": dynamic()["replicaScheduling"]}),
        12,
    );
    worked.api_version = "apps/v1".into();
    let mut sticky = dup(json!([{"spreadByField": "cluster", "minGroups": 1, "maxGroups": 1}]));
    sticky.previous = targets(&[("m3", 2)]);
    run(vec![
        ok(
            "scenario 17",
            fixture(),
            dup(json!([{"spreadByField": "cluster", "minGroups": 2, "maxGroups": 2}])),
            &[("m1", 2), ("m2", 2)],
        ),
        fail(
            "scenario 17 variant min 4",
            fixture(),
            dup(json!([{"spreadByField": "cluster", "minGroups": 4, "maxGroups": 4}])),
            ScheduleReason::SchedulerError,
        ),
        ok(
            "decision 2: no maxGroups = unbounded",
            fixture(),
            dup(json!([{"spreadByField": "cluster", "minGroups": 2}])),
            &[("m1", 2), ("m2", 2), ("m3", 2)],
        ),
        ok("existing target preferred", fixture(), sticky, &[("m3", 2)]),
        ok(
            "worked example cluster spread",
            caps,
            worked,
            &[("A", 3), ("B", 2), ("C", 7)],
        ),
        ok(
            "capacity swap",
            with_free(fixture(), &[2, 2, 30]),
            input(
                json!({"spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 2}],
            "replicaScheduling": dynamic()["replicaScheduling"]}),
                20,
            ),
            &[("m1", 1), ("m3", 19)],
        ),
        fail(
            "capacity never suffices",
            with_free(fixture(), &[2, 2, 3]),
            input(
                json!({"spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 2}],
            "replicaScheduling": aggregated()["replicaScheduling"]}),
                20,
            ),
            ScheduleReason::Unschedulable,
        ),
    ]);
    // Scenario 18: two clusters, two regions, one in us-east (reference tie-break gives m1 + m3).
    let out = schedule(
        &dup(
            json!([{"spreadByField": "region", "minGroups": 2, "maxGroups": 2}, {"spreadByField": "cluster", "minGroups": 2, "maxGroups": 2}]),
        ),
        &four,
    );
    assert!(out.scheduled, "{}", out.message);
    assert_eq!(result(&out), pairs(&[("m1", 2), ("m3", 2)]));
    // Decision 3: zone, provider and label drive selection.
    let by = |sc: Value, clusters: &[ClusterInfo]| {
        let out = schedule(&dup(sc), clusters);
        assert!(out.scheduled, "{}", out.message);
        result(&out).into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    };
    assert_eq!(
        by(
            json!([{"spreadByField": "provider", "minGroups": 2, "maxGroups": 2}, {"spreadByField": "cluster", "minGroups": 2, "maxGroups": 2}]),
            &fixture()
        ),
        vec!["m1", "m3"],
        "one aws and the gcp cluster"
    );
    assert_eq!(
        by(
            json!([{"spreadByField": "provider", "maxGroups": 1}, {"spreadByField": "cluster"}]),
            &fixture()
        ),
        vec!["m1", "m2"],
        "the provider with most clusters"
    );
    assert_eq!(
        by(
            json!([{"spreadByField": "zone", "minGroups": 3}, {"spreadByField": "cluster"}]),
            &four
        ),
        vec!["m1", "m3", "m4"],
        "three zones, fewest groups preferred, ties by zone name"
    );
    assert_eq!(
        by(
            json!([{"spreadByLabel": "env", "maxGroups": 1}]),
            &fixture()
        ),
        vec!["m1", "m2"],
        "env=prod has two clusters"
    );
    // Clusters lacking the spread field are filtered.
    let mut no_region = fixture();
    no_region[0].region.clear();
    assert_eq!(
        by(
            json!([{"spreadByField": "region", "minGroups": 1}, {"spreadByField": "cluster"}]),
            &no_region
        ),
        vec!["m3"],
        "one group is enough; ties by region name"
    );
    let out = schedule(
        &dup(json!([{"spreadByField": "region", "minGroups": 4}, {"spreadByField": "cluster"}])),
        &fixture(),
    );
    assert_eq!(out.reason, ScheduleReason::SchedulerError);
}
