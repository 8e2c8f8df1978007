//! On-disk encoding of the sled backend.
//!
//! Every record starts with a format version byte so that later formats can be added while
//! old data stays readable: a decoder matches on the byte and refuses versions it does not
//! know (data written by a newer release) instead of misreading them. All integers are
//! big-endian so that keys made of revisions sort numerically.
//!
//! Trees and their records, format version 1:
//!
//! - `objects`: key = the UTF-8 store key; value =
//!   `[1][create_revision: u64][mod_revision: u64][value bytes...]`.
//! - `events`: key = the event's revision as `u64`; value =
//!   `[1][kind: u8][create_revision: u64][key_len: u32][key][value_len: u32][value]`
//!   `[has_prev: u8]` then, when `has_prev` is 1, `[prev_len: u32][prev]`.
//!   `kind` is 1 created, 2 updated, 3 deleted; the event's `mod_revision` is its log key.
//! - `meta`: `revision` = last written revision (`u64`), `compacted` = compacted revision
//!   (`u64`), `format` = the single byte format version the data was first written with.

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, StoreError};

/// The format version written by this release.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Meta key of the last written revision.
pub(crate) const META_REVISION: &[u8] = b"revision";
/// Meta key of the compacted revision.
pub(crate) const META_COMPACTED: &[u8] = b"compacted";
/// Meta key of the format version.
pub(crate) const META_FORMAT: &[u8] = b"format";

const OBJECT_HEADER: usize = 1 + 8 + 8;

/// A decoded `objects` record, without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRecord {
    pub(crate) create_revision: u64,
    pub(crate) mod_revision: u64,
    pub(crate) value: Bytes,
}

