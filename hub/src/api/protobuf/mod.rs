//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`, what
//! typed client-go clients and kubectl's `create` generators send) into the JSON a JSON
//! client would have sent for the same Go object, so the rest of the API sees only JSON.
//!
//! The wire format is the magic `k8s\0` followed by a `runtime.Unknown` whose `raw` holds the
//! object's message. Messages are decoded dynamically from the official `generated.proto`
//! descriptors (`descriptors.pb.gz`); `fields.txt` adds what only the Go types tell: JSON
//! names that differ from the protobuf names, inlined fields, and non-pointer `omitempty`
//! fields whose zero value (always on the wire) means unset. Both are made by `generate.sh`.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::LazyLock;

use base64::Engine;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value as PValue,
};
use serde_json::{Map, Value};

use super::error::ApiError;

/// The magic that starts every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

const DESCRIPTORS: &[u8] = include_bytes!("descriptors.pb.gz");
const FIELDS: &str = include_str!("fields.txt");

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const QUANTITY_VALUE: &str = "k8s.io.apimachinery.pkg.api.resource.QuantityValue";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const GROUP_VERSION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.GroupVersion";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const CRD_V1: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1";

/// Messages whose Go types marshal to JSON their own way; each is converted by hand.
const CUSTOM_JSON: &[&str] = &[
    QUANTITY,
    QUANTITY_VALUE,
    INT_OR_STRING,
    TIME,
    MICRO_TIME,
    DURATION,
    FIELDS_V1,
    GROUP_VERSION,
    RAW_EXTENSION,
    UNKNOWN,
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// The deepest nesting a decoded protobuf body may have, counting every message, list,
/// map and embedded JSON level; deeper bodies get 400. Real objects stay far below it (a
/// CRD schema reaches ~60), and it keeps the recursive decoding off the end of the stack
/// (serde_json stops JSON bodies at 128 the same way).
pub const MAX_DECODED_DEPTH: usize = 100;

/// Go's zero `time.Time` as Unix seconds: a `metav1.Time` holding it marshals to null.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// API groups whose protobuf messages are embedded, by proto package prefix.
const GROUPS: &[(&str, &str)] = &[
    ("", "k8s.io.api.core"),
    ("apps", "k8s.io.api.apps"),
    ("batch", "k8s.io.api.batch"),
    ("networking.k8s.io", "k8s.io.api.networking"),
    ("rbac.authorization.k8s.io", "k8s.io.api.rbac"),
    ("autoscaling", "k8s.io.api.autoscaling"),
    ("policy", "k8s.io.api.policy"),
    ("coordination.k8s.io", "k8s.io.api.coordination"),
    ("certificates.k8s.io", "k8s.io.api.certificates"),
    ("scheduling.k8s.io", "k8s.io.api.scheduling"),
    ("storage.k8s.io", "k8s.io.api.storage"),
    ("node.k8s.io", "k8s.io.api.node"),
    ("authentication.k8s.io", "k8s.io.api.authentication"),
    ("authorization.k8s.io", "k8s.io.api.authorization"),
    (
        "apiextensions.k8s.io",
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions",
    ),
    ("meta.k8s.io", "k8s.io.apimachinery.pkg.apis.meta"),
];

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with the `k8s\0` magic.
    #[error("the protobuf body does not start with the Kubernetes magic k8s\\0")]
    NoMagic,
    /// The `runtime.Unknown` envelope is not valid protobuf.
    #[error("the protobuf envelope is invalid: {0}")]
    Envelope(String),
    /// The envelope declares a content encoding (such as gzip) the hub does not decode.
    #[error("protobuf bodies with content encoding {0:?} are not supported")]
    ContentEncoding(String),
    /// The kind has no embedded protobuf descriptor.
    #[error("protobuf is not supported for {api_version:?} {kind:?}")]
    UnsupportedKind {
        /// `apiVersion` from the envelope.
        api_version: String,
        /// `kind` from the envelope.
        kind: String,
    },
    /// The object's message is not valid protobuf for its kind, or holds a value JSON cannot.
    #[error("the protobuf {kind} is invalid: {reason}")]
    Invalid {
        /// `kind` from the envelope.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// The body nests deeper than [`MAX_DECODED_DEPTH`].
    #[error("the protobuf body nests deeper than {MAX_DECODED_DEPTH} levels")]
    TooDeep,
    /// The embedded descriptors could not be loaded (a build problem).
    #[error("the embedded protobuf descriptors are unusable: {0}")]
    Descriptors(String),
}

impl From<ProtobufError> for ApiError {
    fn from(e: ProtobufError) -> Self {
        match e {
            ProtobufError::UnsupportedKind { .. }
            | ProtobufError::ContentEncoding(_)
            | ProtobufError::Descriptors(_) => {
                ApiError::unsupported_media_type(format!("{e}; send application/json"))
            }
            ProtobufError::NoMagic
            | ProtobufError::Envelope(_)
            | ProtobufError::Invalid { .. }
            | ProtobufError::TooDeep => ApiError::bad_request(e.to_string()),
        }
    }
}

/// Decodes a Kubernetes protobuf request body into the object's Kubernetes JSON, with
/// `apiVersion` and `kind` taken from the envelope.
pub fn decode_request(body: &[u8]) -> Result<Value, ProtobufError> {
    let schema = SCHEMA
        .as_ref()
        .map_err(|e| ProtobufError::Descriptors(e.clone()))?;
    schema.decode(body, 0)
}

/// The `apiVersion` and `kind` of a protobuf body's envelope, read without decoding the
/// object, so a body for another resource is refused before its object is decoded.
pub fn envelope_type(body: &[u8]) -> Result<(String, String), ProtobufError> {
    let schema = SCHEMA
        .as_ref()
        .map_err(|e| ProtobufError::Descriptors(e.clone()))?;
    let (api_version, kind, _) = schema.envelope(body)?;
    Ok((api_version, kind))
}

/// How one protobuf field appears in JSON, when not simply under its own name.
#[derive(Debug, Clone, Default, PartialEq)]
struct FieldRule {
    /// The JSON name when it differs from the protobuf name.
    json: Option<String>,
    /// The field's object is merged into its parent (Go `json:",inline"`).
    inline: bool,
    /// The field never appears in JSON (Go `json:"-"`).
    skip: bool,
    /// A zero value means unset (non-pointer Go field with omitempty).
    omit_zero: bool,
}

impl FieldRule {
    /// Parses a `fields.txt` token: `name`, then `=json` (empty: inline, `-`: skip), then `?`.
    fn parse(token: &str) -> (String, Self) {
        let (token, omit_zero) = match token.strip_suffix('?') {
            Some(t) => (t, true),
            None => (token, false),
        };
        let mut rule = Self {
            omit_zero,
            ..Self::default()
        };
        let name = match token.split_once('=') {
            Some((name, "")) => {
                rule.inline = true;
                name
            }
            Some((name, "-")) => {
                rule.skip = true;
                name
            }
            Some((name, json)) => {
                rule.json = Some(json.to_owned());
                name
            }
            None => token,
        };
        (name.to_owned(), rule)
    }
}

/// Per message: the field rules, and whether the Go type marshals itself.
type FieldRules = HashMap<String, (bool, HashMap<String, FieldRule>)>;

fn parse_fields(text: &str) -> FieldRules {
    let mut out = FieldRules::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut tokens = line.split_whitespace();
        let Some(message) = tokens.next() else {
            continue;
        };
        let mut custom = false;
        let mut rules = HashMap::new();
        for t in tokens {
            if t == "!json" {
                custom = true;
            } else {
                let (name, rule) = FieldRule::parse(t);
                rules.insert(name, rule);
            }
        }
        out.insert(message.to_owned(), (custom, rules));
    }
    out
}

