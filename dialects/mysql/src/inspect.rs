//! Inspecting a table: its columns, indexes, storage engine and row estimate. The shape is read
//! with SHOW statements, which (unlike information_schema) also work on the session's temporary
//! trial copy ([`crate::sql::inspect`]).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use shadowswap_engine::error::Result;
use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
use shadowswap_engine::Error;

use crate::{errors, sql, MySql};

/// Columns, indexes and row estimate of `table`. Errors: [`Error::NoSuchTable`].
pub(crate) async fn inspect(my: &MySql, table: &TableRef) -> Result<TableShape> {
    let mut c = my.conn().await?;
    let mut shape = match shape_on(&mut c, table).await {
        Ok(s) => s,
        Err(e) if errors::code(&e) == Some(errors::NO_SUCH_TABLE) => return Err(Error::NoSuchTable(table.clone())),
        Err(e) => return Err(errors::db(&format!("reading the definition of {table}"), e)),
    };
    let est: Option<Option<u64>> = c
        .exec_first(sql::inspect::TABLE_ROWS, (&table.schema, &table.name))
        .await
        .map_err(|e| errors::db("estimating rows", e))?;
    shape.estimated_rows = est.flatten().unwrap_or(0);
    Ok(shape)
}

/// Whether `table` exists (a table or a view).
pub(crate) async fn table_exists(my: &MySql, table: &TableRef) -> Result<bool> {
    let found = my
        .strings("looking up a table", sql::inspect::TABLE_EXISTS, vec![table.schema.clone().into(), table.name.clone().into()])
        .await?;
    Ok(!found.is_empty())
}

/// Read columns and indexes in session `c` (also the session's temporary tables), without the
/// row estimate.
pub(crate) async fn shape_on(c: &mut Conn, table: &TableRef) -> std::result::Result<TableShape, mysql_async::Error> {
    let rows: Vec<Row> = c.query(sql::inspect::show_full_columns(table)).await?;
    let text = |r: &Row, name: &str| -> Option<String> { r.get_opt::<Option<String>, _>(name).and_then(|v| v.ok()).flatten() };
    let columns = rows
        .iter()
        .map(|r| Column {
            name: text(r, "Field").unwrap_or_default(),
            column_type: text(r, "Type").unwrap_or_default(),
            collation: text(r, "Collation"),
            nullable: text(r, "Null").as_deref() == Some("YES"),
            generated: text(r, "Extra").is_some_and(|e| e.to_ascii_uppercase().contains("GENERATED")),
            // Present, not NULL: read as bytes, since a binary column's default need not be
            // UTF-8 (a `String` read of `DEFAULT 0xFF00FE` fails and would look like no default).
            has_default: r.get_opt::<Option<Vec<u8>>, _>("Default").and_then(|v| v.ok()).flatten().is_some()
                || text(r, "Extra").is_some_and(|e| {
                    let e = e.to_ascii_uppercase();
                    e.contains("AUTO_INCREMENT") || e.contains("GENERATED")
                }),
            operator_schema: None,
        })
        .collect();
    let rows: Vec<Row> = c.query(sql::inspect::show_index(table)).await?;
    let mut indexes: Vec<Index> = Vec::new();
    for r in &rows {
        let name = text(r, "Key_name").unwrap_or_default();
        let column = text(r, "Column_name");
        let partial = text(r, "Sub_part").is_some() || column.is_none();
        let unique = text(r, "Non_unique").as_deref() == Some("0");
        match indexes.iter_mut().find(|i| i.name == name) {
            Some(i) => {
                i.columns.extend(column);
                i.partial |= partial;
            }
            None => {
                indexes.push(Index { primary: name == "PRIMARY", name, columns: column.into_iter().collect(), unique, partial })
            }
        }
    }
    Ok(TableShape { columns, indexes, estimated_rows: 0 })
}

/// The storage engine of `table`, from the table options line of `SHOW CREATE TABLE` (which,
/// unlike information_schema, also shows the session's temporary tables).
///
/// The statement is read as bytes: it holds column defaults verbatim, and a binary column's
/// default need not be UTF-8 (`VARBINARY(4) DEFAULT 0xFF00FE`), which a `String` read would
/// turn into a panic of the driver's row conversion.
pub(crate) async fn engine_on(c: &mut Conn, table: &TableRef) -> std::result::Result<String, mysql_async::Error> {
    let ddl: Option<(Vec<u8>, Vec<u8>)> = c.query_first(sql::inspect::show_create_table(table)).await?;
    Ok(ddl.map(|(_, ddl)| sql::inspect::engine_of_create_table(&ddl)).unwrap_or_default())
}
