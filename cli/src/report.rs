//! What the command prints when it ends: the dry run's plan, the summary of a swap (a line or a
//! JSON object), what `cleanup` did, and the error line with its exit status ([`Failure`]).

use std::process::ExitCode;

use shadowswap_engine::cleanup::CleanupReport;
use shadowswap_engine::fault::FaultReport;
use shadowswap_engine::revert::{WindowEnd, WindowReport};
use shadowswap_engine::runner::{Outcome, Summary};
use shadowswap_engine::staged::backfill::{BackfillOutcome, BackfillReport};
use shadowswap_engine::staged::contract::{ContractPlan, ContractReport};
use shadowswap_engine::staged::migrate::{MigrateOutcome, PhaseReport};
use shadowswap_engine::{Error, TableRef};

use crate::secrets;

/// How a command failed, for the exit status.
#[derive(Debug)]
pub enum Failure {
    /// The run failed (exit status 1, 3 or 130: see [`Failure::exit_code`]).
    Error(Error),
    /// The command line does not make sense (exit status 2).
    Usage(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl Failure {
    /// The exit status: 2 for usage errors; 130 when cancelled (after removing what the run
    /// created); 3 when something the run created is left; 4 when the server stayed away longer
    /// than `--reconnect-timeout` (everything kept: run the same command again to resume); 1
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Error(Error::Cancelled(_)) => 130,
            Failure::Error(Error::CleanupIncomplete { .. }) => 3,
            Failure::Error(Error::ConnectionLost { .. }) => 4,
            Failure::Error(_) => 1,
        }
    }

    /// Print the error line on stderr (scrubbed of passwords) and return the exit status.
    pub fn exit(self) -> ExitCode {
        let message = match &self {
            Failure::Usage(m) => m.clone(),
            Failure::Error(e) => e.to_string(),
        };
        eprintln!("shadowswap: error: {}", secrets::scrub(&message));
        ExitCode::from(self.exit_code())
    }
}

/// Print the outcome of `alter` on stdout: the dry run's plan, or the summary of the swap.
pub fn print_outcome(outcome: &Outcome, json: bool) {
    match outcome {
        Outcome::DryRun(plan) => {
            println!("{}", plan.render());
            println!("{DRY_RUN_DONE}");
        }
        Outcome::Swapped(s) => println!("{}", summary(s, json)),
    }
}

/// The line after the dry run's plan.
const DRY_RUN_DONE: &str = "dry run: every preflight check passed and nothing was changed; add --execute to migrate";

/// The final summary of a swap: one line, or one JSON object with `--log-format json`.
pub fn summary(s: &Summary, json: bool) -> String {
    let secs = s.elapsed.as_secs_f64();
    let copy_secs = s.backfill.elapsed.as_secs_f64().max(1e-3);
    let rate = s.backfill.rows as f64 / copy_secs;
    if json {
        let v = serde_json::json!({
            "in_place": s.in_place,
            "table": s.table.to_string(),
            "swapped": true,
            "elapsed_s": secs,
            "rows_copied": s.backfill.rows,
            "rows_copied_before_resume": s.backfill.rows_before,
            "resumed_from": s.resumed_from.map(|p| p.to_string()),
            "reconnects": s.reconnects,
            "chunks": s.backfill.chunks,
            "chunk_conflicts": s.backfill.conflicts,
            "contended_chunks": s.backfill.contended_chunks,
            "indexes_built_at_rows": s.backfill.indexes_built_at_rows,
            "backfill_s": s.backfill.elapsed.as_secs_f64(),
            "rows_per_s": rate.round(),
            "rows_checksummed": s.rows_checksummed,
            "cut_over_attempts": s.cut_over.attempts,
            "cut_over_swap_ms": s.cut_over.swap_time.as_millis() as u64,
            "writes_blocked_ms": s.cut_over.swap_time.as_millis() as u64,
            "old_table": s.old_table_kept.as_ref().map(|t| t.to_string()),
            "warnings": s.warnings,
        });
        let mut v = v;
        if let Some((until, end)) = &s.revert_window {
            v["revert_window_until"] = serde_json::json!(until);
            v["revert_window"] = serde_json::json!(window_end(end));
        }
        if !s.faults.is_empty() {
            v["faults"] = s.faults.iter().map(fault_json).collect();
        }
        v.to_string()
    } else {
        if s.in_place {
            return format!(
                "altered {} in place (metadata only) in {secs:.1} s: {} attempt(s), {} ms under the table lock",
                s.table,
                s.cut_over.attempts,
                s.cut_over.swap_time.as_millis()
            );
        }
        let check = match s.rows_checksummed {
            Some(n) => format!("checksum ok over {n} rows"),
            None => "checksum skipped".into(),
        };
        let old = match &s.old_table_kept {
            Some(t) => format!("old table kept as {t}"),
            None => "old table dropped".into(),
        };
        let old = match &s.revert_window {
            Some((until, end)) => format!("revert window until {until}: {}", window_end(end)),
            None => old,
        };
        let resumed = match s.resumed_from {
            Some(phase) => format!(" (resumed a run stopped in {phase} that had copied {} rows)", s.backfill.rows_before),
            None => String::new(),
        };
        let reconnects = match s.reconnects {
            0 => String::new(),
            n => format!(", reconnected {n} time(s)"),
        };
        let mut line = format!(
            "swapped {}{resumed} in {secs:.1} s: {} rows copied in {copy_secs:.1} s ({rate:.0} rows/s), {check}, cut-over in {} attempt(s) (application writes blocked {} ms){reconnects}, {old}",
            s.table,
            s.backfill.rows,
            s.cut_over.attempts,
            s.cut_over.swap_time.as_millis()
        );
        // One more line per injected fault (--inject-fault).
        for f in &s.faults {
            line.push('\n');
            line.push_str(&f.to_string());
        }
        line
    }
}

