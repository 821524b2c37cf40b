//! The staged contract: `shadowswap contract`, the constraint steps that follow a backfill,
//! each done the way that does not block the application's writes.
//!
//! The contract ALTER is split into its clauses ([`split`], with the server's `sqlparser`
//! dialect), each clause one step, and each step planned by the dialect
//! ([`Staged::contract_step`](super::Staged::contract_step)):
//!
//! - **PostgreSQL** `ALTER COLUMN c SET NOT NULL`: `ADD CONSTRAINT … CHECK (c IS NOT NULL) NOT
//!   VALID` (brief ACCESS EXCLUSIVE, no scan), `VALIDATE CONSTRAINT` (SHARE UPDATE EXCLUSIVE: the
//!   scan does not block writes), `SET NOT NULL` (brief ACCESS EXCLUSIVE; PostgreSQL 12+ skips the
//!   scan when a validated CHECK proves the column has no NULL, "ALTER TABLE" docs), drop the
//!   check. `ADD [CONSTRAINT n] UNIQUE (…)`: `CREATE UNIQUE INDEX CONCURRENTLY` then `ADD
//!   CONSTRAINT n UNIQUE USING INDEX`; an index left INVALID by an earlier failed attempt is
//!   dropped first (`DROP INDEX CONCURRENTLY`). `ADD FOREIGN KEY`/`ADD CHECK`: `NOT VALID`, then
//!   `VALIDATE CONSTRAINT`. Anything else is refused by name.
//! - **MariaDB**: each clause is tried on an empty copy of the table's definition with
//!   `ALGORITHM=INSTANT`, then `ALGORITHM=INPLACE, LOCK=NONE` (the server refuses what it cannot
//!   do that way, at once); what it accepts runs on the table that way, what it refuses goes
//!   through shadowswap's own shadow copy ([`crate::Runner`]), step [`SHADOW_COPY`].
//!
//! Every statement waits at most `config.cut_over.lock_timeout` for its lock (PostgreSQL
//! `lock_timeout`, MariaDB `lock_wait_timeout`) and is retried on a lock timeout or deadlock with
//! the cut-over's bounded, backed-off attempts ([`crate::retry`], `--cut-over-retries`). A step
//! that fails runs its undo ([`Staged::contract_undo`](super::Staged::contract_undo): the NOT VALID check dropped, the invalid
//! index dropped), so nothing is left half-done; steps before it stay applied (each is complete
//! and useful on its own) and the error says which.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, Expr, Ident, Statement, TableConstraint};
use sqlparser::parser::Parser;
use tokio_util::sync::CancellationToken;

use crate::config::MigrationConfig;
use crate::dialect::Dialect;
use crate::error::{Error, ErrorClass, Result};
use crate::model::TableRef;
use crate::preflight::alter;
use crate::progress::LOG_TARGET;
use crate::retry::with_retry;
use crate::runner::{Outcome, Runner};

/// [`ContractStep::technique`] of a step run through shadowswap's own shadow copy
/// ([`crate::Runner`] with the step's clause as the ALTER); its `statements` are the clause.
pub const SHADOW_COPY: &str = "shadow copy";

/// One clause of the contract ALTER, as the planner read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractOp {
    /// `ALTER COLUMN c SET NOT NULL` (PostgreSQL).
    SetNotNull {
        /// The column, as the server resolves it.
        column: String,
    },
    /// `ADD [CONSTRAINT n] UNIQUE (…)` (`constraint`), or MariaDB's `ADD [UNIQUE] INDEX|KEY`.
    AddIndex {
        /// The constraint's or index's name, when given.
        name: Option<String>,
        /// A unique index.
        unique: bool,
        /// A table constraint (`ADD … UNIQUE`), not a bare index.
        constraint: bool,
        /// The indexed columns (plain column names only).
        columns: Vec<String>,
    },
    /// `ADD [CONSTRAINT n] FOREIGN KEY (…) REFERENCES t (…) [ON DELETE …] [ON UPDATE …]`.
    AddForeignKey {
        /// The constraint's name, when given.
        name: Option<String>,
        /// The referencing columns.
        columns: Vec<String>,
        /// The referenced table's name parts (`[schema,] table`).
        foreign_table: Vec<String>,
        /// The referenced columns (empty: its primary key).
        referred_columns: Vec<String>,
        /// `ON DELETE` action, as keywords (`CASCADE`, `SET NULL`, …).
        on_delete: Option<String>,
        /// `ON UPDATE` action, as keywords.
        on_update: Option<String>,
    },
    /// `ADD [CONSTRAINT n] CHECK (expr)`.
    AddCheck {
        /// The constraint's name, when given.
        name: Option<String>,
        /// The expression, the operator's SQL as sqlparser prints it back (one expression).
        expr: String,
    },
    /// Any other clause: MariaDB runs it as written (in place or by shadow copy); PostgreSQL
    /// refuses it.
    Other,
}

