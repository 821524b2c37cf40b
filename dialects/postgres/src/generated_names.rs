//! The names PostgreSQL gives constraints (and their indexes) that an ALTER creates without a
//! name: `ADD UNIQUE (c2)` on `t` makes `t_c2_key`, on the shadow `_t_new` it makes
//! `_t_new_c2_key`. shadowswap runs the ALTER on the shadow (and first on a trial copy), so the
//! swap renames each such constraint to the name a plain ALTER on `t` would have chosen, and the
//! refusals name that final name.
//!
//! The rules are PostgreSQL's (src/backend/commands/indexcmds.c `ChooseIndexName`,
//! `ChooseIndexColumnNames`, `ChooseIndexNameAddition`; src/backend/catalog/heap.c and
//! tablecmds.c for CHECK and FOREIGN KEY; src/backend/catalog/pg_constraint.c
//! `ChooseConstraintName`; src/backend/commands/indexcmds.c `makeObjectName`,
//! `ChooseRelationName`):
//! - primary key `<table>_pkey`, unique `<table>_<cols>_key`, exclusion `<table>_<cols>_excl`,
//!   foreign key `<table>_<cols>_fkey`, CHECK `<table>_<col>_check` when the expression uses one
//!   column, else `<table>_check`; `<cols>` joins the column names (`expr` for an expression,
//!   repeated names numbered) with `_`;
//! - the whole name is at most 63 bytes: the longer of table and columns part is shortened first,
//!   on a character boundary;
//! - when the name is taken, the label gets a number: `t_c2_key1`, `t_c2_key2`, … Taken means a
//!   relation or a constraint of that name in the schema for keys (whose index is a relation), a
//!   constraint of that name in the schema for CHECK and FOREIGN KEY.
//!
//! Everything here is pure but [`final_constraint_names`], which reads the catalog
//! ([`crate::sql::inspect::CONSTRAINTS_FOR_NAMING`], [`crate::sql::inspect::NAMES_TAKEN_IN_SCHEMA`])
//! for the trial copy, the duplicate-key message and the swap.

use std::collections::HashSet;

use tokio_postgres::GenericClient;

use crate::sql::inspect::{CONSTRAINTS_FOR_NAMING, NAMES_TAKEN_IN_SCHEMA};
use crate::MAX_IDENTIFIER_BYTES;

/// What kind of constraint a name is generated for (`pg_constraint.contype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `p`: `<table>_pkey`.
    Primary,
    /// `u`: `<table>_<cols>_key`.
    Unique,
    /// `x`: `<table>_<cols>_excl`.
    Exclusion,
    /// `f`: `<table>_<cols>_fkey`.
    ForeignKey,
    /// `c`: `<table>_<col>_check` (one column) or `<table>_check`.
    Check,
}

impl Kind {
    /// The kind of a `pg_constraint.contype` letter; `None` for kinds never named this way.
    pub fn from_contype(contype: &str) -> Option<Kind> {
        Some(match contype {
            "p" => Kind::Primary,
            "u" => Kind::Unique,
            "x" => Kind::Exclusion,
            "f" => Kind::ForeignKey,
            "c" => Kind::Check,
            _ => return None,
        })
    }

