//! `cargo xtask check-architecture`: every structural rule `docs/ARCHITECTURE.md` states, as a
//! named check over the workspace's `cargo metadata` and its source files.
//!
//! Each check is a plain function from a [`Workspace`] to what it found, so the `#[test]`s at
//! the bottom feed them small fake workspaces (the way rust-analyzer's tidy tests work): a rule
//! that cannot fail in a test is a rule nobody knows still works.

#[cfg(test)]
mod tests;
mod workspace;

use workspace::{DependencyKind, Member, Workspace, load_workspace};

/// The core's package name.
const CORE: &str = "attachments-core";
/// The test kit's package name.
const TESTKIT: &str = "attachments-testkit";
/// The SQL text (migrations, statements) and lock file shared by the SQLite stores whatever
/// their driver: a part both use, so not an adapter (adapters know nothing of each other).
const SHARED_SQL: &str = "attachments-sql";
/// The facade's package name: the one crate that knows all the others.
const FACADE: &str = "attachments";

/// Name prefixes of crates that would bring a SQL dialect or a network protocol into the core.
const FORBIDDEN_IN_CORE: [&str; 6] = ["sqlx", "libsqlite3", "rusqlite", "aws-", "reqwest", "hyper"];

/// What the test kit may depend on besides the core: what its suites, memory storages and fault
/// wrappers use, and (behind `supabase-server`) what its loopback Supabase server needs. A new
/// entry is a decision: the test kit is a dependency of every adapter's tests.
const TESTKIT_MAY_USE: [&str; 12] = [
    "async-trait",
    "bytes",
    "futures-util",
    "tokio",
    // the loopback Supabase Storage server (feature `supabase-server`)
    "base64",
    "hmac",
    "http-body-util",
    "hyper",
    "hyper-util",
    "serde_json",
    "sha2",
    "uuid",
];

/// Example crates of a third-party adapter: by design they depend on the core (and test with
/// the test kit) and on no other crate of this workspace, as an adapter published elsewhere
/// would.
const THIRD_PARTY_ADAPTER_EXAMPLES: [&str; 1] = ["third-party-remote"];

/// The longest source file allowed, in lines (tests in the file included). A file longer than
/// this holds more than one room: the engine's 870-line `engine.rs` is what issue 10 calls
/// cramped, and every other library file is below it. Long files are split by concern (as
/// opendal splits a service into core, backend, error and writer).
const MAX_FILE_LINES: usize = 800;

/// Files allowed over [`MAX_FILE_LINES`] for now, each with why. The check prints them on every
/// run, so the list stays visible until it is empty.
const OVERSIZED_FILE_EXCEPTIONS: [(&str, &str); 2] = [
    (
        "crates/attachments/tests/queue.rs",
        "scenario tests of the whole queue, to be split by concern",
    ),
    (
        "crates/attachments-testkit/src/suites/store.rs",
        "one function per promise since issue 10; to be split by concern (versions, batches, hooks)",
    ),
];

/// What one check found: failures fail the run, notes are printed either way.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Findings {
    pub(super) failures: Vec<String>,
    pub(super) notes: Vec<String>,
}

impl Findings {
    fn from_failures(failures: Vec<String>) -> Self {
        Findings {
            failures,
            notes: Vec::new(),
        }
    }
}

/// A rule of `docs/ARCHITECTURE.md` and the function that checks it.
struct Check {
    name: &'static str,
    rule: &'static str,
    run: fn(&Workspace) -> Findings,
}