struct Schema {
    pool: DescriptorPool,
    fields: FieldRules,
    custom: HashSet<&'static str>,
}

static SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(Schema::load);

impl Schema {
    fn load() -> Result<Self, String> {
        let mut raw = vec![];
        flate2::read::GzDecoder::new(DESCRIPTORS)
            .read_to_end(&mut raw)
            .map_err(|e| format!("descriptors.pb.gz: {e}"))?;
        let pool = DescriptorPool::decode(raw.as_slice()).map_err(|e| e.to_string())?;
        Ok(Self {
            pool,
            fields: parse_fields(FIELDS),
            custom: CUSTOM_JSON.iter().copied().collect(),
        })
    }

    fn message(&self, name: &str) -> Result<MessageDescriptor, ProtobufError> {
        self.pool
            .get_message_by_name(name)
            .ok_or_else(|| ProtobufError::Descriptors(format!("no message {name}")))
    }

    /// The envelope's `apiVersion`, `kind` and message.
    fn envelope(&self, body: &[u8]) -> Result<(String, String, DynamicMessage), ProtobufError> {
        let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
        let unknown = DynamicMessage::decode(self.message(UNKNOWN)?, rest)
            .map_err(|e| ProtobufError::Envelope(e.to_string()))?;
        let (api_version, kind) = match unknown.get_field_by_name("typeMeta").as_deref() {
            Some(PValue::Message(m)) => (string_field(m, "apiVersion"), string_field(m, "kind")),
            _ => Default::default(),
        };
        if kind.is_empty() {
            return Err(ProtobufError::Envelope("the envelope names no kind".into()));
        }
        Ok((api_version, kind, unknown))
    }

