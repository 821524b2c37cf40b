//! The runner's phase and undo logic against a fake dialect (pure engine logic: no database
//! behaviour is simulated beyond recording calls and copying integer keys).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::config::MigrationConfig;
use shadowswap_engine::dialect::{ChunkChecksum, ChunkCopied, Dialect, RunLock, Signals};
use shadowswap_engine::error::ErrorClass;
use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
use shadowswap_engine::names::{char_len, Names};
use shadowswap_engine::plan::{Plan, PlanSql, Rules};
use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Error, Result, Runner};

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    /// Step that fails (fatally, or with a lock timeout when `timeout` is set).
    fail: Option<&'static str>,
    timeout: bool,
    rows: Vec<u64>,
    shadow: Mutex<Vec<u64>>,
    /// Drop these keys from the shadow after the backfill (to provoke a checksum mismatch).
    lose: Vec<u64>,
    /// Each checksum chunk takes longer the lower its keys (a chunk ending at key k: 5 × (12 − k)
    /// ms, the open last chunk 5 ms), so chunks started together finish in reverse key order.
    slow_low_chunks: bool,
    /// Checksum chunks running now, and the most that ever ran at once.
    checksums_running: Mutex<(usize, usize)>,
    /// Keys the original has beyond the high watermark (not walked, not copied).
    late: Vec<u64>,
    /// The checkpoint row, as the server would keep it.
    checkpoint: Mutex<Option<Checkpoint>>,
    /// Break the connection at this call of `copy_chunk` (1-based), once.
    break_at_copy: Option<usize>,
    /// Break the connection in the first `install_capture`, once.
    break_at_install: bool,
    copies: Mutex<usize>,
    /// The shadow and the old table exist (for a resume after the swap).
    swapped: bool,
    /// After the first connection break the server stays away: the lock's session is gone and
    /// no new session can be made.
    server_gone: bool,
    /// The lock's session is lost and another run takes the lock; each chunk takes 5 ms.
    stolen: bool,
    /// A key an application transaction holds: a chunk over it that may not wait for locks
    /// fails with a lock timeout, this many times.
    held: Option<(u64, usize)>,
    /// Sessions waiting for row locks as each chunk commits.
    waiters: u64,
    /// Every chunk finds rows the capture wrote ahead of the copy.
    written_ahead: bool,
    /// Every chunk attempt: `(after, upto, lock_wait)`.
    attempts: Mutex<Vec<(Option<u64>, u64, Duration)>>,
    /// The table's row estimate, as `inspect` reports it.
    estimated_rows: u64,
    /// Rows the shadow held at each `build_deferred_indexes`.
    index_builds: Mutex<Vec<usize>>,
}

