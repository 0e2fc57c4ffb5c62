//! A PowerSync app's dependency tree holds no sqlx: PowerSync brings its own SQLite stack
//! (rusqlite), and a second one would be a second connection pool on the same file.

use std::process::Command;

/// The packages in the normal and build dependency tree of `args`, one per line.
fn tree(args: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_powersync_store_brings_no_sqlx() {
    let packages = tree(&["--package", "attachments-powersync"]);
    assert!(
        packages.iter().any(|p| p.starts_with("powersync ")),
        "{packages:?}"
    );
    let sqlx: Vec<&String> = packages.iter().filter(|p| p.starts_with("sqlx")).collect();
    assert!(sqlx.is_empty(), "{sqlx:?}");
}

#[test]
fn a_powersync_only_app_on_the_facade_brings_no_sqlx() {
    let packages = tree(&[
        "--package",
        "attachments",
        "--no-default-features",
        "--features",
        "powersync,fs",
    ]);
    assert!(
        packages
            .iter()
            .any(|p| p.starts_with("attachments-powersync ")),
        "{packages:?}"
    );
    let sqlx: Vec<&String> = packages.iter().filter(|p| p.starts_with("sqlx")).collect();
    assert!(sqlx.is_empty(), "{sqlx:?}");
}
