//! What `propagate: true` needs to recompute output rows when a table row changes: each
//! product key's latest stream record, and which product keys each table row was joined
//! with. It grows with the product's keys, so past the job's memory budget it moves to a
//! [redb] database on disk for the rest of the run, as the lookup tables and the window
//! join's records do ([`crate::state`]). It is rebuilt on every start from the processed
//! stream records, so the database is a cache, removed when the job ends.

use std::collections::{BTreeSet, HashMap};

use redb::{ReadableTable, TableDefinition};
use serde_json::Value as Json;

use crate::state::{StateError, StateSettings, WriteStore, failed, file_label};

/// A kept stream record: its record key, value and event time.
pub(super) type Record = (Option<Vec<u8>>, Json, Option<i64>);
/// A stream record as the transform has it: record key, value, event time.
pub(super) type Seen<'a> = (Option<&'a [u8]>, &'a Json, Option<i64>);
/// A table row a record was joined with: (alias, join key).
pub(super) type Partner = (String, String);

/// Bytes counted per product key besides its record's and partners' text (map entries).
const KEY_OVERHEAD: usize = 160;
/// Bytes counted per partner besides its text (set and map entries).
const PARTNER_OVERHEAD: usize = 96;

/// A record as stored: (record key, value JSON, event time).
type Stored<'a> = (Option<&'a [u8]>, &'a [u8], Option<i64>);
/// Product key → its latest stream record.
const LATEST: TableDefinition<&str, Stored> = TableDefinition::new("propagate_latest");
/// Product key → the partners of its latest record, as a JSON array of `[alias, key]`.
const PARTNERS: TableDefinition<&str, &[u8]> = TableDefinition::new("propagate_partners");
/// (alias, join key, product key): the product keys joined with a table row.
const BY_PARTNER: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("propagate_by_partner");

/// A kept record in memory: the value as JSON text, parsed when it is recomputed.
#[derive(Debug)]
struct Kept {
    record_key: Option<Vec<u8>>,
    value: Box<str>,
    event_ms: Option<i64>,
}

/// The state in memory.
#[derive(Debug, Default)]
struct Memory {
    latest: HashMap<String, Kept>,
    partners: HashMap<String, Vec<Partner>>,
    by_partner: HashMap<Partner, BTreeSet<String>>,
    /// Bytes it takes, roughly.
    bytes: usize,
}

fn partners_bytes(partners: &[Partner]) -> usize {
    partners
        .iter()
        .map(|(a, k)| 2 * (a.len() + k.len()) + PARTNER_OVERHEAD)
        .sum()
}

impl Memory {
    fn forget_partners(&mut self, key: &str) {
        let Some(old) = self.partners.remove(key) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(partners_bytes(&old) + key.len());
        for partner in old {
            if let Some(keys) = self.by_partner.get_mut(&partner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_partner.remove(&partner);
                }
            }
        }
    }

    fn forget_latest(&mut self, key: &str) {
        if let Some(old) = self.latest.remove(key) {
            self.bytes = self.bytes.saturating_sub(footprint(key, &old));
        }
    }
}

fn footprint(key: &str, kept: &Kept) -> usize {
    2 * key.len() + kept.value.len() + kept.record_key.as_ref().map_or(0, Vec::len) + KEY_OVERHEAD
}

/// Where the state is.
#[derive(Debug)]
enum Store {
    Memory(Box<Memory>),
    Disk(Box<WriteStore>),
}

/// `propagate`'s state of one job.
#[derive(Debug)]
pub(super) struct Joined {
    store: Store,
    settings: StateSettings,
    /// Names the database file, should the state move to disk.
    label: String,
}

impl Joined {
    /// Empty state, in memory up to `settings.memory_bytes`, then in a database in
    /// `settings.dir` named after `label`.
    pub(super) fn new(settings: StateSettings, label: &str) -> Self {
        Joined {
            store: Store::Memory(Box::default()),
            settings,
            label: format!("{}_propagate", file_label(label)),
        }
    }

