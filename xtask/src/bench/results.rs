//! The figures of one invocation, every sample kept: printed as a markdown table (median, then
//! every sample and the spread) with each goal beside its figure, and as
//! `bench <scenario> <metric>=<value>` lines. Goals are reported, never asserted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The contenders, in the table's column order.
pub(crate) const QUEUE: &str = "queue";
pub(crate) const S5CMD: &str = "s5cmd";
pub(crate) const RCLONE: &str = "rclone";
pub(crate) const POWERSYNC_JS: &str = "powersync-js";
pub(crate) const QUEUE_ONE_AT_A_TIME: &str = "queue-1";
const COLUMNS: [(&str, &str); 5] = [
    (QUEUE, "queue"),
    (S5CMD, "s5cmd"),
    (RCLONE, "rclone"),
    (POWERSYNC_JS, "PowerSync JS"),
    (QUEUE_ONE_AT_A_TIME, "queue, 1 at a time"),
];

/// A goal of issue 13 (or an earlier one), on the queue's figure or on a ratio.
#[derive(Clone, Copy)]
pub(crate) enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn judge(self, value: f64) -> String {
        let (sign, bound, met) = match self {
            Goal::AtMost(bound) => ("<=", bound, value <= bound),
            Goal::AtLeast(bound) => (">=", bound, value >= bound),
        };
        format!("{sign} {bound}, {}", if met { "met" } else { "not met" })
    }
}

/// The goal of a figure, if it has one.
fn goal(scenario: &str, metric: &str) -> Option<Goal> {
    let transfer = matches!(
        scenario,
        "small-upload" | "small-download" | "large-upload" | "large-download"
    );
    Some(match (scenario, metric) {
        ("small-upload", "cpu_ms_per_file") => Goal::AtMost(0.8),
        (_, "ratio_vs_s5cmd") if transfer => Goal::AtMost(1.0),
        ("small-upload-latency", "ratio_vs_s5cmd") => Goal::AtMost(1.2),
        ("small-upload-latency", "speedup_vs_concurrency_1") => Goal::AtLeast(5.0),
        // ours at least 5 times faster than the PowerSync JS queue, either way round
        (_, "speedup_vs_powersync_js") => Goal::AtLeast(5.0),
        (_, "ratio_vs_powersync_js") => Goal::AtMost(0.2),
        ("large-upload" | "large-download", "peak_rss_mib") => Goal::AtMost(64.0),
        ("bookkeeping", "attachments_per_s") => Goal::AtLeast(5_000.0),
        ("reconcile", "first_ms") => Goal::AtMost(2_000.0),
        ("reconcile", "change_ms") => Goal::AtMost(100.0),
        ("startup" | "startup-files", "first_pass_ms") => Goal::AtMost(300.0),
        ("startup" | "startup-files", "peak_rss_mib") => Goal::AtMost(48.0),
        ("scaling", "rss_after_growth_mib") => Goal::AtMost(8.0),
        _ => return None,
    })
}

/// Every sample, per (scenario, metric, contender), in the order they were taken.
#[derive(Default)]
pub(crate) struct Results {
    samples: BTreeMap<(String, String, String), Vec<f64>>,
    /// (scenario, metric) in the order first seen, so the table follows the runs.
    order: Vec<(String, String)>,
}