impl Fake {
    fn step(&self, name: &str) -> Result<()> {
        self.calls.lock().unwrap().push(name.to_string());
        if self.fail == Some(name) {
            let class = if self.timeout { ErrorClass::LockTimeout } else { ErrorClass::Fatal };
            return Err(Error::Database { context: name.into(), message: "injected".into(), class });
        }
        Ok(())
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn ckpt(&self) -> Option<Checkpoint> {
        self.checkpoint.lock().unwrap().clone()
    }
}

struct Lock {
    gone: bool,
}
#[async_trait]
impl RunLock for Lock {
    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
    async fn is_held(&mut self) -> Result<bool> {
        Ok(!self.gone)
    }
}

fn shape() -> TableShape {
    TableShape {
        columns: vec![Column {
            name: "id".into(),
            column_type: "int".into(),
            collation: None,
            nullable: false,
            generated: false,
            has_default: false,
            operator_schema: None,
        }],
        indexes: vec![Index { name: "PRIMARY".into(), columns: vec!["id".into()], unique: true, primary: true, partial: false }],
        estimated_rows: 0,
    }
}

/// The fake has no throttle signals: every default refuses, and the runner's tests never throttle.
/// The fake has no staged path: every default refuses.
impl shadowswap_engine::staged::Staged for Fake {}

#[async_trait]
impl Signals for Fake {
    fn target(&self) -> String {
        "fake".into()
    }
}

/// No fault rehearsals either: every default refuses.
impl shadowswap_engine::fault::Rehearsal for Fake {}

#[async_trait]
impl Dialect for Fake {
    type Key = u64;
    fn sql_dialect(&self) -> &dyn sqlparser::dialect::Dialect {
        &sqlparser::dialect::GenericDialect {}
    }
    fn rules(&self) -> Rules {
        Rules { eq: |a, b| a == b, key_column_ok: |_| true, type_change_refusal: |_, _| None, key_change_refusal: |_, _| None }
    }
    fn names(&self, table: &TableRef) -> Names {
        Names::new(table, 64, char_len)
    }
    async fn acquire_run_lock(&self, _: &Names) -> Result<Box<dyn RunLock>> {
        self.step("lock")?;
        let again = self.calls().iter().filter(|c| *c == "lock").count() > 1;
        if self.server_gone && again {
            return Err(Error::Unreachable { target: "fake".into(), reason: "connection refused".into() });
        }
        if self.stolen && again {
            return Err(Error::AnotherRun(TableRef::new("db", "t")));
        }
        Ok(Box::new(Lock { gone: self.server_gone || self.stolen }))
    }
    async fn inspect(&self, _: &TableRef) -> Result<TableShape> {
        Ok(TableShape { estimated_rows: self.estimated_rows, ..shape() })
    }
    async fn table_exists(&self, t: &TableRef) -> Result<bool> {
        Ok(self.swapped && t.name == "_t_old")
    }
    async fn preflight(&self, _: &Names, _: &TableShape, resuming: bool) -> Result<()> {
        self.step(if resuming { "preflight (resuming)" } else { "preflight" })
    }
    async fn trial_alter(&self, _: &Names, _: &AlterAnalysis) -> Result<TableShape> {
        Ok(shape())
    }
    fn render_sql(&self, _: &Plan) -> PlanSql {
        PlanSql::default()
    }
    async fn find_duplicate(&self, _: &TableRef, _: &[String]) -> Result<Option<String>> {
        Ok(None)
    }
    async fn create_shadow(&self, _: &Plan, _: Duration) -> Result<()> {
        self.step("create_shadow")
    }
    async fn install_capture(&self, _: &Plan, _: Duration) -> Result<()> {
        self.step("install_capture")?;
        if self.break_at_install && self.calls().iter().filter(|c| *c == "install_capture").count() == 1 {
            return Err(Error::Database {
                context: "listing capture triggers".into(),
                message: "connection closed".into(),
                class: ErrorClass::Connection,
            });
        }
        Ok(())
    }
    async fn remove_capture(&self, _: &Names, _: Duration) -> Result<()> {
        self.step("remove_capture")
    }
    async fn capture_present(&self, _: &Names) -> Result<Vec<String>> {
        Ok(vec![])
    }
    async fn drop_table(&self, t: &TableRef, _: Duration) -> Result<()> {
        self.step(&format!("drop {}", t.name))
    }
    async fn key_range(&self, _: &Plan) -> Result<Option<(u64, u64)>> {
        Ok(self.rows.first().copied().zip(self.rows.last().copied()))
    }
    async fn chunk_end(&self, _: &Plan, after: Option<&u64>, high: &u64, rows: u64) -> Result<u64> {
        let rest: Vec<u64> = self.rows.iter().copied().filter(|k| after.is_none_or(|a| k > a) && k <= high).collect();
        Ok(rest.get(rows as usize - 1).copied().unwrap_or(*high))
    }
    async fn build_deferred_indexes(&self, _: &Plan, _: Duration) -> Result<()> {
        self.index_builds.lock().unwrap().push(self.shadow.lock().unwrap().len());
        Ok(())
    }
    async fn copy_chunk(
        &self,
        _: &Plan,
        after: Option<&u64>,
        upto: &u64,
        wait: Duration,
        mark: &ChunkMark,
    ) -> Result<ChunkCopied> {
        self.step("copy_chunk")?;
        let covers = |key: u64, after: Option<u64>, upto: u64| after.is_none_or(|a| key > a) && key <= upto;
        let conflicts = {
            let mut a = self.attempts.lock().unwrap();
            a.push((after.copied(), *upto, wait));
            let key = self.held.map_or(0, |(k, _)| k);
            a.iter().filter(|(af, u, w)| w.is_zero() && covers(key, *af, *u)).count()
        };
        if let Some((key, times)) = self.held {
            if wait.is_zero() && covers(key, after.copied(), *upto) && conflicts <= times {
                return Err(Error::Database {
                    context: "copy".into(),
                    message: "Lock wait timeout".into(),
                    class: ErrorClass::LockTimeout,
                });
            }
        }
        let n = {
            let mut c = self.copies.lock().unwrap();
            *c += 1;
            *c
        };
        if self.stolen {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if self.break_at_copy == Some(n) {
            return Err(Error::Database {
                context: "copy".into(),
                message: "connection reset".into(),
                class: ErrorClass::Connection,
            });
        }
        let chunk: Vec<u64> = self.rows.iter().copied().filter(|k| after.is_none_or(|a| k > a) && k <= upto).collect();
        let mut s = self.shadow.lock().unwrap();
        s.retain(|k| after.is_some_and(|a| k <= a) || k > upto);
        s.extend(chunk.iter().filter(|k| !self.lose.contains(k)));
        let mut ckpt = self.checkpoint.lock().unwrap();
        let c = ckpt.as_mut().expect("the checkpoint is written before the backfill");
        c.low_watermark = Some(mark.low_watermark.clone());
        c.rows_copied += chunk.len() as u64;
        c.chunk_rows = mark.chunk_rows;
        Ok(ChunkCopied { rows: chunk.len() as u64, waiters: self.waiters, written_ahead: self.written_ahead })
    }
    fn dialect_name(&self) -> &'static str {
        "fake"
    }
    async fn checkpoint_write(&self, _: &Names, ckpt: &Checkpoint) -> Result<()> {
        self.step(&format!("checkpoint {}", ckpt.phase))?;
        *self.checkpoint.lock().unwrap() = Some(ckpt.clone());
        Ok(())
    }
    async fn checkpoint_read(&self, _: &Names) -> Result<Option<Checkpoint>> {
        Ok(self.ckpt())
    }
    fn key_to_text(&self, key: &u64) -> String {
        key.to_string()
    }
    fn key_from_text(&self, _: &Plan, text: &str) -> Result<u64> {
        text.parse().map_err(|_| Error::refused("bad key"))
    }
    async fn verify_resumable(&self, _: &Plan) -> Result<()> {
        self.step("verify_resumable")
    }
    async fn checksum_chunk(&self, _: &Plan, after: Option<&u64>, upto: Option<&u64>) -> Result<(ChunkChecksum, ChunkChecksum)> {
        let sum = |keys: &[u64]| {
            let k: Vec<u64> =
                keys.iter().copied().filter(|k| after.is_none_or(|a| k > a) && upto.is_none_or(|u| k <= u)).collect();
            ChunkChecksum { rows: k.len() as u64, hash: k.iter().fold(0, |h, x| h ^ x.wrapping_mul(0x9e37_79b9)) }
        };
        {
            let mut r = self.checksums_running.lock().unwrap();
            r.0 += 1;
            r.1 = r.1.max(r.0);
        }
        if self.slow_low_chunks {
            tokio::time::sleep(Duration::from_millis(5 * (12 - upto.copied().unwrap_or(11).min(11)))).await;
        }
        self.checksums_running.lock().unwrap().0 -= 1;
        let original: Vec<u64> = self.rows.iter().chain(&self.late).copied().collect();
        Ok((sum(&original), sum(&self.shadow.lock().unwrap())))
    }
    async fn cut_over(&self, _: &Plan, _: Duration) -> Result<Duration> {
        self.step("cut_over").map(|()| Duration::ZERO)
    }
}

fn config() -> MigrationConfig {
    let mut c = MigrationConfig { execute: true, ..MigrationConfig::default() };
    c.copy.fixed_chunk_rows = Some(3);
    c.cut_over.retries = 2;
    c.cut_over.backoff_min = Duration::from_millis(1);
    c.cut_over.backoff_max = Duration::from_millis(2);
    c.ddl.retries = 1;
    c.ddl.backoff_min = Duration::from_millis(1);
    c.ddl.backoff_max = Duration::from_millis(2);
    c
}

async fn run(fake: Fake, cfg: MigrationConfig) -> (Result<Outcome>, Vec<String>) {
    let fake = Arc::new(Fake { rows: (1..=10).collect(), ..fake });
    let runner = Runner::new(fake.clone(), cfg);
    let r = runner.run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    (r, fake.calls())
}

fn without_copies(calls: &[String]) -> Vec<&str> {
    calls.iter().map(String::as_str).filter(|c| *c != "copy_chunk").collect()
}

#[tokio::test]
async fn completes_in_order_and_copies_every_row() {
    let (r, calls) = run(Fake::default(), config()).await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.backfill.rows, 10);
    assert_eq!(s.backfill.chunks, 4, "10 rows in chunks of 3");
    assert_eq!(s.rows_checksummed, Some(10));
    assert_eq!(
        without_copies(&calls),
        [
            "lock",
            "preflight",
            "checkpoint create shadow",
            "create_shadow",
            "checkpoint install capture",
            "install_capture",
            "checkpoint backfill",
            "checkpoint build indexes",
            "checkpoint checksum",
            "checkpoint cut-over",
            "cut_over",
            "checkpoint cleanup",
            "remove_capture",
            "drop _t_old",
            "drop _t_ssw_ckpt"
        ]
    );
}