/// How a revert window ended, for the summary.
fn window_end(end: &WindowEnd) -> String {
    match end {
        WindowEnd::Expired => "ended; reverse capture and old table dropped".into(),
        WindowEnd::Finished => "closed by `shadowswap finish`; reverse capture and old table dropped".into(),
        WindowEnd::Reverted => "reverted by `shadowswap revert`: the table has its definition before the ALTER again".into(),
        WindowEnd::LeftOpen { until } => {
            format!("interrupted, the window stays open until {until}: run `shadowswap finish` or `shadowswap revert`")
        }
        WindowEnd::FinishFailed(why) => why.clone(),
    }
}

/// The dry run's lines about the revert window: what a revert restores, and the SQL.
pub fn revert_window_plan(describe: &[String], sql: &[String]) -> Vec<String> {
    let mut lines = vec!["revert window:".to_string()];
    lines.extend(describe.iter().map(|l| format!("  {l}")));
    if !sql.is_empty() {
        lines.push("  reverse capture and swap:".into());
        lines.extend(sql.iter().map(|s| format!("    {};", s.replace('\n', "\n    "))));
    }
    lines
}

/// What `revert` or `finish` (`command`) did on `table`, or as a dry run would do.
pub fn window_lines(command: &str, table: &TableRef, r: &WindowReport, json: bool) -> Vec<String> {
    if json {
        let v = serde_json::json!({
            "command": command,
            "table": table.to_string(),
            "executed": r.executed,
            "revert_until": r.until,
            "sql": r.sql,
            "cut_over_attempts": r.cut_over.map(|c| c.attempts),
            "writes_blocked_ms": r.cut_over.map(|c| c.swap_time.as_millis() as u64),
        });
        return vec![v.to_string()];
    }
    let until = r.until.as_deref().unwrap_or("?");
    if !r.executed {
        let mut lines =
            vec![format!("dry run: the revert window of {table} is open until {until}; `shadowswap {command}` would run:")];
        lines.extend(r.sql.iter().map(|s| format!("  {};", s.replace('\n', "\n  "))));
        lines.push("nothing was changed; add --execute to run it".into());
        return lines;
    }
    match (command, r.cut_over) {
        ("revert", Some(c)) => vec![format!(
            "reverted {table}: swapped back in {} attempt(s) (application writes blocked {} ms); the new table was dropped",
            c.attempts,
            c.swap_time.as_millis()
        )],
        _ => vec![format!("closed the revert window of {table}: reverse capture and old table dropped; the new table stays")],
    }
}

/// Print the outcome of `backfill` on stdout: the dry run's plan, or the summary (one line, or
/// one JSON object with `--log-format json`).
pub fn print_backfill(table: &TableRef, outcome: &BackfillOutcome, json: bool) {
    match outcome {
        BackfillOutcome::DryRun(plan) => {
            println!("{plan}");
            println!("{BACKFILL_DRY_RUN_DONE}");
        }
        BackfillOutcome::Done(r) => println!("{}", backfill_summary(table, r, json)),
    }
}