/// One clause of the contract ALTER: its text (what follows `ALTER TABLE t`, one clause) and
/// what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractClause {
    /// The clause exactly as written (trimmed).
    pub text: String,
    /// What the clause does.
    pub op: ContractOp,
}

/// One step of the contract and how it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractStep {
    /// What the step does: the clause as written.
    pub what: String,
    /// How: e.g. `NOT VALID check, VALIDATE, SET NOT NULL`, `ALGORITHM=INSTANT`,
    /// `ALGORITHM=INPLACE, LOCK=NONE`, or [`SHADOW_COPY`].
    pub technique: String,
    /// The exact statements, in order, as the run executes them (for [`SHADOW_COPY`]: the clause
    /// given to the shadow copy).
    pub statements: Vec<String>,
    /// The strongest lock the step takes on the table that blocks writes, and for how long it
    /// holds it (e.g. `ACCESS EXCLUSIVE, metadata only`), or that it takes none that does.
    pub lock: String,
    /// The longest the step may block the application's writes: each write-blocking statement's
    /// lock timeout × attempts, summed (a lock request queued waits at most the lock timeout,
    /// and the lock, once had, is held for a metadata change only).
    pub max_blocking: Duration,
    /// Whether the step reads the whole table (a validation, an index build, a copy).
    pub scans: bool,
}

/// The contract's plan: the table and its steps in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractPlan {
    /// The table.
    pub table: TableRef,
    /// The steps, in the order they run.
    pub steps: Vec<ContractStep>,
}

impl ContractPlan {
    /// The dry run's text: per step, the technique, the lock and how long it may block writes at
    /// most, whether it scans, and the exact statements.
    pub fn render(&self) -> String {
        let mut out = format!("contract {}: {} step(s)\n", self.table, self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("step {}: {}\n", i + 1, s.what));
            out.push_str(&format!("  technique: {}\n", s.technique));
            out.push_str(&format!("  lock: {}\n", s.lock));
            out.push_str(&format!(
                "  blocks writes at most: {} ms (lock timeout × attempts, per write-blocking statement, summed); {}\n",
                s.max_blocking.as_millis(),
                if s.scans { "scans the table (without blocking writes)" } else { "no scan" }
            ));
            for st in &s.statements {
                out.push_str(&format!("    {st};\n"));
            }
        }
        out
    }
}

/// What a contract run did: per step its clause, wall time and the attempts its statements
/// needed (the most any one of them needed), and the whole run's wall time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractReport {
    /// `(what, wall time, attempts)` per step, in order.
    pub steps: Vec<(String, Duration, u32 /* attempts */)>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// Split `alter` (what follows `ALTER TABLE t`) into its clauses and read each with `dialect`'s
/// parser. Pure.
///
/// Errors ([`Error::Refused`]): what [`alter::analyze`] refuses (several statements, `;`,
/// unbalanced quotes), and on PostgreSQL a clause the parser cannot read.
pub fn split(alter: &str, dialect: &dyn sqlparser::dialect::Dialect) -> Result<Vec<ContractClause>> {
    let analysis = alter::analyze(alter, dialect)?;
    let texts = clause_texts(alter, dialect)?;
    if texts.len() != analysis.clauses.len() {
        return Err(Error::refused(
            "the contract ALTER has commas inside an executable comment; write its clauses without /*!…*/ or /*M!…*/ comments",
        ));
    }
    let pg = dialect.is::<sqlparser::dialect::PostgreSqlDialect>();
    let mut out = Vec::new();
    for text in texts {
        let op = match Parser::parse_sql(dialect, &format!("ALTER TABLE t {text}")) {
            Ok(mut stmts) if stmts.len() == 1 => match stmts.pop() {
                Some(Statement::AlterTable(at)) if at.operations.len() == 1 => read_op(&at.operations[0], pg)?,
                _ => ContractOp::Other,
            },
            Ok(_) => ContractOp::Other,
            Err(e) if pg => {
                return Err(Error::refused(format!(
                    "cannot read contract clause {text:?}: {e}; give PostgreSQL ALTER TABLE clauses separated by commas"
                )))
            }
            Err(_) => ContractOp::Other,
        };
        out.push(ContractClause { text, op });
    }
    Ok(out)
}

