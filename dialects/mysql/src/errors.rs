//! Classification of `mysql_async` errors into the engine's [`Error`], done once here: every
//! server error code and every server message text shadowswap looks at is named in this file.
//! Server error codes: <https://mariadb.com/kb/en/mariadb-error-codes/>.

use shadowswap_engine::error::ErrorClass;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::Error;

use crate::dsn::Dsn;

/// `ER_LOCK_WAIT_TIMEOUT`: a row lock or metadata lock wait timed out.
pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_NO_SUCH_THREAD`: "Unknown thread id" (`KILL` of a session that has ended).
pub const UNKNOWN_THREAD: u16 = 1094;
/// `ER_LOCK_DEADLOCK`.
pub const DEADLOCK: u16 = 1213;
/// `ER_DUP_ENTRY`: "Duplicate entry '%s' for key '%s'".
pub const DUP_ENTRY: u16 = 1062;
/// `ER_NO_SUCH_TABLE`.
pub const NO_SUCH_TABLE: u16 = 1146;
/// `ER_ACCESS_DENIED_ERROR`.
pub const ACCESS_DENIED: u16 = 1045;
/// `ER_BAD_FIELD_ERROR`: unknown column (e.g. a checkpoint table shadowswap did not make).
pub const BAD_FIELD: u16 = 1054;
/// `ER_BAD_DB_ERROR`: unknown database.
pub const BAD_DB: u16 = 1049;

/// `ER_CONNECTION_KILLED`: "Connection was killed", what MariaDB sends a session that `KILL
/// CONNECTION` ends in the middle of a statement (an idle one just sees its socket closed).
pub const CONNECTION_KILLED: u16 = 1927;
/// `ER_SERVER_SHUTDOWN`: "Server shutdown in progress", sent to sessions as the server stops.
/// (2006 "server has gone away" and 2013 "lost connection" are libmysqlclient's codes for a
/// closed socket; `mysql_async` reports that as an I/O error or `ConnectionClosed` instead, but
/// a proxy or another client library may relay them.)
pub const SERVER_SHUTDOWN: u16 = 1053;

/// `ER_UNKNOWN_TABLE`: e.g. an information_schema table of a plugin that is not loaded
/// (`METADATA_LOCK_INFO` without `metadata_lock_info`).
pub const UNKNOWN_TABLE: u16 = 1109;
/// `ER_SPECIFIC_ACCESS_DENIED_ERROR`: e.g. INNODB_TRX, PROCESSLIST of other users' sessions and
/// INNODB_SYS_TABLES without the PROCESS privilege.
pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;

/// Errors the chunk copy gets when a row of the original does not fit the altered definition:
/// NULL into NOT NULL (1048, 1263), out of range (1264), truncated (1265, 1292, 1366, 1406), no
/// default (1364), and CHECK constraints that existing rows violate (MariaDB 4025, MySQL 3819).
pub const ROW_REJECTED: [u16; 10] = [1048, 1263, 1264, 1265, 1292, 1364, 1366, 1406, 3819, 4025];

/// `ER_BINLOG_CREATE_ROUTINE_NEED_SUPER`: creating or dropping a trigger while binary logging is
/// on needs SUPER (unless `log_bin_trust_function_creators` is set).
pub const NEED_SUPER: u16 = 1419;
/// `ER_ALTER_OPERATION_NOT_SUPPORTED` (1845) and `…_REASON` (1846): the server cannot apply an
/// ALTER with the `ALGORITHM`/`LOCK` asked for (it changed nothing).
pub const ALTER_NOT_SUPPORTED: [u16; 2] = [1845, 1846];

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

