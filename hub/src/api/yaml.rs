//! YAML request bodies with a budget: nesting, aliases and the size of what the document
//! expands to are bounded while it is decoded, so a small document (a "billion laughs"
//! alias bomb, or deep nesting) cannot exhaust memory or the stack.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::MAX_BODY;

/// The deepest nesting a YAML body may have, as for protobuf bodies
/// ([`super::protobuf::MAX_DECODED_DEPTH`]); serde_json stops JSON at 128.
pub const MAX_YAML_DEPTH: usize = super::protobuf::MAX_DECODED_DEPTH;

/// The most aliases (`*name`) one YAML body may use. Manifests rarely use any.
pub const MAX_YAML_ALIASES: usize = 1_000;

/// The most nodes aliases may replay in one YAML body, in total.
pub const MAX_YAML_REPLAYED_EVENTS: usize = 100_000;

/// The most a YAML body may expand to: one unit per node plus the bytes of every string,
/// counted as the value is built (aliases included). The same as the body limit: an
/// object larger than a body could be is refused however it was written.
pub const MAX_YAML_EXPANDED: usize = MAX_BODY;

thread_local! {
    /// What the value being decoded on this thread has used: (expanded size, depth).
    static USED: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The stack of the thread YAML is decoded on: the decoder recurses per nesting level
/// with large frames (~20 KiB in a debug build), more than a runtime worker's 2 MiB holds
/// at [`MAX_YAML_DEPTH`]. Only the pages used are committed.
const DECODER_STACK: usize = 16 * 1024 * 1024;

/// Decodes one YAML document into JSON within the limits above, on a thread of its own
/// with a stack deep enough for them; errors are messages for a 400.
pub fn from_str(text: &str) -> Result<Value, String> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("yaml-decoder".into())
            .stack_size(DECODER_STACK)
            .spawn_scoped(scope, || decode(text))
            .map_err(|e| format!("no thread to decode YAML on: {e}"))?
            .join()
            .map_err(|_| "the YAML decoder failed".to_owned())?
    })
}

fn decode(text: &str) -> Result<Value, String> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(MAX_BODY);
    budget.max_depth = MAX_YAML_DEPTH;
    budget.max_aliases = MAX_YAML_ALIASES;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = MAX_YAML_REPLAYED_EVENTS;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    USED.with(|u| u.set((0, 0)));
    let result = serde_saphyr::from_str_with_options::<Budgeted>(text, options);
    USED.with(|u| u.set((0, 0)));
    result.map(|b| b.0).map_err(|e| e.to_string())
}

/// A JSON value whose decoding is charged to [`USED`].
struct Budgeted(Value);

fn charge<E: de::Error>(units: usize) -> Result<(), E> {
    USED.with(|u| {
        let (used, depth) = u.get();
        let used = used.saturating_add(units).saturating_add(1);
        if used > MAX_YAML_EXPANDED {
            return Err(E::custom(format!(
                "the document expands to more than {MAX_YAML_EXPANDED} bytes"
            )));
        }
        u.set((used, depth));
        Ok(())
    })
}

/// Enters a list or map; the guard leaves it.
fn enter<E: de::Error>() -> Result<Leave, E> {
    USED.with(|u| {
        let (used, depth) = u.get();
        if depth >= MAX_YAML_DEPTH {
            return Err(E::custom(format!(
                "the document nests deeper than {MAX_YAML_DEPTH} levels"
            )));
        }
        u.set((used, depth + 1));
        Ok(Leave)
    })
}

struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        USED.with(|u| {
            let (used, depth) = u.get();
            u.set((used, depth.saturating_sub(1)));
        });
    }
}

impl<'de> Deserialize<'de> for Budgeted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BudgetedVisitor).map(Budgeted)
    }
}

struct BudgetedVisitor;

impl<'de> Visitor<'de> for BudgetedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        charge(0)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        charge(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Budgeted::deserialize(d).map(|b| b.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        charge(0)?;
        let _leave = enter()?;
        let mut out = Vec::new();
        while let Some(Budgeted(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        charge(0)?;
        let _leave = enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            charge(key.len())?;
            let Budgeted(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_yaml_decodes() {
        let v = from_str("a: 1\nb: [x, {c: true}]\nd: ~\ne: 1.5\nanchor: &x {k: v}\nalias: *x\n");
        assert_eq!(
            v,
            Ok(
                serde_json::json!({"a": 1, "b": ["x", {"c": true}], "d": null, "e": 1.5,
                "anchor": {"k": "v"}, "alias": {"k": "v"}})
            )
        );
    }

    /// The classic billion laughs: nine levels of ten aliases each.
    pub(crate) fn alias_bomb() -> String {
        let mut s = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        s
    }

    #[test]
    fn alias_bombs_are_refused() {
        assert!(from_str(&alias_bomb()).is_err());
        // One large string aliased many times is charged for every copy.
        let big = "x".repeat(64 * 1024);
        let aliases = vec!["*s"; 100].join(", ");
        let doc = format!("s: &s \"{big}\"\nl: [{aliases}]\n");
        let err = from_str(&doc).unwrap_err();
        assert!(err.contains("expands to more than"), "{err}");
    }

    #[test]
    fn deep_yaml_is_refused() {
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_YAML_DEPTH - 1),
            "]".repeat(MAX_YAML_DEPTH - 1)
        );
        assert!(from_str(&ok).is_ok());
        for depth in [MAX_YAML_DEPTH + 1, 10_000] {
            let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            assert!(from_str(&deep).is_err(), "{depth}");
        }
        let mut block = String::new();
        for i in 0..500 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert!(from_str(&block).is_err());
    }
}
