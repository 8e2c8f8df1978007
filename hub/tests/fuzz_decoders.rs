//! Fuzz targets for the hub's decoders of untrusted bytes: Kubernetes protobuf request bodies,
//! YAML or JSON request bodies, and the messages agents send (decoded, size-checked and folded
//! into Cluster and Work statuses). Each replays `tests/fuzz-corpus/<target>/` and then fuzzes
//! for a few seconds with the harness shared with flotilla-apimachinery; the requirement is
//! no panic and no stack overflow on any input.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../apimachinery/tests/fuzz/mod.rs"]
mod fuzz;

use std::path::PathBuf;

use flotilla_hub::agents::{limits, status};
use flotilla_hub::api::objects::parse_yaml_or_json;
use flotilla_hub::api::protobuf::decode_request;
use flotilla_proto::v1::{
    AgentMessage, ApiEnablement, ApiResource, Heartbeat, ManifestIdentifier, ManifestStatus,
    WorkStatus, agent_message,
};
use fuzz::{Rng, Target, mutate_bytes};
use prost::Message;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

/// One protobuf wire-format field.
#[derive(Clone)]
enum Wire {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The fields of a message, or None when `b` is not a well-formed message.
fn parse_wire(b: &[u8]) -> Option<Vec<(u64, Wire)>> {
    let mut fields = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        let wire = match key & 7 {
            0 => Wire::Varint(read_varint(b, &mut i)?),
            1 => {
                let v = b.get(i..i + 8)?.try_into().ok()?;
                i += 8;
                Wire::Fixed64(v)
            }
            2 => {
                let len = usize::try_from(read_varint(b, &mut i)?).ok()?;
                let v = b.get(i..i.checked_add(len)?)?.to_vec();
                i += len;
                Wire::Bytes(v)
            }
            5 => {
                let v = b.get(i..i + 4)?.try_into().ok()?;
                i += 4;
                Wire::Fixed32(v)
            }
            _ => return None,
        };
        fields.push((key >> 3, wire));
    }
    Some(fields)
}

fn encode_wire(fields: &[(u64, Wire)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, wire) in fields {
        let kind = match wire {
            Wire::Varint(_) => 0,
            Wire::Fixed64(_) => 1,
            Wire::Bytes(_) => 2,
            Wire::Fixed32(_) => 5,
        };
        write_varint(&mut out, number << 3 | kind);
        match wire {
            Wire::Varint(v) => write_varint(&mut out, *v),
            Wire::Fixed64(v) => out.extend_from_slice(v),
            Wire::Bytes(v) => {
                write_varint(&mut out, v.len() as u64);
                out.extend_from_slice(v);
            }
            Wire::Fixed32(v) => out.extend_from_slice(v),
        }
    }
    out
}

/// The indexes of length-delimited fields from the root to a random nested message.
fn random_path(rng: &mut Rng, msg: &[u8]) -> Vec<usize> {
    let mut path = Vec::new();
    let mut cur = msg.to_vec();
    while let Some(fields) = parse_wire(&cur) {
        let nested: Vec<usize> = (0..fields.len())
            .filter(|&i| matches!(&fields[i].1, Wire::Bytes(b) if !b.is_empty()))
            .collect();
        if nested.is_empty() || (!path.is_empty() && rng.one_in(3)) {
            break;
        }
        let i = *rng.pick(&nested);
        let Wire::Bytes(b) = &fields[i].1 else {
            unreachable!()
        };
        cur = b.clone();
        path.push(i);
    }
    path
}

/// The payload at `path`.
fn get_at(msg: &[u8], path: &[usize]) -> Vec<u8> {
    let mut cur = msg.to_vec();
    for &i in path {
        let Some(Wire::Bytes(b)) = parse_wire(&cur).and_then(|f| f.get(i).map(|f| f.1.clone()))
        else {
            return cur;
        };
        cur = b;
    }
    cur
}

/// `msg` with the payload at `path` replaced.
fn replace_at(msg: &[u8], path: &[usize], new: &[u8]) -> Vec<u8> {
    let Some((&i, rest)) = path.split_first() else {
        return new.to_vec();
    };
    let Some(mut fields) = parse_wire(msg) else {
        return msg.to_vec();
    };
    if let Some((_, Wire::Bytes(b))) = fields.get_mut(i) {
        *b = replace_at(b, rest, new);
    }
    encode_wire(&fields)
}

const INTERESTING_VARINTS: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
    u64::MAX - 1,
];

