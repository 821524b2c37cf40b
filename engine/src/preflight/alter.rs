//! Lexical analysis of the user's ALTER spec (what follows `ALTER TABLE t`).
//!
//! The server is the judge of whether an ALTER is valid: preflight applies it to a private trial
//! copy and reads back the resulting shape. What this module decides, from `sqlparser`'s tokenizer
//! (so quoting, strings and comments are handled the way SQL handles them), is what the server
//! cannot tell us:
//! - the spec is one statement (no `;`, also not inside an executable `/*! … */` or MariaDB
//!   `/*M! … */` comment, whose text is read as code, as the server does);
//! - it does not rename or move the table (`RENAME TO`, `SET SCHEMA`) or swap data in from another
//!   table (`EXCHANGE PARTITION`);
//! - which columns it renames (`CHANGE old new …`, `RENAME COLUMN old TO new`), so data can be
//!   carried over from the old name once the operator approves;
//! - which columns it drops (`DROP [COLUMN] [IF EXISTS] c`) and adds (`ADD [COLUMN] [IF NOT EXISTS]
//!   c …`, MariaDB's `ADD (c …, d …)`), so a column dropped (or renamed away) and added again
//!   under the same name is filled like a new column, as a plain ALTER fills it, instead of
//!   being copied from the old column of that name.
//!
//! Names are returned as the server resolves them: on PostgreSQL an unquoted identifier is
//! folded to lower case (PostgreSQL docs, "Identifiers and Key Words"); MySQL/MariaDB column names
//! are case-insensitive and are compared that way by the plan.
//!
//! sqlparser's full parser is not used for the clauses because it does not know several MySQL
//! table options (`FORCE`, `ENGINE=…`, `CONVERT TO CHARACTER SET …`, `COMMENT=…`).

use sqlparser::dialect::Dialect as SqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::error::{Error, Result};

/// What the ALTER spec does, as far as the engine needs to know before asking the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterAnalysis {
    /// The ALTER spec as given (what follows `ALTER TABLE t`), run verbatim on the trial copy
    /// and the shadow; the server is the judge of its meaning.
    pub spec: String,
    /// The top-level, comma-separated clauses, whitespace-normalised, for the plan.
    pub clauses: Vec<String>,
    /// Columns renamed by the ALTER: `(old, new)`.
    pub renamed_columns: Vec<(String, String)>,
    /// Columns the ALTER drops (`DROP [COLUMN] [IF EXISTS] c`), as written (folded on
    /// PostgreSQL). A name may also be in `added_columns`: dropped and added again.
    pub dropped_columns: Vec<String>,
    /// Columns the ALTER adds (`ADD [COLUMN] [IF NOT EXISTS] c …`, `ADD (c …, d …)`).
    pub added_columns: Vec<String>,
}

/// Analyse `spec` with the tokenizer of `dialect`.
///
/// Errors (all [`Error::Refused`]): empty spec, a whole `ALTER TABLE` statement instead of its
/// spec, unbalanced quotes or parentheses, more than one statement, executable comments, and
/// clauses that rename or move the table.
pub fn analyze(spec: &str, dialect: &dyn SqlDialect) -> Result<AlterAnalysis> {
    let tokenize = |text: &str| {
        Tokenizer::new(dialect, text)
            .tokenize()
            .map_err(|e| Error::refused(format!("cannot parse the ALTER spec: {e}; check its quoting")))
    };
    // MariaDB also runs the text of `/*M!…*/` comments (the tokenizer already expands MySQL's
    // `/*!…*/`): read it as code, so nothing can hide there either.
    let mut tokens = Vec::new();
    for tok in tokenize(spec)? {
        match &tok {
            Token::Whitespace(Whitespace::MultiLineComment(c)) if c.starts_with("M!") => {
                tokens.extend(tokenize(c[2..].trim_start_matches(|ch: char| ch.is_ascii_digit()))?);
            }
            _ => tokens.push(tok),
        }
    }

    let mut clauses: Vec<Vec<Token>> = vec![Vec::new()];
    let mut depth: i32 = 0;
    for tok in tokens {
        match &tok {
            Token::Whitespace(_) => continue,
            Token::SemiColon => {
                return Err(Error::refused("the ALTER spec contains ';': give one ALTER spec, not several statements"));
            }
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth < 0 {
                    return Err(Error::refused("the ALTER spec has an unbalanced ')'"));
                }
            }
            Token::Comma if depth == 0 => {
                clauses.push(Vec::new());
                continue;
            }
            _ => {}
        }
        clauses.last_mut().expect("never empty").push(tok);
    }
    if depth != 0 {
        return Err(Error::refused("the ALTER spec has an unbalanced '('"));
    }
    if clauses.iter().all(Vec::is_empty) {
        return Err(Error::refused("the ALTER spec is empty; give what follows ALTER TABLE t, e.g. \"ADD COLUMN c INT NULL\""));
    }
    if clauses.iter().any(Vec::is_empty) {
        return Err(Error::refused("the ALTER spec has an empty clause (two commas in a row, or a trailing comma)"));
    }

    let mut out = AlterAnalysis { spec: spec.to_string(), ..AlterAnalysis::default() };
    let fold = Fold { lower_unquoted: dialect.is::<sqlparser::dialect::PostgreSqlDialect>() };
    for clause in &clauses {
        out.clauses.push(clause.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "));
        analyze_clause(clause, fold, &mut out)?;
    }
    Ok(out)
}

