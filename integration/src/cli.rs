//! The real `shadowswap` binary in tests: run to completion ([`run_cli`]) or in the background
//! ([`Spawned`]), and what a failed run must look like: exit status, the one error line, no
//! password shown ([`assert_fails`], [`assert_never_shown`]), and for a refused ALTER or a dry
//! run also nothing left behind and the tables unchanged ([`Unchanged`]); refusal tables are
//! rows of [`Refusal`] run by one driver for both dialects ([`refuses`]).

use std::ffi::OsStr;
use std::fmt::Debug;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::db::TestDatabase;

/// Path of the `shadowswap` binary built beside the test binary (`cargo build` builds it;
/// `scripts/test.sh` does so before running tests).
pub fn shadowswap_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target/<profile>");
    let bin = dir.join("shadowswap");
    assert!(bin.exists(), "{} not found: run `cargo build -p shadowswap-cli` first (scripts/test.sh does)", bin.display());
    bin
}

/// The `shadowswap` binary with `args`, logging at `info`, and with no password from the
/// environment the tests run in (`MYSQL_PWD`, `PGPASSWORD`): a run gets one only where a test
/// gives it.
fn command<I>(args: I) -> Command
where
    I: IntoIterator,
    I::Item: AsRef<OsStr>,
{
    let mut cmd = Command::new(shadowswap_bin());
    cmd.args(args).env_remove("MYSQL_PWD").env_remove("PGPASSWORD").env("RUST_LOG", "info");
    cmd
}

/// Run the `shadowswap` binary with `args` and extra environment, to completion.
pub async fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::from(command(args));
    cmd.envs(env.iter().copied());
    cmd.output().await.expect("run shadowswap")
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The last non-empty line of stderr: the one-line reason of a failed run.
pub fn last_error_line(o: &Output) -> String {
    stderr(o).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

/// A failed run: exit status `code` (1, or 2 for a usage error; not a panic's 101, and no panic
/// message), and one error line, `shadowswap: error: …`, the last on stderr, containing every
/// fragment of `expect`. Returns that line.
pub fn assert_fails(out: &Output, code: i32, expect: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit status; stdout:\n{}\nstderr:\n{err}", stdout(out));
    assert!(!err.contains("panicked"), "a panic is not a refusal:\n{err}");
    let line = last_error_line(out);
    assert!(line.starts_with("shadowswap: error: "), "last stderr line is not the error line: {line:?}\nstderr:\n{err}");
    assert_eq!(err.lines().filter(|l| l.contains("shadowswap: error:")).count(), 1, "one error line:\n{err}");
    for e in expect {
        assert!(line.contains(e), "the error line lacks {e:?}:\n{line}");
    }
    line
}

/// A refused run: [`assert_fails`] with exit status 1.
pub fn assert_refused(out: &Output, expect: &[&str]) -> String {
    assert_fails(out, 1, expect)
}

/// Panics if `secret` appears anywhere in the run's stdout or stderr.
pub fn assert_never_shown(out: &Output, secret: &str) {
    for (name, text) in [("stdout", stdout(out)), ("stderr", stderr(out))] {
        assert!(!text.contains(secret), "the password {secret:?} appears in {name}:\n{text}");
    }
}

/// `shadowswap alter --dsn <dsn> --table <table> --alter <alter> <extra…>`, run to completion.
pub async fn run_alter(dsn: &str, table: &str, alter: &str, extra: &[&str]) -> Output {
    let mut args = vec!["alter", "--dsn", dsn, "--table", table, "--alter", alter];
    args.extend_from_slice(extra);
    run_cli(&args, &[]).await
}

/// One row of a refusal table: `shadowswap alter --table <table> --alter <alter> --execute
/// <extra…>` must be refused with an error line containing every phrase of `expect`, leave
/// nothing behind and change no table ([`Unchanged::refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The table (`--table`).
    pub table: String,
    /// The ALTER spec (`--alter`).
    pub alter: String,
    /// More arguments (`--approve-renamed-columns`, …).
    pub extra: Vec<String>,
    /// Phrases the error line must contain.
    pub expect: Vec<String>,
}

