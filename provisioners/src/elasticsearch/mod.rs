//! Elasticsearch/OpenSearch targets: an index per product version (`<name>_v<N>`) behind a
//! stable alias (`<name>`) that readers use and a rebuild re-points.
//!
//! [`plan`] derives the index settings, mappings and alias actions purely from the output
//! schema; [`provision`] executes them against a real cluster.

pub mod plan;
pub mod provision;

pub use plan::{ElasticsearchPlan, METADATA_FIELDS, plan_elasticsearch, property_mapping};

#[cfg(test)]
mod tests;