fn keyword(tok: Option<&Token>) -> Option<Keyword> {
    match tok {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    }
}

/// How the server resolves an identifier written in the spec.
#[derive(Clone, Copy)]
struct Fold {
    /// PostgreSQL folds unquoted identifiers to lower case.
    lower_unquoted: bool,
}

fn ident_folded(tok: Option<&Token>, fold: Fold) -> Option<String> {
    match tok {
        Some(Token::Word(w)) if w.quote_style.is_none() && fold.lower_unquoted => Some(w.value.to_ascii_lowercase()),
        Some(Token::Word(w)) => Some(w.value.clone()),
        _ => None,
    }
}

/// Whether the clause's word at `i` is the unquoted keyword `k`.
fn is_kw(c: &[Token], i: usize, k: Keyword) -> bool {
    keyword(c.get(i)) == Some(k)
}

/// The index of the column name in `ADD …` / `DROP …` (after the clause's first word), or `None`
/// when the clause is about something else (an index, a constraint, a partition, …).
/// `if_words` is the length of the optional `IF [NOT] EXISTS`.
fn column_name_at(c: &[Token], if_words: usize) -> Option<usize> {
    let mut i = 1;
    if is_kw(c, 1, Keyword::COLUMN) {
        i = 2;
    } else {
        // What else MariaDB and PostgreSQL ADD or DROP at the top level of an ALTER TABLE.
        let other = matches!(
            keyword(c.get(1)),
            Some(
                Keyword::CONSTRAINT
                    | Keyword::INDEX
                    | Keyword::KEY
                    | Keyword::PRIMARY
                    | Keyword::FOREIGN
                    | Keyword::UNIQUE
                    | Keyword::FULLTEXT
                    | Keyword::SPATIAL
                    | Keyword::CHECK
                    | Keyword::PARTITION
                    | Keyword::EXCLUDE
            )
        ) || (is_kw(c, 1, Keyword::SYSTEM) && is_kw(c, 2, Keyword::VERSIONING))
            || (is_kw(c, 1, Keyword::PERIOD) && is_kw(c, 2, Keyword::FOR));
        if other {
            return None;
        }
    }
    if is_kw(c, i, Keyword::IF) {
        i += if_words;
    }
    Some(i)
}

