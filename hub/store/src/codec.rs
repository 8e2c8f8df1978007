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
//!   (`u64`), `format` = the newest record format version the store holds.
//!
//! Format version 2 is version 1 with each value (an object's value, an event's value and
//! previous value) preceded by its packing, a byte: 0 as it is, 1 a zstd frame that records
//! its content size. Values of at least [`PACK_MIN`] bytes are packed when that makes them
//! smaller (JSON objects shrink three to five times; encrypted values stay as they are):
//!
//! - `objects`: `[2][create_revision: u64][mod_revision: u64][packing: u8][value bytes...]`.
//! - `events`: `[2][kind: u8][create_revision: u64][key_len: u32][key][packing: u8]`
//!   `[value_len: u32][value][has_prev: u8]` then, when `has_prev` is 1,
//!   `[packing: u8][prev_len: u32][prev]`.
//!
//! This release writes version 2 and reads both: a store written by an earlier release opens
//! and keeps its version 1 records until they are rewritten, and its `format` becomes 2, so an
//! earlier release refuses to open it instead of misreading the new records.

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, StoreError};

/// The format version written by this release.
pub(crate) const FORMAT_VERSION: u8 = 2;

/// The first format version, still read.
pub(crate) const FORMAT_V1: u8 = 1;

/// Values shorter than this are stored as they are.
pub(crate) const PACK_MIN: usize = 256;

/// zstd's level: its fastest standard level, about 300 MB/s on one core of the reference
/// machine, which keeps packing a small part of a group commit's time.
const ZSTD_LEVEL: i32 = 1;

/// The largest value a packed record may unpack to; a larger content size is corruption.
const UNPACKED_MAX: u64 = 1 << 30;

/// A value's packing byte.
const PACKED_RAW: u8 = 0;
const PACKED_ZSTD: u8 = 1;

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

/// A value as it is stored: its packing byte and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    packing: u8,
    bytes: Vec<u8>,
}

impl Packed {
    /// Packs `value` when it is long enough and packing makes it smaller.
    pub(crate) fn new(value: &[u8]) -> Self {
        if value.len() >= PACK_MIN
            && let Ok(bytes) = zstd::bulk::compress(value, ZSTD_LEVEL)
            && bytes.len() < value.len()
        {
            return Self {
                packing: PACKED_ZSTD,
                bytes,
            };
        }
        Self {
            packing: PACKED_RAW,
            bytes: value.to_vec(),
        }
    }

    /// The stored length.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// The value of packed bytes.
fn unpack(what: &str, packing: u8, bytes: &[u8]) -> Result<Bytes, StoreError> {
    match packing {
        PACKED_RAW => Ok(Bytes::copy_from_slice(bytes)),
        PACKED_ZSTD => {
            let size = zstd::zstd_safe::get_frame_content_size(bytes)
                .ok()
                .flatten()
                .ok_or_else(|| corrupt(what, "zstd frame without a content size"))?;
            if size > UNPACKED_MAX {
                return Err(corrupt(what, &format!("unpacks to {size} bytes")));
            }
            // `size` is at most UNPACKED_MAX, so it fits in usize.
            let value = zstd::bulk::decompress(bytes, size as usize)
                .map_err(|e| corrupt(what, &format!("zstd: {e}")))?;
            if value.len() as u64 != size {
                return Err(corrupt(what, "zstd frame shorter than its content size"));
            }
            Ok(Bytes::from(value))
        }
        other => Err(corrupt(what, &format!("unknown packing {other}"))),
    }
}

/// Encodes an `objects` record.
pub(crate) fn encode_object(create_revision: u64, mod_revision: u64, value: &Packed) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJECT_HEADER + 1 + value.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&create_revision.to_be_bytes());
    out.extend_from_slice(&mod_revision.to_be_bytes());
    out.push(value.packing);
    out.extend_from_slice(&value.bytes);
    out
}

