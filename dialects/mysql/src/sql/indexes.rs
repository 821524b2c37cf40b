//! Builders for the secondary indexes the shadow is created without and gets after the backfill
//! (phase `build indexes`).
//!
//! InnoDB maintains every secondary index row by row while rows are inserted; an index added to
//! a filled table is built in bulk (sorted, bottom-up), online with `ALGORITHM=INPLACE,
//! LOCK=NONE` (MariaDB KB, "InnoDB Online DDL Operations with the INPLACE Alter Algorithm",
//! "Adding an Index"). So the shadow drops its *plain* indexes while it is still empty
//! ([`drop_deferred`]) and gets them back in one statement after the copy ([`add_deferred`]).
//!
//! Which indexes ([`split`]): the trailing run of plain `KEY` lines of the shadow's
//! `SHOW CREATE TABLE` — never the primary key, a `UNIQUE` key (a duplicate must still fail the
//! copy, with the chunk key's index among them), `FULLTEXT` or `SPATIAL`. MariaDB orders unique
//! keys before plain ones and keeps plain keys in the order they were added, appending those an
//! `ADD INDEX` creates: re-adding the trailing plain keys in their order gives back the same
//! definition, byte for byte. Nothing is deferred when the table has a `FOREIGN KEY` (its index
//! must exist while the rows arrive), a `FULLTEXT` or `SPATIAL` key (their order among the plain
//! keys is the server's), or a plain key before a key that stays.
//!
//! The `ADD` clauses are the `SHOW CREATE TABLE` lines themselves (``KEY `k` (`a`(10) DESC)
//! COMMENT '…' IGNORED``), so names, columns, prefix lengths, order, comments and visibility are
//! the server's own.

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// One index the shadow is created without and gets after the backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredIndex {
    /// The index name, unquoted.
    pub name: String,
    /// Its `SHOW CREATE TABLE` line without the indentation and the trailing comma, e.g.
    /// ``KEY `k_1` (`k`) COMMENT 'x'``: the clause that adds it again after `ADD `.
    pub clause: String,
}

/// A `SHOW CREATE TABLE` text taken apart by [`split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The same `SHOW CREATE TABLE` text without the deferred indexes' lines (what the server
    /// shows for the shadow after [`drop_deferred`]).
    pub without: String,
    /// The deferred indexes, in definition order; empty when nothing is deferred.
    pub deferred: Vec<DeferredIndex>,
}

