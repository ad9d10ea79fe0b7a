//! Topic plan tests: names, partitions, cleanup policies, refused names.

#![allow(clippy::unwrap_used)]

use sluice_schemas::WriteMode;

use super::{TopicPurpose, output_topic_name, plan_topics};
use crate::plan::PlanError;

#[test]
fn upsert_products_get_a_compacted_output_topic() {
    let topics = plan_topics("team-a", "orders", 3, WriteMode::Upsert, &[3, 12, 6]).unwrap();
    let summary: Vec<String> = topics.iter().map(|t| t.summary()).collect();
    assert_eq!(
        summary,
        [
            "Topic `sluice.team-a.orders.v3` (output): 12 partition(s), cleanup.policy=compact",
            "Topic `sluice.team-a.orders.v3.dlq` (dead letters): 1 partition(s), cleanup.policy=delete",
        ]
    );
    assert_eq!(topics[0].purpose, TopicPurpose::Output);
    assert_eq!(topics[1].purpose, TopicPurpose::DeadLetter);
}

#[test]
fn append_products_keep_everything_until_retention() {
    let topics = plan_topics("t", "p", 1, WriteMode::Append, &[4]).unwrap();
    assert_eq!(topics[0].configs["cleanup.policy"], "delete");
    assert_eq!(topics[0].partitions, 4);
}

#[test]
fn unknown_partition_counts_default_to_one() {
    for sources in [&[][..], &[-1][..], &[0, -1][..]] {
        let topics = plan_topics("t", "p", 1, WriteMode::Upsert, sources).unwrap();
        assert_eq!(topics[0].partitions, 1, "{sources:?}");
    }
    let topics = plan_topics("t", "p", 1, WriteMode::Upsert, &[-1, 5]).unwrap();
    assert_eq!(topics[0].partitions, 5);
}

#[test]
fn names_outside_kafka_rules_are_refused() {
    for team in ["a\"; DROP TABLE x; --", "a b", "a/b", "ü"] {
        assert!(
            matches!(output_topic_name(team, "p", 1), Err(PlanError::Name(_))),
            "{team:?}"
        );
    }
    // 249 characters at most, the `.dlq` suffix included.
    let long = "x".repeat(236);
    assert!(output_topic_name(&long, "p", 1).is_ok());
    assert!(plan_topics(&long, "p", 1, WriteMode::Upsert, &[]).is_err());
    assert_eq!(output_topic_name("t", "p", 0), Err(PlanError::ZeroVersion));
}
