//! What the checks look at: the members and the core's tree out of `cargo metadata`, and the
//! source files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{CORE, FACADE, SHARED_SQL, TESTKIT, THIRD_PARTY_ADAPTER_EXAMPLES};

/// How a package depends on another (`cargo metadata`'s `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DependencyKind {
    Normal,
    Dev,
    Build,
}

/// One dependency as declared in a member's `Cargo.toml`.
#[derive(Debug, Clone)]
pub(super) struct Dependency {
    pub(super) name: String,
    pub(super) kind: DependencyKind,
}

/// A workspace member.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) name: String,
    /// Its directory relative to the workspace root, `/`-separated (`crates/attachments-fs`).
    pub(super) dir: String,
    pub(super) dependencies: Vec<Dependency>,
}

impl Member {
    pub(super) fn depends_on(&self, name: &str, kinds: &[DependencyKind]) -> bool {
        self.dependencies
            .iter()
            .any(|dep| dep.name == name && kinds.contains(&dep.kind))
    }

    /// An adapter: a library crate under `crates/` other than the core, the test kit and the
    /// facade (so a new adapter, such as a PowerSync one, is covered without a list to edit).
    pub(super) fn is_adapter(&self) -> bool {
        self.dir.starts_with("crates/")
            && ![CORE, SHARED_SQL, TESTKIT, FACADE].contains(&self.name.as_str())
    }

    /// A program written against the library: an example or a tool.
    pub(super) fn is_application(&self) -> bool {
        self.dir.starts_with("examples") || self.dir.starts_with("tools/")
    }

    pub(super) fn is_third_party_adapter_example(&self) -> bool {
        THIRD_PARTY_ADAPTER_EXAMPLES.contains(&self.name.as_str())
    }
}

/// A Rust source file, relative to the workspace root.
#[derive(Debug, Clone)]
pub(super) struct SourceFile {
    pub(super) path: String,
    pub(super) text: String,
}

/// What the checks look at.
#[derive(Debug, Clone, Default)]
pub(super) struct Workspace {
    pub(super) members: Vec<Member>,
    /// Every package in the normal-dependency tree of `attachments-core` (itself included).
    pub(super) core_tree: BTreeSet<String>,
    pub(super) source_files: Vec<SourceFile>,
}

impl Workspace {
    pub(super) fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.name == name)
    }

    pub(super) fn is_member(&self, name: &str) -> bool {
        self.member(name).is_some()
    }
}

/// Read the workspace: members and the core's tree from `cargo metadata`, then every `.rs` file
/// outside `target/`.
pub(super) fn load_workspace() -> Result<Workspace, String> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1"])
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("reading cargo metadata's output: {e}"))?;
    let mut workspace = workspace_from_metadata(&metadata)?;
    let root = metadata["workspace_root"]
        .as_str()
        .ok_or("cargo metadata has no workspace_root")?;
    collect_source_files(
        Path::new(root),
        Path::new(root),
        &mut workspace.source_files,
    )?;
    workspace.source_files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(workspace)
}

/// The members and the core's normal-dependency tree out of `cargo metadata`'s JSON.
///
/// The tree comes from the workspace-wide resolve, whose features are the union over all
/// members: it can only hold more than `cargo tree -p attachments-core` shows, never less, so
/// the check cannot miss a forbidden crate.
pub(super) fn workspace_from_metadata(metadata: &Value) -> Result<Workspace, String> {
    let root = metadata["workspace_root"]
        .as_str()
        .ok_or("cargo metadata has no workspace_root")?;
    let member_ids: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .ok_or("cargo metadata has no workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?;
    let name_of: BTreeMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();

    let mut workspace = Workspace::default();
    for package in packages {
        let id = package["id"].as_str().unwrap_or_default();
        if !member_ids.contains(id) {
            continue;
        }
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        let dir = Path::new(manifest)
            .parent()
            .and_then(|dir| dir.strip_prefix(root).ok())
            .map(|dir| dir.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let dependencies = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|dep| Dependency {
                name: dep["name"].as_str().unwrap_or_default().to_owned(),
                kind: match dep["kind"].as_str() {
                    Some("dev") => DependencyKind::Dev,
                    Some("build") => DependencyKind::Build,
                    _ => DependencyKind::Normal,
                },
            })
            .collect();
        workspace.members.push(Member {
            name: package["name"].as_str().unwrap_or_default().to_owned(),
            dir,
            dependencies,
        });
    }

    // normal edges of the resolved graph, then everything reachable from the core
    let mut normal_edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = node["id"].as_str().unwrap_or_default();
        let deps = node["deps"].as_array().into_iter().flatten();
        let normal = deps
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|kind| kind["kind"].is_null())
            })
            .filter_map(|dep| dep["pkg"].as_str());
        normal_edges.insert(id, normal.collect());
    }
    let core_id = name_of
        .iter()
        .find(|(id, name)| **name == CORE && member_ids.contains(**id))
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("{CORE} is not a workspace member"))?;
    let mut stack = vec![core_id];
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(normal_edges.get(id).into_iter().flatten());
        }
    }
    workspace.core_tree = seen
        .into_iter()
        .filter_map(|id| name_of.get(id).map(|name| (*name).to_owned()))
        .collect();
    Ok(workspace)
}

/// Every `.rs` file below `dir`, skipping build output and hidden directories.
fn collect_source_files(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry
            .file_type()
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if file_type.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_source_files(root, &path, out)?;
            }
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            out.push(SourceFile {
                path: relative.to_string_lossy().replace('\\', "/"),
                text,
            });
        }
    }
    Ok(())
}
