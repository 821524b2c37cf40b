//! The plan: preflight logic that needs no server. Given the table's shape before and after the
//! ALTER (the dialect reads both), choose the chunk key, map columns, find new unique keys.

use super::alter::AlterAnalysis;
use crate::error::{Error, Result};
use crate::model::{Column, TableShape};
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
    /// Why a chunk-key column, as the original has it (`from`) and as the altered table has it
    /// (`to`), cannot serve as the chunk key, if it cannot: `None` only when equality and order
    /// are provably the same on both sides (same type and collation, or a change the dialect
    /// knows to be harmless, such as widening an integer). The capture triggers match shadow rows
    /// by key and the copy deletes key ranges in the shadow, both compared under the shadow's
    /// definition: a changed collation or charset makes them hit other rows (or fail with an
    /// illegal mix of collations). [`unchanged_key_column`] is the strict default.
    pub key_change_refusal: fn(from: &Column, to: &Column) -> Option<String>,
}

/// The strict [`Rules::key_change_refusal`]: a key column is usable only when the ALTER leaves its
/// type and collation exactly as they are (type names compared case-insensitively).
pub fn unchanged_key_column(from: &Column, to: &Column) -> Option<String> {
    if !from.column_type.eq_ignore_ascii_case(&to.column_type) {
        return Some(format!("its type changes from {} to {}", from.column_type, to.column_type));
    }
    if from.collation != to.collation {
        let show = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".to_string());
        return Some(format!("its collation changes from {} to {}", show(&from.collation), show(&to.collation)));
    }
    None
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
    /// The ALTER spec as given (`analysis.spec`) and what it does (renames, clauses).
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
    /// The checkpoint of an unfinished run of this same ALTER, which this run resumes (the dry
    /// run shows it).
    pub checkpoint: Option<crate::checkpoint::Checkpoint>,
}

impl Plan {
    /// Columns of the original whose name does not survive the ALTER: renamed (their old
    /// names) or dropped. Objects that name them cannot be carried over as they are.
    pub fn renamed_or_dropped_columns(&self) -> Vec<String> {
        self.mapping
            .iter()
            .filter(|m| m.source != m.target)
            .map(|m| m.source.clone())
            .chain(self.dropped_columns.iter().cloned())
            .collect()
    }

    /// Build the plan. Errors are preflight refusals: renames without approval, renames of
    /// unknown columns, no usable key before or after the ALTER.
    pub fn build(
        names: Names,
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

        // Column mapping, in shadow order, by what the ALTER does: a renamed column is read from
        // its old name; a column the ALTER drops or renames away is no source for a new column
        // that takes its name (a plain ALTER fills that one with its default, as a new column);
        // any other column of the altered table is read from the original column of its name.
        let source_of = |target: &str| -> Option<String> { column_source(&analysis, eq, target) };
        let mut mapping = Vec::new();
        let mut added_columns = Vec::new();
        for col in altered.columns.iter().filter(|c| !c.generated) {
            match source_of(&col.name).and_then(|src| original.column(&src, eq)) {
                Some(s) => mapping.push(ColumnMap { source: s.name.clone(), target: col.name.clone() }),
                None => added_columns.push(col.name.clone()),
            }
        }
        for col in &altered.columns {
            let replaced = original.column(&col.name, eq).is_some() && source_of(&col.name).is_none();
            if replaced && !analysis.added_columns.iter().any(|a| eq(a, &col.name)) {
                return Err(Error::refused(format!(
                    "the ALTER drops or renames column {0} and the altered table has a column {0} again, but its spec has \
                     no ADD COLUMN {0}: write the new column as ADD COLUMN {0} … so shadowswap knows it is a new column",
                    col.name
                )));
            }
        }
        let dropped_columns: Vec<String> = original
            .columns
            .iter()
            .filter(|c| {
                !mapping.iter().any(|m| eq(&m.source, &c.name))
                    && !altered.columns.iter().any(|a| a.generated && source_of(&a.name).is_some_and(|s| eq(&s, &c.name)))
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
                // Enforced only by an original unique key whose columns keep their type and
                // collation: under another collation, values distinct in the original may collide.
                let unchanged = |oc: &str| {
                    let (Some(from), Some(to)) = (original.column(oc, eq), target_of(oc).and_then(|t| altered.column(&t, eq)))
                    else {
                        return false;
                    };
                    (rules.key_change_refusal)(from, to).is_none()
                };
                let enforced = sources.as_ref().is_some_and(|src| {
                    original.indexes.iter().any(|o| {
                        o.unique && !o.partial && o.columns.iter().all(|oc| src.iter().any(|s| eq(s, oc)) && unchanged(oc))
                    })
                });
                (!enforced).then(|| NewUniqueKey { name: i.name.clone(), source_columns: sources })
            })
            .collect();

        Ok(Plan {
            names,
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
            checkpoint: None,
        })
    }

