//! Scaling policies, stabilization windows and scale events of `spec.behavior`.

use super::*;

fn rules(policies: &[(PolicyType, i32, i32)], select: SelectPolicy, window: i32) -> ResolvedRules {
    ResolvedRules {
        stabilization_window_seconds: window,
        select_policy: select,
        policies: policies
            .iter()
            .map(|&(type_, value, period_seconds)| ScalingPolicy {
                type_,
                value,
                period_seconds,
            })
            .collect(),
        tolerance: None,
    }
}

/// `generateEventsUniformDistribution`: the changes spread over the last `interval` seconds.
fn events(changes: &[i32], interval: i64, now: i64) -> Vec<ScaleEvent> {
    let n = changes.len() as i64;
    changes
        .iter()
        .enumerate()
        .map(|(i, &change)| ScaleEvent {
            at: now - interval / n * (n - i as i64) + 1,
            change,
            outdated: false,
        })
        .collect()
}

#[test]
fn rate_policies() {
    use PolicyType::{Percent, Pods};
    use SelectPolicy::{Disabled, Max, Min};
    let now = 10_000;
    let no_rules = rules(&[], Max, 0);
    // (name, up rules, down rules, up events, down events, min, max, current, desired, expected, reason)
    #[rustfmt::skip]
    type Case<'a> = (&'a str, ResolvedRules, ResolvedRules, Vec<i32>, Vec<i32>, i32, i32, i32, i32, i32, &'a str);
    let default = ResolvedBehavior::resolve(&HpaBehavior::default(), 300);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("default scale-up: 4 pods per 15 s from 1", default.scale_up.clone(), no_rules.clone(), vec![], vec![], 1, 100, 1, 10, 5, "ScaleUpLimit"),
        ("default scale-up: 100 % per 15 s from 10", default.scale_up.clone(), no_rules.clone(), vec![], vec![], 1, 100, 10, 50, 20, "ScaleUpLimit"),
        ("selectPolicy Min picks 4 pods", rules(&[(Pods, 4, 15), (Percent, 100, 15)], Min, 0), no_rules.clone(), vec![], vec![], 1, 100, 10, 50, 14, "ScaleUpLimit"),
        ("selectPolicy Disabled up", rules(&[(Pods, 4, 15)], Disabled, 0), no_rules.clone(), vec![], vec![], 1, 100, 10, 50, 10, "ScaleUpLimit"),
        ("scaleUp with pod policy limitation", rules(&[(Pods, 30, 60)], Max, 0), no_rules.clone(), vec![], vec![], 1, 1000, 10, 50, 40, "ScaleUpLimit"),
        ("scaleUp with percent policy limitation", rules(&[(Percent, 200, 60)], Max, 0), no_rules.clone(), vec![], vec![], 1, 1000, 10, 50, 30, "ScaleUpLimit"),
        ("scaleUp with spec MaxReplicas limitation with large pod policy and events", rules(&[(Pods, 300, 60)], Max, 0), no_rules.clone(), vec![1, 5, 9], vec![], 1, 200, 100, 500, 200, "TooManyReplicas"),
        ("scaleUp with currentReplicas limitation with a lot of recent scale up events", rules(&[(Pods, 5, 120)], Max, 0), no_rules.clone(), vec![1, 5, 9], vec![], 1, 1000, 100, 500, 100, "ScaleUpLimit"),
        ("scaleUp with pod policy and previous scale up events", rules(&[(Pods, 150, 120)], Max, 0), no_rules.clone(), vec![1, 5, 9], vec![], 1, 1000, 100, 500, 235, "ScaleUpLimit"),
        ("scaleUp with percent policy and previous scale up events", rules(&[(Percent, 200, 120)], Max, 0), no_rules.clone(), vec![1, 5, 9], vec![], 1, 1000, 100, 500, 255, "ScaleUpLimit"),
        ("scaleUp counts the replicas removed in the period back", rules(&[(Pods, 4, 120)], Max, 0), no_rules.clone(), vec![], vec![3], 1, 1000, 10, 50, 17, "ScaleUpLimit"),
        ("scaleDown with percent policy larger than pod policy", no_rules.clone(), rules(&[(Pods, 20, 60), (Percent, 1, 60)], Max, 300), vec![], vec![], 1, 1000, 100, 2, 80, "ScaleDownLimit"),
        ("scaleDown with pod policy larger than percent policy", no_rules.clone(), rules(&[(Pods, 2, 60), (Percent, 1, 60)], Max, 300), vec![], vec![], 1, 1000, 100, 2, 98, "ScaleDownLimit"),
        ("scaleDown with spec MinReplicas limitation with large percent policy", no_rules.clone(), rules(&[(Percent, 100, 60)], Max, 300), vec![], vec![], 5, 1000, 10, 2, 5, "TooFewReplicas"),
        ("scaleDown with pod policy limitation", no_rules.clone(), rules(&[(Pods, 5, 60)], Max, 300), vec![], vec![], 1, 1000, 10, 2, 5, "ScaleDownLimit"),
        ("scaleDown selectPolicy Min picks 1 %", no_rules.clone(), rules(&[(Pods, 20, 60), (Percent, 1, 60)], Min, 300), vec![], vec![], 1, 1000, 100, 2, 99, "ScaleDownLimit"),
        ("scaleDown selectPolicy Disabled", no_rules.clone(), rules(&[(Pods, 20, 60)], Disabled, 300), vec![], vec![], 1, 1000, 100, 2, 100, "ScaleDownLimit"),
        ("scaleDown with pod policy limitation and previous events", no_rules.clone(), rules(&[(Pods, 5, 120)], Max, 300), vec![], vec![1, 5, 9], 1, 1000, 100, 2, 100, "ScaleDownLimit"),
        ("scaleDown with percent policy limitation and previous events", no_rules.clone(), rules(&[(Percent, 50, 120)], Max, 300), vec![], vec![2, 4, 6], 1, 1000, 100, 0, 56, "ScaleDownLimit"),
        ("scaleDown with previous events preventing further scale down", no_rules.clone(), rules(&[(Percent, 10, 120)], Max, 300), vec![], vec![10, 10, 10], 1, 1000, 100, 0, 100, "ScaleDownLimit"),
        ("scaleDown with previous events still allowing more scale down", no_rules.clone(), rules(&[(Percent, 1000, 120)], Max, 300), vec![], vec![10, 10, 10], 1, 1000, 10, 5, 5, "DesiredWithinRange"),
        ("check 'outdated' flag for events for one behavior for up", rules(&[(Pods, 1000, 60)], Max, 0), no_rules.clone(), vec![8, 12, 9, 11], vec![], 1, 1000, 100, 200, 200, "DesiredWithinRange"),
    ];
    for (name, up, down, up_events, down_events, min, max, current, desired, expected, reason) in
        cases
    {
        let behavior = ResolvedBehavior {
            scale_up: up,
            scale_down: down,
        };
        let history = HpaHistory {
            recommendations: vec![],
            scale_up_events: events(&up_events, 120, now),
            scale_down_events: events(&down_events, 120, now),
        };
        let bounds = ReplicaBounds { current, min, max };
        let got = convert_with_behavior_rate(&history, &behavior, now, bounds, desired);
        assert_eq!((got.0, got.1), (expected, reason), "{name}");
    }
}

