//! The progress snapshot the runner publishes (a `tokio::sync::watch` channel) for the CLI's
//! progress bar or log lines.

use tokio::sync::watch;

use crate::phase::Phase;

/// The log target of the run's own lines (phase transitions, the cut-over's wait, warnings after
/// the swap), also where a phase module logs them: as before the phases had their own modules,
/// so `RUST_LOG=shadowswap_engine::runner=…` and the log lines the docs quote stay the same.
pub(crate) const LOG_TARGET: &str = "shadowswap_engine::runner";

/// Where a run is, for display. Counts are rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Rows copied by the backfill so far.
    pub rows_copied: u64,
    /// The server's estimate of the table's rows (0 when unknown).
    pub rows_estimated: u64,
    /// Rows compared by the checksum so far.
    pub rows_checksummed: u64,
    /// Size of the last chunk, in rows.
    pub chunk_rows: u64,
    /// A short note on what the run waits for (e.g. the postpone flag file), if anything.
    pub waiting_for: Option<String>,
    /// Why copying is paused by the throttler now, if it is.
    pub throttle_reason: Option<String>,
}

/// Move the published progress to phase `next` and clear what it waited for; the transition is
/// logged (debug builds assert that [`Phase::can_move_to`] allows it). Entering the phase the run
/// is in (again, after a reconnect) changes nothing.
pub(crate) fn set_phase(progress: &watch::Sender<Progress>, next: Phase) {
    if progress.borrow().phase == next {
        return;
    }
    progress.send_modify(|p| {
        debug_assert!(p.phase.can_move_to(next), "phase {} -> {next} is not allowed", p.phase);
        tracing::info!(target: LOG_TARGET, from = %p.phase, to = %next, "phase");
        p.phase = next;
        p.waiting_for = None;
    });
}
