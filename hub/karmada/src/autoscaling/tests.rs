//! Tables for the HPA algorithm. Cases named `TestXxx` are those of Kubernetes'
//! `replica_calculator_test.go` / `horizontal_test.go`, rewritten per pod (the Kubernetes tests
//! give each pod two containers; here a pod has one request and one usage).

use super::*;
use crate::autoscaling::behavior::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Class {
    Ready,
    Unready,
    Missing,
    Ignored,
}

#[derive(Clone, Copy, Debug)]
struct Pod {
    class: Class,
    usage: i64,
    request: i64,
}

fn pod(class: Class, usage: i64, request: i64) -> Pod {
    Pod {
        class,
        usage,
        request,
    }
}

fn ready(usages: &[i64]) -> Vec<Pod> {
    usages.iter().map(|&u| pod(Class::Ready, u, 1000)).collect()
}

/// What an agent reports for these pods.
fn agent(pods: &[Pod]) -> ResourceAggregate {
    let mut a = ResourceAggregate::default();
    for p in pods {
        match p.class {
            Class::Ready => {
                a.usage_sum += p.usage;
                a.request_sum += p.request;
                a.ready_count += 1;
            }
            Class::Unready => {
                a.unready_count += 1;
                a.unready_request_sum += p.request;
            }
            Class::Missing => {
                a.missing_count += 1;
                a.missing_request_sum += p.request;
            }
            Class::Ignored => a.ignored_count += 1,
        }
    }
    a
}

fn cpu(target: MetricTarget, agg: ResourceAggregate) -> MetricInput {
    MetricInput::Resource {
        name: "cpu".into(),
        target,
        observation: Observation::Reported(agg),
    }
}

fn ctx(current: i32) -> ProposalContext {
    ProposalContext {
        current_replicas: current,
        workload: WorkloadPods {
            status_replicas: current,
            pods: 10,
            running_ready_pods: 10,
        },
        calibration: 1.0,
        tolerances: Tolerances {
            scale_down: 0.1,
            scale_up: 0.1,
        },
    }
}

fn input(current: i32, min: i32, max: i32, metrics: Vec<MetricInput>) -> HpaInput {
    HpaInput {
        current_replicas: current,
        min_replicas: Some(min),
        max_replicas: max,
        metrics,
        behavior: None,
        tolerance: DEFAULT_TOLERANCE,
        downscale_stabilization_seconds: DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
        workload: WorkloadPods {
            status_replicas: current,
            pods: 10,
            running_ready_pods: 10,
        },
        member_spec_replicas: None,
    }
}

fn proposal(metric: &MetricInput, current: i32) -> MetricProposal {
    match propose(metric, &ctx(current)) {
        Ok(p) => p,
        Err(e) => panic!("unexpected failure: {e:?}"),
    }
}

