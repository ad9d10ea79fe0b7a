//! The state of a `window` join (DESIGN §3): the records of both joined streams that may
//! still meet a partner, kept by join key and event time.
//!
//! A record meets the records of the other side whose join key is equal and whose event
//! times lie within `within` of its own. Each side keeps, per record key, only its latest
//! record (a keyed stream's later record replaces the earlier one, as the materialized view
//! wants); records without a key are all kept.
//!
//! **Expiry.** Records of one partition come roughly in event-time order, but partitions and
//! the two streams are read at their own paces. So while partitions still have backfill to
//! read, the *watermark* is the lowest of their highest event times read so far (none while
//! one of them has shown nothing yet); once every partition has read its backfill, it is the
//! lower of the two streams' highest event times (a stream that has shown nothing does not
//! hold it back), held back to the lowest highest event time of any partition read, but
//! never more than `within` below the streams' figure. (A batch can hold one partition's
//! newer records before another's older ones; the hold keeps the older ones' partners,
//! while a partition that stopped receiving records keeps at most one window more.) Every
//! figure is a maximum or minimum of what was read, so it does not depend on the order it
//! was read in. A record whose event time is older than `watermark - within` has *expired*:
//! it can no longer be a partner, and is dropped from memory. Matching checks expiry itself rather than relying on
//! when the memory was last swept, so the result of a join depends only on the records read
//! so far, not on the moment of a sweep — which is what makes the state rebuilt after a
//! restart (by reading the processed records again) join exactly as the lost one would have.
//! A record arriving later than the watermark allows (older than `watermark - within` on
//! arrival) still joins with every partner not yet expired.

mod disk;

use std::collections::{BTreeSet, HashMap};

use serde_json::Value as Json;

use crate::state::{StateError, StateSettings, file_label};
use disk::DiskRecords;

/// Bytes counted per kept record besides its value, keys and join key (map entries, the
/// time index's entry, the `Kept` itself).
const KEPT_OVERHEAD: usize = 112;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// The driving stream (the left side of `on`).
    Driving,
    /// The stream the window join names as `right`.
    Joined,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Driving => Side::Joined,
            Side::Joined => Side::Driving,
        }
    }
}

/// A record a record meets: its record key and value.
pub(crate) type Partner = (Option<Vec<u8>>, Json);

/// One kept record.
#[derive(Debug, Clone)]
struct Kept {
    /// Its Kafka record key.
    record_key: Option<Vec<u8>>,
    /// Its value as JSON text: a third of what the parsed document takes, and what the
    /// disk store holds anyway.
    value: Box<[u8]>,
    /// Its event time (ms since the epoch).
    event_ms: i64,
    /// Arrival order, for matching in source order and for removal.
    seq: u64,
}

impl Kept {
    /// Roughly the memory it takes, kept under `join_key`.
    fn footprint(&self, join_key: &str) -> usize {
        self.value.len()
            + 2 * join_key.len()
            + 2 * self.record_key.as_ref().map_or(0, Vec::len)
            + KEPT_OVERHEAD
    }
}

/// One side's kept records, in memory.
#[derive(Debug, Default)]
struct Records {
    /// Join key → its records, in arrival order.
    by_key: HashMap<String, Vec<Kept>>,
    /// Record key → the join key its latest record is kept under.
    by_record: HashMap<Vec<u8>, String>,
    /// (event time, arrival, join key): what to drop first.
    by_time: BTreeSet<(i64, u64, String)>,
    /// Bytes the records take, roughly.
    bytes: usize,
}

impl Records {
    fn insert(&mut self, join_key: String, kept: Kept) {
        if let Some(record_key) = &kept.record_key {
            self.remove_record(record_key);
            self.by_record.insert(record_key.clone(), join_key.clone());
        }
        self.bytes += kept.footprint(&join_key);
        self.by_time
            .insert((kept.event_ms, kept.seq, join_key.clone()));
        self.by_key.entry(join_key).or_default().push(kept);
    }

