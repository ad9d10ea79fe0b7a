//! What can go wrong in the store.

use std::path::PathBuf;

use sluice_schemas::Kind;

use crate::model::ObjectKey;

/// An error of the metadata store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not a SQLite or PostgreSQL URL, or cannot be parsed.
    #[error("invalid database URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
        /// The driver's parse error, when there is one.
        #[source]
        source: Option<sqlx::Error>,
    },
    /// The directory of the SQLite database file could not be created.
    #[error("cannot create the directory {} of the SQLite database", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// The database failed (connection, query or transaction).
    #[error("metadata database error")]
    Database(#[from] sqlx::Error),
    /// The schema migrations could not be applied.
    #[error("migrating the metadata database failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A write's precondition failed: the object's resourceVersion is not the expected one
    /// (it was changed by someone else), or the object does not exist (`actual` is `None`),
    /// or — with `expected` `None` — it was created by someone else at the same moment.
    #[error(
        "{key} was changed concurrently: expected resourceVersion {}, found {}",
        version_or_absent(.expected),
        version_or_absent(.actual)
    )]
    Conflict {
        /// The object written.
        key: ObjectKey,
        /// The resourceVersion the write expected; `None` when it expected to create it.
        expected: Option<i64>,
        /// The object's current resourceVersion; `None` when it does not exist.
        actual: Option<i64>,
    },
    /// The object does not exist (for writes that need it and carry no precondition).
    #[error("{key} not found")]
    NotFound {
        /// The object looked for.
        key: ObjectKey,
    },
    /// A stored value cannot be read back: the database was altered outside Sluice.
    #[error("stored {column} of {row} is corrupt")]
    Corrupt {
        /// Which row (an object key or `schema version N of DATASET`).
        row: String,
        /// Which column.
        column: &'static str,
        /// What is wrong with the value.
        #[source]
        source: CorruptValue,
    },
    /// Another object already holds one of the claims of a write.
    #[error("`{claim}` is already held by {owner}")]
    ClaimTaken {
        /// The claim.
        claim: String,
        /// The object holding it.
        owner: ObjectKey,
    },
    /// A token with this name exists already.
    #[error("a token named `{name}` exists already")]
    TokenNameTaken {
        /// The name.
        name: String,
    },
    /// A list cursor that this store did not hand out.
    #[error("invalid list cursor")]
    InvalidCursor,
    /// The audit entry of a change could not be written, so the change was not made.
    #[error("the audit entry could not be written, so the change was refused")]
    AuditWrite {
        /// The database's reason.
        #[source]
        source: sqlx::Error,
    },
    /// The signed head of the audit log is missing or does not verify: appending to it would
    /// sign whatever was done to the log, so every change is refused until it is repaired.
    #[error("the signed head of the audit log {reason}; changes are refused")]
    AuditHeadInvalid {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An audit entry lacks a required field.
    #[error("invalid audit entry: {reason}")]
    InvalidAuditEntry {
        /// What is missing.
        reason: &'static str,
    },
    /// The secret to derive the audit key from is empty.
    #[error("the audit key secret must not be empty")]
    InvalidAuditKey,
    /// Writing the audit export failed.
    #[error("writing the audit export failed")]
    Export(#[source] std::io::Error),
    /// A schema version was given for an object that is not a dataset.
    #[error("schema versions are kept for datasets only, not for a {kind}")]
    SchemaVersionNotDataset {
        /// The kind written.
        kind: Kind,
    },
}

impl StoreError {
    /// Whether this is a [`StoreError::Conflict`] (an HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// Whether the change was refused because the audit log could not record it
    /// ([`StoreError::AuditWrite`] or [`StoreError::AuditHeadInvalid`]).
    pub fn is_audit_failure(&self) -> bool {
        matches!(
            self,
            StoreError::AuditWrite { .. } | StoreError::AuditHeadInvalid { .. }
        )
    }

    /// Whether this is a [`StoreError::NotFound`] (an HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// Why a stored value cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptValue {
    /// Not valid JSON.
    #[error("invalid JSON")]
    Json(#[source] serde_json::Error),
    /// Not an RFC 3339 timestamp.
    #[error("invalid timestamp")]
    Timestamp(#[source] chrono::ParseError),
    /// Not a UUID.
    #[error("invalid uid")]
    Uid(#[source] uuid::Error),
    /// Not a known kind.
    #[error("unknown kind")]
    Kind(#[source] sluice_schemas::UnknownName),
}

fn version_or_absent(version: &Option<i64>) -> String {
    match version {
        Some(version) => version.to_string(),
        None => "none (absent)".to_owned(),
    }
}
