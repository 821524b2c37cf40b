//! Pure SQL builders for PostgreSQL. Nothing here talks to a server; every identifier goes
//! through [`Ident`] / [`Qualified`].

use std::fmt;

use shadowswap_engine::model::{Column, TableRef};
use shadowswap_engine::plan::Plan;

/// A double-quoted identifier; quotes inside the name are doubled.
#[derive(Debug, Clone, Copy)]
pub struct Ident<'a>(pub &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.replace('"', "\"\""))
    }
}

/// A quoted "schema"."table".
#[derive(Debug, Clone, Copy)]
pub struct Qualified<'a>(pub &'a TableRef);

impl fmt::Display for Qualified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", Ident(&self.0.schema), Ident(&self.0.name))
    }
}

/// A string literal (standard_conforming_strings is on since PostgreSQL 9.1).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// "a", "b" with an optional prefix per name (e.g. `NEW.`).
pub fn column_list<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|n| format!("{prefix}{}", Ident(n))).collect::<Vec<_>>().join(", ")
}

/// The names an ALTER spec refers to an existing index or constraint by: what follows
/// `CONSTRAINT` (after an optional `IF EXISTS`; for `ADD CONSTRAINT` that is the new name),
/// `USING INDEX` and `CLUSTER ON`, as PostgreSQL reads them (unquoted names fold to lower case).
/// The shadow table's indexes cannot carry the original's names (index names are unique per
/// schema), so such references would not find their object there.
pub fn referenced_index_or_constraint_names(spec: &str) -> Vec<String> {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, spec).tokenize() else { return Vec::new() };
    let tokens: Vec<Token> = tokens.into_iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let kw = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    let mut names = Vec::new();
    for i in 0..tokens.len() {
        let mut at = match (kw(i), kw(i + 1)) {
            (Some(Keyword::CONSTRAINT), _) => i + 1,
            (Some(Keyword::USING), Some(Keyword::INDEX)) | (Some(Keyword::CLUSTER), Some(Keyword::ON)) => i + 2,
            _ => continue,
        };
        if kw(at) == Some(Keyword::IF) && kw(at + 1) == Some(Keyword::EXISTS) {
            at += 2;
        }
        if let Some(Token::Word(w)) = tokens.get(at) {
            names.push(if w.quote_style.is_some() { w.value.clone() } else { w.value.to_lowercase() });
        }
    }
    names
}

