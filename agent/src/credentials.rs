//! Where the agent keeps its credential: files under the state directory, or a Secret in
//! the member when running inside it.

use std::path::{Path, PathBuf};

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::connect::ClientIdentity;

/// A stored credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The pinned hub CA, PEM.
    pub ca_pem: String,
    /// The cluster's certificate and key.
    pub identity: ClientIdentity,
}

/// Credential storage errors.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The member API failed.
    #[error("credential Secret: {0}")]
    Kube(#[from] kube::Error),
}

/// Where credentials live.
#[derive(Clone)]
pub enum CredentialStore {
    /// Files `ca.crt`, `tls.crt`, `tls.key` in a directory.
    Dir(PathBuf),
    /// A Secret in the member.
    Secret {
        /// The Secrets API of the agent's namespace.
        api: Box<Api<Secret>>,
        /// The Secret's name.
        name: String,
    },
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "directory {}", d.display()),
            Self::Secret { name, .. } => write!(f, "Secret {name}"),
        }
    }
}

/// The default state directory of `cluster`: `$XDG_STATE_HOME/flotilla/agents/<cluster>` or
/// `~/.local/state/flotilla/agents/<cluster>`.
pub fn default_state_dir(cluster: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".local/state")
        });
    base.join("flotilla/agents").join(cluster)
}

fn read_opt(path: &Path) -> Result<Option<String>, CredentialError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), CredentialError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CredentialError::Io {
        path: path.to_owned(),
        source,
    };
    // A temporary file of its own, created new (so `mode` applies: an existing file would keep
    // its mode), then renamed over the target and the directory synced.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

impl CredentialStore {
    /// Loads the credential, if one was stored.
    pub async fn load(&self) -> Result<Option<Credential>, CredentialError> {
        match self {
            Self::Dir(dir) => {
                let (Some(ca_pem), Some(cert_pem), Some(key_pem)) = (
                    read_opt(&dir.join("ca.crt"))?,
                    read_opt(&dir.join("tls.crt"))?,
                    read_opt(&dir.join("tls.key"))?,
                ) else {
                    return Ok(None);
                };
                Ok(Some(Credential {
                    ca_pem,
                    identity: ClientIdentity { cert_pem, key_pem },
                }))
            }
            Self::Secret { api, name } => {
                let Some(s) = api.get_opt(name).await? else {
                    return Ok(None);
                };
                let data = s.data.unwrap_or_default();
                let get = |k: &str| {
                    data.get(k)
                        .and_then(|b| String::from_utf8(b.0.clone()).ok())
                };
                match (get("ca.crt"), get("tls.crt"), get("tls.key")) {
                    (Some(ca_pem), Some(cert_pem), Some(key_pem)) => Ok(Some(Credential {
                        ca_pem,
                        identity: ClientIdentity { cert_pem, key_pem },
                    })),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Stores the credential.
    pub async fn save(&self, c: &Credential) -> Result<(), CredentialError> {
        match self {
            Self::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| CredentialError::Io {
                    path: dir.clone(),
                    source,
                })?;
                write(&dir.join("ca.crt"), &c.ca_pem, 0o600)?;
                write(&dir.join("tls.key"), &c.identity.key_pem, 0o600)?;
                write(&dir.join("tls.crt"), &c.identity.cert_pem, 0o600)?;
                Ok(())
            }
            Self::Secret { api, name } => {
                let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
                let body = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name},
                    "type": "kubernetes.io/tls",
                    "data": {"ca.crt": b64(&c.ca_pem), "tls.crt": b64(&c.identity.cert_pem), "tls.key": b64(&c.identity.key_pem)},
                });
                api.patch(
                    name,
                    &PatchParams::apply("flotilla-agent").force(),
                    &Patch::Apply(&body),
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Forgets the credential (after the hub revoked it).
    pub async fn clear(&self) -> Result<(), CredentialError> {
        match self {
            Self::Dir(dir) => {
                for f in ["tls.crt", "tls.key"] {
                    let p = dir.join(f);
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => return Err(CredentialError::Io { path: p, source }),
                    }
                }
                Ok(())
            }
            Self::Secret { api, name } => match api.delete(name, &Default::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directory_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = CredentialStore::Dir(dir.path().join("m1"));
        assert!(store.load().await?.is_none());
        let c = Credential {
            ca_pem: "ca".into(),
            identity: ClientIdentity {
                cert_pem: "crt".into(),
                key_pem: "key".into(),
            },
        };
        // A readable file left where a shared temporary name would be must not lend its mode
        // to the key.
        std::fs::create_dir_all(dir.path().join("m1"))?;
        std::fs::write(dir.path().join("m1/tls.tmp"), "stale")?;
        store.save(&c).await?;
        store.save(&c).await?;
        let back = store.load().await?.ok_or("missing")?;
        assert_eq!(back.identity.key_pem, "key");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("m1"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        use std::os::unix::fs::PermissionsExt;
        // Every file of the credential is readable by the agent's user alone.
        for f in ["ca.crt", "tls.crt", "tls.key"] {
            let mode = std::fs::metadata(dir.path().join("m1").join(f))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        store.clear().await?;
        assert!(store.load().await?.is_none());
        Ok(())
    }
}
