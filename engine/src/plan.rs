//! Preflight logic that needs no server: given the table's shape before and after the ALTER
//! (the dialect reads both), choose the chunk key, map columns, find new unique keys.

use crate::alter::AlterAnalysis;
use crate::error::{Error, Result};
use crate::model::{Column, Index, TableShape};
use crate::names::Names;

/// Dialect rules the plan needs: how names compare and which column types can drive chunking.
#[derive(Clone, Copy)]
pub struct Rules {
    /// Whether two column names are the same column (MySQL: case-insensitive).
    pub eq: fn(&str, &str) -> bool,
    /// Whether a column's type orders the same way in `ORDER BY` and in `>` comparisons, so it
    /// can be part of a chunk key.
    pub key_column_ok: fn(&Column) -> bool,
    /// Why a copied column's type change cannot be done online, if it cannot: e.g. a conversion
    /// whose result depends on the session time zone, which differs between shadowswap's copy
    /// (UTC) and the application sessions that fire the capture triggers.
    pub type_change_refusal: fn(from: &Column, to: &Column) -> Option<String>,
}

/// One copied column: read `source` from the original, write `target` in the shadow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    /// Column name in the original table.
    pub source: String,
    /// Column name in the shadow table.
    pub target: String,
}

/// The unique key used for keyset chunking and for replaying changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkKey {
    /// Index name in the original table.
    pub index: String,
    /// Key columns in the original, in index order.
    pub columns: Vec<Column>,
    /// The same columns' names in the shadow.
    pub shadow_columns: Vec<String>,
}

/// A unique key the altered table has and the original does not enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUniqueKey {
    /// Index name in the shadow.
    pub name: String,
    /// Its columns in the original (`None` when it covers a column the ALTER adds).
    pub source_columns: Option<Vec<String>>,
}

/// SQL the dialect will run, for the dry-run plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanSql {
    /// Statements that create the shadow table.
    pub shadow: Vec<String>,
    /// Statements that install the capture triggers.
    pub capture: Vec<String>,
    /// The statement that copies one chunk (with placeholders).
    pub copy: String,
    /// The cut-over statement.
    pub cut_over: String,
}

/// Everything decided before anything is created.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Generated names.
    pub names: Names,
    /// The ALTER spec as given.
    pub alter: String,
    /// What the spec does (renames, clauses).
    pub analysis: AlterAnalysis,
    /// The original table's shape.
    pub original: TableShape,
    /// The shape after the ALTER.
    pub altered: TableShape,
    /// Chunk key.
    pub key: ChunkKey,
    /// Columns copied by backfill and capture, in shadow order.
    pub mapping: Vec<ColumnMap>,
    /// Columns compared by the checksum (same type and collation on both sides).
    pub checksum_columns: Vec<ColumnMap>,
    /// Copied columns left out of the checksum because the ALTER changes their type.
    pub not_checksummed: Vec<String>,
    /// Original columns the ALTER drops.
    pub dropped_columns: Vec<String>,
    /// Shadow columns with no source (filled with their default or computed).
    pub added_columns: Vec<String>,
    /// Unique keys that must be proven free of duplicates.
    pub new_unique_keys: Vec<NewUniqueKey>,
    /// SQL to run, rendered by the dialect.
    pub sql: PlanSql,
    /// Whether the server can apply the ALTER without rewriting or scanning the table
    /// (`None`: the dialect cannot tell).
    pub metadata_only: Option<bool>,
}