/// An index definition (`pg_get_indexdef` after `USING`) as a comparison key, with the column
/// names `renamed` (new name, old name) read as their old names. Only ever compared, never run.
pub fn index_def_key(def: &str, renamed: &[(&str, &str)]) -> String {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, def).tokenize() else { return def.to_string() };
    tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) => match renamed.iter().find(|(new, _)| *new == w.value) {
                Some((_, old)) => Ident(old).to_string(),
                None => Ident(&w.value).to_string(),
            },
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a column type can be part of a chunk key: it needs a default btree ordering (used by
/// both `ORDER BY` and row comparisons) and an exact text round trip (key values travel as text).
pub fn key_column_ok(c: &Column) -> bool {
    let t = c.column_type.to_ascii_lowercase();
    const NO: [&str; 13] =
        ["json", "jsonb", "xml", "money", "point", "line", "lseg", "box", "path", "polygon", "circle", "tsvector", "tsquery"];
    !NO.iter().any(|n| t == *n || t.starts_with(&format!("{n}(")))
}

/// Whether one ALTER clause is of a kind PostgreSQL can apply without scanning the table:
/// adding or dropping columns and constraints marked `NOT VALID`, defaults, `DROP NOT NULL`,
/// statistics and storage settings, renames, and type changes (whether those rewrite is left to
/// the server's answer on a scratch copy). `SET NOT NULL`, validated CHECK/UNIQUE/PRIMARY
/// KEY/FOREIGN KEY constraints and anything else scan or build something: not metadata-only.
pub fn metadata_only_clause(clause: &str) -> bool {
    let words: Vec<String> = clause.split_whitespace().map(str::to_ascii_uppercase).collect();
    let has = |w: &str| words.iter().any(|x| x == w);
    let not_valid = words.windows(2).any(|p| p[0] == "NOT" && p[1] == "VALID");
    match words.first().map(String::as_str) {
        Some("ADD") if words.get(1).map(String::as_str) == Some("CONSTRAINT") => not_valid && !has("UNIQUE") && !has("PRIMARY"),
        Some("ADD") => !["CHECK", "UNIQUE", "PRIMARY", "REFERENCES", "CONSTRAINT"].iter().any(|w| has(w)),
        Some("DROP") | Some("RENAME") => true,
        Some("ALTER") => !(has("ADD") || has("SET") && has("NOT") && has("NULL")),
        _ => false,
    }
}

/// Whether an ALTER clause changes a column's type with a `USING` conversion expression
/// (`ALTER [COLUMN] c [SET DATA] TYPE t USING expr`).
pub fn type_change_with_using(clause: &str) -> bool {
    let words: Vec<String> = clause.split_whitespace().map(str::to_ascii_uppercase).collect();
    words.first().map(String::as_str) == Some("ALTER") && words.iter().any(|w| w == "TYPE") && words.iter().any(|w| w == "USING")
}

/// Refuses type changes whose result depends on the session `TimeZone`: to or from
/// `timestamp with time zone` / `time with time zone`. shadowswap's sessions use UTC, the
/// application's sessions that fire the capture triggers use theirs.
pub fn type_change_refusal(from: &Column, to: &Column) -> Option<String> {
    let tz = |c: &Column| c.column_type.contains("with time zone");
    (tz(from) != tz(to)).then(|| {
        "converting to or from a \"with time zone\" type depends on the session TimeZone, which differs between \
         shadowswap's copy (UTC) and the application's sessions; add a new column and fill it yourself"
            .to_string()
    })
}

/// `ROW("a", "b") > ROW($1::int, $2::text)`: PostgreSQL compares rows lexicographically with each
/// column's btree ordering and uses a multicolumn index for it. `first` is the first parameter
/// number; key values are bound as text and cast to the column's type.
pub fn row_compare(cols: &[&str], types: &[Column], op: &str, first: usize) -> String {
    let lhs = column_list("", cols.iter().copied());
    let rhs =
        types.iter().enumerate().map(|(i, c)| format!("${}::text::{}", first + i, c.column_type)).collect::<Vec<_>>().join(", ");
    format!("ROW({lhs}) {op} ROW({rhs})")
}

/// The WHERE clause of a chunk `(after, upto]`; parameters are the after-key's values (when
/// present) then the upto-key's.
pub fn range_where(cols: &[&str], types: &[Column], has_after: bool) -> String {
    open_range_where(cols, types, has_after, true)
}

/// [`range_where`] where either end may be open: `TRUE` when both are.
pub fn open_range_where(cols: &[&str], types: &[Column], has_after: bool, has_upto: bool) -> String {
    let mut preds = Vec::new();
    if has_after {
        preds.push(row_compare(cols, types, ">", 1));
    }
    if has_upto {
        preds.push(row_compare(cols, types, "<=", if has_after { cols.len() + 1 } else { 1 }));
    }
    if preds.is_empty() {
        preds.push("TRUE".to_string());
    }
    preds.join(" AND ")
}

/// Key column names in the original and in the shadow.
pub fn key_names(plan: &Plan) -> (Vec<&str>, Vec<&str>) {
    (plan.key.columns.iter().map(|c| c.name.as_str()).collect(), plan.key.shadow_columns.iter().map(String::as_str).collect())
}

/// First or last key in key order, as text.
pub fn key_edge(plan: &Plan, last: bool) -> String {
    let (cols, _) = key_names(plan);
    let dir = if last { " DESC" } else { "" };
    let order = cols.iter().map(|c| format!("{}{dir}", Ident(c))).collect::<Vec<_>>().join(", ");
    format!("SELECT {} FROM {} ORDER BY {order} LIMIT 1", as_text(&cols), Qualified(&plan.names.table))
}

/// The key columns as text, aliased: PostgreSQL resolves a bare name in ORDER BY to an output
/// column first, so `SELECT id::text … ORDER BY id` would sort the *text* ('9999' > '20003').
fn as_text(cols: &[&str]) -> String {
    cols.iter().enumerate().map(|(i, c)| format!("{}::text AS _ssw_k{i}", Ident(c))).collect::<Vec<_>>().join(", ")
}

/// The key `rows` rows into the range, as text.
pub fn chunk_end(plan: &Plan, where_: &str, rows: u64) -> String {
    let (cols, _) = key_names(plan);
    format!(
        "SELECT {} FROM {} WHERE {where_} ORDER BY {} LIMIT 1 OFFSET {}",
        as_text(&cols),
        Qualified(&plan.names.table),
        column_list("", cols.iter().copied()),
        rows.saturating_sub(1)
    )
}

/// `ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, …` — an upsert whose conflict target is the
/// chunk key only, so a row that collides on any *other* unique key (one the ALTER adds) raises
/// `unique_violation` instead of being skipped.
///
/// `always_identity` are the shadow's `GENERATED ALWAYS AS IDENTITY` columns: PostgreSQL refuses
/// any UPDATE of them to a value other than DEFAULT, ON CONFLICT's included, so they are left out
/// of the SET list. The conflicting row already holds the same value (the copy reads the row's
/// latest version, which its capture wrote), and the update trigger re-inserts a row whose value
/// changed instead of upserting it (see [`capture`]).
fn upsert_on_key(plan: &Plan, always_identity: &[String]) -> String {
    let key = column_list("", plan.key.shadow_columns.iter().map(String::as_str));
    let set: Vec<String> = plan
        .mapping
        .iter()
        .filter(|m| !plan.key.shadow_columns.iter().any(|k| k == &m.target))
        .filter(|m| !always_identity.contains(&m.target))
        .map(|m| format!("{0} = EXCLUDED.{0}", Ident(&m.target)))
        .collect();
    if set.is_empty() {
        format!("ON CONFLICT ({key}) DO NOTHING")
    } else {
        format!("ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
    }
}

/// The server-side copy of one chunk.
///
/// Under MVCC a plain `INSERT … SELECT` reads a snapshot that can be older than a change the
/// capture already replayed. `FOR SHARE` makes the read wait for any writer holding a row of
/// the chunk and return that row's latest committed version (READ COMMITTED re-checks the
/// updated row against the WHERE clause), and it keeps the rows from changing until the chunk
/// commits; a change after that runs its capture trigger after the chunk and overwrites it.
/// Rows inserted meanwhile are not seen and reach the shadow through the capture. So a deleted
/// row never reappears and an old version never overwrites a newer one. The upsert on the key
/// makes the copy agree with rows the capture wrote ahead of it. `always_identity`: see
/// [`upsert_on_key`].
pub fn copy_chunk(plan: &Plan, where_: &str, always_identity: &[String]) -> String {
    format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} WHERE {where_} FOR SHARE {}",
        Qualified(&plan.names.shadow),
        column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
        column_list("", plan.mapping.iter().map(|m| m.source.as_str())),
        Qualified(&plan.names.table),
        upsert_on_key(plan, always_identity)
    )
}

