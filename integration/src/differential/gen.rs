//! The generator: a [`Case`] from a seed. The same seed gives the same case (ChaCha8, whose
//! output is fixed by the `rand_chacha` version in `Cargo.lock`).
//!
//! A table: a key (an integer `id`; `id` plus a string, enum or integer `k`; or only a string
//! `k` with a charset/collation — on PostgreSQL also a `numeric` key), two to six columns of
//! random types (NULLs, defaults), sometimes a unique integer `u`, a secondary index, a
//! generated column; 80 to 240 rows of values chosen to collide (`'Apfel'`/`'Äpfel'`,
//! `'bob'`/`'Bob'`, `1.5`/`1.50`, time zone edges). An ALTER of one to three clauses: add (also
//! a `CURRENT_TIMESTAMP`/`now()` default), drop, modify type, nullability and default, rename,
//! drop and re-add under the same name, rename and re-add, indexes and unique keys, CHECK
//! constraints (PostgreSQL: also `NOT VALID`), generated columns, key type and collation
//! changes, `DROP PRIMARY KEY, ADD PRIMARY KEY (…)`, `CONVERT TO CHARACTER SET`, `FORCE`.
//! Writer operations: inserts, updates (also of key columns, also to a value that compares
//! equal), deletes, range updates, sometimes a `TRUNCATE`.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Case, Db, T};

/// Character set and collation of a string column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coll {
    /// MariaDB `latin1` / `latin1_swedish_ci`.
    Latin1,
    /// MariaDB `utf8mb4_general_ci`.
    Utf8General,
    /// MariaDB `utf8mb4_unicode_ci` (the server's default here).
    Utf8Unicode,
    /// MariaDB `utf8mb4_bin`.
    Utf8Bin,
    /// PostgreSQL: the database's default collation.
    Default,
    /// PostgreSQL `"C"`.
    C,
    /// PostgreSQL `ci`: a nondeterministic ICU collation ignoring case (created in the case's
    /// database).
    Ci,
}

