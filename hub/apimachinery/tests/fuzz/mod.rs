//! A small fuzz harness for `cargo test` on stable Rust: every target first replays its
//! corpus (`tests/fuzz-corpus/<target>/`, one input per file), then runs inputs derived from
//! the corpus by a seeded random generator for a bounded time. A panic fails the test with
//! the input saved to a file, ready to be copied into the corpus as a regression seed; a stack
//! overflow aborts the test process instead, and the printed seed replays it.
//!
//! Environment: `FUZZ_SECONDS` (time per target, default 5), `FUZZ_SEED` (the generator's
//! seed, default from the clock; printed either way so a failure can be replayed: the inputs
//! depend only on the seed and the corpus).
//!
//! Shared by the fuzz tests of several crates (`#[path]`); not every crate uses every helper.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Default time budget of one target.
const DEFAULT_SECONDS: u64 = 5;
/// How many generated inputs are kept to be mutated again.
const RECENT: usize = 64;

/// A splitmix64 generator: small, seedable, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// One fuzz target: its name, corpus directory and how its inputs look.
pub struct Target<T> {
    /// Names the corpus directory and the saved failures.
    pub name: &'static str,
    /// `tests/fuzz-corpus` of the calling crate.
    pub corpus_root: PathBuf,
    /// A corpus file to an input.
    pub decode: fn(&[u8]) -> T,
    /// An input to a corpus file (to save a failing input).
    pub encode: fn(&T) -> Vec<u8>,
    /// A new input, usually a mutation of one of the seeds.
    pub generate: fn(&mut Rng, &[T]) -> T,
}

impl<T> Target<T> {
    /// Replays the corpus, then fuzzes for the time budget; `check` panics on a bug and
    /// tells whether the decoder accepted the input (accepted inputs are mutated further).
    pub fn run(&self, check: impl Fn(&T) -> bool) {
        let dir = self.corpus_root.join(self.name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("fuzz {}: corpus {}: {e}", self.name, dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "fuzz {}: empty corpus {}",
            self.name,
            dir.display()
        );
        let mut seeds = Vec::with_capacity(files.len());
        for file in &files {
            let input = (self.decode)(&std::fs::read(file).unwrap());
            if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
                panic!("fuzz {}: corpus input {} panics", self.name, file.display());
            }
            seeds.push(input);
        }

        let seconds = env_u64("FUZZ_SECONDS").unwrap_or(DEFAULT_SECONDS);
        let seed = env_u64("FUZZ_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
        // Straight to stderr, past the test harness's capture: a stack overflow aborts the
        // process before captured output is shown, and the seed is what replays it.
        let _ = writeln!(
            std::io::stderr(),
            "fuzz {}: {} corpus inputs, then FUZZ_SEED={seed} for {seconds} s",
            self.name,
            seeds.len()
        );
        let mut rng = Rng::new(seed);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut runs = 0u64;
        // Recently accepted inputs (and a few refused ones) are mutated again half of the
        // time, so that mutations accumulate while the input stays mostly valid.
        let mut recent: Vec<T> = Vec::with_capacity(RECENT);
        while Instant::now() < deadline {
            let from = if recent.is_empty() || rng.one_in(2) {
                &seeds
            } else {
                &recent
            };
            let input = (self.generate)(&mut rng, from);
            runs += 1;
            let Ok(accepted) = catch_unwind(AssertUnwindSafe(|| check(&input))) else {
                let saved = self.save(&input);
                panic!(
                    "fuzz {}: input {runs} of FUZZ_SEED={seed} panics; saved as {} \
                     (copy it into {} once fixed)",
                    self.name,
                    saved.display(),
                    dir.display()
                );
            };
            if !accepted && !rng.one_in(8) {
                continue;
            }
            if recent.len() < RECENT {
                recent.push(input);
            } else {
                let slot = rng.below(RECENT);
                recent[slot] = input;
            }
        }
        eprintln!("fuzz {}: {runs} generated inputs, no panic", self.name);
    }

    fn save(&self, input: &T) -> PathBuf {
        let bytes = (self.encode)(input);
        // FNV-1a names the file after its content.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        let dir = std::env::temp_dir()
            .join("flotilla-fuzz-failures")
            .join(self.name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{hash:016x}"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// Byte values that tend to sit on boundaries.
const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'\n', b'\\', b'"', b'%', 0xc3, 0xe2];

/// Applies one to four byte-level mutations to `data`: bit flips, boundary bytes, inserted
/// tokens from `dict`, deleted or repeated ranges, and splices from `donor`.
pub fn mutate_bytes(rng: &mut Rng, data: &[u8], donor: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = *rng.pick(INTERESTING);
            }
            2 if !dict.is_empty() => {
                let at = rng.below(len + 1);
                let token = *rng.pick(dict);
                out.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let from = rng.below(len);
                let to = from + rng.below((len - from).min(16)) + 1;
                out.drain(from..to);
            }
            4 if len > 0 => {
                // Repeat a range a few times (nesting, long runs).
                let from = rng.below(len);
                let to = from + rng.below((len - from).min(32)) + 1;
                let chunk = out[from..to].to_vec();
                for _ in 0..=rng.below(8) {
                    out.splice(to..to, chunk.iter().copied());
                }
            }
            5 if !donor.is_empty() => {
                let from = rng.below(donor.len());
                let to = from + rng.below(donor.len() - from) + 1;
                let at = rng.below(len + 1);
                out.splice(at..at, donor[from..to].iter().copied());
            }
            6 if len > 0 => out.truncate(rng.below(len)),
            7 => {
                let at = rng.below(len + 1);
                let n = rng.below(4) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                out.splice(at..at, bytes);
            }
            _ if !dict.is_empty() && len > 0 => {
                // Replace a range with a token.
                let from = rng.below(len);
                let to = from + rng.below((len - from).min(8));
                let token = *rng.pick(dict);
                out.splice(from..to, token.iter().copied());
            }
            _ => {}
        }
    }
    out
}

