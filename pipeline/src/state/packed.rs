//! One table's rows packed into a few large buffers, found through a hash index of
//! positions.
//!
//! A map of boxed keys to boxed rows pays, per row, a 32-byte bucket (twice that just after
//! the map grew) and two heap allocations rounded up to the allocator's size classes: for
//! rows of about 130 bytes, more than the rows themselves. Here a row is its key and value
//! bytes appended to a buffer behind an 8-byte length header, and the index holds one
//! 8-byte position per row. A changed or removed row leaves its old bytes behind as garbage
//! until the garbage outweighs the live rows; then the live rows are copied into fresh
//! buffers.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// The largest buffer the rows are appended to (a larger row gets a buffer of its own
/// size). Buffers start small and double up to this, so a small table stays small.
const CHUNK_MAX: usize = 4 << 20;
/// The first buffer's size.
const CHUNK_MIN: usize = 4 << 10;
/// Bytes of header before each row: key length and value length, `u32` each.
const HEADER: usize = 8;

/// Where a row is: its buffer in the high 32 bits, its offset in that buffer in the low.
type Position = u64;

/// The rows of one table, by key.
#[derive(Debug, Default)]
pub(crate) struct PackedRows {
    chunks: Vec<Vec<u8>>,
    index: HashTable<Position>,
    /// Hashes keys: hashbrown's default, foldhash with a random seed per table. Table keys
    /// come from users' data, and the seed keeps them from choosing their collisions;
    /// SipHash, cryptographically stronger, showed as some 8 % of the transform thread's
    /// samples in a profile of the join benchmark (every driving record looks its partner up).
    hasher: DefaultHashBuilder,
    /// Bytes of the buffers that belong to changed or removed rows.
    garbage: usize,
    /// Bytes appended to the buffers, live or not.
    used: usize,
}

fn position(chunk: usize, offset: usize) -> Position {
    ((chunk as u64) << 32) | offset as u64
}

/// The key and value at `at`.
fn row_at(chunks: &[Vec<u8>], at: Position) -> (&[u8], &[u8]) {
    let chunk = &chunks[(at >> 32) as usize];
    let offset = (at & 0xffff_ffff) as usize;
    let len = |i: usize| {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&chunk[i..i + 4]);
        u32::from_le_bytes(bytes) as usize
    };
    let (key_len, value_len) = (len(offset), len(offset + 4));
    let key = offset + HEADER;
    (
        &chunk[key..key + key_len],
        &chunk[key + key_len..key + key_len + value_len],
    )
}

