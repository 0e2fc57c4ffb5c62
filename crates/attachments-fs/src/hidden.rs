//! The storage's own hidden area below the root: temporary files, the staging area and the lock
//! file.
//!
//! ```text
//! <root>/.attachments-tmp/            TEMP_DIR
//!     <prefix>-<n>.part               a write in progress, or a crash leftover
//!     staged/<path>                   a staged file; its directories mirror <path>'s
//!     lock                            held by `lock_exclusive`
//! ```
//!
//! A final path may go through a symbolic link that stays inside the root (the app owns those
//! directories). The hidden area is the library's alone, and `remove_temp_files` deletes in it
//! at every start, so it is held to a stricter rule: no component from the root down to a file
//! in it may be a symbolic link or anything but a directory, checked with `lstat` and never
//! followed. Without `openat` (std has none and unsafe code is forbidden here) a link swapped
//! in between a check and the call after it is not caught; each step checks right before it
//! acts to keep that window small.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};

use attachments_core::{Error, ErrorKind, Result, validate_relative_path};

/// Directory under the root where files are written before they are renamed into place, and
/// where the staging area and the lock file live. It is reserved: no stored path may start
/// with it.
pub const TEMP_DIR: &str = ".attachments-tmp";

/// The staging area, inside `TEMP_DIR`.
pub(crate) const STAGED_DIR: &str = "staged";

/// The lock file of `lock_exclusive`, inside `TEMP_DIR`. Never removed: removing a lock file
/// another process holds would let a third one lock a new file of the same name.
pub(crate) const LOCK_FILE: &str = "lock";

/// Ending of temporary files; `remove_temp_files` removes nothing else.
pub(crate) const TEMP_SUFFIX: &str = ".part";

/// What a strict walk found at its end.
pub(crate) enum Found {
    Missing,
    Directory,
    File(Metadata),
}

/// Refuse a name no stored or staged file may have: what `validate_relative_path` refuses,
/// and names inside the hidden area.
pub(crate) fn check_name(path: &str) -> Result<()> {
    validate_relative_path(path)?;
    if path.split('/').next() == Some(TEMP_DIR) {
        return Err(Error::invalid_input(format!(
            "path {path:?} refused: {TEMP_DIR} is reserved for the storage's own files"
        )));
    }
    Ok(())
}

/// The components below the root of the staged file `name` (already checked).
pub(crate) fn staged_parts(name: &str) -> Vec<&str> {
    [TEMP_DIR, STAGED_DIR]
        .into_iter()
        .chain(name.split('/'))
        .collect()
}

/// Walk `parts` below `root` without following links. Every existing component but the last
/// must be a directory; the last may be a directory or a regular file.
///
/// # Errors
/// `InvalidInput` for a symbolic link or another kind of file on the way.
pub(crate) fn inspect(root: &Path, parts: &[&str]) -> Result<(PathBuf, Found)> {
    let mut current = root.to_path_buf();
    for (index, part) in parts.iter().enumerate() {
        current.push(part);
        let metadata = match std::fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // nothing below a missing component exists
                current.extend(&parts[index + 1..]);
                return Ok((current, Found::Missing));
            }
            Err(e) => {
                return Err(Error::from_io(
                    e,
                    format!("inspecting {}", current.display()),
                ));
            }
        };
        let last = index + 1 == parts.len();
        let kind = metadata.file_type();
        if kind.is_dir() {
            if last {
                return Ok((current, Found::Directory));
            }
        } else if kind.is_file() && last {
            return Ok((current, Found::File(metadata)));
        } else {
            return Err(refusal(&current, &metadata));
        }
    }
    Ok((current, Found::Directory))
}

