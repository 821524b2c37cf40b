//! The checkpoint: the server-side record of a run's progress, and what a resume checks.
//!
//! One row in the checkpoint table `_<t>_ssw_ckpt` (named by [`crate::names`]), beside the
//! shadow. The runner writes it whole at each phase change ([`crate::Dialect::checkpoint_write`]);
//! each chunk of the backfill advances its low watermark and row count **in the chunk's own
//! transaction** ([`crate::Dialect::copy_chunk`] with a [`ChunkMark`]), so the checkpoint never
//! claims a row that is not in the shadow. The capture triggers keep the shadow in sync while no
//! shadowswap runs, so after a crash every key at or below the low watermark is still correct in
//! the shadow: running the same command again continues the backfill after it.
//!
//! What identifies the run: the table, the ALTER text, the [plan fingerprint](fingerprint),
//! shadowswap's version and the dialect. A checkpoint whose table or ALTER differ is refused
//! ([`Checkpoint::refusal`]): the operator runs `shadowswap cleanup` first.

use std::fmt::Write as _;

use crate::error::Error;
use crate::model::TableRef;
use crate::phase::Phase;
use crate::preflight::plan::Plan;

/// The checkpoint table's columns for the [`Checkpoint`] fields, in the order the dialects write
/// and read them (same names on every server; the table also has `id`, always 1, `updated_at`,
/// and the dialect-owned `capture_identity` and `revert_broken`).
pub const COLUMNS: [&str; 13] = [
    "table_name",
    "alter_text",
    "fingerprint",
    "version",
    "dialect",
    "phase",
    "low_watermark",
    "high_watermark",
    "rows_copied",
    "rows_estimated",
    "chunk_rows",
    "started_at",
    "revert_until",
];

/// shadowswap's version, as checkpoints record it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The checkpoint row. Keys are stored as the dialect's text encoding
/// ([`crate::Dialect::key_to_text`]), times as RFC 3339 UTC text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The migrated table (`schema.name`, as [`TableRef`]'s `Display` shows it).
    pub table: String,
    /// The ALTER spec as given.
    pub alter: String,
    /// [`fingerprint`] of the plan.
    pub fingerprint: String,
    /// shadowswap's version that wrote it ([`VERSION`]).
    pub version: String,
    /// The dialect's name (`mariadb`, `postgresql`).
    pub dialect: String,
    /// The phase the run was in when this was written.
    pub phase: Phase,
    /// Every key at or below it has been copied; `None` before the first chunk.
    pub low_watermark: Option<String>,
    /// The highest key when the backfill began; `None` before the backfill or for an empty table.
    pub high_watermark: Option<String>,
    /// Rows copied so far (rows).
    pub rows_copied: u64,
    /// The server's estimate of the table's rows when the run started (rows).
    pub rows_estimated: u64,
    /// The chunk size in use (rows).
    pub chunk_rows: u64,
    /// When the first run started (RFC 3339, UTC).
    pub started_at: String,
    /// End of the revert window (RFC 3339, UTC), while one is open.
    pub revert_until: Option<String>,
}

impl Checkpoint {
    /// A new checkpoint for `plan`, in phase [`Phase::CreateShadow`], nothing copied.
    pub fn new(plan: &Plan, dialect: &str) -> Self {
        Checkpoint {
            table: plan.names.table.to_string(),
            alter: plan.analysis.spec.clone(),
            fingerprint: fingerprint(plan),
            version: VERSION.to_string(),
            dialect: dialect.to_string(),
            phase: Phase::CreateShadow,
            low_watermark: None,
            high_watermark: None,
            rows_copied: 0,
            rows_estimated: plan.original.estimated_rows,
            chunk_rows: 0,
            started_at: jiff::Timestamp::now().to_string(),
            revert_until: None,
        }
    }

    /// Why a run of `spec` on `table` may not resume this checkpoint, as a one-line refusal;
    /// `None` when it may (same table and ALTER; the fingerprint is compared once the plan is
    /// made, [`Checkpoint::plan_refusal`]).
    pub fn refusal(&self, table: &TableRef, spec: &str) -> Option<Error> {
        if self.table != table.to_string() || self.alter.trim() != spec.trim() {
            return Some(Error::refused(format!(
                "{table} has the checkpoint of an unfinished run of a different ALTER ({:?}, {} of about {} rows copied, \
                 stopped in {}); run the same ALTER again to resume it, or `shadowswap cleanup` for this table to give it up",
                self.alter, self.rows_copied, self.rows_estimated, self.phase
            )));
        }
        None
    }