const CHECKS: [Check; 8] = [
    Check {
        name: "core-knows-no-protocol",
        rule: "attachments-core's dependency tree holds no SQL, AWS or HTTP crate",
        run: core_knows_no_protocol,
    },
    Check {
        name: "core-depends-on-no-workspace-crate",
        rule: "the arrows run one way: attachments-core depends on no other crate of the workspace",
        run: core_depends_on_no_workspace_crate,
    },
    Check {
        name: "adapters-know-nothing-of-each-other",
        rule: "no adapter has a normal or build dependency on another adapter",
        run: adapters_know_nothing_of_each_other,
    },
    Check {
        name: "testkit-depends-on-core-only",
        rule: "attachments-testkit depends on attachments-core and its own allowed list only",
        run: testkit_depends_on_core_only,
    },
    Check {
        name: "applications-use-the-facade",
        rule: "examples and tools use the facade `attachments` (and the test kit), never an inner crate",
        run: applications_use_the_facade,
    },
    Check {
        name: "third-party-example-needs-only-core",
        rule: "the third-party adapter example depends on attachments-core, and on attachments-testkit for its tests, nothing else of the workspace",
        run: third_party_example_needs_only_core,
    },
    Check {
        name: "adapters-run-the-suites",
        rule: "every adapter (and the third-party example) runs the test kit's conformance suites in its tests/",
        run: adapters_run_the_suites,
    },
    Check {
        name: "files-stay-small",
        rule: "no source file is longer than 800 lines (MAX_FILE_LINES), but for the listed exceptions",
        run: files_stay_small,
    },
];

/// Run every check against this workspace; print one line per check, then fail if any failed.
pub(crate) fn check_architecture() -> Result<(), String> {
    let workspace = load_workspace()?;
    let mut failed = Vec::new();
    for check in &CHECKS {
        let findings = (check.run)(&workspace);
        let verdict = if findings.failures.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        println!("architecture: {verdict} {}: {}", check.name, check.rule);
        for failure in &findings.failures {
            println!("    - {failure}");
        }
        for note in &findings.notes {
            println!("    note: {note}");
        }
        if !findings.failures.is_empty() {
            failed.push(check.name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "architecture rules broken: {} (see docs/ARCHITECTURE.md)",
            failed.join(", ")
        ))
    }
}

fn core_knows_no_protocol(workspace: &Workspace) -> Findings {
    Findings::from_failures(
        workspace
            .core_tree
            .iter()
            .filter(|name| FORBIDDEN_IN_CORE.iter().any(|bad| name.starts_with(bad)))
            .map(|name| {
                format!(
                    "{CORE} depends on {name} (directly or through another crate): the core knows no SQL dialect and no network protocol; such code belongs in an adapter"
                )
            })
            .collect(),
    )
}

fn core_depends_on_no_workspace_crate(workspace: &Workspace) -> Findings {
    let Some(core) = workspace.member(CORE) else {
        return Findings::from_failures(vec![format!("{CORE} is not a workspace member")]);
    };
    Findings::from_failures(
        core.dependencies
            .iter()
            .filter(|dep| dep.kind != DependencyKind::Dev && workspace.is_member(&dep.name))
            .map(|dep| {
                format!(
                    "{CORE} depends on {}: every other crate depends on the core, never the reverse",
                    dep.name
                )
            })
            .collect(),
    )
}

fn adapters_know_nothing_of_each_other(workspace: &Workspace) -> Findings {
    let adapters: Vec<&Member> = workspace
        .members
        .iter()
        .filter(|m| m.is_adapter())
        .collect();
    let mut failures = Vec::new();
    for adapter in &adapters {
        for other in &adapters {
            if adapter.name != other.name
                && adapter.depends_on(
                    &other.name,
                    &[DependencyKind::Normal, DependencyKind::Build],
                )
            {
                failures.push(format!(
                    "{} depends on {}: adapters know nothing of each other; move what they share into {CORE}",
                    adapter.name, other.name
                ));
            }
        }
    }
    Findings::from_failures(failures)
}

fn testkit_depends_on_core_only(workspace: &Workspace) -> Findings {
    let Some(testkit) = workspace.member(TESTKIT) else {
        return Findings::from_failures(vec![format!("{TESTKIT} is not a workspace member")]);
    };
    Findings::from_failures(
        testkit
            .dependencies
            .iter()
            .filter(|dep| dep.kind != DependencyKind::Dev)
            .filter(|dep| dep.name != CORE && !TESTKIT_MAY_USE.contains(&dep.name.as_str()))
            .map(|dep| {
                if workspace.is_member(&dep.name) {
                    format!(
                        "{TESTKIT} depends on {}: the test kit knows the core only, so any adapter can test with it",
                        dep.name
                    )
                } else {
                    format!(
                        "{TESTKIT} depends on {}, which is not in TESTKIT_MAY_USE (xtask/src/architecture.rs): every adapter's tests compile the test kit, so add a crate there only on purpose",
                        dep.name
                    )
                }
            })
            .collect(),
    )
}

