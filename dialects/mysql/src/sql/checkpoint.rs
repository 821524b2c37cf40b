//! Builders for the checkpoint table `_<t>_ssw_ckpt` ([`shadowswap_engine::checkpoint`]): its
//! `CREATE TABLE`, the upsert of its one row, the read, the per-chunk advance (run inside the
//! chunk's own transaction, [`super::copy`]), and the capture identity the dialect keeps in it
//! ([`crate::identity`]). Every value is a bind parameter.
//!
//! The columns (the same names on PostgreSQL): `id` (always 1), `table_name`, `alter_text`,
//! `fingerprint`, `version`, `dialect`, `phase`, `low_watermark`, `high_watermark`,
//! `rows_copied`, `rows_estimated`, `chunk_rows`, `started_at`, `updated_at` (server time, UTC),
//! `revert_until`, `revert_broken`, `capture_identity`. InnoDB (the chunk's advance must commit
//! or roll back with the chunk), `utf8mb4_bin` (texts compare and read back byte for byte).

use shadowswap_engine::names::Names;

use super::Qualified;

/// `CREATE TABLE IF NOT EXISTS` the checkpoint table. `ENGINE=InnoDB` explicitly: the server's
/// `default_storage_engine` could be non-transactional, and then a failed chunk would keep its
/// advance. `updated_at` is written as `UTC_TIMESTAMP(6)`, the same in any session time zone.
pub fn create_checkpoint_table(names: &Names) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\
         id TINYINT UNSIGNED NOT NULL PRIMARY KEY, \
         table_name TEXT NOT NULL, \
         alter_text LONGTEXT NOT NULL, \
         fingerprint VARCHAR(64) NOT NULL, \
         version VARCHAR(64) NOT NULL, \
         dialect VARCHAR(32) NOT NULL, \
         phase VARCHAR(32) NOT NULL, \
         low_watermark LONGTEXT NULL, \
         high_watermark LONGTEXT NULL, \
         rows_copied BIGINT UNSIGNED NOT NULL, \
         rows_estimated BIGINT UNSIGNED NOT NULL, \
         chunk_rows BIGINT UNSIGNED NOT NULL, \
         started_at VARCHAR(64) NOT NULL, \
         updated_at DATETIME(6) NOT NULL, \
         revert_until VARCHAR(64) NULL, \
         revert_broken LONGTEXT NULL, \
         capture_identity LONGTEXT NULL\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        Qualified(&names.checkpoint)
    )
}

/// The checkpoint's fields the upsert writes, in parameter order ([`upsert_checkpoint`]).
pub use shadowswap_engine::checkpoint::COLUMNS as CHECKPOINT_COLUMNS;

