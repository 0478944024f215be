//! Merging a current schema with an older copy of the same file, so that the
//! generated code speaks the union of their versions.
//!
//! Apache Kafka 4.0 removed old versions of many APIs from its schemas
//! (KIP-896), but brokers that need them still run (Kafka 2.x and 3.x, the
//! emulators). `schemas/` holds a current Kafka's files unchanged and
//! `schemas/legacy/` the older copies of the files whose removed versions
//! krust keeps. The merge works on the raw schemas, before [`crate::model`]:
//!
//! - the valid versions are the union of both, which must be one range;
//! - the flexible versions must agree (a message that became flexible at a
//!   different version in each copy cannot be one schema);
//! - fields are matched by name at every level: a field in both takes the
//!   union of its versions (and of its nullable versions), is ignorable if
//!   either copy says so, and takes the current copy's documentation and
//!   default; a field only the older copy has is
//!   kept at its place after the field that preceded it there; a field whose
//!   type, tag or tagged versions differ between the copies is an error;
//! - common structs are merged the same way, by name.
//!
//! What the merge promises, checked by [`view`] in the tests: at every
//! version of the older copy the merged schema has exactly that copy's
//! fields, and at every version of the current copy exactly the current
//! one's.

use crate::schema::{RawCommonStruct, RawField, RawSchema};
use crate::versions::Range;

/// `legacy`'s versions added to `current` (see the module documentation).
pub fn merge(current: RawSchema, legacy: RawSchema) -> Result<RawSchema, String> {
    if current.kind != legacy.kind
        || current.name != legacy.name
        || current.api_key != legacy.api_key
    {
        return Err(format!(
            "legacy schema {} ({}, key {:?}) is not the same message as {} ({}, key {:?})",
            legacy.name, legacy.kind, legacy.api_key, current.name, current.kind, current.api_key
        ));
    }
    let cur_valid = Range::parse(&current.valid_versions)?;
    let old_valid = Range::parse(&legacy.valid_versions)?;
    let valid = union(cur_valid, old_valid, "validVersions")?;
    // A schema that Kafka emptied ("none") keeps no flexible versions of its
    // own: the older copy's are the only ones.
    let flexible_versions = if cur_valid.is_empty() {
        legacy.flexible_versions.clone()
    } else if old_valid.is_empty() {
        current.flexible_versions.clone()
    } else {
        let (a, b) = (
            Range::parse(&current.flexible_versions)?,
            Range::parse(&legacy.flexible_versions)?,
        );
        let (a_in, b_in) = (a.intersect(valid), b.intersect(valid));
        if a_in != b_in {
            return Err(format!(
                "flexibleVersions differ: {} now, {} in the legacy copy",
                current.flexible_versions, legacy.flexible_versions
            ));
        }
        current.flexible_versions.clone()
    };
    let valid3 = Valid {
        cur: cur_valid,
        old: old_valid,
        merged: valid,
    };
    let fields = merge_fields(current.fields, legacy.fields, valid3, &current.name)?;
    let mut common_structs = Vec::new();
    let mut old_common = legacy.common_structs;
    for c in current.common_structs {
        match old_common.iter().position(|o| o.name == c.name) {
            Some(i) => {
                let o = old_common.remove(i);
                let fields = merge_fields(c.fields, o.fields, valid3, &c.name)?;
                let versions = union(
                    Range::parse(&c.versions)?,
                    Range::parse(&o.versions)?,
                    &c.name,
                )?;
                common_structs.push(RawCommonStruct {
                    name: c.name,
                    versions: versions.describe(),
                    fields,
                });
            }
            None => common_structs.push(RawCommonStruct {
                fields: c
                    .fields
                    .into_iter()
                    .map(|f| only(f, valid3, true, &c.name))
                    .collect::<Result<_, _>>()?,
                ..c
            }),
        }
    }
    for o in old_common {
        common_structs.push(RawCommonStruct {
            fields: o
                .fields
                .into_iter()
                .map(|f| only(f, valid3, false, &o.name))
                .collect::<Result<_, _>>()?,
            ..o
        });
    }
    Ok(RawSchema {
        kind: current.kind,
        name: current.name,
        api_key: current.api_key,
        valid_versions: valid.describe(),
        flexible_versions,
        deprecated_versions: current.deprecated_versions.or(legacy.deprecated_versions),
        latest_version_unstable: current.latest_version_unstable,
        listeners: current.listeners.or(legacy.listeners),
        fields,
        common_structs,
    })
}

