//! Encryption at rest: a [`Store`] wrapper that encrypts the values of chosen key prefixes
//! (the hub's Secrets) with AES-256-GCM, as kube-apiserver's `aesgcm` provider does.
//!
//! A stored value is `k8s:enc:aesgcm:v1:<key name>:` followed by a 12-byte random nonce and
//! the ciphertext; the storage key is the additional authenticated data, so a value cannot be
//! moved to another key. Values without the prefix are read as they are (written before
//! encryption was enabled). The first key encrypts; every key decrypts, which is the rotation
//! path: put a new key first, restart (the hub rewrites the values [`EncryptedStore::stale_keys`]
//! names before it serves), then remove the old key.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{BoxFuture, Event, EventStream, KeyValue, ListPage, Render, Store, StoreError};

/// The prefix of encrypted values.
const MAGIC: &[u8] = b"k8s:enc:aesgcm:v1:";

/// A named AES-256 key.
pub struct NamedKey {
    name: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The keys in force: the first encrypts, all decrypt.
#[derive(Debug)]
pub struct EncryptionKeys {
    keys: Vec<NamedKey>,
}

impl EncryptionKeys {
    /// Parses a key file: one key per line, `name:base64 of 32 bytes`; blank lines and `#`
    /// comments skipped. The first key encrypts. Errors never include key material.
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine;
        let mut keys: Vec<NamedKey> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let (name, b64) = line
                .split_once(':')
                .ok_or_else(|| format!("line {n}: expected NAME:BASE64KEY"))?;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "line {n}: key names use letters, digits, '-' and '_'"
                ));
            }
            if keys.iter().any(|k| k.name == name) {
                return Err(format!("line {n}: key {name} is listed twice"));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| format!("line {n}: key {name} is not base64"))?;
            if bytes.len() != 32 {
                return Err(format!(
                    "line {n}: key {name} must be 32 bytes (it is {}); make one with `head -c 32 /dev/urandom | base64`",
                    bytes.len()
                ));
            }
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| format!("line {n}: key {name} is unusable"))?;
            keys.push(NamedKey {
                name: name.to_owned(),
                key: LessSafeKey::new(unbound),
            });
        }
        if keys.is_empty() {
            return Err("the key file holds no key".into());
        }
        Ok(Self { keys })
    }

    /// The name of the key that encrypts.
    pub fn primary(&self) -> &str {
        self.keys.first().map_or("", |k| k.name.as_str())
    }

    fn encrypt(&self, key: &str, plain: &[u8]) -> Result<Bytes, StoreError> {
        let k = self
            .keys
            .first()
            .ok_or_else(|| StoreError::Backend("no encryption key".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Backend("no random nonce".into()))?;
        let mut buf = plain.to_vec();
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StoreError::Backend("encryption failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + k.name.len() + 1 + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(k.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(Bytes::from(out))
    }

    fn decrypt(&self, key: &str, stored: &Bytes) -> Result<Bytes, StoreError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(stored.clone());
        };
        let colon = rest
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| StoreError::Backend(format!("{key}: malformed encrypted value")))?;
        let name = String::from_utf8_lossy(&rest[..colon]);
        let k = self.keys.iter().find(|k| k.name == name).ok_or_else(|| {
            StoreError::Backend(format!(
                "{key} is encrypted with key {name:?}, which the key file no longer holds"
            ))
        })?;
        let body = &rest[colon + 1..];
        if body.len() < NONCE_LEN {
            return Err(StoreError::Backend(format!(
                "{key}: truncated encrypted value"
            )));
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| StoreError::Backend(format!("{key}: bad nonce")))?;
        let mut buf = sealed.to_vec();
        let plain = k
            .key
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut buf)
            .map_err(|_| {
                StoreError::Backend(format!("{key}: the encrypted value does not authenticate"))
            })?;
        Ok(Bytes::copy_from_slice(plain))
    }
}

/// A store whose values under `prefixes` are encrypted by `keys`.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    keys: Arc<EncryptionKeys>,
    prefixes: Arc<Vec<String>>,
}

