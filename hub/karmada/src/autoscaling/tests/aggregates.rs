//! Sums over clusters: checked, and equal to the computation over every pod at once.

use super::*;

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
