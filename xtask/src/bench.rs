//! `cargo xtask bench [--quick] [--scenario NAME]...`: the queue against s5cmd, rclone and the
//! PowerSync JS `AttachmentQueue` on the same S3 server, in one invocation. Every contender is
//! a process of its own, timed the same way: from spawn to exit (`process.rs`). Runs alternate
//! (queue, s5cmd, rclone, PowerSync JS, queue, ...); the report shows each median beside every
//! sample, the spread, and the goal. `scaling`, `startup` and `idle-backlog` follow, one process
//! per size. See `docs/BENCHMARKS.md`.

mod backlog;
mod peers;
mod process;
mod results;
mod scaling;
mod server;
mod transfer;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use peers::JsPeer;
use results::Results;
use server::S3Server;

/// Runs of each transfer scenario per invocation (alternating with the peers).
const RUNS: usize = 3;

/// Every scenario `--scenario` accepts, in the order a full run takes them.
const SCENARIOS: [&str; 8] = [
    "small",
    "large",
    "small-upload-latency",
    "bookkeeping",
    "reconcile",
    "scaling",
    "startup",
    "idle-backlog",
];

/// The sizes of one invocation (`--quick` or full).
pub(crate) struct Sizes {
    pub(crate) small_files: usize,
    pub(crate) latency_files: usize,
    pub(crate) large_bytes: u64,
    pub(crate) bookkeeping: usize,
    pub(crate) reconcile: usize,
    /// File counts of `scaling`, 10 KiB each, one process per count.
    pub(crate) scaling: [usize; 3],
    /// Processes per `scaling` count.
    pub(crate) scaling_runs: usize,
    /// Rows of `startup`, and processes measuring it.
    pub(crate) startup_rows: usize,
    pub(crate) startup_runs: usize,
    /// Row counts of `idle-backlog`: two, a decade apart, so flatness shows.
    pub(crate) idle_backlog: [usize; 2],
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                small_files: 200,
                latency_files: 50,
                large_bytes: 256 << 20,
                bookkeeping: 5_000,
                reconcile: 20_000,
                scaling: [100, 1_000, 10_000],
                scaling_runs: 1,
                startup_rows: 100_000,
                startup_runs: 1,
                idle_backlog: [1_000, 10_000],
            }
        } else {
            Sizes {
                small_files: 1_000,
                latency_files: 200,
                large_bytes: 1 << 30,
                bookkeeping: 20_000,
                reconcile: 100_000,
                scaling: [100, 1_000, 10_000],
                scaling_runs: RUNS,
                startup_rows: 100_000,
                startup_runs: RUNS,
                idle_backlog: [10_000, 100_000],
            }
        }
    }
}

/// What every scenario needs: the binaries, the server, the work directory.
pub(crate) struct Bench {
    pub(crate) queue_bin: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) sizes: Sizes,
    pub(crate) server: Option<S3Server>,
    /// Where `s5cmd` and `rclone` are.
    pub(crate) tools: PathBuf,
    pub(crate) js: Option<JsPeer>,
    /// `bench-<unix seconds>/`, before every key: a server named in `ATTACHMENTS_TEST_S3_*`
    /// keeps the objects of earlier invocations, and a peer must not find its copy made.
    pub(crate) tag: String,
}

impl Bench {
    /// The server, for the scenarios that need one (started for them).
    pub(crate) fn server(&self) -> Result<&S3Server, String> {
        self.server
            .as_ref()
            .ok_or_else(|| "this scenario needs the S3 server".to_owned())
    }

    /// `attachments-bench <args>` against `endpoint` (the server's or the latency proxy's).
    pub(crate) fn queue(&self, endpoint: Option<&str>, args: &[&str]) -> Result<Command, String> {
        let mut command = Command::new(&self.queue_bin);
        command.args(args);
        if let Some(endpoint) = endpoint {
            command.envs(self.server()?.queue_env(endpoint));
        }
        Ok(command)
    }

    /// The key prefix `name/` of this invocation.
    pub(crate) fn prefix(&self, name: &str) -> String {
        format!("{}{name}/", self.tag)
    }

    /// A fresh directory under the work directory.
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}

pub(crate) fn bench(args: &[String], target: &Path) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let selected = selected_scenarios(args)?;
    let needs = |name: &str| selected.contains(&name);
    let needs_server = ["small", "large", "small-upload-latency", "scaling"]
        .iter()
        .any(|name| needs(name));
    crate::cargo(&[
        "build",
        "--release",
        "--quiet",
        "--package",
        "attachments-bench",
    ])?;
    let tools = if ["small", "large", "small-upload-latency"]
        .iter()
        .any(|name| needs(name))
    {
        peers::install_tools(target)?
    } else {
        PathBuf::new()
    };
    let js = if needs("small") {
        peers::install_js(&workspace_dir(), target)?
    } else {
        None
    };
    let server = if needs_server {
        Some(S3Server::from_env_or_start(target)?)
    } else {
        None
    };
    let work = target.join("bench").join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let bench = Bench {
        queue_bin: target.join("release").join("attachments-bench"),
        work,
        sizes: Sizes::new(quick),
        server,
        tools,
        js,
        tag: format!(
            "bench-{}/",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        ),
    };
    let result = run(&bench, &selected, quick);
    if result.is_err()
        && let Some(server) = &bench.server
    {
        server.dump_log();
    }
    result
}

