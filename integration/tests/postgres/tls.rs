//! TLS to PostgreSQL with libpq's `sslmode` semantics (dialects/postgres/src/tls.rs), against
//! the real server `scripts/postgres.sh` runs: `ssl = on` with a CA and a server certificate it
//! generated (subjectAltName DNS:localhost, IP:127.0.0.1; the CA certificate is published at
//! `.local/postgres/primary.ca.crt`, or set `SHADOWSWAP_PG_SSLROOTCERT`). Its pg_hba.conf lets
//! the role `ssw_tls_only` in over TLS only and `ssw_plain_only` without TLS only, so the
//! fallbacks of `allow` and `prefer` can be seen; the tests create both roles (and leave them).
//!
//! Sessions are opened exactly as the dialect opens its own (`Dsn::parse` + `Tls::connect`, which
//! the pool and the run-lock session use) and asked `pg_stat_ssl` whether they are encrypted;
//! the dialect's pool and run-lock sessions are also looked at from outside; a whole
//! `shadowswap alter --execute` runs through the CLI over `sslmode=require` as a role that can
//! only log in over TLS. Failures are one clear line, without the password.

use std::path::PathBuf;
use std::time::Duration;

use shadowswap_engine::dialect::Dialect;
use shadowswap_integration::cli::{assert_fails, assert_never_shown, run_cli, stderr};
use shadowswap_integration::postgres::{client, server_dsn, PgTestDb};
use shadowswap_postgres::{Dsn, Postgres};

/// TLS only (pg_hba.conf: `hostnossl ... reject`).
const TLS_ONLY: (&str, &str) = ("ssw_tls_only", "Tls-Pa55-sentinel");
/// Plain only (pg_hba.conf: `hostssl ... reject`).
const PLAIN_ONLY: (&str, &str) = ("ssw_plain_only", "Plain-Pa55-sentinel");

/// A CA that did not sign the server's certificate (self-signed, ECDSA P-256, valid to 2126).
const WRONG_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBsDCCAVegAwIBAgIUXWg5bFfepqRaCVYe9C/NfpPtcEQwCgYIKoZIzj0EAwIw
JTEjMCEGA1UEAwwabm90IHRoZSBzaGFkb3dzd2FwIHRlc3QgQ0EwIBcNMjYxMTIy
MDUwNDMzWhgPMjEyNjEwMjkwNTA0MzNaMCUxIzAhBgNVBAMMGm5vdCB0aGUgc2hh
ZG93c3dhcCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ1VohRTj
+c0sk6RTNHp1yABfvZyMuyfOonwV50LD+9UD1KG2Ne1p0lT70nxKJvOicrXRhees
uj67SS0ovTr4xqNjMGEwHQYDVR0OBBYEFDKcIaSmA8Eeo70OMvIathJA4DuiMB8G
A1UdIwQYMBaAFDKcIaSmA8Eeo70OMvIathJA4DuiMA8GA1UdEwEB/wQFMAMBAf8w
DgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0cAMEQCICZlXozy1aUrBdqS7S0F
0ZeNVr0QtdYccr+u+U74EMsMAiAZHZDNVr0hC1lU+GVS0t2vEdB2FTRcGxXHUHU9
ePNcew==
-----END CERTIFICATE-----
";

