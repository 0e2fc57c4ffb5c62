//! moto, a second S3 implementation for the S3 suites: installed from PyPI into a virtualenv
//! under `target/`, started on a free loopback port with its authentication on, stopped when
//! dropped.
//!
//! moto checks signatures only when `INITIAL_NO_AUTH_ACTION_COUNT` is set, and then only after
//! that many requests: the first three create an IAM user with an S3 policy and its access key,
//! every later request must be signed with that key.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PACKAGE: &str = "moto[server]==5.2.5";
const BUCKET: &str = "attachments-test";

/// Creates the user, its policy and its key (the three unauthenticated requests), prints the
/// key, then checks that a wrong secret is refused, so a moto with authentication off fails
/// here rather than passing every test.
const BOOTSTRAP: &str = r#"
import json, sys, boto3, botocore
endpoint = sys.argv[1]
def client(service, key, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)
iam = client("iam", "bootstrap", "bootstrap")
iam.create_user(UserName="attachments")
policy = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
iam.put_user_policy(UserName="attachments", PolicyName="s3", PolicyDocument=json.dumps(policy))
key = iam.create_access_key(UserName="attachments")["AccessKey"]
try:
    client("s3", key["AccessKeyId"], "not-the-secret").list_buckets()
    sys.exit("moto accepted a wrong secret: its authentication is off")
except botocore.exceptions.ClientError as error:
    if error.response["Error"]["Code"] != "SignatureDoesNotMatch":
        raise
client("s3", key["AccessKeyId"], key["SecretAccessKey"]).list_buckets()
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

/// A running `moto_server` with authentication on.
pub(crate) struct Moto {
    child: Child,
    log: PathBuf,
    address: SocketAddr,
    access_key: String,
    secret_key: String,
}

impl Moto {
    /// Install (once) and start moto, then create its test user.
    pub(crate) fn start(target: &Path) -> Result<Moto, String> {
        let venv = install(target)?;
        let address = free_loopback_address()?;
        let run_dir = target.join("moto").join("run");
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
        let log = run_dir.join(format!("moto-{}.log", address.port()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let child = Command::new(venv.join("bin").join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &address.port().to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting moto_server: {e}"))?;
        let mut server = Moto {
            child,
            log,
            address,
            access_key: String::new(),
            secret_key: String::new(),
        };
        server.wait_until_listening(Duration::from_secs(60))?;
        let output = Command::new(venv.join("bin").join("python"))
            .args(["-c", BOOTSTRAP, &server.endpoint()])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running moto's bootstrap: {e}"))?;
        if !output.status.success() {
            server.dump_log();
            return Err(format!("moto's bootstrap failed with {}", output.status));
        }
        let printed = String::from_utf8_lossy(&output.stdout);
        let mut words = printed.split_whitespace();
        match (words.next(), words.next()) {
            (Some(key), Some(secret)) => {
                server.access_key = key.to_owned();
                server.secret_key = secret.to_owned();
            }
            _ => return Err("moto's bootstrap printed no access key".to_owned()),
        }
        println!(
            "moto is running on {} (authentication on)",
            server.endpoint()
        );
        Ok(server)
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The variables the S3 tests read.
    pub(crate) fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ATTACHMENTS_TEST_S3_ENDPOINT", self.endpoint()),
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

    fn wait_until_listening(&mut self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.dump_log();
                return Err(format!("moto_server exited with {status}"));
            }
            // polling a port that has no other way to announce itself
            std::thread::sleep(Duration::from_millis(100));
        }
        self.dump_log();
        Err(format!("moto was not listening within {limit:?}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The S3 suites that need an external server, against moto (`cargo xtask test` runs the
/// whole workspace against SeaweedFS first).
pub(crate) fn test_s3_suites(target: &Path) -> Result<(), String> {
    let server = Moto::start(target)?;
    let result = crate::run(
        Command::new("cargo")
            .args([
                "test",
                "--package",
                "attachments-s3",
                "--test",
                "external",
                "--test",
                "queue",
            ])
            .envs(server.environment()),
    );
    if result.is_err() {
        server.dump_log();
    }
    result
}

/// A port nobody listens on now (the OS picks it; another process could take it before moto
/// binds, which then fails loudly).
pub(crate) fn free_loopback_address() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a port: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("finding a port: {e}"))
}

/// The virtualenv holding moto, installing it into `target/moto/venv` if needed.
fn install(target: &Path) -> Result<PathBuf, String> {
    let venv = target.join("moto").join("venv");
    let works = || {
        Command::new(venv.join("bin").join("python"))
            .args(["-c", "import moto.server, boto3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && venv.join("bin").join("moto_server").exists()
    };
    if works() {
        return Ok(venv);
    }
    println!("installing moto ({PACKAGE}) into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    crate::run(Command::new(&python).arg("-m").arg("venv").arg(&venv))?;
    crate::run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PACKAGE,
    ]))?;
    if works() {
        Ok(venv)
    } else {
        Err(format!("moto does not run after installing {PACKAGE}"))
    }
}
