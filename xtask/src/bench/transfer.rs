//! The transfer scenarios, `RUNS` times each, alternating the contenders within a run: `small`
//! (small-upload and small-download: the queue, s5cmd, rclone, the PowerSync JS queue), `large`
//! (the queue and s5cmd), `small-upload-latency` (through a proxy adding 25 ms each way), and the
//! queue-only `bookkeeping` and `reconcile`.
//!
//! `seconds` is always the whole process, spawn to exit; the queue's own figure (from its
//! first `save_file` or `set_referenced` to all `Synced`) is kept as `in_process_seconds`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::{Measured, measure};
use super::results::{POWERSYNC_JS, QUEUE, QUEUE_ONE_AT_A_TIME, RCLONE, Results, S5CMD};
use super::{Bench, RUNS, path, write_files};
use crate::latency_proxy::LatencyProxy;

/// The scenarios of this file, as `--scenario` names them.
pub(crate) const SCENARIOS: [&str; 5] = [
    "small",
    "large",
    "small-upload-latency",
    "bookkeeping",
    "reconcile",
];

/// Every selected transfer scenario, `RUNS` times.
pub(crate) fn run(bench: &Bench, selected: &[&str], results: &mut Results) -> Result<(), String> {
    let sizes = &bench.sizes;
    let small_source = bench.dir("small-source");
    let large_source = bench.dir("large-source");
    let latency_source = bench.dir("latency-source");
    if selected.contains(&"small") {
        write_files(&small_source, sizes.small_files, 100 * 1024)?;
    }
    if selected.contains(&"large") {
        write_files(&large_source, 1, sizes.large_bytes)?;
    }
    let mut proxy = None;
    if selected.contains(&"small-upload-latency") {
        write_files(&latency_source, sizes.latency_files, 100 * 1024)?;
        match bench.server()?.plain_http_address() {
            // 25 ms each way in front of the server, like a mobile network
            Some(upstream) => {
                let started = LatencyProxy::start(upstream, Duration::from_millis(25))?;
                proxy = Some(format!("http://{}", started.address));
            }
            None => println!(
                "bench: small-upload-latency left out: the endpoint {} is not plain http://host:port, which the latency proxy needs",
                bench.server()?.endpoint
            ),
        }
    }
    for run in 0..RUNS {
        println!("bench: run {} of {RUNS}", run + 1);
        if selected.contains(&"small") {
            small(bench, run, &small_source, results)?;
        }
        if selected.contains(&"large") {
            large(bench, run, &large_source, results)?;
        }
        if let Some(proxied) = &proxy {
            latency(bench, run, &latency_source, proxied, results)?;
        }
        if selected.contains(&"bookkeeping") {
            let book = measure(
                &mut bench.queue(
                    None,
                    &["bookkeeping", "--count", &sizes.bookkeeping.to_string()],
                )?,
                "the queue's bookkeeping",
            )?;
            let rate = book.require("attachments_per_s", "bookkeeping")?;
            results.add("bookkeeping", "attachments_per_s", QUEUE, rate);
        }
        if selected.contains(&"reconcile") {
            let rec = measure(
                &mut bench.queue(
                    None,
                    &["reconcile", "--count", &sizes.reconcile.to_string()],
                )?,
                "the queue's reconcile",
            )?;
            results.add(
                "reconcile",
                "first_ms",
                QUEUE,
                rec.require("first_ms", "reconcile")?,
            );
            results.add(
                "reconcile",
                "change_ms",
                QUEUE,
                rec.require("change_ms", "reconcile")?,
            );
        }
    }
    Ok(())
}

/// The queue's upload of every file of `source` to `prefix`; `WORK/manifest.txt` lists the ids.
fn queue_upload(
    bench: &Bench,
    endpoint: &str,
    source: &Path,
    work: &Path,
    prefix: &str,
    concurrency: &str,
) -> Result<Measured, String> {
    measure(
        &mut bench.queue(
            Some(endpoint),
            &[
                "upload",
                "--source",
                &path(source),
                "--work",
                &path(work),
                "--prefix",
                prefix,
                "--concurrency",
                concurrency,
            ],
        )?,
        "the queue's upload",
    )
}

