//! Property tests of the validation that keeps names inside their root: no accepted id, file
//! name or extension can address anything outside the directory it is joined to.

use std::path::{Component, Path};

use attachments_core::{AttachmentId, default_filename, validate_relative_path};
use proptest::prelude::*;

/// Strings built from the characters that make paths dangerous, and a little else.
fn tricky() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("."),
            Just(".."),
            Just("/"),
            Just("\\"),
            Just("\0"),
            Just("a"),
            Just("é"),
            Just(" "),
            Just("~"),
            Just(":"),
            Just("\n"),
            Just("C:"),
            Just("%2e"),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Whether `path`, joined to a root, stays below it (judged on the components alone).
fn stays_inside(path: &str) -> bool {
    let mut depth = 0i32;
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    depth > 0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn accepted_paths_stay_inside(path in prop_oneof![tricky(), any::<String>()]) {
        if validate_relative_path(&path).is_ok() {
            prop_assert!(stays_inside(&path), "{path:?} escapes");
            prop_assert!(!path.contains('\0') && !path.contains('\\'));
            prop_assert!(!path.split('/').any(|c| c == ".." || c == "." || c.is_empty()));
        }
    }

    #[test]
    fn accepted_ids_are_single_safe_components(raw in prop_oneof![tricky(), any::<String>(), "[A-Za-z0-9._-]{1,140}"]) {
        if let Ok(id) = AttachmentId::new(raw.clone()) {
            prop_assert!(validate_relative_path(id.as_str()).is_ok(), "{raw:?}");
            prop_assert!(!id.as_str().contains('/'));
            prop_assert!(id.as_str().len() <= 128);
        }
    }

    #[test]
    fn default_filenames_are_safe(raw_id in "[A-Za-z0-9._-]{1,20}", extension in prop_oneof![tricky(), any::<String>()]) {
        if let Ok(id) = AttachmentId::new(raw_id)
            && let Ok(filename) = default_filename(&id, Some(&extension))
        {
            prop_assert!(validate_relative_path(&filename).is_ok(), "{filename:?}");
            prop_assert!(stays_inside(&filename));
            prop_assert!(!filename.contains('/'), "one component: {filename:?}");
        }
    }
}