    /// The plan of a run that changes no definition (the staged [backfill](crate::staged::backfill)):
    /// `shape` is both the original and the altered table, so the chunk key follows the same
    /// rules as an ALTER's (the primary key, else a unique key over NOT NULL columns), and `spec`
    /// is what the checkpoint records as the run's text. Errors: no usable key.
    pub fn unchanged(names: Names, spec: &str, shape: TableShape, rules: Rules) -> Result<Plan> {
        let analysis = AlterAnalysis { spec: spec.to_string(), ..AlterAnalysis::default() };
        Plan::build(names, analysis, shape.clone(), shape, rules, false)
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
        s += &format!("alter:          {}\n", self.analysis.spec);
        s += &format!("shadow table:   {}\n", n.shadow);
        s += &format!("old table:      {} (after the swap)\n", n.old);
        s += &format!(
            "chunk key:      {} ({})\n",
            self.key.index,
            self.key.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        );
        s += &format!("estimated rows: {}\n", self.estimated_rows());
        s += &format!("checkpoint:     {}\n", n.checkpoint);
        if let Some(c) = &self.checkpoint {
            s += &format!(
                "pending:        an unfinished run of this ALTER (started {}) stopped in {} with {} of about {} rows copied \
                 (low watermark {}); --execute resumes it, `shadowswap cleanup` gives it up\n",
                c.started_at,
                c.phase,
                c.rows_copied,
                c.rows_estimated,
                c.low_watermark.as_deref().unwrap_or("none")
            );
        }
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
            if self.dropped_columns.iter().any(|d| d == c) {
                s += &format!("  {c} (dropped and added again: default or computed value; the old values are not copied)\n");
            } else {
                s += &format!("  {c} (added: default or computed value)\n");
            }
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

/// The original column that `target` (a column of the altered table) is copied from, or `None`
/// when it is a new column: the old name of a renamed column; nothing for a name the ALTER drops
/// (`DROP COLUMN c, ADD COLUMN c …`) or renames away (`RENAME COLUMN c TO x, ADD COLUMN c …`);
/// otherwise the same name. Whether the original has that column is the caller's check.
pub fn column_source(analysis: &AlterAnalysis, eq: fn(&str, &str) -> bool, target: &str) -> Option<String> {
    if let Some((old, _)) = analysis.renamed_columns.iter().find(|(_, new)| eq(new, target)) {
        return Some(old.clone());
    }
    let dropped = analysis.dropped_columns.iter().any(|d| eq(d, target));
    let renamed_away = analysis.renamed_columns.iter().any(|(old, _)| eq(old, target));
    (!dropped && !renamed_away).then(|| target.to_string())
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
    let mut changed = Vec::new();
    // Two passes: first a key the altered table has as the same unique key; then a key whose
    // columns the ALTER leaves unchanged and that leads some index of the altered table (e.g.
    // `DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)`): unique in the original, so unique in the
    // shadow too, which only ever holds the original's rows (copied or captured, each replacing
    // the row with the same key), and the index serves the triggers' lookups by key and the
    // copy's range deletes.
    for prefix_pass in [false, true] {
        for idx in &before {
            let cols: Vec<Column> = idx.columns.iter().filter_map(|c| original.column(c, eq).cloned()).collect();
            if let Some(bad) = cols.iter().find(|c| !(rules.key_column_ok)(c)) {
                if !prefix_pass {
                    unsupported.push(format!("{} ({} is {})", idx.name, bad.name, bad.column_type));
                }
                continue;
            }
            let Some(targets) = idx.columns.iter().map(|c| target_of(c)).collect::<Option<Vec<String>>>() else {
                continue;
            };
            let change = cols.iter().zip(&targets).find_map(|(c, t)| {
                let to = altered.column(t, eq)?;
                (rules.key_change_refusal)(c, to).map(|why| (c.name.clone(), why))
            });
            if let Some((col, why)) = change {
                if !prefix_pass {
                    changed.push((idx.name.clone(), col, why));
                }
                continue;
            }
            // (Conservatively, the key columns must stay NOT NULL in the altered table too.)
            let not_null = targets.iter().all(|t| altered.column(t, eq).is_some_and(|c| !c.nullable));
            let usable = if prefix_pass {
                not_null
                    && altered.indexes.iter().any(|i| {
                        !i.partial && i.columns.len() >= targets.len() && i.columns.iter().zip(&targets).all(|(a, b)| eq(a, b))
                    })
            } else {
                after.iter().any(|i| i.columns.len() == targets.len() && i.columns.iter().zip(&targets).all(|(a, b)| eq(a, b)))
            };
            if usable {
                return Ok(ChunkKey { index: idx.name.clone(), columns: cols, shadow_columns: targets });
            }
        }
    }
    let list = before.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
    if let Some((index, col, why)) = changed.first() {
        return Err(Error::refused(format!(
            "the ALTER changes column {col} of key {index} of {} ({why}), so the capture triggers and the copy could not \
             match rows by that key safely, and no other unique NOT NULL key is left unchanged; change the key column with \
             a plain ALTER TABLE, or first add a unique NOT NULL key over columns this ALTER leaves unchanged",
            names.table
        )));
    }
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
    use crate::model::{Index, TableRef};
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
            key_change_refusal: unchanged_key_column,
        }
    }
    fn names() -> Names {
        Names::new(&TableRef::new("db", "t"), 64, char_len)
    }
    fn shape(cols: Vec<Column>, idx: Vec<Index>) -> TableShape {
        TableShape { columns: cols, indexes: idx, estimated_rows: 10 }
    }
    fn an(spec: &str) -> AlterAnalysis {
        crate::preflight::alter::analyze(spec, &sqlparser::dialect::MySqlDialect {}).unwrap()
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
        let err = Plan::build(names(), an(spec), orig.clone(), alt.clone(), rules(), false).unwrap_err();
        assert!(err.to_string().contains("--approve-renamed-columns"), "{err}");
        let p = Plan::build(names(), an(spec), orig, alt, rules(), true).unwrap();
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
        let err = Plan::build(names(), an("FORCE"), orig.clone(), alt.clone(), rules(), false).unwrap_err();
        assert!(err.to_string().contains("without a DEFAULT"), "{err}");
        alt.columns[2].has_default = true;
        assert!(Plan::build(names(), an("FORCE"), orig.clone(), alt.clone(), rules(), false).is_ok());
        alt.columns[1].column_type = "datetime".into();
        let err = Plan::build(names(), an("FORCE"), orig, alt, rules(), false).unwrap_err();
        assert!(err.to_string().contains("from timestamp to datetime: zone"), "{err}");
    }