fn queue_download(
    bench: &Bench,
    manifest: &Path,
    work: &Path,
    prefix: &str,
) -> Result<Measured, String> {
    measure(
        &mut bench.queue(
            Some(&bench.server()?.endpoint),
            &[
                "download",
                "--manifest",
                &path(manifest),
                "--work",
                &path(work),
                "--prefix",
                prefix,
                "--concurrency",
                "8",
            ],
        )?,
        "the queue's download",
    )
}

/// A peer's command line (`s5cmd` or `rclone`) with the server's credentials.
fn tool(
    bench: &Bench,
    program: &str,
    endpoint: Option<&str>,
    args: &[String],
) -> Result<Command, String> {
    let mut command = Command::new(bench.tools.join(program));
    command.envs(bench.server()?.tool_env());
    if let Some(endpoint) = endpoint {
        command.args(["--endpoint-url", endpoint]);
    }
    command.args(args);
    Ok(command)
}

/// The figures every small-file contender reports: whole-process seconds and CPU per file.
fn add_process(
    results: &mut Results,
    scenario: &str,
    tool: &str,
    measured: &Measured,
    files: usize,
) {
    results.add(scenario, "seconds", tool, measured.seconds);
    results.add(
        scenario,
        "cpu_ms_per_file",
        tool,
        measured.cpu_ms / files as f64,
    );
}

/// The figures the queue and the JS peer print about themselves.
fn add_own(results: &mut Results, scenario: &str, tool: &str, measured: &Measured) {
    results.add(
        scenario,
        "in_process_seconds",
        tool,
        measured.number("seconds"),
    );
    results.add(
        scenario,
        "peak_rss_mib",
        tool,
        measured.number("peak_rss_mib"),
    );
}

fn small(bench: &Bench, run: usize, source: &Path, results: &mut Results) -> Result<(), String> {
    let server = bench.server()?;
    let files = bench.sizes.small_files;
    let bucket = &server.bucket;
    let queue_work = bench.dir(&format!("queue-up-{run}"));
    let prefix = bench.prefix(&format!("q-{run}"));
    let up = queue_upload(bench, &server.endpoint, source, &queue_work, &prefix, "8")?;
    add_process(results, "small-upload", QUEUE, &up, files);
    add_own(results, "small-upload", QUEUE, &up);
    results.add(
        "small-upload",
        "saved_seconds",
        QUEUE,
        up.number("saved_seconds"),
    );
    let s5 = measure(
        &mut tool(
            bench,
            "s5cmd",
            Some(&server.endpoint),
            &[
                "cp".into(),
                format!("{}/*", path(source)),
                format!("s3://{bucket}/{}s5-{run}/", bench.tag),
            ],
        )?,
        "s5cmd",
    )?;
    add_process(results, "small-upload", S5CMD, &s5, files);
    let rc = measure(
        &mut tool(
            bench,
            "rclone",
            None,
            &[
                "copy".into(),
                path(source),
                format!("sw:{bucket}/{}rc-{run}", bench.tag),
            ],
        )?,
        "rclone",
    )?;
    add_process(results, "small-upload", RCLONE, &rc, files);
    let js_work = bench.dir(&format!("js-up-{run}"));
    let js_prefix = bench.prefix(&format!("js-{run}"));
    if let Some(js) = &bench.js {
        let mut command = js.command(&[
            "upload",
            "--source",
            &path(source),
            "--work",
            &path(&js_work),
            "--prefix",
            &js_prefix,
        ]);
        let measured = measure(
            command.envs(server.queue_env(&server.endpoint)),
            "the PowerSync JS upload",
        )?;
        add_process(results, "small-upload", POWERSYNC_JS, &measured, files);
        add_own(results, "small-upload", POWERSYNC_JS, &measured);
    }

    let down = queue_download(
        bench,
        &queue_work.join("manifest.txt"),
        &bench.dir(&format!("queue-down-{run}")),
        &prefix,
    )?;
    add_process(results, "small-download", QUEUE, &down, files);
    add_own(results, "small-download", QUEUE, &down);
    let s5 = measure(
        &mut tool(
            bench,
            "s5cmd",
            Some(&server.endpoint),
            &[
                "cp".into(),
                format!("s3://{bucket}/{}s5-{run}/*", bench.tag),
                format!("{}/", path(&bench.dir(&format!("s5-down-{run}")))),
            ],
        )?,
        "s5cmd",
    )?;
    add_process(results, "small-download", S5CMD, &s5, files);
    let rc = measure(
        &mut tool(
            bench,
            "rclone",
            None,
            &[
                "copy".into(),
                format!("sw:{bucket}/{}rc-{run}", bench.tag),
                path(&bench.dir(&format!("rc-down-{run}"))),
            ],
        )?,
        "rclone",
    )?;
    add_process(results, "small-download", RCLONE, &rc, files);
    if let Some(js) = &bench.js {
        let mut command = js.command(&[
            "download",
            "--manifest",
            &path(&js_work.join("manifest.txt")),
            "--work",
            &path(&bench.dir(&format!("js-down-{run}"))),
            "--prefix",
            &js_prefix,
        ]);
        let measured = measure(
            command.envs(server.queue_env(&server.endpoint)),
            "the PowerSync JS download",
        )?;
        add_process(results, "small-download", POWERSYNC_JS, &measured, files);
        add_own(results, "small-download", POWERSYNC_JS, &measured);
    }
    Ok(())
}