/// Mutates one message of a protobuf tree: a nested message at a random path has a field
/// changed, dropped, repeated or borrowed from the donor, its bytes mutated, or a stretch of
/// the tree repeated inside itself (`max_repeat` times at most: deep nesting of recursive
/// messages).
fn mutate_proto(rng: &mut Rng, msg: &[u8], donor: &[u8], max_repeat: usize) -> Vec<u8> {
    if rng.one_in(5) {
        return mutate_bytes(rng, msg, donor, &[]);
    }
    let path = random_path(rng, msg);
    if rng.one_in(6) && !path.is_empty() {
        // Self-embedding: the message at path[..i] contains the one at path[..j]; put the
        // former where the latter is, a number of times.
        let j = rng.below(path.len()) + 1;
        let i = rng.below(j);
        let outer = get_at(msg, &path[..i]);
        let rel = &path[i..j];
        let times = if rng.one_in(4) {
            rng.below(max_repeat) + 1
        } else {
            rng.below(4) + 1
        };
        let mut inner = get_at(msg, &path[..j]);
        for _ in 0..times {
            inner = replace_at(&outer, rel, &inner);
        }
        return replace_at(msg, &path[..i], &inner);
    }
    let target = get_at(msg, &path);
    let Some(mut fields) = parse_wire(&target) else {
        let mutated = mutate_bytes(rng, &target, donor, &[]);
        return replace_at(msg, &path, &mutated);
    };
    let donor_fields = parse_wire(&get_at(donor, &random_path(rng, donor))).unwrap_or_default();
    match rng.below(7) {
        0 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            fields.remove(i);
        }
        1 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            let copy = fields[i].clone();
            fields.insert(rng.below(fields.len() + 1), copy);
        }
        2 if !donor_fields.is_empty() => {
            let f = rng.pick(&donor_fields).clone();
            fields.insert(rng.below(fields.len() + 1), f);
        }
        3 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            fields[i].1 = match &fields[i].1 {
                Wire::Bytes(b) => Wire::Bytes(mutate_bytes(rng, b, donor, &[])),
                _ => Wire::Varint(*rng.pick(INTERESTING_VARINTS)),
            };
        }
        4 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            fields[i].0 = if rng.one_in(2) {
                fields[i].0 + 1
            } else {
                rng.below(40) as u64 + 1
            };
        }
        5 if !fields.is_empty() => {
            // The same field with another wire type.
            let i = rng.below(fields.len());
            fields[i].1 = match rng.below(4) {
                0 => Wire::Varint(*rng.pick(INTERESTING_VARINTS)),
                1 => Wire::Fixed64(rng.next_u64().to_le_bytes()),
                2 => Wire::Fixed32((rng.next_u64() as u32).to_le_bytes()),
                _ => Wire::Bytes(Vec::new()),
            };
        }
        _ => {
            let number = rng.below(40) as u64 + 1;
            fields.push((number, Wire::Varint(*rng.pick(INTERESTING_VARINTS))));
        }
    }
    replace_at(msg, &path, &encode_wire(&fields))
}

fn bytes_target(
    name: &'static str,
    generate: fn(&mut Rng, &[Vec<u8>]) -> Vec<u8>,
) -> Target<Vec<u8>> {
    Target {
        name,
        corpus_root: corpus(),
        decode: <[u8]>::to_vec,
        encode: Vec::clone,
        generate,
    }
}

const MAGIC: &[u8] = b"k8s\0";

/// How many times a stretch of a request body may be repeated inside itself.
const PROTOBUF_MAX_REPEAT: usize = 64;

#[test]
fn fuzz_protobuf_request() {
    bytes_target("protobuf_request", |rng, seeds| {
        let base = rng.pick(seeds);
        let donor = rng.pick(seeds);
        let (Some(body), Some(donor)) = (base.strip_prefix(MAGIC), donor.strip_prefix(MAGIC))
        else {
            return mutate_bytes(rng, base, donor, &[MAGIC]);
        };
        let mut out = MAGIC.to_vec();
        out.extend(mutate_proto(rng, body, donor, PROTOBUF_MAX_REPEAT));
        out
    })
    .run(|body| {
        if let Ok(v) = decode_request(body) {
            serde_json::to_vec(&v).unwrap();
            return true;
        }
        false
    });
}

/// YAML syntax that changes structure: anchors, aliases, merge keys, tags, block scalars,
/// flow collections, documents, directives.
const YAML_TOKENS: &[&[u8]] = &[
    b"&a ",
    b"*a",
    b"<<: *a",
    b"<<: ",
    b"- ",
    b": ",
    b"? ",
    b"{",
    b"}",
    b"[",
    b"]",
    b", ",
    b"\n",
    b"\n  ",
    b"\t",
    b"#",
    b"'",
    b"\"",
    b"\\u0000",
    b"|\n  ",
    b">-\n  ",
    b"|2+\n",
    b"!!binary ",
    b"!!str ",
    b"!!int ",
    b"!!float ",
    b"!!map ",
    b"!!set ",
    b"!custom ",
    b"---\n",
    b"...\n",
    b"%YAML 1.2\n---\n",
    b"%TAG ! tag:x,2000:\n---\n",
    b"~",
    b"null",
    b".inf",
    b"-.inf",
    b".nan",
    b"0x1F",
    b"0o17",
    b"1e400",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"yes",
    b"2001-12-14t21:59:43.10-05:00",
    b"\xef\xbb\xbf",
    b"\xff",
];

