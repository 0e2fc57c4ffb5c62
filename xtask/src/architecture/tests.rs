//! The rules, fed small fake workspaces.

use super::DependencyKind::{Build, Dev, Normal};
use super::workspace::{Dependency, SourceFile, workspace_from_metadata};
use super::*;

fn member(name: &str, dir: &str, deps: &[(&str, DependencyKind)]) -> Member {
    Member {
        name: name.to_owned(),
        dir: dir.to_owned(),
        dependencies: deps
            .iter()
            .map(|(name, kind)| Dependency {
                name: (*name).to_owned(),
                kind: *kind,
            })
            .collect(),
    }
}

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

/// A workspace shaped like ours, in which every rule holds.
fn healthy() -> Workspace {
    let suite_call = "use attachments_testkit::remote_storage_suite; remote_storage_suite(&r);";
    Workspace {
        members: vec![
            member(CORE, "crates/attachments-core", &[("tokio", Normal)]),
            member(
                "attachments-fs",
                "crates/attachments-fs",
                &[(CORE, Normal), (TESTKIT, Dev)],
            ),
            member(
                "attachments-s3",
                "crates/attachments-s3",
                &[(CORE, Normal), ("aws-sdk-s3", Normal), (TESTKIT, Dev)],
            ),
            member(
                TESTKIT,
                "crates/attachments-testkit",
                &[(CORE, Normal), ("tokio", Normal), ("hyper", Normal)],
            ),
            member(
                FACADE,
                "crates/attachments",
                &[
                    (CORE, Normal),
                    ("attachments-fs", Normal),
                    ("attachments-s3", Normal),
                ],
            ),
            member(
                "attachments-examples",
                "examples",
                &[(FACADE, Dev), (TESTKIT, Dev)],
            ),
            member(
                "third-party-remote",
                "examples/third-party-remote",
                &[(CORE, Normal), ("tokio", Normal), (TESTKIT, Dev)],
            ),
            member("chaos-worker", "tools/chaos-worker", &[(FACADE, Normal)]),
        ],
        core_tree: [CORE, "tokio", "bytes"].map(String::from).into(),
        source_files: vec![
            file("crates/attachments-fs/tests/conformance.rs", suite_call),
            file("crates/attachments-s3/tests/conformance.rs", suite_call),
            file(
                "examples/third-party-remote/tests/conformance.rs",
                suite_call,
            ),
        ],
    }
}

fn failures(check: fn(&Workspace) -> Findings, workspace: &Workspace) -> Vec<String> {
    check(workspace).failures
}

#[test]
fn a_healthy_workspace_passes_every_check() {
    let workspace = healthy();
    for check in &CHECKS {
        assert_eq!(
            (check.run)(&workspace).failures,
            Vec::<String>::new(),
            "{}",
            check.name
        );
    }
}

#[test]
fn sql_or_http_in_the_core_tree_fails() {
    let mut workspace = healthy();
    workspace.core_tree.insert("sqlx-core".into());
    workspace.core_tree.insert("hyper".into());
    let found = failures(core_knows_no_protocol, &workspace);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("hyper") && found[1].contains("sqlx-core"));
}

#[test]
fn the_core_depending_on_an_adapter_fails_but_a_dev_dependency_does_not() {
    let mut workspace = healthy();
    workspace.members[0]
        .dependencies
        .push(member("", "", &[("attachments-fs", Dev)]).dependencies[0].clone());
    assert!(failures(core_depends_on_no_workspace_crate, &workspace).is_empty());
    workspace.members[0].dependencies[1].kind = Normal;
    let found = failures(core_depends_on_no_workspace_crate, &workspace);
    assert!(found[0].contains("depends on attachments-fs"), "{found:?}");
}

#[test]
fn an_adapter_depending_on_another_fails_for_normal_and_build_edges_only() {
    for (kind, fails) in [(Normal, true), (Build, true), (Dev, false)] {
        let mut workspace = healthy();
        workspace.members[2] = member(
            "attachments-s3",
            "crates/attachments-s3",
            &[(CORE, Normal), ("attachments-fs", kind), (TESTKIT, Dev)],
        );
        let found = failures(adapters_know_nothing_of_each_other, &workspace);
        assert_eq!(!found.is_empty(), fails, "{kind:?}: {found:?}");
        if fails {
            assert!(found[0].starts_with("attachments-s3 depends on attachments-fs"));
        }
    }
}

#[test]
fn a_new_adapter_is_an_adapter_without_a_list_to_edit() {
    let mut workspace = healthy();
    workspace.members.push(member(
        "attachments-powersync",
        "crates/attachments-powersync",
        &[(CORE, Normal), ("attachments-s3", Normal), (TESTKIT, Dev)],
    ));
    let found = failures(adapters_know_nothing_of_each_other, &workspace);
    assert_eq!(found.len(), 1, "{found:?}");
    let found = failures(adapters_run_the_suites, &workspace);
    assert!(
        found[0].starts_with("attachments-powersync runs none"),
        "{found:?}"
    );
}

#[test]
fn the_testkit_may_use_core_and_its_list_only() {
    let mut workspace = healthy();
    let testkit = workspace
        .members
        .iter_mut()
        .find(|m| m.name == TESTKIT)
        .unwrap();
    testkit.dependencies.extend(
        member(
            "",
            "",
            &[
                ("attachments-fs", Normal),
                ("reqwest", Normal),
                ("tempfile", Dev),
            ],
        )
        .dependencies,
    );
    let found = failures(testkit_depends_on_core_only, &workspace);
    assert_eq!(
        found.len(),
        2,
        "a dev-dependency is its own business: {found:?}"
    );
    assert!(found[0].contains("knows the core only"));
    assert!(found[1].contains("reqwest, which is not in TESTKIT_MAY_USE"));
}

