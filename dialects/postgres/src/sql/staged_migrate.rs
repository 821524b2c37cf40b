//! Builders for `shadowswap migrate`'s history table (`shadowswap_migrations`): its creation,
//! reading it, and recording a phase's start and end. Values are bound parameters; the table's
//! name is quoted ([`Qualified`]). Timestamps are UTC (`clock_timestamp()`, the statement's own
//! time).

use std::time::Duration;

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// `CREATE TABLE IF NOT EXISTS` the history table: one row per phase run (or revert).
pub fn create_history(history: &TableRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, file text NOT NULL, \
         phase text NOT NULL, checksum text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz, \
         applied_by text NOT NULL, outcome text NOT NULL, error text)",
        Qualified(history)
    )
}

/// Every row, oldest first; timestamps as UTC text `YYYY-MM-DD HH24:MI:SS`.
pub fn read_history(history: &TableRef) -> String {
    format!(
        "SELECT id, file, phase, checksum, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), \
         to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), applied_by, outcome, error FROM {} ORDER BY id",
        Qualified(history)
    )
}

/// A phase starts: `$1` file, `$2` phase, `$3` checksum, `$4` outcome; `applied_by` is the
/// session's user and the client's address (`local` over a Unix socket). Returns the id.
pub fn start(history: &TableRef) -> String {
    format!(
        "INSERT INTO {} (file, phase, checksum, started_at, applied_by, outcome) VALUES ($1, $2, $3, clock_timestamp(), \
         pg_catalog.concat(current_user, ' from ', coalesce(pg_catalog.host(pg_catalog.inet_client_addr()), 'local')), $4) \
         RETURNING id",
        Qualified(history)
    )
}

/// A phase ends: `$1` id, `$2` outcome, `$3` error (NULL when none).
pub fn finish(history: &TableRef) -> String {
    format!("UPDATE {} SET finished_at = clock_timestamp(), outcome = $2, error = $3 WHERE id = $1", Qualified(history))
}

/// The in-place ALTER's statements, as `crate::in_place::alter_in_place` runs them in one
/// transaction (its lock timeout, then the ALTER), for the dry run.
pub fn in_place(table: &TableRef, alter: &str, lock_timeout: Duration) -> Vec<String> {
    vec![super::connect::set_lock_timeout(lock_timeout), super::shadow::alter_table(table, alter)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_statements() {
        let h = TableRef::new("app\"s", "shadowswap_migrations");
        assert!(create_history(&h).starts_with("CREATE TABLE IF NOT EXISTS \"app\"\"s\".\"shadowswap_migrations\" (id bigint"));
        assert!(read_history(&h).ends_with("FROM \"app\"\"s\".\"shadowswap_migrations\" ORDER BY id"));
        assert!(start(&h).contains("VALUES ($1, $2, $3, clock_timestamp(), pg_catalog.concat(current_user, ' from '"));
        assert!(start(&h).ends_with("$4) RETURNING id"));
        assert_eq!(
            finish(&h),
            "UPDATE \"app\"\"s\".\"shadowswap_migrations\" SET finished_at = clock_timestamp(), outcome = $2, error = $3 WHERE id = $1"
        );
        assert_eq!(
            in_place(&TableRef::new("s", "t"), "ADD COLUMN n int", Duration::from_millis(1500)),
            vec!["SET LOCAL lock_timeout = '1500ms'".to_string(), "ALTER TABLE \"s\".\"t\" ADD COLUMN n int".to_string()]
        );
    }
}