/// `host:port` of the test server.
fn host_port() -> String {
    let dsn = server_dsn();
    let rest = dsn.split_once("://").map_or(dsn.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    rest.split(['/', '?']).next().unwrap().to_string()
}

/// The port of the test server.
fn port() -> String {
    host_port().rsplit_once(':').map_or("5432".to_string(), |(_, p)| p.to_string())
}

/// The CA certificate that signed the test server's certificate.
fn ca_file() -> String {
    let path = std::env::var("SHADOWSWAP_PG_SSLROOTCERT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(".local/postgres/primary.ca.crt"));
    assert!(
        path.is_file(),
        "{} not found: the test server must run with TLS (scripts/postgres.sh start generates its CA), or set SHADOWSWAP_PG_SSLROOTCERT",
        path.display()
    );
    path.to_str().unwrap().to_string()
}

/// A file of the test's own in a temporary directory, holding `contents`.
fn temp_file(name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("shadowswap-pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_string()
}

/// An empty directory to be `$HOME`, so libpq's default `~/.postgresql/root.crt` is not there.
fn empty_home() -> String {
    let dir = std::env::temp_dir().join(format!("shadowswap-pg-tls-{}-home", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_str().unwrap().to_string()
}

/// DSN for `user` (password `password`, none if empty) on `host` (the server's port) and
/// database `db`, with query `params` (may be empty).
fn dsn(user: &str, password: &str, host: &str, db: &str, params: &str) -> String {
    let creds = if password.is_empty() { user.to_string() } else { format!("{user}:{password}") };
    let query = if params.is_empty() { String::new() } else { format!("?{params}") };
    format!("postgres://{creds}@{host}:{}/{db}{query}", port())
}

/// The test server's own account on the maintenance database, on 127.0.0.1, with `params`.
fn app_dsn(params: &str) -> String {
    dsn("shadowswap", "shadowswap", "127.0.0.1", "shadowswap", params)
}

/// Open a session the way the dialect opens all of its connections, and ask the server whether
/// it is encrypted: `(ssl, TLS version)`. Errors as the dialect words them would differ; this
/// gives the driver's.
async fn session_ssl(dsn: &str) -> Result<(bool, String), String> {
    let d = Dsn::parse(dsn, None).map_err(|e| e.to_string())?;
    let (client, conn) = d.tls.connect(&d.config).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok((row.get(0), row.get(1)))
}

/// `(ssl, version)`, panicking on failure.
async fn ssl_of(dsn: &str) -> (bool, String) {
    session_ssl(dsn).await.unwrap_or_else(|e| panic!("{dsn}: {e}"))
}

/// The error of connecting the dialect to `dsn`.
async fn dialect_error(dsn: &str) -> String {
    match Postgres::connect(dsn, None).await {
        Ok(_) => panic!("{dsn}: connected, expected a failure"),
        Err(e) => e.to_string(),
    }
}

/// Create the two roles of pg_hba.conf's TLS rules (once per test process; across processes —
/// nextest runs each test in one of its own — an advisory lock held to the end of the transaction
/// takes turns: concurrent ALTER ROLE of one role fails with "tuple concurrently updated").
async fn ensure_roles() {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let admin = client(&server_dsn()).await;
        for (role, password) in [TLS_ONLY, PLAIN_ONLY] {
            admin
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtext('shadowswap tests: TLS roles')); \
                     DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
                     ALTER ROLE {role} WITH LOGIN NOSUPERUSER PASSWORD '{password}'; COMMIT"
                ))
                .await
                .unwrap_or_else(|e| panic!("creating role {role}: {e}"));
        }
    })
    .await;
}

/// disable and allow stay plain on a server that accepts both; prefer (also when sslmode is
/// absent: libpq's default), require, verify-ca and verify-full are encrypted.
#[tokio::test]
async fn sslmode_decides_whether_the_session_is_encrypted() {
    let ca = ca_file();
    let cases = [
        ("", true),
        ("sslmode=disable", false),
        ("sslmode=allow", false),
        ("sslmode=prefer", true),
        ("sslmode=require", true),
        (&format!("sslmode=verify-ca&sslrootcert={ca}") as &str, true),
        (&format!("sslmode=verify-full&sslrootcert={ca}"), true),
    ];
    for (params, encrypted) in cases {
        let (ssl, version) = ssl_of(&app_dsn(params)).await;
        assert_eq!(ssl, encrypted, "sslmode from {params:?}");
        if encrypted {
            assert!(version.starts_with("TLSv1."), "{params}: {version}");
        }
    }
    // verify-full accepts the other name the certificate lists.
    let localhost = dsn("shadowswap", "shadowswap", "localhost", "shadowswap", &format!("sslmode=verify-full&sslrootcert={ca}"));
    assert!(ssl_of(&localhost).await.0, "{localhost}");
}