/// The union of two version ranges, which must touch or overlap.
fn union(a: Range, b: Range, what: &str) -> Result<Range, String> {
    if !a.is_empty()
        && !b.is_empty()
        && (a.hi.saturating_add(1) < b.lo || b.hi.saturating_add(1) < a.lo)
    {
        return Err(format!(
            "{what}: {} and {} leave a gap, so they cannot be one range",
            a.describe(),
            b.describe()
        ));
    }
    Ok(a.hull(b))
}

/// The valid versions of the current copy, of the legacy copy and of the
/// merge: a field's versions count only within its copy's.
#[derive(Clone, Copy)]
struct Valid {
    cur: Range,
    old: Range,
    merged: Range,
}

impl Valid {
    /// `cur` (the current copy's versions of something) and `old` (the
    /// legacy copy's), each cut to its copy's valid versions, as one range,
    /// written open (`N+`) when it reaches the newest merged version.
    fn join(self, cur: Range, old: Range, what: &str) -> Result<String, String> {
        let r = union(cur.intersect(self.cur), old.intersect(self.old), what)?;
        Ok(if r.is_empty() {
            "none".into()
        } else if r.hi >= self.merged.hi {
            format!("{}+", r.lo)
        } else {
            r.describe()
        })
    }
}

fn merge_fields(
    current: Vec<RawField>,
    legacy: Vec<RawField>,
    valid: Valid,
    parent: &str,
) -> Result<Vec<RawField>, String> {
    // Fields only one copy has keep only that copy's versions.
    let mut out = current
        .into_iter()
        .map(|f| only(f, valid, true, parent))
        .collect::<Result<Vec<_>, _>>()?;
    // Where the next legacy-only field goes: after the last legacy field
    // placed or matched so far.
    let mut at = 0;
    for old in legacy {
        match out.iter().position(|f| f.name == old.name) {
            Some(i) => {
                let cur = out.remove(i);
                out.insert(i, merge_field(cur, old, valid, parent)?);
                at = i + 1;
            }
            None => {
                out.insert(at, only(old, valid, false, parent)?);
                at += 1;
            }
        }
    }
    Ok(out)
}

/// A field as one copy has it, its versions cut to that copy's (nested
/// fields too). A field of the current copy that the legacy copy also has
/// is cut again, harmlessly, when [`merge_field`] joins them.
fn only(f: RawField, valid: Valid, current: bool, parent: &str) -> Result<RawField, String> {
    let here = format!("{parent}.{}", f.name);
    let cut = |s: &str| -> Result<String, String> {
        let r = Range::parse(s)?;
        if current {
            valid.join(r, Range::NONE, &here)
        } else {
            valid.join(Range::NONE, r, &here)
        }
    };
    Ok(RawField {
        versions: cut(&f.versions)?,
        nullable_versions: f.nullable_versions.as_deref().map(cut).transpose()?,
        fields: f
            .fields
            .into_iter()
            .map(|g| only(g, valid, current, &here))
            .collect::<Result<_, _>>()?,
        ..f
    })
}

fn merge_field(
    cur: RawField,
    old: RawField,
    valid: Valid,
    parent: &str,
) -> Result<RawField, String> {
    let here = format!("{parent}.{}", cur.name);
    if cur.ty != old.ty {
        return Err(format!(
            "{here}: type {} now, {} in the legacy copy",
            cur.ty, old.ty
        ));
    }
    if cur.tag != old.tag || cur.tagged_versions != old.tagged_versions {
        return Err(format!(
            "{here}: tag or taggedVersions differ between the copies"
        ));
    }
    if cur.flexible_versions != old.flexible_versions {
        return Err(format!(
            "{here}: flexibleVersions differ between the copies"
        ));
    }
    let versions = valid.join(
        Range::parse(&cur.versions)?,
        Range::parse(&old.versions)?,
        &here,
    )?;
    let nullable = |f: &RawField| {
        f.nullable_versions
            .as_deref()
            .map_or(Ok(Range::NONE), Range::parse)
    };
    let nullable = valid.join(
        nullable(&cur)?,
        nullable(&old)?,
        &format!("{here} nullableVersions"),
    )?;
    let fields = merge_fields(cur.fields, old.fields, valid, &here)?;
    // A field either copy lets an encoder drop where it is absent stays
    // droppable (RequestHeader.ClientId at v0 was).
    let ignorable = (cur.ignorable == Some(true) || old.ignorable == Some(true)).then_some(true);
    Ok(RawField {
        versions,
        nullable_versions: (nullable != "none").then_some(nullable),
        ignorable: ignorable.or(cur.ignorable),
        fields,
        ..cur
    })
}

