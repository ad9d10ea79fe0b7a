//! Reading audit entries back, filtered and paged.

use sqlx::AnyConnection;

use super::chain::RawEntry;
use super::{AuditEntry, AuditQuery};
use crate::error::StoreError;
use crate::model::rfc3339;

/// `$1`..`$3` kind, team, name, `$4` actor, `$5`/`$6` since/until, `$7` after seq, `$8` limit.
const QUERY_ENTRIES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM audit_log WHERE ($1 IS NULL OR kind = $1)",
    " AND ($2 IS NULL OR team = $2)",
    " AND ($3 IS NULL OR name = $3)",
    " AND ($4 IS NULL OR actor = $4)",
    " AND ($5 IS NULL OR time >= $5)",
    " AND ($6 IS NULL OR time < $6)",
    " AND ($7 IS NULL OR seq > $7)",
    " ORDER BY seq LIMIT $8"
);

/// The entries matching `query`, oldest first.
pub(crate) async fn entries(
    conn: &mut AnyConnection,
    query: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(QUERY_ENTRIES)
        .bind(query.kind.as_deref())
        .bind(query.team.as_deref())
        .bind(query.name.as_deref())
        .bind(query.actor.as_deref())
        .bind(query.since.map(rfc3339))
        .bind(query.until.map(rfc3339))
        .bind(query.after_seq)
        .bind(i64::from(query.effective_limit()))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| RawEntry::from_row(row)?.into_entry())
        .collect()
}
