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
//!   carried over from the old name once the operator approves.
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
    /// The top-level, comma-separated clauses, whitespace-normalised, for the plan.
    pub clauses: Vec<String>,
    /// Columns renamed by the ALTER: `(old, new)`.
    pub renamed_columns: Vec<(String, String)>,
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

    let mut out = AlterAnalysis::default();
    for clause in &clauses {
        out.clauses.push(clause.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "));
        analyze_clause(clause, &mut out)?;
    }
    Ok(out)
}

fn keyword(tok: Option<&Token>) -> Option<Keyword> {
    match tok {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    }
}

fn ident(tok: Option<&Token>) -> Option<String> {
    match tok {
        Some(Token::Word(w)) => Some(w.value.clone()),
        _ => None,
    }
}

fn analyze_clause(c: &[Token], out: &mut AlterAnalysis) -> Result<()> {
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
}