/// Print the contract's dry run on stdout: each step's technique, lock, longest write blocking,
/// scan and statements ([`ContractPlan::render`]), then how to run it.
pub fn print_contract_plan(plan: &ContractPlan) {
    print!("{}", plan.render());
    println!("{CONTRACT_DRY_RUN_DONE}");
}

/// The line after the contract's dry-run plan.
const CONTRACT_DRY_RUN_DONE: &str = "dry run: every step was planned and nothing was changed; add --execute to run the steps";

/// Print what a contract run did (one line per step and a total, or one JSON object with
/// `--log-format json`).
pub fn print_contract(table: &TableRef, r: &ContractReport, json: bool) {
    println!("{}", contract_summary(table, r, json));
}

/// The contract's summary: per step its clause, wall time and attempts, and the total.
pub fn contract_summary(table: &TableRef, r: &ContractReport, json: bool) -> String {
    if json {
        let steps: Vec<_> = r
            .steps
            .iter()
            .map(|(what, t, attempts)| serde_json::json!({"step": what, "elapsed_s": t.as_secs_f64(), "attempts": attempts}))
            .collect();
        return serde_json::json!({"table": table.to_string(), "contracted": true, "steps": steps, "elapsed_s": r.elapsed.as_secs_f64()})
            .to_string();
    }
    let mut out = String::new();
    for (i, (what, t, attempts)) in r.steps.iter().enumerate() {
        out.push_str(&format!("step {}: {what}: done in {:.1} s, {attempts} attempt(s)\n", i + 1, t.as_secs_f64()));
    }
    out.push_str(&format!("contracted {table}: {} step(s) in {:.1} s", r.steps.len(), r.elapsed.as_secs_f64()));
    out
}

/// The line after the backfill's dry-run plan.
const BACKFILL_DRY_RUN_DONE: &str = "dry run: every check passed and nothing was changed; add --execute to backfill";

/// The summary of a finished backfill: rows updated, chunks, rows/s, rows still matching
/// `--where`, passes, where it resumed (JSON also: the chunks run while writers waited).
pub fn backfill_summary(table: &TableRef, r: &BackfillReport, json: bool) -> String {
    let secs = r.elapsed.as_secs_f64().max(1e-3);
    let rate = r.rows_updated as f64 / secs;
    if json {
        return serde_json::json!({
            "table": table.to_string(),
            "backfilled": true,
            "rows_updated": r.rows_updated,
            "chunks": r.chunks,
            "elapsed_s": r.elapsed.as_secs_f64(),
            "rows_per_s": rate.round(),
            "still_matching": r.still_matching,
            "passes": r.passes,
            "resumed_at": r.resumed_at,
            "contended_chunks": r.contended_chunks,
        })
        .to_string();
    }
    let resumed = match &r.resumed_at {
        Some(k) => format!(" (resumed an interrupted run after key {k})"),
        None => String::new(),
    };
    let still = match r.still_matching {
        0 => "no rows still match --where".to_string(),
        n => format!("{n} rows still match --where (writers may still write old-shape rows: run again, or with --until-none)"),
    };
    format!(
        "backfilled {table}{resumed}: {} rows updated in {} chunk(s) over {} pass(es) in {:.1} s ({rate:.0} rows/s); {still}",
        r.rows_updated,
        r.chunks,
        r.passes,
        r.elapsed.as_secs_f64()
    )
}

/// Print the outcome of `migrate` on stdout: the dry run's text, or one line per phase run (one
/// JSON object per phase with `--log-format json`), or that nothing was pending.
pub fn print_migrate(outcome: &MigrateOutcome, json: bool) {
    match outcome {
        MigrateOutcome::DryRun(text) => {
            print!("{text}");
            println!("{MIGRATE_DRY_RUN_DONE}");
        }
        MigrateOutcome::Done(phases) if phases.is_empty() => {
            println!("nothing pending: every phase of the migration files is applied")
        }
        MigrateOutcome::Done(phases) => {
            for p in phases {
                println!("{}", migrate_line(p, json));
            }
        }
    }
}

/// The line after the migrate dry run.
const MIGRATE_DRY_RUN_DONE: &str = "dry run: nothing was changed; add --execute to apply";

/// One phase run by `migrate`: `0007_add_note.toml expand: <detail> (1.2 s)`, or JSON.
pub fn migrate_line(p: &PhaseReport, json: bool) -> String {
    if json {
        return serde_json::json!({
            "file": p.file,
            "phase": p.phase.as_str(),
            "detail": p.detail,
            "elapsed_s": p.elapsed.as_secs_f64(),
        })
        .to_string();
    }
    format!("{} {}: {} ({:.1} s)", p.file, p.phase, p.detail, p.elapsed.as_secs_f64())
}

