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
//! hold it back). A record whose event time is older than `watermark - within` has *expired*:
//! it can no longer be a partner, and is dropped from memory. Matching checks expiry itself rather than relying on
//! when the memory was last swept, so the result of a join depends only on the records read
//! so far, not on the moment of a sweep — which is what makes the state rebuilt after a
//! restart (by reading the processed records again) join exactly as the lost one would have.
//! A record arriving later than the watermark allows (older than `watermark - within` on
//! arrival) still joins with every partner not yet expired.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use serde_json::Value as Json;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// The driving stream (the left side of `on`).
    Driving,
    /// The stream the window join names as `right`.
    Joined,
}

/// One kept record.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// Its Kafka record key.
    pub record_key: Option<Vec<u8>>,
    /// Its value.
    pub value: Json,
    /// Its event time (ms since the epoch).
    pub event_ms: i64,
    /// Arrival order, for matching in source order and for removal.
    seq: u64,
}

/// One side's kept records.
#[derive(Debug, Default)]
struct Records {
    /// Join key → its records, in arrival order.
    by_key: HashMap<String, Vec<Kept>>,
    /// Record key → the join key its latest record is kept under.
    by_record: HashMap<Vec<u8>, String>,
    /// (event time, arrival, join key): what to drop first.
    by_time: BTreeSet<(i64, u64, String)>,
    /// The highest event time seen on this side.
    max_ms: Option<i64>,
}