impl Refusal {
    /// `alter` on `table` is refused with every phrase of `expect`.
    pub fn new(table: &str, alter: &str, expect: &[&str]) -> Refusal {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Refusal { table: table.to_string(), alter: alter.to_string(), extra: Vec::new(), expect: owned(expect) }
    }

    /// Each of `alters` on `table` is refused with every phrase of `expect`: one row each.
    pub fn each(table: &str, alters: &[&str], expect: &[&str]) -> Vec<Refusal> {
        alters.iter().map(|a| Refusal::new(table, a, expect)).collect()
    }

    /// The same row, run with more arguments.
    pub fn with(mut self, extra: &[&str]) -> Refusal {
        self.extra.extend(extra.iter().map(|s| s.to_string()));
        self
    }
}

/// A dialect's checks that a run changed nothing: `snapshot` the tables (equal before and after
/// the run), and `assert_clean` (nothing of shadowswap's left behind).
pub struct Unchanged<Snapshot, Clean> {
    /// Definition and rows of the tables a test created.
    pub snapshot: Snapshot,
    /// Panics if the run left anything behind.
    pub assert_clean: Clean,
}

impl<S, F, C, Snapshot, Clean> Unchanged<Snapshot, Clean>
where
    S: PartialEq + Debug,
    F: Future<Output = S>,
    C: Future<Output = ()>,
    Snapshot: Fn() -> F,
    Clean: Fn() -> C,
{
    /// The refusal harness. Run `shadowswap alter --dsn <dsn> --table <table> --alter <alter>
    /// --execute <extra…>` and check that
    /// 1. it exits with status 1 (not 0, not a panic's 101),
    /// 2. the last line of stderr is the one error line, containing every fragment of `expect`,
    /// 3. nothing was left behind,
    /// 4. the tables are unchanged.
    ///
    /// Returns the error line.
    pub async fn refused(&self, dsn: &str, table: &str, alter: &str, extra: &[&str], expect: &[&str]) -> String {
        let mut args = vec!["--execute"];
        args.extend_from_slice(extra);
        self.run((dsn, table, alter, &args), |out| assert_refused(out, expect)).await.1
    }

    /// A refusal table: every row ([`Unchanged::refused`]), in order, against `dsn`. Returns the
    /// error lines.
    pub async fn refuses(&self, dsn: &str, rows: impl IntoIterator<Item = Refusal>) -> Vec<String> {
        let mut lines = Vec::new();
        for r in rows {
            let extra: Vec<&str> = r.extra.iter().map(String::as_str).collect();
            let expect: Vec<&str> = r.expect.iter().map(String::as_str).collect();
            lines.push(self.refused(dsn, &r.table, &r.alter, &extra, &expect).await);
        }
        lines
    }

    /// A dry run: `shadowswap alter --dsn <dsn> --table <table> --alter <alter> <extra…>` (no
    /// `--execute`) must exit with status 0, leave nothing behind and change no table. Returns its
    /// output (the plan on stdout).
    pub async fn dry_run(&self, dsn: &str, table: &str, alter: &str, extra: &[&str]) -> Output {
        self.run((dsn, table, alter, extra), |out| assert_eq!(out.status.code(), Some(0), "{}", stderr(out))).await.0
    }

    /// Run `shadowswap alter --dsn <dsn> --table <table> --alter <alter> <extra…>`, `check` its
    /// output, then check that it left nothing behind and changed no table.
    async fn run<R>(
        &self,
        (dsn, table, alter, extra): (&str, &str, &str, &[&str]),
        check: impl FnOnce(&Output) -> R,
    ) -> (Output, R) {
        let before = (self.snapshot)().await;
        let out = run_alter(dsn, table, alter, extra).await;
        let checked = check(&out);
        (self.assert_clean)().await;
        assert_eq!((self.snapshot)().await, before, "the run changed the tables ({alter:?})");
        (out, checked)
    }
}

