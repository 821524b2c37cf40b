//! In-process runs of the engine: a config with short waits ([`fast_config`]), flag files of a
//! test's own, a run held before its cut-over ([`PostponedRun`]), and the summary in one line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shadowswap_engine::progress::Progress;
use shadowswap_engine::runner::{Outcome, Summary};
use shadowswap_engine::{Dialect, MigrationConfig, Phase, Runner, TableRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A config for tests: executing, with short waits so tests do not sleep long.
pub fn fast_config() -> MigrationConfig {
    let mut c = MigrationConfig { execute: true, ..MigrationConfig::default() };
    c.cut_over.backoff_min = Duration::from_millis(50);
    c.cut_over.backoff_max = Duration::from_millis(500);
    c.cut_over.poll_interval = Duration::from_millis(50);
    c.ddl.backoff_min = Duration::from_millis(50);
    c.ddl.backoff_max = Duration::from_millis(500);
    c.copy.progress_interval = Duration::from_millis(100);
    c
}

/// [`fast_config`] with fixed chunks of `rows` rows (`None`: adaptive, the default: a target
/// time per chunk).
pub fn chunked_config(rows: Option<u64>) -> MigrationConfig {
    let mut c = fast_config();
    c.copy.fixed_chunk_rows = rows;
    c
}

/// A flag file path of a test's own (`name`: its database), in the temporary directory; the file
/// is not created.
pub fn flag_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shadowswap-{name}-{}.flag", std::process::id()))
}

/// A postpone flag file of a test's own ([`flag_path`]), created.
pub fn postpone_flag(name: &str) -> PathBuf {
    let f = flag_path(name);
    std::fs::write(&f, b"postpone").unwrap();
    f
}

/// The runner's summary in one line: backfill, checksum, cut-over.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "backfill {} rows in {} chunks ({:.1} s), checksum {:?} rows, cut-over {} attempt(s), swap {} ms",
        s.backfill.rows,
        s.backfill.chunks,
        s.backfill.elapsed.as_secs_f64(),
        s.rows_checksummed,
        s.cut_over.attempts,
        s.cut_over.swap_time.as_millis()
    )
}

/// An in-process run held before its cut-over by a postpone flag file, so a test can write while
/// the capture triggers keep the shadow in sync; [`PostponedRun::swap`] lets it finish.
pub struct PostponedRun {
    flag: PathBuf,
    run: JoinHandle<shadowswap_engine::Result<Outcome>>,
    progress: watch::Receiver<Progress>,
}

impl PostponedRun {
    /// Start `alter` on `table` by a runner over `dialect` with `config`, postponed by a flag file
    /// named after `name` ([`postpone_flag`]); returns once the run waits on it, which must be
    /// within `within`.
    pub async fn start<D: Dialect>(
        dialect: Arc<D>,
        mut config: MigrationConfig,
        table: TableRef,
        alter: &str,
        name: &str,
        within: Duration,
    ) -> PostponedRun {
        let flag = postpone_flag(name);
        config.cut_over.postpone_flag_file = Some(flag.clone());
        let runner = Arc::new(Runner::new(dialect, config));
        let mut progress = runner.progress();
        let alter = alter.to_string();
        let run = tokio::spawn(async move { runner.run(&table, &alter).await });
        tokio::time::timeout(within, progress.wait_for(|p| p.phase == Phase::Postponed))
            .await
            .expect("the run reaches the postponed cut-over")
            .expect("progress channel open");
        PostponedRun { flag, run, progress }
    }

    /// Rows the backfill copied.
    pub fn rows_copied(&self) -> u64 {
        self.progress.borrow().rows_copied
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.run.is_finished()
    }

    /// Remove the flag file and wait (60 s at most) for the run to end: its outcome, whatever
    /// it is (for runs that must fail after the wait).
    pub async fn release(self) -> shadowswap_engine::Result<Outcome> {
        std::fs::remove_file(&self.flag).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.run).await.expect("run ends").unwrap()
    }

    /// Remove the flag file and wait (60 s at most) for the run to end; panics unless it
    /// succeeded and swapped.
    pub async fn swap(self) -> Summary {
        std::fs::remove_file(&self.flag).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(60), self.run).await.expect("run ends").unwrap();
        let Outcome::Swapped(summary) = outcome.expect("migration succeeds") else { panic!("not swapped") };
        summary
    }
}