/// A schema as one version sees it: every field present at `version`, in
/// wire order, with its type, whether it may be null and its tag there, and
/// the same for the fields of its struct (common structs resolved).
pub fn view(schema: &RawSchema, version: i16) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    view_fields(schema, &schema.fields, version, "", &mut out)?;
    Ok(out)
}

fn view_fields(
    schema: &RawSchema,
    fields: &[RawField],
    version: i16,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let at = |r: &Option<String>| -> Result<bool, String> {
        Ok(match r {
            Some(s) => {
                let r = Range::parse(s)?;
                r.lo <= version && version <= r.hi
            }
            None => false,
        })
    };
    for f in fields {
        let present = Range::parse(&f.versions)?;
        if !(present.lo <= version && version <= present.hi) {
            continue;
        }
        let tagged = at(&f.tagged_versions)?;
        out.push(format!(
            "{prefix}{}: {} nullable={} tag={}",
            f.name,
            f.ty,
            at(&f.nullable_versions)?,
            if tagged {
                format!("{:?}", f.tag)
            } else {
                "-".into()
            },
        ));
        let inner = format!("{prefix}{}.", f.name);
        if !f.fields.is_empty() {
            view_fields(schema, &f.fields, version, &inner, out)?;
        } else {
            let elem = f.ty.trim_start_matches("[]");
            if let Some(c) = schema.common_structs.iter().find(|c| c.name == elem) {
                view_fields(schema, &c.fields, version, &inner, out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse;

    fn schema(valid: &str, fields: &str) -> RawSchema {
        parse(&format!(
            r#"{{"type": "request", "name": "XRequest", "apiKey": 1, "validVersions": "{valid}",
                "flexibleVersions": "3+", "fields": [{fields}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn versions_union_and_old_fields_keep_their_place() {
        let cur = schema(
            "2-5",
            r#"{"name": "A", "type": "int32", "versions": "0+"},
               {"name": "C", "type": "string", "versions": "2+", "nullableVersions": "4+"},
               {"name": "D", "type": "int8", "versions": "5+"}"#,
        );
        let old = schema(
            "0-4",
            r#"{"name": "A", "type": "int32", "versions": "0+"},
               {"name": "B", "type": "int64", "versions": "0-1"},
               {"name": "C", "type": "string", "versions": "1+", "nullableVersions": "4+"}"#,
        );
        let m = merge(cur.clone(), old.clone()).unwrap();
        assert_eq!(m.valid_versions, "0-5");
        let names: Vec<_> = m.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
        assert_eq!(m.fields[2].versions, "1+");
        for v in 0..=4 {
            assert_eq!(view(&m, v).unwrap(), view(&old, v).unwrap(), "v{v}");
        }
        for v in 2..=5 {
            assert_eq!(view(&m, v).unwrap(), view(&cur, v).unwrap(), "v{v}");
        }
    }

    #[test]
    fn conflicts_are_errors() {
        let cur = schema("4-5", r#"{"name": "A", "type": "int32", "versions": "0+"}"#);
        let gap = schema("0-2", r#"{"name": "A", "type": "int32", "versions": "0+"}"#);
        assert!(merge(cur.clone(), gap).unwrap_err().contains("gap"));
        let typed = schema("0-4", r#"{"name": "A", "type": "int64", "versions": "0+"}"#);
        assert!(merge(cur, typed).unwrap_err().contains("type"));
    }
}
