//! The one place that makes generated names.
//!
//! Every object shadowswap creates is named from the table: shadow table `_<t>_new`, old table
//! `_<t>_old`, capture triggers `_<t>_ssw_ins|upd|del`, checkpoint table `_<t>_ssw_ckpt`, reverse
//! capture triggers of the revert window `_<t>_ssw_rins|rupd|rdel`, advisory lock
//! `shadowswap:<schema>.<t>`.
//! Identifiers have length limits (MySQL 64 characters, PostgreSQL 63 bytes); a name that would
//! be longer keeps a prefix of the table name and appends an 8-hex-digit CRC-32 of the whole
//! table name, so two long table names never share generated names and the same table always
//! gets the same names (which is how `cleanup` finds what a dead run left).

use crate::model::TableRef;

/// Suffix of the shadow table.
pub const SHADOW_SUFFIX: &str = "new";
/// Suffix of the old table after the swap.
pub const OLD_SUFFIX: &str = "old";

/// All names generated for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The original table.
    pub table: TableRef,
    /// `_<t>_new`.
    pub shadow: TableRef,
    /// `_<t>_old`.
    pub old: TableRef,
    /// Trigger names (same schema as the table): AFTER INSERT.
    pub trigger_insert: String,
    /// AFTER UPDATE.
    pub trigger_update: String,
    /// AFTER DELETE.
    pub trigger_delete: String,
    /// Scratch table used by preflight to try the ALTER (a session-private temporary table).
    pub trial: String,
    /// Advisory lock name.
    pub lock: String,
    /// Heartbeat table for measuring replica lag, `_<t>_ssw_hb`.
    pub heartbeat: TableRef,
    /// Checkpoint table, `_<t>_ssw_ckpt`: one row, the run's progress (see [`crate::checkpoint`]).
    pub checkpoint: TableRef,
    /// Reverse capture trigger of the revert window (on the new table after the swap, writing
    /// into the old one): AFTER INSERT, `_<t>_ssw_rins`.
    pub revert_insert: String,
    /// AFTER UPDATE, `_<t>_ssw_rupd`.
    pub revert_update: String,
    /// AFTER DELETE, `_<t>_ssw_rdel`.
    pub revert_delete: String,
}

impl Names {
    /// Names for `table`, each at most `max_len` units long as measured by `len` (characters for
    /// MySQL, bytes for PostgreSQL).
    pub fn new(table: &TableRef, max_len: usize, len: fn(&str) -> usize) -> Self {
        let g = |suffix: &str| generated_name(&table.name, suffix, max_len, len);
        let lock_base = format!("{}.{}", table.schema, table.name);
        Names {
            table: table.clone(),
            shadow: table.sibling(g(SHADOW_SUFFIX)),
            old: table.sibling(g(OLD_SUFFIX)),
            trigger_insert: g("ssw_ins"),
            trigger_update: g("ssw_upd"),
            trigger_delete: g("ssw_del"),
            trial: g("ssw_try"),
            heartbeat: table.sibling(g("ssw_hb")),
            checkpoint: table.sibling(g("ssw_ckpt")),
            revert_insert: g("ssw_rins"),
            revert_update: g("ssw_rupd"),
            revert_delete: g("ssw_rdel"),
            lock: format!("shadowswap:{}", generated_name(&lock_base, "", max_len - 11, len)),
        }
    }

    /// The three trigger names.
    pub fn triggers(&self) -> [&str; 3] {
        [&self.trigger_insert, &self.trigger_update, &self.trigger_delete]
    }

    /// The three reverse trigger names of the revert window.
    pub fn revert_triggers(&self) -> [&str; 3] {
        [&self.revert_insert, &self.revert_update, &self.revert_delete]
    }
}

/// `_<base>_<suffix>` (or `<base>` when `suffix` is empty for lock names), truncated to
/// `max_len` units with a short hash of `base` when longer.
pub fn generated_name(base: &str, suffix: &str, max_len: usize, len: fn(&str) -> usize) -> String {
    let full = if suffix.is_empty() { base.to_string() } else { format!("_{base}_{suffix}") };
    if len(&full) <= max_len {
        return full;
    }
    let hash = format!("{:08x}", crc32fast::hash(base.as_bytes()));
    // Keep as many leading characters of base as fit: `_<prefix>_<hash>_<suffix>`.
    let fixed = if suffix.is_empty() { hash.len() + 1 } else { 1 + 1 + hash.len() + 1 + len(suffix) };
    let mut prefix = String::new();
    for ch in base.chars() {
        let mut next = prefix.clone();
        next.push(ch);
        if len(&next) + fixed > max_len {
            break;
        }
        prefix = next;
    }
    if suffix.is_empty() {
        format!("{prefix}_{hash}")
    } else {
        format!("_{prefix}_{hash}_{suffix}")
    }
}

/// Length in characters (MySQL identifier rule).
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Length in bytes (PostgreSQL `NAMEDATALEN - 1` rule).
pub fn byte_len(s: &str) -> usize {
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_plain() {
        let n = Names::new(&TableRef::new("db", "sbtest1"), 64, char_len);
        assert_eq!(n.shadow.name, "_sbtest1_new");
        assert_eq!(n.old.name, "_sbtest1_old");
        assert_eq!(n.trigger_update, "_sbtest1_ssw_upd");
        assert_eq!(n.lock, "shadowswap:db.sbtest1");
        assert_eq!(n.checkpoint.name, "_sbtest1_ssw_ckpt");
        assert_eq!(n.revert_triggers(), ["_sbtest1_ssw_rins", "_sbtest1_ssw_rupd", "_sbtest1_ssw_rdel"]);
    }

    #[test]
    fn long_names_are_truncated_with_hash_and_stay_distinct() {
        let a = "a".repeat(64);
        let b = format!("{}b", "a".repeat(63));
        let na = Names::new(&TableRef::new("db", &a), 64, char_len);
        let nb = Names::new(&TableRef::new("db", &b), 64, char_len);
        for n in [&na, &nb] {
            for name in [&n.shadow.name, &n.old.name, &n.trigger_insert, &n.trial, &n.lock, &n.checkpoint.name, &n.revert_insert]
            {
                assert!(name.chars().count() <= 64, "{name} too long");
            }
        }
        assert!(na.shadow.name.ends_with("_new"));
        assert_ne!(na.shadow.name, nb.shadow.name);
        assert_eq!(na, Names::new(&TableRef::new("db", &a), 64, char_len), "names are stable");
    }

    #[test]
    fn multibyte_names_respect_the_unit() {
        let t = "é".repeat(40); // 40 chars, 80 bytes
        let by_bytes = generated_name(&t, "new", 63, byte_len);
        assert!(by_bytes.len() <= 63);
        let by_chars = generated_name(&t, "new", 64, char_len);
        assert_eq!(by_chars, format!("_{t}_new"));
    }
}
