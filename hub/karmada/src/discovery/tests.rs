#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn port(name: &str, port: i32) -> PortShape {
    PortShape {
        name: name.into(),
        protocol: "TCP".into(),
        port,
        app_protocol: None,
    }
}

fn endpoint(ip: &str, ready: bool, zone: Option<&str>) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        ready: Some(ready),
        serving: Some(ready),
        terminating: Some(false),
        zone: zone.map(str::to_owned),
        hostname: None,
    }
}

/// An export of `web` (port 80) from `cluster` in `region`/`zone` with the given endpoints.
fn export(cluster: &str, region: &str, zone: &str, ready: &[bool]) -> Export {
    Export {
        cluster: cluster.into(),
        region: Some(region.into()),
        zone: Some(zone.into()),
        healthy: true,
        since: "2026-01-01T00:00:00Z".into(),
        shape: ServiceShape::new(false, vec![port("http", 80)]),
        slices: vec![Slice {
            name: format!("web-{cluster}"),
            address_type: "IPv4".into(),
            ports: vec![SlicePort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: Some(8080),
                app_protocol: None,
            }],
            endpoints: ready
                .iter()
                .enumerate()
                .map(|(i, r)| endpoint(&format!("10.{}.0.{i}", cluster.len()), *r, Some(zone)))
                .collect(),
        }],
    }
}

fn consumer(cluster: &str, region: Option<&str>, zone: Option<&str>) -> Consumer {
    Consumer {
        cluster: cluster.into(),
        region: region.map(str::to_owned),
        zone: zone.map(str::to_owned),
    }
}

fn sources(p: &ConsumerPlan) -> Vec<&str> {
    p.slices.iter().map(|s| s.source_cluster.as_str()).collect()
}

/// name, exports, sources, regions, fell back.
type RegionCase = (
    &'static str,
    Vec<Export>,
    Vec<&'static str>,
    Vec<&'static str>,
    bool,
);

#[test]
fn region_affinity_prefers_the_consumers_region_and_falls_back_when_it_has_no_ready_endpoint() {
    let c = consumer("c", Some("us-east"), Some("us-east-1b"));
    let cases: Vec<RegionCase> = vec![
        (
            "A in the region serves C",
            vec![
                export("a", "us-east", "us-east-1a", &[true, true]),
                export("b", "eu-west", "eu-west-1a", &[true, true]),
            ],
            vec!["a"],
            vec!["us-east"],
            false,
        ),
        (
            "A scaled to zero: every region",
            vec![
                export("a", "us-east", "us-east-1a", &[]),
                export("b", "eu-west", "eu-west-1a", &[true]),
            ],
            vec!["a", "b"],
            vec!["eu-west", "us-east"],
            true,
        ),
        (
            "A's endpoints not ready: every region",
            vec![
                export("a", "us-east", "us-east-1a", &[false, false]),
                export("b", "eu-west", "eu-west-1a", &[true]),
            ],
            vec!["a", "b"],
            vec!["eu-west", "us-east"],
            true,
        ),
        (
            "one ready endpoint keeps the region",
            vec![
                export("a", "us-east", "us-east-1a", &[false, true]),
                export("b", "eu-west", "eu-west-1a", &[true]),
            ],
            vec!["a"],
            vec!["us-east"],
            false,
        ),
        (
            "nothing ready anywhere: every region, nothing ready",
            vec![
                export("a", "us-east", "us-east-1a", &[false]),
                export("b", "eu-west", "eu-west-1a", &[false]),
            ],
            vec!["a", "b"],
            vec!["eu-west", "us-east"],
            true,
        ),
        ("no exports", vec![], vec![], vec![], true),
    ];
    for (name, exports, want_sources, want_regions, fell_back) in cases {
        let res = resolve(&exports);
        let p = plan(&res.accepted, &c, Affinity::Region, true);
        assert_eq!(sources(&p), want_sources, "{name}");
        assert_eq!(p.sources, want_sources, "{name}");
        assert_eq!(p.regions, want_regions, "{name}");
        assert_eq!(p.fell_back, fell_back, "{name}");
    }
}

