//! Classification of `mysql_async` errors into the engine's [`Error`], done once here.
//! Server error codes: <https://mariadb.com/kb/en/mariadb-error-codes/>.

use shadowswap_engine::error::ErrorClass;
use shadowswap_engine::Error;

/// `ER_LOCK_WAIT_TIMEOUT`: a row lock or metadata lock wait timed out.
pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_LOCK_DEADLOCK`.
pub const DEADLOCK: u16 = 1213;
/// `ER_DUP_ENTRY`: "Duplicate entry '%s' for key '%s'".
pub const DUP_ENTRY: u16 = 1062;
/// `ER_NO_SUCH_TABLE`.
pub const NO_SUCH_TABLE: u16 = 1146;
/// `ER_ACCESS_DENIED_ERROR`.
pub const ACCESS_DENIED: u16 = 1045;
/// `ER_BAD_DB_ERROR`: unknown database.
pub const BAD_DB: u16 = 1049;

/// `ER_BINLOG_CREATE_ROUTINE_NEED_SUPER`: creating or dropping a trigger while binary logging is
/// on needs SUPER (unless `log_bin_trust_function_creators` is set).
pub const NEED_SUPER: u16 = 1419;

/// The server error code, if `r` failed with a server error.
pub fn code_of<T>(r: &Result<T, mysql_async::Error>) -> Option<u16> {
    r.as_ref().err().and_then(code)
}

/// The server error code, if `e` is a server error.
pub fn code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// The error as an engine error, with `context` saying what shadowswap was doing.
pub fn db(context: &str, e: mysql_async::Error) -> Error {
    let class = match &e {
        mysql_async::Error::Server(s) => match s.code {
            LOCK_WAIT_TIMEOUT => ErrorClass::LockTimeout,
            DEADLOCK => ErrorClass::Deadlock,
            // 1927 ER_CONNECTION_KILLED, 2006 server gone away, 2013 lost connection.
            1927 | 2006 | 2013 => ErrorClass::Connection,
            _ => ErrorClass::Fatal,
        },
        mysql_async::Error::Io(_) => ErrorClass::Connection,
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => ErrorClass::Connection,
        _ => ErrorClass::Fatal,
    };
    let message = match &e {
        mysql_async::Error::Server(s) => format!("{} (error {})", s.message, s.code),
        other => other.to_string(),
    };
    Error::Database { context: context.to_string(), message, class }
}

/// `(value, key)` from "Duplicate entry 'v' for key 'k'".
pub fn duplicate_entry(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("Duplicate entry '")?;
    let (value, rest) = rest.rsplit_once("' for key '")?;
    Some((value.to_string(), rest.trim_end_matches('\'').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_duplicate_entry_messages() {
        assert_eq!(
            duplicate_entry("Duplicate entry 'a@x.org-7' for key 'uk_email'"),
            Some(("a@x.org-7".to_string(), "uk_email".to_string()))
        );
        assert_eq!(duplicate_entry("something else"), None);
    }
}
