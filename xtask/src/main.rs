//! Project automation, run as `cargo xtask <command>`.
//!
//! - `test`: every test of the workspace, after starting the servers the tests need (SeaweedFS
//!   for the S3 tests, unless `ATTACHMENTS_TEST_S3_ENDPOINT` names another server; then the
//!   S3 suites again against moto), plus the architecture check.
//! - `interop [--skip-garage]`: the S3 suites against SeaweedFS, moto and Garage, as a table.
//! - `s3`: start SeaweedFS for a developer and print the variables that point tests and the
//!   S3 example at it; runs until interrupted.
//! - `ci`: what CI runs (`.github/workflows/ci.yml` and `.ci/run` call only this): format
//!   check, clippy and docs with `-D warnings`, every feature combination of the facade, then
//!   `test`, then the quickstart example.
//! - `chaos [--kills N] [--remote fs|s3] [--seed S] [--devices 1|2]`: kill syncing workers at
//!   random moments, restart them, and check that nothing was lost (`tools/chaos-worker`);
//!   `test` runs 20 kills of two devices on a directory as the remote.
//! - `bench [--quick] [--scenario NAME]...`: the queue against s5cmd, rclone and the PowerSync
//!   JS queue on SeaweedFS, or on the server `ATTACHMENTS_TEST_S3_*` names (release build);
//!   see `docs/BENCHMARKS.md`.
//! - `check-architecture`: every structural rule of `docs/ARCHITECTURE.md`, one named check
//!   each (`architecture/`).
//!
//! Orchestration only: it runs cargo and checks exit codes; its one dependency, serde_json,
//! reads `cargo metadata`.

mod architecture;
mod bench;
mod chaos;
mod ci;
mod garage;
mod interop;
mod latency_proxy;
mod libclang;
mod moto;
mod seaweedfs;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use seaweedfs::SeaweedFs;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci::ci(),
        Some("s3") => s3(),
        Some("interop") => interop::interop(&args[1..], &target_dir()),
        Some("bench") => bench::bench(&args[1..], &target_dir()),
        Some("chaos") => chaos::ChaosOptions::parse(&args[1..])
            .and_then(|options| chaos::chaos(&options, &target_dir())),
        Some("check-architecture") => architecture::check_architecture(),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [cargo test args]|ci|s3|interop [--skip-garage]|chaos [--kills N] [--remote fs|s3] [--seed S] [--devices 1|2]|bench [--quick] [--scenario S]|check-architecture>"
            );
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

pub(crate) fn test(extra: &[String]) -> Result<(), String> {
    architecture::check_architecture()?;
    // every feature is built, the PowerSync store's too
    libclang::ensure()?;
    // crash safety first: 20 SIGKILLs of two syncing devices, then nothing may be lost
    let two_devices = ["--devices".to_owned(), "2".to_owned()];
    chaos::chaos(&chaos::ChaosOptions::parse(&two_devices)?, &target_dir())?;
    // build first, so the server does not wait through a long compile
    cargo(&["test", "--workspace", "--all-features", "--no-run"])?;
    let mut command = Command::new("cargo");
    command.args(["test", "--workspace", "--all-features"]);
    command.args(extra);
    if std::env::var_os("ATTACHMENTS_TEST_S3_ENDPOINT").is_some() {
        println!(
            "S3 tests run against {:?}",
            std::env::var("ATTACHMENTS_TEST_S3_ENDPOINT")
        );
        return run(&mut command);
    }
    let server = SeaweedFs::start(&target_dir())?;
    command.envs(server.environment());
    let result = run(&mut command);
    if result.is_err() {
        server.dump_log();
    }
    result.and_then(|()| moto::test_s3_suites(&target_dir()))
}

fn s3() -> Result<(), String> {
    let server = SeaweedFs::start(&target_dir())?;
    println!("SeaweedFS is running. In another shell:");
    for (name, value) in server.environment() {
        println!("  export {name}={value}");
    }
    println!(
        "then `cargo test -p attachments-s3` or `cargo run --example s3 --features s3`. Ctrl-C stops it."
    );
    server.wait()
}

/// The workspace's target directory (where SeaweedFS is installed and keeps its data).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(&manifest).join("target")
}

pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    run(Command::new("cargo").args(args))
}

pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("starting {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}