/// Vocabulary for generated JSON: keys and strings that the Kubernetes machinery treats
/// specially, so that random documents reach past the first type check.
pub struct Vocabulary {
    pub keys: &'static [&'static str],
    pub strings: &'static [&'static str],
}

/// A random scalar: null, booleans, boundary numbers, vocabulary strings.
pub fn random_scalar(rng: &mut Rng, vocab: &Vocabulary) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => Value::from(*rng.pick(&[0i64, 1, -1, i64::MAX, i64::MIN, 3, 80, 8080])),
        3 => Value::from(*rng.pick(&[u64::MAX, 1 << 53, 0])),
        4 => Value::from(*rng.pick(&[0.5f64, -0.0, 1e308, 2.5e-308])),
        5 => Value::String(String::new()),
        _ => Value::String((*rng.pick(vocab.strings)).to_owned()),
    }
}

/// A random JSON value at most `depth` levels deep.
pub fn random_value(rng: &mut Rng, vocab: &Vocabulary, depth: usize) -> Value {
    if depth <= 1 || rng.one_in(3) {
        return random_scalar(rng, vocab);
    }
    if rng.one_in(2) {
        let mut m = Map::new();
        for _ in 0..rng.below(4) {
            m.insert(
                (*rng.pick(vocab.keys)).to_owned(),
                random_value(rng, vocab, depth - 1),
            );
        }
        Value::Object(m)
    } else {
        Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, vocab, depth - 1))
                .collect(),
        )
    }
}

/// Nests `v` `levels` deep in single-key objects or one-item arrays.
pub fn deepen(rng: &mut Rng, vocab: &Vocabulary, mut v: Value, levels: usize) -> Value {
    for _ in 0..levels {
        v = if rng.one_in(2) {
            let mut m = Map::new();
            m.insert((*rng.pick(vocab.keys)).to_owned(), v);
            Value::Object(m)
        } else {
            Value::Array(vec![v])
        };
    }
    v
}

