//! Pure SQL builders for MySQL/MariaDB, one submodule per phase. Nothing here talks to a server;
//! every identifier goes through [`Ident`] / [`Qualified`], never through a raw `format!`, and
//! every value the server did not write itself is a bind parameter (`?`).
//!
//! Module map, in phase order (the I/O module of the same name in the crate runs what these build):
//! - this file    — quoting ([`Ident`], [`Qualified`], [`trigger_name`], [`column_list`]), the
//!   lock-timeout wrapper [`with_lock_timeout`], and [`dry_run`], the plan's SQL for the dry run,
//!   made by the same builders the run uses.
//! - [`connect`]  — session setup, connection check, the run lock (`GET_LOCK` / `RELEASE_LOCK`).
//! - [`inspect`]  — `SHOW FULL COLUMNS`, `SHOW INDEX`, `SHOW CREATE TABLE`, row estimate, existence.
//! - [`preflight`] — table status, triggers, foreign keys, the trigger privilege probe, the trial
//!   ALTER on a temporary copy, the duplicate search for a new unique key.
//! - [`shadow`]   — the shadow table: `CREATE TABLE … LIKE` + the ALTER, AUTO_INCREMENT carry-over,
//!   the server's time zone offset, `DROP TABLE`.
//! - [`capture`]  — the capture triggers, the trigger lock, listing and dropping them.
//! - [`checkpoint`] — the checkpoint table: create, upsert, read, the per-chunk advance (in the
//!   chunk's transaction), the capture identity kept in it.
//! - [`copy`]     — keyset predicates, key range and chunk end, the chunk copy, the checksum.
//! - [`identity`] — the table identity the cut-over compares (InnoDB id, definition, triggers).
//! - [`cutover`]  — the `RENAME TABLE` swap.
//! - [`revert`]   — the revert window: reverse triggers, placeholders, the four-way rename, the swap back.
//! - [`signals`]  — heartbeat, status variables, cut-over blockers.
//! - [`fault`]    — fault rehearsals (`--inject-fault`): session list, `KILL CONNECTION`, the
//!   blocker, a lock-storm step, pausing the replica's SQL thread.
//! - [`staged_backfill`] — the staged backfill's chunk UPDATE, counts and trial (not re-exported:
//!   its short names are for `sql::staged_backfill::…`).
//! - [`staged_migrate`] — `shadowswap migrate`'s history table (not re-exported either).
//! - [`staged_contract`] — the staged contract: a clause in place (`ALGORITHM=INSTANT`, else
//!   `INPLACE, LOCK=NONE`), the probe table it is tried on first, the shadow-copy step (not
//!   re-exported either).
//!
//! Every item of the submodules but [`fault`]'s is also re-exported here (`sql::copy_chunk` and
//! `sql::copy::copy_chunk` are the same function); fault statements are always named
//! `sql::fault::…`, so that none is mistaken for a step of a run.

use std::fmt;

use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::{Plan, PlanSql};

pub mod capture;
pub mod checkpoint;
pub mod connect;
pub mod copy;
pub mod cutover;
pub mod fault;
pub mod identity;
pub mod in_place;
pub mod indexes;
pub mod inspect;
pub mod preflight;
pub mod revert;
pub mod shadow;
pub mod signals;
pub mod staged_backfill;
pub mod staged_contract;
pub mod staged_migrate;

pub use capture::*;
pub use checkpoint::*;
pub use connect::*;
pub use copy::*;
pub use cutover::*;
pub use identity::*;
pub use inspect::*;
pub use preflight::*;
pub use shadow::*;
pub use signals::*;

// The plan rules and the ALTER scan lived here before they had their own module.
pub use crate::alter::{
    adds_zone_dependent_default, key_change_refusal, key_column_ok, timestamp_conversion, type_change_refusal,
    TimestampConversion,
};

