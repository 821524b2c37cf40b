//! Classification of `tokio-postgres` errors into the engine's [`Error`], done once here: every
//! SQLSTATE and every reading of a server message the dialect acts on.
//! SQLSTATE codes: PostgreSQL documentation, "Appendix A. PostgreSQL Error Codes".

use shadowswap_engine::error::ErrorClass;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::Error;
use tokio_postgres::error::SqlState;

/// The SQLSTATE of `e`, if the server sent one.
pub fn state(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// Server message with its DETAIL, or the driver's text.
pub fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d}) [{}]", db.message(), db.code().code()),
            None => format!("{} [{}]", db.message(), db.code().code()),
        },
        None => e.to_string(),
    }
}

/// How the engine treats an error with SQLSTATE `state` (`None`: no server error, e.g. the
/// connection broke): lock timeouts and deadlocks are retryable, shutdowns and broken
/// connections are connection errors ([`ends_session`]), anything else the server said is fatal.
pub fn class(state: Option<&SqlState>) -> ErrorClass {
    match state {
        Some(s) if *s == SqlState::LOCK_NOT_AVAILABLE => ErrorClass::LockTimeout,
        Some(s) if *s == SqlState::T_R_DEADLOCK_DETECTED || *s == SqlState::T_R_SERIALIZATION_FAILURE => ErrorClass::Deadlock,
        Some(s) if ends_session(s) => ErrorClass::Connection,
        Some(_) => ErrorClass::Fatal,
        None => ErrorClass::Connection,
    }
}

/// Whether the server sends SQLSTATE `s` when it ends the session (or refuses a new one for
/// now): class 08 (connection exception), `admin_shutdown` 57P01 (`pg_terminate_backend`, a
/// fast or smart shutdown), `crash_shutdown` 57P02 (another backend crashed), `cannot_connect_now`
/// 57P03 (starting up, shutting down, in recovery), `idle_session_timeout` 57P05 and
/// `idle_in_transaction_session_timeout` 25P03. PostgreSQL documentation, "Appendix A.
/// PostgreSQL Error Codes".
pub fn ends_session(s: &SqlState) -> bool {
    s.code().starts_with("08") || matches!(s.code(), "57P01" | "57P02" | "57P03" | "57P05" | "25P03")
}

/// The error as an engine error, with `context` saying what shadowswap was doing.
pub fn db(context: &str, e: tokio_postgres::Error) -> Error {
    Error::Database { context: context.to_string(), message: message(&e), class: class(state(&e)) }
}

/// [`db`] with the statement that failed named in the context, `(while running: …)`.
pub fn db_running(context: &str, statement: &str, e: tokio_postgres::Error) -> Error {
    db(&format!("{context} (while running: {statement})"), e)
}

/// [`db`], naming the statement that failed only when the error is fatal (a lock timeout or a
/// deadlock is about the moment, not the statement: the engine retries it).
pub fn db_running_if_fatal(context: &str, statement: &str, e: tokio_postgres::Error) -> Error {
    match db(context, e) {
        Error::Database { class: ErrorClass::Fatal, message, .. } => {
            Error::Database { context: format!("{context} (while running: {statement})"), message, class: ErrorClass::Fatal }
        }
        other => other,
    }
}

/// A failed connection to `target` (database `database`), as the user should read it, once
/// TLS problems are explained (see `connect::connect_error`): a wrong password or a rejected role
/// as [`Error::AccessDenied`], an unknown database as [`Error::Refused`], no server answer as
/// [`Error::Unreachable`].
pub fn connect(target: String, database: &str, e: tokio_postgres::Error) -> Error {
    match state(&e) {
        Some(s) if *s == SqlState::INVALID_PASSWORD || *s == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            Error::AccessDenied { target, reason: message(&e) }
        }
        Some(s) if *s == SqlState::INVALID_CATALOG_NAME => {
            Error::refused(format!("database {database} does not exist on {target}; check the DSN"))
        }
        Some(_) => db(&format!("connecting to {target}"), e),
        None => Error::Unreachable { target, reason: full_message(&e) },
    }
}

/// `e`'s message with those of its causes ("error performing TLS handshake: server does not
/// support TLS"): tokio-postgres' own `Display` leaves the cause out.
pub fn full_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let c = cause.to_string();
        if !text.ends_with(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        cur = cause.source();
    }
    text
}

/// Whether `e` says the relation (or its schema) does not exist: `undefined_table`,
/// `invalid_schema_name` (a `::regclass` cast of a missing name).
pub fn is_missing_relation(e: &tokio_postgres::Error) -> bool {
    state(e).is_some_and(|s| *s == SqlState::UNDEFINED_TABLE || *s == SqlState::INVALID_SCHEMA_NAME)
}

/// Whether `e` is `undefined_table` (e.g. the heartbeat table not yet replayed on a standby).
pub fn is_undefined_table(e: &tokio_postgres::Error) -> bool {
    state(e) == Some(&SqlState::UNDEFINED_TABLE)
}