#[tokio::test]
async fn dry_run_creates_nothing() {
    let (r, calls) = run(Fake::default(), MigrationConfig { execute: false, ..config() }).await;
    assert!(matches!(r, Ok(Outcome::DryRun(_))));
    assert_eq!(calls, ["lock", "preflight"]);
}

#[tokio::test]
async fn failure_at_each_step_before_the_swap_undoes_in_reverse() {
    for step in ["create_shadow", "install_capture", "copy_chunk", "cut_over"] {
        let (r, calls) = run(Fake { fail: Some(step), ..Fake::default() }, config()).await;
        assert!(r.is_err(), "{step}");
        let undo: Vec<&str> =
            calls.iter().skip_while(|c| *c != step).skip(1).map(String::as_str).filter(|c| *c != step).collect();
        let expected: &[&str] = if step == "create_shadow" {
            &["drop _t_new", "drop _t_ssw_ckpt"]
        } else {
            &["remove_capture", "drop _t_new", "drop _t_ssw_ckpt"]
        };
        assert_eq!(undo, expected, "after a failure at {step}: triggers first (if installed), then the shadow");
        assert!(!calls.iter().any(|c| c == "drop _t_old" || c == "drop t"), "undo never touches the table or the old table");
    }
}

#[tokio::test]
async fn cut_over_lock_timeouts_are_retried_then_reported() {
    let (r, calls) = run(Fake { fail: Some("cut_over"), timeout: true, ..Fake::default() }, config()).await;
    let Err(Error::CutOverExhausted { attempts, .. }) = r else { panic!("{r:?}") };
    assert_eq!(attempts, 3, "one attempt plus two retries");
    assert_eq!(calls.iter().filter(|c| *c == "cut_over").count(), 3);
    assert_eq!(calls.last().map(String::as_str), Some("drop _t_ssw_ckpt"));
}