    /// Decodes a body found `depth` levels down (0 for the request body).
    fn decode(&self, body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
        if depth > MAX_DECODED_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        let (api_version, kind, unknown) = self.envelope(body)?;
        let encoding = string_field(&unknown, "contentEncoding");
        if !encoding.is_empty() {
            return Err(ProtobufError::ContentEncoding(encoding));
        }
        let desc = self.kind_message(&api_version, &kind).ok_or_else(|| {
            ProtobufError::UnsupportedKind {
                api_version: api_version.clone(),
                kind: kind.clone(),
            }
        })?;
        let raw = match unknown.get_field_by_name("raw").as_deref() {
            Some(PValue::Bytes(b)) => b.clone(),
            _ => Default::default(),
        };
        let invalid = |reason: String| ProtobufError::Invalid {
            kind: kind.clone(),
            reason,
        };
        let msg = DynamicMessage::decode(desc, raw).map_err(|e| invalid(e.to_string()))?;
        let decoded = self.message_json(&msg, depth + 1).map_err(|e| match e {
            ProtobufError::Invalid { reason, .. } => invalid(reason),
            other => other,
        })?;
        let body = match decoded {
            Value::Object(m) => m,
            other => return Err(invalid(format!("decoded to {other}, not an object"))),
        };
        let mut out = Map::new();
        out.insert("apiVersion".into(), Value::String(api_version));
        out.insert("kind".into(), Value::String(kind));
        for (k, v) in body {
            out.entry(k).or_insert(v);
        }
        Ok(Value::Object(out))
    }

    /// The message of a kind: its group's package, else meta/v1 (DeleteOptions is sent with
    /// the resource's group version).
    fn kind_message(&self, api_version: &str, kind: &str) -> Option<MessageDescriptor> {
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        GROUPS
            .iter()
            .find(|(g, _)| *g == group)
            .and_then(|(_, pkg)| {
                self.pool
                    .get_message_by_name(&format!("{pkg}.{version}.{kind}"))
            })
            .or_else(|| self.pool.get_message_by_name(&format!("{META_V1}.{kind}")))
    }

    fn message_json(&self, msg: &DynamicMessage, depth: usize) -> Result<Value, ProtobufError> {
        if depth > MAX_DECODED_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        let desc = msg.descriptor();
        let name = desc.full_name();
        if self.custom.contains(name) {
            return self.custom_json(name, msg, depth).map_err(|e| match e {
                Nested::Deep => ProtobufError::TooDeep,
                Nested::Invalid(reason) => ProtobufError::Invalid {
                    kind: name.to_owned(),
                    reason,
                },
            });
        }
        let rules = self.fields.get(name).map(|(_, r)| r);
        let mut out = Map::new();
        for (field, value) in msg.fields() {
            let rule = rules.and_then(|r| r.get(field.name()));
            if rule.is_some_and(|r| r.skip) {
                continue;
            }
            let v = self.value_json(value, depth)?;
            if v.is_null() || (rule.is_some_and(|r| r.omit_zero) && is_zero(&v)) {
                continue;
            }
            match rule {
                Some(r) if r.inline => {
                    if let Value::Object(m) = v {
                        out.extend(m);
                    }
                }
                _ => {
                    let key = rule
                        .and_then(|r| r.json.clone())
                        .unwrap_or_else(|| field.name().to_owned());
                    out.insert(key, v);
                }
            }
        }
        Ok(Value::Object(out))
    }

