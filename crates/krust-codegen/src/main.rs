//! `cargo run -p krust-codegen [-- --check]`: regenerate
//! `crates/krust-codec/src/generated/` from `crates/krust-codec/schemas/`,
//! or with `--check` only report whether the committed files are current.

use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let (schemas, out) = krust_codegen::default_paths();
    let files = match krust_codegen::generate(&schemas) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("krust-codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        let stale = krust_codegen::diff(&out, &files);
        if stale.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "krust-codegen: generated code is stale ({}); run `cargo run -p krust-codegen`",
            stale.join(", ")
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = krust_codegen::write(&out, &files) {
        eprintln!("krust-codegen: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "krust-codegen: wrote {} files to {}",
        files.len(),
        out.display()
    );
    ExitCode::SUCCESS
}
