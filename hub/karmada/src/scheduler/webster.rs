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
        // votes/(2s+1) compared without division.
        let lhs = self.weight * i128::from(2 * other.seats + 1);
        let rhs = other.weight * i128::from(2 * self.seats + 1);
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
/// ties go to the party with fewer seats, then by name per `tie`. Negative weights count as 0;
/// a party with weight 0 only wins when every party has weight 0. Returns seats per party, in
/// input order.
pub fn apportion(seats: i64, parties: &[(&str, i64)], tie: TieBreak) -> Vec<i64> {
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

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv32a(""), 0x811c_9dc5);
        assert_eq!(fnv32a("a"), 0xe40c_292c);
    }
}