impl std::fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl EncryptedStore {
    /// Wraps `inner`, encrypting values of keys that start with one of `prefixes`.
    pub fn new(inner: Arc<dyn Store>, keys: EncryptionKeys, prefixes: Vec<String>) -> Self {
        Self {
            inner,
            keys: Arc::new(keys),
            prefixes: Arc::new(prefixes),
        }
    }

    /// Keys under the prefixes whose stored value is not encrypted with the first key (written
    /// before encryption was enabled, or with an older key): rewrite them to finish a rotation.
    pub async fn stale_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut want = MAGIC.to_vec();
        want.extend_from_slice(self.keys.primary().as_bytes());
        want.push(b':');
        let mut out = Vec::new();
        for prefix in self.prefixes.iter() {
            let mut after: Option<String> = None;
            loop {
                let page = self.inner.list(prefix, after.as_deref(), 1000).await?;
                for kv in &page.items {
                    if !kv.value.starts_with(&want) {
                        out.push(kv.key.clone());
                    }
                }
                match page.continue_after {
                    Some(k) => after = Some(k),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    fn covered(prefixes: &[String], key: &str) -> bool {
        prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn open_kv(&self, mut kv: KeyValue) -> Result<KeyValue, StoreError> {
        if Self::covered(&self.prefixes, &kv.key) {
            kv.value = self.keys.decrypt(&kv.key, &kv.value)?;
        }
        Ok(kv)
    }

    fn seal(&self, key: &str, render: Render) -> Render {
        if !Self::covered(&self.prefixes, key) {
            return render;
        }
        let keys = self.keys.clone();
        let key = key.to_owned();
        Box::new(move |rev| match keys.encrypt(&key, &render(rev)) {
            Ok(b) => b,
            // Sealing cannot fail with a valid key and the system's random source; if it
            // ever does, nothing readable is stored and reads report the value as malformed.
            Err(e) => {
                tracing::error!(key = %key, error = %e, "encrypting a value failed");
                Bytes::from_static(MAGIC)
            }
        })
    }
}

impl Store for EncryptedStore {
    fn current_revision(&self) -> u64 {
        self.inner.current_revision()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        Box::pin(async move {
            match self.inner.get(key).await? {
                Some(kv) => Ok(Some(self.open_kv(kv)?)),
                None => Ok(None),
            }
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        continue_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        Box::pin(async move {
            let mut page = self.inner.list(prefix, continue_after, limit).await?;
            page.items = page
                .items
                .into_iter()
                .map(|kv| self.open_kv(kv))
                .collect::<Result<_, _>>()?;
            Ok(page)
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        render: Render,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let kv = self.inner.create(key, self.seal(key, render)).await?;
            self.open_kv(kv)
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        render: Render,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let kv = self
                .inner
                .update(key, expected, self.seal(key, render))
                .await?;
            self.open_kv(kv)
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let kv = self.inner.delete(key, expected).await?;
            self.open_kv(kv)
        })
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after_revision: u64,
    ) -> BoxFuture<'a, Result<EventStream, StoreError>> {
        Box::pin(async move {
            let stream = self.inner.watch(prefix, after_revision).await?;
            let keys = self.keys.clone();
            let prefixes = self.prefixes.clone();
            let opened = stream.map(move |ev| {
                let mut ev: Event = ev?;
                if Self::covered(&prefixes, &ev.kv.key) {
                    ev.kv.value = keys.decrypt(&ev.kv.key, &ev.kv.value)?;
                    if let Some(p) = &ev.prev {
                        ev.prev = Some(keys.decrypt(&ev.kv.key, p)?);
                    }
                }
                Ok(ev)
            });
            Ok(Box::pin(opened) as EventStream)
        })
    }

    fn compacted_revision(&self) -> u64 {
        self.inner.compacted_revision()
    }

    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.compact(revision)
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::StoreFactory;
    use crate::{SledOptions, SledStore};

    const KEY_A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "b:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    /// Every value encrypted: the conformance suite sees a plain store.
    struct Factory {
        dir: tempfile::TempDir,
    }

    impl StoreFactory for Factory {
        type Store = EncryptedStore;
        fn open(&self) -> BoxFuture<'_, Result<Self::Store, StoreError>> {
            Box::pin(async move {
                let inner = SledStore::open(self.dir.path(), SledOptions::default()).await?;
                let keys = EncryptionKeys::parse(KEY_A).map_err(StoreError::Backend)?;
                Ok(EncryptedStore::new(Arc::new(inner), keys, vec!["/".into()]))
            })
        }
    }

    crate::conformance_tests!(Factory {
        dir: tempfile::tempdir().expect("dir")
    });

    #[tokio::test]
    async fn values_are_ciphertext_on_disk_and_keys_rotate() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Backend(e.to_string()))?;
        let inner: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), SledOptions::default()).await?);
        // Written before encryption: read as it is.
        inner
            .create(
                "/core/secrets/ns/old",
                Box::new(|_| Bytes::from_static(b"plain")),
            )
            .await?;
        let keys = |t: &str| EncryptionKeys::parse(t).map_err(StoreError::Backend);
        let secrets = vec!["/core/secrets/".to_owned()];
        let s = EncryptedStore::new(inner.clone(), keys(KEY_A)?, secrets.clone());
        s.create(
            "/core/secrets/ns/a",
            Box::new(|_| Bytes::from_static(b"hunter2")),
        )
        .await?;
        s.create(
            "/core/configmaps/ns/c",
            Box::new(|_| Bytes::from_static(b"open")),
        )
        .await?;
        let raw = inner.get("/core/secrets/ns/a").await?.map(|kv| kv.value);
        let raw = raw.unwrap_or_default();
        assert!(raw.starts_with(b"k8s:enc:aesgcm:v1:a:"));
        assert!(
            !raw.windows(7).any(|w| w == b"hunter2"),
            "plaintext on disk"
        );
        assert_eq!(
            inner.get("/core/configmaps/ns/c").await?.map(|kv| kv.value),
            Some(Bytes::from_static(b"open")),
            "other prefixes are not encrypted"
        );
        assert_eq!(
            s.get("/core/secrets/ns/a").await?.map(|kv| kv.value),
            Some(Bytes::from_static(b"hunter2"))
        );
        assert_eq!(
            s.get("/core/secrets/ns/old").await?.map(|kv| kv.value),
            Some(Bytes::from_static(b"plain"))
        );
        // A value moved to another key does not authenticate.
        inner
            .create("/core/secrets/ns/moved", Box::new(move |_| raw.clone()))
            .await?;
        assert!(s.get("/core/secrets/ns/moved").await.is_err());
        // Rotation: b encrypts, a still decrypts; without a, a's values are unreadable.
        let rotated = EncryptedStore::new(
            inner.clone(),
            keys(&format!("{KEY_B}\n{KEY_A}"))?,
            secrets.clone(),
        );
        assert_eq!(
            rotated.get("/core/secrets/ns/a").await?.map(|kv| kv.value),
            Some(Bytes::from_static(b"hunter2"))
        );
        rotated
            .update(
                "/core/secrets/ns/a",
                None,
                Box::new(|_| Bytes::from_static(b"hunter2")),
            )
            .await?;
        let raw = inner
            .get("/core/secrets/ns/a")
            .await?
            .map(|kv| kv.value)
            .unwrap_or_default();
        assert!(raw.starts_with(b"k8s:enc:aesgcm:v1:b:"));
        assert_eq!(
            rotated.stale_keys().await?,
            vec![
                "/core/secrets/ns/moved".to_owned(),
                "/core/secrets/ns/old".to_owned()
            ],
            "the values not under the first key"
        );
        let only_b = EncryptedStore::new(inner.clone(), keys(KEY_B)?, secrets);
        assert!(only_b.get("/core/secrets/ns/a").await.is_ok());
        Ok(())
    }

    #[test]
    fn key_files_are_checked_without_showing_keys() {
        for (text, why) in [
            ("", "no key"),
            ("a", "NAME:BASE64KEY"),
            ("a:!!!", "not base64"),
            ("a:AAAA", "32 bytes"),
            (&format!("{KEY_A}\n{KEY_A}"), "twice"),
            ("a b:AAAA", "key names"),
        ] {
            let e = EncryptionKeys::parse(text).expect_err(text);
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("AAECAwQF"), "{e}");
        }
        assert_eq!(
            EncryptionKeys::parse(&format!("# keys\n{KEY_B}\n{KEY_A}\n"))
                .map(|k| k.primary().to_owned()),
            Ok("b".to_owned())
        );
    }
}
