//! The in-process handoff from a job's transform to its sink.
//!
//! The sink applies the output topic's records, each versioned by its offset. When one
//! process runs the whole job (one slice), every record of that topic written since the job
//! started is one the transform of this process produced and committed: its producer
//! fenced every earlier one at start. So instead of reading those records back from the
//! broker (a fetch, a copy and a parse of each, in Sluice and in the broker), the sink takes
//! them from the transform once their transaction is committed, with the offsets the
//! broker gave them in its delivery reports. It reads the topic only for what was written
//! before the job started: from its committed position up to the topic's end at start
//! ([`SinkHandoff::until`]). The records, their order and their versions are the topic's, so what
//! the target gets is exactly what reading the topic would give it, and a crash at any
//! moment leaves the sink to read on from its committed position, as it always does.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};

use crate::sink::{RowText, SinkRecord};

/// The transform's producer: its delivery reports tell the offsets of output records.
pub(super) type JobProducer = BaseProducer<Delivered>;

/// The delivery opaque of a record that is not handed to the sink (a dead letter; every
/// record of a job in several slices).
pub(super) const NOT_HANDED: usize = usize::MAX;

/// Producer context recording where each handed record landed: its index among the open
/// transaction's handed records (the delivery opaque), its partition and offset.
#[derive(Default)]
pub(super) struct Delivered {
    landed: Mutex<Vec<(usize, i32, i64)>>,
}

impl ClientContext for Delivered {}

impl ProducerContext for Delivered {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        // A failed delivery fails the transaction's commit: nothing of it is handed.
        if index == NOT_HANDED {
            return;
        }
        if let Ok(message) = result
            && let Ok(mut landed) = self.landed.lock()
        {
            landed.push((index, message.partition(), message.offset()));
        }
    }
}

impl Delivered {
    /// Takes what the delivery reports told since the last call.
    fn take(&self) -> Vec<(usize, i32, i64)> {
        self.landed
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Forgets what the delivery reports told (a transaction that was aborted).
    pub(super) fn clear(&self) {
        let _ = self.take();
    }
}

/// One output record produced in the open transaction, kept to be handed to the sink once
/// the transaction is committed.
#[derive(Debug)]
pub(super) struct Produced {
    /// The product key as the sink reads it (empty in append mode).
    pub key: String,
    /// The row's JSON text; `None` for "the key has no row".
    pub row: Option<Vec<u8>>,
    /// The source event's time, ms since the epoch.
    pub event_ms: Option<i64>,
}

/// What the transform hands to the sink after a committed transaction.
#[derive(Debug, Default)]
pub(super) struct Handed {
    /// The transaction's output records, in the order produced (per partition, the order
    /// of their offsets), each versioned by its offset.
    pub records: Vec<SinkRecord>,
    /// The newest source event time among them.
    pub newest_ms: Option<i64>,
    /// Set on the first handoff after the transform reached the watermarks taken at its
    /// start: once the sink has applied it (and everything handed before), the backfill
    /// is complete.
    pub backfill_done: bool,
}

impl Handed {
    /// Appends `later`, handed after this: one batch for the sink, in the order handed.
    pub fn absorb(&mut self, later: Handed) {
        self.records.extend(later.records);
        self.newest_ms = self.newest_ms.max(later.newest_ms);
        self.backfill_done |= later.backfill_done;
    }
}

/// Pairs the records of a committed transaction with the offsets their delivery reports
/// told. Every one must have been reported (a committed transaction's records were all
/// delivered); a missing offset is an error, and the job then starts again, its sink
/// reading the topic.
pub(super) fn pair(context: &Delivered, produced: Vec<Produced>) -> Result<Handed, String> {
    let mut landed = context.take();
    if landed.len() != produced.len() {
        return Err(format!(
            "{} output records produced, {} delivery reports",
            produced.len(),
            landed.len()
        ));
    }
    landed.sort_unstable_by_key(|l| l.0);
    let mut records = Vec::with_capacity(produced.len());
    let mut newest_ms: Option<i64> = None;
    for (i, (record, (index, partition, offset))) in produced.into_iter().zip(landed).enumerate() {
        if index != i {
            return Err(format!("no delivery report for output record {i}"));
        }
        if let Some(ms) = record.event_ms {
            newest_ms = Some(newest_ms.map_or(ms, |n| n.max(ms)));
        }
        let row = match record.row {
            None => None,
            Some(bytes) => Some(
                String::from_utf8(bytes)
                    .ok()
                    .and_then(RowText::from_output)
                    .ok_or_else(|| format!("output record {i} is not a JSON object"))?,
            ),
        };
        records.push(SinkRecord {
            key: record.key,
            version: offset,
            row,
            partition,
        });
    }
    Ok(Handed {
        records,
        newest_ms,
        backfill_done: false,
    })
}

/// The sink's end of the handoff.
#[derive(Debug)]
pub(super) struct SinkHandoff {
    /// The transform's committed records.
    pub handed: tokio::sync::mpsc::Receiver<Handed>,
    /// Per output partition, the topic's end when the job started (its producer had fenced
    /// every earlier one): the sink reads the topic below it and takes handed records from
    /// there on.
    pub until: BTreeMap<i32, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(key: &str, row: Option<&str>, event_ms: Option<i64>) -> Produced {
        Produced {
            key: key.to_owned(),
            row: row.map(|r| r.as_bytes().to_vec()),
            event_ms,
        }
    }

