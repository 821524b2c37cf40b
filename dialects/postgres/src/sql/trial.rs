//! Catalog queries of the trial ALTER on a scratch copy ([`crate::trial`]) and of the
//! metadata-only question ([`crate::in_place`]). The copy itself is made with
//! [`super::shadow::create_like`] and altered with [`super::shadow::alter_table`], the same
//! builders as the shadow's.

use std::time::Duration;

/// How long the trial waits for a lock on the table (`CREATE TABLE … (LIKE …)` takes `ACCESS
/// SHARE` on it).
pub const TRIAL_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Which of the names `$2` (text[]) are a primary, unique, exclusion or foreign key, or an
/// index, of `$1`: what an ALTER may not name on the shadow copy, where they carry other names.
pub const NAMED_INDEXES_OR_KEYS: &str =
    "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u', 'x', 'f') \
       AND conname::text = ANY($2) \
     UNION SELECT ic.relname::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
     WHERE i.indrelid = $1::text::regclass AND ic.relname::text = ANY($2) ORDER BY 1";

/// `(oid, relfilenode)` of `$1` and each of its indexes, by OID: a rewrite gives the table or an
/// index a new relfilenode, a new index adds a row.
pub const RELFILENODES: &str = "SELECT c.oid::bigint, c.relfilenode::bigint FROM pg_class c \
     WHERE c.oid = $1::text::regclass OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::text::regclass) \
     ORDER BY 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_queries() {
        assert!(NAMED_INDEXES_OR_KEYS.contains("contype IN ('p', 'u', 'x', 'f') AND conname::text = ANY($2) UNION SELECT"));
        assert!(NAMED_INDEXES_OR_KEYS.ends_with("AND ic.relname::text = ANY($2) ORDER BY 1"));
        assert!(RELFILENODES
            .starts_with("SELECT c.oid::bigint, c.relfilenode::bigint FROM pg_class c WHERE c.oid = $1::text::regclass OR"));
        assert_eq!(TRIAL_LOCK_WAIT, Duration::from_secs(2));
    }
}
