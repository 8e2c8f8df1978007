//! `register cluster` and `unregister cluster`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use flotilla_proto::enrollment::{self, Token};
use serde_json::{Value, json};

use crate::hub::{Hub, cluster_path};

/// What `register cluster` was asked for.
#[derive(Debug, Clone, Default)]
pub struct RegisterOptions {
    /// Cluster name.
    pub name: String,
    /// `spec.region`.
    pub region: Option<String>,
    /// `spec.zones`.
    pub zones: Vec<String>,
    /// `spec.provider`.
    pub provider: Option<String>,
    /// Cluster labels.
    pub labels: BTreeMap<String, String>,
    /// Token lifetime.
    pub ttl: Duration,
}

/// The result of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Cluster name.
    pub cluster: String,
    /// Whether the Cluster was created now (false: it existed; a new token was issued).
    pub created: bool,
    /// The bootstrap token.
    pub token: String,
    /// When the token expires (RFC 3339).
    pub expiration: String,
    /// The hub's agent address.
    pub hub_address: String,
    /// The hub's CA hash.
    pub ca_hash: String,
}

/// Parses `90s`, `30m`, `24h`, `7d` (or plain seconds).
pub fn parse_ttl(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("invalid duration {s:?}: expected e.g. 30m, 24h, 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => bail!("invalid duration {s:?}: expected e.g. 30m, 24h, 7d"),
    };
    if secs == 0 {
        bail!("the token lifetime must be positive");
    }
    Ok(Duration::from_secs(secs))
}

/// Parses `k=v,k2=v2`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("invalid label {part:?}: expected key=value"))?;
        if k.is_empty() {
            bail!("invalid label {part:?}: empty key");
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            // Reject the tail of the byte range so every character is equally likely.
            if usize::from(*b) < 252 && out.len() < n {
                out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
            }
        }
    }
    out
}

/// A new random bootstrap token.
pub fn new_token() -> Token {
    Token {
        id: random_chars(6),
        secret: random_chars(16),
    }
}

/// The Cluster object for a registration.
pub fn cluster_object(o: &RegisterOptions) -> Value {
    let mut spec = json!({"syncMode": "Pull"});
    if let Some(r) = &o.region {
        spec["region"] = json!(r);
    }
    if !o.zones.is_empty() {
        spec["zones"] = json!(o.zones);
    }
    if let Some(p) = &o.provider {
        spec["provider"] = json!(p);
    }
    let mut meta = json!({"name": o.name});
    if !o.labels.is_empty() {
        meta["labels"] = json!(o.labels);
    }
    json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "metadata": meta, "spec": spec})
}

/// The Secret holding a token: only the hash of its secret part is stored.
pub fn token_secret(token: &Token, cluster: &str, expiration: &str) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token.secret_name(),
            "namespace": enrollment::NAMESPACE,
            "labels": {"flotilla.io/cluster": cluster},
        },
        "type": enrollment::TOKEN_SECRET_TYPE,
        "data": {
            enrollment::KEY_CLUSTER: b64(cluster),
            enrollment::KEY_SECRET_HASH: b64(&token.secret_hash()),
            enrollment::KEY_EXPIRATION: b64(expiration),
        },
    })
}