    /// Records that `key`'s latest record is `record` (`None`: a tombstone; the key is
    /// forgotten), joined with `partners`.
    pub(super) fn remember(
        &mut self,
        key: &str,
        record: Option<Seen>,
        partners: &[Partner],
    ) -> Result<(), StateError> {
        match &mut self.store {
            Store::Memory(memory) => {
                memory.forget_partners(key);
                memory.forget_latest(key);
                let Some((record_key, value, event_ms)) = record else {
                    return Ok(());
                };
                let kept = Kept {
                    record_key: record_key.map(<[u8]>::to_vec),
                    value: value.to_string().into_boxed_str(),
                    event_ms,
                };
                memory.bytes += footprint(key, &kept) + partners_bytes(partners) + key.len();
                for partner in partners {
                    memory
                        .by_partner
                        .entry(partner.clone())
                        .or_default()
                        .insert(key.to_owned());
                }
                memory.latest.insert(key.to_owned(), kept);
                memory.partners.insert(key.to_owned(), partners.to_vec());
                if memory.bytes > self.settings.memory_bytes {
                    self.spill()?;
                }
                Ok(())
            }
            Store::Disk(store) => {
                let record =
                    record.map(|(record_key, value, at)| (record_key, value.to_string(), at));
                write_key(
                    store,
                    key,
                    record
                        .as_ref()
                        .map(|(record_key, value, at)| (*record_key, value.as_bytes(), *at)),
                    partners,
                )
            }
        }
    }

    /// The product keys joined with row `key` of table `alias`.
    pub(super) fn joined_with(
        &mut self,
        alias: &str,
        key: &str,
    ) -> Result<Vec<String>, StateError> {
        match &mut self.store {
            Store::Memory(memory) => Ok(memory
                .by_partner
                .get(&(alias.to_owned(), key.to_owned()))
                .map(|keys| keys.iter().cloned().collect())
                .unwrap_or_default()),
            Store::Disk(store) => {
                let (txn, path) = store.open()?;
                let fail = failed(path);
                let table = txn.open_table(BY_PARTNER).map_err(|e| fail(&e))?;
                let mut keys = Vec::new();
                for entry in table.range((alias, key, "")..).map_err(|e| fail(&e))? {
                    let (k, _) = entry.map_err(|e| fail(&e))?;
                    let (a, j, product_key) = k.value();
                    if a != alias || j != key {
                        break;
                    }
                    keys.push(product_key.to_owned());
                }
                Ok(keys)
            }
        }
    }

    /// The latest stream record of product key `key`.
    pub(super) fn latest(&mut self, key: &str) -> Result<Option<Record>, StateError> {
        // The values were serialized from JSON by `remember`, so they always parse.
        match &mut self.store {
            Store::Memory(memory) => Ok(memory.latest.get(key).and_then(|kept| {
                let value = serde_json::from_str(&kept.value).ok()?;
                Some((kept.record_key.clone(), value, kept.event_ms))
            })),
            Store::Disk(store) => {
                let (txn, path) = store.open()?;
                let fail = failed(path);
                let table = txn.open_table(LATEST).map_err(|e| fail(&e))?;
                let found = table.get(key).map_err(|e| fail(&e))?;
                Ok(found.and_then(|guard| {
                    let (record_key, value, event_ms) = guard.value();
                    let value = serde_json::from_slice(value).ok()?;
                    Some((record_key.map(<[u8]>::to_vec), value, event_ms))
                }))
            }
        }
    }

    /// Writes the changes of state kept on disk; called when the transform ends a batch.
    pub(super) fn flush(&mut self) -> Result<(), StateError> {
        match &mut self.store {
            Store::Memory(_) => Ok(()),
            Store::Disk(store) => store.commit(),
        }
    }

    /// Moves the state to a new database on disk.
    fn spill(&mut self) -> Result<(), StateError> {
        let Store::Memory(memory) = &self.store else {
            return Ok(());
        };
        let mut store = WriteStore::create(&self.settings, &self.label)?;
        for (key, kept) in &memory.latest {
            let partners = memory.partners.get(key).map_or(&[][..], Vec::as_slice);
            write_key(
                &mut store,
                key,
                Some((
                    kept.record_key.as_deref(),
                    kept.value.as_bytes(),
                    kept.event_ms,
                )),
                partners,
            )?;
        }
        store.commit()?;
        tracing::info!(label = %self.label, bytes = memory.bytes, "propagation state moved to disk");
        self.store = Store::Disk(Box::new(store));
        Ok(())
    }

    /// Whether the state moved to disk.
    #[cfg(test)]
    fn on_disk(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }
}

