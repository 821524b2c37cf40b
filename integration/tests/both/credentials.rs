//! Connecting, through the real `shadowswap` binary: an unreachable server, a wrong password, a
//! password given only in `MYSQL_PWD`, passwords with URL-special characters, a PostgreSQL DSN,
//! and an account that may not create triggers. Each failure is one clear line on stderr with
//! exit status 1 (2 for usage errors), and no password ever appears in the output, in text or
//! JSON logs.

use mysql_async::prelude::Queryable;
use shadowswap_integration::cli::{assert_fails, assert_never_shown, run_cli, stderr};
use shadowswap_integration::mysql::{server_dsn, TestDb};

/// Extra environment of one run.
type Env<'a> = &'a [(&'a str, &'a str)];

/// `host:port` of the test server.
fn host_port() -> String {
    let dsn = server_dsn();
    let rest = dsn.split_once("://").map_or(dsn.as_str(), |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, hp)| hp).trim_end_matches('/').to_string()
}

/// An account of the test's own, `user`@'%' with `password` and ALL on the test's database plus
/// `global` privileges; dropped by [`drop_user`].
async fn create_user(db: &TestDb, user: &str, password: &str, global: Option<&str>) {
    let mut c = db.pool.get_conn().await.unwrap();
    c.query_drop(format!("CREATE OR REPLACE USER '{user}'@'%' IDENTIFIED BY '{password}'")).await.unwrap();
    c.query_drop(format!("GRANT ALL PRIVILEGES ON `{}`.* TO '{user}'@'%'", db.name)).await.unwrap();
    if let Some(p) = global {
        c.query_drop(format!("GRANT {p} ON *.* TO '{user}'@'%'")).await.unwrap();
    }
}

async fn drop_user(db: &TestDb, user: &str) {
    db.pool.get_conn().await.unwrap().query_drop(format!("DROP USER IF EXISTS '{user}'@'%'")).await.unwrap();
}

async fn small_table(name: &str) -> TestDb {
    let db = TestDb::new(name).await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL)").await;
    db
}

#[tokio::test]
async fn unreachable_server() {
    let secret = "Unreach4ble-sentinel";
    let dsn = format!("mysql://shadowswap:{secret}@127.0.0.1:1/db");
    for format in ["text", "json"] {
        let out = run_cli(
            &["--log-format", format, "alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"],
            &[],
        )
        .await;
        assert_fails(
            &out,
            1,
            &[
                "cannot connect to mysql://shadowswap@127.0.0.1:1/db",
                "Connection refused",
                "check that the server is running and the DSN's host and port are right",
            ],
        );
        assert_never_shown(&out, secret);
    }
}

