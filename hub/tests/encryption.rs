//! Secrets encrypted at rest with `--encryption-key-file`: no plaintext in the data
//! directory, readable again after a restart with the key, and keys rotate.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use support::{HubProcess, stderr, stdout};

fn contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            contains(&p, needle)
        } else {
            std::fs::read(&p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        }
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
