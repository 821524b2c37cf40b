//! The phases of a run and their allowed transitions.

use std::fmt;

/// Where a run is. Forward order: Preflight → CreateShadow → InstallCapture → Backfill →
/// BuildIndexes → Checksum → Postponed → CutOver → Cleanup → Done. Any phase before Cleanup may move to
/// Aborting (undo), which ends in Failed. The order of the variants is the forward order
/// (`Ord` compares by it: a checkpoint in `Checksum` is past `Backfill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Phase {
    /// Checks that change nothing.
    #[default]
    Preflight,
    /// Creating `_<t>_new`.
    CreateShadow,
    /// Creating the capture triggers.
    InstallCapture,
    /// Copying existing rows in chunks.
    Backfill,
    /// Building the shadow's secondary indexes that were left out during the copy (MariaDB:
    /// one online `ALTER TABLE … ADD INDEX`); nothing to do on PostgreSQL. Checkpoints store it
    /// by name (`build indexes`), so older checkpoints read back unchanged.
    BuildIndexes,
    /// Comparing original and shadow.
    Checksum,
    /// In sync, waiting for the postpone flag file to go away.
    Postponed,
    /// Swapping the tables.
    CutOver,
    /// Swapped; the old table is kept in sync by reverse capture triggers until the revert
    /// window (`--revert-window`) ends or `shadowswap finish`/`revert` is run.
    RevertWindow,
    /// Dropping triggers and the old table after the swap.
    Cleanup,
    /// Applying a metadata-only ALTER to the table itself (`--attempt-instant-ddl`).
    InPlace,
    /// Finished: the table was swapped.
    Done,
    /// Undoing after a failure before the swap.
    Aborting,
    /// Ended without a swap; what the run created was removed.
    Failed,
}

impl Phase {
    /// Whether a run may move from `self` to `next`.
    pub fn can_move_to(self, next: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, next),
            (Preflight, CreateShadow | InPlace)
                | (InPlace, Done | Failed)
                // The server refused to apply the ALTER in place (nothing changed): copy.
                | (InPlace, CreateShadow)
                | (CreateShadow, InstallCapture)
                // The connection was lost before the capture was complete: after reconnecting,
                // what the run created is removed and it starts over.
                | (InstallCapture, CreateShadow)
                | (InstallCapture, Backfill)
                | (Backfill, BuildIndexes | Checksum | Postponed | CutOver)
                | (BuildIndexes, Checksum | Postponed | CutOver)
                | (Checksum, Postponed | CutOver)
                | (Postponed, CutOver)
                | (CutOver, Cleanup | RevertWindow)
                | (RevertWindow, Cleanup)
                | (Cleanup, Done)
                | (Preflight | CreateShadow | InstallCapture | Backfill | BuildIndexes | Checksum | Postponed | CutOver, Aborting)
                | (Aborting, Failed)
                // Stopped without undoing (the server stayed away): resumable.
                | (Preflight | CreateShadow | InstallCapture | Backfill | BuildIndexes | Checksum | Postponed | CutOver, Failed)
        )
    }

    /// True once the tables have been swapped (nothing may be undone any more).
    pub fn swapped(self) -> bool {
        matches!(self, Phase::RevertWindow | Phase::Cleanup | Phase::Done)
    }

    /// Every phase, in forward order, then the ending ones.
    pub const ALL: [Phase; 14] = [
        Phase::Preflight,
        Phase::CreateShadow,
        Phase::InstallCapture,
        Phase::Backfill,
        Phase::BuildIndexes,
        Phase::Checksum,
        Phase::Postponed,
        Phase::CutOver,
        Phase::RevertWindow,
        Phase::Cleanup,
        Phase::InPlace,
        Phase::Done,
        Phase::Aborting,
        Phase::Failed,
    ];

    /// The phase whose [`Display`](fmt::Display) text is `text` (as a checkpoint stores it).
    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.to_string() == text)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Phase::Preflight => "preflight",
            Phase::CreateShadow => "create shadow",
            Phase::InstallCapture => "install capture",
            Phase::Backfill => "backfill",
            Phase::BuildIndexes => "build indexes",
            Phase::Checksum => "checksum",
            Phase::Postponed => "postponed",
            Phase::CutOver => "cut-over",
            Phase::RevertWindow => "revert window",
            Phase::Cleanup => "cleanup",
            Phase::InPlace => "in place",
            Phase::Done => "done",
            Phase::Aborting => "aborting",
            Phase::Failed => "failed",
        };
        f.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::*;

    #[test]
    fn forward_path_is_allowed_and_skips_are_not() {
        let path = [Preflight, CreateShadow, InstallCapture, Backfill, BuildIndexes, Checksum, Postponed, CutOver, Cleanup, Done];
        for w in path.windows(2) {
            assert!(w[0].can_move_to(w[1]), "{} -> {}", w[0], w[1]);
        }
        assert!(!Preflight.can_move_to(Backfill));
        assert!(!CreateShadow.can_move_to(CutOver), "never swap without capture and backfill");
        assert!(!Cleanup.can_move_to(Aborting), "after the swap there is nothing to undo");
        assert!(Backfill.can_move_to(Aborting) && BuildIndexes.can_move_to(Aborting));
        assert!(Backfill < BuildIndexes && BuildIndexes < Checksum, "a checkpoint in build indexes is past the backfill");
        assert!(Cleanup.swapped() && !CutOver.swapped());
    }

    #[test]
    fn every_phase_reads_back_from_its_text() {
        for p in super::Phase::ALL {
            assert_eq!(super::Phase::parse(&p.to_string()), Some(p));
        }
        assert_eq!(super::Phase::parse("nonsense"), None);
    }
}
