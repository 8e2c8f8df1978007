//! Tables for the HPA algorithm. Cases named `TestXxx` are those of Kubernetes'
//! `replica_calculator_test.go` / `horizontal_test.go`, rewritten per pod (the Kubernetes tests
//! give each pod two containers; here a pod has one request and one usage).

use super::behavior::*;
use super::replicas::*;

mod aggregates;
mod behavior;
mod decisions;
mod proposals;

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

fn cpu_at(current: i32, per_pod: i64) -> MetricInput {
    cpu(
        MetricTarget::Utilization(100),
        agent(&ready(&vec![per_pod; current as usize])),
    )
}
