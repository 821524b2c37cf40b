//! The staged contract's statements on PostgreSQL ([`shadowswap_engine::staged::contract`]):
//! each constraint step done without holding a write-blocking lock for longer than a metadata
//! change. Pure builders; [`crate::staged_contract`] runs them, and the dry run prints them.
//!
//! Lock levels are PostgreSQL's ("Explicit Locking", "ALTER TABLE" docs): `ADD CONSTRAINT …
//! CHECK … NOT VALID`, `ALTER COLUMN … SET NOT NULL`, `DROP CONSTRAINT` and `ADD CONSTRAINT …
//! USING INDEX` take ACCESS EXCLUSIVE but only for a catalog change (with a validated
//! `CHECK (c IS NOT NULL)` in place, PostgreSQL 12+ skips `SET NOT NULL`'s scan); `ADD
//! CONSTRAINT … FOREIGN KEY … NOT VALID` takes SHARE ROW EXCLUSIVE on both tables, briefly;
//! `VALIDATE CONSTRAINT` scans under SHARE UPDATE EXCLUSIVE (plus ROW SHARE on a referenced
//! table), which lets writes go on; `CREATE INDEX CONCURRENTLY` builds under SHARE UPDATE
//! EXCLUSIVE, also letting writes go on.

use std::time::Duration;

use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{byte_len, generated_name};
use shadowswap_engine::staged::contract::{ContractOp, ContractStep};

use crate::sql::connect::millis;
use crate::sql::{column_list, Ident, Qualified};
use crate::MAX_IDENTIFIER_BYTES;

/// The NOT VALID check that carries `SET NOT NULL` on `column`: `_<t>_<column>_ssw_nn`
/// (truncated with a hash within 63 bytes).
pub fn not_null_check_name(table: &TableRef, column: &str) -> String {
    generated_name(&format!("{}_{column}", table.name), "ssw_nn", MAX_IDENTIFIER_BYTES, byte_len)
}

/// The name of the index, constraint or check `op` creates: the one given, else PostgreSQL's own
/// convention (`<t>_<cols>_key` for a unique constraint, `<t>_<cols>_idx`, `<t>_<cols>_fkey`,
/// `<t>_check`), within 63 bytes. `None` for the other ops.
pub fn object_name(table: &TableRef, op: &ContractOp) -> Option<String> {
    let conventional = |cols: &[String], suffix: &str| {
        let base = if cols.is_empty() {
            format!("{}_{suffix}", table.name)
        } else {
            format!("{}_{}_{suffix}", table.name, cols.join("_"))
        };
        generated_name(&base, "", MAX_IDENTIFIER_BYTES, byte_len)
    };
    match op {
        ContractOp::AddIndex { name, unique, columns, .. } => {
            Some(name.clone().unwrap_or_else(|| conventional(columns, if *unique { "key" } else { "idx" })))
        }
        ContractOp::AddForeignKey { name, columns, .. } => Some(name.clone().unwrap_or_else(|| conventional(columns, "fkey"))),
        ContractOp::AddCheck { name, .. } => Some(name.clone().unwrap_or_else(|| conventional(&[], "check"))),
        ContractOp::SetNotNull { column } => Some(not_null_check_name(table, column)),
        ContractOp::Other => None,
    }
}

/// `SET lock_timeout = '<n>ms'` for the session: the contract's statements run outside a
/// transaction (`CONCURRENTLY` requires it), so the setting is the session's, reset after
/// ([`RESET_LOCK_TIMEOUT`]). At least 1 ms (`0` would mean "wait forever").
pub fn set_session_lock_timeout(d: Duration) -> String {
    format!("SET lock_timeout = '{}ms'", millis(d))
}

/// The session's `search_path` (one text value), read before [`SET_SEARCH_PATH`] to put it back.
pub const CURRENT_SEARCH_PATH: &str = "SELECT pg_catalog.current_setting('search_path')";

/// Sets the session's `search_path` to `$1` (text, as `set_config` takes it): the contract's
/// statements run with the user's search path (names in the operator's CHECK expression resolve
/// as in their session), then the pinned one is put back the same way.
pub const SET_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', $1, false)";

