//! The Kafka topic provisioner against the real broker: creation, idempotence, repair of
//! hand-made drift (configs, deletion, partitions) and idempotent deletion. The oracle is
//! the broker itself, read through a separate admin client and its metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use sluice_provisioners::kafka::{KafkaProvisionError, KafkaProvisioner, TopicPlan, TopicPurpose};
use sluice_tests::TestNamespace;

fn provisioner(ns: &TestNamespace) -> KafkaProvisioner {
    KafkaProvisioner::new(&ns.services().kafka_bootstrap, 1).unwrap()
}

fn plan(name: String, partitions: i32, policy: &str) -> TopicPlan {
    TopicPlan {
        name,
        purpose: TopicPurpose::Output,
        partitions,
        configs: BTreeMap::from([("cleanup.policy".to_owned(), policy.to_owned())]),
    }
}

/// Partition count and `cleanup.policy` as the broker reports them, through the test's own
/// admin client; `None` when the topic is not listed.
async fn broker_view(ns: &TestNamespace, topic: &str) -> Option<(usize, String)> {
    let admin = ns.kafka_admin();
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())?
        .partitions()
        .len();
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described.into_iter().next()?.ok()?;
    let policy = resource.get("cleanup.policy")?.value.clone()?;
    Some((partitions, policy))
}

/// Waits until the broker shows `expected` for `topic`.
async fn wait_for(ns: &TestNamespace, topic: &str, expected: Option<(usize, &str)>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = broker_view(ns, topic).await;
        if view.as_ref().map(|(p, c)| (*p, c.as_str())) == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "topic {topic}: broker shows {view:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn ensure_creates_topics_as_planned() {
    let ns = TestNamespace::new("kprov_create");
    let plans = vec![
        plan(ns.topic("out"), 3, "compact"),
        plan(ns.topic("out.dlq"), 1, "delete"),
    ];
    let kafka = provisioner(&ns);

    let before = kafka.observe(&plans).await.unwrap();
    assert!(before.iter().all(|s| !s.exists()));

    let report = kafka.ensure(&plans).await.unwrap();
    assert_eq!(report.created, vec![ns.topic("out"), ns.topic("out.dlq")]);
    assert!(report.altered.is_empty() && report.unchanged.is_empty());
    assert_eq!(report.mutations, 2);

    assert_eq!(
        broker_view(&ns, &ns.topic("out")).await,
        Some((3, "compact".to_owned()))
    );
    assert_eq!(
        broker_view(&ns, &ns.topic("out.dlq")).await,
        Some((1, "delete".to_owned()))
    );

    let after = kafka.observe(&plans).await.unwrap();
    let out = after[0].observed.as_ref().unwrap();
    assert_eq!(out.partitions, 3);
    assert_eq!(out.configs["cleanup.policy"], "compact");
}

#[tokio::test]
async fn ensure_twice_mutates_nothing_the_second_time() {
    let ns = TestNamespace::new("kprov_twice");
    let plans = vec![plan(ns.topic("out"), 2, "compact")];
    let kafka = provisioner(&ns);

    let first = kafka.ensure(&plans).await.unwrap();
    assert_eq!(first.mutations, 1);

    let second = kafka.ensure(&plans).await.unwrap();
    assert_eq!(second.mutations, 0);
    assert!(second.created.is_empty() && second.altered.is_empty());
    assert_eq!(second.unchanged, vec![ns.topic("out")]);
}

#[tokio::test]
async fn config_changed_by_hand_is_reverted_other_overrides_kept() {
    let ns = TestNamespace::new("kprov_config");
    let topic = ns.topic("out");
    let plans = vec![plan(topic.clone(), 2, "compact")];
    let kafka = provisioner(&ns);
    kafka.ensure(&plans).await.unwrap();

    // By hand: flip the policy and add an override the plan does not mention.
    let admin = ns.kafka_admin();
    let results = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(&topic))
                .set("cleanup.policy", "delete")
                .set("retention.ms", "3600000")],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok));
    wait_for(&ns, &topic, Some((2, "delete"))).await;

    let report = kafka.ensure(&plans).await.unwrap();
    assert_eq!(report.altered, vec![topic.clone()]);
    assert_eq!(report.mutations, 1);
    assert_eq!(
        broker_view(&ns, &topic).await,
        Some((2, "compact".to_owned()))
    );

    let state = kafka.observe(&plans).await.unwrap();
    let overrides = &state[0].observed.as_ref().unwrap().overrides;
    assert_eq!(
        overrides.get("retention.ms").map(String::as_str),
        Some("3600000")
    );

    assert_eq!(kafka.ensure(&plans).await.unwrap().mutations, 0);
}

#[tokio::test]
async fn topic_deleted_by_hand_is_recreated() {
    let ns = TestNamespace::new("kprov_recreate");
    let topic = ns.topic("out");
    let plans = vec![plan(topic.clone(), 2, "compact")];
    let kafka = provisioner(&ns);
    kafka.ensure(&plans).await.unwrap();

    let admin = ns.kafka_admin();
    let results = admin
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok));
    wait_for(&ns, &topic, None).await;

    let report = kafka.ensure(&plans).await.unwrap();
    assert_eq!(report.created, vec![topic.clone()]);
    assert_eq!(
        broker_view(&ns, &topic).await,
        Some((2, "compact".to_owned()))
    );
}

#[tokio::test]
async fn more_partitions_are_added_fewer_are_a_drift_error() {
    let ns = TestNamespace::new("kprov_partitions");
    let topic = ns.topic("out");
    let kafka = provisioner(&ns);
    kafka
        .ensure(&[plan(topic.clone(), 2, "compact")])
        .await
        .unwrap();

    let report = kafka
        .ensure(&[plan(topic.clone(), 5, "compact")])
        .await
        .unwrap();
    assert_eq!(report.altered, vec![topic.clone()]);
    assert_eq!(report.mutations, 1);
    assert_eq!(
        broker_view(&ns, &topic).await,
        Some((5, "compact".to_owned()))
    );

    // Asking for fewer changes nothing, not even the config, and says why.
    let error = kafka
        .ensure(&[plan(topic.clone(), 3, "delete")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KafkaProvisionError::PartitionsShrink {
                observed: 5,
                planned: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        broker_view(&ns, &topic).await,
        Some((5, "compact".to_owned()))
    );
}

#[tokio::test]
async fn delete_is_idempotent() {
    let ns = TestNamespace::new("kprov_delete");
    let topic = ns.topic("out");
    let kafka = provisioner(&ns);
    kafka
        .ensure(&[plan(topic.clone(), 1, "delete")])
        .await
        .unwrap();

    let first = kafka.delete(std::slice::from_ref(&topic)).await.unwrap();
    assert_eq!(first.deleted, vec![topic.clone()]);
    assert!(first.absent.is_empty());
    assert_eq!(broker_view(&ns, &topic).await, None);

    let second = kafka.delete(std::slice::from_ref(&topic)).await.unwrap();
    assert!(second.deleted.is_empty());
    assert_eq!(second.absent, vec![topic.clone()]);
}