/// Decodes an `objects` record of either format.
pub(crate) fn decode_object(raw: &[u8]) -> Result<ObjectRecord, StoreError> {
    let mut r = Reader::new(raw, "object");
    let version = r.version()?;
    let create_revision = r.u64()?;
    let mod_revision = r.u64()?;
    let value = if version == FORMAT_V1 {
        Bytes::copy_from_slice(r.rest())
    } else {
        let packing = r.u8()?;
        unpack("object", packing, r.rest())?
    };
    Ok(ObjectRecord {
        create_revision,
        mod_revision,
        value,
    })
}

/// Encodes an `events` record; the revision is the record's key. `value` is the event's
/// value as [`Packed::new`] made it (the object record shares it).
pub(crate) fn encode_event(event: &Event, value: &Packed) -> Vec<u8> {
    let key = event.kv.key.as_bytes();
    let prev = event.prev.as_deref().map(Packed::new);
    let prev_len = prev.as_ref().map_or(0, |p| 1 + 4 + p.len());
    let mut out =
        Vec::with_capacity(1 + 1 + 8 + 4 + key.len() + 1 + 4 + value.len() + 1 + prev_len);
    out.push(FORMAT_VERSION);
    out.push(match event.kind {
        EventKind::Created => 1,
        EventKind::Updated => 2,
        EventKind::Deleted => 3,
    });
    out.extend_from_slice(&event.kv.create_revision.to_be_bytes());
    put_bytes(&mut out, key);
    out.push(value.packing);
    put_bytes(&mut out, &value.bytes);
    match &prev {
        Some(prev) => {
            out.push(1);
            out.push(prev.packing);
            put_bytes(&mut out, &prev.bytes);
        }
        None => out.push(0),
    }
    out
}

