//! The checkpoint table's statements ([`crate::checkpoint`]): its creation, the upsert of its
//! one row, the read of it, and the per-chunk advance that runs in each chunk's transaction
//! ([`crate::copy`]). The table `_<t>_ssw_ckpt` (the engine's `names.checkpoint`) has the same
//! columns on both servers (see `shadowswap_engine::checkpoint`); `id` is always 1.

use shadowswap_engine::model::TableRef;

use super::{literal, Qualified};

/// `CREATE TABLE IF NOT EXISTS` of the checkpoint table `ckpt`: one row (`id` = 1), keys and
/// times as text, `updated_at` the server's time of the last write.
pub fn create(ckpt: &TableRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\
         id integer PRIMARY KEY CHECK (id = 1), \
         table_name text NOT NULL, \
         alter_text text NOT NULL, \
         fingerprint text NOT NULL, \
         version text NOT NULL, \
         dialect text NOT NULL, \
         phase text NOT NULL, \
         low_watermark text NULL, \
         high_watermark text NULL, \
         rows_copied bigint NOT NULL, \
         rows_estimated bigint NOT NULL, \
         chunk_rows bigint NOT NULL, \
         started_at text NOT NULL, \
         updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(), \
         revert_until text NULL, \
         revert_broken text NULL, \
         capture_identity text NULL)",
        Qualified(ckpt)
    )
}

/// The columns [`upsert`] writes and [`select`] reads, in parameter / column order. Keys and
/// times are `text`; `rows_copied`, `rows_estimated` and `chunk_rows` are `bigint`.
pub use shadowswap_engine::checkpoint::COLUMNS;

/// Make the row `id = 1` of `ckpt` the values `$1…$13` ([`COLUMNS`] in order), `updated_at`
/// now; `revert_broken` and `capture_identity` keep their values (they are written by the
/// reverse triggers and the capture's install, not by the engine's checkpoint).
pub fn upsert(ckpt: &TableRef) -> String {
    let params = (1..=COLUMNS.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let set = COLUMNS.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO {} (id, {}, updated_at) VALUES (1, {params}, pg_catalog.now()) \
         ON CONFLICT (id) DO UPDATE SET {set}, updated_at = EXCLUDED.updated_at",
        Qualified(ckpt),
        COLUMNS.join(", ")
    )
}

/// The checkpoint row: [`COLUMNS`] in order, then `capture_identity`. No row: no checkpoint.
pub fn select(ckpt: &TableRef) -> String {
    format!("SELECT {}, capture_identity FROM {} WHERE id = 1", COLUMNS.join(", "), Qualified(ckpt))
}

/// Record `identity` (dialect-owned text, see [`crate::checkpoint`]) as the capture's identity.
/// `$1`: the text.
pub fn set_capture_identity(ckpt: &TableRef) -> String {
    format!("UPDATE {} SET capture_identity = $1 WHERE id = 1", Qualified(ckpt))
}

/// Whether relation `$1` (a qualified name, as text) exists.
pub const RELATION_EXISTS: &str = "SELECT pg_catalog.to_regclass($1) IS NOT NULL";

/// The OIDs of relations `$1` and `$2` (qualified names, as text), as `bigint`: what
/// [`capture_identity`] is made of.
pub const RELATION_OIDS: &str = "SELECT $1::text::regclass::oid::bigint, $2::text::regclass::oid::bigint";

/// The capture's identity as the checkpoint records it: the OIDs of the table the triggers
/// follow and of the shadow they write, which a table or shadow dropped and created again
/// (e.g. restored from a dump, with the capture functions and triggers, while no run was
/// active) does not keep.
pub fn capture_identity(table_oid: i64, shadow_oid: i64) -> String {
    format!("table oid {table_oid}, shadow oid {shadow_oid}")
}

fn advance_with(ckpt: &TableRef, low_watermark: &str, chunk_rows: &str, rows: &str) -> String {
    format!(
        "UPDATE {} SET low_watermark = {low_watermark}, chunk_rows = {chunk_rows}, rows_copied = rows_copied + {rows}, \
         updated_at = pg_catalog.now() WHERE id = 1",
        Qualified(ckpt)
    )
}

