#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::scheduler::*;

#[test]
fn static_weight_division() {
    let w121 = static_weights(&[("m1", 1), ("m2", 2), ("m3", 1)]);
    let w321 = static_weights(&[("m1", 3), ("m2", 2), ("m3", 1)]);
    let mut uid_odd = input(
        json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
        10,
    );
    // Find UIDs whose hash parity selects each tie-break.
    let odd = (0..)
        .map(|i| format!("uid-{i}"))
        .find(|u| webster::fnv32a(u) % 2 == 1)
        .unwrap();
    uid_odd.template_uid = odd;
    let overlapping = json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": [
        {"targetCluster": {"clusterNames": ["m1"]}, "weight": 1},
        {"targetCluster": {"clusterNames": ["m2"]}, "weight": 1},
        {"targetCluster": {"clusterNames": ["m1"]}, "weight": 2}]}}});
    let unmatched = json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": [
        {"targetCluster": {"clusterNames": ["m9"]}, "weight": 4}]}}});
    let by_label = json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": [
        {"targetCluster": {"labelSelector": {"matchLabels": {"env": "prod"}}}, "weight": 3},
        {"targetCluster": {"clusterNames": ["m3"]}, "weight": 1}]}}});
    let mut spread = w121.clone();
    spread["spreadConstraints"] = json!([{"spreadByField": "cluster", "maxGroups": 1}]);
    run(vec![
        ok(
            "scenario 8",
            fixture(),
            input(w121.clone(), 7),
            &[("m1", 2), ("m2", 3), ("m3", 2)],
        ),
        ok(
            "scenario 9 R=12",
            fixture(),
            input(w321.clone(), 12),
            &[("m1", 6), ("m2", 4), ("m3", 2)],
        ),
        ok(
            "scenario 9 R=13",
            fixture(),
            prev(input(w321.clone(), 13), &[("m1", 6), ("m2", 4), ("m3", 2)]),
            &[("m1", 7), ("m2", 4), ("m3", 2)],
        ),
        ok(
            "scenario 9 R=14",
            fixture(),
            prev(input(w321, 14), &[("m1", 7), ("m2", 4), ("m3", 2)]),
            &[("m1", 7), ("m2", 5), ("m3", 2)],
        ),
        ok(
            "scenario 10",
            fixture(),
            input(static_weights(&[("m1", 1), ("m2", 1)]), 4),
            &[("m1", 2), ("m2", 2)],
        ),
        ok(
            "scenario 11 even uid",
            fixture(),
            input(
                json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
                10,
            ),
            &[("m1", 4), ("m2", 3), ("m3", 3)],
        ),
        ok(
            "scenario 11 odd uid",
            fixture(),
            uid_odd,
            &[("m1", 3), ("m2", 3), ("m3", 4)],
        ),
        ok(
            "empty replicaScheduling is Divided",
            fixture(),
            input(json!({"replicaScheduling": {}}), 3),
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "overlapping entries take the maximum",
            fixture(),
            input(overlapping, 3),
            &[("m1", 2), ("m2", 1)],
        ),
        ok(
            "no matching weight -> equal",
            fixture(),
            input(unmatched, 3),
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "label weights",
            fixture(),
            input(by_label, 7),
            &[("m1", 3), ("m2", 3), ("m3", 1)],
        ),
        ok(
            "static ignores spread",
            fixture(),
            input(spread, 4),
            &[("m1", 1), ("m2", 2), ("m3", 1)],
        ),
        ok(
            "static ignores capacity",
            with_free(fixture(), &[0, 0, 0]),
            input(w121.clone(), 4),
            &[("m1", 1), ("m2", 2), ("m3", 1)],
        ),
        ok(
            "fewer replicas than clusters",
            fixture(),
            input(w121.clone(), 1),
            &[("m2", 1)],
        ),
        ok(
            "scenario 35 Pod Divided lands once",
            fixture(),
            {
                let mut i = input(
                    json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
                    1,
                );
                i.api_version = "v1".into();
                i.kind = "Pod".into();
                i
            },
            &[("m1", 1)],
        ),
        ok(
            "scenario 35 Pod Duplicated everywhere",
            fixture(),
            {
                let mut i = input(json!({}), 1);
                i.api_version = "v1".into();
                i.kind = "Pod".into();
                i
            },
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "zero replicas keeps every cluster at 0",
            fixture(),
            input(w121, 0),
            &[("m1", 0), ("m2", 0), ("m3", 0)],
        ),
    ]);
}