    /// The label PostgreSQL appends.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Primary => "pkey",
            Kind::Unique => "key",
            Kind::Exclusion => "excl",
            Kind::ForeignKey => "fkey",
            Kind::Check => "check",
        }
    }

    /// Whether an index (a relation) of the candidate name also makes it taken: true for the
    /// kinds backed by an index.
    pub fn has_index(self) -> bool {
        matches!(self, Kind::Primary | Kind::Unique | Kind::Exclusion)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary
/// (`pg_mbcliplen`).
fn clip(s: &str, max: usize) -> &str {
    let mut n = max.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// `makeObjectName(name1, name2, label)`: `name1[_name2]_label`, at most 63 bytes, the longer of
/// `name1` and `name2` shortened first.
pub fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let mut overhead = label.len() + 1;
    if name2.is_some() {
        overhead += 1;
    }
    let avail = MAX_IDENTIFIER_BYTES.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let mut out = clip(name1, n1).to_string();
    if let Some(name2) = name2 {
        out.push('_');
        out.push_str(clip(name2, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// `ChooseIndexColumnNames`: an index's column names in order, `None` (an expression) as
/// `expr`, a repeated name numbered (`a`, `a1`, `a2`), each kept under 64 bytes.
pub fn index_column_names(columns: &[Option<String>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in columns {
        let orig = c.as_deref().unwrap_or("expr");
        let mut name = orig.to_string();
        let mut suffix = 0;
        while out.contains(&name) {
            suffix += 1;
            let n = suffix.to_string();
            name = format!("{}{n}", clip(orig, MAX_IDENTIFIER_BYTES - n.len()));
        }
        out.push(name);
    }
    out
}

/// `ChooseIndexNameAddition` / `ChooseForeignKeyConstraintNameAddition`: the names joined with
/// `_`, stopping once 64 bytes are reached (the final name is shortened by
/// [`make_object_name`]).
pub fn name_addition(names: &[String]) -> String {
    let mut out = String::new();
    for n in names {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(clip(n, MAX_IDENTIFIER_BYTES));
        if out.len() > MAX_IDENTIFIER_BYTES {
            break;
        }
    }
    out
}

/// The middle part of the name for a constraint of `kind` over `columns` (in the constraint's
/// order; `None` for an expression): none for a primary key, the one column of a CHECK that uses
/// exactly one, the joined (and for keys, numbered) names otherwise.
pub fn addition(kind: Kind, columns: &[Option<String>]) -> Option<String> {
    match kind {
        Kind::Primary => None,
        Kind::Check => match columns {
            [Some(one)] => Some(one.clone()),
            _ => None,
        },
        Kind::ForeignKey => Some(name_addition(&columns.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>())),
        Kind::Unique | Kind::Exclusion => Some(name_addition(&index_column_names(columns))),
    }
}

/// `ChooseRelationName` / `ChooseConstraintName`: the first of `<table>[_<addition>]_<label>`,
/// `…_<label>1`, `…_<label>2`, … that `taken` does not report as taken.
pub fn choose_name(table: &str, addition: Option<&str>, kind: Kind, mut taken: impl FnMut(&str) -> bool) -> String {
    let mut pass = 0u32;
    loop {
        let label = if pass == 0 { kind.label().to_string() } else { format!("{}{pass}", kind.label()) };
        let name = make_object_name(table, addition, &label);
        if !taken(&name) {
            return name;
        }
        pass += 1;
    }
}

/// Whether `name` is one PostgreSQL generates on `table` for a constraint of `kind` with
/// `addition` (any numbered label up to 1000): then the ALTER did not name it.
pub fn is_generated(name: &str, table: &str, addition: Option<&str>, kind: Kind) -> bool {
    (0..1000u32).any(|pass| {
        let label = if pass == 0 { kind.label().to_string() } else { format!("{}{pass}", kind.label()) };
        make_object_name(table, addition, &label) == name
    })
}

/// A constraint whose name PostgreSQL generated: its name, kind and name addition.
type Generated = (String, Kind, Option<String>);

/// The final names of the constraints of `rel` (a qualified name) whose names PostgreSQL
/// generated for the table named `generated_on` (the shadow or the trial copy): for each, in
/// creation order, `(name, the name a plain ALTER on the table named target would give it)`,
/// checked against the relations and constraints of the schema and the names chosen before it.
/// Constraints named in `skip` (those that were there before the ALTER ran) and those `only`
/// does not name (when given) are left out.
pub async fn final_constraint_names(
    c: &impl GenericClient,
    rel: &str,
    generated_on: &str,
    target: &str,
    skip: &[String],
    only: Option<&str>,
) -> std::result::Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows: Vec<(String, String, Vec<Option<String>>)> =
        c.query(CONSTRAINTS_FOR_NAMING, &[&rel]).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let found = generated_constraints(&rows, generated_on, skip, only);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut relations = HashSet::new();
    let mut constraints = HashSet::new();
    for r in c.query(NAMES_TAKEN_IN_SCHEMA, &[&rel, &candidates(target, &found)]).await? {
        let (kind, name): (&str, String) = (r.get(0), r.get(1));
        if kind == "r" {
            relations.insert(name);
        } else {
            constraints.insert(name);
        }
    }
    Ok(choose_final_names(target, found, relations, constraints))
}

/// Of `rows` (`(name, contype, columns)` of [`CONSTRAINTS_FOR_NAMING`], in creation order), the
/// constraints whose names PostgreSQL generated for `generated_on`, except those in `skip` and
/// those `only` (when given) does not name.
fn generated_constraints(
    rows: &[(String, String, Vec<Option<String>>)],
    generated_on: &str,
    skip: &[String],
    only: Option<&str>,
) -> Vec<Generated> {
    let mut found = Vec::new();
    for (name, contype, columns) in rows {
        let Some(kind) = Kind::from_contype(contype) else { continue };
        if skip.contains(name) || only.is_some_and(|o| o != name) {
            continue;
        }
        let add = addition(kind, columns);
        if is_generated(name, generated_on, add.as_deref(), kind) {
            found.push((name.clone(), kind, add));
        }
    }
    found
}

/// The names the choice for `found` on `target` may try, whose being taken must be known: the
/// first 100 numbered labels each (a name taken beyond that makes the rename fail and the swap
/// roll back).
fn candidates(target: &str, found: &[Generated]) -> Vec<String> {
    found
        .iter()
        .flat_map(|(_, kind, add)| {
            (0..100u32).map(move |pass| {
                let label = if pass == 0 { kind.label().to_string() } else { format!("{}{pass}", kind.label()) };
                make_object_name(target, add.as_deref(), &label)
            })
        })
        .collect()
}

/// `(generated, chosen)` for each of `found` in order, given the `relations` and `constraints`
/// names taken in the schema; each choice takes its name for those after it.
fn choose_final_names(
    target: &str,
    found: Vec<Generated>,
    mut relations: HashSet<String>,
    mut constraints: HashSet<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, kind, add) in found {
        let chosen =
            choose_name(target, add.as_deref(), kind, |n| constraints.contains(n) || (kind.has_index() && relations.contains(n)));
        constraints.insert(chosen.clone());
        if kind.has_index() {
            relations.insert(chosen.clone());
        }
        out.push((name, chosen));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(c: &[&str]) -> Vec<Option<String>> {
        c.iter().map(|c| if *c == "<expr>" { None } else { Some(c.to_string()) }).collect()
    }

    #[test]
    fn names_are_postgres_defaults() {
        let none = |_: &str| false;
        assert_eq!(choose_name("t", addition(Kind::Unique, &cols(&["c2"])).as_deref(), Kind::Unique, none), "t_c2_key");
        assert_eq!(choose_name("t", addition(Kind::Primary, &cols(&["id"])).as_deref(), Kind::Primary, none), "t_pkey");
        assert_eq!(choose_name("t", addition(Kind::Check, &cols(&["c2"])).as_deref(), Kind::Check, none), "t_c2_check");
        assert_eq!(choose_name("t", addition(Kind::Check, &cols(&["a", "b"])).as_deref(), Kind::Check, none), "t_check");
        assert_eq!(choose_name("t", addition(Kind::Check, &cols(&[])).as_deref(), Kind::Check, none), "t_check");
        assert_eq!(
            choose_name("t", addition(Kind::ForeignKey, &cols(&["a", "b"])).as_deref(), Kind::ForeignKey, none),
            "t_a_b_fkey"
        );
        assert_eq!(
            choose_name("t", addition(Kind::Exclusion, &cols(&["<expr>", "<expr>", "a", "a"])).as_deref(), Kind::Exclusion, none),
            "t_expr_expr1_a_a1_excl"
        );
    }

    #[test]
    fn a_taken_name_gets_a_numbered_label() {
        let taken = ["t_c2_key", "t_c2_key1"];
        assert_eq!(choose_name("t", Some("c2"), Kind::Unique, |n| taken.contains(&n)), "t_c2_key2");
        assert!(is_generated("_t_new_c2_key", "_t_new", Some("c2"), Kind::Unique));
        assert!(is_generated("_t_new_c2_key12", "_t_new", Some("c2"), Kind::Unique));
        assert!(!is_generated("my_key", "_t_new", Some("c2"), Kind::Unique));
        assert!(!is_generated("_t_new_c2_key", "_t_new", Some("c2"), Kind::Check));
    }

    #[test]
    fn long_names_are_shortened_like_postgres() {
        // Checked against PostgreSQL 15: CREATE TABLE <63 × a> (…); ALTER TABLE … ADD UNIQUE (<63 × b>).
        let (t, c) = ("a".repeat(63), "b".repeat(63));
        let name = choose_name(&t, Some(&c), Kind::Unique, |_| false);
        assert_eq!(name, format!("{}_{}_key", "a".repeat(29), "b".repeat(29)));
        assert_eq!(name.len(), 63);
        // The longer part is shortened first.
        assert_eq!(make_object_name("t", Some(&c), "key"), format!("t_{}_key", "b".repeat(57)));
        // On a character boundary (é is two bytes).
        let e = "é".repeat(31);
        assert_eq!(make_object_name(&e, None, "pkey"), format!("{}_pkey", "é".repeat(29)));
        // Many columns: the addition stops past 63 bytes, the name is shortened.
        let many: Vec<String> = (0..20).map(|i| format!("column_{i}")).collect();
        let add = name_addition(&many);
        assert!(add.len() > 63 && add.len() < 80, "{add}");
        assert_eq!(make_object_name("t", Some(&add), "key").len(), 63);
        assert_eq!(index_column_names(&cols(&["a", "a", "a"])), ["a", "a1", "a2"]);
    }

    #[test]
    fn generated_names_of_the_shadow_become_the_tables() {
        let row = |n: &str, t: &str, c: &[&str]| (n.to_string(), t.to_string(), cols(c));
        let rows = [
            row("_t_new_pkey", "p", &["id"]),
            row("t_pkey", "p", &["id"]),
            row("mine", "u", &["c2"]),
            row("_t_new_c2_key", "u", &["c2"]),
            row("_t_new_c3_check", "c", &["c3"]),
            row("_t_new_c2_key1", "u", &["c2"]),
            row("not_a_kind", "t", &["c2"]),
        ];
        let found = generated_constraints(&rows, "_t_new", &["_t_new_pkey".to_string()], None);
        let names: Vec<&str> = found.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["_t_new_c2_key", "_t_new_c3_check", "_t_new_c2_key1"]);
        assert_eq!(generated_constraints(&rows, "_t_new", &[], Some("_t_new_c3_check")).len(), 1);
        let tries = candidates("t", &found);
        assert_eq!(tries.len(), 300);
        assert_eq!((tries[0].as_str(), tries[1].as_str(), tries[100].as_str()), ("t_c2_key", "t_c2_key1", "t_c3_check"));
        // t_c2_key is an index (a relation) already: keys skip it, the CHECK does not care.
        let relations = HashSet::from(["t_c2_key".to_string()]);
        assert_eq!(
            choose_final_names("t", found, relations, HashSet::new()),
            [
                ("_t_new_c2_key".to_string(), "t_c2_key1".to_string()),
                ("_t_new_c3_check".to_string(), "t_c3_check".to_string()),
                ("_t_new_c2_key1".to_string(), "t_c2_key2".to_string()),
            ]
        );
    }
}