#[tokio::test]
async fn wrong_password() {
    let db = small_table("cred_wrong_password").await;
    let before = db.rows("t", "id").await;
    let secret = "Wr0ngPa55-sentinel";
    let hp = host_port();
    let in_dsn = format!("mysql://shadowswap:{secret}@{hp}/{}", db.name);
    let no_pw = format!("mysql://shadowswap@{hp}/{}", db.name);
    let runs: [(&str, &str, Env); 4] = [
        ("text", &in_dsn, &[]),
        ("json", &in_dsn, &[]),
        ("text", &no_pw, &[("MYSQL_PWD", secret)]),
        ("json", &no_pw, &[("MYSQL_PWD", secret), ("RUST_LOG", "trace")]),
    ];
    for (format, dsn, env) in runs {
        let out = run_cli(
            &["--log-format", format, "alter", "--dsn", dsn, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"],
            env,
        )
        .await;
        assert_fails(
            &out,
            1,
            &[
                &format!("access denied for mysql://shadowswap@{hp}/{}", db.name),
                "check the user and the password (DSN or MYSQL_PWD",
            ],
        );
        assert_never_shown(&out, secret);
    }
    db.assert_clean(&["t"]).await;
    assert_eq!(db.rows("t", "id").await, before);
}

#[tokio::test]
async fn password_only_in_mysql_pwd() {
    let db = small_table("cred_mysql_pwd").await;
    let (user, secret) = ("ssw_cred_env", "Env-Pa55-sentinel");
    create_user(&db, user, secret, Some("SUPER")).await;
    let dsn = format!("mysql://{user}@{}/{}", host_port(), db.name);
    let before = db.rows("t", "id").await;
    for (format, spec) in [("text", "ADD COLUMN c INT NULL"), ("json", "ADD COLUMN d INT NULL")] {
        let out = run_cli(
            &["--log-format", format, "alter", "--dsn", &dsn, "--table", "t", "--alter", spec, "--execute"],
            &[("MYSQL_PWD", secret), ("RUST_LOG", "debug")],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
        assert_never_shown(&out, secret);
    }
    drop_user(&db, user).await;
    db.assert_clean(&["t"]).await;
    let ddl = db.create_table("t").await;
    assert!(ddl.contains("`c` int(11) DEFAULT NULL") && ddl.contains("`d` int(11) DEFAULT NULL"), "{ddl}");
    let after: Vec<_> = db.rows("t", "id").await.into_iter().map(|mut r| r.drain(..2).collect::<Vec<_>>()).collect();
    assert_eq!(after, before);
}

#[tokio::test]
async fn passwords_with_url_special_characters() {
    let db = small_table("cred_special_chars").await;
    // `+` and `&` are plain characters in a URL's password (they are special only in form data);
    // `=`, `!` and `%` may be percent-encoded.
    let (user, secret) = ("ssw_cred_special", "Pl+us&Amp=Eq!Pct%Sentinel");
    create_user(&db, user, secret, Some("SUPER")).await;
    let hp = host_port();
    let raw = format!("mysql://{user}:Pl+us&Amp=Eq!Pct%25Sentinel@{hp}/{}", db.name);
    let encoded = format!("mysql://{user}:Pl%2Bus%26Amp%3DEq%21Pct%25Sentinel@{hp}/{}", db.name);
    let no_pw = format!("mysql://{user}@{hp}/{}", db.name);
    let runs: [(&str, Env); 3] = [(&raw, &[]), (&encoded, &[]), (&no_pw, &[("MYSQL_PWD", secret)])];
    for (dsn, env) in runs {
        let out = run_cli(&["alter", "--dsn", dsn, "--table", "t", "--alter", "ADD COLUMN c INT"], env).await;
        assert_eq!(out.status.code(), Some(0), "{dsn}: {}", stderr(&out));
        assert_never_shown(&out, secret);
        assert_never_shown(&out, "Sentinel");
    }
    drop_user(&db, user).await;
    db.assert_clean(&["t"]).await;
}

/// PostgreSQL DSNs reach the PostgreSQL dialect: a wrong password and an unreachable server get
/// the same clear, password-free messages as MariaDB's; an unknown scheme is a usage error.
#[tokio::test]
async fn postgres_credentials_and_unknown_schemes() {
    let pg = shadowswap_integration::postgres::server_dsn();
    let (host_port, _) = pg.trim_start_matches("postgres://").split_once('@').map(|(_, r)| (r, ())).unwrap();
    let host_port = host_port.split('/').next().unwrap();
    for scheme in ["postgres", "postgresql"] {
        let dsn = format!("{scheme}://shadowswap:Pg-Pa55-sentinel@{host_port}/shadowswap");
        let out = run_cli(&["alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"], &[]).await;
        assert_fails(&out, 1, &["access denied", "check the user and the password"]);
        assert_never_shown(&out, "Pg-Pa55-sentinel");
    }
    let out = run_cli(
        &["alter", "--dsn", "postgres://shadowswap@127.0.0.1:1/shadowswap", "--table", "t", "--alter", "FORCE"],
        &[("PGPASSWORD", "Pg-Pa55-sentinel")],
    )
    .await;
    assert_fails(
        &out,
        1,
        &["cannot connect to postgres://shadowswap@127.0.0.1:1/shadowswap", "check that the server is running"],
    );
    assert_never_shown(&out, "Pg-Pa55-sentinel");
    let out = run_cli(&["alter", "--dsn", "oracle://a:b@c/d", "--table", "t", "--alter", "FORCE"], &[]).await;
    assert_fails(&out, 2, &["--dsn must start with mysql:// or postgres://"]);
}

/// While binary logging is on, an account without SUPER cannot create the capture triggers
/// (unless `log_bin_trust_function_creators` is set). Preflight says so before creating anything.
#[tokio::test]
async fn account_that_cannot_create_triggers() {
    let db = small_table("cred_no_super").await;
    let (user, secret) = ("ssw_cred_nosuper", "NoSuper-sentinel");
    create_user(&db, user, secret, None).await;
    let dsn = format!("mysql://{user}@{}/{}", host_port(), db.name);
    let before = (db.create_table("t").await, db.rows("t", "id").await);
    let blocked: i64 = db.scalar("SELECT @@log_bin AND NOT @@log_bin_trust_function_creators").await;
    for execute in [false, true] {
        let mut args = vec!["alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c INT"];
        if execute {
            args.push("--execute");
        }
        let out = run_cli(&args, &[("MYSQL_PWD", secret)]).await;
        assert_never_shown(&out, secret);
        if blocked == 1 {
            assert_fails(
                &out,
                1,
                &[
                    "the capture triggers cannot be created: binary logging is on and ssw_cred_nosuper lacks the SUPER privilege",
                    "grant it SUPER, or SET GLOBAL log_bin_trust_function_creators = 1",
                ],
            );
            db.assert_clean(&["t"]).await;
            assert_eq!((db.create_table("t").await, db.rows("t", "id").await), before);
        } else {
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
    }
    drop_user(&db, user).await;
}
