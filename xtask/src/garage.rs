//! Garage, a third S3 implementation for `cargo xtask interop` (never CI): built from
//! crates.io with `cargo install` into `target/garage` once, then started as a single node on
//! loopback with its usual region `garage`, stopped when dropped.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VERSION: &str = "2.5.0";
/// SQLite is the one metadata engine needed; leaving out LMDB, metrics and K2V shortens the
/// build.
const FEATURES: &str = "bundled-libs,sqlite";
/// The region Garage's documentation configures, and so what most installations answer to.
pub(crate) const REGION: &str = "garage";
const BUCKET: &str = "attachments-test";

/// A running single-node Garage with one bucket and one key allowed on it.
pub(crate) struct Garage {
    child: Child,
    log: PathBuf,
    s3: SocketAddr,
    access_key: String,
    secret_key: String,
}

impl Garage {
    /// Start Garage (built by [`install`]) with fresh data under `target/garage/run`.
    pub(crate) fn start(garage: &Path, target: &Path) -> Result<Garage, String> {
        let run_dir = target.join("garage").join("run");
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
        let s3 = crate::moto::free_loopback_address()?;
        let rpc = crate::moto::free_loopback_address()?;
        let config = run_dir.join("garage.toml");
        let text = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "{rpc}"
rpc_public_addr = "{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "{s3}"
root_domain = ".s3.garage.localhost"
"#,
            dir = run_dir.display(),
            secret = random_hex(32)?,
        );
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = run_dir.join("garage.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let child = Command::new(garage)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", garage.display()))?;
        let server = Garage {
            child,
            log,
            s3,
            access_key: format!("GK{}", random_hex(12)?),
            secret_key: random_hex(32)?,
        };
        let cli = |args: &[&str]| -> Result<String, String> {
            let output = Command::new(garage)
                .arg("-c")
                .arg(&config)
                .args(args)
                .output()
                .map_err(|e| format!("running garage {args:?}: {e}"))?;
            if output.status.success() {
                Ok(String::from_utf8_lossy(&output.stdout).into_owned())
            } else {
                Err(format!(
                    "garage {args:?} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        };
        let setup = || -> Result<(), String> {
            server.wait_until_ready(&cli, Duration::from_secs(60))?;
            let node = cli(&["node", "id", "-q"])?;
            let node = node.trim().split('@').next().unwrap_or_default().to_owned();
            cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
            cli(&["layout", "apply", "--version", "1"])?;
            let (key, secret) = (&server.access_key, &server.secret_key);
            cli(&["key", "import", "--yes", "-n", "attachments", key, secret])?;
            cli(&["bucket", "create", BUCKET])?;
            cli(&[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", key,
            ])?;
            Ok(())
        };
        if let Err(message) = setup() {
            server.dump_log();
            return Err(message);
        }
        println!("Garage {VERSION} is running on http://{}", server.s3);
        Ok(server)
    }

    /// The variables the S3 tests read; the region is left to the caller (`interop` tries
    /// the default first).
    pub(crate) fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "ATTACHMENTS_TEST_S3_ENDPOINT",
                format!("http://{}", self.s3),
            ),
            ("ATTACHMENTS_TEST_S3_BUCKET", BUCKET.to_owned()),
            ("ATTACHMENTS_TEST_S3_ACCESS_KEY", self.access_key.clone()),
            ("ATTACHMENTS_TEST_S3_SECRET_KEY", self.secret_key.clone()),
        ]
    }

    /// Print the end of the server's log (after a failure).
    pub(crate) fn dump_log(&self) {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        eprintln!("---- last lines of {} ----", self.log.display());
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
    }

    fn wait_until_ready(
        &self,
        cli: &dyn Fn(&[&str]) -> Result<String, String>,
        limit: Duration,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let listening =
                TcpStream::connect_timeout(&self.s3, Duration::from_millis(200)).is_ok();
            match cli(&["status"]) {
                Ok(_) if listening => return Ok(()),
                Err(message) if started.elapsed() > limit => {
                    return Err(format!("Garage was not ready within {limit:?}: {message}"));
                }
                _ if started.elapsed() > limit => {
                    return Err(format!("Garage's S3 port was not open within {limit:?}"));
                }
                // a server that has no other way to announce itself
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `garage` binary, built once into `target/garage` (its build directory is kept there
/// too, so an interrupted build resumes). `Err` says why Garage cannot be had.
pub(crate) fn install(target: &Path) -> Result<PathBuf, String> {
    let root = target.join("garage");
    let garage = root.join("bin").join("garage");
    let version = || {
        Command::new(&garage)
            .arg("--version")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    if version().is_some_and(|v| v.contains(VERSION)) {
        return Ok(garage);
    }
    println!(
        "building Garage {VERSION} from crates.io into {} (once; 30 to 90 minutes on 2 busy cores, at low priority; resumes if interrupted)",
        root.display()
    );
    let mut command = Command::new("nice");
    command
        .args(["-n", "19", "cargo", "install", "garage", "--locked"])
        .args([
            "--version",
            VERSION,
            "--no-default-features",
            "--features",
            FEATURES,
        ])
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(root.join("build"))
        // the workspace's settings (target dir, profile) are not Garage's
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(target);
    crate::run(&mut command).map_err(|e| format!("building Garage failed: {e}"))?;
    match version() {
        Some(_) => Ok(garage),
        None => Err(format!(
            "{} does not run after building it",
            garage.display()
        )),
    }
}

/// `bytes` random bytes as hex, from the kernel (xtask has no dependencies).
fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut buffer))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}