#[test]
fn fuzz_yaml_or_json() {
    bytes_target("yaml_or_json", |rng, seeds| {
        let base = rng.pick(seeds);
        let donor = rng.pick(seeds);
        mutate_bytes(rng, base, donor, YAML_TOKENS)
    })
    .run(|body| {
        if let Ok(v) = parse_yaml_or_json(body) {
            serde_json::to_vec(&v).unwrap();
            return true;
        }
        false
    });
}

/// Quantity-like strings for capacity maps.
const QUANTITIES: &[&str] = &[
    "0",
    "1",
    "100m",
    "1.5",
    "2Gi",
    "1Ki",
    "1e3",
    "1E",
    "8Ei",
    "16Ei",
    "17Ei",
    "-1",
    "+1",
    ".5",
    "5.",
    "1e-3",
    "1e18",
    "1e308",
    "9223372036854775807",
    "170141183460469231731687303715884105727",
    "99999999999999999999999999999999999999999",
    "0.000000001m",
    "1n",
    "1u",
    "1k",
    "1M",
    "1G",
    "1T",
    "1P",
    "1Pi",
    "1m1",
    "e",
    "",
    "Gi",
    "1 Gi",
    "١",
];

const RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "pods",
    "ephemeral-storage",
    "hugepages-2Mi",
    "nvidia.com/gpu",
    "",
];

/// A string of a length around the limits (`MAX_NAME`, `MAX_TEXT`) or short.
fn random_text(rng: &mut Rng) -> String {
    let len = match rng.below(6) {
        0 => limits::MAX_NAME + rng.below(3) - 1,
        1 => limits::MAX_TEXT + rng.below(3) - 1,
        _ => rng.below(12),
    };
    let c = *rng.pick(&['a', 'é', '\u{0}', '"', '€']);
    std::iter::repeat_n(c, len).collect::<String>()
}

fn random_quantities(rng: &mut Rng) -> std::collections::HashMap<String, String> {
    let n = if rng.one_in(10) {
        limits::MAX_QUANTITIES + rng.below(3) - 1
    } else {
        rng.below(5)
    };
    (0..n)
        .map(|i| {
            let name = if i < RESOURCES.len() && !rng.one_in(8) {
                (*rng.pick(RESOURCES)).to_owned()
            } else {
                format!("example.com/r{i}")
            };
            let value = if rng.one_in(4) {
                let base = rng_quantity(rng);
                let bytes = mutate_bytes(rng, base.as_bytes(), b"", &[b"e", b".", b"i"]);
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                rng_quantity(rng).to_owned()
            };
            (name, value)
        })
        .collect()
}

fn rng_quantity(rng: &mut Rng) -> &'static str {
    QUANTITIES[rng.below(QUANTITIES.len())]
}

/// An agent message built field by field, with sizes and values around the limits.
fn random_endpoints(rng: &mut Rng) -> agent_message::Message {
    use flotilla_proto::v1::{
        EndpointPort, EndpointReport, EndpointSliceReport, ExportedService, ServiceEndpoints,
        ServicePortShape,
    };
    let opt = |rng: &mut Rng| (!rng.one_in(3)).then(|| rng.one_in(2));
    agent_message::Message::Endpoints(ServiceEndpoints {
        full: rng.one_in(2),
        exported: (0..rng.below(3)).map(|_| random_text(rng)).collect(),
        services: (0..rng.below(3))
            .map(|_| ExportedService {
                namespace: random_text(rng),
                name: random_text(rng),
                present: rng.one_in(2),
                headless: rng.one_in(2),
                ports: (0..rng.below(3))
                    .map(|_| ServicePortShape {
                        name: random_text(rng),
                        protocol: random_text(rng),
                        port: rng.next_u64() as i32,
                        app_protocol: random_text(rng),
                    })
                    .collect(),
                slices: (0..rng.below(3))
                    .map(|_| EndpointSliceReport {
                        name: random_text(rng),
                        address_type: random_text(rng),
                        ports: (0..rng.below(3))
                            .map(|_| EndpointPort {
                                name: random_text(rng),
                                protocol: random_text(rng),
                                port: (!rng.one_in(3)).then(|| rng.next_u64() as i32),
                                app_protocol: random_text(rng),
                            })
                            .collect(),
                        endpoints: (0..rng.below(4))
                            .map(|_| EndpointReport {
                                addresses: (0..rng.below(3)).map(|_| random_text(rng)).collect(),
                                ready: opt(rng),
                                serving: opt(rng),
                                terminating: opt(rng),
                                zone: random_text(rng),
                                hostname: random_text(rng),
                            })
                            .collect(),
                    })
                    .collect(),
                work_name: random_text(rng),
            })
            .collect(),
    })
}

