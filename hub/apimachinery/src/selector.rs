//! Label and field selectors, as in `?labelSelector=` and `?fieldSelector=`.

use serde_json::{Map, Value};

/// A selector that could not be parsed; the message suits a 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl SelectorError {
    /// The error message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, SelectorError> {
    Err(SelectorError(msg.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Operator,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        let number = || value.and_then(|v| v.parse::<i64>().ok());
        let bound = || self.values.first().and_then(|v| v.parse::<i64>().ok());
        match self.op {
            Operator::Equals | Operator::In => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan => matches!((number(), bound()), (Some(n), Some(b)) if n > b),
            Operator::LessThan => matches!((number(), bound()), (Some(n), Some(b)) if n < b),
        }
    }
}

/// A parsed label selector: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
/// `!a`, `a>1`, `a<1`, comma-separated; every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Comma,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>, SelectorError> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let token = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    Token::NotEq
                } else {
                    Token::Not
                }
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    Token::DoubleEq
                } else {
                    Token::Eq
                }
            }
            '>' | '<' | ',' | '(' | ')' => {
                chars.next();
                match c {
                    '>' => Token::Gt,
                    '<' => Token::Lt,
                    ',' => Token::Comma,
                    '(' => Token::Open,
                    _ => Token::Close,
                }
            }
            _ => {
                let mut ident = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "!=<>,()".contains(c) {
                        break;
                    }
                    ident.push(c);
                    chars.next();
                }
                Token::Ident(ident)
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Whether `s` is a DNS-1123 subdomain (a label key prefix).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Whether `s` is a qualified name part: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn is_name(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name(name),
        None => is_name(key),
    };
    if ok {
        Ok(())
    } else {
        err(format!(
            "invalid label key {key:?}: must be a qualified name, optionally with a DNS subdomain prefix"
        ))
    }
}