/// Make row 1 the given checkpoint: parameters [`CHECKPOINT_COLUMNS`] in order. `revert_broken` and
/// `capture_identity` keep their values (written by the reverse triggers and by the capture).
pub fn upsert_checkpoint(names: &Names) -> String {
    let cols = CHECKPOINT_COLUMNS.join(", ");
    let marks = vec!["?"; CHECKPOINT_COLUMNS.len()].join(", ");
    let updates = CHECKPOINT_COLUMNS.iter().map(|c| format!("{c} = VALUES({c})")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO {} (id, {cols}, updated_at) VALUES (1, {marks}, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE {updates}, \
         updated_at = VALUES(updated_at)",
        Qualified(&names.checkpoint)
    )
}

/// Row 1: the [`CHECKPOINT_COLUMNS`] in order, then `capture_identity`.
pub fn select_checkpoint(names: &Names) -> String {
    format!("SELECT {}, capture_identity FROM {} WHERE id = 1", CHECKPOINT_COLUMNS.join(", "), Qualified(&names.checkpoint))
}

/// The per-chunk advance, run in the chunk's transaction after its copy: parameters the new low
/// watermark (text), the chunk size (rows) and the rows the chunk copied. A missing row is left
/// missing (0 rows changed): the runner always writes the row before the backfill.
pub fn advance_checkpoint(names: &Names) -> String {
    format!(
        "UPDATE {} SET low_watermark = ?, chunk_rows = ?, rows_copied = rows_copied + ?, updated_at = UTC_TIMESTAMP(6) \
         WHERE id = 1",
        Qualified(&names.checkpoint)
    )
}

/// The recorded capture identity of row 1 (NULL until the capture is installed).
pub fn select_capture_identity(names: &Names) -> String {
    format!("SELECT capture_identity FROM {} WHERE id = 1", Qualified(&names.checkpoint))
}

/// Record the capture identity ([`crate::identity::Identity`] as JSON); parameter the text.
pub fn set_capture_identity(names: &Names) -> String {
    format!("UPDATE {} SET capture_identity = ? WHERE id = 1", Qualified(&names.checkpoint))
}

#[cfg(test)]
mod tests {
    use shadowswap_engine::model::TableRef;
    use shadowswap_engine::names::char_len;

    use super::*;

    fn names() -> Names {
        Names::new(&TableRef::new("d`b", "t"), crate::MAX_IDENTIFIER_CHARS, char_len)
    }

    #[test]
    fn the_checkpoint_table() {
        let c = create_checkpoint_table(&names());
        assert!(
            c.starts_with("CREATE TABLE IF NOT EXISTS `d``b`.`_t_ssw_ckpt` (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "),
            "{c}"
        );
        assert!(c.ends_with("capture_identity LONGTEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"), "{c}");
        for col in CHECKPOINT_COLUMNS.iter().chain(&["updated_at", "revert_broken", "capture_identity"]) {
            assert!(c.contains(&format!(" {col} ")), "{col} missing: {c}");
        }
    }

    #[test]
    fn upsert_keeps_the_dialects_columns() {
        let u = upsert_checkpoint(&names());
        assert_eq!(
            u,
            "INSERT INTO `d``b`.`_t_ssw_ckpt` (id, table_name, alter_text, fingerprint, version, dialect, phase, \
             low_watermark, high_watermark, rows_copied, rows_estimated, chunk_rows, started_at, revert_until, updated_at) \
             VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE table_name = \
             VALUES(table_name), alter_text = VALUES(alter_text), fingerprint = VALUES(fingerprint), version = \
             VALUES(version), dialect = VALUES(dialect), phase = VALUES(phase), low_watermark = VALUES(low_watermark), \
             high_watermark = VALUES(high_watermark), rows_copied = VALUES(rows_copied), rows_estimated = \
             VALUES(rows_estimated), chunk_rows = VALUES(chunk_rows), started_at = VALUES(started_at), revert_until = \
             VALUES(revert_until), updated_at = VALUES(updated_at)"
        );
        assert!(!u.contains("capture_identity") && !u.contains("revert_broken"));
    }

    #[test]
    fn read_advance_and_identity() {
        let n = names();
        assert_eq!(
            select_checkpoint(&n),
            "SELECT table_name, alter_text, fingerprint, version, dialect, phase, low_watermark, high_watermark, \
             rows_copied, rows_estimated, chunk_rows, started_at, revert_until, capture_identity FROM `d``b`.`_t_ssw_ckpt` \
             WHERE id = 1"
        );
        assert_eq!(
            advance_checkpoint(&n),
            "UPDATE `d``b`.`_t_ssw_ckpt` SET low_watermark = ?, chunk_rows = ?, rows_copied = rows_copied + ?, \
             updated_at = UTC_TIMESTAMP(6) WHERE id = 1"
        );
        assert_eq!(set_capture_identity(&n), "UPDATE `d``b`.`_t_ssw_ckpt` SET capture_identity = ? WHERE id = 1");
        assert_eq!(select_capture_identity(&n), "SELECT capture_identity FROM `d``b`.`_t_ssw_ckpt` WHERE id = 1");
    }
}