#[test]
fn unhealthy_providers_are_left_out() {
    let mut a = export("a", "us-east", "us-east-1a", &[true]);
    a.healthy = false;
    let b = export("b", "eu-west", "eu-west-1a", &[true]);
    let exports = [a, b];
    let res = resolve(&exports);
    let p = plan(
        &res.accepted,
        &consumer("c", Some("us-east"), None),
        Affinity::Region,
        true,
    );
    assert_eq!(p.sources, ["b"]);
    assert_eq!(p.ready_endpoints, 1);
    assert!(p.fell_back);
}

#[test]
fn affinity_none_zone_and_unlabelled_consumers() {
    let exports = [
        export("a", "us-east", "us-east-1a", &[true]),
        export("d", "us-east", "us-east-1b", &[true]),
        export("b", "eu-west", "eu-west-1a", &[true]),
    ];
    let res = resolve(&exports);
    let c = consumer("c", Some("us-east"), Some("us-east-1b"));
    let none = plan(&res.accepted, &c, Affinity::None, true);
    assert_eq!(none.sources, ["a", "b", "d"]);
    assert!(!none.fell_back);
    assert!(
        none.slices
            .iter()
            .all(|s| s.hints.iter().all(Option::is_none))
    );
    let zone = plan(&res.accepted, &c, Affinity::Zone, true);
    assert_eq!(zone.sources, ["d"]);
    let region = plan(&res.accepted, &c, Affinity::Region, true);
    assert_eq!(region.sources, ["a", "d"]);
    // In zone mode, an empty zone falls back to the region first.
    let other_zone = consumer("c", Some("us-east"), Some("us-east-1c"));
    assert_eq!(
        plan(&res.accepted, &other_zone, Affinity::Zone, true).sources,
        ["a", "d"]
    );
    let unlabelled = plan(
        &res.accepted,
        &consumer("c", None, None),
        Affinity::Region,
        true,
    );
    assert_eq!(unlabelled.sources, ["a", "b", "d"]);
    assert!(!unlabelled.fell_back);
}

#[test]
fn hints_are_set_inside_the_region_only_when_every_endpoint_has_a_zone() {
    let exports = [
        export("a", "us-east", "us-east-1a", &[true]),
        export("b", "eu-west", "eu-west-1a", &[true]),
    ];
    let res = resolve(&exports);
    let c = consumer("c", Some("us-east"), Some("us-east-1a"));
    let p = plan(&res.accepted, &c, Affinity::Region, true);
    assert_eq!(p.slices[0].hints, [Some("us-east-1a".to_owned())]);
    // Served from every region: no hints.
    let far = consumer("c", Some("ap-south"), None);
    let p = plan(&res.accepted, &far, Affinity::Region, true);
    assert!(p.slices.iter().all(|s| s.hints == [None]));
    // An endpoint without a zone: no hints at all.
    let mut a = export("a", "us-east", "us-east-1a", &[true, true]);
    a.slices[0].endpoints[1].zone = None;
    let exports = [a];
    let res = resolve(&exports);
    let p = plan(&res.accepted, &c, Affinity::Region, true);
    assert_eq!(p.slices[0].hints, [None, None]);
}

#[test]
fn a_consumer_that_is_a_provider_keeps_its_local_endpoints_and_gets_only_the_others() {
    let exports = [
        export("a", "us-east", "us-east-1a", &[true]),
        export("c", "us-east", "us-east-1b", &[true]),
        export("b", "eu-west", "eu-west-1a", &[true]),
    ];
    let res = resolve(&exports);
    let c = consumer("c", Some("us-east"), Some("us-east-1b"));
    let mcs = plan(&res.accepted, &c, Affinity::Region, false);
    assert_eq!(mcs.sources, ["a", "c"]);
    assert_eq!(sources(&mcs), ["a"]);
    assert_eq!(mcs.ready_endpoints, 2);
    let import = plan(&res.accepted, &c, Affinity::Region, true);
    assert_eq!(sources(&import), ["a", "c"]);
    // Its own region's only ready endpoints are its own: it still stays in the region.
    let exports = [
        export("c", "us-east", "us-east-1b", &[true]),
        export("b", "eu-west", "eu-west-1a", &[true]),
    ];
    let res = resolve(&exports);
    let p = plan(&res.accepted, &c, Affinity::Region, false);
    assert_eq!(p.sources, ["c"]);
    assert!(p.slices.is_empty());
    assert!(!p.fell_back);
}