#[tokio::test]
async fn checksum_mismatch_stops_before_the_swap() {
    let (r, calls) = run(Fake { lose: vec![7], ..Fake::default() }, config()).await;
    assert!(matches!(r, Err(Error::ChecksumMismatch { .. })), "{r:?}");
    assert!(!calls.iter().any(|c| c == "cut_over"));
}

#[tokio::test]
async fn checksum_covers_rows_above_the_high_watermark() {
    // A row the original has above the high watermark (inserted after the backfill began) that
    // the shadow lacks, as if capture had missed it, is found: the checksum's last chunk has no
    // upper bound. With a bounded last chunk this run would swap and lose the row.
    let (r, calls) = run(Fake { late: vec![99], ..Fake::default() }, config()).await;
    assert!(matches!(r, Err(Error::ChecksumMismatch { .. })), "{r:?}");
    assert!(!calls.iter().any(|c| c == "cut_over"));
}

/// [`config`] with checksum chunks of one row each (10 chunks) compared `threads` at a time.
fn one_row_checksum_chunks(threads: usize) -> MigrationConfig {
    let mut c = config();
    c.copy.initial_chunk_rows = 0;
    c.copy.max_chunk_rows = 0;
    c.checksum.threads = threads;
    c
}

#[tokio::test]
async fn parallel_checksum_compares_every_chunk() {
    let fake = Arc::new(Fake { rows: (1..=10).collect(), slow_low_chunks: true, ..Fake::default() });
    let r = Runner::new(fake.clone(), one_row_checksum_chunks(3)).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.rows_checksummed, Some(10));
    assert_eq!(fake.checksums_running.lock().unwrap().1, 3, "three chunks at once, never more");
}

