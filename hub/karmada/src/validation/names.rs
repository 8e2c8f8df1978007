//! Kubernetes name, label and JSON pointer format checks.

/// kube-apiserver's message for a name that is not a DNS-1123 label.
pub const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case \
    alphanumeric characters or '-', and must start and end with an alphanumeric character \
    (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// kube-apiserver's message for a name that is not a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower \
    case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
    character (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, at most 63.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| is_alnum_lower(c) || c == '-')
        && s.starts_with(is_alnum_lower)
        && s.ends_with(is_alnum_lower)
}

/// DNS-1035 label (Service names): a DNS-1123 label that starts with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// DNS-1123 subdomain as Kubernetes checks it: dot-separated parts of lowercase
/// alphanumerics and '-', each starting and ending alphanumeric, at most 253 characters in
/// all (a part may be longer than a label's 63).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| is_alnum_lower(c) || c == '-')
                && part.starts_with(is_alnum_lower)
                && part.ends_with(is_alnum_lower)
        })
}

fn is_qualified_name_part(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(edge)
        && s.ends_with(edge)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label or annotation key: `[prefix/]name` with a DNS subdomain prefix.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(s),
    }
}

/// A label value: empty, or like a qualified name part.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

/// An RFC 6901 JSON pointer: empty or starting with '/', with valid `~` escapes.
pub fn is_json_pointer(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if !s.starts_with('/') {
        return false;
    }
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let cases: &[(&str, bool, bool, bool)] = &[
            // (input, dns label, subdomain, qualified name)
            ("nginx", true, true, true),
            ("a.b", false, true, true),
            ("Nginx", false, false, true),
            ("-a", false, false, false),
            ("a-", false, false, false),
            ("", false, false, false),
            ("example.com/key", false, false, true),
            ("Example.com/key", false, false, false),
            ("a_b", false, false, true),
            ("a/b/c", false, false, false),
        ];
        for (s, label, sub, qn) in cases {
            assert_eq!(is_dns1123_label(s), *label, "label {s}");
            assert_eq!(is_dns1123_subdomain(s), *sub, "subdomain {s}");
            assert_eq!(is_qualified_name(s), *qn, "qualified {s}");
        }
        assert!(!is_dns1123_label(&"a".repeat(64)));
        // Kubernetes limits a subdomain's length, not its parts'.
        assert!(is_dns1123_subdomain(&"a".repeat(67)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
        assert!(is_json_pointer("/data/config.yaml"));
        assert!(is_json_pointer("/a~1b"));
        assert!(!is_json_pointer("/a~2b"));
        assert!(!is_json_pointer("spec/replicas"));
    }
}
