//! Sluice provisioners.
//!
//! This crate owns everything Sluice creates outside itself: the Kafka topics of a data
//! product and the objects in its target store — a PostgreSQL schema, table, view and role;
//! an OpenSearch/Elasticsearch index and alias; a Redis key layout and ACL user. There is one
//! provisioner per [`sluice_schemas::TargetType`], each able to plan, ensure, observe, grant
//! and delete idempotently. It knows nothing of the metadata store or of approval: the
//! controller decides, provisioners act.

#![deny(missing_docs)]
