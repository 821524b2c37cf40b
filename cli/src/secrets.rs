//! Passwords never reach the terminal. Every line the command prints to stderr — its error line,
//! clap's usage errors, every log line at every level — goes through [`scrub`], which removes:
//! - any URL userinfo password (`scheme://user:PASSWORD@…`) and any `password=VALUE` (a query
//!   string, a libpq `key=value` string) in the text, whoever put it there;
//! - every password the command was given, wherever it appears: the password of each DSN-like
//!   argument (raw and percent-decoded) and `MYSQL_PWD` / `PGPASSWORD`
//!   ([`register_from_args_and_env`]) — unless it is also shown by design (a password equal to
//!   the user name, the host or the database of an argument cannot be hidden by removing it, and
//!   removing it would blank every such name in the logs).
//!
//! The messages shadowswap builds already show DSNs without their password (the dialects' `Dsn`
//! `Display`); this is the net under everything else (driver messages, clap echoing a mistyped
//! argument).

use std::sync::OnceLock;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// What replaces a password.
const MASK: &str = "***";

/// Literal secrets shorter than this are only removed where they appear as a URL password (a
/// two-letter password would otherwise blank every such pair of letters in the output).
const MIN_LITERAL: usize = 4;

/// Remember the passwords in the command line `args` and in `MYSQL_PWD` / `PGPASSWORD`, for
/// [`scrub`]. Call once, before anything is printed.
pub fn register_from_args_and_env(args: &[String]) {
    let env: Vec<String> = ["MYSQL_PWD", "PGPASSWORD"].iter().filter_map(|v| std::env::var(v).ok()).collect();
    let _ = SECRETS.set(literal_secrets(args, &env));
}

/// The passwords in `args` and `env` to remove wherever they appear, longest first: at least
/// [`MIN_LITERAL`] characters, and not shown by design in an argument (see the module docs).
fn literal_secrets(args: &[String], env: &[String]) -> Vec<String> {
    let mut found: Vec<String> = args.iter().flat_map(|a| passwords_in(a)).collect();
    found.extend(env.iter().cloned());
    // What the arguments show once their passwords are masked: a secret found there is shown by
    // design (the user name, say).
    let public: Vec<String> = args.iter().map(|a| scrub_patterns(a)).collect();
    found.retain(|s| s.chars().count() >= MIN_LITERAL && !public.iter().any(|p| p.contains(s.as_str())));
    // As JSON logs write them (quotes, backslashes and control characters escaped).
    let escaped: Vec<String> = found
        .iter()
        .filter_map(|s| serde_json::to_string(s).ok().map(|q| q[1..q.len() - 1].to_string()))
        .filter(|e| !found.contains(e))
        .collect();
    found.extend(escaped);
    // Longest first, so a password that contains another is removed whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// Password candidates in one DSN-like string: every `scheme://user:PASSWORD@` (the userinfo
/// ending at the first and at the last `@`, as different parsers read it) and every
/// `password=VALUE` (up to `&` or whitespace, or a single-quoted value), raw and percent-decoded.
pub fn passwords_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |raw: &str| {
        if raw.is_empty() {
            return;
        }
        out.push(raw.to_string());
        if let Some(d) = percent_decode(raw).filter(|d| d != raw) {
            out.push(d);
        }
    };
    let mut from = 0;
    while let Some(i) = s[from..].find("://") {
        let start = from + i + 3;
        let rest = &s[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let authority = &rest[..end];
        for at in [authority.find('@'), authority.rfind('@')].into_iter().flatten() {
            if let Some((_, pw)) = authority[..at].split_once(':') {
                push(pw);
            }
        }
        from = start;
    }
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        from += i + "password".len();
        let Some(j) = value_start(s, from) else { continue };
        let value = &s[j..];
        if let Some(quoted) = value.strip_prefix('\'') {
            let end = quoted.find('\'').unwrap_or(quoted.len());
            push(&quoted[..end]);
            push(quoted.split(char::is_whitespace).next().unwrap_or(""));
        } else {
            let end = value.find(|c: char| c == '&' || c.is_whitespace()).unwrap_or(value.len());
            push(&value[..end]);
        }
    }
    out
}

