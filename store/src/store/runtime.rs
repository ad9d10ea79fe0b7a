//! What the controller and the stream jobs keep beside the objects: each product's sealed
//! reader credentials, the progress reports of its jobs, and the controller's leadership.

use serde_json::Value;
use sqlx::Row;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection};

use super::{Store, now};
use crate::audit::{self, Audit, AuditInput};
use crate::error::{CorruptValue, StoreError};
use crate::model::{Backend, ObjectKey, rfc3339};

const UPSERT_CREDENTIALS: &str = "INSERT INTO product_credentials \
     (team, name, username, sealed, updated_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (team, name) DO UPDATE SET username = excluded.username, \
     sealed = excluded.sealed, updated_at = excluded.updated_at";
const SELECT_CREDENTIALS: &str =
    "SELECT username, sealed FROM product_credentials WHERE team = $1 AND name = $2";
const DELETE_CREDENTIALS: &str = "DELETE FROM product_credentials WHERE team = $1 AND name = $2";

const UPSERT_JOB_REPORT: &str = "INSERT INTO job_reports \
     (team, name, version, slice, report, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (team, name, version, slice) DO UPDATE SET report = excluded.report, \
     updated_at = excluded.updated_at";
const SELECT_JOB_REPORTS: &str = "SELECT slice, report FROM job_reports \
     WHERE team = $1 AND name = $2 AND version = $3 ORDER BY slice";
const DELETE_JOB_REPORTS: &str = "DELETE FROM job_reports WHERE team = $1 AND name = $2";

const TAKE_JOB_LEASE: &str = "INSERT INTO job_leases \
     (team, name, version, slice, holder, expires_ms) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (team, name, version, slice) DO UPDATE SET holder = excluded.holder, \
     expires_ms = excluded.expires_ms \
     WHERE job_leases.holder = excluded.holder OR job_leases.expires_ms < $7";
const RELEASE_JOB_LEASE: &str = "DELETE FROM job_leases \
     WHERE team = $1 AND name = $2 AND version = $3 AND slice = $4 AND holder = $5";
const BEAT_JOB_WORKER: &str = "INSERT INTO job_workers (holder, expires_ms) VALUES ($1, $2) \
     ON CONFLICT (holder) DO UPDATE SET expires_ms = excluded.expires_ms";
const LIVE_JOB_WORKERS: &str = "SELECT COUNT(*) FROM job_workers WHERE expires_ms >= $1";
const FORGET_JOB_WORKERS: &str = "DELETE FROM job_workers WHERE expires_ms < $1 OR holder = $2";
const DELETE_JOB_LEASES: &str = "DELETE FROM job_leases WHERE team = $1 AND name = $2";

/// The one advisory lock key every Sluice controller competes for on PostgreSQL
/// (`"sluice-controller"` as a number, so it cannot collide with small application keys).
const CONTROLLER_LOCK_KEY: i64 = 0x736c_7569_6365_6374;

/// A product's reader credentials as stored: the password sealed, never in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    /// The user or role in the target.
    pub username: String,
    /// The password, sealed with the operator's key (see [`crate::SecretBox`]).
    pub sealed_password: String,
}

/// Proof that this process is the one controller allowed to act. On PostgreSQL it holds a
/// session advisory lock on a connection of its own: if the process dies, the connection
/// closes and the lock goes with it, so another replica takes over at once.
#[derive(Debug)]
pub struct Leadership {
    /// The connection holding the lock; `None` on SQLite, where one process owns the file.
    conn: Option<PoolConnection<Any>>,
}

impl Leadership {
    /// Whether the leadership still holds: the lock's connection answers. A lost
    /// connection means the lock is gone; the caller must stop acting and campaign again.
    pub async fn holds(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => conn.ping().await.is_ok(),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Never hand a connection holding the lock back to the pool: close it instead.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Store {
    /// Stores `username` and `sealed_password` as the reader credentials of the product at
    /// `key`, replacing earlier ones, and audits the grant (the username, never the
    /// password) in the same transaction.
    pub async fn put_credentials(
        &self,
        key: &ObjectKey,
        username: &str,
        sealed_password: &str,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let now = now();
        sqlx::query(UPSERT_CREDENTIALS)
            .bind(key.team())
            .bind(key.name())
            .bind(username)
            .bind(sealed_password)
            .bind(rfc3339(now))
            .execute(&mut *write.tx)
            .await?;
        let entry = AuditInput::new(audit, "credentials.grant", "granted")
            .with_object(key)
            .with_diff(serde_json::json!({"after": {"user": username}}));
        audit::append(&mut write.tx, &self.audit_key, entry, now).await?;
        write.tx.commit().await?;
        Ok(())
    }

    /// The stored reader credentials of the product at `key`.
    pub async fn credentials(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        let row = sqlx::query(SELECT_CREDENTIALS)
            .bind(key.team())
            .bind(key.name())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(StoredCredentials {
                username: row.try_get(0)?,
                sealed_password: row.try_get(1)?,
            }),
            None => None,
        })
    }

