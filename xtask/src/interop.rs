//! `cargo xtask interop [--skip-garage]`: the external S3 suite and the queue scenarios
//! against SeaweedFS, moto (authentication on) and Garage, each with default settings first,
//! then with the settings the server needs; prints a table of test × server (markdown, for
//! the crate README).

use std::path::Path;
use std::process::Command;

use crate::garage::{self, Garage};
use crate::moto::Moto;
use crate::seaweedfs::SeaweedFs;

/// One run of the suites against one server with one set of settings.
struct Run {
    column: String,
    /// `(test, passed)`, or why the run could not happen.
    results: Result<Vec<(String, bool)>, String>,
    /// What a download from a missing bucket was reported as (servers differ).
    missing_bucket: Option<String>,
    /// Whether a failure here is a failure of `interop` (not so for defaults a server is
    /// known to need changed).
    must_pass: bool,
}

pub(crate) fn interop(args: &[String], target: &Path) -> Result<(), String> {
    let skip_garage = args.iter().any(|arg| arg == "--skip-garage");
    // build first, so no server waits through a compile
    crate::cargo(&[
        "test",
        "--package",
        "attachments-s3",
        "--test",
        "external",
        "--test",
        "queue",
        "--no-run",
    ])?;
    let mut runs = Vec::new();

    match SeaweedFs::start(target) {
        Ok(server) => {
            runs.push(suites("SeaweedFS", server.environment(), true));
            if has_failures(&runs) {
                server.dump_log();
            }
        }
        Err(why) => runs.push(not_run("SeaweedFS", why)),
    }

    match Moto::start(target) {
        Ok(server) => {
            runs.push(suites("moto (auth on)", server.environment(), true));
            if has_failures(&runs) {
                server.dump_log();
            }
        }
        Err(why) => runs.push(not_run("moto", why)),
    }

    let garage = if skip_garage {
        Err("skipped (--skip-garage)".to_owned())
    } else {
        garage::install(target).and_then(|binary| Garage::start(&binary, target))
    };
    match garage {
        Ok(server) => {
            // defaults first: Garage is expected to refuse us-east-1, and the run shows how
            runs.push(suites("Garage, defaults", server.environment(), false));
            let mut environment = server.environment();
            environment.push(("ATTACHMENTS_TEST_S3_REGION", garage::REGION.to_owned()));
            runs.push(suites(
                &format!("Garage, region {}", garage::REGION),
                environment,
                true,
            ));
            if has_failures(&runs) {
                server.dump_log();
            }
        }
        Err(why) => runs.push(not_run("Garage", why)),
    }

    print_table(&runs);
    if has_failures(&runs) {
        Err("a server failed a suite with the settings it needs (table above)".to_owned())
    } else {
        Ok(())
    }
}

fn has_failures(runs: &[Run]) -> bool {
    runs.iter().any(|run| {
        run.must_pass
            && run
                .results
                .as_ref()
                .is_ok_and(|results| results.iter().any(|(_, passed)| !passed))
    })
}

fn not_run(column: &str, why: String) -> Run {
    eprintln!("interop: {column} not run: {why}");
    Run {
        column: column.to_owned(),
        results: Err(why),
        missing_bucket: None,
        must_pass: false,
    }
}

/// Run the external suite and the queue scenarios with `environment`, and read libtest's
/// verdict of each test from its output.
fn suites(column: &str, environment: Vec<(&'static str, String)>, must_pass: bool) -> Run {
    println!("interop: running the S3 suites against {column}");
    let output = Command::new("cargo")
        // --no-fail-fast: the queue scenarios run even when the external suite fails
        .args(["test", "--no-fail-fast", "--package", "attachments-s3"])
        .args(["--test", "external", "--test", "queue"])
        // the stdout of passing tests too: the missing-bucket test prints what it got
        .args(["--", "--show-output"])
        .envs(environment)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return not_run(column, format!("running cargo test: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut results = Vec::new();
    let mut missing_bucket = None;
    for line in stdout.lines() {
        // the in-process server's scenario does not depend on the external server
        if let Some((name, verdict)) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.split_once(" ... "))
            .filter(|(name, _)| !name.contains("in_process"))
        {
            results.push((name.to_owned(), verdict.trim() == "ok"));
        }
        if let Some(got) = line.strip_prefix("a download from a missing bucket: ") {
            missing_bucket = Some(got.split(" (").next().unwrap_or(got).to_owned());
        }
    }
    if results.iter().any(|(_, passed)| !passed) {
        // the failures' messages, so the table's "FAILED" can be read
        eprintln!("{stdout}");
    }
    if results.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        return not_run(column, "no test ran (see the output above)".to_owned());
    }
    results.sort();
    Run {
        column: column.to_owned(),
        results: Ok(results),
        missing_bucket,
        must_pass,
    }
}

fn print_table(runs: &[Run]) {
    let mut tests: Vec<&str> = runs
        .iter()
        .filter_map(|run| run.results.as_ref().ok())
        .flatten()
        .map(|(name, _)| name.as_str())
        .collect();
    tests.sort_unstable();
    tests.dedup();
    let columns: Vec<&str> = runs.iter().map(|run| run.column.as_str()).collect();
    println!();
    println!("| test | {} |", columns.join(" | "));
    println!("| --- |{}", " --- |".repeat(columns.len()));
    for test in tests {
        let cells: Vec<&str> = runs
            .iter()
            .map(|run| match &run.results {
                Err(_) => "not run",
                Ok(results) => match results.iter().find(|(name, _)| name == test) {
                    Some((_, true)) => "ok",
                    Some((_, false)) => "FAILED",
                    None => "-",
                },
            })
            .collect();
        println!("| {test} | {} |", cells.join(" | "));
    }
    let missing: Vec<&str> = runs
        .iter()
        .map(|run| run.missing_bucket.as_deref().unwrap_or("-"))
        .collect();
    println!("| (missing bucket reported as) | {} |", missing.join(" | "));
    for run in runs {
        if let Err(why) = &run.results {
            println!("\n{}: not run: {why}", run.column);
        }
    }
}