/// The top-level, comma-separated clauses of `spec`, each exactly as written (trimmed): the
/// server runs the operator's text, not a re-printed one.
fn clause_texts(spec: &str, dialect: &dyn sqlparser::dialect::Dialect) -> Result<Vec<String>> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(dialect, spec)
        .tokenize_with_location()
        .map_err(|e| Error::refused(format!("cannot parse the contract ALTER: {e}; check its quoting")))?;
    // Byte offset of each line's start, to turn (line, column in characters) into a byte offset.
    let mut line_starts = vec![0usize];
    line_starts.extend(spec.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts[(line.max(1) - 1) as usize];
        start + spec[start..].chars().take((column.max(1) - 1) as usize).map(char::len_utf8).sum::<usize>()
    };
    let (mut depth, mut from, mut out) = (0i32, 0usize, Vec::new());
    for t in &tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                let at = offset(t.span.start.line, t.span.start.column);
                out.push(spec[from..at].trim().to_string());
                from = at + 1;
            }
            _ => {}
        }
    }
    out.push(spec[from..].trim().to_string());
    Ok(out)
}

/// An identifier as the server resolves it: PostgreSQL folds unquoted names to lower case.
fn ident(i: &Ident, pg: bool) -> String {
    if pg && i.quote_style.is_none() {
        i.value.to_lowercase()
    } else {
        i.value.clone()
    }
}

fn read_op(op: &AlterTableOperation, pg: bool) -> Result<ContractOp> {
    let names = |v: &[Ident]| v.iter().map(|i| ident(i, pg)).collect::<Vec<_>>();
    let index_columns = |cols: &[sqlparser::ast::IndexColumn]| -> Option<Vec<String>> {
        cols.iter()
            .map(|c| match (&c.column.expr, &c.operator_class) {
                (Expr::Identifier(i), None) if c.column.options.sort.is_none() && c.column.options.nulls_first.is_none() => {
                    Some(ident(i, pg))
                }
                _ => None,
            })
            .collect()
    };
    Ok(match op {
        AlterTableOperation::AlterColumn { column_name, op: AlterColumnOperation::SetNotNull } => {
            ContractOp::SetNotNull { column: ident(column_name, pg) }
        }
        AlterTableOperation::AddConstraint { constraint, not_valid: false } => match constraint {
            TableConstraint::Unique(u)
                if u.index_name.is_none() && u.include.is_empty() && u.index_options.is_empty() && u.index_type.is_none() =>
            {
                match index_columns(&u.columns) {
                    Some(columns) => ContractOp::AddIndex {
                        name: u.name.as_ref().map(|n| ident(n, pg)),
                        unique: true,
                        constraint: true,
                        columns,
                    },
                    None => ContractOp::Other,
                }
            }
            TableConstraint::Index(ix) if ix.index_type.is_none() && ix.index_options.is_empty() => {
                match index_columns(&ix.columns) {
                    Some(columns) => ContractOp::AddIndex {
                        name: ix.name.as_ref().map(|n| ident(n, pg)),
                        unique: false,
                        constraint: false,
                        columns,
                    },
                    None => ContractOp::Other,
                }
            }
            TableConstraint::ForeignKey(fk)
                if fk.index_name.is_none() && fk.match_kind.is_none() && fk.characteristics.is_none() =>
            {
                ContractOp::AddForeignKey {
                    name: fk.name.as_ref().map(|n| ident(n, pg)),
                    columns: names(&fk.columns),
                    foreign_table: fk.foreign_table.0.iter().filter_map(|p| p.as_ident().map(|i| ident(i, pg))).collect(),
                    referred_columns: names(&fk.referred_columns),
                    on_delete: fk.on_delete.map(|a| a.to_string()),
                    on_update: fk.on_update.map(|a| a.to_string()),
                }
            }
            TableConstraint::Check(c) if !c.no_inherit && c.enforced.is_none() => {
                ContractOp::AddCheck { name: c.name.as_ref().map(|n| ident(n, pg)), expr: c.expr.to_string() }
            }
            _ => ContractOp::Other,
        },
        _ => ContractOp::Other,
    })
}

