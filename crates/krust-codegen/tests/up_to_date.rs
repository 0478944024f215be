//! The committed generated code is exactly what the generator produces now.

#[test]
fn generated_code_is_up_to_date() {
    let (schemas, committed) = krust_codegen::default_paths();
    let files = krust_codegen::generate(&schemas).expect("generator failed");
    assert!(files.len() > 180, "only {} files generated", files.len());

    // Write into a temporary directory too, so the writer itself is covered.
    let tmp = std::env::temp_dir().join(format!("krust-codegen-test-{}", std::process::id()));
    krust_codegen::write(&tmp, &files).expect("write failed");
    assert!(krust_codegen::diff(&tmp, &files).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);

    let stale = krust_codegen::diff(&committed, &files);
    assert!(
        stale.is_empty(),
        "crates/krust-codec/src/generated is stale ({}): run `cargo run -p krust-codegen` and commit the result",
        stale.join(", ")
    );
}

#[test]
fn generation_is_deterministic() {
    let (schemas, _) = krust_codegen::default_paths();
    assert_eq!(
        krust_codegen::generate(&schemas).unwrap(),
        krust_codegen::generate(&schemas).unwrap()
    );
}