/// Sets `key`'s latest record (`None`: forgets the key) and partners on disk.
fn write_key(
    store: &mut WriteStore,
    key: &str,
    record: Option<Stored>,
    partners: &[Partner],
) -> Result<(), StateError> {
    let (txn, path) = store.open()?;
    let fail = failed(path);
    let mut latest = txn.open_table(LATEST).map_err(|e| fail(&e))?;
    let mut partners_of = txn.open_table(PARTNERS).map_err(|e| fail(&e))?;
    let mut by_partner = txn.open_table(BY_PARTNER).map_err(|e| fail(&e))?;
    let old: Vec<Partner> = partners_of
        .remove(key)
        .map_err(|e| fail(&e))?
        .and_then(|guard| serde_json::from_slice(guard.value()).ok())
        .unwrap_or_default();
    for (alias, join_key) in &old {
        by_partner
            .remove((alias.as_str(), join_key.as_str(), key))
            .map_err(|e| fail(&e))?;
    }
    let Some(record) = record else {
        latest.remove(key).map_err(|e| fail(&e))?;
        return Ok(());
    };
    latest.insert(key, record).map_err(|e| fail(&e))?;
    if !partners.is_empty() {
        let text = serde_json::to_vec(partners).map_err(|e| fail(&e))?;
        partners_of
            .insert(key, text.as_slice())
            .map_err(|e| fail(&e))?;
        for (alias, join_key) in partners {
            by_partner
                .insert((alias.as_str(), join_key.as_str(), key), ())
                .map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    /// The same changes answer the same in memory and after moving to disk, before and
    /// after they are committed, and the file goes with the state.
    #[test]
    fn the_state_answers_the_same_in_memory_and_on_disk() {
        let dir = std::env::temp_dir().join(format!("sluice-joined-test-{}", std::process::id()));
        let settings = |memory_bytes| StateSettings {
            dir: dir.clone(),
            memory_bytes,
        };
        let mut memory = Joined::new(settings(usize::MAX), "job a/b");
        let mut disk = Joined::new(settings(20_000), "job a/b");
        let partner = |c: usize| ("c".to_owned(), format!("c-{c}"));
        for state in [&mut memory, &mut disk] {
            for n in 0..500usize {
                let value = json!({"id": format!("o-{n}"), "customer": format!("c-{}", n % 40)});
                let partners = [partner(n % 40), ("r".to_owned(), format!("r-{}", n % 3))];
                state
                    .remember(
                        &format!("o-{n}"),
                        Some((Some(format!("k{n}").as_bytes()), &value, Some(n as i64))),
                        &partners,
                    )
                    .unwrap();
            }
            // Order 7 moves to customer 41; order 8 is tombstoned; order 9 joins nothing.
            let moved = json!({"id": "o-7", "customer": "c-41"});
            state
                .remember("o-7", Some((None, &moved, None)), &[partner(41)])
                .unwrap();
            state.remember("o-8", None, &[]).unwrap();
            state
                .remember("o-9", Some((None, &moved, Some(1))), &[])
                .unwrap();
        }
        assert!(disk.on_disk() && !memory.on_disk());
        for round in 0..2 {
            for (alias, key) in [
                ("c", "c-7"),
                ("c", "c-8"),
                ("c", "c-41"),
                ("r", "r-1"),
                ("c", "c-99"),
            ] {
                let mut got = disk.joined_with(alias, key).unwrap();
                let mut want = memory.joined_with(alias, key).unwrap();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{alias}/{key} in round {round}");
            }
            assert_eq!(disk.joined_with("c", "c-41").unwrap(), ["o-7"]);
            assert!(
                !disk
                    .joined_with("c", "c-8")
                    .unwrap()
                    .contains(&"o-8".to_owned())
            );
            assert!(
                !disk
                    .joined_with("c", "c-9")
                    .unwrap()
                    .contains(&"o-9".to_owned())
            );
            for key in ["o-0", "o-7", "o-8", "o-9", "o-499", "o-500"] {
                assert_eq!(
                    disk.latest(key).unwrap(),
                    memory.latest(key).unwrap(),
                    "{key}"
                );
            }
            assert_eq!(
                disk.latest("o-3").unwrap(),
                Some((
                    Some(b"k3".to_vec()),
                    json!({"id": "o-3", "customer": "c-3"}),
                    Some(3)
                ))
            );
            disk.flush().unwrap();
        }
        let Store::Disk(store) = &disk.store else {
            unreachable!()
        };
        let path = store.path().to_owned();
        assert!(path.exists());
        drop(disk);
        assert!(!path.exists());
    }
}
