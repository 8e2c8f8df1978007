//! Whole decisions: several metrics, failed metrics, replica bounds, stabilization,
//! serialization.

use super::*;

#[test]
fn multiple_metrics_take_the_highest() {
    let metrics = vec![
        cpu(
            MetricTarget::Utilization(50),
            agent(&ready(&[600, 600, 600])),
        ), // 4
        qps(1000, pods_agg(&[2000, 2000, 2000], 0, 0)), // 6
        object(MetricTarget::Value(1000), 1000),        // 3
    ];
    let d = decide(&input(3, 1, 10, metrics), &HpaHistory::default(), 1000);
    assert_eq!((d.desired_replicas, d.rescale), (6, true));
    assert_eq!(
        d.rescale_reason.as_deref(),
        Some("pods metric qps above target")
    );
    assert_eq!(
        d.scaling_active.as_ref().map(|c| c.message.as_str()),
        Some("the HPA was able to successfully calculate a replica count from pods metric qps")
    );
    assert_eq!(d.current_metrics.len(), 3);
    assert_eq!(d.current_metrics[1], Some(average(2000)));
}

#[test]
fn invalid_metrics() {
    let broken = MetricInput::Unknown {
        source_type: "CheddarCheese".into(),
    };
    // TestScaleUpOneMetricInvalid: a valid metric asking for more still scales.
    let up = input(
        3,
        1,
        10,
        vec![
            cpu(
                MetricTarget::Utilization(30),
                agent(&ready(&[300, 400, 500])),
            ),
            broken.clone(),
        ],
    );
    let d = decide(&up, &HpaHistory::default(), 0);
    assert_eq!((d.desired_replicas, d.rescale), (4, true));
    assert_eq!(
        condition(&d.scaling_active),
        (ConditionStatus::True, "ValidMetricFound")
    );
    assert_eq!(
        d.metrics_error.as_deref(),
        Some(
            "invalid metrics (1 invalid out of 2), first error is: unknown metric source type \"CheddarCheese\""
        )
    );
    assert_eq!(d.current_metrics[1], None);
    // TestNoScaleDownOneMetricInvalid: no scale-down while a metric is invalid.
    let down = input(
        5,
        1,
        10,
        vec![
            cpu(
                MetricTarget::Utilization(50),
                agent(&ready(&[100, 300, 500, 250, 250])),
            ),
            broken.clone(),
        ],
    );
    let d = decide(&down, &HpaHistory::default(), 0);
    assert_eq!(
        (d.desired_replicas, d.rescale, d.status_desired_replicas),
        (5, false, None)
    );
    assert_eq!(
        condition(&d.scaling_active),
        (ConditionStatus::False, "InvalidMetricSourceType")
    );
    assert_eq!(d.scaling_limited, None);
    assert_eq!(d.able_to_scale.reason, "SucceededGetScale");
    assert_eq!(
        d.current_metrics[0]
            .as_ref()
            .and_then(|s| s.average_utilization),
        Some(28)
    );
    // Every metric invalid.
    let d = decide(&input(5, 1, 10, vec![broken]), &HpaHistory::default(), 0);
    assert_eq!((d.rescale, d.status_desired_replicas), (false, None));
    assert_eq!(
        d.scaling_active.map(|c| c.message),
        Some("the HPA was unable to compute the replica count: unknown metric source type \"CheddarCheese\"".to_owned())
    );
}

fn history_at(at: i64, replicas: i32) -> HpaHistory {
    HpaHistory {
        recommendations: vec![Recommendation { at, replicas }],
        ..Default::default()
    }
}

#[test]
fn min_max_and_legacy_scale_up_limit() {
    let at = |current: i32, usages: &[i64]| {
        cpu(
            MetricTarget::Utilization(100),
            agent(&ready(&usages[..current as usize])),
        )
    };
    let old = history_at(-1000, 1);
    // (name, current, min, max, usage per pod, desired, ScalingLimited)
    type Case<'a> = (&'a str, i32, i32, i32, i64, i32, (ConditionStatus, &'a str));
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("within range", 4, 1, 10, 1500, 6, (ConditionStatus::False, "DesiredWithinRange")),
        ("above max", 4, 1, 5, 1500, 5, (ConditionStatus::True, "TooManyReplicas")),
        ("below min", 4, 3, 10, 200, 3, (ConditionStatus::True, "TooFewReplicas")),
        ("no behavior: at most max(2 × 2, 4)", 2, 1, 10, 3000, 4, (ConditionStatus::True, "ScaleUpLimit")),
        ("no behavior: at most 2 × 4", 4, 1, 100, 3000, 8, (ConditionStatus::True, "ScaleUpLimit")),
    ];
    for (name, current, min, max, usage, desired, limited) in cases {
        let d = decide(
            &input(current, min, max, vec![at(current, &[usage; 8])]),
            &old,
            0,
        );
        assert_eq!(d.desired_replicas, desired, "{name}");
        assert_eq!(condition(&d.scaling_limited), limited, "{name}");
        assert_eq!(d.able_to_scale.reason, "SucceededRescale", "{name}");
    }
    // Current replicas out of [min, max]: straight to the bound, metrics unread, conditions kept.
    let d = decide(&input(12, 1, 10, vec![at(1, &[1])]), &old, 0);
    assert_eq!(
        (d.desired_replicas, d.rescale, d.scaling_limited.clone()),
        (10, true, None)
    );
    assert_eq!(
        d.rescale_reason.as_deref(),
        Some("Current number of replicas above Spec.MaxReplicas")
    );
    assert!(d.current_metrics.is_empty() && d.scaling_active.is_none());
    let d = decide(&input(1, 2, 10, vec![at(1, &[1])]), &old, 0);
    assert_eq!((d.desired_replicas, d.rescale), (2, true));
}