/// A backtick-quoted identifier; backticks inside the name are doubled.
#[derive(Debug, Clone, Copy)]
pub struct Ident<'a>(pub &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0.replace('`', "``"))
    }
}

/// A quoted `schema`.`table`.
#[derive(Debug, Clone, Copy)]
pub struct Qualified<'a>(pub &'a TableRef);

impl fmt::Display for Qualified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", Ident(&self.0.schema), Ident(&self.0.name))
    }
}

/// A quoted trigger name in the table's schema.
pub fn trigger_name(table: &TableRef, name: &str) -> String {
    format!("{}.{}", Ident(&table.schema), Ident(name))
}

/// `a`, `b`, `c` (optionally each prefixed, e.g. `NEW.`).
pub fn column_list<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|n| format!("{prefix}{}", Ident(n))).collect::<Vec<_>>().join(", ")
}

/// Run `stmt` waiting at most `secs` seconds for metadata locks (MariaDB `SET STATEMENT`,
/// MariaDB KB "SET STATEMENT"). Every statement that takes a table's metadata lock while the
/// application runs goes through this: the shadow's `CREATE TABLE`, the trigger lock and DDL,
/// `DROP TABLE`, the swap.
pub fn with_lock_timeout(secs: u64, stmt: &str) -> String {
    format!("SET STATEMENT lock_wait_timeout = {secs} FOR {stmt}")
}

/// Run `stmt` only if its metadata locks are free at once: `lock_wait_timeout = 0` fails with
/// 1205 without queueing the request (MariaDB KB "WAIT and NOWAIT"; `crate::mdl` says why it
/// matters). `RENAME TABLE` has a `NOWAIT` clause, `LOCK TABLES` and `CREATE TRIGGER` do not,
/// so every such statement is sent this one way.
pub fn without_queueing(stmt: &str) -> String {
    with_lock_timeout(0, stmt)
}

/// The SQL of `plan` for the dry run, from the builders the run executes: the checkpoint table
/// ([`checkpoint::create_checkpoint_table`]) and the shadow's statements
/// ([`shadow::create_shadow`]), the capture triggers ([`capture::capture_triggers`]), one
/// chunk's transaction over the generic keyset range with `?` for the bounds (first tried
/// without waiting for row locks, [`copy::innodb_lock_wait_timeout`]`(0)`: the lock
/// ([`copy::lock_chunk`]), the range check ([`copy::shadow_chunk_has_rows`]) and the clear it
/// may call for ([`copy::clear_shadow_chunk`]) or else the look beyond the chunk (the same check
/// past its end, [`OUTLINE_BEYOND`]), the copy ([`copy::copy_chunk`]), the
/// checkpoint's advance ([`checkpoint::advance_checkpoint`]), the waiters' count
/// ([`copy::ROW_LOCK_WAITERS`])), and the swap ([`cutover::rename_swap`]). The table's lock for
/// the triggers (`LOCK TABLES … WRITE`) and the swap are shown as first sent, [`without_queueing`]
/// after [`OUTLINE_NO_QUEUE`]; the run sends every other metadata-locking statement wrapped in
/// [`with_lock_timeout`]; for an ENUM chunk key its copy's range is written as lists of index
/// numbers ([`copy::key_range_where`]), which depend on the bounds' values.
pub fn dry_run(plan: &Plan) -> PlanSql {
    let placeholders = vec!["?"; plan.key.columns.len()];
    let (where_, _) = copy::range_where(&copy::key_names(plan).0, &plan.key.columns, Some(&placeholders[..]), &placeholders);
    let (shadow_where, _) =
        copy::range_where(&copy::key_names(plan).1, &plan.key.columns, Some(&placeholders[..]), &placeholders);
    let (beyond, _) = copy::open_range_where(&copy::key_names(plan).1, &plan.key.columns, Some(&placeholders[..]), None);
    let mut shadow = vec![checkpoint::create_checkpoint_table(&plan.names)];
    shadow.extend(shadow::create_shadow(plan));
    PlanSql {
        shadow,
        capture: {
            let mut capture =
                vec![format!("{OUTLINE_NO_QUEUE}\n{}", without_queueing(&capture::lock_table_write(&plan.names.table)))];
            capture.extend(capture::capture_triggers(plan));
            capture.push(capture::UNLOCK_TABLES.to_string());
            capture
        },
        copy: [
            copy::innodb_lock_wait_timeout(0),
            "START TRANSACTION".to_string(),
            copy::lock_chunk(plan, &where_),
            copy::shadow_chunk_has_rows(plan, &shadow_where),
            format!("-- only when the shadow has rows there: {}", copy::clear_shadow_chunk(plan, &shadow_where)),
            format!("{OUTLINE_BEYOND}{}", copy::shadow_chunk_has_rows(plan, &beyond)),
            copy::copy_chunk(plan, &where_),
            checkpoint::advance_checkpoint(&plan.names),
            copy::ROW_LOCK_WAITERS.to_string(),
            "COMMIT".to_string(),
        ]
        .join(";\n  "),
        cut_over: format!("{OUTLINE_NO_QUEUE}\n  {}", without_queueing(&cutover::rename_swap(plan))),
    }
}

/// The dry run's note before the look beyond the chunk, whose bound is the chunk's upper one
/// (`copy_chunk`'s `written_ahead`).
pub const OUTLINE_BEYOND: &str =
    "-- otherwise, whether the application wrote rows ahead of the copy (a live table; the bound is the chunk's end): ";

/// The dry run's note before each statement taken without queueing (`crate::mdl`).
pub const OUTLINE_NO_QUEUE: &str = "-- tried without queueing every 10 ms, --cut-over-lock-timeout ÷ 10 ms times, then once as \
     SET STATEMENT lock_wait_timeout = <--cut-over-lock-timeout> FOR …:";

/// Plans for the builders' tests.
#[cfg(test)]
pub(crate) mod test_plans {
    use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
    use shadowswap_engine::names::{char_len, Names};
    use shadowswap_engine::plan::Plan;

    /// A plan for `table` whose primary key is `key`, from `original` to `altered` by `spec`.
    pub fn build(table: TableRef, original: Vec<Column>, key: &[&str], altered: Vec<Column>, spec: &str) -> Plan {
        let pk = vec![Index {
            name: "PRIMARY".into(),
            columns: key.iter().map(|s| s.to_string()).collect(),
            unique: true,
            primary: true,
            partial: false,
        }];
        let shape = TableShape { columns: original, indexes: pk.clone(), estimated_rows: 1 };
        let altered = TableShape { columns: altered, indexes: pk, estimated_rows: 1 };
        let analysis = shadowswap_engine::alter::analyze(spec, &sqlparser::dialect::MySqlDialect {}).unwrap();
        let names = Names::new(&table, crate::MAX_IDENTIFIER_CHARS, char_len);
        Plan::build(names, analysis, shape, altered, crate::alter::rules(), false).unwrap()
    }

    /// `d`.`t (id <key_type> PRIMARY KEY, c int NULL)`, with `spec` adding `created datetime`.
    pub fn plan(key_type: &str, spec: &str) -> Plan {
        let cols = vec![Column::new("id", key_type), Column { nullable: true, ..Column::new("c", "int") }];
        let mut altered = cols.clone();
        altered.push(Column { has_default: true, ..Column::new("created", "datetime") });
        build(TableRef::new("d", "t"), cols, &["id"], altered, spec)
    }

    /// A composite ENUM + BIGINT key, names that need quoting, a DATETIME → TIMESTAMP change.
    pub fn enum_key_plan() -> Plan {
        let col = |n: &str, t: &str| Column::new(n, t);
        let ts = |t: &str| Column { nullable: true, ..col("ts", t) };
        build(
            TableRef::new("d`b", "t x"),
            vec![col("e", "enum('x','y')"), col("id", "bigint(20)"), ts("datetime(3)"), col("name", "varchar(10)")],
            &["e", "id"],
            vec![col("e", "enum('x','y')"), col("id", "bigint(20)"), ts("timestamp(3)"), col("name", "varchar(20)")],
            "MODIFY ts TIMESTAMP(3) NULL, MODIFY name varchar(20) NOT NULL",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_plans::{enum_key_plan, plan};
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(Ident("a`b").to_string(), "`a``b`");
        assert_eq!(Qualified(&TableRef::new("d b", "t")).to_string(), "`d b`.`t`");
        assert_eq!(trigger_name(&TableRef::new("d`b", "t"), "tr`x"), "`d``b`.`tr``x`");
        assert_eq!(column_list("NEW.", ["a", "b`c"]), "NEW.`a`, NEW.`b``c`");
    }

    #[test]
    fn lock_timeouts_wrap_the_statement() {
        assert_eq!(with_lock_timeout(3, "DROP TABLE `d`.`t`"), "SET STATEMENT lock_wait_timeout = 3 FOR DROP TABLE `d`.`t`");
        assert_eq!(
            without_queueing("LOCK TABLES `d`.`t` WRITE"),
            "SET STATEMENT lock_wait_timeout = 0 FOR LOCK TABLES `d`.`t` WRITE"
        );
    }

    /// The dry run prints what the run's builders produce, statement for statement.
    #[test]
    fn the_dry_run_prints_what_the_run_executes() {
        for p in [plan("int(11)", "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"), enum_key_plan()] {
            let dry = dry_run(&p);
            assert_eq!(dry.shadow[0], checkpoint::create_checkpoint_table(&p.names));
            assert_eq!(dry.shadow[1..], shadow::create_shadow(&p));
            let lock = without_queueing(&capture::lock_table_write(&p.names.table));
            assert_eq!(dry.capture[0], format!("{OUTLINE_NO_QUEUE}\n{lock}"));
            assert_eq!(dry.capture[1..4], capture::capture_triggers(&p));
            assert_eq!(dry.capture[4..], [capture::UNLOCK_TABLES]);
            assert_eq!(dry.cut_over, format!("{OUTLINE_NO_QUEUE}\n  {}", without_queueing(&cutover::rename_swap(&p))));
            // The run's chunk copy, for bounds the run reads, is the dry run's (for an ENUM key
            // the run writes the range as lists of index numbers instead).
            if !p.key.columns.iter().any(copy::is_enum) {
                let key: Vec<mysql_async::Value> = p.key.columns.iter().map(|_| mysql_async::Value::Int(1)).collect();
                let (where_, _) = copy::key_range_where(&copy::key_names(&p).0, &p.key.columns, Some(&key), Some(&key));
                let (shadow_where, _) = copy::key_range_where(&copy::key_names(&p).1, &p.key.columns, Some(&key), Some(&key));
                let (beyond, _) = copy::key_range_where(&copy::key_names(&p).1, &p.key.columns, Some(&key), None);
                let steps: Vec<&str> = dry.copy.split(";\n  ").collect();
                assert_eq!(
                    steps,
                    [
                        copy::innodb_lock_wait_timeout(0),
                        "START TRANSACTION".to_string(),
                        copy::lock_chunk(&p, &where_),
                        copy::shadow_chunk_has_rows(&p, &shadow_where),
                        format!("-- only when the shadow has rows there: {}", copy::clear_shadow_chunk(&p, &shadow_where)),
                        format!("{OUTLINE_BEYOND}{}", copy::shadow_chunk_has_rows(&p, &beyond)),
                        copy::copy_chunk(&p, &where_),
                        checkpoint::advance_checkpoint(&p.names),
                        copy::ROW_LOCK_WAITERS.to_string(),
                        "COMMIT".to_string(),
                    ]
                );
            }
        }
    }

    #[test]
    fn the_dry_run_text() {
        let dry = dry_run(&plan("int(11)", "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"));
        assert_eq!(
            dry.shadow[1..],
            [
                "CREATE TABLE `d`.`_t_new` LIKE `d`.`t`",
                "ALTER TABLE `d`.`_t_new` ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"
            ]
        );
        assert_eq!(dry.capture.len(), 5);
        assert_eq!(
            dry.capture[0],
            "-- tried without queueing every 10 ms, --cut-over-lock-timeout ÷ 10 ms times, then once as SET STATEMENT \
             lock_wait_timeout = <--cut-over-lock-timeout> FOR …:\nSET STATEMENT lock_wait_timeout = 0 FOR LOCK TABLES `d`.`t` WRITE"
        );
        assert_eq!(
            dry.capture[3],
            "CREATE TRIGGER `d`.`_t_ssw_del` AFTER DELETE ON `d`.`t` FOR EACH ROW BEGIN\n  INSERT IGNORE INTO `d`.`_t_new` \
             (`id`, `c`) VALUES (OLD.`id`, OLD.`c`);\n  DELETE FROM `d`.`_t_new` WHERE `id` = OLD.`id`;\nEND"
        );
        assert_eq!(
            dry.copy,
            format!(
            "SET SESSION innodb_lock_wait_timeout = 0;\n  START TRANSACTION;\n  \
             SELECT COUNT(*) FROM `d`.`t` FORCE INDEX (`PRIMARY`) WHERE ((`id` > ?)) AND ((`id` <= ?)) LOCK IN SHARE MODE;\n  \
             SELECT 1 FROM `d`.`_t_new` WHERE ((`id` > ?)) AND ((`id` <= ?)) LIMIT 1;\n  \
             -- only when the shadow has rows there: DELETE FROM `d`.`_t_new` WHERE ((`id` > ?)) AND ((`id` <= ?));\n  \
             -- otherwise, whether the application wrote rows ahead of the copy (a live table; the bound is the chunk's end): \
             SELECT 1 FROM `d`.`_t_new` WHERE ((`id` > ?)) LIMIT 1;\n  \
             SET STATEMENT time_zone = @@global.time_zone FOR INSERT INTO `d`.`_t_new` (`id`, `c`) SELECT `id`, `c` FROM \
             `d`.`t` FORCE INDEX (`PRIMARY`) WHERE ((`id` > ?)) AND ((`id` <= ?)) LOCK IN SHARE MODE;\n  UPDATE `d`.`_t_ssw_ckpt` \
             SET low_watermark = ?, chunk_rows = ?, rows_copied = rows_copied + ?, updated_at = UTC_TIMESTAMP(6) WHERE id = 1;\n  {};\n  COMMIT",
                copy::ROW_LOCK_WAITERS
            )
        );
        assert!(dry.shadow[0].starts_with("CREATE TABLE IF NOT EXISTS `d`.`_t_ssw_ckpt` ("), "{}", dry.shadow[0]);
        assert!(
            dry.cut_over.ends_with(
                "FOR …:\n  SET STATEMENT lock_wait_timeout = 0 FOR RENAME TABLE `d`.`t` TO `d`.`_t_old`, `d`.`_t_new` TO `d`.`t`"
            ),
            "{}",
            dry.cut_over
        );
        let dry = dry_run(&enum_key_plan());
        assert_eq!(
            dry.copy.split(";\n  ").skip(6).collect::<Vec<_>>().join(";\n  "),
            format!(
            "SET STATEMENT time_zone = @@global.time_zone FOR INSERT INTO `d``b`.`_t x_new` (`e`, `id`, `ts`, `name`) SELECT \
             `e`, `id`, CONVERT_TZ(`ts`, @@global.time_zone, @@session.time_zone), `name` FROM `d``b`.`t x` FORCE INDEX \
             (`PRIMARY`) WHERE ((`e` > ?) OR (`e` = ? AND `id` > ?)) AND ((`e` < ?) OR (`e` = ? AND `id` <= ?)) LOCK IN SHARE MODE;\n  \
             UPDATE `d``b`.`_t x_ssw_ckpt` SET low_watermark = ?, chunk_rows = ?, rows_copied = rows_copied + ?, updated_at = \
             UTC_TIMESTAMP(6) WHERE id = 1;\n  {};\n  COMMIT",
                copy::ROW_LOCK_WAITERS
            )
        );
    }
}
