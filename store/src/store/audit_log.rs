//! The audit methods of [`Store`]: appending, querying, exporting and verifying the log.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Store, now};
use crate::audit::{self, AuditEntry, AuditInput, AuditQuery, AuditVerification};
use crate::error::StoreError;
use crate::model::Backend;

impl Store {
    /// Appends `entry` to the audit log in a transaction of its own (serialised with every
    /// other write), for an action that is not an object write: a token created, an
    /// approval, a verification run. Returns the entry as stored.
    pub async fn append_audit(&self, entry: AuditInput) -> Result<AuditEntry, StoreError> {
        let mut write = self.begin_write().await?;
        let entry = audit::append(&mut write.tx, &self.audit_key, entry, now()).await?;
        write.tx.commit().await?;
        Ok(entry)
    }

    /// The audit entries matching `query`, oldest first, at most
    /// [`AuditQuery::effective_limit`] of them; the next page starts after the last `seq`.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        audit::entries(&mut conn, query).await
    }

    /// Writes every audit entry matching `query` (from `query.after_seq` on, whatever
    /// `query.limit`) to `out` as JSON lines — one camelCase [`AuditEntry`] per line, oldest
    /// first — and returns how many were written.
    pub async fn export_audit<W>(&self, query: &AuditQuery, out: &mut W) -> Result<u64, StoreError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut page = AuditQuery {
            limit: AuditQuery::MAX_LIMIT,
            ..query.clone()
        };
        let mut written = 0;
        loop {
            let entries = self.audit_entries(&page).await?;
            let mut buffer = Vec::new();
            for entry in &entries {
                serde_json::to_writer(&mut buffer, entry)
                    .map_err(|e| StoreError::Export(e.into()))?;
                buffer.push(b'\n');
            }
            out.write_all(&buffer).await.map_err(StoreError::Export)?;
            written += entries.len() as u64;
            match entries.last() {
                Some(last) if entries.len() == AuditQuery::MAX_LIMIT as usize => {
                    page.after_seq = Some(last.seq);
                }
                _ => break,
            }
        }
        out.flush().await.map_err(StoreError::Export)?;
        Ok(written)
    }

    /// Re-walks the whole audit log and checks it: every entry's hash, `seq` consecutive
    /// from 1, every `prev_hash` the hash of the entry before, and the last entry being the
    /// one the signed head names, with a valid signature. Reads one consistent snapshot;
    /// writers are not blocked. See [`AuditVerification`] and
    /// [`AuditBreakReason`](crate::AuditBreakReason) for what it reports.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?
            }
        };
        let verification = audit::verify(&mut tx, &self.audit_key).await?;
        tx.rollback().await?;
        Ok(verification)
    }
}
