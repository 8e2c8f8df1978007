//! Kubernetes resource quantities (`100m`, `4Gi`, `1.5`, `2e3`) as integer milli-units.

/// Parses a quantity into thousandths of the base unit (`100m` -> 100, `2` -> 2000,
/// `1Ki` -> 1_024_000). Fractions below one milli-unit round up, as Kubernetes does for
/// `MilliValue`. Returns `None` for malformed input.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (num, suffix) = split_number(s)?;
    let (mul_num, mul_den): (i128, i128) = match suffix {
        "" => (1, 1),
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "m" => (1, 1_000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ => {
            // Decimal exponent: `2e3`, `1E-2`.
            let exp = suffix.strip_prefix(['e', 'E'])?.parse::<i32>().ok()?;
            if exp.abs() > 18 {
                return None;
            }
            if exp >= 0 {
                (10i128.pow(exp.unsigned_abs()), 1)
            } else {
                (1, 10i128.pow(exp.unsigned_abs()))
            }
        }
    };
    let (neg, digits) = match num.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.len() > 18 || int_part.len() > 24 {
        return None;
    }
    let int: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let frac: i128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().ok()?
    };
    let frac_den = 10i128.pow(frac_part.len() as u32);
    // value = (int + frac/frac_den) * mul_num / mul_den * 1000
    let numerator = (int.checked_mul(frac_den)?.checked_add(frac)?)
        .checked_mul(mul_num)?
        .checked_mul(1000)?;
    let denominator = frac_den.checked_mul(mul_den)?;
    // Rounds up without forming `numerator + denominator - 1`, which can overflow.
    let value = numerator / denominator + i128::from(numerator % denominator != 0);
    Some(if neg { -value } else { value })
}

fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0)))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((&s[..end], &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::parse_milli;

    #[test]
    fn quantities() {
        let cases: &[(&str, Option<i128>)] = &[
            ("100m", Some(100)),
            ("2", Some(2000)),
            ("0.5", Some(500)),
            ("1Ki", Some(1_024_000)),
            ("4Gi", Some(4 * (1 << 30) * 1000)),
            ("4Ti", Some(4 * (1i128 << 40) * 1000)),
            ("1k", Some(1_000_000)),
            ("2e3", Some(2_000_000)),
            ("1.5Gi", Some(3 * (1 << 29) * 1000)),
            ("1n", Some(1)), // rounds up to one milli-unit
            ("-1", Some(-1000)),
            ("", None),
            ("abc", None),
            ("1Zi", None),
            (".", None),
            // Near the i128 limit: rounds up without overflowing, or is rejected.
            (
                "170141183460469231.731687303715884105n",
                Some(170_141_183_461),
            ),
            ("9223372036854775807", Some(9_223_372_036_854_775_807_000)),
            (
                "-9223372036854775808Gi",
                Some(-(9_223_372_036_854_775_808_000 << 30)),
            ),
            ("-9223372036854775808Ei", None),
            ("999999999999999999999999Ei", None),
            ("1e19", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_milli(s), *want, "{s}");
        }
    }
}
