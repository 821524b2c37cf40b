//! No password is ever shown (issue 7, defect 11): the real `shadowswap` binary is run with a
//! sentinel password in every kind of bad DSN — a `--replica` of the other scheme, wrong
//! passwords, unreachable servers, malformed URLs, unknown and unsupported parameters, TLS
//! failures, a DSN given where clap does not expect it, passwords from `MYSQL_PWD` /
//! `PGPASSWORD` — with logging at `trace` (every driver and shadowswap log line) in text and JSON,
//! and the sentinel must appear neither on stdout nor on stderr.

use shadowswap_integration::cli::{assert_never_shown, run_cli, stderr};
use shadowswap_integration::{mysql, postgres};

/// The password every case hides.
const SENTINEL: &str = "S3ntinel-Pw-q8z";

/// `host:port` of a DSN (`scheme://user:pw@host:port[/db]`).
fn host_port(dsn: &str) -> String {
    let rest = dsn.split_once("://").map_or(dsn, |(_, r)| r);
    let hp = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    hp.split('/').next().unwrap_or(hp).to_string()
}

struct Case {
    what: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// The exit status: 1 for a failed run, 2 for a usage error.
    code: i32,
}

fn case(what: &'static str, args: &[&str], env: &[(&'static str, &str)], code: i32) -> Case {
    Case {
        what,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        code,
    }
}

