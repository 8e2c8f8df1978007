//! The image overrider: rewrites the registry, repository or tag of container images.

use serde_json::Value;

use super::{OpError, containers_pointer};
use crate::types::ImageOverrider;

/// A container image split as `[registry/]repository[:tag|@digest]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub registry: String,
    pub repository: String,
    /// Tag or digest (`sha256:...`), without the `:` or `@` separator.
    pub tag_or_digest: String,
}

/// Whether a string looks like a content digest (`algorithm:hex`, at least 32 hex digits).
fn is_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.starts_with(|c: char| c.is_ascii_alphabetic())
        && alg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'));
    alg_ok && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

impl ImageRef {
    /// Parses an image reference. The first path segment is a registry only if it contains `.`
    /// or `:` or is `localhost`, as Docker decides it (no `docker.io` defaulting).
    pub fn parse(image: &str) -> Self {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (image, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path)
            }
            _ => (String::new(), rest),
        };
        // A tag follows the last ':' of the last path segment.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (
                path[..last_slash + i].to_string(),
                path[last_slash + i + 1..].to_string(),
            ),
            None => (path.to_string(), String::new()),
        };
        ImageRef {
            registry,
            repository,
            // A digest wins over a tag, as the runtime pulls by digest.
            tag_or_digest: digest.unwrap_or(tag),
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.registry.is_empty() {
            parts.push(self.registry.as_str());
        }
        if !self.repository.is_empty() {
            parts.push(self.repository.as_str());
        }
        f.write_str(&parts.join("/"))?;
        if !self.tag_or_digest.is_empty() {
            let sep = if is_digest(&self.tag_or_digest) {
                '@'
            } else {
                ':'
            };
            write!(f, "{sep}{}", self.tag_or_digest)?;
        }
        Ok(())
    }
}

/// Rewrites one image string by the overrider's component and operator.
pub(crate) fn override_image(image: &str, o: &ImageOverrider) -> Result<String, String> {
    let mut r = ImageRef::parse(image);
    let slot = match o.component.as_str() {
        "Registry" => &mut r.registry,
        "Repository" => &mut r.repository,
        "Tag" => &mut r.tag_or_digest,
        other => return Err(format!("unknown component {other:?}")),
    };
    match o.operator.as_str() {
        "add" => slot.push_str(&o.value),
        "replace" => *slot = o.value.clone(),
        "remove" => slot.clear(),
        other => return Err(format!("unknown operator {other:?}")),
    }
    Ok(r.to_string())
}

/// Applies one image overrider: to the image at the predicate path, or without a predicate to
/// every container (not init containers) of the six workload kinds Karmada knows.
pub(crate) fn apply_image_overrider(obj: &mut Value, o: &ImageOverrider) -> Result<(), OpError> {
    let err = |path: &str, reason: String| OpError::new("imageOverrider", path, reason);
    if let Some(pred) = &o.predicate {
        if !pred.path.starts_with('/') {
            return Err(err(
                &pred.path,
                "predicate path must be a JSON pointer starting with '/'".into(),
            ));
        }
        let Some(slot) = obj.pointer_mut(&pred.path) else {
            return Err(err(&pred.path, "image not found".into()));
        };
        let Some(image) = slot.as_str() else {
            return Err(err(&pred.path, "image is not a string".into()));
        };
        *slot = Value::String(override_image(image, o).map_err(|e| err(&pred.path, e))?);
        return Ok(());
    }
    let Some(ptr) = containers_pointer(obj) else {
        return Ok(());
    };
    let Some(containers) = obj.pointer_mut(ptr).and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, c) in containers.iter_mut().enumerate() {
        let Some(slot) = c.get_mut("image") else {
            continue;
        };
        let Some(image) = slot.as_str() else {
            continue;
        };
        let new = override_image(image, o).map_err(|e| err(&format!("{ptr}/{i}/image"), e))?;
        *slot = Value::String(new);
    }
    Ok(())
}