#[test]
fn stabilization_with_behavior() {
    let now = 100_000;
    let recs = |r: &[(i32, i64)]| -> Vec<Recommendation> {
        r.iter()
            .map(|&(replicas, ago)| Recommendation {
                at: now - ago,
                replicas,
            })
            .collect()
    };
    // TestNormalizeDesiredReplicasWithBehavior: (name, recs, current, desired, up window,
    // down window, expected, expected stored replicas)
    #[rustfmt::skip]
    type Case<'a> = (&'a str, Vec<Recommendation>, i32, i32, i32, i32, i32, Vec<i32>);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("empty recommendations for scaling down", recs(&[]), 100, 5, 0, 0, 5, vec![5]),
        ("simple scale down stabilization", recs(&[(4, 120), (5, 60)]), 100, 3, 0, 180, 5, vec![4, 5, 3]),
        ("simple scale up stabilization", recs(&[(4, 120), (5, 60)]), 1, 7, 300, 0, 4, vec![4, 5, 7]),
        ("no scale down stabilization", recs(&[(1, 120), (2, 60)]), 100, 3, 300, 0, 3, vec![1, 2, 3]),
        ("no scale up stabilization", recs(&[(4, 120), (5, 60)]), 1, 3, 0, 300, 3, vec![4, 5, 3]),
        ("no scale down stabilization, reuse recommendation element", recs(&[(10, 600), (9, 540)]), 100, 3, 0, 0, 3, vec![10, 3]),
        ("no scale up stabilization, reuse recommendation element", recs(&[(10, 600), (9, 540)]), 1, 100, 0, 0, 100, vec![10, 100]),
        ("scale down stabilization, reuse one of obsolete recommendation element", recs(&[(10, 600), (4, 60), (5, 120), (9, 540)]), 100, 3, 0, 180, 5, vec![10, 4, 5, 3]),
        ("scale up stabilization, reuse one of obsolete recommendation element", recs(&[(10, 6000), (6, 60), (5, 120), (9, 180)]), 1, 100, 300, 0, 5, vec![100, 6, 5, 9]),
    ];
    for (name, mut r, current, desired, up, down, expected, stored) in cases {
        let behavior = ResolvedBehavior {
            scale_up: rules(&[], SelectPolicy::Max, up),
            scale_down: rules(&[], SelectPolicy::Max, down),
        };
        let (got, _, _) = stabilize_with_behavior(&mut r, &behavior, now, current, desired);
        assert_eq!(got, expected, "{name}");
        assert_eq!(
            r.iter().map(|r| r.replicas).collect::<Vec<_>>(),
            stored,
            "{name}"
        );
    }
}