/// Registers the cluster (or keeps an existing Pull cluster) and issues a bootstrap token.
pub async fn register(hub: &Hub, o: &RegisterOptions) -> Result<Registration> {
    let info = hub
        .get(&format!("/api/v1/namespaces/{}/configmaps/{}", enrollment::NAMESPACE, enrollment::HUB_INFO_CONFIGMAP))
        .await?
        .context("the hub does not publish its agent address (ConfigMap flotilla-system/flotilla-hub-info is missing): is this a Flotilla hub?")?;
    let hub_address = info
        .pointer("/data/agentAddress")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let ca_hash = info
        .pointer("/data/caHash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let created = hub
        .create(
            "/apis/cluster.karmada.io/v1alpha1/clusters",
            &cluster_object(o),
        )
        .await?
        .is_some();
    if !created {
        let existing = hub
            .get(&cluster_path(&o.name))
            .await?
            .context("the cluster vanished while registering")?;
        if existing.pointer("/spec/syncMode").and_then(Value::as_str) != Some("Pull") {
            bail!(
                "cluster {} exists and is not a Pull cluster; choose another name",
                o.name
            );
        }
        // A new registration of the same cluster revokes the credentials of the previous one.
        revoke(hub, &o.name).await?;
    }
    let token = new_token();
    let ttl = jiff::SignedDuration::try_from(o.ttl).context("token lifetime")?;
    let expiration = jiff::Timestamp::now()
        .checked_add(ttl)
        .context("token lifetime too long")?
        .round(jiff::Unit::Second)?
        .to_string();
    hub.create(
        &format!("/api/v1/namespaces/{}/secrets", enrollment::NAMESPACE),
        &token_secret(&token, &o.name, &expiration),
    )
    .await?
    .context("a token with the same id exists; run the command again")?;
    Ok(Registration {
        cluster: o.name.clone(),
        created,
        token: token.to_string(),
        expiration,
        hub_address,
        ca_hash,
    })
}

/// Revokes every agent certificate of `name` by raising its credential generation (over the
/// version read, retried on a conflict); the hub closes the agent's stream at once. Returns
/// the new generation, or `None` if the cluster is not registered.
pub async fn revoke(hub: &Hub, name: &str) -> Result<Option<u64>> {
    use flotilla_proto::enrollment::{CREDENTIAL_GENERATION_ANNOTATION, credential_generation};
    for _ in 0..5 {
        let Some(c) = hub.get(&cluster_path(name)).await? else {
            return Ok(None);
        };
        let current = credential_generation(
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get(CREDENTIAL_GENERATION_ANNOTATION))
                .and_then(Value::as_str),
        );
        let next = current.saturating_add(1);
        let patch = json!({"metadata": {
            "resourceVersion": c.pointer("/metadata/resourceVersion"),
            "annotations": {CREDENTIAL_GENERATION_ANNOTATION: next.to_string()},
        }});
        match hub.merge_patch(&cluster_path(name), &patch).await {
            Ok(Some(_)) => return Ok(Some(next)),
            Ok(None) => return Ok(None),
            Err(e)
                if e.chain()
                    .any(|c| c.to_string().contains("the object has been modified")) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    bail!("cluster {name} kept changing while revoking its credentials; run the command again")
}

/// Deletes the cluster and its unused tokens; the hub disconnects its agent.
pub async fn unregister(hub: &Hub, name: &str) -> Result<bool> {
    let existed = hub.delete(&cluster_path(name)).await?;
    let list = hub
        .get(&format!(
            "/api/v1/namespaces/{}/secrets?labelSelector=flotilla.io/cluster%3D{name}",
            enrollment::NAMESPACE
        ))
        .await?;
    for s in list
        .as_ref()
        .and_then(|l| l["items"].as_array())
        .into_iter()
        .flatten()
    {
        if let Some(n) = s.pointer("/metadata/name").and_then(Value::as_str) {
            hub.delete(&format!(
                "/api/v1/namespaces/{}/secrets/{n}",
                enrollment::NAMESPACE
            ))
            .await?;
        }
    }
    Ok(existed)
}

/// The agent command line for a registration.
pub fn agent_command(r: &Registration) -> String {
    format!(
        "flotilla-agent --hub {} --cluster-name {} --token {} --ca-hash {} --kubeconfig <member-kubeconfig>",
        r.hub_address, r.cluster, r.token, r.ca_hash
    )
}

/// The Helm command for a registration.
pub fn helm_command(r: &Registration) -> String {
    format!(
        "helm install flotilla-agent-{c} deploy/charts/flotilla-agent --namespace flotilla-system --create-namespace --set clusterName={c} --set hub.address={} --set hub.caHash={} --set token={}",
        r.hub_address,
        r.ca_hash,
        r.token,
        c = r.cluster
    )
}

/// The registration as JSON (for `-o json`).
pub fn to_json(r: &Registration) -> Value {
    json!({
        "cluster": r.cluster,
        "created": r.created,
        "token": r.token,
        "expiration": r.expiration,
        "hubAddress": r.hub_address,
        "caHash": r.ca_hash,
        "agentCommand": agent_command(r),
        "helmCommand": helm_command(r),
    })
}

/// The registration for people.
pub fn to_text(r: &Registration) -> String {
    let what = if r.created {
        "registered"
    } else {
        "already registered; issued a new token"
    };
    format!(
        "Cluster {c} {what} (syncMode Pull).\n\nBootstrap token: {t}\n  single use, expires {e}\nHub agent address: {a}\nHub CA hash: {h}\n\nRun the agent next to the cluster:\n  {cmd}\n\nOr install it into the cluster:\n  {helm}\n",
        c = r.cluster,
        t = r.token,
        e = r.expiration,
        a = r.hub_address,
        h = r.ca_hash,
        cmd = agent_command(r),
        helm = helm_command(r),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        let cases = [
            ("24h", Some(86400)),
            ("30m", Some(1800)),
            ("90s", Some(90)),
            ("7d", Some(604800)),
            ("15", Some(15)),
            ("0h", None),
            ("h", None),
            ("1w", None),
            ("-1h", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_ttl(s).ok().map(|d| d.as_secs()), want, "{s}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(parse_labels("a=1, b=2").ok().map(|m| m.len()), Some(2));
        assert_eq!(parse_labels("").ok().map(|m| m.len()), Some(0));
        assert_eq!(
            parse_labels("a=")
                .ok()
                .and_then(|m| m.get("a").cloned())
                .as_deref(),
            Some("")
        );
        assert!(parse_labels("a").is_err());
        assert!(parse_labels("=1").is_err());
    }

    #[test]
    fn tokens_are_valid_and_distinct() {
        let a = new_token();
        let b = new_token();
        assert!(Token::parse(&a.to_string()).is_some());
        assert_ne!(a, b);
    }

    #[test]
    fn objects() {
        let o = RegisterOptions {
            name: "m1".into(),
            region: Some("eu".into()),
            zones: vec!["eu-1a".into()],
            provider: None,
            labels: [("env".to_owned(), "prod".to_owned())].into(),
            ttl: Duration::from_secs(60),
        };
        let c = cluster_object(&o);
        assert_eq!(c["spec"]["syncMode"], "Pull");
        assert_eq!(c["spec"]["zones"][0], "eu-1a");
        assert!(c["spec"].get("provider").is_none());
        assert_eq!(c["metadata"]["labels"]["env"], "prod");
        let t = new_token();
        let s = token_secret(&t, "m1", "2030-01-01T00:00:00Z");
        let text = s.to_string();
        assert!(
            !text.contains(&t.secret),
            "the secret itself is never stored"
        );
        assert_eq!(s["type"], enrollment::TOKEN_SECRET_TYPE);
    }
}
