//! Every contender of the bench is measured the same way: a process of its own, timed from
//! spawn to exit (`seconds`), its CPU time (user + system, its waited-for children included)
//! read as the growth of this process's `cutime + cstime` in `/proc/self/stat` across its
//! `wait` (what `getrusage(RUSAGE_CHILDREN)` counts; the bench runs one child at a time, and
//! SeaweedFS, a child too, is only reaped at the end). The figures a process prints about
//! itself (`result key=value ...`) are kept beside them.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

/// One measured process.
pub(crate) struct Measured {
    /// From spawn to exit.
    pub(crate) seconds: f64,
    /// User + system CPU time of the process and of the children it waited for.
    pub(crate) cpu_ms: f64,
    /// The `key=value` pairs of its `result` line (empty for the peers that print none).
    pub(crate) fields: BTreeMap<String, String>,
}

impl Measured {
    /// A number the process printed, NaN when it printed none.
    pub(crate) fn number(&self, name: &str) -> f64 {
        self.fields
            .get(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// A number the process printed, or an error naming the command.
    pub(crate) fn require(&self, name: &str, what: &str) -> Result<f64, String> {
        let value = self.number(name);
        if value.is_nan() {
            return Err(format!("{what} printed no {name}= in its result line"));
        }
        Ok(value)
    }
}

/// Run `command` to its end, its stdout captured (for the `result` line), its stderr shown.
///
/// # Errors
/// When it cannot start or exits unsuccessfully.
pub(crate) fn measure(command: &mut Command, what: &str) -> Result<Measured, String> {
    let ticks_before = children_cpu_ticks()?;
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("starting {what}: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let ticks = children_cpu_ticks()?.saturating_sub(ticks_before);
    if !output.status.success() {
        return Err(format!("{what} failed with {}", output.status));
    }
    Ok(Measured {
        seconds,
        cpu_ms: ticks as f64 * 1000.0 / clock_ticks_per_second(),
        fields: result_fields(&String::from_utf8_lossy(&output.stdout)),
    })
}

/// The `key=value` pairs of the lines that start with `result `.
fn result_fields(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("result "))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// `cutime + cstime` of this process: the CPU time of every child it has waited for, in clock
/// ticks.
fn children_cpu_ticks() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("reading /proc/self/stat (the bench needs Linux): {e}"))?;
    parse_children_ticks(&stat).ok_or_else(|| format!("unexpected /proc/self/stat: {stat}"))
}

/// Fields 16 and 17 of `/proc/<pid>/stat` (`cutime`, `cstime`); the command name, field 2, may
/// hold spaces, so counting starts after its closing parenthesis (at field 3).
fn parse_children_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let cutime: u64 = fields.get(16 - 3)?.parse().ok()?;
    let cstime: u64 = fields.get(17 - 3)?.parse().ok()?;
    Some(cutime + cstime)
}

/// `CLK_TCK` (100 on every Linux the bench runs on; asked of `getconf` to be sure).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|ticks: &f64| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_ticks_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20";
        // fields 14 and 15 are utime, stime (11, 12 here); 16, 17 cutime, cstime (13, 14)
        assert_eq!(parse_children_ticks(stat), Some(13 + 14));
        assert_eq!(parse_children_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn a_child_s_cpu_time_is_counted_once_it_is_waited_for() {
        let busy = measure(
            Command::new("sh").args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"]),
            "a busy shell",
        )
        .expect("sh runs");
        assert!(busy.cpu_ms > 0.0, "{} ms", busy.cpu_ms);
        assert!(busy.seconds > 0.0);
    }

    #[test]
    fn the_result_line_is_split_into_fields() {
        let fields = result_fields("noise\nresult seconds=1.5 count=3\nresult peak_rss_mib=2\n");
        assert_eq!(fields["seconds"], "1.5");
        assert_eq!(fields["count"], "3");
        assert_eq!(fields["peak_rss_mib"], "2");
    }
}