    /// The JSON of a field value of a message at `depth`.
    fn value_json(&self, value: &PValue, depth: usize) -> Result<Value, ProtobufError> {
        let invalid = |reason: String| ProtobufError::Invalid {
            kind: "value".into(),
            reason,
        };
        Ok(match value {
            PValue::Bool(b) => Value::Bool(*b),
            PValue::I32(n) => Value::from(*n),
            PValue::I64(n) => Value::from(*n),
            PValue::U32(n) => Value::from(*n),
            PValue::U64(n) => Value::from(*n),
            PValue::F32(f) => float(f64::from(*f)).map_err(invalid)?,
            PValue::F64(f) => float(*f).map_err(invalid)?,
            PValue::String(s) => Value::String(s.clone()),
            PValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            PValue::EnumNumber(n) => Value::from(*n),
            PValue::Message(m) => self.message_json(m, depth + 1)?,
            PValue::List(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.value_json(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            PValue::Map(entries) => {
                // Sorted like Go's encoding/json, so the output is deterministic.
                let mut keyed: Vec<_> = entries.iter().map(|(k, v)| (map_key(k), v)).collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = Map::new();
                for (k, v) in keyed {
                    out.insert(k, self.value_json(v, depth + 1)?);
                }
                Value::Object(out)
            }
        })
    }

    /// The JSON of a message whose Go type has its own MarshalJSON.
    fn custom_json(&self, name: &str, msg: &DynamicMessage, depth: usize) -> Result<Value, Nested> {
        let embedded_json = |raw: &[u8]| -> Result<Value, Nested> {
            let v = raw_json(raw)?;
            if flotilla_apimachinery::exceeds_depth(&v, MAX_DECODED_DEPTH.saturating_sub(depth)) {
                return Err(Nested::Deep);
            }
            Ok(v)
        };
        let field = |n: &str| msg.get_field_by_name(n).map(|v| v.into_owned());
        let present = |n: &str| msg.has_field_by_name(n);
        Ok(match name {
            QUANTITY | QUANTITY_VALUE => match field("string") {
                Some(PValue::String(s)) if !s.is_empty() => Value::String(s),
                _ => Value::String("0".into()),
            },
            INT_OR_STRING => match field("type") {
                Some(PValue::I64(1)) => match field("strVal") {
                    Some(PValue::String(s)) => Value::String(s),
                    _ => Value::String(String::new()),
                },
                _ => match field("intVal") {
                    Some(PValue::I32(n)) => Value::from(n),
                    _ => Value::from(0),
                },
            },
            TIME => {
                // metav1.Time keeps whole seconds only; an empty message is the zero time.
                if !present("seconds") && !present("nanos") {
                    return Ok(Value::Null);
                }
                let secs = int_field(msg, "seconds");
                if secs == GO_ZERO_TIME_UNIX {
                    return Ok(Value::Null);
                }
                Value::String(rfc3339(i128::from(secs) * 1_000_000_000, false)?)
            }
            MICRO_TIME => {
                if !present("seconds") && !present("nanos") {
                    return Ok(Value::Null);
                }
                let nanos = i128::from(int_field(msg, "seconds")) * 1_000_000_000
                    + i128::from(int_field(msg, "nanos"));
                if nanos == i128::from(GO_ZERO_TIME_UNIX) * 1_000_000_000 {
                    return Ok(Value::Null);
                }
                Value::String(rfc3339(nanos, true)?)
            }
            DURATION => Value::String(go_duration(int_field(msg, "duration"))),
            FIELDS_V1 => embedded_json(&bytes_field(msg, "Raw"))?,
            GROUP_VERSION => {
                let (group, version) = (string_field(msg, "group"), string_field(msg, "version"));
                Value::String(if group.is_empty() {
                    version
                } else {
                    format!("{group}/{version}")
                })
            }
            RAW_EXTENSION => {
                let raw = bytes_field(msg, "raw");
                if raw.starts_with(MAGIC) {
                    // An embedded object in protobuf, as typed clients encode them.
                    self.decode(&raw, depth + 1)?
                } else {
                    embedded_json(&raw)?
                }
            }
            _ if name == format!("{CRD_V1}.JSON") => embedded_json(&bytes_field(msg, "raw"))?,
            _ if name == format!("{CRD_V1}.JSONSchemaPropsOrArray") => match field("jSONSchemas") {
                Some(PValue::List(l)) if !l.is_empty() => {
                    self.value_json(&PValue::List(l), depth)?
                }
                _ => self.optional_message(msg, "schema", depth)?,
            },
            _ if name == format!("{CRD_V1}.JSONSchemaPropsOrBool") => {
                if present("schema") {
                    self.optional_message(msg, "schema", depth)?
                } else {
                    Value::Bool(matches!(field("allows"), Some(PValue::Bool(true))))
                }
            }
            _ if name == format!("{CRD_V1}.JSONSchemaPropsOrStringArray") => {
                match field("property") {
                    Some(PValue::List(l)) if !l.is_empty() => {
                        self.value_json(&PValue::List(l), depth)?
                    }
                    _ => self.optional_message(msg, "schema", depth)?,
                }
            }
            _ => {
                return Err(Nested::Invalid(format!(
                    "{name} cannot be converted to JSON"
                )));
            }
        })
    }

    fn optional_message(
        &self,
        msg: &DynamicMessage,
        name: &str,
        depth: usize,
    ) -> Result<Value, Nested> {
        if !msg.has_field_by_name(name) {
            return Ok(Value::Null);
        }
        match msg.get_field_by_name(name).as_deref() {
            Some(v) => Ok(self.value_json(v, depth)?),
            None => Ok(Value::Null),
        }
    }
}

/// Why a hand-converted message failed: too deep, or what is wrong with it.
#[derive(Debug)]
enum Nested {
    Deep,
    Invalid(String),
}

impl From<String> for Nested {
    fn from(reason: String) -> Self {
        Nested::Invalid(reason)
    }
}

impl From<ProtobufError> for Nested {
    fn from(e: ProtobufError) -> Self {
        match e {
            ProtobufError::TooDeep => Nested::Deep,
            other => Nested::Invalid(other.to_string()),
        }
    }
}

fn string_field(msg: &DynamicMessage, name: &str) -> String {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn int_field(msg: &DynamicMessage, name: &str) -> i64 {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::I64(n)) => *n,
        Some(PValue::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn bytes_field(msg: &DynamicMessage, name: &str) -> Vec<u8> {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::Bytes(b)) => b.to_vec(),
        _ => vec![],
    }
}

/// Embedded JSON bytes (RawExtension, apiextensions JSON, FieldsV1); empty is null.
fn raw_json(raw: &[u8]) -> Result<Value, String> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| format!("embedded raw value is not JSON: {e}"))
}

