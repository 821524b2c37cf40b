//! Cleanup: removing what a run created, in the three situations that need it.
//!
//! - A run fails before the swap: [`undo_steps`] removes what its [`Undo`] record says it created.
//! - A run was killed: [`cleanup`] (`shadowswap cleanup`) finds what it left and removes it the
//!   same way.
//! - A run swapped: [`after_swap`] drops the heartbeat table, the capture triggers (now on
//!   `_<t>_old`) and, unless asked to keep it, the old table. Nothing is undone any more; a
//!   failure becomes a warning for the operator.
//!
//! Undo discipline: each forward step that creates something records it before it runs; on any
//! failure before the swap the recorded steps are undone in reverse (capture triggers first, so
//! no application write ever hits a trigger whose shadow is gone, then the shadow). Undo only
//! ever touches shadowswap's own names (`_<t>_new`, the triggers, the heartbeat table), never
//! `<t>` or `_<t>_old`, so it is safe to run whatever state the server is in.

use tokio_util::sync::CancellationToken;

use crate::capture;
use crate::config::{DdlConfig, MigrationConfig};
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::names::Names;
use crate::retry::with_retry;

/// What a run has created (or may have: each flag is set before its step runs) and must undo on
/// failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undo {
    /// The shadow table `_<t>_new`.
    pub shadow: bool,
    /// The capture triggers.
    pub capture: bool,
    /// The heartbeat table (runs with replicas).
    pub heartbeat: bool,
    /// The checkpoint table `_<t>_ssw_ckpt`.
    pub checkpoint: bool,
}

impl Undo {
    /// Everything a run may have created: what a resumed run must undo on failure.
    pub fn all() -> Undo {
        Undo { shadow: true, capture: true, heartbeat: true, checkpoint: true }
    }
}

/// Drop `table` if it exists, retried with `ddl`'s policy; never cancelled. `what` names it for
/// the retry log and errors ("the shadow table").
async fn drop_table<D: Dialect>(d: &D, what: &str, table: &TableRef, ddl: &DdlConfig) -> Result<()> {
    let never = CancellationToken::new();
    with_retry(&format!("dropping {what}"), ddl.retry_policy(), &never, || d.drop_table(table, ddl.lock_timeout)).await
}

/// Undo in reverse order of creation: capture triggers, shadow, heartbeat table, and last the
/// checkpoint (so a run whose undo stopped half-way is still known to `cleanup`). Never cancelled
/// (it is what cancellation needs). Stops at the first step that fails (when the triggers stay,
/// the shadow stays for them: dropping it under live triggers would make every write to the
/// table fail). Errors: what is left and why, for [`Error::CleanupIncomplete`].
pub async fn undo_steps<D: Dialect>(d: &D, names: &Names, undo: &Undo, ddl: &DdlConfig) -> std::result::Result<(), String> {
    if undo.capture {
        if let Err(e) = capture::remove(d, names, ddl).await {
            return Err(format!(
                "capture triggers {} remain ({e}); {} was kept for them",
                names.triggers().join(", "),
                names.shadow
            ));
        }
    }
    if undo.shadow {
        if let Err(e) = drop_table(d, "the shadow table", &names.shadow, ddl).await {
            return Err(format!("{} remains ({e})", names.shadow));
        }
    }
    if undo.heartbeat {
        if let Err(e) = drop_table(d, "the heartbeat table", &names.heartbeat, ddl).await {
            return Err(format!("{} remains ({e})", names.heartbeat));
        }
    }
    if undo.checkpoint {
        if let Err(e) = drop_table(d, "the checkpoint table", &names.checkpoint, ddl).await {
            return Err(format!("{} remains ({e})", names.checkpoint));
        }
    }
    Ok(())
}

/// What `cleanup` found and did.
#[derive(Debug, Clone, Default)]
pub struct CleanupReport {
    /// Capture triggers dropped.
    pub triggers_dropped: Vec<String>,
    /// The shadow table, if it was dropped.
    pub shadow_dropped: Option<TableRef>,
    /// The checkpoint table, if it was dropped (the unfinished run can no longer be resumed).
    pub checkpoint_dropped: Option<TableRef>,
    /// The old table, if one exists (never dropped by cleanup: it may be the only copy of
    /// pre-migration data the operator wants).
    pub old_table_present: Option<TableRef>,
}