/// [`SET_SEARCH_PATH`] for the current transaction only (the trial's, rolled back).
pub const SET_LOCAL_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', $1, true)";

/// Back to the server's default lock timeout.
pub const RESET_LOCK_TIMEOUT: &str = "RESET lock_timeout";

/// Whether an index `$2` exists in schema `$1`, and whether it is valid: one row `(is_index,
/// indisvalid)` or none when no relation has that name.
pub const INDEX_STATE: &str = "SELECT c.relkind IN ('i', 'I'), COALESCE(i.indisvalid, true) \
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid WHERE n.nspname = $1 AND c.relname = $2";

/// Whether table `$1` (`regclass` text) has a constraint named `$2`: one boolean.
pub const HAS_CONSTRAINT: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1::text::regclass AND conname = $2)";

/// `DROP INDEX CONCURRENTLY IF EXISTS "s"."name"` (no write lock; outside a transaction).
pub fn drop_index_concurrently(table: &TableRef, name: &str) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", Qualified(&table.sibling(name)))
}

fn alter(table: &TableRef, rest: &str) -> String {
    format!("ALTER TABLE {} {rest}", Qualified(table))
}

/// `"s"."t"` from name parts: one part is taken in `table`'s schema.
fn referenced(table: &TableRef, parts: &[String]) -> String {
    match parts {
        [name] => Qualified(&table.sibling(name.clone())).to_string(),
        _ => parts.iter().map(|p| Ident(p).to_string()).collect::<Vec<_>>().join("."),
    }
}

/// The step for `op` on `table` (`what` is the clause as written), each write-blocking
/// statement waiting at most `lock_timeout` for `attempts` attempts. `drop_leftover`: what an
/// interrupted earlier attempt left under the step's name (an INVALID index; shadowswap's own
/// NOT NULL check) is dropped first. `None` for [`ContractOp::Other`] (no technique).
pub fn step(
    table: &TableRef,
    what: &str,
    op: &ContractOp,
    lock_timeout: Duration,
    attempts: u32,
    drop_leftover: bool,
) -> Option<ContractStep> {
    let per = lock_timeout * attempts;
    let name = object_name(table, op)?;
    let n = Ident(&name);
    let (technique, statements, lock, blocking, scans): (&str, Vec<String>, &str, u32, bool) = match op {
        ContractOp::SetNotNull { column } => {
            let mut st = Vec::new();
            if drop_leftover {
                st.push(alter(table, &format!("DROP CONSTRAINT IF EXISTS {n}")));
            }
            st.extend([
                alter(table, &format!("ADD CONSTRAINT {n} CHECK ({} IS NOT NULL) NOT VALID", Ident(column))),
                alter(table, &format!("VALIDATE CONSTRAINT {n}")),
                alter(table, &format!("ALTER COLUMN {} SET NOT NULL", Ident(column))),
                alter(table, &format!("DROP CONSTRAINT {n}")),
            ]);
            (
                "CHECK (c IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, SET NOT NULL (no scan: uses the validated check), DROP the check",
                st,
                "ACCESS EXCLUSIVE for three catalog changes (add check, SET NOT NULL, drop check); the validation scans under SHARE UPDATE EXCLUSIVE (writes go on)",
                3 + u32::from(drop_leftover),
                true,
            )
        }
        ContractOp::AddIndex { unique, constraint, columns, .. } => {
            let mut st = Vec::new();
            if drop_leftover {
                st.push(drop_index_concurrently(table, &name));
            }
            st.push(format!(
                "CREATE {}INDEX CONCURRENTLY {n} ON {} ({})",
                if *unique { "UNIQUE " } else { "" },
                Qualified(table),
                column_list("", columns.iter().map(String::as_str))
            ));
            if *constraint {
                st.push(alter(table, &format!("ADD CONSTRAINT {n} UNIQUE USING INDEX {n}")));
                (
                    "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX",
                    st,
                    "the build takes SHARE UPDATE EXCLUSIVE (writes go on); ACCESS EXCLUSIVE for the constraint's catalog change",
                    1,
                    true,
                )
            } else {
                ("CREATE INDEX CONCURRENTLY", st, "SHARE UPDATE EXCLUSIVE (writes go on)", 0, true)
            }
        }
        ContractOp::AddForeignKey { columns, foreign_table, referred_columns, on_delete, on_update, .. } => {
            let mut fk = format!(
                "ADD CONSTRAINT {n} FOREIGN KEY ({}) REFERENCES {}",
                column_list("", columns.iter().map(String::as_str)),
                referenced(table, foreign_table)
            );
            if !referred_columns.is_empty() {
                fk.push_str(&format!(" ({})", column_list("", referred_columns.iter().map(String::as_str))));
            }
            for (kw, action) in [("ON DELETE", on_delete), ("ON UPDATE", on_update)] {
                if let Some(a) = action {
                    fk.push_str(&format!(" {kw} {a}"));
                }
            }
            fk.push_str(" NOT VALID");
            (
                "FOREIGN KEY … NOT VALID, then VALIDATE CONSTRAINT",
                vec![alter(table, &fk), alter(table, &format!("VALIDATE CONSTRAINT {n}"))],
                "SHARE ROW EXCLUSIVE on both tables for the catalog change; the validation scans under SHARE UPDATE EXCLUSIVE (writes go on)",
                1,
                true,
            )
        }
        ContractOp::AddCheck { expr, .. } => (
            "CHECK … NOT VALID, then VALIDATE CONSTRAINT",
            vec![
                alter(table, &format!("ADD CONSTRAINT {n} CHECK ({expr}) NOT VALID")),
                alter(table, &format!("VALIDATE CONSTRAINT {n}")),
            ],
            "ACCESS EXCLUSIVE for the catalog change; the validation scans under SHARE UPDATE EXCLUSIVE (writes go on)",
            1,
            true,
        ),
        ContractOp::Other => return None,
    };
    Some(ContractStep {
        what: what.to_string(),
        technique: technique.to_string(),
        statements,
        lock: lock.to_string(),
        max_blocking: per * blocking,
        scans,
    })
}