impl Records {
    fn insert(&mut self, join_key: String, kept: Kept) {
        if let Some(record_key) = &kept.record_key {
            self.remove_record(record_key);
            self.by_record.insert(record_key.clone(), join_key.clone());
        }
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

/// Both sides of one window join.
#[derive(Debug)]
pub(crate) struct WindowState {
    within_ms: i64,
    driving: Records,
    joined: Records,
    seq: u64,
    /// The partitions still reading their backfill, with the highest event time read from
    /// each so far.
    backfilling: HashMap<(Side, i32), Option<i64>>,
}

impl WindowState {
    /// Empty state for a join of records at most `within_ms` apart, with `backfilling`
    /// the partitions that have backfill to read.
    pub(crate) fn new(within_ms: i64, backfilling: impl IntoIterator<Item = (Side, i32)>) -> Self {
        WindowState {
            within_ms,
            driving: Records::default(),
            joined: Records::default(),
            seq: 0,
            backfilling: backfilling.into_iter().map(|at| (at, None)).collect(),
        }
    }

    /// Notes that a partition has read its backfill.
    pub(crate) fn backfilled(&mut self, side: Side, partition: i32) {
        self.backfilling.remove(&(side, partition));
    }

    fn side(&mut self, side: Side) -> &mut Records {
        match side {
            Side::Driving => &mut self.driving,
            Side::Joined => &mut self.joined,
        }
    }

    /// The watermark (see the module documentation); `None`: nothing expires yet.
    pub(crate) fn watermark(&self) -> Option<i64> {
        if !self.backfilling.is_empty() {
            return self
                .backfilling
                .values()
                .try_fold(i64::MAX, |low, max| max.map(|m| low.min(m)));
        }
        match (self.driving.max_ms, self.joined.max_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The oldest event time a partner may have and not be expired.
    fn horizon(&self) -> Option<i64> {
        self.watermark().map(|w| w.saturating_sub(self.within_ms))
    }

    /// Notes that partition `partition` of `side` read a record of event time `event_ms`
    /// (before matching it, so a record moves the watermark it is judged by).
    pub(crate) fn observe(&mut self, side: Side, partition: i32, event_ms: i64) {
        let higher = |m: Option<i64>| Some(m.map_or(event_ms, |m| m.max(event_ms)));
        let records = self.side(side);
        records.max_ms = higher(records.max_ms);
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
        value: Json,
        event_ms: i64,
    ) {
        self.seq += 1;
        let kept = Kept {
            record_key,
            value,
            event_ms,
            seq: self.seq,
        };
        self.side(side).insert(join_key, kept);
    }

    /// Forgets the record of `side` whose record key is `record_key` (a tombstone).
    pub(crate) fn forget(&mut self, side: Side, record_key: &[u8]) {
        self.side(side).remove_record(record_key);
    }

    /// The records of the side other than `side` that a record of `side` with `join_key`
    /// at `event_ms` meets, in arrival order.
    pub(crate) fn partners(&self, side: Side, join_key: &str, event_ms: i64) -> Vec<&Kept> {
        let other = match side {
            Side::Driving => &self.joined,
            Side::Joined => &self.driving,
        };
        let horizon = self.horizon();
        other
            .by_key
            .get(join_key)
            .map(|records| {
                records
                    .iter()
                    .filter(|k| (k.event_ms - event_ms).abs() <= self.within_ms)
                    .filter(|k| horizon.is_none_or(|h| k.event_ms >= h))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops the expired records from memory.
    pub(crate) fn sweep(&mut self) {
        if let Some(horizon) = self.horizon() {
            self.driving.expire(horizon);
            self.joined.expire(horizon);
        }
    }

    /// How many records are kept (both sides).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.driving.len() + self.joined.len()
    }

    /// The highest event time `side` has seen.
    pub(crate) fn max_ms(&self, side: Side) -> Option<i64> {
        match side {
            Side::Driving => self.driving.max_ms,
            Side::Joined => self.joined.max_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    const HOUR: i64 = 3_600_000;

    fn keys(kept: &[&Kept]) -> Vec<Json> {
        kept.iter().map(|k| k.value["id"].clone()).collect()
    }

    #[test]
    fn partners_are_equal_keys_within_the_window_either_way_round() {
        let mut w = WindowState::new(HOUR, []);
        w.observe(Side::Joined, 0, 10 * HOUR);
        let p = |n: &str| Some(n.as_bytes().to_vec());
        w.keep(
            Side::Joined,
            "o1".into(),
            p("p1"),
            json!({"id": "p1"}),
            10 * HOUR,
        );
        w.keep(
            Side::Joined,
            "o1".into(),
            p("p2"),
            json!({"id": "p2"}),
            12 * HOUR,
        );
        w.keep(
            Side::Joined,
            "o2".into(),
            p("p3"),
            json!({"id": "p3"}),
            10 * HOUR,
        );
        w.observe(Side::Driving, 0, 10 * HOUR + HOUR / 2);
        // Exactly `within` apart still meets; further does not; another key never.
        assert_eq!(
            keys(&w.partners(Side::Driving, "o1", 9 * HOUR)),
            [json!("p1")]
        );
        assert_eq!(
            keys(&w.partners(Side::Driving, "o1", 11 * HOUR)),
            [json!("p1"), json!("p2")]
        );
        assert!(w.partners(Side::Driving, "o1", 8 * HOUR).is_empty());
        assert!(w.partners(Side::Driving, "o3", 10 * HOUR).is_empty());
        // A later record of the same record key replaces the earlier one.
        w.keep(
            Side::Joined,
            "o2".into(),
            p("p1"),
            json!({"id": "p1"}),
            10 * HOUR,
        );
        assert!(w.partners(Side::Driving, "o1", 9 * HOUR).is_empty());
        assert_eq!(
            keys(&w.partners(Side::Driving, "o2", 10 * HOUR)),
            [json!("p3"), json!("p1")]
        );
        w.forget(Side::Joined, b"p3");
        assert_eq!(
            keys(&w.partners(Side::Driving, "o2", 10 * HOUR)),
            [json!("p1")]
        );
    }

    #[test]
    fn while_backfilling_the_slowest_partition_holds_expiry_back() {
        let mut w = WindowState::new(
            HOUR,
            [(Side::Driving, 0), (Side::Driving, 1), (Side::Joined, 0)],
        );
        w.observe(Side::Driving, 0, 1);
        w.keep(Side::Driving, "k".into(), None, json!({"id": "old"}), 1);
        // Partitions that have shown nothing yet: nothing expires.
        w.observe(Side::Driving, 0, 50 * HOUR);
        w.observe(Side::Joined, 0, 50 * HOUR);
        assert_eq!(w.watermark(), None);
        assert_eq!(keys(&w.partners(Side::Joined, "k", 0)), [json!("old")]);
        // The slow partition is at 1h: the old record has not expired yet.
        w.observe(Side::Driving, 1, HOUR);
        assert_eq!(w.watermark(), Some(HOUR));
        assert_eq!(keys(&w.partners(Side::Joined, "k", 0)), [json!("old")]);
        // It moves on: expired, before and after a sweep alike.
        w.observe(Side::Driving, 1, 5 * HOUR);
        assert!(w.partners(Side::Joined, "k", 0).is_empty());
        assert_eq!(w.len(), 1);
        w.sweep();
        assert_eq!(w.len(), 0);
        assert!(w.partners(Side::Joined, "k", 0).is_empty());
    }

    #[test]
    fn after_the_backfill_the_slower_stream_sets_the_watermark() {
        let mut w = WindowState::new(HOUR, [(Side::Driving, 0)]);
        w.observe(Side::Driving, 0, 7 * HOUR);
        assert_eq!(w.watermark(), Some(7 * HOUR));
        w.backfilled(Side::Driving, 0);
        // A stream that has shown nothing does not hold it back.
        assert_eq!(w.watermark(), Some(7 * HOUR));
        w.observe(Side::Joined, 3, 3 * HOUR);
        assert_eq!(w.watermark(), Some(3 * HOUR));
        assert_eq!(w.max_ms(Side::Driving), Some(7 * HOUR));
    }
}