#[test]
fn resource_utilization_proposals() {
    use Class::*;
    // (name, current, target %, pods, expected replicas, expected utilization, expected average)
    type Case<'a> = (&'a str, i32, i32, Vec<Pod>, i32, i32, i64);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("TestReplicaCalcScaleUp", 3, 30, ready(&[300, 500, 700]), 5, 50, 500),
        ("TestReplicaCalcScaleDown", 5, 50, ready(&[100, 300, 500, 250, 250]), 3, 28, 280),
        ("TestReplicaCalcTolerance: 102 % of 100 is within 10 %", 3, 100, vec![pod(Ready, 1010, 900), pod(Ready, 1030, 1000), pod(Ready, 1020, 1100)], 3, 102, 1020),
        ("TestReplicaCalcScaleUpUnreadyLessScale: the unready pod counts at 0 % on scale-up", 3, 30, vec![pod(Unready, 300, 1000), pod(Ready, 500, 1000), pod(Ready, 700, 1000)], 4, 60, 600),
        ("TestReplicaCalcScaleUpUnreadyNoScale: counting the unready pods at 0 reverses the direction", 3, 30, vec![pod(Ready, 400, 1000), pod(Unready, 500, 1000), pod(Unready, 700, 1000)], 3, 40, 400),
        ("TestReplicaCalcScaleUpIgnoresFailedPods", 2, 30, vec![pod(Ready, 500, 1000), pod(Ready, 700, 1000), pod(Ignored, 0, 1000), pod(Ignored, 0, 1000)], 4, 60, 600),
        ("TestReplicaCalcScaleDownIncludeUnreadyPods: unready pods do not count on scale-down", 5, 50, vec![pod(Ready, 100, 1000), pod(Ready, 300, 1000), pod(Ready, 500, 1000), pod(Unready, 250, 1000), pod(Unready, 250, 1000)], 2, 30, 300),
        ("TestReplicaCalcScaleDownExcludeUnscheduledPods", 5, 50, vec![pod(Ready, 100, 1000), pod(Unready, 0, 1000), pod(Unready, 0, 1000), pod(Unready, 0, 1000), pod(Unready, 0, 1000)], 1, 10, 100),
        ("TestReplicaCalcMissingMetrics: missing pods count at 100 % on scale-down", 4, 100, vec![pod(Ready, 400, 1000), pod(Ready, 95, 1000), pod(Missing, 0, 1000), pod(Missing, 0, 1000)], 3, 24, 247),
        ("TestReplicaCalcMissingMetricsNoChangeEq", 2, 100, vec![pod(Ready, 1000, 1000), pod(Missing, 0, 1000)], 2, 100, 1000),
        ("TestReplicaCalcMissingMetricsNoChangeGt: 0 % for the missing pod brings 190 % to 95 %", 2, 100, vec![pod(Ready, 1900, 1000), pod(Missing, 0, 1000)], 2, 190, 1900),
        ("TestReplicaCalcMissingMetricsNoChangeLt: 100 % for the missing pod brings 60 % to 80 %, still down", 2, 100, vec![pod(Ready, 600, 1000), pod(Missing, 0, 1000)], 2, 60, 600),
        ("TestReplicaCalcMissingMetricsUnreadyScaleUp: missing and unready pods count at 0 % on scale-up", 3, 50, vec![pod(Unready, 100, 1000), pod(Ready, 2000, 1000), pod(Missing, 0, 1000)], 4, 200, 2000),
        ("TestReplicaCalcMissingMetricsUnreadyScaleDown", 4, 50, vec![pod(Unready, 100, 1000), pod(Ready, 100, 1000), pod(Ready, 100, 1000), pod(Missing, 0, 1000)], 3, 10, 100),
        ("missing pods count at the target when it is above 100 %: (100 + 2×1000×250 %) / 3000 = 170 % < 250 %", 3, 250, vec![pod(Ready, 100, 1000), pod(Missing, 0, 1000), pod(Missing, 0, 1000)], 3, 10, 100),
    ];
    for (name, current, target, pods, replicas, utilization, average) in cases {
        let p = proposal(
            &cpu(MetricTarget::Utilization(target), agent(&pods)),
            current,
        );
        assert_eq!(p.replicas, replicas, "{name}");
        assert_eq!(p.status.average_utilization, Some(utilization), "{name}");
        assert_eq!(p.status.average_value, Some(average), "{name}");
        assert_eq!(
            p.metric_name,
            "cpu resource utilization (percentage of request)"
        );
    }
}

#[test]
fn missing_pods_above_100_percent_count_at_the_target() {
    // 4 ready pods at 10 % of a 200 % target, 4 without a metric: counted at 200 % they make
    // (400 + 8000) / 8000 = 105 %, ceil(8 × 0.525) = 5; counted at 100 % it would be 3.
    let mut pods = ready(&[100; 4]);
    pods.extend([pod(Class::Missing, 0, 1000); 4]);
    let p = proposal(&cpu(MetricTarget::Utilization(200), agent(&pods)), 8);
    assert_eq!(p.replicas, 5);
}

#[test]
fn per_direction_tolerance() {
    // 102 % of a 100 % target: inside the default 10 %, outside a 1 % scale-up tolerance.
    let pods = vec![
        pod(Class::Ready, 1010, 900),
        pod(Class::Ready, 1030, 1000),
        pod(Class::Ready, 1020, 1100),
    ];
    let mut i = input(
        3,
        1,
        10,
        vec![cpu(MetricTarget::Utilization(100), agent(&pods))],
    );
    assert_eq!(propose_all(&i).replicas, Some(3));
    i.behavior = Some(HpaBehavior {
        scale_up: Some(ScalingRules {
            tolerance: Some(0.01),
            ..Default::default()
        }),
        scale_down: None,
    });
    assert_eq!(propose_all(&i).replicas, Some(4));
    // A scale-down tolerance does not widen the band above 1.
    i.behavior = Some(HpaBehavior {
        scale_up: None,
        scale_down: Some(ScalingRules {
            tolerance: Some(0.5),
            ..Default::default()
        }),
    });
    assert_eq!(
        Tolerances::for_input(&i),
        Tolerances {
            scale_down: 0.5,
            scale_up: 0.1
        }
    );
    assert_eq!(propose_all(&i).replicas, Some(3));
}

