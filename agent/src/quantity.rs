//! Kubernetes resource quantities, summed in milli-units for the cluster's resource summary.

use std::collections::{BTreeMap, HashMap};

/// Parses a quantity (`100m`, `2`, `1.5Gi`, `64Mi`, `1e3`, `2k`) into milli-units.
pub fn parse_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    if num.is_empty() {
        return None;
    }
    let (mult_num, mult_den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "m" => (1, 1),
        "u" => (1, 1000),
        "n" => (1, 1_000_000),
        "k" => (1000 * 1000, 1),
        "M" => (1000 * 1000i128.pow(2), 1),
        "G" => (1000 * 1000i128.pow(3), 1),
        "T" => (1000 * 1000i128.pow(4), 1),
        "P" => (1000 * 1000i128.pow(5), 1),
        "E" => (1000 * 1000i128.pow(6), 1),
        "Ki" => (1000 * 1024, 1),
        "Mi" => (1000 * 1024i128.pow(2), 1),
        "Gi" => (1000 * 1024i128.pow(3), 1),
        "Ti" => (1000 * 1024i128.pow(4), 1),
        "Pi" => (1000 * 1024i128.pow(5), 1),
        "Ei" => (1000 * 1024i128.pow(6), 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (1000 * 10i128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    // Decimal number as an exact fraction.
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let neg = int_part.starts_with('-');
    let int_digits = int_part.trim_start_matches(['-', '+']);
    let scale = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
    let whole: i128 = if int_digits.is_empty() {
        0
    } else {
        int_digits.parse().ok()?
    };
    let frac: i128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().ok()?
    };
    let value = whole
        .checked_mul(scale)?
        .checked_add(frac)?
        .checked_mul(mult_num)?
        / scale.checked_mul(mult_den)?;
    Some(if neg { -value } else { value })
}

/// Formats milli-units as a quantity: whole units when exact, else `<n>m`.
pub fn format_milli(m: i128) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// Sums of quantities by resource name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResourceSum(pub BTreeMap<String, i128>);

impl ResourceSum {
    /// Adds `quantity` of `name`; unparsable quantities are skipped.
    pub fn add(&mut self, name: &str, quantity: &str) {
        if let Some(m) = parse_milli(quantity) {
            let sum = self.0.entry(name.to_owned()).or_default();
            *sum = sum.saturating_add(m);
        }
    }

    /// Adds whole units.
    pub fn add_units(&mut self, name: &str, units: i128) {
        let sum = self.0.entry(name.to_owned()).or_default();
        *sum = sum.saturating_add(units.saturating_mul(1000));
    }

    /// As quantity strings.
    pub fn to_map(&self) -> HashMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), format_milli(*v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases = [
            ("100m", Some(100)),
            ("2", Some(2000)),
            ("1.5", Some(1500)),
            ("0.1", Some(100)),
            ("1Ki", Some(1_024_000)),
            ("64Mi", Some(64 * 1024 * 1024 * 1000)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("2k", Some(2_000_000)),
            ("1e3", Some(1_000_000)),
            ("-1", Some(-1000)),
            ("", None),
            ("Mi", None),
            ("5X", None),
        ];
        for (q, want) in cases {
            assert_eq!(parse_milli(q), want, "{q}");
        }
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_milli(2500), "2500m");
        let mut s = ResourceSum::default();
        s.add("cpu", "32");
        s.add("cpu", "500m");
        s.add("cpu", "junk");
        s.add_units("pods", 3);
        assert_eq!(s.to_map().get("cpu").map(String::as_str), Some("32500m"));
        assert_eq!(s.to_map().get("pods").map(String::as_str), Some("3"));
        // Values reported by a member cannot overflow the sums.
        assert_eq!(parse_milli("170141183460469231731687303715884105727"), None);
        assert_eq!(
            parse_milli("9.99999999999999999999999999999999999999E"),
            None
        );
        let mut s = ResourceSum::default();
        s.add("cpu", "170141183460469231731687303715884105");
        s.add("cpu", "170141183460469231731687303715884105");
        s.add_units("pods", i128::MAX);
        assert_eq!(s.0.get("cpu"), Some(&i128::MAX));
        assert_eq!(s.0.get("pods"), Some(&i128::MAX));
    }
}