fn large(bench: &Bench, run: usize, source: &Path, results: &mut Results) -> Result<(), String> {
    let server = bench.server()?;
    let bucket = &server.bucket;
    let work = bench.dir(&format!("queue-large-{run}"));
    let prefix = bench.prefix(&format!("ql-{run}"));
    let up = queue_upload(bench, &server.endpoint, source, &work, &prefix, "8")?;
    results.add("large-upload", "seconds", QUEUE, up.seconds);
    add_own(results, "large-upload", QUEUE, &up);
    results.add(
        "large-upload",
        "saved_seconds",
        QUEUE,
        up.number("saved_seconds"),
    );
    let s5 = measure(
        &mut tool(
            bench,
            "s5cmd",
            Some(&server.endpoint),
            &[
                "cp".into(),
                format!("{}/*", path(source)),
                format!("s3://{bucket}/{}s5l-{run}/", bench.tag),
            ],
        )?,
        "s5cmd",
    )?;
    results.add("large-upload", "seconds", S5CMD, s5.seconds);
    let down_dir = bench.dir(&format!("queue-large-down-{run}"));
    let down = queue_download(bench, &work.join("manifest.txt"), &down_dir, &prefix)?;
    results.add("large-download", "seconds", QUEUE, down.seconds);
    add_own(results, "large-download", QUEUE, &down);
    let s5_dir = bench.dir(&format!("s5l-down-{run}"));
    let s5 = measure(
        &mut tool(
            bench,
            "s5cmd",
            Some(&server.endpoint),
            &[
                "cp".into(),
                format!("s3://{bucket}/{}s5l-{run}/*", bench.tag),
                format!("{}/", path(&s5_dir)),
            ],
        )?,
        "s5cmd",
    )?;
    results.add("large-download", "seconds", S5CMD, s5.seconds);
    // the large copies are not needed again
    for dir in [work, down_dir, s5_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// The same parallelism for the queue and s5cmd, and the queue one at a time.
fn latency(
    bench: &Bench,
    run: usize,
    source: &Path,
    proxied: &str,
    results: &mut Results,
) -> Result<(), String> {
    let scenario = "small-upload-latency";
    let work = bench.dir(&format!("queue-lat-{run}"));
    let up = queue_upload(
        bench,
        proxied,
        source,
        &work,
        &bench.prefix(&format!("ql8-{run}")),
        "8",
    )?;
    results.add(scenario, "seconds", QUEUE, up.seconds);
    let s5 = measure(
        &mut tool(
            bench,
            "s5cmd",
            Some(proxied),
            &[
                "--numworkers".into(),
                "8".into(),
                "cp".into(),
                format!("{}/*", path(source)),
                format!("s3://{}/{}s5lat-{run}/", bench.server()?.bucket, bench.tag),
            ],
        )?,
        "s5cmd",
    )?;
    results.add(scenario, "seconds", S5CMD, s5.seconds);
    let work = bench.dir(&format!("queue-lat1-{run}"));
    let one = queue_upload(
        bench,
        proxied,
        source,
        &work,
        &bench.prefix(&format!("ql1-{run}")),
        "1",
    )?;
    results.add(scenario, "seconds", QUEUE_ONE_AT_A_TIME, one.seconds);
    Ok(())
}
