//! kube-apiserver's 403 message for a denied request.

use std::fmt::Write as _;

use crate::{Request, UserInfo};

/// kube-apiserver's 403 message for a denied request, e.g.
/// `deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "team-b"`.
///
/// This is `apierrors.NewForbidden(groupResource, name, forbiddenMessage(attributes))` with no
/// authorizer reason: the qualified resource is `resource.group` (`resource` in the core group),
/// the name is quoted when there is one, cluster-scoped requests end `at the cluster scope`,
/// and non-resource requests read `forbidden: User "u" cannot get path "/metrics"`.
/// `&`, `<` and `>` are escaped as kube does, so the message never looks like HTML.
pub fn forbidden_message(user: &UserInfo, req: &Request) -> String {
    let detail = sanitize(&detail_message(user, req));
    match req {
        Request::NonResource { .. } => format!("forbidden: {detail}"),
        Request::Resource {
            api_group,
            resource,
            name,
            ..
        } => {
            let qualified = if api_group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{api_group}")
            };
            if qualified.is_empty() {
                return format!("forbidden: {detail}");
            }
            match name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{qualified} {} is forbidden: {detail}", go_quote(name)),
                None => format!("{qualified} is forbidden: {detail}"),
            }
        }
    }
}

/// kube's `forbiddenMessage(attributes)`: the part after `is forbidden: `.
fn detail_message(user: &UserInfo, req: &Request) -> String {
    let user = go_quote(&user.name);
    match req {
        Request::NonResource { verb, path } => {
            format!("User {user} cannot {verb} path {}", go_quote(path))
        }
        Request::Resource {
            verb,
            api_group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let combined = match subresource.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource.clone(),
            };
            let head = format!(
                "User {user} cannot {verb} resource {} in API group {}",
                go_quote(&combined),
                go_quote(api_group)
            );
            match namespace.as_deref().filter(|n| !n.is_empty()) {
                Some(ns) => format!("{head} in the namespace {}", go_quote(ns)),
                None => format!("{head} at the cluster scope"),
            }
        }
    }
}

fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Go's `%q` of a string: double quotes, with `"`, `\` and control characters escaped.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
