//! Builders for the table identity the cut-over compares with the one recorded when the capture
//! was installed ([`crate::identity`]): the InnoDB table id, the definition, the capture triggers.

use shadowswap_engine::model::TableRef;

/// InnoDB's internal id of a table: `information_schema.INNODB_SYS_TABLES` (needs `PROCESS`),
/// parameter the InnoDB name, see [`innodb_name`]. `TRUNCATE TABLE` and every ALTER that
/// rebuilds the table give it a new id (MariaDB 10.3+ implements TRUNCATE as create-new and
/// drop-old), while row changes and instant ALTERs keep it.
pub const TABLE_ID: &str = "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ?";

/// The name InnoDB knows `table` by, `schema/table`, when both are plain ASCII letters, digits
/// and underscores (other characters are stored in MariaDB's filename encoding, which
/// shadowswap does not reproduce: `None`, and the table id is not checked).
pub fn innodb_name(table: &TableRef) -> Option<String> {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (plain(&table.schema) && plain(&table.name)).then(|| format!("{}/{}", table.schema, table.name))
}

/// A table definition from `SHOW CREATE TABLE`, comparable across a rename and across inserts:
/// without its first line (which names the table) and without the `AUTO_INCREMENT=n` option.
pub fn normalized_definition(ddl: &str) -> String {
    let body = ddl.split_once('\n').map(|(_, rest)| rest).unwrap_or(ddl);
    body.split(' ').filter(|w| !w.starts_with("AUTO_INCREMENT=")).collect::<Vec<_>>().join(" ")
}

/// Name and body of the capture triggers that exist now, wherever they are; parameters: the
/// schema, then the three trigger names.
pub const CAPTURE_TRIGGER_BODIES: &str = "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS \
     WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) ORDER BY TRIGGER_NAME";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_queries() {
        assert_eq!(innodb_name(&TableRef::new("ssw_a", "t_1")).as_deref(), Some("ssw_a/t_1"));
        assert_eq!(innodb_name(&TableRef::new("d", "t-x")), None);
        let a = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=latin1";
        let b = "CREATE TABLE `_t_old` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=9 DEFAULT CHARSET=latin1";
        assert_eq!(normalized_definition(a), normalized_definition(b));
        assert!(!normalized_definition(a).contains("AUTO_INCREMENT"));
        assert_eq!(
            CAPTURE_TRIGGER_BODIES,
            "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME \
             IN (?, ?, ?) ORDER BY TRIGGER_NAME"
        );
        assert_eq!(TABLE_ID, "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ?");
    }
}