/// The ALTER's own error: anything the server said about it is [`Error::AlterRejected`] with
/// the server's message; no server answer, or the server ending the session
/// ([`ends_session`]: a restart, `pg_terminate_backend`), is a database error in `context`
/// (a connection error, for the engine to reconnect).
pub fn alter_rejected(context: &str, e: tokio_postgres::Error) -> Error {
    if e.as_db_error().is_some() && class(state(&e)) != ErrorClass::Connection {
        Error::AlterRejected(message(&e))
    } else {
        db(context, e)
    }
}

/// [`alter_rejected`], except that a lock timeout stays a (retryable) database error: the ALTER
/// on the shadow waits for locks on tables its foreign keys reference.
pub fn alter_rejected_unless_lock_timeout(context: &str, e: tokio_postgres::Error) -> Error {
    if state(&e) == Some(&SqlState::LOCK_NOT_AVAILABLE) {
        db(context, e)
    } else {
        alter_rejected(context, e)
    }
}

/// For a `unique_violation`: the constraint the server names (`?` when it names none) and the
/// DETAIL with the duplicate value (empty without one). `None` for any other error.
pub fn unique_violation(e: &tokio_postgres::Error) -> Option<(String, String)> {
    if state(e) != Some(&SqlState::UNIQUE_VIOLATION) {
        return None;
    }
    let db = e.as_db_error();
    Some((db.and_then(|d| d.constraint()).unwrap_or("?").to_string(), db.and_then(|d| d.detail()).unwrap_or("").to_string()))
}

/// Whether SQLSTATE `s` means the altered table rejects a row's values: a data exception
/// (class 22: out of range, invalid text, …), `not_null_violation` or `check_violation`.
pub fn rejects_row(s: &SqlState) -> bool {
    s.code().starts_with("22") || *s == SqlState::NOT_NULL_VIOLATION || *s == SqlState::CHECK_VIOLATION
}

/// The copy's error when the altered table rejects a row of `table` ([`rejects_row`]): a
/// refusal saying to change the ALTER. `None` for any other error.
pub fn rejected_row(table: &TableRef, e: &tokio_postgres::Error) -> Option<Error> {
    state(e).filter(|s| rejects_row(s)).map(|_| {
        Error::refused(format!(
            "the altered table rejects a row of {table}: {}; change the ALTER so the existing data fits",
            message(e)
        ))
    })
}

/// Whether a connection error's full text (see [`full_message`]) says the server does not
/// accept TLS connections (its `ssl` setting is off).
pub fn says_server_has_no_tls(text: &str) -> bool {
    text.contains("server does not support TLS")
}

/// Whether `e` is the driver's report of a failed TLS handshake.
pub fn is_tls_handshake_error(e: &tokio_postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

/// The server's message when it refused a connection because it came without TLS (pg_hba.conf
/// has only `hostssl` lines for it: `invalid_authorization_specification`, "… no encryption").
pub fn refused_without_tls(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error()
        .filter(|db| *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION && db.message().ends_with("no encryption"))
        .map(|db| db.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeouts_and_deadlocks_are_retryable() {
        assert_eq!(class(Some(&SqlState::LOCK_NOT_AVAILABLE)), ErrorClass::LockTimeout);
        assert_eq!(class(Some(&SqlState::T_R_DEADLOCK_DETECTED)), ErrorClass::Deadlock);
        assert_eq!(class(Some(&SqlState::T_R_SERIALIZATION_FAILURE)), ErrorClass::Deadlock);
        assert_eq!(class(Some(&SqlState::ADMIN_SHUTDOWN)), ErrorClass::Connection);
        assert_eq!(class(Some(&SqlState::UNIQUE_VIOLATION)), ErrorClass::Fatal);
        assert_eq!(class(None), ErrorClass::Connection);
        for code in ["57P01", "57P02", "57P03", "57P05", "25P03", "08006", "08003", "08000"] {
            assert_eq!(class(Some(&SqlState::from_code(code))), ErrorClass::Connection, "{code}");
        }
        assert_eq!(class(Some(&SqlState::from_code("57014"))), ErrorClass::Fatal, "query_canceled is not a lost session");
    }

    #[test]
    fn tls_refusals_by_their_text() {
        assert!(says_server_has_no_tls("error performing TLS handshake: server does not support TLS"));
        assert!(!says_server_has_no_tls("connection refused"));
    }

    #[test]
    fn rows_the_altered_table_rejects() {
        for s in [
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            SqlState::INVALID_TEXT_REPRESENTATION,
            SqlState::NOT_NULL_VIOLATION,
            SqlState::CHECK_VIOLATION,
        ] {
            assert!(rejects_row(&s), "{s:?}");
        }
        for s in [SqlState::UNIQUE_VIOLATION, SqlState::LOCK_NOT_AVAILABLE, SqlState::UNDEFINED_TABLE] {
            assert!(!rejects_row(&s), "{s:?}");
        }
    }
}
