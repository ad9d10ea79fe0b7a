//! Topic plan tests: names, partitions, cleanup policies, refused names; and the diff of a
//! plan against an observed topic.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use sluice_schemas::WriteMode;

use super::{
    KafkaProvisionError, ObservedTopic, TopicChange, TopicPlan, TopicPurpose, diff_topic,
    output_topic_name, plan_topics,
};
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

// Diffing a plan against an observed topic (the pure half of `provision`).

fn plan(partitions: i32, policy: &str) -> TopicPlan {
    TopicPlan {
        name: "sluice.t.p.v1".to_owned(),
        purpose: TopicPurpose::Output,
        partitions,
        configs: BTreeMap::from([("cleanup.policy".to_owned(), policy.to_owned())]),
    }
}

fn observed(partitions: i32, policy: &str) -> ObservedTopic {
    ObservedTopic {
        partitions,
        configs: BTreeMap::from([("cleanup.policy".to_owned(), policy.to_owned())]),
        overrides: BTreeMap::new(),
    }
}

#[test]
fn missing_topic_is_created() {
    assert_eq!(
        diff_topic(&plan(3, "compact"), None).unwrap(),
        TopicChange::Create
    );
}

#[test]
fn matching_topic_is_unchanged() {
    let change = diff_topic(&plan(3, "compact"), Some(&observed(3, "compact"))).unwrap();
    assert_eq!(change, TopicChange::Unchanged);
}

#[test]
fn fewer_partitions_and_other_config_are_altered() {
    let change = diff_topic(&plan(6, "compact"), Some(&observed(3, "delete"))).unwrap();
    assert_eq!(
        change,
        TopicChange::Alter {
            partitions: Some(6),
            configs: BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]),
        }
    );
}

#[test]
fn more_partitions_is_a_drift_error() {
    let error = diff_topic(&plan(2, "compact"), Some(&observed(4, "compact"))).unwrap_err();
    assert!(matches!(
        error,
        KafkaProvisionError::PartitionsShrink {
            observed: 4,
            planned: 2,
            ..
        }
    ));
}