#[tokio::test]
async fn parallel_checksum_names_the_first_mismatching_chunk_in_key_order() {
    // Keys 2 and 3 are missing from the shadow: chunks (1, 2] and (2, 3] differ. With three
    // chunks at once the later one finishes first; the error still names (1, 2], as one
    // thread does. Reporting in completion order, or skipping a chunk, names (2, 3].
    let mut named = vec![];
    for threads in [1, 3] {
        let fake = Arc::new(Fake { rows: (1..=10).collect(), lose: vec![2, 3], slow_low_chunks: true, ..Fake::default() });
        let r =
            Runner::new(fake.clone(), one_row_checksum_chunks(threads)).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
        let Err(Error::ChecksumMismatch { chunk, .. }) = r else { panic!("{threads} thread(s): {r:?}") };
        assert!(!fake.calls().iter().any(|c| c == "cut_over"));
        assert_eq!(fake.checksums_running.lock().unwrap().1, threads);
        named.push(chunk);
    }
    assert_eq!(named, ["(1, 2]", "(1, 2]"]);
}

#[tokio::test]
async fn problems_after_the_swap_are_warnings_not_undo() {
    let (r, calls) = run(Fake { fail: Some("drop _t_old"), ..Fake::default() }, config()).await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(!calls.iter().any(|c| c == "drop _t_new"), "nothing is undone after the swap");
}

#[tokio::test]
async fn preflight_refusal_creates_nothing() {
    let (r, calls) = run(Fake { fail: Some("preflight"), ..Fake::default() }, config()).await;
    assert!(r.is_err());
    assert_eq!(calls, ["lock", "preflight"]);
}

