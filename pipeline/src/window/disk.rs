//! The records of a window join on disk, once they outgrow the job's memory budget: three
//! [redb] tables in one database file, holding what the in-memory `Records` of both sides
//! hold, keyed so that each question the join asks is one range read of a B-tree.
//!
//! Changes go into one write transaction that stays open across records (it reads its own
//! writes) and is committed, without waiting for the disk, when the transform ends a batch
//! ([`DiskRecords::commit`]). Like the lookup tables' store, it is a cache of what the
//! streams hold, rebuilt on every start, so nothing here needs to survive a crash.

use redb::{ReadableTable, TableDefinition};

use super::{Kept, Side};
use crate::state::{StateError, StateSettings, WriteStore, failed};

/// A kept record as stored: (event time, record key, value JSON).
type Stored<'a> = (i64, Option<&'a [u8]>, &'a [u8]);
/// (side, join key, arrival) → the record: a join key's records in arrival order.
const BY_KEY: TableDefinition<(u8, &str, u64), Stored> = TableDefinition::new("window_by_key");
/// (side, event time, arrival) → join key: what expires first.
const BY_TIME: TableDefinition<(u8, i64, u64), &str> = TableDefinition::new("window_by_time");
/// (side, record key) → (join key, arrival) of the record key's latest record.
const BY_RECORD: TableDefinition<(u8, &[u8]), (&str, u64)> =
    TableDefinition::new("window_by_record");

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Driving => 0,
        Side::Joined => 1,
    }
}

/// A window join's records in a database file, removed when dropped.
#[derive(Debug)]
pub(super) struct DiskRecords {
    store: WriteStore,
}

impl DiskRecords {
    /// An empty store in the settings' directory; `label` (fit for a file name) names it.
    pub(super) fn create(settings: &StateSettings, label: &str) -> Result<Self, StateError> {
        Ok(DiskRecords {
            store: WriteStore::create(settings, label)?,
        })
    }

    /// Keeps `kept` under `join_key` (the caller has removed the record key's earlier record).
    pub(super) fn insert(
        &mut self,
        side: Side,
        join_key: &str,
        kept: &Kept,
    ) -> Result<(), StateError> {
        let s = side_byte(side);
        let (txn, path) = self.store.open()?;
        let fail = failed(path);
        let mut by_key = txn.open_table(BY_KEY).map_err(|e| fail(&e))?;
        let mut by_time = txn.open_table(BY_TIME).map_err(|e| fail(&e))?;
        by_key
            .insert(
                (s, join_key, kept.seq),
                (kept.event_ms, kept.record_key.as_deref(), &*kept.value),
            )
            .map_err(|e| fail(&e))?;
        by_time
            .insert((s, kept.event_ms, kept.seq), join_key)
            .map_err(|e| fail(&e))?;
        if let Some(record_key) = &kept.record_key {
            let mut by_record = txn.open_table(BY_RECORD).map_err(|e| fail(&e))?;
            by_record
                .insert((s, record_key.as_slice()), (join_key, kept.seq))
                .map_err(|e| fail(&e))?;
        }
        Ok(())
    }

    /// Removes the latest record of `record_key`, if one is kept.
    pub(super) fn remove_record(
        &mut self,
        side: Side,
        record_key: &[u8],
    ) -> Result<(), StateError> {
        let s = side_byte(side);
        let (txn, path) = self.store.open()?;
        let fail = failed(path);
        let mut by_record = txn.open_table(BY_RECORD).map_err(|e| fail(&e))?;
        let Some((join_key, seq)) = by_record
            .remove((s, record_key))
            .map_err(|e| fail(&e))?
            .map(|g| {
                let (join_key, seq) = g.value();
                (join_key.to_owned(), seq)
            })
        else {
            return Ok(());
        };
        let mut by_key = txn.open_table(BY_KEY).map_err(|e| fail(&e))?;
        let event_ms = by_key
            .remove((s, join_key.as_str(), seq))
            .map_err(|e| fail(&e))?
            .map(|g| g.value().0);
        if let Some(event_ms) = event_ms {
            let mut by_time = txn.open_table(BY_TIME).map_err(|e| fail(&e))?;
            by_time.remove((s, event_ms, seq)).map_err(|e| fail(&e))?;
        }
        Ok(())
    }

    /// The records of `side` kept under `join_key`, in arrival order.
    pub(super) fn matching(&mut self, side: Side, join_key: &str) -> Result<Vec<Kept>, StateError> {
        let s = side_byte(side);
        let (txn, path) = self.store.open()?;
        let fail = failed(path);
        let by_key = txn.open_table(BY_KEY).map_err(|e| fail(&e))?;
        let range = by_key
            .range((s, join_key, 0)..=(s, join_key, u64::MAX))
            .map_err(|e| fail(&e))?;
        range
            .map(|entry| {
                let (k, v) = entry.map_err(|e| fail(&e))?;
                let (_, _, seq) = k.value();
                let (event_ms, record_key, value) = v.value();
                Ok(Kept {
                    record_key: record_key.map(<[u8]>::to_vec),
                    value: value.into(),
                    event_ms,
                    seq,
                })
            })
            .collect()
    }

    /// Drops every record of `side` older than `before`.
    pub(super) fn expire(&mut self, side: Side, before: i64) -> Result<(), StateError> {
        let s = side_byte(side);
        let (txn, path) = self.store.open()?;
        let fail = failed(path);
        let mut by_time = txn.open_table(BY_TIME).map_err(|e| fail(&e))?;
        let gone: Vec<(i64, u64, String)> = by_time
            .extract_from_if((s, i64::MIN, 0)..(s, before, 0), |_, _| true)
            .map_err(|e| fail(&e))?
            .map(|entry| {
                let (k, v) = entry.map_err(|e| fail(&e))?;
                let (_, event_ms, seq) = k.value();
                Ok((event_ms, seq, v.value().to_owned()))
            })
            .collect::<Result<_, StateError>>()?;
        let mut by_key = txn.open_table(BY_KEY).map_err(|e| fail(&e))?;
        let mut by_record = txn.open_table(BY_RECORD).map_err(|e| fail(&e))?;
        for (_, seq, join_key) in gone {
            let record_key = by_key
                .remove((s, join_key.as_str(), seq))
                .map_err(|e| fail(&e))?
                .and_then(|g| g.value().1.map(<[u8]>::to_vec));
            let Some(record_key) = record_key else {
                continue;
            };
            let latest = by_record
                .get((s, record_key.as_slice()))
                .map_err(|e| fail(&e))?
                .is_some_and(|g| g.value().1 == seq);
            if latest {
                by_record
                    .remove((s, record_key.as_slice()))
                    .map_err(|e| fail(&e))?;
            }
        }
        Ok(())
    }

    /// Commits the changes made since the last commit (without waiting for the disk).
    pub(super) fn commit(&mut self) -> Result<(), StateError> {
        self.store.commit()
    }

    /// How many records `side` keeps.
    #[cfg(test)]
    pub(super) fn len(&mut self, side: Side) -> usize {
        let s = side_byte(side);
        self.store
            .open()
            .and_then(|(txn, path)| {
                let fail = failed(path);
                let table = txn.open_table(BY_TIME).map_err(|e| fail(&e))?;
                let n = table
                    .range((s, i64::MIN, 0)..=(s, i64::MAX, u64::MAX))
                    .map_err(|e| fail(&e))?
                    .count();
                Ok(n)
            })
            .unwrap_or(0)
    }

    /// The database file.
    #[cfg(test)]
    pub(super) fn path(&self) -> &std::path::Path {
        self.store.path()
    }
}