/// The refusal-table driver: every row of a refusal table against `db`, in order
/// ([`Unchanged::refused`]), checking that `tables` (what the test's setup created) stay exactly
/// as they were ([`TestDatabase::snapshot`]) and are all there is
/// ([`TestDatabase::assert_nothing_left`]). Returns the error lines.
pub async fn refuses<D: TestDatabase>(db: &D, tables: &[&str], rows: impl IntoIterator<Item = Refusal>) -> Vec<String> {
    let checks = Unchanged { snapshot: || db.snapshot(tables), assert_clean: || db.assert_nothing_left(tables) };
    checks.refuses(db.dsn(), rows).await
}

/// A dry run of `alter` on `table` ([`Unchanged::dry_run`]): it must pass, leave `tables` (what
/// the test created) exactly as they were and create nothing. Returns its output (the plan on
/// stdout).
pub async fn dry_run<D: TestDatabase>(db: &D, tables: &[&str], table: &str, alter: &str, extra: &[&str]) -> Output {
    let checks = Unchanged { snapshot: || db.snapshot(tables), assert_clean: || db.assert_nothing_left(tables) };
    checks.dry_run(db.dsn(), table, alter, extra).await
}

/// A dry run's `plan` (stdout) maps `column` as one the ALTER drops and adds again (filled with
/// its default, the old values not copied), never as a copied column.
pub fn assert_plan_re_adds(plan: &str, column: &str) {
    let re_added = format!("  {column} (dropped and added again: default or computed value; the old values are not copied)");
    assert!(plan.contains(&re_added), "{plan}");
    assert!(plan.contains(&format!("  {column} (dropped)")), "{plan}");
    assert!(!plan.lines().any(|l| l == format!("  {column}")), "{column} is not listed as copied:\n{plan}");
}

/// A line of a [`Spawned`] binary's stderr and when it arrived.
#[derive(Debug, Clone)]
pub struct Line {
    /// When it was read.
    pub at: Instant,
    /// The same, on the wall clock (to compare with a cut-over window).
    pub wall: SystemTime,
    /// The line, without its newline.
    pub text: String,
}

/// The `shadowswap` binary running in the background (environment as for [`run_cli`]), watched
/// live: its stderr collected line by line as it is written, each line with its arrival time
/// ([`Line`]), and its stdout read to the end. [`Spawned::watched`] also echoes every line,
/// tagged, to the test's own stderr (`--no-capture` shows a run as it goes).
pub struct Spawned {
    child: Child,
    tag: Option<String>,
    started: Instant,
    stderr: Arc<Mutex<Vec<Line>>>,
    stderr_reader: Option<JoinHandle<()>>,
    stdout_reader: Option<JoinHandle<String>>,
}

