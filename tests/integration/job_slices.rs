//! One product's job shared by two job-running processes: split in slices (each a share of
//! the driving source's partitions), one slice per process, then all of it in the process
//! that is left when the other stops. The target is compared with the independent oracle.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use sluice_tests::oracle::{Event, expected, workload};

use crate::controller::{Cluster, World, wait_for};
use crate::jobs::{converge, filtered, produce};

/// The workers named by the reports of the job's slices, once there are `slices` reports.
async fn workers(world: &World, name: &str, slices: usize) -> Vec<String> {
    let reports = world.job_reports(name).await;
    if reports.len() < slices {
        return Vec::new();
    }
    reports
        .iter()
        .map(|(_, r)| r["worker"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_share_one_job_in_slices_and_one_takes_all_when_the_other_stops() {
    let world = World::new("job_slices").await;
    let name = "shared";
    let history = workload(51, 3000, 400);
    produce(&world, &history).await;
    world
        .submit(&filtered(&world, name, Cluster::Postgres))
        .await;
    let controller = world.run_controller();
    let first = world.run_jobs_with(|c| c.job_slices = 2);
    // The first worker starts alone and runs both slices; the second arrives and takes one.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while workers(&world, name, 2).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no reports of 2 slices"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = world.run_jobs_with(|c| c.job_slices = 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let held: BTreeSet<String> = workers(&world, name, 2).await.into_iter().collect();
        if held.len() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slices stayed with {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let live = wait_for(&world, name, 90, |s| s["phase"] == "Live").await;
    let total: u64 = live["backfill"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["total"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        history.len() as u64,
        "both slices' progress: {live:#}"
    );
    converge(&world, name, Cluster::Postgres, &expected(&history), 60).await;

    // Live events, and one worker goes: the other takes its slice and nothing is lost.
    let more = workload(52, 1000, 400);
    produce(&world, &more).await;
    second.stop().await;
    let all: Vec<Event> = history.iter().chain(more.iter()).cloned().collect();
    converge(&world, name, Cluster::Postgres, &expected(&all), 90).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let held: BTreeSet<String> = workers(&world, name, 2).await.into_iter().collect();
        if held.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slices held by {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let status = world.status(name).await;
    assert_eq!(status["phase"], "Live", "{status:#}");
    assert!(
        status
            .get("deadLetters")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            == 0,
        "{status:#}"
    );

    first.stop().await;
    controller.stop().await;
    assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}
