//! Producing test records in the order given.
//!
//! `FutureProducer::send` retries a record that finds the producer's queue full after a
//! sleep, so of many sends awaited together, a later one can take a slot freed while an
//! earlier one sleeps: the topic then holds the records out of the order they were given
//! (and an oracle computed from that order is wrong). [`send_in_order`] enqueues each
//! record before the next, waiting for room itself, and then awaits every delivery.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Sends `records` in their order (per partition, the topic holds them in that order) and
/// waits until every one is acknowledged; returns each one's partition and offset. Panics
/// on a delivery failure: it is test support.
pub async fn send_in_order<'a, K, P>(
    producer: &FutureProducer,
    records: impl IntoIterator<Item = FutureRecord<'a, K, P>>,
) -> Vec<(i32, i64)>
where
    K: ToBytes + ?Sized + 'a,
    P: ToBytes + ?Sized + 'a,
{
    let mut deliveries = Vec::new();
    for record in records {
        let mut record = record;
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => panic!("producing a test record: {e}"),
            }
        }
    }
    let mut positions = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(delivered)) => positions.push((delivered.partition, delivered.offset)),
            Ok(Err((e, _))) => panic!("delivering a test record: {e}"),
            Err(_) => panic!("the producer was dropped before a test record was delivered"),
        }
    }
    positions
}