/// RFC 3986 percent-decoding (a stray `%` stays); `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `text` without any registered password and without the password of any URL userinfo in it.
pub fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    for secret in SECRETS.get().map(Vec::as_slice).unwrap_or_default() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    scrub_patterns(&out)
}

/// [`scrub_userinfo`] and [`scrub_password_params`].
fn scrub_patterns(text: &str) -> String {
    scrub_password_params(&scrub_userinfo(text))
}

/// Replace `VALUE` in every `password = VALUE` of `text` (any case; the value up to `&`,
/// whitespace or a quote, or a whole single-quoted value).
fn scrub_password_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        from += i + "password".len();
        let Some(mut j) = value_start(text, from) else { continue };
        let end = if b.get(j) == Some(&b'\'') {
            j += 1;
            text[j..].find('\'').map_or(text.len(), |e| j + e)
        } else {
            text[j..].find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace()).map_or(text.len(), |e| j + e)
        };
        if end > j {
            out.push_str(&text[copied..j]);
            out.push_str(MASK);
            copied = end;
        }
        from = end.max(from);
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the value of a `password` keyword that ends at byte `after` of `text` starts: past
/// spaces, `=` and spaces. `None` when no `=` follows (the word is not a parameter name).
fn value_start(text: &str, after: usize) -> Option<usize> {
    let b = text.as_bytes();
    let skip_spaces = |mut j: usize| {
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        j
    };
    let eq = skip_spaces(after);
    (b.get(eq) == Some(&b'=')).then(|| skip_spaces(eq + 1))
}

/// Replace `PASSWORD` in every `scheme://user:PASSWORD@host` of `text` (the userinfo ending at
/// the last `@` before whitespace or a quote).
fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`').unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_passwords_in_every_dsn_form() {
        assert_eq!(passwords_in("mysql://app:s%40cret@db/x"), vec!["s%40cret", "s@cret", "s%40cret", "s@cret"]);
        assert_eq!(percent_decode("a%2B%zz%"), Some("a+%zz%".to_string()));
        assert_eq!(passwords_in("postgres://u:a@b@h/db")[..2], ["a".to_string(), "a@b".to_string()]);
        assert!(passwords_in("postgres://u@h/db?password=Top%26Secret&sslmode=require").contains(&"Top&Secret".to_string()));
        assert!(passwords_in("host=h user=u password = 'two words' dbname=d").contains(&"two words".to_string()));
        assert!(passwords_in("host=h PASSWORD=plain dbname=d").contains(&"plain".to_string()));
        assert!(passwords_in("--table t").is_empty());
    }

    #[test]
    fn literal_secrets_leave_out_what_is_shown_by_design() {
        let args: Vec<String> =
            ["alter", "--dsn", "mysql://shadowswap:shadowswap@h/db", "--replica", "mysql://app:Secr3t-1@h/db"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(literal_secrets(&args, &["envpw-long".into(), "ab".into()]), vec!["envpw-long", "Secr3t-1"]);
        assert_eq!(literal_secrets(&[], &["a\"b\\c".into()]), vec!["a\\\"b\\\\c", "a\"b\\c"]);
    }

    #[test]
    fn scrubs_password_parameters_anywhere() {
        assert_eq!(scrub_password_params("host=h password=abc dbname=d"), "host=h password=*** dbname=d");
        assert_eq!(scrub_password_params("x?PASSWORD=a%26b&sslmode=require"), "x?PASSWORD=***&sslmode=require");
        assert_eq!(scrub_password_params("password = 'two words' port=1"), "password = '***' port=1");
        assert_eq!(scrub_password_params("password authentication failed"), "password authentication failed");
        assert_eq!(scrub_password_params("'password=pw' and password="), "'password=***' and password=");
    }

    #[test]
    fn scrubs_url_passwords_anywhere() {
        assert_eq!(scrub_userinfo("--replica \"mysql://u:pw@h:1/d\" bad"), "--replica \"mysql://u:***@h:1/d\" bad");
        assert_eq!(scrub_userinfo("x postgres://u:a@b@h/d y"), "x postgres://u:***@h/d y");
        assert_eq!(scrub_userinfo("mysql://u@h/d and https://example.com/x"), "mysql://u@h/d and https://example.com/x");
    }
}