impl Plan {
    /// Build the plan. Errors are preflight refusals: renames without approval, renames of
    /// unknown columns, no usable key before or after the ALTER.
    pub fn build(
        names: Names,
        alter: &str,
        analysis: AlterAnalysis,
        original: TableShape,
        altered: TableShape,
        rules: Rules,
        approve_renamed_columns: bool,
    ) -> Result<Plan> {
        let eq = rules.eq;
        if !analysis.renamed_columns.is_empty() {
            let list = analysis.renamed_columns.iter().map(|(o, n)| format!("{o} -> {n}")).collect::<Vec<_>>().join(", ");
            if !approve_renamed_columns {
                return Err(Error::refused(format!(
                    "the ALTER renames columns ({list}); check that this is intended and add --approve-renamed-columns \
                     to carry their data over to the new names"
                )));
            }
            for (old, new) in &analysis.renamed_columns {
                if original.column(old, eq).is_none() {
                    return Err(Error::refused(format!("the ALTER renames column {old}, which {} does not have", names.table)));
                }
                if altered.column(new, eq).is_none() {
                    return Err(Error::refused(format!(
                        "the ALTER renames {old} to {new}, but the altered table has no column {new}"
                    )));
                }
            }
        }

        // Column mapping, in shadow order.
        let source_of = |target: &str| -> String {
            analysis
                .renamed_columns
                .iter()
                .find(|(_, new)| eq(new, target))
                .map(|(old, _)| old.clone())
                .unwrap_or_else(|| target.to_string())
        };
        let mut mapping = Vec::new();
        let mut added_columns = Vec::new();
        for col in altered.columns.iter().filter(|c| !c.generated) {
            let src = source_of(&col.name);
            match original.column(&src, eq) {
                Some(s) => mapping.push(ColumnMap { source: s.name.clone(), target: col.name.clone() }),
                None => added_columns.push(col.name.clone()),
            }
        }
        let dropped_columns: Vec<String> = original
            .columns
            .iter()
            .filter(|c| {
                !mapping.iter().any(|m| eq(&m.source, &c.name))
                    && !altered.columns.iter().any(|a| a.generated && eq(&source_of(&a.name), &c.name))
            })
            .map(|c| c.name.clone())
            .collect();
        let target_of = |source: &str| mapping.iter().find(|m| eq(&m.source, source)).map(|m| m.target.clone());

        for name in &added_columns {
            let c = altered.column(name, eq).expect("added columns come from the altered shape");
            if !c.nullable && !c.has_default {
                return Err(Error::refused(format!(
                    "the ALTER adds NOT NULL column {name} without a DEFAULT: neither the copied rows nor the application's \
                     writes during the migration would have a value for it; give it a DEFAULT (or make it NULL)"
                )));
            }
        }
        for m in &mapping {
            let (Some(from), Some(to)) = (original.column(&m.source, eq), altered.column(&m.target, eq)) else { continue };
            if let Some(why) = (rules.type_change_refusal)(from, to) {
                return Err(Error::refused(format!(
                    "the ALTER changes column {} from {} to {}: {why}",
                    m.target, from.column_type, to.column_type
                )));
            }
        }

        let key = choose_key(&names, &original, &altered, rules, &target_of)?;

        let mut checksum_columns = Vec::new();
        let mut not_checksummed = Vec::new();
        for m in &mapping {
            let (Some(s), Some(t)) = (original.column(&m.source, eq), altered.column(&m.target, eq)) else { continue };
            if s.column_type.eq_ignore_ascii_case(&t.column_type) && s.collation == t.collation && !s.generated {
                checksum_columns.push(m.clone());
            } else {
                not_checksummed.push(m.target.clone());
            }
        }

        let new_unique_keys = altered
            .indexes
            .iter()
            .filter(|i| i.unique)
            .filter_map(|i| {
                let sources: Option<Vec<String>> =
                    i.columns.iter().map(|c| mapping.iter().find(|m| eq(&m.target, c)).map(|m| m.source.clone())).collect();
                let enforced = sources.as_ref().is_some_and(|src| {
                    original
                        .indexes
                        .iter()
                        .any(|o| o.unique && !o.partial && o.columns.iter().all(|oc| src.iter().any(|s| eq(s, oc))))
                });
                (!enforced).then(|| NewUniqueKey { name: i.name.clone(), source_columns: sources })
            })
            .collect();

        Ok(Plan {
            names,
            alter: alter.to_string(),
            analysis,
            original,
            altered,
            key,
            mapping,
            checksum_columns,
            not_checksummed,
            dropped_columns,
            added_columns,
            new_unique_keys,
            sql: PlanSql::default(),
            metadata_only: None,
        })
    }

    /// Estimated rows to copy (the server's estimate for the original table).
    pub fn estimated_rows(&self) -> u64 {
        self.original.estimated_rows
    }

