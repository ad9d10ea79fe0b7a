//! Verifying the audit log: re-walking the chain and checking it against the signed head.

use sqlx::AnyConnection;

use super::chain::{RawEntry, SELECT_HEAD, decode_head};
use super::{AuditBreak, AuditBreakReason, AuditKey, AuditVerification, GENESIS_HASH};
use crate::error::StoreError;

/// The entries after `$1`, in order, at most `$2`.
const WALK_ENTRIES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
);

/// How many entries the verifier reads at a time.
const WALK_PAGE: i64 = 1000;

/// Walks the whole log in `seq` order and checks it against the signed head. `conn` should
/// be in a transaction with one snapshot, so that entries written meanwhile are not seen
/// without their head.
pub(crate) async fn verify(
    conn: &mut AnyConnection,
    key: &AuditKey,
) -> Result<AuditVerification, StoreError> {
    let head = sqlx::query(SELECT_HEAD)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| decode_head(&row))
        .transpose()?;
    let mut walk = Walk::default();
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(WALK_ENTRIES)
            .bind(after)
            .bind(WALK_PAGE)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            let entry = RawEntry::from_row(row)?;
            after = entry.seq;
            walk.check(&entry);
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < WALK_PAGE {
            break;
        }
    }
    let first_broken = match walk.first_broken.take() {
        Some(broken) => Some(broken),
        None => walk.check_head(head, key),
    };
    Ok(AuditVerification {
        ok: first_broken.is_none(),
        entries: walk.entries,
        first_broken,
    })
}

/// The state of a walk along the chain.
pub(super) struct Walk {
    pub(super) entries: u64,
    /// The seq and hash of the last entry seen (0 and the genesis hash before the first).
    last_seq: i64,
    last_hash: String,
    pub(super) first_broken: Option<AuditBreak>,
}

impl Default for Walk {
    fn default() -> Self {
        Walk {
            entries: 0,
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
            first_broken: None,
        }
    }
}

impl Walk {
    pub(super) fn check(&mut self, entry: &RawEntry) {
        self.entries += 1;
        if self.first_broken.is_none() {
            let expected = self.last_seq + 1;
            let broken = if entry.seq > expected {
                Some((expected, AuditBreakReason::Missing))
            } else if entry.seq < expected || entry.computed_hash() != entry.hash {
                Some((entry.seq, AuditBreakReason::Altered))
            } else if entry.prev_hash != self.last_hash {
                Some((entry.seq, AuditBreakReason::ChainBroken))
            } else {
                None
            };
            self.first_broken = broken.map(|(seq, reason)| AuditBreak { seq, reason });
        }
        self.last_seq = entry.seq;
        self.last_hash.clone_from(&entry.hash);
    }

    /// Checks the signed head against the end of an intact chain.
    pub(super) fn check_head(
        &self,
        head: Option<(i64, String, String)>,
        key: &AuditKey,
    ) -> Option<AuditBreak> {
        let broken = |seq, reason| Some(AuditBreak { seq, reason });
        let Some((seq, hash, hmac)) = head else {
            return if self.entries == 0 {
                None
            } else {
                broken(self.last_seq, AuditBreakReason::HeadMissing)
            };
        };
        if !key.verifies(seq, &hash, &hmac) {
            broken(seq, AuditBreakReason::HeadSignatureInvalid)
        } else if seq > self.last_seq {
            broken(self.last_seq + 1, AuditBreakReason::Truncated)
        } else if seq < self.last_seq {
            broken(seq + 1, AuditBreakReason::Unsigned)
        } else if hash != self.last_hash {
            broken(seq, AuditBreakReason::HeadMismatch)
        } else {
            None
        }
    }
}