#[test]
fn dynamic_and_aggregated_division() {
    let free_6_12_18 = || with_free(fixture(), &[6, 12, 18]);
    let p246 = [("m1", 2), ("m2", 4), ("m3", 6)];
    run(vec![
        ok(
            "scenario 12",
            free_6_12_18(),
            input(dynamic(), 12),
            &[("m1", 2), ("m2", 4), ("m3", 6)],
        ),
        ok(
            "dynamic 6/8/10",
            with_free(fixture(), &[6, 8, 10]),
            input(dynamic(), 12),
            &[("m1", 3), ("m2", 4), ("m3", 5)],
        ),
        ok(
            "dynamic 10 over 6/12/18",
            free_6_12_18(),
            input(dynamic(), 10),
            &[("m1", 2), ("m2", 3), ("m3", 5)],
        ),
        ok(
            "scenario 13 scale up",
            with_free(fixture(), &[10, 10, 10]),
            prev(input(dynamic(), 24), &p246),
            &[("m1", 6), ("m2", 8), ("m3", 10)],
        ),
        fail(
            "scale up without capacity",
            with_free(fixture(), &[1, 1, 1]),
            prev(input(dynamic(), 24), &p246),
            ScheduleReason::Unschedulable,
        ),
        ok(
            "scenario 14 scale down",
            free_6_12_18(),
            prev(input(dynamic(), 6), &p246),
            &[("m1", 1), ("m2", 2), ("m3", 3)],
        ),
        ok(
            "unchanged total keeps split",
            with_free(fixture(), &[0, 100, 0]),
            prev(input(dynamic(), 12), &p246),
            &p246,
        ),
        ok(
            "scenario 15",
            free_6_12_18(),
            input(aggregated(), 12),
            &[("m3", 12)],
        ),
        ok(
            "scenario 15 variant",
            free_6_12_18(),
            input(aggregated(), 20),
            &[("m2", 8), ("m3", 12)],
        ),
        ok(
            "aggregated 6/8/10",
            with_free(fixture(), &[6, 8, 10]),
            input(aggregated(), 12),
            &[("m2", 5), ("m3", 7)],
        ),
        fail(
            "scenario 16",
            with_free(fixture(), &[1, 1, 1]),
            input(aggregated(), 5),
            ScheduleReason::Unschedulable,
        ),
        fail(
            "scenario 16 dynamic",
            with_free(fixture(), &[1, 1, 1]),
            input(dynamic(), 5),
            ScheduleReason::Unschedulable,
        ),
        ok(
            "aggregated scale up prior first",
            with_free(fixture(), &[4, 6, 8]),
            prev(input(aggregated(), 24), &[("m1", 4), ("m2", 8)]),
            &[("m1", 7), ("m2", 12), ("m3", 5)],
        ),
        ok(
            "aggregated scale up prefix of prior",
            with_free(fixture(), &[6, 6, 20]),
            prev(input(aggregated(), 24), &[("m1", 4), ("m2", 8)]),
            &[("m1", 10), ("m2", 14)],
        ),
        ok(
            "aggregated scale down",
            fixture(),
            prev(input(aggregated(), 6), &[("m1", 4), ("m2", 8)]),
            &[("m2", 6)],
        ),
        ok(
            "candidate set changed",
            with_free(fixture(), &[3, 3, 0]),
            prev(
                input(
                    json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]}, "replicaScheduling": dynamic()["replicaScheduling"]}),
                    12,
                ),
                &[("m1", 6), ("m3", 6)],
            ),
            &[("m1", 9), ("m2", 3)],
        ),
        ok(
            "fresh reschedule ignores split",
            with_free(fixture(), &[10, 10, 10]),
            {
                let mut i = prev(input(dynamic(), 12), &[("m1", 12)]);
                i.fresh = true;
                i
            },
            &[("m1", 6), ("m2", 3), ("m3", 3)],
        ),
        fail(
            "no resource summary counts as zero",
            {
                let mut c = fixture();
                c.iter_mut().for_each(|c| c.resource_summary = None);
                c
            },
            input(dynamic(), 1),
            ScheduleReason::Unschedulable,
        ),
    ]);
}
