//! Pure SQL builders for PostgreSQL. Nothing here talks to a server; every identifier goes
//! through [`Ident`] / [`Qualified`].

use std::fmt;

use shadowswap_engine::model::{Column, TableRef};
use shadowswap_engine::names::{byte_len, Names};
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

/// A string literal that reads the same under every server setting: an escape string
/// (`E'…'`) with backslashes doubled and single quotes doubled. A plain `'…'` literal with only
/// its quotes doubled is code, not data, when a session runs with
/// `standard_conforming_strings = off` (a database owner can set that): a backslash before a
/// quote ends the string. `E'…'` strings do not depend on that setting, and `''` (unlike `\'`)
/// is accepted whatever `backslash_quote` says (PostgreSQL docs, "String Constants with C-Style
/// Escapes"). Text values cannot contain NUL; every other character, multi-byte included, stands
/// for itself.
pub fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `ALTER TABLE "s"."t" RENAME CONSTRAINT "old" TO "new"`: renames the constraint and, for a
/// primary, unique or exclusion key, its index too (PostgreSQL docs, ALTER TABLE).
pub fn rename_constraint(table: &TableRef, old: &str, new: &str) -> String {
    format!("ALTER TABLE {} RENAME CONSTRAINT {} TO {}", Qualified(table), Ident(old), Ident(new))
}

/// The constraints of the table `$1` (a qualified name) that PostgreSQL may have named itself,
/// in creation order: `(name, contype, columns)`, the columns in the constraint's order (an
/// index's key and INCLUDE columns for keys; NULL for an expression).
pub const CONSTRAINTS_FOR_NAMING: &str = "SELECT c.conname::text, c.contype::text, \
       CASE WHEN c.contype IN ('p', 'u', 'x') THEN \
         array(SELECT a.attname::text FROM unnest((SELECT i.indkey::int2[] FROM pg_index i WHERE i.indexrelid = c.conindid)) \
               WITH ORDINALITY k(attnum, ord) LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
               ORDER BY k.ord) \
       ELSE array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord) \
               LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) END \
FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u', 'x', 'c', 'f') ORDER BY c.oid";

/// Which of the names `$2` (text[]) are taken in the schema of the table `$1` (a qualified
/// name): `('r', name)` for a relation of that name, `('c', name)` for a constraint: what a
/// generated name must not collide with.
pub const NAMES_TAKEN_IN_SCHEMA: &str = "SELECT 'r', relname::text FROM pg_class \
        WHERE relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::text::regclass) AND relname = ANY($2::text[]::name[]) \
      UNION ALL SELECT 'c', conname::text FROM pg_constraint \
        WHERE connamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::text::regclass) AND conname = ANY($2::text[]::name[])";

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
/// `timestamp with time zone` / `time with time zone`. shadowswap's sessions use the server's default zone, the
/// application's sessions that fire the capture triggers use theirs.
pub fn type_change_refusal(from: &Column, to: &Column) -> Option<String> {
    let tz = |c: &Column| c.column_type.contains("with time zone");
    (tz(from) != tz(to)).then(|| {
        "converting to or from a \"with time zone\" type depends on the session TimeZone, which differs between \
         shadowswap's copy (the server's default TimeZone) and the application's sessions; add a new column and fill it yourself"
            .to_string()
    })
}

/// [`Rules::key_change_refusal`] for PostgreSQL: a chunk-key column may change type only where
/// equality and btree order stay the same for every value it holds, under the same collation:
/// a wider integer (`smallint` → `integer` → `bigint`, which share the `integer_ops` btree family,
/// or → `numeric`, which holds every integer exactly),
/// and a length change among `character varying`/`text` (both compare with `text`'s operators).
/// Anything else falls back to [`shadowswap_engine::plan::unchanged_key_column`].
pub fn key_change_refusal(from: &Column, to: &Column) -> Option<String> {
    fn class(ty: &str) -> Option<(u8, u8)> {
        let base = ty.split('(').next().unwrap_or(ty).trim();
        match base {
            "smallint" => Some((0, 2)),
            "integer" => Some((0, 4)),
            "bigint" => Some((0, 8)),
            // Every integer is exact in numeric, with the same equality and order.
            "numeric" => Some((0, 16)),
            "text" | "character varying" => Some((1, 0)),
            _ => None,
        }
    }
    if from.collation == to.collation {
        if let (Some((a, wa)), Some((b, wb))) = (class(&from.column_type), class(&to.column_type)) {
            if a == b && wb >= wa {
                return None;
            }
        }
    }
    shadowswap_engine::plan::unchanged_key_column(from, to)
}

/// A correlated subquery over `pg_attribute a`: the schema of the btree `<` operator of the
/// operator class of an index that has column `a` as a key, when that schema is not
/// `pg_catalog` (an extension type's: `ltree`, `citext`), else NULL. Read into
/// [`Column::operator_schema`].
pub const KEY_OPERATOR_SCHEMA: &str = "SELECT n.nspname::text FROM pg_catalog.pg_index i \
     CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) AS k(attnum, opclass) \
     JOIN pg_catalog.pg_opclass oc ON oc.oid = k.opclass \
     JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype \
          AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = 1 AND ao.amopmethod = oc.opcmethod \
     JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr \
     JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
     WHERE i.indrelid = a.attrelid AND k.attnum = a.attnum AND n.nspname <> 'pg_catalog' LIMIT 1";