fn check_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_name(value) {
        Ok(())
    } else {
        err(format!(
            "invalid label value {value:?}: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric"
        ))
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some(Token::Ident(k)) => {
                check_key(&k)?;
                Ok(k)
            }
            other => err(format!(
                "expected a label key, found {}",
                describe(other.as_ref())
            )),
        }
    }

    /// A value after `=`, `==` or `!=`; an empty value is allowed (`a=`).
    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Some(Token::Ident(_)) => match self.next() {
                Some(Token::Ident(v)) => {
                    check_value(&v)?;
                    Ok(v)
                }
                _ => Ok(String::new()),
            },
            None | Some(Token::Comma) => Ok(String::new()),
            other => err(format!("expected a label value, found {}", describe(other))),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.next() != Some(Token::Open) {
            return err("expected '(' after in/notin");
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Some(Token::Ident(v)) => {
                    check_value(&v)?;
                    values.push(v);
                }
                // An empty slot, as in `a in ()` or `a in (x,)`, is the empty value.
                Some(Token::Close) => {
                    values.push(String::new());
                    return Ok(values);
                }
                Some(Token::Comma) => {
                    values.push(String::new());
                    continue;
                }
                other => {
                    return err(format!(
                        "expected a value in the set, found {}",
                        describe(other.as_ref())
                    ));
                }
            }
            match self.next() {
                Some(Token::Comma) => {
                    if self.peek() == Some(&Token::Close) {
                        self.next();
                        values.push(String::new());
                        return Ok(values);
                    }
                }
                Some(Token::Close) => return Ok(values),
                other => {
                    return err(format!(
                        "expected ',' or ')' in the set, found {}",
                        describe(other.as_ref())
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                op: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        let key = self.key()?;
        let (op, values) = match self.peek() {
            None | Some(Token::Comma) => (Operator::Exists, Vec::new()),
            Some(Token::Eq | Token::DoubleEq) => {
                self.next();
                (Operator::Equals, vec![self.value()?])
            }
            Some(Token::NotEq) => {
                self.next();
                (Operator::NotEquals, vec![self.value()?])
            }
            Some(Token::Gt | Token::Lt) => {
                let op = if self.next() == Some(Token::Gt) {
                    Operator::GreaterThan
                } else {
                    Operator::LessThan
                };
                match self.next() {
                    Some(Token::Ident(v)) if v.parse::<i64>().is_ok() => (op, vec![v]),
                    other => {
                        return err(format!(
                            "expected an integer after '>' or '<', found {}",
                            describe(other.as_ref())
                        ));
                    }
                }
            }
            Some(Token::Ident(word)) if word == "in" || word == "notin" => {
                let op = if word == "in" {
                    Operator::In
                } else {
                    Operator::NotIn
                };
                self.next();
                (op, self.value_set()?)
            }
            other => {
                return err(format!(
                    "expected an operator after {key:?}, found {}",
                    describe(other)
                ));
            }
        };
        Ok(Requirement { key, op, values })
    }
}

fn describe(t: Option<&Token>) -> String {
    match t {
        None => "the end of the selector".to_string(),
        Some(Token::Ident(s)) => format!("{s:?}"),
        Some(Token::Not) => "'!'".to_string(),
        Some(Token::Eq) => "'='".to_string(),
        Some(Token::DoubleEq) => "'=='".to_string(),
        Some(Token::NotEq) => "'!='".to_string(),
        Some(Token::Gt) => "'>'".to_string(),
        Some(Token::Lt) => "'<'".to_string(),
        Some(Token::Comma) => "','".to_string(),
        Some(Token::Open) => "'('".to_string(),
        Some(Token::Close) => "')'".to_string(),
    }
}

impl LabelSelector {
    /// Parses the `?labelSelector=` syntax; an empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            tokens: tokenize(s)?,
            pos: 0,
        };
        let mut requirements = Vec::new();
        if parser.peek().is_none() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                None => break,
                Some(Token::Comma) => continue,
                other => {
                    return err(format!(
                        "expected ',' between requirements, found {}",
                        describe(other.as_ref())
                    ));
                }
            }
        }
        Ok(Self { requirements })
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON object (`matchLabels` and
    /// `matchExpressions` with In, NotIn, Exists, DoesNotExist). Null or `{}` selects everything.
    pub fn from_label_selector_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::default()),
            Value::Object(o) => o,
            _ => return err("a label selector must be an object"),
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (key, value) in labels {
                    let Some(value) = value.as_str() else {
                        return err(format!("matchLabels[{key:?}] must be a string"));
                    };
                    check_key(key)?;
                    check_value(value)?;
                    requirements.push(Requirement {
                        key: key.clone(),
                        op: Operator::Equals,
                        values: vec![value.to_string()],
                    });
                }
            }
            Some(_) => return err("matchLabels must be an object"),
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for expr in exprs {
                    requirements.push(expression(expr)?);
                }
            }
            Some(_) => return err("matchExpressions must be a list"),
        }
        Ok(Self { requirements })
    }

    /// Whether `labels` (an object's `metadata.labels`, empty when absent) satisfy every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirements and so selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn expression(expr: &Value) -> Result<Requirement, SelectorError> {
    let Some(key) = expr.get("key").and_then(Value::as_str) else {
        return err("a matchExpressions entry needs a string key");
    };
    check_key(key)?;
    let values: Vec<String> = match expr.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => vs
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| SelectorError(format!("values of {key:?} must be strings")))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return err(format!("values of {key:?} must be a list")),
    };
    for v in &values {
        check_value(v)?;
    }
    let op = match expr.get("operator").and_then(Value::as_str) {
        Some("In") => Operator::In,
        Some("NotIn") => Operator::NotIn,
        Some("Exists") => Operator::Exists,
        Some("DoesNotExist") => Operator::DoesNotExist,
        Some(other) => return err(format!("{other:?} is not a valid label selector operator")),
        None => return err(format!("the expression on {key:?} needs an operator")),
    };
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => err(format!(
            "values of {key:?} must be non-empty for In and NotIn"
        )),
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => err(format!(
            "values of {key:?} must be empty for Exists and DoesNotExist"
        )),
        _ => Ok(Requirement {
            key: key.to_string(),
            op,
            values,
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    path: String,
    equal: bool,
    value: String,
}

/// A parsed field selector (`metadata.name=x,metadata.namespace!=y`), evaluated against
/// an object's JSON by dotted path. Missing fields read as the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Splits on unescaped `sep`, keeping escapes for the next stage.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let last = parts.last_mut().expect("parts is never empty");
            last.push(c);
            if let Some(n) = chars.next() {
                last.push(n);
            }
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('\\' | ',' | '=' | '!')) => out.push(n),
                Some(n) => return err(format!("invalid escape sequence \\{n} in field selector")),
                None => return err("field selector ends with an unfinished escape"),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses `path=value`, `path==value` and `path!=value` terms separated by commas;
    /// `\` escapes `,`, `=`, `!` and `\` in values.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let chars: Vec<char> = term.chars().collect();
            let mut i = 0;
            let mut found = None;
            while i < chars.len() {
                match chars[i] {
                    '\\' => i += 1,
                    '!' if chars.get(i + 1) == Some(&'=') => {
                        found = Some((i, 2, false));
                        break;
                    }
                    '=' => {
                        let width = if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                        found = Some((i, width, true));
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let Some((at, width, equal)) = found else {
                return err(format!(
                    "invalid field selector term {term:?}: expected path=value or path!=value"
                ));
            };
            let path: String = chars[..at].iter().collect::<String>().trim().to_string();
            if path.is_empty() || path.contains('\\') {
                return err(format!(
                    "invalid field selector term {term:?}: missing or invalid field path"
                ));
            }
            let value = unescape(chars[at + width..].iter().collect::<String>().trim())?;
            requirements.push(FieldRequirement { path, equal, value });
        }
        Ok(Self { requirements })
    }

    /// Whether `obj` satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_text(obj, &r.path);
            (actual.as_deref() == Some(r.value.as_str())) == r.equal
        })
    }

    /// Whether the selector has no terms and so selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The field paths the terms select on, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.path.as_str())
    }

    /// The exact name when the selector pins `metadata.name=`, for single-object fast paths.
    pub fn exact_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.equal && r.path == "metadata.name")
            .map(|r| r.value.as_str())
    }
}

/// The text of the field at a dotted path: strings as they are, booleans and numbers
/// printed, missing or null as the empty string; None for maps and lists.
fn field_text(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return Some(String::new()),
        }
    }
    match cur {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests;