    /// The plan as text for the dry run: one section per decision.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let n = &self.names;
        s += &format!("table:          {}\n", n.table);
        s += &format!("alter:          {}\n", self.alter);
        s += &format!("shadow table:   {}\n", n.shadow);
        s += &format!("old table:      {} (after the swap)\n", n.old);
        s += &format!(
            "chunk key:      {} ({})\n",
            self.key.index,
            self.key.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        );
        s += &format!("estimated rows: {}\n", self.estimated_rows());
        match self.metadata_only {
            Some(true) => {
                s += "metadata-only:  yes: the server applies this ALTER without rewriting or scanning the table; \
                      --attempt-instant-ddl applies it in place under a short lock instead of copying\n"
            }
            Some(false) => s += "metadata-only:  no: the server would rewrite or scan the table; shadowswap copies it\n",
            None => {}
        }
        s += "column mapping:\n";
        for m in &self.mapping {
            if m.source == m.target {
                s += &format!("  {}\n", m.target);
            } else {
                s += &format!("  {} <- {} (renamed)\n", m.target, m.source);
            }
        }
        for c in &self.added_columns {
            s += &format!("  {c} (added: default or computed value)\n");
        }
        for c in &self.dropped_columns {
            s += &format!("  {c} (dropped)\n");
        }
        if !self.not_checksummed.is_empty() {
            s += &format!("not checksummed (type changes): {}\n", self.not_checksummed.join(", "));
        }
        for k in &self.new_unique_keys {
            match k.source_columns {
                Some(_) => s += &format!("new unique key: {} (checked for duplicates before anything is created)\n", k.name),
                None => s += &format!("new unique key: {} (covers added columns: a duplicate stops the copy)\n", k.name),
            }
        }
        s += "shadow DDL:\n";
        for q in &self.sql.shadow {
            s += &format!("  {q};\n");
        }
        s += "capture triggers:\n";
        for q in &self.sql.capture {
            s += &format!("  {};\n", q.replace('\n', "\n  "));
        }
        s += &format!("copy chunk:\n  {};\n", self.sql.copy);
        s += &format!("cut-over:\n  {};\n", self.sql.cut_over);
        s
    }
}