    /// Why this checkpoint does not fit `plan` (made now, for the same ALTER): the table's
    /// definition changed since the run started, or shadowswap's version or the server kind did.
    pub fn plan_refusal(&self, plan: &Plan, dialect: &str) -> Option<Error> {
        let what = if self.dialect != dialect {
            format!("it was written for {} and this server is {dialect}", self.dialect)
        } else if self.version != VERSION {
            format!("it was written by shadowswap {} and this is {VERSION}", self.version)
        } else if self.fingerprint != fingerprint(plan) {
            "the table's definition (or the plan made from it) changed since the run started".to_string()
        } else {
            return None;
        };
        Some(Error::refused(format!(
            "cannot resume the unfinished run on {}: {what}; run `shadowswap cleanup` for this table and start again",
            plan.names.table
        )))
    }

    /// The phase to continue in: an unfinished run that had not completed its capture starts over.
    pub fn resumes_at(&self) -> Resume {
        match self.phase {
            Phase::Preflight | Phase::CreateShadow | Phase::InstallCapture => Resume::StartOver,
            Phase::RevertWindow | Phase::Cleanup | Phase::Done => Resume::AfterSwap,
            Phase::CutOver => Resume::CutOverOrAfter,
            _ => Resume::Backfill,
        }
    }
}

/// Where a resumed run continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The capture was not complete: remove what the run created and start from the beginning.
    StartOver,
    /// Continue the backfill after the low watermark, then checksum and cut over as usual.
    Backfill,
    /// The run was in its swap: the tables tell whether it happened (shadow gone and old table
    /// present: swapped); if not, continue as [`Resume::Backfill`].
    CutOverOrAfter,
    /// The swap happened: finish the cleanup after it.
    AfterSwap,
}

/// Written into the checkpoint in the same transaction as one chunk's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMark {
    /// The chunk's upper key (`upto`), in the dialect's text encoding: the new low watermark.
    pub low_watermark: String,
    /// The chunk size in use (rows).
    pub chunk_rows: u64,
}

/// A stable fingerprint of what the run does: the ALTER, the chunk key, the column mapping and
/// the original's and the altered table's columns and indexes (not the row estimate). Hex text
/// of a CRC-32 over their debug forms; equal plans give equal fingerprints.
pub fn fingerprint(plan: &Plan) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        plan.analysis.spec.trim(),
        plan.key,
        plan.mapping,
        plan.original.columns,
        plan.original.indexes,
        plan.altered.columns,
        plan.altered.indexes
    );
    format!("{:08x}", crc32fast::hash(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_before_the_capture_start_over_and_after_the_swap_finish() {
        let mut c = Checkpoint {
            table: "db.t".into(),
            alter: "ADD COLUMN c INT".into(),
            fingerprint: "0".into(),
            version: VERSION.into(),
            dialect: "mariadb".into(),
            phase: Phase::CreateShadow,
            low_watermark: None,
            high_watermark: None,
            rows_copied: 0,
            rows_estimated: 10,
            chunk_rows: 0,
            started_at: String::new(),
            revert_until: None,
        };
        assert_eq!(c.resumes_at(), Resume::StartOver);
        c.phase = Phase::InstallCapture;
        assert_eq!(c.resumes_at(), Resume::StartOver);
        for p in [Phase::Backfill, Phase::Checksum, Phase::Postponed] {
            c.phase = p;
            assert_eq!(c.resumes_at(), Resume::Backfill);
        }
        c.phase = Phase::CutOver;
        assert_eq!(c.resumes_at(), Resume::CutOverOrAfter);
        c.phase = Phase::Cleanup;
        assert_eq!(c.resumes_at(), Resume::AfterSwap);
    }

    #[test]
    fn another_alter_is_refused_naming_cleanup() {
        let c = Checkpoint {
            table: "db.t".into(),
            alter: "ADD COLUMN c INT".into(),
            fingerprint: "0".into(),
            version: VERSION.into(),
            dialect: "mariadb".into(),
            phase: Phase::Backfill,
            low_watermark: Some("[1]".into()),
            high_watermark: Some("[9]".into()),
            rows_copied: 5,
            rows_estimated: 10,
            chunk_rows: 5,
            started_at: String::new(),
            revert_until: None,
        };
        let t = TableRef::new("db", "t");
        assert!(c.refusal(&t, " ADD COLUMN c INT ").is_none());
        let e = c.refusal(&t, "ADD COLUMN d INT").expect("refused").to_string();
        assert!(e.contains("shadowswap cleanup") && e.contains("5 of about 10"), "{e}");
    }
}
