//! The Sluice metadata store: the one source of truth.
//!
//! This crate owns persistence of every resource (spec, metadata, status, generation and
//! resource version), the schema versions of each dataset, and — as governance arrives — the
//! audit log, in an embedded SQLite file by default or PostgreSQL in production, with one set
//! of migrations per backend.
//!
//! # Model
//!
//! An object is addressed by an [`ObjectKey`]: its [`Kind`], its team (`""` for the
//! cluster-scoped kinds `Dataset` and `TargetCluster`, the owning team for a `DataProduct`)
//! and its name. Each stored object carries the user part of its `metadata`, its `spec`, an
//! optional `status`, and the server-maintained fields of [`StoredObject`]:
//!
//! - `uid` — a fresh UUID v4 for every incarnation (delete and re-create gives a new one);
//! - `generation` — 1 on creation, incremented only when the spec changes;
//! - `resourceVersion` — changes on every write (spec, metadata or status). It is taken from a
//!   store-wide counter, so it is unique across objects and never reused, even after a
//!   delete and re-create; it is exposed to clients as a string;
//! - `creationTimestamp` and `updatedAt` (UTC, microsecond precision).
//!
//! # Concurrency
//!
//! Every write runs in one transaction that first increments the store-wide revision row.
//! On PostgreSQL that row lock is held until commit, on SQLite the transaction is opened with
//! `BEGIN IMMEDIATE` (and writers of one process queue on an in-process lock before that), so
//! writers are serialised and each read-check-write sees the latest committed state. The
//! object update itself is additionally conditional (`WHERE resource_version = $n`, creation
//! with `ON CONFLICT DO NOTHING`) and its row count checked. A write with a `precondition`
//! (the resourceVersion the caller last saw) that no longer matches — or whose object does
//! not exist — fails with [`StoreError::Conflict`]. Reads never block.
//!
//! # Audit
//!
//! Every change appends an [`AuditEntry`] (who, what, which object, the diff, when, which
//! request) to a hash-chained log in the transaction of the change, whose head is signed
//! with an [`AuditKey`]; a change whose entry cannot be written is not made. See the
//! `audit` section of [`Store`]'s methods and `docs/audit.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_store::StoreError> {
//! use serde_json::json;
//! use sluice_store::{Audit, AuditKey, AuditQuery, ListQuery, ObjectInput, ObjectKey, Store};
//!
//! let key = AuditKey::from_secret(b"the operator's secret")?;
//! let store = Store::connect("sqlite://.sluice/sluice.db?mode=rwc", key).await?;
//! let key = ObjectKey::dataset("shop.orders");
//! let input = ObjectInput::new(json!({"name": "shop.orders"}), json!({"topic": "shop.orders"}));
//! let who = Audit::new("alice", "request-1");
//! let applied = store.apply(&key, input, None, &who).await?;
//! let page = store.list(key.kind(), &ListQuery::default()).await?;
//! assert_eq!(page.items[0].uid, applied.object.uid);
//! let history = store.audit_entries(&AuditQuery::for_object(&key)).await?;
//! assert_eq!(history[0].outcome, "created");
//! assert!(store.verify_audit().await?.ok);
//! # Ok(()) }
//! ```

mod audit;
mod error;
mod model;
pub mod secrets;
mod store;
mod tokens;

pub use audit::{
    Audit, AuditBreak, AuditBreakReason, AuditEntry, AuditInput, AuditKey, AuditQuery,
    AuditVerification, GENESIS_HASH,
};
pub use error::{CorruptValue, StoreError};
pub use model::{
    Applied, Backend, ListQuery, ObjectInput, ObjectKey, Outcome, Page, SchemaVersion, StoredObject,
};
pub use secrets::{SecretBox, SecretError};
pub use sluice_schemas::Kind;
pub use store::{Leadership, Store, StoredCredentials};
pub use tokens::{NewToken, StoredToken};
