//! Classification of `tokio-postgres` errors into the engine's [`Error`], done once here.
//! SQLSTATE codes: PostgreSQL documentation, "Appendix A. PostgreSQL Error Codes".

use shadowswap_engine::error::ErrorClass;
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

/// The error as an engine error, with `context` saying what shadowswap was doing.
pub fn db(context: &str, e: tokio_postgres::Error) -> Error {
    let class = match state(&e) {
        Some(s) if *s == SqlState::LOCK_NOT_AVAILABLE => ErrorClass::LockTimeout,
        Some(s) if *s == SqlState::T_R_DEADLOCK_DETECTED || *s == SqlState::T_R_SERIALIZATION_FAILURE => ErrorClass::Deadlock,
        Some(s) if *s == SqlState::ADMIN_SHUTDOWN || *s == SqlState::CONNECTION_FAILURE => ErrorClass::Connection,
        Some(_) => ErrorClass::Fatal,
        None if e.is_closed() => ErrorClass::Connection,
        None => ErrorClass::Connection,
    };
    Error::Database { context: context.to_string(), message: message(&e), class }
}
