//! Builders for users, requests and RBAC objects.

use flotilla_rbac::{Policy, Request, UserInfo};
use serde_json::{Value, json};

pub fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..UserInfo::default()
    }
}

/// A resource request; empty strings stand for "none".
pub fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Request {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Request::Resource {
        verb: verb.to_owned(),
        api_group: group.to_owned(),
        resource: resource.to_owned(),
        subresource: opt(sub),
        namespace: opt(ns),
        name: opt(name),
    }
}

pub fn path(verb: &str, path: &str) -> Request {
    Request::NonResource {
        verb: verb.to_owned(),
        path: path.to_owned(),
    }
}

pub fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

pub fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name}, "rules": rules})
}

pub fn role_binding(ns: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
           "subjects": subjects})
}

pub fn cluster_role_binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": subjects})
}

pub fn policy(objects: &[Value]) -> Policy {
    let mut p = Policy::new();
    for o in objects {
        p.upsert(o).expect("valid RBAC object");
    }
    p
}

/// A policy over the default objects plus `extra`.
pub fn default_policy(extra: &[Value]) -> Policy {
    let mut objects = flotilla_rbac::default_objects();
    objects.extend_from_slice(extra);
    policy(&objects)
}
