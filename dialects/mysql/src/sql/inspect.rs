//! Builders for reading a table's definition. The SHOW statements, unlike information_schema,
//! also work on the session's temporary tables (the trial copy of [`super::preflight`]).

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// `SHOW FULL COLUMNS FROM db.t`: one row per column (`Field`, `Type`, `Collation`, `Null`,
/// `Default`, `Extra`, …), in table order.
pub fn show_full_columns(table: &TableRef) -> String {
    format!("SHOW FULL COLUMNS FROM {}", Qualified(table))
}

/// `SHOW INDEX FROM db.t`: one row per index column (`Key_name`, `Column_name`, `Sub_part`,
/// `Non_unique`, …), in index and column order.
pub fn show_index(table: &TableRef) -> String {
    format!("SHOW INDEX FROM {}", Qualified(table))
}

/// `SHOW CREATE TABLE db.t`: the table's definition; unlike information_schema it also shows the
/// session's temporary tables. Its result is `(name, definition)`, the definition holding column
/// defaults verbatim (not necessarily UTF-8: read it as bytes).
pub fn show_create_table(table: &TableRef) -> String {
    format!("SHOW CREATE TABLE {}", Qualified(table))
}

/// The storage engine named on the table options line (`) ENGINE=InnoDB …`, the last line) of a
/// `SHOW CREATE TABLE` definition, given as bytes; empty when there is none. Engine names are
/// ASCII; the rest of the definition (defaults of binary columns) may be any bytes.
pub fn engine_of_create_table(ddl: &[u8]) -> String {
    ddl.split(|b| *b == b'\n')
        .rev()
        .find_map(|l| l.strip_prefix(b") ENGINE="))
        .map(|rest| String::from_utf8_lossy(rest.split(|b| *b == b' ').next().unwrap_or_default()).into_owned())
        .unwrap_or_default()
}

/// The table's row estimate (`TABLE_ROWS`, NULL for views); parameters schema and table.
pub const TABLE_ROWS: &str = "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

/// The table's name if it exists (any kind); parameters schema and table.
pub const TABLE_EXISTS: &str = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_queries() {
        let t = TableRef::new("d`b", "t");
        assert_eq!(show_full_columns(&t), "SHOW FULL COLUMNS FROM `d``b`.`t`");
        assert_eq!(show_index(&t), "SHOW INDEX FROM `d``b`.`t`");
        assert_eq!(show_create_table(&t), "SHOW CREATE TABLE `d``b`.`t`");
        assert_eq!(TABLE_ROWS, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?");
        assert_eq!(TABLE_EXISTS, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?");
    }

    #[test]
    fn the_engine_is_read_from_a_definition_that_is_not_utf8() {
        let ddl = b"CREATE TABLE `t` (\n  `b` varbinary(4) DEFAULT '\xff\x00\xfe',\n  `c` text COMMENT ') ENGINE=MyISAM'\n) ENGINE=InnoDB DEFAULT CHARSET=latin1";
        assert_eq!(engine_of_create_table(ddl), "InnoDB");
        assert_eq!(engine_of_create_table(b"CREATE TEMPORARY TABLE `t` (\n  `a` int\n) ENGINE=Aria"), "Aria");
        assert_eq!(engine_of_create_table(b"CREATE VIEW v AS SELECT 1"), "");
    }
}