fn choose_key(
    names: &Names,
    original: &TableShape,
    altered: &TableShape,
    rules: Rules,
    target_of: &dyn Fn(&str) -> Option<String>,
) -> Result<ChunkKey> {
    let eq = rules.eq;
    let before = original.usable_keys(eq);
    if before.is_empty() {
        return Err(Error::refused(format!(
            "{} has no primary key and no unique key over NOT NULL columns; add one before migrating \
             (shadowswap copies in key order and replays changes by key)",
            names.table
        )));
    }
    let after = altered.usable_keys(eq);
    let mut unsupported = Vec::new();
    for idx in &before {
        let cols: Vec<Column> = idx.columns.iter().filter_map(|c| original.column(c, eq).cloned()).collect();
        if let Some(bad) = cols.iter().find(|c| !(rules.key_column_ok)(c)) {
            unsupported.push(format!("{} ({} is {})", idx.name, bad.name, bad.column_type));
            continue;
        }
        let Some(targets) = idx.columns.iter().map(|c| target_of(c)).collect::<Option<Vec<String>>>() else {
            continue;
        };
        let same = |i: &&Index| i.columns.len() == targets.len() && i.columns.iter().zip(&targets).all(|(a, b)| eq(a, b));
        if after.iter().any(same) {
            return Ok(ChunkKey { index: idx.name.clone(), columns: cols, shadow_columns: targets });
        }
    }
    let list = before.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
    if !unsupported.is_empty() && unsupported.len() == before.len() {
        return Err(Error::refused(format!(
            "no key of {} can drive chunking: {}; add a unique NOT NULL key over integer, string or date columns",
            names.table,
            unsupported.join(", ")
        )));
    }
    Err(Error::refused(format!(
        "the ALTER leaves no unique NOT NULL key that both the original and the altered table have \
         (the original's: {list}); keep one of them unchanged in the ALTER"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableRef;
    use crate::names::{char_len, Names};

    fn col(name: &str, ty: &str, nullable: bool) -> Column {
        Column { nullable, ..Column::new(name, ty) }
    }
    fn idx(name: &str, cols: &[&str], unique: bool) -> Index {
        Index {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            unique,
            primary: name == "PRIMARY",
            partial: false,
        }
    }
    fn rules() -> Rules {
        Rules {
            eq: |a, b| a.eq_ignore_ascii_case(b),
            key_column_ok: |c| !c.column_type.starts_with("float"),
            type_change_refusal: |a, b| (a.column_type == "timestamp" && b.column_type != "timestamp").then(|| "zone".into()),
        }
    }
    fn names() -> Names {
        Names::new(&TableRef::new("db", "t"), 64, char_len)
    }
    fn shape(cols: Vec<Column>, idx: Vec<Index>) -> TableShape {
        TableShape { columns: cols, indexes: idx, estimated_rows: 10 }
    }
    fn an(spec: &str) -> AlterAnalysis {
        crate::alter::analyze(spec, &sqlparser::dialect::MySqlDialect {}).unwrap()
    }

    #[test]
    fn maps_added_dropped_and_renamed_columns() {
        let orig = shape(
            vec![col("id", "int", false), col("a", "int", true), col("d", "int", true)],
            vec![idx("PRIMARY", &["id"], true)],
        );
        let alt = shape(
            vec![col("id", "int", false), col("b", "bigint", true), col("n", "int", true)],
            vec![idx("PRIMARY", &["id"], true)],
        );
        let spec = "CHANGE a b BIGINT, DROP COLUMN d, ADD COLUMN n INT";
        let err = Plan::build(names(), spec, an(spec), orig.clone(), alt.clone(), rules(), false).unwrap_err();
        assert!(err.to_string().contains("--approve-renamed-columns"), "{err}");
        let p = Plan::build(names(), spec, an(spec), orig, alt, rules(), true).unwrap();
        assert_eq!(
            p.mapping,
            vec![ColumnMap { source: "id".into(), target: "id".into() }, ColumnMap { source: "a".into(), target: "b".into() }]
        );
        assert_eq!(p.added_columns, vec!["n"]);
        assert_eq!(p.dropped_columns, vec!["d"]);
        assert_eq!(p.not_checksummed, vec!["b"], "type changed int -> bigint");
        assert_eq!(p.key.index, "PRIMARY");
    }

    #[test]
    fn refuses_not_null_columns_without_default_and_unsafe_type_changes() {
        let orig = shape(vec![col("id", "int", false), col("ts", "timestamp", true)], vec![idx("PRIMARY", &["id"], true)]);
        let mut alt = orig.clone();
        alt.columns.push(col("n", "int", false));
        let err = Plan::build(names(), "ADD COLUMN n INT NOT NULL", an("FORCE"), orig.clone(), alt.clone(), rules(), false)
            .unwrap_err();
        assert!(err.to_string().contains("without a DEFAULT"), "{err}");
        alt.columns[2].has_default = true;
        assert!(Plan::build(names(), "x", an("FORCE"), orig.clone(), alt.clone(), rules(), false).is_ok());
        alt.columns[1].column_type = "datetime".into();
        let err = Plan::build(names(), "x", an("FORCE"), orig, alt, rules(), false).unwrap_err();
        assert!(err.to_string().contains("from timestamp to datetime: zone"), "{err}");
    }

    #[test]
    fn refuses_without_usable_key() {
        let orig = shape(vec![col("a", "int", true)], vec![idx("u", &["a"], true)]);
        let err = Plan::build(names(), "FORCE", an("FORCE"), orig.clone(), orig, rules(), false).unwrap_err();
        assert!(err.to_string().contains("no primary key"), "{err}");

        let orig = shape(vec![col("id", "int", false)], vec![idx("PRIMARY", &["id"], true)]);
        let alt = shape(vec![col("id", "int", false)], vec![]);
        let err = Plan::build(names(), "DROP PRIMARY KEY", an("DROP PRIMARY KEY"), orig, alt, rules(), false).unwrap_err();
        assert!(err.to_string().contains("keep one of them"), "{err}");

        let orig = shape(vec![col("f", "float", false)], vec![idx("PRIMARY", &["f"], true)]);
        let err = Plan::build(names(), "FORCE", an("FORCE"), orig.clone(), orig, rules(), false).unwrap_err();
        assert!(err.to_string().contains("can drive chunking"), "{err}");
    }

    #[test]
    fn falls_back_to_a_unique_not_null_key_and_finds_new_unique_keys() {
        let cols = vec![col("id", "int", false), col("email", "varchar(50)", false), col("x", "int", true)];
        let orig = shape(cols.clone(), vec![idx("PRIMARY", &["id"], true), idx("email", &["email"], true)]);
        let alt = shape(cols, vec![idx("email", &["email"], true), idx("PRIMARY", &["x", "id"], true), idx("ux", &["x"], true)]);
        let spec = "DROP PRIMARY KEY, ADD PRIMARY KEY (x, id), ADD UNIQUE ux (x)";
        let p = Plan::build(names(), spec, an(spec), orig, alt, rules(), false).unwrap();
        assert_eq!(p.key.index, "email");
        let new: Vec<_> = p.new_unique_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(new, vec!["ux"], "PRIMARY (x, id) contains the old unique id, so it is already enforced");
    }
}