#[test]
fn zero_replicas_disable_scaling() {
    let d = decide(
        &input(
            0,
            1,
            10,
            vec![cpu(MetricTarget::Utilization(10), agent(&ready(&[900])))],
        ),
        &HpaHistory::default(),
        7,
    );
    assert_eq!((d.desired_replicas, d.rescale), (0, false));
    assert_eq!(
        condition(&d.scaling_active),
        (ConditionStatus::False, "ScalingDisabled")
    );
    // The first decision seeds the history with the current count, as the controller does.
    assert_eq!(d.history, history_at(7, 0));
    // With minReplicas 0 (scale to zero), zero replicas are scaled from.
    let mut from_zero = input(0, 0, 10, vec![object(MetricTarget::Value(1000), 2500)]);
    from_zero.behavior = Some(default_behavior());
    let d = decide(&from_zero, &HpaHistory::default(), 7);
    assert_eq!((d.desired_replicas, d.rescale), (3, true));
}

#[test]
fn scale_down_stabilization_keeps_the_highest_for_300_seconds() {
    let mut history = HpaHistory::default();
    // t=0: at target; t=15…285: load drops to 40 % of 10 pods; t=315: the 10 is out of the window.
    let d = decide(&input(10, 1, 20, vec![cpu_at(10, 1000)]), &history, 0);
    assert!(!d.rescale);
    history = d.history_after_write();
    for t in (15..300).step_by(15) {
        let d = decide(&input(10, 1, 20, vec![cpu_at(10, 400)]), &history, t);
        assert_eq!((d.desired_replicas, d.rescale), (10, false), "t={t}");
        assert_eq!(d.able_to_scale.reason, "ScaleDownStabilized", "t={t}");
        assert_eq!(d.status_desired_replicas, Some(10));
        history = d.history_after_write();
    }
    let d = decide(&input(10, 1, 20, vec![cpu_at(10, 400)]), &history, 301);
    assert_eq!((d.desired_replicas, d.rescale), (4, true));
    assert_eq!(
        d.rescale_reason.as_deref(),
        Some("All metrics below target")
    );
    assert_eq!(
        condition(&d.scaling_limited),
        (ConditionStatus::False, "DesiredWithinRange")
    );
    // Old slots were reused: one per distinct window position, not one per decision.
    assert!(d.history.recommendations.len() <= 21);
}

#[test]
fn behavior_with_a_60_second_scale_down_window() {
    let mut i = input(10, 1, 20, vec![cpu_at(10, 400)]);
    i.behavior = Some(HpaBehavior {
        scale_up: None,
        scale_down: Some(ScalingRules {
            stabilization_window_seconds: Some(60),
            ..Default::default()
        }),
    });
    let history = history_at(0, 10);
    let d = decide(&i, &history, 30);
    assert_eq!(
        (d.desired_replicas, d.able_to_scale.reason.as_str()),
        (10, "ScaleDownStabilized")
    );
    let d = decide(&i, &d.history_after_write(), 61);
    assert_eq!(
        (d.desired_replicas, d.able_to_scale.reason.as_str()),
        (4, "SucceededRescale")
    );
    assert_eq!(
        condition(&d.scaling_limited),
        (ConditionStatus::False, "DesiredWithinRange")
    );
    let event = d.history_after_write().scale_down_events;
    assert_eq!(
        event,
        vec![ScaleEvent {
            at: 61,
            change: 6,
            outdated: false
        }]
    );
}

#[test]
fn input_and_decision_serialize() {
    let mut i = input(
        3,
        1,
        10,
        vec![
            cpu(
                MetricTarget::Utilization(30),
                agent(&ready(&[300, 500, 700])),
            ),
            MetricInput::Unknown {
                source_type: "X".into(),
            },
        ],
    );
    i.behavior = Some(HpaBehavior::default());
    let json = serde_json::to_value(&i).unwrap_or_default();
    assert_eq!(json["metrics"][0]["type"], "Resource");
    assert_eq!(json["metrics"][0]["target"]["utilization"], 30);
    assert_eq!(
        json["metrics"][0]["observation"]["reported"]["usageSum"],
        1500
    );
    let back: HpaInput = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, i);
    let d = decide(&i, &HpaHistory::default(), 5);
    let json = serde_json::to_value(&d).unwrap_or_default();
    assert_eq!(json["ableToScale"]["type"], "AbleToScale");
    assert_eq!(json["ableToScale"]["status"], "True");
    assert_eq!(json["pendingScaleEvent"]["to"], 5);
    let back: Decision = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, d);
}
