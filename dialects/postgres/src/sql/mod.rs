//! Pure SQL builders for PostgreSQL, one submodule per phase. Nothing here talks to a server:
//! every function takes plain data (the plan, names, catalog facts already read) and returns SQL
//! text; catalog queries are constants (their bind parameters documented as `$1`, `$2`, …). The
//! I/O modules ([`crate::inspect`], [`crate::cutover`], …) call these and run the result, and the
//! dry run ([`crate::dry_run::plan_sql`]) prints what the same builders produce.
//!
//! This file holds the quoting every builder uses:
//! - [`Ident`] / [`Qualified`] — identifiers we quote ourselves;
//! - [`literal`] — string literals that read the same under any server setting;
//! - [`dollar_quote`] — function bodies;
//! - [`ServerQuoted`] — text the server printed ready to paste (`quote_ident`, `format('%I')`,
//!   `::regclass::text`, `pg_get_*def`): the only text pasted raw, and only ever read from the
//!   catalog. (The staged backfill's `--set`/`--where` are the operator's own SQL, pasted as
//!   given after their checks: see [`staged_backfill`].)
//!
//! Submodules, in phase order: [`connect`] (session, lock timeout, run lock), [`inspect`],
//! [`preflight`], [`trial`] (the ALTER on a scratch copy), [`shadow`], [`capture`], [`copy`]
//! (key ranges, chunks, checksum), [`checkpoint`] (the checkpoint table and each chunk's advance),
//! [`signals`], [`cutover`] (the swap) and [`acl`] (its grants), [`revert`] (the revert window's
//! reverse capture and swap back), and by concept [`deps`] (dependents carried over) and [`owner`]
//! (working as the table's owner); [`fault`] holds the fault rehearsals' statements
//! (`--inject-fault`); the staged path: [`staged_backfill`] (the in-place backfill's chunk
//! UPDATE, counts, trial), [`staged_contract`] (the contract's steps: NOT VALID + VALIDATE,
//! CONCURRENTLY), [`staged_migrate`] (`shadowswap migrate`'s history table).

use std::fmt;

use tokio_postgres::types::{FromSql, Type};

use shadowswap_engine::model::TableRef;

pub mod acl;
pub mod capture;
pub mod checkpoint;
pub mod connect;
pub mod copy;
pub mod cutover;
pub mod deps;
pub mod fault;
pub mod inspect;
pub mod owner;
pub mod preflight;
pub mod revert;
pub mod shadow;
pub mod signals;
pub mod staged_backfill;
pub mod staged_contract;
pub mod staged_migrate;
pub mod trial;

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

/// "a", "b" with an optional prefix per name (e.g. `NEW.`).
pub fn column_list<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|n| format!("{prefix}{}", Ident(n))).collect::<Vec<_>>().join(", ")
}

/// Storage parameters as `pg_class.reloptions` / `pg_attribute.attoptions` hold them
/// (`name=value` each), as the list `SET (…)` takes: `prefix` + `name = 'value'`, the value a
/// [`literal`]. An entry whose name is not a plain (lower-case, digits, `_`) word, which
/// PostgreSQL never stores, is left out; `None` when nothing is left.
pub fn storage_parameters(raw: &[String], prefix: &str) -> Option<String> {
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let list: Vec<String> = raw
        .iter()
        .filter_map(|o| o.split_once('='))
        .filter(|(k, _)| plain(k))
        .map(|(k, v)| format!("{prefix}{k} = {}", literal(v)))
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
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

/// Text the server printed ready to paste into SQL: a name it quoted (`quote_ident`,
/// `format('%I')`, `oid::regclass::text`, `pg_get_serial_sequence`) or a definition it wrote
/// (`pg_get_viewdef`, `pg_get_constraintdef`, `pg_get_triggerdef`, `pg_get_functiondef`,
/// `pg_get_ruledef`, `pg_get_expr` inside a `format()`). Catalog reads print these with
/// `search_path = pg_catalog`, so names come schema-qualified.
///
/// The only way to get one is to read it from a row (`row.get::<_, ServerQuoted>(i)`, through
/// [`FromSql`] for `text`/`name`, arrays and NULLs included): a `String` of our own making can
/// never be pasted raw by mistake. Everything else a builder puts into SQL goes through
/// [`Ident`], [`Qualified`], [`literal`] or [`dollar_quote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerQuoted(String);

impl ServerQuoted {
    /// The text as the server printed it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A value for builder tests, standing for what the catalog would print.
    #[cfg(test)]
    pub(crate) fn test(s: &str) -> ServerQuoted {
        ServerQuoted(s.to_string())
    }
}

impl fmt::Display for ServerQuoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> FromSql<'a> for ServerQuoted {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        <String as FromSql>::from_sql(ty, raw).map(ServerQuoted)
    }

    fn accepts(ty: &Type) -> bool {
        <String as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(Ident("a\"b").to_string(), "\"a\"\"b\"");
        assert_eq!(Qualified(&TableRef::new("public", "T")).to_string(), "\"public\".\"T\"");
        assert_eq!(literal("it's"), "E'it''s'");
        assert_eq!(column_list("NEW.", ["a", "B\"c"]), "NEW.\"a\", NEW.\"B\"\"c\"");
        assert_eq!(ServerQuoted::test("public.\"T\"").to_string(), "public.\"T\"");
    }

    #[test]
    fn storage_parameters_are_quoted_values_of_plain_names() {
        let o = ["fillfactor=70".to_string(), "Bad Name=1".into(), "check_option=it's".into(), "no_equals".into()];
        assert_eq!(storage_parameters(&o, "").unwrap(), "fillfactor = E'70', check_option = E'it''s'");
        assert_eq!(storage_parameters(&o[..1], "toast.").unwrap(), "toast.fillfactor = E'70'");
        assert_eq!(storage_parameters(&[], ""), None);
        assert_eq!(storage_parameters(&["X=1".into()], ""), None);
    }

    #[test]
    fn server_quoted_reads_text_only() {
        assert!(<ServerQuoted as FromSql>::accepts(&Type::TEXT));
        assert!(<ServerQuoted as FromSql>::accepts(&Type::NAME));
        assert!(!<ServerQuoted as FromSql>::accepts(&Type::INT4));
        assert_eq!(<ServerQuoted as FromSql>::from_sql(&Type::TEXT, b"public.t").unwrap().as_str(), "public.t");
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
}