/// Appends a row to the last buffer, or to a new one when it does not fit; its position.
fn append(chunks: &mut Vec<Vec<u8>>, key: &[u8], value: &[u8]) -> Position {
    let size = HEADER + key.len() + value.len();
    let fits = chunks
        .last()
        .is_some_and(|c| c.capacity() - c.len() >= size);
    if !fits {
        let next = chunks
            .last()
            .map_or(CHUNK_MIN, |c| (c.capacity() * 2).min(CHUNK_MAX));
        chunks.push(Vec::with_capacity(next.max(size)));
    }
    let last = chunks.len() - 1;
    let chunk = &mut chunks[last];
    let offset = chunk.len();
    chunk.extend_from_slice(&(key.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&(value.len() as u32).to_le_bytes());
    chunk.extend_from_slice(key);
    chunk.extend_from_slice(value);
    position(last, offset)
}

fn size_at(chunks: &[Vec<u8>], at: Position) -> usize {
    let (key, value) = row_at(chunks, at);
    HEADER + key.len() + value.len()
}

impl PackedRows {
    /// The value of `key`, if it has one.
    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        let hash = self.hasher.hash_one(key.as_bytes());
        let chunks = &self.chunks;
        self.index
            .find(hash, |at| row_at(chunks, *at).0 == key.as_bytes())
            .map(|at| row_at(chunks, *at).1)
    }

    /// Sets the value of `key`; the previous value's length, if it had one.
    pub(crate) fn insert(&mut self, key: &str, value: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(key.as_bytes());
        let at = append(&mut self.chunks, key.as_bytes(), value);
        self.used += HEADER + key.len() + value.len();
        let PackedRows {
            chunks,
            index,
            hasher,
            ..
        } = self;
        let chunks: &[Vec<u8>] = chunks;
        let old = match index.find_mut(hash, |p| row_at(chunks, *p).0 == key.as_bytes()) {
            Some(slot) => {
                let old = *slot;
                *slot = at;
                Some(old)
            }
            None => {
                index.insert_unique(hash, at, |p| hasher.hash_one(row_at(chunks, *p).0));
                None
            }
        };
        let old_len = old.map(|p| {
            self.garbage += size_at(&self.chunks, p);
            row_at(&self.chunks, p).1.len()
        });
        self.compact_if_wasteful();
        old_len
    }

    /// Removes `key`; its value's length, if it had one.
    pub(crate) fn remove(&mut self, key: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(key.as_bytes());
        let chunks = &self.chunks;
        let entry = self
            .index
            .find_entry(hash, |at| row_at(chunks, *at).0 == key.as_bytes())
            .ok()?;
        let (at, _) = entry.remove();
        self.garbage += size_at(&self.chunks, at);
        let len = row_at(&self.chunks, at).1.len();
        self.compact_if_wasteful();
        Some(len)
    }

    /// Every row, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.index.iter().map(|at| row_at(&self.chunks, *at))
    }

    /// How many rows it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes it holds in its buffers and index (its share of the process's memory).
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>()
            + self.index.capacity() * (std::mem::size_of::<Position>() + 1)
    }

    /// Copies the live rows into fresh buffers once the garbage outweighs them (and is
    /// worth a buffer), so a table that changes all the time does not grow without end.
    fn compact_if_wasteful(&mut self) {
        if self.garbage < CHUNK_MAX || self.garbage * 2 < self.used {
            return;
        }
        let mut fresh: Vec<Vec<u8>> = Vec::new();
        let old = std::mem::take(&mut self.chunks);
        let mut used = 0;
        for at in self.index.iter_mut() {
            let (key, value) = row_at(&old, *at);
            used += HEADER + key.len() + value.len();
            *at = append(&mut fresh, key, value);
        }
        self.chunks = fresh;
        self.used = used;
        self.garbage = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    /// Against a plain map through inserts, replacements (growing and shrinking) and
    /// removals, across several compactions.
    #[test]
    fn packed_rows_answer_as_a_map_does() {
        let mut packed = PackedRows::default();
        let mut plain: HashMap<String, Vec<u8>> = HashMap::new();
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for _ in 0..300_000 {
            let key = format!("k-{}", next() % 5_000);
            match next() % 10 {
                0..=1 => {
                    assert_eq!(packed.remove(&key), plain.remove(&key).map(|v| v.len()));
                }
                _ => {
                    let value = vec![b'x'; (next() % 300) as usize];
                    assert_eq!(
                        packed.insert(&key, &value),
                        plain.insert(key.clone(), value).map(|v| v.len())
                    );
                }
            }
        }
        assert_eq!(packed.len(), plain.len());
        for (key, value) in &plain {
            assert_eq!(packed.get(key), Some(value.as_slice()), "{key}");
        }
        assert_eq!(packed.get("k-absent"), None);
        let mut listed: Vec<(Vec<u8>, Vec<u8>)> = packed
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        listed.sort();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = plain
            .iter()
            .map(|(k, v)| (k.clone().into_bytes(), v.clone()))
            .collect();
        expected.sort();
        assert_eq!(listed, expected);
        // About 5,000 live rows of ~150 bytes: compaction kept the garbage from piling up
        // (300,000 writes of ~150 bytes would be ~45 MB).
        assert!(packed.footprint() < 16 << 20, "{}", packed.footprint());
    }

    /// One million rows of 130-byte values take well under the 2× a map of boxes needs.
    #[test]
    fn a_million_rows_take_little_more_than_their_bytes() {
        let mut packed = PackedRows::default();
        let value = [b'v'; 130];
        let mut bytes = 0;
        for n in 0..1_000_000 {
            let key = format!("c-{n}");
            bytes += key.len() + value.len();
            packed.insert(&key, &value);
        }
        let footprint = packed.footprint();
        assert!(
            footprint < bytes + bytes / 3,
            "{footprint} bytes for {bytes} bytes of rows"
        );
    }
}