impl Spawned {
    /// Start `shadowswap <args…>`.
    pub fn new<I>(args: I) -> Spawned
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        Spawned::start(None, args)
    }

    /// Start `shadowswap <args…>`, echoing each stderr line as `[tag] line` and the exit as it
    /// happens.
    pub fn watched<I>(tag: &str, args: I) -> Spawned
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        Spawned::start(Some(tag.to_string()), args)
    }

    fn start<I>(tag: Option<String>, args: I) -> Spawned
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let mut child =
            command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start shadowswap");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn({
            let (lines, tag) = (lines.clone(), tag.clone());
            move || {
                for text in BufReader::new(err).lines() {
                    let Ok(text) = text else { break };
                    if let Some(tag) = &tag {
                        eprintln!("[{tag}] {text}");
                    }
                    lines.lock().unwrap().push(Line { at: Instant::now(), wall: SystemTime::now(), text });
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Spawned {
            child,
            tag,
            started: Instant::now(),
            stderr: lines,
            stderr_reader: Some(stderr_reader),
            stdout_reader: Some(stdout_reader),
        }
    }

    /// stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// The stderr lines so far.
    pub fn lines(&self) -> Vec<Line> {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stderr line containing `needle`.
    pub fn line(&self, needle: &str) -> Option<String> {
        self.line_from(0, needle)
    }

    /// The first stderr line from the `from`th on containing `needle`.
    pub fn line_from(&self, from: usize, needle: &str) -> Option<String> {
        self.find_from(from, &[needle]).map(|l| l.text)
    }

    /// The first stderr line containing every one of `needles`.
    pub fn find(&self, needles: &[&str]) -> Option<Line> {
        self.find_from(0, needles)
    }

    /// The first stderr line from the `from`th on containing every one of `needles`.
    fn find_from(&self, from: usize, needles: &[&str]) -> Option<Line> {
        self.stderr.lock().unwrap().iter().skip(from).find(|l| needles.iter().all(|n| l.text.contains(n))).cloned()
    }

    /// How many stderr lines there are so far: a mark for [`Spawned::wait_for_stderr_from`].
    pub fn mark(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }

    /// Whether the process has not exited yet.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait until the stderr reader has read everything the exited process wrote.
    fn drain_stderr(&mut self) {
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
    }

    /// Wait until a stderr line contains `needle` and return it; panics (with stderr) on timeout
    /// or exit.
    pub async fn wait_for_stderr(&mut self, needle: &str, within: Duration) -> String {
        self.wait_for_stderr_from(0, needle, within).await
    }

    /// [`Spawned::wait_for_stderr`], looking only at lines logged after `mark`.
    pub async fn wait_for_stderr_from(&mut self, mark: usize, needle: &str, within: Duration) -> String {
        self.wait_line_from(mark, &[needle], within).await.text
    }

    /// Wait until a stderr line contains every one of `needles` and return it; panics (with
    /// stderr) on timeout or exit.
    pub async fn wait_line(&mut self, needles: &[&str], within: Duration) -> Line {
        self.wait_line_from(0, needles, within).await
    }

    /// [`Spawned::wait_line`], looking only at lines logged after `mark`.
    pub async fn wait_line_from(&mut self, mark: usize, needles: &[&str], within: Duration) -> Line {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.find_from(mark, needles) {
                return l;
            }
            if !self.running() {
                self.drain_stderr();
                if let Some(l) = self.find_from(mark, needles) {
                    return l;
                }
                panic!("{}shadowswap exited before logging {needles:?}:\n{}", self.prefix(), self.stderr_text());
            }
            assert!(
                Instant::now() < deadline,
                "{}no {needles:?} after line {mark} within {within:?}:\n{}",
                self.prefix(),
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Poll `done` every 20 ms until it holds, while the process runs; panics (with stderr) if it
    /// exits first or `within` passes, the latter with the message `what`.
    pub async fn wait_until<F: Future<Output = bool>>(&mut self, within: Duration, what: &str, mut done: impl FnMut() -> F) {
        let deadline = Instant::now() + within;
        loop {
            if done().await {
                return;
            }
            assert!(self.running(), "{}shadowswap exited early:\n{}", self.prefix(), self.stderr_text());
            assert!(Instant::now() < deadline, "{}{what}:\n{}", self.prefix(), self.stderr_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Send `signal` (e.g. "TERM", "KILL") to this process only, by its pid.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{signal} failed");
    }

    /// Wait for the exit; returns the status, stdout and stderr.
    pub async fn finish(mut self, within: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{}shadowswap still running after {within:?}:\n{}",
                self.prefix(),
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.drain_stderr();
        let out = self.stdout_reader.take().unwrap().join().unwrap();
        if let Some(tag) = &self.tag {
            eprintln!("[{tag}] exit {status} after {:.1} s; stdout: {}", self.started.elapsed().as_secs_f64(), out.trim());
        }
        (status, out, self.stderr_text())
    }

    /// `[tag] ` for messages, when watched.
    fn prefix(&self) -> String {
        self.tag.as_ref().map(|t| format!("[{t}] ")).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A failing test must not leave a migration running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