#[tokio::test]
async fn a_broken_connection_reconnects_and_continues_from_the_checkpoint() {
    let mut cfg = config();
    cfg.reconnect.backoff_min = Duration::from_millis(1);
    let fake = Arc::new(Fake { rows: (1..=10).collect(), break_at_copy: Some(3), ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.reconnects, 1);
    assert_eq!(s.backfill.rows_before, 6, "two chunks of 3 were copied before the break");
    assert_eq!(s.backfill.rows, 4, "only what remained was copied after it");
    assert_eq!(s.rows_checksummed, Some(10));
    let calls = fake.calls();
    assert!(calls.iter().any(|c| c == "verify_resumable"), "{calls:?}");
    assert!(!calls.iter().any(|c| c == "drop _t_new"), "nothing undone: {calls:?}");
}

/// A connection lost while the capture is installed: the run reconnects, finds its checkpoint
/// before a complete capture, removes what it created and starts over (the published phase
/// goes back from `install capture` to `create shadow`), and completes.
#[tokio::test]
async fn a_connection_lost_in_the_capture_install_starts_the_run_over() {
    let mut cfg = config();
    cfg.reconnect.backoff_min = Duration::from_millis(1);
    let fake = Arc::new(Fake { rows: (1..=10).collect(), break_at_install: true, ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!((s.reconnects, s.resumed_from, s.backfill.rows), (1, None, 10));
    let calls = fake.calls();
    let installs: Vec<usize> = calls.iter().enumerate().filter(|(_, c)| *c == "install_capture").map(|(i, _)| i).collect();
    assert_eq!(installs.len(), 2, "{calls:?}");
    let between = &calls[installs[0]..installs[1]];
    assert!(between.iter().any(|c| c == "drop _t_new") && between.iter().any(|c| c == "create_shadow"), "{calls:?}");
}

fn checkpoint_at(phase: shadowswap_engine::Phase, low: Option<u64>, rows: u64) -> Checkpoint {
    // The plan the fake gives is the same every time, so its fingerprint is too.
    let names = Names::new(&TableRef::new("db", "t"), 64, char_len);
    let analysis = shadowswap_engine::alter::analyze("ADD COLUMN c INT", &sqlparser::dialect::GenericDialect {}).unwrap();
    let rules =
        Rules { eq: |a, b| a == b, key_column_ok: |_| true, type_change_refusal: |_, _| None, key_change_refusal: |_, _| None };
    let plan = Plan::build(names, analysis, shape(), shape(), rules, false).unwrap();
    let mut c = Checkpoint::new(&plan, "fake");
    c.phase = phase;
    c.low_watermark = low.map(|k| k.to_string());
    c.high_watermark = Some("10".into());
    c.rows_copied = rows;
    c
}

#[tokio::test]
async fn a_run_with_a_checkpoint_resumes_after_its_low_watermark() {
    let fake = Arc::new(Fake {
        rows: (1..=10).collect(),
        checkpoint: Mutex::new(Some(checkpoint_at(shadowswap_engine::Phase::Backfill, Some(6), 6))),
        shadow: Mutex::new((1..=6).collect()),
        ..Fake::default()
    });
    let r = Runner::new(fake.clone(), config()).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.resumed_from, Some(shadowswap_engine::Phase::Backfill));
    assert_eq!((s.backfill.rows_before, s.backfill.rows), (6, 4));
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c == "create_shadow" || c == "install_capture"), "{calls:?}");
    assert_eq!(&calls[..3], ["lock", "preflight (resuming)", "verify_resumable"]);
}

#[tokio::test]
async fn a_different_alter_on_a_table_with_a_checkpoint_is_refused() {
    let fake = Arc::new(Fake {
        rows: (1..=10).collect(),
        checkpoint: Mutex::new(Some(checkpoint_at(shadowswap_engine::Phase::Backfill, Some(6), 6))),
        ..Fake::default()
    });
    let r = Runner::new(fake.clone(), config()).run(&TableRef::new("db", "t"), "ADD COLUMN d INT").await;
    let Err(Error::Refused(msg)) = r else { panic!("{r:?}") };
    assert!(msg.contains("shadowswap cleanup"), "{msg}");
    assert_eq!(fake.calls(), ["lock"]);
}

#[tokio::test]
async fn a_run_stopped_before_its_capture_was_complete_starts_over() {
    let fake = Arc::new(Fake {
        rows: (1..=10).collect(),
        checkpoint: Mutex::new(Some(checkpoint_at(shadowswap_engine::Phase::InstallCapture, None, 0))),
        ..Fake::default()
    });
    let r = Runner::new(fake.clone(), config()).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!((s.backfill.rows_before, s.backfill.rows), (0, 10));
    let calls = fake.calls();
    let undo = calls.iter().position(|c| c == "remove_capture").expect("undo first");
    let create = calls.iter().position(|c| c == "create_shadow").expect("then created again");
    assert!(undo < create, "{calls:?}");
}

