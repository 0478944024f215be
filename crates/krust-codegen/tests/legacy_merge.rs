//! The merge of `schemas/` with `schemas/legacy/` loses nothing: at every
//! version of a legacy copy the merged schema has exactly that copy's fields
//! (names, types, nullability and tags, at every depth), and at every version
//! of the current file exactly the current file's.

use krust_codegen::merge::{merge, view};
use krust_codegen::versions::Range;

#[test]
fn every_version_of_both_copies_survives_the_merge() {
    let (schemas, _) = krust_codegen::default_paths();
    let current = krust_codegen::read_dir(&schemas).unwrap();
    let legacy = krust_codegen::read_dir(&schemas.join(krust_codegen::LEGACY_DIR)).unwrap();
    assert!(legacy.len() >= 40, "only {} legacy files", legacy.len());
    let mut checked = 0;
    for (name, old) in &legacy {
        let cur = current
            .get(name)
            .unwrap_or_else(|| panic!("legacy/{name} has no current file"));
        let merged = merge(cur.clone(), old.clone()).unwrap();
        for (copy, what) in [(old, "legacy"), (cur, "current")] {
            let r = Range::parse(&copy.valid_versions).unwrap();
            for v in r.lo..=r.hi.min(100) {
                if r.is_empty() {
                    break;
                }
                assert_eq!(
                    view(&merged, v).unwrap(),
                    view(copy, v).unwrap(),
                    "{name} v{v}: the merged schema differs from the {what} copy"
                );
                checked += 1;
            }
        }
        // Every version the merge claims comes from one of the copies.
        let m = Range::parse(&merged.valid_versions).unwrap();
        let (o, c) = (
            Range::parse(&old.valid_versions).unwrap(),
            Range::parse(&cur.valid_versions).unwrap(),
        );
        for v in m.lo..=m.hi {
            assert!(
                (o.lo..=o.hi).contains(&v) || (c.lo..=c.hi).contains(&v),
                "{name}: v{v} is in neither copy"
            );
        }
    }
    assert!(checked > 300, "only {checked} versions compared");
}