    /// Forgets the product's credentials and job reports (after its teardown); audited when
    /// credentials existed.
    pub async fn delete_runtime(&self, key: &ObjectKey, audit: &Audit) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let removed = sqlx::query(DELETE_CREDENTIALS)
            .bind(key.team())
            .bind(key.name())
            .execute(&mut *write.tx)
            .await?
            .rows_affected();
        sqlx::query(DELETE_JOB_REPORTS)
            .bind(key.team())
            .bind(key.name())
            .execute(&mut *write.tx)
            .await?;
        sqlx::query(DELETE_JOB_LEASES)
            .bind(key.team())
            .bind(key.name())
            .execute(&mut *write.tx)
            .await?;
        if removed > 0 {
            let entry = AuditInput::new(audit, "credentials.revoke", "revoked").with_object(key);
            audit::append(&mut write.tx, &self.audit_key, entry, now()).await?;
        }
        write.tx.commit().await?;
        Ok(())
    }

    /// Records the latest report of slice `slice` of the job of version `version` of the
    /// product at `key` (a job in one slice reports as slice 0).
    pub async fn put_job_report(
        &self,
        key: &ObjectKey,
        version: u32,
        slice: u32,
        report: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_JOB_REPORT)
            .bind(key.team())
            .bind(key.name())
            .bind(i64::from(version))
            .bind(i64::from(slice))
            .bind(report.to_string())
            .bind(rfc3339(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The last report of each slice of the job of version `version` of the product at
    /// `key`, by slice.
    pub async fn job_reports(
        &self,
        key: &ObjectKey,
        version: u32,
    ) -> Result<Vec<(u32, Value)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(SELECT_JOB_REPORTS)
            .bind(key.team())
            .bind(key.name())
            .bind(i64::from(version))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(slice, text)| {
                let report = serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                    row: format!("job report {version}/{slice} of {key}"),
                    column: "report",
                    source: CorruptValue::Json(source),
                })?;
                Ok((u32::try_from(slice).unwrap_or(u32::MAX), report))
            })
            .collect()
    }

    /// Takes or renews the lease on slice `slice` of the job of version `version` of the
    /// product at `key` for `holder` until `ttl` from now: granted when nobody holds it,
    /// `holder` does, or the holder's lease expired. Returns whether `holder` holds it now.
    pub async fn take_job_lease(
        &self,
        key: &ObjectKey,
        version: u32,
        slice: u32,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = now().timestamp_millis();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let taken = sqlx::query(TAKE_JOB_LEASE)
            .bind(key.team())
            .bind(key.name())
            .bind(i64::from(version))
            .bind(i64::from(slice))
            .bind(holder)
            .bind(expires)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(taken == 1)
    }

    /// Gives up `holder`'s lease on slice `slice` of the job of version `version` of the
    /// product at `key`.
    pub async fn release_job_lease(
        &self,
        key: &ObjectKey,
        version: u32,
        slice: u32,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(RELEASE_JOB_LEASE)
            .bind(key.team())
            .bind(key.name())
            .bind(i64::from(version))
            .bind(i64::from(slice))
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that the job-running process `holder` lives until `ttl` from now, and
    /// returns how many such processes live (itself included).
    pub async fn job_worker_beat(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<u32, StoreError> {
        let now = now().timestamp_millis();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(BEAT_JOB_WORKER)
            .bind(holder)
            .bind(expires)
            .execute(&self.pool)
            .await?;
        let live: i64 = sqlx::query_scalar(LIVE_JOB_WORKERS)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(u32::try_from(live).unwrap_or(1).max(1))
    }

    /// Forgets the job-running process `holder` (it stops), and every one whose time ran
    /// out.
    pub async fn job_worker_gone(&self, holder: &str) -> Result<(), StoreError> {
        sqlx::query(FORGET_JOB_WORKERS)
            .bind(now().timestamp_millis())
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Tries to become the controller that acts. On SQLite the store's process is the
    /// leader; on PostgreSQL this takes a session advisory lock without waiting and
    /// returns `None` while another process holds it.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(Some(Leadership { conn: None })),
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(CONTROLLER_LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(locked.then_some(Leadership { conn: Some(conn) }))
            }
        }
    }
}