/// The error as an engine error, with `context` saying what shadowswap was doing. A session
/// that broke (killed, the server stopping or restarting, the socket cut, e.g. by a proxy) is
/// [`ErrorClass::Connection`]: I/O errors, `ConnectionClosed`, [`CONNECTION_KILLED`],
/// [`SERVER_SHUTDOWN`]; the runner reconnects for those. (A pooled session that broke while idle
/// never surfaces: the pool checks an idle session before handing it out and opens a new one.)
pub fn db(context: &str, e: mysql_async::Error) -> Error {
    let class = match &e {
        mysql_async::Error::Server(s) => match s.code {
            LOCK_WAIT_TIMEOUT => ErrorClass::LockTimeout,
            DEADLOCK => ErrorClass::Deadlock,
            CONNECTION_KILLED | SERVER_SHUTDOWN | 2006 | 2013 => ErrorClass::Connection,
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

/// A failed connection to `dsn` as an engine error: [`Error::AccessDenied`] (bad user or
/// password), [`Error::Refused`] (unknown database), [`Error::Unreachable`] (nothing answers, or
/// not a MySQL server), else a database error.
pub fn connect(dsn: &Dsn, e: mysql_async::Error) -> Error {
    let target = dsn.to_string();
    match &e {
        mysql_async::Error::Server(s) if s.code == ACCESS_DENIED => Error::AccessDenied { target, reason: s.message.clone() },
        mysql_async::Error::Server(s) if s.code == BAD_DB => Error::refused(format!(
            "database {} does not exist on {target}; check the DSN",
            dsn.database.as_deref().unwrap_or("")
        )),
        mysql_async::Error::Server(_) => db(&format!("connecting to {target}"), e),
        other => Error::Unreachable { target, reason: other.to_string() },
    }
}

/// A failed ALTER of the trial copy or the shadow: the server's refusal of the spec is
/// [`Error::AlterRejected`] with its message; anything else a database error.
pub fn alter_rejected(context: &str, e: mysql_async::Error) -> Error {
    match e {
        mysql_async::Error::Server(s) => Error::AlterRejected(s.message),
        e => db(context, e),
    }
}

/// Whether a server message is about temporary tables: what InnoDB says when a table cannot be
/// copied to, or an ALTER cannot run on, a temporary table (e.g. a FULLTEXT or SPATIAL index,
/// error 1796), where shadowswap tries the ALTER first.
pub fn about_temporary_tables(message: &str) -> bool {
    message.to_ascii_lowercase().contains("temporary")
}

/// A failed chunk copy into the shadow of `table`: a duplicate for a new unique key is
/// [`Error::DuplicateKey`] naming the key and the value; a row the altered definition rejects
/// ([`ROW_REJECTED`]) is a refusal saying to change the ALTER; anything else a database error.
pub fn copy_failed(table: &TableRef, context: &str, e: mysql_async::Error) -> Error {
    match e {
        mysql_async::Error::Server(s) if s.code == DUP_ENTRY => {
            let (value, key) = duplicate_entry(&s.message).unwrap_or((s.message.clone(), "?".into()));
            Error::DuplicateKey { key, table: table.clone(), value: format!("'{value}'") }
        }
        mysql_async::Error::Server(s) if ROW_REJECTED.contains(&s.code) => Error::refused(format!(
            "the altered table rejects a row of {table}: {} (error {}); change the ALTER so the existing data fits",
            s.message, s.code
        )),
        e => db(context, e),
    }
}

/// The blocker check reads INNODB_TRX and PROCESSLIST, which need the PROCESS privilege
/// ([`SPECIFIC_ACCESS_DENIED`] without it). Without it shadowswap cannot see blockers: say so and
/// let each attempt rely on its lock timeout alone (an empty list), rather than failing the run
/// after the whole copy. Any other error is a database error.
pub fn blockers_unknown(e: mysql_async::Error) -> Result<Vec<String>, Error> {
    if code(&e) == Some(SPECIFIC_ACCESS_DENIED) {
        tracing::warn!("cannot look for transactions that would block the cut-over (grant PROCESS to see them); attempting anyway, each attempt bounded by the lock timeout");
        return Ok(Vec::new());
    }
    Err(db("looking for transactions that would block the cut-over", e))
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

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError { code, message: message.into(), state: "HY000".into() })
    }

    #[test]
    fn copy_failures_name_the_key_or_the_row() {
        let t = TableRef::new("d", "t");
        match copy_failed(&t, "copying", server(DUP_ENTRY, "Duplicate entry 'a@x.org' for key 'uk'")) {
            Error::DuplicateKey { key, table, value } => {
                assert_eq!((key.as_str(), table, value.as_str()), ("uk", t.clone(), "'a@x.org'"))
            }
            other => panic!("{other:?}"),
        }
        let e = copy_failed(&t, "copying", server(1406, "Data too long for column 'c' at row 1")).to_string();
        assert!(e.contains("the altered table rejects a row of"), "{e}");
        assert!(
            e.contains("Data too long for column 'c' at row 1 (error 1406); change the ALTER so the existing data fits"),
            "{e}"
        );
        assert!(matches!(copy_failed(&t, "copying", server(LOCK_WAIT_TIMEOUT, "Lock wait timeout")), Error::Database { .. }));
    }

    #[test]
    fn a_broken_session_is_a_connection_error() {
        let io = |kind| mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(kind, "x")));
        for e in [
            server(CONNECTION_KILLED, "Connection was killed"),
            server(SERVER_SHUTDOWN, "Server shutdown in progress"),
            io(std::io::ErrorKind::ConnectionReset),
            io(std::io::ErrorKind::UnexpectedEof),
            mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed),
        ] {
            let shown = e.to_string();
            assert!(db("copying a chunk", e).is_connection(), "{shown}");
        }
        assert!(!db("x", server(1317, "Query execution was interrupted")).is_connection());
        assert!(!db("x", server(DUP_ENTRY, "Duplicate entry")).is_connection());
    }

    #[test]
    fn connect_and_alter_failures() {
        let dsn = Dsn::parse("mysql://u:secret@h:3306/db", None).unwrap();
        assert!(matches!(connect(&dsn, server(ACCESS_DENIED, "Access denied")), Error::AccessDenied { .. }));
        let e = connect(&dsn, server(BAD_DB, "Unknown database 'db'")).to_string();
        assert!(e.contains("database db does not exist on mysql://u@h:3306/db; check the DSN"), "{e}");
        assert!(!e.contains("secret"));
        assert!(
            matches!(alter_rejected("x", server(1054, "Unknown column 'z'")), Error::AlterRejected(m) if m == "Unknown column 'z'")
        );
        assert!(about_temporary_tables("Cannot create FULLTEXT index on temporary InnoDB table"));
        assert!(!about_temporary_tables("Unknown column 'z'"));
        assert_eq!(
            blockers_unknown(server(SPECIFIC_ACCESS_DENIED, "Access denied; you need PROCESS")).unwrap(),
            Vec::<String>::new()
        );
        assert!(blockers_unknown(server(UNKNOWN_TABLE, "Unknown table")).is_err());
    }
}
