//! `scaling`: 100, 1,000 and 10,000 files of 10 KiB uploaded by the queue, each count in a
//! process of its own: whole-process seconds, CPU-ms per file, peak RSS, and the RSS still
//! held once all are `Synced` (`rss_after_mib`). A queue whose memory does not grow with the
//! attachments it has handled holds as much after 10,000 as after 100 (goal: within 8 MiB).

use super::process::measure;
use super::results::{QUEUE, Results, median};
use super::{Bench, path, write_files};

const FILE_BYTES: u64 = 10 * 1024;

pub(crate) fn run(bench: &Bench, results: &mut Results) -> Result<(), String> {
    let sizes = &bench.sizes;
    let endpoint = bench.server()?.endpoint.clone();
    let mut rss_after = Vec::new();
    for count in sizes.scaling {
        let source = bench.dir(&format!("scaling-source-{count}"));
        write_files(&source, count, FILE_BYTES)?;
        let scenario = format!("scaling-{count}");
        let mut samples = Vec::new();
        for run in 0..sizes.scaling_runs {
            println!(
                "bench: scaling, {count} files of 10 KiB (run {} of {})",
                run + 1,
                sizes.scaling_runs
            );
            let work = bench.dir(&format!("scaling-{count}-{run}"));
            let measured = measure(
                &mut bench.queue(
                    Some(&endpoint),
                    &[
                        "upload",
                        "--source",
                        &path(&source),
                        "--work",
                        &path(&work),
                        "--prefix",
                        &bench.prefix(&format!("scaling-{count}-{run}")),
                        "--concurrency",
                        "8",
                    ],
                )?,
                "the queue's upload",
            )?;
            results.add(&scenario, "seconds", QUEUE, measured.seconds);
            results.add(
                &scenario,
                "cpu_ms_per_file",
                QUEUE,
                measured.cpu_ms / count as f64,
            );
            results.add(
                &scenario,
                "peak_rss_mib",
                QUEUE,
                measured.number("peak_rss_mib"),
            );
            let after = measured.require("rss_after_mib", "the queue's upload")?;
            results.add(&scenario, "rss_after_mib", QUEUE, after);
            samples.push(after);
            let _ = std::fs::remove_dir_all(&work);
        }
        let _ = std::fs::remove_dir_all(&source);
        rss_after.push(median(&samples));
    }
    // memory kept per attachment handled: the largest count's resident memory over the smallest's
    if let (Some(first), Some(last)) = (rss_after.first(), rss_after.last()) {
        results.add("scaling", "rss_after_growth_mib", QUEUE, last - first);
    }
    Ok(())
}
