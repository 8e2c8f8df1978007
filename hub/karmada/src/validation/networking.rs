//! MultiClusterService, ServiceExport and ServiceImport admission: Karmada's
//! MultiClusterService webhook and the MCS API's schema rules.

use std::collections::BTreeSet;

use super::Errs;
use super::names::{is_dns1035_label, is_dns1123_label};
use crate::types::{ClusterSelector, MultiClusterService, ServiceImport};

/// The exposure types of a MultiClusterService.
pub const MCS_TYPES: &[&str] = &["CrossCluster", "LoadBalancer"];
/// The types of a ServiceImport.
pub const IMPORT_TYPES: &[&str] = &["ClusterSetIP", "Headless"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const SESSION_AFFINITIES: &[&str] = &["None", "ClientIP"];
const MAX_CLUSTER_NAME: usize = 48;

/// The message Kubernetes gives for an invalid Service name.
pub const DNS1035_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric \
     characters or '-', start with an alphabetic character, and end with an alphanumeric \
     character";

/// Checks a name that must be a Service's name (DNS-1035 label).
pub(super) fn validate_service_name(name: &str, errs: &mut Errs) {
    if !name.is_empty() && !is_dns1035_label(name) {
        errs.invalid("metadata.name", name, DNS1035_MESSAGE);
    }
}

/// Karmada's MultiClusterService rules.
pub(super) fn validate_multi_cluster_service(o: &MultiClusterService, errs: &mut Errs) {
    let spec = &o.spec;
    if spec.types.is_empty() {
        errs.required("spec.types", "exactly one exposure type");
    }
    for (i, t) in spec.types.iter().enumerate() {
        let f = format!("spec.types[{i}]");
        errs.one_of(&f, t, MCS_TYPES, false);
        if spec.types[..i].contains(t) {
            errs.duplicate(&f, t);
        }
    }
    if spec.types.iter().collect::<BTreeSet<_>>().len() > 1 {
        errs.invalid(
            "spec.types",
            spec.types.join(","),
            "only one exposure type may be set",
        );
    }
    let mut names = BTreeSet::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let f = format!("spec.ports[{i}]");
        if !p.name.is_empty() {
            if !is_dns1123_label(&p.name) {
                errs.invalid(
                    &format!("{f}.name"),
                    &p.name,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric \
                     characters or '-', and must start and end with an alphanumeric character",
                );
            }
            if !names.insert(p.name.as_str()) {
                errs.duplicate(&format!("{f}.name"), &p.name);
            }
        }
        check_port(&format!("{f}.port"), p.port, errs);
    }
    for (field, list) in [
        ("spec.providerClusters", &spec.provider_clusters),
        ("spec.consumerClusters", &spec.consumer_clusters),
    ] {
        check_cluster_list(field, list, errs);
    }
    for (field, list) in [
        (
            "spec.serviceProvisionClusters",
            &spec.service_provision_clusters,
        ),
        (
            "spec.serviceConsumptionClusters",
            &spec.service_consumption_clusters,
        ),
    ] {
        for (i, name) in list.iter().enumerate() {
            check_cluster_name(&format!("{field}[{i}]"), name, errs);
        }
    }
    if let Some(range) = &spec.range {
        for (i, name) in range.cluster_names.iter().enumerate() {
            check_cluster_name(&format!("spec.range.clusterNames[{i}]"), name, errs);
        }
    }
}

fn check_cluster_list(field: &str, list: &[ClusterSelector], errs: &mut Errs) {
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let f = format!("{field}[{i}].name");
        check_cluster_name(&f, &c.name, errs);
        if !seen.insert(c.name.as_str()) {
            errs.duplicate(&f, &c.name);
        }
    }
}

fn check_cluster_name(field: &str, name: &str, errs: &mut Errs) {
    if name.is_empty() {
        errs.required(field, "");
    } else if !is_dns1123_label(name) || name.len() > MAX_CLUSTER_NAME {
        errs.invalid(
            field,
            name,
            "a cluster name must be a lowercase RFC 1123 label of at most 48 characters",
        );
    }
}

fn check_port(field: &str, port: i32, errs: &mut Errs) {
    if !(1..=65535).contains(&port) {
        errs.invalid(field, port, "must be between 1 and 65535, inclusive");
    }
}

/// The MCS API's ServiceImport rules.
pub(super) fn validate_service_import(o: &ServiceImport, errs: &mut Errs) {
    let spec = &o.spec;
    errs.one_of("spec.type", &spec.type_, IMPORT_TYPES, false);
    if spec.ports.is_empty() && spec.type_ != "Headless" {
        errs.required("spec.ports", "at least one port");
    }
    let mut names = BTreeSet::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let f = format!("spec.ports[{i}]");
        if p.name.is_empty() && spec.ports.len() > 1 {
            errs.required(&format!("{f}.name"), "when there is more than one port");
        }
        if !p.name.is_empty() && !names.insert(p.name.as_str()) {
            errs.duplicate(&format!("{f}.name"), &p.name);
        }
        errs.one_of(&format!("{f}.protocol"), &p.protocol, PROTOCOLS, true);
        check_port(&format!("{f}.port"), p.port, errs);
    }
    if spec.ips.len() > 1 {
        errs.invalid("spec.ips", spec.ips.join(","), "must have at most 1 items");
    }
    for (i, ip) in spec.ips.iter().enumerate() {
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.invalid(&format!("spec.ips[{i}]"), ip, "must be a valid IP address");
        }
    }
    errs.one_of(
        "spec.sessionAffinity",
        &spec.session_affinity,
        SESSION_AFFINITIES,
        true,
    );
}