#[test]
fn resource_failures() {
    let fail = |metric: &MetricInput| match propose(metric, &ctx(3)) {
        Err(f) => f,
        Ok(p) => panic!("unexpected proposal {p:?}"),
    };
    let f = fail(&cpu(
        MetricTarget::Utilization(50),
        ResourceAggregate::default(),
    ));
    assert_eq!(f.reason, "FailedGetResourceMetric");
    assert_eq!(
        f.message,
        "the HPA was unable to compute the replica count: failed to get cpu utilization: no pods \
         returned by selector while calculating replica count"
    );
    assert_eq!(
        f.error,
        "failed to get cpu resource metric value: failed to get cpu utilization: no pods returned \
         by selector while calculating replica count"
    );
    let unready = agent(&[pod(Class::Unready, 0, 1000)]);
    assert!(
        fail(&cpu(MetricTarget::Utilization(50), unready))
            .message
            .ends_with("did not receive metrics for targeted pods (pods might be unready)")
    );
    let mut no_request = agent(&ready(&[300]));
    no_request.pods_without_request = 1;
    assert!(
        fail(&cpu(MetricTarget::Utilization(50), no_request.clone()))
            .message
            .ends_with("missing request for cpu in 1 pod(s)")
    );
    // An average-value target does not need requests.
    assert_eq!(
        proposal(&cpu(MetricTarget::AverageValue(300), no_request), 1).replicas,
        1
    );
    let unavailable = MetricInput::ContainerResource {
        name: "cpu".into(),
        container: "app".into(),
        target: MetricTarget::Utilization(50),
        observation: Observation::Unavailable(
            "no metrics returned from resource metrics API".into(),
        ),
    };
    let f = fail(&unavailable);
    assert_eq!(f.reason, "FailedGetContainerResourceMetric");
    assert!(f.error.starts_with("failed to get app container metric value: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned"));
    let f = fail(&MetricInput::Unknown {
        source_type: "CheddarCheese".into(),
    });
    assert_eq!(f.reason, "InvalidMetricSourceType");
    assert!(
        fail(&cpu(MetricTarget::Utilization(0), agent(&ready(&[1]))))
            .message
            .contains("greater than zero")
    );
}

#[test]
fn resource_average_value_proposals() {
    use Class::*;
    type Case<'a> = (&'a str, i32, i64, Vec<Pod>, i32, i64);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("500 on average against 300", 3, 300, ready(&[300, 500, 700]), 5, 500),
        ("within tolerance", 3, 480, ready(&[300, 500, 700]), 3, 500),
        ("scale down", 5, 500, ready(&[100, 300, 500, 250, 250]), 3, 280),
        ("missing pods count at the target on scale-down: (200 + 2 × 500) / 4 = 300", 4, 500, vec![pod(Ready, 100, 0), pod(Ready, 100, 0), pod(Missing, 0, 0), pod(Missing, 0, 0)], 3, 100),
    ];
    for (name, current, target, pods, replicas, average) in cases {
        let p = proposal(
            &cpu(MetricTarget::AverageValue(target), agent(&pods)),
            current,
        );
        assert_eq!(
            (p.replicas, p.status.average_value),
            (replicas, Some(average)),
            "{name}"
        );
        assert_eq!(p.status.average_utilization, None);
        assert_eq!(p.metric_name, "cpu resource");
    }
}

fn qps(target: i64, agg: PodsAggregate) -> MetricInput {
    MetricInput::Pods {
        name: "qps".into(),
        target: MetricTarget::AverageValue(target),
        observation: Observation::Reported(agg),
    }
}

fn pods_agg(values: &[i64], unready: u32, missing: u32) -> PodsAggregate {
    PodsAggregate {
        value_sum: values.iter().sum(),
        ready_count: values.len() as u32,
        unready_count: unready,
        missing_count: missing,
        ignored_count: 0,
    }
}

#[test]
fn pods_metric_proposals() {
    #[rustfmt::skip]
    let cases: Vec<(&str, i32, i64, PodsAggregate, i32, i64)> = vec![
        ("TestReplicaCalcScaleUpCM", 3, 15000, pods_agg(&[20000, 10000, 30000], 0, 0), 4, 20000),
        // Running pods that are not Ready still count for Pods metrics.,
        ("TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", 3, 15000, pods_agg(&[50000, 10000, 30000], 0, 0), 6, 30000),
        ("TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", 3, 15000, pods_agg(&[50000, 15000, 30000], 0, 0), 7, 31666),
        ("TestReplicaCalcScaleDownCM", 5, 20000, pods_agg(&[12000; 5], 0, 0), 3, 12000),
        ("TestReplicaCalcToleranceCM", 3, 20000, pods_agg(&[20000, 21000, 21000], 0, 0), 3, 20666),
        ("a Pending pod counts at 0 on scale-up: 60000 / 4 / 10000 = 1.5", 3, 10000, pods_agg(&[20000, 20000, 20000], 1, 0), 6, 20000),
        ("missing pods count at the target on scale-down: (2 × 5000 + 2 × 20000) / 4 = 12500", 4, 20000, pods_agg(&[5000, 5000], 0, 2), 3, 5000),
    ];
    for (name, current, target, agg, replicas, average) in cases {
        let p = proposal(&qps(target, agg), current);
        assert_eq!(
            (p.replicas, p.status.average_value),
            (replicas, Some(average)),
            "{name}"
        );
        assert_eq!(p.metric_name, "pods metric qps");
    }
}