/// Remove what a killed or failed run left on `table`: the capture triggers, then the shadow
/// (and the heartbeat table). Refuses while another run holds the table's advisory lock
/// ([`Error::AnotherRun`]); [`Error::CleanupIncomplete`] when something could not be removed.
pub async fn cleanup<D: Dialect>(d: &D, table: &TableRef, ddl: &DdlConfig) -> Result<CleanupReport> {
    let names = d.names(table);
    let lock = d.acquire_run_lock(&names).await?;
    let result = async {
        // An open revert window is not a leftover: its reverse capture and old table are in use.
        if d.revert_state(&names).await?.is_some_and(|s| s.is_open()) {
            return Err(Error::refused(format!(
                "{} has an open revert window; cleanup leaves it alone: run `shadowswap finish` for this table to keep \
                 the change, or `shadowswap revert` to undo it",
                names.table
            )));
        }
        let triggers = d.capture_present(&names).await?;
        let found = Undo {
            capture: !triggers.is_empty(),
            shadow: d.table_exists(&names.shadow).await?,
            heartbeat: d.table_exists(&names.heartbeat).await?,
            checkpoint: d.table_exists(&names.checkpoint).await?,
        };
        undo_steps(d, &names, &found, ddl).await.map_err(|leftover| Error::CleanupIncomplete {
            cause: Box::new(Error::refused(format!("cleanup of {} did not finish", names.table))),
            leftover,
        })?;
        Ok(CleanupReport {
            triggers_dropped: triggers,
            shadow_dropped: found.shadow.then(|| names.shadow.clone()),
            checkpoint_dropped: found.checkpoint.then(|| names.checkpoint.clone()),
            old_table_present: d.table_exists(&names.old).await?.then(|| names.old.clone()),
        })
    }
    .await;
    let _ = lock.release().await;
    result
}

/// What the cleanup after a swap left for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterSwap {
    /// The old table when it still exists: kept on request, or because dropping it failed.
    pub old_table_kept: Option<TableRef>,
    /// One line per thing that could not be dropped, saying what to run (also logged).
    pub warnings: Vec<String>,
}

/// After the swap: drop the heartbeat table (when `undo.heartbeat`; one attempt), the capture
/// triggers (now on the old table), the old table unless `config.cut_over.keep_old_table`, and
/// last the checkpoint. Nothing fails any more: problems become [`AfterSwap::warnings`], each
/// logged. Also what a resume finishes when it finds the swap done.
pub async fn after_swap<D: Dialect>(d: &D, names: &Names, undo: &Undo, config: &MigrationConfig) -> AfterSwap {
    let ddl = &config.ddl;
    let mut warnings = Vec::new();
    if undo.heartbeat {
        if let Err(e) = d.drop_table(&names.heartbeat, ddl.lock_timeout).await {
            warnings.push(format!("{} could not be dropped: {e}; drop it with DROP TABLE", names.heartbeat));
        }
    }
    if let Err(e) = capture::remove(d, names, ddl).await {
        warnings.push(format!(
            "the capture triggers ({}) on {} could not be dropped: {e}; drop them with DROP TRIGGER",
            names.triggers().join(", "),
            names.old
        ));
    }
    let old_table_kept = if config.cut_over.keep_old_table {
        Some(names.old.clone())
    } else {
        match drop_table(d, "the old table", &names.old, ddl).await {
            Ok(()) => None,
            // The summary must not say "dropped": the old table is still there.
            Err(e) => {
                warnings.push(format!(
                    "{} could not be dropped: {e}; drop it with DROP TABLE {} when convenient",
                    names.old, names.old
                ));
                Some(names.old.clone())
            }
        }
    };
    if undo.checkpoint {
        if let Err(e) = drop_table(d, "the checkpoint table", &names.checkpoint, ddl).await {
            warnings.push(format!("{} could not be dropped: {e}; drop it with DROP TABLE", names.checkpoint));
        }
    }
    for w in &warnings {
        tracing::warn!(target: crate::progress::LOG_TARGET, "{w}");
    }
    AfterSwap { old_table_kept, warnings }
}
