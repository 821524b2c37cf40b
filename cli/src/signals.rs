//! Signals: the first Ctrl-C (SIGINT) or SIGTERM cancels the run, which then removes what it
//! created; a second one exits at once.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Cancel the run on SIGINT or SIGTERM; the runner then removes what it created.
pub async fn cancel_on_signal(cancel: CancellationToken) {
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::warn!("interrupted (SIGINT): stopping and removing what this run created; interrupt again to exit at once"),
        _ = next(&mut term) => tracing::warn!("terminated (SIGTERM): stopping and removing what this run created; signal again to exit at once"),
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