    fn remove_record(&mut self, record_key: &[u8]) {
        let Some(join_key) = self.by_record.remove(record_key) else {
            return;
        };
        if let Some(records) = self.by_key.get_mut(&join_key) {
            if let Some(i) = records
                .iter()
                .position(|k| k.record_key.as_deref() == Some(record_key))
            {
                let gone = records.remove(i);
                self.bytes = self.bytes.saturating_sub(gone.footprint(&join_key));
                self.by_time
                    .remove(&(gone.event_ms, gone.seq, join_key.clone()));
            }
            if records.is_empty() {
                self.by_key.remove(&join_key);
            }
        }
    }

    /// Drops every record older than `before`.
    fn expire(&mut self, before: i64) {
        while let Some(first) = self.by_time.first() {
            if first.0 >= before {
                break;
            }
            let Some((event_ms, seq, join_key)) = self.by_time.pop_first() else {
                break;
            };
            if let Some(records) = self.by_key.get_mut(&join_key) {
                if let Some(i) = records.iter().position(|k| k.seq == seq) {
                    let gone = records.remove(i);
                    self.bytes = self.bytes.saturating_sub(gone.footprint(&join_key));
                    if let Some(record_key) = &gone.record_key
                        && self.by_record.get(record_key) == Some(&join_key)
                    {
                        self.by_record.remove(record_key);
                    }
                }
                if records.is_empty() {
                    self.by_key.remove(&join_key);
                }
            }
            debug_assert!(event_ms < before);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_time.len()
    }
}

/// Where the records of both sides are: in memory up to the budget, then on disk for the
/// rest of the job's run (as the lookup tables, [`crate::state`]).
#[derive(Debug)]
enum Store {
    Memory(Box<Sides>),
    Disk(Box<DiskRecords>),
}

/// The records of both sides, in memory.
#[derive(Debug, Default)]
struct Sides {
    driving: Records,
    joined: Records,
}

/// Both sides of one window join.
#[derive(Debug)]
pub(crate) struct WindowState {
    within_ms: i64,
    store: Store,
    /// The highest event time seen on each partition of either side (a side's highest is
    /// the highest of its partitions').
    partition_max: HashMap<(Side, i32), i64>,
    seq: u64,
    /// The partitions still reading their backfill, with the highest event time read from
    /// each so far.
    backfilling: HashMap<(Side, i32), Option<i64>>,
    settings: StateSettings,
    /// Names the database file, should the records move to disk.
    label: String,
}

impl WindowState {
    /// Empty state for a join of records at most `within_ms` apart, with `backfilling`
    /// the partitions that have backfill to read. Its records stay in memory up to
    /// `settings.memory_bytes`, then move to a database in `settings.dir` named after
    /// `label`.
    pub(crate) fn new(
        within_ms: i64,
        backfilling: impl IntoIterator<Item = (Side, i32)>,
        settings: StateSettings,
        label: &str,
    ) -> Self {
        WindowState {
            within_ms,
            store: Store::Memory(Box::default()),
            partition_max: HashMap::new(),
            seq: 0,
            backfilling: backfilling.into_iter().map(|at| (at, None)).collect(),
            settings,
            label: format!("{}_window", file_label(label)),
        }
    }

    /// Notes that a partition has read its backfill.
    pub(crate) fn backfilled(&mut self, side: Side, partition: i32) {
        self.backfilling.remove(&(side, partition));
    }

    /// The watermark (see the module documentation); `None`: nothing expires yet.
    pub(crate) fn watermark(&self) -> Option<i64> {
        if !self.backfilling.is_empty() {
            return self
                .backfilling
                .values()
                .try_fold(i64::MAX, |low, max| max.map(|m| low.min(m)));
        }
        let streams = match (self.max_ms(Side::Driving), self.max_ms(Side::Joined)) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        // A batch may hold one partition's newer records before another's older ones: a
        // partition behind the others holds the watermark back, by at most one window, so
        // a partition that stopped receiving records keeps no more than twice the state.
        let slowest = self
            .partition_max
            .values()
            .copied()
            .min()
            .unwrap_or(streams);
        Some(
            slowest
                .max(streams.saturating_sub(self.within_ms))
                .min(streams),
        )
    }

