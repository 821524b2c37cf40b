//! The test servers themselves, through the project's own scripts: a restart in the middle of a
//! run (what a DBA's server restart or failover looks like to shadowswap). Only tests that run
//! alone may use it (`.config/nextest.toml`): it cuts every session of every test.

use std::process::Command;

/// Restart the primary test server of `kind` (`"mariadb"` or `"postgres"`) with
/// `scripts/<kind>.sh restart`, keeping its data; returns once it answers again. Panics with the
/// script's output when it fails.
pub fn restart(kind: &str) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new("bash")
        .arg(format!("scripts/{kind}.sh"))
        .arg("restart")
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{kind}.sh restart: {e}"));
    assert!(
        out.status.success(),
        "scripts/{kind}.sh restart failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