    #[test]
    fn records_get_the_offsets_their_delivery_reports_told_whatever_order_they_came_in() {
        let context = Delivered::default();
        context
            .landed
            .lock()
            .unwrap()
            .extend([(1, 2, 70), (0, 0, 12), (2, 0, 13)]);
        let handed = pair(
            &context,
            vec![
                produced("a", Some(r#"{"n":1}"#), Some(5)),
                produced("b", None, Some(9)),
                produced("c", Some(r#"{"n":3}"#), None),
            ],
        )
        .unwrap();
        let got: Vec<(&str, i32, i64, Option<&str>)> = handed
            .records
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.partition,
                    r.version,
                    r.row.as_ref().map(RowText::as_str),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 0, 12, Some(r#"{"n":1}"#)),
                ("b", 2, 70, None),
                ("c", 0, 13, Some(r#"{"n":3}"#)),
            ]
        );
        assert_eq!(handed.newest_ms, Some(9));
        assert!(context.take().is_empty(), "the reports are taken");
    }

    #[test]
    fn handoffs_taken_together_keep_their_order_newest_time_and_end_of_backfill() {
        let record = |key: &str, version| SinkRecord {
            key: key.to_owned(),
            version,
            row: None,
            partition: 0,
        };
        let mut first = Handed {
            records: vec![record("a", 1), record("b", 2)],
            newest_ms: Some(50),
            backfill_done: false,
        };
        first.absorb(Handed {
            records: vec![record("a", 4)],
            newest_ms: None,
            backfill_done: true,
        });
        let versions: Vec<i64> = first.records.iter().map(|r| r.version).collect();
        assert_eq!(versions, [1, 2, 4]);
        assert_eq!(first.newest_ms, Some(50));
        assert!(first.backfill_done);
        first.absorb(Handed {
            records: Vec::new(),
            newest_ms: Some(70),
            backfill_done: false,
        });
        assert_eq!(first.newest_ms, Some(70));
        assert!(first.backfill_done);
    }

    #[test]
    fn a_record_without_a_delivery_report_is_an_error_not_a_guess() {
        let context = Delivered::default();
        context
            .landed
            .lock()
            .unwrap()
            .extend([(0, 0, 12), (0, 0, 12)]);
        let missing = pair(
            &context,
            vec![produced("a", None, None), produced("b", None, None)],
        );
        assert!(missing.is_err());
        let context = Delivered::default();
        context.landed.lock().unwrap().push((0, 0, 12));
        let short = pair(
            &context,
            vec![produced("a", None, None), produced("b", None, None)],
        );
        assert!(short.is_err());
    }
}
