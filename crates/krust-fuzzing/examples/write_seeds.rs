//! Write the seed corpus into `fuzz/corpus/<target>/`:
//! `cargo run -p krust-fuzzing --example write_seeds`.
//! Also copies the record-batch fixtures written by kafka-python, so the
//! record target starts from bytes of another implementation too.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = root.join("fuzz/corpus");
    let mut n = krust_fuzzing::write_seeds(&corpus)?;
    let fixtures = root.join("crates/krust-codec/tests/fixtures/records");
    for entry in std::fs::read_dir(&fixtures)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "bin") {
            let name = path.file_name().unwrap_or_default();
            std::fs::copy(&path, corpus.join("record_batch").join(name))?;
            n += 1;
        }
    }
    println!("wrote {n} seeds under {}", corpus.display());
    Ok(())
}