    /// The oldest event time a partner may have and not be expired.
    fn horizon(&self) -> Option<i64> {
        self.watermark().map(|w| w.saturating_sub(self.within_ms))
    }

    /// Notes that partition `partition` of `side` read a record of event time `event_ms`
    /// (before matching it, so a record moves the watermark it is judged by).
    pub(crate) fn observe(&mut self, side: Side, partition: i32, event_ms: i64) {
        let higher = |m: Option<i64>| Some(m.map_or(event_ms, |m| m.max(event_ms)));
        let seen = self
            .partition_max
            .entry((side, partition))
            .or_insert(event_ms);
        *seen = (*seen).max(event_ms);
        if let Some(max) = self.backfilling.get_mut(&(side, partition)) {
            *max = higher(*max);
        }
    }

    /// Keeps a record of `side` under `join_key` (replacing the record of the same record
    /// key).
    pub(crate) fn keep(
        &mut self,
        side: Side,
        join_key: String,
        record_key: Option<Vec<u8>>,
        value: &Json,
        event_ms: i64,
    ) -> Result<(), StateError> {
        self.seq += 1;
        let kept = Kept {
            record_key,
            value: value.to_string().into_bytes().into_boxed_slice(),
            event_ms,
            seq: self.seq,
        };
        match &mut self.store {
            Store::Memory(sides) => {
                let Sides { driving, joined } = &mut **sides;
                match side {
                    Side::Driving => driving.insert(join_key, kept),
                    Side::Joined => joined.insert(join_key, kept),
                }
                if driving.bytes + joined.bytes > self.settings.memory_bytes {
                    self.spill()?;
                }
                Ok(())
            }
            Store::Disk(disk) => {
                if let Some(record_key) = &kept.record_key {
                    disk.remove_record(side, record_key)?;
                }
                disk.insert(side, &join_key, &kept)
            }
        }
    }

    /// Moves every kept record to a new database on disk.
    fn spill(&mut self) -> Result<(), StateError> {
        let mut disk = DiskRecords::create(&self.settings, &self.label)?;
        let Store::Memory(sides) = &self.store else {
            return Ok(());
        };
        let Sides { driving, joined } = &**sides;
        let bytes = driving.bytes + joined.bytes;
        for (side, records) in [(Side::Driving, driving), (Side::Joined, joined)] {
            for (join_key, kept) in &records.by_key {
                for k in kept {
                    disk.insert(side, join_key, k)?;
                }
            }
        }
        disk.commit()?;
        tracing::info!(label = %self.label, bytes, "window-join records moved to disk");
        self.store = Store::Disk(Box::new(disk));
        Ok(())
    }

    /// Forgets the record of `side` whose record key is `record_key` (a tombstone).
    pub(crate) fn forget(&mut self, side: Side, record_key: &[u8]) -> Result<(), StateError> {
        match &mut self.store {
            Store::Memory(sides) => {
                let Sides { driving, joined } = &mut **sides;
                match side {
                    Side::Driving => driving.remove_record(record_key),
                    Side::Joined => joined.remove_record(record_key),
                }
                Ok(())
            }
            Store::Disk(disk) => disk.remove_record(side, record_key),
        }
    }