/// Row count and XOR of a 64-bit MD5 prefix of each row's text form (`ROW(…)::text` writes NULL
/// as an empty field, so `(NULL,'a')` and `('a',NULL)` differ).
/// With no comparable column (every type changed) only the row count is compared.
pub fn checksum(table: &TableRef, cols: &[&str], where_: &str) -> String {
    let values = if cols.is_empty() { "1".to_string() } else { column_list("", cols.iter().copied()) };
    format!(
        "SELECT count(*)::bigint, coalesce(bit_xor(('x' || substr(md5(ROW({values}, 0)::text), 1, 16))::bit(64)::bigint), 0)::bigint \
         FROM {} WHERE {where_}",
        Qualified(table)
    )
}

fn key_match(plan: &Plan, row: &str) -> String {
    plan.key
        .shadow_columns
        .iter()
        .zip(&plan.key.columns)
        .map(|(t, s)| format!("{} = {row}.{}", Ident(t), Ident(&s.name)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A capture trigger function name, schema-qualified.
pub fn function_name(table: &TableRef, name: &str) -> String {
    format!("{}.{}", Ident(&table.schema), Ident(name))
}

/// The three capture trigger functions and their triggers: `[(function, trigger); 3]` for
/// insert, update, delete.
///
/// The functions are `SECURITY DEFINER` (the application's role need not have any privilege on
/// the shadow table) with a fixed `search_path`, as PostgreSQL's documentation advises for such
/// functions ("Writing SECURITY DEFINER Functions Safely"). An insert or update upserts the new
/// row on the chunk key; an update that changes the key (or a column of `always_identity`, the
/// shadow's `GENERATED ALWAYS AS IDENTITY` columns, which an upsert cannot set) first deletes the
/// old key's row; a delete deletes by key. They run in the writer's transaction, after its row
/// change.
///
/// Deleting by the old key under REPEATABLE READ or SERIALIZABLE: there the trigger's statements
/// run with the writer's transaction snapshot, in which a row that a chunk copied after that
/// snapshot was taken does not exist, so the DELETE would miss it and leave a deleted (or
/// moved-away) row in the shadow. When the DELETE finds nothing at those levels, an insert of
/// the old row with `ON CONFLICT (key) DO NOTHING` tells "not copied yet" from "copied, but
/// invisible to this snapshot": PostgreSQL raises `serialization_failure` for a conflicting row
/// the snapshot cannot see (the writer's transaction rolls back, as it would for any concurrent
/// update at those levels); otherwise the probe row is inserted and deleted again. A copied row
/// holds exactly the old row's values (a change to the row after the chunk would have failed the
/// same way first), so a constraint error from the probe means there was no such row.
pub fn capture(plan: &Plan, always_identity: &[String]) -> [(String, String); 3] {
    let n = &plan.names;
    let s = Qualified(&n.shadow);
    let upsert = format!(
        "INSERT INTO {s} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) {}",
        column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
        column_list("NEW.", plan.mapping.iter().map(|m| m.source.as_str())),
        upsert_on_key(plan, always_identity)
    );
    let identity_sources = plan
        .mapping
        .iter()
        .filter(|m| always_identity.contains(&m.target) && !plan.key.shadow_columns.contains(&m.target))
        .map(|m| m.source.as_str());
    let key_changed = plan
        .key
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .chain(identity_sources)
        .map(|c| format!("NEW.{0} IS DISTINCT FROM OLD.{0}", Ident(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let function = |name: &str, body: String| {
        format!(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $shadowswap$\nBEGIN\n{body}  RETURN NULL;\nEND\n$shadowswap$",
            function_name(&n.table, name)
        )
    };
    let trigger = |name: &str, event: &str| {
        format!(
            "CREATE TRIGGER {} AFTER {event} ON {} FOR EACH ROW EXECUTE FUNCTION {}()",
            Ident(name),
            Qualified(&n.table),
            function_name(&n.table, name)
        )
    };
    let old_key = key_match(plan, "OLD");
    let delete_old = |indent: &str| {
        format!(
            "{indent}DELETE FROM {s} WHERE {old_key};\n\
             {indent}IF NOT FOUND AND current_setting('transaction_isolation') IN ('repeatable read', 'serializable') THEN\n\
             {indent}  BEGIN\n\
             {indent}    INSERT INTO {s} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) ON CONFLICT ({}) DO NOTHING;\n\
             {indent}    DELETE FROM {s} WHERE {old_key};\n\
             {indent}  EXCEPTION WHEN integrity_constraint_violation OR data_exception THEN NULL;\n\
             {indent}  END;\n\
             {indent}END IF;\n",
            column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
            column_list("OLD.", plan.mapping.iter().map(|m| m.source.as_str())),
            column_list("", plan.key.shadow_columns.iter().map(String::as_str)),
        )
    };
    [
        (function(&n.trigger_insert, format!("  {upsert};\n")), trigger(&n.trigger_insert, "INSERT")),
        (
            function(&n.trigger_update, format!("  IF {key_changed} THEN\n{}  END IF;\n  {upsert};\n", delete_old("    "))),
            trigger(&n.trigger_update, "UPDATE"),
        ),
        (function(&n.trigger_delete, delete_old("  ")), trigger(&n.trigger_delete, "DELETE")),
    ]
}

/// Drop one capture trigger and its function (idempotent).
pub fn drop_capture(on: &TableRef, name: &str) -> [String; 2] {
    [
        format!("DROP TRIGGER IF EXISTS {} ON {}", Ident(name), Qualified(on)),
        format!("DROP FUNCTION IF EXISTS {}()", function_name(on, name)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, ty)
    }

    #[test]
    fn quoting() {
        assert_eq!(Ident("a\"b").to_string(), "\"a\"\"b\"");
        assert_eq!(Qualified(&TableRef::new("public", "T")).to_string(), "\"public\".\"T\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn row_comparisons_cast_text_parameters() {
        let types = [col("a", "integer"), col("b", "character varying(10)")];
        assert_eq!(
            range_where(&["a", "b"], &types, true),
            "ROW(\"a\", \"b\") > ROW($1::text::integer, $2::text::character varying(10)) AND ROW(\"a\", \"b\") <= ROW($3::text::integer, $4::text::character varying(10))"
        );
        assert_eq!(range_where(&["a"], &types[..1], false), "ROW(\"a\") <= ROW($1::text::integer)");
    }

    #[test]
    fn key_text_outputs_never_shadow_the_order_by_columns() {
        let q = chunk_end_sql_for_test();
        assert!(q.contains("\"id\"::text AS _ssw_k0"), "{q}");
        assert!(q.contains("ORDER BY \"id\""), "{q}");
    }

    fn chunk_end_sql_for_test() -> String {
        format!("SELECT {} FROM t WHERE TRUE ORDER BY {} LIMIT 1", as_text(&["id"]), column_list("", ["id"]))
    }

    #[test]
    fn type_changes_with_using_are_found() {
        assert!(type_change_with_using("ALTER COLUMN amount TYPE bigint USING ( amount * 100 ) :: bigint"));
        assert!(!type_change_with_using("ALTER COLUMN amount TYPE bigint"));
        assert!(!type_change_with_using("ADD COLUMN note text DEFAULT 'USING TYPE'"));
    }

    #[test]
    fn metadata_only_clauses() {
        for c in ["ADD COLUMN c int DEFAULT 7", "DROP COLUMN d", "ALTER COLUMN c SET DEFAULT 5", "ALTER COLUMN c DROP NOT NULL",
                  "ALTER COLUMN v TYPE varchar ( 100 )", "ADD CONSTRAINT ck CHECK ( c > 0 ) NOT VALID", "RENAME COLUMN a TO b"] {
            assert!(metadata_only_clause(c), "{c}");
        }
        for c in ["ALTER COLUMN c SET NOT NULL", "ADD CONSTRAINT ck CHECK ( c > 0 )", "ADD COLUMN c int UNIQUE",
                  "ADD PRIMARY KEY ( id )", "ADD COLUMN p int REFERENCES x ( id )", "SET TABLESPACE t", "VALIDATE CONSTRAINT ck"] {
            assert!(!metadata_only_clause(c), "{c}");
        }
    }

    #[test]
    fn generated_always_identity_columns_are_never_upserted() {
        use shadowswap_engine::names::{byte_len, Names};
        use shadowswap_engine::plan::Rules;
        let shape = shadowswap_engine::model::TableShape {
            columns: vec![col("id", "integer"), col("code", "integer"), col("v", "text")],
            indexes: vec![shadowswap_engine::model::Index {
                name: "t_pkey".into(),
                columns: vec!["id".into()],
                unique: true,
                primary: true,
                partial: false,
            }],
            estimated_rows: 0,
        };
        let rules = Rules { eq: |a, b| a == b, key_column_ok, type_change_refusal };
        let names = Names::new(&TableRef::new("public", "t"), 63, byte_len);
        let analysis = shadowswap_engine::alter::analyze("ADD COLUMN x int", &sqlparser::dialect::PostgreSqlDialect {}).unwrap();
        let plan = Plan::build(names, "ADD COLUMN x int", analysis, shape.clone(), shape, rules, false).unwrap();
        let always = ["code".to_string()];
        let copy = copy_chunk(&plan, "TRUE", &always);
        assert!(copy.ends_with("ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\""), "{copy}");
        let [_, (upd, _), _] = capture(&plan, &always);
        assert!(
            upd.contains("IF NEW.\"id\" IS DISTINCT FROM OLD.\"id\" OR NEW.\"code\" IS DISTINCT FROM OLD.\"code\" THEN"),
            "{upd}"
        );
        assert!(!upd.contains("\"code\" = EXCLUDED"), "{upd}");
        assert!(copy_chunk(&plan, "TRUE", &[]).contains("\"code\" = EXCLUDED.\"code\""));
    }

    #[test]
    fn index_and_constraint_references() {
        assert_eq!(
            referenced_index_or_constraint_names(
                "DROP CONSTRAINT T_pkey, drop constraint if exists \"Mixed\", ADD CONSTRAINT u UNIQUE (a), \
                 REPLICA IDENTITY USING INDEX t_a_key, CLUSTER ON t_b_idx, ADD COLUMN constraint_x int"
            ),
            ["t_pkey", "Mixed", "u", "t_a_key", "t_b_idx"]
        );
        assert!(referenced_index_or_constraint_names("ADD COLUMN c int NOT NULL DEFAULT 0").is_empty());
        // Column constraints name what they create; a CHECK named like an existing one is fine too.
        assert_eq!(referenced_index_or_constraint_names("ADD COLUMN c int CONSTRAINT c_pos CHECK (c > 0)"), ["c_pos"]);
    }

    #[test]
    fn index_definitions_compare_across_column_renames() {
        let renamed = [("tid", "id"), ("New Name", "n")];
        assert_eq!(index_def_key("btree (tid)", &renamed), index_def_key("btree (id)", &[]));
        assert_eq!(
            index_def_key("u btree (lower(\"New Name\")) INCLUDE (x) WHERE (tid > 0)", &renamed),
            index_def_key("u btree (lower(n)) INCLUDE (x) WHERE (id > 0)", &[])
        );
        assert_ne!(index_def_key("btree (tid)", &[]), index_def_key("btree (id)", &[]));
        assert_ne!(index_def_key("u btree (id)", &[]), index_def_key("btree (id)", &[]));
    }

    #[test]
    fn key_types() {
        assert!(key_column_ok(&col("a", "bigint")));
        assert!(key_column_ok(&col("a", "uuid")));
        assert!(!key_column_ok(&col("a", "jsonb")));
        assert!(!key_column_ok(&col("a", "point")));
    }
}
