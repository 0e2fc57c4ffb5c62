//! `cargo xtask ci`: everything CI runs, in one place, so `.github/workflows/ci.yml` and
//! `.ci/run` cannot drift apart. Cheap checks first, so a formatting slip fails in seconds.

use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::{cargo, run};

/// The facade, whose every feature combination must build.
const FACADE: &str = "attachments";

/// Format, lints, docs, every feature combination of the facade, then `cargo xtask test`
/// (the architecture check, the chaos run, every test) and the README's main job.
pub(crate) fn ci() -> Result<(), String> {
    let started = Instant::now();
    step("format", || cargo(&["fmt", "--all", "--", "--check"]))?;
    // clippy and the feature combinations build PowerSync's core extension (bindgen)
    step("libclang", crate::libclang::ensure)?;
    step("clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("docs", || {
        run(Command::new("cargo")
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    step("facade features", check_feature_combinations)?;
    step("tests (architecture, chaos, every test)", || {
        crate::test(&[])
    })?;
    step("quickstart", || cargo(&["run", "--example", "quickstart"]))?;
    println!("\n== ci: passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Run one step, saying which and how long it took, so a slow step is seen when it grows.
fn step(name: &str, body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("\n== ci: {name}");
    let started = Instant::now();
    let result = body();
    println!("== ci: {name}: {:.0?}", started.elapsed());
    result.map_err(|error| format!("ci step {name}: {error}"))
}

/// `cargo check` of the facade with no default features plus each subset of its features, read
/// from its manifest so a new adapter's feature is covered without editing this list.
///
/// Each check also names every adapter crate (`attachments-<feature>`): the dependencies'
/// features then unify to one set, so they are checked once rather than once per
/// combination (minutes on a fresh clone), while the facade itself is still checked in every
/// combination, which is what catches a `cfg` that names a disabled adapter. Each adapter's
/// own dependency features are checked by its own build in the workspace.
fn check_feature_combinations() -> Result<(), String> {
    let features = facade_features()?;
    let adapters: Vec<String> = features
        .iter()
        .map(|feature| format!("attachments-{feature}"))
        .collect();
    let combinations = feature_powerset(&features);
    for (n, combination) in combinations.iter().enumerate() {
        let features = combination.join(",");
        println!(
            "facade features {}/{}: [{features}]",
            n + 1,
            combinations.len()
        );
        // the facade's own features, named as such since several packages are selected
        let facade_features: Vec<String> = combination
            .iter()
            .map(|feature| format!("{FACADE}/{feature}"))
            .collect();
        let facade_features = facade_features.join(",");
        let mut args = vec!["check", "--quiet", "--package", FACADE];
        for adapter in &adapters {
            args.extend(["--package", adapter.as_str()]);
        }
        args.extend(["--no-default-features", "--features", &facade_features]);
        cargo(&args)?;
    }
    Ok(())
}

/// The facade's features other than `default`, from `cargo metadata`.
fn facade_features() -> Result<Vec<String>, String> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
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
    let facade = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == FACADE)
        .ok_or_else(|| format!("no package {FACADE} in the workspace"))?;
    let features = facade["features"]
        .as_object()
        .ok_or_else(|| format!("{FACADE} declares no features"))?;
    Ok(features
        .keys()
        .filter(|name| *name != "default")
        .cloned()
        .collect())
}

/// Every subset of `features`, the empty one first, each in the given order.
fn feature_powerset(features: &[String]) -> Vec<Vec<String>> {
    (0..1u32 << features.len())
        .map(|mask| {
            features
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, feature)| feature.clone())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::feature_powerset;

    #[test]
    fn the_powerset_holds_every_subset_once() {
        let features = ["fs", "s3", "sqlite"].map(String::from);
        let sets = feature_powerset(&features);
        assert_eq!(sets.len(), 8);
        assert_eq!(
            sets[0],
            Vec::<String>::new(),
            "no feature at all comes first"
        );
        assert_eq!(sets[7], features.to_vec());
        let mut unique = sets.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8);
    }
}
