//! The audit log: one JSON line per request (`audit.k8s.io/v1` Event at stage
//! `ResponseComplete`), at the level the audit policy gives it (kube-apiserver's policy
//! format: None, Metadata, Request, RequestResponse), rotated by size. Secrets, tokens and
//! certificate requests are never logged beyond Metadata, whatever the policy says.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flotilla_rbac::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::UserInfo;

/// How much of a request is logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    /// Nothing.
    None,
    /// Who, what, when and the answer's code.
    #[default]
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, the request body and the response body.
    RequestResponse,
}

/// A group and its resources in a policy rule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    /// The API group (`""` core).
    #[serde(default)]
    pub group: String,
    /// Resources (`pods`, `pods/log`, `*/status`); empty matches all.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty matches all.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// One rule of an audit policy: the first rule that matches a request gives its level.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// The level of matching requests.
    pub level: Level,
    /// Users; empty matches all.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups; empty matches all.
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Verbs; empty matches all.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources; empty matches all resource requests.
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    /// Namespaces (`""` for cluster-scoped); empty matches all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource URLs (a trailing `*` is a prefix); empty matches all.
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

/// An audit policy (`audit.k8s.io/v1` Policy).
#[derive(Clone, Debug, Deserialize)]
pub struct Policy {
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

impl Default for Policy {
    /// Everything at Metadata.
    fn default() -> Self {
        Self {
            rules: vec![PolicyRule {
                level: Level::Metadata,
                users: vec![],
                user_groups: vec![],
                verbs: vec![],
                resources: vec![],
                namespaces: vec![],
                non_resource_urls: vec![],
            }],
        }
    }
}

fn listed(list: &[String], v: &str) -> bool {
    list.is_empty() || list.iter().any(|x| x == v)
}

impl PolicyRule {
    fn matches(&self, user: &UserInfo, req: &Request) -> bool {
        if !listed(&self.users, &user.name)
            || !(self.user_groups.is_empty() || self.user_groups.iter().any(|g| user.in_group(g)))
            || !listed(&self.verbs, req.verb())
        {
            return false;
        }
        match req {
            Request::Resource {
                api_group,
                resource,
                subresource,
                namespace,
                name,
                ..
            } => {
                if !self.non_resource_urls.is_empty() {
                    return false;
                }
                if !listed(&self.namespaces, namespace.as_deref().unwrap_or("")) {
                    return false;
                }
                if self.resources.is_empty() {
                    return true;
                }
                let full = match subresource {
                    Some(s) => format!("{resource}/{s}"),
                    None => resource.clone(),
                };
                self.resources.iter().any(|gr| {
                    gr.group == *api_group
                        && (gr.resources.is_empty()
                            || gr.resources.iter().any(|r| {
                                *r == full
                                    || *r == "*"
                                    || (subresource.is_none() && r == resource)
                                    || r.strip_prefix("*/")
                                        .is_some_and(|s| Some(s) == subresource.as_deref())
                                    || r.strip_suffix("/*")
                                        .is_some_and(|s| s == resource && subresource.is_some())
                            }))
                        && (gr.resource_names.is_empty()
                            || name.as_ref().is_some_and(|n| gr.resource_names.contains(n)))
                })
            }
            Request::NonResource { path, .. } => {
                if !self.resources.is_empty() || !self.namespaces.is_empty() {
                    return false;
                }
                self.non_resource_urls.is_empty()
                    || self.non_resource_urls.iter().any(|u| {
                        u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
        }
    }
}

/// Resources whose bodies may carry secrets: never logged beyond Metadata.
fn sensitive(req: &Request) -> bool {
    matches!(req, Request::Resource { resource, subresource, .. }
        if matches!(resource.as_str(), "secrets" | "tokenreviews" | "certificatesigningrequests")
            || subresource.as_deref() == Some("token"))
}

impl Policy {
    /// Parses a policy file (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, String> {
        let p: Policy = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        Ok(p)
    }

    /// The level of `req` by `user`.
    pub fn level(&self, user: &UserInfo, req: &Request) -> Level {
        let level = self
            .rules
            .iter()
            .find(|r| r.matches(user, req))
            .map(|r| r.level)
            .unwrap_or(Level::None);
        if sensitive(req) {
            level.min(Level::Metadata)
        } else {
            level
        }
    }
}

/// Where events go, and when the file is rotated.
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
    max_backups: usize,
    /// The policy.
    pub policy: Policy,
    file: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// One request's audit record.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Who.
    pub user: &'a UserInfo,
    /// The impersonated user, if any (then `user` is the impersonator).
    pub impersonated: Option<&'a UserInfo>,
    /// What.
    pub request: &'a Request,
    /// The request URI.
    pub uri: &'a str,
    /// The client address.
    pub source_ip: String,
    /// The User-Agent.
    pub user_agent: &'a str,
    /// The answer's code.
    pub code: u16,
    /// When the request arrived.
    pub received: jiff::Timestamp,
    /// The request's object (for levels Request and up).
    pub request_object: Option<Value>,
    /// The response body (for RequestResponse), JSON.
    pub response_body: Option<&'a [u8]>,
}

fn user_json(u: &UserInfo) -> Value {
    let mut o = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        o["uid"] = json!(u.uid);
    }
    o
}

impl AuditLog {
    /// A log at `path` rotated at `max_megabytes` keeping `max_backups` old files.
    pub fn new(
        path: PathBuf,
        policy: Policy,
        max_megabytes: u64,
        max_backups: usize,
    ) -> std::io::Result<Self> {
        let file = open(&path)?;
        Ok(Self {
            path,
            max_bytes: max_megabytes.saturating_mul(1024 * 1024).max(1024),
            max_backups,
            policy,
            file: Mutex::new(Some(file)),
        })
    }