fn object(target: MetricTarget, value: i64) -> MetricInput {
    MetricInput::Object {
        name: "qps".into(),
        kind: "Deployment".into(),
        target,
        observation: Observation::Reported(value),
    }
}

fn external(target: MetricTarget, value: i64) -> MetricInput {
    MetricInput::External {
        name: "qps".into(),
        target,
        observation: Observation::Reported(value),
    }
}

#[test]
fn object_and_external_proposals() {
    use MetricTarget::{AverageValue, Value};
    // (name, metric, current, running ready pods, expected replicas, expected status)
    #[rustfmt::skip]
    let cases: Vec<(&str, MetricInput, i32, u32, i32, MetricValueStatus)> = vec![
        ("TestReplicaCalcScaleUpCMObject", object(Value(15000), 20000), 3, 3, 4, value(20000)),
        ("TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods: 5 × the one ready pod", object(Value(10000), 50000), 3, 1, 5, value(50000)),
        ("TestReplicaCalcScaleDownCMObject", object(Value(20000), 12000), 5, 5, 3, value(12000)),
        ("TestReplicaCalcToleranceCMObject", object(Value(20000), 20666), 3, 3, 3, value(20666)),
        ("TestReplicaCalcScaleUpCMPerPodObject", object(AverageValue(5000), 20000), 3, 3, 4, average(6667)),
        ("TestReplicaCalcScaleDownPerPodCMObject", object(AverageValue(2000), 6000), 5, 5, 3, average(1200)),
        ("TestReplicaCalcTolerancePerPodCMObject", object(AverageValue(5000), 20166), 4, 4, 4, average(5042)),
        ("TestReplicaCalcScaleUpCMExternal", external(Value(4400), 8600), 1, 1, 2, value(8600)),
        ("TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods", external(Value(4400), 8600), 3, 1, 2, value(8600)),
        ("TestReplicaCalcScaleDownCMExternal", external(Value(14334), 8600), 5, 5, 3, value(8600)),
        ("TestReplicaCalcScaleUpPerPodCMExternal", external(AverageValue(2150), 8600), 3, 3, 4, average(2867)),
        ("TestReplicaCalcTolerancePerPodCMExternal", external(AverageValue(2900), 8600), 3, 3, 3, average(2867)),
    ];
    for (name, metric, current, running_ready, replicas, status) in cases {
        let mut c = ctx(current);
        c.workload.running_ready_pods = running_ready;
        let p = match propose(&metric, &c) {
            Ok(p) => p,
            Err(e) => panic!("{name}: {e:?}"),
        };
        assert_eq!((p.replicas, p.status), (replicas, status), "{name}");
    }
    let mut c = ctx(3);
    c.workload.pods = 0;
    match propose(&object(Value(100), 1000), &c) {
        Err(f) => {
            assert_eq!(f.reason, "FailedGetObjectMetric");
            assert_eq!(
                f.error,
                "failed to get object metric value: unable to calculate ready pods: no pods \
                 returned by selector while calculating replica count"
            );
        }
        Ok(p) => panic!("{p:?}"),
    }
}

fn value(v: i64) -> MetricValueStatus {
    MetricValueStatus {
        value: Some(v),
        ..Default::default()
    }
}

fn average(v: i64) -> MetricValueStatus {
    MetricValueStatus {
        average_value: Some(v),
        ..Default::default()
    }
}

fn condition(c: &Option<HpaCondition>) -> (ConditionStatus, &str) {
    match c {
        Some(c) => (c.status, c.reason.as_str()),
        None => panic!("condition unset"),
    }
}

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