fn analyze_clause(c: &[Token], fold: Fold, out: &mut AlterAnalysis) -> Result<()> {
    let ident = |tok: Option<&Token>| ident_folded(tok, fold);
    let rename_table = || {
        Error::refused(
            "the ALTER renames the table; shadowswap swaps tables by name, so rename it in a separate statement \
             before or after the migration",
        )
    };
    match keyword(c.first()) {
        Some(Keyword::ALTER) if matches!(keyword(c.get(1)), Some(Keyword::TABLE | Keyword::IGNORE)) => {
            Err(Error::refused("--alter takes what follows ALTER TABLE t (e.g. \"ADD COLUMN c INT\"), not the whole statement"))
        }
        Some(Keyword::RENAME) => match keyword(c.get(1)) {
            None if c.len() == 1 => Err(rename_table()),
            Some(Keyword::TO | Keyword::AS) => Err(rename_table()),
            Some(Keyword::INDEX | Keyword::KEY | Keyword::CONSTRAINT) => Ok(()),
            Some(Keyword::COLUMN) => {
                let mut i = 2;
                if keyword(c.get(i)) == Some(Keyword::IF) {
                    i += 2; // IF EXISTS
                }
                let (Some(old), Some(Keyword::TO), Some(new)) = (ident(c.get(i)), keyword(c.get(i + 1)), ident(c.get(i + 2)))
                else {
                    return Err(Error::refused("cannot read RENAME COLUMN: expected RENAME COLUMN old TO new"));
                };
                out.renamed_columns.push((old, new));
                Ok(())
            }
            _ => match (ident(c.get(1)), keyword(c.get(2)), ident(c.get(3))) {
                // PostgreSQL's `RENAME old TO new` renames a column.
                (Some(old), Some(Keyword::TO), Some(new)) => {
                    out.renamed_columns.push((old, new));
                    Ok(())
                }
                // MySQL's `RENAME new_name` renames the table.
                _ => Err(rename_table()),
            },
        },
        Some(Keyword::CHANGE) => {
            let mut i = 1;
            if keyword(c.get(i)) == Some(Keyword::COLUMN) {
                i += 1;
            }
            if keyword(c.get(i)) == Some(Keyword::IF) {
                i += 2;
            }
            let (Some(old), Some(new)) = (ident(c.get(i)), ident(c.get(i + 1))) else {
                return Err(Error::refused("cannot read CHANGE: expected CHANGE [COLUMN] old new type"));
            };
            if old != new {
                out.renamed_columns.push((old, new));
            }
            Ok(())
        }
        Some(Keyword::DROP) => {
            // `DROP [COLUMN] [IF EXISTS] c [CASCADE | RESTRICT]`
            if let Some(name) = column_name_at(c, 2).and_then(|i| ident(c.get(i))) {
                out.dropped_columns.push(name);
            }
            Ok(())
        }
        Some(Keyword::ADD) => {
            // `ADD [COLUMN] [IF NOT EXISTS] c …` or MariaDB's `ADD [COLUMN] (c …, d …)`
            let Some(i) = column_name_at(c, 3) else { return Ok(()) };
            if c.get(i) == Some(&Token::LParen) {
                let mut depth = 0;
                let mut expect_name = true;
                for tok in &c[i..] {
                    match tok {
                        Token::LParen => {
                            depth += 1;
                            if depth == 1 {
                                continue;
                            }
                        }
                        Token::RParen => depth -= 1,
                        Token::Comma if depth == 1 => {
                            expect_name = true;
                            continue;
                        }
                        _ => {}
                    }
                    if expect_name && depth == 1 {
                        out.added_columns.extend(ident(Some(tok)));
                        expect_name = false;
                    }
                }
            } else if let Some(name) = ident(c.get(i)) {
                out.added_columns.push(name);
            }
            Ok(())
        }
        Some(Keyword::SET) if keyword(c.get(1)) == Some(Keyword::SCHEMA) => {
            Err(Error::refused("the ALTER moves the table to another schema; do that separately, before or after the migration"))
        }
        Some(Keyword::EXCHANGE) => Err(Error::refused(
            "EXCHANGE PARTITION swaps data with another table and cannot run on a shadow copy; run it directly",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};

    fn my(spec: &str) -> Result<AlterAnalysis> {
        analyze(spec, &MySqlDialect {})
    }

    fn refused(spec: &str) -> String {
        match my(spec) {
            Err(Error::Refused(m)) => m,
            other => panic!("{spec:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn plain_clauses_pass_and_are_split() {
        let a = my("ADD COLUMN c INT NULL, DROP COLUMN d, FORCE, ENGINE=InnoDB, ADD KEY k (a, b)").unwrap();
        assert_eq!(a.clauses.len(), 5);
        assert!(a.renamed_columns.is_empty());
        assert_eq!(a.clauses[4], "ADD KEY k ( a , b )");
    }

    #[test]
    fn renames_are_found() {
        let a = my("CHANGE COLUMN `old name` new_name INT, RENAME COLUMN x TO y, CHANGE same same BIGINT").unwrap();
        assert_eq!(a.renamed_columns, vec![("old name".to_string(), "new_name".to_string()), ("x".into(), "y".into())]);
        let pg = analyze("RENAME a TO b", &PostgreSqlDialect {}).unwrap();
        assert_eq!(pg.renamed_columns, vec![("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn table_renames_and_moves_are_refused() {
        for spec in ["RENAME TO x", "RENAME AS x", "RENAME x", "ADD COLUMN c INT, RENAME TO x"] {
            assert!(refused(spec).contains("renames the table"), "{spec}");
        }
        assert!(analyze("SET SCHEMA other", &PostgreSqlDialect {}).is_err());
        assert!(refused("EXCHANGE PARTITION p WITH TABLE x").contains("EXCHANGE"));
        assert!(my("RENAME INDEX a TO b").is_ok());
    }

    #[test]
    fn injection_and_malformed_specs_are_refused() {
        assert!(refused("ADD COLUMN c INT; DROP TABLE t").contains("';'"));
        // MySQL runs the text of executable comments; the tokenizer reads it as code too, so
        // nothing can hide there.
        assert!(refused("ADD COLUMN c INT /*!50000 ; DROP TABLE t */").contains("';'"));
        assert!(refused("ADD COLUMN c INT /*!50000 , RENAME TO x */").contains("renames the table"));
        // MariaDB's own executable comments, too.
        assert!(refused("ADD COLUMN c INT /*M! ; DROP TABLE t */").contains("';'"));
        assert!(refused("ADD COLUMN c INT /*M!100301 , RENAME TO x */").contains("renames the table"));
        assert!(my("ADD COLUMN c INT /* M! not code */").is_ok());
        assert!(refused("ADD COLUMN c VARCHAR(10) DEFAULT 'x").contains("quoting"));
        assert!(refused("ADD KEY k (a").contains("unbalanced"));
        assert!(refused("  ").contains("empty"));
        assert!(refused("ADD COLUMN a INT,").contains("empty clause"));
        assert!(refused("ALTER TABLE t ADD COLUMN c INT").contains("not the whole statement"));
        // A ';' inside a string is data, not a statement separator.
        assert!(my("ADD COLUMN c VARCHAR(5) DEFAULT ';'").is_ok());
        assert!(my("ALTER COLUMN c SET DEFAULT 5").is_ok());
    }

    #[test]
    fn drops_and_adds_are_found() {
        let a = my("DROP COLUMN c, ADD COLUMN c INT DEFAULT 7, DROP d, ADD e INT, DROP COLUMN IF EXISTS f, \
                    ADD COLUMN IF NOT EXISTS g INT, ADD (h INT, i DECIMAL(5, 2) DEFAULT 1), DROP `PRIMARY`")
        .unwrap();
        assert_eq!(a.dropped_columns, vec!["c", "d", "f", "PRIMARY"]);
        assert_eq!(a.added_columns, vec!["c", "e", "g", "h", "i"]);
        // Indexes, keys, constraints, partitions, versioning and periods are not columns.
        let a = my("DROP PRIMARY KEY, DROP INDEX c, DROP KEY c, DROP FOREIGN KEY c, DROP CONSTRAINT c, DROP CHECK c, \
                    DROP PARTITION p, DROP SYSTEM VERSIONING, DROP PERIOD FOR SYSTEM_TIME, ADD PRIMARY KEY (id), \
                    ADD UNIQUE KEY u (c), ADD INDEX (c), ADD KEY k (c), ADD FULLTEXT (c), ADD CONSTRAINT x CHECK (c > 0), \
                    ADD CHECK (c > 0), ADD FOREIGN KEY (c) REFERENCES p (id), ADD PARTITION (PARTITION p2 VALUES LESS THAN (5))")
        .unwrap();
        assert!(a.dropped_columns.is_empty(), "{:?}", a.dropped_columns);
        assert!(a.added_columns.is_empty(), "{:?}", a.added_columns);
        // A column whose name is a non-reserved word is still a column.
        assert_eq!(my("DROP name, ADD COLUMN name INT").unwrap().dropped_columns, vec!["name"]);
        // MODIFY and CHANGE keep data: neither drops.
        let a = my("MODIFY c BIGINT, CHANGE d d BIGINT").unwrap();
        assert!(a.dropped_columns.is_empty() && a.added_columns.is_empty() && a.renamed_columns.is_empty());
    }

    #[test]
    fn postgres_folds_unquoted_names() {
        let pg = |spec: &str| analyze(spec, &PostgreSqlDialect {}).unwrap();
        let a = pg(r#"DROP COLUMN Cc CASCADE, ADD COLUMN cc int DEFAULT 1, DROP "Dd", ADD "Dd" int, DROP IF EXISTS e RESTRICT"#);
        assert_eq!(a.dropped_columns, vec!["cc", "Dd", "e"]);
        assert_eq!(a.added_columns, vec!["cc", "Dd"]);
        assert!(pg("DROP CONSTRAINT c, ADD CONSTRAINT c CHECK (x > 0), ADD EXCLUDE USING gist (x WITH &&)")
            .dropped_columns
            .is_empty());
        assert_eq!(pg("RENAME COLUMN Aa TO Bb").renamed_columns, vec![("aa".to_string(), "bb".to_string())]);
    }
}