    /// The level for a request (of the acting user).
    pub fn level(&self, user: &UserInfo, req: &Request) -> Level {
        self.policy.level(user, req)
    }

    /// Writes one event at `level`.
    pub fn write(&self, level: Level, e: &Entry<'_>) {
        if level == Level::None {
            return;
        }
        let mut ev = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": format!("{level:?}"),
            "auditID": uuid::Uuid::new_v4().to_string(),
            "stage": "ResponseComplete",
            "requestURI": e.uri,
            "verb": e.request.verb(),
            "user": user_json(e.user),
            "sourceIPs": [e.source_ip],
            "userAgent": e.user_agent,
            "responseStatus": {"metadata": {}, "code": e.code},
            "requestReceivedTimestamp": e.received.to_string(),
            "stageTimestamp": jiff::Timestamp::now().to_string(),
        });
        if let Some(i) = e.impersonated {
            ev["impersonatedUser"] = user_json(i);
        }
        if let Request::Resource {
            api_group,
            resource,
            subresource,
            namespace,
            name,
            ..
        } = e.request
        {
            let mut r = json!({"resource": resource, "apiGroup": api_group});
            if let Some(ns) = namespace {
                r["namespace"] = json!(ns);
            }
            if let Some(n) = name {
                r["name"] = json!(n);
            }
            if let Some(s) = subresource {
                r["subresource"] = json!(s);
            }
            ev["objectRef"] = r;
        }
        if level >= Level::Request
            && let Some(v) = &e.request_object
        {
            ev["requestObject"] = v.clone();
        }
        if level >= Level::RequestResponse
            && let Some(b) = e.response_body.filter(|b| !b.is_empty())
            && let Ok(v) = serde_json::from_slice::<Value>(b)
        {
            ev["responseObject"] = v;
        }
        let mut line = serde_json::to_vec(&ev).unwrap_or_default();
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = self.append(&mut guard, &line) {
            tracing::warn!(path = %self.path.display(), error = %err, "writing the audit log failed");
        }
    }

    fn append(&self, file: &mut Option<std::fs::File>, line: &[u8]) -> std::io::Result<()> {
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        if size.saturating_add(line.len() as u64) > self.max_bytes && size > 0 {
            *file = None;
            self.rotate()?;
        }
        if file.is_none() {
            *file = Some(open(&self.path)?);
        }
        match file.as_mut() {
            Some(f) => f.write_all(line),
            None => Ok(()),
        }
    }

    /// `path` becomes `path.1`, `path.1` becomes `path.2`, ...; the oldest beyond
    /// `max_backups` is removed.
    fn rotate(&self) -> std::io::Result<()> {
        let backup = |i: usize| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.max_backups == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(backup(self.max_backups));
        for i in (1..self.max_backups).rev() {
            let _ = std::fs::rename(backup(i), backup(i + 1));
        }
        std::fs::rename(&self.path, backup(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, group: &str, resource: &str, ns: Option<&str>) -> Request {
        Request::Resource {
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: None,
            namespace: ns.map(Into::into),
            name: Some("x".into()),
        }
    }

    fn alice() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            groups: vec!["team-a".into()],
            ..Default::default()
        }
    }

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
- level: Request
  verbs: ["create", "update", "patch"]
  userGroups: ["team-a"]
