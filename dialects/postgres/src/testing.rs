//! Test helpers shared by the unit tests of the builders: columns and plans without a server.

use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
use shadowswap_engine::names::{byte_len, Names};
use shadowswap_engine::plan::Plan;

/// A column `name` of type `ty`.
pub fn col(name: &str, ty: &str) -> Column {
    Column::new(name, ty)
}

/// The shape of a table with `columns` and a primary key `t_pkey` on `id`.
pub fn shape(columns: Vec<Column>) -> TableShape {
    TableShape {
        columns,
        indexes: vec![Index { name: "t_pkey".into(), columns: vec!["id".into()], unique: true, primary: true, partial: false }],
        estimated_rows: 0,
    }
}

/// The plan of `alter` on `public.<table>` with `columns` (keyed on `id`), the ALTER's result
/// taken to be the same shape (enough for every builder that does not look at the new columns).
pub fn plan_for(table: &str, columns: Vec<Column>, alter: &str) -> Plan {
    let s = shape(columns);
    plan_with(table, s.clone(), s, alter)
}

/// The plan of `alter` on `public.<table>` from `original` to `altered`.
pub fn plan_with(table: &str, original: TableShape, altered: TableShape, alter: &str) -> Plan {
    let names = Names::new(&TableRef::new("public", table), crate::MAX_IDENTIFIER_BYTES, byte_len);
    let analysis = shadowswap_engine::alter::analyze(alter, &sqlparser::dialect::PostgreSqlDialect {}).unwrap();
    Plan::build(names, analysis, original, altered, crate::rules::rules(), true).unwrap()
}

/// `RENAME COLUMN n TO amount` on `t (id, n)`.
pub fn renaming() -> Plan {
    plan_with(
        "t",
        shape(vec![col("id", "integer"), col("n", "integer")]),
        shape(vec![col("id", "integer"), col("amount", "integer")]),
        "RENAME COLUMN n TO amount",
    )
}
