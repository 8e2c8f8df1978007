//! Rules of the cluster proxy that the hub and the agent share: request categories (what a
//! member's owners allow), the impersonation rule, the headers that pass, and sizes.

use std::fmt;

/// Largest piece of a body or byte stream in one message.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The HTTP/2 stream window on agent connections: each proxied request may hold this much
/// unread data.
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The connection window for `streams` concurrent proxied requests: room for each of them and
/// the work stream to hold a full stream window at once, so unread proxy data never stalls
/// Work delivery or status reports.
pub fn connection_window(streams: usize) -> u32 {
    let streams = u32::try_from(streams).unwrap_or(u32::MAX);
    streams
        .saturating_add(2)
        .saturating_mul(STREAM_WINDOW)
        .min(i32::MAX.unsigned_abs())
}

/// Prefix of every user and group a proxied request acts as in the member.
pub const IMPERSONATION_PREFIX: &str = "flotilla:";

/// The member-side name of hub user or group `name`.
pub fn impersonated(name: &str) -> String {
    format!("{IMPERSONATION_PREFIX}{name}")
}

/// What a proxied request does, for the member owners' policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// GET and HEAD of anything but logs (includes watches).
    Read,
    /// Any other method that is not exec, attach or port-forward.
    Write,
    /// `pods/log`.
    Logs,
    /// `pods/exec` and `pods/attach`.
    Exec,
    /// `pods/portforward`.
    PortForward,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 5] = [
        Category::Read,
        Category::Write,
        Category::Logs,
        Category::Exec,
        Category::PortForward,
    ];

    /// Allowed when the member's owners say nothing: reading and logs.
    pub const DEFAULT_ALLOWED: [Category; 2] = [Category::Read, Category::Logs];

    /// The name used in policies and messages.
    pub fn name(self) -> &'static str {
        match self {
            Category::Read => "read",
            Category::Write => "write",
            Category::Logs => "logs",
            Category::Exec => "exec",
            Category::PortForward => "port-forward",
        }
    }

    /// The category called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The category of `method` on `path` (without its query). Proxy subresources of pods,
    /// services and nodes reach arbitrary endpoints (a node's kubelet runs commands), so they
    /// count as exec.
    pub fn of(method: &str, path: &str, upgrade: bool) -> Self {
        let path = path.split('?').next().unwrap_or_default();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let last = segs.last().copied().unwrap_or_default();
        let pod_sub = |sub: &str| last == sub && segs.contains(&"pods");
        let proxy_sub = segs
            .windows(3)
            .any(|w| matches!(w[0], "pods" | "services" | "nodes") && w[2] == "proxy");
        if pod_sub("exec") || pod_sub("attach") || proxy_sub {
            Category::Exec
        } else if pod_sub("portforward") {
            Category::PortForward
        } else if upgrade {
            // Any other upgrade is a stream in both directions: as strong as exec.
            Category::Exec
        } else if pod_sub("log") {
            Category::Logs
        } else if matches!(method, "GET" | "HEAD") {
            Category::Read
        } else {
            Category::Write
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a policy refuses a request, or `None` when it allows it.
pub fn refusal(policy: &crate::v1::ProxyPolicy, category: Category) -> Option<String> {
    if !policy.enabled {
        return Some(
            "the cluster proxy is off in this member's agent (guard rail proxy.enabled)".to_owned(),
        );
    }
    (!policy.allow.iter().any(|a| a == category.name())).then(|| {
        format!(
            "{category} requests are not allowed through the cluster proxy by this member's agent (guard rail proxy.allow: {})",
            policy.allow.join(", ")
        )
    })
}

/// What of request header `name` (lowercase) with `value` is forwarded to the member, if
/// anything: content negotiation, and for an upgrade its handshake (WebSocket or SPDY, with
/// any bearer token carried as a WebSocket subprotocol removed). Credentials, impersonation,
/// cookies, `Connection` (the forwarder sets it itself) and other hop-by-hop headers are not.
pub fn forwarded_request_header(name: &str, value: &[u8], upgrade: bool) -> Option<Vec<u8>> {
    match name {
        "accept" | "content-type" | "user-agent" => Some(value.to_vec()),
        "sec-websocket-key" | "sec-websocket-version" | "x-stream-protocol-version" if upgrade => {
            Some(value.to_vec())
        }
        "upgrade" if upgrade => {
            let v = std::str::from_utf8(value).ok()?.trim();
            (v.eq_ignore_ascii_case("websocket") || v.eq_ignore_ascii_case("SPDY/3.1"))
                .then(|| v.as_bytes().to_vec())
        }
        "sec-websocket-protocol" if upgrade => {
            let kept: Vec<&str> = std::str::from_utf8(value)
                .ok()?
                .split(',')
                .map(str::trim)
                .filter(|p| {
                    !p.is_empty() && !p.starts_with("base64url.bearer.authorization.k8s.io.")
                })
                .collect();
            (!kept.is_empty()).then(|| kept.join(", ").into_bytes())
        }
        _ => None,
    }
}

/// Whether response header `name` (lowercase) is passed back to the client.
pub fn forwards_response_header(name: &str, upgraded: bool) -> bool {
    match name {
        "connection" | "upgrade" => upgraded,
        "keep-alive" | "transfer-encoding" | "content-length" | "proxy-connection" | "te"
        | "trailer" | "set-cookie" => false,
        _ => true,
    }
}

/// Whether `path` may be forwarded: absolute, without `.` or `..` segments, and without
/// percent-encoding before the query (Kubernetes names need none, and an encoded path would
/// be categorised on other words than the member reads).
pub fn valid_path(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or_default();
    path.starts_with('/')
        && !path.starts_with("//")
        && !p.split('/').any(|s| s == ".." || s == ".")
        && !p.contains('%')
        && !path.chars().any(|c| c.is_control() || c == '#' || c == ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let c = |m, p, u| Category::of(m, p, u);
        assert_eq!(c("GET", "/api/v1/pods", false), Category::Read);
        assert_eq!(c("GET", "/api/v1/pods?watch=true", false), Category::Read);
        assert_eq!(
            c("DELETE", "/api/v1/namespaces/a/pods/x", false),
            Category::Write
        );
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/pods/x/log?follow=true", false),
            Category::Logs
        );
        assert_eq!(
            c("POST", "/api/v1/namespaces/a/pods/x/exec?command=ls", true),
            Category::Exec
        );
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/pods/x/exec", true),
            Category::Exec
        );
        assert_eq!(
            c("POST", "/api/v1/namespaces/a/pods/x/attach", false),
            Category::Exec
        );
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/pods/x/portforward", true),
            Category::PortForward
        );
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/configmaps/log", false),
            Category::Read
        );
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/services/s/proxy/x", true),
            Category::Exec
        );
        for cat in Category::ALL {
            assert_eq!(Category::parse(cat.name()), Some(cat));
        }
    }

    #[test]
    fn policies() {
        let p = crate::v1::ProxyPolicy {
            enabled: true,
            allow: vec!["read".into(), "logs".into()],
        };
        assert_eq!(refusal(&p, Category::Read), None);
        assert!(refusal(&p, Category::Exec).is_some_and(|m| m.contains("proxy.allow")));
        let off = crate::v1::ProxyPolicy {
            enabled: false,
            ..p
        };
        assert!(refusal(&off, Category::Read).is_some_and(|m| m.contains("off")));
    }

    #[test]
    fn paths_and_headers() {
        assert!(valid_path("/api/v1/pods?limit=1"));
        assert!(!valid_path("api/v1"));
        assert!(!valid_path("//evil.example/x"));
        assert!(!valid_path("/api/../secret"));
        assert!(!valid_path("/api/v1\r\nHost: x"));
        assert!(!valid_path("/api/v1/namespaces/a/pods/p/%6Cog"));
        assert!(!valid_path("/api/%2e%2e/x"));
        assert!(valid_path("/api/v1/pods?labelSelector=a%3Db"));
        let h = |n: &str, v: &str, up: bool| {
            forwarded_request_header(n, v.as_bytes(), up)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        assert_eq!(
            h("accept", "application/json", false).as_deref(),
            Some("application/json")
        );
        assert_eq!(h("authorization", "Bearer x", true), None);
        assert_eq!(h("impersonate-user", "root", true), None);
        assert_eq!(h("connection", "Upgrade, impersonate-user", true), None);
        assert_eq!(
            h("upgrade", "websocket", false),
            None,
            "not on a plain request"
        );
        assert_eq!(h("upgrade", "SPDY/3.1", true).as_deref(), Some("SPDY/3.1"));
        assert_eq!(h("upgrade", "h2c", true), None);
        assert_eq!(
            h(
                "sec-websocket-protocol",
                "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9r",
                true
            )
            .as_deref(),
            Some("v5.channel.k8s.io")
        );
        assert!(!forwards_response_header("connection", false));
        assert!(forwards_response_header("connection", true));
        assert_eq!(impersonated("alice"), "flotilla:alice");
        assert_eq!(connection_window(16), 18 * STREAM_WINDOW);
        assert_eq!(connection_window(usize::MAX), i32::MAX.unsigned_abs());
    }
}