/// The dialect's pool connections and its run-lock session follow sslmode, seen from outside
/// (pg_stat_ssl of every `shadowswap` session in the test's database).
#[tokio::test]
async fn the_dialects_own_sessions_follow_sslmode() {
    let db = PgTestDb::new("tls_sessions").await;
    let admin = client(&server_dsn()).await;
    let sessions = || async {
        let row = admin
            .query_one(
                "SELECT count(*), coalesce(bool_and(s.ssl), false), coalesce(bool_or(s.ssl), false) \
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.datname = $1 AND a.application_name = 'shadowswap'",
                &[&db.name],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, bool>(1), row.get::<_, bool>(2))
    };
    let ca = ca_file();
    for (params, encrypted) in [
        ("sslmode=disable".to_string(), false),
        ("sslmode=require".to_string(), true),
        (format!("sslmode=verify-full&sslrootcert={ca}"), true),
    ] {
        let dsn = dsn("shadowswap", "shadowswap", "127.0.0.1", &db.name, &params);
        let pg = Postgres::connect(&dsn, None).await.unwrap_or_else(|e| panic!("{params}: {e}"));
        let lock = pg.acquire_run_lock(&pg.names(&db.table("t"))).await.unwrap_or_else(|e| panic!("{params}: {e}"));
        let (n, all, any) = sessions().await;
        assert!(n >= 2, "{params}: expected the pool's and the run lock's sessions, saw {n}");
        assert_eq!((all, any), (encrypted, encrypted), "{params}: ssl of the dialect's {n} sessions");
        lock.release().await.unwrap();
        drop(pg);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sessions().await.0 > 0 {
            assert!(tokio::time::Instant::now() < deadline, "{params}: the dialect's sessions did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// libpq's fallbacks: `allow` retries with TLS when the server refuses a plain session, `prefer`
/// retries without TLS when the server refuses the TLS one; `disable` and `require` never retry
/// and say what to do.
#[tokio::test]
async fn allow_and_prefer_fall_back_as_libpq_does() {
    ensure_roles().await;
    let on = |(user, password): (&str, &str), params: &str| dsn(user, password, "127.0.0.1", "shadowswap", params);

    assert!(ssl_of(&on(TLS_ONLY, "sslmode=allow")).await.0, "allow: plain refused, then TLS");
    assert!(ssl_of(&on(TLS_ONLY, "sslmode=prefer")).await.0);
    assert!(ssl_of(&on(TLS_ONLY, "sslmode=require")).await.0);
    let e = dialect_error(&on(TLS_ONLY, "sslmode=disable")).await;
    assert!(e.contains("with sslmode=disable: the server accepts this connection only over TLS"), "{e}");
    assert!(e.contains("use sslmode=require, verify-ca or verify-full"), "{e}");
    assert!(!e.contains(TLS_ONLY.1), "{e}");

    assert!(!ssl_of(&on(PLAIN_ONLY, "sslmode=prefer")).await.0, "prefer: TLS refused, then plain");
    assert!(!ssl_of(&on(PLAIN_ONLY, "")).await.0, "the default is prefer");
    assert!(!ssl_of(&on(PLAIN_ONLY, "sslmode=allow")).await.0);
    let e = dialect_error(&on(PLAIN_ONLY, "sslmode=require")).await;
    assert!(e.contains("access denied") && e.contains("SSL encryption"), "{e}");
    assert!(!e.contains(PLAIN_ONLY.1), "{e}");
}

/// verify-ca checks the chain (not the name); verify-full the chain and the name. A wrong CA, a
/// name not in the certificate, no CA at all, an unreadable CA file: one line each, saying what
/// to do, without the password (from the DSN or PGPASSWORD), in text and JSON logs.
#[tokio::test]
async fn verify_ca_and_verify_full_refuse_what_they_must() {
    ensure_roles().await;
    let (user, secret) = TLS_ONLY;
    let ca = ca_file();
    let wrong = temp_file("wrong-ca.crt", WRONG_CA);
    let home = empty_home();
    // The name is not checked by verify-ca (connecting to 127.0.0.1 as "wrong.example").
    let renamed = |params: &str| dsn(user, secret, "wrong.example", "shadowswap", &format!("hostaddr=127.0.0.1&{params}"));
    assert!(ssl_of(&renamed(&format!("sslmode=verify-ca&sslrootcert={ca}"))).await.0);

    let target = format!("cannot connect to postgres://{user}@127.0.0.1:{}/shadowswap", port());
    let cases: [(String, Vec<String>); 5] = [
        (
            dsn(user, secret, "127.0.0.1", "shadowswap", &format!("sslmode=verify-ca&sslrootcert={wrong}")),
            vec![
                format!("{target} with sslmode=verify-ca: the server's certificate is not signed by a CA in sslrootcert={wrong}"),
                "point sslrootcert at the CA certificate (PEM) that signed the server's certificate, or use sslmode=require"
                    .into(),
            ],
        ),
        (
            // The password from PGPASSWORD instead (set below for every run of this case).
            dsn(user, "", "127.0.0.1", "shadowswap", &format!("sslmode=verify-full&sslrootcert={wrong}")),
            vec![format!("{target} with sslmode=verify-full: the server's certificate is not signed by a CA")],
        ),
        (
            renamed(&format!("sslmode=verify-full&sslrootcert={ca}")),
            vec![
                format!("cannot connect to postgres://{user}@wrong.example:{}/shadowswap with sslmode=verify-full", port()),
                "the server's certificate is not valid for host wrong.example (it names localhost, 127.0.0.1)".into(),
                "use sslmode=verify-ca to verify only that a trusted CA signed it".into(),
            ],
        ),
        (
            dsn(user, secret, "127.0.0.1", "shadowswap", "sslmode=verify-ca"),
            vec![
                "sslmode=verify-ca verifies the server's certificate and needs the CA certificate".into(),
                format!("libpq's default {home}/.postgresql/root.crt does not exist"),
                "add sslrootcert=/path/to/ca.crt".into(),
            ],
        ),
        (
            dsn(user, secret, "127.0.0.1", "shadowswap", "sslmode=require&sslrootcert=/nonexistent/ca.crt"),
            vec!["cannot read sslrootcert file /nonexistent/ca.crt".into(), "give sslrootcert the path of the PEM file".into()],
        ),
    ];
    for (i, (dsn, expect)) in cases.into_iter().enumerate() {
        // Case 1 has its password in PGPASSWORD.
        let mut env = vec![("HOME", home.as_str())];
        if i == 1 {
            env.push(("PGPASSWORD", secret));
        }
        for format in ["text", "json"] {
            let args =
                ["--log-format", format, "alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c int", "--execute"];
            let out = run_cli(&args, &env).await;
            let expect: Vec<&str> = expect.iter().map(String::as_str).collect();
            assert_fails(&out, 1, &expect);
            assert_never_shown(&out, secret);
        }
    }
}

/// A server that answers TLS requests with "no": `require` says so and what to do; `prefer`
/// goes on without TLS (and then fails here for another reason: the fake server speaks no more).
#[tokio::test]
async fn require_refuses_a_server_without_tls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut request = [0u8; 8]; // SSLRequest: length 8, code 80877103
            if s.read_exact(&mut request).is_ok() && request[4..] == [0x04, 0xd2, 0x16, 0x2f] {
                let _ = s.write_all(b"N");
            }
            // Whatever follows (a plain startup message) gets no answer.
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            let _ = s.read_to_end(&mut Vec::new());
        }
    });
    let at = |params: &str| format!("postgres://app:Fake-pw@127.0.0.1:{port}/db?{params}");
    let e = dialect_error(&at("sslmode=require")).await;
    assert!(
        e.contains(&format!("cannot connect to postgres://app@127.0.0.1:{port}/db with sslmode=require: the server does not accept TLS connections")),
        "{e}"
    );
    assert!(e.contains("enable ssl on the server"), "{e}");
    let e = dialect_error(&at("sslmode=prefer")).await;
    assert!(!e.contains("TLS"), "prefer goes on without TLS: {e}");
    for e in [dialect_error(&at("sslmode=require")).await, e] {
        assert!(!e.contains("Fake-pw"), "{e}");
    }
}

