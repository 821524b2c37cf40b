//! Working as the table's owner.
//!
//! A table's CHECK constraints, column defaults and index expressions are its owner's code: they
//! may call any function the owner wrote. Whatever evaluates them (the trial ALTER on a scratch
//! copy, the shadow's creation and the ALTER on it, an in-place ALTER, the copy's inserts into
//! the shadow, the capture functions on every application write) must never run with more
//! privileges than the owner's: shadowswap may be connected as a superuser. So those statements
//! run as the owner, inside a `SECURITY DEFINER` function the owner owns
//! ([`crate::sql::owner::as_owner_function`], [`enter`], [`exec`]), where PostgreSQL refuses
//! `SET ROLE`/`RESET ROLE`; the
//! shadow table and the capture functions are created by, and so owned by, the owner (the
//! capture functions, `SECURITY DEFINER`, then run as the owner). Catalog reads, locks,
//! `pg_stat_activity` and the swap's carrying over of other roles' objects keep the session's
//! own role: none of them evaluates the table's expressions.
//!
//! Reads of the original (checksum, key ranges, duplicate search) evaluate none of the table's
//! expressions and stay with the session's role. `ANALYZE` and foreign-key validation already
//! run as the table's owner, in PostgreSQL's security-restricted mode.

use shadowswap_engine::model::TableRef;
use shadowswap_engine::{Error, Result};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Transaction};

use crate::errors;
use crate::sql::owner as sql;
use crate::sql::{Ident, Qualified};

/// The name of `table`'s owner (`pg_class.relowner`).
pub async fn owner_of(c: &impl GenericClient, table: &TableRef) -> std::result::Result<String, tokio_postgres::Error> {
    Ok(c.query_one(sql::OWNER_OF, &[&Qualified(table).to_string()]).await?.get(0))
}

/// Refuses, with what to grant, when the owner of `table` lacks what working as it needs:
/// `USAGE` and `CREATE` on the table's schema (the shadow table and the capture functions are
/// the owner's), `TEMPORARY` on the database (the helper function of
/// [`crate::sql::owner::as_owner_function`] lives in the session's temporary schema), and, for a table
/// with `FORCE ROW LEVEL SECURITY`, `BYPASSRLS` (its policies would filter the owner's copy).
/// Creates nothing.
pub async fn preflight(c: &impl GenericClient, table: &TableRef) -> Result<()> {
    let ctx = "checking the table owner's privileges";
    let r = c.query_one(sql::OWNER_PRIVILEGES, &[&Qualified(table).to_string()]).await.map_err(|e| errors::db(ctx, e))?;
    let (owner, schema_ok, temp_ok, db, forced): (String, bool, bool, String, bool) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    let why = format!(
        "shadowswap works on {table} as its owner {} (so the table's own code never runs with more privileges than its owner's)",
        Ident(&owner)
    );
    if !schema_ok {
        return Err(Error::refused(format!(
            "{why}, and {0} lacks USAGE or CREATE on schema {1}, needed to create the shadow table and the capture functions: \
             GRANT USAGE, CREATE ON SCHEMA {1} TO {0}",
            Ident(&owner),
            Ident(&table.schema)
        )));
    }
    if !temp_ok {
        return Err(Error::refused(format!(
            "{why}, and {0} lacks TEMPORARY on database {1}, needed for a helper function in the session's temporary schema: \
             GRANT TEMPORARY ON DATABASE {1} TO {0}",
            Ident(&owner),
            Ident(&db)
        )));
    }
    if forced {
        return Err(Error::refused(format!(
            "{why}, and {table} has FORCE ROW LEVEL SECURITY, so its row-level security policies would hide rows from the \
             owner's copy: ALTER ROLE {0} BYPASSRLS for the migration, or ALTER TABLE {1} NO FORCE ROW LEVEL SECURITY and \
             FORCE it again afterwards",
            Ident(&owner),
            Qualified(table)
        )));
    }
    Ok(())
}

/// Who the statements of [`exec`] run as: the OID of the table's owner.
#[derive(Debug, Clone, Copy)]
pub struct AsOwner(u32);

/// Starts working as the owner of `table` in `tx` (`SET LOCAL ROLE`, in one round trip with
/// looking the owner up), and makes sure the helper function of
/// [`crate::sql::owner::as_owner_function`] exists for it, intact (it is created, or created again,
/// otherwise). Objects created until [`leave`] (or the end of the transaction) are the owner's.
pub async fn enter(tx: &Transaction<'_>, table: &TableRef) -> std::result::Result<AsOwner, tokio_postgres::Error> {
    let r = tx.query_one(sql::AS_OWNER_ENTER, &[&Qualified(table).to_string(), &sql::as_owner_body()]).await?;
    let owner = AsOwner(r.get::<_, i64>(0) as u32);
    if !r.get::<_, bool>(2) {
        tx.batch_execute(&sql::as_owner_function(owner.0)).await?;
    }
    Ok(owner)
}

/// Runs `q` (parameters `params` as `$1…`, all text; at most
/// [`sql::AS_OWNER_MAX_PARAMS`]) as the owner inside the helper function, with `search_path`
/// when given (the user's, for the user's ALTER text) or the session's pinned one. Returns the
/// statement's row count, in one round trip. Errors are the statement's own (SQLSTATE,
/// constraint, detail).
pub async fn exec(
    tx: &Transaction<'_>,
    owner: AsOwner,
    q: &str,
    params: &[String],
    search_path: Option<&str>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    debug_assert!(params.len() <= sql::AS_OWNER_MAX_PARAMS);
    // Typed parameters: one round trip (parse, bind and execute together) instead of a
    // prepare and then an execute; a chunk's copy makes four such calls.
    let n: Option<i64> = tx
        .query_typed_one(
            &sql::as_owner_call(owner.0),
            &[(&q, Type::TEXT), (&params, Type::TEXT_ARRAY), (&search_path, Type::TEXT)],
        )
        .await?
        .get(0);
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Back to the session's own role in `tx` (the end of the transaction does the same).
pub async fn leave(tx: &Transaction<'_>) -> std::result::Result<(), tokio_postgres::Error> {
    tx.batch_execute(sql::RESET_ROLE).await
}