/// Counts the nodes of `v`.
fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Object(m) => m.values().map(count_nodes).sum(),
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `n`th node of `v` in pre-order (`n` counts down to it).
fn nth_node<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Object(m) => m.values_mut().find_map(|c| nth_node(c, n)),
        Value::Array(a) => a.iter_mut().find_map(|c| nth_node(c, n)),
        _ => None,
    }
}

/// A random node of `v`, cloned.
fn random_node(rng: &mut Rng, v: &Value) -> Value {
    let mut copy = v.clone();
    let mut n = rng.below(count_nodes(&copy));
    nth_node(&mut copy, &mut n)
        .map(|n| n.take())
        .unwrap_or(Value::Null)
}

/// Applies one to three structural mutations to a JSON document: random or donor subtrees
/// replace nodes, keys and items are added, dropped, renamed or repeated, scalars change
/// type, and now and then a node is buried about `deep` levels down (around the decoders'
/// depth limits).
pub fn mutate_json(
    rng: &mut Rng,
    v: &Value,
    donors: &[&Value],
    vocab: &Vocabulary,
    deep: usize,
) -> Value {
    let mut out = v.clone();
    for _ in 0..=rng.below(3) {
        let donor = if donors.is_empty() || rng.one_in(2) {
            None
        } else {
            let donor = donors[rng.below(donors.len())];
            Some(random_node(rng, donor))
        };
        let mut n = rng.below(count_nodes(&out));
        let Some(node) = nth_node(&mut out, &mut n) else {
            continue;
        };
        match rng.below(9) {
            0 => *node = random_value(rng, vocab, 4),
            1 => *node = donor.unwrap_or_else(|| random_scalar(rng, vocab)),
            2 => match node {
                Value::Object(m) => {
                    let value = donor.unwrap_or_else(|| random_value(rng, vocab, 3));
                    m.insert((*rng.pick(vocab.keys)).to_owned(), value);
                }
                Value::Array(a) => {
                    let item = match donor {
                        Some(d) => d,
                        None if !a.is_empty() && rng.one_in(2) => a[rng.below(a.len())].clone(),
                        None => random_value(rng, vocab, 3),
                    };
                    let at = rng.below(a.len() + 1);
                    a.insert(at, item);
                }
                _ => *node = random_scalar(rng, vocab),
            },
            3 => match node {
                Value::Object(m) if !m.is_empty() => {
                    let key = m.keys().nth(rng.below(m.len())).cloned().unwrap();
                    m.remove(&key);
                }
                Value::Array(a) if !a.is_empty() => {
                    a.remove(rng.below(a.len()));
                }
                _ => *node = Value::Null,
            },
            4 => *node = random_scalar(rng, vocab),
            5 => {
                let levels = if rng.one_in(8) {
                    deep.saturating_sub(8) + rng.below(16)
                } else {
                    rng.below(3) + 1
                };
                *node = deepen(rng, vocab, node.take(), levels);
            }
            6 => match node {
                Value::Object(m) if !m.is_empty() => {
                    let key = m.keys().nth(rng.below(m.len())).cloned().unwrap();
                    let value = m.remove(&key).unwrap();
                    m.insert((*rng.pick(vocab.keys)).to_owned(), value);
                }
                Value::Array(a) => a.reverse(),
                _ => {}
            },
            7 => {
                let copy = node.clone();
                *node = Value::Array(vec![copy.clone(), copy]);
            }
            _ => {
                // A string becomes a vocabulary string with bytes mutated.
                let base = node
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| (*rng.pick(vocab.strings)).to_owned());
                let dict: Vec<&[u8]> = vocab.strings.iter().map(|s| s.as_bytes()).collect();
                let bytes = mutate_bytes(rng, base.as_bytes(), b"", &dict);
                *node = Value::String(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    out
}

/// Parses a JSON corpus file.
pub fn json_file(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("corpus file is not JSON")
}

/// A JSON input as a corpus file.
pub fn json_bytes(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap();
    out.push(b'\n');
    out
}