/// The name of the index a `KEY ` line defines: the backquoted identifier after `KEY `, with
/// doubled backquotes undone. `None` for any other line.
fn key_name(item: &str) -> Option<String> {
    let rest = item.strip_prefix("KEY `")?;
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            if chars.peek() == Some(&'`') {
                chars.next();
                name.push('`');
            } else {
                return Some(name);
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// Take a `SHOW CREATE TABLE` text apart into the definition without its deferred plain indexes
/// and those indexes (see the module docs for which). A text this cannot read (no item lines)
/// defers nothing and comes back unchanged.
pub fn split(ddl: &str) -> Split {
    let nothing = || Split { without: ddl.to_string(), deferred: Vec::new() };
    let lines: Vec<&str> = ddl.split('\n').collect();
    // "CREATE TABLE `t` (", the items each on a line indented by two spaces, ") ENGINE=…".
    let Some(close) = lines.iter().rposition(|l| l.starts_with(')')) else { return nothing() };
    if close < 2 {
        return nothing();
    }
    let items: Vec<&str> = lines[1..close].iter().map(|l| l.strip_suffix(',').unwrap_or(l)).collect();
    if !items.iter().all(|i| i.starts_with("  ")) {
        return nothing();
    }
    let items: Vec<&str> = items.iter().map(|i| &i[2..]).collect();
    let kind = |i: &str| {
        if i.starts_with("FOREIGN KEY") || (i.starts_with("CONSTRAINT ") && i.contains(" FOREIGN KEY ")) {
            Some("fk")
        } else if i.starts_with("FULLTEXT KEY") || i.starts_with("SPATIAL KEY") {
            Some("special")
        } else if i.starts_with("PRIMARY KEY") || i.starts_with("UNIQUE KEY") {
            Some("kept")
        } else if i.starts_with("KEY `") {
            Some("plain")
        } else {
            None // a column, a CHECK constraint, a PERIOD …
        }
    };
    let kinds: Vec<Option<&str>> = items.iter().map(|i| kind(i)).collect();
    if kinds.iter().any(|k| matches!(k, Some("fk" | "special"))) {
        return nothing();
    }
    // The trailing run of plain keys among the keys: after the last key that stays.
    let last_kept = kinds.iter().rposition(|k| *k == Some("kept"));
    let deferred_at: Vec<usize> = (0..items.len())
        .filter(|&i| kinds[i] == Some("plain") && last_kept.is_none_or(|k| i > k))
        .filter(|&i| key_name(items[i]).is_some())
        .collect();
    if deferred_at.is_empty() {
        return nothing();
    }
    let deferred = deferred_at
        .iter()
        .map(|&i| DeferredIndex { name: key_name(items[i]).expect("a key line"), clause: items[i].to_string() })
        .collect();
    let kept: Vec<String> = (0..items.len()).filter(|i| !deferred_at.contains(i)).map(|i| format!("  {}", items[i])).collect();
    let mut without = vec![lines[0].to_string(), kept.join(",\n")];
    without.extend(lines[close..].iter().map(|l| l.to_string()));
    Split { without: without.join("\n"), deferred }
}

/// `ALTER TABLE shadow DROP INDEX a, DROP INDEX b`: run right after the shadow is created, while
/// it is empty and nothing else uses it. `None` when nothing is deferred.
pub fn drop_deferred(shadow: &TableRef, deferred: &[DeferredIndex]) -> Option<String> {
    if deferred.is_empty() {
        return None;
    }
    let drops: Vec<String> = deferred.iter().map(|d| format!("DROP INDEX {}", super::Ident(&d.name))).collect();
    Some(format!("ALTER TABLE {} {}", Qualified(shadow), drops.join(", ")))
}

/// `ALTER TABLE shadow ADD KEY …, ADD KEY …, ALGORITHM=INPLACE, LOCK=NONE`: the deferred indexes
/// in one online build (the capture triggers keep writing the shadow meanwhile). The run wraps it
/// in [`super::with_lock_timeout`]: its brief exclusive metadata locks at start and end must not
/// make application writes (whose triggers write the shadow) queue. `None` when nothing is
/// deferred.
pub fn add_deferred(shadow: &TableRef, deferred: &[DeferredIndex]) -> Option<String> {
    if deferred.is_empty() {
        return None;
    }
    let adds: Vec<String> = deferred.iter().map(|d| format!("ADD {}", d.clause)).collect();
    Some(format!("ALTER TABLE {} {}, ALGORITHM=INPLACE, LOCK=NONE", Qualified(shadow), adds.join(", ")))
}

/// Precedes [`add_deferred`]'s statement in the dry run's shadow DDL: it runs after the
/// backfill, wrapped in [`super::with_lock_timeout`] with the cut-over's lock timeout.
pub const AFTER_BACKFILL: &str =
    "-- after the backfill (phase build indexes), with SET STATEMENT lock_wait_timeout = <--cut-over-lock-timeout> FOR:\n  ";

#[cfg(test)]
mod tests {
    use super::*;

    const SHOWN: &str = "CREATE TABLE `_t_new` (
  `id` int(11) NOT NULL,
  `a` varchar(100) DEFAULT NULL,
  `b` int(11) DEFAULT NULL,
  `we``ird` int(11) DEFAULT NULL,
  `v` int(11) GENERATED ALWAYS AS (`b` + 1) VIRTUAL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ua` (`b`),
  KEY `k``q` (`we``ird` DESC,`a`(10)) COMMENT 'it''s, KEY `x` (`y`)',
  KEY `kb` (`b`) IGNORED,
  KEY `kv` (`v`),
  KEY `ka` (`a`) USING BTREE,
  CONSTRAINT `c` CHECK (`b` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

    #[test]
    fn plain_keys_are_split_off_with_their_exact_text() {
        let s = split(SHOWN);
        let names: Vec<&str> = s.deferred.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["k`q", "kb", "kv", "ka"]);
        assert_eq!(s.deferred[0].clause, "KEY `k``q` (`we``ird` DESC,`a`(10)) COMMENT 'it''s, KEY `x` (`y`)'");
        assert_eq!(
            s.without,
            "CREATE TABLE `_t_new` (
  `id` int(11) NOT NULL,
  `a` varchar(100) DEFAULT NULL,
  `b` int(11) DEFAULT NULL,
  `we``ird` int(11) DEFAULT NULL,
  `v` int(11) GENERATED ALWAYS AS (`b` + 1) VIRTUAL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ua` (`b`),
  CONSTRAINT `c` CHECK (`b` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
        );
        let shadow = TableRef::new("d", "_t_new");
        assert_eq!(
            drop_deferred(&shadow, &s.deferred).unwrap(),
            "ALTER TABLE `d`.`_t_new` DROP INDEX `k``q`, DROP INDEX `kb`, DROP INDEX `kv`, DROP INDEX `ka`"
        );
        assert_eq!(
            add_deferred(&shadow, &s.deferred).unwrap(),
            "ALTER TABLE `d`.`_t_new` ADD KEY `k``q` (`we``ird` DESC,`a`(10)) COMMENT 'it''s, KEY `x` (`y`)', \
             ADD KEY `kb` (`b`) IGNORED, ADD KEY `kv` (`v`), ADD KEY `ka` (`a`) USING BTREE, ALGORITHM=INPLACE, LOCK=NONE"
        );
        assert_eq!(
            super::super::with_lock_timeout(2, &add_deferred(&shadow, &s.deferred[1..2]).unwrap()),
            "SET STATEMENT lock_wait_timeout = 2 FOR ALTER TABLE `d`.`_t_new` ADD KEY `kb` (`b`) IGNORED, ALGORITHM=INPLACE, LOCK=NONE"
        );
    }

    #[test]
    fn the_last_key_line_has_no_comma_and_the_one_before_loses_it() {
        let ddl = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`)\n) ENGINE=InnoDB";
        let s = split(ddl);
        assert_eq!(s.deferred, [DeferredIndex { name: "k_1".into(), clause: "KEY `k_1` (`k`)".into() }]);
        assert_eq!(
            s.without,
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
        );
    }

    #[test]
    fn nothing_is_deferred_when_order_or_foreign_keys_could_differ() {
        let none = |ddl: &str| {
            let s = split(ddl);
            assert!(s.deferred.is_empty(), "{ddl}");
            assert_eq!(s.without, ddl);
            assert_eq!(drop_deferred(&TableRef::new("d", "t"), &s.deferred), None);
            assert_eq!(add_deferred(&TableRef::new("d", "t"), &s.deferred), None);
        };
        // Only unique keys: nothing to defer.
        none("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `u` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`u`)\n) ENGINE=InnoDB");
        // A foreign key needs its index while rows arrive.
        none("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `p` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `p` (`p`),\n  CONSTRAINT `f` FOREIGN KEY (`p`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB");
        // FULLTEXT: the server orders it among the plain keys.
        none("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` text,\n  PRIMARY KEY (`id`),\n  KEY `a` (`a`(10)),\n  FULLTEXT KEY `f` (`a`)\n) ENGINE=InnoDB");
        // Not a SHOW CREATE TABLE text.
        none("nonsense");
        none("");
    }

    #[test]
    fn only_plain_keys_after_the_last_kept_key_are_deferred() {
        // Not what MariaDB prints (unique keys come first), but if it did, a plain key before a
        // kept one would come back after it: keep it.
        let ddl = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  KEY `a` (`id`),\n  UNIQUE KEY `u` (`id`),\n  KEY `b` (`id`)\n) ENGINE=InnoDB";
        let s = split(ddl);
        assert_eq!(s.deferred.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(
            s.without,
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  KEY `a` (`id`),\n  UNIQUE KEY `u` (`id`)\n) ENGINE=InnoDB"
        );
    }
}