fn float(f: f64) -> Result<Value, String> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{f} cannot be represented in JSON"))
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Go's zero value of a scalar field, as encoding/json's omitempty sees it.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// RFC 3339 in UTC, as metav1.Time (whole seconds) or metav1.MicroTime (6 fractional digits)
/// marshal it.
fn rfc3339(unix_nanos: i128, micro: bool) -> Result<String, String> {
    let ts = jiff::Timestamp::from_nanosecond(unix_nanos).map_err(|e| e.to_string())?;
    let secs = ts.strftime("%Y-%m-%dT%H:%M:%S");
    Ok(if micro {
        format!("{secs}.{:06}Z", ts.subsec_microsecond())
    } else {
        format!("{secs}Z")
    })
}

/// Go's `time.Duration.String()` (metav1.Duration's JSON): "1h2m3.5s", "1.5ms", "0s".
fn go_duration(nanos: i64) -> String {
    let u = nanos.unsigned_abs();
    let body = if u < 1_000_000_000 {
        match u {
            0 => "0s".to_owned(),
            1..1_000 => format!("{u}ns"),
            1_000..1_000_000 => format!("{}µs", decimal(u, 1_000)),
            _ => format!("{}ms", decimal(u, 1_000_000)),
        }
    } else {
        let hours = u / 3_600_000_000_000;
        let minutes = u % 3_600_000_000_000 / 60_000_000_000;
        let secs = decimal(u % 60_000_000_000, 1_000_000_000);
        match (hours, minutes) {
            (0, 0) => format!("{secs}s"),
            (0, m) => format!("{m}m{secs}s"),
            (h, m) => format!("{h}h{m}m{secs}s"),
        }
    };
    if nanos < 0 { format!("-{body}") } else { body }
}

/// `v / unit` with the fraction's trailing zeros dropped; `unit` is a power of ten.
fn decimal(v: u64, unit: u64) -> String {
    let (int, frac) = (v / unit, v % unit);
    if frac == 0 {
        return int.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
