//! The throttle's signals ([`crate::signals`]): the replica-lag heartbeat, load figures, and
//! the sessions a cut-over would queue behind.

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// `CREATE TABLE IF NOT EXISTS <heartbeat> (id int PRIMARY KEY, seq bigint NOT NULL)`.
pub fn create_heartbeat(table: &TableRef) -> String {
    format!("CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, seq bigint NOT NULL)", Qualified(table))
}

/// Writes heartbeat sequence number `$1` (a `bigint`) into the one row of `table`.
pub fn write_heartbeat(table: &TableRef) -> String {
    format!("INSERT INTO {} (id, seq) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq", Qualified(table))
}

/// Reads the heartbeat sequence number of `table` (no row before the first write arrives).
pub fn read_heartbeat(table: &TableRef) -> String {
    format!("SELECT seq FROM {} WHERE id = 1", Qualified(table))
}

/// The query of a PostgreSQL load figure by its name (case-insensitive), one `bigint`:
/// `active_backends` (sessions running a statement, this one left out) and `total_backends`
/// (client sessions). `None` for any other name.
pub fn load_figure(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "active_backends" => Some("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"),
        "total_backends" => Some("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"),
        _ => None,
    }
}

/// Sessions holding a lock on `$1` (a quoted table name as text) in a transaction older than
/// `$2` seconds (a `float8`), one line each for a message: pid, user, transaction age, lock
/// mode, the start of the query.
pub const CUT_OVER_BLOCKERS: &str =
    "SELECT DISTINCT format('pid %s (%s) in a transaction for %s s holding %s: %s', a.pid, a.usename, \
                        extract(epoch FROM now() - a.xact_start)::int, l.mode, left(coalesce(a.query, ''), 80)) \
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.relation = $1::text::regclass AND l.granted AND a.pid <> pg_backend_pid() \
                   AND a.xact_start < now() - make_interval(secs => $2)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_statements() {
        let t = TableRef::new("public", "_t_ssw_hb");
        assert_eq!(
            create_heartbeat(&t),
            "CREATE TABLE IF NOT EXISTS \"public\".\"_t_ssw_hb\" (id int PRIMARY KEY, seq bigint NOT NULL)"
        );
        assert_eq!(
            write_heartbeat(&t),
            "INSERT INTO \"public\".\"_t_ssw_hb\" (id, seq) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq"
        );
        assert_eq!(read_heartbeat(&t), "SELECT seq FROM \"public\".\"_t_ssw_hb\" WHERE id = 1");
    }

    #[test]
    fn load_figures_and_blockers() {
        assert_eq!(load_figure("Active_Backends"), load_figure("active_backends"));
        assert!(load_figure("total_backends").unwrap().contains("backend_type = 'client backend'"));
        assert_eq!(load_figure("Threads_running"), None);
        assert!(CUT_OVER_BLOCKERS.contains("l.relation = $1::text::regclass AND l.granted"));
        assert!(CUT_OVER_BLOCKERS.ends_with("make_interval(secs => $2)"));
    }
}