impl ObjectRecord {
    /// Pairs the record with its key.
    pub(crate) fn into_kv(self, key: String) -> KeyValue {
        KeyValue {
            key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// Encodes an `objects` record.
pub(crate) fn encode_object(create_revision: u64, mod_revision: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJECT_HEADER + value.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&create_revision.to_be_bytes());
    out.extend_from_slice(&mod_revision.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Decodes an `objects` record.
pub(crate) fn decode_object(raw: &[u8]) -> Result<ObjectRecord, StoreError> {
    let mut r = Reader::new(raw, "object");
    r.version()?;
    let create_revision = r.u64()?;
    let mod_revision = r.u64()?;
    let value = Bytes::copy_from_slice(r.rest());
    Ok(ObjectRecord {
        create_revision,
        mod_revision,
        value,
    })
}

/// Encodes an `events` record; the revision is the record's key.
pub(crate) fn encode_event(event: &Event) -> Vec<u8> {
    let key = event.kv.key.as_bytes();
    let prev_len = event.prev.as_ref().map_or(0, |p| 4 + p.len());
    let mut out =
        Vec::with_capacity(1 + 1 + 8 + 4 + key.len() + 4 + event.kv.value.len() + 1 + prev_len);
    out.push(FORMAT_VERSION);
    out.push(match event.kind {
        EventKind::Created => 1,
        EventKind::Updated => 2,
        EventKind::Deleted => 3,
    });
    out.extend_from_slice(&event.kv.create_revision.to_be_bytes());
    put_bytes(&mut out, key);
    put_bytes(&mut out, &event.kv.value);
    match &event.prev {
        Some(prev) => {
            out.push(1);
            put_bytes(&mut out, prev);
        }
        None => out.push(0),
    }
    out
}

/// Decodes an `events` record stored under `revision`.
pub(crate) fn decode_event(revision: u64, raw: &[u8]) -> Result<Event, StoreError> {
    let mut r = Reader::new(raw, "event");
    r.version()?;
    let kind = match r.u8()? {
        1 => EventKind::Created,
        2 => EventKind::Updated,
        3 => EventKind::Deleted,
        other => return Err(corrupt("event", &format!("unknown kind {other}"))),
    };
    let create_revision = r.u64()?;
    let key =
        String::from_utf8(r.bytes()?.to_vec()).map_err(|_| corrupt("event", "key is not UTF-8"))?;
    let value = Bytes::copy_from_slice(r.bytes()?);
    let prev = match r.u8()? {
        0 => None,
        1 => Some(Bytes::copy_from_slice(r.bytes()?)),
        other => return Err(corrupt("event", &format!("bad prev flag {other}"))),
    };
    if !r.rest().is_empty() {
        return Err(corrupt("event", "trailing bytes"));
    }
    Ok(Event {
        kind,
        kv: KeyValue {
            key,
            value,
            create_revision,
            mod_revision: revision,
        },
        prev,
    })
}

/// Reads only the key of an `events` record, so watches can filter without copying values.
pub(crate) fn event_key(raw: &[u8]) -> Result<&[u8], StoreError> {
    let mut r = Reader::new(raw, "event");
    r.version()?;
    r.take(1 + 8)?;
    r.bytes()
}

/// Encodes a revision as an `events` key or `meta` value.
pub(crate) fn encode_revision(revision: u64) -> [u8; 8] {
    revision.to_be_bytes()
}

/// Decodes a revision written by [`encode_revision`].
pub(crate) fn decode_revision(raw: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = raw
        .try_into()
        .map_err(|_| corrupt("revision", &format!("{} bytes, want 8", raw.len())))?;
    Ok(u64::from_be_bytes(arr))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Keys and values are far below 4 GiB; sled could not hold larger ones anyway.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

fn corrupt(what: &str, why: &str) -> StoreError {
    StoreError::Backend(format!("corrupt {what} record: {why}"))
}

/// A bounds-checked cursor over a record.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(corrupt(self.what, "truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn version(&mut self) -> Result<(), StoreError> {
        match self.u8()? {
            FORMAT_VERSION => Ok(()),
            v => Err(StoreError::Backend(format!(
                "{} record has format version {v}; this release reads version {FORMAT_VERSION}",
                self.what
            ))),
        }
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        decode_revision(self.take(8)?)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| corrupt(self.what, "length"))?;
        self.take(u32::from_be_bytes(len) as usize)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, prev: Option<&str>) -> Event {
        Event {
            kind,
            kv: KeyValue {
                key: "/core/configmaps/default/a".into(),
                value: Bytes::from_static(b"{\"x\":1}"),
                create_revision: 3,
                mod_revision: 9,
            },
            prev: prev.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        }
    }

    #[test]
    fn objects_round_trip() {
        for value in [&b""[..], b"x", b"{\"a\":[1,2,3]}"] {
            let raw = encode_object(7, 12, value);
            let rec = decode_object(&raw).expect("decodes");
            assert_eq!((rec.create_revision, rec.mod_revision), (7, 12));
            assert_eq!(&rec.value[..], value);
        }
    }

    #[test]
    fn events_round_trip() {
        for ev in [
            event(EventKind::Created, None),
            event(EventKind::Updated, Some("old")),
            event(EventKind::Deleted, Some("")),
        ] {
            let raw = encode_event(&ev);
            assert_eq!(decode_event(9, &raw).expect("decodes"), ev);
            assert_eq!(event_key(&raw).expect("key"), ev.kv.key.as_bytes());
        }
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let good = encode_event(&event(EventKind::Updated, Some("old")));
        let mut newer = good.clone();
        newer[0] = 2;
        let mut bad_kind = good.clone();
        bad_kind[1] = 9;
        let mut trailing = good.clone();
        trailing.push(0);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("newer format", newer),
            ("unknown kind", bad_kind),
            ("trailing bytes", trailing),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("huge length", {
                let mut v = good[..10].to_vec();
                v.extend_from_slice(&u32::MAX.to_be_bytes());
                v
            }),
        ];
        for (name, raw) in cases {
            assert!(decode_event(9, &raw).is_err(), "{name}");
        }
        assert!(decode_object(&[1, 0, 0]).is_err());
        assert!(decode_object(&[2; 20]).is_err());
        assert!(decode_revision(&[0; 7]).is_err());
    }
}