fn applications_use_the_facade(workspace: &Workspace) -> Findings {
    let mut failures = Vec::new();
    for app in workspace
        .members
        .iter()
        .filter(|m| m.is_application() && !m.is_third_party_adapter_example())
    {
        for dep in &app.dependencies {
            let inner = workspace.member(&dep.name).is_some_and(|m| {
                m.dir.starts_with("crates/") && m.name != FACADE && m.name != TESTKIT
            });
            if inner {
                failures.push(format!(
                    "{} ({}) depends on {}: examples and tools show the API, which is what the facade `{FACADE}` re-exports; use it instead",
                    app.name, app.dir, dep.name
                ));
            }
        }
    }
    Findings::from_failures(failures)
}

fn third_party_example_needs_only_core(workspace: &Workspace) -> Findings {
    let mut failures = Vec::new();
    for name in THIRD_PARTY_ADAPTER_EXAMPLES {
        let Some(example) = workspace.member(name) else {
            failures.push(format!(
                "{name} (THIRD_PARTY_ADAPTER_EXAMPLES) is not a workspace member"
            ));
            continue;
        };
        if !example.depends_on(CORE, &[DependencyKind::Normal]) {
            failures.push(format!(
                "{name} does not depend on {CORE}: a third-party adapter implements the core's traits"
            ));
        }
        for dep in &example.dependencies {
            let allowed =
                dep.name == CORE || (dep.name == TESTKIT && dep.kind == DependencyKind::Dev);
            if workspace.is_member(&dep.name) && !allowed {
                failures.push(format!(
                    "{name} depends on {} ({:?}): a third-party adapter can only use {CORE}, and {TESTKIT} as a dev-dependency",
                    dep.name, dep.kind
                ));
            }
        }
    }
    Findings::from_failures(failures)
}

fn adapters_run_the_suites(workspace: &Workspace) -> Findings {
    let mut failures = Vec::new();
    for member in workspace
        .members
        .iter()
        .filter(|m| m.is_adapter() || m.is_third_party_adapter_example())
    {
        let tests_dir = format!("{}/tests/", member.dir);
        let runs_a_suite = workspace.source_files.iter().any(|file| {
            file.path.starts_with(&tests_dir)
                && file.text.contains("attachments_testkit")
                && file.text.contains("_suite")
        });
        if !member.depends_on(TESTKIT, &[DependencyKind::Dev]) || !runs_a_suite {
            failures.push(format!(
                "{} runs none of the test kit's suites: add {TESTKIT} as a dev-dependency and call its suite from {}conformance.rs",
                member.name, tests_dir
            ));
        }
    }
    Findings::from_failures(failures)
}

fn files_stay_small(workspace: &Workspace) -> Findings {
    let mut findings = Findings::default();
    for file in &workspace.source_files {
        let lines = file.text.lines().count();
        let exception = OVERSIZED_FILE_EXCEPTIONS
            .iter()
            .find(|(path, _)| *path == file.path);
        match exception {
            Some((_, why)) if lines > MAX_FILE_LINES => findings.notes.push(format!(
                "{} has {lines} lines, allowed for now: {why}",
                file.path
            )),
            Some(_) => findings.notes.push(format!(
                "{} has {lines} lines now: remove it from OVERSIZED_FILE_EXCEPTIONS",
                file.path
            )),
            None if lines > MAX_FILE_LINES => findings.failures.push(format!(
                "{} has {lines} lines, more than {MAX_FILE_LINES}: split it by concern into files named for what they hold",
                file.path
            )),
            None => {}
        }
    }
    for (path, _) in OVERSIZED_FILE_EXCEPTIONS {
        if !workspace.source_files.iter().any(|file| file.path == path) {
            findings.notes.push(format!(
                "{path} is gone: remove it from OVERSIZED_FILE_EXCEPTIONS"
            ));
        }
    }
    findings
}