/// `ROW("a", "b") OPERATOR(pg_catalog.>) ROW($1::text::int, $2::text::text)`: PostgreSQL
/// compares rows lexicographically with each column's btree ordering and uses a multicolumn
/// index for it. `first` is the first parameter number; key values are bound as text and cast
/// to the column's type. The operator is schema-qualified with the schema of the key index's
/// operators ([`Column::operator_schema`]: `OPERATOR("public".>)` for `ltree`), so the
/// comparison is the index's own under the pinned `search_path`; a key whose columns' operators
/// come from different schemas is compared column by column (`a > x OR (a = x AND b > y)`), each with
/// its own qualified operators.
pub fn row_compare(cols: &[&str], types: &[Column], op: &str, first: usize) -> String {
    let schema = |c: &Column| c.operator_schema.clone().unwrap_or_else(|| "pg_catalog".to_string());
    let qop = |c: &Column, op: &str| format!("OPERATOR({}.{op})", Ident(&schema(c)));
    let param = |i: usize, c: &Column| format!("${}::text::{}", first + i, c.column_type);
    let schemas: Vec<String> = types.iter().map(schema).collect();
    if schemas.iter().all(|s| *s == schemas[0]) {
        let lhs = column_list("", cols.iter().copied());
        let rhs = types.iter().enumerate().map(|(i, c)| param(i, c)).collect::<Vec<_>>().join(", ");
        return format!("ROW({lhs}) {} ROW({rhs})", qop(&types[0], op));
    }
    // Lexicographic expansion: the last column takes `op`, every earlier one its strict form.
    let strict = op.trim_end_matches('=');
    let terms: Vec<String> = (0..cols.len())
        .map(|k| {
            let mut parts: Vec<String> =
                (0..k).map(|j| format!("{} {} {}", Ident(cols[j]), qop(&types[j], "="), param(j, &types[j]))).collect();
            let this = if k + 1 == cols.len() { op } else { strict };
            parts.push(format!("{} {} {}", Ident(cols[k]), qop(&types[k], this), param(k, &types[k])));
            format!("({})", parts.join(" AND "))
        })
        .collect();
    format!("({})", terms.join(" OR "))
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
/// The key columns are in the SET list too: a key can change to a value its unique index calls
/// equal but that is not the same value (`'bob'` → `'Bob'` under a nondeterministic collation or
/// `citext`, numeric `1.5` → `1.50`). The upsert then conflicts with the row it replaces and must
/// write the new spelling, or the shadow keeps the old one and the swap reverts the update.
/// Setting a key column to a value equal to the one it has keeps the unique index satisfied.
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

/// `LOCK TABLE t IN ROW SHARE MODE`, first in a chunk's transaction: the lock the copy's
/// `SELECT … FOR SHARE` takes anyway, taken before the `INSERT` locks the shadow. Every session
/// that locks both tables then locks the table first and the shadow second (application writes
/// and their capture, `TRUNCATE` and its capture trigger's `TRUNCATE` of the shadow, the
/// checksum, the swap), so a `TRUNCATE` during a chunk waits for the chunk instead of
/// deadlocking with it (the `INSERT … SELECT` alone would lock the shadow first).
pub fn lock_for_copy(table: &TableRef) -> String {
    format!("LOCK TABLE {} IN ROW SHARE MODE", Qualified(table))
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

/// `OPERATOR("schema".op)`: an operator named by its schema, so that it resolves the same under
/// any `search_path` (the capture functions run with `search_path = pg_catalog, pg_temp`, where
/// an extension type's `=`, e.g. `citext`'s or `ltree`'s in `public`, is not visible; an
/// unqualified `=` then fails with "operator does not exist" or, through an implicit cast to
/// text, compares case-sensitively). `None` when `name` is not an operator name (only the
/// characters PostgreSQL allows in one: `+ - * / < > = ~ ! @ # % ^ & | ` ?`), so nothing read
/// from the catalog reaches the SQL text unquoted. See "Operator Invocation" in the PostgreSQL
/// documentation (section 4.1.3 / 4.2.5).
pub fn qualified_operator(schema: &str, name: &str) -> Option<String> {
    const OP_CHARS: &str = "+-*/<>=~!@#%^&|`?";
    (!name.is_empty() && name.len() <= 63 && name.chars().all(|c| OP_CHARS.contains(c)))
        .then(|| format!("OPERATOR({}.{name})", Ident(schema)))
}

/// The equality operator of each chunk-key column, in key order: `key_eq[i]` compares shadow
/// key column `i` (see [`qualified_operator`]); an empty slice means a plain `=` (the dry run,
/// which cannot read the catalog).
fn key_eq_op(key_eq: &[String], i: usize) -> &str {
    key_eq.get(i).map(String::as_str).unwrap_or("=")
}

fn key_match(plan: &Plan, row: &str, key_eq: &[String]) -> String {
    plan.key
        .shadow_columns
        .iter()
        .zip(&plan.key.columns)
        .enumerate()
        .map(|(i, (t, s))| format!("{} {} {row}.{}", Ident(t), key_eq_op(key_eq, i), Ident(&s.name)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A capture trigger function name, schema-qualified.
pub fn function_name(table: &TableRef, name: &str) -> String {
    format!("{}.{}", Ident(&table.schema), Ident(name))
}

/// Name of the capture's statement-level `AFTER TRUNCATE` trigger (and its function),
/// `_<t>_ssw_trn`, made by the same generator as every other name ([`generated_name`]).
///
/// [`generated_name`]: shadowswap_engine::names::generated_name
pub fn truncate_trigger(names: &Names) -> String {
    shadowswap_engine::names::generated_name(&names.table.name, "ssw_trn", crate::MAX_IDENTIFIER_BYTES, byte_len)
}

/// Every capture trigger (and function) name of the PostgreSQL dialect: the engine's three row
/// triggers (insert, update, delete) and [`truncate_trigger`].
/// The capture triggers on table `$1` (a qualified name, as text) among the names `$2`, with
/// their `tgenabled` state (`'A'`: fires in every `session_replication_role`).
pub const CAPTURE_TRIGGERS_ENABLED: &str =
    "SELECT tgname::text, tgenabled::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1::text::regclass AND tgname::text = ANY($2)";

/// The names of the four capture triggers (insert, update, delete, truncate).
pub fn capture_triggers(names: &Names) -> [String; 4] {
    let [i, u, d] = names.triggers();
    [i.to_string(), u.to_string(), d.to_string(), truncate_trigger(names)]
}

/// `$tag$body$tag$`, with a tag made from `seed` that does not occur in `body`: a dollar-quoted
/// string ends at the first occurrence of its tag, so a tag inside the body (e.g. in a column
/// name) would end the string there and run the rest as SQL. The tag is `ssw_` and 16 hex digits
/// derived from `seed` (a fresh random number per run: see [`quote_seed`]); when `body` (or
/// `body` followed by the closing tag, which matters when the body ends with `$ssw_…`) contains
/// it, the next derived tag is tried. Correct under any server setting: dollar quoting does not
/// depend on `standard_conforming_strings`, and the body is never parsed as SQL text outside it.
pub fn dollar_quote(body: &str, seed: u64) -> String {
    let mut x = seed;
    loop {
        // splitmix64: a different tag for each step.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let delim = format!("$ssw_{z:016x}$");
        let quoted = format!("{body}{delim}");
        if quoted.find(&delim) == Some(body.len()) {
            return format!("{delim}{quoted}");
        }
    }
}

/// A random seed for [`dollar_quote`], different in each process and on each call (from the
/// standard library's randomly keyed hasher; no dependency needed).
pub fn quote_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// The four capture trigger functions and their triggers, in order insert, update, delete,
/// truncate: `(CREATE FUNCTION, CREATE TRIGGER, ALTER TABLE … ENABLE ALWAYS TRIGGER)` each.
///
/// The functions are `SECURITY DEFINER` (the application's role need not have any privilege on
/// the shadow table) with a fixed `search_path`, as PostgreSQL's documentation advises for such
/// functions ("Writing SECURITY DEFINER Functions Safely"); key comparisons therefore use
/// `key_eq`, the schema-qualified equality operator of each shadow key column's unique-index
/// operator class ([`qualified_operator`]; empty: plain `=`). An insert or update upserts the new
/// row on the chunk key, key columns included (see [`upsert_on_key`]); an update that changes
/// the key (or a column of `always_identity`, the shadow's `GENERATED ALWAYS AS IDENTITY`
/// columns, which an upsert cannot set) first deletes the old key's row; a delete deletes by key.
/// A `TRUNCATE` of the table (statement level) truncates the shadow. They run in the writer's
/// transaction, after its change.
///
/// Every trigger fires `ALWAYS`, in any `session_replication_role`: ordinary triggers do not
/// fire in sessions with `session_replication_role = replica` (logical replication apply
/// workers, many ETL tools), whose writes would otherwise be lost ("ALTER TABLE … ENABLE ALWAYS
/// TRIGGER", PostgreSQL documentation of ALTER TABLE). The bodies are dollar-quoted with a tag
/// derived from `seed` that does not occur in them ([`dollar_quote`]).
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
/// `TRUNCATE` is not MVCC-bound, so the truncate trigger empties the shadow at any isolation.
pub fn capture(plan: &Plan, always_identity: &[String], key_eq: &[String], seed: u64) -> [(String, String, String); 4] {
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
        .map(|m| format!("NEW.{0} IS DISTINCT FROM OLD.{0}", Ident(&m.source)));
    // Key columns are NOT NULL (a chunk key is a primary key or a unique key over NOT NULL
    // columns), so `NOT (a = b)` is the key's own inequality.
    let key_changed = plan
        .key
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("NOT (NEW.{0} {1} OLD.{0})", Ident(&c.name), key_eq_op(key_eq, i)))
        .chain(identity_sources)
        .collect::<Vec<_>>()
        .join(" OR ");
    let function = |name: &str, body: String| {
        format!(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}",
            function_name(&n.table, name),
            dollar_quote(&format!("\nBEGIN\n{body}  RETURN NULL;\nEND\n"), seed)
        )
    };
    let trigger = |name: &str, event: &str, level: &str| {
        (
            format!(
                "CREATE TRIGGER {} AFTER {event} ON {} FOR EACH {level} EXECUTE FUNCTION {}()",
                Ident(name),
                Qualified(&n.table),
                function_name(&n.table, name)
            ),
            format!("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}", Qualified(&n.table), Ident(name)),
        )
    };
    let old_key = key_match(plan, "OLD", key_eq);
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
    let truncate = truncate_trigger(n);
    let with = |f: String, (t, a): (String, String)| (f, t, a);
    [
        with(function(&n.trigger_insert, format!("  {upsert};\n")), trigger(&n.trigger_insert, "INSERT", "ROW")),
        with(
            function(&n.trigger_update, format!("  IF {key_changed} THEN\n{}  END IF;\n  {upsert};\n", delete_old("    "))),
            trigger(&n.trigger_update, "UPDATE", "ROW"),
        ),
        with(function(&n.trigger_delete, delete_old("  ")), trigger(&n.trigger_delete, "DELETE", "ROW")),
        with(function(&truncate, format!("  TRUNCATE TABLE {s};\n")), trigger(&truncate, "TRUNCATE", "STATEMENT")),
    ]
}

/// `ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false)`: the subscription looks
/// its published tables up by name again, so the swapped-in table (a new OID) is registered as
/// ready and the old table's entry is removed. `copy_data = false`: the table already holds the
/// data. Note: any table newly added to the publication since the subscription's last refresh is
/// registered without its initial copy too (PostgreSQL documentation, ALTER SUBSCRIPTION).
/// Cannot run inside a transaction block.
pub fn refresh_subscription(name: &str) -> String {
    format!("ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = false)", Ident(name))
}

/// Drop one capture trigger and its function (idempotent).
pub fn drop_capture(on: &TableRef, name: &str) -> [String; 2] {
    [
        format!("DROP TRIGGER IF EXISTS {} ON {}", Ident(name), Qualified(on)),
        format!("DROP FUNCTION IF EXISTS {}()", function_name(on, name)),
    ]
}

/// The equality operator of each column of every unique, non-partial, non-expression index on
/// `$1` (a quoted table name): index oid, column name, operator schema, operator name, in index
/// column order. The operator is the btree equality (strategy 3) of the column's operator class
/// for the class's input type, i.e. the equality the unique index (and so `ON CONFLICT`) uses.
pub const UNIQUE_INDEX_EQUALITY: &str = "SELECT i.indexrelid::bigint, a.attname::text, n.nspname::text, o.oprname::text \
     FROM pg_index i \
     CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) WITH ORDINALITY AS k(attnum, opclass, ord) \
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     JOIN pg_opclass oc ON oc.oid = k.opclass \
     JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype \
          AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = 3 AND ao.amopmethod = oc.opcmethod \
     JOIN pg_operator o ON o.oid = ao.amopopr \
     JOIN pg_namespace n ON n.oid = o.oprnamespace \
     WHERE i.indrelid = $1::text::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL \
       AND k.ord <= i.indnkeyatts \
     ORDER BY 1, k.ord";

/// A `search_path` value (the text `set_config('search_path', …)` takes) that searches
/// `pg_catalog` first and then `schemas` in order, each quoted as an identifier. Used only for
/// the user's ALTER text, which runs as the table's owner (see [`as_owner_function`]).
pub fn search_path_value(schemas: &[String]) -> String {
    std::iter::once("pg_catalog")
        .chain(schemas.iter().map(String::as_str).filter(|s| *s != "pg_catalog"))
        .map(|s| Ident(s).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SET LOCAL ROLE "owner"`: what follows in the transaction runs as (and creates objects owned
/// by) `role`. On its own this is no security boundary, since code running under it may
/// `RESET ROLE` back to the session user; user code is run through [`as_owner_function`] instead.
pub fn set_local_role(role: &str) -> String {
    format!("SET LOCAL ROLE {}", Ident(role))
}

/// Back to the session's own role (`RESET ROLE`).
pub const RESET_ROLE: &str = "RESET ROLE";

/// The most parameters one statement run through [`as_owner_function`] may use (`$1` … `$64`):
/// a chunk's two bounds of a key of at most 32 columns (`INDEX_MAX_KEYS`).
pub const AS_OWNER_MAX_PARAMS: usize = 64;

/// Name of the function [`as_owner_function`] creates for the role with OID `owner`, in the
/// session's temporary schema.
pub fn as_owner_name(owner: u32) -> String {
    format!("pg_temp.shadowswap_as_owner_{owner}")
}

/// The body of [`as_owner_function`], exactly as `pg_proc.prosrc` stores it.
pub fn as_owner_body() -> String {
    let using = (1..=AS_OWNER_MAX_PARAMS).map(|i| format!("p[{i}]")).collect::<Vec<_>>().join(", ");
    format!(
        "\nDECLARE n bigint;\n\
         BEGIN\n\
         \x20 IF sp IS NOT NULL THEN PERFORM pg_catalog.set_config('search_path', sp, true); END IF;\n\
         \x20 EXECUTE q USING {using};\n\
         \x20 GET DIAGNOSTICS n = ROW_COUNT;\n\
         \x20 RETURN n;\n\
         END\n"
    )
}

/// A `SECURITY DEFINER` function in the session's temporary schema that runs one statement
/// (`q`, with text parameters `p[1]…` as `$1…`, and `sp`, when not NULL, as its `search_path`)
/// and returns its row count. Created while the session acts as the table's owner (see
/// [`AS_OWNER_ENTER`]), it is owned by and runs as the owner; inside a security-definer
/// function PostgreSQL refuses `SET ROLE`, `RESET ROLE` and `SET SESSION AUTHORIZATION`
/// ("cannot set parameter "role" within security-definer function"), so the table's CHECK,
/// DEFAULT and index expressions, evaluated there, cannot get back to the session user's
/// privileges. `SET search_path FROM CURRENT` restores the pinned search path when it returns.
/// The body is fixed text.
///
/// It stays for the session (temporary objects last as long as it) with `EXECUTE` revoked from
/// PUBLIC: whoever can still call it (the owner, members of its role, superusers) can already
/// act as the owner. The owner's own code, running in the session, could replace or alter it,
/// so [`AS_OWNER_ENTER`] checks it is intact before every use, and it is created again
/// (`CREATE OR REPLACE`) when it is not.
pub fn as_owner_function(owner: u32) -> String {
    let name = as_owner_name(owner);
    format!(
        "CREATE OR REPLACE FUNCTION {name}(q text, p text[], sp text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER \
         SET search_path FROM CURRENT AS $shadowswap_as_owner${}$shadowswap_as_owner$; \
         REVOKE ALL ON FUNCTION {name}(text, text[], text) FROM PUBLIC",
        as_owner_body()
    )
}

/// Starts acting as the owner of the table `$1` (its quoted name) in the transaction
/// (`set_config('role', …, true)`, which is `SET LOCAL ROLE`), and returns the owner's OID and
/// whether [`as_owner_function`] exists for it intact: owned by the owner, `SECURITY DEFINER`,
/// PL/pgSQL, the signature `(text, text[], text)`, the body `$2` ([`as_owner_body`]) and the
/// session's pinned search path. Everything is schema-qualified.
pub const AS_OWNER_ENTER: &str = "SELECT c.relowner::pg_catalog.int8, \
        pg_catalog.set_config('role', pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text, true), \
        EXISTS (SELECT FROM pg_catalog.pg_proc p \
                WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() \
                  AND p.proname OPERATOR(pg_catalog.=) ('shadowswap_as_owner_' OPERATOR(pg_catalog.||) c.relowner::pg_catalog.text) \
                  AND p.proowner OPERATOR(pg_catalog.=) c.relowner AND p.prosecdef AND p.prokind OPERATOR(pg_catalog.=) 'f' \
                  AND p.prolang OPERATOR(pg_catalog.=) (SELECT l.oid FROM pg_catalog.pg_language l \
                                                        WHERE l.lanname OPERATOR(pg_catalog.=) 'plpgsql') \
                  AND p.proargtypes::pg_catalog.text OPERATOR(pg_catalog.=) '25 1009 25' \
                  AND p.prosrc OPERATOR(pg_catalog.=) $2 \
                  AND p.proconfig OPERATOR(pg_catalog.=) \
                      ARRAY['search_path=' OPERATOR(pg_catalog.||) pg_catalog.current_setting('search_path')]) \
     FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.text::pg_catalog.regclass";

/// The call of [`as_owner_function`], its signature spelled out (no overload can be chosen
/// instead): `$1` the statement, `$2` its parameters, `$3` the search path or NULL.
pub fn as_owner_call(owner: u32) -> String {
    format!("SELECT {}($1::pg_catalog.text, $2::pg_catalog.text[], $3::pg_catalog.text)", as_owner_name(owner))
}

/// One entry of an access control list, as `aclexplode` lists it: `grantee` `None` is PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclEntry {
    /// The role that granted the privilege.
    pub grantor: String,
    /// The role holding it; `None` for PUBLIC.
    pub grantee: Option<String>,
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`, `REFERENCES` or `TRIGGER`.
    pub privilege: String,
    /// Held `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// The `GRANT` / `REVOKE` statements that turn the ACL `have` of table `table` (its column
/// `column` when given) into exactly `want` (both as `aclexplode` lists them, a NULL ACL as
/// `acldefault`'s entries): grantor, grantee, privilege and grant option. A GRANT or REVOKE by
/// the owner, a member of its role or a superuser is recorded as the owner's; one whose grantor
/// is another role runs as that role (`SET LOCAL ROLE g; …; RESET ROLE`) when `can_set_role`
/// lists it, so grants made through another role's grant option keep their grantor (PostgreSQL
/// 15 accepts `GRANTED BY` only for the current user); otherwise it is made as the owner's.
/// Revokes come first, those of other grantors before the owner's (theirs depend on the owner's
/// grant option); grants come in an order in which each grantor already holds the grant option
/// it needs. `privilege` must be one of the names listed on [`AclEntry`]; anything else is left
/// out.
pub fn acl_statements(
    table: &TableRef,
    column: Option<&str>,
    owner: &str,
    can_set_role: &[String],
    have: &[AclEntry],
    want: &[AclEntry],
) -> Vec<String> {
    const PRIVILEGES: [&str; 7] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];
    let valid = |e: &&AclEntry| PRIVILEGES.contains(&e.privilege.as_str());
    let on = match column {
        Some(c) => format!("({}) ON TABLE {}", Ident(c), Qualified(table)),
        None => format!("ON TABLE {}", Qualified(table)),
    };
    let who = |g: &Option<String>| g.as_deref().map_or("PUBLIC".to_string(), |r| Ident(r).to_string());
    let same = |a: &AclEntry, b: &AclEntry| a.grantor == b.grantor && a.grantee == b.grantee && a.privilege == b.privilege;
    let by = |grantor: &str, stmt: String| {
        if grantor != owner && can_set_role.iter().any(|r| r == grantor) {
            format!("{}; {stmt}; {RESET_ROLE}", set_local_role(grantor))
        } else {
            stmt
        }
    };
    let mut revokes: Vec<(bool, String)> = Vec::new();
    for h in have.iter().filter(valid) {
        let stmt = match want.iter().find(|w| same(h, w)) {
            None => by(&h.grantor, format!("REVOKE {} {on} FROM {}", h.privilege, who(&h.grantee))),
            Some(w) if h.grantable && !w.grantable => {
                by(&h.grantor, format!("REVOKE GRANT OPTION FOR {} {on} FROM {}", h.privilege, who(&h.grantee)))
            }
            Some(_) => continue,
        };
        revokes.push((h.grantor == owner, stmt));
    }
    revokes.sort_by_key(|(by_owner, _)| *by_owner);
    let mut out: Vec<String> = revokes.into_iter().map(|(_, s)| s).collect();
    let mut pending: Vec<&AclEntry> =
        want.iter().filter(valid).filter(|w| !have.iter().any(|h| same(h, w) && (h.grantable || !w.grantable))).collect();
    // Who holds which grant option once the revokes ran: the owner always does.
    let mut options: Vec<(String, String)> = have
        .iter()
        .filter(|h| h.grantable && want.iter().any(|w| same(h, w) && w.grantable))
        .filter_map(|h| Some((h.grantee.clone()?, h.privilege.clone())))
        .collect();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|w| w.grantor == owner || options.iter().any(|(r, p)| *r == w.grantor && *p == w.privilege))
            .unwrap_or(0);
        let w = pending.remove(ready);
        out.push(by(
            &w.grantor,
            format!("GRANT {} {on} TO {}{}", w.privilege, who(&w.grantee), if w.grantable { " WITH GRANT OPTION" } else { "" }),
        ));
        if let (true, Some(g)) = (w.grantable, &w.grantee) {
            options.push((g.clone(), w.privilege.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, ty)
    }

    #[test]
    fn constraints_are_renamed_with_quoted_names() {
        assert_eq!(
            rename_constraint(&TableRef::new("s\"x", "t"), "_t_new_c2_key", "t_c2\"key"),
            r#"ALTER TABLE "s""x"."t" RENAME CONSTRAINT "_t_new_c2_key" TO "t_c2""key""#
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(Ident("a\"b").to_string(), "\"a\"\"b\"");
        assert_eq!(Qualified(&TableRef::new("public", "T")).to_string(), "\"public\".\"T\"");
        assert_eq!(literal("it's"), "E'it''s'");
    }

    #[test]
    fn literals_hold_under_any_setting() {
        assert_eq!(literal(""), "E''");
        assert_eq!(literal(r"a\b"), r"E'a\\b'");
        // The payload of the outside review: a backslash before the quote stays data.
        assert_eq!(literal(r"x\'; ALTER ROLE o SUPERUSER; --"), r"E'x\\''; ALTER ROLE o SUPERUSER; --'");
        assert_eq!(literal(r"\\''\"), r"E'\\\\''''\\'");
        assert_eq!(literal("Äpfel – 日本 🍎\\n\n"), "E'Äpfel – 日本 🍎\\\\n\n'");
        assert_eq!(literal(r#"$$ $x$ "q""#), r#"E'$$ $x$ "q"'"#);
        // Every backslash and every quote comes doubled: no lone one can end the string early.
        for s in [r"\'", r"'\", r"\\'", r"''\'", "a\\\n\tb"] {
            let l = literal(s);
            let body = &l[2..l.len() - 1];
            assert_eq!(body.replace(r"\\", "").replace("''", "").matches(['\\', '\'']).count(), 0, "{l}");
        }
    }

    #[test]
    fn row_comparisons_cast_text_parameters() {
        let types = [col("a", "integer"), col("b", "character varying(10)")];
        assert_eq!(
            range_where(&["a", "b"], &types, true),
            "ROW(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer, $2::text::character varying(10)) AND ROW(\"a\", \"b\") OPERATOR(\"pg_catalog\".<=) ROW($3::text::integer, $4::text::character varying(10))"
        );
        assert_eq!(range_where(&["a"], &types[..1], false), "ROW(\"a\") OPERATOR(\"pg_catalog\".<=) ROW($1::text::integer)");
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
        for c in [
            "ADD COLUMN c int DEFAULT 7",
            "DROP COLUMN d",
            "ALTER COLUMN c SET DEFAULT 5",
            "ALTER COLUMN c DROP NOT NULL",
            "ALTER COLUMN v TYPE varchar ( 100 )",
            "ADD CONSTRAINT ck CHECK ( c > 0 ) NOT VALID",
            "RENAME COLUMN a TO b",
        ] {
            assert!(metadata_only_clause(c), "{c}");
        }
        for c in [
            "ALTER COLUMN c SET NOT NULL",
            "ADD CONSTRAINT ck CHECK ( c > 0 )",
            "ADD COLUMN c int UNIQUE",
            "ADD PRIMARY KEY ( id )",
            "ADD COLUMN p int REFERENCES x ( id )",
            "SET TABLESPACE t",
            "VALIDATE CONSTRAINT ck",
        ] {
            assert!(!metadata_only_clause(c), "{c}");
        }
    }

    fn plan_for(table: &str, columns: Vec<Column>, alter: &str) -> Plan {
        use shadowswap_engine::plan::Rules;
        let shape = shadowswap_engine::model::TableShape {
            columns,
            indexes: vec![shadowswap_engine::model::Index {
                name: "t_pkey".into(),
                columns: vec!["id".into()],
                unique: true,
                primary: true,
                partial: false,
            }],
            estimated_rows: 0,
        };
        let rules = Rules { eq: |a, b| a == b, key_column_ok, type_change_refusal, key_change_refusal };
        let names = Names::new(&TableRef::new("public", table), 63, byte_len);
        let analysis = shadowswap_engine::alter::analyze(alter, &sqlparser::dialect::PostgreSqlDialect {}).unwrap();
        Plan::build(names, analysis, shape.clone(), shape, rules, false).unwrap()
    }

    #[test]
    fn generated_always_identity_columns_are_never_upserted() {
        let plan = plan_for("t", vec![col("id", "integer"), col("code", "integer"), col("v", "text")], "ADD COLUMN x int");
        let always = ["code".to_string()];
        let copy = copy_chunk(&plan, "TRUE", &always);
        assert!(copy.ends_with("ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\""), "{copy}");
        let [_, (upd, _, _), _, _] = capture(&plan, &always, &[], 1);
        assert!(upd.contains("IF NOT (NEW.\"id\" = OLD.\"id\") OR NEW.\"code\" IS DISTINCT FROM OLD.\"code\" THEN"), "{upd}");
        assert!(!upd.contains("\"code\" = EXCLUDED"), "{upd}");
        assert!(copy_chunk(&plan, "TRUE", &[]).contains("\"code\" = EXCLUDED.\"code\""));
    }

    #[test]
    fn upserts_write_key_columns_too() {
        // 'bob' -> 'Bob' under a case-insensitive collation, 1.5 -> 1.50: the unique index calls the
        // values equal, the upsert conflicts, and only a SET of the key writes the new spelling.
        let plan = plan_for("t", vec![col("id", "numeric"), col("v", "text")], "ADD COLUMN x int");
        let want = "ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\"";
        assert!(copy_chunk(&plan, "TRUE", &[]).ends_with(want));
        let [(ins, _, _), (upd, _, _), _, _] = capture(&plan, &[], &[], 1);
        assert!(ins.contains(want), "{ins}");
        assert!(upd.contains(want), "{upd}");
        // A key-only table still writes its key.
        let plan = plan_for("t", vec![col("id", "numeric")], "ADD COLUMN x int");
        assert!(copy_chunk(&plan, "TRUE", &[]).ends_with("ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\""));
    }

    #[test]
    fn capture_compares_keys_with_schema_qualified_operators() {
        let plan = plan_for("t", vec![col("id", "citext"), col("v", "text")], "ADD COLUMN x int");
        let eq = [qualified_operator("public", "=").unwrap()];
        assert_eq!(eq[0], "OPERATOR(\"public\".=)");
        let [_, (upd, _, _), (del, _, _), _] = capture(&plan, &[], &eq, 1);
        assert!(upd.contains("IF NOT (NEW.\"id\" OPERATOR(\"public\".=) OLD.\"id\") THEN"), "{upd}");
        assert!(upd.contains("DELETE FROM \"public\".\"_t_new\" WHERE \"id\" OPERATOR(\"public\".=) OLD.\"id\";"), "{upd}");
        assert!(del.contains("WHERE \"id\" OPERATOR(\"public\".=) OLD.\"id\";"), "{del}");
        assert!(!upd.contains(" = OLD."), "no unqualified equality left: {upd}");
        assert_eq!(qualified_operator("my \"ext\"", "~=~").unwrap(), "OPERATOR(\"my \"\"ext\"\"\".~=~)");
        for bad in ["", "=; DROP", "a", "=)", "= ="] {
            assert_eq!(qualified_operator("public", bad), None, "{bad}");
        }
    }

    #[test]
    fn every_capture_trigger_fires_always_and_truncate_is_captured() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        let all = capture(&plan, &[], &[], 7);
        let names: Vec<String> = capture_triggers(&plan.names).into();
        assert_eq!(names, ["_t_ssw_ins", "_t_ssw_upd", "_t_ssw_del", "_t_ssw_trn"]);
        for ((f, t, a), name) in all.iter().zip(&names) {
            assert!(f.starts_with(&format!("CREATE FUNCTION \"public\".\"{name}\"() RETURNS trigger")), "{f}");
            assert!(t.starts_with(&format!("CREATE TRIGGER \"{name}\" AFTER ")), "{t}");
            assert_eq!(a, &format!("ALTER TABLE \"public\".\"t\" ENABLE ALWAYS TRIGGER \"{name}\""));
        }
        let (f, t, _) = &all[3];
        assert!(f.contains("TRUNCATE TABLE \"public\".\"_t_new\";"), "{f}");
        assert_eq!(t, "CREATE TRIGGER \"_t_ssw_trn\" AFTER TRUNCATE ON \"public\".\"t\" FOR EACH STATEMENT EXECUTE FUNCTION \"public\".\"_t_ssw_trn\"()");
        assert!(all[0].1.contains("AFTER INSERT ON \"public\".\"t\" FOR EACH ROW"));
        assert_eq!(lock_for_copy(&TableRef::new("public", "t")), "LOCK TABLE \"public\".\"t\" IN ROW SHARE MODE");
        assert_eq!(refresh_subscription("s\"1"), "ALTER SUBSCRIPTION \"s\"\"1\" REFRESH PUBLICATION WITH (copy_data = false)");
    }

    /// The tag a `$tag$` dollar quote opens with.
    fn opening_tag(quoted: &str) -> &str {
        let end = quoted[1..].find('$').unwrap() + 2;
        &quoted[..end]
    }

    #[test]
    fn dollar_quotes_never_occur_in_what_they_wrap() {
        // The body ends exactly at the closing tag: the first occurrence of the tag after the
        // opening one is the last thing in the text.
        let closed_at_end = |body: &str, seed: u64| {
            let q = dollar_quote(body, seed);
            let tag = opening_tag(&q);
            assert!(tag.starts_with("$ssw_") && tag.len() == 22, "{tag}");
            assert_eq!(q[tag.len()..].find(tag), Some(q.len() - 2 * tag.len()), "{q}");
            assert_eq!(&q[tag.len()..q.len() - tag.len()], body);
            tag.to_string()
        };
        // Different seeds (runs) give different tags.
        assert_ne!(closed_at_end("x", 1), closed_at_end("x", 2));
        // A body that contains the tag seed 1 would use, and one that ends with its prefix.
        let first = closed_at_end("x", 1);
        let evil = format!("INSERT INTO t (\"c{first};ALTER ROLE r SUPERUSER;SELECT {first}\") VALUES (1)");
        assert_ne!(closed_at_end(&evil, 1), first);
        let ends_like_tag = format!("x {}", &first[..first.len() - 1]);
        assert_ne!(closed_at_end(&ends_like_tag, 1), first);
        // The fixed tag of earlier versions is just text now.
        closed_at_end("c$shadowswap$;ALTER ROLE r SUPERUSER;SELECT $shadowswap$", 0);
        assert_ne!(quote_seed(), quote_seed());
    }

    #[test]
    fn a_column_named_like_a_dollar_tag_stays_inside_the_function_body() {
        let evil = "c$shadowswap$;ALTER ROLE r SUPERUSER;SELECT $shadowswap$";
        let plan = plan_for("t", vec![col("id", "integer"), col(evil, "text")], "ADD COLUMN x int");
        for seed in [0, 1, 42] {
            for (f, _, _) in capture(&plan, &[], &[], seed) {
                let at = f.find(" AS $ssw_").unwrap() + 4;
                let tag = opening_tag(&f[at..]);
                // Exactly two occurrences of the run's tag: the opening and the closing one.
                assert_eq!(f.matches(tag).count(), 2, "{f}");
                assert!(f.ends_with(tag), "{f}");
            }
        }
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
    fn key_comparisons_use_the_types_own_schema_qualified_operators() {
        let ext = |name: &str, ty: &str| Column { operator_schema: Some("public".into()), ..col(name, ty) };
        assert_eq!(
            row_compare(&["a", "b"], &[col("a", "integer"), col("b", "text")], ">", 1),
            "ROW(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer, $2::text::text)"
        );
        assert_eq!(
            row_compare(&["p"], &[ext("p", "public.ltree")], "<=", 3),
            "ROW(\"p\") OPERATOR(\"public\".<=) ROW($3::text::public.ltree)"
        );
        assert_eq!(
            row_compare(&["a", "p"], &[col("a", "integer"), ext("p", "public.ltree")], "<=", 1),
            "((\"a\" OPERATOR(\"pg_catalog\".<) $1::text::integer) OR (\"a\" OPERATOR(\"pg_catalog\".=) $1::text::integer \
             AND \"p\" OPERATOR(\"public\".<=) $2::text::public.ltree))"
        );
    }

    #[test]
    fn key_changes_that_keep_equality_and_order() {
        let c = |ty: &str, coll: Option<&str>| Column { collation: coll.map(String::from), ..col("k", ty) };
        assert!(key_change_refusal(&c("integer", None), &c("bigint", None)).is_none());
        assert!(key_change_refusal(&c("smallint", None), &c("integer", None)).is_none());
        assert!(key_change_refusal(&c("bigint", None), &c("integer", None)).is_some());
        assert!(key_change_refusal(&c("character varying(10)", Some("default")), &c("text", Some("default"))).is_none());
        assert!(key_change_refusal(&c("text", Some("default")), &c("text", Some("C"))).is_some());
        assert!(key_change_refusal(&c("bigint", None), &c("numeric", None)).is_none());
        assert!(key_change_refusal(&c("numeric", None), &c("bigint", None)).is_some());
        assert!(key_change_refusal(&c("integer", None), &c("text", None)).is_some());
        assert!(key_change_refusal(&c("text", None), &c("text", None)).is_none());
    }

    #[test]
    fn key_types() {
        assert!(key_column_ok(&col("a", "bigint")));
        assert!(key_column_ok(&col("a", "uuid")));
        assert!(!key_column_ok(&col("a", "jsonb")));
        assert!(!key_column_ok(&col("a", "point")));
    }

    fn acl(grantor: &str, grantee: Option<&str>, privilege: &str, grantable: bool) -> AclEntry {
        AclEntry { grantor: grantor.into(), grantee: grantee.map(str::to_string), privilege: privilege.into(), grantable }
    }

    #[test]
    fn acls_are_made_equal_exactly() {
        let t = TableRef::new("public", "secrets");
        let have = [
            acl("o", Some("o"), "SELECT", false),
            acl("o", Some("o"), "DELETE", false),
            acl("o", Some("reader"), "SELECT", false),
            acl("o", None, "SELECT", false),
            acl("o", Some("app"), "INSERT", true),
        ];
        let want = [
            acl("o", Some("o"), "SELECT", false),
            acl("o", Some("app"), "INSERT", false),
            acl("o", Some("Odd \"One\""), "INSERT", false),
            acl("o", Some("app"), "UPDATE", true),
        ];
        assert_eq!(
            acl_statements(&t, None, "o", &[], &have, &want),
            [
                "REVOKE DELETE ON TABLE \"public\".\"secrets\" FROM \"o\"",
                "REVOKE SELECT ON TABLE \"public\".\"secrets\" FROM \"reader\"",
                "REVOKE SELECT ON TABLE \"public\".\"secrets\" FROM PUBLIC",
                "REVOKE GRANT OPTION FOR INSERT ON TABLE \"public\".\"secrets\" FROM \"app\"",
                "GRANT INSERT ON TABLE \"public\".\"secrets\" TO \"Odd \"\"One\"\"\"",
                "GRANT UPDATE ON TABLE \"public\".\"secrets\" TO \"app\" WITH GRANT OPTION",
            ]
        );
        assert!(acl_statements(&t, None, "o", &[], &want, &want).is_empty());
    }

    #[test]
    fn acl_grants_wait_for_the_grant_option_they_need() {
        let t = TableRef::new("s", "t");
        let want =
            [acl("b", Some("c"), "SELECT", false), acl("a", Some("b"), "SELECT", true), acl("o", Some("a"), "SELECT", true)];
        assert_eq!(
            acl_statements(&t, Some("Col"), "o", &["a".into(), "o".into()], &[], &want),
            [
                "GRANT SELECT (\"Col\") ON TABLE \"s\".\"t\" TO \"a\" WITH GRANT OPTION",
                "SET LOCAL ROLE \"a\"; GRANT SELECT (\"Col\") ON TABLE \"s\".\"t\" TO \"b\" WITH GRANT OPTION; RESET ROLE",
                // The session cannot act as b: the grant is made as the owner's.
                "GRANT SELECT (\"Col\") ON TABLE \"s\".\"t\" TO \"c\"",
            ]
        );
        assert_eq!(
            acl_statements(&t, None, "o", &["b".into()], &[acl("b", None, "UPDATE", false)], &[]),
            ["SET LOCAL ROLE \"b\"; REVOKE UPDATE ON TABLE \"s\".\"t\" FROM PUBLIC; RESET ROLE"]
        );
        // Unknown privilege names never reach SQL.
        assert!(acl_statements(&t, None, "o", &[], &[], &[acl("o", Some("x"), "SELECT; DROP TABLE t", false)]).is_empty());
    }

    #[test]
    fn owner_work_builders() {
        assert_eq!(set_local_role("Own\"er"), "SET LOCAL ROLE \"Own\"\"er\"");
        assert_eq!(
            search_path_value(&["public".into(), "pg_catalog".into(), "My S".into()]),
            "\"pg_catalog\", \"public\", \"My S\""
        );
        assert_eq!(search_path_value(&[]), "\"pg_catalog\"");
        let f = as_owner_function(16384);
        assert!(
            f.starts_with(
                "CREATE OR REPLACE FUNCTION pg_temp.shadowswap_as_owner_16384(q text, p text[], sp text) RETURNS bigint \
                 LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $shadowswap_as_owner$\nDECLARE"
            ),
            "{f}"
        );
        assert!(f.contains("EXECUTE q USING p[1], p[2], "), "{f}");
        assert!(f.contains(", p[64];\n"), "{f}");
        assert!(f.contains(&format!("$shadowswap_as_owner${}$shadowswap_as_owner$; ", as_owner_body())), "{f}");
        assert!(f.ends_with("; REVOKE ALL ON FUNCTION pg_temp.shadowswap_as_owner_16384(text, text[], text) FROM PUBLIC"), "{f}");
        assert!(!as_owner_body().contains('$'));
        assert_eq!(
            as_owner_call(7),
            "SELECT pg_temp.shadowswap_as_owner_7($1::pg_catalog.text, $2::pg_catalog.text[], $3::pg_catalog.text)"
        );
        assert!(AS_OWNER_ENTER.contains("'shadowswap_as_owner_'"));
    }
}
