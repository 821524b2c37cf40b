//! The database of a test, on either server: what the helpers shared by both dialects' tests
//! need of it ([`TestDatabase`]), implemented by MariaDB's [`crate::mysql::TestDb`] and
//! PostgreSQL's [`crate::postgres::PgTestDb`].

use std::fmt::Debug;
use std::sync::Arc;

use shadowswap_engine::{Dialect, TableRef};

/// A database of its own for one test, on either server. The methods are the dialect's own
/// (inherent) ones under a common name; helpers generic over this trait serve both dialects'
/// tests ([`crate::cli::refuses`], [`crate::oracle`], …).
// The tests await these on their own runtime: no `Send` bound is needed on the futures.
#[allow(async_fn_in_trait)]
pub trait TestDatabase: Sized {
    /// The dialect shadowswap runs with.
    type Dialect: Dialect;
    /// A row as the driver reads it (MariaDB: binary protocol values; PostgreSQL: text).
    type Row: PartialEq + Debug;
    /// A table's definition without its name, to compare a table with a clone of another name.
    type Definition: PartialEq + Debug;
    /// Definition and every row of some tables ([`TestDatabase::snapshot`]).
    type Snapshot: PartialEq + Debug;

    /// Create (or re-create) database `ssw_<name>`, empty.
    async fn new(name: &str) -> Self;

    /// Database `ssw_<name>` holding what `setup` (statements separated by `;`) creates: a test's
    /// setup.
    async fn with_setup(name: &str, setup: &str) -> Self {
        let db = Self::new(name).await;
        db.exec(setup).await;
        db
    }

    /// DSN of this database.
    fn dsn(&self) -> &str;

    /// A [`TableRef`] for `name` here.
    fn table(&self, name: &str) -> TableRef;

    /// The dialect, connected to this database.
    async fn dialect(&self) -> Arc<Self::Dialect>;

    /// Run statements separated by `;`; panics naming the statement that failed.
    async fn exec(&self, sql: &str);

    /// Tables here, sorted.
    async fn tables(&self) -> Vec<String>;

    /// Every row of `table`, ordered by `order_by`.
    async fn rows(&self, table: &str, order_by: &str) -> Vec<Self::Row>;

    /// `table`'s definition without its name.
    async fn definition(&self, table: &str) -> Self::Definition;

    /// Definition and every row of `tables`: equal before and after a run that must change
    /// nothing.
    async fn snapshot(&self, tables: &[&str]) -> Self::Snapshot;

    /// Panics unless this database holds exactly `tables` (in any order) and nothing of
    /// shadowswap's: no shadow or old table, no capture trigger (or function).
    async fn assert_nothing_left(&self, tables: &[&str]);
}