fn cpu_at(current: i32, per_pod: i64) -> MetricInput {
    cpu(
        MetricTarget::Utilization(100),
        agent(&ready(&vec![per_pod; current as usize])),
    )
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

#[test]
fn calibration_divides_pod_counts_by_pods_per_replica() {
    // Duplicated to two clusters: 3 template replicas run as 6 pods at 2 × the target.
    let mut i = input(
        3,
        1,
        20,
        vec![cpu(
            MetricTarget::Utilization(50),
            agent(&ready(&[1000; 6])),
        )],
    );
    assert_eq!(propose_all(&i).replicas, Some(12));
    i.member_spec_replicas = Some(6);
    assert_eq!(propose_all(&i).replicas, Some(6));
}

#[test]
fn sum_clusters_is_checked() {
    let a = ResourceAggregate {
        usage_sum: i64::MAX,
        ..Default::default()
    };
    let b = ResourceAggregate {
        usage_sum: 1,
        ..Default::default()
    };
    assert_eq!(
        sum_clusters([&a, &b]),
        Err(AggregateOverflow { field: "usageSum" })
    );
    assert_eq!(sum_clusters::<i64>([]), Ok(0));
    let w = WorkloadPods {
        status_replicas: 2,
        pods: 3,
        running_ready_pods: 1,
    };
    assert_eq!(
        sum_clusters([&w, &w]),
        Ok(WorkloadPods {
            status_replicas: 4,
            pods: 6,
            running_ready_pods: 2
        })
    );
}

/// `GetResourceReplicas` per pod, as Kubernetes runs it over one cluster's pods.
fn per_pod_utilization(pods: &[Pod], target: i32, current: i32) -> Option<(i32, i32, i64)> {
    let ready: Vec<&Pod> = pods.iter().filter(|p| p.class == Class::Ready).collect();
    if pods.is_empty() || ready.is_empty() {
        return None;
    }
    let util = |samples: &[(i64, i64)]| -> Option<i32> {
        let usage: i64 = samples.iter().map(|s| s.0).sum();
        let request: i64 = samples.iter().map(|s| s.1).sum();
        (request != 0).then(|| (usage * 100 / request) as i32)
    };
    let mut samples: Vec<(i64, i64)> = ready.iter().map(|p| (p.usage, p.request)).collect();
    let utilization = util(&samples)?;
    let raw = samples.iter().map(|s| s.0).sum::<i64>() / samples.len() as i64;
    let ratio = f64::from(utilization) / f64::from(target);
    let within = |r: f64| (0.9..=1.1).contains(&r);
    let has = |c: Class| pods.iter().filter(move |p| p.class == c);
    let unready = has(Class::Unready).count() > 0 && ratio > 1.0;
    if !unready && has(Class::Missing).count() == 0 {
        let replicas = if within(ratio) {
            current
        } else {
            (ratio * ready.len() as f64).ceil() as i32
        };
        return Some((replicas, utilization, raw));
    }
    for p in has(Class::Missing) {
        if ratio < 1.0 {
            samples.push((p.request * i64::from(target.max(100)) / 100, p.request));
        } else if ratio > 1.0 {
            samples.push((0, p.request));
        }
    }
    if unready {
        samples.extend(has(Class::Unready).map(|p| (0, p.request)));
    }
    let new_ratio = f64::from(util(&samples)?) / f64::from(target);
    if within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Some((current, utilization, raw));
    }
    let replicas = (new_ratio * samples.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Some((current, utilization, raw));
    }
    Some((replicas, utilization, raw))
}

/// A small deterministic generator (xorshift) for the table below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn two_clusters_sum_to_the_single_cluster_computation() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let classes = [
        Class::Ready,
        Class::Ready,
        Class::Ready,
        Class::Unready,
        Class::Missing,
        Class::Ignored,
    ];
    for round in 0..2000 {
        let n = 1 + rng.below(12) as usize;
        let pods: Vec<Pod> = (0..n)
            .map(|_| {
                let class = classes[rng.below(classes.len() as u64) as usize];
                pod(class, rng.below(3000) as i64, 100 + rng.below(1900) as i64)
            })
            .collect();
        let target = 10 + rng.below(91) as i32;
        let current = 1 + rng.below(12) as i32;
        let split = rng.below(n as u64 + 1) as usize;
        let summed = match sum_clusters([&agent(&pods[..split]), &agent(&pods[split..])]) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(summed, agent(&pods), "round {round}");
        let expected = per_pod_utilization(&pods, target, current);
        let got = propose(
            &cpu(MetricTarget::Utilization(target), summed),
            &ctx(current),
        )
        .ok()
        .map(|p| {
            (
                p.replicas,
                p.status.average_utilization.unwrap_or(-1),
                p.status.average_value.unwrap_or(-1),
            )
        });
        assert_eq!(
            got, expected,
            "round {round}: {pods:?} target {target} current {current}"
        );
    }
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
