//! The scenarios of a queue that starts with a full table, both on the `idle-backlog`
//! subcommand of `attachments-bench` (the rows inserted by another process, so building them
//! does not count in the queue's memory; no S3 server needed):
//! - `startup`: 100,000 rows; the first pass (start-up verification included) in ms, the
//!   process's peak RSS through it, and the RSS it still holds after it. Reported twice: as
//!   `startup` for queued rows all backed off, and as `startup-files` for `Synced` rows whose
//!   files start-up checks (the `startup-files` subcommand, one file missing and repaired).
//! - `idle-backlog`: two row counts a decade apart, all backed off; the first pass, then idle
//!   passes (`sync_now`), reported beside their goals (issue 11, item 13).

use std::collections::BTreeMap;
use std::io::Write;

use super::Bench;
use super::process::measure;
use super::results::{QUEUE, Results};

/// Idle passes measured per `idle-backlog` process.
const IDLE_PASSES: usize = 7;
const IDLE_PASS_GOAL_MS: f64 = 10.0;
const IDLE_RSS_GOAL_MIB: f64 = 64.0;

/// `startup`, `startup_runs` processes of `startup_rows` rows.
pub(crate) fn startup(bench: &Bench, results: &mut Results) -> Result<(), String> {
    let sizes = &bench.sizes;
    for run in 0..sizes.startup_runs {
        println!(
            "bench: startup with {} rows (run {} of {})",
            sizes.startup_rows,
            run + 1,
            sizes.startup_runs
        );
        let figure = backlog_process(bench, sizes.startup_rows, 1)?;
        results.add(
            "startup",
            "first_pass_ms",
            QUEUE,
            figure.number("first_pass_ms"),
        );
        results.add(
            "startup",
            "peak_rss_mib",
            QUEUE,
            figure.number("startup_peak_rss_mib"),
        );
        results.add(
            "startup",
            "resident_rss_mib",
            QUEUE,
            figure.number("startup_rss_mib"),
        );
        // the same row count as `Synced` rows whose files start-up must check (one missing)
        let measured = measure(
            &mut bench.queue(
                None,
                &["startup-files", "--rows", &sizes.startup_rows.to_string()],
            )?,
            "the queue's startup-files",
        )?;
        let number = |name: &str| {
            measured
                .fields
                .get(name)
                .and_then(|value| value.parse().ok())
                .unwrap_or(f64::NAN)
        };
        results.add(
            "startup-files",
            "first_pass_ms",
            QUEUE,
            number("first_pass_ms"),
        );
        results.add(
            "startup-files",
            "first_pass_cpu_ms",
            QUEUE,
            number("first_pass_cpu_ms"),
        );
        results.add(
            "startup-files",
            "peak_rss_mib",
            QUEUE,
            number("startup_peak_rss_mib"),
        );
        results.add(
            "startup-files",
            "resident_rss_mib",
            QUEUE,
            number("rss_after_mib"),
        );
    }
    Ok(())
}

/// One `idle-backlog` figure: a process's result line, split into its fields.
pub(crate) struct IdleBacklog {
    rows: usize,
    fields: BTreeMap<String, String>,
}

impl IdleBacklog {
    fn number(&self, name: &str) -> f64 {
        self.fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
}

fn backlog_process(bench: &Bench, rows: usize, passes: usize) -> Result<IdleBacklog, String> {
    let measured = measure(
        &mut bench.queue(
            None,
            &[
                "idle-backlog",
                "--rows",
                &rows.to_string(),
                "--passes",
                &passes.to_string(),
            ],
        )?,
        "the queue's idle-backlog",
    )?;
    Ok(IdleBacklog {
        rows,
        fields: measured.fields,
    })
}

/// `idle-backlog` at each row count, in a process of its own (so the peak memory is its own).
pub(crate) fn idle_backlog(bench: &Bench) -> Result<Vec<IdleBacklog>, String> {
    let mut figures = Vec::new();
    for rows in bench.sizes.idle_backlog {
        println!("bench: idle-backlog with {rows} rows");
        figures.push(backlog_process(bench, rows, IDLE_PASSES)?);
    }
    Ok(figures)
}

pub(crate) fn report_idle_backlog(figures: &[IdleBacklog]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nidle-backlog: queued rows all backed off (inserted by another process), the queue's first pass (start-up), then {IDLE_PASSES} idle passes (`sync_now`)\n"
    );
    let _ = writeln!(
        out,
        "| rows | idle_pass_ms (median) | goal | samples (ms) | first pass (ms) | peak_rss_mib (whole process) | peak RSS, idle passes alone (MiB) | goal |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    let met = |value: f64, goal: f64| if value <= goal { "met" } else { "not met" };
    let mut lines = Vec::new();
    for figure in figures {
        let pass = figure.number("idle_pass_ms");
        // the process's peak: start-up holds memory the idle passes then keep
        let rss = figure
            .number("startup_peak_rss_mib")
            .max(figure.number("peak_rss_mib"));
        let idle_rss = figure.number("peak_rss_mib");
        let samples = figure.fields.get("samples_ms").map_or("-", String::as_str);
        let _ = writeln!(
            out,
            "| {} | {pass:.3} | <= {IDLE_PASS_GOAL_MS} ms, {} | {} | {:.1} | {rss:.1} | {idle_rss:.1} | <= {IDLE_RSS_GOAL_MIB} MiB, {} |",
            figure.rows,
            met(pass, IDLE_PASS_GOAL_MS),
            samples.replace('/', ", "),
            figure.number("first_pass_ms"),
            met(rss, IDLE_RSS_GOAL_MIB),
        );
        lines.push(format!(
            "bench idle-backlog rows={} idle_pass_ms={pass:.3} (goal <= {IDLE_PASS_GOAL_MS}) samples_ms={}",
            figure.rows, samples
        ));
        lines.push(format!(
            "bench idle-backlog rows={} peak_rss_mib={rss:.1} (goal <= {IDLE_RSS_GOAL_MIB}) idle_peak_rss_mib={idle_rss:.1} first_pass_ms={:.1}",
            figure.rows,
            figure.number("first_pass_ms")
        ));
        if figure.fields.get("rss_reset").map(String::as_str) != Some("1") {
            lines.push(
                "bench idle-backlog: the peak could not be reset after start-up; the idle figure includes it"
                    .to_owned(),
            );
        }
    }
    if let [small, large] = figures {
        let growth = |name: &str| large.number(name) / small.number(name);
        let _ = writeln!(
            out,
            "\nflat in the row count means these stay near 1 while the rows grow {}x: idle pass {:.2}x, peak RSS {:.2}x, first pass {:.2}x",
            large.rows / small.rows.max(1),
            growth("idle_pass_ms"),
            growth("startup_peak_rss_mib"),
            growth("first_pass_ms"),
        );
    }
    let _ = writeln!(out);
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}
