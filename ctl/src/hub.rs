//! A thin JSON client of the hub's Kubernetes API.

use std::path::Path;

use anyhow::{Context, Result};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

/// The hub's API.
#[derive(Clone)]
pub struct Hub {
    client: Client,
    server: String,
    ca_der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn req(
    method: http::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<http::Request<Vec<u8>>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .context("building a request")
}

impl Hub {
    /// Connects with `kubeconfig`, or the usual kubeconfig discovery when `None`.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Self> {
        let config = match kubeconfig {
            Some(p) => {
                let kc = Kubeconfig::read_from(p)
                    .with_context(|| format!("reading kubeconfig {}", p.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .with_context(|| format!("loading kubeconfig {}", p.display()))?
            }
            None => kube::Config::infer()
                .await
                .context("finding a kubeconfig for the hub (use --kubeconfig)")?,
        };
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let ca_der = config.root_cert.clone().unwrap_or_default();
        Ok(Self {
            client: Client::try_from(config).context("building the hub client")?,
            server,
            ca_der,
        })
    }

    /// The hub's address (`https://host:port`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The CA certificates the connection trusts (DER).
    pub fn ca_der(&self) -> &[Vec<u8>] {
        &self.ca_der
    }

    /// PUT a JSON object.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        let r = req(
            http::Method::PUT,
            path,
            "application/json",
            serde_json::to_vec(body)?,
        )?;
        self.client
            .request::<Value>(r)
            .await
            .with_context(|| format!("PUT {path}"))
    }

    /// GET; `None` on 404.
    pub async fn get(&self, path: &str) -> Result<Option<Value>> {
        match self
            .client
            .request::<Value>(req(http::Method::GET, path, "application/json", vec![])?)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("GET {path}")),
        }
    }

    /// Whether the object at `path` exists; `None` when the caller may not read it.
    pub async fn exists(&self, path: &str) -> Result<Option<bool>> {
        match self
            .client
            .request::<Value>(req(http::Method::GET, path, "application/json", vec![])?)
            .await
        {
            Ok(_) => Ok(Some(true)),
            Err(e) if is_status(&e, 404) => Ok(Some(false)),
            Err(e) if is_status(&e, 403) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("GET {path}")),
        }
    }

    /// GET with `Accept` set (for tables).
    pub async fn get_as(&self, path: &str, accept: &str) -> Result<Value> {
        let mut r = req(http::Method::GET, path, "application/json", vec![])?;
        r.headers_mut().insert(
            http::header::ACCEPT,
            accept.parse().context("accept header")?,
        );
        self.client
            .request::<Value>(r)
            .await
            .with_context(|| format!("GET {path}"))
    }

    /// POST a JSON object; `Ok(None)` when it already exists.
    pub async fn create(&self, path: &str, body: &Value) -> Result<Option<Value>> {
        let r = req(
            http::Method::POST,
            path,
            "application/json",
            serde_json::to_vec(body)?,
        )?;
        match self.client.request::<Value>(r).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_status(&e, 409) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("POST {path}")),
        }
    }

    /// JSON merge PATCH; `None` on 404, an error on a conflict (409).
    pub async fn merge_patch(&self, path: &str, body: &Value) -> Result<Option<Value>> {
        let r = req(
            http::Method::PATCH,
            path,
            "application/merge-patch+json",
            serde_json::to_vec(body)?,
        )?;
        match self.client.request::<Value>(r).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("PATCH {path}")),
        }
    }

    /// DELETE; `false` on 404.
    pub async fn delete(&self, path: &str) -> Result<bool> {
        match self
            .client
            .request::<Value>(req(http::Method::DELETE, path, "application/json", vec![])?)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("DELETE {path}")),
        }
    }

    /// Server-side apply with `field_manager`, forcing conflicts.
    pub async fn apply(&self, path: &str, body: &Value, field_manager: &str) -> Result<Value> {
        let url = format!("{path}?fieldManager={field_manager}&force=true");
        let r = req(
            http::Method::PATCH,
            &url,
            "application/apply-patch+yaml",
            serde_json::to_vec(body)?,
        )?;
        self.client
            .request::<Value>(r)
            .await
            .with_context(|| format!("applying {path}"))
    }
}

/// Path of a cluster.
pub fn cluster_path(name: &str) -> String {
    format!("/apis/cluster.karmada.io/v1alpha1/clusters/{name}")
}

/// Path of a Work in a cluster's execution namespace.
pub fn work_path(cluster: &str, work: &str) -> String {
    format!(
        "/apis/work.karmada.io/v1alpha1/namespaces/{}/works/{work}",
        flotilla_proto::execution_namespace(cluster)
    )
}