#[test]
fn the_oldest_export_defines_the_shape_and_others_conflict_whole() {
    let mut a = export("a", "us-east", "us-east-1a", &[true]);
    a.since = "2026-01-02T00:00:00Z".into();
    let mut b = export("b", "eu-west", "eu-west-1a", &[true]);
    b.since = "2026-01-01T00:00:00Z".into();
    b.shape = ServiceShape::new(false, vec![port("http", 8080)]);
    let mut h = export("h", "eu-west", "eu-west-1a", &[true]);
    h.since = "2026-01-03T00:00:00Z".into();
    h.shape = ServiceShape::new(true, vec![port("http", 8080)]);
    let same = export("s", "eu-west", "eu-west-1b", &[true]);
    let exports = [a, b, h, same];
    let res = resolve(&exports);
    assert_eq!(res.shape.unwrap().ports, [port("http", 8080)]);
    let accepted: Vec<&str> = res.accepted.iter().map(|e| e.cluster.as_str()).collect();
    assert_eq!(accepted, ["b"]);
    let conflicts: Vec<(&str, &str)> = res
        .conflicts
        .iter()
        .map(|c| (c.cluster.as_str(), c.reason))
        .collect();
    // "s" and "a" share the earliest-but-one timestamp order: a (01-02), h (01-03); s has
    // 01-01 like b and sorts after it by name.
    assert_eq!(
        conflicts,
        [
            ("s", "PortConflict"),
            ("a", "PortConflict"),
            ("h", "TypeConflict")
        ]
    );
    assert_eq!(
        res.conflicts[1].message,
        "a exports ports http:80/TCP; b (exported first) exports http:8080/TCP"
    );
    // Ports compare as a set: order does not matter.
    let x = ServiceShape::new(false, vec![port("b", 2), port("a", 1)]);
    let y = ServiceShape::new(false, vec![port("a", 1), port("b", 2)]);
    assert_eq!(x, y);
    assert_eq!(resolve(&[]), Resolution::default());
}

#[test]
fn rendered_slices_carry_the_labels_hints_and_no_node_names() {
    let exports = [export("a", "us-east", "us-east-1a", &[true, false])];
    let res = resolve(&exports);
    let c = consumer("c", Some("us-east"), None);
    let p = plan(&res.accepted, &c, Affinity::Region, true);
    let obj = render_slice(&p.slices[0], "shop", "derived-web", "web");
    assert_eq!(
        obj,
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "imported-a-web-a",
                "namespace": "shop",
                "labels": {
                    "kubernetes.io/service-name": "derived-web",
                    "endpointslice.kubernetes.io/managed-by": "service-discovery.flotilla.io",
                    "multicluster.kubernetes.io/source-cluster": "a",
                    "multicluster.kubernetes.io/service-name": "web",
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.1.0.0"],
                 "conditions": {"ready": true, "serving": true, "terminating": false},
                 "zone": "us-east-1a", "hints": {"forZones": [{"name": "us-east-1a"}]}},
                {"addresses": ["10.1.0.1"],
                 "conditions": {"ready": false, "serving": false, "terminating": false},
                 "zone": "us-east-1a", "hints": {"forZones": [{"name": "us-east-1a"}]}},
            ],
        })
    );
}

#[test]
fn imported_names_stay_valid() {
    assert_eq!(imported_slice_name("a", "web-x1"), "imported-a-web-x1");
    let long = "s".repeat(250);
    let name = imported_slice_name("member1", &long);
    assert_eq!(name.len(), 253);
    assert_ne!(name, imported_slice_name("member2", &long));
    assert_eq!(name, imported_slice_name("member1", &long));
}

#[test]
fn affinity_values() {
    assert_eq!(Affinity::parse(None), Ok(Affinity::Region));
    assert_eq!(Affinity::parse(Some("zone")), Ok(Affinity::Zone));
    assert_eq!(Affinity::parse(Some("none")), Ok(Affinity::None));
    assert!(
        Affinity::parse(Some("Region"))
            .unwrap_err()
            .contains("region, zone or none")
    );
}