fn random_agent_message(rng: &mut Rng) -> AgentMessage {
    if rng.one_in(3) {
        return AgentMessage {
            message: Some(random_endpoints(rng)),
        };
    }
    let message = if rng.one_in(2) {
        agent_message::Message::Heartbeat(Heartbeat {
            api_reachable: rng.one_in(2),
            message: random_text(rng),
            kubernetes_version: random_text(rng),
            api_enablements: (0..rng.below(4))
                .map(|_| ApiEnablement {
                    group_version: random_text(rng),
                    resources: (0..rng.below(3))
                        .map(|_| ApiResource {
                            name: random_text(rng),
                            kind: random_text(rng),
                        })
                        .collect(),
                })
                .collect(),
            api_enablements_included: rng.one_in(2),
            nodes_total: rng.next_u64() as u32,
            nodes_ready: rng.next_u64() as u32,
            allocatable: random_quantities(rng),
            allocated: random_quantities(rng),
            allocating: random_quantities(rng),
        })
    } else {
        agent_message::Message::Status(WorkStatus {
            work_name: random_text(rng),
            observed_generation: *rng.pick(&[0, 1, -1, i64::MAX, i64::MIN]),
            applied: rng.one_in(2),
            message: random_text(rng),
            manifests: (0..rng.below(4))
                .map(|_| ManifestStatus {
                    identifier: (!rng.one_in(4)).then(|| ManifestIdentifier {
                        ordinal: rng.next_u64() as u32,
                        group: random_text(rng),
                        version: random_text(rng),
                        kind: random_text(rng),
                        resource: random_text(rng),
                        namespace: random_text(rng),
                        name: random_text(rng),
                    }),
                    status_json: rng
                        .pick(&[&b""[..], b"{}", b"{\"replicas\":1}", b"[", b"null", b"\xff"])
                        .to_vec()
                        .into(),
                    health: rng.below(6) as i32 - 1,
                    applied: rng.one_in(2),
                    message: random_text(rng),
                })
                .collect(),
        })
    };
    AgentMessage {
        message: Some(message),
    }
}

const NOW: &str = "2026-01-01T00:00:00Z";
const LATER: &str = "2026-01-01T00:00:10Z";

#[test]
fn fuzz_agent_messages() {
    bytes_target("agent_messages", |rng, seeds| {
        if rng.one_in(3) {
            return random_agent_message(rng).encode_to_vec();
        }
        let base = rng.pick(seeds);
        let donor = rng.pick(seeds);
        mutate_proto(rng, base, donor, 8)
    })
    .run(|bytes| {
        let Ok(msg) = AgentMessage::decode(bytes.as_slice()) else {
            return false;
        };
        match msg.message {
            Some(agent_message::Message::Heartbeat(hb)) => {
                let refused = limits::check_heartbeat(&hb).is_err();
                let problem = limits::capacity_problem(&hb);
                if refused {
                    return false;
                }
                let first = status::cluster_status(None, &hb, NOW);
                let mut second = status::cluster_status(Some(&first), &hb, LATER);
                status::flag_capacity(&mut second, problem.as_deref(), LATER);
                status::flag_capacity(&mut second, None, LATER);
            }
            Some(agent_message::Message::Status(ws)) => {
                if limits::check_work_status(&ws).is_err() {
                    return false;
                }
                let first = status::work_status(None, &ws, NOW);
                status::work_status(Some(&first), &ws, LATER);
            }
            Some(agent_message::Message::Metrics(m)) => {
                // Kept or refused as a whole, never a panic.
                let book = flotilla_hub::agents::metrics_book::MetricsBook::new();
                if book.record("m1", m.reports).is_err() {
                    return false;
                }
            }
            Some(agent_message::Message::Endpoints(r)) => {
                // Bounded, then converted into the hub's copies without a panic.
                if flotilla_hub::agents::endpoints::check(&r).is_err() {
                    return false;
                }
                for s in &r.services {
                    let shape = flotilla_hub::agents::endpoints::shape_of(s);
                    for sl in flotilla_hub::agents::endpoints::slices_of(s) {
                        let v = flotilla_karmada::discovery::stored::stored_slice(
                            "m1",
                            &s.namespace,
                            &s.name,
                            &shape,
                            NOW,
                            &sl,
                        );
                        assert_eq!(flotilla_karmada::discovery::stored::slice_of(&v), sl);
                    }
                }
            }
            Some(agent_message::Message::Hello(_) | agent_message::Message::Ack(_)) | None => {}
        }
        true
    });
}