/// Decodes an `events` record stored under `revision`.
pub(crate) fn decode_event(revision: u64, raw: &[u8]) -> Result<Event, StoreError> {
    let mut r = Reader::new(raw, "event");
    let version = r.version()?;
    let kind = match r.u8()? {
        1 => EventKind::Created,
        2 => EventKind::Updated,
        3 => EventKind::Deleted,
        other => return Err(corrupt("event", &format!("unknown kind {other}"))),
    };
    let create_revision = r.u64()?;
    let key =
        String::from_utf8(r.bytes()?.to_vec()).map_err(|_| corrupt("event", "key is not UTF-8"))?;
    let value = event_value(&mut r, version)?;
    let prev = match r.u8()? {
        0 => None,
        1 => Some(event_value(&mut r, version)?),
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

/// Reads one value of an `events` record of format `version`.
fn event_value(r: &mut Reader<'_>, version: u8) -> Result<Bytes, StoreError> {
    if version == FORMAT_V1 {
        return Ok(Bytes::copy_from_slice(r.bytes()?));
    }
    let packing = r.u8()?;
    unpack("event", packing, r.bytes()?)
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

    /// The record's format version, one this release reads.
    fn version(&mut self) -> Result<u8, StoreError> {
        match self.u8()? {
            v @ (FORMAT_V1 | FORMAT_VERSION) => Ok(v),
            v => Err(StoreError::Backend(format!(
                "{} record has format version {v}; this release reads versions \
                 {FORMAT_V1} to {FORMAT_VERSION}",
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

    /// A JSON value long enough to be packed.
    fn long_json() -> Vec<u8> {
        let items: Vec<String> = (0..40)
            .map(|i| format!("{{\"name\":\"item-{i}\",\"image\":\"nginx:1.25\"}}"))
            .collect();
        format!("{{\"items\":[{}]}}", items.join(",")).into_bytes()
    }

    #[test]
    fn objects_round_trip() {
        let long = long_json();
        for value in [&b""[..], b"x", b"{\"a\":[1,2,3]}", &long] {
            let raw = encode_object(7, 12, &Packed::new(value));
            let rec = decode_object(&raw).expect("decodes");
            assert_eq!((rec.create_revision, rec.mod_revision), (7, 12));
            assert_eq!(&rec.value[..], value);
        }
    }

    #[test]
    fn long_values_are_packed_and_short_or_random_ones_are_not() {
        let long = long_json();
        let packed = Packed::new(&long);
        assert_eq!(packed.packing, PACKED_ZSTD);
        assert!(
            packed.len() * 3 < long.len(),
            "{} of {}",
            packed.len(),
            long.len()
        );
        assert_eq!(Packed::new(b"{\"a\":1}").packing, PACKED_RAW);
        // Bytes that do not compress (as encrypted values) are kept as they are.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let kept = Packed::new(&noise);
        assert_eq!((kept.packing, kept.len()), (PACKED_RAW, noise.len()));
    }

    /// Records as format version 1 wrote them, byte for byte.
    fn v1_object(create: u64, modified: u64, value: &[u8]) -> Vec<u8> {
        let mut out = vec![1];
        out.extend_from_slice(&create.to_be_bytes());
        out.extend_from_slice(&modified.to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    fn v1_event(kind: u8, create: u64, key: &str, value: &[u8], prev: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![1, kind];
        out.extend_from_slice(&create.to_be_bytes());
        put_bytes(&mut out, key.as_bytes());
        put_bytes(&mut out, value);
        match prev {
            Some(p) => {
                out.push(1);
                put_bytes(&mut out, p);
            }
            None => out.push(0),
        }
        out
    }

    #[test]
    fn format_1_records_stay_readable() {
        let long = long_json();
        let rec = decode_object(&v1_object(3, 5, &long)).expect("a version 1 object");
        assert_eq!(
            (rec.create_revision, rec.mod_revision, &rec.value[..]),
            (3, 5, &long[..])
        );
        let raw = v1_event(2, 3, "/core/configmaps/default/a", &long, Some(b"old"));
        let ev = decode_event(9, &raw).expect("a version 1 event");
        assert_eq!(ev.kind, EventKind::Updated);
        assert_eq!(
            (&ev.kv.value[..], ev.prev.as_deref()),
            (&long[..], Some(&b"old"[..]))
        );
        assert_eq!(event_key(&raw).expect("key"), b"/core/configmaps/default/a");
    }

    #[test]
    fn events_round_trip() {
        let long = Bytes::from(long_json());
        let mut packed_prev = event(EventKind::Updated, None);
        packed_prev.prev = Some(long.clone());
        packed_prev.kv.value = long;
        for ev in [
            event(EventKind::Created, None),
            event(EventKind::Updated, Some("old")),
            event(EventKind::Deleted, Some("")),
            packed_prev,
        ] {
            let raw = encode_event(&ev, &Packed::new(&ev.kv.value));
            assert_eq!(decode_event(9, &raw).expect("decodes"), ev);
            assert_eq!(event_key(&raw).expect("key"), ev.kv.key.as_bytes());
        }
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let ev = event(EventKind::Updated, Some("old"));
        let good = encode_event(&ev, &Packed::new(&ev.kv.value));
        let mut newer = good.clone();
        newer[0] = 3;
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
        assert!(decode_object(&[3; 20]).is_err());
        // A packing byte this release does not know, and a zstd frame that is not one.
        let mut unknown = encode_object(1, 1, &Packed::new(b"x"));
        unknown[OBJECT_HEADER] = 7;
        assert!(decode_object(&unknown).is_err());
        let mut bad_frame = encode_object(1, 1, &Packed::new(&long_json()));
        let last = bad_frame.len() - 1;
        bad_frame.truncate(last - 10);
        assert!(decode_object(&bad_frame).is_err());
        let mut no_frame = encode_object(1, 1, &Packed::new(b"not zstd"));
        no_frame[OBJECT_HEADER] = PACKED_ZSTD;
        assert!(decode_object(&no_frame).is_err());
        assert!(decode_revision(&[0; 7]).is_err());
    }
}