impl Results {
    pub(crate) fn add(&mut self, scenario: &str, metric: &str, tool: &str, value: f64) {
        let row = (scenario.to_owned(), metric.to_owned());
        if !self.order.contains(&row) {
            self.order.push(row);
        }
        self.samples
            .entry((scenario.to_owned(), metric.to_owned(), tool.to_owned()))
            .or_default()
            .push(value);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub(crate) fn samples(&self, scenario: &str, metric: &str, tool: &str) -> Option<&[f64]> {
        self.samples
            .get(&(scenario.to_owned(), metric.to_owned(), tool.to_owned()))
            .map(Vec::as_slice)
            .filter(|samples| !samples.is_empty())
    }

    pub(crate) fn median(&self, scenario: &str, metric: &str, tool: &str) -> Option<f64> {
        self.samples(scenario, metric, tool).map(median)
    }

    /// The ratios of one contender's figure to another's: of the medians (the figure), and
    /// run by run (its samples, paired by run).
    fn ratio(&self, scenario: &str, metric: &str, over: &str, under: &str) -> Option<Ratio> {
        let top = self.samples(scenario, metric, over)?;
        let bottom = self.samples(scenario, metric, under)?;
        let paired = top
            .iter()
            .zip(bottom)
            .filter(|(_, b)| **b > 0.0)
            .map(|(t, b)| t / b)
            .collect();
        Some(Ratio {
            value: median(top) / median(bottom),
            paired,
        })
    }

    /// The table and the machine-readable lines.
    pub(crate) fn render(&self, title: &str) -> String {
        let mut table = String::new();
        let mut lines = Vec::new();
        let _ = writeln!(table, "\n{title}\n");
        let header: Vec<&str> = COLUMNS.iter().map(|(_, name)| *name).collect();
        let _ = writeln!(
            table,
            "| scenario | metric | {} | goal (on the queue's figure) |",
            header.join(" | ")
        );
        let _ = writeln!(table, "|{}", " --- |".repeat(COLUMNS.len() + 3));
        for (scenario, metric) in &self.order {
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|(tool, _)| {
                    self.samples(scenario, metric, tool)
                        .map_or("-".to_owned(), cell)
                })
                .collect();
            let judged = goal(scenario, metric)
                .zip(self.median(scenario, metric, QUEUE))
                .map_or("-".to_owned(), |(goal, value)| goal.judge(value));
            let _ = writeln!(
                table,
                "| {scenario} | {metric} | {} | {judged} |",
                cells.join(" | ")
            );
            for (tool, _) in COLUMNS {
                if let Some(samples) = self.samples(scenario, metric, tool) {
                    let name = match tool {
                        QUEUE => metric.clone(),
                        QUEUE_ONE_AT_A_TIME => format!("concurrency_1_{metric}"),
                        other => format!("{}_{metric}", other.replace('-', "_")),
                    };
                    lines.push(format!(
                        "bench {scenario} {name}={} samples={}{}",
                        number(median(samples)),
                        joined(samples, "/"),
                        if tool == QUEUE {
                            goal_note(scenario, metric, median(samples))
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            if metric == "seconds" {
                self.ratio_rows(scenario, &mut table, &mut lines);
            }
        }
        let _ = writeln!(table);
        for line in lines {
            let _ = writeln!(table, "{line}");
        }
        table
    }

    /// The rows comparing the queue's seconds with each peer's.
    fn ratio_rows(&self, scenario: &str, table: &mut String, lines: &mut Vec<String>) {
        let ratios = [
            (
                "ratio_vs_s5cmd",
                self.ratio(scenario, "seconds", QUEUE, S5CMD),
            ),
            (
                "ratio_vs_powersync_js",
                self.ratio(scenario, "seconds", QUEUE, POWERSYNC_JS),
            ),
            (
                "speedup_vs_powersync_js",
                self.ratio(scenario, "seconds", POWERSYNC_JS, QUEUE),
            ),
            (
                "speedup_vs_concurrency_1",
                self.ratio(scenario, "seconds", QUEUE_ONE_AT_A_TIME, QUEUE),
            ),
        ];
        for (name, ratio) in ratios {
            let Some(ratio) = ratio else { continue };
            let judged = goal(scenario, name).map_or("-".to_owned(), |g| g.judge(ratio.value));
            let filler = vec!["-"; COLUMNS.len() - 1].join(" | ");
            let _ = writeln!(
                table,
                "| {scenario} | {name} | {:.2} (by run: {}) | {filler} | {judged} |",
                ratio.value,
                ratio
                    .paired
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            lines.push(format!(
                "bench {scenario} {name}={:.2} paired={}{}",
                ratio.value,
                ratio
                    .paired
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join("/"),
                goal_note(scenario, name, ratio.value)
            ));
        }
    }
}

struct Ratio {
    value: f64,
    paired: Vec<f64>,
}

fn goal_note(scenario: &str, metric: &str, value: f64) -> String {
    goal(scenario, metric).map_or(String::new(), |goal| {
        format!(" (goal {})", goal.judge(value))
    })
}

/// `median (sample sample ...; spread N %)`, or the one sample alone.
fn cell(samples: &[f64]) -> String {
    if samples.len() == 1 {
        return number(samples[0]);
    }
    format!(
        "{} ({}; spread {:.0} %)",
        number(median(samples)),
        joined(samples, " "),
        spread_percent(samples)
    )
}

pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) && middle > 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted.get(middle).copied().unwrap_or(f64::NAN)
    }
}

/// (largest − smallest) / median, in percent.
fn spread_percent(samples: &[f64]) -> f64 {
    let largest = samples.iter().copied().fold(f64::MIN, f64::max);
    let smallest = samples.iter().copied().fold(f64::MAX, f64::min);
    (largest - smallest) / median(samples) * 100.0
}

fn joined(samples: &[f64], separator: &str) -> String {
    samples
        .iter()
        .map(|s| number(*s))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Three decimals for small figures, one for large ones (milliseconds, per-second rates).
pub(crate) fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_every_sample_the_spread_the_paired_ratios_and_the_goal() {
        let mut results = Results::default();
        for (queue, s5cmd) in [(1.0, 2.0), (3.0, 2.0), (2.0, 2.0)] {
            results.add("small-upload", "seconds", QUEUE, queue);
            results.add("small-upload", "seconds", S5CMD, s5cmd);
        }
        results.add("small-upload", "cpu_ms_per_file", QUEUE, 0.9);
        let text = results.render("title");
        assert!(
            text.contains("| small-upload | seconds | 2.000 (1.000 3.000 2.000; spread 100 %) | 2.000 (2.000 2.000 2.000; spread 0 %) |"),
            "{text}"
        );
        assert!(
            text.contains("| small-upload | ratio_vs_s5cmd | 1.00 (by run: 0.50 1.50 1.00) |"),
            "{text}"
        );
        assert!(text.contains("<= 1, met"), "{text}");
        assert!(
            text.contains("| 0.900 | - | - | - | - | <= 0.8, not met |"),
            "{text}"
        );
        assert!(
            text.contains(
                "bench small-upload ratio_vs_s5cmd=1.00 paired=0.50/1.50/1.00 (goal <= 1, met)"
            ),
            "{text}"
        );
        assert!(text.contains("bench small-upload s5cmd_seconds=2.000 samples=2.000/2.000/2.000"));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0]), 5.0);
    }
}