/// The chunk's advance of the checkpoint, run in the chunk's own transaction after its copy:
/// the new low watermark (a [`literal`]), the chunk size and the rows the chunk copied. Values
/// are literals so that it goes in one round trip with the `RESET ROLE` before it
/// ([`chunk_end`]).
pub fn advance(ckpt: &TableRef, low_watermark: &str, chunk_rows: u64, rows: u64) -> String {
    advance_with(ckpt, &literal(low_watermark), &chunk_rows.to_string(), &rows.to_string())
}

/// The end of a chunk's transaction before its commit, in one round trip: back to the
/// session's own role (the copy ran as the table's owner, who need not have any privilege on
/// the checkpoint table), then [`advance`].
pub fn chunk_end(ckpt: &TableRef, low_watermark: &str, chunk_rows: u64, rows: u64) -> String {
    format!("{}; {}", super::owner::RESET_ROLE, advance(ckpt, low_watermark, chunk_rows, rows))
}

/// What the dry run shows of the advance: [`advance`] with `$1` (the chunk's upper key),
/// `$2` (chunk size) and `$3` (rows copied) in place of the values.
pub fn advance_outline(ckpt: &TableRef) -> String {
    advance_with(ckpt, "$1", "$2", "$3")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ckpt() -> TableRef {
        TableRef::new("s\"x", "_t_ssw_ckpt")
    }

    #[test]
    fn the_table_has_the_shared_columns_and_one_row() {
        let c = create(&ckpt());
        assert!(c.starts_with("CREATE TABLE IF NOT EXISTS \"s\"\"x\".\"_t_ssw_ckpt\" (id integer PRIMARY KEY CHECK (id = 1)"));
        for col in COLUMNS.iter().chain(&["updated_at", "revert_broken", "capture_identity"]) {
            assert!(c.contains(&format!(" {col} ")), "{col} missing: {c}");
        }
    }

    #[test]
    fn the_upsert_writes_every_engine_field_and_keeps_the_dialects() {
        let u = upsert(&ckpt());
        assert!(u.starts_with(
            "INSERT INTO \"s\"\"x\".\"_t_ssw_ckpt\" (id, table_name, alter_text, fingerprint, version, dialect, phase, \
             low_watermark, high_watermark, rows_copied, rows_estimated, chunk_rows, started_at, revert_until, updated_at) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, pg_catalog.now()) ON CONFLICT (id) DO UPDATE SET "
        ));
        assert!(u.contains("revert_until = EXCLUDED.revert_until, updated_at = EXCLUDED.updated_at"));
        assert!(!u.contains("capture_identity") && !u.contains("revert_broken"), "{u}");
        assert_eq!(
            select(&ckpt()),
            "SELECT table_name, alter_text, fingerprint, version, dialect, phase, low_watermark, high_watermark, \
             rows_copied, rows_estimated, chunk_rows, started_at, revert_until, capture_identity \
             FROM \"s\"\"x\".\"_t_ssw_ckpt\" WHERE id = 1"
        );
    }

    #[test]
    fn the_advance_quotes_the_key_and_adds_the_rows() {
        let a = chunk_end(&ckpt(), r#"["it's","a\b"]"#, 500, 498);
        assert_eq!(
            a,
            "RESET ROLE; UPDATE \"s\"\"x\".\"_t_ssw_ckpt\" SET low_watermark = E'[\"it''s\",\"a\\\\b\"]', chunk_rows = 500, \
             rows_copied = rows_copied + 498, updated_at = pg_catalog.now() WHERE id = 1"
        );
        assert!(advance_outline(&ckpt()).contains("low_watermark = $1, chunk_rows = $2, rows_copied = rows_copied + $3"));
    }

    #[test]
    fn the_capture_identity_is_the_two_oids() {
        assert_eq!(capture_identity(16384, 16390), "table oid 16384, shadow oid 16390");
        assert_eq!(set_capture_identity(&ckpt()), "UPDATE \"s\"\"x\".\"_t_ssw_ckpt\" SET capture_identity = $1 WHERE id = 1");
        assert!(RELATION_OIDS.contains("$1::text::regclass::oid::bigint, $2::text::regclass::oid::bigint"));
    }
}
