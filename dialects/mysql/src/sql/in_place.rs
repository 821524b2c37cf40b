//! Builder for the `--attempt-instant-ddl` path on MariaDB: the ALTER applied to the table itself
//! with `ALGORITHM=INSTANT`, which the server refuses (error 1845/1846, nothing changed) unless it
//! can apply it as a catalog change without a rebuild (MariaDB KB, "InnoDB Online DDL Operations
//! with ALGORITHM=INSTANT").

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::model::TableRef;

use super::shadow::alter_table;

/// `SET STATEMENT lock_wait_timeout = N, time_zone = @@global.time_zone FOR ALTER TABLE t <spec>,
/// ALGORITHM=INSTANT`: waiting at most `lock_secs` seconds for the metadata lock, with defaults
/// evaluated in the server's default time zone as a plain ALTER would.
pub fn alter_instant(table: &TableRef, alter: &AlterAnalysis, lock_secs: u64) -> String {
    format!(
        "SET STATEMENT lock_wait_timeout = {lock_secs}, time_zone = @@global.time_zone FOR {}, ALGORITHM=INSTANT",
        alter_table(table, alter)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_alter_with_its_lock_wait() {
        let a = AlterAnalysis { spec: "ADD COLUMN n varchar(64) NULL".into(), ..AlterAnalysis::default() };
        assert_eq!(
            alter_instant(&TableRef::new("d`b", "t"), &a, 2),
            "SET STATEMENT lock_wait_timeout = 2, time_zone = @@global.time_zone FOR ALTER TABLE `d``b`.`t` ADD COLUMN n \
             varchar(64) NULL, ALGORITHM=INSTANT"
        );
    }
}
