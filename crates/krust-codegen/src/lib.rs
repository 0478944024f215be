//! krust-codegen: generates `krust-codec`'s message modules
//! (`crates/krust-codec/src/generated/`) from Kafka's JSON message schemas
//! (`crates/krust-codec/schemas/`, each merged with its older copy in
//! `schemas/legacy/` where it has one: [`merge`]).
//!
//! The pipeline: [`schema`] parses the files (stripping Kafka's `//`
//! comments), [`merge`] adds the versions of their legacy copies, [`model`] resolves types, versions, defaults and structs, and
//! the `emit_*` modules write Rust, which is then formatted by `rustfmt` so
//! that the committed output is exactly what `cargo fmt` would keep.

pub mod emit_api;
pub mod emit_field;
pub mod emit_struct;
pub mod merge;
pub mod model;
pub mod schema;
pub mod versions;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The schema directory and the output directory of this workspace.
pub fn default_paths() -> (PathBuf, PathBuf) {
    let codec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../krust-codec");
    (codec.join("schemas"), codec.join("src/generated"))
}

/// The folder, inside the schema directory, of older copies of schema files
/// whose versions a current Kafka dropped and krust keeps (see [`merge`]).
pub const LEGACY_DIR: &str = "legacy";

/// Every `*.json` schema directly in `dir`, by file name, parsed.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, schema::RawSchema>, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let raw = schema::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        out.insert(name, raw);
    }
    Ok(out)
}

/// The schemas of `schema_dir`, each merged with its copy in
/// [`LEGACY_DIR`] if it has one, by file name. A legacy file without a
/// current one is an error: what it would add has nowhere to go.
pub fn load_raw(schema_dir: &Path) -> Result<Vec<schema::RawSchema>, String> {
    let current = read_dir(schema_dir)?;
    let legacy_dir = schema_dir.join(LEGACY_DIR);
    let mut legacy = if legacy_dir.is_dir() {
        read_dir(&legacy_dir)?
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    for (name, raw) in current {
        out.push(match legacy.remove(&name) {
            Some(old) => merge::merge(raw, old).map_err(|e| format!("{LEGACY_DIR}/{name}: {e}"))?,
            None => raw,
        });
    }
    if let Some(name) = legacy.keys().next() {
        return Err(format!(
            "{}/{name} has no current schema to merge into",
            legacy_dir.display()
        ));
    }
    Ok(out)
}

/// Read and resolve every `request`, `response`, `header` and `data` schema
/// in `schema_dir` (merged with its legacy copy), sorted by name.
pub fn load(schema_dir: &Path) -> Result<Vec<model::Message>, String> {
    let mut out = Vec::new();
    for raw in load_raw(schema_dir)? {
        if !matches!(
            raw.kind.as_str(),
            "request" | "response" | "header" | "data"
        ) {
            continue;
        }
        out.push(model::build(&raw).map_err(|e| format!("{}: {e}", raw.name))?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Format Rust source with `rustfmt --edition 2024` (`$RUSTFMT` if set).
pub fn rustfmt(source: &str) -> Result<String, String> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into());
    let mut child = Command::new(&rustfmt)
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run {rustfmt}: {e} (install it with `rustup component add rustfmt`)")
        })?;
    let mut stdin = child.stdin.take().ok_or("rustfmt stdin")?;
    let src = source.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(src.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked")?
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}

/// Generate every file: file name (relative to the output directory) to
/// formatted contents.
pub fn generate(schema_dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let messages = load(schema_dir)?;
    let mut files = BTreeMap::new();
    for m in &messages {
        files.insert(
            format!("{}.rs", m.module),
            rustfmt(&emit_api::message_module(m))?,
        );
    }
    files.insert(
        "mod.rs".to_string(),
        rustfmt(&emit_api::mod_rs(&messages)?)?,
    );
    Ok(files)
}

/// Write `files` into `out_dir`, removing `.rs` files that are no longer
/// generated.
pub fn write(out_dir: &Path, files: &BTreeMap<String, String>) -> Result<(), String> {
    std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(out_dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".rs") && !files.contains_key(&name) {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        }
    }
    for (name, text) in files {
        let path = out_dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Compare `files` with what is in `out_dir`; the names of files that differ,
/// are missing, or should not be there.
pub fn diff(out_dir: &Path, files: &BTreeMap<String, String>) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, text) in files {
        if std::fs::read_to_string(out_dir.join(name)).ok().as_deref() != Some(text.as_str()) {
            bad.push(name.clone());
        }
    }
    if let Ok(rd) = std::fs::read_dir(out_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") && !files.contains_key(&name) {
                bad.push(name);
            }
        }
    }
    bad.sort();
    bad
}
