//! Secrets encrypted at rest with `--encryption-key-file`: no plaintext in the data
//! directory, readable again after a restart with the key, and keys rotate.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use support::{HubProcess, stderr, stdout};

/// Whether any value the stopped hub's store holds (its objects, and every value and previous
/// value in its event log), as the store reads it back, contains `needle`. Values are stored
/// compressed, so the files are not searched directly.
fn contains(store_dir: &std::path::Path, needle: &[u8]) -> bool {
    use flotilla_store::{SledOptions, SledStore, Store};
    use futures::StreamExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SledStore::open(store_dir, SledOptions::default())
            .await
            .unwrap();
        let mut values: Vec<bytes::Bytes> = store
            .list("/", None, 0)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|kv| kv.value)
            .collect();
        let (from, to) = (store.compacted_revision(), store.current_revision());
        let mut log = store.watch("/", from).await.unwrap();
        let mut seen = from;
        while seen < to {
            let event = tokio::time::timeout(std::time::Duration::from_secs(10), log.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            seen = event.kv.mod_revision;
            values.push(event.kv.value);
            values.extend(event.prev);
        }
        drop(log);
        store.close().await.unwrap();
        values
            .iter()
            .any(|v| v.windows(needle.len()).any(|w| w == needle))
    })
}

#[test]
fn secrets_are_ciphertext_on_disk_and_keys_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    std::fs::write(&keys, "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let args = ["--encryption-key-file", keys.to_str().unwrap()];
    let mut hub = HubProcess::start_in_with(&dir, "127.0.0.1:0", &args);
    let o = hub.kubectl(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=correct-horse-battery",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hub.kubectl(&[
        "create",
        "configmap",
        "open",
        "--from-literal=note=plain-words-here",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    hub.terminate();
    let store = dir.join("store");
    // The check can fail: the ConfigMap's text is on disk in the clear.
    assert!(
        contains(&store, b"plain-words-here"),
        "the store files hold the data"
    );
    assert!(
        !contains(&store, b"correct-horse-battery"),
        "a Secret in plaintext on disk"
    );
    assert!(
        !contains(&store, b"Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5"),
        "a Secret's base64 on disk"
    );

    // Rotation: a new first key encrypts, the old one still decrypts.
    std::fs::write(
        &keys,
        "k2:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=\nk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    let mut hub = HubProcess::start_in_with(&dir, "127.0.0.1:0", &args);
    let o = hub.kubectl(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    assert_eq!(stdout(&o), "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5", "{}", stderr(&o));
    hub.terminate();
    // The restart re-encrypted every Secret with k2: k1 can go.
    std::fs::write(&keys, "k2:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=\n").unwrap();
    let hub = HubProcess::start_in_with(&dir, "127.0.0.1:0", &args);
    let o = hub.kubectl(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    assert_eq!(stdout(&o), "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5", "{}", stderr(&o));
}