/// A whole migration through the CLI over sslmode=require, as a role that can only log in over
/// TLS (so every session the run opens is encrypted), with the password in PGPASSWORD only.
#[tokio::test]
async fn alter_over_require_through_the_cli() {
    ensure_roles().await;
    let (user, secret) = TLS_ONLY;
    let db = PgTestDb::new("tls_cli").await;
    db.exec(&format!(
        "ALTER DATABASE {name} OWNER TO {user}; \
         CREATE TABLE t (id bigint PRIMARY KEY, v text); \
         INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g; \
         ALTER TABLE t OWNER TO {user}",
        name = db.name
    ))
    .await;
    let dsn = dsn(user, "", "127.0.0.1", &db.name, "sslmode=require");
    for format in ["text", "json"] {
        let column = format!("c_{format}");
        let alter = format!("ADD COLUMN {column} int NOT NULL DEFAULT 7");
        let args = ["--log-format", format, "alter", "--dsn", &dsn, "--table", "t", "--alter", &alter, "--execute"];
        let out = run_cli(&args, &[("PGPASSWORD", secret), ("HOME", &empty_home())]).await;
        assert_eq!(out.status.code(), Some(0), "{format}: stderr:\n{}", stderr(&out));
        assert_never_shown(&out, secret);
        let rows = db.text_rows(&format!("SELECT count(*), min({column}), max({column}) FROM t")).await;
        assert_eq!(rows, vec![vec![Some("500".to_string()), Some("7".to_string()), Some("7".to_string())]], "{format}");
    }
    db.assert_clean(&["t"]).await;
}