    #[test]
    fn refuses_without_usable_key() {
        let orig = shape(vec![col("a", "int", true)], vec![idx("u", &["a"], true)]);
        let err = Plan::build(names(), an("FORCE"), orig.clone(), orig, rules(), false).unwrap_err();
        assert!(err.to_string().contains("no primary key"), "{err}");

        let orig = shape(vec![col("id", "int", false)], vec![idx("PRIMARY", &["id"], true)]);
        let alt = shape(vec![col("id", "int", false)], vec![]);
        let err = Plan::build(names(), an("DROP PRIMARY KEY"), orig, alt, rules(), false).unwrap_err();
        assert!(err.to_string().contains("keep one of them"), "{err}");

        let orig = shape(vec![col("f", "float", false)], vec![idx("PRIMARY", &["f"], true)]);
        let err = Plan::build(names(), an("FORCE"), orig.clone(), orig, rules(), false).unwrap_err();
        assert!(err.to_string().contains("can drive chunking"), "{err}");
    }

    #[test]
    fn falls_back_to_a_unique_not_null_key_and_finds_new_unique_keys() {
        let cols = vec![col("id", "int", false), col("email", "varchar(50)", false), col("x", "int", true)];
        let orig = shape(cols.clone(), vec![idx("PRIMARY", &["id"], true), idx("email", &["email"], true)]);
        let alt = shape(cols, vec![idx("email", &["email"], true), idx("PRIMARY", &["x", "id"], true), idx("ux", &["x"], true)]);
        let spec = "DROP PRIMARY KEY, ADD PRIMARY KEY (x, id), ADD UNIQUE ux (x)";
        let p = Plan::build(names(), an(spec), orig, alt, rules(), false).unwrap();
        assert_eq!(p.key.index, "email");
        let new: Vec<_> = p.new_unique_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(new, vec!["ux"], "PRIMARY (x, id) contains the old unique id, so it is already enforced");
    }