fn alter(dsn: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["alter", "--dsn", dsn, "--table", "db.t", "--alter", "ADD COLUMN c INT", "--execute"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn cases() -> Vec<Case> {
    let my = host_port(&mysql::server_dsn());
    let pg_hp = host_port(&postgres::server_dsn());
    let my_ok = mysql::server_dsn();
    let pg_ok = postgres::server_dsn();
    let s = SENTINEL;
    let mut v = vec![
        // The reported defect: a --replica of the other scheme was echoed whole.
        Case {
            what: "mysql --dsn, postgres --replica",
            args: alter(&my_ok, &["--replica", &format!("postgres://shadowswap:{s}@{pg_hp}/shadowswap")]),
            env: vec![],
            code: 2,
        },
        Case {
            what: "postgres --dsn, mysql --replica",
            args: alter(&pg_ok, &["--replica", &format!("mysql://shadowswap:{s}@{my}")]),
            env: vec![],
            code: 2,
        },
        Case {
            what: "--replica not a URL",
            args: alter(&my_ok, &["--replica", &format!("shadowswap:{s}@{my}")]),
            env: vec![],
            code: 2,
        },
        Case {
            what: "postgres --replica in libpq form",
            args: alter(&pg_ok, &["--replica", &format!("host=127.0.0.1 user=shadowswap password={s}")]),
            env: vec![],
            code: 2,
        },
        // Replicas of the right scheme that fail.
        Case {
            what: "mysql replica, wrong password",
            args: alter(&my_ok, &["--replica", &format!("mysql://shadowswap:{s}@{my}")]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "mysql replica unreachable",
            args: alter(&my_ok, &["--replica", &format!("mysql://shadowswap:{s}@127.0.0.1:1")]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres replica, wrong password",
            args: alter(&pg_ok, &["--replica", &format!("postgres://shadowswap:{s}@{pg_hp}/shadowswap")]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres replica, bad sslmode",
            args: alter(&pg_ok, &["--replica", &format!("postgres://shadowswap:{s}@{pg_hp}/shadowswap?sslmode=bogus")]),
            env: vec![],
            code: 1,
        },
        // MariaDB --dsn.
        Case {
            what: "mysql wrong password",
            args: alter(&format!("mysql://shadowswap:{s}@{my}/mysql"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "mysql unreachable",
            args: alter(&format!("mysql://shadowswap:{s}@127.0.0.1:1/db"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "mysql invalid port",
            args: alter(&format!("mysql://shadowswap:{s}@127.0.0.1:99999/db"), &[]),
            env: vec![],
            code: 1,
        },
        Case { what: "mysql no user", args: alter(&format!("mysql://:{s}@{my}/db"), &[]), env: vec![], code: 1 },
        Case { what: "mysql no host", args: alter(&format!("mysql://u:{s}@/db"), &[]), env: vec![], code: 1 },
        Case {
            what: "mysql percent-encoded password",
            args: alter(&format!("mysql://shadowswap:{}@127.0.0.1:1/db", s.replace('-', "%2D")), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "mysql --dsn=… form",
            args: vec![
                "alter".into(),
                format!("--dsn=mysql://shadowswap:{s}@127.0.0.1:1/db"),
                "--table".into(),
                "t".into(),
                "--alter".into(),
                "FORCE".into(),
            ],
            env: vec![],
            code: 1,
        },
        Case {
            what: "mysql cleanup, wrong password",
            args: vec![
                "cleanup".into(),
                "--dsn".into(),
                format!("mysql://shadowswap:{s}@{my}/mysql"),
                "--table".into(),
                "t".into(),
            ],
            env: vec![],
            code: 1,
        },
        // PostgreSQL --dsn.
        Case {
            what: "postgres wrong password",
            args: alter(&format!("postgres://shadowswap:{s}@{pg_hp}/shadowswap"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres unreachable",
            args: alter(&format!("postgres://shadowswap:{s}@127.0.0.1:1/shadowswap"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres bad port",
            args: alter(&format!("postgres://shadowswap:{s}@127.0.0.1:notaport/x"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres unknown parameter",
            args: alter(&format!("postgres://shadowswap:{s}@{pg_hp}/x?bogus=1"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres unsupported ssl parameter",
            args: alter(&format!("postgres://shadowswap:{s}@{pg_hp}/x?sslcert=/tmp/c.pem"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres bad sslmode",
            args: alter(&format!("postgres://shadowswap:{s}@{pg_hp}/x?sslmode=bogus"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres missing CA file",
            args: alter(&format!("postgres://shadowswap:{s}@{pg_hp}/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres sslmode=require, wrong password",
            args: alter(&format!("postgres://shadowswap:{s}@{pg_hp}/shadowswap?sslmode=require"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres password parameter",
            args: alter(&format!("postgres://shadowswap@{pg_hp}/shadowswap?password={s}"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "postgres password with '@'",
            args: alter(&format!("postgres://shadowswap:{s}@x@127.0.0.1:1/shadowswap"), &[]),
            env: vec![],
            code: 1,
        },
        Case {
            what: "libpq key=value --dsn",
            args: alter(&format!("host=127.0.0.1 port=1 user=shadowswap password={s} dbname=x"), &[]),
            env: vec![],
            code: 2,
        },
        // Other schemes and clap's own errors.
        Case { what: "unknown scheme", args: alter(&format!("foo://u:{s}@h/db"), &[]), env: vec![], code: 2 },
        Case {
            what: "DSN without --dsn",
            args: vec![
                "alter".into(),
                format!("mysql://u:{s}@h/db"),
                "--table".into(),
                "t".into(),
                "--alter".into(),
                "FORCE".into(),
            ],
            env: vec![],
            code: 2,
        },
        Case {
            what: "--dsn twice",
            args: vec![
                "alter".into(),
                "--dsn".into(),
                format!("mysql://u:{s}@h/db"),
                "--dsn".into(),
                format!("mysql://u:{s}@h/db"),
                "--table".into(),
                "t".into(),
                "--alter".into(),
                "FORCE".into(),
            ],
            env: vec![],
            code: 2,
        },
        Case {
            what: "DSN as the value of another flag",
            args: alter(&my_ok, &["--max-lag", &format!("mysql://u:{s}@h/db")]),
            env: vec![],
            code: 2,
        },
    ];
    // A TLS failure: the primary's certificate checked against another CA (the replica's), when
    // the test servers run with TLS (scripts/postgres.sh generates the CAs).
    let other_ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/postgres/replica.ca.crt");
    let other_ca = std::env::var("SHADOWSWAP_PG_SSLROOTCERT")
        .ok()
        .map(|p| std::path::PathBuf::from(p).with_file_name("replica.ca.crt"))
        .filter(|p| p.exists())
        .unwrap_or(other_ca);
    if other_ca.exists() {
        let dsn = format!("postgres://shadowswap:{s}@{pg_hp}/shadowswap?sslmode=verify-full&sslrootcert={}", other_ca.display());
        v.push(Case { what: "postgres TLS certificate of an unknown issuer", args: alter(&dsn, &[]), env: vec![], code: 1 });
    } else {
        eprintln!("no {}: the TLS failure case is skipped", other_ca.display());
    }
    v.push(case(
        "MYSQL_PWD, wrong password",
        &alter(&format!("mysql://shadowswap@{my}/mysql"), &[]).iter().map(String::as_str).collect::<Vec<_>>(),
        &[("MYSQL_PWD", s)],
        1,
    ));
    v.push(case(
        "PGPASSWORD, wrong password",
        &alter(&format!("postgres://shadowswap@{pg_hp}/shadowswap"), &[]).iter().map(String::as_str).collect::<Vec<_>>(),
        &[("PGPASSWORD", s)],
        1,
    ));
    v
}

/// Every case, in text and JSON logs at `trace`: the expected exit status, no panic, and the
/// sentinel nowhere in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_error_path_shows_a_password() {
    let mut failures = Vec::new();
    for c in cases() {
        for format in ["text", "json"] {
            let mut args: Vec<&str> = vec!["--log-format", format];
            args.extend(c.args.iter().map(String::as_str));
            let mut env: Vec<(&str, &str)> = vec![("RUST_LOG", "trace")];
            env.extend(c.env.iter().map(|(k, v)| (*k, v.as_str())));
            let out = run_cli(&args, &env).await;
            let err = stderr(&out);
            if std::panic::catch_unwind(|| assert_never_shown(&out, SENTINEL)).is_err() {
                failures.push(format!(
                    "{} ({format}): the password is shown:\n{}",
                    c.what,
                    err.lines().filter(|l| l.contains(SENTINEL)).collect::<Vec<_>>().join("\n")
                ));
            }
            if out.status.code() != Some(c.code) || err.contains("panicked") {
                failures.push(format!(
                    "{} ({format}): exit {:?}, expected {}:\n{}",
                    c.what,
                    out.status.code(),
                    c.code,
                    err.lines().last().unwrap_or("")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n\n"));
}

/// The usage error for a `--replica` of the other scheme says what is wrong without the DSN.
#[tokio::test]
async fn a_replica_of_the_other_scheme_is_named_by_its_scheme_only() {
    let pg_hp = host_port(&postgres::server_dsn());
    let replica = format!("postgres://shadowswap:{SENTINEL}@{pg_hp}/shadowswap");
    let out =
        run_cli(&alter(&mysql::server_dsn(), &["--replica", &replica]).iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    let line =
        shadowswap_integration::cli::assert_fails(&out, 2, &["a --replica DSN is a postgres:// DSN", "must be a mysql:// DSN"]);
    assert!(!line.contains("shadowswap@"), "{line}");
    assert_never_shown(&out, SENTINEL);
}