/// One injected fault's report as JSON: when it fired (phase, seconds into the run), what was
/// injected, what shadowswap did, how long application writes were blocked at the cut-over, and
/// whether the checksum still matched.
fn fault_json(f: &FaultReport) -> serde_json::Value {
    serde_json::json!({
        "fault": f.spec.to_string(),
        "fired": f.fired_at.is_some(),
        "phase": f.phase.map(|p| p.to_string()),
        "at_s": f.fired_at.map(|d| d.as_secs_f64()),
        "injected": f.injected,
        "response": f.response,
        "writes_blocked_ms": f.writes_blocked_ms,
        "checksum_matched": f.checksum_matched,
        "throttled_s": f.throttled.map(|d| d.as_secs_f64()),
    })
}

/// What `cleanup` did on `table`, one line each, for stdout.
pub fn cleanup_lines(table: &TableRef, report: &CleanupReport) -> Vec<String> {
    let mut lines = Vec::new();
    if report.triggers_dropped.is_empty() && report.shadow_dropped.is_none() && report.checkpoint_dropped.is_none() {
        lines.push(format!("nothing to clean up on {table}"));
    }
    if !report.triggers_dropped.is_empty() {
        lines.push(format!("dropped capture triggers: {}", report.triggers_dropped.join(", ")));
    }
    if let Some(s) = &report.shadow_dropped {
        lines.push(format!("dropped shadow table {s}"));
    }
    if let Some(c) = &report.checkpoint_dropped {
        lines.push(format!("dropped checkpoint table {c} (the unfinished run can no longer be resumed)"));
    }
    if let Some(old) = &report.old_table_present {
        lines.push(format!(
            "{old} exists (the table as it was before an earlier swap); drop it with DROP TABLE when you no longer need it"
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shadowswap_engine::backfill::BackfillStats;
    use shadowswap_engine::cutover::CutOverStats;

    use super::*;

    fn swapped() -> Summary {
        Summary {
            table: TableRef::new("db", "t"),
            old_table_kept: None,
            backfill: BackfillStats {
                rows: 1000,
                rows_before: 0,
                chunks: 3,
                conflicts: 0,
                contended_chunks: 0,
                ended_contended: false,
                indexes_built_at_rows: None,
                elapsed: Duration::from_secs(2),
            },
            resumed_from: None,
            reconnects: 0,
            rows_checksummed: Some(1000),
            cut_over: CutOverStats { attempts: 2, swap_time: Duration::from_millis(42) },
            in_place: false,
            elapsed: Duration::from_millis(3250),
            warnings: Vec::new(),
            revert_window: None,
            faults: Vec::new(),
        }
    }

    fn with_fault() -> Summary {
        let fault = FaultReport {
            spec: "blocker@cut-over:3s".parse().unwrap(),
            fired_at: Some(Duration::from_millis(2500)),
            phase: Some(shadowswap_engine::Phase::CutOver),
            injected: "a separate session held a lock on db.t in an open transaction for 3.0 s".into(),
            response: "the cut-over waited and retried: 3.1 s from the fault in place to the swap, swapped in 1 attempt(s)"
                .into(),
            writes_blocked_ms: Some(42),
            checksum_matched: None,
            throttled: None,
        };
        Summary { faults: vec![fault], ..swapped() }
    }

    #[test]
    fn fault_reports_follow_the_summary() {
        let text = summary(&with_fault(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[1],
            "fault blocker@cut-over:3s fired at 2.5 s (cut-over): a separate session held a lock on db.t in an open \
             transaction for 3.0 s; shadowswap: the cut-over waited and retried: 3.1 s from the fault in place to the swap, swapped in \
             1 attempt(s); application writes blocked 42 ms"
        );
        assert_eq!(summary(&swapped(), false).lines().count(), 1, "no fault lines without faults");
        let v: serde_json::Value = serde_json::from_str(&summary(&with_fault(), true)).unwrap();
        assert_eq!(v["faults"][0]["fault"], "blocker@cut-over:3s");
        assert_eq!(v["faults"][0]["phase"], "cut-over");
        assert_eq!(v["faults"][0]["at_s"], 2.5);
        assert_eq!(v["faults"][0]["writes_blocked_ms"], 42);
        assert!(v["faults"][0]["response"].as_str().unwrap().contains("waited"));
        assert!(serde_json::from_str::<serde_json::Value>(&summary(&swapped(), true)).unwrap().get("faults").is_none());
    }

    #[test]
    fn summary_lines() {
        let s = swapped();
        let table = s.table.to_string();
        assert_eq!(
            summary(&s, false),
            format!("swapped {table} in 3.2 s: 1000 rows copied in 2.0 s (500 rows/s), checksum ok over 1000 rows, cut-over in 2 attempt(s) (application writes blocked 42 ms), old table dropped")
        );
        let kept = Summary { old_table_kept: Some(TableRef::new("db", "_t_old")), rows_checksummed: None, ..swapped() };
        let line = summary(&kept, false);
        assert!(
            line.contains(", checksum skipped, ")
                && line.ends_with(&format!("old table kept as {}", TableRef::new("db", "_t_old"))),
            "{line}"
        );
        let in_place = Summary { in_place: true, backfill: BackfillStats::default(), ..swapped() };
        assert_eq!(
            summary(&in_place, false),
            format!("altered {table} in place (metadata only) in 3.2 s: 2 attempt(s), 42 ms under the table lock")
        );
    }

    #[test]
    fn summary_json() {
        let v: serde_json::Value = serde_json::from_str(&summary(&swapped(), true)).unwrap();
        assert_eq!(v["swapped"], true);
        assert_eq!(v["in_place"], false);
        assert_eq!(v["rows_copied"], 1000);
        assert_eq!(v["rows_per_s"], 500.0);
        assert_eq!(v["cut_over_attempts"], 2);
        assert_eq!(v["writes_blocked_ms"], 42);
        assert_eq!((v["chunk_conflicts"].as_u64(), v["contended_chunks"].as_u64()), (Some(0), Some(0)));
        assert_eq!(v["indexes_built_at_rows"], serde_json::Value::Null);
        assert_eq!(v["old_table"], serde_json::Value::Null);
        assert_eq!(v["resumed_from"], serde_json::Value::Null);
        assert_eq!(v.as_object().unwrap().len(), 20, "{v}");
    }

    #[test]
    fn backfill_summaries() {
        let t = TableRef::new("db", "t");
        let r = BackfillReport {
            rows_updated: 1000,
            chunks: 4,
            elapsed: Duration::from_secs(2),
            still_matching: 3,
            passes: 1,
            resumed_at: Some("[500]".into()),
            contended_chunks: 2,
        };
        let line = backfill_summary(&t, &r, false);
        assert!(line.starts_with(&format!("backfilled {t} (resumed an interrupted run after key [500]): 1000 rows updated in 4 chunk(s) over 1 pass(es) in 2.0 s (500 rows/s); 3 rows still match")), "{line}");
        let v: serde_json::Value = serde_json::from_str(&backfill_summary(&t, &r, true)).unwrap();
        assert_eq!(
            (v["rows_updated"].as_u64(), v["still_matching"].as_u64(), v["passes"].as_u64()),
            (Some(1000), Some(3), Some(1))
        );
        assert_eq!(v["resumed_at"], "[500]");
        assert_eq!(v["contended_chunks"], 2);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::Usage("x".into()).exit_code(), 2);
        assert_eq!(Failure::Error(Error::Cancelled("x".into())).exit_code(), 130);
        let lost = Error::ConnectionLost { target: "t".into(), waited_s: 300, last: "x".into() };
        assert_eq!(Failure::Error(lost).exit_code(), 4);
        let left = Error::CleanupIncomplete { cause: Box::new(Error::refused("x")), leftover: "y".into() };
        assert_eq!(Failure::Error(left).exit_code(), 3);
        assert_eq!(Failure::Error(Error::refused("x")).exit_code(), 1);
    }

    #[test]
    fn cleanup_report_lines() {
        let t = TableRef::new("db", "t");
        assert_eq!(cleanup_lines(&t, &CleanupReport::default()), vec![format!("nothing to clean up on {t}")]);
        let r = CleanupReport {
            triggers_dropped: vec!["a".into(), "b".into()],
            shadow_dropped: Some(TableRef::new("db", "_t_new")),
            old_table_present: Some(TableRef::new("db", "_t_old")),
            checkpoint_dropped: None,
        };
        let lines = cleanup_lines(&t, &r);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "dropped capture triggers: a, b");
        assert_eq!(lines[1], format!("dropped shadow table {}", TableRef::new("db", "_t_new")));
        assert!(lines[2].ends_with(
            " exists (the table as it was before an earlier swap); drop it with DROP TABLE when you no longer need it"
        ));
    }
}