    fn nullable(names: &[&str]) -> Vec<Column> {
        let mut cols = vec![col("id", "int", false)];
        cols.extend(names.iter().map(|n| col(n, "int", true)));
        cols
    }

    #[test]
    fn a_column_dropped_and_added_again_is_new_not_copied() {
        let pk = || vec![idx("PRIMARY", &["id"], true)];
        for (spec, orig, alt, approve) in [
            ("DROP COLUMN c, ADD COLUMN c INT DEFAULT 7", vec!["c", "k"], vec!["k", "c"], false),
            ("DROP c, ADD c INT DEFAULT 7", vec!["c", "k"], vec!["k", "c"], false),
            ("DROP COLUMN IF EXISTS C, ADD COLUMN c INT DEFAULT 7", vec!["c", "k"], vec!["k", "c"], false),
            ("RENAME COLUMN c TO x, ADD COLUMN c INT DEFAULT 7", vec!["c", "k"], vec!["x", "k", "c"], true),
            ("CHANGE c x INT, ADD c INT DEFAULT 7", vec!["c", "k"], vec!["x", "k", "c"], true),
            ("CHANGE COLUMN C x INT, ADD COLUMN (c INT DEFAULT 7)", vec!["c", "k"], vec!["x", "k", "c"], true),
        ] {
            let p = Plan::build(names(), an(spec), shape(nullable(&orig), pk()), shape(nullable(&alt), pk()), rules(), approve)
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert!(!p.mapping.iter().any(|m| m.target == "c"), "{spec}: c is not copied: {:?}", p.mapping);
            assert!(p.mapping.contains(&ColumnMap { source: "k".into(), target: "k".into() }), "{spec}");
            assert_eq!(p.added_columns, vec!["c"], "{spec}");
            if alt.contains(&"x") {
                assert!(p.mapping.contains(&ColumnMap { source: "c".into(), target: "x".into() }), "{spec}");
                assert!(p.dropped_columns.is_empty(), "{spec}");
            } else {
                assert_eq!(p.dropped_columns, vec!["c"], "{spec}");
                assert!(p.render().contains("c (dropped and added again"), "{spec}: {}", p.render());
                assert!(p.render().contains("c (dropped)"), "{spec}");
            }
        }
        // MODIFY / CHANGE to the same name keep the data.
        for spec in ["MODIFY c BIGINT", "CHANGE c c BIGINT", "CHANGE COLUMN c c BIGINT, ADD COLUMN n INT"] {
            let mut alt = nullable(&["c", "k"]);
            alt[1].column_type = "bigint".into();
            if spec.contains("ADD") {
                alt.push(col("n", "int", true));
            }
            let p = Plan::build(names(), an(spec), shape(nullable(&["c", "k"]), pk()), shape(alt, pk()), rules(), false).unwrap();
            assert!(p.mapping.contains(&ColumnMap { source: "c".into(), target: "c".into() }), "{spec}");
        }
        // Renames that swap two names still copy each from the other.
        let spec = "CHANGE a b INT, CHANGE b a INT";
        let p =
            Plan::build(names(), an(spec), shape(nullable(&["a", "b"]), pk()), shape(nullable(&["a", "b"]), pk()), rules(), true)
                .unwrap();
        assert!(p.mapping.contains(&ColumnMap { source: "b".into(), target: "a".into() }));
        assert!(p.mapping.contains(&ColumnMap { source: "a".into(), target: "b".into() }));
        // A dropped name that comes back without an ADD the analysis can see: refused, not guessed.
        let spec = "DROP COLUMN c";
        let err = Plan::build(names(), an(spec), shape(nullable(&["c"]), pk()), shape(nullable(&["c"]), pk()), rules(), false)
            .unwrap_err();
        assert!(err.to_string().contains("ADD COLUMN c"), "{err}");
        // Dropping and re-adding the chunk key leaves no shared key.
        let spec = "DROP COLUMN id, ADD COLUMN id INT NOT NULL DEFAULT 0 PRIMARY KEY";
        let mut alt = nullable(&["c"]);
        alt[0].has_default = true;
        let err = Plan::build(names(), an(spec), shape(nullable(&["c"]), pk()), shape(alt, pk()), rules(), false).unwrap_err();
        assert!(err.to_string().contains("keep one of them"), "{err}");
    }