#[test]
fn examples_and_tools_must_use_the_facade() {
    let mut workspace = healthy();
    workspace.members.push(member(
        "bench",
        "tools/bench",
        &[
            (FACADE, Normal),
            (TESTKIT, Normal),
            ("attachments-s3", Normal),
        ],
    ));
    workspace.members[5]
        .dependencies
        .push(member("", "", &[(CORE, Dev)]).dependencies[0].clone());
    let found = failures(applications_use_the_facade, &workspace);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("attachments-examples (examples) depends on attachments-core"));
    assert!(found[1].starts_with("bench (tools/bench) depends on attachments-s3"));
}

#[test]
fn the_third_party_example_may_use_core_and_a_dev_testkit_only() {
    for (deps, expected) in [
        (vec![(FACADE, Normal)], "depends on attachments (Normal)"),
        (
            vec![("attachments-fs", Dev)],
            "depends on attachments-fs (Dev)",
        ),
        (
            vec![(TESTKIT, Normal)],
            "depends on attachments-testkit (Normal)",
        ),
    ] {
        let mut workspace = healthy();
        let example = workspace
            .members
            .iter_mut()
            .find(|m| m.name == "third-party-remote")
            .unwrap();
        example
            .dependencies
            .extend(member("", "", &deps).dependencies);
        let found = failures(third_party_example_needs_only_core, &workspace);
        assert!(
            found.len() == 1 && found[0].contains(expected),
            "{expected}: {found:?}"
        );
    }
    let mut workspace = healthy();
    workspace.members.retain(|m| m.name != "third-party-remote");
    let found = failures(third_party_example_needs_only_core, &workspace);
    assert!(found[0].contains("is not a workspace member"), "{found:?}");
}

#[test]
fn an_adapter_without_a_suite_call_in_its_tests_fails() {
    let mut workspace = healthy();
    workspace.source_files[1] = file(
        "crates/attachments-s3/src/lib.rs",
        "attachments_testkit::remote_storage_suite",
    );
    let found = failures(adapters_run_the_suites, &workspace);
    assert_eq!(
        found.len(),
        1,
        "a call outside tests/ does not count: {found:?}"
    );
    assert!(found[0].starts_with("attachments-s3 runs none"));
}

#[test]
fn long_files_fail_unless_excepted_and_exceptions_are_printed() {
    let long = "fn f() {}\n".repeat(MAX_FILE_LINES + 1);
    let mut workspace = healthy();
    workspace.source_files = vec![
        file("crates/attachments-fs/src/local.rs", &long),
        file(OVERSIZED_FILE_EXCEPTIONS[0].0, &long),
        file(OVERSIZED_FILE_EXCEPTIONS[1].0, "fn short() {}\n"),
        file(
            "crates/attachments-core/src/model.rs",
            &"\n".repeat(MAX_FILE_LINES),
        ),
    ];
    let findings = files_stay_small(&workspace);
    assert_eq!(findings.failures.len(), 1, "{findings:?}");
    assert!(findings.failures[0].starts_with("crates/attachments-fs/src/local.rs has 801 lines"));
    assert!(
        findings.notes[0].contains("allowed for now"),
        "{findings:?}"
    );
    assert!(
        findings.notes[1].contains("has 1 lines now: remove it"),
        "{findings:?}"
    );
    let gone = &findings.notes[2..];
    assert_eq!(
        gone.len(),
        OVERSIZED_FILE_EXCEPTIONS.len() - 2,
        "{findings:?}"
    );
    assert!(gone.iter().all(|note| note.contains("is gone: remove it")));
}

#[test]
fn metadata_is_read_into_members_and_the_core_tree() {
    let metadata = serde_json::json!({
        "workspace_root": "/ws",
        "workspace_members": ["core-id", "fs-id"],
        "packages": [
            {"id": "core-id", "name": CORE, "manifest_path": "/ws/crates/attachments-core/Cargo.toml",
             "dependencies": [{"name": "tokio", "kind": null}, {"name": "proptest", "kind": "dev"}]},
            {"id": "fs-id", "name": "attachments-fs", "manifest_path": "/ws/crates/attachments-fs/Cargo.toml",
             "dependencies": [{"name": CORE, "kind": null}, {"name": "cc", "kind": "build"}]},
            {"id": "tokio-id", "name": "tokio", "manifest_path": "/reg/tokio/Cargo.toml", "dependencies": []},
            {"id": "mio-id", "name": "mio", "manifest_path": "/reg/mio/Cargo.toml", "dependencies": []},
            {"id": "proptest-id", "name": "proptest", "manifest_path": "/reg/p/Cargo.toml", "dependencies": []}
        ],
        "resolve": {"nodes": [
            {"id": "core-id", "deps": [
                {"pkg": "tokio-id", "dep_kinds": [{"kind": null}]},
                {"pkg": "proptest-id", "dep_kinds": [{"kind": "dev"}]}]},
            {"id": "tokio-id", "deps": [{"pkg": "mio-id", "dep_kinds": [{"kind": null}]}]},
            {"id": "fs-id", "deps": [{"pkg": "core-id", "dep_kinds": [{"kind": null}]}]}
        ]}
    });
    let workspace = workspace_from_metadata(&metadata).unwrap();
    assert_eq!(workspace.members.len(), 2);
    let fs = workspace.member("attachments-fs").unwrap();
    assert_eq!(fs.dir, "crates/attachments-fs");
    assert_eq!(fs.dependencies[1].kind, Build);
    assert_eq!(
        workspace.core_tree,
        [CORE, "mio", "tokio"].map(String::from).into(),
        "normal edges only, followed transitively"
    );
}