fn run(bench: &Bench, selected: &[&str], quick: bool) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut results = Results::default();
    let transfers: Vec<&str> = selected
        .iter()
        .copied()
        .filter(|name| transfer::SCENARIOS.contains(name))
        .collect();
    if !transfers.is_empty() {
        transfer::run(bench, &transfers, &mut results)?;
    }
    if selected.contains(&"scaling") {
        scaling::run(bench, &mut results)?;
    }
    if selected.contains(&"startup") {
        backlog::startup(bench, &mut results)?;
    }
    let idle = if selected.contains(&"idle-backlog") {
        backlog::idle_backlog(bench)?
    } else {
        Vec::new()
    };
    let sizes = &bench.sizes;
    let title = format!(
        "cargo xtask bench{}{} ({} s): every contender a process of its own, timed from spawn to exit; median (every sample; spread = (max - min) / median); small = {} files of 100 KiB, large = {} MiB, scaling = {:?} files of 10 KiB, startup = {} rows",
        if quick { " --quick" } else { "" },
        if selected.len() == SCENARIOS.len() {
            String::new()
        } else {
            format!(" --scenario {}", selected.join(" --scenario "))
        },
        started.elapsed().as_secs(),
        sizes.small_files,
        sizes.large_bytes >> 20,
        sizes.scaling,
        sizes.startup_rows,
    );
    let mut out = std::io::stdout().lock();
    if results.is_empty() {
        // `--scenario idle-backlog` alone: its own table follows
        let _ = writeln!(out, "\n{title}");
    } else {
        let _ = write!(out, "{}", results.render(&title));
    }
    if !idle.is_empty() {
        backlog::report_idle_backlog(&idle);
    }
    Ok(())
}

/// The scenarios of `--scenario NAME` (repeatable), every one without it. `small-upload` and
/// `small-download` name `small` (the download reads what the upload wrote), likewise `large`.
fn selected_scenarios(args: &[String]) -> Result<Vec<&'static str>, String> {
    let mut selected = Vec::new();
    let mut named = args
        .iter()
        .enumerate()
        .filter(|(_, arg)| *arg == "--scenario");
    let mut any = false;
    for (at, _) in named.by_ref() {
        any = true;
        let name = args.get(at + 1).map(String::as_str).unwrap_or_default();
        let canonical = match name {
            "small-upload" | "small-download" => "small",
            "large-upload" | "large-download" => "large",
            other => SCENARIOS
                .iter()
                .copied()
                .find(|known| *known == other)
                .ok_or_else(|| {
                    format!(
                        "--scenario {other:?}: one of {} (small-upload, small-download, large-upload and large-download name small and large)",
                        SCENARIOS.join(", ")
                    )
                })?,
        };
        if !selected.contains(&canonical) {
            selected.push(canonical);
        }
    }
    if !any {
        return Ok(SCENARIOS.to_vec());
    }
    // in a full run's order
    selected.sort_by_key(|name| SCENARIOS.iter().position(|known| known == name));
    Ok(selected)
}

/// `count` files of `size` bytes of varied content under `dir`.
pub(crate) fn write_files(dir: &Path, count: usize, size: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut block = vec![0u8; 64 * 1024];
    for n in 0..count {
        let file = std::fs::File::create(dir.join(format!("file-{n:05}.bin")))
            .map_err(|e| e.to_string())?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut state = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
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

/// The workspace's root (where `tools/bench/js` is).
fn workspace_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), Path::to_path_buf)
}

pub(crate) fn path(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn without_scenario_every_scenario_runs() {
        assert_eq!(selected_scenarios(&args(&["--quick"])).unwrap(), SCENARIOS);
    }

    #[test]
    fn scenarios_named_alone_run_alone_in_a_full_run_s_order() {
        let chosen = selected_scenarios(&args(&[
            "--scenario",
            "startup",
            "--scenario",
            "small-download",
        ]))
        .unwrap();
        assert_eq!(chosen, ["small", "startup"]);
    }

    #[test]
    fn an_unknown_scenario_is_refused_with_the_known_ones() {
        let error = selected_scenarios(&args(&["--scenario", "huge"])).unwrap_err();
        assert!(error.contains("idle-backlog"), "{error}");
        assert!(selected_scenarios(&args(&["--scenario"])).is_err());
    }
}