    #[test]
    fn a_key_whose_collation_or_type_changes_is_not_a_chunk_key() {
        let mut name = col("name", "varchar(20)", false);
        name.collation = Some("latin1_swedish_ci".into());
        let orig = shape(vec![name.clone(), col("n", "int", false)], vec![idx("PRIMARY", &["name"], true)]);
        let mut alt = orig.clone();
        alt.columns[0].collation = Some("utf8mb4_unicode_ci".into());
        let spec = "CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci";
        let err = Plan::build(names(), an(spec), orig.clone(), alt.clone(), rules(), false).unwrap_err().to_string();
        assert!(err.contains("column name of key PRIMARY"), "{err}");
        assert!(err.contains("latin1_swedish_ci to utf8mb4_unicode_ci"), "{err}");
        assert!(err.contains("plain ALTER TABLE"), "{err}");

        // Another unique key the ALTER leaves unchanged drives the run instead.
        let mut orig2 = orig.clone();
        orig2.indexes.push(idx("un", &["n"], true));
        let mut alt2 = alt.clone();
        alt2.indexes.push(idx("un", &["n"], true));
        let p = Plan::build(names(), an(spec), orig2, alt2, rules(), false).unwrap();
        assert_eq!(p.key.index, "un");

        // A type change.
        let orig = shape(vec![col("id", "int", false)], vec![idx("PRIMARY", &["id"], true)]);
        let alt = shape(vec![col("id", "varchar(10)", false)], vec![idx("PRIMARY", &["id"], true)]);
        let err = Plan::build(names(), an("FORCE"), orig, alt, rules(), false).unwrap_err().to_string();
        assert!(err.contains("type changes from int to varchar(10)"), "{err}");
    }

    #[test]
    fn a_unique_key_that_leads_an_index_of_the_altered_table_is_a_chunk_key() {
        let cols = vec![col("id", "int", false), col("i", "int", false)];
        let orig = shape(cols.clone(), vec![idx("PRIMARY", &["id"], true)]);
        let spec = "DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)";
        let alt = shape(cols.clone(), vec![idx("PRIMARY", &["id", "i"], true)]);
        let p = Plan::build(names(), an(spec), orig.clone(), alt, rules(), false).unwrap();
        assert_eq!(p.key.index, "PRIMARY");
        assert_eq!(p.key.shadow_columns, vec!["id"]);
        assert!(p.new_unique_keys.is_empty(), "(id, i) is enforced by the unique id");
        // Not a prefix: no index serves lookups by id in the shadow.
        let alt = shape(cols, vec![idx("PRIMARY", &["i", "id"], true)]);
        let err = Plan::build(names(), an(spec), orig, alt, rules(), false).unwrap_err();
        assert!(err.to_string().contains("keep one of them"), "{err}");
    }
}