#[test]
fn scale_up_policies_look_at_past_events() {
    let mut i = input(1, 1, 100, vec![cpu_at(1, 20_000)]);
    i.behavior = Some(HpaBehavior::default());
    let d = decide(&i, &HpaHistory::default(), 0);
    assert_eq!(
        (d.desired_replicas, condition(&d.scaling_limited)),
        (5, (ConditionStatus::True, "ScaleUpLimit"))
    );
    let history = d.history_after_write();
    assert_eq!(
        history.scale_up_events,
        vec![ScaleEvent {
            at: 0,
            change: 4,
            outdated: false
        }]
    );
    // 10 s later the period still holds the +4: the period started at 1, 1 + 4 = 5.
    let i = HpaInput {
        current_replicas: 5,
        metrics: vec![cpu_at(5, 4000)],
        ..i
    };
    let d = decide(&i, &history, 10);
    assert_eq!((d.desired_replicas, d.rescale), (5, false));
    assert_eq!(
        condition(&d.scaling_limited),
        (ConditionStatus::True, "ScaleUpLimit")
    );
    assert_eq!(
        d.history_after_write().scale_up_events,
        history.scale_up_events
    );
    // 16 s later it does not: max(5 + 4, 2 × 5) = 10; the outdated event's slot is reused.
    let d = decide(&i, &history, 16);
    assert_eq!((d.desired_replicas, d.rescale), (10, true));
    assert_eq!(
        d.history_after_write().scale_up_events,
        vec![ScaleEvent {
            at: 16,
            change: 5,
            outdated: false
        }]
    );
}

#[test]
fn store_scale_events() {
    // TestStoreScaleEvents "replace one entry, use policies with different periods".
    let behavior = ResolvedBehavior::resolve(
        &HpaBehavior {
            scale_up: Some(ScalingRules {
                policies: Some(vec![
                    ScalingPolicy {
                        type_: PolicyType::Pods,
                        value: 10,
                        period_seconds: 60,
                    },
                    ScalingPolicy {
                        type_: PolicyType::Percent,
                        value: 100,
                        period_seconds: 30,
                    },
                ]),
                ..Default::default()
            }),
            scale_down: None,
        },
        300,
    );
    let now = 1000;
    let mut history = HpaHistory {
        scale_up_events: vec![
            ScaleEvent {
                at: now - 29,
                change: 8,
                outdated: false,
            },
            ScaleEvent {
                at: now - 59,
                change: 6,
                outdated: false,
            },
            ScaleEvent {
                at: now - 61,
                change: 7,
                outdated: false,
            },
            ScaleEvent {
                at: now - 61,
                change: 9,
                outdated: false,
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        replicas_change_in_period(&history.scale_up_events, now, 60),
        14
    );
    PendingScaleEvent::new(&behavior, now, 10, 15).store(&mut history);
    let stored: Vec<_> = history
        .scale_up_events
        .iter()
        .map(|e| (e.change, e.outdated))
        .collect();
    assert_eq!(stored, vec![(8, false), (6, false), (7, true), (5, false)]);
}

#[test]
fn behavior_defaults() {
    let d = default_behavior();
    let up = d.scale_up.clone().unwrap_or_default();
    assert_eq!(up.stabilization_window_seconds, Some(0));
    assert_eq!(up.select_policy, Some(SelectPolicy::Max));
    assert_eq!(
        up.policies,
        Some(vec![
            ScalingPolicy {
                type_: PolicyType::Pods,
                value: 4,
                period_seconds: 15
            },
            ScalingPolicy {
                type_: PolicyType::Percent,
                value: 100,
                period_seconds: 15
            },
        ])
    );
    let down = d.scale_down.unwrap_or_default();
    assert_eq!(down.stabilization_window_seconds, Some(300));
    assert_eq!(
        down.policies,
        Some(vec![ScalingPolicy {
            type_: PolicyType::Percent,
            value: 100,
            period_seconds: 15
        }])
    );
    // Set parts stay; only unset ones are filled (an empty policy list stays empty).
    let partial = HpaBehavior {
        scale_up: Some(ScalingRules {
            select_policy: Some(SelectPolicy::Disabled),
            ..Default::default()
        }),
        scale_down: Some(ScalingRules {
            policies: Some(vec![]),
            ..Default::default()
        }),
    };
    let filled = fill_behavior(&partial, 120);
    let up = filled.scale_up.unwrap_or_default();
    assert_eq!(
        (up.select_policy, up.stabilization_window_seconds),
        (Some(SelectPolicy::Disabled), Some(0))
    );
    assert_eq!(up.policies.map(|p| p.len()), Some(2));
    let down = filled.scale_down.unwrap_or_default();
    assert_eq!(
        (down.stabilization_window_seconds, down.policies),
        (Some(120), Some(vec![]))
    );
}