- level: None
  users: ["system:anonymous"]
- level: Metadata
"#;

    #[test]
    fn the_first_matching_rule_decides_and_secrets_stay_at_metadata() {
        let p = Policy::parse(POLICY).expect("policy");
        let health = Request::NonResource {
            verb: "get".into(),
            path: "/healthz/ready".into(),
        };
        assert_eq!(p.level(&alice(), &health), Level::None);
        assert_eq!(
            p.level(&alice(), &req("get", "", "configmaps", Some("a"))),
            Level::RequestResponse
        );
        assert_eq!(
            p.level(&alice(), &req("get", "", "secrets", Some("a"))),
            Level::Metadata,
            "secrets are never logged beyond metadata"
        );
        assert_eq!(
            p.level(&alice(), &req("create", "apps", "deployments", Some("a"))),
            Level::Request
        );
        assert_eq!(
            p.level(&alice(), &req("get", "apps", "deployments", Some("a"))),
            Level::Metadata
        );
        let anon = crate::auth::anonymous();
        assert_eq!(
            p.level(&anon, &req("get", "apps", "deployments", None)),
            Level::None
        );
        let mut token = req("create", "", "serviceaccounts", Some("a"));
        if let Request::Resource { subresource, .. } = &mut token {
            *subresource = Some("token".into());
        }
        assert_eq!(p.level(&alice(), &token), Level::Metadata);
        assert_eq!(Policy::default().level(&alice(), &token), Level::Metadata);
    }

    #[test]
    fn events_are_json_lines_and_files_rotate() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::new(path.clone(), Policy::default(), 0, 2).expect("log");
        let r = req("create", "apps", "deployments", Some("a"));
        let body = json!({"kind": "Deployment", "metadata": {"name": "x"}});
        let entry = Entry {
            user: &alice(),
            impersonated: None,
            request: &r,
            uri: "/apis/apps/v1/namespaces/a/deployments",
            source_ip: "127.0.0.1".into(),
            user_agent: "kubectl",
            code: 201,
            received: jiff::Timestamp::now(),
            request_object: Some(body),
            response_body: Some(br#"{"kind":"Status"}"#),
        };
        log.write(Level::Request, &entry);
        let text = std::fs::read_to_string(&path).expect("read");
        let ev: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(ev["level"], "Request");
        assert_eq!(ev["objectRef"]["resource"], "deployments");
        assert_eq!(ev["requestObject"]["kind"], "Deployment");
        assert!(
            ev.get("responseObject").is_none(),
            "only at RequestResponse"
        );
        log.write(Level::RequestResponse, &entry);
        let text = std::fs::read_to_string(&path).expect("read");
        let last: Value =
            serde_json::from_str(text.lines().last().unwrap_or_default()).expect("JSON line");
        assert_eq!(last["responseObject"]["kind"], "Status");
        assert_eq!(ev["responseStatus"]["code"], 201);
        // The size limit is 1 KiB here: a few more events rotate the file, keeping 2 backups.
        for _ in 0..20 {
            log.write(Level::Request, &entry);
        }
        assert!(dir.path().join("audit.log.1").exists());
        assert!(dir.path().join("audit.log.2").exists());
        assert!(!dir.path().join("audit.log.3").exists());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
