//! What the cut-over checks before it swaps: that the table is still the one the capture
//! triggers have been following since they were installed (issue 7, defect 9 and the pre-swap
//! window).
//!
//! MariaDB has no trigger for TRUNCATE and none for DDL: a `TRUNCATE TABLE`, a rebuilding
//! `ALTER TABLE`, an added column or a dropped capture trigger change the table without the
//! shadow following, and a swap would put stale rows in place. So the table's identity is
//! recorded the moment the triggers are installed (under the same `LOCK TABLES … WRITE`) and
//! compared again after the backfill, before each cut-over attempt, and in the swap's own session
//! right before the `RENAME TABLE` and right after it (on the old table, which the rename took):
//! - the InnoDB table id, which TRUNCATE and rebuilding ALTERs change (needs `PROCESS`; without
//!   it, or for names outside `[A-Za-z0-9_]`, this part is skipped with a warning);
//! - the definition, `SHOW CREATE TABLE` (without the name and `AUTO_INCREMENT=`), which any
//!   other DDL changes, instant ALTERs included;
//! - the capture triggers' names and bodies (`information_schema.TRIGGERS.ACTION_STATEMENT`).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::Names;

use crate::{errors, sql};

/// A table's identity as the capture knows it. See the module docs. Kept in the checkpoint as
/// JSON (`capture_identity`, [`crate::checkpoint`]) so a resumed run can compare it too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// InnoDB table id; `None` when it cannot be read (no `PROCESS` privilege, unusual name).
    pub table_id: Option<u64>,
    /// [`sql::identity::normalized_definition`] of `SHOW CREATE TABLE`.
    pub definition: String,
    /// Capture trigger names and bodies, by name.
    pub triggers: Vec<(String, String)>,
}

impl Identity {
    /// Read the identity of `table` (the table, or after the swap the old table) in session `c`.
    /// Works under `LOCK TABLES` when `table` is locked.
    pub async fn read(c: &mut Conn, table: &TableRef, names: &Names) -> Result<Identity, mysql_async::Error> {
        let table_id = match sql::identity::innodb_name(table) {
            Some(name) => match c.exec_first::<u64, _, _>(sql::identity::TABLE_ID, (name,)).await {
                Ok(id) => id,
                Err(e) if errors::code(&e) == Some(errors::SPECIFIC_ACCESS_DENIED) => {
                    tracing::warn!(
                        "cannot read the InnoDB table id without the PROCESS privilege: a TRUNCATE of the table during \
                         the run is detected by the checksum only; grant PROCESS"
                    );
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        // Bytes: a binary column's default need not be UTF-8 (compared as lossy text, the same
        // way each time).
        let ddl: Option<(Vec<u8>, Vec<u8>)> = c.query_first(sql::inspect::show_create_table(table)).await?;
        let definition = sql::identity::normalized_definition(&String::from_utf8_lossy(&ddl.map(|(_, d)| d).unwrap_or_default()));
        let [a, b, t] = names.triggers();
        let triggers = c.exec(sql::identity::CAPTURE_TRIGGER_BODIES, (&names.table.schema, a, b, t)).await?;
        Ok(Identity { table_id, definition, triggers })
    }

    /// What differs in `now` from `self` (the identity recorded when the capture started), as the
    /// middle of a message: `None` when nothing does.
    pub fn changed(&self, now: &Identity) -> Option<&'static str> {
        if let (Some(a), Some(b)) = (self.table_id, now.table_id) {
            if a != b {
                return Some(
                    "was truncated or rebuilt by another session during the run (TRUNCATE TABLE, or an ALTER that \
                     copies the table; the capture triggers do not see either)",
                );
            }
        }
        if self.definition != now.definition {
            return Some("had its definition changed by another session during the run (DDL the capture cannot follow)");
        }
        if self.triggers != now.triggers {
            return Some(
                "lost or had replaced one of shadowswap's capture triggers during the run (writes since then were \
                 not captured)",
            );
        }
        None
    }
}
