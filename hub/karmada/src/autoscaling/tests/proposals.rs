//! One metric's proposal per source type, and the highest of several.

use super::*;

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