/// Make sure every component of `parts` below `root` is a real directory, creating missing
/// ones one at a time (so none is ever created through a link), and return the last.
///
/// # Errors
/// `InvalidInput` for a symbolic link or a file on the way; I/O errors creating a directory.
pub(crate) fn ensure_dirs(root: &Path, parts: &[&str]) -> Result<PathBuf> {
    let mut current = root.to_path_buf();
    for part in parts {
        current.push(part);
        loop {
            match std::fs::symlink_metadata(&current) {
                Ok(metadata) if metadata.is_dir() => break,
                Ok(metadata) => return Err(refusal(&current, &metadata)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&current) {
                        Ok(()) => {
                            // a staged file is durable only with the directories leading to it
                            sync_parent(&current)?;
                            break;
                        }
                        // created meanwhile by someone else: look at what it is
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => {
                            return Err(Error::from_io(
                                e,
                                format!("creating {}", current.display()),
                            ));
                        }
                    }
                }
                Err(e) => {
                    return Err(Error::from_io(
                        e,
                        format!("inspecting {}", current.display()),
                    ));
                }
            }
        }
    }
    Ok(current)
}

/// The refusal of something that must be a plain directory (or file) but is not.
fn refusal(path: &Path, metadata: &Metadata) -> Error {
    let what = if metadata.file_type().is_symlink() {
        "a symbolic link, which is never followed there"
    } else if metadata.is_dir() {
        "a directory"
    } else {
        "not a directory"
    };
    Error::invalid_input(format!(
        "{} refused: it is {what} (the storage keeps its own files in {TEMP_DIR}, which must \
         hold only plain directories and files)",
        path.display()
    ))
}

/// Remove the empty directories of `parts` below `root` from the deepest up, stopping at the
/// first that is not empty. Only directories left behind by staged files are removed: the
/// walk stops above `keep` components (`TEMP_DIR` and the staging directory itself).
pub(crate) fn remove_empty_dirs(root: &Path, parts: &[&str], keep: usize) {
    for end in (keep + 1..=parts.len()).rev() {
        let dir: PathBuf = std::iter::once(root.as_os_str())
            .chain(parts[..end].iter().map(|part| std::ffi::OsStr::new(*part)))
            .collect();
        // `remove_dir` fails on a directory that is not empty (or a link): that is the stop
        if std::fs::remove_dir(&dir).is_err() {
            return;
        }
    }
}

/// Every staged name: regular files below the staging directory, as `/`-separated paths.
/// Symbolic links and names that no staged file can have (not UTF-8, refused by `check_name`)
/// are left out and logged, so one odd file cannot stop a start-up.
pub(crate) fn list_staged(root: &Path) -> Result<Vec<String>> {
    let (staged, found) = inspect(root, &[TEMP_DIR, STAGED_DIR])?;
    match found {
        Found::Missing => return Ok(Vec::new()),
        Found::Directory => {}
        Found::File(metadata) => return Err(refusal(&staged, &metadata)),
    }
    walk_files(&staged, |_| false).map_err(|e| Error::from_io(e, "listing staged files"))
}

/// Every regular file below `top` as a `/`-separated relative path that `check_name` accepts,
/// skipping top-level entries for which `skip_top` is true, symbolic links, and names that
/// are not UTF-8.
pub(crate) fn walk_files(top: &Path, skip_top: impl Fn(&str) -> bool) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![(top.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            if prefix.is_empty() && skip_top(&name) {
                continue;
            }
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // `DirEntry::file_type` does not follow links: a linked directory is not entered
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push((entry.path(), relative));
            } else if kind.is_file() {
                if check_name(&relative).is_ok() {
                    files.push(relative);
                } else {
                    tracing::warn!(path = %entry.path().display(), "skipping a file no stored path can name");
                }
            }
        }
    }
    Ok(files)
}

/// Remove the crash leftovers among the temporary files: regular files ending in
/// `TEMP_SUFFIX` for which `in_progress` is false. Nothing else in the hidden area is touched
/// (the staging directory, the lock file, names the library never writes).
pub(crate) fn remove_temp_files(root: &Path, in_progress: impl Fn(&Path) -> bool) -> Result<u64> {
    let (temp_dir, found) = inspect(root, &[TEMP_DIR])?;
    match found {
        Found::Missing => return Ok(0),
        Found::Directory => {}
        Found::File(metadata) => return Err(refusal(&temp_dir, &metadata)),
    }
    let reading = |e| Error::from_io(e, "reading the temp directory");
    let mut removed = 0;
    for entry in std::fs::read_dir(&temp_dir).map_err(reading)? {
        let entry = entry.map_err(reading)?;
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .filter(|name| name.ends_with(TEMP_SUFFIX))
        else {
            continue;
        };
        if !entry.file_type().map_err(reading)?.is_file() {
            continue;
        }
        let path = entry.path();
        if in_progress(&path) {
            continue;
        }
        // look again right before deleting: a link swapped in since must not be deleted through
        if let (_, Found::File(_)) = inspect(root, &[TEMP_DIR, name])? {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::from_io(e, "removing a temp file")),
            }
        }
    }
    Ok(removed)
}