/// What a failed step of `op` may leave, removed (harmless when absent): the check or
/// constraint (`DROP CONSTRAINT IF EXISTS`), the index (`DROP INDEX CONCURRENTLY IF EXISTS`).
pub fn undo(table: &TableRef, op: &ContractOp) -> Vec<String> {
    let Some(name) = object_name(table, op) else { return Vec::new() };
    match op {
        ContractOp::AddIndex { .. } => vec![drop_index_concurrently(table, &name)],
        ContractOp::Other => Vec::new(),
        _ => vec![alter(table, &format!("DROP CONSTRAINT IF EXISTS {}", Ident(&name)))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TableRef {
        TableRef::new("app", "orders")
    }
    const LT: Duration = Duration::from_millis(500);

    #[test]
    fn set_not_null() {
        let s = step(&t(), "ALTER COLUMN note SET NOT NULL", &ContractOp::SetNotNull { column: "note".into() }, LT, 4, false)
            .unwrap();
        assert_eq!(
            s.statements,
            vec![
                r#"ALTER TABLE "app"."orders" ADD CONSTRAINT "_orders_note_ssw_nn" CHECK ("note" IS NOT NULL) NOT VALID"#,
                r#"ALTER TABLE "app"."orders" VALIDATE CONSTRAINT "_orders_note_ssw_nn""#,
                r#"ALTER TABLE "app"."orders" ALTER COLUMN "note" SET NOT NULL"#,
                r#"ALTER TABLE "app"."orders" DROP CONSTRAINT "_orders_note_ssw_nn""#,
            ]
        );
        assert_eq!(s.max_blocking, Duration::from_millis(6000));
        assert!(s.scans);
        assert_eq!(
            undo(&t(), &ContractOp::SetNotNull { column: "note".into() }),
            vec![r#"ALTER TABLE "app"."orders" DROP CONSTRAINT IF EXISTS "_orders_note_ssw_nn""#]
        );
    }

    #[test]
    fn a_leftover_check_is_dropped_first() {
        let s = step(&t(), "x", &ContractOp::SetNotNull { column: "note".into() }, LT, 1, true).unwrap();
        assert_eq!(s.statements[0], r#"ALTER TABLE "app"."orders" DROP CONSTRAINT IF EXISTS "_orders_note_ssw_nn""#);
        assert_eq!(s.statements.len(), 5);
        assert_eq!(s.max_blocking, LT * 4);
    }

    #[test]
    fn names_are_quoted() {
        let op = ContractOp::SetNotNull { column: r#"we"ird"#.into() };
        let s = step(&TableRef::new("a\"b", "t"), "x", &op, LT, 1, false).unwrap();
        assert_eq!(s.statements[2], r#"ALTER TABLE "a""b"."t" ALTER COLUMN "we""ird" SET NOT NULL"#);
    }

    #[test]
    fn unique_constraint_concurrently() {
        let op =
            ContractOp::AddIndex { name: None, unique: true, constraint: true, columns: vec!["email".into(), "shop".into()] };
        let s = step(&t(), "ADD UNIQUE (email, shop)", &op, LT, 2, true).unwrap();
        assert_eq!(
            s.statements,
            vec![
                r#"DROP INDEX CONCURRENTLY IF EXISTS "app"."orders_email_shop_key""#,
                r#"CREATE UNIQUE INDEX CONCURRENTLY "orders_email_shop_key" ON "app"."orders" ("email", "shop")"#,
                r#"ALTER TABLE "app"."orders" ADD CONSTRAINT "orders_email_shop_key" UNIQUE USING INDEX "orders_email_shop_key""#,
            ]
        );
        assert_eq!(s.max_blocking, Duration::from_millis(1000));
        assert_eq!(undo(&t(), &op), vec![r#"DROP INDEX CONCURRENTLY IF EXISTS "app"."orders_email_shop_key""#]);
    }

    #[test]
    fn plain_index_blocks_nothing() {
        let op = ContractOp::AddIndex { name: Some("ix".into()), unique: false, constraint: false, columns: vec!["a".into()] };
        let s = step(&t(), "x", &op, LT, 2, false).unwrap();
        assert_eq!(s.statements, vec![r#"CREATE INDEX CONCURRENTLY "ix" ON "app"."orders" ("a")"#]);
        assert_eq!(s.max_blocking, Duration::ZERO);
    }

    #[test]
    fn foreign_key_not_valid_then_validate() {
        let op = ContractOp::AddForeignKey {
            name: None,
            columns: vec!["cust_id".into()],
            foreign_table: vec!["customers".into()],
            referred_columns: vec!["id".into()],
            on_delete: Some("CASCADE".into()),
            on_update: None,
        };
        let s = step(&t(), "x", &op, LT, 1, false).unwrap();
        assert_eq!(
            s.statements,
            vec![
                r#"ALTER TABLE "app"."orders" ADD CONSTRAINT "orders_cust_id_fkey" FOREIGN KEY ("cust_id") REFERENCES "app"."customers" ("id") ON DELETE CASCADE NOT VALID"#,
                r#"ALTER TABLE "app"."orders" VALIDATE CONSTRAINT "orders_cust_id_fkey""#,
            ]
        );
    }

    #[test]
    fn check_not_valid_then_validate() {
        let op = ContractOp::AddCheck { name: Some("pos".into()), expr: "qty > 0".into() };
        let s = step(&t(), "x", &op, LT, 1, false).unwrap();
        assert_eq!(s.statements[0], r#"ALTER TABLE "app"."orders" ADD CONSTRAINT "pos" CHECK (qty > 0) NOT VALID"#);
        assert_eq!(undo(&t(), &op), vec![r#"ALTER TABLE "app"."orders" DROP CONSTRAINT IF EXISTS "pos""#]);
    }

    #[test]
    fn other_has_no_step() {
        assert!(step(&t(), "DROP COLUMN x", &ContractOp::Other, LT, 1, false).is_none());
        assert!(undo(&t(), &ContractOp::Other).is_empty());
    }

    #[test]
    fn session_lock_timeout() {
        assert_eq!(set_session_lock_timeout(Duration::from_millis(250)), "SET lock_timeout = '250ms'");
        assert_eq!(set_session_lock_timeout(Duration::ZERO), "SET lock_timeout = '1ms'");
    }
}