#[tokio::test]
async fn a_run_that_had_swapped_only_finishes_its_cleanup() {
    let fake = Arc::new(Fake {
        rows: (1..=10).collect(),
        checkpoint: Mutex::new(Some(checkpoint_at(shadowswap_engine::Phase::CutOver, Some(10), 10))),
        swapped: true,
        ..Fake::default()
    });
    let r = Runner::new(fake.clone(), config()).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.resumed_from, Some(shadowswap_engine::Phase::CutOver));
    assert_eq!(fake.calls(), ["lock", "drop _t_ssw_hb", "remove_capture", "drop _t_old", "drop _t_ssw_ckpt"]);
}

#[tokio::test]
async fn a_server_that_stays_away_stops_the_run_resumable_after_the_reconnect_timeout() {
    let mut cfg = config();
    cfg.reconnect.timeout = Duration::from_millis(30);
    cfg.reconnect.backoff_min = Duration::from_millis(1);
    cfg.reconnect.backoff_max = Duration::from_millis(5);
    let fake = Arc::new(Fake { rows: (1..=10).collect(), break_at_copy: Some(2), server_gone: true, ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Err(Error::ConnectionLost { .. }) = r else { panic!("{r:?}") };
    let calls = fake.calls();
    assert!(calls.iter().filter(|c| *c == "lock").count() > 2, "kept trying: {calls:?}");
    assert!(!calls.iter().any(|c| c.starts_with("drop") || c == "remove_capture"), "nothing undone: {calls:?}");
    let ckpt = fake.ckpt().expect("the checkpoint stays");
    assert_eq!((ckpt.low_watermark.as_deref(), ckpt.rows_copied), (Some("3"), 3), "one chunk of 3 recorded");
}

#[tokio::test]
async fn a_lock_taken_by_another_run_stops_this_one_without_removing_anything() {
    let mut cfg = config();
    cfg.copy.fixed_chunk_rows = Some(1);
    cfg.reconnect.lock_check = Duration::from_millis(1);
    let fake = Arc::new(Fake { rows: (1..=10).collect(), stolen: true, ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Err(Error::LockLost(_)) = r else { panic!("{r:?}") };
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c.starts_with("drop") || c == "remove_capture" || c == "cut_over"), "{calls:?}");
}

fn copy_attempts(fake: &Fake) -> Vec<(Option<u64>, u64, bool)> {
    fake.attempts.lock().unwrap().iter().map(|(a, u, w)| (*a, *u, w.is_zero())).collect()
}

/// A chunk over a row an application transaction holds is rolled back at once, never waited
/// for, and planned again half as big until it fits beside the held row; the fixed size comes
/// back after it. Every row is copied.
#[tokio::test]
async fn a_chunk_that_meets_a_held_row_does_not_wait_and_is_retried_smaller() {
    let mut cfg = config();
    cfg.copy.fixed_chunk_rows = Some(4);
    cfg.copy.retry_backoff_min = Duration::from_millis(1);
    let fake = Arc::new(Fake { rows: (1..=10).collect(), held: Some((5, 2)), ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!((s.backfill.rows, s.backfill.conflicts), (10, 2));
    assert_eq!(
        copy_attempts(&fake),
        [(None, 4, true), (Some(4), 8, true), (Some(4), 6, true), (Some(4), 5, true), (Some(5), 9, true), (Some(9), 10, true)],
        "(4, 8] met row 5: (4, 6] met it again: (4, 5] once it was free; then chunks of 4 again"
    );
    assert_eq!(*fake.shadow.lock().unwrap(), (1..=10).collect::<Vec<_>>());
}

/// A row held through every no-wait attempt: the chunk then waits for it like any statement,
/// up to the lock wait timeout.
#[tokio::test]
async fn a_row_held_through_every_no_wait_attempt_is_then_waited_for() {
    let mut cfg = config();
    cfg.copy.retry_backoff_min = Duration::from_millis(1);
    cfg.copy.retry_backoff_max = Duration::from_millis(2);
    let fake = Arc::new(Fake { rows: (1..=10).collect(), held: Some((1, 1000)), ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg.clone()).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.backfill.conflicts, u64::from(shadowswap_engine::backfill::NOWAIT_ATTEMPTS));
    let attempts = fake.attempts.lock().unwrap().clone();
    let waited: Vec<_> = attempts.iter().filter(|(_, _, w)| !w.is_zero()).collect();
    assert_eq!(waited.len(), 1, "{attempts:?}");
    assert_eq!((waited[0].0, waited[0].1, waited[0].2), (None, 1, cfg.copy.lock_wait_timeout));
    assert_eq!(*fake.shadow.lock().unwrap(), (1..=10).collect::<Vec<_>>());
}

/// A table live from the first chunk on (writers waiting for row locks, or rows written ahead of
/// the copy): the deferred indexes are built right after it, once (and phase `build indexes`
/// asks again, which the dialect answers by finding them built), and every chunk is a contended
/// one. With the table's estimate at 3 rows, a quarter is copied by the first chunk, and a calm
/// table: built only in that phase.
#[tokio::test]
async fn a_table_live_early_in_the_copy_has_the_deferred_indexes_built_at_once() {
    let mut cfg = config();
    cfg.copy.fixed_chunk_rows = None;
    cfg.copy.initial_chunk_rows = 1;
    let cases = [
        (2, false, 100, vec![1, 10], Some(1)),
        (0, true, 100, vec![1, 10], Some(1)),
        (2, true, 3, vec![10], None),
        (0, false, 100, vec![10], None),
    ];
    for (waiters, written_ahead, estimated, builds, at) in cases {
        let fake = Fake { rows: (1..=10).collect(), waiters, written_ahead, estimated_rows: estimated, ..Fake::default() };
        let fake = Arc::new(fake);
        let r = Runner::new(fake.clone(), cfg.clone()).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
        let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
        let case = format!("waiters {waiters}, written ahead {written_ahead}, estimate {estimated}");
        assert_eq!(*fake.index_builds.lock().unwrap(), builds, "{case}");
        assert_eq!(s.backfill.indexes_built_at_rows, at, "{case}");
        let live = waiters > 0 || written_ahead;
        assert_eq!(s.backfill.contended_chunks, if live { s.backfill.chunks } else { 0 }, "{case}: {:?}", s.backfill);
        assert_eq!(*fake.shadow.lock().unwrap(), (1..=10).collect::<Vec<_>>());
    }
}

/// Writers waiting for row locks as the copy's chunks commit: the chunks aim at `--max-latency`
/// (contended), and the checksum after such a copy compares one chunk at a time although three
/// threads are configured.
#[tokio::test]
async fn a_copy_that_ended_contended_is_followed_by_a_gentle_checksum() {
    let mut cfg = one_row_checksum_chunks(3);
    cfg.copy.fixed_chunk_rows = None;
    let fake = Arc::new(Fake { rows: (1..=10).collect(), slow_low_chunks: true, waiters: 2, ..Fake::default() });
    let r = Runner::new(fake.clone(), cfg).run(&TableRef::new("db", "t"), "ADD COLUMN c INT").await;
    let Ok(Outcome::Swapped(s)) = r else { panic!("{r:?}") };
    assert!(s.backfill.ended_contended && s.backfill.contended_chunks == s.backfill.chunks, "{:?}", s.backfill);
    assert_eq!(s.rows_checksummed, Some(10));
    assert_eq!(fake.checksums_running.lock().unwrap().1, 1, "one chunk at a time");
}