/// Plan the contract of `table` with `alter`: split it ([`split`]) and let the dialect plan each
/// step ([`Staged::contract_step`](super::Staged::contract_step); MariaDB asks the server, on an empty copy of the table's
/// definition, which algorithm it accepts). Changes nothing on the table.
///
/// Errors: [`Error::NoSuchTable`]; [`Error::Refused`] naming a clause the server has no
/// non-blocking technique for (PostgreSQL), or an index/constraint name already taken.
pub async fn plan<D: Dialect>(d: &Arc<D>, table: &TableRef, alter: &str, config: &MigrationConfig) -> Result<ContractPlan> {
    if !d.table_exists(table).await? {
        return Err(Error::NoSuchTable(table.clone()));
    }
    let clauses = split(alter, d.sql_dialect())?;
    let mut steps = Vec::with_capacity(clauses.len());
    for c in &clauses {
        steps.push(d.contract_step(table, c, &config.cut_over).await?);
    }
    Ok(ContractPlan { table: table.clone(), steps })
}

/// Run the contract of `table` with `alter` (`config.execute` is not consulted: this runs).
/// Plans ([`plan`]: every clause is refused or accepted before anything changes), then runs
/// the steps in order, each planned again just before it runs (on the table as the steps before
/// it left it): each statement under
/// `config.cut_over.lock_timeout`, retried on lock timeouts and deadlocks with the cut-over's
/// policy; a [`SHADOW_COPY`] step through [`crate::Runner`] (`config` as given, executing).
/// A step that fails has its undo run ([`Staged::contract_undo`](super::Staged::contract_undo)) and the run stops. Each
/// in-place step holds the table's run lock (as `alter` does), so no other shadowswap run works
/// on the table meanwhile ([`Error::AnotherRun`]).
///
/// Errors: [`plan`]'s; [`Error::CutOverExhausted`] when a statement's attempts all timed out on
/// their lock; the server's error (e.g. a NULL found by the validation, a duplicate found by the
/// unique index) prefixed by the step; [`Error::Cancelled`] between statements.
pub async fn run<D: Dialect>(
    d: &Arc<D>,
    table: &TableRef,
    alter: &str,
    config: &MigrationConfig,
    cancel: &CancellationToken,
) -> Result<ContractReport> {
    let started = Instant::now();
    let plan = plan(d, table, alter, config).await?;
    let clauses = split(alter, d.sql_dialect())?;
    let mut report = ContractReport::default();
    let n = plan.steps.len();
    for (i, (planned, clause)) in plan.steps.iter().zip(&clauses).enumerate() {
        // Planned again just before it runs: the steps before it changed the table (MariaDB may
        // accept another algorithm now), and an attempt that failed meanwhile may have left an
        // invalid index to drop first.
        let step = if i == 0 { planned } else { &d.contract_step(table, clause, &config.cut_over).await? };
        if cancel.is_cancelled() {
            return Err(Error::Cancelled(format!("stopped before contract step {} of {n} ({})", i + 1, step.what)));
        }
        tracing::info!(target: LOG_TARGET, step = i + 1, of = n, what = %step.what, technique = %step.technique, "contract step");
        let t0 = Instant::now();
        let attempts = if step.technique == SHADOW_COPY {
            // The shadow copy removes what it created when it fails.
            shadow_copy(d, table, &clause.text, config, cancel).await.map_err(|e| step_error(e, i, n, step))?
        } else {
            // The run lock keeps `shadowswap alter` (and another contract) off the table meanwhile;
            // a shadow-copy step's Runner takes it itself.
            let lock = d.acquire_run_lock(&d.names(table)).await?;
            let r = match run_statements(&**d, table, clause, step, config, cancel).await {
                Ok(a) => Ok(a),
                Err(e) => {
                    let e = step_error(e, i, n, step);
                    Err(match undo(&**d, table, clause, config).await {
                        Ok(()) => e,
                        Err(u) => Error::CleanupIncomplete { cause: Box::new(e), leftover: u.to_string() },
                    })
                }
            };
            if let Err(e) = lock.release().await {
                tracing::warn!(target: LOG_TARGET, error = %e, "releasing the run lock failed; it ends with its session");
            }
            r?
        };
        tracing::info!(target: LOG_TARGET, step = i + 1, elapsed_ms = t0.elapsed().as_millis() as u64, attempts, "contract step done");
        report.steps.push((step.what.clone(), t0.elapsed(), attempts));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The error of step `i` (of `n`): which step failed, that earlier steps stay applied and
/// nothing of this one is left.
fn step_error(e: Error, i: usize, n: usize, step: &ContractStep) -> Error {
    match e {
        Error::Cancelled(_) | Error::CutOverExhausted { .. } | Error::CleanupIncomplete { .. } => e,
        other => Error::Refused(format!(
            "contract step {} of {n} ({}) failed and was undone{}: {other}; fix what the server reports (e.g. rows the \
             backfill has not reached yet) and run the contract again",
            i + 1,
            step.what,
            if i > 0 { format!(" (steps 1-{i} stay applied)") } else { String::new() }
        )),
    }
}

/// Each statement of `step` with its own retries; returns the most attempts any needed.
async fn run_statements<D: Dialect>(
    d: &D,
    table: &TableRef,
    clause: &ContractClause,
    step: &ContractStep,
    config: &MigrationConfig,
    cancel: &CancellationToken,
) -> Result<u32> {
    let cfg = &config.cut_over;
    let mut most = 0;
    for sql in &step.statements {
        let mut attempts = 0u32;
        with_retry("contract statement", cfg.retry_policy(), cancel, || {
            attempts += 1;
            d.contract_exec(table, clause, sql, cfg.lock_timeout)
        })
        .await
        .map_err(|e| match e.class() {
            ErrorClass::LockTimeout | ErrorClass::Deadlock => Error::CutOverExhausted {
                attempts,
                lock_timeout_ms: cfg.lock_timeout.as_millis() as u64,
                last: format!("{sql}: {e}"),
            },
            _ => e,
        })?;
        most = most.max(attempts);
    }
    Ok(most)
}

/// The undo of a failed step, each statement retried like the step's.
async fn undo<D: Dialect>(d: &D, table: &TableRef, clause: &ContractClause, config: &MigrationConfig) -> Result<()> {
    let cfg = &config.cut_over;
    // Not cancellable: undo what the step left even when the run was stopped.
    let never = CancellationToken::new();
    for sql in d.contract_undo(table, clause) {
        with_retry("undoing a contract step", cfg.retry_policy(), &never, || {
            d.contract_exec(table, clause, &sql, cfg.lock_timeout)
        })
        .await?;
    }
    Ok(())
}

/// A step through the shadow copy: a [`Runner`] with the clause as its ALTER, executing,
/// cancelled with `cancel`. Returns the cut-over's attempts.
async fn shadow_copy<D: Dialect>(
    d: &Arc<D>,
    table: &TableRef,
    clause: &str,
    config: &MigrationConfig,
    cancel: &CancellationToken,
) -> Result<u32> {
    let runner = Runner::new(d.clone(), MigrationConfig { execute: true, ..config.clone() });
    // Our cancellation cancels the runner's run, which stops at its next safe point and removes
    // what it created (never dropped mid-way).
    let token = runner.cancel_token();
    let outcome = {
        let forward = async {
            cancel.cancelled().await;
            token.cancel();
            std::future::pending::<()>().await;
        };
        tokio::select! {
            r = runner.run(table, clause) => r?,
            _ = forward => unreachable!("pending never completes"),
        }
    };
    Ok(match outcome {
        Outcome::Swapped(s) => s.cut_over.attempts,
        Outcome::DryRun(_) => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};

    fn pg(s: &str) -> Vec<ContractOp> {
        split(s, &PostgreSqlDialect {}).unwrap().into_iter().map(|c| c.op).collect()
    }

    fn my(s: &str) -> Vec<ContractClause> {
        split(s, &MySqlDialect {}).unwrap()
    }

    #[test]
    fn set_not_null_folds_unquoted_names() {
        assert_eq!(pg("ALTER COLUMN Note SET NOT NULL"), vec![ContractOp::SetNotNull { column: "note".into() }]);
        assert_eq!(pg(r#"ALTER COLUMN "Note" SET NOT NULL"#), vec![ContractOp::SetNotNull { column: "Note".into() }]);
    }

    #[test]
    fn several_clauses_are_several_steps() {
        let ops = pg("ALTER COLUMN a SET NOT NULL, ALTER COLUMN b SET NOT NULL, ADD CONSTRAINT u UNIQUE (a, b)");
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[2],
            ContractOp::AddIndex {
                name: Some("u".into()),
                unique: true,
                constraint: true,
                columns: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn unnamed_unique() {
        assert_eq!(
            pg("ADD UNIQUE (email)"),
            vec![ContractOp::AddIndex { name: None, unique: true, constraint: true, columns: vec!["email".into()] }]
        );
    }

    #[test]
    fn foreign_key() {
        assert_eq!(
            pg("ADD CONSTRAINT fk FOREIGN KEY (cust_id) REFERENCES app.customers (id) ON DELETE CASCADE"),
            vec![ContractOp::AddForeignKey {
                name: Some("fk".into()),
                columns: vec!["cust_id".into()],
                foreign_table: vec!["app".into(), "customers".into()],
                referred_columns: vec!["id".into()],
                on_delete: Some("CASCADE".into()),
                on_update: None,
            }]
        );
    }

    #[test]
    fn check() {
        assert_eq!(
            pg("ADD CONSTRAINT pos CHECK (qty > 0)"),
            vec![ContractOp::AddCheck { name: Some("pos".into()), expr: "qty > 0".into() }]
        );
    }

    #[test]
    fn what_has_no_technique_is_other() {
        assert_eq!(pg("DROP COLUMN x"), vec![ContractOp::Other]);
        assert_eq!(pg("ALTER COLUMN x TYPE bigint"), vec![ContractOp::Other]);
        // Already NOT VALID, an expression index column, INCLUDE: written by the operator's own way.
        assert_eq!(pg("ADD CONSTRAINT c CHECK (x > 0) NOT VALID"), vec![ContractOp::Other]);
        assert_eq!(pg("ADD UNIQUE (lower(email))"), vec![ContractOp::Other]);
        assert_eq!(pg("ADD UNIQUE (a) INCLUDE (b)"), vec![ContractOp::Other]);
    }

    #[test]
    fn postgres_refuses_what_it_cannot_read_and_several_statements() {
        assert!(split("ALTER COLUMN a SET NOT NULL; DROP TABLE x", &PostgreSqlDialect {}).is_err());
        assert!(split("FROBNICATE a", &PostgreSqlDialect {}).is_err());
    }

    #[test]
    fn mariadb_clauses_keep_their_text() {
        let c = my("MODIFY note varchar(64) NOT NULL, ADD UNIQUE KEY uk (note), ADD INDEX ix (a, b)");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].op, ContractOp::Other);
        assert_eq!(c[0].text, "MODIFY note varchar(64) NOT NULL");
        assert_eq!(c[1].text, "ADD UNIQUE KEY uk (note)");
        assert!(matches!(&c[2].op, ContractOp::AddIndex { unique: false, columns, .. } if columns == &["a", "b"]));
        // MariaDB-only syntax the parser does not know is still a step, run as written.
        let c = my("FORCE");
        assert_eq!(c[0].op, ContractOp::Other);
    }

    #[test]
    fn clause_text_is_kept_byte_for_byte() {
        let c = my("MODIFY s varchar(9) NOT NULL DEFAULT 'a\\\\b,c',\n  ADD INDEX `é,x` (s)");
        assert_eq!(c[0].text, "MODIFY s varchar(9) NOT NULL DEFAULT 'a\\\\b,c'");
        assert_eq!(c[1].text, "ADD INDEX `é,x` (s)");
    }

    #[test]
    fn render_shows_everything() {
        let p = ContractPlan {
            table: TableRef::new("s", "t"),
            steps: vec![ContractStep {
                what: "ALTER COLUMN a SET NOT NULL".into(),
                technique: "NOT VALID check, VALIDATE, SET NOT NULL".into(),
                statements: vec!["ALTER TABLE x".into(), "ALTER TABLE y".into()],
                lock: "ACCESS EXCLUSIVE, metadata only".into(),
                max_blocking: Duration::from_millis(1500),
                scans: true,
            }],
        };
        let r = p.render();
        assert!(r.contains("step 1: ALTER COLUMN a SET NOT NULL"), "{r}");
        assert!(r.contains("at most: 1500 ms (lock timeout"), "{r}");
        assert!(r.contains("summed); scans the table"), "{r}");
        assert!(r.contains("    ALTER TABLE y;\n"), "{r}");
    }
}
