//! Project automation, run as `cargo xtask <command>`.
//!
//! - `test`: every test of the workspace, after starting whatever servers the tests need
//!   (none yet: the embedded defaults need no server), plus the architecture check.
//! - `ci`: what CI runs: format check, clippy with `-D warnings`, docs with `-D warnings`,
//!   then `test`.
//! - `check-architecture`: the core's dependency tree holds no SQL, AWS or HTTP crate.
//!
//! Orchestration only: it runs cargo and checks exit codes, with no dependencies of its own.

use std::process::{Command, ExitCode};

/// Crates the core must never depend on: it knows no SQL dialect and no network protocol.
const FORBIDDEN_IN_CORE: [&str; 5] = ["sqlx", "aws-sdk-s3", "aws-config", "reqwest", "hyper"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
        Some("check-architecture") => check_architecture(),
        _ => {
            eprintln!("usage: cargo xtask <test [cargo test args]|ci|check-architecture>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    check_architecture()?;
    let mut args = vec!["test", "--workspace", "--all-features"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])?;
    run(Command::new("cargo")
        .args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    test(&[])
}

fn check_architecture() -> Result<(), String> {
    let output = Command::new("cargo")
        .args([
            "tree",
            "--package",
            "attachments-core",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .map_err(|e| format!("running cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let offenders: Vec<&str> = tree
        .lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            FORBIDDEN_IN_CORE.contains(&name)
        })
        .collect();
    if !offenders.is_empty() {
        return Err(format!(
            "attachments-core must not depend on {offenders:?}: the core knows no SQL and no network protocol"
        ));
    }
    println!("architecture: attachments-core depends on none of {FORBIDDEN_IN_CORE:?}");
    Ok(())
}

fn cargo(args: &[&str]) -> Result<(), String> {
    run(Command::new("cargo").args(args))
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("starting {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}