/// A column type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// An integer type (MariaDB: also `INT UNSIGNED`).
    Int(&'static str),
    /// `DECIMAL(p,s)` / `numeric(p,s)`; `p = 0`: PostgreSQL's unconstrained `numeric`.
    Dec(u32, u32),
    /// `FLOAT`, `DOUBLE` / `real`, `double precision`.
    Float(&'static str),
    /// `VARCHAR(n)` with a collation.
    Str(u32, Coll),
    /// `CHAR(n)`.
    Char(u32),
    /// `TEXT` / `text`.
    Text,
    /// `VARBINARY(n)` / `bytea`.
    Bin(u32),
    /// `BLOB` / `bytea`.
    Blob,
    /// `DATE`.
    Date,
    /// `DATETIME(fsp)` / `timestamp(fsp)`.
    DateTime(u8),
    /// `TIME`.
    Time,
    /// `TIMESTAMP` / `timestamptz`.
    Timestamp,
    /// `YEAR` (MariaDB).
    Year,
    /// `JSON` / `json`.
    Json,
    /// `jsonb` (PostgreSQL).
    Jsonb,
    /// `ENUM('a','b','c','é')` / the `mood` enum type.
    Enum,
    /// `SET('x','y','z')` (MariaDB).
    Set,
    /// `BOOL` / `boolean`.
    Bool,
    /// `uuid` (PostgreSQL).
    Uuid,
}

const WORDS: &[&str] = &[
    "apfel", "Apfel", "Äpfel", "äpfel", "bob", "Bob", "BOB", "straße", "strasse", "é", "e", "E", "ü", "", "zz", "a b", "O''Brien",
];
const WORDS_UTF8: &[&str] = &["🦀", "Grüße 🦀", "ǅ", "İi"];
const JSONS: &[&str] = &["{\"a\": 1}", "[1, 2.50, \"é\"]", "null", "\"s\"", "{\"b\": {\"c\": [true, null]}, \"a\": 0}", "{}"];

impl Ty {
    /// The type as it is written in a column definition.
    pub fn ddl(&self, db: Db) -> String {
        let my = db == Db::MariaDb;
        match self {
            Ty::Int(t) => t.to_string(),
            Ty::Dec(0, _) => "numeric".into(),
            Ty::Dec(p, s) => {
                if my {
                    format!("DECIMAL({p},{s})")
                } else {
                    format!("numeric({p},{s})")
                }
            }
            Ty::Float(t) => t.to_string(),
            Ty::Str(n, c) => {
                let coll = match c {
                    Coll::Latin1 => " CHARACTER SET latin1 COLLATE latin1_swedish_ci",
                    Coll::Utf8General => " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
                    Coll::Utf8Unicode => " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                    Coll::Utf8Bin => " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                    Coll::Default => "",
                    Coll::C => " COLLATE \"C\"",
                    Coll::Ci => " COLLATE ci",
                };
                if my {
                    format!("VARCHAR({n}){coll}")
                } else {
                    format!("varchar({n}){coll}")
                }
            }
            Ty::Char(n) => {
                if my {
                    format!("CHAR({n})")
                } else {
                    format!("char({n})")
                }
            }
            Ty::Text => {
                if my {
                    "TEXT".into()
                } else {
                    "text".into()
                }
            }
            Ty::Bin(n) => {
                if my {
                    format!("VARBINARY({n})")
                } else {
                    "bytea".into()
                }
            }
            Ty::Blob => {
                if my {
                    "BLOB".into()
                } else {
                    "bytea".into()
                }
            }
            Ty::Date => {
                if my {
                    "DATE".into()
                } else {
                    "date".into()
                }
            }
            Ty::DateTime(0) => {
                if my {
                    "DATETIME".into()
                } else {
                    "timestamp(0)".into()
                }
            }
            Ty::DateTime(f) => {
                if my {
                    format!("DATETIME({f})")
                } else {
                    format!("timestamp({f})")
                }
            }
            Ty::Time => {
                if my {
                    "TIME".into()
                } else {
                    "time".into()
                }
            }
            Ty::Timestamp => {
                if my {
                    "TIMESTAMP".into()
                } else {
                    "timestamptz".into()
                }
            }
            Ty::Year => "YEAR".into(),
            Ty::Json => {
                if my {
                    "JSON".into()
                } else {
                    "json".into()
                }
            }
            Ty::Jsonb => "jsonb".into(),
            Ty::Enum => {
                if my {
                    "ENUM('a','b','c','é')".into()
                } else {
                    "mood".into()
                }
            }
            Ty::Set => "SET('x','y','z')".into(),
            Ty::Bool => {
                if my {
                    "BOOL".into()
                } else {
                    "boolean".into()
                }
            }
            Ty::Uuid => "uuid".into(),
        }
    }

    /// Integer types (usable in arithmetic: generated columns, CHECKs).
    pub fn is_int(&self) -> bool {
        matches!(self, Ty::Int(_))
    }

    /// Whether a plain (non-prefix) index may be built on it.
    pub fn indexable(&self, db: Db) -> bool {
        match db {
            Db::MariaDb => !matches!(self, Ty::Text | Ty::Blob | Ty::Json),
            Db::Postgres => !matches!(self, Ty::Json),
        }
    }

    /// A random non-NULL literal of this type.
    pub fn value(&self, db: Db, rng: &mut ChaCha8Rng) -> String {
        let my = db == Db::MariaDb;
        match self {
            Ty::Int(t) => {
                let (lo, hi): (i64, i64) = match *t {
                    "TINYINT" => (-128, 127),
                    "smallint" | "SMALLINT" => (-32768, 32767),
                    "INT UNSIGNED" => (0, 4294967295),
                    "bigint" | "BIGINT" => (i64::MIN, i64::MAX),
                    _ => (-2147483648, 2147483647),
                };
                match rng.random_range(0..10) {
                    0 => lo.to_string(),
                    1 => hi.to_string(),
                    2 => 0.to_string(),
                    3..=6 => rng.random_range(lo.max(-100)..=hi.min(100)).to_string(),
                    _ => rng.random_range(lo.max(-100_000)..=hi.min(100_000)).to_string(),
                }
            }
            Ty::Dec(p, s) => {
                let (p, s) = if *p == 0 { (12, rng.random_range(0..4)) } else { (*p, *s) };
                let int_digits = (p - s).min(9);
                let max = 10i64.pow(int_digits) - 1;
                let i = rng.random_range(-max..=max);
                if s == 0 {
                    i.to_string()
                } else {
                    let frac: u64 = rng.random_range(0..10u64.pow(s.min(9)));
                    format!("{i}.{frac:0w$}", w = s.min(9) as usize)
                }
            }
            Ty::Float(_) => format!("{}", rng.random_range(-4000i32..4000) as f64 / 4.0),
            Ty::Str(n, c) => quote(&fit(&word(rng, !matches!(c, Coll::Latin1)), *n)),
            Ty::Char(n) => quote(fit(&word(rng, false), *n).trim_end()),
            Ty::Text => {
                let w = word(rng, true);
                quote(&if rng.random_bool(0.2) { w.repeat(rng.random_range(2..40)) } else { w })
            }
            Ty::Bin(_) | Ty::Blob => {
                let n = if let Ty::Bin(n) = self { *n } else { 12 };
                let len = rng.random_range(0..=n.min(12) as usize);
                let hex: String = (0..len).map(|_| format!("{:02x}", rng.random_range(0..=255u8))).collect();
                if my {
                    format!("X'{hex}'")
                } else {
                    format!("decode('{hex}', 'hex')")
                }
            }
            Ty::Date => {
                format!("'{}-{:02}-{:02}'", rng.random_range(1990..2040), rng.random_range(1..13), rng.random_range(1..29))
            }
            Ty::DateTime(f) => {
                let frac = if *f > 0 {
                    format!(".{:0w$}", rng.random_range(0..10u32.pow(*f as u32)), w = *f as usize)
                } else {
                    String::new()
                };
                if rng.random_bool(0.2) {
                    // The hour Europe/Berlin passes twice, and one it skips.
                    format!("'{}{frac}'", ["2021-10-31 02:30:00", "2021-03-28 02:30:00"].choose(rng).unwrap())
                } else {
                    format!(
                        "'{}-{:02}-{:02} {:02}:{:02}:{:02}{frac}'",
                        rng.random_range(1990..2037),
                        rng.random_range(1..13),
                        rng.random_range(1..29),
                        rng.random_range(0..24),
                        rng.random_range(0..60),
                        rng.random_range(0..60)
                    )
                }
            }
            Ty::Time => format!("'{:02}:{:02}:{:02}'", rng.random_range(0..24), rng.random_range(0..60), rng.random_range(0..60)),
            Ty::Timestamp => {
                let tz = if my { "" } else { ["+00", "+05", "-03:30", "+02"].choose(rng).unwrap() };
                format!(
                    "'{}-{:02}-{:02} {:02}:{:02}:{:02}{tz}'",
                    rng.random_range(1990..2037),
                    rng.random_range(1..13),
                    rng.random_range(1..29),
                    rng.random_range(0..24),
                    rng.random_range(0..60),
                    rng.random_range(0..60)
                )
            }
            Ty::Year => rng.random_range(1901..=2155).to_string(),
            Ty::Json | Ty::Jsonb => quote(JSONS.choose(rng).unwrap()),
            Ty::Enum => {
                quote(if my { ["a", "b", "c", "é"].choose(rng).unwrap() } else { ["sad", "ok", "happy"].choose(rng).unwrap() })
            }
            Ty::Set => quote(["", "x", "x,y", "y,z", "x,y,z"].choose(rng).unwrap()),
            Ty::Bool => {
                if my {
                    rng.random_range(0..2).to_string()
                } else {
                    ["true", "false"].choose(rng).unwrap().to_string()
                }
            }
            Ty::Uuid => {
                let b: Vec<u8> = (0..16).map(|_| rng.random()).collect();
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!("'{}-{}-{}-{}-{}'", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
            }
        }
    }
}

/// A word of the colliding pool (already quote-doubled where it has a quote).
fn word(rng: &mut ChaCha8Rng, utf8: bool) -> String {
    if utf8 && rng.random_bool(0.15) {
        WORDS_UTF8.choose(rng).unwrap().to_string()
    } else {
        WORDS.choose(rng).unwrap().to_string()
    }
}

/// At most `n` characters (a doubled quote is not split).
fn fit(s: &str, n: u32) -> String {
    let t: String = s.chars().take(n as usize).collect();
    if t.ends_with('\'') && !t.ends_with("''") {
        t.trim_end_matches('\'').to_string()
    } else {
        t
    }
}

fn quote(s: &str) -> String {
    format!("'{s}'")
}

/// A column of the generated table.
#[derive(Debug, Clone)]
pub struct Col {
    /// Name (plain lower-case ASCII, no quoting needed).
    pub name: String,
    /// Type.
    pub ty: Ty,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default literal.
    pub default: Option<String>,
    /// Generated: expression and `STORED`/`VIRTUAL` (values are never written).
    pub generated: Option<(String, &'static str)>,
}

impl Col {
    /// The column definition (name, type, NULL, DEFAULT or generation).
    pub fn def(&self, db: Db) -> String {
        let mut s = format!("{} {}", self.name, self.ty.ddl(db));
        if let Some((expr, kind)) = &self.generated {
            return match db {
                Db::MariaDb => format!("{s} AS ({expr}) {kind}"),
                Db::Postgres => format!("{s} GENERATED ALWAYS AS ({expr}) STORED"),
            };
        }
        match (db, self.nullable) {
            (Db::MariaDb, true) => s += " NULL",
            (_, false) => s += " NOT NULL",
            (Db::Postgres, true) => {}
        }
        if let Some(d) = &self.default {
            s += &format!(" DEFAULT {d}");
        }
        s
    }
}

fn column_types(db: Db) -> Vec<Ty> {
    match db {
        Db::MariaDb => vec![
            Ty::Int("TINYINT"),
            Ty::Int("SMALLINT"),
            Ty::Int("INT"),
            Ty::Int("BIGINT"),
            Ty::Int("INT UNSIGNED"),
            Ty::Dec(8, 2),
            Ty::Dec(12, 4),
            Ty::Float("FLOAT"),
            Ty::Float("DOUBLE"),
            Ty::Str(16, Coll::Latin1),
            Ty::Str(20, Coll::Utf8General),
            Ty::Str(24, Coll::Utf8Unicode),
            Ty::Str(12, Coll::Utf8Bin),
            Ty::Char(8),
            Ty::Text,
            Ty::Bin(16),
            Ty::Blob,
            Ty::Date,
            Ty::DateTime(0),
            Ty::DateTime(3),
            Ty::Time,
            Ty::Timestamp,
            Ty::Year,
            Ty::Json,
            Ty::Enum,
            Ty::Set,
            Ty::Bool,
        ],
        Db::Postgres => vec![
            Ty::Int("smallint"),
            Ty::Int("integer"),
            Ty::Int("bigint"),
            Ty::Dec(8, 2),
            Ty::Dec(0, 0),
            Ty::Float("real"),
            Ty::Float("double precision"),
            Ty::Str(20, Coll::Default),
            Ty::Str(16, Coll::C),
            Ty::Str(24, Coll::Ci),
            Ty::Char(8),
            Ty::Text,
            Ty::Bin(16),
            Ty::Date,
            Ty::DateTime(0),
            Ty::DateTime(6),
            Ty::Time,
            Ty::Timestamp,
            Ty::Json,
            Ty::Jsonb,
            Ty::Enum,
            Ty::Bool,
            Ty::Uuid,
        ],
    }
}

/// Types a column of type `from` may be changed to (some fail natively on some values: that
/// is part of the test).
fn targets(db: Db, from: &Ty) -> Vec<Ty> {
    let my = db == Db::MariaDb;
    match from {
        Ty::Int(_) if my => {
            vec![Ty::Int("BIGINT"), Ty::Int("SMALLINT"), Ty::Int("INT UNSIGNED"), Ty::Dec(20, 2), Ty::Str(24, Coll::Utf8Unicode)]
        }
        Ty::Int(_) => vec![Ty::Int("bigint"), Ty::Int("smallint"), Ty::Dec(20, 2), Ty::Dec(0, 0), Ty::Float("double precision")],
        Ty::Dec(p, s) => {
            if my {
                vec![Ty::Dec(p + 4, *s), Ty::Dec(*p, s.saturating_sub(1)), Ty::Float("DOUBLE"), Ty::Int("BIGINT")]
            } else {
                vec![Ty::Dec(14, 4), Ty::Dec(8, 1), Ty::Dec(0, 0), Ty::Float("double precision"), Ty::Int("bigint")]
            }
        }
        Ty::Float(_) => {
            if my {
                vec![Ty::Float("DOUBLE"), Ty::Dec(12, 2), Ty::Float("FLOAT")]
            } else {
                vec![Ty::Float("double precision"), Ty::Float("real"), Ty::Dec(0, 0)]
            }
        }
        Ty::Str(n, c) => {
            if my {
                vec![
                    Ty::Str(n + 10, *c),
                    Ty::Str(4, *c),
                    Ty::Str(*n, Coll::Utf8Unicode),
                    Ty::Str(*n, Coll::Utf8General),
                    Ty::Str(*n, Coll::Utf8Bin),
                    Ty::Str(*n, Coll::Latin1),
                    Ty::Text,
                ]
            } else {
                vec![
                    Ty::Str(n + 10, *c),
                    Ty::Str(4, *c),
                    Ty::Str(*n, Coll::C),
                    Ty::Str(*n, Coll::Ci),
                    Ty::Str(*n, Coll::Default),
                    Ty::Text,
                ]
            }
        }
        Ty::Char(n) => {
            if my {
                vec![Ty::Char(n + 4), Ty::Str(*n, Coll::Utf8Unicode)]
            } else {
                vec![Ty::Char(n + 4), Ty::Str(*n, Coll::Default), Ty::Text]
            }
        }
        Ty::Text => {
            if my {
                vec![Ty::Str(40, Coll::Utf8Unicode), Ty::Blob]
            } else {
                vec![Ty::Str(40, Coll::Default), Ty::Str(30, Coll::C)]
            }
        }
        Ty::Bin(n) => {
            if my {
                vec![Ty::Bin(n + 8), Ty::Blob]
            } else {
                vec![Ty::Blob]
            }
        }
        Ty::Blob => {
            if my {
                vec![Ty::Bin(64), Ty::Text]
            } else {
                vec![Ty::Blob]
            }
        }
        Ty::Date => {
            if my {
                vec![Ty::DateTime(0), Ty::Str(20, Coll::Utf8Unicode)]
            } else {
                vec![Ty::DateTime(0), Ty::Timestamp]
            }
        }
        Ty::DateTime(f) => {
            if my {
                vec![Ty::Date, Ty::DateTime(6), Ty::DateTime(f.saturating_sub(3)), Ty::Timestamp]
            } else {
                vec![Ty::Date, Ty::DateTime(3), Ty::Timestamp]
            }
        }
        Ty::Time => {
            if my {
                vec![Ty::Str(12, Coll::Utf8Unicode)]
            } else {
                vec![Ty::Text]
            }
        }
        Ty::Timestamp => {
            if my {
                vec![Ty::DateTime(0), Ty::DateTime(6)]
            } else {
                vec![Ty::DateTime(0), Ty::Date]
            }
        }
        Ty::Year => vec![Ty::Int("SMALLINT"), Ty::Int("INT")],
        Ty::Json => {
            if my {
                vec![Ty::Text]
            } else {
                vec![Ty::Jsonb, Ty::Text]
            }
        }
        Ty::Jsonb => vec![Ty::Json, Ty::Text],
        Ty::Enum => {
            if my {
                vec![Ty::Str(8, Coll::Utf8Unicode), Ty::Str(8, Coll::Latin1)]
            } else {
                vec![Ty::Text]
            }
        }
        Ty::Set => vec![Ty::Str(12, Coll::Utf8Unicode)],
        Ty::Bool => {
            if my {
                vec![Ty::Int("INT")]
            } else {
                vec![Ty::Text, Ty::Int("integer")]
            }
        }
        Ty::Uuid => vec![Ty::Text],
    }
}

/// How the table is keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyShape {
    /// `id` alone.
    Id,
    /// `(id, k)`.
    IdK,
    /// `k` alone (a string, or numeric on PostgreSQL).
    K,
}

/// The generated table: columns (the key's first), key columns, rows, and what is needed to
/// write more rows.
#[derive(Debug, Clone)]
pub struct Table {
    /// The server.
    pub db: Db,
    /// Columns in order.
    pub cols: Vec<Col>,
    /// Names of the primary key's columns.
    pub key: Vec<String>,
    /// A secondary index (name, column).
    pub index: Option<(String, String)>,
    /// Whether there is a unique integer column `u` (values distinct by construction).
    pub has_u: bool,
    next: i64,
}

impl Table {
    fn col(&self, name: &str) -> &Col {
        self.cols.iter().find(|c| c.name == name).unwrap()
    }

    /// Columns a row is written with (all but generated ones).
    pub fn writable(&self) -> Vec<&Col> {
        self.cols.iter().filter(|c| c.generated.is_none()).collect()
    }

    /// A fresh row's values for [`Table::writable`], key `n` (unique per table).
    fn row(&self, n: i64, rng: &mut ChaCha8Rng) -> Vec<String> {
        self.writable().iter().map(|c| self.value_for(c, n, rng)).collect()
    }

    fn value_for(&self, c: &Col, n: i64, rng: &mut ChaCha8Rng) -> String {
        match c.name.as_str() {
            "id" => n.to_string(),
            "u" => (n * 7).to_string(),
            "k" if self.key == ["k"] => key_value(self.db, &c.ty, n, rng),
            "k" => c.ty.value(self.db, rng),
            _ if c.nullable && rng.random_bool(0.15) => "NULL".into(),
            _ => c.ty.value(self.db, rng),
        }
    }

    /// The `CREATE TABLE` statement (with [`T`]).
    pub fn create(&self) -> String {
        let mut parts: Vec<String> = self.cols.iter().map(|c| c.def(self.db)).collect();
        parts.push(format!("PRIMARY KEY ({})", self.key.join(", ")));
        if self.has_u {
            parts.push(match self.db {
                Db::MariaDb => "UNIQUE KEY uk_u (u)".into(),
                Db::Postgres => "UNIQUE (u)".into(),
            });
        }
        if let (Db::MariaDb, Some((name, col))) = (self.db, &self.index) {
            parts.push(format!("KEY {name} ({col})"));
        }
        let tail = match self.db {
            Db::MariaDb => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            Db::Postgres => "",
        };
        format!("CREATE TABLE {T} ({}){tail}", parts.join(", "))
    }
}

/// A unique key value `n` for a key-only column `k`.
fn key_value(db: Db, ty: &Ty, n: i64, rng: &mut ChaCha8Rng) -> String {
    match ty {
        Ty::Dec(..) => {
            // 1.5 / 1.50: the same number, written differently.
            if rng.random_bool(0.5) {
                format!("{n}.5")
            } else {
                format!("{n}.50")
            }
        }
        _ => {
            let utf8 = !matches!(ty, Ty::Str(_, Coll::Latin1)) && db == Db::Postgres;
            let w = word(rng, utf8);
            quote(&format!("{}-{n}", if w.is_empty() { "x" } else { &w }))
        }
    }
}

/// The case of `seed` for `db`.
pub fn case(db: Db, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ if db == Db::MariaDb { 0 } else { 0x5EED_0000_0000 });
    let table = table(db, &mut rng);
    let rows = rng.random_range(80..=240);
    let mut setup = vec![table.create()];
    if let (Db::Postgres, Some((_, col))) = (db, &table.index) {
        setup.push(format!("CREATE INDEX ON {T} ({col})"));
    }
    let names: Vec<String> = table.writable().iter().map(|c| c.name.clone()).collect();
    let mut values = Vec::new();
    for n in 1..=rows {
        values.push(format!("({})", table.row(n, &mut rng).join(", ")));
    }
    for chunk in values.chunks(60) {
        setup.push(format!("INSERT INTO {T} ({}) VALUES {}", names.join(", "), chunk.join(", ")));
    }
    let mut db_setup = Vec::new();
    if db == Db::Postgres {
        db_setup.push("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')".into());
        db_setup.push("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)".into());
        if rng.random_bool(0.5) {
            // The database's default time zone is the application's: a plain ALTER fills now()
            // columns in it.
            db_setup.push(format!("ALTER DATABASE {} SET TimeZone = 'Asia/Karachi'", super::DB));
        }
    }
    let (alter, now_columns) = alter(&table, &mut rng);
    let mut t = table.clone();
    let ops = ops(&mut t, rows, &mut rng);
    let ops_during_backfill = rng.random_range(0..=ops.len() / 2);
    Case {
        label: format!("seed {seed}"),
        slug: seed.to_string(),
        db,
        db_setup,
        setup,
        alter,
        ops,
        writer_session: Vec::new(),
        ops_during_backfill,
        now_columns,
        chunk_rows: rng.random_range(3..=25),
        checksum: rng.random_bool(0.85),
        accepted_refusals: Vec::new(),
        strict: false,
    }
}

fn table(db: Db, rng: &mut ChaCha8Rng) -> Table {
    let my = db == Db::MariaDb;
    let types = column_types(db);
    let shape = *[KeyShape::Id, KeyShape::Id, KeyShape::Id, KeyShape::IdK, KeyShape::K].choose(rng).unwrap();
    let mut cols = Vec::new();
    let mut key = Vec::new();
    if shape != KeyShape::K {
        let ty = if my {
            *["INT", "BIGINT", "INT UNSIGNED"].choose(rng).unwrap()
        } else {
            *["integer", "bigint"].choose(rng).unwrap()
        };
        cols.push(Col { name: "id".into(), ty: Ty::Int(ty), nullable: false, default: None, generated: None });
        key.push("id".to_string());
    }
    if shape != KeyShape::Id {
        let ty = if shape == KeyShape::K {
            if my {
                Ty::Str(32, *[Coll::Latin1, Coll::Utf8General, Coll::Utf8Unicode, Coll::Utf8Bin].choose(rng).unwrap())
            } else {
                [Ty::Str(32, Coll::Default), Ty::Str(32, Coll::C), Ty::Str(32, Coll::Ci), Ty::Dec(0, 0), Ty::Dec(12, 2)]
                    .choose(rng)
                    .unwrap()
                    .clone()
            }
        } else if my {
            [Ty::Enum, Ty::Str(16, Coll::Utf8Unicode), Ty::Int("SMALLINT"), Ty::Date].choose(rng).unwrap().clone()
        } else {
            [Ty::Enum, Ty::Str(16, Coll::Ci), Ty::Int("smallint"), Ty::Date].choose(rng).unwrap().clone()
        };
        cols.push(Col { name: "k".into(), ty, nullable: false, default: None, generated: None });
        key.push("k".to_string());
    }
    let has_u = rng.random_bool(0.25);
    if has_u {
        cols.push(Col {
            name: "u".into(),
            ty: Ty::Int(if my { "INT" } else { "integer" }),
            nullable: false,
            default: None,
            generated: None,
        });
    }
    let n = rng.random_range(2..=6);
    for i in 1..=n {
        let ty = types.choose(rng).unwrap().clone();
        let nullable = rng.random_bool(0.6);
        let default = if rng.random_bool(0.3) { Some(ty.value(db, rng)) } else { None };
        // MariaDB: TEXT/BLOB/JSON defaults are fine; a TIMESTAMP NOT NULL without a default gets
        // an implicit one, so give it a literal one.
        let default = if ty == Ty::Timestamp && !nullable && default.is_none() { Some(ty.value(db, rng)) } else { default };
        cols.push(Col { name: format!("c{i}"), ty, nullable, default, generated: None });
    }
    if let Some(base) = cols.iter().find(|c| c.ty.is_int() && c.name.starts_with('c')).map(|c| c.name.clone()) {
        if rng.random_bool(0.35) {
            let kind = if my && rng.random_bool(0.5) { "VIRTUAL" } else { "STORED" };
            let ty = Ty::Int(if my { "BIGINT" } else { "bigint" });
            let expr = match db {
                Db::MariaDb => format!("{base} DIV 2 + 1"),
                Db::Postgres => format!("{base} / 2 + 1"),
            };
            cols.push(Col { name: "g".into(), ty, nullable: true, default: None, generated: Some((expr, kind)) });
        }
    }
    let index = if rng.random_bool(0.4) {
        cols.iter()
            .filter(|c| c.name.starts_with('c') && c.ty.indexable(db))
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .choose(rng)
            .map(|c| (format!("ix_{c}"), c.clone()))
    } else {
        None
    };
    Table { db, cols, key, index, has_u, next: 0 }
}

/// The ALTER spec and the `now()` columns it adds.
fn alter(t: &Table, rng: &mut ChaCha8Rng) -> (String, Vec<String>) {
    let db = t.db;
    let my = db == Db::MariaDb;
    let mut clauses: Vec<String> = Vec::new();
    let mut touched: Vec<String> = Vec::new();
    let mut now = Vec::new();
    let n = *[1, 1, 2, 2, 3].choose(rng).unwrap();
    let plain: Vec<Col> = t.cols.iter().filter(|c| c.name.starts_with('c')).cloned().collect();
    let has_gen = t.cols.iter().any(|c| c.generated.is_some());
    let gen_base =
        t.cols.iter().find_map(|c| c.generated.as_ref().map(|(e, _)| e.split_whitespace().next().unwrap().to_string()));
    for i in 0..n {
        let free: Vec<&Col> = plain.iter().filter(|c| !touched.contains(&c.name)).collect();
        let pick = rng.random_range(0..20);
        let clause = match pick {
            0..=2 => {
                let ty = column_types(db).choose(rng).unwrap().clone();
                let name = format!("n{i}");
                let mut c =
                    Col { name: name.clone(), ty: ty.clone(), nullable: rng.random_bool(0.6), default: None, generated: None };
                if !c.nullable || rng.random_bool(0.5) {
                    c.default = Some(ty.value(db, rng));
                }
                if !c.nullable && rng.random_bool(0.1) {
                    c.default = None;
                }
                if ty == Ty::Timestamp && c.default.is_none() {
                    c.nullable = true;
                }
                format!("ADD COLUMN {}", c.def(db))
            }
            3 => {
                let name = format!("now{i}");
                now.push(name.clone());
                if my {
                    format!(
                        "ADD COLUMN {name} {}",
                        [
                            "DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP",
                            "DATETIME(3) NULL DEFAULT CURRENT_TIMESTAMP(3)",
                            "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
                        ]
                        .choose(rng)
                        .unwrap()
                    )
                } else {
                    format!(
                        "ADD COLUMN {name} {}",
                        [
                            "timestamp DEFAULT now()",
                            "timestamp(0) NOT NULL DEFAULT CURRENT_TIMESTAMP",
                            "timestamptz DEFAULT now()",
                            "date DEFAULT now()"
                        ]
                        .choose(rng)
                        .unwrap()
                    )
                }
            }
            4 | 5 => {
                let Some(c) = free.choose(rng) else { continue };
                touched.push(c.name.clone());
                format!("DROP COLUMN {}", c.name)
            }
            6..=8 => {
                let Some(c) = free.choose(rng) else { continue };
                touched.push(c.name.clone());
                let to = targets(db, &c.ty).choose(rng).unwrap().clone();
                if my {
                    let mut nc: Col = (*c).clone();
                    nc.ty = to;
                    if rng.random_bool(0.2) {
                        nc.nullable = !nc.nullable;
                    }
                    nc.default = if nc.nullable || rng.random_bool(0.5) { None } else { Some(nc.ty.value(db, rng)) };
                    if nc.ty == Ty::Timestamp && nc.default.is_none() {
                        nc.nullable = true;
                    }
                    format!("MODIFY COLUMN {}", nc.def(db))
                } else {
                    format!("ALTER COLUMN {} TYPE {}", c.name, to.ddl(db))
                }
            }
            9 => {
                let Some(c) = free.choose(rng) else { continue };
                touched.push(c.name.clone());
                match (my, rng.random_range(0..4)) {
                    (false, 0) => format!("ALTER COLUMN {} SET NOT NULL", c.name),
                    (false, 1) => format!("ALTER COLUMN {} DROP NOT NULL", c.name),
                    (_, 2) => format!("ALTER COLUMN {} DROP DEFAULT", c.name),
                    _ => format!("ALTER COLUMN {} SET DEFAULT {}", c.name, c.ty.value(db, rng)),
                }
            }
            10 => {
                // Renames: alone on PostgreSQL (it does not combine RENAME with other clauses).
                if !my && !clauses.is_empty() {
                    continue;
                }
                let Some(c) = free.choose(rng) else { continue };
                touched.push(c.name.clone());
                let r = format!("RENAME COLUMN {} TO {}_r", c.name, c.name);
                if !my {
                    clauses.push(r);
                    break;
                }
                if rng.random_bool(0.5) {
                    r
                } else {
                    let ty = column_types(db).choose(rng).unwrap().clone();
                    let nc = Col {
                        name: c.name.clone(),
                        ty: ty.clone(),
                        nullable: true,
                        default: Some(ty.value(db, rng)),
                        generated: None,
                    };
                    format!("{r}, ADD COLUMN {}", nc.def(db))
                }
            }
            11 => {
                // Drop and re-add under the same name: the new column holds its default.
                let Some(c) = free.choose(rng) else { continue };
                touched.push(c.name.clone());
                let ty = column_types(db).choose(rng).unwrap().clone();
                let nc = Col {
                    name: c.name.clone(),
                    ty: ty.clone(),
                    nullable: true,
                    default: Some(ty.value(db, rng)),
                    generated: None,
                };
                format!("DROP COLUMN {}, ADD COLUMN {}", c.name, nc.def(db))
            }
            12 => {
                let Some(c) = free.iter().filter(|c| c.ty.indexable(db)).collect::<Vec<_>>().choose(rng).copied() else {
                    continue;
                };
                let unique = rng.random_bool(0.4);
                match (my, unique) {
                    (true, false) => format!("ADD INDEX ixa_{} ({})", c.name, c.name),
                    (true, true) => format!("ADD UNIQUE KEY uqa_{} ({})", c.name, c.name),
                    (false, _) => format!("ADD UNIQUE ({})", c.name),
                }
            }
            13 => match (&t.index, my) {
                (Some((name, col)), true) if !touched.contains(col) => format!("DROP INDEX {name}"),
                _ => continue,
            },
            14 => {
                let Some(c) = free.iter().filter(|c| c.ty.is_int()).collect::<Vec<_>>().choose(rng).copied() else { continue };
                let not_valid = !my && rng.random_bool(0.5);
                format!(
                    "ADD CONSTRAINT ck_{i} CHECK ({} IS NULL OR {} > -50000){}",
                    c.name,
                    c.name,
                    if not_valid { " NOT VALID" } else { "" }
                )
            }
            15 => {
                let Some(c) = free.iter().filter(|c| c.ty.is_int()).collect::<Vec<_>>().choose(rng).copied() else { continue };
                let name = format!("gx{i}");
                let kind = if my && rng.random_bool(0.5) { "VIRTUAL" } else { "STORED" };
                let expr = format!("{} * 2", c.name);
                let col = Col {
                    name,
                    ty: Ty::Int(if my { "BIGINT" } else { "bigint" }),
                    nullable: true,
                    default: None,
                    generated: Some((expr, kind)),
                };
                format!("ADD COLUMN {}", col.def(db))
            }
            16 => {
                // A key column's type or collation.
                let k = t.col(&t.key[t.key.len() - 1]).clone();
                if touched.contains(&k.name) {
                    continue;
                }
                touched.push(k.name.clone());
                let to = match &k.ty {
                    Ty::Int(_) if my => [Ty::Int("BIGINT"), Ty::Int("INT"), Ty::Dec(20, 0)].choose(rng).unwrap().clone(),
                    Ty::Int(_) => [Ty::Int("bigint"), Ty::Dec(0, 0)].choose(rng).unwrap().clone(),
                    Ty::Str(n, _) if my => {
                        Ty::Str(*n, *[Coll::Latin1, Coll::Utf8General, Coll::Utf8Unicode, Coll::Utf8Bin].choose(rng).unwrap())
                    }
                    Ty::Str(n, _) => Ty::Str(*n, *[Coll::Default, Coll::C, Coll::Ci].choose(rng).unwrap()),
                    other => targets(db, other).choose(rng).unwrap().clone(),
                };
                if my {
                    format!("MODIFY COLUMN {} {} NOT NULL", k.name, to.ddl(db))
                } else {
                    format!("ALTER COLUMN {} TYPE {}", k.name, to.ddl(db))
                }
            }
            17 if my => {
                let Some(c) = free
                    .iter()
                    .filter(|c| !c.nullable && c.ty.indexable(db) && !matches!(c.ty, Ty::Float(_)))
                    .collect::<Vec<_>>()
                    .choose(rng)
                    .copied()
                else {
                    continue;
                };
                format!("DROP PRIMARY KEY, ADD PRIMARY KEY ({}, {})", t.key.join(", "), c.name)
            }
            18 if my && clauses.is_empty() => {
                clauses.push(format!(
                    "CONVERT TO CHARACTER SET utf8mb4 COLLATE {}",
                    ["utf8mb4_unicode_ci", "utf8mb4_general_ci", "utf8mb4_bin"].choose(rng).unwrap()
                ));
                break;
            }
            _ if my => "FORCE".into(),
            _ => {
                let name = format!("n{i}");
                format!("ADD COLUMN {name} integer DEFAULT {}", rng.random_range(-5..5))
            }
        };
        if clause == "FORCE" && clauses.contains(&clause) {
            continue;
        }
        // Dropping the generated column's base fails natively: keep it sometimes, mostly avoid.
        if has_gen && gen_base.as_deref().is_some_and(|b| clause.contains(&format!("DROP COLUMN {b}"))) && rng.random_bool(0.7) {
            continue;
        }
        clauses.push(clause);
    }
    if clauses.is_empty() {
        clauses.push(if my { "FORCE".into() } else { "ADD COLUMN n9 integer DEFAULT 7".into() });
    }
    (clauses.join(", "), now)
}

/// Writer operations on `t` (which has rows with keys 1..=`rows`).
fn ops(t: &mut Table, rows: i64, rng: &mut ChaCha8Rng) -> Vec<String> {
    let db = t.db;
    t.next = rows + 1000;
    // The keys present, as literals per key column; k of a key-only table is re-derived from the
    // row number, so remember literals as the rows were written.
    let mut live: Vec<Vec<String>> = Vec::new();
    // The rows' key literals are not known here (random words): address rows by id where there
    // is one, else by a range scan on the key.
    let by_id = t.key[0] == "id";
    if by_id {
        for n in 1..=rows {
            live.push(vec![n.to_string()]);
        }
    }
    let plain: Vec<Col> = t.cols.iter().filter(|c| c.name.starts_with('c')).cloned().collect();
    let writable: Vec<String> = t.writable().iter().map(|c| c.name.clone()).collect();
    let count = rng.random_range(15..=45);
    let mut out = Vec::new();
    for _ in 0..count {
        let op = rng.random_range(0..100);
        if by_id && live.is_empty() && (30..92).contains(&op) {
            // After a TRUNCATE: nothing to update or delete by id.
            continue;
        }
        match op {
            0..=29 => {
                t.next += 1;
                let n = t.next;
                let vals = t.row(n, rng);
                out.push(format!("INSERT INTO {T} ({}) VALUES ({})", writable.join(", "), vals.join(", ")));
                if by_id {
                    live.push(vec![n.to_string()]);
                }
            }
            30..=59 => {
                let Some(c) = plain.choose(rng) else { continue };
                let v = if c.nullable && rng.random_bool(0.2) { "NULL".into() } else { c.ty.value(db, rng) };
                let target = if by_id && !live.is_empty() {
                    format!("id = {}", live.choose(rng).unwrap()[0])
                } else {
                    format!("{} >= {} ORDER BY {} LIMIT 1", t.key[0], quote(&word(rng, false)), t.key[0])
                };
                if db == Db::Postgres && !by_id {
                    out.push(format!(
                        "UPDATE {T} SET {} = {v} WHERE ({}) IN (SELECT {} FROM {T} ORDER BY {} LIMIT 1 OFFSET {})",
                        c.name,
                        t.key.join(", "),
                        t.key.join(", "),
                        t.key.join(", "),
                        rng.random_range(0..rows)
                    ));
                } else {
                    out.push(format!("UPDATE {T} SET {} = {v} WHERE {target}", c.name));
                }
            }
            60..=71 => {
                // Move a row to a new key (across chunks).
                if by_id && !live.is_empty() {
                    let i = rng.random_range(0..live.len());
                    t.next += 1;
                    let new = if rng.random_bool(0.5) { t.next } else { rng.random_range(-50..0) - t.next };
                    out.push(format!("UPDATE {T} SET id = {new} WHERE id = {}", live[i][0]));
                    live[i] = vec![new.to_string()];
                } else {
                    let k = t.col("k").ty.clone();
                    t.next += 1;
                    let new = key_value(db, &k, t.next, rng);
                    out.push(key_update(db, &t.key, &format!("k = {new}"), rows, rng));
                }
            }
            72..=79 => {
                // A key update to a value that compares equal: case under a case-insensitive
                // collation, scale of a numeric.
                let Some(k) = t.cols.iter().find(|c| c.name == "k" && t.key.len() == 1).map(|c| c.ty.clone()) else { continue };
                let set = match (&k, db) {
                    (Ty::Dec(..), _) => "k = k + 0.00".to_string(),
                    (Ty::Str(..), Db::MariaDb) => "k = UPPER(k)".to_string(),
                    (Ty::Str(..), Db::Postgres) => "k = upper(k)".to_string(),
                    _ => continue,
                };
                out.push(key_update(db, &t.key, &set, rows, rng));
            }
            80..=91 => {
                if by_id && !live.is_empty() {
                    let i = rng.random_range(0..live.len());
                    out.push(format!("DELETE FROM {T} WHERE id = {}", live.remove(i)[0]));
                } else if db == Db::Postgres {
                    out.push(format!(
                        "DELETE FROM {T} WHERE ({}) IN (SELECT {} FROM {T} ORDER BY {} LIMIT 1 OFFSET {})",
                        t.key.join(", "),
                        t.key.join(", "),
                        t.key.join(", "),
                        rng.random_range(0..rows)
                    ));
                } else {
                    out.push(format!(
                        "DELETE FROM {T} WHERE {} >= {} ORDER BY {} LIMIT 1",
                        t.key[0],
                        quote(&word(rng, false)),
                        t.key.join(", ")
                    ));
                }
            }
            92..=97 if by_id => {
                let Some(c) = plain.choose(rng) else { continue };
                let a = rng.random_range(1..rows);
                out.push(format!(
                    "UPDATE {T} SET {} = {} WHERE id BETWEEN {a} AND {}",
                    c.name,
                    c.ty.value(db, rng),
                    a + rng.random_range(1..40)
                ));
            }
            98 if rng.random_bool(0.3) => {
                out.push(format!("TRUNCATE TABLE {T}"));
                live.clear();
            }
            _ => {}
        }
    }
    out
}

/// An UPDATE of the key of one row picked by position (`rows` rows at most).
fn key_update(db: Db, key: &[String], set: &str, rows: i64, rng: &mut ChaCha8Rng) -> String {
    let keys = key.join(", ");
    let off = rng.random_range(0..rows);
    match db {
        Db::Postgres => {
            format!("UPDATE {T} SET {set} WHERE ({keys}) IN (SELECT {keys} FROM {T} ORDER BY {keys} LIMIT 1 OFFSET {off})")
        }
        // MariaDB cannot select from the table it updates in a subquery; order and limit instead.
        Db::MariaDb => format!("UPDATE {T} SET {set} WHERE {} >= {} ORDER BY {keys} LIMIT 1", key[0], quote(&word(rng, false))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_case() {
        for db in [Db::MariaDb, Db::Postgres] {
            for seed in 0..50 {
                let (a, b) = (case(db, seed), case(db, seed));
                assert_eq!((&a.setup, &a.alter, &a.ops), (&b.setup, &b.alter, &b.ops));
            }
        }
    }
}
