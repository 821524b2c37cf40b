//! What the PostgreSQL dialect knows about an ALTER's text, in one place. Every function reads
//! the engine's [`AlterAnalysis`] (done once, passed to the dialect), never the raw text again:
//! the clauses for type changes with `USING` and for metadata-only candidates, the spec's tokens
//! for the names of indexes and constraints it refers to.

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::{Error, Result};

/// Refuses an ALTER with a type change that converts with a `USING` expression: the copy
/// converts a column's values with the type's assignment cast, which is what `ALTER COLUMN …
/// TYPE` does without `USING`; the expression would be silently ignored.
/// Errors: [`Error::Refused`] naming the clause.
pub fn refuse_type_change_with_using(alter: &AlterAnalysis) -> Result<()> {
    match alter.clauses.iter().find(|c| type_change_with_using(c)) {
        Some(c) => Err(Error::refused(format!(
            "the clause \"{c}\" converts with a USING expression, which shadowswap's copy cannot apply (it uses the \
             type's assignment cast); add a new column and fill it yourself, or run that clause directly"
        ))),
        None => Ok(()),
    }
}

/// Whether every clause of the ALTER is of a kind that may be metadata-only
/// ([`metadata_only_clause`]); the server has the last word on a scratch copy.
pub fn may_be_metadata_only(alter: &AlterAnalysis) -> bool {
    alter.clauses.iter().all(|c| metadata_only_clause(c))
}

/// The names of existing indexes and constraints the ALTER refers to
/// ([`referenced_index_or_constraint_names`] of its spec).
pub fn referenced_names(alter: &AlterAnalysis) -> Vec<String> {
    referenced_index_or_constraint_names(&alter.spec)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(spec: &str) -> AlterAnalysis {
        shadowswap_engine::alter::analyze(spec, &sqlparser::dialect::PostgreSqlDialect {}).unwrap()
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
    fn the_analysis_is_read_not_the_text_again() {
        let e = refuse_type_change_with_using(&analysis("ADD COLUMN c int, ALTER COLUMN amount TYPE bigint USING amount * 100"));
        assert!(e.unwrap_err().to_string().contains("converts with a USING expression"));
        assert!(refuse_type_change_with_using(&analysis("ALTER COLUMN amount TYPE bigint")).is_ok());
        assert!(may_be_metadata_only(&analysis("ADD COLUMN c int DEFAULT 7, DROP COLUMN d")));
        assert!(!may_be_metadata_only(&analysis("ADD COLUMN c int, ALTER COLUMN c SET NOT NULL")));
        assert_eq!(referenced_names(&analysis("DROP CONSTRAINT t_c_key, ADD COLUMN x int")), ["t_c_key"]);
    }
}
