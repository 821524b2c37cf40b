//! What a table looks like to the engine: names, columns and indexes, as a dialect reports them.

use std::fmt;

/// A schema-qualified table name. `schema` is the MySQL database or the PostgreSQL schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// Database (MySQL) or schema (PostgreSQL).
    pub schema: String,
    /// Table name, exactly as stored in the catalog.
    pub name: String,
}

impl TableRef {
    /// A table `name` in `schema`.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self { schema: schema.into(), name: name.into() }
    }

    /// Another table in the same schema.
    pub fn sibling(&self, name: impl Into<String>) -> Self {
        Self { schema: self.schema.clone(), name: name.into() }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// The full type as the server prints it (MySQL `COLUMN_TYPE`, e.g. `int(10) unsigned`).
    pub column_type: String,
    /// Collation for character columns, `None` otherwise.
    pub collation: Option<String>,
    /// True when the column accepts NULL.
    pub nullable: bool,
    /// True for generated (computed) columns, virtual or stored: they are never written to.
    pub generated: bool,
    /// True when an INSERT that omits the column still gets a value: an explicit DEFAULT,
    /// AUTO_INCREMENT / identity, or a generated column.
    pub has_default: bool,
    /// The schema of the btree comparison operators (`<`, `=`, …) of the index this column is a
    /// key of, when they are not built in: PostgreSQL extension types such as `ltree` or `citext`
    /// keep theirs in the extension's schema, which shadowswap's pinned `search_path` does not
    /// search, so key comparisons name it (`OPERATOR("public".<)`). `None` for built-in operators
    /// (enums and domains included), for columns no index has as a key, and on MariaDB.
    pub operator_schema: Option<String>,
}

impl Column {
    /// A plain NOT NULL column of `column_type`: no collation, not generated, no default.
    pub fn new(name: impl Into<String>, column_type: impl Into<String>) -> Self {
        Column {
            name: name.into(),
            column_type: column_type.into(),
            collation: None,
            nullable: false,
            generated: false,
            has_default: false,
            operator_schema: None,
        }
    }
}

/// One index (or unique/primary-key constraint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Index name (`PRIMARY` for a MySQL primary key).
    pub name: String,
    /// Column names in index order.
    pub columns: Vec<String>,
    /// True for unique indexes and primary keys.
    pub unique: bool,
    /// True for the primary key.
    pub primary: bool,
    /// True when some column is indexed only by a prefix or an expression: such an index
    /// cannot serve as a chunk key.
    pub partial: bool,
}

/// The columns and indexes of a table, and the server's estimate of its row count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableShape {
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Indexes, primary key first when there is one.
    pub indexes: Vec<Index>,
    /// The server's row estimate (rows); 0 when unknown.
    pub estimated_rows: u64,
}

impl TableShape {
    /// The column called `name`, compared with `eq` (dialects differ in case rules).
    pub fn column(&self, name: &str, eq: impl Fn(&str, &str) -> bool) -> Option<&Column> {
        self.columns.iter().find(|c| eq(&c.name, name))
    }

    /// Indexes that can drive keyset chunking: unique, not partial, every column NOT NULL.
    /// The primary key comes first.
    pub fn usable_keys(&self, eq: impl Fn(&str, &str) -> bool + Copy) -> Vec<&Index> {
        let mut keys: Vec<&Index> = self
            .indexes
            .iter()
            .filter(|i| i.unique && !i.partial)
            .filter(|i| i.columns.iter().all(|c| self.column(c, eq).is_some_and(|col| !col.nullable && !col.generated)))
            .collect();
        keys.sort_by_key(|i| !i.primary);
        keys
    }
}