    /// The records of the side other than `side` that a record of `side` with `join_key`
    /// at `event_ms` meets, in arrival order: their record keys and values.
    pub(crate) fn partners(
        &mut self,
        side: Side,
        join_key: &str,
        event_ms: i64,
    ) -> Result<Vec<Partner>, StateError> {
        let horizon = self.horizon();
        let within = self.within_ms.unsigned_abs();
        let meets = |k: &&Kept| {
            k.event_ms.abs_diff(event_ms) <= within && horizon.is_none_or(|h| k.event_ms >= h)
        };
        // The values were serialized from JSON by `keep`, so they always parse.
        let parsed = |k: &Kept| {
            serde_json::from_slice(&k.value)
                .ok()
                .map(|v| (k.record_key.clone(), v))
        };
        Ok(match &mut self.store {
            Store::Memory(sides) => {
                let Sides { driving, joined } = &mut **sides;
                let other = match side.other() {
                    Side::Driving => &*driving,
                    Side::Joined => &*joined,
                };
                other
                    .by_key
                    .get(join_key)
                    .into_iter()
                    .flatten()
                    .filter(meets)
                    .filter_map(parsed)
                    .collect()
            }
            Store::Disk(disk) => disk
                .matching(side.other(), join_key)?
                .iter()
                .filter(meets)
                .filter_map(parsed)
                .collect(),
        })
    }

    /// Drops the expired records, and writes the changes of records kept on disk; called
    /// at the end of each batch the transform commits.
    pub(crate) fn sweep(&mut self) -> Result<(), StateError> {
        let horizon = self.horizon();
        match &mut self.store {
            Store::Memory(sides) => {
                let Sides { driving, joined } = &mut **sides;
                if let Some(horizon) = horizon {
                    driving.expire(horizon);
                    joined.expire(horizon);
                }
                Ok(())
            }
            Store::Disk(disk) => {
                if let Some(horizon) = horizon {
                    disk.expire(Side::Driving, horizon)?;
                    disk.expire(Side::Joined, horizon)?;
                }
                disk.commit()
            }
        }
    }

    /// How many records are kept (both sides).
    #[cfg(test)]
    pub(crate) fn len(&mut self) -> usize {
        match &mut self.store {
            Store::Memory(sides) => sides.driving.len() + sides.joined.len(),
            Store::Disk(disk) => disk.len(Side::Driving) + disk.len(Side::Joined),
        }
    }

    /// Whether the records moved to disk.
    #[cfg(test)]
    pub(crate) fn on_disk(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }

    /// The highest event time `side` has seen.
    pub(crate) fn max_ms(&self, side: Side) -> Option<i64> {
        self.partition_max
            .iter()
            .filter(|((s, _), _)| *s == side)
            .map(|(_, max)| *max)
            .max()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    const HOUR: i64 = 3_600_000;

    fn keys(met: Result<Vec<Partner>, StateError>) -> Vec<Json> {
        met.unwrap().iter().map(|(_, v)| v["id"].clone()).collect()
    }

    /// Settings that keep the records in memory, or that move them to disk at the first.
    fn stores() -> [StateSettings; 2] {
        let dir = std::env::temp_dir().join(format!("sluice-window-test-{}", std::process::id()));
        [
            StateSettings {
                dir: dir.clone(),
                memory_bytes: usize::MAX,
            },
            StateSettings {
                dir,
                memory_bytes: 0,
            },
        ]
    }

    #[test]
    fn partners_are_equal_keys_within_the_window_either_way_round() {
        for settings in stores() {
            let disk = settings.memory_bytes == 0;
            let mut w = WindowState::new(HOUR, [], settings, "job a/b v1");
            w.observe(Side::Joined, 0, 10 * HOUR);
            let p = |n: &str| Some(n.as_bytes().to_vec());
            let id = |n: &str| json!({"id": n});
            w.keep(Side::Joined, "o1".into(), p("p1"), &id("p1"), 10 * HOUR)
                .unwrap();
            w.keep(Side::Joined, "o1".into(), p("p2"), &id("p2"), 12 * HOUR)
                .unwrap();
            w.keep(Side::Joined, "o2".into(), p("p3"), &id("p3"), 10 * HOUR)
                .unwrap();
            assert_eq!(w.on_disk(), disk);
            w.observe(Side::Driving, 0, 10 * HOUR + HOUR / 2);
            // Exactly `within` apart still meets; further does not; another key never.
            assert_eq!(
                keys(w.partners(Side::Driving, "o1", 9 * HOUR)),
                [json!("p1")]
            );
            assert_eq!(
                keys(w.partners(Side::Driving, "o1", 11 * HOUR)),
                [json!("p1"), json!("p2")]
            );
            assert!(keys(w.partners(Side::Driving, "o1", 8 * HOUR)).is_empty());
            assert!(keys(w.partners(Side::Driving, "o3", 10 * HOUR)).is_empty());
            // The other side's records are not partners of its own.
            assert!(keys(w.partners(Side::Joined, "o1", 10 * HOUR)).is_empty());
            // A later record of the same record key replaces the earlier one.
            w.keep(Side::Joined, "o2".into(), p("p1"), &id("p1"), 10 * HOUR)
                .unwrap();
            assert!(keys(w.partners(Side::Driving, "o1", 9 * HOUR)).is_empty());
            assert_eq!(
                keys(w.partners(Side::Driving, "o2", 10 * HOUR)),
                [json!("p3"), json!("p1")]
            );
            w.forget(Side::Joined, b"p3").unwrap();
            let met = w.partners(Side::Driving, "o2", 10 * HOUR).unwrap();
            assert_eq!(met, [(p("p1"), id("p1"))]);
            // Committed changes read the same.
            w.sweep().unwrap();
            assert_eq!(
                keys(w.partners(Side::Driving, "o2", 10 * HOUR)),
                [json!("p1")]
            );
            assert_eq!(w.len(), 2, "disk: {disk}");
        }
    }

    #[test]
    fn while_backfilling_the_slowest_partition_holds_expiry_back() {
        for settings in stores() {
            let mut w = WindowState::new(
                HOUR,
                [(Side::Driving, 0), (Side::Driving, 1), (Side::Joined, 0)],
                settings,
                "job",
            );
            w.observe(Side::Driving, 0, 1);
            w.keep(Side::Driving, "k".into(), None, &json!({"id": "old"}), 1)
                .unwrap();
            // Partitions that have shown nothing yet: nothing expires.
            w.observe(Side::Driving, 0, 50 * HOUR);
            w.observe(Side::Joined, 0, 50 * HOUR);
            assert_eq!(w.watermark(), None);
            assert_eq!(keys(w.partners(Side::Joined, "k", 0)), [json!("old")]);
            // The slow partition is at 1h: the old record has not expired yet.
            w.observe(Side::Driving, 1, HOUR);
            assert_eq!(w.watermark(), Some(HOUR));
            assert_eq!(keys(w.partners(Side::Joined, "k", 0)), [json!("old")]);
            // It moves on: expired, before and after a sweep alike.
            w.observe(Side::Driving, 1, 5 * HOUR);
            assert!(keys(w.partners(Side::Joined, "k", 0)).is_empty());
            assert_eq!(w.len(), 1);
            w.sweep().unwrap();
            assert_eq!(w.len(), 0);
            assert!(keys(w.partners(Side::Joined, "k", 0)).is_empty());
        }
    }

    #[test]
    fn after_the_backfill_the_slower_stream_sets_the_watermark() {
        let [settings, _] = stores();
        let mut w = WindowState::new(HOUR, [(Side::Driving, 0)], settings, "job");
        w.observe(Side::Driving, 0, 7 * HOUR);
        assert_eq!(w.watermark(), Some(7 * HOUR));
        w.backfilled(Side::Driving, 0);
        // A stream that has shown nothing does not hold it back.
        assert_eq!(w.watermark(), Some(7 * HOUR));
        w.observe(Side::Joined, 3, 3 * HOUR);
        assert_eq!(w.watermark(), Some(3 * HOUR));
        assert_eq!(w.max_ms(Side::Driving), Some(7 * HOUR));
    }

    /// A window sliding over many records: the same partners in memory and on disk, the
    /// records move to disk once past the budget, the disk store keeps about one window
    /// (its file does not grow with the records that passed through) and goes when dropped.
    #[test]
    fn a_sliding_window_joins_the_same_in_memory_and_on_disk() {
        let [large, mut small] = stores();
        small.memory_bytes = 200_000;
        let mut memory = WindowState::new(HOUR, [], large, "job");
        let mut disk = WindowState::new(HOUR, [], small, "job");
        let mut file_sizes = Vec::new();
        let mut path = None;
        for round in 0..20i64 {
            for n in 0..2_000i64 {
                let at = round * HOUR + n * (HOUR / 2_000);
                let key = format!("k{}", n % 300);
                // Each record key comes twice in a row: the second replaces the first.
                let record = format!("r{}", (round * 2_000 + n) / 2);
                let value = json!({"id": format!("{round}-{n}"), "pad": "x".repeat(40)});
                for w in [&mut memory, &mut disk] {
                    w.observe(Side::Joined, 0, at);
                    w.keep(
                        Side::Joined,
                        key.clone(),
                        Some(record.clone().into_bytes()),
                        &value,
                        at,
                    )
                    .unwrap();
                    if n % 7 == 0 {
                        let earlier = format!("r{}", (round * 2_000 + n - 9) / 2);
                        w.forget(Side::Joined, earlier.as_bytes()).unwrap();
                    }
                    w.observe(Side::Driving, 0, at);
                }
                if n % 97 == 0 {
                    assert_eq!(
                        memory.partners(Side::Driving, &key, at).unwrap(),
                        disk.partners(Side::Driving, &key, at).unwrap(),
                        "round {round}, record {n}"
                    );
                }
            }
            memory.sweep().unwrap();
            disk.sweep().unwrap();
            assert_eq!(memory.len(), disk.len(), "round {round}");
            if let Store::Disk(d) = &disk.store {
                path = Some(d.path().to_owned());
                file_sizes.push(std::fs::metadata(d.path()).unwrap().len());
            }
        }
        assert!(disk.on_disk() && !memory.on_disk());
        // About one window (an hour: 1,000 record keys, less those forgotten), not the
        // 20,000 that passed through.
        assert!((600..1_100).contains(&memory.len()), "{}", memory.len());
        let (first, last) = (file_sizes[2], file_sizes[file_sizes.len() - 1]);
        assert!(
            last < 2 * first,
            "the file grew from {first} to {last} bytes"
        );
        let path = path.unwrap();
        drop(disk);
        assert!(!path.exists());
    }

    /// After the backfill, a partition read behind the others keeps its partners: a batch
    /// held a payment two and a half hours after an order from one partition before another
    /// partition's payment exactly one hour after it, which must still meet the order. A
    /// partition that stays behind holds expiry back by one window at most.
    #[test]
    fn a_partition_read_behind_the_others_keeps_its_partners() {
        for settings in stores() {
            let mut w = WindowState::new(HOUR, [], settings, "job a/b v1");
            let id = |n: &str| json!({"id": n});
            let p = |n: &str| Some(n.as_bytes().to_vec());
            let t = 100 * HOUR;
            w.observe(Side::Joined, 0, t);
            w.observe(Side::Driving, 0, t);
            w.keep(Side::Driving, "o-1".into(), p("o-1"), &id("o-1"), t)
                .unwrap();
            // Orders read on to 70 minutes later, payments of partition 1 to 150.
            w.observe(Side::Driving, 0, t + 70 * HOUR / 60);
            w.observe(Side::Joined, 1, t + 150 * HOUR / 60);
            // Partition 0's payment of o-1, one hour after it, comes last.
            w.observe(Side::Joined, 0, t + HOUR);
            assert_eq!(w.watermark(), Some(t + HOUR));
            assert_eq!(
                keys(w.partners(Side::Joined, "o-1", t + HOUR)),
                [json!("o-1")]
            );
            // A partition that stays behind holds the watermark one window below the
            // streams' at most.
            w.observe(Side::Driving, 0, t + 10 * HOUR);
            w.observe(Side::Joined, 1, t + 10 * HOUR);
            assert_eq!(w.watermark(), Some(t + 9 * HOUR));
            assert!(keys(w.partners(Side::Joined, "o-1", t + HOUR)).is_empty());
        }
    }
}
