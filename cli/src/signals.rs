//! Signals: the first Ctrl-C (SIGINT) or SIGTERM cancels the command at its next safe point (what
//! it then does is the command's [`OnStop`]); a second one exits at once.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// What a command does when a signal stops it, for the warning it logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// `alter`: before the swap, what the run created is removed; after it (an open revert
    /// window), the window stays open.
    Alter,
    /// `backfill`: the chunk in flight commits, the checkpoint stays for the same command again.
    Backfill,
    /// `revert`: an attempt in flight finishes; nothing else starts.
    Revert,
    /// `contract`: the statement in flight finishes, then the step is undone; earlier steps stay.
    Contract,
    /// `migrate`: the phase in flight stops as its own command would; it is recorded failed.
    Migrate,
}

impl OnStop {
    fn says(self) -> &'static str {
        match self {
            OnStop::Alter => {
                "stopping at the next safe point: before the swap what this run created is removed, an open revert window stays open"
            }
            OnStop::Backfill => "stopping after the chunk in flight; the checkpoint stays: run the same command again to continue",
            OnStop::Revert => "stopping after the attempt in flight; the revert window stays open",
            OnStop::Contract => {
                "stopping after the statement in flight; the step is undone (steps before it stay): run the same command again to continue"
            }
            OnStop::Migrate => {
                "stopping the phase in flight (a backfill keeps its checkpoint, a shadow copy removes what it created); \
                 it is recorded failed: run the same command again to continue"
            }
        }
    }
}

/// Cancel the command on SIGINT or SIGTERM (logging what it will do, `on_stop`).
pub async fn cancel_on_signal(cancel: CancellationToken, on_stop: OnStop) {
    let mut term = signal(SignalKind::terminate()).ok();
    let says = on_stop.says();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::warn!("interrupted (SIGINT): {says}; interrupt again to exit at once"),
        _ = next(&mut term) => tracing::warn!("terminated (SIGTERM): {says}; signal again to exit at once"),
    }
    cancel.cancel();
    // A second signal: the operator does not want to wait for the undo. Leave at once; what is
    // left (triggers, shadow) is harmless to the application and `shadowswap cleanup` removes it.
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = next(&mut term) => {}
    }
    eprintln!(
        "shadowswap: error: interrupted twice: exiting without finishing the cleanup; run `shadowswap cleanup` for this table"
    );
    std::process::exit(130);
}

/// The next delivery of `signal`; never, when listening for it could not be set up.
async fn next(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
