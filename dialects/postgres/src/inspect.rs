//! Inspecting a table: its columns and indexes (`shape_on`, also used on the trial copy and
//! before the swap), whether it exists, its `GENERATED ALWAYS` identity columns, and the
//! equality operators of the chunk key on the shadow.

use shadowswap_engine::error::Result;
use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;
use tokio_postgres::GenericClient;

use crate::sql::capture::qualified_operator;
use crate::sql::inspect as q;
use crate::sql::Qualified;
use crate::{errors, Postgres};

/// Columns, indexes and row estimate of `table`. Errors: [`Error::NoSuchTable`].
pub(crate) async fn inspect(pg: &Postgres, table: &TableRef) -> Result<TableShape> {
    let c = pg.client().await?;
    let rel = Qualified(table).to_string();
    let mut shape = match shape_on(&**c, &rel).await {
        Ok(s) => s,
        Err(e) if errors::is_missing_relation(&e) => return Err(Error::NoSuchTable(table.clone())),
        Err(e) => return Err(errors::db(&format!("reading the definition of {table}"), e)),
    };
    let est: f32 = c.query_one(q::ESTIMATED_ROWS, &[&rel]).await.map_err(|e| errors::db("estimating rows", e))?.get(0);
    shape.estimated_rows = est.max(0.0) as u64;
    Ok(shape)
}

/// Whether `table` exists (any relation of that name in its schema).
pub(crate) async fn table_exists(pg: &Postgres, table: &TableRef) -> Result<bool> {
    let c = pg.client().await?;
    let r = c.query_opt(q::TABLE_EXISTS, &[&table.schema, &table.name]).await.map_err(|e| errors::db("looking up a table", e))?;
    Ok(r.is_some())
}

/// Columns and indexes of the relation `rel` (a quoted name or `pg_temp.x`); the row estimate
/// is left 0.
pub(crate) async fn shape_on(c: &impl GenericClient, rel: &str) -> std::result::Result<TableShape, tokio_postgres::Error> {
    // One round trip each (the swap transaction reads this under its lock).
    let rows = c.query_typed(&q::columns(), &crate::connect::text_params(&[rel])).await?;
    let columns = rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            column_type: r.get(1),
            collation: r.get(2),
            nullable: r.get(3),
            generated: r.get(4),
            has_default: r.get(5),
            operator_schema: r.get(6),
        })
        .collect();
    let rows = c.query_typed(q::INDEXES, &crate::connect::text_params(&[rel])).await?;
    let indexes = rows
        .iter()
        .map(|r| Index { name: r.get(0), unique: r.get(1), primary: r.get(2), partial: r.get(3), columns: r.get(4) })
        .collect();
    Ok(TableShape { columns, indexes, estimated_rows: 0 })
}

/// The `GENERATED ALWAYS AS IDENTITY` columns of `table` (see [`crate::sql::capture::capture`]).
pub(crate) async fn always_identity(
    c: &impl GenericClient,
    table: &TableRef,
) -> std::result::Result<Vec<String>, tokio_postgres::Error> {
    let rows = c.query(q::ALWAYS_IDENTITY, &[&Qualified(table).to_string()]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The schema-qualified equality operator of each shadow key column, in key order (see
/// [`crate::sql::capture::capture`]): the one the shadow's unique index on exactly the key
/// columns uses.
///
/// Errors: [`Error::Refused`] when no such index exists on the shadow or its operator's
/// name is not a plain operator name.
pub(crate) async fn key_equality(c: &impl GenericClient, plan: &Plan) -> Result<Vec<String>> {
    let ctx = "reading the chunk key's equality operators";
    let rows =
        c.query(q::UNIQUE_INDEX_EQUALITY, &[&Qualified(&plan.names.shadow).to_string()]).await.map_err(|e| errors::db(ctx, e))?;
    let rows: Vec<(i64, String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    key_operators(plan, &rows)
}

/// [`key_equality`] from the rows of [`q::UNIQUE_INDEX_EQUALITY`]:
/// `(index oid, column, operator schema, operator name)` in index column order.
fn key_operators(plan: &Plan, rows: &[(i64, String, String, String)]) -> Result<Vec<String>> {
    // (index oid, [(column, operator schema, operator name)]) in index column order.
    type IndexOps<'a> = (i64, Vec<(&'a str, &'a str, &'a str)>);
    let mut by_index: Vec<IndexOps> = Vec::new();
    for (oid, col, schema, op) in rows {
        match by_index.last_mut() {
            Some((o, cols)) if o == oid => cols.push((col, schema, op)),
            _ => by_index.push((*oid, vec![(col, schema, op)])),
        }
    }
    let key = &plan.key.shadow_columns;
    let found =
        by_index.iter().find(|(_, cols)| cols.len() == key.len() && key.iter().all(|k| cols.iter().any(|(c, _, _)| c == k)));
    let Some((_, cols)) = found else {
        return Err(Error::refused(format!(
            "{} has no unique index on exactly the chunk key ({}); the capture cannot replay changes by key",
            plan.names.shadow,
            key.join(", ")
        )));
    };
    key.iter()
        .map(|k| {
            let (_, schema, op) = cols.iter().find(|(c, _, _)| c == k).expect("checked above");
            qualified_operator(schema, op).ok_or_else(|| {
                Error::refused(format!(
                    "the equality operator {schema}.{op} of key column {k} is not a plain operator name; \
                     choose another key"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{col, plan_for};

    #[test]
    fn the_key_compares_with_its_unique_index_operators() {
        let plan = plan_for("t", vec![col("id", "citext"), col("v", "text")], "ADD COLUMN x int");
        let row = |oid: i64, c: &str, schema: &str, op: &str| (oid, c.to_string(), schema.to_string(), op.to_string());
        let rows = [
            row(1, "v", "pg_catalog", "="),
            row(2, "id", "public", "="),
            row(3, "id", "pg_catalog", "="),
            row(3, "v", "pg_catalog", "="),
        ];
        assert_eq!(key_operators(&plan, &rows).unwrap(), ["OPERATOR(\"public\".=)"]);
        let e = key_operators(&plan, &rows[..1]).unwrap_err().to_string();
        assert!(e.contains("has no unique index on exactly the chunk key (id)"), "{e}");
        let e = key_operators(&plan, &[row(2, "id", "public", "=;")]).unwrap_err().to_string();
        assert!(e.contains("is not a plain operator name"), "{e}");
    }
}
