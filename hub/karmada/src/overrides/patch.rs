//! RFC 6902 `add`, `remove` and `replace` on a JSON document addressed by an RFC 6901 pointer.

use serde_json::Value;

/// Splits a JSON pointer into unescaped tokens; `""` is the whole document.
pub(crate) fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("path must be a JSON pointer starting with '/'".into());
    };
    rest.split('/')
        .map(|t| {
            // "~" must be followed by 0 or 1.
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("invalid escape in pointer token {t:?}")),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let idx: usize = if valid {
        token
            .parse()
            .map_err(|_| format!("invalid array index {token:?}"))?
    } else {
        return Err(format!("invalid array index {token:?}"));
    };
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if idx > limit || (!allow_end && len == 0) {
        return Err(format!("array index {idx} out of bounds (length {len})"));
    }
    Ok(idx)
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("path segment {t:?} not found"))?,
            Value::Array(a) => {
                let i = array_index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok(cur)
}

/// Applies one `add`, `remove` or `replace` operation; the message says what went wrong.
pub(crate) fn apply_op(
    doc: &mut Value,
    operator: &str,
    path: &str,
    value: Option<&Value>,
) -> Result<(), String> {
    let toks = tokens(path)?;
    let value = match operator {
        "add" | "replace" => Some(
            value
                .cloned()
                .ok_or_else(|| format!("value is required for {operator}"))?,
        ),
        "remove" => None,
        other => return Err(format!("unknown operator {other:?}")),
    };
    let Some((last, parents)) = toks.split_last() else {
        // The whole document.
        return match value {
            Some(v) => {
                *doc = v;
                Ok(())
            }
            None => Err("cannot remove the whole document".into()),
        };
    };
    let parent = parent_mut(doc, parents)?;
    match (parent, operator, value) {
        (Value::Object(m), "add", Some(v)) => {
            m.insert(last.clone(), v);
        }
        (Value::Object(m), "replace", Some(v)) => match m.get_mut(last) {
            Some(slot) => *slot = v,
            None => return Err(format!("path segment {last:?} not found")),
        },
        (Value::Object(m), _, _) => {
            if m.remove(last).is_none() {
                return Err(format!("path segment {last:?} not found"));
            }
        }
        (Value::Array(a), "add", Some(v)) => {
            let i = array_index(last, a.len(), true)?;
            a.insert(i, v);
        }
        (Value::Array(a), "replace", Some(v)) => {
            let i = array_index(last, a.len(), false)?;
            a[i] = v;
        }
        (Value::Array(a), _, _) => {
            let i = array_index(last, a.len(), false)?;
            a.remove(i);
        }
        _ => return Err("parent is not an object or a list".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn operations() {
        let doc = json!({"a": {"b": 1}, "l": [1, 2], "s": "x", "k/~": 7});
        type Case = (&'static str, &'static str, Option<Value>, Result<Value, ()>);
        let cases: Vec<Case> = vec![
            (
                "add",
                "/a/c",
                Some(json!(2)),
                Ok(json!({"a": {"b": 1, "c": 2}, "l": [1, 2], "s": "x", "k/~": 7})),
            ),
            // add on an existing member replaces it.
            (
                "add",
                "/a/b",
                Some(json!(5)),
                Ok(json!({"a": {"b": 5}, "l": [1, 2], "s": "x", "k/~": 7})),
            ),
            (
                "add",
                "/l/-",
                Some(json!(3)),
                Ok(json!({"a": {"b": 1}, "l": [1, 2, 3], "s": "x", "k/~": 7})),
            ),
            (
                "add",
                "/l/0",
                Some(json!(0)),
                Ok(json!({"a": {"b": 1}, "l": [0, 1, 2], "s": "x", "k/~": 7})),
            ),
            (
                "add",
                "/l/2",
                Some(json!(3)),
                Ok(json!({"a": {"b": 1}, "l": [1, 2, 3], "s": "x", "k/~": 7})),
            ),
            ("add", "/l/3", Some(json!(3)), Err(())),
            ("add", "/l/01", Some(json!(3)), Err(())),
            ("add", "/missing/x", Some(json!(1)), Err(())),
            ("add", "/s/x", Some(json!(1)), Err(())),
            ("add", "/a/c", None, Err(())),
            ("add", "a/c", Some(json!(1)), Err(())),
            (
                "add",
                "",
                Some(json!({"new": true})),
                Ok(json!({"new": true})),
            ),
            (
                "replace",
                "/k~1~0",
                Some(json!(8)),
                Ok(json!({"a": {"b": 1}, "l": [1, 2], "s": "x", "k/~": 8})),
            ),
            ("replace", "/a/zz", Some(json!(1)), Err(())),
            (
                "replace",
                "/l/1",
                Some(json!(9)),
                Ok(json!({"a": {"b": 1}, "l": [1, 9], "s": "x", "k/~": 7})),
            ),
            ("replace", "/l/2", Some(json!(9)), Err(())),
            ("replace", "/l/-", Some(json!(9)), Err(())),
            (
                "remove",
                "/a/b",
                None,
                Ok(json!({"a": {}, "l": [1, 2], "s": "x", "k/~": 7})),
            ),
            (
                "remove",
                "/l/0",
                None,
                Ok(json!({"a": {"b": 1}, "l": [2], "s": "x", "k/~": 7})),
            ),
            ("remove", "/a/zz", None, Err(())),
            ("remove", "/l/5", None, Err(())),
            ("remove", "", None, Err(())),
            ("remove", "/a~2", None, Err(())),
            ("move", "/a", None, Err(())),
        ];
        for (op, path, value, want) in cases {
            let mut d = doc.clone();
            let got = apply_op(&mut d, op, path, value.as_ref())
                .map(|()| d)
                .map_err(|_| ());
            assert_eq!(got, want, "{op} {path}");
        }
    }
}
