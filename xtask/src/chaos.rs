//! `cargo xtask chaos`: kill workers that save, delete, log out and download attachments at
//! random (seeded) moments, restart them on the same databases and directories, then let the
//! queues drain and check that nothing was lost, corrupted, stuck or left behind
//! (`tools/chaos-worker`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::seaweedfs::SeaweedFs;

pub(crate) struct ChaosOptions {
    pub(crate) kills: u32,
    pub(crate) s3: bool,
    pub(crate) seed: u64,
    pub(crate) devices: u32,
}

impl ChaosOptions {
    pub(crate) fn parse(args: &[String]) -> Result<ChaosOptions, String> {
        let mut options = ChaosOptions {
            kills: 20,
            s3: false,
            seed: 1,
            devices: 1,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--kills" => options.kills = value.parse().map_err(|e| format!("--kills: {e}"))?,
                "--seed" => options.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
                "--devices" => match value.as_str() {
                    "1" => options.devices = 1,
                    "2" => options.devices = 2,
                    other => return Err(format!("--devices 1|2, not {other}")),
                },
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

/// One device's worker process and the moment it is to be killed.
struct Running {
    child: Child,
    kill_at: Instant,
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
    let journal = path(&run_dir.join("journal.txt"));
    let device_dirs: Vec<PathBuf> = (1..=options.devices)
        .map(|n| run_dir.join(format!("device-{n}")))
        .collect();
    let mut remote_args = Vec::new();
    let mut server = None;
    // the S3 server's address and keys go to the workers through their environment
    let mut environment = Vec::new();
    if options.s3 {
        if std::env::var_os("ATTACHMENTS_TEST_S3_ENDPOINT").is_none() {
            let started = SeaweedFs::start(target)?;
            environment = started.environment();
            server = Some(started);
        }
        remote_args.extend(["--s3-prefix".to_owned(), format!("chaos-{stamp}/")]);
    } else {
        remote_args.extend(["--remote-dir".to_owned(), path(&run_dir.join("remote"))]);
    }
    // the app keeps files of its own beside the queue's: none may disappear
    for dir in &device_dirs {
        crate::run(
            Command::new(&worker)
                .args(["prepare", "--dir", &path(dir)])
                .stdin(Stdio::null()),
        )?;
    }
    // what device n runs: the author (device 1) saves and deletes, the reader downloads
    let role_args = |device: usize, seed: u64| -> Vec<String> {
        let mut args = vec![
            "run".to_owned(),
            "--dir".to_owned(),
            path(&device_dirs[device]),
        ];
        if device == 0 {
            args.extend([
                "--role".into(),
                "author".into(),
                "--journal".into(),
                journal.clone(),
            ]);
        } else {
            args.extend([
                "--role".into(),
                "reader".into(),
                "--author-dir".into(),
                path(&device_dirs[0]),
            ]);
        }
        args.extend(["--seed".to_owned(), seed.to_string()]);
        args.extend(remote_args.iter().cloned());
        args
    };

    let mut rng = Rng(options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut starts: u64 = 0;
    let mut start = |device: usize, rng: &mut Rng| -> Result<Running, String> {
        starts += 1;
        let child = Command::new(&worker)
            .args(role_args(device, options.seed * 1_000 + starts))
            .envs(environment.iter().cloned())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", worker.display()))?;
        // alive between 50 ms (often inside start-up or the first save) and 1 s
        let lifetime = Duration::from_millis(50 + rng.below(950));
        Ok(Running {
            child,
            kill_at: Instant::now() + lifetime,
        })
    };
    let mut running: Vec<Running> = Vec::new();
    for device in 0..device_dirs.len() {
        running.push(start(device, &mut rng)?);
    }
    let mut kills = 0;
    let mut outcome = Ok(());
    while kills < options.kills {
        let (device, next) = running
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| r.kill_at)
            .map(|(n, r)| (n, r.kill_at))
            .ok_or("no worker is running")?;
        // the kill moment is the experiment's random variable, not a wait for something
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if let Some(status) = running[device]
            .child
            .try_wait()
            .map_err(|e| e.to_string())?
        {
            outcome = Err(format!(
                "device {} exited by itself ({status}) before kill {kills}",
                device + 1
            ));
            break;
        }
        kill(&mut running[device].child)?;
        kills += 1;
        if kills == options.kills {
            running.swap_remove(device);
        } else {
            running[device] = start(device, &mut rng)?;
        }
    }
    // the other devices die the same way, mid-work
    for process in &mut running {
        if outcome.is_ok()
            && let Some(status) = process.child.try_wait().map_err(|e| e.to_string())?
        {
            outcome = Err(format!("a worker exited by itself ({status})"));
        }
        kill(&mut process.child)?;
    }
    outcome?;

    let mut verify = Command::new(&worker);
    verify
        .args([
            "verify",
            "--dir",
            &path(&device_dirs[0]),
            "--journal",
            &journal,
        ])
        .args(&remote_args)
        .envs(environment.iter().cloned())
        .stderr(Stdio::inherit());
    if let Some(reader) = device_dirs.get(1) {
        verify.args(["--reader-dir", &path(reader)]);
    }
    let output = verify
        .output()
        .map_err(|e| format!("starting {}: {e}", worker.display()))?;
    let report = String::from_utf8_lossy(&output.stdout);
    let last = report.lines().last().unwrap_or("no report");
    println!("chaos kills={kills} {last}");
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
            "chaos found problems (run kept in {}; repeat with --seed {})",
            run_dir.display(),
            options.seed
        ))
    }
}

fn kill(child: &mut Child) -> Result<(), String> {
    child.kill().map_err(|e| format!("killing a worker: {e}"))?; // SIGKILL
    let _ = child.wait();
    Ok(())
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
