//! The staged contract's statements on MariaDB ([`shadowswap_engine::staged::contract`]): each
//! clause on the table itself with `ALGORITHM=INSTANT` or `ALGORITHM=INPLACE, LOCK=NONE` (the
//! server refuses, at once, an algorithm it cannot use: MariaDB KB "ALTER TABLE", "InnoDB Online
//! DDL Overview"), under [`super::with_lock_timeout`]; the probe that asks the server which one
//! it accepts, on an empty copy of the table's definition; the shadow-copy step. Pure builders;
//! `staged_contract.rs` (the crate's I/O module) runs them, and the dry run prints them.
//!
//! Locks (MariaDB KB "InnoDB Online DDL Operations with ALGORITHM=INPLACE" / "…INSTANT"): an
//! INSTANT change takes an exclusive metadata lock for a catalog change only; an INPLACE,
//! LOCK=NONE change rebuilds or builds while writes go on, with the exclusive metadata lock
//! taken briefly at its start and its end. Each wait for that lock is bounded by
//! `lock_wait_timeout`; writers queued behind it wait at most as long.

use std::time::Duration;

use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{char_len, generated_name};
use shadowswap_engine::staged::contract::{ContractStep, SHADOW_COPY};

use super::{with_lock_timeout, Qualified};
use crate::MAX_IDENTIFIER_CHARS;

/// The algorithms tried, in order: the first the server accepts for a clause is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `ALGORITHM=INSTANT`: a catalog change, no rebuild.
    Instant,
    /// `ALGORITHM=INPLACE, LOCK=NONE`: rebuilt or built in place while writes go on.
    InplaceLockNone,
}

impl Algorithm {
    /// Both, in the order they are tried.
    pub const ALL: [Algorithm; 2] = [Algorithm::Instant, Algorithm::InplaceLockNone];

    /// What follows the clause: `, ALGORITHM=INSTANT` / `, ALGORITHM=INPLACE, LOCK=NONE`.
    pub fn suffix(self) -> &'static str {
        match self {
            Algorithm::Instant => ", ALGORITHM=INSTANT",
            Algorithm::InplaceLockNone => ", ALGORITHM=INPLACE, LOCK=NONE",
        }
    }
}

/// The probe table `_<t>_ssw_probe` in `table`'s schema: an empty copy of the table's
/// definition the clauses are tried on (within 64 characters).
pub fn probe_table(table: &TableRef) -> TableRef {
    table.sibling(generated_name(&table.name, "ssw_probe", MAX_IDENTIFIER_CHARS, char_len))
}

/// `CREATE TABLE probe LIKE t` (columns, indexes, CHECKs; no rows, no foreign keys).
pub fn create_probe(table: &TableRef) -> String {
    format!("CREATE TABLE {} LIKE {}", Qualified(&probe_table(table)), Qualified(table))
}

/// `ALTER TABLE t <clause>[, ALGORITHM=…]`: the operator's clause verbatim (the server judges it).
pub fn alter_clause(table: &TableRef, clause: &str, algorithm: Option<Algorithm>) -> String {
    format!("ALTER TABLE {} {clause}{}", Qualified(table), algorithm.map_or("", Algorithm::suffix))
}

/// The step for `clause` done in place with `algorithm`: one statement waiting at most
/// `lock_secs` seconds for the metadata lock, `attempts` attempts.
pub fn in_place_step(table: &TableRef, clause: &str, algorithm: Algorithm, lock_secs: u64, attempts: u32) -> ContractStep {
    let per = Duration::from_secs(lock_secs) * attempts;
    let (technique, lock, waits, scans) = match algorithm {
        Algorithm::Instant => ("ALGORITHM=INSTANT (catalog change)", "exclusive metadata lock for a catalog change", 1, false),
        Algorithm::InplaceLockNone => (
            "ALGORITHM=INPLACE, LOCK=NONE (built in place while writes go on)",
            "exclusive metadata lock briefly at the start and at the end; writes go on during the build",
            2,
            true,
        ),
    };
    ContractStep {
        what: clause.to_string(),
        technique: technique.to_string(),
        statements: vec![with_lock_timeout(lock_secs, &alter_clause(table, clause, Some(algorithm)))],
        lock: lock.to_string(),
        max_blocking: per * waits,
        scans,
    }
}

/// The step for `clause` through shadowswap's shadow copy (the server can do it neither INSTANT
/// nor INPLACE with LOCK=NONE): blocked writes only at the cut-over's `RENAME TABLE`, each attempt
/// waiting at most `lock_secs` seconds.
pub fn shadow_copy_step(clause: &str, lock_secs: u64, attempts: u32) -> ContractStep {
    ContractStep {
        what: clause.to_string(),
        technique: SHADOW_COPY.to_string(),
        statements: vec![clause.to_string()],
        lock: "exclusive metadata lock for the cut-over's RENAME TABLE only; the copy lets writes go on".to_string(),
        max_blocking: Duration::from_secs(lock_secs) * attempts,
        scans: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TableRef {
        TableRef::new("d", "orders")
    }

    #[test]
    fn probe() {
        assert_eq!(create_probe(&t()), "CREATE TABLE `d`.`_orders_ssw_probe` LIKE `d`.`orders`");
        assert_eq!(
            alter_clause(&probe_table(&t()), "MODIFY n int NOT NULL", Some(Algorithm::Instant)),
            "ALTER TABLE `d`.`_orders_ssw_probe` MODIFY n int NOT NULL, ALGORITHM=INSTANT"
        );
        assert_eq!(alter_clause(&t(), "FORCE", None), "ALTER TABLE `d`.`orders` FORCE");
        let long = TableRef::new("d", "x".repeat(64));
        assert!(probe_table(&long).name.chars().count() <= 64);
    }

    #[test]
    fn in_place() {
        let s = in_place_step(&t(), "MODIFY note varchar(64) NOT NULL", Algorithm::InplaceLockNone, 2, 3);
        assert_eq!(
            s.statements,
            vec!["SET STATEMENT lock_wait_timeout = 2 FOR ALTER TABLE `d`.`orders` MODIFY note varchar(64) NOT NULL, ALGORITHM=INPLACE, LOCK=NONE"]
        );
        assert_eq!(s.max_blocking, Duration::from_secs(12));
        assert!(s.scans);
        let s = in_place_step(&t(), "ADD COLUMN x int", Algorithm::Instant, 1, 1);
        assert_eq!(s.max_blocking, Duration::from_secs(1));
        assert!(!s.scans);
    }

    #[test]
    fn shadow_copy() {
        let s = shadow_copy_step("ADD CONSTRAINT c CHECK (a > 0)", 1, 4);
        assert_eq!(s.technique, SHADOW_COPY);
        assert_eq!(s.statements, vec!["ADD CONSTRAINT c CHECK (a > 0)"]);
        assert_eq!(s.max_blocking, Duration::from_secs(4));
    }
}
