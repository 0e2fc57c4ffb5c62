//! libclang, which the PowerSync store's build needs: PowerSync's SQLite core extension
//! (`powersync_sqlite_nostd`) runs bindgen. CI builds every feature, so it installs libclang
//! when it is missing, as it installs SeaweedFS, and a fresh machine passes `.ci/run`.

use std::path::Path;
use std::process::Command;

/// Directories where Debian, Ubuntu and LLVM's own packages put `libclang.so`.
const SEARCHED: [&str; 4] = [
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
];

/// Make sure bindgen finds libclang: already there (or `LIBCLANG_PATH` set), else installed
/// with apt-get (Debian `libclang-dev`) when this runs as root.
///
/// # Errors
/// When libclang is missing and cannot be installed here; the message says how to.
pub(crate) fn ensure() -> Result<(), String> {
    if std::env::var_os("LIBCLANG_PATH").is_some() || found() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root || !Path::new("/usr/bin/apt-get").exists() {
        return Err(
            "libclang is missing (PowerSync's build runs bindgen): install it, e.g. \
             `sudo apt-get install libclang-dev`, or set LIBCLANG_PATH"
                .to_owned(),
        );
    }
    println!("installing libclang-dev (PowerSync's build runs bindgen)");
    crate::run(Command::new("apt-get").arg("update"))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "libclang-dev"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if found() {
        Ok(())
    } else {
        Err("libclang-dev was installed but no libclang.so was found".to_owned())
    }
}

/// Whether a `libclang*.so*` is in one of the usual places, or in an LLVM directory.
fn found() -> bool {
    let llvm_dirs = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("llvm-"))
        })
        .map(|path| path.join("lib"));
    SEARCHED
        .iter()
        .map(|dir| Path::new(dir).to_path_buf())
        .chain(llvm_dirs)
        .any(|dir| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.starts_with("libclang") && name.contains(".so")
                })
        })
}
