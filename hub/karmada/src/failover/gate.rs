//! Limits on taint evictions, so that a failure of the hub's own view never empties the
//! fleet: a rate (Karmada's `--resource-eviction-rate`, bindings per second) and a halt while
//! a large share of the clusters is not ready at once, which is more likely the hub's network
//! or the agents' path to it than that many clusters failing together.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use crate::scheduler::{ClusterInfo, Readiness};

/// Whether taint evictions may happen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionGate {
    /// Yes.
    Open,
    /// Not before this time (the eviction rate).
    Wait(Timestamp),
    /// Not while this holds.
    Halted(String),
}

/// Fewest not-ready clusters that can halt evictions: one cluster failing is what failover
/// is for.
pub const MASS_FAILURE_MIN_CLUSTERS: usize = 2;

/// Why taint evictions stop, if they do: at least [`MASS_FAILURE_MIN_CLUSTERS`] clusters and
/// at least `threshold_percent` of all clusters are not ready. Above 100 never halts.
pub fn mass_failure<'a>(
    clusters: impl IntoIterator<Item = &'a ClusterInfo>,
    threshold_percent: u32,
) -> Option<String> {
    let (mut total, mut down) = (0usize, 0usize);
    for c in clusters {
        if c.deleting {
            continue;
        }
        total += 1;
        if c.readiness != Readiness::Ready {
            down += 1;
        }
    }
    let share_reached = (down as u128).saturating_mul(100)
        >= (total as u128).saturating_mul(u128::from(threshold_percent));
    (down >= MASS_FAILURE_MIN_CLUSTERS && share_reached).then(|| {
        format!(
            "{down} of {total} clusters are not ready, at least the {threshold_percent}% at which the hub stops evicting (--eviction-halt-percent); more likely the hub's own connectivity than {down} clusters failing at once"
        )
    })
}

/// A rate limit on taint evictions: `rate` bindings per second on average, shared by every
/// worker of the failover controller, with a burst of one second's worth (at least one), so
/// bindings looked at again a second later are not held to one per wake-up. A rate of 0 halts
/// them.
#[derive(Debug)]
pub struct EvictionLimiter {
    interval: Option<SignedDuration>,
    /// How far ahead of `now` the next slot may be and still be taken (the burst).
    tolerance: SignedDuration,
    /// When the next eviction's slot is (a generic cell rate algorithm).
    next: Mutex<Option<Timestamp>>,
}

impl EvictionLimiter {
    /// A limiter of `rate` evictions per second (a negative or non-finite rate is 0).
    pub fn new(rate: f64) -> Self {
        let interval = (rate.is_finite() && rate > 0.0)
            .then(|| SignedDuration::try_from_secs_f64(1.0 / rate).ok())
            .flatten();
        // One second's worth of evictions, at least one: `ceil(rate) - 1` slots ahead.
        #[allow(clippy::cast_possible_truncation)]
        let burst = if rate.is_finite() && rate > 1.0 {
            rate.ceil().min(f64::from(i32::MAX)) as i32
        } else {
            1
        };
        let tolerance = interval
            .and_then(|i| i.checked_mul(burst.saturating_sub(1)))
            .unwrap_or(SignedDuration::ZERO);
        Self {
            interval,
            tolerance,
            next: Mutex::new(None),
        }
    }

    /// When the slot at `at` may be taken.
    fn allowed_at(&self, at: Timestamp) -> Timestamp {
        at.checked_sub(self.tolerance).unwrap_or(Timestamp::MIN)
    }

    /// The gate as it stands at `now`, without taking a turn.
    pub fn gate(&self, now: Timestamp) -> EvictionGate {
        if self.interval.is_none() {
            return EvictionGate::Halted(
                "the eviction rate is 0 (--resource-eviction-rate)".into(),
            );
        }
        let next = *self.next.lock().unwrap_or_else(|e| e.into_inner());
        match next.map(|at| self.allowed_at(at)) {
            Some(at) if at > now => EvictionGate::Wait(at),
            _ => EvictionGate::Open,
        }
    }

    /// Takes turns for `n` evictions at `now`; `Err` with the time to try again when it is
    /// not yet their turn.
    pub fn take(&self, now: Timestamp, n: usize) -> Result<(), Timestamp> {
        let Some(interval) = self.interval else {
            return Err(Timestamp::MAX);
        };
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = *next {
            let allowed = self.allowed_at(at);
            if allowed > now {
                return Err(allowed);
            }
        }
        let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
        let step = interval.checked_mul(n).unwrap_or(SignedDuration::MAX);
        let from = next.map_or(now, |at| at.max(now));
        *next = Some(from.checked_add(step).unwrap_or(Timestamp::MAX));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn cluster(name: &str, ready: &str) -> ClusterInfo {
        ClusterInfo::from_cluster_json(&json!({"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
        .unwrap()
    }

    #[test]
    fn one_cluster_down_never_halts_most_down_does() {
        let fleet = |states: &[&str]| -> Vec<ClusterInfo> {
            states
                .iter()
                .enumerate()
                .map(|(i, s)| cluster(&format!("m{i}"), s))
                .collect()
        };
        assert!(mass_failure(&fleet(&["False", "False"]), 100).is_some());
        assert!(mass_failure(&fleet(&["False"]), 55).is_none());
        assert!(mass_failure(&fleet(&["False", "True", "True"]), 55).is_none());
        assert!(mass_failure(&fleet(&["False", "True"]), 50).is_none());
        let why = mass_failure(&fleet(&["False", "Unknown", "True"]), 55).unwrap();
        assert!(why.starts_with("2 of 3 clusters are not ready"), "{why}");
        assert!(mass_failure(&fleet(&["False", "Unknown", "True", "True", "True"]), 55).is_none());
        assert!(mass_failure(&fleet(&["False", "Unknown", "Unknown"]), 101).is_none());
        assert!(mass_failure(&[], 55).is_none());
    }

    #[test]
    fn the_rate_spaces_evictions_and_zero_halts() {
        let t0: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let l = EvictionLimiter::new(0.5);
        assert_eq!(l.gate(t0), EvictionGate::Open);
        l.take(t0, 1).unwrap();
        let t2 = t0.checked_add(SignedDuration::from_secs(2)).unwrap();
        assert_eq!(l.gate(t0), EvictionGate::Wait(t2));
        assert_eq!(l.take(t0, 1), Err(t2));
        l.take(t2, 2).unwrap();
        assert_eq!(
            l.gate(t2),
            EvictionGate::Wait(t2.checked_add(SignedDuration::from_secs(4)).unwrap())
        );
        // Above one per second, a second's worth may go at once, then the rate holds.
        let fast = EvictionLimiter::new(10.0);
        for _ in 0..10 {
            fast.take(t0, 1).unwrap();
        }
        let after_burst = fast.take(t0, 1).unwrap_err();
        assert!(after_burst > t0, "{after_burst}");
        let t1 = t0.checked_add(SignedDuration::from_secs(1)).unwrap();
        for _ in 0..10 {
            fast.take(t1, 1).unwrap();
        }
        assert!(fast.take(t1, 1).is_err());
        let halted = EvictionLimiter::new(0.0);
        assert!(matches!(halted.gate(t0), EvictionGate::Halted(_)));
        assert!(halted.take(t0, 1).is_err());
        assert!(matches!(
            EvictionLimiter::new(f64::NAN).gate(t0),
            EvictionGate::Halted(_)
        ));
    }
}