/// Open a regular file of the hidden area at `parts` (below `root`) for reading, refusing a
/// link anywhere on the way; `None` when there is none.
///
/// # Errors
/// `InvalidInput` for a link or a swap between the check and the open.
pub(crate) fn open_file(root: &Path, parts: &[&str]) -> Result<Option<std::fs::File>> {
    let (path, found) = inspect(root, parts)?;
    let Found::File(checked) = found else {
        return Ok(None);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from_io(e, format!("opening {}", path.display()))),
    };
    let opened = file
        .metadata()
        .map_err(|e| Error::from_io(e, format!("reading {}", path.display())))?;
    if !same_file(&checked, &opened) {
        return Err(swapped(&path));
    }
    Ok(Some(file))
}

/// Open (creating it if needed) the lock file in `TEMP_DIR`, never through a link.
///
/// # Errors
/// `InvalidInput` for a link or something else than a file at its place.
pub(crate) fn open_lock_file(root: &Path) -> Result<std::fs::File> {
    let dir = ensure_dirs(root, &[TEMP_DIR])?;
    let path = dir.join(LOCK_FILE);
    let opening = |e| Error::from_io(e, format!("opening the lock file {}", path.display()));
    // `create_new` refuses any existing entry, a link included, without following it
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(opening(e)),
    }
    let (_, found) = inspect(root, &[TEMP_DIR, LOCK_FILE])?;
    let Found::File(checked) = found else {
        return Err(Error::invalid_input(format!(
            "{} refused: the lock file is a directory",
            path.display()
        )));
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(opening)?;
    let opened = file.metadata().map_err(opening)?;
    if !same_file(&checked, &opened) {
        return Err(swapped(&path));
    }
    Ok(file)
}

fn swapped(path: &Path) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{} refused: it was replaced while being opened",
            path.display()
        ),
    )
}

/// Whether two metadata describe the same file (one from `lstat` before an open, one from the
/// opened handle), which tells a link swapped in between them.
#[cfg(unix)]
fn same_file(checked: &Metadata, opened: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    checked.dev() == opened.dev() && checked.ino() == opened.ino()
}

/// Without inode numbers in std, only the kind can be compared.
#[cfg(not(unix))]
fn same_file(checked: &Metadata, opened: &Metadata) -> bool {
    checked.is_file() == opened.is_file()
}

/// Flush a directory's entries to disk, so a rename into or out of it survives a power cut.
pub(crate) fn sync_dir(dir: &Path, what: &str) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|e| Error::from_io(e, format!("syncing the directory of {what}")))
}

/// Flush the entry of a directory just created.
fn sync_parent(created: &Path) -> Result<()> {
    match created.parent() {
        Some(parent) => sync_dir(parent, &created.display().to_string()),
        None => Ok(()),
    }
}

/// Create `dir` and its missing parents, syncing each parent once it holds a new directory:
/// a file renamed into `dir` and synced there survives a power cut only if the directories
/// leading to it do too.
pub(crate) fn create_dirs_durably(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    loop {
        match std::fs::symlink_metadata(current) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(current);
                match current.parent() {
                    Some(parent) => current = parent,
                    None => break,
                }
            }
            Err(e) => {
                return Err(Error::from_io(
                    e,
                    format!("inspecting {}", current.display()),
                ));
            }
        }
    }
    for created in missing.into_iter().rev() {
        match std::fs::create_dir(created) {
            Ok(()) => sync_parent(created)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::from_io(e, format!("creating {}", created.display()))),
        }
    }
    Ok(())
}
