//! Webster / Sainte-Laguë apportionment (Karmada >= v1.16) with its tie-breaks.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// FNV-1a 32-bit hash.
pub fn fnv32a(s: &str) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// Final tie-break between parties with equal quotients and equal seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TieBreak {
    /// The lexicographically larger name wins (else the smaller).
    pub larger_name_wins: bool,
}

impl TieBreak {
    /// Per-template tie-break: odd FNV-32a hash of the UID -> larger name wins; even hash or
    /// no UID -> smaller name wins.
    pub fn from_uid(uid: &str) -> Self {
        TieBreak {
            larger_name_wins: !uid.is_empty() && fnv32a(uid) % 2 == 1,
        }
    }
}

struct Entry<'a> {
    name: &'a str,
    weight: i128,
    seats: i64,
    index: usize,
    tie: TieBreak,
}

impl Ord for Entry<'_> {
    /// Greater = should receive the next seat.
    fn cmp(&self, other: &Self) -> Ordering {
        // votes/(2s+1) compared without division. Weights are below 2^63 and 2s+1 below
        // 2^64, so the products stay below 2^127.
        let lhs = self.weight * (2 * i128::from(other.seats) + 1);
        let rhs = other.weight * (2 * i128::from(self.seats) + 1);
        lhs.cmp(&rhs)
            .then_with(|| other.seats.cmp(&self.seats))
            .then_with(|| {
                let by_name = self.name.cmp(other.name);
                if self.tie.larger_name_wins {
                    by_name
                } else {
                    by_name.reverse()
                }
            })
            .then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Entry<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry<'_> {}

/// Gives `seats` seats one by one to the party with the largest `weight / (2·seats + 1)`;
/// ties go to the party with fewer seats, then by name per `tie`, then to the earlier party.
/// Negative weights count as 0; a party with weight 0 only wins when every party has weight 0.
/// Returns seats per party, in input order.
///
/// Runs in O(n·log n) for n parties whatever the number of seats: the result of the
/// seat-by-seat procedure is computed in closed form up to at most n seats, and only those are
/// handed out one by one.
pub fn apportion(seats: i64, parties: &[(&str, i64)], tie: TieBreak) -> Vec<i64> {
    if parties.is_empty() || seats <= 0 {
        return vec![0; parties.len()];
    }
    let weights: Vec<i64> = parties.iter().map(|(_, w)| (*w).max(0)).collect();
    let mut out = guaranteed_seats(seats, &weights);
    let given = out.iter().fold(0i64, |a, s| a.saturating_add(*s));
    let mut heap: BinaryHeap<Entry<'_>> = parties
        .iter()
        .zip(&weights)
        .zip(&out)
        .enumerate()
        .map(|(index, (((name, _), w), s))| Entry {
            name,
            weight: i128::from(*w),
            seats: *s,
            index,
            tie,
        })
        .collect();
    // At most `parties.len()` seats are left (see `guaranteed_seats`).
    debug_assert!(seats - given <= parties.len() as i64, "{given} of {seats}");
    for _ in given..seats {
        let Some(mut e) = heap.pop() else { break };
        e.seats += 1;
        out[e.index] = e.seats;
        heap.push(e);
    }
    out
}

/// Seats each party holds after the first `seats - k` steps of the seat-by-seat procedure,
/// for some `0 <= k <= weights.len()` (weights are non-negative).
///
/// The procedure hands out the candidate quotients `w/(2j+1)` (j = 0, 1, ... per party) in
/// decreasing order of the total order used by [`Entry`], whose first key is the quotient. So
/// for any threshold `t`, the quotients above `t` are all handed out before any other, and if
/// there are at most `seats` of them, every party holds at least its count of them in the
/// result. With `t = W / (2·seats - n)` (`W` the total weight, `n` the number of positive
/// weights), party `i` has `c_i` = #{odd m : m·W < 2·w_i·seats - w_i·n} quotients above `t`,
/// and `(x_i - 1)/2 <= c_i <= (x_i + 1)/2` with `x_i = w_i·(2·seats - n)/W`, so the total lies
/// between `seats - n` and `seats`. With all weights 0 every quotient is 0 and the seats go
/// round by round: each party holds `seats / n` after the first full rounds.
fn guaranteed_seats(seats: i64, weights: &[i64]) -> Vec<i64> {
    let Ok(seats_u) = u128::try_from(seats) else {
        return vec![0; weights.len()];
    };
    // Each weight is below 2^63, so the total of up to 2^64 weights stays below 2^127.
    let total: u128 = weights.iter().map(|w| u128::from(w.unsigned_abs())).sum();
    if total == 0 {
        let n = i64::try_from(weights.len()).unwrap_or(i64::MAX).max(1);
        return vec![seats / n; weights.len()];
    }
    let positive = weights.iter().filter(|w| **w > 0).count() as u128;
    // `2·seats - n` with seats < 2^63: below 2^64.
    let Some(scale) = (2 * seats_u).checked_sub(positive).filter(|l| *l > 0) else {
        return vec![0; weights.len()];
    };
    weights
        .iter()
        .map(|w| {
            // Below 2^63 · 2^64 = 2^127: no overflow.
            let p = u128::from(w.unsigned_abs()) * scale;
            if p == 0 {
                return 0;
            }
            // Largest m with m·W < p, then the number of odd m' <= m.
            let m = (p - 1) / total;
            // At most `seats` (see above), so it fits.
            i64::try_from(m.div_ceil(2)).unwrap_or(seats).min(seats)
        })
        .collect()
}

/// The seat-by-seat procedure, one heap operation per seat: the definition [`apportion`] must
/// agree with.
#[cfg(test)]
pub(crate) fn apportion_one_by_one(seats: i64, parties: &[(&str, i64)], tie: TieBreak) -> Vec<i64> {
    let mut out = vec![0; parties.len()];
    if parties.is_empty() || seats <= 0 {
        return out;
    }
    let mut heap: BinaryHeap<Entry<'_>> = parties
        .iter()
        .enumerate()
        .map(|(index, (name, w))| Entry {
            name,
            weight: i128::from((*w).max(0)),
            seats: 0,
            index,
            tie,
        })
        .collect();
    for _ in 0..seats {
        let Some(mut e) = heap.pop() else { break };
        e.seats += 1;
        out[e.index] = e.seats;
        heap.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seats: i64, weights: &[i64], tie: TieBreak) -> Vec<i64> {
        let names = ["A", "B", "C", "D", "E", "F"];
        let parties: Vec<(&str, i64)> =
            names.iter().copied().zip(weights.iter().copied()).collect();
        apportion(seats, &parties, tie)
    }

    #[test]
    fn reference_results() {
        let small = TieBreak::default();
        let large = TieBreak {
            larger_name_wins: true,
        };
        let cases: &[(i64, &[i64], TieBreak, &[i64])] = &[
            (7, &[1, 2, 1], small, &[2, 3, 2]),
            (7, &[1, 2, 1], large, &[2, 3, 2]),
            (12, &[3, 2, 1], small, &[6, 4, 2]),
            (13, &[3, 2, 1], small, &[7, 4, 2]),
            (14, &[3, 2, 1], small, &[7, 5, 2]),
            (9, &[1, 3], small, &[2, 7]),
            (3, &[1, 2], small, &[1, 2]),
            (10, &[1, 1, 1], small, &[4, 3, 3]),
            (10, &[1, 1, 1], large, &[3, 3, 4]),
            (4, &[1, 1, 1, 1, 1], small, &[1, 1, 1, 1, 0]),
            (4, &[1, 1, 1, 1, 1], large, &[0, 1, 1, 1, 1]),
            (12, &[6, 12, 18], small, &[2, 4, 6]),
            (12, &[6, 8, 10], small, &[3, 4, 5]),
            (10, &[6, 12, 18], small, &[2, 3, 5]),
            (6, &[2, 4, 6], small, &[1, 2, 3]),
            (12, &[10, 10, 10], small, &[4, 4, 4]),
            (20, &[18, 12], small, &[12, 8]),
            // Edge cases: zero seats, zero weights, a single party, all zero weights.
            (0, &[1, 2], small, &[0, 0]),
            (5, &[0, 3], small, &[0, 5]),
            (5, &[7], small, &[5]),
            (3, &[0, 0], small, &[2, 1]),
            (5, &[-1, 1], small, &[0, 5]),
        ];
        for (seats, weights, tie, want) in cases {
            assert_eq!(
                run(*seats, weights, *tie),
                *want,
                "{seats} over {weights:?} {tie:?}"
            );
        }
    }

    #[test]
    fn monotonic_when_seats_grow() {
        let weights = [5, 3, 2, 7, 1];
        let mut prev = run(0, &weights, TieBreak::default());
        for n in 1..200 {
            let next = run(n, &weights, TieBreak::default());
            assert_eq!(next.iter().sum::<i64>(), n);
            for (a, b) in prev.iter().zip(&next) {
                assert!(b >= a, "n={n}: {prev:?} -> {next:?}");
            }
            prev = next;
        }
    }

    #[test]
    fn hundreds_of_parties() {
        let names: Vec<String> = (0..500).map(|i| format!("m{i:03}")).collect();
        let parties: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        let out = apportion(1000, &parties, TieBreak::default());
        assert!(out.iter().all(|s| *s == 2));
        let out = apportion(250, &parties, TieBreak::default());
        assert_eq!(out.iter().filter(|s| **s == 1).count(), 250);
        assert_eq!(out[0], 1, "smaller names first");
        assert_eq!(out[499], 0);
    }

    /// splitmix64: a small deterministic generator for the equivalence tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in `lo..=hi`.
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            let span = (hi - lo) as u64 + 1;
            lo + (self.next() % span) as i64
        }
    }

    fn random_weight(rng: &mut Rng, mode: i64) -> i64 {
        match mode {
            0 => rng.range(-2, 10),
            1 => rng.range(0, 3),
            2 => i64::MAX - rng.range(0, 3),
            3 => [0, 1, i64::MAX, i64::MAX - 1, 1 << 40][rng.range(0, 4) as usize],
            4 => 0,
            _ => rng.range(1, 1_000_000),
        }
    }

    #[test]
    fn equals_seat_by_seat_on_random_inputs() {
        let pool = ["a", "b", "c", "d", "ab", ""];
        let mut rng = Rng(7);
        for case in 0..20_000 {
            let n = rng.range(1, 8) as usize;
            let mode = rng.range(0, 5);
            let distinct = rng.range(0, 1) == 0;
            let names: Vec<String> = (0..n)
                .map(|i| {
                    if distinct {
                        format!("m{}", rng.range(0, 99) * 10 + i as i64)
                    } else {
                        pool[rng.range(0, 5) as usize].to_string()
                    }
                })
                .collect();
            let parties: Vec<(&str, i64)> = names
                .iter()
                .map(|name| (name.as_str(), random_weight(&mut rng, mode)))
                .collect();
            let seats = rng.range(-2, 120);
            let tie = TieBreak {
                larger_name_wins: rng.range(0, 1) == 1,
            };
            assert_eq!(
                apportion(seats, &parties, tie),
                apportion_one_by_one(seats, &parties, tie),
                "case {case}: {seats} seats over {parties:?} {tie:?}"
            );
        }
    }

    #[test]
    fn equals_seat_by_seat_for_many_seats_and_parties() {
        let mut rng = Rng(11);
        for case in 0..40 {
            let n = rng.range(1, 60) as usize;
            let mode = rng.range(0, 5);
            let names: Vec<String> = (0..n).map(|i| format!("c{:02}", (i * 7) % n)).collect();
            let parties: Vec<(&str, i64)> = names
                .iter()
                .map(|name| (name.as_str(), random_weight(&mut rng, mode)))
                .collect();
            let seats = rng.range(0, 20_000);
            let tie = TieBreak {
                larger_name_wins: case % 2 == 1,
            };
            assert_eq!(
                apportion(seats, &parties, tie),
                apportion_one_by_one(seats, &parties, tie),
                "case {case}: {seats} seats over {parties:?} {tie:?}"
            );
        }
    }

    /// The result of the seat-by-seat procedure: no party's next quotient beats the smallest
    /// quotient that won a seat.
    fn assert_highest_averages(out: &[i64], weights: &[i64]) {
        let q = |w: i64, s: i64| (i128::from(w.max(0)), 2 * i128::from(s) + 1);
        let last_won = out
            .iter()
            .zip(weights)
            .filter(|(s, _)| **s > 0)
            .map(|(s, w)| q(*w, s - 1))
            .min_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)));
        let next = out
            .iter()
            .zip(weights)
            .map(|(s, w)| q(*w, *s))
            .max_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)));
        if let (Some(won), Some(next)) = (last_won, next) {
            assert!(won.0 * next.1 >= next.0 * won.1, "{out:?} {weights:?}");
        }
    }

    #[test]
    fn i32_max_seats_over_a_thousand_parties() {
        let names: Vec<String> = (0..1000).map(|i| format!("c{i:04}")).collect();
        type WeightOf = fn(usize) -> i64;
        let cases: [(&str, WeightOf); 4] = [
            ("equal", |_| 1),
            ("1..7", |i| 1 + (i % 7) as i64),
            ("huge", |i| i64::MAX - i as i64),
            ("some zero", |i| if i % 3 == 0 { 0 } else { 1 << 40 }),
        ];
        let seats = i64::from(i32::MAX);
        for (label, weight) in cases {
            let parties: Vec<(&str, i64)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), weight(i)))
                .collect();
            let weights: Vec<i64> = parties.iter().map(|p| p.1).collect();
            let start = std::time::Instant::now();
            let out = apportion(seats, &parties, TieBreak::default());
            let less = apportion(seats - 1, &parties, TieBreak::default());
            assert!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "{label}: {:?}",
                start.elapsed()
            );
            assert_eq!(out.iter().sum::<i64>(), seats, "{label}");
            assert_highest_averages(&out, &weights);
            // One seat fewer takes exactly one seat from exactly one party.
            let diff: Vec<i64> = out.iter().zip(&less).map(|(a, b)| a - b).collect();
            assert_eq!(diff.iter().filter(|d| **d != 0).count(), 1, "{label}");
            assert!(diff.iter().all(|d| *d == 0 || *d == 1), "{label}");
        }
        // Below the lower quota: 999 parties of weight 1 have a quota of 0.6 seats each and
        // round up to 1, so the large party ends 399 seats under the floor of its quota.
        let mut parties: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        parties[0].1 = 3_579_138_413;
        let out = apportion(seats, &parties, TieBreak::default());
        assert_eq!(out[0], seats - 999);
        assert!(out[1..].iter().all(|s| *s == 1));
        // Equal weights: 2,147,483 each and the 647 smallest names one more.
        let parties: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        let out = apportion(seats, &parties, TieBreak::default());
        assert!(out[..647].iter().all(|s| *s == 2_147_484));
        assert!(out[647..].iter().all(|s| *s == 2_147_483));
    }

    #[test]
    fn extreme_seats_and_weights_do_not_overflow() {
        let tie = TieBreak::default();
        let out = apportion(i64::MAX, &[("a", i64::MAX), ("b", i64::MAX)], tie);
        assert_eq!(out, vec![i64::MAX / 2 + 1, i64::MAX / 2]);
        let out = apportion(i64::MAX, &[("a", 0), ("b", 0), ("c", -5)], tie);
        assert_eq!(out.iter().sum::<i64>(), i64::MAX);
        let out = apportion(i64::MAX, &[("a", 1), ("b", i64::MAX), ("c", i64::MIN)], tie);
        assert_eq!(out.iter().sum::<i64>(), i64::MAX);
        assert_eq!(out[2], 0);
        assert_eq!(apportion(i64::MIN, &[("a", 1)], tie), vec![0]);
        assert!(apportion(5, &[], tie).is_empty());
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv32a(""), 0x811c_9dc5);
        assert_eq!(fnv32a("a"), 0xe40c_292c);
    }
}
