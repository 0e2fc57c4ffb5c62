//! `cargo xtask chaos`: kill a worker that saves, deletes and syncs attachments at random
//! (seeded) moments, restart it on the same database and directories, then let the queue
//! drain and check that nothing was lost, corrupted, stuck or left behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::seaweedfs::SeaweedFs;

pub(crate) struct ChaosOptions {
    pub(crate) kills: u32,
    pub(crate) s3: bool,
    pub(crate) seed: u64,
}

impl ChaosOptions {
    pub(crate) fn parse(args: &[String]) -> Result<ChaosOptions, String> {
        let mut options = ChaosOptions {
            kills: 20,
            s3: false,
            seed: 1,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--kills" => options.kills = value.parse().map_err(|e| format!("--kills: {e}"))?,
                "--seed" => options.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
                "--remote" => match value.as_str() {
                    "fs" => options.s3 = false,
                    "s3" => options.s3 = true,
                    other => return Err(format!("--remote fs|s3, not {other}")),
                },
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(options)
    }
}

/// The seeded xorshift the worker also uses: the kill moments repeat for a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

pub(crate) fn chaos(options: &ChaosOptions, target: &Path) -> Result<(), String> {
    crate::cargo(&["build", "--quiet", "--package", "chaos-worker"])?;
    let worker = target.join("debug").join("chaos-worker");
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let run_dir = target
        .join("chaos")
        .join(format!("seed-{}-{stamp}", options.seed));
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
    let journal = run_dir.join("journal.txt");
    let mut common = vec![
        "--dir".to_owned(),
        run_dir.join("device").display().to_string(),
        "--journal".to_owned(),
        journal.display().to_string(),
    ];
    let mut server = None;
    // the S3 server's address and keys go to the workers through their environment
    let mut environment = Vec::new();
    if options.s3 {
        if std::env::var_os("ATTACHMENTS_TEST_S3_ENDPOINT").is_none() {
            let started = SeaweedFs::start(target)?;
            environment = started.environment();
            server = Some(started);
        }
        common.extend(["--s3-prefix".to_owned(), format!("chaos-{stamp}/")]);
    } else {
        common.extend([
            "--remote-dir".to_owned(),
            run_dir.join("remote").display().to_string(),
        ]);
    }

    let mut rng = Rng(options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for kill in 0..options.kills {
        let mut child = Command::new(&worker)
            .arg("run")
            .args(&common)
            .envs(environment.iter().cloned())
            .args([
                "--seed",
                &(options.seed * 1_000 + u64::from(kill)).to_string(),
            ])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", worker.display()))?;
        // alive between 50 ms (often inside start-up verification or the first save) and 1 s
        std::thread::sleep(Duration::from_millis(50 + rng.below(950)));
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "the worker exited by itself ({status}) before kill {kill}"
            ));
        }
        child
            .kill()
            .map_err(|e| format!("killing the worker: {e}"))?; // SIGKILL
        let _ = child.wait();
    }

    let output = Command::new(&worker)
        .arg("verify")
        .args(&common)
        .envs(environment.iter().cloned())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("starting {}: {e}", worker.display()))?;
    let report = String::from_utf8_lossy(&output.stdout);
    let last = report.lines().last().unwrap_or("no report");
    println!("chaos kills={} {last}", options.kills);
    if let Some(server) = &server
        && !output.status.success()
    {
        server.dump_log();
    }
    if output.status.success() {
        let _ = std::fs::remove_dir_all(&run_dir);
        Ok(())
    } else {
        Err(format!(
            "chaos found problems (run kept in {})",
            run_dir.display()
        ))
    }
}
